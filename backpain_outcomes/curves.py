"""Recovery curves per group: one exponential decay to a plateau per group of episodes.

.. math:: y(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau},
          \\qquad t_{1/2} = \\tau \\ln 2

(:mod:`backpain_outcomes.recovery_model`), fitted by least squares over every
measurement of the group's episodes (baseline included), on the instrument's
own scale (or 0-100 with ``scale="100"``), with standard errors that respect
repeated measures (episode-clustered sandwich or episode bootstrap).

Curves are tabulated and drawn only over the days where the group has data:
from the day by which ``min_n`` of its episodes have been measured to the last
day on which ``min_n`` of its episodes are still measured, and predictions are
clipped to the instrument's range. The pooled fit of one group, with its
clustered or bootstrap covariance, is
:func:`~backpain_outcomes.curve_fit_engine.fit_curve`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from . import style
from .checks import (
    check_alpha,
    check_bool,
    check_by,
    check_choice,
    check_instrument,
    check_int,
    check_min_n,
    check_origin,
    check_positive,
)
from .curve_fit_engine import CurveFit, fit_curve
from .curve_groups import PARAM_COLUMNS, curve_frame, fit_group, group_row, left_out_note
from .dispatch import on_study
from .recovery_model import exp_plateau, jacobian
from .results import Result
from .vocabulary import INSTRUMENT_RANGES, instrument_label, label

__all__ = ["fit_recovery_curves", "RecoveryCurves", "CurveFit", "fit_curve", "score_range", "check_scale",
           "data_window", "curve_frame", "left_out_note", "fit_group", "group_row", "curves_result"]

SCALES = ("100",)


def check_scale(scale, name: str = "scale"):
    """``None`` (the instrument's own scale) or ``"100"`` (0-100); 100 as a number is accepted."""
    if scale is None:
        return None
    if isinstance(scale, int | float) and not isinstance(scale, bool) and scale == 100:
        return "100"
    return check_choice(scale, name, SCALES)


def score_range(instrument: str, scale=None) -> tuple[float, float]:
    """(low, high) of the scores analysed: the instrument's range, or (0, 100) with ``scale="100"``.

    Examples
    --------
    >>> score_range("nrs"), score_range("rmdq", "100")
    ((0.0, 10.0), (0.0, 100.0))
    """
    return (0.0, 100.0) if scale == "100" else INSTRUMENT_RANGES[instrument]


def data_window(frame: pd.DataFrame, min_n: int) -> tuple[float, float]:
    """Days over which at least ``min_n`` episodes of ``frame`` have data.

    ``(first, last)``: the day by which ``min_n`` episodes have had their
    first measurement, and the last day on which ``min_n`` episodes still have
    a measurement at or after it. ``(nan, nan)`` with fewer than ``min_n``
    episodes, or when the two windows do not overlap.

    Examples
    --------
    >>> f = pd.DataFrame({"episode_id": [1, 1, 2, 2, 3], "day": [0, 50, 5, 80, 10]})
    >>> data_window(f, 2)
    (5.0, 50.0)
    """
    span = frame.groupby("episode_id", sort=False)["day"].agg(["min", "max"])
    if len(span) < min_n:
        return np.nan, np.nan
    first = float(np.sort(span["min"].to_numpy(float))[min_n - 1])
    last = float(np.sort(span["max"].to_numpy(float))[::-1][min_n - 1])
    return (first, last) if first <= last else (np.nan, np.nan)


class RecoveryCurves(Result):
    """Fitted recovery curves per group (:func:`fit_recovery_curves`).

    Attributes
    ----------
    table : DataFrame
        One row per group (machine codes in the group columns): ``b0``,
        ``plateau``, ``tau_days``, ``half_life_days``, each with
        ``_ci_low``/``_ci_high``; ``n_episodes``, ``n_scores``, ``first_day``
        and ``last_day`` (the days over which at least ``min_n`` episodes have
        data: the curve is tabulated and drawn only there), ``residual_sd``,
        ``start_score`` (the curve on ``first_day``; ``b0`` is an extrapolation
        when the group's data start late), ``converged``, ``n_iterations``, ``note`` (why a group is not fitted
        or not identified; NaN estimates and CIs then).
    params : DataFrame
        Alias of ``table``.
    cov : dict
        Covariance of (b0, plateau, tau) per group key (a tuple).
    notes : list of str
    """

    def __init__(self, table, cov, by, instrument, origin, scale, se, alpha, min_n, notes):
        self.table, self.cov, self.by, self.instrument = table, cov, list(by), instrument
        self.origin, self.scale, self.se, self.alpha, self.min_n = origin, scale, se, alpha, min_n
        self.notes = list(notes)
        self._freeze()

    @property
    def params(self) -> pd.DataFrame:
        """Alias of :attr:`table` (per-group parameters)."""
        return self.table

    def _group_name(self, rec) -> str:
        return ", ".join(label(getattr(rec, b)) for b in self.by) or "All episodes"

    def _parts(self):
        t = self.table.copy()
        for b in self.by:
            t[b] = t[b].map(label)
        cols = [*self.by, "b0", "plateau", "tau_days", "half_life_days", "half_life_days_ci_low",
                "half_life_days_ci_high", "n_episodes", "n_scores", "last_day", "converged"]
        return (f"Recovery curves ({label(self.instrument)}, {label(self.origin)}, {self.se} SE)",
                ["model: score = plateau + (b0 - plateau) * exp(-day / tau)", *self.notes],
                {"Parameters": t[[c for c in cols if c in t]]})

    def predict(self, day) -> pd.DataFrame:
        """Predicted mean score per fitted group at ``day`` (one or several days >= 0), delta-method CI.

        Rows cover every requested day; ``in_data`` is False and the values are
        NaN outside the group's ``first_day``-``last_day`` window (no
        extrapolation). Values are clipped to the score range.

        Examples
        --------
        >>> import backpain_outcomes as bpo
        >>> c = bpo.fit_recovery_curves(bpo.load_study(bpo.example_path()), by=None, progress=False)
        >>> c.predict([60, 90])[["day", "in_data"]].values.tolist()
        [[60.0, True], [90.0, True]]
        """
        days = _check_pred_days(day)
        z = stats.norm.ppf(1 - self.alpha / 2)
        low, high = score_range(self.instrument, self.scale)
        rows = []
        for rec in self.table.itertuples(index=False):
            if not rec.converged:
                continue
            key = tuple(getattr(rec, b) for b in self.by)
            theta = np.array([rec.b0, rec.plateau, rec.tau_days])
            J = jacobian(days, *theta)
            sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, self.cov[key], J), 0))
            pred = exp_plateau(days, *theta)
            inside = (days >= rec.first_day) & (days <= rec.last_day)
            rows.append(pd.DataFrame({**dict(zip(self.by, key)), "day": days,
                                      "predicted": np.where(inside, np.clip(pred, low, high), np.nan),
                                      "ci_low": np.where(inside, np.clip(pred - z * sd, low, high), np.nan),
                                      "ci_high": np.where(inside, np.clip(pred + z * sd, low, high), np.nan),
                                      "in_data": inside}))
        if not rows:
            return pd.DataFrame(columns=[*self.by, "day", "predicted", "ci_low", "ci_high", "in_data"])
        return pd.concat(rows, ignore_index=True)

    def plot(self, ax=None, day=None, reference: str | None = "costa2012"):
        """Curves with CI bands per group over each group's data window; optional natural-course reference.

        ``day``: days to draw (default 200 points across each group's window).
        The reference (Costa et al. 2012, pain 0-100 from onset) is drawn for
        pain instruments, on the scale of the curves. One colour per modality
        (:mod:`~backpain_outcomes.style`); with more than ``style.MAX_BANDS``
        groups only the untreated group's band is drawn (the legend says so).
        """
        ax = style.new_axes(ax, figsize=(8, 5))
        fitted = [rec for rec in self.table.itertuples(index=False) if rec.converged]
        keys = [tuple(getattr(rec, b) for b in self.by) for rec in fitted]
        styles = style.group_styles([k[0] if len(k) == 1 else k for k in keys])
        many = len(fitted) > style.MAX_BANDS
        for rec, key in zip(fitted, keys):
            days = np.linspace(rec.first_day, rec.last_day, 200) if day is None else _check_pred_days(day)
            g = self.predict(days)
            for b in self.by:
                g = g[g[b] == getattr(rec, b)]
            g = g[g["in_data"]]
            colour, ls = styles.get(key[0] if len(key) == 1 else key, (style.OKABE_ITO["blue"], "-"))
            ax.plot(g["day"], g["predicted"], label=self._group_name(rec), color=colour, ls=ls, lw=1.6)
            if not many or key == ("untreated",):
                ax.fill_between(g["day"], g["ci_low"], g["ci_high"], alpha=style.CI_ALPHA, color=colour, lw=0)
        if reference and self.instrument in ("nrs", "vas"):
            from .reference import reference_curves
            ref = reference_curves(reference)
            factor = 0.1 if self.instrument == "nrs" and self.scale != "100" else 1.0
            for stratum, g in ref.groupby("stratum"):
                ax.plot(g["day"], g["mean_pain_0_100"] * factor, color="dimgrey", ls="--" if stratum == "acute" else ":",
                        marker="o", ms=3, lw=1, label=f"Natural course, {stratum} (Costa 2012)")
        ax.set_xlabel(label(self.origin), fontsize=style.LABEL_SIZE)
        ax.set_ylabel(f"Mean {instrument_label(self.instrument)}" if self.scale != "100"
                      else f"Mean {label(self.instrument)} (0-100)", fontsize=style.LABEL_SIZE)
        ax.set_ylim(*score_range(self.instrument, self.scale))
        ax.tick_params(labelsize=style.TICK_SIZE)
        level = style.ci_text(self.alpha)
        shade = f"shaded: {level}" + (" of Untreated only (more than 4 groups)" if many else "")
        ax.set_title(f"Recovery curves ({shade})", fontsize=style.TITLE_SIZE)
        style.legend(ax, ncol=2)
        return ax


