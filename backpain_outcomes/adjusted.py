"""Confounding-adjusted modality comparisons: inverse-probability-of-treatment weighting, balance and E-values.

Observational clinic data compare modalities chosen by therapists and
patients, so sicker patients may receive some modalities more often.
:func:`weighted_comparison` estimates, for each modality against a reference
(untreated by default), the share of responders (or of resolved episodes) at
a horizon had everyone received the modality versus the reference:

1. a multinomial propensity model of the modality given age, sex,
   chronicity, baseline score and clinic (:mod:`backpain_outcomes.weighting`);
2. inverse-probability-of-treatment weights (ATE, or ATT for the population
   that received each modality), optionally truncated;
3. a balance table of standardised mean differences before and after
   weighting, balanced when below 0.1 (Austin 2009), shown as a Love plot;
4. weighted risk differences and risk ratios with sandwich confidence
   intervals that account for the estimated propensity score, and doubly
   robust (augmented IPW) estimates where the outcome models can be fitted;
5. the E-value of every risk ratio and of its confidence limit closest to 1
   (VanderWeele & Ding 2017), the strength of unmeasured confounding that
   would explain the comparison away.

The weighting removes confounding by the measured covariates only, under
positivity (every episode could have received every modality); the E-value
speaks to the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from . import style
from .adjusted_data import DEFAULT_COVARIATES, OUTCOMES, comparison_data
from .checks import check_alpha, check_choice, check_day, check_instrument, check_min_n, check_modality, check_origin, check_positive
from .evalue import ci_e_value, e_value_rr, interpret
from .resolution import DEFAULT_RULE, as_rule, check_study
from .results import Result
from .vocabulary import label
from .weighting import ESTIMANDS, SMD_THRESHOLD, aipw_means, balance_table, fit_propensity, ipt_weights, ipw_means

__all__ = ["weighted_comparison", "WeightedComparison"]

_ESTIMATE_COLUMNS = ["modality", "reference", "n", "n_reference", "events", "events_reference", "rate_crude",
                     "rate_reference_crude", "rd_crude", "rr_crude", "rate", "rate_reference", "rd", "rd_se",
                     "rd_ci_low", "rd_ci_high", "p_value", "p_holm", "rr", "rr_ci_low", "rr_ci_high", "e_value",
                     "e_value_ci", "rate_dr", "rate_reference_dr", "rd_dr", "rd_dr_ci_low", "rd_dr_ci_high", "rr_dr",
                     "ess", "ess_reference", "max_abs_smd_before", "max_abs_smd_after"]


class WeightedComparison(Result):
    """Result of :func:`weighted_comparison`.

    Attributes
    ----------
    table : DataFrame
        One row per modality against ``reference``: ``modality``,
        ``reference``, ``n``, ``n_reference``, ``events``,
        ``events_reference``; unweighted ``rate_crude``,
        ``rate_reference_crude``, ``rd_crude``, ``rr_crude``; weighted
        ``rate``, ``rate_reference``, risk difference ``rd`` with ``rd_se``,
        ``rd_ci_low``, ``rd_ci_high``, ``p_value`` (two-sided, no difference)
        and ``p_holm`` (Holm over the modalities), risk ratio ``rr``,
        ``rr_ci_low``, ``rr_ci_high``; ``e_value`` and ``e_value_ci`` of the
        risk ratio; doubly robust ``rate_dr``, ``rate_reference_dr``,
        ``rd_dr``, ``rd_dr_ci_low``, ``rd_dr_ci_high``, ``rr_dr`` (NaN where
        not feasible); Kish effective sample sizes ``ess``,
        ``ess_reference``; ``max_abs_smd_before``, ``max_abs_smd_after``.
    balance : DataFrame
        Standardised mean differences before and after weighting per modality
        and covariate (see :func:`~backpain_outcomes.weighting.balance_table`).
    weights : DataFrame
        ``episode_id``, ``modality``, ``propensity`` (of the episode's own
        modality), ``weight`` (ATE; for the ATT, ``weight_<modality>``).
    propensity : DataFrame
        ``episode_id`` and the fitted probability of each modality.
    converged : bool
        The propensity model converged.
    estimand, reference, outcome, instrument, origin : str
    day, alpha : float
    notes : list of str
    """


    def _parts(self):
        t = self.table.assign(modality=self.table["modality"].map(label), reference=self.table["reference"].map(label))
        show = t[["modality", "n", "rate_crude", "rate", "rate_reference", "rd", "rd_ci_low", "rd_ci_high", "rr",
                  "e_value", "e_value_ci", "rd_dr", "max_abs_smd_after"]]
        lines = [f"{self.estimand} weights from a multinomial propensity model; outcome: {self.outcome} at day "
                 f"{self.day:g}; reference: {label(self.reference)}",
                 *[f"{label(r.modality)}: {interpret(r.e_value, r.e_value_ci)}" for r in self.table.itertuples()
                   if np.isfinite(r.e_value)], *self.notes]
        bal = self.balance.assign(modality=self.balance["modality"].map(label))
        bal = bal[["modality", "covariate", "smd_before", "smd_after", "balanced"]]
        return (f"Confounding-adjusted comparison with {label(self.reference).lower()} ({self.estimand})", lines,
                {"Weighted comparisons": show, "Balance (standardised mean differences)": bal})

    def plot(self, ax=None):
        """Love plot: absolute standardised mean difference per covariate before (open) and after (filled) weighting."""
        covs = list(dict.fromkeys(self.balance["covariate"]))
        ax = style.new_axes(ax, figsize=(7.5, 0.32 * len(covs) + 2.0))
        ypos = {c: i for i, c in enumerate(covs[::-1])}
        mods = list(dict.fromkeys(self.balance["modality"]))
        for j, m in enumerate(mods):
            b = self.balance[self.balance["modality"] == m]
            y = b["covariate"].map(ypos).to_numpy(float) + (j - (len(mods) - 1) / 2) * 0.1
            color = style.colour(m, levels=mods)
            ax.scatter(b["smd_before"].abs(), y, facecolors="none", edgecolors=color, s=22)
            ax.scatter(b["smd_after"].abs(), y, color=color, s=22, label=label(m))
        ax.axvline(SMD_THRESHOLD, color="grey", ls="--", lw=1)
        ax.set_yticks(list(ypos.values()), [str(c).replace("_", " ") for c in ypos], fontsize=style.TICK_SIZE)
        ax.set_xlabel(f"|Standardised mean difference| vs {label(self.reference).lower()}\n"
                      "(open: unweighted, filled: weighted)", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Covariate", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        style.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="Modality",
                     title_fontsize=style.LABEL_SIZE)
        return ax

    def plot_effects(self, ax=None):
        """Forest plot of the risk differences: unweighted, weighted (with CI) and doubly robust; n per row."""
        t = self.table.reset_index(drop=True)
        ax = style.new_axes(ax, figsize=(7.5, 0.5 * len(t) + 1.9))
        y = np.arange(len(t))[::-1]
        ax.errorbar(t["rd"], y, xerr=[t["rd"] - t["rd_ci_low"], t["rd_ci_high"] - t["rd"]], fmt="o",
                    color="black", capsize=3, label=f"weighted (IPTW), {style.ci_text(self.alpha)}")
        ax.plot(t["rd_crude"], y + 0.15, "x", color=style.OKABE_ITO["vermillion"], label="unweighted")
        ax.plot(t["rd_dr"], y - 0.15, "s", color=style.OKABE_ITO["blue"], ms=4, label="doubly robust")
        ax.axvline(0, color="grey", ls="--", lw=1)
        ax.set_yticks(y, [label(m) for m in t["modality"]], fontsize=style.TICK_SIZE)
        style.n_column(ax, y, t["n"])
        n_ref = int(t["n_reference"].iat[0]) if len(t) else 0
        ax.set_xlabel(f"Difference in the share {str(self.outcome).replace('_', ' ')} by day {self.day:g}\n"
                      f"vs {label(self.reference).lower()} (n = {n_ref})", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Modality", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        style.legend(ax, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=3, frameon=False)
        return ax


def _ess(w):
    return float(w.sum() ** 2 / (w**2).sum()) if len(w) else np.nan


def _contrast(mu, cov, i, j, z):
    """(rd, se, lo, hi, p, rr, rr_lo, rr_hi) for mu[i] - mu[j] and mu[i] / mu[j]."""
    rd = mu[i] - mu[j]
    se = np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j]) if np.isfinite(cov[[i, j]][:, [i, j]]).all() else np.nan
    p = 2 * stats.norm.sf(abs(rd) / se) if np.isfinite(se) and se > 0 else np.nan
    rr = mu[i] / mu[j] if mu[j] > 0 else np.nan
    if np.isfinite(rr) and rr > 0 and np.isfinite(se):
        se_log = np.sqrt(cov[i, i] / mu[i] ** 2 + cov[j, j] / mu[j] ** 2 - 2 * cov[i, j] / (mu[i] * mu[j]))
        rr_lo, rr_hi = rr * np.exp(-z * se_log), rr * np.exp(z * se_log)
    else:
        rr_lo = rr_hi = np.nan
    return rd, se, rd - z * se, rd + z * se, p, rr, rr_lo, rr_hi


def _check_args(study, instrument, day, reference, estimand, trim, origin, window, outcome, rule, alpha, min_n):
    check_study(study)
    if trim is not None:
        trim = check_positive(trim, "trim")
        if not trim < 0.5:
            raise ValueError(f"trim must be a quantile share below 0.5 (e.g. 0.01 truncates the weights at their 1st "
                             f"and 99th percentiles), got {trim!r}")
    return (check_instrument(instrument), check_day(day), check_modality(reference),
            check_choice(estimand, "estimand", ESTIMANDS), trim, check_origin(origin), check_positive(window, "window"),
            check_choice(outcome, "outcome", OUTCOMES), as_rule(rule), check_alpha(alpha), check_min_n(min_n))


def _weights_notes(w, group, names, probs, estimand):
    notes = []
    for code, name in enumerate(names):
        wa = w[group == code]
        share = wa.max() / wa.sum() if len(wa) else 0
        if share > 0.1:
            notes.append(f"one {label(name).lower()} episode carries {share:.0%} of its group's weight (extreme "
                         "weight); consider trim=0.01")
        low = probs[:, code] < 0.01
        if low.any():
            notes.append(f"{int(low.sum())} episode(s) have a propensity below 0.01 for {label(name).lower()}: "
                         "positivity is doubtful and the weighted comparison extrapolates for them")
    if estimand == "ATE" and (w > 20).any():
        notes.append(f"{int((w > 20).sum())} episode(s) have weights above 20 (propensity of their own modality "
                     "below 0.05)")
    return notes


def _level_positivity(data):
    """Notes for levels of categorical covariates that some group never has (positivity fails there)."""
    notes = []
    for col in data.Z.columns:
        if ": " not in col:
            continue
        has = data.Z[col].to_numpy(bool)
        missing = [label(n).lower() for k, n in enumerate(data.names) if not has[data.group == k].any()]
        if missing and has.sum():
            notes.append(f"no {' or '.join(missing)} episode has {col}: positivity fails for the {int(has.sum())} "
                         f"episode(s) with {col}, whose comparisons rest on the model alone")
    return notes


def _estimate(data, ps, estimand, trim, alpha, min_n):
    """Weighted and doubly robust means per comparison; (rows, balance weights, weights frame, notes)."""
    y, group, X = data.frame["y"].to_numpy(float), data.group, data.X
    cluster = data.frame["patient_id"].to_numpy() if data.frame["patient_id"].duplicated().any() else None
    z = stats.norm.ppf(1 - alpha / 2)
    rows, bal_w, notes = [], {}, []
    wframe = pd.DataFrame({"episode_id": data.frame["episode_id"], "modality": data.frame["modality"],
                           "propensity": ps.probs[np.arange(len(group)), group]})
    if estimand == "ATE":
        w, g = ipt_weights(ps.probs, group, "ATE", trim=trim)
        wframe["weight"] = w
        codes = list(range(len(data.names)))
        mu, cov = ipw_means(y, group, X, ps.probs, w, g, codes, cluster)
        mu_dr, cov_dr, dr_notes = aipw_means(y, group, X, w, np.ones(len(y)), codes, cluster, min_events=min_n)
        notes += _weights_notes(w, group, data.names, ps.probs, estimand)
        fits = {m: (w, mu, cov, mu_dr, cov_dr, m, 0) for m in codes[1:]}
    else:
        fits, dr_notes = {}, []
        for m in range(1, len(data.names)):
            among = np.isin(group, [0, m])
            w, g = ipt_weights(ps.probs, group, "ATT", target=m, trim=trim, among=among)
            wframe[f"weight_{data.names[m]}"] = np.where(among, w, np.nan)
            mu, cov = ipw_means(y, group, X, ps.probs, w, g, [m, 0], cluster)
            mu_dr, cov_dr, dn = aipw_means(y, group, X, w, (group == m).astype(float), [m, 0], cluster, min_n)
            dr_notes += dn
            fits[m] = (w, mu, cov, mu_dr, cov_dr, 0, 1)
    for m, (w, mu, cov, mu_dr, cov_dr, i, j) in fits.items():
        bal_w[m] = w
        rd, se, lo, hi, p, rr, rr_lo, rr_hi = _contrast(mu, cov, i, j, z)
        rd_dr, _, lo_dr, hi_dr, _, rr_dr, _, _ = _contrast(mu_dr, cov_dr, i, j, z)
        ym, yr = y[group == m], y[group == 0]
        rows.append({"modality": data.names[m], "reference": data.names[0], "n": len(ym), "n_reference": len(yr),
                     "events": int(ym.sum()), "events_reference": int(yr.sum()), "rate_crude": ym.mean(),
                     "rate_reference_crude": yr.mean(), "rd_crude": ym.mean() - yr.mean(),
                     "rr_crude": ym.mean() / yr.mean() if yr.mean() > 0 else np.nan, "rate": mu[i],
                     "rate_reference": mu[j], "rd": rd, "rd_se": se, "rd_ci_low": lo, "rd_ci_high": hi, "p_value": p,
                     "rr": rr, "rr_ci_low": rr_lo, "rr_ci_high": rr_hi, "e_value": e_value_rr(rr),
                     "e_value_ci": ci_e_value(rr, rr_lo, rr_hi), "rate_dr": mu_dr[i], "rate_reference_dr": mu_dr[j],
                     "rd_dr": rd_dr, "rd_dr_ci_low": lo_dr, "rd_dr_ci_high": hi_dr, "rr_dr": rr_dr,
                     "ess": _ess(w[group == m]), "ess_reference": _ess(w[group == 0])})
    for code, text in dict.fromkeys(dr_notes):
        notes.append(f"doubly robust estimate not available for {label(data.names[code]).lower()}: {text}")
    return rows, bal_w, wframe, notes


def weighted_comparison(study, instrument: str = "nrs", day: float = 42, reference: str = "untreated",
                        covariates=DEFAULT_COVARIATES, estimand: str = "ATE", trim: float | None = None,
                        origin: str = "onset", window: float = 14, outcome: str = "responder", rule=DEFAULT_RULE,
                        alpha: float = 0.05, min_n: int = 5) -> WeightedComparison:
    """Compare each modality with ``reference`` at ``day``, adjusted for measured confounding by weighting.

    Parameters
    ----------
    study : Study
    instrument : str
        Instrument of the responder outcome and of the ``baseline`` covariate.
    day : float
        Horizon (days since ``origin``).
    reference : str
        Comparator (``"untreated"``; ``"none"`` is accepted).
    covariates : list of str
        Columns of ``study.episodes`` in the propensity model; ``"baseline"``
        is the baseline score of ``instrument``. Numeric columns enter
        linearly (standardised), the others as indicators.
    estimand : {"ATE", "ATT"}
        ``"ATE"``: everyone analysed receiving the modality versus the
        reference; ``"ATT"``: the episodes that received the modality.
    trim : float, optional
        Truncate the weights at their ``trim`` and ``1 - trim`` quantiles
        (e.g. 0.01).
    origin : {"onset", "first_contact"}
    window : float
        Largest distance in days between the responder measurement and ``day``.
    outcome : {"responder", "resolved"}
        Improvement by the MCID (points and 30%) at the measurement nearest
        ``day``, or resolution by ``day`` under ``rule``.
    rule : Resolution or str
        Definition of resolved for ``outcome="resolved"``.
    alpha : float
        Confidence intervals have level 1 - alpha.
    min_n : int
        Modalities with fewer analysable episodes are left out (and named in
        ``notes``); the least number of outcomes and non-outcomes for a
        doubly robust outcome model.

    Returns
    -------
    WeightedComparison

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> from backpain_outcomes.adjusted import weighted_comparison
    >>> res = weighted_comparison(bpo.load_study(bpo.example_path()), day=42)
    >>> {"rd", "rd_ci_low", "e_value", "rd_dr"} <= set(res.table.columns)
    True
    >>> bool(res.balance["smd_after"].abs().max() < res.balance["smd_before"].abs().max())
    True
    """
    instrument, day, reference, estimand, trim, origin, window, outcome, rule, alpha, min_n = _check_args(
        study, instrument, day, reference, estimand, trim, origin, window, outcome, rule, alpha, min_n)
    data = comparison_data(study, instrument, day, reference, covariates, origin, window, outcome, rule, min_n)
    ps = fit_propensity(data.X, data.group, len(data.names))
    notes = [*data.notes, *_level_positivity(data), *ps.notes]
    if not np.isfinite(ps.probs).all():
        raise ValueError("the propensity model could not be fitted: " + "; ".join(ps.notes)
                         + f". Drop covariates (covariates={tuple(data.covariates)!r}) or merge small modalities")
    rows, bal_w, wframe, wnotes = _estimate(data, ps, estimand, trim, alpha, min_n)
    notes += wnotes
    table = pd.DataFrame(rows)
    ok = table["p_value"].notna()
    table["p_holm"] = np.nan
    if ok.any():
        table.loc[ok, "p_holm"] = multipletests(table.loc[ok, "p_value"], method="holm")[1]
    balance = balance_table(data.Z, data.group, bal_w, data.names)
    agg = balance.assign(b=balance["smd_before"].abs(), a=balance["smd_after"].abs()).groupby("modality")[["b", "a"]].max()
    table["max_abs_smd_before"] = table["modality"].map(agg["b"])
    table["max_abs_smd_after"] = table["modality"].map(agg["a"])
    bad = balance[~balance["balanced"]]
    if len(bad):
        notes.append(f"{len(bad)} covariate comparison(s) remain imbalanced after weighting (|SMD| >= 0.1): "
                     + ", ".join(f"{r.covariate} for {label(r.modality).lower()} ({r.smd_after:+.2f})"
                                 for r in bad.head(8).itertuples()))
    if trim is not None:
        notes.append(f"weights truncated at their {trim:g} and {1 - trim:g} quantiles (Cole & Hernán 2008)")
    notes.append("the confidence intervals account for the estimation of the propensity score (sandwich of the "
                 "stacked estimating equations)" + ("; clustered by patient" if data.frame["patient_id"].duplicated().any() else ""))
    prop = pd.DataFrame(ps.probs, columns=data.names).assign(episode_id=data.frame["episode_id"].to_numpy())
    return WeightedComparison(table=table[_ESTIMATE_COLUMNS], balance=balance, weights=wframe,
                              propensity=prop[["episode_id", *data.names]], converged=ps.converged,
                              estimand=estimand, reference=reference, outcome=outcome, instrument=instrument,
                              origin=origin, day=day, alpha=alpha, covariates=tuple(data.covariates), notes=notes)
