"""Trajectory subgroups: latent class growth models (LCGA) fitted by EM.

Each episode *i* belongs to one of *K* latent classes; given class *c* its
scores follow a class mean curve with Gaussian residuals:

.. math:: y_{ij} \\mid c \\sim N\\big(B(t_{ij})^\\top \\beta_c,\\ \\sigma_c^2\\big),
          \\qquad P(c) = \\pi_c

with *B* a polynomial (degree 2 or 3) or cubic B-spline basis of time. This
is the model of R's ``lcmm::hlme`` without random effects (LCGA; Nagin 1999)
and of ``flexmix`` with grouped observations. Dunn, Jordan & Croft 2006 (Am J
Epidemiol 163:754) found four back-pain trajectories in primary care;
Kongsted et al. 2015 found 5 to 12 depending on the model, so the number of
classes is chosen from an **enumeration table**, never fixed.

EM is vectorised over episodes (rows are sorted by episode; per-episode sums
use ``np.add.reduceat``), with several random starts: short runs for every
start, then the best starts are run to convergence (the strategy lcmm users
adopt for large data, lcmm #258). The log-likelihood is checked never to
decrease. Iteration caps are reported, not silent (lcmm #73); collapsing
classes are reported (lcmm #140, #151).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline
from scipy.special import logsumexp

from ._display import ResultMixin
from .exceptions import ConvergenceWarning

__all__ = ["fit_trajectories", "TrajectoryResult", "adjusted_rand_index"]


def adjusted_rand_index(a, b) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985)."""
    ct = pd.crosstab(np.asarray(a), np.asarray(b)).to_numpy()
    comb = lambda x: x * (x - 1) / 2.0  # noqa: E731
    sum_ij = comb(ct).sum()
    sa, sb = comb(ct.sum(1)).sum(), comb(ct.sum(0)).sum()
    n = ct.sum()
    expected = sa * sb / comb(n)
    maximum = (sa + sb) / 2
    return float((sum_ij - expected) / (maximum - expected)) if maximum != expected else 1.0


class _Basis:
    """Time basis on u = day / scale: polynomial or cubic B-spline."""

    def __init__(self, day, kind="polynomial", degree=2, n_knots=2, scale=None):
        self.kind, self.degree = kind, degree
        self.scale = float(scale or max(np.max(day), 1.0))
        u = np.asarray(day, float) / self.scale
        if kind == "polynomial":
            if degree not in (1, 2, 3):
                raise ValueError("degree must be 1, 2 or 3")
        elif kind == "spline":
            inner = np.quantile(u, np.linspace(0, 1, n_knots + 2)[1:-1]) if n_knots else np.array([])
            lo, hi = min(u.min(), 0.0), u.max()
            self.knots = np.r_[[lo] * 4, inner, [hi] * 4]
            self.hi = hi
        else:
            raise ValueError("time must be 'polynomial' or 'spline'")

    def __call__(self, day):
        u = np.asarray(day, float) / self.scale
        if self.kind == "polynomial":
            return np.column_stack([u**p for p in range(self.degree + 1)])
        u = np.clip(u, self.knots[0], self.hi)
        return BSpline.design_matrix(u, self.knots, 3, extrapolate=False).toarray()


class _Fit:
    """One K-class fit: parameters, log-likelihood path, posteriors."""

    def __init__(self, K, beta, sigma2, pi, loglik, post, n_iter, converged, path, notes):
        self.K, self.beta, self.sigma2, self.pi, self.loglik = K, beta, sigma2, pi, loglik
        self.post, self.n_iter, self.converged, self.path, self.notes = post, n_iter, converged, path, notes


class _Suff:
    """Per-episode sufficient statistics: with weights constant within an
    episode, EM needs only S_i = B_i'B_i, b_i = B_i'y_i, y_i'y_i and n_i, so
    each iteration costs O(n_episodes p^2 K), independent of the number of
    measurements."""

    def __init__(self, B, y, starts, n_i):
        self.S = np.add.reduceat(B[:, :, None] * B[:, None, :], starts, axis=0)
        self.b = np.add.reduceat(B * y[:, None], starts, axis=0)
        self.yy = np.add.reduceat(y * y, starts)
        self.n = n_i

    def ssr(self, beta):
        """Residual sum of squares of every episode under every class, (E, K)."""
        quad = np.einsum("epq,pk,qk->ek", self.S, beta, beta, optimize=True)
        return np.maximum(self.yy[:, None] - 2 * self.b @ beta + quad, 0.0)


