"""backpain_outcomes: back-pain treatment outcome studies, honestly analysed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .exceptions import ConvergenceWarning, DataValidationError, SmallSampleWarning, StatisticalWarning
from .instruments import mcid_table, score_odi, score_rmdq
from .loading import load_study
from .study import Study

__version__ = "1.0.0"


def example_path() -> Path:
    """Directory of the shipped example study (simulated, 500 patients)."""
    packaged = Path(str(resources.files("backpain_outcomes"))) / "data" / "example"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "data" / "example"


__all__ = [
    "ConvergenceWarning", "DataValidationError", "SmallSampleWarning", "StatisticalWarning",
    "Study", "example_path", "load_study", "mcid_table", "score_odi", "score_rmdq",
]

from .resolution import DEFAULT_RULE, Resolution, resolution_curve, time_to_resolution  # noqa: E402
from .simulate import simulate_study  # noqa: E402

__all__ += ["DEFAULT_RULE", "Resolution", "resolution_curve", "simulate_study", "time_to_resolution"]
from .claims import ClaimResult, test_resolution_claim  # noqa: E402
from .reference import reference_curves  # noqa: E402

__all__ += ["ClaimResult", "reference_curves", "test_resolution_claim"]
from .seed_claims import ClaimReport, evaluate_seed_claims  # noqa: E402

__all__ += ["ClaimReport", "evaluate_seed_claims"]
from .curves import RecoveryCurves, fit_recovery_curves  # noqa: E402
from .episode_curves import fit_episode_curves  # noqa: E402

__all__ += ["RecoveryCurves", "fit_episode_curves", "fit_recovery_curves"]
from .mixed import MixedModelResult, fit_mixed_model  # noqa: E402

__all__ += ["MixedModelResult", "fit_mixed_model"]
from .compare import ModalityComparison, compare_modalities  # noqa: E402

__all__ += ["ModalityComparison", "compare_modalities"]
from .trajectories import TrajectoryResult, adjusted_rand_index, fit_trajectories  # noqa: E402

__all__ += ["TrajectoryResult", "adjusted_rand_index", "fit_trajectories"]
from .report import clinic_report  # noqa: E402

__all__ += ["clinic_report"]
