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
import pandas as pd
from scipy import linalg, sparse
from threadpoolctl import threadpool_limits

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


#: Groups per block when the deviance and its derivatives are summed: their temporaries (about 80 numbers
#: a group) then take a few hundred MB however many groups there are.
BLOCK_GROUPS = 200_000


class GroupStats:
    """Sufficient statistics of a grouped design.

    ``zz[a][b]``, ``Zx[a]`` and ``zy[a]`` hold the per-group :math:`Z^TZ`,
    :math:`Z^TX` and :math:`Z^Ty` by random-effect column ``a`` as contiguous
    arrays; ``size`` the number of rows per group.
    """

    def __init__(self, X, Z, y, groups):
        codes, self.groups = pd.factorize(groups)
        G, p, q = len(self.groups), X.shape[1], Z.shape[1]
        self.n, self.p, self.q, self.G = len(y), p, q, G
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        # per-group sums weighted by Z_a: products with a sparse (G x n) indicator matrix per random-effect column
        rows = np.arange(len(y) + 1)
        ind = [sparse.csc_matrix((Z[:, a], codes, rows), shape=(G, len(y))) for a in range(q)]
        zx = np.stack([m @ X for m in ind])  # (q, G, p)
        self.Zx = list(zx)  # (G, p) each, contiguous
        self.zy = [m @ y for m in ind]
        self.zz = [[ind[a] @ Z[:, b] for b in range(q)] for a in range(q)]
        self.ZtX = zx.transpose(1, 0, 2)
        self.ZtZ = np.stack([np.column_stack(row) for row in self.zz], axis=1)
        self.Zty = np.column_stack(self.zy)
        self.codes = codes
        self.size = np.bincount(codes, minlength=G)

    def blocks(self, size: int | None = None):
        """The statistics of consecutive blocks of at most ``size`` groups (default :data:`BLOCK_GROUPS`):
        views of the per-group arrays with the totals of all groups; ``self`` when it is one block."""
        size = size or BLOCK_GROUPS
        if self.G <= size:
            yield self
            return
        for start in range(0, self.G, size):
            yield self._block(start, min(start + size, self.G))

    def _block(self, start: int, stop: int) -> GroupStats:
        blk = GroupStats.__new__(GroupStats)
        blk.XtX, blk.Xty, blk.yty, blk.n, blk.p, blk.q = self.XtX, self.Xty, self.yty, self.n, self.p, self.q
        blk.G, blk.groups, blk.codes, blk.size = stop - start, self.groups[start:stop], self.codes[:0], \
            self.size[start:stop]
        blk.Zx, blk.zy = [z[start:stop] for z in self.Zx], [z[start:stop] for z in self.zy]
        blk.zz = [[z[start:stop] for z in row] for row in self.zz]
        blk.ZtX, blk.ZtZ, blk.Zty = self.ZtX[start:stop], self.ZtZ[start:stop], self.Zty[start:stop]
        return blk

    def compact(self) -> dict:
        """The statistics as a few arrays (what :meth:`merge` takes): ``groups``, ``ZtX`` (G, q, p),
        ``ZtZ`` (G, q, q), ``Zty`` (G, q), ``size`` and the totals ``XtX``, ``Xty``, ``yty``, ``n``."""
        return {"groups": np.asarray(self.groups), "ZtX": self.ZtX, "ZtZ": self.ZtZ,
                "Zty": self.Zty, "size": self.size, "XtX": self.XtX, "Xty": self.Xty, "yty": self.yty, "n": self.n}

    @classmethod
    def merge(cls, parts, consume: bool = False) -> GroupStats:
        """The statistics of all rows of several parts (dicts from :meth:`compact`), in the order given.

        Totals are summed; per-group arrays are concatenated, and summed by
        group label where a group has rows in more than one part. The rows
        themselves are not held: ``codes`` is empty. ``consume=True`` drops
        each part's largest array (``ZtX``) from its dict once it is copied,
        so the merge needs one copy of it, not two.

        Examples
        --------
        >>> X = np.column_stack([np.ones(6), np.arange(6.0)])
        >>> y, g = np.array([1.0, 3, 2, 5, 4, 6]), np.array([0, 0, 1, 1, 2, 2])
        >>> whole = GroupStats(X, X[:, :1], y, g)
        >>> merged = GroupStats.merge([GroupStats(X[:3], X[:3, :1], y[:3], g[:3]).compact(),
        ...                            GroupStats(X[3:], X[3:, :1], y[3:], g[3:]).compact()])
        >>> bool(np.allclose(merged.ZtX, whole.ZtX) and np.allclose(merged.XtX, whole.XtX)), merged.G
        (True, 3)
        """
        labels = np.concatenate([part["groups"] for part in parts])
        arrays = {key: np.concatenate([part[key] for part in parts]) for key in ("ZtZ", "Zty", "size")}
        G, q, p = len(labels), parts[0]["ZtZ"].shape[1], parts[0]["XtX"].shape[0]
        qzx = np.empty((q, G, p))  # (q, G, p), as the constructor lays it out, filled without a second copy
        start = 0
        for part in parts:
            qzx[:, start:start + len(part["groups"])] = part["ZtX"].transpose(1, 0, 2)
            start += len(part["groups"])
            if consume:
                part["ZtX"] = None
        codes, uniq = pd.factorize(labels)
        if len(uniq) < len(labels):  # a group split across parts: add its pieces
            for key, arr in arrays.items():
                total = np.zeros((len(uniq), *arr.shape[1:]), arr.dtype)
                np.add.at(total, codes, arr)
                arrays[key] = total
            summed = np.zeros((q, len(uniq), p))
            for a in range(q):
                np.add.at(summed[a], codes, qzx[a])
            qzx, labels = summed, np.asarray(uniq)
        s = cls.__new__(cls)
        s.XtX, s.Xty = sum(part["XtX"] for part in parts), sum(part["Xty"] for part in parts)
        s.yty, s.n = float(sum(part["yty"] for part in parts)), int(sum(part["n"] for part in parts))
        s.ZtZ, s.Zty, s.size = arrays["ZtZ"], arrays["Zty"], arrays["size"]
        s.q, s.G, s.p = qzx.shape
        s.groups, s.codes = labels, np.empty(0, np.intp)
        s.Zx, s.ZtX = list(qzx), qzx.transpose(1, 0, 2)
        s.zy = [np.ascontiguousarray(s.Zty[:, a]) for a in range(s.q)]
        s.zz = [[np.ascontiguousarray(s.ZtZ[:, a, b]) for b in range(s.q)] for a in range(s.q)]
        return s


