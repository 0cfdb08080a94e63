"""Survival estimators with delayed entry: Kaplan-Meier and the Cox model.

An episode is at risk from its first measurement (delayed entry, left
truncation): the risk set at day *t* holds the episodes whose entry came
*before* *t* (``entry < t <= time``), the counting-process convention of R's
``survival`` package.

* :func:`kaplan_meier`: product-limit estimate, Greenwood variance and
  log-log interval, as ``survfit(Surv(entry, time, event) ~ 1,
  conf.type = "log-log")``; :func:`km_at_days` reads the step function at
  given days and :func:`km_median` gives the median and its interval.
* :func:`cox_by_group`: proportional-hazards model of time to resolution on a
  grouping factor, adjusted, fitted with statsmodels ``PHReg`` (Efron ties)
  and checked against R ``coxph``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg

from .checks import check_alpha, check_by, check_choice, check_modality
from .rules import as_rule
from .vocabulary import UNKNOWN, label

__all__ = ["kaplan_meier", "km_at_days", "km_median", "risk_counts", "kaplan_meier_counts", "km_at_days_counts",
           "cox_by_group", "CoxFit", "ENTRY_EPS", "ADJUST"]

#: PHReg counts a subject at risk at t when entry <= t; R's coxph (and :func:`kaplan_meier`)
#: use entry < t. Days are whole numbers, so this shift of the entries reproduces R exactly.
ENTRY_EPS = 1e-6
#: A log hazard ratio with a larger standard error is reported as not estimable (monotone likelihood).
MAX_LOG_SE = 10.0
#: Covariates :func:`cox_by_group` can adjust for.
ADJUST = ("baseline", "chronicity")


def _vector(values, name: str, kind=float) -> np.ndarray:
    arr = np.asarray(values, dtype=kind).ravel()
    if kind is float and np.isnan(arr).any():
        raise ValueError(f"{name} must not contain missing values")
    return arr


def kaplan_meier(time, event, entry=None, alpha: float = 0.05) -> pd.DataFrame:
    """Product-limit estimate with delayed entry, Greenwood SE and log-log CI.

    .. math::
        \\hat S(t) = \\prod_{t_j \\le t} (1 - d_j / n_j), \\qquad
        \\widehat{\\mathrm{Var}}\\{\\log \\hat S(t)\\} = \\sum_{t_j \\le t} \\frac{d_j}{n_j (n_j - d_j)}

    with :math:`n_j = \\#\\{i: \\mathrm{entry}_i < t_j \\le \\mathrm{time}_i\\}`. The
    log-log interval is :math:`\\hat S^{\\exp(\\pm z\\, \\mathrm{se}/\\log \\hat S)}`
    (Kalbfleisch & Prentice 2002; R ``conf.type = "log-log"``), missing where
    :math:`\\hat S` is 0 or 1.

    Parameters
    ----------
    time : array of float
        Event or censoring time.
    event : array of bool
        True for an event.
    entry : array of float, optional
        Entry time (default 0); must not be after ``time``.
    alpha : float
        1 - confidence level.

    Returns
    -------
    DataFrame with one row per distinct event time: ``time``, ``n_at_risk``,
    ``n_events``, ``n_censored``, ``survival``, ``se_log``, ``se``
    (Greenwood SE of S), ``surv_low``, ``surv_high``.

    Examples
    --------
    >>> km = kaplan_meier([2, 3, 3, 5], [True, True, False, True])
    >>> km["survival"].round(3).tolist()
    [0.75, 0.5, 0.0]
    """
    alpha = check_alpha(alpha)
    time = _vector(time, "time")
    event = _vector(event, "event", bool)
    entry = np.zeros_like(time) if entry is None else _vector(entry, "entry")
    if not len(time) == len(event) == len(entry):
        raise ValueError(f"time, event and entry must have the same length, got {len(time)}, {len(event)}, {len(entry)}")
    if np.any(entry > time):
        raise ValueError("entry must not be after time")
    return kaplan_meier_counts(risk_counts(time, event, entry), alpha=alpha)


def risk_counts(time, event, entry=None) -> pd.DataFrame:
    """Per-day counts behind a delayed-entry Kaplan-Meier estimate: its sufficient statistics.

    The estimate, its variance and the numbers at risk depend on the data only through how many
    episodes enter, resolve and are censored on each day, so counts of disjoint sets of episodes
    (partitions of a registry) add up to the counts of their union.

    Returns
    -------
    DataFrame sorted by ``day``: ``day``, ``entries``, ``events``, ``censored`` (integers).

    Examples
    --------
    >>> risk_counts([2, 3, 3], [True, True, False], [0, 1, 1]).values.tolist()
    [[0.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0], [2.0, 0.0, 1.0, 0.0], [3.0, 0.0, 1.0, 1.0]]
    """
    time = np.asarray(time, float).ravel()
    event = np.asarray(event, bool).ravel()
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, float).ravel()
    days, inv = np.unique(np.r_[entry, time], return_inverse=True)
    n = len(time)
    k = len(days)
    return pd.DataFrame({"day": days, "entries": np.bincount(inv[:n], minlength=k),
                         "events": np.bincount(inv[n:][event], minlength=k),
                         "censored": np.bincount(inv[n:][~event], minlength=k)})


def _count_arrays(counts: pd.DataFrame):
    """Distinct days (sorted) and the entries, events and censorings on each, as arrays."""
    day = counts["day"].to_numpy(float)
    arrays = [counts[k].to_numpy(np.int64) for k in ("entries", "events", "censored")]
    if len(day) > 1 and not (np.diff(day) > 0).all():  # unsorted, or a day on several rows: add them up
        day, inv = np.unique(day, return_inverse=True)
        arrays = [np.bincount(inv, weights=a, minlength=len(day)).astype(np.int64) for a in arrays]
    return (day, *arrays)


def kaplan_meier_counts(counts: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`kaplan_meier` from per-day counts (:func:`risk_counts`, or their sum over partitions).

    Same output, to the last bit, as :func:`kaplan_meier` on the episodes behind the counts.
    """
    alpha = check_alpha(alpha)
    day, entries, events, cens = _count_arrays(counts)
    entered = np.cumsum(entries) - entries  # entries before each day (entry < t)
    exited = np.cumsum(events + cens) - events - cens  # exits before each day (time < t)
    at = events > 0
    t_ev = day[at]
    n_risk = entered[at] - exited[at]
    d = events[at].astype(float)
    cum_cens = np.r_[0, np.cumsum(cens)]
    pos = np.searchsorted(day, np.r_[t_ev, np.inf], side="left")
    c_ = np.diff(cum_cens[pos])
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_log = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se_log = np.sqrt(var_log)
        z = stats.norm.ppf(1 - alpha / 2)
        inner = np.where((surv > 0) & (surv < 1), z * se_log / np.log(np.where(surv > 0, surv, 0.5)), np.nan)
        low = surv ** np.exp(-inner)
        high = surv ** np.exp(inner)
    se = np.where(surv > 0, surv * np.where(np.isfinite(se_log), se_log, 0), np.nan)
    return pd.DataFrame({"time": t_ev, "n_at_risk": n_risk.astype(int), "n_events": d.astype(int),
                         "n_censored": c_.astype(int), "survival": surv, "se_log": se_log,
                         "se": se, "surv_low": low, "surv_high": high})


