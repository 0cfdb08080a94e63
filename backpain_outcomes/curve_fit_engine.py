"""One pooled fit of the recovery model, with standard errors that respect repeated measures.

:func:`fit_curve` fits :func:`~backpain_outcomes.recovery_model.exp_plateau`
by least squares to every measurement of a group of episodes, from a start
profiled over tau (:func:`~backpain_outcomes.recovery_model.profile_start`),
and gives the covariance of ``(b0, plateau, tau)`` either as an
episode-clustered sandwich or from an episode bootstrap. Data that do not
identify the curve give ``converged=False`` and the reason
(:func:`~backpain_outcomes.recovery_model.tau_problem`), never a covariance.
:func:`~backpain_outcomes.curves.fit_recovery_curves` runs it once per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from .recovery_model import TAU_BOUNDS, TAU_GRID, exp_plateau, jacobian, solve_normal_equations, tau_problem

__all__ = ["CurveFit", "fit_curve", "fit_curve_sums", "day_sums"]


@dataclass(frozen=True)
class CurveFit:
    """One pooled fit of the recovery model (:func:`fit_curve`).

    ``theta`` is ``(b0, plateau, tau)``; ``cov`` their covariance (NaN where
    not available); ``problem`` says why the fit is not usable (empty when it
    is); ``converged`` is True only for a usable fit.
    """

    theta: np.ndarray
    cov: np.ndarray
    residual_sd: float
    n_iterations: int
    converged: bool
    problem: str
    boot: np.ndarray | None = None


def _cluster_cov(t, y, clusters, theta):
    J = jacobian(t, *theta)
    r = y - exp_plateau(t, *theta)
    bread = np.linalg.pinv(J.T @ J)
    codes, uniq = pd.factorize(clusters)
    G = len(uniq)
    if G < 2:
        return np.full((3, 3), np.nan)
    scores = np.zeros((G, 3))
    np.add.at(scores, codes, J * r[:, None])
    return bread @ (scores.T @ scores) @ bread * G / (G - 1)


def _bootstrap(t, y, clusters, theta, n_boot, rng, progress, bounds):
    codes, uniq = pd.factorize(clusters)
    G = len(uniq)
    order = np.argsort(codes, kind="stable")
    idx_by = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    boot = []
    for _ in range(n_boot):
        ii = np.concatenate([idx_by[k] for k in rng.integers(0, G, G)])
        try:
            rb = optimize.least_squares(lambda p, ii=ii: exp_plateau(t[ii], *p) - y[ii], theta, bounds=bounds,
                                        method="trf")
            boot.append(rb.x)
        except ValueError:
            pass
        if progress is not None:
            progress.update(1)
    boot = np.array(boot).reshape(-1, 3)
    return boot, (np.cov(boot.T) if len(boot) >= 2 else np.full((3, 3), np.nan))


def day_sums(day, score):
    """Distinct days with the count, sum and sum of squares of the scores on each: all
    :func:`fit_curve_sums` needs.

    Examples
    --------
    >>> [v.tolist() for v in day_sums([0.0, 7.0, 0.0], [5.0, 3.0, 6.0])]
    [[0.0, 7.0], [2.0, 1.0], [11.0, 3.0], [61.0, 9.0]]
    """
    t, y = np.asarray(day, float), np.asarray(score, float)
    days, pos = np.unique(t, return_inverse=True)
    return (days, np.bincount(pos, minlength=len(days)).astype(float), np.bincount(pos, y, len(days)),
            np.bincount(pos, y * y, len(days)))


def _profile_start_sums(t, n, sy, syy):
    """The grid tau with the smallest SSE (the first of equals), with its exact (b0, plateau), from sums."""
    e = np.exp(-t[None, :] / TAU_GRID[:, None])
    f = 1 - e
    b0, pl, sse = solve_normal_equations((n * e * e).sum(1), (n * e * f).sum(1), (n * f * f).sum(1),
                                         (e * sy).sum(1), (f * sy).sum(1), np.full(len(TAU_GRID), syy.sum()))
    best = int(np.argmin(sse))
    return np.array([b0[best], pl[best], TAU_GRID[best]])


def _sse_derivatives(theta, t, n, sy, syy):
    """Sum of squares with its exact gradient and Hessian in (b0, plateau, tau), from per-day sums."""
    b0, pl, tau = theta
    e = np.exp(-t / tau)
    f = pl + (b0 - pl) * e
    J = jacobian(t, *theta)
    r = sy - n * f  # per-day sum of residuals
    sse = float(syy.sum() - 2 * (f * sy).sum() + (n * f * f).sum())
    d_bt, d_tt = e * t / tau**2, (b0 - pl) * e * t * (t - 2 * tau) / tau**4
    second = np.zeros((3, 3))
    second[0, 2] = second[2, 0] = (r * d_bt).sum()
    second[1, 2] = second[2, 1] = -(r * d_bt).sum()
    second[2, 2] = (r * d_tt).sum()
    return sse, -2 * J.T @ r, 2 * ((J * n[:, None]).T @ J - second)


def _polish(theta, t, n, sy, syy, steps=5):
    """Newton steps with the exact Hessian from the least-squares optimum, each kept when it lowers the
    sum of squares or, where that is flat to rounding (1e-13 of itself), the gradient: the estimate is
    then fixed by the exact gradient, not by the optimiser's tolerance, so the same data summed in
    another order give the same estimate to far below its standard error."""
    sse, g, H = _sse_derivatives(theta, t, n, sy, syy)
    for _ in range(steps):
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        new = theta + step
        if not (np.all(np.isfinite(new)) and TAU_BOUNDS[0] < new[2] < TAU_BOUNDS[1]):
            break
        sse2, g2, H2 = _sse_derivatives(new, t, n, sy, syy)
        if not (sse2 < sse or (sse2 <= sse + 1e-13 * max(abs(sse), 1.0) and np.linalg.norm(g2) < np.linalg.norm(g))):
            break
        theta, sse, g, H = new, sse2, g2, H2
    return theta


def fit_curve_sums(day, n, sy, syy) -> tuple[np.ndarray, float, int, str]:
    """The least-squares fit of the recovery model from per-day sums (:func:`day_sums`; sums over several
    parts of the data added up): ``(theta, residual_sd, n_iterations, problem)``.

    The residuals :math:`\\sqrt{n_d}(f(t_d) - \\bar y_d)` differ from the per-measurement ones by a
    constant sum of squares, so the optimum is that of all measurements.

    Examples
    --------
    >>> t = np.tile(np.arange(0.0, 100.0, 10.0), 4)
    >>> y = exp_plateau(t, 7.0, 2.0, 20.0) + np.repeat([0.1, -0.1, 0.2, -0.2], 10)
    >>> theta, rsd, _, problem = fit_curve_sums(*day_sums(t, y))
    >>> [round(float(v), 3) for v in theta], problem
    ([7.0, 2.0, 20.0], '')
    """
    t, n, sy, syy = (np.asarray(a, float) for a in (day, n, sy, syy))
    lo, hi = np.array([-np.inf, -np.inf, TAU_BOUNDS[0]]), np.array([np.inf, np.inf, TAU_BOUNDS[1]])
    x0 = np.clip(_profile_start_sums(t, n, sy, syy), lo + 1e-9, hi - 1e-9)
    w, ybar = np.sqrt(n), sy / n
    res = optimize.least_squares(lambda p: w * (exp_plateau(t, *p) - ybar), x0,
                                 jac=lambda p: w[:, None] * jacobian(t, *p), bounds=(lo, hi), method="trf",
                                 xtol=1e-12, ftol=1e-12, gtol=1e-12)
    theta = res.x
    problem = str(tau_problem(np.array([theta[2]]), t[None, :], np.ones((1, len(t)), bool),
                              np.array([theta[0]]), np.array([theta[1]]))[0])
    if not problem and not res.success:
        problem = f"least squares did not converge ({res.message})"
    if not problem:
        theta = _polish(theta, t, n, sy, syy)
    fitted = exp_plateau(t, *theta)
    sse = max(float(syy.sum() - 2 * (fitted * sy).sum() + (n * fitted**2).sum()), 0.0)
    return theta, float(np.sqrt(sse / max(n.sum() - 3, 1))), int(res.nfev), problem


def fit_curve(day, score, cluster, n_boot: int = 0, rng=None, progress=None) -> CurveFit:
    """Fit the recovery model to pooled measurements, with clustered or bootstrap covariance.

    Parameters
    ----------
    day, score : array-like
        Measurements of all episodes of a group.
    cluster : array-like
        Episode of each measurement (the unit of the sandwich and the bootstrap).
    n_boot : int
        0 for the episode-clustered sandwich; otherwise the number of episode
        bootstrap resamples.

    Returns
    -------
    CurveFit
        ``converged`` is False with a ``problem`` when the data do not
        identify the curve (fewer than three distinct days, flat scores, tau on
        its bound); its ``cov`` is then NaN.

    Examples
    --------
    >>> t = np.tile(np.arange(0.0, 100.0, 10.0), 4)
    >>> noise = np.repeat([0.1, -0.1, 0.2, -0.2], 10)  # one offset per episode, mean zero on every day
    >>> fit = fit_curve(t, exp_plateau(t, 7.0, 2.0, 20.0) + noise, np.repeat(np.arange(4), 10))
    >>> fit.converged, [round(float(v), 3) for v in fit.theta]
    (True, [7.0, 2.0, 20.0])
    """
    t, y = np.asarray(day, float), np.asarray(score, float)
    lo, hi = np.array([-np.inf, -np.inf, TAU_BOUNDS[0]]), np.array([np.inf, np.inf, TAU_BOUNDS[1]])
    theta, rsd, n_iter, problem = fit_curve_sums(*day_sums(t, y))
    boot = None
    if problem:
        cov = np.full((3, 3), np.nan)
    elif n_boot:
        boot, cov = _bootstrap(t, y, cluster, theta, n_boot, rng or np.random.default_rng(0), progress, (lo, hi))
    else:
        cov = _cluster_cov(t, y, cluster, theta)
    return CurveFit(theta, cov, rsd, n_iter, not problem, problem, boot)
