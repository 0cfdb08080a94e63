"""Pooled recovery curves of a partitioned study, from per-day sums.

For a fixed ``tau`` the recovery model is linear in ``(b0, plateau)``
(:mod:`backpain_outcomes.recovery_model`), and the least-squares criterion of
a group is

.. math:: \\sum_d \\big[S_{yy,d} - 2 f(t_d) S_{y,d} + n_d f(t_d)^2\\big]

over its distinct days :math:`t_d`, with :math:`n_d` measurements, score sum
:math:`S_{y,d}` and sum of squares :math:`S_{yy,d}` on day *d*. Each
partition returns these per (group, day), with each group's episode count and
the ``min_n`` earliest first days and latest last days of its episodes (the
data window); the driver adds them up and fits each group with
:func:`~backpain_outcomes.curve_fit_engine.fit_curve_sums`, the very code the
in-memory :func:`~backpain_outcomes.curve_fit_engine.fit_curve` runs on the
same sums. The episode-clustered sandwich
needs each episode's score :math:`\\sum_j J_j r_j` at the estimate: a second
pass returns, per group, the sum of their outer products and the number of
episodes. The episode bootstrap refits resamples of all measurements and is
refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .checks import (
    check_alpha,
    check_bool,
    check_by,
    check_choice,
    check_instrument,
    check_int,
    check_min_n,
    check_origin,
)
from .curve_fit_engine import CurveFit, fit_curve_sums
from .curves import (
    RecoveryCurves,
    check_scale,
    curve_frame,
    curves_result,
    fit_group,
    group_row,
    left_out_note,
    score_range,
)
from .recovery_model import exp_plateau, jacobian
from .registry_mixed import frame_or_reason, raise_for_reasons

__all__ = ["fit_recovery_curves_partitioned"]

_SUMS = ["n", "sy", "syy"]


# ------------------------------------------------------------------ per partition
def _frame(study, by_cols, instrument, origin, scale):
    found = frame_or_reason(study, instrument, origin, include_baseline=True, scale=scale)
    return found if not isinstance(found, pd.DataFrame) else curve_frame(study, by_cols, instrument, origin, scale)


def _day_sums(study, by_cols, instrument, origin, scale, min_n):
    """Per (group, day) count, sum and sum of squares of the scores; per group the episode and score counts
    and the ``min_n`` earliest first days and latest last days of its episodes."""
    found = _frame(study, by_cols, instrument, origin, scale)
    if not isinstance(found, tuple):
        return found
    frame, n_out = found
    keys = [*by_cols, "day"]
    sums = (frame.assign(n=1.0, sy=frame["score"], syy=frame["score"] ** 2)
            .groupby(keys, observed=True, sort=True)[_SUMS].sum().reset_index())
    groups = {}
    for key, g in (frame.groupby(by_cols, observed=True, sort=True) if by_cols else [((), frame)]):
        span = g.groupby("episode_id", sort=False)["day"].agg(["min", "max"])
        groups[key if isinstance(key, tuple) else (key,)] = (
            len(span), len(g), np.sort(span["min"].to_numpy(float))[:min_n],
            np.sort(span["max"].to_numpy(float))[::-1][:min_n])
    return {"sums": sums, "groups": groups, "n_out": n_out}


def _episode_scores(study, by_cols, instrument, origin, scale, thetas):
    """Per fitted group: the sum over its episodes of the outer product of each episode's score
    ``sum_j J_j r_j`` at ``thetas[key]``, and its number of episodes."""
    found = _frame(study, by_cols, instrument, origin, scale)
    if not isinstance(found, tuple):
        return {}
    frame = found[0]
    out = {}
    for key, g in (frame.groupby(by_cols, observed=True, sort=True) if by_cols else [((), frame)]):
        key = key if isinstance(key, tuple) else (key,)
        if key not in thetas:
            continue
        t, y = g["day"].to_numpy(float), g["score"].to_numpy(float)
        J = jacobian(t, *thetas[key])
        codes, uniq = pd.factorize(g["episode_id"])
        scores = np.zeros((len(uniq), 3))
        np.add.at(scores, codes, J * (y - exp_plateau(t, *thetas[key]))[:, None])
        out[key] = (scores.T @ scores, len(uniq))
    return out


# ------------------------------------------------------------------ driver
def _fit_sums(sums):
    """The :class:`CurveFit` of one group's per-day sums, its covariance still NaN (second pass)."""
    theta, rsd, n_iter, problem = fit_curve_sums(sums["day"], sums["n"], sums["sy"], sums["syy"])
    return CurveFit(theta, np.full((3, 3), np.nan), rsd, n_iter, not problem, problem)


