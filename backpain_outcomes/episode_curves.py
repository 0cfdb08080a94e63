"""Per-episode recovery curves, fitted for all episodes at once.

All episodes are fitted at once on padded arrays with masks (no Python loop
over episodes): variable projection first (tau by a golden-section search on
the profiled sum of squares, bracketed by the best point of a log grid, with
(b0, plateau) solved in closed form), then batched Levenberg-Marquardt on
(b0, plateau, log tau), log tau clipped to the bounds of
:data:`~backpain_outcomes.curves.TAU_BOUNDS`. The grid bracket makes the fit
less dependent on starting values than a local optimiser. Checked against
``scipy.optimize.curve_fit`` episode by episode in the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .curves import _TAU_GRID, TAU_BOUNDS

__all__ = ["fit_episode_curves", "batched_exp_plateau_fit"]


def _pad(frame):
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


def _linear_given_tau(t, y, w, tau, wf=None, yy=None):
    """(b0, plateau, sse) per episode for a given tau per episode (closed-form 2x2 least squares).

    ``e = exp(-t/tau)``, ``f = 1 - e`` on observed points; the SSE is computed from the normal
    equations, without forming residuals."""
    wf = w.astype(float) if wf is None else wf
    e = np.exp(-t / tau[:, None]) * wf
    f = wf - e
    a11, a12 = np.einsum("em,em->e", e, e), np.einsum("em,em->e", e, f)
    a22 = np.einsum("em,em->e", f, f)
    r1, r2 = np.einsum("em,em->e", e, y), np.einsum("em,em->e", f, y)
    yy = np.einsum("em,em->e", y * wf, y) if yy is None else yy
    det = a11 * a22 - a12**2
    ok = det > 1e-12 * np.maximum(a11 * a22, 1e-300)
    safe = np.where(ok, det, 1.0)
    b0 = np.where(ok, (a22 * r1 - a12 * r2) / safe, (r1 + r2) / np.maximum(a11 + 2 * a12 + a22, 1e-300))
    pl = np.where(ok, (a11 * r2 - a12 * r1) / safe, b0)
    sse = np.maximum(yy - 2 * (b0 * r1 + pl * r2) + b0 * b0 * a11 + 2 * b0 * pl * a12 + pl * pl * a22, 0.0)
    return b0, pl, sse


def _varpro(t, y, w, n_golden=40):
    """Variable projection: tau by a vectorised golden-section search on the profiled SSE, bracketed
    by the best point of a log-spaced grid; (b0, plateau) solved exactly for each tau."""
    wf = w.astype(float)
    y = y * wf
    yy = np.einsum("em,em->e", y, y)

    def prof(log_tau):
        return _linear_given_tau(t, y, w, np.exp(log_tau), wf, yy)[2]
    grid = np.log(np.r_[TAU_BOUNDS[0], _TAU_GRID, TAU_BOUNDS[1]])
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
    b0, pl, _ = _linear_given_tau(t, y, w, np.exp(log_tau), wf, yy)
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


def identifiable_tau(tau, t, w, b0=None, plateau=None):
    """tau is identified only off its bounds (1%), when the curve has not reached its plateau before
    the first follow-up (tau >= first gap / 5; below that every smaller tau fits equally well) and
    when the curve is not flat (|b0 - plateau| > 1e-6 points: with no decay, tau is arbitrary)."""
    first_gap = np.where(w & (t > 0), t, np.inf).min(axis=1)
    ok = (tau > TAU_BOUNDS[0] * 1.01) & (tau < TAU_BOUNDS[1] * 0.99) & (tau >= first_gap / 5)
    if b0 is not None:
        ok &= np.abs(np.asarray(b0) - np.asarray(plateau)) > 1e-6
    return ok


def fit_episode_curves(study, instrument: str = "nrs", origin: str = "onset", min_points: int = 4,
                       scale: str | None = None) -> pd.DataFrame:
    """Fit ``plateau + (b0 - plateau) * exp(-day / tau)`` to every episode separately.

    Parameters
    ----------
    study : Study
    instrument : str
    origin : {"onset", "first_contact"}
        Day 0 (``"onset"`` by default, as everywhere in the package). The
        origin shifts ``b0`` (the curve's value at day 0) but not ``plateau``
        or ``tau``.
    min_points : int
        Episodes with fewer measurements are listed with ``converged=False``
        and a ``note``, not fitted (three parameters need at least four
        points for a residual SD).

    Returns
    -------
    DataFrame per episode: ``episode_id``, ``modality``, ``chronicity``,
    ``n_scores``, ``first_day`` (day of the first measurement), ``b0`` (the
    curve at day 0; missing where that is an extrapolation over more than 20
    time constants), ``start_score`` (the curve at the first measurement),
    ``plateau``, ``tau_days``, ``half_life_days``, ``residual_sd``,
    ``converged``, ``n_iterations``, ``note``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> ep = bpo.fit_episode_curves(bpo.load_study(bpo.example_path()))
    >>> bool(ep["converged"].mean() > 0.8)
    True
    """
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=True, scale=scale)
    n = frame.groupby("episode_id", sort=False).size()
    enough = frame["episode_id"].map(n) >= min_points
    fit_frame = frame[enough]
    ids, t, y, w = _pad(fit_frame)
    t0 = t[:, 0].copy()  # day of each episode's first measurement (rows are sorted by day)
    # fit on time since the first measurement (numerically stable), then move b0 to the origin
    theta, sse, conv, it = batched_exp_plateau_fit(np.where(w, t - t0[:, None], 0.0), y, w)
    k = w.sum(1)
    b_first, plateau, tau = theta[:, 0], theta[:, 1], theta[:, 2]
    with np.errstate(over="ignore", invalid="ignore"):
        growth = np.exp(np.minimum(t0 / tau, 700.0))
        b0 = plateau + (b_first - plateau) * growth
    far = t0 / tau > 20  # b0 at day 0 would be an extrapolation over more than 20 time constants
    b0 = np.where(far, np.nan, b0)
    out = pd.DataFrame({"episode_id": ids, "n_scores": k, "first_day": t0, "b0": b0, "start_score": b_first,
                        "plateau": plateau, "tau_days": tau, "half_life_days": tau * np.log(2),
                        "residual_sd": np.sqrt(sse / np.maximum(k - 3, 1)), "converged": conv, "n_iterations": it})
    out["note"] = np.where(conv, "", "did not converge, or tau not identified (at a bound, or the plateau was "
                                     "reached before the first follow-up)")
    out.loc[far & conv, "note"] = ("b0 not reported: day 0 lies more than 20 time constants before the first "
                                   "measurement (see start_score)")
    few = n[n < min_points]
    if len(few):
        out = pd.concat([out, pd.DataFrame({"episode_id": few.index, "n_scores": few.to_numpy(), "converged": False,
                                            "n_iterations": 0,
                                            "note": f"fewer than {min_points} measurements: not fitted"})],
                        ignore_index=True)
    ep = study.episodes.set_index("episode_id")
    out.insert(1, "modality", out["episode_id"].map(ep["modality"]).to_numpy())
    out.insert(2, "chronicity", out["episode_id"].map(ep["chronicity"].astype(str)).to_numpy())
    return out
