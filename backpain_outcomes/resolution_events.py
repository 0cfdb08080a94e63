"""Event days per episode (:func:`episode_events`): same-day measurements combined into visits, runs of
consecutive visits that meet a rule, the first complete run (or, with ``relapse="undo"``, the run lasting to
the last visit), and the status of every episode (resolved, censored, resolved at entry, single visit, baseline 0).
The conventions are those of :mod:`backpain_outcomes.resolution`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_choice
from .rules import as_rule

__all__ = ["RELAPSE", "episode_events"]

#: How a measurement failing the rule after a resolution is handled.
RELAPSE = ("ignore", "undo")
_BIG = np.iinfo(np.int64).max


def _visits(frame: pd.DataFrame, same_day: str):
    """One row per (episode, day): scores combined by ``same_day``; returns (episode, day, score, n_combined)."""
    codes, _ = pd.factorize(frame["episode_id"])
    day = frame["day"].to_numpy(float)
    order = np.lexsort((day, codes))
    ep = frame["episode_id"].to_numpy()[order]
    codes, day, score = codes[order], day[order], frame["score"].to_numpy(float)[order]
    n = len(ep)
    new = np.r_[True, (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])] if n else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    if len(starts) == n:
        return ep, day, score, np.zeros(n, int)
    size = np.diff(np.r_[starts, n])
    if same_day == "mean":
        combined = np.add.reduceat(score, starts) / size
    else:
        combined = (np.minimum if same_day == "min" else np.maximum).reduceat(score, starts)
    return ep[starts], day[starts], combined, size - 1


def _runs(meets, start, day, k, span_days):
    """Per visit: index of the first visit of its run of meeting visits, and whether the run is complete there."""
    n = len(meets)
    idx = np.arange(n)
    barrier = np.where(~meets, idx, np.where(start, idx - 1, -1))
    run_start = (np.maximum.accumulate(barrier) if n else barrier) + 1
    run_len = np.where(meets, idx - run_start + 1, 0)
    span = np.where(meets, day - day[np.minimum(run_start, max(n - 1, 0))], -np.inf)
    complete = (run_len >= k) & (span >= span_days)
    return run_start, complete


def _event_rows(meets, complete, run_start, gid, n_ep, last_idx, relapse):
    """Per episode: whether it resolved, the visit of its event and its first visit failing the rule after its
    first complete run (``_BIG`` where there is none)."""
    n = len(meets)
    idx = np.arange(n)
    first_complete = np.full(n_ep, _BIG)
    np.minimum.at(first_complete, gid[complete], idx[complete])
    fail_after = ~meets & (idx > first_complete[gid])
    first_fail = np.full(n_ep, _BIG)
    np.minimum.at(first_fail, gid[fail_after], idx[fail_after])
    if relapse == "undo":
        has = complete[last_idx] if n else np.zeros(0, bool)
        event_row = np.where(has, run_start[last_idx] if n else 0, _BIG)
    else:
        has = first_complete < _BIG
        event_row = np.where(has, run_start[np.minimum(first_complete, max(n - 1, 0))], _BIG)
    return has, event_row, first_fail


def episode_events(frame: pd.DataFrame, rule, relapse: str = "ignore") -> pd.DataFrame:
    """Event day per episode from a long frame of one instrument.

    Parameters
    ----------
    frame : DataFrame
        ``episode_id``, ``day``, ``score``, one row per measurement (any order).
    rule : Resolution or str
    relapse : {"ignore", "undo"}
        ``"ignore"`` uses the first complete run; ``"undo"`` only a run that
        lasts to the last visit (a later visit that fails the rule undoes an
        earlier resolution).

    Returns
    -------
    DataFrame, one row per episode: ``episode_id``, ``entry`` (day of the
    first visit), ``day`` (event or censoring day), ``resolved``,
    ``at_risk``, ``status``, ``n_visits`` (distinct days),
    ``n_measurements``, ``n_combined`` (measurements merged into a same-day
    visit), ``baseline`` (score of the first visit), ``relapsed``,
    ``relapse_day``.

    Examples
    --------
    >>> f = pd.DataFrame({"episode_id": ["a"] * 4, "day": [0, 7, 7, 14], "score": [6, 1, 3, 1]})
    >>> episode_events(f, "nrs<=2 x2")[["day", "resolved", "n_combined"]].values.tolist()
    [[7.0, True, 1]]
    """
    rule = as_rule(rule)
    check_choice(relapse, "relapse", RELAPSE)
    ep, day, score, combined = _visits(frame, rule.same_day)
    n = len(ep)
    start = np.r_[True, ep[1:] != ep[:-1]] if n else np.zeros(0, bool)
    gid = np.cumsum(start) - 1
    first_idx = np.flatnonzero(start)
    last_idx = np.r_[first_idx[1:] - 1, n - 1] if n else np.zeros(0, int)
    baseline = score[first_idx]
    meets = rule.meets(score, baseline[gid])
    span_days = 0 if rule.sustained_days is None else rule.sustained_days
    run_start, complete = _runs(meets, start, day, rule.sustained, span_days)
    n_ep = len(first_idx)
    has, event_row, first_fail = _event_rows(meets, complete, run_start, gid, n_ep, last_idx, relapse)
    n_vis = last_idx - first_idx + 1
    at_entry = has & (event_row == first_idx)
    zero_base = (baseline <= 0) if rule.needs_positive_baseline else np.zeros(n_ep, bool)
    status = np.select([zero_base, n_vis < 2, at_entry, has],
                       ["baseline 0: relative change undefined", "single visit", "resolved at entry", "resolved"],
                       "censored: no sustained run by the last visit")
    at_risk = ~at_entry & ~zero_base & (n_vis >= 2)
    relapsed = (first_fail < _BIG) & (relapse == "ignore")
    n_comb = np.bincount(gid, weights=combined, minlength=n_ep).astype(int) if n else np.zeros(0, int)
    return pd.DataFrame({
        "episode_id": ep[first_idx], "entry": day[first_idx],
        "day": np.where(has, day[np.minimum(event_row, max(n - 1, 0))], day[last_idx]) if n else np.zeros(0),
        "resolved": has & at_risk, "at_risk": at_risk, "status": status, "n_visits": n_vis,
        "n_measurements": n_vis + n_comb, "n_combined": n_comb, "baseline": baseline, "relapsed": relapsed,
        "relapse_day": np.where(relapsed, day[np.minimum(first_fail, max(n - 1, 0))], np.nan) if n else np.zeros(0),
    })