def _lambda(theta, q):
    if q == 1:
        return np.array([[theta[0]]])
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def _dlambda(q):
    """dLambda / dtheta_i, one q x q matrix per parameter."""
    if q == 1:
        return [np.ones((1, 1))]
    return [np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]]),
            np.array([[0.0, 0.0], [0.0, 1.0]])]


def _matmul(A, B, q):
    """Per-group q x q product of nested lists of arrays (or scalars)."""
    return [[sum(A[i][k] * B[k][j] for k in range(q)) for j in range(q)] for i in range(q)]


def _core(theta, s: GroupStats, reml: bool):
    """Everything the deviance and its derivatives need at one theta (a dict), or None where A is singular.

    Groups enter in blocks of :data:`BLOCK_GROUPS` (:meth:`GroupStats.blocks`), so the temporaries stay
    small however many groups there are; ``T`` is kept for every group."""
    q = s.q
    L = _lambda(theta, q)
    Sig = L @ L.T
    corr_A, corr_c, corr_y, logdet, Ts = 0.0, 0.0, 0.0, 0.0, []
    for blk in s.blocks():
        S = blk.zz
        M = [[(1.0 if i == j else 0.0) + sum(S[i][k] * Sig[k, j] for k in range(q)) for j in range(q)]
             for i in range(q)]  # I + S Sigma
        if q == 1:
            det = M[0][0]
            T = [[1.0 / det]]
        else:
            det = M[0][0] * M[1][1] - M[0][1] * M[1][0]
            T = [[M[1][1] / det, -M[0][1] / det], [-M[1][0] / det, M[0][0] / det]]
        W = [[sum(Sig[a, c] * T[c][b] for c in range(q)) for b in range(q)] for a in range(q)]  # Sigma T
        wx = [sum(W[a][b][:, None] * blk.Zx[b] for b in range(q)) for a in range(q)]  # W Z'X, (G, p) per row a
        wz = [sum(W[a][b] * blk.zy[b] for b in range(q)) for a in range(q)]
        corr_A = corr_A + sum(blk.Zx[a].T @ wx[a] for a in range(q))
        corr_c = corr_c + sum(blk.Zx[a].T @ wz[a] for a in range(q))
        corr_y = corr_y + sum(float(blk.zy[a] @ wz[a]) for a in range(q))
        logdet = logdet + np.log(det).sum()
        Ts.append(T)
    T = Ts[0] if len(Ts) == 1 else [[np.concatenate([t[i][j] for t in Ts]) for j in range(q)] for i in range(q)]
    A = s.XtX - corr_A
    A = (A + A.T) / 2
    c = s.Xty - corr_c
    ytVy = s.yty - corr_y
    try:
        chol = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return None
    beta = linalg.cho_solve((chol, True), c)
    r2 = ytVy - c @ beta
    if not r2 > 0:
        return None
    dof = s.n - s.p if reml else s.n
    dev = logdet + dof * (1 + np.log(2 * np.pi * r2 / dof))
    if reml:
        dev += 2 * np.log(np.diag(chol)).sum()
    return dict(L=L, Sig=Sig, T=T, chol=chol, beta=beta, r2=r2, dof=dof, dev=float(dev))