def _check_pred_days(day) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(day, dtype=object))
    if vals.ndim != 1 or not len(vals):
        raise ValueError(f"day must be a number of days >= 0 or a list of them, got {day!r}")
    return np.array([check_positive(v, "day", allow_zero=True) for v in vals], float)


def _group_frames(frame, by_cols):
    if not by_cols:
        return [((), frame)]
    return [(k if isinstance(k, tuple) else (k,), g) for k, g in frame.groupby(by_cols, observed=True, sort=True)]


def _analysis_frame(study, by_cols, instrument, origin, scale, notes):
    frame, n_out = curve_frame(study, by_cols, instrument, origin, scale)
    if n_out:
        notes.append(left_out_note(n_out, by_cols))
    return frame


def curves_result(rows: list, covs: dict, by_cols, instrument, origin, scale, se, alpha, min_n,
                  notes) -> RecoveryCurves:
    """The :class:`RecoveryCurves` of the group rows (:func:`group_row` plus ``note``) and covariances."""
    order = [*by_cols, *PARAM_COLUMNS, "start_score", "n_episodes", "n_scores", "first_day", "last_day", "residual_sd",
             "converged", "n_iterations", "note"]
    table = pd.DataFrame(rows).reindex(columns=order)
    table["converged"] = table["converged"].astype(bool)
    return RecoveryCurves(table, covs, by_cols, instrument, origin, scale, se, alpha, min_n, notes)


