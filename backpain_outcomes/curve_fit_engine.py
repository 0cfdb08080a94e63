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

from .recovery_model import TAU_BOUNDS, exp_plateau, jacobian, profile_start, tau_problem

__all__ = ["CurveFit", "fit_curve"]


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
    x0 = np.clip(profile_start(t, y), lo + 1e-9, hi - 1e-9)
    res = optimize.least_squares(lambda p: exp_plateau(t, *p) - y, x0, jac=lambda p: jacobian(t, *p),
                                 bounds=(lo, hi), method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    theta = res.x
    problem = str(tau_problem(np.array([theta[2]]), t[None, :], np.ones((1, len(t)), bool),
                              np.array([theta[0]]), np.array([theta[1]]))[0])
    if not problem and not res.success:
        problem = f"least squares did not converge ({res.message})"
    r = y - exp_plateau(t, *theta)
    rsd = float(np.sqrt(np.sum(r**2) / max(len(y) - 3, 1)))
    boot = None
    if problem:
        cov = np.full((3, 3), np.nan)
    elif n_boot:
        boot, cov = _bootstrap(t, y, cluster, theta, n_boot, rng or np.random.default_rng(0), progress, (lo, hi))
    else:
        cov = _cluster_cov(t, y, cluster, theta)
    return CurveFit(theta, cov, rsd, int(res.nfev), not problem, problem, boot)