def _conditional_residuals(k, s: GroupStats):
    """u_g = T_g Z_g'(y_g - X_g beta) = Z_g'V_g^-1(y_g - X_g beta) per group; Sigma u_g are the BLUPs."""
    e = [s.zy[b] - s.Zx[b] @ k["beta"] for b in range(s.q)]
    return [sum(k["T"][a][b] * e[b] for b in range(s.q)) for a in range(s.q)]


def profiled_deviance(theta, s: GroupStats, reml: bool = True) -> float:
    """-2 log-likelihood (REML or ML), profiled over beta and sigma^2 (inf where it is not defined)."""
    k = _core(np.asarray(theta, float), s, reml)
    return np.inf if k is None else k["dev"]


def deviance_derivatives(theta, s: GroupStats, reml: bool = True):
    """Profiled deviance with its exact gradient and Hessian in theta: ``(dev, grad, hess)``.

    ``(inf, nan, nan)`` where the deviance is not defined. In terms of
    :math:`\\Sigma` (directions :math:`E`, :math:`F`), the Hessian of the REML
    deviance is

    .. math::
        -\\sum_g \\mathrm{tr}(K_gEK_gF) + \\sum_g \\mathrm{tr}(K_gEQ_gF + K_gFQ_gE)
        - \\mathrm{tr}(A^{-1}B_EA^{-1}B_F)
        + \\frac{n-p}{r^2}\\Big(2\\sum_g u_g^TEK_gFu_g - 2h_E^TA^{-1}h_F\\Big)
        - \\frac{n-p}{r^4}s_Es_F

    with :math:`B_E = \\sum_g P_g^TEP_g`, :math:`h_E = \\sum_g P_g^TEu_g` and
    :math:`s_E = \\sum_g u_g^TEu_g` (ML: no :math:`Q`, :math:`B` terms and n for
    n - p); the chain rule through :math:`\\Sigma = \\Lambda\\Lambda^T` adds
    :math:`\\mathrm{tr}(G\\,\\partial^2\\Sigma/\\partial\\theta_i\\partial\\theta_j)`.

    Examples
    --------
    Gradient against central differences of :func:`profiled_deviance`:

    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 4)
    >>> t = np.tile(np.arange(4.0), 20)
    >>> X, Z = np.column_stack([np.ones(80), t]), np.column_stack([np.ones(80), t])
    >>> y = 3 - 0.5 * t + rng.normal(size=20)[g] + rng.normal(0, 0.3, 20)[g] * t + rng.normal(size=80)
    >>> s, theta, h = GroupStats(X, Z, y, g), np.array([0.8, 0.1, 0.3]), 1e-6
    >>> dev, grad, hess = deviance_derivatives(theta, s)
    >>> fd = [(profiled_deviance(theta + h * e, s) - profiled_deviance(theta - h * e, s)) / (2 * h)
    ...       for e in np.eye(3)]
    >>> bool(np.allclose(grad, fd, rtol=1e-5))
    True
    """
    theta = np.asarray(theta, float)
    return _derivatives(theta, _core(theta, s, reml), s, reml)