def _window(mins, maxs, n_episodes, min_n):
    """:func:`~backpain_outcomes.curves.data_window` from the earliest first days and latest last days."""
    if n_episodes < min_n:
        return np.nan, np.nan
    first, last = float(np.sort(mins)[min_n - 1]), float(np.sort(maxs)[::-1][min_n - 1])
    return (first, last) if first <= last else (np.nan, np.nan)


def _merge_groups(found):
    """Per group key (sorted as pandas sorts group keys): episodes, scores, earliest and latest days."""
    merged: dict = {}
    for part in found:
        for key, (n_ep, n_sc, mins, maxs) in part["groups"].items():
            old = merged.get(key, (0, 0, np.empty(0), np.empty(0)))
            merged[key] = (old[0] + n_ep, old[1] + n_sc, np.r_[old[2], mins], np.r_[old[3], maxs])
    return merged


def _sandwich(sums, theta, meat, n_clusters):
    """``bread @ meat @ bread * G / (G - 1)`` with the bread ``pinv(J'J)`` from the per-day counts."""
    if n_clusters < 2:
        return np.full((3, 3), np.nan)
    t, n = sums["day"].to_numpy(float), sums["n"].to_numpy(float)
    J = jacobian(t, *theta)
    bread = np.linalg.pinv((J * n[:, None]).T @ J)
    return bread @ meat @ bread * n_clusters / (n_clusters - 1)


def fit_recovery_curves_partitioned(parts, by="modality", instrument: str = "nrs", origin: str = "onset",
                                    scale: str | None = None, se: str = "cluster", n_boot: int = 200,
                                    seed: int = 0, alpha: float = 0.05, min_n: int = 5,
                                    progress: bool = True) -> RecoveryCurves:
    """:func:`~backpain_outcomes.curves.fit_recovery_curves` of a partitioned study (anything with
    ``.map(fn, *args) -> list`` over in-memory Study partitions and ``episode_columns``), from per-day
    sums and per-episode scores; the same arguments and result. ``se="bootstrap"`` is refused."""
    by_cols = check_by(by, pd.Index(parts.episode_columns))
    instrument, origin = check_instrument(instrument), check_origin(origin)
    scale, se = check_scale(scale), check_choice(se, "se", ("cluster", "bootstrap"))
    check_int(n_boot, "n_boot", low=2), check_int(seed, "seed", low=0)
    alpha, min_n = check_alpha(alpha), check_min_n(min_n)
    check_bool(progress, "progress")
    if se == "bootstrap":
        raise ValueError("se='bootstrap' refits resamples of every measurement, which a partitioned study does "
                         "not hold in one place; use se='cluster' (the episode-clustered sandwich)")
    found = raise_for_reasons(parts.map(_day_sums, by_cols, instrument, origin, scale, min_n), instrument, parts)
    notes: list[str] = []
    n_out = sum(p["n_out"] for p in found)
    if n_out:
        notes.append(left_out_note(n_out, by_cols))
    sums = (pd.concat([p["sums"] for p in found], ignore_index=True)
            .groupby([*by_cols, "day"], observed=True, sort=True)[_SUMS].sum().reset_index())
    groups = _merge_groups(found)
    by_key = dict(iter(sums.groupby(by_cols, observed=True, sort=True))) if by_cols else {(): sums}
    by_key = {k if isinstance(k, tuple) else (k,): g for k, g in by_key.items()}
    z = stats.norm.ppf(1 - alpha / 2)
    results = {}
    for key in sorted(groups, key=lambda k: list(by_key).index(k)):
        n_ep, n_sc, mins, maxs = groups[key]
        g = by_key[key]
        group_notes: list[str] = []
        fit = fit_group(key, n_ep, n_sc, _window(mins, maxs, n_ep, min_n), float(g["day"].max()),
                        lambda g=g: _fit_sums(g), min_n,
                        score_range(instrument, scale), group_notes)
        results[key] = (*fit, group_notes)
    thetas = {k: r[0].theta for k, r in results.items() if r[0] is not None and r[0].converged}
    meats: dict = {}
    for part in parts.map(_episode_scores, by_cols, instrument, origin, scale, thetas):
        for key, (m, g) in part.items():
            old = meats.get(key, (np.zeros((3, 3)), 0))
            meats[key] = (old[0] + m, old[1] + g)
    rows, covs = [], {}
    for key, (fit, window, why, group_notes) in results.items():
        notes.extend(group_notes)
        if key in thetas:
            fit = CurveFit(fit.theta, _sandwich(by_key[key], fit.theta, *meats[key]), fit.residual_sd,
                           fit.n_iterations, True, "")
            covs[key] = fit.cov
        if why:
            notes.append(why + ".")
        rows.append({**group_row(key, groups[key][0], groups[key][1], by_cols, fit, window, z),
                     "note": why.split(": ", 1)[-1]})
    return curves_result(rows, covs, by_cols, instrument, origin, scale, se, alpha, min_n, notes)
