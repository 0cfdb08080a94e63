"""Per-episode recovery curves, fitted for all episodes at once.

Every episode gets its own curve of the recovery model
(:mod:`backpain_outcomes.recovery_model`)

.. math:: y(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau}

fitted on padded arrays with masks (no Python loop over episodes): variable
projection first (tau by a golden-section search on the profiled sum of
squares, bracketed by the best point of the tau grid, with (b0, plateau)
solved in closed form), then batched Levenberg-Marquardt on (b0, plateau,
log tau), log tau clipped to the tau bounds. The grid bracket makes the fit
less dependent on starting values than a local optimiser. Checked against
``scipy.optimize.curve_fit`` episode by episode in the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_instrument, check_int, check_origin
from .curves import check_scale
from .recovery_model import MIN_DISTINCT_DAYS, TAU_BOUNDS, TAU_GRID, identifiable_tau, linear_given_tau, tau_problem
from .results import Result
from .vocabulary import label

__all__ = ["fit_episode_curves", "EpisodeCurves", "batched_exp_plateau_fit", "pad_episodes"]

_ESTIMATES = ["b0", "start_score", "plateau", "tau_days", "half_life_days"]


def pad_episodes(frame: pd.DataFrame):
    """``(ids, day, score, mask)``: one padded row per episode of a long frame sorted by day within episode.

    Examples
    --------
    >>> f = pd.DataFrame({"episode_id": ["a", "a", "b"], "day": [0.0, 7.0, 0.0], "score": [6.0, 3.0, 5.0]})
    >>> ids, t, y, w = pad_episodes(f)
    >>> list(ids), w.tolist()
    (['a', 'b'], [[True, True], [True, False]])
    """
    codes, ids = pd.factorize(frame["episode_id"], sort=False)
    pos = frame.groupby(codes).cumcount().to_numpy()
    E, M = len(ids), int(pos.max()) + 1 if len(pos) else 0
    t = np.zeros((E, M))
    y = np.zeros((E, M))
    w = np.zeros((E, M), bool)
    t[codes, pos] = frame["day"].to_numpy(float)
    y[codes, pos] = frame["score"].to_numpy(float)
    w[codes, pos] = True
    return ids, t, y, w


def _varpro(t, y, w, n_golden=40):
    """Variable projection: tau by a vectorised golden-section search on the profiled SSE, bracketed
    by the best point of a log-spaced grid; (b0, plateau) solved exactly for each tau."""
    wf = w.astype(float)
    y = y * wf
    yy = np.einsum("em,em->e", y, y)

    def prof(log_tau):
        return linear_given_tau(t, y, w, np.exp(log_tau), wf, yy)[2]
    grid = np.log(np.r_[TAU_BOUNDS[0], TAU_GRID, TAU_BOUNDS[1]])
    sse_grid = np.column_stack([prof(np.full(t.shape[0], g)) for g in grid])
    k = np.argmin(sse_grid, axis=1)
    lo = grid[np.maximum(k - 1, 0)]
    hi = grid[np.minimum(k + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    c = hi - ratio * (hi - lo)
    d = lo + ratio * (hi - lo)
    fc, fd = prof(c), prof(d)
    for _ in range(n_golden):
        left = fc < fd  # minimum in [lo, d]
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        new_c = hi - ratio * (hi - lo)
        new_d = lo + ratio * (hi - lo)
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        f_new = prof(np.where(left, new_c, new_d))
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        c, d = c_next, d_next
    log_tau = (lo + hi) / 2
    b0, pl, _ = linear_given_tau(t, y, w, np.exp(log_tau), wf, yy)
    return np.column_stack([b0, pl, log_tau])


def batched_exp_plateau_fit(t, y, w, max_iter=30, tol=1e-15):
    """Fit every row of padded arrays ``t``, ``y`` with mask ``w``.

    Variable projection first (golden-section search on tau with (b0,
    plateau) solved exactly), then batched Levenberg-Marquardt on all three
    parameters. Each LM iteration works only on the episodes still active.

    Returns ``(theta (E, 3) as b0, plateau, tau), sse, converged, n_iter``.
    """
    E = t.shape[0]
    lo, hi = np.log(TAU_BOUNDS[0]), np.log(TAU_BOUNDS[1])
    th = _varpro(t, y, w)  # near-exact start; LM below polishes all three parameters jointly
    wf = w.astype(float)

    def resid_jac(th, idx):
        tt, ww = t[idx], wf[idx]
        tau = np.exp(th[:, 2])[:, None]
        e = np.exp(-tt / tau)
        f = th[:, 1:2] + (th[:, 0:1] - th[:, 1:2]) * e
        r = (y[idx] - f) * ww
        J = np.stack([e, 1 - e, (th[:, 0:1] - th[:, 1:2]) * e * tt / tau], axis=2) * ww[:, :, None]
        return r, J

    all_idx = np.arange(E)
    r, J = resid_jac(th, all_idx)
    sse = (r**2).sum(1)
    lam = np.full(E, 1e-3)
    converged = np.zeros(E, bool)
    it = np.zeros(E, int)
    idx = all_idx
    r_a, J_a = r, J
    for _ in range(max_iter):
        if len(idx) == 0:
            break
        A = np.einsum("emi,emj->eij", J_a, J_a)
        g = np.einsum("emi,em->ei", J_a, r_a)
        diag = np.einsum("eii->ei", A)
        Ad = A + lam[idx, None, None] * (np.eye(3)[None] * np.maximum(diag, 1e-12)[:, :, None])
        step = np.linalg.solve(Ad, g[:, :, None])[:, :, 0]
        new = th[idx] + step
        new[:, 2] = np.clip(new[:, 2], lo, hi)
        r_new, J_new = resid_jac(new, idx)
        sse_new = (r_new**2).sum(1)
        accept = sse_new <= sse[idx]
        rel = np.abs(sse[idx] - sse_new) / np.maximum(sse[idx], 1e-300)
        small_step = np.abs(step).max(1) < 1e-11
        a_idx = idx[accept]
        th[a_idx], sse[a_idx] = new[accept], sse_new[accept]
        r_a = np.where(accept[:, None], r_new, r_a)
        J_a = np.where(accept[:, None, None], J_new, J_a)
        lam[a_idx] = np.maximum(lam[a_idx] / 10, 1e-12)
        lam[idx[~accept]] *= 10
        it[idx] += 1
        # tau pinned at a bound: the fit is degenerate (tau not identified) and only creeps; stop early
        pinned = (new[:, 2] <= lo) | (new[:, 2] >= hi)
        done = accept & ((rel < tol) | small_step | (pinned & (rel < 1e-9)))
        bad = ~np.isfinite(sse_new) & ~accept
        lam[idx[bad]] = np.inf  # a non-finite step cannot be repaired: give up on that episode
        stuck = ~accept & (lam[idx] > 1e12)  # cannot improve further: a (local) minimum at working precision
        converged[idx[done | stuck]] = True
        keep = ~(done | stuck)
        idx, r_a, J_a = idx[keep], r_a[keep], J_a[keep]
    out = th.copy()
    out[:, 2] = np.exp(th[:, 2])
    # the variable-projection start is already a minimum of the profiled SSE (bracket width ~1e-9 in
    # log tau); LM that does not settle within max_iter only means it could not improve on it
    converged |= np.isfinite(sse)
    return out, sse, converged & identifiable_tau(out[:, 2], t, w, out[:, 0], out[:, 1]), it


class EpisodeCurves(Result):
    """Per-episode recovery curves (:func:`fit_episode_curves`).

    Attributes
    ----------
    table : DataFrame
        One row per episode: ``episode_id``, ``modality``, ``chronicity``,
        ``n_scores``, ``first_day`` (day of the first measurement), ``b0`` (the
        curve at day 0; missing where that is an extrapolation over more than 20
        time constants), ``start_score`` (the curve at the first measurement),
        ``plateau``, ``tau_days``, ``half_life_days``, ``residual_sd``,
        ``converged``, ``n_iterations``, ``note``. Estimates are NaN where the
        episode was not fitted or its curve is not identified (``note`` says why).
    notes : list of str
        How many episodes were not fitted or not identified, and why.
    """

    def __init__(self, table, instrument, origin, scale, min_n, notes):
        self.table, self.instrument, self.origin, self.scale, self.min_n = table, instrument, origin, scale, min_n
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        t = self.table
        ok = t[t["converged"]]
        by = (ok.groupby("modality", sort=True)
              .agg(episodes=("episode_id", "size"), median_half_life_days=("half_life_days", "median"),
                   median_plateau=("plateau", "median")).reset_index())
        fitted = t.groupby("modality", sort=True)["episode_id"].size().rename("all_episodes")
        by = by.merge(fitted, left_on="modality", right_index=True, how="right").fillna({"episodes": 0})
        by["modality"] = by["modality"].map(label)
        return (f"Per-episode recovery curves ({label(self.instrument)}, {label(self.origin)})",
                [f"{len(ok)} of {len(t)} episodes have an identified curve", *self.notes],
                {"Identified curves by modality": by})

    def plot(self, ax=None):
        """Half-lives of the identified curves by modality (box plots, log scale)."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        ok = self.table[self.table["converged"]]
        groups = [(m, g["half_life_days"].to_numpy(float)) for m, g in ok.groupby("modality", sort=True)]
        if groups:
            ax.boxplot([g for _, g in groups], showfliers=False)
            ax.set_xticks(range(1, len(groups) + 1), [label(m) for m, _ in groups], rotation=20)
            ax.set_yscale("log")
        ax.set_ylabel("half-life of the episode's curve (days)")
        ax.set_title(f"Per-episode recovery, {label(self.instrument)}", fontsize=10)
        return ax


