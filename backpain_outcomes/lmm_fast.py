"""Exact, vectorised (RE)ML for longitudinal mixed models with q <= 2 random effects per group.

Model: :math:`y_g = X_g\\beta + Z_g b_g + e_g`, :math:`b_g \\sim N(0, \\sigma^2 \\Lambda\\Lambda^T)`,
:math:`e_g \\sim N(0, \\sigma^2 I)`, with :math:`\\Lambda` lower triangular (lme4's
parametrisation, Bates et al. 2015 J Stat Softw 67(1)). With the per-group
sufficient statistics :math:`Z_g^TZ_g`, :math:`Z_g^TX_g`, :math:`Z_g^Ty_g` and
:math:`M_g = I + \\Lambda^T Z_g^T Z_g \\Lambda`, :math:`W_g = \\Lambda M_g^{-1}\\Lambda^T`:

.. math::
    A = X^TX - \\sum_g X_g^TZ_g W_g Z_g^TX_g, \\quad
    c = X^Ty - \\sum_g X_g^TZ_g W_g Z_g^Ty_g, \\quad
    r^2 = y^Ty - \\sum_g y_g^TZ_g W_g Z_g^Ty_g - c^T\\hat\\beta

with :math:`\\hat\\beta = A^{-1}c`; the profiled deviances are

.. math::
    -2\\ell_{ML} = \\sum_g \\log|M_g| + n\\,[1 + \\log(2\\pi r^2/n)], \\qquad
    -2\\ell_{REML} = \\sum_g \\log|M_g| + \\log|A| + (n-p)\\,[1 + \\log(2\\pi r^2/(n-p))].

Every group enters through batched 2x2 algebra (closed-form inverse and
determinant), so one evaluation costs O(G q^2 p^2) with no Python loop over
groups; the q (q + 1) / 2 parameters of :math:`\\Lambda` are optimised with
L-BFGS-B from several starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

__all__ = ["GroupStats", "LMMFit", "profiled_deviance", "fit_lmm", "singular_columns"]


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
    groups : ndarray (G,)
        Group labels in the order of ``blup``.
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


def singular_columns(XtX: np.ndarray, tol: float = 1e-10) -> list[int]:
    """Columns of a design (given by its cross-product ``X'X``) that are constant zero or linearly dependent.

    Returns the indices of the columns that take part in an (almost) exact
    linear dependence: empty for a design of full rank.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0, 1, 0, 1], [1, 0, 1, 0]])
    >>> singular_columns(X.T @ X)
    [0, 1, 2]
    >>> singular_columns(X[:, :2].T @ X[:, :2])
    []
    """
    d = np.sqrt(np.maximum(np.diag(XtX), 0.0))
    zero = d <= tol * max(d.max(initial=0.0), 1.0)
    scale = np.where(zero, 1.0, d)
    R = XtX / scale[:, None] / scale[None, :]
    vals, vecs = np.linalg.eigh(R)
    null = vecs[:, vals <= tol * max(vals.max(initial=0.0), 1.0)]
    involved = zero | (np.abs(null) > 1e-6).any(axis=1) if null.size else zero
    return [int(i) for i in np.flatnonzero(involved)]


class GroupStats:
    """Sufficient statistics of a grouped design."""

    def __init__(self, X, Z, y, groups):
        codes, self.groups = pd.factorize(groups)
        G, p, q = len(self.groups), X.shape[1], Z.shape[1]
        self.n, self.p, self.q, self.G = len(y), p, q, G
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        self.ZtZ = np.zeros((G, q, q))
        self.ZtX = np.zeros((G, q, p))
        self.Zty = np.zeros((G, q))
        for a in range(q):  # loops over the q <= 2 random-effect columns, not over groups
            self.Zty[:, a] = np.bincount(codes, Z[:, a] * y, minlength=G)
            for b in range(q):
                self.ZtZ[:, a, b] = np.bincount(codes, Z[:, a] * Z[:, b], minlength=G)
            for j in range(p):
                self.ZtX[:, a, j] = np.bincount(codes, Z[:, a] * X[:, j], minlength=G)
        self.codes = codes
        self.Zx = [np.ascontiguousarray(self.ZtX[:, a, :]) for a in range(q)]  # (G, p) each
        self.zy = [np.ascontiguousarray(self.Zty[:, a]) for a in range(q)]


def _lambda(theta, q):
    if q == 1:
        return np.array([[theta[0]]])
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def _inv_det(M):
    """Batched inverse and log-determinant of 1x1 or 2x2 SPD matrices."""
    if M.shape[1] == 1:
        return 1.0 / M, np.log(M[:, 0, 0])
    a, b, c, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1]
    det = a * d - b * c
    inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[:, None, None]
    return inv, np.log(det)


def _solve_parts(theta, s: GroupStats):
    """A, c, y'Py, sum log|M_g| and W_g for one theta; elementwise 2x2 algebra over all groups."""
    L = _lambda(theta, s.q)
    if s.q == 1:
        l2 = L[0, 0] ** 2
        m = 1.0 + l2 * s.ZtZ[:, 0, 0]
        W = (l2 / m)[:, None, None]
        logdet = np.log(m)
    else:
        a, b, d = L[0, 0], L[1, 0], L[1, 1]  # L = [[a, 0], [b, d]]
        z00, z01, z11 = s.ZtZ[:, 0, 0], s.ZtZ[:, 0, 1], s.ZtZ[:, 1, 1]
        # M = I + L' ZtZ L
        m00 = 1 + a * a * z00 + 2 * a * b * z01 + b * b * z11
        m01 = a * d * z01 + b * d * z11
        m11 = 1 + d * d * z11
        det = m00 * m11 - m01 * m01
        i00, i01, i11 = m11 / det, -m01 / det, m00 / det
        # W = L M^-1 L'
        w00 = a * a * i00
        w01 = a * (b * i00 + d * i01)
        w11 = b * b * i00 + 2 * b * d * i01 + d * d * i11
        W = np.stack([np.stack([w00, w01], -1), np.stack([w01, w11], -1)], -2)
        logdet = np.log(det)
    # V_a = sum_b W_ab Z_b'X (per group); A = X'X - sum_a Zx_a' V_a; c likewise (BLAS over all groups)
    if s.q == 1:
        V = [W[:, 0, 0, None] * s.Zx[0]]
        wzy = [W[:, 0, 0] * s.zy[0]]
    else:
        V = [W[:, 0, 0, None] * s.Zx[0] + W[:, 0, 1, None] * s.Zx[1],
             W[:, 1, 0, None] * s.Zx[0] + W[:, 1, 1, None] * s.Zx[1]]
        wzy = [W[:, 0, 0] * s.zy[0] + W[:, 0, 1] * s.zy[1], W[:, 1, 0] * s.zy[0] + W[:, 1, 1] * s.zy[1]]
    A = s.XtX - sum(s.Zx[a].T @ V[a] for a in range(s.q))
    c = s.Xty - sum(V[a].T @ s.zy[a] for a in range(s.q))
    ytPy = s.yty - float(sum(s.zy[a] @ wzy[a] for a in range(s.q)))
    return A, c, ytPy, logdet.sum(), W


