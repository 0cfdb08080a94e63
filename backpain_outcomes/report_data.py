"""The episode-level data of a clinic report: one row per episode, gathered once, for an in-memory or a partitioned study.

Every table, figure and benchmark of the report is computed from :class:`ReportData`, except the
recovery curves and the day-42 claim, which read every score and run on the selected study itself
(in memory, or partition by partition on a registry). :func:`episode_frames` computes the rows of
any set of whole episodes: the in-memory report calls it on the whole study, the registry report
(:mod:`backpain_outcomes.registry_report`) on every partition (episodes are never split across
partitions), and :meth:`ReportData.from_parts` puts the rows together, so both build the same data.

What it holds per episode: the episode's clinic, modality, treatment status, chronicity, first visit,
age, sessions and first score of each instrument; its number of measurements of each instrument and
whether its onset is unknown; its measurement nearest the horizon (one row of
:func:`~backpain_outcomes.benchmarking.outcome_at_day` per instrument); its row of
:func:`~backpain_outcomes.resolution.time_to_resolution` for the report's rule and for the rule of the
adjusted comparison; and the therapist who gave most of its sessions. That is about 390 bytes per
episode in pandas (``ReportData.nbytes`` of simulated studies with two instruments), so the data of
10^7 episodes (about 4 GB) fit on one machine; the score rows are not held.

:class:`EpisodeView` shows some of these episodes as the study the package's benchmarks read
(:func:`~backpain_outcomes.benchmarking.benchmark_therapists`,
:func:`~backpain_outcomes.casemix.benchmark_clinic`,
:func:`~backpain_outcomes.compare.compare_modalities`): the same values they would read from the
study, reduced to what they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .benchmarking import main_therapist, outcome_at_day
from .compare import comparison_rule
from .resolution import DEFAULT_RULE, TimeToResolution, event_notes, time_to_resolution
from .rules import as_rule
from .vocabulary import INSTRUMENTS

__all__ = ["ReportData", "EpisodeView", "episode_frames", "EPISODE_COLUMNS"]

#: Columns of the episodes table the report reads (with ``baseline_<instrument>`` of every instrument).
EPISODE_COLUMNS = ["episode_id", "clinic_id", "modality", "treatment_status", "chronicity", "first_visit_date", "age",
                   "n_sessions"]


def _counts(study) -> pd.DataFrame:
    """Per episode with scores: ``n_<instrument>`` measurements and ``unknown_<instrument>`` (onset unknown)."""
    sc = study.scores
    out = pd.DataFrame(index=pd.Index(pd.unique(sc["episode_id"]), name="episode_id"))
    for inst in study.instruments:
        s = sc[sc["instrument"] == inst]
        out[f"n_{inst}"] = s.groupby("episode_id", sort=False).size().reindex(out.index, fill_value=0).astype(np.int64)
        unknown = s.loc[s["days_since_onset"].isna(), "episode_id"].unique()
        out[f"unknown_{inst}"] = out.index.isin(unknown)
    return out.reset_index()


def episode_frames(study, cfg) -> dict:
    """The report's rows of the episodes of one in-memory ``study`` (a whole study, or a partition of whole patients).

    Episodes whose onset is unknown have no event or horizon row when ``cfg.origin`` is ``"onset"``
    (the report refuses them, as every analysis from onset does).
    """
    counts = _counts(study)
    known = pd.Series(True, index=study.episodes.index)
    if cfg.origin == "onset":
        known = ~study.episodes["episode_id"].isin(counts.loc[counts.filter(like="unknown_").any(axis=1), "episode_id"])
    work = study if known.all() else study.subset(study.episodes.loc[known, "episode_id"]) if known.any() else None
    present = set(work.instruments) if work is not None and len(work.scores) else set()
    near = {inst: outcome_at_day(work, inst, cfg.day, cfg.origin, cfg.window) for inst in INSTRUMENTS if inst in present}
    events = {}
    for rule in [cfg.rule, comparison_rule(cfg.instrument)]:
        if rule.instrument in present and rule.code not in events:
            events[rule.code] = time_to_resolution(work, rule, origin=cfg.origin).table
    ep = study.episodes
    cols = [c for c in EPISODE_COLUMNS if c in ep] + [c for c in ep if c.startswith("baseline_")]
    sessions = getattr(study, "sessions", None)
    return {"episodes": ep[cols], "counts": counts, "near": near, "events": events,
            "therapist": main_therapist(sessions).rename("therapist_id").reset_index()}


def _concat(frames: list, sort: str | None = None) -> pd.DataFrame:
    frames = [f for f in frames if f is not None]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    return out.sort_values(sort, kind="stable", ignore_index=True) if sort and len(frames) > 1 else out


@dataclass(frozen=True)
class ReportData:
    """The episode-level data of a report (see the module docstring).

    Attributes
    ----------
    episodes : DataFrame
        One row per episode: :data:`EPISODE_COLUMNS` that the study has and ``baseline_<instrument>``.
    counts : DataFrame
        One row per episode with scores: ``episode_id``, ``n_<instrument>`` and ``unknown_<instrument>``.
    near : dict of str -> DataFrame
        Per instrument, :func:`~backpain_outcomes.benchmarking.outcome_at_day` (sorted by ``episode_id``).
    events : dict of str -> DataFrame
        Per rule code, the table of :func:`~backpain_outcomes.resolution.time_to_resolution`.
    therapist : DataFrame
        ``episode_id``, ``therapist_id``: the therapist who gave most of the episode's sessions.
    flow : DataFrame
        ``Study.flow()`` of the whole study as loaded.
    origin : str
    """

    episodes: pd.DataFrame
    counts: pd.DataFrame
    near: dict
    events: dict
    therapist: pd.DataFrame
    flow: pd.DataFrame
    origin: str

    @classmethod
    def from_parts(cls, parts: list[dict], flow: pd.DataFrame, origin: str) -> ReportData:
        """The rows of :func:`episode_frames` of every partition, in partition order, put together."""
        insts = [i for i in INSTRUMENTS if any(i in p["near"] for p in parts)]
        codes = list(dict.fromkeys(c for p in parts for c in p["events"]))
        counts = _concat([p["counts"] for p in parts])
        for c in [c for c in counts if c != "episode_id"]:  # an instrument some partitions lack: none measured
            counts[c] = counts[c].fillna(0).astype(np.int64) if c.startswith("n_") else counts[c].fillna(False).astype(bool)
        return cls(episodes=_concat([p["episodes"] for p in parts]), counts=counts,
                   near={i: _concat([p["near"].get(i) for p in parts], "episode_id") for i in insts},
                   events={c: _concat([p["events"].get(c) for p in parts]) for c in codes},
                   therapist=_concat([p["therapist"] for p in parts]), flow=flow, origin=origin)

    @property
    def nbytes(self) -> int:
        """Memory held by the tables (deep), in bytes."""
        frames = [self.episodes, self.counts, self.therapist, *self.near.values(), *self.events.values()]
        return int(sum(f.memory_usage(deep=True).sum() for f in frames))


class EpisodeView:
    """Some episodes of a :class:`ReportData` as the study the report's benchmarks read.

    ``episodes``, ``sessions`` (the main therapist of each episode, one row each) and
    ``analysis_frame`` hold the values the study itself would give those analyses:
    ``analysis_frame`` is each episode's first measurement and its measurement nearest the
    report's horizon (so :func:`~backpain_outcomes.benchmarking.outcome_at_day` at the report's
    horizon and window gives the study's rows), and ``scores`` at most two rows per episode and
    instrument (whether it was followed up). :func:`~backpain_outcomes.resolution.time_to_resolution`
    of a view gives the study's event rows of its episodes for the rules of the report.
    """

    def __init__(self, data: ReportData, keep):
        self.data = data
        keep = np.asarray(keep, bool)
        self.episodes = data.episodes[keep].reset_index(drop=True)
        ids = pd.Index(self.episodes["episode_id"])
        self.ids = ids
        counts = data.counts[data.counts["episode_id"].isin(ids)]
        self.counts = counts
        self.instruments = [i for i in INSTRUMENTS if f"n_{i}" in counts and (counts[f"n_{i}"] > 0).any()]
        ther = data.therapist[data.therapist["episode_id"].isin(ids)]
        self.sessions = ther.reset_index(drop=True)

    @cached_property
    def scores(self) -> pd.DataFrame:
        """``episode_id`` and ``instrument``: one row per measurement, at most two per episode and instrument."""
        rows = [pd.DataFrame({"episode_id": np.repeat(self.counts["episode_id"].to_numpy(), n), "instrument": i})
                for i in self.instruments for n in [np.minimum(self.counts[f"n_{i}"].to_numpy(), 2)]]
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["episode_id", "instrument"])

    def n_measurements(self, instrument: str) -> pd.Series:
        """Measurements of ``instrument`` per episode with scores (indexed by ``episode_id``)."""
        col = f"n_{instrument}"
        if col not in self.counts:
            return pd.Series(dtype=np.int64)
        return self.counts.set_index("episode_id")[col]

    def check_frame(self, instrument: str, origin: str) -> None:
        """The errors of ``Study.analysis_frame``: onsets unknown, or no score of ``instrument``."""
        if origin != self.data.origin:
            raise ValueError(f"this report's data are counted from {self.data.origin}, not {origin}")
        if origin == "onset" and f"unknown_{instrument}" in self.counts:
            n_unknown = int((self.counts[f"unknown_{instrument}"] & (self.counts[f"n_{instrument}"] > 0)).sum())
            if n_unknown:
                raise ValueError(f"origin='onset' needs the onset date of every episode, but {n_unknown} "
                                 "episode(s) have none (no episodes table or blank onset_date); "
                                 "use origin='first_contact' instead")
        if instrument not in self.instruments:
            raise ValueError(f"no {instrument} scores in this study; instruments present: "
                             f"{', '.join(self.instruments) or 'none'}")

    def near(self, instrument: str) -> pd.DataFrame:
        """:func:`~backpain_outcomes.benchmarking.outcome_at_day` of these episodes at the report's horizon."""
        near = self.data.near[instrument]
        return near[near["episode_id"].isin(self.ids)].reset_index(drop=True)

    def analysis_frame(self, instrument: str = "nrs", origin: str = "onset", include_baseline: bool = False,
                       scale: str | None = None) -> pd.DataFrame:
        """The measurement nearest the horizon of each episode (and its first, with ``include_baseline``)."""
        self.check_frame(instrument, origin)
        if scale is not None:
            raise ValueError("the report's data hold the instrument's own scale only")
        near = self.near(instrument).drop(columns=["improvement", "responder"]).assign(visit=2)
        if not include_baseline:
            return near
        n = self.n_measurements(instrument)
        first = pd.DataFrame({"episode_id": n.index[n.to_numpy() > 0], "visit": 1})
        return pd.concat([first, near], ignore_index=True)


@time_to_resolution.register
def _time_to_resolution_view(study: EpisodeView, rule=DEFAULT_RULE, origin: str = "onset",
                             relapse: str = "ignore") -> TimeToResolution:
    """The event rows of the view's episodes, with the notes :func:`time_to_resolution` gives them."""
    rule = as_rule(rule)
    study.check_frame(rule.instrument, origin)
    if relapse != "ignore" or rule.code not in study.data.events:
        raise ValueError(f"the report's data hold the events of its own rules, not of {rule!r} with relapse={relapse!r}")
    ev = study.data.events[rule.code]
    table = ev[ev["episode_id"].isin(study.ids)].reset_index(drop=True)
    notes = event_notes(rule, int(table["n_combined"].sum()), int((table["n_combined"] > 0).sum()),
                        table.loc[~table["at_risk"], "censored_reason"].value_counts())
    return TimeToResolution(table, rule, origin, relapse, notes)