def _reasons(conv, problem, far):
    note = np.where(problem != "", problem, np.where(conv, "", "Levenberg-Marquardt did not converge"))
    return np.where(conv & far, "b0 not reported: day 0 lies more than 20 time constants before the first "
                                "measurement (see start_score)", note).astype(object)


def _fit_frame(fit_frame):
    ids, t, y, w = pad_episodes(fit_frame)
    t0 = t[:, 0].copy()  # day of each episode's first measurement (rows are sorted by day)
    # fit on time since the first measurement (numerically stable), then move b0 to the origin
    rel = np.where(w, t - t0[:, None], 0.0)
    theta, sse, conv, it = batched_exp_plateau_fit(rel, y, w)
    problem = tau_problem(theta[:, 2], rel, w, theta[:, 0], theta[:, 1])
    k = w.sum(1)
    b_first, plateau, tau = theta[:, 0], theta[:, 1], theta[:, 2]
    with np.errstate(over="ignore", invalid="ignore"):
        b0 = plateau + (b_first - plateau) * np.exp(np.minimum(t0 / tau, 700.0))
    far = t0 / tau > 20  # b0 at day 0 would be an extrapolation over more than 20 time constants
    out = pd.DataFrame({"episode_id": ids, "n_scores": k, "first_day": t0, "b0": np.where(far, np.nan, b0),
                        "start_score": b_first, "plateau": plateau, "tau_days": tau,
                        "half_life_days": tau * np.log(2), "residual_sd": np.sqrt(sse / np.maximum(k - 3, 1)),
                        "converged": conv, "n_iterations": it, "note": _reasons(conv, problem, far)})
    out.loc[~out["converged"], _ESTIMATES + ["residual_sd"]] = np.nan
    return out


