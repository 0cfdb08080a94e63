"""The clinic report of a partitioned study, registered on :func:`~backpain_outcomes.report_content.report_content`.

Importing this module makes :func:`~backpain_outcomes.report_content.report_content` and
:func:`~backpain_outcomes.report.clinic_report` accept a
:class:`~backpain_outcomes.registry.PartitionedStudy` (or any
:class:`~backpain_outcomes.registry_partitions.Partitions`) as ``study``, with the same arguments and
the same :class:`~backpain_outcomes.report_content.ReportContent`, HTML and PDF as the same data in memory.

How: every partition computes the report's rows of its episodes
(:func:`~backpain_outcomes.report_data.episode_frames`, the function the in-memory report runs on the
whole study; episodes are never split across partitions, so each episode's rows are those of the whole
study), the driver puts them together into one
:class:`~backpain_outcomes.report_data.ReportData` and runs the report's own code on it
(:func:`~backpain_outcomes.report_content.content_of`): the selection, the ledger and its disclosure
control, the Kaplan-Meier estimates, the Cox model, the adjusted comparison, the case-mix and
therapist benchmarks, the tables and the figures. The recovery curves and the claim test read every
score: they run on the selected episodes of every partition (:class:`SelectedPartitions`) through
their own partitioned implementations (per-day sums, per-day counts).

Order: the partitions' rows are put together in partition order, and the measurements nearest the
horizon sorted by episode id, as in the whole study. When the study lists its episodes patient by
patient in the order :func:`~backpain_outcomes.registry.write_partitioned` numbers the patients, the
report adds the same numbers in the same order and equals the in-memory report exactly
(tests/test_registry_report.py compares the HTML); otherwise a model fitted on the rows may differ in
the last bits.

Memory: the driver holds one row per episode (its clinic, modality, dates, first scores, number of
measurements, measurement nearest the horizon per instrument, events of the report's rules and main
therapist): about 390 bytes per episode in pandas (``ReportData.nbytes``, measured on simulated studies
of 5,000 and 20,000 episodes with two instruments), so about 4 GB for 10^7 episodes, plus the
per-episode models of the benchmarks (least squares, logistic and Cox fits on those rows) while they
run. The score rows (about 25 per episode) stay in the partitions.
"""

from __future__ import annotations

from .registry_partitions import Partitions, partition_bookkeeping
from .report_config import check_config, check_size, in_selection, select_episodes
from .report_content import ReportContent, content_of, report_content
from .report_data import ReportData, episode_frames
from .resolution import DEFAULT_RULE

__all__ = ["SelectedPartitions", "report_content_partitioned"]


def _selected(study, clinic, period):
    """The partition's episodes of ``clinic`` and ``period`` (the partition itself when all are), or None."""
    keep = in_selection(study.episodes, clinic, period)
    if not keep.any():
        return None
    return study if keep.all() else study.subset(study.episodes.loc[keep, "episode_id"])


def _on_selection(study, clinic, period, fn, *args) -> tuple:
    """``(True, fn(selection, *args))``, or ``(False, None)`` for a partition with no selected episode."""
    sub = _selected(study, clinic, period)
    return (False, None) if sub is None else (True, fn(sub, *args))


def _report_part(study, cfg) -> dict:
    """One partition's rows of the report's data, and the bookkeeping of its selected episodes."""
    sub = _selected(study, cfg.clinic, cfg.period)
    return {"frames": episode_frames(study, cfg), "book": None if sub is None else partition_bookkeeping(sub)}


class SelectedPartitions(Partitions):
    """The episodes of one clinic and/or period of first visits of a partitioned study, as a partitioned study.

    Partitions without a selected episode are left out; the bookkeeping (instruments, episode
    columns, notes) is that of the selected episodes, as ``Study.subset`` gives in memory.

    Parameters
    ----------
    parent : Partitions
    clinic : str or None
    period : (Timestamp or None, Timestamp or None) or None
        As checked by :func:`~backpain_outcomes.report_config.check_period`.
    books : list of dict or None
        :func:`~backpain_outcomes.registry_partitions.partition_bookkeeping` of every partition's
        selection (None for a partition without one), when already computed.
    """

    def __init__(self, parent: Partitions, clinic, period, books: list | None = None):
        self.parent, self.clinic, self.period = parent, clinic, period
        if books is None:
            books = [b for ok, b in parent.map(_on_selection, clinic, period, partition_bookkeeping) if ok]
        books = [b for b in books if b is not None]
        if not books:
            raise ValueError("no episode of the partitioned study is in the selection")
        self.n_partitions = len(books)
        super().__init__(books)

    def map(self, fn, *args) -> list:
        return [out for ok, out in self.parent.map(_on_selection, self.clinic, self.period, fn, *args) if ok]

    def flow(self):
        """The flow of the whole study as loaded (a selection keeps the read counts, as ``Study.subset`` does)."""
        return self.parent.flow()


@report_content.register
def report_content_partitioned(study: Partitions, clinic=None, period=None, title=None, rule=DEFAULT_RULE,
                               day: float = 42, origin: str = "onset", instrument: str = "nrs", min_n: int = 5,
                               show_therapists: bool = False, progress: bool = True) -> ReportContent:
    """:func:`~backpain_outcomes.report_content.report_content` of a partitioned study (same arguments and result)."""
    cfg = check_config(clinic, period, title, rule, day, origin, instrument, min_n, show_therapists, progress)
    parts = study.map(_report_part, cfg)
    data = ReportData.from_parts([p["frames"] for p in parts], study.flow(), cfg.origin)
    keep = select_episodes(data.episodes, cfg.clinic, cfg.period)
    check_size(int(keep.sum()), cfg)
    scope = study if keep.all() else SelectedPartitions(study, cfg.clinic, cfg.period, [p["book"] for p in parts])
    return content_of(data, cfg, scope, progress)
