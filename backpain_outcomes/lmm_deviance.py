"""The profiled (RE)ML deviance of a linear mixed model and its exact gradient and Hessian in theta.

The formulas are those of the module docstring of :mod:`backpain_outcomes.lmm_fast`
(and of :func:`deviance_derivatives`); the data enter only through the
per-group sufficient statistics :class:`~backpain_outcomes.lmm_stats.GroupStats`,
summed over blocks of groups (``block`` groups at a time, by default
:data:`~backpain_outcomes.lmm_stats.BLOCK_GROUPS`).
:func:`deviance_terms` computes at one theta everything the deviance and its
derivatives share; :func:`derivatives_from_terms` adds the derivatives.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .lmm_stats import GroupStats

__all__ = ["profiled_deviance", "deviance_derivatives", "deviance_terms", "derivatives_from_terms",
           "conditional_residuals"]


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


def _inverse(blk: GroupStats, Sig):
    """Per group of one block: :math:`\\det(I + S_g\\Sigma)` and :math:`T_g = (I + S_g\\Sigma)^{-1}`
    (nested lists of arrays)."""
    q, S = blk.q, blk.zz
    M = [[(1.0 if i == j else 0.0) + sum(S[i][k] * Sig[k, j] for k in range(q)) for j in range(q)]
         for i in range(q)]  # I + S Sigma
    if q == 1:
        return M[0][0], [[1.0 / M[0][0]]]
    det = M[0][0] * M[1][1] - M[0][1] * M[1][0]
    return det, [[M[1][1] / det, -M[0][1] / det], [-M[1][0] / det, M[0][0] / det]]


def deviance_terms(theta, s: GroupStats, reml: bool, block: int | None = None):
    """Everything the deviance and its derivatives need at one theta (a dict), or None where A is singular.

    Groups enter in blocks of ``block`` groups (:meth:`GroupStats.blocks`; by default
    :data:`~backpain_outcomes.lmm_stats.BLOCK_GROUPS`), so the temporaries stay small however many groups
    there are; nothing per group is kept (the derivatives compute each block's :math:`T_g` again)."""
    q = s.q
    L = _lambda(theta, q)
    Sig = L @ L.T
    corr_A, corr_c, corr_y, logdet = 0.0, 0.0, 0.0, 0.0
    for blk in s.blocks(block):
        det, T = _inverse(blk, Sig)
        W = [[sum(Sig[a, c] * T[c][b] for c in range(q)) for b in range(q)] for a in range(q)]  # Sigma T
        wx = [sum(W[a][b][:, None] * blk.Zx[b] for b in range(q)) for a in range(q)]  # W Z'X, (G, p) per row a
        wz = [sum(W[a][b] * blk.zy[b] for b in range(q)) for a in range(q)]
        corr_A = corr_A + sum(blk.Zx[a].T @ wx[a] for a in range(q))
        corr_c = corr_c + sum(blk.Zx[a].T @ wz[a] for a in range(q))
        corr_y = corr_y + sum(float(blk.zy[a] @ wz[a]) for a in range(q))
        logdet = logdet + np.log(det).sum()
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
    return dict(L=L, Sig=Sig, chol=chol, beta=beta, r2=r2, dof=dof, dev=float(dev))


def conditional_residuals(k, s: GroupStats, block: int | None = None):
    """u_g = T_g Z_g'(y_g - X_g beta) = Z_g'V_g^-1(y_g - X_g beta) per group; Sigma u_g are the BLUPs.

    ``k`` from :func:`deviance_terms`; the groups are taken in blocks of ``block`` (as there)."""
    out: list[list] = [[] for _ in range(s.q)]
    for blk in s.blocks(block):
        _, T = _inverse(blk, k["Sig"])
        e = [blk.zy[b] - blk.Zx[b] @ k["beta"] for b in range(s.q)]
        for a in range(s.q):
            out[a].append(sum(T[a][b] * e[b] for b in range(s.q)))
    return [parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in out]


def profiled_deviance(theta, s: GroupStats, reml: bool = True) -> float:
    """-2 log-likelihood (REML or ML), profiled over beta and sigma^2 (inf where it is not defined)."""
    k = deviance_terms(np.asarray(theta, float), s, reml)
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
    return derivatives_from_terms(theta, deviance_terms(theta, s, reml), s, reml)


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
        C: list[list] = [[P[a].T @ P[b] if b >= a else None for b in range(q)] for a in range(q)]
        if q == 2:
            C[1][0] = C[0][1].T
        out["C"] = np.array(C)
    return out


def derivatives_from_terms(theta, k, s: GroupStats, reml: bool, block: int | None = None):
    """``(dev, grad, hess)`` from the :func:`deviance_terms` results ``k`` at ``theta``, the groups summed in
    blocks of ``block`` (as in :func:`deviance_terms`)."""
    nt = len(theta)
    if k is None:
        return np.inf, np.full(nt, np.nan), np.full((nt, nt), np.nan)
    q, L = s.q, k["L"]
    Ainv = linalg.cho_solve((k["chol"], True), np.eye(s.p))
    r2, dof = k["r2"], k["dof"]
    dL = _dlambda(q)
    E = [d @ L.T + L @ d.T for d in dL]  # dSigma / dtheta_i
    acc: dict = {}
    for blk in s.blocks(block):
        part = _block_sums(_inverse(blk, k["Sig"])[1], blk, k["beta"], Ainv, E, reml)
        acc = part if not acc else {key: acc[key] + part[key] for key in acc}
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