def _block_sums(T, blk: GroupStats, beta, Ainv, E, reml: bool) -> dict:
    """The sums over the groups of one block that the gradient and Hessian need (see
    :func:`deviance_derivatives`), given the block's ``T`` and the global beta and :math:`A^{-1}`."""
    q, nt, S = blk.q, len(E), blk.zz
    P = [sum(T[a][b][:, None] * blk.Zx[b] for b in range(q)) for a in range(q)]  # Z'V^-1X, (G, p) per row a
    e = [blk.zy[b] - blk.Zx[b] @ beta for b in range(q)]
    u = [sum(T[a][b] * e[b] for b in range(q)) for a in range(q)]
    K = _matmul(T, S, q)
    if q == 2:
        K[0][1] = K[1][0] = (K[0][1] + K[1][0]) / 2  # symmetric in exact arithmetic
    out = {"K": np.array([[K[a][b].sum() for b in range(q)] for a in range(q)]),
           "uu": np.array([[u[a] @ u[b] for b in range(q)] for a in range(q)])}
    KE = [_matmul(K, m, q) for m in E]
    v = [[sum(m[a, b] * u[b] for b in range(q)) for a in range(q)] for m in E]  # E u per group
    out["s"] = np.array([sum(u[a] @ vi[a] for a in range(q)) for vi in v])
    out["h"] = np.array([sum(P[a].T @ vi[a] for a in range(q)) for vi in v])  # (nt, p)
    out["kk"] = np.array([[sum(KE[i][a][b] @ KE[j][b][a] for a in range(q) for b in range(q)) for j in range(nt)]
                          for i in range(nt)])
    out["ukv"] = np.array([[sum(v[i][a] @ (K[a][b] * v[j][b]) for a in range(q) for b in range(q))
                            for j in range(nt)] for i in range(nt)])
    if reml:
        R = [P[a] @ Ainv for a in range(q)]
        Q = [[np.einsum("gp,gp->g", R[a], P[b]) for b in range(q)] for a in range(q)]
        out["Q"] = np.array([[Q[a][b].sum() for b in range(q)] for a in range(q)])
        QE = [_matmul(Q, m, q) for m in E]
        out["KQ"] = np.array([[sum(KE[i][a][b] @ QE[j][b][a] + KE[j][a][b] @ QE[i][b][a]
                                   for a in range(q) for b in range(q)) for j in range(nt)] for i in range(nt)])
        C = [[P[a].T @ P[b] if b >= a else None for b in range(q)] for a in range(q)]
        if q == 2:
            C[1][0] = C[0][1].T
        out["C"] = np.array(C)
    return out


