"""backpain_outcomes: back-pain treatment outcome studies, honestly analysed.

Data flow one way: files -> :func:`load_study` -> :class:`Study` -> analyses ->
results -> report. Every analysis takes the study first and returns an
immutable result with ``.table``, ``.notes``, ``summary()``, ``plot()`` and a
notebook view.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

from .adjusted import WeightedComparison, weighted_comparison
from .benchmarking import TherapistBenchmark, benchmark_therapists
from .casemix import ClinicBenchmark, benchmark_clinic
from .claims import ClaimReport, ClaimResult, evaluate_seed_claims, test_resolution_claim
from .compare import ModalityComparison, compare_modalities
from .curves import RecoveryCurves, fit_recovery_curves
from .datasets import load_anderson1984
from .episode_curves import EpisodeCurves, fit_episode_curves
from .evalue import EValue, e_value
from .exceptions import (
    BackpainError,
    ConvergenceError,
    ConvergenceWarning,
    DataValidationError,
    DisclosureError,
    MissingDependencyError,
    SmallSampleWarning,
    StatisticalWarning,
)
from .export import publication_table, to_docx, to_latex, to_markdown
from .followup import ResponderRate, responder_rate
from .instruments import mcid_table, score_odi, score_rmdq
from .loading import load_study
from .mixed import MixedModelResult, fit_mixed_model
from .ordinal import GRCModel, fit_grc_model
from .plotting import plot_resolution_panels
from .power import PowerResult, SampleSizeResult, claim_power, claim_sample_size
from .provenance import Provenance, ProvenanceError, read_provenance, seal_figure
from .recurrence import Recurrence, recurrence
from .redcap import load_redcap
from .reference import reference_curves
from .report import clinic_report
from .report_content import ReportContent, report_content
from .resolution import ResolutionCurve, TimeToResolution, resolution_curve, time_to_resolution
from .results import Result
from .rules import DEFAULT_RULE, Resolution, as_rule
from .simulate import SimulationTruth, simulate_study
from .simulate_recurrence import RecurrenceTruth, simulate_recurrence
from .study import Study
from .style import MODALITY_COLOURS
from .table_one import TableOne, table_one
from .trajectories import TrajectoryResult, adjusted_rand_index, fit_trajectories
from .version import __version__
from .visits import load_visits
from .vocabulary import label


def example_path() -> Path:
    """Directory of the shipped example study (simulated, 500 patients).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> (bpo.example_path() / "scores.csv").exists()
    True
    """
    packaged = Path(str(resources.files("backpain_outcomes"))) / "data" / "example"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "data" / "example"


#: Names whose modules load heavy optional libraries (fhir.resources and pydantic; PyCap and requests; Dask)
#: on first use rather than at ``import backpain_outcomes`` (PEP 562); they are public like every other name.
#: Importing the registry module also registers the partitioned versions of the analyses.
_LAZY = {"load_fhir": "fhir", "fetch_redcap": "redcap_api", "load_partitioned": "registry",
         "write_partitioned": "registry", "simulate_partitioned": "registry", "PartitionedStudy": "registry",
         "SequentialPartitions": "registry"}


def __getattr__(name: str):
    """Import a lazily exported name (:data:`_LAZY`) on first access."""
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'backpain_outcomes' has no attribute {name!r}")


__all__ = [
    "__version__",
    # data
    "Study", "load_study", "load_visits", "load_redcap", "fetch_redcap", "load_fhir", "load_anderson1984",
    "example_path", "simulate_study", "SimulationTruth", "simulate_recurrence", "RecurrenceTruth",
    "label",
    "mcid_table", "score_odi", "score_rmdq",
    # definitions of resolved
    "Resolution", "DEFAULT_RULE", "as_rule",
    # survival and claims
    "time_to_resolution", "TimeToResolution", "resolution_curve", "ResolutionCurve", "recurrence", "Recurrence",
    "test_resolution_claim", "ClaimResult", "evaluate_seed_claims", "ClaimReport", "reference_curves",
    "claim_power", "PowerResult", "claim_sample_size", "SampleSizeResult",
    # recovery curves and models
    "fit_recovery_curves", "RecoveryCurves", "fit_episode_curves", "EpisodeCurves",
    "fit_mixed_model", "MixedModelResult", "compare_modalities", "ModalityComparison",
    "fit_trajectories", "TrajectoryResult", "adjusted_rand_index", "fit_grc_model", "GRCModel",
    # confounding and missing follow-up
    "weighted_comparison", "WeightedComparison", "e_value", "EValue", "responder_rate", "ResponderRate",
    # clinics
    "benchmark_therapists", "TherapistBenchmark", "benchmark_clinic", "ClinicBenchmark",
    "report_content", "ReportContent", "clinic_report",
    # publication tables
    "table_one", "TableOne", "publication_table", "to_markdown", "to_latex", "to_docx",
    # registries on Dask
    "load_partitioned", "write_partitioned", "simulate_partitioned", "PartitionedStudy", "SequentialPartitions",
    # figures and provenance of outputs
    "plot_resolution_panels", "MODALITY_COLOURS", "Provenance", "ProvenanceError", "read_provenance", "seal_figure",
    # contract and errors
    "Result", "BackpainError", "DataValidationError", "DisclosureError", "ConvergenceError", "MissingDependencyError",
    "StatisticalWarning", "ConvergenceWarning", "SmallSampleWarning",
]
