"""One group's recovery curve, for :func:`~backpain_outcomes.curves.fit_recovery_curves` and its registry
version: the measurements the curves use (baseline included) with the grouping columns, the fit of a group or
why it is not fitted (too few episodes, single measurements, no convergence) with the notes on an extrapolated
b0 or a shortened window, and the group's row of the table (estimates with normal-approximation intervals,
symmetric on the log scale for tau and the half-life)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import ConvergenceWarning, SmallSampleWarning, warn
from .recovery_model import exp_plateau
from .vocabulary import label

__all__ = ["PARAM_COLUMNS", "group_row", "left_out_note", "curve_frame", "fit_group"]

#: Columns of the estimates in :attr:`~backpain_outcomes.curves.RecoveryCurves.table`.
PARAM_COLUMNS = ["b0", "b0_ci_low", "b0_ci_high", "plateau", "plateau_ci_low", "plateau_ci_high", "tau_days",
                 "tau_days_ci_low", "tau_days_ci_high", "half_life_days", "half_life_days_ci_low",
                 "half_life_days_ci_high"]


def group_row(key, n_episodes: int, n_scores: int, by_cols, fit, window, z) -> dict:
    """One row of :attr:`~backpain_outcomes.curves.RecoveryCurves.table`: the group's key, counts, data window
    and the estimates of ``fit`` with normal-approximation CIs (``z``), NaN when it is not usable."""
    row = {**dict(zip(by_cols, key)), "n_episodes": n_episodes, "n_scores": n_scores,
           "first_day": window[0], "last_day": window[1]}
    if fit is None or not fit.converged:
        row.update({c: np.nan for c in PARAM_COLUMNS})
        if fit is not None:  # estimates of a degenerate fit are not reported (NaN), only why
            row.update({"residual_sd": fit.residual_sd, "n_iterations": fit.n_iterations})
        return {**row, "converged": False}
    theta, sd = fit.theta, np.sqrt(np.maximum(np.diag(fit.cov), 0))
    row["start_score"] = float(exp_plateau(window[0], *theta)) if np.isfinite(window[0]) else np.nan
    log_sd = sd[2] / theta[2]
    row.update({"b0": theta[0], "b0_ci_low": theta[0] - z * sd[0], "b0_ci_high": theta[0] + z * sd[0],
                "plateau": theta[1], "plateau_ci_low": theta[1] - z * sd[1], "plateau_ci_high": theta[1] + z * sd[1],
                "tau_days": theta[2], "tau_days_ci_low": theta[2] * np.exp(-z * log_sd),
                "tau_days_ci_high": theta[2] * np.exp(z * log_sd)})
    for suffix in ("", "_ci_low", "_ci_high"):
        row[f"half_life_days{suffix}"] = row[f"tau_days{suffix}"] * np.log(2)
    return {**row, "residual_sd": fit.residual_sd, "converged": True, "n_iterations": fit.n_iterations}


def left_out_note(n_episodes: int, by_cols) -> str:
    """The note on episodes left out for lack of a value of ``by``."""
    return f"{n_episodes} episode(s) without a value of {', '.join(by_cols)} were left out."


def curve_frame(study, by_cols, instrument, origin, scale) -> tuple[pd.DataFrame, int]:
    """Every measurement the curves use (baseline included) with the ``by`` columns, and the number of
    episodes left out for lack of a ``by`` value."""
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=True, scale=scale)
    ep = study.episodes.set_index("episode_id")
    for b in by_cols:
        if b not in frame:
            frame[b] = frame["episode_id"].map(ep[b]).to_numpy()
        if b in ("modality", "chronicity"):
            frame[b] = frame[b].astype(str)
    missing = frame[by_cols].isna().any(axis=1) if by_cols else pd.Series(False, index=frame.index)
    n_out = int(frame.loc[missing, "episode_id"].nunique()) if missing.any() else 0
    return frame[~missing], n_out


def fit_group(key, n_episodes: int, n_scores: int, window, last_day: float, fitter, min_n: int, score_lim,
              notes: list):
    """(fit or None, data window, why it is not fitted or not identified) of one group with ``n_episodes``
    episodes, ``n_scores`` measurements up to ``last_day`` and data ``window``; ``fitter()`` gives its
    :class:`CurveFit`. Warnings (stack level for a call from the function registered for
    :func:`fit_recovery_curves`) for its caller, notes on a converged fit's extrapolated b0 or shortened
    window."""
    name = ", ".join(label(k) for k in key) or "All episodes"
    if n_episodes < min_n:
        why = f"{name}: only {n_episodes} episode(s), fewer than min_n={min_n}; not fitted"
        warn(why, SmallSampleWarning)
        return None, window, why
    if n_episodes == n_scores:
        why = (f"{name}: every episode has a single measurement; a recovery curve needs repeated "
               "measurements, so it is not fitted")
        warn(why, SmallSampleWarning)
        return None, window, why
    fit = fitter()
    if not fit.converged:
        why = f"{name}: {fit.problem}; estimates not reported"
        warn(why, ConvergenceWarning)
        return fit, window, why
    low, high = score_lim
    if not low <= fit.theta[0] <= high:
        notes.append(f"{name}: b0 (the curve at day 0) is {fit.theta[0]:.3g}, outside the score range "
                     f"{low:g}-{high:g}: day 0 lies before the group's data, so b0 is an extrapolation; "
                     f"read start_score (the curve on day {window[0]:g}) instead.")
    if window[1] < last_day:
        notes.append(f"{name}: fewer than {min_n} episodes have measurements after day "
                     f"{window[1]:g}; the curve is shown up to that day.")
    return fit, window, ""