def profiled_deviance(theta, s: GroupStats, reml: bool = True) -> float:
    """-2 log-likelihood (REML or ML), profiled over beta and sigma^2."""
    A, c, ytPy, sum_logdet, _ = _solve_parts(theta, s)
    try:
        chol = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return np.inf
    beta = np.linalg.solve(A, c)
    r2 = ytPy - c @ beta
    if r2 <= 0:
        return np.inf
    if reml:
        dof = s.n - s.p
        return sum_logdet + 2 * np.log(np.diag(chol)).sum() + dof * (1 + np.log(2 * np.pi * r2 / dof))
    return sum_logdet + s.n * (1 + np.log(2 * np.pi * r2 / s.n))


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
        Starting values of lme4's theta (``[l11]`` or ``[l11, l21, l22]``).

    Raises
    ------
    ValueError
        For more than two random effects, fewer than two groups, or a
        fixed-effects design that is not of full rank (naming the columns).

    BLAS is limited to one thread while fitting: the products are small and
    many, and multi-threaded BLAS spends more time waking threads than
    computing (measured 2x slower on this 2-core machine under load).
    """
    X, Z, y = np.asarray(X, float), np.asarray(Z, float), np.asarray(y, float)
    if Z.ndim != 2 or Z.shape[1] not in (1, 2):
        raise ValueError(f"Z must have one or two columns (random effects per group), got shape {Z.shape}")
    if len(pd.unique(np.asarray(groups))) < 2:
        raise ValueError("a mixed model needs at least two groups")
    bad = singular_columns(X.T @ X)
    if bad:
        raise ValueError(f"the fixed-effects design is not of full rank: columns {bad} are constant zero or "
                         "linear combinations of each other")
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_lmm(X, Z, y, groups, reml, starts)


def _fit_lmm(X, Z, y, groups, reml, starts):
    s = GroupStats(X, Z, y, groups)
    q = s.q
    lower = [0.0] if q == 1 else [0.0, None, 0.0]
    bounds = [(lo, None) for lo in lower]
    starts = starts or ([[1.0], [0.2]] if q == 1 else [[1.0, 0.0, 0.1], [0.5, 0.0, 0.02]])

    def jac(theta, *_):
        """Central differences, one-sided at a lower bound of 0."""
        g = np.empty_like(theta)
        for i in range(len(theta)):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up = theta.copy()
            up[i] += h
            dn = theta.copy()
            dn[i] -= h
            if bounds[i][0] is not None and dn[i] < bounds[i][0]:
                g[i] = (profiled_deviance(up, s, reml) - profiled_deviance(theta, s, reml)) / h
            else:
                g[i] = (profiled_deviance(up, s, reml) - profiled_deviance(dn, s, reml)) / (2 * h)
        return g

    best = None
    for x0 in starts:
        # coarse derivative-free search, then L-BFGS-B on parameters rescaled by the coarse solution (the
        # intercept and slope SDs differ by orders of magnitude) with central-difference gradients
        coarse = optimize.minimize(profiled_deviance, np.array(x0, float), args=(s, reml), method="Nelder-Mead",
                                   bounds=bounds, options={"xatol": 1e-3, "fatol": 1e-4, "maxfev": 600})
        scale = np.maximum(np.abs(coarse.x), 1e-4)
        sb = [(None if lo is None else lo / sc, None) for (lo, _), sc in zip(bounds, scale)]

        def f_u(u, scale=scale):
            return profiled_deviance(u * scale, s, reml)

        def jac_u(u, scale=scale):
            return jac(u * scale) * scale

        res = optimize.minimize(f_u, coarse.x / scale, jac=jac_u, method="L-BFGS-B", bounds=sb,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500, "maxcor": 20})
        res.x = res.x * scale
        res.nit = coarse.nit + res.nit
        if res.fun > coarse.fun:
            res.x, res.fun = coarse.x, coarse.fun
        if best is None or res.fun < best.fun:
            best = res
    theta = best.x
    at_boundary = [i for i, (lo, _) in enumerate(bounds) if lo is not None and theta[i] <= 1e-8]
    free = [i for i in range(len(theta)) if i not in at_boundary]
    theta, fun, newton_rel = _newton_check(theta, best.fun, free, bounds, s, reml)
    A, c, ytPy, sum_logdet, W = _solve_parts(theta, s)
    beta = np.linalg.solve(A, c)
    r2 = ytPy - c @ beta
    sigma2 = r2 / ((s.n - s.p) if reml else s.n)
    L = _lambda(theta, q)
    blup = np.einsum("gij,gj->gi", W, s.Zty - np.einsum("gip,p->gi", s.ZtX, beta))
    return LMMFit(beta=beta, cov_fe=sigma2 * np.linalg.inv(A), cov_re=sigma2 * L @ L.T, sigma2=float(sigma2),
                  llf=-0.5 * float(fun), converged=bool(best.success) or newton_rel < 1e-3,
                  message=str(best.message), n_iter=int(best.nit), newton_step_rel=newton_rel,
                  at_boundary=at_boundary, blup=blup, groups=np.asarray(s.groups), theta=theta)


def _newton_check(theta, fun, free, bounds, s, reml):
    """lme4-style check: a Newton step from finite-difference gradient and Hessian on the free parameters,
    taken when it lowers the deviance; returns (theta, deviance, step size relative to the parameters)."""
    if not free:
        return theta, fun, 0.0
    step_full = np.zeros_like(theta)
    g, H = _grad_hess(theta, free, s, reml)
    try:
        step = np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return theta, fun, np.inf
    step_full[free] = step
    trial = theta - step_full
    if all(bounds[i][0] is None or trial[i] >= bounds[i][0] for i in free):
        f_trial = profiled_deviance(trial, s, reml)
        if f_trial < fun:
            theta, fun = trial, f_trial
    return theta, fun, float(np.max(np.abs(step) / np.maximum(np.abs(theta[free]), 1e-2)))


def _grad_hess(theta, free, s, reml):
    """Central-difference gradient and Hessian of the deviance over the free parameters.

    Steps are 1e-4 of each parameter's size (at least 1e-6): large enough that rounding in a
    deviance of order n does not swamp the differences."""
    h = 1e-4 * np.maximum(np.abs(theta), 1e-2)
    f0 = profiled_deviance(theta, s, reml)
    k = len(free)
    g, H = np.zeros(k), np.zeros((k, k))

    def f(delta):
        x = theta.copy()
        x[free] += delta
        return profiled_deviance(x, s, reml)
    for a, i in enumerate(free):
        e = np.zeros(k)
        e[a] = h[i]
        fp, fm = f(e), f(-e)
        g[a] = (fp - fm) / (2 * h[i])
        H[a, a] = (fp - 2 * f0 + fm) / h[i] ** 2
        for b in range(a):
            j = free[b]
            e2 = np.zeros(k)
            e2[b] = h[j]
            H[a, b] = H[b, a] = (f(e + e2) - f(e - e2) - f(-e + e2) + f(-e - e2)) / (4 * h[i] * h[j])
    return g, H
