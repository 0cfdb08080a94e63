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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._display import ResultMixin
from .exceptions import SmallSampleWarning
from .instruments import INSTRUMENTS, MCID_ABSOLUTE, MCID_RELATIVE

__all__ = ["Resolution", "time_to_resolution", "resolution_curve", "kaplan_meier", "ResolutionCurve",
           "DEFAULT_RULE"]

_MCID_MODES = ("both", "either", "points", "percent")


@dataclass(frozen=True)
class Resolution:
    """A definition of "resolved" for one instrument.

    Parameters
    ----------
    instrument : {"nrs", "vas", "odi", "rmdq"}
    max_score : float, optional
        Absolute rule: score <= ``max_score`` (e.g. NRS <= 1; Kamper et al.
        2010 found NRS 0 and RMDQ <= 2 best identify complete recovery).
    min_relative_drop : float, optional
        Relative rule: ``(baseline - score) / baseline >= min_relative_drop``.
        Undefined for a baseline of 0 (floor effect): such episodes are
        reported as not evaluable.
    min_drop : float, optional
        Absolute improvement from baseline in points.
    mcid : bool or {"both", "either", "points", "percent"}
        Minimal clinically important change of Ostelo et al. 2008 (Spine
        33:90-94): NRS 2, VAS 15, ODI 10, RMDQ 5 points and 30% from
        baseline. ``True`` means ``"both"`` (at least the points *and* 30%);
        ``"either"`` accepts one of the two.
    sustained : int
        Number of consecutive measurements that must meet the rule.

    Several criteria given together must all be met.

    Examples
    --------
    >>> Resolution("nrs", max_score=1, sustained=2)
    NRS <= 1 on 2 consecutive visits
    """

    instrument: str = "nrs"
    max_score: float | None = None
    min_relative_drop: float | None = None
    min_drop: float | None = None
    mcid: bool | str = False
    sustained: int = 1

    def __post_init__(self):
        if self.instrument not in INSTRUMENTS:
            raise ValueError(f"unknown instrument {self.instrument!r}; one of {', '.join(INSTRUMENTS)}")
        if self.max_score is None and self.min_relative_drop is None and self.min_drop is None and not self.mcid:
            raise ValueError("a Resolution needs max_score=, min_relative_drop=, min_drop= or mcid=True")
        if self.mcid and self.mcid is not True and self.mcid not in _MCID_MODES:
            raise ValueError(f"mcid must be True or one of {_MCID_MODES}, got {self.mcid!r}")
        if int(self.sustained) < 1:
            raise ValueError("sustained must be at least 1")

    @property
    def mcid_mode(self) -> str | None:
        return None if not self.mcid else ("both" if self.mcid is True else self.mcid)

    @property
    def uses_baseline(self) -> bool:
        return self.min_relative_drop is not None or self.min_drop is not None or bool(self.mcid)

    def __repr__(self) -> str:
        inst = self.instrument.upper()
        parts = []
        if self.max_score is not None:
            parts.append(f"{inst} <= {self.max_score:g}")
        if self.min_relative_drop is not None:
            parts.append(f"{inst} down {self.min_relative_drop:.0%} from baseline")
        if self.min_drop is not None:
            parts.append(f"{inst} down {self.min_drop:g} points from baseline")
        if self.mcid:
            pts = MCID_ABSOLUTE[self.instrument]
            joiner = {"both": " and ", "either": " or "}
            mode = self.mcid_mode
            if mode in joiner:
                txt = f"{pts:g} points{joiner[mode]}{MCID_RELATIVE:.0%}"
            else:
                txt = f"{pts:g} points" if mode == "points" else f"{MCID_RELATIVE:.0%}"
            parts.append(f"{inst} improved by the MCID ({txt}; Ostelo 2008)")
        k = int(self.sustained)
        when = "at one visit" if k == 1 else f"on {k} consecutive visits"
        return " and ".join(parts) + " " + when

    __str__ = __repr__

    def meets(self, score: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        """Boolean array: does each measurement meet the rule?"""
        score = np.asarray(score, float)
        baseline = np.asarray(baseline, float)
        ok = np.ones(score.shape, bool)
        drop = baseline - score
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(baseline > 0, drop / baseline, np.nan)
        if self.max_score is not None:
            ok &= score <= self.max_score
        if self.min_relative_drop is not None:
            ok &= rel >= self.min_relative_drop - 1e-12
        if self.min_drop is not None:
            ok &= drop >= self.min_drop - 1e-12
        if self.mcid:
            pts = drop >= MCID_ABSOLUTE[self.instrument] - 1e-12
            pct = rel >= MCID_RELATIVE - 1e-12
            ok &= {"both": pts & pct, "either": pts | pct, "points": pts, "percent": pct}[self.mcid_mode]
        return ok


#: The default rule of the claim check: NRS <= 1 on two consecutive visits.
DEFAULT_RULE = Resolution("nrs", max_score=1, sustained=2)


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


def kaplan_meier(time, event, entry=None, alpha: float = 0.05) -> pd.DataFrame:
    """Product-limit estimate with delayed entry, Greenwood SE and log-log CI.

    .. math::
        \\hat S(t) = \\prod_{t_j \\le t} (1 - d_j / n_j), \\qquad
        \\widehat{\\mathrm{Var}}\\{\\log \\hat S(t)\\} = \\sum_{t_j \\le t} \\frac{d_j}{n_j (n_j - d_j)}

    with :math:`n_j = \\#\\{i: \\mathrm{entry}_i < t_j \\le \\mathrm{time}_i\\}`. The
    log-log interval is :math:`\\hat S^{\\exp(\\pm z\\, \\mathrm{se}/\\log \\hat S)}`
    (Kalbfleisch & Prentice 2002; R ``conf.type = "log-log"``), missing where
    :math:`\\hat S` is 0 or 1.

    Returns
    -------
    DataFrame with one row per distinct event time: ``time``, ``n_at_risk``,
    ``n_events``, ``n_censored``, ``survival``, ``se_log``, ``se``
    (Greenwood SE of S), ``surv_low``, ``surv_high``.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, float)
    if np.any(entry > time):
        raise ValueError("entry must not be after time")
    t_ev = np.unique(time[event])
    ts = np.sort(time)
    es = np.sort(entry)
    # at risk: entry < t <= time
    n_risk = (len(time) - np.searchsorted(ts, t_ev, side="left")) - (len(entry) - np.searchsorted(es, t_ev, side="left"))
    d = np.bincount(np.searchsorted(t_ev, time[event]), minlength=len(t_ev)).astype(float)
    cens_times = np.sort(time[~event])
    c = np.diff(np.searchsorted(cens_times, np.r_[t_ev, np.inf], side="left"))
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_log = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se_log = np.sqrt(var_log)
        z = stats.norm.ppf(1 - alpha / 2)
        inner = np.where((surv > 0) & (surv < 1), z * se_log / np.log(np.where(surv > 0, surv, 0.5)), np.nan)
        low = surv ** np.exp(-inner)
        high = surv ** np.exp(inner)
    return pd.DataFrame({"time": t_ev, "n_at_risk": n_risk.astype(int), "n_events": d.astype(int),
                         "n_censored": c.astype(int), "survival": surv, "se_log": se_log,
                         "se": np.where(surv > 0, surv * np.where(np.isfinite(se_log), se_log, 0), np.nan), "surv_low": low, "surv_high": high})


def _at_days(km: pd.DataFrame, days, time, entry, event, alpha: float = 0.05) -> pd.DataFrame:
    """Step-function values of a KM table at given days (NaN after the last follow-up)."""
    days = np.asarray(days, float)
    pos = np.searchsorted(km["time"].to_numpy(), days, side="right") - 1
    def pick(col, fill):
        vals = km[col].to_numpy(float)
        if len(vals) == 0:
            return np.full(len(days), fill, dtype=float)
        return np.where(pos >= 0, vals[np.maximum(pos, 0)], fill)
    beyond = days > (np.max(time) if len(time) else -np.inf)
    surv = np.where(beyond, np.nan, pick("survival", 1.0))
    out = pd.DataFrame({"day": days, "cumulative_resolution": 1 - surv,
                        "ci_low": np.where(beyond, np.nan, 1 - pick("surv_high", np.nan)),
                        "ci_high": np.where(beyond, np.nan, 1 - pick("surv_low", np.nan)),
                        "se": np.where(beyond, np.nan, pick("se", 0.0)),
                        "se_log": np.where(beyond, np.nan, pick("se_log", 0.0))})
    ts, es = np.sort(time), np.sort(entry)
    out["n_at_risk"] = (len(time) - np.searchsorted(ts, days, side="left")) - (
        len(entry) - np.searchsorted(es, days, side="left"))
    out["n_events"] = [int(event[(time <= dd)].sum()) for dd in days]
    return out


def _median(km: pd.DataFrame) -> tuple[float, float, float]:
    """Median time to resolution and its CI (where the CI curves cross 0.5, as R)."""
    def first_below(col):
        hit = km.loc[km[col] <= 0.5, "time"]
        return float(hit.iloc[0]) if len(hit) else np.nan
    return first_below("survival"), first_below("surv_low"), first_below("surv_high")


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
            tab = _at_days(km, days, time, entry, event, alpha=alpha).drop(columns="se_log")
        for col, val in label.items():
            tab.insert(0, col, val)
        rows.append(tab)
        med = _median(km)
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