def fit_episode_curves(study, instrument: str = "nrs", origin: str = "onset", min_n: int = 4,
                       scale: str | None = None) -> EpisodeCurves:
    """Fit ``plateau + (b0 - plateau) * exp(-day / tau)`` to every episode separately.

    Parameters
    ----------
    study : Study
    instrument : str
        Any accepted spelling ("nrs", "NPRS", ...).
    origin : {"onset", "first_contact"}
        Day 0. The origin shifts ``b0`` (the curve's value at day 0) but not
        ``plateau`` or ``tau``.
    min_n : int
        Episodes with fewer measurements are listed with ``converged=False``
        and a ``note``, not fitted. At least 3 (three parameters); the default
        4 leaves a degree of freedom for the residual SD.
    scale : {None, "100"}
        ``"100"`` fits scores rescaled to 0-100.

    Returns
    -------
    EpisodeCurves
        ``table`` has one row per episode (see :class:`EpisodeCurves`). An
        episode's curve is identified (``converged``) only when its
        measurements fall on at least three distinct days, the curve is not
        flat, tau is off its bounds and the plateau is not reached before the
        first follow-up; otherwise its estimates are NaN and ``note`` says why.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> ep = bpo.fit_episode_curves(bpo.load_study(bpo.example_path()))
    >>> bool(ep.table["converged"].mean() > 0.8)
    True
    """
    if not hasattr(study, "analysis_frame"):
        raise TypeError(f"study must be a Study (load_study or simulate_study), got {type(study).__name__}")
    instrument, origin = check_instrument(instrument), check_origin(origin)
    min_n, scale = check_int(min_n, "min_n", low=MIN_DISTINCT_DAYS), check_scale(scale)
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=True, scale=scale)
    n = frame.groupby("episode_id", sort=False).size()
    enough = frame["episode_id"].map(n) >= min_n
    out = _fit_frame(frame[enough]) if enough.any() else pd.DataFrame(columns=["episode_id", "converged"])
    few = n[n < min_n]
    if len(few):
        out = pd.concat([out, pd.DataFrame({"episode_id": few.index, "n_scores": few.to_numpy(), "converged": False,
                                            "n_iterations": 0,
                                            "note": f"fewer than {min_n} measurements: not fitted"})],
                        ignore_index=True)
    ep = study.episodes.set_index("episode_id")
    out.insert(1, "modality", out["episode_id"].map(ep["modality"]).to_numpy())
    out.insert(2, "chronicity", out["episode_id"].map(ep["chronicity"].astype(str)).to_numpy())
    out["converged"] = out["converged"].astype(bool)
    notes = [f"{count} episode(s): {why}" for why, count in
             out.loc[~out["converged"], "note"].value_counts().sort_index().items()]
    return EpisodeCurves(out, instrument, origin, scale, min_n, notes)