def _derivatives(theta, k, s: GroupStats, reml: bool):
    """``(dev, grad, hess)`` from the :func:`_core` results ``k`` at ``theta``, the groups summed in blocks."""
    nt = len(theta)
    if k is None:
        return np.inf, np.full(nt, np.nan), np.full((nt, nt), np.nan)
    q, L = s.q, k["L"]
    Ainv = linalg.cho_solve((k["chol"], True), np.eye(s.p))
    r2, dof = k["r2"], k["dof"]
    dL = _dlambda(q)
    E = [d @ L.T + L @ d.T for d in dL]  # dSigma / dtheta_i
    acc: dict = {}
    start = 0
    for blk in s.blocks():
        T = [[k["T"][i][j][start:start + blk.G] for j in range(q)] for i in range(q)]
        part = _block_sums(T, blk, k["beta"], Ainv, E, reml)
        acc = part if not acc else {key: acc[key] + part[key] for key in acc}
        start += blk.G
    Gm = acc["K"] - dof / r2 * acc["uu"]
    if reml:
        Gm -= acc["Q"]
    grad = np.array([np.sum(Gm * m) for m in E])
    s_, h = acc["s"], acc["h"]
    hess = np.empty((nt, nt))
    if reml:
        C = acc["C"]
        AB = [Ainv @ sum(m[a, b] * C[a][b] for a in range(q) for b in range(q)) for m in E]
    for i in range(nt):
        for j in range(i + 1):
            hij = (-acc["kk"][i, j] + dof * ((2 * acc["ukv"][i, j] - 2 * h[i] @ Ainv @ h[j]) / r2
                                             - s_[i] * s_[j] / r2**2)
                   + np.sum(Gm * (dL[i] @ dL[j].T + dL[j] @ dL[i].T)))
            if reml:
                hij += acc["KQ"][i, j] - np.sum(AB[i] * AB[j].T)
            hess[i, j] = hess[j, i] = hij
    return k["dev"], grad, hess


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
    q, S = s.q, s.zz
    beta = np.linalg.solve(s.XtX, s.Xty)
    z = [s.zy[a] - s.Zx[a] @ beta for a in range(q)]
    rss = s.yty - beta @ s.Xty
    tr = sum(S[a][a] for a in range(q))
    det = S[0][0] if q == 1 else S[0][0] * S[1][1] - S[0][1] ** 2
    full = det > 1e-10 * np.maximum(np.prod([S[a][a] for a in range(q)], axis=0), 1e-300)
    sdet = np.where(full, det, 1.0)
    Si = [[1.0 / sdet]] if q == 1 else [[S[1][1] / sdet, -S[0][1] / sdet], [-S[1][0] / sdet, S[0][0] / sdet]]
    b = [sum(Si[a][c] * z[c] for c in range(q)) for a in range(q)]
    zSz = sum(z[a] * S[a][c] * z[c] for a in range(q) for c in range(q))  # rank one: z' S z / tr(S)^2
    fitted = np.where(full, sum(z[a] * b[a] for a in range(q)), np.where(tr > 0, zSz / np.where(tr > 0, tr, 1) ** 2, 0))
    rank = np.where(full, q, (tr > 0).astype(int))
    sigma2 = (rss - fitted.sum()) / max(s.n - s.p - rank.sum(), 1)
    if not sigma2 > 0:
        sigma2 = rss / max(s.n - s.p, 1)
    ok = full & (s.size > q)
    if not ok.any() or not sigma2 > 0:
        return None
    cov = np.array([[np.mean(b[a][ok] * b[c][ok]) - sigma2 * np.mean(Si[a][c][ok]) for c in range(q)]
                    for a in range(q)]) / sigma2
    w, V = np.linalg.eigh(cov)
    w = np.maximum(w, 1e-8 * max(w.max(), 1e-8))
    Lc = np.linalg.cholesky(V @ np.diag(w) @ V.T)
    return np.array([Lc[0, 0]]) if q == 1 else np.array([Lc[0, 0], Lc[1, 0], Lc[1, 1]])


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
        finite = start is not None and np.isfinite(profiled_deviance(start, s, reml))
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
    k = _core(theta, s, reml)
    sigma2 = k["r2"] / k["dof"]
    u = np.column_stack(_conditional_residuals(k, s))
    return LMMFit(beta=k["beta"], cov_fe=sigma2 * linalg.cho_solve((k["chol"], True), np.eye(s.p)),
                  cov_re=sigma2 * k["Sig"], sigma2=float(sigma2), llf=-0.5 * k["dev"],
                  converged=bool(ok) or newton_rel < 1e-3, message=message, n_iter=n_iter,
                  newton_step_rel=newton_rel, at_boundary=at_boundary, blup=u @ k["Sig"],
                  groups=np.asarray(s.groups), theta=theta)


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
        if profiled_deviance(trial, s, reml) <= f + 1e-10 * max(abs(f), 1.0):
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
    f, g, H = deviance_derivatives(theta, s, reml)
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
            k = _core(theta + alpha * d, s, reml)  # reused for the derivatives at an accepted point
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
        k = _core(theta + d, s, reml)
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