def _fit_groups(groups, by_cols, boot, rng, bar, z, min_n, score_lim, notes):
    """(table rows, covariances of the converged fits) of the groups, ``boot`` bootstrap resamples each."""
    rows, covs = [], {}
    for key, g in groups:
        fit, window, why = fit_group(key, g["episode_id"].nunique(), len(g), data_window(g, min_n),
                                     float(g["day"].max()),
                                     lambda g=g, boot=boot: fit_curve(g["day"].to_numpy(float), g["score"].to_numpy(float),
                                                                      g["episode_id"].to_numpy(), boot, rng, bar),
                                     min_n, score_lim, notes)
        if fit is not None and fit.converged:
            covs[key] = fit.cov
        if why:
            notes.append(why + ".")
        rows.append({**group_row(key, g["episode_id"].nunique(), len(g), by_cols, fit, window, z),
                     "note": why.split(": ", 1)[-1]})
    return rows, covs


@on_study
def fit_recovery_curves(study, by="modality", instrument: str = "nrs", origin: str = "onset",
                        scale: str | None = None, se: str = "cluster", n_boot: int = 200, seed: int = 0,
                        alpha: float = 0.05, min_n: int = 5, progress: bool = True) -> RecoveryCurves:
    """Fit ``score = plateau + (b0 - plateau) * exp(-day / tau)`` per group.

    Parameters
    ----------
    study : Study
    by : str, list of str or None
        Column(s) of ``study.episodes``: ``"modality"``, ``"chronicity"``,
        ``["modality", "chronicity"]``, ...; None fits one curve.
    instrument : str
        Any accepted spelling ("nrs", "NPRS", "Oswestry", ...).
    origin : {"onset", "first_contact"}
        Day 0.
    scale : {None, "100"}
        ``"100"`` fits scores rescaled to 0-100.
    se : {"cluster", "bootstrap"}
        Episode-clustered sandwich (default) or an episode bootstrap of
        ``n_boot`` resamples (tqdm progress bar when ``progress``).
    n_boot, seed : int
        Bootstrap resamples and random seed.
    alpha : float
        1 - confidence level.
    min_n : int
        Groups with fewer episodes are listed, not fitted (NaN,
        ``converged=False``, a note and a :class:`SmallSampleWarning`). Also
        the number of episodes that must still have data for a curve to be
        tabulated and drawn at a day.
    progress : bool

    Returns
    -------
    RecoveryCurves

    Notes
    -----
    Starting values come from profiling tau over a log grid with (b0,
    plateau) solved exactly, so the fit does not depend on a user's guess.
    A group whose data do not identify the curve (measurements on fewer than
    three distinct days, no change over follow-up, tau on its bound) is
    reported with NaN estimates, ``converged=False`` and the reason. CIs of
    tau and the half-life are symmetric on the log scale.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> curves = bpo.fit_recovery_curves(bpo.load_study(bpo.example_path()), progress=False)
    >>> {"b0", "plateau", "tau_days", "half_life_days", "last_day"} <= set(curves.table.columns)
    True
    """
    if not hasattr(study, "analysis_frame"):
        raise TypeError(f"study must be a Study (load_study or simulate_study), got {type(study).__name__}")
    by_cols = check_by(by, study.episodes.columns)
    instrument, origin = check_instrument(instrument), check_origin(origin)
    scale, se = check_scale(scale), check_choice(se, "se", ("cluster", "bootstrap"))
    n_boot, seed = check_int(n_boot, "n_boot", low=2), check_int(seed, "seed", low=0)
    alpha, min_n, progress = check_alpha(alpha), check_min_n(min_n), check_bool(progress, "progress")
    notes: list[str] = []
    frame = _analysis_frame(study, by_cols, instrument, origin, scale, notes)
    groups = _group_frames(frame, by_cols)
    bar = None
    if se == "bootstrap" and progress:
        bar = tqdm(total=n_boot * len(groups), desc="episode bootstrap", leave=False)
    rows, covs = _fit_groups(groups, by_cols, n_boot if se == "bootstrap" else 0, np.random.default_rng(seed), bar,
                             stats.norm.ppf(1 - alpha / 2), min_n, score_range(instrument, scale), notes)
    if bar is not None:
        bar.close()
    return curves_result(rows, covs, by_cols, instrument, origin, scale, se, alpha, min_n, notes)
