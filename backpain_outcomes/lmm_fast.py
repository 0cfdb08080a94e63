"""Exact, vectorised (RE)ML for longitudinal mixed models with q <= 2 random effects per group.

Model: :math:`y_g = X_g\\beta + Z_g b_g + e_g`, :math:`b_g \\sim N(0, \\sigma^2 \\Sigma)`,
:math:`\\Sigma = \\Lambda\\Lambda^T`, :math:`e_g \\sim N(0, \\sigma^2 I)`, with :math:`\\Lambda`
lower triangular (lme4's parametrisation theta, Bates et al. 2015 J Stat Softw 67(1)). With the
per-group sufficient statistics :math:`S_g = Z_g^TZ_g`, :math:`Z_g^TX_g`, :math:`Z_g^Ty_g`,
:math:`T_g = (I + S_g\\Sigma)^{-1}` and :math:`W_g = \\Sigma T_g`:

.. math::
    A = X^TX - \\sum_g X_g^TZ_g W_g Z_g^TX_g, \\quad
    c = X^Ty - \\sum_g X_g^TZ_g W_g Z_g^Ty_g, \\quad
    r^2 = y^Ty - \\sum_g y_g^TZ_g W_g Z_g^Ty_g - c^T\\hat\\beta

with :math:`\\hat\\beta = A^{-1}c`; the profiled deviances are

.. math::
    -2\\ell_{ML} = \\sum_g \\log|I + S_g\\Sigma| + n\\,[1 + \\log(2\\pi r^2/n)], \\\\
    -2\\ell_{REML} = \\sum_g \\log|I + S_g\\Sigma| + \\log|A| + (n-p)\\,[1 + \\log(2\\pi r^2/(n-p))].

Derivatives are exact. With :math:`P_g = T_g Z_g^TX_g` (:math:`= Z_g^TV_g^{-1}X_g`),
:math:`u_g = T_g(Z_g^Ty_g - Z_g^TX_g\\hat\\beta)`, :math:`K_g = T_g S_g` and
:math:`Q_g = P_g A^{-1} P_g^T`, a change :math:`d\\Sigma` moves the REML deviance by
:math:`\\mathrm{tr}(G\\,d\\Sigma)` with
:math:`G = \\sum_g K_g - \\sum_g Q_g - (n-p)/r^2 \\sum_g u_g u_g^T`; the second
derivatives follow from :math:`dK_g = -K_g d\\Sigma K_g`, :math:`dP_g = -K_g d\\Sigma P_g`
and the envelope theorem for :math:`r^2` (see :func:`deviance_derivatives`). Every group
enters through batched 2x2 algebra and a few (p x G)(G x p) products, so one evaluation
with gradient and Hessian costs O(G q^2 p^2) with no Python loop over groups.

The q (q + 1) / 2 parameters are found by a projected Newton method (exact
Hessian, backtracking line search, the diagonal of :math:`\\Lambda` bounded
below by 0) from one method-of-moments start (:func:`moment_start`); lme4's
Newton-step check at the optimum then uses the same exact Hessian.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_limits

from .lmm_deviance import (
    conditional_residuals,
    derivatives_from_terms,
    deviance_derivatives,
    deviance_terms,
    profiled_deviance,
)
from .lmm_stats import BLOCK_GROUPS, GroupStats, singular_columns

__all__ = ["GroupStats", "LMMFit", "profiled_deviance", "deviance_derivatives", "moment_start", "fit_lmm",
           "fit_lmm_stats", "singular_columns"]


@dataclass(frozen=True)
class LMMFit:
    """Estimates of a linear mixed model, in the units of the design matrices given to the fitter.

    Attributes
    ----------
    beta, cov_fe : ndarray
        Fixed effects and their conditional covariance
        :math:`\\sigma^2 (X^TV^{-1}X)^{-1}`.
    cov_re : ndarray (q, q)
        Covariance of the random effects.
    sigma2 : float
        Residual variance.
    llf : float
        Maximised log-likelihood (REML criterion when fitted by REML).
    converged : bool
    message : str
        The optimiser's own message.
    n_iter : int
    newton_step_rel : float
        Largest relative move of a variance parameter that a Newton step from
        the optimum would still make (lme4's convergence check; NaN when not
        computed).
    at_boundary : list of int
        Parameters of the relative covariance factor estimated at zero.
    blup : ndarray (G, q)
        Conditional modes of the random effects per group.
    groups : ndarray or pandas.Index (G,)
        Group labels in the order of ``blup`` (as the statistics hold them: an
        Index when merged from parts, so that text labels are not turned into
        Python objects).
    theta : ndarray
        Relative covariance factor (lme4's theta; empty when not available).
    re_names : list of str
        Names of the random effects (empty when the caller names them).
    """

    beta: np.ndarray
    cov_fe: np.ndarray
    cov_re: np.ndarray
    sigma2: float
    llf: float
    converged: bool
    message: str
    n_iter: int
    newton_step_rel: float
    at_boundary: list
    blup: np.ndarray
    groups: np.ndarray
    theta: np.ndarray = field(default_factory=lambda: np.empty(0))
    re_names: list = field(default_factory=list)


def moment_start(s: GroupStats) -> np.ndarray | None:
    """A starting theta from the method of moments: per-group least squares on the pooled OLS residuals.

    The residual variance comes from the within-group residual sum of
    squares, the random-effect covariance from the spread of the per-group
    coefficients less their average sampling covariance (eigenvalues floored
    just above zero); theta is the Cholesky factor of their ratio. Groups whose
    :math:`Z^TZ` is singular or that have no more rows than random effects do
    not enter the covariance. None when no group qualifies.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(400), 6)
    >>> X = Z = np.ones((2400, 1))
    >>> y = rng.normal(0, 2, 400)[g] + rng.normal(0, 1, 2400)  # theta = 2
    >>> bool(abs(moment_start(GroupStats(X, Z, y, g))[0] - 2) < 0.2)
    True
    """
    q = s.q
    beta = np.linalg.solve(s.XtX, s.Xty)
    rss = s.yty - beta @ s.Xty
    sums = [_moment_sums(blk, beta) for blk in s.blocks(BLOCK_GROUPS)]
    fitted, rank, n_ok, bb, si = (sum(part[i] for part in sums) for i in range(5))
    sigma2 = (rss - fitted) / max(s.n - s.p - rank, 1)
    if not sigma2 > 0:
        sigma2 = rss / max(s.n - s.p, 1)
    if not n_ok or not sigma2 > 0:
        return None
    cov = np.array([[bb[a][c] / n_ok - sigma2 * (si[a][c] / n_ok) for c in range(q)] for a in range(q)]) / sigma2
    w, V = np.linalg.eigh(cov)
    w = np.maximum(w, 1e-8 * max(w.max(), 1e-8))
    Lc = np.linalg.cholesky(V @ np.diag(w) @ V.T)
    return np.array([Lc[0, 0]]) if q == 1 else np.array([Lc[0, 0], Lc[1, 0], Lc[1, 1]])


def _moment_sums(s: GroupStats, beta):
    """:func:`moment_start`'s sums over the groups of one block: the fitted sum of squares, the summed
    ranks, and over the groups that qualify their number and the sums of :math:`b_ab_c` and of
    :math:`(Z^TZ)^{-1}`."""
    q, S = s.q, s.zz
    z = [s.zy[a] - s.Zx[a] @ beta for a in range(q)]
    tr = sum(S[a][a] for a in range(q))
    det = S[0][0] if q == 1 else S[0][0] * S[1][1] - S[0][1] ** 2
    full = det > 1e-10 * np.maximum(np.prod([S[a][a] for a in range(q)], axis=0), 1e-300)
    sdet = np.where(full, det, 1.0)
    Si = [[1.0 / sdet]] if q == 1 else [[S[1][1] / sdet, -S[0][1] / sdet], [-S[1][0] / sdet, S[0][0] / sdet]]
    b = [sum(Si[a][c] * z[c] for c in range(q)) for a in range(q)]
    zSz = sum(z[a] * S[a][c] * z[c] for a in range(q) for c in range(q))  # rank one: z' S z / tr(S)^2
    fitted = np.where(full, sum(z[a] * b[a] for a in range(q)), np.where(tr > 0, zSz / np.where(tr > 0, tr, 1) ** 2, 0))
    rank = np.where(full, q, (tr > 0).astype(int))
    ok = full & (s.size > q)
    return (fitted.sum(), rank.sum(), int(ok.sum()),
            np.array([[np.sum(b[a][ok] * b[c][ok]) for c in range(q)] for a in range(q)]),
            np.array([[np.sum(Si[a][c][ok]) for c in range(q)] for a in range(q)]))


def fit_lmm(X, Z, y, groups, reml: bool = True, starts=None) -> LMMFit:
    """Fit the model by exact profiled (RE)ML; return an :class:`LMMFit` (in the units of X and Z).

    Parameters
    ----------
    X : ndarray (n, p)
        Fixed-effects design, of full column rank.
    Z : ndarray (n, q), q in {1, 2}
        Random-effects design.
    y : ndarray (n,)
    groups : array-like (n,)
    reml : bool
    starts : list of lists, optional
        Starting values of lme4's theta (``[l11]`` or ``[l11, l21, l22]``);
        by default one start from :func:`moment_start`. With several, the
        best optimum is kept.

    Raises
    ------
    ValueError
        For more than two random effects, fewer than two groups, a
        fixed-effects design that is not of full rank (naming the columns), or
        a response the fixed effects reproduce exactly.

    Notes
    -----
    BLAS is limited to one thread while fitting: the products are small and
    many, and multi-threaded BLAS spends more time waking threads than
    computing (measured 2x slower on this 2-core machine under load).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(50), 4)
    >>> X = np.column_stack([np.ones(200), np.tile(np.arange(4.0), 50)])
    >>> y = X @ [5.0, -1.0] + rng.normal(0, 1, 50)[g] + rng.normal(0, 0.5, 200)
    >>> fit = fit_lmm(X, X[:, :1], y, g)
    >>> fit.converged, fit.beta.round(1).tolist()
    (True, [5.0, -1.0])
    """
    X, Z, y = np.asarray(X, float), np.asarray(Z, float), np.asarray(y, float)
    if Z.ndim != 2 or Z.shape[1] not in (1, 2):
        raise ValueError(f"Z must have one or two columns (random effects per group), got shape {Z.shape}")
    with threadpool_limits(limits=1, user_api="blas"):
        s = GroupStats(X, Z, y, groups)
    s.groups = np.asarray(s.groups)
    return fit_lmm_stats(s, reml, starts)


def fit_lmm_stats(s: GroupStats, reml: bool = True, starts=None) -> LMMFit:
    """:func:`fit_lmm` from the sufficient statistics ``s`` (for example merged from parts of the data with
    :meth:`GroupStats.merge`); the same checks, optimiser and estimates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(50), 4)
    >>> X = np.column_stack([np.ones(200), np.tile(np.arange(4.0), 50)])
    >>> y = X @ [5.0, -1.0] + rng.normal(0, 1, 50)[g] + rng.normal(0, 0.5, 200)
    >>> halves = [GroupStats(X[i::2], X[i::2, :1], y[i::2], g[i::2]).compact() for i in (0, 1)]
    >>> bool(np.allclose(fit_lmm_stats(GroupStats.merge(halves)).beta, fit_lmm(X, X[:, :1], y, g).beta))
    True
    """
    with threadpool_limits(limits=1, user_api="blas"):
        if s.G < 2:
            raise ValueError("a mixed model needs at least two groups")
        bad = singular_columns(s.XtX)
        if bad:
            raise ValueError(f"the fixed-effects design is not of full rank: columns {bad} are constant zero or "
                             "linear combinations of each other")
        return _fit_lmm(s, reml, starts)


def _fit_lmm(s: GroupStats, reml, starts):
    q = s.q
    diagonal = [0] if q == 1 else [0, 2]  # the diagonal of Lambda, >= 0 in lme4's parametrisation
    if not starts:
        start = moment_start(s)
        finite = start is not None and np.isfinite(_deviance(start, s, reml))
        starts = [start] if finite else ([[1.0]] if q == 1 else [[1.0, 0.0, 0.1]])
    best = None
    for x0 in starts:
        res = _newton(np.asarray(x0, float), s, reml)
        if best is None or res[1] < best[1]:
            best = res
    if not np.isfinite(best[1]):
        raise ValueError("the mixed model cannot be fitted: its likelihood is not defined at any variance (the fixed "
                         "effects reproduce the response exactly, leaving no residual variance)")
    best = _snap_to_boundary(best, s, reml, diagonal)
    theta, fun, grad, hess, n_iter, ok, message = best
    # the deviance depends on theta only through Sigma = Lambda Lambda': flipping the sign of a column of
    # Lambda changes nothing, so the optimum is reported with a non-negative diagonal (lme4's bounds)
    flip = np.ones(len(theta))
    if theta[0] < 0:
        flip[:2] = -1
    if q == 2 and theta[2] < 0:
        flip[2] = -1
    theta, grad, hess = theta * flip + 0.0, grad * flip, hess * np.outer(flip, flip)
    at_boundary = [i for i in diagonal if theta[i] <= 1e-8 * max(1.0, np.abs(theta).max())]
    free = [i for i in range(len(theta)) if i not in at_boundary]
    newton_rel = _newton_step_rel(theta, grad, hess, free)
    k = _terms(theta, s, reml)
    sigma2 = k["r2"] / k["dof"]
    u = np.column_stack(conditional_residuals(k, s, BLOCK_GROUPS))
    return LMMFit(beta=k["beta"], cov_fe=sigma2 * linalg.cho_solve((k["chol"], True), np.eye(s.p)),
                  cov_re=sigma2 * k["Sig"], sigma2=float(sigma2), llf=-0.5 * k["dev"],
                  converged=bool(ok) or newton_rel < 1e-3, message=message, n_iter=n_iter,
                  newton_step_rel=newton_rel, at_boundary=at_boundary, blup=u @ k["Sig"],
                  groups=s.groups, theta=theta)


def _direction(g, H):
    """Newton direction -H^-1 g; where H is not positive definite, its eigenvalues are made positive
    (absolute values), so the step also moves away from saddle points along negative curvature."""
    try:
        return -linalg.cho_solve(linalg.cho_factor(H), g)
    except (np.linalg.LinAlgError, linalg.LinAlgError, ValueError):
        w, V = np.linalg.eigh(H)
        w = np.maximum(np.abs(w), 1e-10 * max(np.abs(w).max(), 1e-300))
        return -V @ ((V.T @ g) / w)


def _snap_to_boundary(res, s, reml, diagonal):
    """A diagonal element of Lambda that Newton leaves just off 0 (the deviance is even in it, so it only
    approaches 0) is set to 0 when that changes the deviance by less than 1e-10 of itself; the other
    parameters are then re-optimised with it held there."""
    theta, f = res[0], res[1]
    for i in diagonal:
        if theta[i] == 0 or not np.isfinite(f):
            continue
        trial = theta.copy()
        trial[i] = 0.0
        if _deviance(trial, s, reml) <= f + 1e-10 * max(abs(f), 1.0):
            fixed = np.zeros(len(theta), bool)
            fixed[[j for j in diagonal if j == i or theta[j] == 0]] = True
            snapped = _newton(trial, s, reml, fixed=fixed)
            if snapped[1] <= f + 1e-10 * max(abs(f), 1.0):
                res = (*snapped[:4], res[4] + snapped[4], *snapped[5:])
                theta, f = res[0], res[1]
    return res


def _newton(theta, s, reml, fixed=None, max_iter=100):
    """Newton's method with the exact Hessian and a backtracking (Armijo) line search.

    Unconstrained: lme4's lower bounds of 0 on the diagonal of Lambda are a
    choice of sign (the deviance is even in each column of Lambda), applied to
    the result by the caller. Parameters flagged in ``fixed`` keep their
    values. Stops when the predicted decrease (the Newton decrement) falls
    below 1e-12 of the deviance, after taking that last step when it lowers
    the deviance.

    Returns ``(theta, deviance, gradient, Hessian, iterations, converged, message)``.
    """
    free = np.ones(len(theta), bool) if fixed is None else ~fixed
    f, g, H = _derivatives(theta, _terms(theta, s, reml), s, reml)
    if not np.isfinite(f):
        return theta, f, g, H, 0, False, "the deviance is not defined at the start"
    for it in range(1, max_iter + 1):
        d = np.zeros_like(theta)
        d[free] = _direction(g[free], H[np.ix_(free, free)])
        decrement = -g @ d
        if not np.all(np.isfinite(d)):
            return theta, f, g, H, it, False, "the Newton direction is not finite"
        if decrement <= 1e-12 * max(abs(f), 1.0):  # at the optimum to working precision: polish
            theta, f, g, H = _polish(theta, f, g, H, d, free, s, reml)
            return theta, f, g, H, it, True, "converged: Newton decrement below 1e-12 of the deviance"
        alpha = 1.0
        for _ in range(60):
            k = _terms(theta + alpha * d, s, reml)  # reused for the derivatives at an accepted point
            if k is not None and k["dev"] <= f - 1e-4 * alpha * decrement:
                break
            alpha /= 2
        else:
            ok = decrement <= 1e-8 * max(abs(f), 1.0)
            return theta, f, g, H, it, ok, ("converged: the deviance cannot be lowered at working precision"
                                             if ok else "the line search could not lower the deviance")
        theta = theta + alpha * d
        f, g, H = _derivatives(theta, k, s, reml)
    return theta, f, g, H, max_iter, False, f"no convergence within {max_iter} Newton iterations"


def _polish(theta, f, g, H, d, free, s, reml, steps=3):
    """Up to ``steps`` full Newton steps from a point already at the optimum to working precision, each
    kept when it lowers the deviance or, where the deviance is flat to rounding (1e-13 of itself), the
    gradient: the optimum is then fixed by the exact gradient, not by rounding in the deviance, so fits
    of the same data summed in another order agree to far below the statistical precision."""
    for _ in range(steps):
        k = _terms(theta + d, s, reml)
        if k is None:
            break
        f2, g2, H2 = _derivatives(theta + d, k, s, reml)
        flat = f2 <= f + 1e-13 * max(abs(f), 1.0) and np.linalg.norm(g2[free]) < np.linalg.norm(g[free])
        if not (f2 < f or flat):
            break
        theta, f, g, H = theta + d, f2, g2, H2
        d = np.zeros_like(theta)
        d[free] = _direction(g[free], H[np.ix_(free, free)])
        if not np.all(np.isfinite(d)):
            break
    return theta, f, g, H


def _newton_step_rel(theta, g, H, free):
    """lme4-style check: the largest move a Newton step from the optimum would make on the free parameters,
    relative to their size (at least 0.01)."""
    if not free:
        return 0.0
    try:
        step = np.linalg.solve(H[np.ix_(free, free)], g[free])
    except np.linalg.LinAlgError:
        return np.inf
    return float(np.max(np.abs(step) / np.maximum(np.abs(theta[free]), 1e-2)))


def _terms(theta, s: GroupStats, reml):
    """:func:`~backpain_outcomes.lmm_deviance.deviance_terms` with the groups summed in blocks of this
    module's :data:`BLOCK_GROUPS`, read at each call (so the fitter's block size is set here)."""
    return deviance_terms(theta, s, reml, BLOCK_GROUPS)


def _derivatives(theta, k, s: GroupStats, reml):
    """:func:`~backpain_outcomes.lmm_deviance.derivatives_from_terms` in blocks of :data:`BLOCK_GROUPS`."""
    return derivatives_from_terms(theta, k, s, reml, BLOCK_GROUPS)


def _deviance(theta, s: GroupStats, reml) -> float:
    """:func:`~backpain_outcomes.lmm_deviance.profiled_deviance` in blocks of :data:`BLOCK_GROUPS`."""
    k = _terms(np.asarray(theta, float), s, reml)
    return np.inf if k is None else k["dev"]
