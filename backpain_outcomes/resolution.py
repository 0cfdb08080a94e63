"""When does an episode resolve? Rules, event days, and Kaplan-Meier curves.

Conventions (DESIGN.md, "Time and event conventions"):

* A resolution happens on the day of the **first** measurement of the first
  run of ``sustained`` consecutive measurements of the instrument that meet
  the rule. Without a complete run the episode is censored at its last
  measurement.
* An episode is at risk from its first measurement (delayed entry, left
  truncation): the risk set at day *t* holds the episodes whose first
  measurement came before *t* and that have not resolved or been censored.
* Episodes resolved at entry and episodes with a single measurement carry no
  information on the time to resolution: they leave the risk set and are
  counted on the result.
* Cumulative resolution is ``1 - S(t)``, with ``S`` the product-limit
  (Kaplan-Meier) estimate, Greenwood's variance and a log-log confidence
  interval, as ``survival::survfit(Surv(entry, time, event) ~ 1,
  conf.type = "log-log")`` in R.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._display import ResultMixin
from .exceptions import SmallSampleWarning
from .rules import DEFAULT_RULE, Resolution, as_rule
from .survival import kaplan_meier, km_at_days, km_median

__all__ = ["Resolution", "as_rule", "time_to_resolution", "resolution_curve", "ResolutionCurve", "DEFAULT_RULE",
           "episode_events"]

def episode_events(frame: pd.DataFrame, rule: Resolution, relapse: str = "ignore") -> pd.DataFrame:
    """Event day per episode from a long frame sorted by episode and day.

    ``frame`` needs ``episode_id``, ``day``, ``score``. Returns one row per
    episode with ``entry``, ``day``, ``resolved``, ``status``,
    ``n_measurements``, ``relapsed``, ``relapse_day``.

    ``relapse="ignore"`` uses the first complete run; ``"undo"`` uses only a
    run that lasts to the last measurement (a later measurement that fails
    the rule undoes an earlier resolution).
    """
    if relapse not in ("ignore", "undo"):
        raise ValueError("relapse must be 'ignore' or 'undo'")
    ep = frame["episode_id"].to_numpy()
    day = frame["day"].to_numpy(float)
    score = frame["score"].to_numpy(float)
    n = len(ep)
    start = np.r_[True, ep[1:] != ep[:-1]] if n else np.zeros(0, bool)
    gid = np.cumsum(start) - 1
    first_idx = np.flatnonzero(start)
    last_idx = np.r_[first_idx[1:] - 1, n - 1] if n else np.zeros(0, int)
    baseline = score[first_idx][gid]
    meets = rule.meets(score, baseline)
    k = int(rule.sustained)
    # length of the run of meeting measurements ending at each row
    idx = np.arange(n)
    barrier = np.where(~meets, idx, np.where(start, idx - 1, -1))
    last_barrier = np.maximum.accumulate(barrier) if n else barrier
    run = np.where(meets, idx - last_barrier, 0)
    complete = run >= k
    n_ep = len(first_idx)
    big = np.iinfo(np.int64).max
    first_complete = np.full(n_ep, big)
    np.minimum.at(first_complete, gid[complete], idx[complete])
    # relapse: first failing measurement after the first complete run
    fail_after = ~meets & (idx > first_complete[gid])
    first_fail = np.full(n_ep, big)
    np.minimum.at(first_fail, gid[fail_after], idx[fail_after])
    relapsed = first_fail < big
    if relapse == "undo":
        # a run that reaches the last measurement and is complete
        last_run = run[last_idx]
        has = last_run >= k
        event_row = np.where(has, last_idx - last_run + 1, big)
    else:
        has = first_complete < big
        event_row = np.where(has, first_complete - k + 1, big)
    n_meas = last_idx - first_idx + 1
    entry = day[first_idx]
    ev_day = np.where(has, day[np.minimum(event_row, n - 1)], day[last_idx])
    at_entry = has & (event_row == first_idx)
    if rule.uses_baseline and (rule.min_relative_drop is not None or rule.mcid_mode in ("both", "percent")):
        zero_base = score[first_idx] <= 0
    else:
        zero_base = np.zeros(n_ep, bool)
    status = np.select(
        [zero_base, n_meas < 2, at_entry, has],
        ["baseline 0: relative change undefined", "single measurement", "resolved at entry", "resolved"],
        "censored: no sustained run by last measurement")
    return pd.DataFrame({
        "episode_id": ep[first_idx], "entry": entry, "day": ev_day,
        "resolved": has & ~at_entry & ~zero_base & (n_meas >= 2),
        "at_risk": ~at_entry & ~zero_base & (n_meas >= 2),
        "status": status, "n_measurements": n_meas,
        "relapsed": relapsed & (relapse == "ignore"),
        "relapse_day": np.where(relapsed & (relapse == "ignore"), day[np.minimum(first_fail, n - 1)], np.nan),
    })


def time_to_resolution(study, rule: Resolution = DEFAULT_RULE, origin: str = "onset",
                       relapse: str = "ignore") -> pd.DataFrame:
    """Time to resolution, one row per episode with measurements of the rule's instrument.

    Parameters
    ----------
    study : Study
    rule : Resolution
    origin : {"onset", "first_contact"}
        Day 0. With ``"onset"`` every episode needs an onset date.
    relapse : {"ignore", "undo"}
        Whether a later measurement that fails the rule undoes a resolution.

    Returns
    -------
    DataFrame with ``episode_id``, ``modality``, ``chronicity``, ``entry``
    (day of the first measurement), ``day`` (event or censoring day),
    ``resolved`` (event flag), ``censored_reason`` (empty for events),
    ``at_risk`` (False for episodes resolved at entry or with a single
    measurement), ``n_measurements``, ``relapsed``, ``relapse_day``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> t = bpo.time_to_resolution(study, bpo.Resolution("nrs", max_score=1, sustained=2))
    >>> set(t["censored_reason"]) >= {""}
    True
    """
    frame = study.analysis_frame(rule.instrument, origin=origin, include_baseline=True)
    ev = episode_events(frame, rule, relapse=relapse)
    ep = study.episodes.set_index("episode_id")
    ev.insert(1, "modality", ev["episode_id"].map(ep["modality"]).to_numpy())
    ev.insert(2, "chronicity", ev["episode_id"].map(ep["chronicity"].astype(str)).to_numpy())
    ev["censored_reason"] = np.where(ev["resolved"], "", ev["status"])
    return ev.drop(columns="status")[["episode_id", "modality", "chronicity", "entry", "day", "resolved",
                                      "censored_reason", "at_risk", "n_measurements", "relapsed",
                                      "relapse_day"]]


class ResolutionCurve(ResultMixin):
    """Cumulative resolution per group (1 - Kaplan-Meier with delayed entry).

    Attributes
    ----------
    table : DataFrame
        The ``by`` column(s), ``day``, ``cumulative_resolution``, ``ci_low``,
        ``ci_high``, ``n_at_risk``, ``n_events`` (``n_events`` counts the
        events *on* that day when ``days`` is None, else events up to it).
    medians : DataFrame
        Per group: ``median_days``, ``median_ci_low``, ``median_ci_high``,
        ``n``, ``events``, ``resolved_at_entry``, ``single_measurement``.
    events : DataFrame
        The per-episode table from :func:`time_to_resolution`.
    warnings : list of str
    """

    def __init__(self, table, medians, events, rule, by, origin, notes):
        self.table, self.medians, self.events = table, medians, events
        self.rule, self.by, self.origin, self.warnings = rule, by, origin, notes

    def _parts(self):
        lines = [f"rule: {self.rule!r}", f"origin: {self.origin}", *self.warnings]
        return "Cumulative resolution", lines, {"Median time to resolution": self.medians}

    def plot(self, ax=None, claimed: float | None = None, at_risk_days=(0, 42, 84, 182, 365)):
        """Step curves with CI bands, number at risk below, and a dashed line at ``claimed``."""
        from .plotting import plot_resolution
        return plot_resolution(self, ax=ax, claimed=claimed, at_risk_days=at_risk_days)


def _groups(ev: pd.DataFrame, by):
    if by is None:
        return [((), ev)]
    by = [by] if isinstance(by, str) else list(by)
    return [((k,) if not isinstance(k, tuple) else k, g) for k, g in ev.groupby(by, sort=True, observed=True)]


def resolution_curve(study, rule: Resolution = DEFAULT_RULE, by=None, origin: str = "onset",
                     days=None, relapse: str = "ignore", alpha: float = 0.05,
                     min_at_risk: int = 10) -> ResolutionCurve:
    """Cumulative resolution (1 - KM) with Greenwood variance and log-log CI.

    Parameters
    ----------
    study : Study
    rule : Resolution
    by : str or list of str, optional
        ``"modality"``, ``"chronicity"`` or both.
    origin : {"onset", "first_contact"}
        With ``"onset"`` the estimator is left-truncated (delayed entry at the
        first measurement): patients seen weeks after onset are not counted as
        if watched since onset.
    days : sequence of int, optional
        Days to report; default every event day.
    relapse : {"ignore", "undo"}
    alpha : float
        1 - confidence level.
    min_at_risk : int
        Warn when fewer episodes are at risk at the first event day.

    Returns
    -------
    ResolutionCurve

    Notes
    -----
    Episodes resolved at entry, with a single measurement or with a baseline
    of 0 under a relative rule leave the risk set and are counted in
    ``medians``. Checked against statsmodels ``SurvfuncRight(entry=)`` and R
    ``survfit(Surv(entry, time, event) ~ 1, conf.type="log-log")``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> curve = bpo.resolution_curve(study, by="modality", days=[42, 84])
    >>> list(curve.table.columns)[:3]
    ['modality', 'day', 'cumulative_resolution']
    """
    ev = time_to_resolution(study, rule, origin=origin, relapse=relapse)
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    rows, meds, notes = [], [], []
    for key, g in _groups(ev, by):
        label = dict(zip(by_cols, key))
        r = g[g["at_risk"]]
        time, entry, event = r["day"].to_numpy(float), r["entry"].to_numpy(float), r["resolved"].to_numpy(bool)
        km = kaplan_meier(time, event, entry, alpha=alpha)
        if days is None:
            tab = km.assign(day=km["time"], cumulative_resolution=1 - km["survival"],
                            ci_low=1 - km["surv_high"], ci_high=1 - km["surv_low"])[
                ["day", "cumulative_resolution", "ci_low", "ci_high", "n_at_risk", "n_events", "se"]]
        else:
            tab = km_at_days(km, days, time, entry, event).drop(columns="se_log")
        for col, val in label.items():
            tab.insert(0, col, val)
        rows.append(tab)
        med = km_median(km)
        meds.append({**label, "median_days": med[0], "median_ci_low": med[1], "median_ci_high": med[2],
                     "n": int(len(r)), "events": int(event.sum()),
                     "resolved_at_entry": int((g["censored_reason"] == "resolved at entry").sum()),
                     "single_measurement": int((g["censored_reason"] == "single measurement").sum())})
        name = ", ".join(f"{k}={v}" for k, v in label.items()) or "all episodes"
        if len(km) and km["n_at_risk"].iloc[0] < min_at_risk:
            notes.append(f"{name}: only {km['n_at_risk'].iloc[0]} episode(s) at risk at the first event "
                         f"(day {km['time'].iloc[0]:g}); early estimates are unstable")
        if len(r) < 20:
            notes.append(f"{name}: only {len(r)} episode(s) at risk in all; treat the curve as descriptive")
    for n in notes:
        warnings.warn(n, SmallSampleWarning, stacklevel=2)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return ResolutionCurve(table, pd.DataFrame(meds), ev, rule, by, origin, notes)