def _estep(suff, beta, sigma2, pi):
    ssr = suff.ssr(beta)
    ll_ic = -0.5 * suff.n[:, None] * np.log(2 * np.pi * sigma2)[None] - ssr / (2 * sigma2[None])
    joint = np.log(np.maximum(pi, 1e-300))[None] + ll_ic
    lse = logsumexp(joint, axis=1)
    return np.exp(joint - lse[:, None]), float(lse.sum())


def _mstep(suff, post, common_var, var_floor):
    p = suff.S.shape[1]
    A = np.einsum("ek,epq->kpq", post, suff.S, optimize=True) + 1e-10 * np.eye(p)[None]
    rhs = post.T @ suff.b
    beta = np.linalg.solve(A, rhs[:, :, None])[:, :, 0].T  # (p, K)
    ssr = suff.ssr(beta)
    wn = post * suff.n[:, None]
    if common_var:
        sigma2 = np.full(post.shape[1], max((post * ssr).sum() / wn.sum(), var_floor))
    else:
        sigma2 = np.maximum((post * ssr).sum(0) / np.maximum(wn.sum(0), 1e-300), var_floor)
    return beta, sigma2, post.mean(0)


def _run_em(suff, post0, common_var, var_floor, max_iter, tol):
    post = post0
    beta, sigma2, pi = _mstep(suff, post, common_var, var_floor)
    path, converged, notes = [], False, []
    ll_prev = -np.inf
    for _ in range(max_iter):
        post, ll = _estep(suff, beta, sigma2, pi)
        path.append(ll)
        if abs(ll - ll_prev) <= tol * (1 + abs(ll)):
            converged = True
            break
        ll_prev = ll
        beta, sigma2, pi = _mstep(suff, post, common_var, var_floor)
    if np.any(sigma2 <= var_floor * 1.0001):
        notes.append("a class variance hit its floor (a degenerate class fitting few episodes exactly)")
    return _Fit(post.shape[1], beta, sigma2, pi, path[-1], post, len(path), converged, np.array(path), notes)


