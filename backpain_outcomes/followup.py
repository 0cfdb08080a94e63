"""Missing follow-up in the responder analysis: inverse-probability-of-observation weighting.

A responder analysis at a horizon needs a measurement near it, and episodes
without one are usually dropped (complete cases). When sicker patients stop
coming, the complete cases are the healthier ones and the responder rate is
too high. :func:`responder_rate` states the share missing, gives the
complete-case rate, and reweights the observed episodes by the inverse of
their estimated probability of being observed, from a logistic model of
observation given the covariates, the modality and the **last score before
the horizon window** (weakly penalised: a ridge of 0.1 on each standardised
coefficient, so that a small group observed entirely keeps finite weights) (inverse probability of censoring weighting, Robins,
Rotnitzky & Zhao 1995, J Am Stat Assoc 90:106-121; Seaman & White 2013, Stat
Methods Med Res 22:278-295). This removes the bias of drop-out that depends on
what was measured (missing at random), not of drop-out that depends on the
unseen outcome itself.

The interval accounts for the estimation of the observation model (sandwich
of the stacked estimating equations of the logistic model and the weighted
means; clustered by patient when a patient has several episodes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from . import style
from .adjusted_data import DEFAULT_COVARIATES, covariate_frame, design, drop_missing, outcome_at_day
from .checks import check_alpha, check_by, check_day, check_instrument, check_min_n, check_origin, check_positive
from .resolution import check_study
from .results import Result
from .vocabulary import label
from .weighting import ridge_logit

__all__ = ["responder_rate", "ResponderRate", "ipw_observed_means"]

ALL = "all"
#: ridge penalty of the observation model on each standardised coefficient (a weak normal prior, SD about 3, on
#: each log-odds ratio): keeps the fit finite when a small group is always or never observed
RIDGE = 0.1


def ipw_observed_means(y, observed, X, prob, groups, cluster=None, beta=None, ridge=0.0):
    """Hájek means of ``y`` over the observed episodes weighted by 1/``prob``, per group, with sandwich covariance.

    Stacks the (ridge-penalised) logistic score
    :math:`x_i (R_i - \\pi_i) - \\lambda \\beta / n` (no penalty on the
    intercept, the first column of ``X``) and
    :math:`1\\{G_i=g\\} R_i (y_i - \\mu_g)/\\pi_i` for each mask in ``groups``;
    ``y`` may be NaN where not observed.

    Returns
    -------
    (means, covariance)
    """
    n, p = X.shape
    r = observed.astype(float)
    yy = np.where(observed, y, 0.0)
    w = np.where(observed, 1.0 / prob, 0.0)
    m = len(groups)
    pen = np.r_[0.0, np.full(max(p - 1, 0), ridge)][:p]
    mu = np.array([np.sum(gm * w * yy) / np.sum(gm * w) for gm in groups])
    psi = np.zeros((n, p + m))
    psi[:, :p] = X * (r - prob)[:, None] - (pen * (beta if beta is not None else np.zeros(p)))[None, :] / n
    bread = np.zeros((p + m, p + m))
    bread[:p, :p] = (X * (prob * (1 - prob))[:, None]).T @ X / n + np.diag(pen) / n
    for j, gm in enumerate(groups):
        res = gm * w * (yy - mu[j])
        psi[:, p + j] = res
        bread[p + j, p + j] = np.sum(gm * w) / n
        bread[p + j, :p] = (X * (res * (1 - prob))[:, None]).sum(0) / n  # d w / d gamma = -w (1 - pi) x
    if cluster is not None:
        codes = pd.factorize(cluster)[0]
        s = np.zeros((codes.max() + 1, p + m))
        np.add.at(s, codes, psi)
    else:
        s = psi
    try:
        inv = np.linalg.inv(bread)
    except np.linalg.LinAlgError:
        return mu, np.full((m, m), np.nan)
    cov = inv @ (s.T @ s / n) @ inv.T / n
    return mu, cov[p:, p:]


class ResponderRate(Result):
    """Result of :func:`responder_rate`.

    Attributes
    ----------
    table : DataFrame
        One row for all episodes (``group`` = ``"all"``) and one per level of
        ``by``: ``group``, ``n`` (episodes in the population), ``n_observed``,
        ``share_missing``, ``rate_complete_case``, ``cc_ci_low``,
        ``cc_ci_high`` (Wilson), ``rate_weighted``, ``se``, ``ci_low``,
        ``ci_high`` (sandwich), ``difference`` (weighted - complete case).
    model : DataFrame
        The observation model: ``term``, ``odds_ratio``, ``ci_low``,
        ``ci_high``, ``p_value`` (numeric covariates per SD).
    weights : DataFrame
        ``episode_id``, ``group``, ``observed``, ``probability`` (of being
        observed), ``weight`` (1/probability for observed episodes, else 0).
    converged : bool
    day, window, alpha : float
    instrument, origin : str
    by : str or None
    notes : list of str
    """


    def _parts(self):
        t = self.table.assign(group=self.table["group"].map(lambda g: g if g == ALL else label(g)))
        show = t[["group", "n", "n_observed", "share_missing", "rate_complete_case", "rate_weighted", "ci_low",
                  "ci_high", "difference"]]
        return (f"Responders at day {self.day:g} with missing follow-up ({self.instrument.upper()})", list(self.notes),
                {"Responder rates": show, "Observation model (odds ratios)": self.model})

    def plot(self, ax=None):
        """Complete-case and weighted responder rates per group with their CIs and n per row."""
        t = self.table.reset_index(drop=True)
        ax = style.new_axes(ax, figsize=(7.5, 0.5 * len(t) + 1.9))
        y = np.arange(len(t))[::-1]
        names = ["All episodes" if g == ALL else label(g) for g in t["group"]]
        ax.errorbar(t["rate_complete_case"], y + 0.12, xerr=[t["rate_complete_case"] - t["cc_ci_low"],
                    t["cc_ci_high"] - t["rate_complete_case"]], fmt="o", mfc="white",
                    color=style.OKABE_ITO["vermillion"], capsize=3, label="complete cases")
        ax.errorbar(t["rate_weighted"], y - 0.12, xerr=[t["rate_weighted"] - t["ci_low"],
                    t["ci_high"] - t["rate_weighted"]], fmt="o", color="black", capsize=3,
                    label="weighted for missing follow-up")
        ax.set_yticks(y, names, fontsize=style.TICK_SIZE)
        ax.set_xlim(0, 1)
        style.n_column(ax, y, t["n"])
        ax.set_xlabel(f"Share responding at day {self.day:g} ({style.ci_text(self.alpha)})", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Group", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        style.legend(ax, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
        return ax


def _last_score_before(study, instrument, origin, before):
    """Per episode: its last score before day ``before`` (else its baseline) and its baseline day."""
    af = study.analysis_frame(instrument, origin=origin, include_baseline=True)
    first = af.groupby("episode_id", sort=False).agg(baseline_day=("day", "first"), baseline=("score", "first"))
    early = af[af["day"] < before].groupby("episode_id", sort=False)["score"].last()
    first["last_score"] = early.reindex(first.index).fillna(first["baseline"])
    return first[["baseline_day", "last_score"]]


def _observation_model(X, observed, x_names, alpha):
    """Weakly penalised logistic model of being observed: (probabilities, beta, model table, converged, notes)."""
    notes = []
    try:
        beta, info, converged, _ = ridge_logit(X, observed.astype(float), RIDGE)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"the model of being observed could not be fitted ({err}); drop covariates or merge "
                         "groups") from err
    if not converged:
        notes.append("the model of being observed did not converge in 100 Newton steps; its weights may be extreme")
    prob = 1 / (1 + np.exp(-np.clip(X @ beta, -35, 35)))
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    z = stats.norm.ppf(1 - alpha / 2)
    model = pd.DataFrame({"term": x_names, "odds_ratio": np.exp(beta), "ci_low": np.exp(beta - z * se),
                          "ci_high": np.exp(beta + z * se), "p_value": 2 * stats.norm.sf(np.abs(beta / se))})
    return prob, beta, model, converged, notes


def _population(study, instrument, day, origin, window, covariates, by, notes):
    """Episodes entered by ``day`` with outcome, observation flag, covariates, last score and group."""
    out, what = outcome_at_day(study, instrument, day, origin, window, "responder", None)
    frame = covariate_frame(study, covariates, instrument).merge(out, on="episode_id", how="inner")
    if by is not None and by not in frame:
        frame[by] = study.episodes.set_index("episode_id")[by].reindex(frame["episode_id"]).to_numpy()
    early = _last_score_before(study, instrument, origin, day - window)
    frame = frame.merge(early, left_on="episode_id", right_index=True, how="inner")
    late = frame["baseline_day"] > day
    if late.any():
        notes.append(f"{int(late.sum())} episode(s) entered after day {day:g} and are not in the population")
    frame = frame[~late]
    unknown = frame["modality"] == "unknown"
    if unknown.any() and by == "modality":
        notes.append(f"{int(unknown.sum())} episode(s) of unknown treatment status form their own group")
    notes.append(f"outcome: {what}")
    frame, used = drop_missing(frame, list(covariates), notes, instrument)
    return frame.reset_index(drop=True), used


def responder_rate(study, instrument: str = "nrs", day: float = 42, by: str | None = "modality",
                   covariates=DEFAULT_COVARIATES, origin: str = "onset", window: float = 14, alpha: float = 0.05,
                   min_n: int = 5) -> ResponderRate:
    """Share of responders at ``day``: complete cases and weighted for missing follow-up.

    Parameters
    ----------
    study : Study
    instrument : str
    day : float
        Horizon (days since ``origin``); the population is every episode
        entered by ``day``.
    by : str or None
        A column of ``study.episodes`` (default ``"modality"``): one row per
        level with at least ``min_n`` episodes, besides the row of all episodes.
    covariates : list of str
        Covariates of the model of being observed (as in
        :func:`~backpain_outcomes.adjusted.weighted_comparison`); the levels
        of ``by`` and the last score before ``day - window`` are always added.
    origin : {"onset", "first_contact"}
    window : float
        A responder measurement lies within ``window`` days of ``day``.
    alpha : float
    min_n : int

    Returns
    -------
    ResponderRate

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> from backpain_outcomes.followup import responder_rate
    >>> res = responder_rate(bpo.load_study(bpo.example_path()), day=42)
    >>> res.table.loc[0, "group"], bool(0 < res.table.loc[0, "share_missing"] < 1)
    ('all', True)
    """
    check_study(study)
    instrument, day, origin = check_instrument(instrument), check_day(day), check_origin(origin)
    window, alpha, min_n = check_positive(window, "window"), check_alpha(alpha), check_min_n(min_n)
    if by is not None:
        by = check_by(by, [c for c in study.episodes.columns if c not in ("episode_id", "patient_id")])[0]
    notes: list[str] = []
    frame, used = _population(study, instrument, day, origin, window, covariates, by, notes)
    if len(frame) < min_n or frame["known"].sum() < min_n:
        raise ValueError(f"only {len(frame)} episode(s) entered by day {day:g}, {int(frame['known'].sum())} with a "
                         f"measurement within {window:g} days of it; fewer than min_n={min_n}")
    cols = used + ([by] if by is not None and by not in used else []) + ["last_score"]
    X, x_names, _, _, dnotes = design(frame, cols, instrument)
    x_names = [f"last {instrument.upper()} before day {day - window:g}" if n == "last_score" else n for n in x_names]
    observed = frame["known"].to_numpy(bool)
    if observed.all():
        prob, converged, X, beta = np.ones(len(frame)), True, np.empty((len(frame), 0)), np.zeros(0)
        model = pd.DataFrame(columns=["term", "odds_ratio", "ci_low", "ci_high", "p_value"])
        mnotes = ["every episode has a measurement near the horizon: no weighting is needed"]
    else:
        prob, beta, model, converged, mnotes = _observation_model(X, observed, x_names, alpha)
    notes += dnotes + mnotes
    rows = _rates(frame, by, observed, prob, X, beta, alpha, min_n, notes)
    share = 1 - observed.mean()
    notes.insert(0, f"{int((~observed).sum())} of {len(frame)} episodes ({share:.0%}) have no measurement within "
                    f"{window:g} days of day {day:g}; complete cases drop them, the weighted rate reweights the "
                    "observed episodes by 1/P(observed) given " + ", ".join(x_names[1:]))
    notes.append("the weighting corrects drop-out that depends on these variables (missing at random), not drop-out "
                 "that depends on the unseen outcome itself")
    weights = pd.DataFrame({"episode_id": frame["episode_id"],
                            "group": frame[by].astype(str).to_numpy() if by else ALL, "observed": observed,
                            "probability": prob, "weight": np.where(observed, 1 / prob, 0.0)})
    if observed.any() and (1 / prob[observed]).max() > 20:
        notes.append(f"{int((1 / prob[observed] > 20).sum())} observed episode(s) have weights above 20 "
                     "(probability of being observed below 0.05)")
    return ResponderRate(table=pd.DataFrame(rows), model=model, weights=weights, converged=converged, day=day,
                         window=window, alpha=alpha, instrument=instrument, origin=origin, by=by, notes=notes)


def _rates(frame, by, observed, prob, X, beta, alpha, min_n, notes):
    y = frame["y"].to_numpy(float)
    levels = [ALL]
    masks = [np.ones(len(frame), bool)]
    if by is not None:
        g = frame[by].astype(str).to_numpy()
        for lev in sorted(set(g)):
            if (g == lev).sum() >= min_n and (observed & (g == lev)).sum() >= 1:
                levels.append(lev)
                masks.append(g == lev)
            else:
                notes.append(f"{by} {lev}: fewer than min_n={min_n} episodes, no row of its own")
    cluster = frame["patient_id"].to_numpy() if frame["patient_id"].duplicated().any() else None
    mu, cov = ipw_observed_means(y, observed, X, prob, [m.astype(float) for m in masks], cluster, beta,
                                 RIDGE if len(beta) else 0.0)
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for j, (lev, m) in enumerate(zip(levels, masks)):
        k, n_obs = int(np.nansum(y[m & observed])), int((m & observed).sum())
        cc = k / n_obs if n_obs else np.nan
        lo, hi = proportion_confint(k, n_obs, alpha, method="wilson") if n_obs else (np.nan, np.nan)
        se = float(np.sqrt(cov[j, j])) if np.isfinite(cov[j, j]) and cov[j, j] >= 0 else np.nan
        rows.append({"group": lev, "n": int(m.sum()), "n_observed": n_obs, "share_missing": 1 - n_obs / m.sum(),
                     "rate_complete_case": cc, "cc_ci_low": lo, "cc_ci_high": hi, "rate_weighted": mu[j], "se": se,
                     "ci_low": max(0.0, mu[j] - z * se), "ci_high": min(1.0, mu[j] + z * se),
                     "difference": mu[j] - cc})
    return rows
