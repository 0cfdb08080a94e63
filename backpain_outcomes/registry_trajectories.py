"""Trajectory classes of a partitioned study: the measurements gathered once, EM in memory.

EM for the latent class growth model (:mod:`backpain_outcomes.lcga`) runs on
per-episode sufficient statistics :math:`B_i^TB_i`, :math:`B_i^Ty_i`,
:math:`y_i^Ty_i`, :math:`n_i`. With the default six-column spline basis these
are 44 numbers per episode, while an episode's measurements as
``(episode, day, score)`` rows are three numbers each: about the same size for
the 10-20 measurements of a typical episode. The result also describes each
class from its members' measurements (the days where ``min_n`` of them have
data, a note where the class curve misses their mean scores, the spaghetti
plot). So each partition returns the rows it keeps
(:func:`~backpain_outcomes.trajectories.trajectory_rows`: complete, up to
``day``, episodes with two or more measurements) with the counts of what it
left out and its episodes table; the driver concatenates them and runs
:func:`~backpain_outcomes.trajectories.fit_trajectories_frame`, which sorts
the rows by episode and day first. The result is therefore the in-memory one
for the same seed, exactly; the driver needs memory for the measurements
(about 24 bytes each plus the episode ids) and the EM arrays, so this path
suits registries whose measurements fit in the driver's memory, not the
largest ones.
"""

from __future__ import annotations

import pandas as pd

from .checks import check_instrument, check_origin
from .registry_mixed import frame_or_reason, raise_for_reasons
from .trajectories import (
    TrajectoryResult,
    check_trajectory_options,
    fit_trajectories_frame,
    trajectory_notes,
    trajectory_rows,
)
from .vocabulary import INSTRUMENT_RANGES

__all__ = ["fit_trajectories_partitioned"]


def _rows(study, instrument, origin, day):
    """One partition's trajectory rows, the counts of rows left out and its episodes table."""
    found = frame_or_reason(study, instrument, origin, include_baseline=True)
    if not isinstance(found, pd.DataFrame):
        return found
    frame, n_late, n_single = trajectory_rows(found, day)
    return {"frame": frame, "n_late": n_late, "n_single": n_single, "episodes": study.episodes}


def fit_trajectories_partitioned(parts, instrument: str = "nrs", k=range(1, 6), time: str = "spline",
                                 degree: int = 2, n_knots: int = 2, origin: str = "onset", n_init: int = 20,
                                 seed: int = 0, variance: str = "class", max_iter: int = 1000, tol: float = 1e-9,
                                 short_iter: int = 30, n_refine: int = 3, smallest_class: float = 0.05,
                                 day: float | None = None, min_n: int = 10) -> TrajectoryResult:
    """:func:`~backpain_outcomes.trajectories.fit_trajectories` of a partitioned study (anything with
    ``.map(fn, *args) -> list`` over in-memory Study partitions); the same arguments and result."""
    instrument, origin = check_instrument(instrument), check_origin(origin)
    ks, degree, day, min_n = check_trajectory_options(k, time, degree, n_knots, n_init, seed, variance, max_iter,
                                                      tol, short_iter, n_refine, smallest_class, day, min_n)
    found = raise_for_reasons(parts.map(_rows, instrument, origin, day), instrument, parts)
    notes = trajectory_notes(sum(p["n_late"] for p in found), sum(p["n_single"] for p in found), day)
    frame = pd.concat([p["frame"] for p in found], ignore_index=True)
    episodes = pd.concat([p["episodes"] for p in found], ignore_index=True)
    return fit_trajectories_frame(frame, episodes, INSTRUMENT_RANGES[instrument], instrument, origin, notes, ks,
                                  time, degree, n_knots, n_init, seed, variance, max_iter, tol, short_iter, n_refine,
                                  smallest_class, day, min_n)
