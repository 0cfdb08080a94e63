"""The protocol of partitioned studies (:class:`Partitions`) and its in-memory form (:class:`SequentialPartitions`).

A partitioned study is a study held as partitions of whole patients (so of whole episodes), each an
ordinary in-memory :class:`~backpain_outcomes.study.Study`. The registry analyses need only:

* ``n_partitions``;
* ``map(fn, *args)``: ``fn(partition, *args)`` on every partition, results in partition order;
* ``reduce(fn, combine, *args)``: the same, folded with ``combine`` in partition order;
* ``hold(fn, *args)``: the results of ``fn(partition, *args)`` kept where they were computed (on the
  workers for Dask), to be used by later maps (:class:`HeldStates`: ``map``, ``release``);
* the loading bookkeeping merged over partitions: ``flow()``, ``exclusions``, ``blanked_values``,
  ``same_day_scores``, ``notes``, ``rows_read``, ``sources``, ``instruments``, ``onset_known``,
  ``episode_columns``.

:class:`~backpain_outcomes.registry.PartitionedStudy` runs the partitions on Dask;
:class:`SequentialPartitions` runs in-memory studies one after the other (tests, small data).
"""

from __future__ import annotations

from functools import reduce as fold

import numpy as np
import pandas as pd

from .checks import check_int
from .reading import TABLES
from .results import html_block, text_block
from .study import Study
from .vocabulary import INSTRUMENTS, MODALITY_LEVELS

__all__ = ["Partitions", "SequentialPartitions", "HeldStates", "partition_bookkeeping", "check_whole_patients"]


def partition_bookkeeping(study: Study) -> dict:
    """What loading one partition recorded: flow, exclusions, notes, ... (merged by :class:`Partitions`)."""
    return {"flow": study.flow(), "exclusions": study.exclusions, "blanked_values": study.blanked_values,
            "same_day_scores": study.same_day_scores, "notes": list(study.notes), "rows_read": dict(study.rows_read),
            "sources": dict(study.sources), "instruments": study.instruments,
            "onset_known": bool(study.scores["days_since_onset"].notna().all()),
            "n_scores": len(study.scores), "episode_columns": list(study.episodes.columns)}


def _flow_key(stage: str, table: str, tables: list[str]) -> tuple:
    """Position of a flow row in :meth:`Study.flow` order."""
    ranks = ["rows read", "rows excluded: ", "rows used", "values set blank (invalid): "]
    if table and not stage.startswith(("score rows combined", "same-day visits")):
        rank = next(i for i, r in enumerate(ranks) if stage.startswith(r))
        return (0, tables.index(table), rank, stage)
    fixed = ["patients", "episodes", "episodes with scores", "episodes with follow-up (2+ measurements)",
             "score rows combined into same-day visits (mean)", "same-day visits they form",
             "episodes with treatment status treated", "episodes with treatment status untreated",
             "episodes with treatment status unknown"]
    if stage in fixed:
        return (1, fixed.index(stage), 0, "")
    return (2, MODALITY_LEVELS.index(stage.split(": ", 1)[1]), 0, "")


class HeldStates:
    """One state per partition (what ``fn(partition, *args)`` returned in :meth:`Partitions.hold`), kept
    where it was computed, in partition order; this form keeps them in this process.

    Examples
    --------
    >>> held = HeldStates([1, 2])
    >>> held.map(lambda s, x: s * x, 10), held.map(lambda s, e: s + e, each=[5, 7])
    ([10, 20], [6, 9])
    """

    def __init__(self, states: list):
        self.states = list(states)

    def map(self, fn, *args, each=None) -> list:
        """``fn(state, *args)`` on every state, or ``fn(state, each[k], *args)`` with a value per partition;
        the results in partition order."""
        if each is None:
            return [fn(s, *args) for s in self.states]
        return [fn(s, e, *args) for s, e in zip(self.states, each, strict=True)]

    def release(self) -> None:
        """Drop the states."""
        self.states = []


