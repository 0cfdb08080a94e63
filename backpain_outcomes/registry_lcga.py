"""EM of the latent class growth model over partitions: per-episode statistics stay on the workers.

Each partition keeps, where it was computed (:meth:`~backpain_outcomes.registry_partitions.Partitions.hold`),
the sufficient statistics of its episodes (:class:`~backpain_outcomes.lcga.SufficientStats`, on the global
time basis) and its rows' episode, day and score (for the description of the classes). An EM iteration is
one map: every partition runs the E-step of its episodes under the parameters the driver sends and returns
its log-likelihood and the posterior-weighted sums of :func:`weighted_sums`; the
driver adds them and runs the M-step (:func:`mstep_from_sums`). The random starts
of :func:`~backpain_outcomes.lcga.best_of_starts` are drawn on the driver for all episodes in their global
order and each partition receives its slice (its episodes' global ranks) once, to return the sums of the
starting partition; all starts (then all refined runs) advance together, one map per iteration for all of
them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .lcga import (
    ClassFit,
    SufficientStats,
    best_of_starts,
    estep,
    floor_notes,
    solve_classes,
    sort_episodes,
)
from .registry_mixed import frame_or_reason
from .trajectories import trajectory_rows
from .trajectory_classes import member_summary, merge_member_summaries

__all__ = ["partition_summary", "partition_state", "PartitionedEM", "weighted_sums", "mstep_from_sums"]


def weighted_sums(suff, post) -> dict:
    """The posterior-weighted sums an M-step needs, per class: ``S`` = sum post S_i (K, p, p), ``b`` = sum
    post b_i (K, p), ``yy`` = sum post y_i'y_i, ``n`` = sum post n_i and ``w`` = sum post (K,). Sums over
    disjoint sets of episodes add up."""
    return {"S": np.einsum("ek,epq->kpq", post, suff.S, optimize=True), "b": post.T @ suff.b,
            "yy": post.T @ suff.yy, "n": post.T @ suff.n, "w": post.sum(0)}


def mstep_from_sums(sums: dict, n_episodes: int, common_var: bool, var_floor: float):
    """The M-step from :func:`weighted_sums` of all episodes: ``(beta, sigma2, pi)``.

    beta_c solves (sum post S_i + 1e-10 I) beta_c = sum post b_i (:func:`~backpain_outcomes.lcga.solve_classes`), as the in-memory
    M-step. The weighted residual sum of squares at beta_c is q_c - 2 r_c'beta_c + beta_c'A_c beta_c
    (q_c = sum post y_i'y_i, r_c = sum post b_i, A_c = sum post S_i); when ``sums`` also holds, at
    coefficients ``ref`` (p, K), ``e`` the weighted sums of the episodes' squared residuals and ``grad``
    those of B_i'(y_i - B_i ref), it is e_c - 2 d'grad_c + d'A_c d with d = beta_c - ref_c: the same number
    without subtracting sums of squared scores that can exceed it by 10^5 (a class at a ceiling).
    """
    S, b = sums["S"], sums["b"]
    beta = solve_classes(S, b)
    if "e" in sums:
        d = beta - sums["ref"]
        ssr = sums["e"] - 2 * np.einsum("kp,pk->k", sums["grad"], d) + np.einsum("kpq,pk,qk->k", S, d, d)
    else:
        ssr = sums["yy"] - 2 * np.einsum("kp,pk->k", b, beta) + np.einsum("kpq,pk,qk->k", S, beta, beta)
    ssr = np.maximum(ssr, 0.0)
    if common_var:
        sigma2 = np.full(len(ssr), max(ssr.sum() / sums["n"].sum(), var_floor))
    else:
        sigma2 = np.maximum(ssr / np.maximum(sums["n"], 1e-300), var_floor)
    return beta, sigma2, sums["w"] / n_episodes


def _kept_rows(study, instrument, origin, day):
    """The partition's trajectory rows (sorted by episode and day), or why it has none (``frame_or_reason``)."""
    found = frame_or_reason(study, instrument, origin, include_baseline=True)
    if not isinstance(found, pd.DataFrame):
        return found
    return trajectory_rows(found, day)


def partition_summary(study, instrument, origin, day):
    """What the driver needs before EM: the partition's episode ids (sorted as
    :func:`~backpain_outcomes.lcga.sort_episodes` sorts them), the count of each day, the scores' count,
    mean, sum of squared deviations, minimum and maximum, and the rows left out (``n_late``,
    ``n_single``); or the reason of ``frame_or_reason``."""
    found = _kept_rows(study, instrument, origin, day)
    if not isinstance(found, tuple):
        return found
    frame, n_late, n_single = found
    y = frame["score"].to_numpy(float)
    ids = pd.Series(pd.unique(frame["episode_id"])).sort_values(kind="stable").reset_index(drop=True)
    mean = float(y.mean()) if len(y) else 0.0
    return {"ids": ids, "days": frame["day"].astype(float).value_counts(), "n": len(y), "mean": mean,
            "m2": float(((y - mean) ** 2).sum()), "min": float(y.min()) if len(y) else np.inf,
            "max": float(y.max()) if len(y) else -np.inf, "n_late": n_late, "n_single": n_single}


def partition_state(study, instrument, origin, day, basis) -> dict:
    """A partition's EM state: its episodes' sufficient statistics on ``basis`` and its rows' episode
    numbers, days and scores (None when it has no rows)."""
    found = _kept_rows(study, instrument, origin, day)
    if not isinstance(found, tuple) or not len(found[0]):
        return {"suff": None}
    frame, eps, starts, n_i = sort_episodes(found[0])
    d, y = frame["day"].to_numpy(float), frame["score"].to_numpy(float)
    return {"suff": SufficientStats(basis(d), y, starts, n_i, basis.constant()), "codes": frame["_ep"].to_numpy(np.int64),
            "day": d, "score": y}


def _zero_sums(K, p):
    return {"S": np.zeros((K, p, p)), "b": np.zeros((K, p)), "yy": np.zeros(K), "n": np.zeros(K), "w": np.zeros(K)}


def _zero_residuals(K, p):
    return {"e": np.zeros(K), "grad": np.zeros((K, p))}


def _start_post(state, labels, K):
    """The posteriors of a starting partition of the episodes: 1 for the class of each label (None: one class)."""
    return np.ones((len(state["suff"].n), 1)) if labels is None else np.eye(K)[labels]


def _start_sums(state, labels, K, p):
    """The weighted sums of a starting partition of the episodes (``labels``; None: one class)."""
    if state["suff"] is None:
        return _zero_sums(K, p)
    return weighted_sums(state["suff"], _start_post(state, labels, K))


def _residual_sums(suff, post, ssr, resid) -> dict:
    """``e`` and ``grad`` of :func:`mstep_from_sums`: the posterior-weighted sums of
    the squared residuals and of B_i'(residuals) of the partition's episodes."""
    return {"e": (post * ssr).sum(0), "grad": np.einsum("ek,ekp->kp", post, resid)}


def _start_residuals(state, labels, beta, K, p):
    """:func:`_residual_sums` at ``beta`` of the episodes of a starting partition (``labels``)."""
    if state["suff"] is None:
        return _zero_residuals(K, p)
    return _residual_sums(state["suff"], _start_post(state, labels, K), *state["suff"].ssr(beta, grad=True))


def _estep_sums(state, params, K, p):
    """(log-likelihood, weighted sums) of the partition's episodes under each of ``params``, the sums with
    those of the residuals at the parameters' coefficients (:func:`_residual_sums`)."""
    if state["suff"] is None:
        return [(0.0, {**_zero_sums(K, p), **_zero_residuals(K, p)}) for _ in params]
    out = []
    for beta, sigma2, pi in params:
        ssr, resid = state["suff"].ssr(beta, grad=True)
        post, ll = estep(state["suff"], beta, sigma2, pi, ssr)
        out.append((ll, {**weighted_sums(state["suff"], post), **_residual_sums(state["suff"], post, ssr, resid)}))
    return out


def _final(state, params, K, min_n):
    """(posteriors, :func:`member_summary`) of the partition's episodes under ``params``."""
    if state["suff"] is None:
        return np.zeros((0, K)), None
    post, _ = estep(state["suff"], *params)
    return post, member_summary(state["codes"], state["day"], state["score"], post.argmax(1), K, min_n)


def _add(sums: list[dict]) -> dict:
    return {key: np.sum([s[key] for s in sums], axis=0) for key in sums[0]}


class PartitionedEM:
    """The EM runs of :func:`~backpain_outcomes.lcga.best_of_starts` over held partition states.

    Parameters
    ----------
    held : HeldStates
        One :func:`partition_state` per partition.
    ranks : list of int arrays
        The global rank (position among all episodes sorted by id) of each partition's episodes.
    p : int
        Coefficients per class.
    opts : dict
        The options of :func:`~backpain_outcomes.lcga.fit_k`.
    """

    def __init__(self, held, ranks, p, opts):
        self.held, self.ranks, self.p, self.opts = held, ranks, p, opts
        self.E = int(sum(len(r) for r in ranks))
        self.n_maps = 0

    def fit(self, K: int, rng, min_n: int) -> ClassFit:
        """The best fit with ``K`` classes, with its posteriors (global order), ``members`` and ``weighted_S``."""
        fit = best_of_starts(K, self.E, rng, self.opts, lambda labels: self._begin(K, labels),
                             lambda starts, max_iter: self._run_all(K, starts, max_iter))
        found = self.held.map(_final, fit.post_params, K, min_n)
        self.n_maps += 1
        fit.post = np.empty((self.E, K))
        for r, (post, _) in zip(self.ranks, found, strict=True):
            fit.post[r] = post
        fit.members = merge_member_summaries([m for _, m in found if m is not None], K, min_n)
        fit.weighted_S = fit.sums["S"]
        return fit

    def _begin(self, K, labels):
        """The summed weighted sums of a start (its labels sent to each partition by global rank), with those
        of the residuals at the coefficients ``ref`` of its M-step (a second map)."""
        each = [None] * len(self.ranks) if labels is None else [labels[r] for r in self.ranks]
        sums = _add(self.held.map(_start_sums, K, self.p, each=each))
        sums["ref"] = self._mstep(sums)[0]
        sums.update(_add(self.held.map(_start_residuals, sums["ref"], K, self.p, each=each)))
        self.n_maps += 2
        return sums

    def _mstep(self, sums):
        return mstep_from_sums(sums, self.E, self.opts["common"], self.opts["var_floor"])

    def _run_all(self, K, starts, max_iter):
        """EM from every start (summed weighted sums, or a ClassFit to continue), all advancing together."""
        m, tol = len(starts), self.opts["tol"]
        params = [self._mstep(s.sums if isinstance(s, ClassFit) else s) for s in starts]
        paths: list[list[float]] = [[] for _ in range(m)]
        done, last = [False] * m, [(None, None)] * m
        for _ in range(max_iter):
            active = [i for i in range(m) if not done[i]]
            if not active:
                break
            found = self.held.map(_estep_sums, [params[i] for i in active], K, self.p)
            self.n_maps += 1
            for j, i in enumerate(active):
                ll = float(sum(f[j][0] for f in found))
                sums = {**_add([f[j][1] for f in found]), "ref": params[i][0]}
                converged = bool(paths[i]) and abs(ll - paths[i][-1]) <= tol * (1 + abs(ll))
                paths[i].append(ll)
                last[i] = (params[i], sums)
                if converged:
                    done[i] = True
                else:
                    params[i] = self._mstep(sums)
        return [self._class_fit(K, params[i], last[i], paths[i], done[i]) for i in range(m)]

    def _class_fit(self, K, params, last, path, converged) -> ClassFit:
        beta, sigma2, pi = params
        fit = ClassFit(K, beta, sigma2, pi, path[-1], None, len(path), converged, np.array(path),
                       floor_notes(sigma2, self.opts["var_floor"]))
        fit.post_params, fit.sums = last
        return fit