def km_at_days(km: pd.DataFrame, day, time, entry, event) -> pd.DataFrame:
    """Values of a :func:`kaplan_meier` step function at given days, as cumulative resolution.

    Parameters
    ----------
    km : DataFrame
        Output of :func:`kaplan_meier` on ``time``, ``event``, ``entry``.
    day : float or list of float
    time, entry, event : arrays
        The data behind ``km`` (for the numbers at risk and the last follow-up).

    Returns
    -------
    DataFrame with ``day``, ``cumulative_resolution`` (1 - S), ``ci_low``,
    ``ci_high``, ``se``, ``se_log``, ``n_at_risk`` (entry < day <= time) and
    ``n_events`` (events up to the day). Every value is missing after the
    last follow-up, where the estimate is not defined, unless every episode
    had resolved by then (survival reached 0, which stays 0).

    Examples
    --------
    >>> t, e = np.array([2.0, 3, 3, 5]), np.array([True, True, False, False])
    >>> km_at_days(kaplan_meier(t, e), [3, 9], t, np.zeros(4), e)["cumulative_resolution"].tolist()
    [0.5, nan]
    >>> e = np.ones(4, bool)  # the last episode resolves at day 5: S = 0 from then on
    >>> km_at_days(kaplan_meier(t, e), [3, 9], t, np.zeros(4), e)["cumulative_resolution"].tolist()
    [0.75, 1.0]
    """
    return km_at_days_counts(km, day, risk_counts(time, event, entry))


