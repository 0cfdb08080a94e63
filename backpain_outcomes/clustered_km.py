"""Kaplan-Meier over periods at risk that are not independent (several per patient), for
:func:`~backpain_outcomes.recurrence.recurrence`: the patient-clustered (infinitesimal-jackknife) variance of
log S (:func:`clustered_km_variance`; the formula is in :mod:`backpain_outcomes.recurrence`), the log-log
interval from a variance of log S, the estimate read at given days with robust and Greenwood intervals, and the
estimate from each patient's first period only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .survival import kaplan_meier

__all__ = ["clustered_km_variance", "loglog_interval", "recurrence_at_days", "first_period_estimates"]


def clustered_km_variance(time, event, cluster, day) -> np.ndarray:
    """Patient-clustered (infinitesimal-jackknife) variance of log S(day) of the Kaplan-Meier estimate.

    Parameters
    ----------
    time : array of float
        Event or censoring time (entry 0 for every period).
    event : array of bool
    cluster : array
        Patient of each period.
    day : float or list of float

    Returns
    -------
    ndarray
        Robust variance of :math:`\\log \\hat S` at each day (see the docstring
        of :mod:`backpain_outcomes.recurrence`); ``inf`` where :math:`\\hat S` is 0, 0 before the first
        event.

    Examples
    --------
    >>> # one period per patient: Greenwood, 1/(4*3) + 1/(3*2) = 0.25
    >>> float(clustered_km_variance([2, 3, 4, 5], [True, True, False, False], [1, 2, 3, 4], 3)[0])
    0.25
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    days = np.atleast_1d(np.asarray(day, float))
    t_ev = np.unique(time[event])
    n_risk = (time[None, :] >= t_ev[:, None]).sum(1).astype(float)
    d = np.array([(time[event] == t).sum() for t in t_ev], float)
    with np.errstate(divide="ignore"):
        jump = np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf)
        own = np.where(n_risk > d, 1 / (n_risk - d), np.inf)
    cum = np.r_[0.0, np.cumsum(jump)]
    codes = pd.factorize(pd.Series(cluster))[0]
    out = np.empty(len(days))
    for k, t in enumerate(days):
        if len(t_ev) and not np.isfinite(cum[np.searchsorted(t_ev, t, side="right")]):
            out[k] = np.inf
            continue
        upto = np.searchsorted(t_ev, np.minimum(time, t), side="right")  # event times <= min(time_i, t)
        infl = cum[upto]
        hit = event & (time <= t)
        infl[hit] -= own[np.searchsorted(t_ev, time[hit])]
        out[k] = float((np.bincount(codes, weights=infl) ** 2).sum())
    return out


def loglog_interval(surv, var_log, alpha):
    """Log-log interval of S from the variance of log S (as survival.kaplan_meier)."""
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where((surv > 0) & (surv < 1), z * np.sqrt(var_log) / np.log(np.where(surv > 0, surv, 0.5)),
                         np.nan)
        return surv ** np.exp(-inner), surv ** np.exp(inner)


def recurrence_at_days(km, days, time, event, cluster, alpha):
    """The cumulative recurrence at ``days`` with its patient-clustered and Greenwood log-log intervals and the
    numbers at risk and events (NaN beyond the last follow-up unless the curve reached 0)."""
    pos = np.searchsorted(km["time"].to_numpy(float), days, side="right") - 1
    surv = np.where(pos >= 0, km["survival"].to_numpy(float)[np.maximum(pos, 0)] if len(km) else 1.0, 1.0)
    beyond = days > (time.max() if len(time) else -np.inf)
    if len(km) and km["survival"].iloc[-1] == 0:
        beyond[:] = False
    surv = np.where(beyond, np.nan, surv)
    var_g = np.where(pos >= 0, km["se_log"].to_numpy(float)[np.maximum(pos, 0)] ** 2 if len(km) else 0.0, 0.0)
    var_r = clustered_km_variance(time, event, cluster, days)
    lo_r, hi_r = loglog_interval(surv, var_r, alpha)
    lo_g, hi_g = loglog_interval(surv, var_g, alpha)
    return pd.DataFrame({
        "day": days, "cumulative_recurrence": 1 - surv, "ci_low": 1 - hi_r, "ci_high": 1 - lo_r,
        "se": surv * np.sqrt(var_r), "se_greenwood": surv * np.sqrt(var_g),
        "ci_low_greenwood": 1 - hi_g, "ci_high_greenwood": 1 - lo_g,
        "n_at_risk": (time[None, :] >= days[:, None]).sum(1).astype(int),
        "n_events": (event[None, :] & (time[None, :] <= days[:, None])).sum(1).astype(int)})


def first_period_estimates(risk, days, alpha):
    """Kaplan-Meier over each patient's first period at risk (independent periods; Greenwood)."""
    first = risk.drop_duplicates("patient_id")
    time, event = first["time"].to_numpy(float), first["recurred"].to_numpy(bool)
    t = recurrence_at_days(kaplan_meier(time, event, alpha=alpha), days, time, event, first["patient_id"].to_numpy(), alpha)
    return pd.DataFrame({"first_period_recurrence": t["cumulative_recurrence"],
                         "first_ci_low": t["ci_low_greenwood"], "first_ci_high": t["ci_high_greenwood"]})