class Partitions:
    """A study held as partitions of whole patients: the protocol of the registry analyses.

    Subclasses provide ``n_partitions`` and ``map``; the loading bookkeeping is merged from
    :func:`partition_bookkeeping` of every partition.
    """

    n_partitions: int

    def __init__(self, bookkeeping: list[dict]):
        self._books = bookkeeping
        self.rows_read = {t: sum(b["rows_read"].get(t, 0) for b in bookkeeping) for t in TABLES
                          if any(t in b["rows_read"] for b in bookkeeping)}
        self.sources = {t: ", ".join(dict.fromkeys(s for b in bookkeeping if t in b["sources"]
                                                   for s in b["sources"][t].split(", "))) for t in self.rows_read}
        self.notes = list(dict.fromkeys(n for b in bookkeeping for n in b["notes"]))
        present = {i for b in bookkeeping for i in b["instruments"]}
        self.instruments = [i for i in INSTRUMENTS if i in present]
        self.onset_known = all(b["onset_known"] for b in bookkeeping)
        self.episode_columns = bookkeeping[0]["episode_columns"] if bookkeeping else []
        order = [s for b in bookkeeping for v in b["sources"].values() for s in v.split(", ")]
        self._source_order = {s: i for i, s in enumerate(dict.fromkeys(order))}
        self.exclusions = self._merged("exclusions")
        self.blanked_values = self._merged("blanked_values")
        self.same_day_scores = self._merged("same_day_scores")

    def _merged(self, name: str) -> pd.DataFrame:
        """One table of all partitions, sorted by table, file and line as in memory."""
        frames = [b[name] for b in self._books if len(b[name])]
        if not frames:
            return self._books[0][name].iloc[:0] if self._books else pd.DataFrame()
        df = pd.concat([f.astype({c: object for c in ("table", "source") if c in f}) for f in frames],
                       ignore_index=True)
        key = pd.DataFrame({"t": df["table"].astype(str), "s": df["source"].astype(str).map(self._source_order),
                            "r": pd.to_numeric(df["row"], errors="coerce")})
        return df.loc[key.sort_values(["t", "s", "r"], kind="stable").index].reset_index(drop=True)

    def map(self, fn, *args) -> list:
        """``fn(partition, *args)`` on every partition (an in-memory Study); the results in partition order."""
        raise NotImplementedError

    def reduce(self, fn, combine, *args):
        """``combine`` the results of ``fn(partition, *args)`` over the partitions, in partition order."""
        return fold(combine, self.map(fn, *args))

    def hold(self, fn, *args) -> HeldStates:
        """The results of ``fn(partition, *args)``, kept for later maps over them (release them when done)."""
        return HeldStates(self.map(fn, *args))

    @property
    def closed(self) -> bool:
        """Whether the partitions can no longer be analysed (a registry after ``close()``); in memory, never."""
        return False

    def flow(self) -> pd.DataFrame:
        """:meth:`Study.flow` of the whole registry: the partitions' counts summed, in the same order."""
        flows = pd.concat([b["flow"] for b in self._books], ignore_index=True)
        n = flows.groupby(["stage", "table"], sort=False)["n"].sum().reset_index()
        tables = list(self.rows_read)
        n["_k"] = [_flow_key(s, t, tables) for s, t in zip(n["stage"], n["table"])]
        return n.sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)

    def summary(self) -> str:
        """Plain-text overview: partitions and the flow counts."""
        return text_block(*self._parts())

    def _repr_html_(self) -> str:
        return html_block(*self._parts())

    def _parts(self):
        lines = [f"{self.n_partitions} partitions of whole patients; instruments: {', '.join(self.instruments)}",
                 f"{len(self.exclusions)} input row(s) excluded", *self.notes]
        return type(self).__name__, lines, {"Flow": self.flow()}


def check_whole_patients(studies: list) -> None:
    """Refuse studies that share a patient or an episode id: each analysis of partitions counts a patient (and
    an episode) once per partition it is in, so such partitions would give wrong numbers without a word."""
    for col in ("patient_id", "episode_id") if studies else ():
        where = pd.Series(np.concatenate([pd.unique(s.episodes[col].dropna()) for s in studies]), dtype=object)
        twice = where[where.duplicated()].unique()
        if len(twice):
            shown = ", ".join(map(repr, twice[:5])) + (f" and {len(twice) - 5} more" if len(twice) > 5 else "")
            raise ValueError(f"studies: {len(twice)} {col.replace('_id', '')}(s) are in more than one partition "
                             f"({shown}); partitions must hold whole patients (no patient or episode id in two "
                             "studies): split one study with SequentialPartitions.split(study, n_partitions)")


class SequentialPartitions(Partitions):
    """In-memory studies as partitions, run one after the other without Dask (tests, small data).

    Parameters
    ----------
    studies : list of Study
        Partitions of whole patients (no patient in two of them).
    whole : Study, optional
        The study they were split from (:meth:`split`): its exclusions, flow and notes are the
        registry's, instead of the partitions' sums.
    """

    def __init__(self, studies, *, whole: Study | None = None):
        self.studies = list(studies)
        if not self.studies or not all(isinstance(s, Study) for s in self.studies):
            raise TypeError("studies must be a non-empty list of Study objects")
        check_whole_patients(self.studies)
        self.n_partitions = len(self.studies)
        self._whole = whole
        super().__init__([partition_bookkeeping(whole)] if whole is not None
                         else [partition_bookkeeping(s) for s in self.studies])

    @classmethod
    def split(cls, study: Study, n_partitions: int) -> SequentialPartitions:
        """A study split into ``n_partitions`` groups of whole patients (in order of first appearance)."""
        k = check_int(n_partitions, "n_partitions", low=1)
        patients = pd.unique(study.episodes["patient_id"])
        group = pd.Series(pd.RangeIndex(len(patients)) * k // max(len(patients), 1), index=patients)
        ep_group = study.episodes["patient_id"].map(group).to_numpy()
        parts = [study.subset(study.episodes["episode_id"].to_numpy()[ep_group == g]) for g in range(k)]
        return cls([p for p in parts if len(p.episodes)], whole=study)

    def flow(self) -> pd.DataFrame:
        return self._whole.flow() if self._whole is not None else super().flow()

    def map(self, fn, *args) -> list:
        return [fn(s, *args) for s in self.studies]