def km_at_days_counts(km: pd.DataFrame, day, counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`km_at_days` from the per-day counts behind ``km`` (:func:`risk_counts`)."""
    days = np.atleast_1d(np.asarray(day, float))
    cday, entries, events, cens = _count_arrays(counts)
    pos = np.searchsorted(km["time"].to_numpy(), days, side="right") - 1

    def pick(col, fill):
        vals = km[col].to_numpy(float)
        if len(vals) == 0:
            return np.full(len(days), fill, dtype=float)
        return np.where(pos >= 0, vals[np.maximum(pos, 0)], fill)
    exits = events + cens
    last = cday[exits > 0].max() if (exits > 0).any() else -np.inf
    reached_zero = len(km) > 0 and float(km["survival"].iloc[-1]) == 0.0  # S reached 0 stays 0
    beyond = days > last if not reached_zero else np.zeros(len(days), bool)
    surv = np.where(beyond, np.nan, pick("survival", 1.0))
    out = pd.DataFrame({"day": days, "cumulative_resolution": 1 - surv,
                        "ci_low": np.where(beyond, np.nan, 1 - pick("surv_high", np.nan)),
                        "ci_high": np.where(beyond, np.nan, 1 - pick("surv_low", np.nan)),
                        "se": np.where(beyond, np.nan, pick("se", 0.0)),
                        "se_log": np.where(beyond, np.nan, pick("se_log", 0.0))})
    before = np.searchsorted(cday, days, side="left")  # days strictly before each day
    cum_entries, cum_exits = np.r_[0, np.cumsum(entries)], np.r_[0, np.cumsum(exits)]
    out["n_at_risk"] = cum_entries[before] - cum_exits[before]
    out["n_events"] = np.r_[0, np.cumsum(events)][np.searchsorted(cday, days, side="right")]
    return out


def km_median(km: pd.DataFrame) -> tuple[float, float, float]:
    """Median time and its CI from a :func:`kaplan_meier` table (where the curves cross 0.5, as R).

    Examples
    --------
    >>> km_median(kaplan_meier([2, 3, 3, 5], [True, True, False, True]))
    (3.0, 2.0, nan)
    """
    def first_below(col):
        hit = km.loc[km[col] <= 0.5, "time"]
        return float(hit.iloc[0]) if len(hit) else np.nan
    return first_below("survival"), first_below("surv_low"), first_below("surv_high")


@dataclass(frozen=True)
class CoxFit:
    """A Cox model of time to resolution on one grouping factor (:func:`cox_by_group`).

    Unpacks as ``table, params, cov = cox_by_group(...)``.

    Attributes
    ----------
    table : DataFrame
        One row per non-reference level: ``level``, ``label``, ``reference``,
        ``hazard_ratio``, ``hr_ci_low``, ``hr_ci_high``, ``p_value``, ``n``,
        ``events``. Empty when the model could not be fitted (``notes`` says why).
    params : Series
        Log hazard ratios of the levels against the reference.
    cov : DataFrame
        Their covariance.
    notes : list of str
        Why rows were left out, and every warning of the fit, in plain sentences.
    formula : str
    n, events : int
        Episodes and resolutions in the model.
    """

    table: pd.DataFrame
    params: pd.Series
    cov: pd.DataFrame
    notes: list = field(default_factory=list)
    formula: str = ""
    n: int = 0
    events: int = 0

    def __iter__(self):
        return iter((self.table, self.params, self.cov))

    @property
    def fitted(self) -> bool:
        """Whether the model was fitted (``table`` is not empty)."""
        return len(self.table) > 0


_COX_COLUMNS = ["level", "label", "reference", "hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "n", "events"]


def _empty_fit(notes, formula="", n=0, events=0) -> CoxFit:
    return CoxFit(pd.DataFrame(columns=_COX_COLUMNS), pd.Series(dtype=float), pd.DataFrame(), list(notes),
                  formula, n, events)


def _cox_frame(events, study, rule, by, reference, notes):
    """At-risk episodes with the baseline covariate; unknown treatment status left out (noted)."""
    ev = getattr(events, "table", events)
    if not isinstance(ev, pd.DataFrame):
        raise TypeError(f"events must be the result of time_to_resolution or its table, got {type(events).__name__}")
    missing = {"episode_id", "entry", "day", "resolved", "at_risk"} - set(ev.columns)
    if missing:
        raise ValueError(f"events lacks the column(s) {', '.join(sorted(missing))}; pass time_to_resolution(...)")
    check_by(by, ev.columns)
    if by == "modality":
        reference = check_modality(reference, "reference")
    r = ev[ev["at_risk"].to_numpy(bool)].copy()
    unknown = (r[by].astype(str) == UNKNOWN).to_numpy()
    if unknown.any():
        notes.append(f"{int(unknown.sum())} episode(s) with {by} '{UNKNOWN}' were left out of the Cox model.")
        r = r[~unknown]
    if "baseline" not in r:
        base = study.episodes.set_index("episode_id")[f"baseline_{rule.instrument}"]
        r["baseline"] = r["episode_id"].map(base).to_numpy(float)
    r[by] = r[by].astype(str)
    return r, reference


def cox_by_group(events, study, rule, by: str = "modality", reference: str = "untreated",
                 adjust=ADJUST, alpha: float = 0.05) -> CoxFit:
    """Cox model of time to resolution on a grouping factor, adjusted, with delayed entry.

    .. math:: h_i(t) = h_0(t) \\exp(\\beta_{g(i)} + \\gamma^\\top x_i)

    fitted by partial likelihood (Efron ties) on the episodes at risk, each
    entering at its first measurement (``entry < t``, as R's ``coxph``).

    Parameters
    ----------
    events : TimeToResolution or DataFrame
        The result of :func:`~backpain_outcomes.resolution.time_to_resolution`
        (or its ``table``), possibly restricted to some episodes.
    study : Study or None
        Source of the baseline scores (not needed when ``events`` has a
        ``baseline`` column, as the table of ``time_to_resolution`` has).
    rule : Resolution or str
        The rule behind ``events`` (its instrument gives the baseline covariate).
    by : str
        Grouping column of ``events`` (``"modality"``, ``"chronicity"``,
        ``"treatment_status"``, ...). Rows whose level is ``unknown`` are left
        out (noted).
    reference : str
        Comparator level (default ``"untreated"``).
    adjust : sequence of {"baseline", "chronicity"}
        Covariates; chronicity is dropped when it has one level or is ``by``.
    alpha : float
        1 - confidence level of the hazard-ratio intervals.

    Returns
    -------
    CoxFit
        Unpacks as ``(table, params, cov)``; ``notes`` holds the reasons for
        an empty fit and the warnings statsmodels raised while fitting.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> from backpain_outcomes.resolution import time_to_resolution
    >>> study = bpo.load_study(bpo.example_path())
    >>> fit = cox_by_group(time_to_resolution(study), study, "nrs<=1 x2")
    >>> fit.table["reference"].unique().tolist()
    ['untreated']
    """
    rule = as_rule(rule)
    alpha = check_alpha(alpha)
    adjust = (adjust,) if isinstance(adjust, str) else tuple(adjust or ())
    for a in adjust:
        check_choice(a, "adjust", ADJUST)
    notes: list[str] = []
    r, reference = _cox_frame(events, study, rule, by, reference, notes)
    levels = [reference, *sorted(lv for lv in pd.unique(r[by]) if lv != reference)]
    counts = r.groupby(by).size().reindex(levels, fill_value=0)
    n_ev = int(r["resolved"].sum())
    if counts[reference] == 0:
        return _empty_fit(notes + [f"No Cox model: no {label(reference)} episodes at risk (the reference level)."],
                          n=len(r), events=n_ev)
    if len(levels) < 2 or n_ev < 2:
        return _empty_fit(notes + [f"No Cox model: {len(levels)} level(s) of {by} and {n_ev} resolution(s); "
                                   "at least two of each are needed."], n=len(r), events=n_ev)
    r[by] = pd.Categorical(r[by], categories=levels)
    terms = [f"C({by}, Treatment({reference!r}))"]
    if "baseline" in adjust:
        terms.append("baseline")
    if "chronicity" in adjust and by != "chronicity" and "chronicity" in r and r["chronicity"].nunique() > 1:
        terms.append("C(chronicity)")
    formula = "day ~ " + " + ".join(terms)
    return _fit_cox(r, by, reference, formula, counts, alpha, notes)


def _fit_cox(r, by, reference, formula, counts, alpha, notes) -> CoxFit:
    n_ev = int(r["resolved"].sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = PHReg.from_formula(formula, r, status=r["resolved"].astype(int).to_numpy(),
                                       entry=r["entry"].to_numpy(float) + ENTRY_EPS, ties="efron")
            fit = model.fit()
            cov_all = fit.cov_params()
        except (np.linalg.LinAlgError, ValueError) as err:
            return _empty_fit(notes + [f"The Cox model could not be fitted ({err})."], formula, len(r), n_ev)
    for w in caught:
        notes.append(f"Cox model ({by}): {w.message}")
    names = model.exog_names
    idx = [i for i, n in enumerate(names) if n.startswith(f"C({by}")]
    level_names = [names[i].split("[T.")[1].rstrip("]") for i in idx]
    params = pd.Series(np.asarray(fit.params)[idx], index=level_names)
    cov = pd.DataFrame(np.asarray(cov_all)[np.ix_(idx, idx)], index=params.index, columns=params.index)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    beta = params.to_numpy()
    ev_counts = r.groupby(by, observed=False)["resolved"].sum()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # degenerate levels are noted below
        table = pd.DataFrame({"level": params.index, "label": [label(x) for x in params.index], "reference": reference,
                              "hazard_ratio": np.exp(beta), "hr_ci_low": np.exp(beta - z * se),
                              "hr_ci_high": np.exp(beta + z * se), "p_value": 2 * stats.norm.sf(np.abs(beta / se)),
                              "n": counts.reindex(params.index).to_numpy(int),
                              "events": ev_counts.reindex(params.index).to_numpy(int)})
    ci = table[["hazard_ratio", "hr_ci_low", "hr_ci_high"]].to_numpy(float)
    bad = (~np.isfinite(beta) | ~np.isfinite(se) | (se > MAX_LOG_SE) | ~np.isfinite(ci).all(axis=1)
           | (ci <= 0).any(axis=1) | (table["events"].to_numpy() == 0))
    for lv in table.loc[bad, "level"]:
        notes.append(f"Hazard ratio of {label(lv)} against {label(reference)} is not estimable "
                     "(no or too few resolutions in one of the groups: the partial likelihood has no finite maximum).")
    table.loc[bad, ["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]] = np.nan
    return CoxFit(table, params, cov, notes, formula, len(r), n_ev)
