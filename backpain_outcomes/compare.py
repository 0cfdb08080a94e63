"""Modality comparisons at a horizon: adjusted differences, responders, hazard ratios.

For each modality against a reference (default untreated):

* **difference**: ANCOVA on the measurement nearest ``day`` (within
  ``window`` days; :func:`~backpain_outcomes.benchmarking.outcome_at_day`),
  adjusted for baseline score and chronicity (OLS, statsmodels); the classic
  analysis of a follow-up score (Vickers & Altman 2001, BMJ 323:1123).
* **responders**: improvement by the MCID of Ostelo et al. 2008 (points and
  30%) at that measurement; Wilson CI per group and Newcombe's hybrid score
  interval for the difference; NNT = 1 / difference where the difference's
  CI excludes 0.
* **hazard_ratio**: Cox model for time to resolution adjusted likewise
  (:func:`~backpain_outcomes.survival.cox_by_group`).

p-values are Holm-adjusted over all comparisons. Observational data give
adjusted associations, not causal effects.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from . import style
from .benchmarking import outcome_at_day
from .checks import (
    check_alpha,
    check_choice,
    check_day,
    check_instrument,
    check_min_n,
    check_modality,
    check_origin,
    check_positive,
)
from .resolution import time_to_resolution
from .results import Result
from .rules import DEFAULT_RULE, Resolution, as_rule
from .survival import cox_by_group
from .vocabulary import UNKNOWN, UNTREATED, instrument_label, label

__all__ = ["compare_modalities", "ModalityComparison", "ADJUST"]

#: Covariates the ANCOVA can adjust for.
ADJUST = ("baseline", "chronicity", "age")
_NAN_FIT = {"difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
#: Columns of :attr:`ModalityComparison.table`.
COLUMNS = ["modality", "reference", "difference", "ci_low", "ci_high", "p_value", "p_holm", "effect_size",
           "responders", "responder_rate", "responder_ci_low", "responder_ci_high", "responder_difference",
           "responder_diff_ci_low", "responder_diff_ci_high", "nnt", "hazard_ratio", "hr_ci_low", "hr_ci_high", "n",
           "n_reference", "note"]


class ModalityComparison(Result):
    """Result of :func:`compare_modalities`.

    Attributes
    ----------
    table : DataFrame
        One row per compared modality (machine codes): ``modality``,
        ``reference``, ``difference`` (adjusted mean difference in score at the
        horizon, negative = better), ``ci_low``, ``ci_high``, ``p_value``,
        ``p_holm``, ``effect_size`` (difference / SD of the outcome),
        ``responders``, ``responder_rate``, ``responder_ci_low``,
        ``responder_ci_high``, ``responder_difference`` (+
        ``responder_diff_ci_low``/``_high``, Newcombe), ``nnt``,
        ``hazard_ratio``, ``hr_ci_low``, ``hr_ci_high``, ``n``,
        ``n_reference``, ``note``.
    day, window : float
    instrument, reference, origin : str
    rule : Resolution
        Rule of the hazard ratios.
    notes : list of str
    """

    def __init__(self, table, day, window, instrument, reference, origin, alpha, rule, adjust, notes):
        self.table, self.day, self.window, self.instrument = table, day, window, instrument
        self.reference, self.origin, self.alpha, self.rule, self.adjust = reference, origin, alpha, rule, adjust
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        cols = ["modality", "difference", "ci_low", "ci_high", "p_holm", "responder_rate", "hazard_ratio", "n"]
        t = self.table[cols].assign(modality=self.table["modality"].map(label))
        return (f"Modalities vs {label(self.reference)}, {label(self.instrument)} at day {self.day:g}",
                [f"adjusted associations ({', '.join(self.adjust) or 'unadjusted'}); Holm-adjusted p-values; "
                 "observational data, not randomised comparisons", *self.notes],
                {"Comparisons": t})

    def plot(self, ax=None):
        """Forest plot of the adjusted differences with their CIs and n per row (modalities not compared left out)."""
        t = self.table[self.table["difference"].notna()].reset_index(drop=True)
        ax = style.new_axes(ax, figsize=(7.5, 0.45 * len(t) + 1.9))
        y = np.arange(len(t))[::-1]
        lo = (t["difference"] - t["ci_low"]).fillna(0)
        hi = (t["ci_high"] - t["difference"]).fillna(0)
        for yi, m, d, a, b in zip(y, t["modality"], t["difference"], lo, hi):
            ax.errorbar([d], [yi], xerr=[[a], [b]], fmt="o", color=style.colour(m), capsize=3)
        ax.axvline(0, color="grey", ls="--", lw=1)
        ax.set_yticks(y, [label(m) for m in t["modality"]], fontsize=style.TICK_SIZE)
        style.n_column(ax, y, t["n"])
        n_ref = int(t["n_reference"].iat[0]) if len(t) else 0
        ax.set_xlabel(f"Adjusted difference in {instrument_label(self.instrument)} at day {self.day:g}, "
                      f"{style.ci_text(self.alpha)}\nvs {label(self.reference)} (n = {n_ref}); negative = better",
                      fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Modality", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        return ax


def _check_adjust(adjust) -> tuple[str, ...]:
    items = (adjust,) if isinstance(adjust, str) else tuple(adjust or ())
    return tuple(check_choice(a, "adjust", ADJUST) for a in items)


def _groups(near, reference, min_n, notes):
    """Levels to compare (reference first) and the rows of the model; small and unknown groups noted."""
    unknown = near["modality"] == UNKNOWN
    if unknown.any():
        notes.append(f"{int(unknown.sum())} episode(s) with treatment status unknown were left out.")
    near = near[~unknown]
    counts = near["modality"].value_counts()
    if counts.get(reference, 0) < min_n:
        measured = ", ".join(f"{label(m)} ({n})" for m, n in counts.items()) or "none"
        advice = ""
        if reference == UNTREATED and unknown.any():
            advice = ("; episodes without sessions have treatment status unknown unless declared: "
                      "load_study(..., no_sessions='untreated'), an arm column or a 'no treatment' session row")
        raise ValueError(f"reference={reference!r}: {counts.get(reference, 0)} {label(reference).lower()} episode(s) "
                         f"were measured within the window around the horizon, fewer than min_n={min_n}; groups "
                         f"measured there: {measured}{advice}")
    if len(counts) < 2:
        raise ValueError(f"reference={reference!r}: only {label(reference).lower()} episodes were measured near the "
                         "horizon; there is no other group to compare with it")
    small = sorted(m for m, n in counts.items() if n < min_n)
    for m in small:
        notes.append(f"{label(m)}: only {counts[m]} episode(s) measured near the horizon, fewer than min_n={min_n}; "
                     "not compared.")
    levels = [reference, *sorted(m for m in counts.index if m != reference and m not in small)]
    return levels, small, near[near["modality"].isin(levels)], counts


def _ancova(near, levels, reference, adjust, alpha, notes):
    """Adjusted differences per level (dict of dicts); NaN with a note when the outcome leaves no test."""
    terms = [f"C(modality, Treatment({reference!r}))"]
    if "baseline" in adjust:
        terms.append("baseline")
    if "chronicity" in adjust and near["chronicity"].nunique() > 1:
        terms.append("C(chronicity)")
    if "age" in adjust:
        if near["age"].notna().all() and near["age"].nunique() > 1:
            terms.append("age")
        else:
            notes.append("age was not adjusted for: it is missing or constant for some episodes.")
    data = near.assign(modality=pd.Categorical(near["modality"], categories=levels))
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        fit = smf.ols("score ~ " + " + ".join(terms), data=data).fit()
        ci = fit.conf_int(alpha)
    names = {m: f"C(modality, Treatment({reference!r}))[T.{m}]" for m in levels[1:]}
    tss = float(((near["score"] - near["score"].mean()) ** 2).sum())
    rank = np.linalg.matrix_rank(fit.model.exog)
    if tss == 0:
        notes.append(f"every score at the horizon equals {near['score'].iat[0]:g}: the outcome does not vary, so "
                     "no difference can be tested (p-values and CIs are not given).")
        return {m: dict(_NAN_FIT) for m in names}
    if rank < fit.model.exog.shape[1] or fit.df_resid <= 0:
        notes.append("No ANCOVA: the design is singular or has no residual degrees of freedom (too few episodes "
                     "for the covariates); differences, p-values and CIs are not given.")
        return {m: dict(_NAN_FIT) for m in names}
    if fit.ssr <= 1e-12 * tss:
        notes.append("No ANCOVA test: the model fits every score exactly (no residual variation), so the "
                     "differences are given without p-values or CIs.")
        return {m: {**_NAN_FIT, "difference": fit.params[n]} for m, n in names.items()}
    for w in caught:
        notes.append(f"ANCOVA: {w.message}")
    return {m: {"difference": fit.params[n], "ci_low": ci.loc[n, 0], "ci_high": ci.loc[n, 1],
                "p_value": fit.pvalues[n]} for m, n in names.items()}


def _responders(g, ref, alpha):
    k, n = int(g["responder"].sum()), len(g)
    k_ref, n_ref = int(ref["responder"].sum()), len(ref)
    lo, hi = proportion_confint(k, n, alpha, method="wilson")
    d_lo, d_hi = confint_proportions_2indep(k, n, k_ref, n_ref, method="newcomb", alpha=alpha)
    rdiff = k / n - k_ref / n_ref
    return {"responders": k, "responder_rate": k / n, "responder_ci_low": lo, "responder_ci_high": hi,
            "responder_difference": rdiff, "responder_diff_ci_low": d_lo, "responder_diff_ci_high": d_hi,
            "nnt": 1 / rdiff if (d_lo > 0 or d_hi < 0) and rdiff else np.nan}


def comparison_rule(instrument: str) -> Resolution:
    """The default rule of the hazard ratios of :func:`compare_modalities`: the package's default rule for the
    NRS, otherwise an improvement of at least the instrument's MCID sustained over two visits."""
    return DEFAULT_RULE if instrument == "nrs" else Resolution(instrument, mcid=True, sustained=2)


