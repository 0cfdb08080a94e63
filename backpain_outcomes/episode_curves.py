"""Per-episode recovery curves, fitted for all episodes at once.

Batched Levenberg-Marquardt over every episode simultaneously (padded arrays
and masks, no Python loop over episodes), in the parametrisation
(b0, plateau, log tau) with log tau clipped to the bounds of
:data:`~backpain_outcomes.curves.TAU_BOUNDS`. Starting values by profiling
tau over a grid with (b0, plateau) solved in closed form per episode. Checked
against ``scipy.optimize.curve_fit`` episode by episode in the tests.
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


def _profile(t, y, w):
    """Vectorised grid profile: best (b0, plateau, tau) per episode."""
    best_sse = np.full(t.shape[0], np.inf)
    best = np.zeros((t.shape[0], 3))
    for tau in _TAU_GRID:
        e = np.where(w, np.exp(-t / tau), 0.0)
        f = np.where(w, 1 - e, 0.0)
        a11, a12, a22 = (e * e).sum(1), (e * f).sum(1), (f * f).sum(1)
        r1, r2 = (e * y).sum(1), (f * y).sum(1)
        det = a11 * a22 - a12**2
        ok = det > 1e-12
        safe = np.where(ok, det, 1.0)
        b0 = np.where(ok, (a22 * r1 - a12 * r2) / safe, 0)
        pl = np.where(ok, (a11 * r2 - a12 * r1) / safe, 0)
        sse = np.where(w, (y - b0[:, None] * e - pl[:, None] * f) ** 2, 0).sum(1)
        better = ok & (sse < best_sse)
        best[better] = np.column_stack([b0, pl, np.full_like(b0, tau)])[better]
        best_sse = np.where(better, sse, best_sse)
    return best


def batched_exp_plateau_fit(t, y, w, max_iter=5000, tol=1e-15):
    """Levenberg-Marquardt for all rows of padded arrays ``t``, ``y`` with mask ``w``.

    Returns ``(theta (E, 3) as b0, plateau, tau), sse, converged, n_iter``.
    """
    E = t.shape[0]
    lo, hi = np.log(TAU_BOUNDS[0]), np.log(TAU_BOUNDS[1])
    th = _profile(t, y, w)
    th[:, 2] = np.log(th[:, 2])
    lam = np.full(E, 1e-3)
    wf = w.astype(float)

    def resid_jac(th):
        tau = np.exp(th[:, 2])[:, None]
        e = np.exp(-t / tau)
        f = th[:, 1:2] + (th[:, 0:1] - th[:, 1:2]) * e
        r = (y - f) * wf
        J = np.stack([e, 1 - e, (th[:, 0:1] - th[:, 1:2]) * e * t / tau], axis=2) * wf[:, :, None]
        return r, J

    r, J = resid_jac(th)
    sse = (r**2).sum(1)
    converged = np.zeros(E, bool)
    active = np.ones(E, bool)
    it = np.zeros(E, int)
    for _ in range(max_iter):
        if not active.any():
            break
        A = np.einsum("emi,emj->eij", J[active], J[active])
        g = np.einsum("emi,em->ei", J[active], r[active])
        diag = np.einsum("eii->ei", A)
        Ad = A + lam[active, None, None] * (np.eye(3)[None] * np.maximum(diag, 1e-12)[:, :, None])
        try:
            step = np.linalg.solve(Ad, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(Ad[0], g[0], rcond=None)[0][None] if len(Ad) == 1 else np.nan_to_num(
                np.einsum("eij,ej->ei", np.linalg.pinv(Ad), g))
        new = th.copy()
        new[active] = th[active] + step
        new[:, 2] = np.clip(new[:, 2], lo, hi)
        r_new, J_new = resid_jac(new)
        sse_new = (r_new**2).sum(1)
        idx = np.flatnonzero(active)
        accept = sse_new[idx] <= sse[idx]
        a_idx = idx[accept]
        rel = np.abs(sse[a_idx] - sse_new[a_idx]) / np.maximum(sse[a_idx], 1e-300)
        small_step = np.abs(step[accept]).max(1) < 1e-11
        th[a_idx], r[a_idx], J[a_idx], sse[a_idx] = new[a_idx], r_new[a_idx], J_new[a_idx], sse_new[a_idx]
        lam[a_idx] = np.maximum(lam[a_idx] / 10, 1e-12)
        lam[idx[~accept]] *= 10
        it[idx] += 1
        done = a_idx[(rel < tol) | small_step]
        converged[done] = True
        stuck = idx[~accept][lam[idx[~accept]] > 1e12]
        converged[stuck] = True  # cannot improve further: a (local) minimum at working precision
        active[done] = False
        active[stuck] = False
    out = th.copy()
    out[:, 2] = np.exp(th[:, 2])
    return out, sse, converged & identifiable_tau(out[:, 2], t, w), it


def identifiable_tau(tau, t, w):
    """tau is identified only off its bounds (1%) and when the curve has not
    reached its plateau before the first follow-up (tau >= first gap / 5;
    below that every smaller tau fits equally well)."""
    first_gap = np.where(w & (t > 0), t, np.inf).min(axis=1)
    return (tau > TAU_BOUNDS[0] * 1.01) & (tau < TAU_BOUNDS[1] * 0.99) & (tau >= first_gap / 5)


def fit_episode_curves(study, instrument: str = "nrs", origin: str = "first_contact", min_points: int = 4,
                       scale: str | None = None) -> pd.DataFrame:
    """Fit ``plateau + (b0 - plateau) * exp(-day / tau)`` to every episode separately.

    Parameters
    ----------
    study : Study
    instrument : str
    origin : {"first_contact", "onset"}
        Default ``"first_contact"``: one episode's curve starts at its first
        measurement.
    min_points : int
        Episodes with fewer measurements are listed with ``converged=False``
        and a ``note``, not fitted (three parameters need at least four
        points for a residual SD).

    Returns
    -------
    DataFrame per episode: ``episode_id``, ``modality``, ``chronicity``,
    ``n_scores``, ``b0``, ``plateau``, ``tau_days``, ``half_life_days``,
    ``residual_sd``, ``converged``, ``n_iterations``, ``note``.

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
    theta, sse, conv, it = batched_exp_plateau_fit(t, y, w)
    k = w.sum(1)
    out = pd.DataFrame({"episode_id": ids, "n_scores": k, "b0": theta[:, 0], "plateau": theta[:, 1],
                        "tau_days": theta[:, 2], "half_life_days": theta[:, 2] * np.log(2),
                        "residual_sd": np.sqrt(sse / np.maximum(k - 3, 1)), "converged": conv, "n_iterations": it})
    out["note"] = np.where(conv, "", "did not converge, or tau not identified (at a bound, or the plateau was "
                                     "reached before the first follow-up)")
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