class TrajectoryResult(ResultMixin):
    """Result of :func:`fit_trajectories`.

    Attributes
    ----------
    enumeration : DataFrame
        One row per k: ``k``, ``loglik``, ``n_params``, ``bic``, ``aic``,
        ``sabic``, ``entropy`` (relative), ``smallest_class`` (share),
        ``min_avepp`` (lowest mean posterior of a class among its members),
        ``n_iter``, ``converged``.
    best_k : int
        Lowest BIC among converged fits whose smallest class holds at least
        ``min_class_share`` of episodes.
    classes : DataFrame
        Per episode for ``k``: ``episode_id``, ``class``, ``posterior`` (of
        the modal class) and ``p_class_<c>`` for every class.
    curves : DataFrame
        ``class``, ``label``, ``day``, ``mean``, ``ci_low``, ``ci_high``.
    sizes : DataFrame
        ``class``, ``label``, ``share`` (mean posterior), ``n`` (modal), ``avepp``, ``sigma``.
    """

    def __init__(self, fits, enumeration, best_k, basis, frame, episodes, instrument, origin, min_class_share,
                 explanation, suff):
        self.fits, self.enumeration, self.best_k, self._basis = fits, enumeration, best_k, basis
        self._frame, self._episodes, self.instrument, self.origin = frame, episodes, instrument, origin
        self.min_class_share, self.explanation = min_class_share, explanation
        self._suff = suff
        self.select(best_k)

    def select(self, k: int) -> TrajectoryResult:
        """Describe the k-class fit (``classes``, ``curves``, ``sizes``, cross-tabs); returns self."""
        if k not in self.fits:
            raise ValueError(f"k={k} was not fitted; fitted: {sorted(self.fits)}")
        self.k = k
        fit = self.fits[k]
        order = np.argsort(-(self._basis(np.array([0.0])) @ fit.beta)[0])  # class 1 = highest start
        self._order = order
        post = fit.post[:, order]
        modal = post.argmax(1)
        self.classes = pd.DataFrame({"episode_id": self._episodes, "class": modal + 1,
                                     "posterior": post[np.arange(len(modal)), modal]})
        for c in range(k):
            self.classes[f"p_class_{c + 1}"] = post[:, c]
        days = np.linspace(0, float(self._frame["day"].max()), 60)
        Bd = self._basis(days)
        rows, sizes = [], []
        labels = self._labels(fit, order, days)
        for j, c in enumerate(order):
            cov = fit.sigma2[c] * np.linalg.pinv(np.einsum("e,epq->pq", fit.post[:, c], self._suff.S))
            mean = Bd @ fit.beta[:, c]
            se = np.sqrt(np.einsum("ij,jk,ik->i", Bd, cov, Bd))
            rows.append(pd.DataFrame({"class": j + 1, "label": labels[j], "day": days, "mean": mean,
                                      "ci_low": mean - 1.96 * se, "ci_high": mean + 1.96 * se}))
            members = modal == j
            sizes.append({"class": j + 1, "label": labels[j], "share": float(fit.pi[c]), "n": int(members.sum()),
                          "avepp": float(post[members, j].mean()) if members.any() else np.nan,
                          "sigma": float(np.sqrt(fit.sigma2[c]))})
        self.curves = pd.concat(rows, ignore_index=True)
        self.sizes = pd.DataFrame(sizes)
        return self

    def _labels(self, fit, order, days):
        """Plain labels from the class's observed start (first measurements) and end (last quarter of
        follow-up), posterior-weighted, and residual SD (heuristic, documented in :func:`fit_trajectories`)."""
        from .instruments import INSTRUMENTS
        hi = INSTRUMENTS[self.instrument][1]
        sig = np.sqrt(fit.sigma2[order])
        f = self._frame
        first = f.groupby("_ep", sort=True)["score"].first().to_numpy()
        late = f["day"] >= 0.75 * f["day"].max()
        out = []
        for j, c in enumerate(order):
            w_ep = fit.post[:, c]
            start = np.average(first, weights=w_ep) / hi if w_ep.sum() > 0 else np.nan
            w_late = fit.post[f.loc[late, "_ep"].to_numpy(), c]
            end = (np.average(f.loc[late, "score"], weights=w_late) / hi if w_late.sum() > 0
                   else (self._basis(days[-1:]) @ fit.beta[:, c])[0] / hi)
            if end <= 0.2 and start - end >= 0.2:
                out.append("recovering")
            elif end >= 0.55:
                out.append("severe persistent")
            elif len(order) > 1 and sig[j] > 1.4 * np.min(sig) and sig[j] > 0.12 * hi:
                out.append("fluctuating")
            elif end <= 0.2:
                out.append("no or occasional pain")
            elif start - end >= 0.25:
                out.append("improving, not resolved")
            else:
                out.append("persistent mild")
        return out

    def crosstab(self, by: str = "modality") -> pd.DataFrame:
        """Modal class by ``modality`` or ``chronicity`` (row percentages in ``attrs['percent']``)."""
        ep = self._study_episodes.set_index("episode_id")
        lab = self.sizes.set_index("class")["label"]
        c = self.classes.assign(**{by: self.classes["episode_id"].map(ep[by].astype(str))})
        tab = pd.crosstab(c[by], c["class"].map(lambda x: f"{x}: {lab[x]}"))
        tab.attrs["percent"] = tab.div(tab.sum(axis=1), axis=0) * 100
        return tab

    def _parts(self):
        return (f"Latent class growth model ({self.instrument}, k = {self.k})",
                [self.explanation], {"Enumeration": self.enumeration, "Classes": self.sizes})

    def plot(self, ax=None, n_spaghetti: int = 150, seed: int = 0):
        """Class mean curves with 95% CI over a sample of individual episodes."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        rng = np.random.default_rng(seed)
        eps = self.classes["episode_id"].to_numpy()
        pick = set(rng.choice(eps, size=min(n_spaghetti, len(eps)), replace=False))
        cls = self.classes.set_index("episode_id")["class"]
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        f = self._frame[self._frame["episode_id"].isin(pick)]
        for eid, g in f.groupby("episode_id"):
            ax.plot(g["day"], g["score"], color=colors[(cls[eid] - 1) % len(colors)], alpha=0.15, lw=0.7)
        for c, g in self.curves.groupby("class"):
            col = colors[(c - 1) % len(colors)]
            share = self.sizes.set_index("class").loc[c, "share"]
            ax.plot(g["day"], g["mean"], color=col, lw=2.5, label=f"{c}: {g['label'].iat[0]} ({share:.0%})")
            ax.fill_between(g["day"], g["ci_low"], g["ci_high"], color=col, alpha=0.25)
        ax.set_xlabel(f"days since {'onset' if self.origin == 'onset' else 'first contact'}")
        ax.set_ylabel(self.instrument.upper())
        ax.legend(fontsize=8)
        return ax


def _prepare(frame):
    f = frame.sort_values(["episode_id", "day"], kind="stable").reset_index(drop=True)
    codes, eps = pd.factorize(f["episode_id"], sort=False)
    f["_ep"] = codes
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    n_i = np.diff(np.r_[starts, len(f)]).astype(float)
    return f, np.asarray(eps), starts, n_i


def fit_trajectories(study, instrument: str = "nrs", k=range(1, 6), time: str = "polynomial", degree: int = 2,
                     n_knots: int = 2, origin: str = "onset", n_init: int = 20, seed: int = 0,
                     variance: str = "class", max_iter: int = 1000, tol: float = 1e-9, short_iter: int = 30,
                     n_refine: int = 3, min_class_share: float = 0.05, max_day: float | None = None,
                     min_measurements: int = 2) -> TrajectoryResult:
    """Latent class growth model with class enumeration.

    Parameters
    ----------
    study : Study or DataFrame
        A Study, or a long frame with ``episode_id``, ``day``, ``score``.
    instrument : str
    k : int or iterable of int
        Numbers of classes to fit.
    time : {"polynomial", "spline"}
        Class mean curves: polynomial of ``degree`` (2 or 3) or cubic B-spline
        with ``n_knots`` interior knots at quantiles of time.
    origin : {"onset", "first_contact"}
        Day 0. From onset, episodes first seen late enter late; ``"first_contact"``
        aligns episodes at their first measurement, which suits clinic data.
    n_init : int
        Random starts per k (random partitions of episodes); each runs
        ``short_iter`` EM iterations, then the ``n_refine`` best run to
        convergence.
    seed : int
        Results are identical for the same seed.
    variance : {"class", "common"}
        Class-specific or common residual variance.
    max_iter, tol :
        EM stops when the relative change of the log-likelihood is below
        ``tol``; hitting ``max_iter`` is reported as not converged.
    min_class_share : float
        ``best_k`` only considers fits whose smallest class has at least this share.
    max_day : float or None
        Measurements after this day are left out (counted in ``explanation``);
        None keeps all. The time basis is scaled to ``max_day`` (or the last day).
    min_measurements : int
        Episodes with fewer measurements are left out (counted).

    Returns
    -------
    TrajectoryResult

    Notes
    -----
    Parameters: K x p curve coefficients, K (or 1) variances and K - 1
    weights. BIC = -2 LL + n_params log(n_episodes) (the subject count, as in
    lcmm); SABIC uses (n + 2) / 24. Relative entropy
    1 - sum(-p log p) / (n log K). CIs of class curves ignore classification
    uncertainty. Labels are heuristics from the class's posterior-weighted
    mean first score, mean score in the last quarter of follow-up and
    residual SD (on the instrument's range): *recovering* (ends <= 20% after
    a drop of >= 20 points), *severe persistent* (ends >= 55%), *fluctuating*
    (residual SD above 1.4 times the smallest class SD), *persistent mild*,
    *improving, not resolved*, *no or occasional pain*.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> traj = bpo.fit_trajectories(bpo.load_study(bpo.example_path()), k=range(1, 4), n_init=5)
    >>> int(traj.best_k) in (1, 2, 3)
    True
    """
    if hasattr(study, "analysis_frame"):
        frame = study.analysis_frame(instrument, origin=origin, include_baseline=True)
        episodes_table = study.episodes
    else:
        frame, episodes_table = study, None
    frame = frame[["episode_id", "day", "score"]].dropna()
    notes = []
    if max_day is not None:
        late = frame["day"] > max_day
        if late.any():
            notes.append(f"{int(late.sum())} measurements after day {max_day:g} left out")
        frame = frame[~late]
    n_meas = frame.groupby("episode_id")["score"].transform("size")
    few = n_meas < min_measurements
    if few.any():
        notes.append(f"{frame.loc[few, 'episode_id'].nunique()} episodes with fewer than {min_measurements} "
                     "measurements left out")
    frame, eps, starts, n_i = _prepare(frame[~few])
    basis = _Basis(frame["day"].to_numpy(float), time, degree, n_knots, scale=max_day)
    B = basis(frame["day"].to_numpy(float))
    y = frame["score"].to_numpy(float)
    suff = _Suff(B, y, starts, n_i)
    E = len(eps)
    var_floor = 1e-6 * max(np.var(y), 1e-12)
    ks = [k] if np.isscalar(k) else list(k)
    rng = np.random.default_rng(seed)
    fits, rows = {}, []
    for K in ks:
        candidates = []
        n_starts = 1 if K == 1 else n_init
        for _ in range(n_starts):
            post0 = np.eye(K)[rng.integers(0, K, E)] if K > 1 else np.ones((E, 1))
            candidates.append(_run_em(suff, post0, variance == "common", var_floor,
                                      short_iter if K > 1 else max_iter, tol))
        best = sorted(candidates, key=lambda f: -f.loglik)[:n_refine] if K > 1 else candidates
        if K > 1:
            refined = []
            for f in best:
                r = _run_em(suff, f.post, variance == "common", var_floor, max_iter, tol)
                r.n_iter += f.n_iter
                r.path = np.r_[f.path, r.path]
                refined.append(r)
            best = refined
        fit = max(best, key=lambda f: f.loglik)
        if not fit.converged:
            msg = f"k={K}: EM stopped at max_iter={max_iter} before converging; raise max_iter"
            fit.notes.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
        fits[K] = fit
        p = B.shape[1]
        n_params = K * p + (1 if variance == "common" else K) + (K - 1)
        ll = fit.loglik
        post = fit.post
        if K > 1:
            ent = 1 - float(-(post * np.log(np.clip(post, 1e-300, 1))).sum() / (E * np.log(K)))
        else:
            ent = 1.0
        modal = post.argmax(1)
        avepp = [post[modal == c, c].mean() if (modal == c).any() else np.nan for c in range(K)]
        rows.append({"k": K, "loglik": ll, "n_params": n_params, "bic": -2 * ll + n_params * np.log(E),
                     "aic": -2 * ll + 2 * n_params, "sabic": -2 * ll + n_params * np.log((E + 2) / 24),
                     "entropy": ent, "smallest_class": float(fit.pi.min()), "min_avepp": float(np.nanmin(avepp)),
                     "n_iter": fit.n_iter, "converged": fit.converged, "note": "; ".join(fit.notes)})
    enum = pd.DataFrame(rows)
    ok = enum[enum["converged"] & (enum["smallest_class"] >= min_class_share)]
    pool = ok if len(ok) else enum
    best_k = int(pool.loc[pool["bic"].idxmin(), "k"])
    expl = (f"best k = {best_k}: the lowest BIC among the fits that converged and whose smallest class holds at "
            f"least {min_class_share:.0%} of the {E} episodes"
            + ("" if len(ok) else " (no fit met both conditions; lowest BIC overall)")
            + ". BIC, entropy and class sizes for every k are in `enumeration`; pick another k with select(k).")
    if notes:
        expl += " " + "; ".join(notes) + "."
    res = TrajectoryResult(fits, enum, best_k, basis, frame, eps, instrument, origin, min_class_share, expl, suff)
    res._study_episodes = episodes_table
    return res
