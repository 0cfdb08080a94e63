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

import numpy as np
import pandas as pd
from scipy import stats

from .checks import check_alpha
from .cox import ADJUST, ENTRY_EPS, CoxFit, cox_by_group

__all__ = ["kaplan_meier", "km_at_days", "km_median", "risk_counts", "kaplan_meier_counts", "km_at_days_counts",
           "cox_by_group", "CoxFit", "ENTRY_EPS", "ADJUST"]


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


