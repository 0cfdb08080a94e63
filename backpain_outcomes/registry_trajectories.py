r"""Trajectory classes of a partitioned study: EM on per-partition sums, no measurement on the driver.

Given class *c* the scores of episode *i* follow
:math:`y_{ij} \mid c \sim N(B(t_{ij})^\top\beta_c, \sigma_c^2)`, :math:`P(c) = \pi_c`
(:mod:`backpain_outcomes.lcga`). With posteriors :math:`w_{ic}` the M-step needs only the sums, over
episodes, of

.. math:: A_c = \sum_i w_{ic} S_i,\quad r_c = \sum_i w_{ic} b_i,\quad q_c = \sum_i w_{ic}\, y_i^\top y_i,
          \quad m_c = \sum_i w_{ic} n_i,\quad W_c = \sum_i w_{ic}

with :math:`S_i = B_i^\top B_i`, :math:`b_i = B_i^\top y_i` and :math:`n_i` measurements:
:math:`\beta_c = (A_c + 10^{-10} I)^{-1} r_c` on the directions the days identify (0 on the others,
:func:`~backpain_outcomes.lcga.solve_classes`), the weighted residual sum of squares is
:math:`q_c - 2 r_c^\top\beta_c + \beta_c^\top A_c \beta_c` (computed from the weighted sums of the squared
residuals :math:`e_c` and of :math:`g_c = \sum_i w_{ic} B_i^\top(y_i - B_i\rho_c)` at the coefficients
:math:`\rho_c` of the E-step, :math:`e_c - 2 g_c^\top d + d^\top A_c d` with :math:`d = \beta_c - \rho_c`, so
that no sums of squared scores are subtracted; :func:`~backpain_outcomes.registry_lcga.mstep_from_sums`),
:math:`\sigma_c^2` that sum over
:math:`m_c` (over :math:`\sum_c m_c` for a common variance, both bounded below by the variance floor)
and :math:`\pi_c = W_c / E`. The E-step of an episode needs only its own :math:`S_i, b_i, y_i^\top y_i,
n_i`. Every partition holds whole episodes, so:

1. one map gives each partition's episode ids, the count of every day, the scores' count, mean, sum of
   squared deviations, minimum and maximum, and the rows left out. The driver merges them: the spline
   knots are ``np.quantile`` of all days, exactly (:func:`~backpain_outcomes.lcga.exact_quantiles` of the
   merged counts), the variance floor comes from the merged sums (Chan's formula), the constant-score
   check from the merged minimum and maximum;
2. every partition computes its episodes' statistics on that basis and keeps them, with its rows' episode,
   day and score, where they were computed (:meth:`~backpain_outcomes.registry_partitions.Partitions.hold`:
   on the Dask workers) until the fit ends;
3. each EM iteration is one map (:class:`~backpain_outcomes.registry_lcga.PartitionedEM`): the driver
   sends the parameters of every run under way (all random starts advance together, then all refined
   runs), each partition returns per run its log-likelihood and the sums above, and the driver adds them
   and runs the M-step. The random starts are those of the in-memory fit: the driver sorts all episode
   ids as :func:`~backpain_outcomes.lcga.sort_episodes` does, draws ``rng.integers(0, K, E)`` per start in
   the same sequence, and sends each partition its slice by global rank;
4. for the best fit of each k one more map returns the posteriors of each partition's episodes and what
   describes the classes: per class its number of episodes, the ``min_n`` smallest first days and ``min_n``
   largest last days of its episodes (merged, they give the class's data window exactly) and per day the
   number and sum of its members' scores (the misfit note,
   :func:`~backpain_outcomes.trajectory_classes.class_misfit`); the curves' covariance uses :math:`A_c`.

The estimates equal the in-memory fit's up to the order of floating-point sums (about 1e-12 relative).
Memory on the driver: no measurement rows. At the end it holds, per episode, the id (a Python string,
about 60 bytes), one row of 8-byte posteriors per fitted k (8 x sum of k bytes: 120 for k = 1..5) and the
described result's ``classes`` table (8 x (k + 3) bytes with the reference to the id): about 220 bytes per
episode for k = 1..5; during the fit also the global ranks and one start's class numbers and its slices
(24 bytes per episode). The workers hold, per episode,
:math:`p^2 + 2p + 4` statistics (52 numbers, 416 bytes with the six spline columns) and 24 bytes per
measurement. The spaghetti of ``plot`` and the columns of ``crosstab`` are read from the partitions when
called (the result keeps a reference to the partitioned study, which must still be open).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_instrument, check_origin
from .lcga import TimeBasis
from .registry_lcga import PartitionedEM, partition_state, partition_summary
from .registry_mixed import frame_or_reason, raise_for_reasons
from .trajectories import (
    TrajectoryResult,
    check_enough_episodes,
    check_scores_vary,
    check_trajectory_options,
    enumeration_table,
    trajectory_notes,
    trajectory_rows,
)
from .trajectory_classes import basis_notes
from .vocabulary import INSTRUMENT_RANGES

__all__ = ["fit_trajectories_partitioned", "PartitionRows", "PartitionEpisodeColumns"]


def _rows_of(study, ids, instrument, origin, day):
    found = frame_or_reason(study, instrument, origin, include_baseline=True)
    if not isinstance(found, pd.DataFrame):
        return pd.DataFrame()
    return trajectory_rows(found[found["episode_id"].isin(ids)], day)[0]


def _link(parts) -> tuple:
    """(the partitions, how to open them again) kept by a result for ``plot`` and ``crosstab``."""
    directory = getattr(parts, "directory", None)
    return parts, None if directory is None else f"load_partitioned({str(directory)!r})"


def _open_parts(link, what: str):
    """The partitions of ``link`` (:func:`_link`), or a ValueError saying what to do when they are closed or
    were left behind by pickling; ``what`` is "plot", "crosstab" or "fit_trajectories"."""
    parts, again = link
    if parts is None:
        why = "this result was unpickled, and a pickled result keeps no link to its registry"
    elif parts.closed:
        why = f"the registry ({parts!r}) is closed (study.close(), the end of its with block, or its Dask client stopped)"
    else:
        return parts
    reopen = again or "load_partitioned(directory)"
    if what == "fit_trajectories":
        raise ValueError(f"fit_trajectories needs an open registry, but {why}: open it again with {reopen}")
    read = "episodes' measurements" if what == "plot" else "episodes table"
    extra = "; plot(n_spaghetti=0) draws the class curves alone" if what == "plot" else ""
    raise ValueError(f"{what} reads the {read} from the registry's partitions, but {why}: call {what} "
                     f"before closing the registry, or fit again on {reopen}{extra}")


class _Linked:
    """Holds ``link`` (:func:`_link`); a pickled copy keeps no link to the registry (a Dask client cannot be
    pickled), while ``copy.copy`` and ``copy.deepcopy`` share it."""

    link: tuple

    def __getstate__(self) -> dict:
        return {**self.__dict__, "link": (None, self.link[1])}

    def __copy__(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo):
        return self.__copy__()


class PartitionRows(_Linked):
    """The trajectory rows of some episodes, read from the partitions (the spaghetti of ``plot``); the
    registry must still be open, and a pickled copy keeps no link to it."""

    def __init__(self, parts, instrument, origin, day):
        self.link, self.args = _link(parts), (instrument, origin, day)

    def __call__(self, episode_ids) -> pd.DataFrame:
        ids = set(episode_ids)
        parts = _open_parts(self.link, "plot")
        frames = [f for f in parts.map(_rows_of, ids, *self.args) if len(f)]
        if not frames:
            return pd.DataFrame({"episode_id": [], "day": [], "score": []})
        return pd.concat(frames, ignore_index=True).sort_values(["episode_id", "day"], kind="stable")


def _episode_column(study, column):
    return study.episodes.set_index("episode_id")[column]


class PartitionEpisodeColumns(_Linked):
    """A column of the partitions' episodes tables by episode id (``crosstab``); ``columns`` lists them. The
    registry must still be open, and a pickled copy keeps no link to it."""

    def __init__(self, parts):
        self.link, self.columns = _link(parts), list(parts.episode_columns)

    def __call__(self, column: str) -> pd.Series:
        return pd.concat(_open_parts(self.link, "crosstab").map(_episode_column, column))


def _merged(summaries):
    """(ids in global order, each partition's global ranks, day counts, score variance, min, max)."""
    ids = [s["ids"] if isinstance(s, dict) else pd.Series([], dtype=object) for s in summaries]
    all_ids = pd.concat(ids, ignore_index=True)
    order = all_ids.sort_values(kind="stable").index.to_numpy()
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    ranks = np.split(rank, np.cumsum([len(i) for i in ids])[:-1])
    found = [s for s in summaries if isinstance(s, dict) and s["n"]]
    days = pd.concat([s["days"] for s in found]).groupby(level=0).sum().sort_index() if found else pd.Series()
    n = sum(s["n"] for s in found)
    mean = sum(s["n"] * s["mean"] for s in found) / max(n, 1)
    m2 = sum(s["m2"] + s["n"] * (s["mean"] - mean) ** 2 for s in found)
    lo, hi = min((s["min"] for s in found), default=np.nan), max((s["max"] for s in found), default=np.nan)
    return np.asarray(all_ids.to_numpy()[order]), ranks, days, m2 / max(n, 1), lo, hi


def _check_whole_episodes(eps) -> None:
    """The error when an episode id has rows in two partitions (``eps`` sorted): each would count as an episode."""
    twice = np.unique(eps[1:][eps[1:] == eps[:-1]]) if len(eps) > 1 else eps[:0]
    if len(twice):
        raise ValueError(f"{len(twice)} episode id(s) have measurements in more than one partition (e.g. "
                         f"{', '.join(map(repr, twice[:5]))}): partitions must hold whole patients and each "
                         "episode id one patient's episode; fix the ids or rebuild the partitions")


def fit_trajectories_partitioned(parts, instrument: str = "nrs", k=range(1, 6), time: str = "spline",
                                 degree: int = 2, n_knots: int = 2, origin: str = "onset", n_init: int = 20,
                                 seed: int = 0, variance: str = "class", max_iter: int = 1000, tol: float = 1e-9,
                                 short_iter: int = 30, n_refine: int = 3, smallest_class: float = 0.05,
                                 day: float | None = None, min_n: int = 10) -> TrajectoryResult:
    """:func:`~backpain_outcomes.trajectories.fit_trajectories` of a partitioned study (anything with
    ``map`` and ``hold`` over in-memory Study partitions, :class:`~backpain_outcomes.registry.Partitions`);
    the same arguments and result, with no measurement rows gathered on the driver."""
    instrument, origin = check_instrument(instrument), check_origin(origin)
    _open_parts(_link(parts), "fit_trajectories")
    ks, degree, day, min_n = check_trajectory_options(k, time, degree, n_knots, n_init, seed, variance, max_iter,
                                                      tol, short_iter, n_refine, smallest_class, day, min_n)
    summaries = parts.map(partition_summary, instrument, origin, day)
    found = raise_for_reasons(summaries, instrument, parts)
    notes = trajectory_notes(sum(p["n_late"] for p in found), sum(p["n_single"] for p in found), day)
    eps, ranks, days, var, low, high = _merged(summaries)
    del summaries, found  # the partitions' id tables: the ids are now in eps
    _check_whole_episodes(eps)
    check_enough_episodes(len(eps), ks)
    basis = TimeBasis.from_counts(days.index.to_numpy(float), days.to_numpy(), time, degree, n_knots, scale=day)
    notes += basis_notes(basis, days.index.to_numpy(float))
    check_scores_vary(low, high, instrument)
    p = basis(np.zeros(1)).shape[1]
    opts = {"n_init": n_init, "short_iter": short_iter, "max_iter": max_iter, "tol": tol, "n_refine": n_refine,
            "common": variance == "common", "var_floor": 1e-6 * max(var, 1e-12)}
    held = parts.hold(partition_state, instrument, origin, day, basis)
    try:
        em = PartitionedEM(held, ranks, p, opts)
        rng = np.random.default_rng(int(seed))  # a whole float (3.0) is accepted as a seed
        fits = {K: em.fit(K, rng, min_n) for K in ks}
    finally:
        held.release()
    lo, hi = INSTRUMENT_RANGES[instrument]
    context = {"basis": basis, "episodes": eps, "rows_of": PartitionRows(parts, instrument, origin, day),
               "episode_columns": PartitionEpisodeColumns(parts), "instrument": instrument, "origin": origin,
               "min_n": min_n, "low": lo, "high": hi, "last_day": float(days.index[-1]), "notes": notes,
               "n_maps": em.n_maps}
    return enumeration_table(fits, ks, p, len(eps), variance, smallest_class, context)