def _hazard_ratios(study, rule, origin, reference, adjust, alpha, notes):
    cox = cox_by_group(time_to_resolution(study, rule, origin=origin), study, rule, by="modality",
                       reference=reference, adjust=[a for a in adjust if a != "age"], alpha=alpha)
    notes.extend(f"Hazard ratios: {n}" for n in cox.notes)
    return cox.table.set_index("level") if len(cox.table) else pd.DataFrame(
        columns=["hazard_ratio", "hr_ci_low", "hr_ci_high"])


def compare_modalities(study, instrument: str = "nrs", day: float = 42, reference: str = "untreated",
                       adjust=("baseline", "chronicity"), origin: str = "onset", window: float = 14,
                       rule: Resolution | str | None = None, alpha: float = 0.05,
                       min_n: int = 5) -> ModalityComparison:
    """Compare every modality with ``reference`` at ``day``.

    Parameters
    ----------
    study : Study
    instrument : str
        Any accepted spelling ("nrs", "NPRS", "Oswestry", ...).
    day : float
        Horizon (days since ``origin``).
    reference : str
        Comparator modality (default ``"untreated"``; "none" is accepted).
    adjust : sequence of {"baseline", "chronicity", "age"}
        Covariates of the ANCOVA (and of the Cox model, except age).
    origin : {"onset", "first_contact"}
    window : float
        Largest distance (days) between a measurement and the horizon.
    rule : Resolution or str, optional
        Rule for the hazard ratios (e.g. ``"nrs<=1 x2"``; default NRS <= 1 on
        two visits for NRS, else the instrument's MCID on two visits).
    alpha : float
        1 - confidence level.
    min_n : int
        Modalities with fewer episodes measured near the horizon are not
        compared (listed in ``notes``); a reference group this small is an error.

    Returns
    -------
    ModalityComparison

    Raises
    ------
    ValueError
        When fewer than ``min_n`` reference episodes were measured near the horizon.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> cmp = bpo.compare_modalities(bpo.load_study(bpo.example_path()))
    >>> "p_holm" in cmp.table and cmp.reference == "untreated"
    True
    """
    if not hasattr(study, "analysis_frame"):
        raise TypeError(f"study must be a Study (load_study or simulate_study), got {type(study).__name__}")
    instrument, day, origin = check_instrument(instrument), check_day(day), check_origin(origin)
    reference, adjust = check_modality(reference, "reference"), _check_adjust(adjust)
    window, alpha, min_n = check_positive(window, "window", allow_zero=True), check_alpha(alpha), check_min_n(min_n)
    rule = as_rule(rule) if rule is not None else comparison_rule(instrument)
    notes: list[str] = []
    near_all = outcome_at_day(study, instrument, day, origin, window)
    levels, small, near, counts = _groups(near_all, reference, min_n, notes)
    fits = _ancova(near, levels, reference, adjust, alpha, notes)
    sd = near["score"].std()
    hr = _hazard_ratios(study, rule, origin, reference, adjust, alpha, notes)
    ref = near[near["modality"] == reference]
    rows = []
    for m in [*levels[1:], *small]:
        g = near_all[near_all["modality"] == m]
        row = {"modality": m, "reference": reference, **_NAN_FIT, "effect_size": np.nan}
        if m in small:
            row["note"] = f"fewer than min_n={min_n} episodes measured near day {day:g}: not compared"
        else:
            fit = fits[m]
            row.update({**fit, "effect_size": fit["difference"] / sd if sd > 0 else np.nan,
                        **_responders(g, ref, alpha), "hazard_ratio": hr["hazard_ratio"].get(m, np.nan),
                        "hr_ci_low": hr["hr_ci_low"].get(m, np.nan), "hr_ci_high": hr["hr_ci_high"].get(m, np.nan),
                        "note": ""})
        rows.append({**row, "n": len(g), "n_reference": len(ref)})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    ok = table["p_value"].notna()
    if ok.any():
        table.loc[ok, "p_holm"] = multipletests(table.loc[ok, "p_value"], method="holm")[1]
    n_all = study.analysis_frame(instrument, origin=origin, include_baseline=True)["episode_id"].nunique()
    notes.insert(0, f"{len(near_all)} of {n_all} episodes had a measurement within {window:g} days of day {day:g}; "
                    "the others are not in the ANCOVA or the responder rates.")
    return ModalityComparison(table, day, window, instrument, reference, origin, alpha, rule, adjust, notes)
