"""Per-episode recovery curves, fitted for all episodes at once.

Every episode gets its own curve of the recovery model
(:mod:`backpain_outcomes.recovery_model`)

.. math:: y(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau}

fitted on padded arrays with masks (no Python loop over episodes). The start is
the best tau of a log-spaced grid over the tau bounds for the sum of squares
profiled over (b0, plateau), which are solved in closed form for each tau,
refined by a parabola through the neighbouring grid points; the grid makes the
fit less dependent on starting values than a local optimiser. Then
Levenberg-Marquardt damping of Newton's method on (b0, plateau, log tau) with the
exact Hessian, each 3x3 system solved in closed form, log tau clipped to the tau
bounds. Episodes are fitted in blocks of similar length, stored measurement by
episode so that every per-episode sum runs over contiguous memory, and each
iteration works only on the episodes still iterating. Checked against
``scipy.optimize.curve_fit`` episode by episode in the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import style
from .checks import check_instrument, check_int, check_origin
from .curves import check_scale
from .recovery_model import MIN_DISTINCT_DAYS, TAU_BOUNDS, identifiable_tau, solve_normal_equations, tau_problem
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
    t, y, w = _pad(codes, len(ids), frame["day"].to_numpy(float), frame["score"].to_numpy(float))
    return ids, t, y, w


def _pad(codes, E, day, score):
    """Padded (E, M) days, scores and mask from episode codes 0..E-1 (rows keep their order per episode)."""
    counts = np.bincount(codes, minlength=E)
    order = np.argsort(codes, kind="stable")
    pos = np.empty(len(codes), int)
    pos[order] = np.arange(len(codes)) - np.repeat(np.cumsum(counts) - counts, counts)
    M = int(counts.max()) if len(counts) else 0
    t, y, w = np.zeros((E, M)), np.zeros((E, M)), np.zeros((E, M), bool)
    t[codes, pos], y[codes, pos], w[codes, pos] = day, score, True
    return t, y, w


#: Log-spaced tau values (days) of the start grid, both bounds included (spacing 0.15 in log tau).
START_GRID = np.geomspace(TAU_BOUNDS[0], TAU_BOUNDS[1], 62)
#: Episodes fitted together, sorted by length so that a block's padding is short and its arrays stay in cache.
_BLOCK = 4096
#: Smallest exponent passed to exp: below it exp underflows to subnormal numbers or zero through a slow path
#: (measured 7-30x slower), while exp(-350) ~ 1e-152 already vanishes next to the curve's other terms.
_EXP_FLOOR = -350.0


def _dot(a, b):
    """Per-episode sum of products of two (measurement, episode) arrays."""
    return np.einsum("me,me->e", a, b)


def _linear_from_sums(n, sy, yy, se, see, sey):
    """(b0, plateau, sse) from the sums of e = exp(-t/tau): closed-form 2x2 least squares (constant where
    the equations are singular), as :func:`~backpain_outcomes.recovery_model.linear_given_tau`."""
    return solve_normal_equations(see, se - see, n - 2 * se + see, sey, sy - sey, yy)


def _profiled_sse(n, sy, yy, se, see, sey):
    """SSE of the least-squares fit of y on (1, e) from the sums of e, e^2 and e y (the span of the model's
    columns e and 1 - e): centred sums, the constant fit where e does not vary."""
    see_c, sey_c = see - se * se / n, sey - se * sy / n
    ok = see_c > 1e-12 * see
    return np.maximum(yy - sy * sy / n - np.where(ok, sey_c * sey_c / np.where(ok, see_c, 1.0), 0.0), 0.0)


def _grid_start(t, y, wf, sy, yy):
    """(b0, plateau, log tau) per episode: the best tau of :data:`START_GRID` for the SSE profiled over
    (b0, plateau), moved to the vertex of the parabola through it and its neighbours."""
    grid = np.log(START_GRID)
    n = wf.sum(0)
    e = np.empty_like(t)
    sums = np.empty((3, len(grid), t.shape[1]))  # sum of e, e^2 and e y per tau and episode
    for k, tau in enumerate(START_GRID):
        np.maximum(np.multiply(t, -1.0 / tau, out=e), _EXP_FLOOR, out=e)
        np.multiply(np.exp(e, out=e), wf, out=e)  # 0 on padding
        sums[0, k], sums[1, k], sums[2, k] = e.sum(0), _dot(e, e), _dot(e, y)
    sse = _profiled_sse(n, sy, yy, *sums)
    best = np.argmin(sse, axis=0)
    k = np.clip(best, 1, len(grid) - 2)
    cols = np.arange(t.shape[1])
    lo, mid, hi = sse[k - 1, cols], sse[k, cols], sse[k + 1, cols]
    curv = lo - 2 * mid + hi
    h = grid[1] - grid[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.clip(h * (lo - hi) / (2 * np.where(curv > 0, curv, 1.0)), -h, h)
    log_tau = np.where((best == k) & (curv > 0), grid[k] + offset, grid[best])
    e = np.exp(np.maximum(t * -np.exp(-log_tau), _EXP_FLOOR)) * wf
    b0, pl, _ = _linear_from_sums(n, sy, yy, e.sum(0), _dot(e, e), _dot(e, y))
    return np.column_stack([b0, pl, log_tau])


def _residuals(t, y, wf, th):
    """e = exp(-t/tau), t/tau, residuals and SSE at ``th`` (b0, plateau, log tau) per episode; all 0 on
    padding (where ``t``, ``y`` and ``wf`` are 0)."""
    x = t * np.exp(-th[:, 2])
    e = np.exp(np.maximum(-x, _EXP_FLOOR)) * wf
    r = y - th[:, 1] * wf - (th[:, 0] - th[:, 1]) * e
    return e, x, r, _dot(r, r)


def _newton_system(e, x, r, wf, d):
    """Half the exact Hessian (6 distinct entries), the gradient J'r and the diagonal of J'J of the SSE in
    (b0, plateau, log tau), with J = [e, 1 - e, d e t/tau] and the model's second derivatives
    (f_{b0,s} = e t/tau, f_{plateau,s} = -e t/tau, f_{s,s} = d e t/tau (t/tau - 1))."""
    f = wf - e
    ex = e * x
    a00, a01, a11 = _dot(e, e), _dot(e, f), _dot(f, f)
    a02, a12, a22 = d * _dot(e, ex), d * _dot(f, ex), d * d * _dot(ex, ex)
    q1, q2 = _dot(r, ex), _dot(r * ex, x)
    H = (a00, a01, a02 - q1, a11, a12 + q1, a22 - d * (q2 - q1))
    return H, (_dot(e, r), _dot(f, r), d * q1), (a00, a11, a22)


def _damped_step(H, g, D, lam):
    """Solve (H + lam diag(D)) step = g for every episode in closed form (symmetric 3x3 by cofactors), on
    the scaling that makes diag(D) the identity. Returns the step and whether the damped matrix is
    positive definite (where it is not, the step is 0)."""
    h00, h01, h02, h11, h12, h22 = H
    s0, s1, s2 = (1.0 / np.sqrt(np.maximum(v, 1e-12)) for v in D)
    a, b, c = h00 * s0 * s0 + lam, h01 * s0 * s1, h02 * s0 * s2
    d, e, f = h11 * s1 * s1 + lam, h12 * s1 * s2, h22 * s2 * s2 + lam
    g0, g1, g2 = g[0] * s0, g[1] * s1, g[2] * s2
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * c00 + b * c01 + c * c02
    pd = (a > 0) & (c22 > 0) & (det > 0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        inv = np.where(pd, 1.0 / np.where(pd, det, 1.0), 0.0)
        step = np.column_stack([(c00 * g0 + c01 * g1 + c02 * g2) * inv * s0,
                                (c01 * g0 + c11 * g1 + c12 * g2) * inv * s1,
                                (c02 * g0 + c12 * g1 + c22 * g2) * inv * s2])
    return step, pd


def _fit_block(t, y, w, max_iter, tol):
    """Fit one block of episodes given as (measurement, episode) arrays; returns (theta, sse, n_iter).

    Levenberg-Marquardt damping of Newton's method with the exact Hessian, from the grid start. An
    episode stops when the full Newton step would lower its SSE by less than 10 ``tol`` of itself, when
    an accepted step changes the SSE by less than ``tol`` (relative) or moves no parameter by 1e-11, when
    tau is pinned at a bound and the SSE changes by less than 1e-9, or when it can no longer lower the
    SSE (damping above 1e12). Each iteration works only on the episodes still iterating."""
    lo, hi = np.log(TAU_BOUNDS[0]), np.log(TAU_BOUNDS[1])
    wf = w.astype(float)
    y = y * wf
    t = np.where(w, t, 0.0)
    th = _grid_start(t, y, wf, y.sum(0), _dot(y, y))
    e, x, r, sse = _residuals(t, y, wf, th)
    H, g, D = _newton_system(e, x, r, wf, th[:, 0] - th[:, 1])
    lam = np.full(len(th), 1e-3)
    it = np.zeros(len(th), int)
    idx, ta, ya, wa = np.arange(len(th)), t, y, wf
    for _ in range(max_iter):
        step, pd = _damped_step(H, g, D, 0.0)
        keep = ~(pd & (np.einsum("ei,ie->e", step, np.array(g)) <= 10 * tol * sse[idx]))
        if not keep.all():
            idx, ta, ya, wa = idx[keep], ta[:, keep], ya[:, keep], wa[:, keep]
            H, g, D = ([v[keep] for v in part] for part in (H, g, D))
        if len(idx) == 0:
            break
        step, pd = _damped_step(H, g, D, lam[idx])
        new = th[idx] + step
        new[:, 2] = np.clip(new[:, 2], lo, hi)
        e, x, r, sse_new = _residuals(ta, ya, wa, new)
        H_new, g_new, D_new = _newton_system(e, x, r, wa, new[:, 0] - new[:, 1])
        old = sse[idx]
        accept = pd & (sse_new <= old)
        rel = np.abs(old - sse_new) / np.maximum(old, 1e-300)
        th[idx[accept]], sse[idx[accept]] = new[accept], sse_new[accept]
        H, g, D = ([np.where(accept, vn, vo) for vn, vo in zip(new_part, old_part)]
                   for new_part, old_part in ((H_new, H), (g_new, g), (D_new, D)))
        lam[idx] = np.where(accept, np.maximum(lam[idx] / 10, 1e-12), lam[idx] * 10)
        lam[idx[pd & ~np.isfinite(sse_new)]] = np.inf  # a non-finite step cannot be repaired: give up
        it[idx] += 1
        pinned = (new[:, 2] <= lo) | (new[:, 2] >= hi)  # tau not identified: the fit only creeps
        done = accept & ((rel < tol) | (np.abs(step).max(1) < 1e-11) | (pinned & (rel < 1e-9)))
        keep = ~(done | (~accept & (lam[idx] > 1e12)))
        if not keep.all():
            idx, ta, ya, wa = idx[keep], ta[:, keep], ya[:, keep], wa[:, keep]
            H, g, D = ([v[keep] for v in part] for part in (H, g, D))
    return th, sse, it


def batched_exp_plateau_fit(t, y, w, max_iter=30, tol=1e-15):
    """Fit every row of padded arrays ``t``, ``y`` with mask ``w``.

    Start: the best tau of a log-spaced grid (:data:`START_GRID`, bounds
    included) for the SSE profiled over (b0, plateau), refined by a parabola
    through its neighbours, with (b0, plateau) solved exactly. Then
    Levenberg-Marquardt damping of Newton's method on (b0, plateau, log tau)
    with the exact Hessian (3x3 systems solved in closed form), log tau
    clipped to the tau bounds. Episodes are fitted in blocks of similar
    length laid out measurement by episode, each iteration only on the
    episodes still iterating.

    Returns ``(theta (E, 3) as b0, plateau, tau), sse, converged, n_iter``.

    Examples
    --------
    >>> t = np.array([[0.0, 7, 14, 28, 56], [0.0, 10, 20, 30, 0]])
    >>> w = np.array([[True] * 5, [True] * 4 + [False]])
    >>> y = np.where(w, 2 + 5 * np.exp(-t / np.array([[10.0], [25.0]])), 0.0)
    >>> theta, sse, converged, _ = batched_exp_plateau_fit(t, y, w)
    >>> theta.round(6).tolist(), converged.tolist()
    ([[7.0, 2.0, 10.0], [7.0, 2.0, 25.0]], [True, True])
    """
    t, y, w = np.asarray(t, float), np.asarray(y, float), np.asarray(w, bool)
    theta, sse, it = _fit_blocks(t, y, w, max_iter, tol)
    # every finite fit is a usable one (a minimum at working precision); identifiable_tau judges tau
    converged = np.isfinite(sse)
    return theta, sse, converged & identifiable_tau(theta[:, 2], t, w, theta[:, 0], theta[:, 1]), it


def _fit_blocks(t, y, w, max_iter=30, tol=1e-15):
    """(theta as b0, plateau, tau; sse; n_iter) of every row, fitted in blocks of rows of similar length."""
    E = len(t)
    theta, sse, it = np.empty((E, 3)), np.empty(E), np.zeros(E, int)
    k = w.sum(1)
    order = np.argsort(k, kind="stable")
    for start in range(0, E, _BLOCK):
        rows = order[start:start + _BLOCK]
        m = max(int(k[rows].max()), 1)
        cols = np.argsort(~w[rows], axis=1, kind="stable")[:, :m]  # observed entries first, in their order
        tb, yb, wb = (np.ascontiguousarray(np.take_along_axis(a[rows], cols, axis=1).T) for a in (t, y, w))
        theta[rows], sse[rows], it[rows] = _fit_block(tb, yb, wb, max_iter, tol)
    theta[:, 2] = np.exp(theta[:, 2])
    return theta, sse, it


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
        """Half-lives of the identified curves by modality (box plots in the modality's colour, log scale, n)."""
        ax = style.new_axes(ax, figsize=(8, 4.5))
        ok = self.table[self.table["converged"]]
        groups = [(m, g["half_life_days"].to_numpy(float)) for m, g in ok.groupby("modality", sort=True)]
        if groups:
            box = ax.boxplot([g for _, g in groups], showfliers=False, patch_artist=True,
                             medianprops={"color": "black"})
            for patch, (m, _) in zip(box["boxes"], groups):
                patch.set(facecolor=style.colour(m), alpha=0.6)
            ax.set_xticks(range(1, len(groups) + 1), [label(m) for m, _ in groups],
                          fontsize=style.TICK_SIZE)
            ax.set_yscale("log")
            for i, (_, g) in enumerate(groups, start=1):
                ax.annotate(f"n = {len(g)}", (i, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=style.TICK_SIZE)
        ax.set_xlabel("Modality (episodes with an identified curve)", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Half-life of the episode's curve (days)", fontsize=style.LABEL_SIZE)
        ax.set_title(f"Per-episode recovery, {label(self.instrument)}", fontsize=style.TITLE_SIZE, pad=20)
        return ax


def _reasons(conv, problem, far):
    note = np.where(problem != "", problem, np.where(conv, "", "Levenberg-Marquardt did not converge"))
    return np.where(conv & far, "b0 not reported: day 0 lies more than 20 time constants before the first "
                                "measurement (see start_score)", note).astype(object)


def _fit_frame(ids, codes, day, score):
    """The table rows of the fitted episodes (codes 0..len(ids)-1, rows sorted by day within episode)."""
    t, y, w = _pad(codes, len(ids), day, score)
    t0 = t[:, 0].copy()  # day of each episode's first measurement
    # fit on time since the first measurement (numerically stable), then move b0 to the origin
    rel = np.where(w, t - t0[:, None], 0.0)
    theta, sse, it = _fit_blocks(rel, y, w)
    problem = tau_problem(theta[:, 2], rel, w, theta[:, 0], theta[:, 1])
    conv = np.isfinite(sse) & (problem == "")
    k = w.sum(1)
    b_first, plateau, tau = theta[:, 0], theta[:, 1], theta[:, 2]
    with np.errstate(over="ignore", invalid="ignore"):
        b0 = plateau + (b_first - plateau) * np.exp(np.minimum(t0 / tau, 700.0))
    far = t0 / tau > 20  # b0 at day 0 would be an extrapolation over more than 20 time constants
    est = {"b0": np.where(far, np.nan, b0), "start_score": b_first, "plateau": plateau, "tau_days": tau,
           "half_life_days": tau * np.log(2), "residual_sd": np.sqrt(sse / np.maximum(k - 3, 1))}
    est = {name: np.where(conv, v, np.nan) for name, v in est.items()}
    return pd.DataFrame({"episode_id": ids, "n_scores": k, "first_day": t0, **est, "converged": conv,
                         "n_iterations": it, "note": _reasons(conv, problem, far)})


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
    codes, ids = pd.factorize(frame["episode_id"], sort=False)
    n = np.bincount(codes, minlength=len(ids))
    fit = n >= min_n
    rows = fit[codes]
    out = (_fit_frame(ids[fit], (np.cumsum(fit) - 1)[codes[rows]], frame["day"].to_numpy(float)[rows],
                      frame["score"].to_numpy(float)[rows])
           if fit.any() else pd.DataFrame(columns=["episode_id", "converged"]))
    if not fit.all():
        out = pd.concat([out, pd.DataFrame({"episode_id": ids[~fit], "n_scores": n[~fit], "converged": False,
                                            "n_iterations": 0,
                                            "note": f"fewer than {min_n} measurements: not fitted"})],
                        ignore_index=True)
    ep = study.episodes
    pos = pd.Index(ep["episode_id"]).get_indexer(out["episode_id"])  # -1: not in the episodes table
    for i, col in ((1, "modality"), (2, "chronicity")):
        out.insert(i, col, np.where(pos >= 0, ep[col].astype(str).to_numpy(object)[pos], None))
    out["converged"] = out["converged"].astype(bool)
    notes = [f"{count} episode(s): {why}" for why, count in
             out.loc[~out["converged"], "note"].value_counts().sort_index().items()]
    return EpisodeCurves(out, instrument, origin, scale, min_n, notes)
