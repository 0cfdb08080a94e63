"""When does an episode resolve? Event days per episode and cumulative resolution curves.

Conventions:

* **Visits.** Measurements of one instrument in one episode on one calendar
  day are one visit; their scores are combined by the rule's ``same_day``
  (``mean`` by default, or ``min``/``max``). How many measurements were
  combined is stated in the result's notes.
* **Event.** A resolution happens on the day of the **first** visit of the
  first run of ``sustained`` consecutive visits (distinct days) that meet the
  rule; with ``sustained_days=N`` the run must also last at least *N* days
  (every visit from the first qualifying one to a visit at least *N* days
  later meets the rule). Without a complete run the episode is censored at
  its last visit.
* **Entry.** An episode is at risk from its first visit (delayed entry, left
  truncation): the risk set at day *t* holds the episodes whose first visit
  came before *t* and that have not resolved or been censored. Entry and
  event never coincide: an episode whose first visit already starts a
  complete run is *resolved at entry* and, like an episode with a single
  visit, carries no information on the time to resolution; both leave the
  risk set and are counted on the result.
* Cumulative resolution is ``1 - S(t)``, with ``S`` the product-limit
  (Kaplan-Meier) estimate, Greenwood's variance and a log-log confidence
  interval (:func:`~backpain_outcomes.survival.kaplan_meier`), as
  ``survival::survfit(Surv(entry, time, event) ~ 1, conf.type = "log-log")`` in R.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_alpha, check_by, check_choice, check_days, check_min_n, check_origin
from .dispatch import on_study
from .exceptions import SmallSampleWarning, warn
from .resolution_events import RELAPSE, episode_events
from .results import Result
from .rules import DEFAULT_RULE, Resolution, as_rule
from .survival import kaplan_meier_counts, km_at_days_counts, km_median, risk_counts
from .vocabulary import label

__all__ = ["Resolution", "as_rule", "DEFAULT_RULE", "episode_events", "time_to_resolution", "TimeToResolution",
           "resolution_curve", "ResolutionCurve", "RELAPSE", "check_study", "event_notes", "curve_from_counts",
           "curve_tables"]

_GONE = {"single visit": "with a single visit", "resolved at entry": "resolved at entry (first visit already met the rule)",
         "baseline 0: relative change undefined": "with a baseline of 0 (relative change undefined)"}


def check_study(study, name: str = "study"):
    """The first argument of every analysis: a Study (built by ``load_study`` or ``simulate_study``)."""
    if not (hasattr(study, "analysis_frame") and hasattr(study, "episodes")):
        raise TypeError(f"{name} must be a Study (from load_study or simulate_study), got {type(study).__name__}")
    return study


_TTR_COLUMNS = ["episode_id", "modality", "treatment_status", "chronicity", "entry", "day", "resolved",
                "censored_reason", "at_risk", "n_visits", "n_measurements", "n_combined", "baseline", "relapsed",
                "relapse_day"]


class TimeToResolution(Result):
    """Time to resolution, one row per episode (:func:`time_to_resolution`).

    Attributes
    ----------
    table : DataFrame
        ``episode_id``, ``modality``, ``treatment_status``, ``chronicity``,
        ``entry`` (day of the first visit), ``day`` (event or censoring day),
        ``resolved`` (event flag), ``censored_reason`` (empty for events),
        ``at_risk`` (False for episodes resolved at entry, with a single visit
        or not evaluable), ``n_visits``, ``n_measurements``, ``n_combined``
        (same-day measurements merged into a visit), ``baseline``,
        ``relapsed``, ``relapse_day``.
    rule : Resolution
    origin, relapse : str
    n_combined : int
        Measurements merged into same-day visits.
    notes : list of str
    """

    def __init__(self, table, rule, origin, relapse, notes):
        self.table, self.rule, self.origin, self.relapse = table, rule, origin, relapse
        self.n_combined = int(table["n_combined"].sum())
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        t = self.table
        counts = t["censored_reason"].replace("", "resolved").value_counts().rename_axis("status").reset_index()
        lines = [f"rule: {self.rule!r} ({self.rule.code})", f"origin: {self.origin}; relapse: {self.relapse}",
                 f"{len(t)} episodes, {int(t['at_risk'].sum())} at risk, {int(t['resolved'].sum())} resolved",
                 *self.notes]
        return "Time to resolution", lines, {"Episodes by status": counts}

    def plot(self, ax=None):
        """Cumulative resolution of all episodes at risk (1 - Kaplan-Meier), 95% CI."""
        from .plotting import plot_time_to_resolution
        return plot_time_to_resolution(self, ax=ax)


def _events(study, rule, origin, relapse):
    """Event table with episode columns; notes on same-day visits and on episodes not at risk."""
    frame = study.analysis_frame(rule.instrument, origin=origin, include_baseline=True)
    ev = episode_events(frame, rule, relapse=relapse)
    ep = study.episodes.set_index("episode_id").reindex(ev["episode_id"])
    ev["modality"] = ep["modality"].astype(str).to_numpy()
    ev["treatment_status"] = ep["treatment_status"].astype(str).to_numpy() if "treatment_status" in ep else ""
    ev["chronicity"] = ep["chronicity"].astype(str).to_numpy()
    ev["censored_reason"] = np.where(ev["resolved"], "", ev["status"])
    notes = event_notes(rule, int(ev["n_combined"].sum()), int((ev["n_combined"] > 0).sum()),
                        ev.loc[~ev["at_risk"], "status"].value_counts())
    return ev[_TTR_COLUMNS].reset_index(drop=True), notes


def event_notes(rule: Resolution, n_combined: int, n_episodes_combined: int, not_at_risk: pd.Series) -> list[str]:
    """Notes of an event table: measurements combined into same-day visits, and the episodes not at risk
    (``not_at_risk``: their number by ``status``, largest first)."""
    notes = []
    if n_combined:
        notes.append(f"{n_combined} {rule.instrument.upper()} measurement(s) in {n_episodes_combined} episode(s) "
                     "were taken on the same day as another of the same episode and were combined into one visit by "
                     f"their {rule.same_day}.")
    if len(not_at_risk):
        notes.append("Not at risk (no information on the time to resolution): "
                     + ", ".join(f"{n} {_GONE.get(k, k)}" for k, n in not_at_risk.items()) + ".")
    return notes


@on_study
def time_to_resolution(study, rule=DEFAULT_RULE, origin: str = "onset", relapse: str = "ignore") -> TimeToResolution:
    """Time to resolution, one row per episode with measurements of the rule's instrument.

    Parameters
    ----------
    study : Study
    rule : Resolution or str
        Definition of resolved, e.g. ``"nrs<=1 x2"`` (see :func:`as_rule`).
    origin : {"onset", "first_contact"}
        Day 0. ``"onset"`` needs the onset date of every episode; without
        them the error names ``origin="first_contact"``.
    relapse : {"ignore", "undo"}
        Whether a later visit that fails the rule undoes a resolution.

    Returns
    -------
    TimeToResolution
        ``table`` has one row per episode (see :class:`TimeToResolution`).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> t = bpo.time_to_resolution(study, "nrs<=1 x2")
    >>> bool((t.table["day"] > t.table["entry"])[t.table["at_risk"]].all())
    True
    """
    check_study(study)
    rule = as_rule(rule)
    origin = check_origin(origin)
    check_choice(relapse, "relapse", RELAPSE)
    table, notes = _events(study, rule, origin, relapse)
    return TimeToResolution(table, rule, origin, relapse, notes)


class ResolutionCurve(Result):
    """Cumulative resolution per group (1 - Kaplan-Meier with delayed entry).

    Attributes
    ----------
    table : DataFrame
        The ``by`` column(s) (codes), ``day``, ``cumulative_resolution``,
        ``ci_low``, ``ci_high``, ``n_at_risk``, ``n_events`` (events *on*
        that day when ``day`` is None, else events up to it), ``se``.
    steps : DataFrame
        The full step functions (every event day), same columns.
    medians : DataFrame
        Per group: ``median_days``, ``median_ci_low``, ``median_ci_high``,
        ``n`` (at risk), ``events``, ``resolved_at_entry``, ``single_visit``.
    events : DataFrame
        The per-episode table of :func:`time_to_resolution`.
    rule : Resolution
    by : list of str
    origin : str
    day : list of float or None
    alpha : float
    notes : list of str
    """

    def __init__(self, table, steps, medians, events, rule, by, origin, day, alpha, notes):
        self.table, self.steps, self.medians, self.events = table, steps, medians, events
        self.rule, self.by, self.origin, self.day, self.alpha = rule, by, origin, day, alpha
        self.notes = list(notes)
        self._freeze()

    @property
    def warnings(self) -> list[str]:
        """Alias of ``notes``."""
        return self.notes

    def _parts(self):
        lines = [f"rule: {self.rule!r}", f"origin: {self.origin}; {1 - self.alpha:.0%} log-log CI", *self.notes]
        return "Cumulative resolution", lines, {"Median time to resolution": self.medians}

    def plot(self, ax=None, claimed: float | None = None, at_risk_days=None):
        """Step curves with CI bands, numbers at risk under the axis, ``day`` marked, a dashed line at ``claimed``."""
        from .plotting import plot_resolution
        return plot_resolution(self, ax=ax, claimed=claimed, at_risk_days=at_risk_days)


def _curve_group(g, days, alpha):
    """Step table, table at ``days``, median row and first risk set of one group of the event table."""
    r = g[g["at_risk"]]
    counts = risk_counts(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float))
    reasons = g["censored_reason"]
    return curve_from_counts(counts, days, alpha, int((reasons == "resolved at entry").sum()),
                             int((reasons == "single visit").sum()))


def curve_from_counts(counts: pd.DataFrame, days, alpha: float, resolved_at_entry: int = 0, single_visit: int = 0):
    """One group's curve from the per-day counts of its episodes at risk
    (:func:`~backpain_outcomes.survival.risk_counts`, or their sum over partitions).

    Returns ``(steps, table, median_row, first)``: the step table, the table at ``days`` (the
    steps when None), the row of ``medians`` and (numbers at risk, day) of the first event.
    """
    km = kaplan_meier_counts(counts, alpha=alpha)
    steps = km.assign(day=km["time"], cumulative_resolution=1 - km["survival"], ci_low=1 - km["surv_high"],
                      ci_high=1 - km["surv_low"])[["day", "cumulative_resolution", "ci_low", "ci_high", "n_at_risk",
                                                   "n_events", "se"]]
    tab = steps if days is None else km_at_days_counts(km, days, counts).drop(columns="se_log")
    med = km_median(km)
    row = {"median_days": med[0], "median_ci_low": med[1], "median_ci_high": med[2],
           "n": int(counts["entries"].sum()), "events": int(counts["events"].sum()),
           "resolved_at_entry": int(resolved_at_entry), "single_visit": int(single_visit)}
    first = (int(km["n_at_risk"].iloc[0]), float(km["time"].iloc[0])) if len(km) else None
    return steps, tab, row, first


def curve_tables(groups: list, by_cols: list, notes: list[str], min_n: int):
    """``(table, steps, medians, notes)`` of a curve from ``[(key, curve_from_counts(...)), ...]``;
    a note and a ``SmallSampleWarning`` for each small group."""
    rows, steps_all, meds, notes = [], [], [], list(notes)
    given = len(notes)
    for key, (steps, tab, med, first) in groups:
        lab = dict(zip(by_cols, key))
        for col, val in reversed(lab.items()):
            tab = tab.assign(**{col: val})[[col, *tab.columns]]
            steps = steps.assign(**{col: val})[[col, *steps.columns]]
        rows.append(tab)
        steps_all.append(steps)
        meds.append({**lab, **med})
        name = ", ".join(label(v) for v in lab.values()) or "all episodes"
        if first is not None and first[0] < min_n:
            notes.append(f"{name}: only {first[0]} episode(s) at risk at the first resolution (day {first[1]:g}); "
                         "early estimates are unstable.")
        if med["n"] < min_n:
            notes.append(f"{name}: only {med['n']} episode(s) at risk in all; treat the curve as descriptive.")
    for n in notes[given:]:
        warn(n, SmallSampleWarning)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    steps = pd.concat(steps_all, ignore_index=True) if steps_all else pd.DataFrame()
    return table, steps, pd.DataFrame(meds), notes


def _event_groups(ev: pd.DataFrame, study, by_cols: list) -> list:
    """``[(key tuple, rows), ...]`` of the event table by ``by_cols`` (episode columns it lacks added to it)."""
    extra = [c for c in by_cols if c not in ev]
    if extra:
        ep = study.episodes.set_index("episode_id")
        for c in extra:
            ev[c] = ep[c].reindex(ev["episode_id"]).astype(str).to_numpy()
    return [((), ev)] if not by_cols else [
        ((k,) if not isinstance(k, tuple) else k, g) for k, g in ev.groupby(by_cols, sort=True, observed=True)]


@on_study
def resolution_curve(study, rule=DEFAULT_RULE, by=None, origin: str = "onset", day=None, alpha: float = 0.05,
                     min_n: int = 10, relapse: str = "ignore") -> ResolutionCurve:
    """Cumulative resolution (1 - KM) with Greenwood variance and log-log CI, per group.

    Parameters
    ----------
    study : Study
    rule : Resolution or str
    by : str or list of str, optional
        Column(s) of ``study.episodes``: ``"modality"``, ``"chronicity"``,
        ``"treatment_status"``, ``"clinic_id"``, ...
    origin : {"onset", "first_contact"}
        With ``"onset"`` the estimator is left-truncated (delayed entry at the
        first visit): patients seen weeks after onset are not counted as if
        watched since onset.
    day : int or list of int, optional
        Days to report; default every event day.
    alpha : float
        1 - confidence level.
    min_n : int
        A note (and a ``SmallSampleWarning``) when fewer episodes are at risk
        at a group's first event day, or in all.
    relapse : {"ignore", "undo"}

    Returns
    -------
    ResolutionCurve

    Notes
    -----
    Episodes resolved at entry, with a single visit or with a baseline of 0
    under a relative rule leave the risk set and are counted in ``medians``.
    Checked against statsmodels ``SurvfuncRight(entry=)`` and R
    ``survfit(Surv(entry, time, event) ~ 1, conf.type="log-log")``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> curve = bpo.resolution_curve(study, by="modality", day=[42, 84], min_n=1)
    >>> list(curve.table.columns)[:3]
    ['modality', 'day', 'cumulative_resolution']
    """
    check_study(study)
    rule = as_rule(rule)
    by_cols = check_by(by, study.episodes.columns)
    origin = check_origin(origin)
    days = None if day is None else check_days(day)
    alpha, min_n = check_alpha(alpha), check_min_n(min_n)
    ttr = time_to_resolution(study, rule, origin=origin, relapse=relapse)
    ev = ttr.table
    groups = _event_groups(ev, study, by_cols)
    table, steps, medians, notes = curve_tables([(key, _curve_group(g, days, alpha)) for key, g in groups], by_cols,
                                                ttr.notes, min_n)
    return ResolutionCurve(table, steps, medians, ev, rule, by_cols, origin, days, alpha, notes)
