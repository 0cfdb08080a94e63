"""Latent class growth analysis (LCGA): the EM engine behind :func:`~backpain_outcomes.trajectories.fit_trajectories`.

Given class *c*, the scores of episode *i* follow
:math:`y_{ij} \\mid c \\sim N(B(t_{ij})^\\top \\beta_c, \\sigma_c^2)` with
:math:`P(c) = \\pi_c` and *B* a time basis (:class:`TimeBasis`).

EM is vectorised over episodes (rows are sorted by episode; per-episode sums
use ``np.add.reduceat``, :class:`SufficientStats`), with several random
starts: short runs for every start, then the best starts are run to
convergence (the strategy lcmm users adopt for large data, lcmm #258;
:func:`fit_k`; runs that reach the same optimum are ranked in the order they
started, :func:`ranked`). The search (:func:`best_of_starts`), the E-step and
the M-step's solve (:func:`solve_classes`) also serve the partitioned fit
(:mod:`backpain_outcomes.registry_lcga`). The log-likelihood is checked never to decrease. Iteration
caps are reported, not silent (lcmm #73); a class whose variance hits its
floor is reported (lcmm #140, #151).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline
from scipy.special import logsumexp

from .exceptions import ConvergenceWarning, warn

__all__ = ["TimeBasis", "ClassFit", "SufficientStats", "sort_episodes", "fit_k", "best_of_starts", "exact_quantiles",
           "estep", "ranked", "solve_classes", "pinv_psd", "FLOOR_NOTE", "floor_notes",
           "TIE_RTOL", "RCOND"]

#: Log-likelihoods of two EM runs within this relative difference are a tie (the same optimum).
TIE_RTOL = 1e-13

#: Directions of a class's B'B whose eigenvalue is at most this share of its largest are not identified by
#: the data (a time basis with more coefficients than the distinct days support): :func:`solve_classes` and
#: :func:`pinv_psd` leave them out instead of amplifying the rounding noise of the sums in them.
RCOND = 1e-10

#: The note of a fit in which a class variance hit its floor.
FLOOR_NOTE = "a class variance hit its floor (a degenerate class fitting few episodes exactly)"


class TimeBasis:
    """Time basis on u = day / scale: polynomial or cubic B-spline.

    ``TimeBasis(day, kind, degree, n_knots, scale)`` is set up on the days of
    the data (spline knots at quantiles of them; ``scale`` defaults to the last
    day); calling it on days gives the design matrix, one column per
    coefficient.

    Examples
    --------
    >>> basis = TimeBasis(np.array([0.0, 50.0, 100.0]), "polynomial", degree=2)
    >>> basis(np.array([0.0, 50.0])).tolist()
    [[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]]
    >>> TimeBasis(np.linspace(0, 100, 11), "spline", n_knots=2)(np.array([10.0])).shape
    (1, 6)
    """

    def __init__(self, day, kind="polynomial", degree=2, n_knots=2, scale=None):
        self._start(kind, degree, scale, np.max(day))
        if kind == "spline":
            u = np.asarray(day, float) / self.scale
            inner = np.quantile(u, np.linspace(0, 1, n_knots + 2)[1:-1]) if n_knots else np.array([])
            self._knots(min(u.min(), 0.0), u.max(), inner)

    def _start(self, kind, degree, scale, last_day):
        """Check the kind and degree; set them and the scale (``scale`` or the last day, at least 1)."""
        if kind not in ("polynomial", "spline"):
            raise ValueError("time must be 'polynomial' or 'spline'")
        if kind == "polynomial" and degree not in (1, 2, 3):
            raise ValueError("degree must be 1, 2 or 3")
        self.kind, self.degree = kind, degree
        self.scale = float(scale or max(last_day, 1.0))

    def _knots(self, lo, hi, inner):
        self.knots = np.r_[[lo] * 4, inner, [hi] * 4]
        self.hi = hi

    @classmethod
    def from_counts(cls, days, counts, kind="polynomial", degree=2, n_knots=2, scale=None) -> TimeBasis:
        """The basis :class:`TimeBasis` sets up on data whose distinct days are ``days`` (sorted), each
        ``counts`` times: the same knots bit for bit (:func:`exact_quantiles`), from a table of counts
        that partitions of the data can add up.

        Examples
        --------
        >>> day = np.array([0.0, 7, 7, 14, 30, 30, 30, 90])
        >>> d, n = np.unique(day, return_counts=True)
        >>> bool(np.array_equal(TimeBasis.from_counts(d, n, "spline").knots, TimeBasis(day, "spline").knots))
        True
        """
        days = np.asarray(days, float)
        basis = cls.__new__(cls)
        basis._start(kind, degree, scale, days[-1])
        if kind == "spline":
            u = days / basis.scale
            inner = exact_quantiles(u, counts, np.linspace(0, 1, n_knots + 2)[1:-1]) if n_knots else np.array([])
            basis._knots(min(u[0], 0.0), u[-1], inner)
        return basis

    def constant(self) -> np.ndarray:
        """The coefficients of the curve equal to 1 (B-splines sum to 1; the polynomial's first column is 1)."""
        return np.ones(len(self.knots) - 4) if self.kind == "spline" else np.eye(self.degree + 1)[0]

    def __call__(self, day):
        u = np.asarray(day, float) / self.scale
        if self.kind == "polynomial":
            return np.column_stack([u**p for p in range(self.degree + 1)])
        u = np.clip(u, self.knots[0], self.hi)
        knots = np.require(self.knots, float, "CA")  # a basis sent to a Dask worker may arrive unaligned
        return BSpline.design_matrix(u, knots, 3, extrapolate=False).toarray()


class ClassFit:
    """One K-class fit: parameters, log-likelihood path, posteriors.

    ``beta`` (p, K) curve coefficients, ``sigma2`` (K,) residual variances,
    ``pi`` (K,) class weights, ``loglik``, ``post`` (episodes, K) posterior
    class probabilities, ``n_iter``, ``converged``, ``path`` (log-likelihood
    per iteration) and ``notes``. Set once the fit is chosen: ``members`` and ``weighted_S`` (what
    describes its classes); in a partitioned fit also ``sums`` (the weighted sums of the last posteriors)
    and ``post_params`` (the parameters that gave them).
    """

    def __init__(self, K, beta, sigma2, pi, loglik, post, n_iter, converged, path, notes):
        self.K, self.beta, self.sigma2, self.pi, self.loglik = K, beta, sigma2, pi, loglik
        self.post, self.n_iter, self.converged, self.path, self.notes = post, n_iter, converged, path, notes
        self.members = self.weighted_S = self.sums = self.post_params = None


class SufficientStats:
    """Per-episode sufficient statistics: with weights constant within an
    episode, EM needs only S_i = B_i'B_i, b_i = B_i'y_i, y_i'y_i and n_i, so
    each iteration costs O(n_episodes p^2 K), independent of the number of
    measurements.

    ``B`` is the basis at every measurement, ``y`` the scores (rows sorted by
    episode), ``starts`` the first row of every episode and ``n_i`` its number
    of measurements (:func:`sort_episodes`); ``constant`` the coefficients of
    the curve equal to 1 (:meth:`TimeBasis.constant`): with it the residual
    sums of squares are computed around each episode's mean score.

    Examples
    --------
    >>> B = np.column_stack([np.ones(4), [0.0, 1.0, 0.0, 1.0]])
    >>> suff = SufficientStats(B, np.array([5.0, 3.0, 6.0, 4.0]), np.array([0, 2]), np.array([2.0, 2.0]))
    >>> suff.ssr(np.array([[5.0, 6.0], [-2.0, -2.0]])).tolist()  # episode 1 fits class 1, episode 2 class 2
    [[0.0, 2.0], [2.0, 0.0]]
    """

    def __init__(self, B, y, starts, n_i, constant=None):
        self.S = np.add.reduceat(B[:, :, None] * B[:, None, :], starts, axis=0)
        self.b = np.add.reduceat(B * y[:, None], starts, axis=0)
        self.yy = np.add.reduceat(y * y, starts)
        self.n = n_i
        # the residuals from each episode's mean c_i (the curve c_i x ``constant``), for ssr without cancellation
        self.e = np.zeros(B.shape[1]) if constant is None else np.asarray(constant, float)
        self.c = np.zeros(len(n_i)) if constant is None else np.add.reduceat(y, starts) / n_i
        z = y - np.repeat(self.c, np.asarray(n_i, np.int64))
        self.bz = np.add.reduceat(B * z[:, None], starts, axis=0)
        self.zz = np.add.reduceat(z * z, starts)

    def ssr(self, beta, grad: bool = False):
        """Residual sum of squares of every episode under every class, (E, K): with g = beta_k - c_i constant,
        zz_i - 2 bz_i'g + g'S_i g (no sums of squared scores subtracted: near-exact fits of high scores, as
        a class at a ceiling, keep their digits). With ``grad`` also B_i'(y_i - B_i beta_k), (E, K, p)."""
        g = beta.T[None] - self.c[:, None, None] * self.e[None, None]  # (E, K, p)
        Sg = np.einsum("epq,ekq->ekp", self.S, g, optimize=True)
        resid = self.bz[:, None] - Sg
        ssr = np.maximum(self.zz[:, None] - np.einsum("ekp,ekp->ek", g, self.bz[:, None] + resid), 0.0)
        return (ssr, resid) if grad else ssr


def estep(suff, beta, sigma2, pi, ssr=None):
    """(posteriors (E, K), log-likelihood) of the episodes under the parameters (``ssr``: ``suff.ssr(beta)``)."""
    ssr = suff.ssr(beta) if ssr is None else ssr
    ll_ic = -0.5 * suff.n[:, None] * np.log(2 * np.pi * sigma2)[None] - ssr / (2 * sigma2[None])
    joint = np.log(np.maximum(pi, 1e-300))[None] + ll_ic
    lse = logsumexp(joint, axis=1)
    return np.exp(joint - lse[:, None]), float(lse.sum())


def _mstep(suff, post, common_var, var_floor):
    beta = solve_classes(np.einsum("ek,epq->kpq", post, suff.S, optimize=True), post.T @ suff.b)
    ssr = suff.ssr(beta)
    wn = post * suff.n[:, None]
    if common_var:
        sigma2 = np.full(post.shape[1], max((post * ssr).sum() / wn.sum(), var_floor))
    else:
        sigma2 = np.maximum((post * ssr).sum(0) / np.maximum(wn.sum(0), 1e-300), var_floor)
    return beta, sigma2, post.mean(0)


def solve_classes(A, rhs) -> np.ndarray:
    """The coefficients (p, K) of every class: ``beta_c = (A_c + 1e-10 I)^-1 rhs_c`` on the directions the
    data identify, 0 on the others (eigenvalues of ``A_c`` at most :data:`RCOND` times its largest).

    ``A`` (K, p, p) holds the posterior-weighted sums of B_i'B_i, ``rhs`` (K, p) those of B_i'y_i. When the
    days cannot identify every coefficient (say 4 distinct days and a 6-column spline), ``A_c`` is singular
    and a plain solve returns, in its null space, rounding noise of the sums divided by the ridge: values
    that change with the order of the sums (in memory or over partitions) and bend the curves between the
    measured days. Here those directions get 0, the minimum-norm least-squares curve.

    Examples
    --------
    >>> A = np.array([[[2.0, 2.0], [2.0, 2.0]]])  # two identical columns: only their sum is identified
    >>> solve_classes(A, np.array([[4.0, 4.0]])).round(6).tolist()
    [[1.0], [1.0]]
    >>> solve_classes(np.array([[[4.0, 0.0], [0.0, 1.0]]]), np.array([[8.0, 3.0]])).round(6).tolist()
    [[2.0], [3.0]]
    """
    lam, vec = np.linalg.eigh(A)
    keep = _identified(lam)
    inv = np.where(keep, 1.0 / np.where(keep, lam + 1e-10, 1.0), 0.0)
    coef = np.einsum("kpj,kj,kqj,kq->kp", vec, inv, vec, rhs)
    return coef.T


def pinv_psd(A) -> np.ndarray:
    """The pseudo-inverse of a symmetric positive semi-definite matrix, on the directions
    :func:`solve_classes` keeps (eigenvalues above :data:`RCOND` times the largest).

    Examples
    --------
    >>> pinv_psd(np.array([[2.0, 2.0], [2.0, 2.0]])).round(12).tolist()
    [[0.125, 0.125], [0.125, 0.125]]
    """
    lam, vec = np.linalg.eigh(A)
    keep = _identified(lam)
    return (vec[:, keep] / lam[keep]) @ vec[:, keep].T


def _identified(lam) -> np.ndarray:
    """Which eigenvalues (ascending along the last axis, as ``eigh`` gives them) are of directions the data
    identify: above :data:`RCOND` times the largest."""
    return lam > RCOND * np.maximum(lam[..., -1:], 0.0)


def _run_em(suff, post0, common_var, var_floor, max_iter, tol):
    post = post0
    beta, sigma2, pi = _mstep(suff, post, common_var, var_floor)
    path, converged, notes = [], False, []
    ll_prev = -np.inf
    for _ in range(max_iter):
        post, ll = estep(suff, beta, sigma2, pi)
        path.append(ll)
        if abs(ll - ll_prev) <= tol * (1 + abs(ll)):
            converged = True
            break
        ll_prev = ll
        beta, sigma2, pi = _mstep(suff, post, common_var, var_floor)
    notes += floor_notes(sigma2, var_floor)
    return ClassFit(post.shape[1], beta, sigma2, pi, path[-1], post, len(path), converged, np.array(path), notes)


def floor_notes(sigma2, var_floor) -> list[str]:
    """[:data:`FLOOR_NOTE`] when a class variance is at its floor (within 0.01%), else []."""
    return [FLOOR_NOTE] if np.any(sigma2 <= var_floor * 1.0001) else []


def exact_quantiles(values, counts, probs) -> np.ndarray:
    """``np.quantile`` (linear method) of the data holding each of the sorted distinct ``values`` ``counts``
    times, bit for bit, without the data: the two order statistics around each virtual index
    ``(n - 1) q`` come from the cumulative counts, and numpy interpolates between them with the same
    weight, ``(n - 1) q - floor((n - 1) q)`` (``np.quantile`` of the pair at that weight).

    Examples
    --------
    >>> x = np.array([3.0, 1.0, 1.0, 2.0, 8.0, 8.0, 8.0])
    >>> v, n = np.unique(x, return_counts=True)
    >>> q = [0.1, 1 / 3, 0.5, 0.9]
    >>> bool(np.array_equal(exact_quantiles(v, n, q), np.quantile(x, q)))
    True
    """
    cum = np.cumsum(counts)
    n = int(cum[-1])
    virtual = (n - 1) * np.asarray(probs, float)
    below = np.floor(virtual)
    gamma = virtual - below
    i = below.astype(np.int64)
    lo = values[np.searchsorted(cum, i, side="right")]
    hi = values[np.searchsorted(cum, np.minimum(i + 1, n - 1), side="right")]
    return np.array([np.quantile(np.array([a, b]), g) for a, b, g in zip(lo, hi, gamma, strict=True)])


def sort_episodes(frame):
    """Rows sorted by episode and day, as :class:`SufficientStats` needs them.

    Returns ``(frame, episodes, starts, n_i)``: the sorted frame with an
    ``_ep`` column (episode number 0, 1, ...), the episode ids in that order,
    the first row of every episode and its number of measurements.

    Examples
    --------
    >>> f = pd.DataFrame({"episode_id": ["b", "a", "b"], "day": [7, 0, 0], "score": [3.0, 5.0, 6.0]})
    >>> f2, eps, starts, n_i = sort_episodes(f)
    >>> f2["day"].tolist(), eps.tolist(), starts.tolist(), n_i.tolist()
    ([0, 0, 7], ['a', 'b'], [0, 1], [1.0, 2.0])
    """
    f = frame.sort_values(["episode_id", "day"], kind="stable").reset_index(drop=True)
    codes, eps = pd.factorize(f["episode_id"], sort=False)
    f["_ep"] = codes
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    n_i = np.diff(np.r_[starts, len(f)]).astype(float)
    return f, np.asarray(eps), starts, n_i


def fit_k(K, suff, E, rng, opts) -> ClassFit:
    """The best of several EM runs with ``K`` classes for ``E`` episodes.

    Every one of ``opts["n_init"]`` random starts (random partitions of the
    episodes drawn from ``rng``) runs ``opts["short_iter"]`` EM iterations;
    the ``opts["n_refine"]`` best then run to convergence (at most
    ``opts["max_iter"]`` iterations, relative tolerance ``opts["tol"]``) and
    the highest log-likelihood wins. ``opts["common"]`` asks for one residual
    variance shared by the classes; ``opts["var_floor"]`` bounds the
    variances from below. K = 1 runs once to convergence. Stopping at
    ``max_iter`` is a note and a :class:`ConvergenceWarning`.

    Examples
    --------
    >>> f, eps, starts, n_i = sort_episodes(pd.DataFrame(
    ...     {"episode_id": np.repeat([1, 2, 3, 4], 3), "day": np.tile([0.0, 30.0, 60.0], 4),
    ...      "score": [8, 7, 6, 8, 7, 6.5, 2, 1, 1, 2.5, 1, 1]}))
    >>> basis = TimeBasis(f["day"].to_numpy(float), "polynomial", degree=1)
    >>> suff = SufficientStats(basis(f["day"].to_numpy(float)), f["score"].to_numpy(float), starts, n_i)
    >>> opts = {"n_init": 5, "short_iter": 30, "max_iter": 1000, "tol": 1e-9, "n_refine": 3, "common": True,
    ...         "var_floor": 1e-6}
    >>> fit = fit_k(2, suff, len(eps), np.random.default_rng(0), opts)
    >>> modal = fit.post.argmax(1)  # episodes 1 and 2 start high, 3 and 4 low
    >>> fit.converged, bool(modal[0] == modal[1] != modal[2] == modal[3])
    (True, True)
    """
    def run_all(starts, max_iter):
        fits = []
        for start in starts:
            post0 = (np.ones((E, 1)) if start is None else start.post if isinstance(start, ClassFit)
                     else np.eye(K)[start])
            fits.append(_run_em(suff, post0, opts["common"], opts["var_floor"], max_iter, opts["tol"]))
        return fits

    return best_of_starts(K, E, rng, opts, lambda labels: labels, run_all)


def ranked(fits: list) -> list:
    """The fits by decreasing log-likelihood; fits whose log-likelihoods agree within :data:`TIE_RTOL` (runs
    that reached the same optimum: their difference is only the order of floating-point sums, which differs
    between the in-memory and the partitioned fit) keep the order in which they were started.

    Examples
    --------
    >>> fits = [ClassFit(2, None, None, None, ll, None, 1, True, None, []) for ll in (-5.0, -3.0, -3.0 - 1e-14)]
    >>> [f.loglik for f in ranked(fits)]
    [-3.0, -3.00000000000001, -5.0]
    >>> [f.loglik for f in ranked(fits[::-1])]
    [-3.00000000000001, -3.0, -5.0]
    """
    order = sorted(range(len(fits)), key=lambda i: -fits[i].loglik)
    groups: list[list[int]] = []
    for i in order:
        prev = fits[groups[-1][-1]].loglik if groups else np.nan
        if groups and abs(fits[i].loglik - prev) <= TIE_RTOL * (1 + abs(prev)):
            groups[-1].append(i)
        else:
            groups.append([i])
    return [fits[i] for g in groups for i in sorted(g)]


def best_of_starts(K: int, E: int, rng, opts: dict, begin, run_all) -> ClassFit:
    """The search of :func:`fit_k` with any EM.

    Every start (for K > 1 an array of E class numbers drawn from ``rng``, a random partition of the
    episodes in their order; None for K = 1) is passed to ``begin`` as it is drawn, and what it returns
    to ``run_all(starts, max_iter)``, which runs EM from every one of them (or from a :class:`ClassFit`:
    where that run stopped) and returns their :class:`ClassFit`. All starts are drawn before any EM
    runs; ``rng`` serves nothing else, so the draws are those of running the starts one by one. The
    ``n_refine`` best runs (:func:`ranked`: runs tied at the same optimum in the order they started) are
    refined; the first of the ranked refined runs wins.
    """
    n_starts = 1 if K == 1 else opts["n_init"]
    starts = [begin(rng.integers(0, K, E) if K > 1 else None) for _ in range(n_starts)]
    best = candidates = run_all(starts, opts["short_iter"] if K > 1 else opts["max_iter"])
    if K > 1:
        chosen = ranked(candidates)[:opts["n_refine"]]
        best = run_all(chosen, opts["max_iter"])
        for r, f in zip(best, chosen, strict=True):
            r.n_iter += f.n_iter
            r.path = np.r_[f.path, r.path]
    fit = ranked(best)[0]
    if not fit.converged:
        msg = f"k={K}: EM stopped at max_iter={opts['max_iter']} before converging; raise max_iter"
        fit.notes.append(msg)
        warn(msg, ConvergenceWarning)
    return fit
