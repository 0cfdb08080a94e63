"""The exponential recovery model shared by the pooled and the per-episode fits.

.. math:: y(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau},
          \\qquad t_{1/2} = \\tau \\ln 2

``b0`` is the curve at day 0, ``plateau`` its long-run level and ``tau`` the
time constant in days. Costa et al. 2012 (CMAJ 184:E613) describe the natural
course of back pain with this shape: a marked improvement in the first six
weeks that then slows.

For a fixed ``tau`` the model is linear in ``(b0, plateau)``, with design
columns :math:`e = e^{-t/\\tau}` and :math:`1 - e`; :func:`linear_given_tau`
solves that 2x2 least-squares problem in closed form for many series at once.
Both :func:`~backpain_outcomes.curves.fit_recovery_curves` (one series per
group) and :func:`~backpain_outcomes.episode_curves.fit_episode_curves` (one
series per episode) profile ``tau`` over :data:`TAU_GRID` with this solve,
then refine all three parameters, and both call a ``tau`` identified only
when :func:`identifiable_tau` says so.
"""

from __future__ import annotations

import numpy as np

__all__ = ["solve_normal_equations", "TAU_BOUNDS", "TAU_GRID", "MIN_DISTINCT_DAYS", "exp_plateau", "jacobian", "linear_given_tau",
           "profile_start", "identifiable_tau", "tau_problem"]

#: Bounds of tau in days for every fit (a tau on a bound is not identified).
TAU_BOUNDS = (0.5, 5000.0)
#: Log-spaced grid of tau values (days) for profiling.
TAU_GRID = np.geomspace(1.0, 2000.0, 60)
#: Three parameters need measurements on at least three distinct days.
MIN_DISTINCT_DAYS = 3
#: A curve whose b0 and plateau differ by less than this (in score points) is flat: tau is arbitrary.
FLAT = 1e-6


def exp_plateau(day, b0, plateau, tau):
    """The recovery curve :math:`plateau + (b_0 - plateau) e^{-day/tau}`.

    Examples
    --------
    >>> float(exp_plateau(0.0, 7.0, 2.0, 25.0)), round(float(exp_plateau(25 * np.log(2), 7.0, 2.0, 25.0)), 6)
    (7.0, 4.5)
    """
    return plateau + (b0 - plateau) * np.exp(-np.asarray(day, float) / tau)


def jacobian(day, b0, plateau, tau):
    """Derivatives of :func:`exp_plateau` with respect to ``(b0, plateau, tau)``, shape ``(n, 3)``.

    Examples
    --------
    >>> jacobian(np.array([0.0]), 7.0, 2.0, 25.0).round(3).tolist()
    [[1.0, 0.0, 0.0]]
    """
    t = np.atleast_1d(np.asarray(day, float))
    e = np.exp(-t / tau)
    return np.column_stack([e, 1 - e, (b0 - plateau) * e * t / tau**2])


def linear_given_tau(t, y, w, tau, wf=None, yy=None):
    """``(b0, plateau, sse)`` of every row for a given tau per row, in closed form.

    Parameters
    ----------
    t, y : ndarray (E, M)
        Padded days and scores, one series per row.
    w : ndarray of bool (E, M)
        Which entries are observed.
    tau : ndarray (E,)
    wf, yy : optional
        ``w`` as floats and the per-row sum of ``y**2`` (passed in when the
        solve is repeated for many tau values).

    Notes
    -----
    With ``e = exp(-t / tau)`` and ``f = 1 - e`` on observed points, the normal
    equations are 2x2; the SSE follows from them without forming residuals.
    Where they are singular (all measurements on one day, or tau so small that
    ``e`` vanishes) the best constant is returned (``b0 = plateau``).

    Examples
    --------
    >>> t = np.array([[0.0, 10.0, 20.0, 40.0]])
    >>> y = exp_plateau(t, 7.0, 2.0, 10.0)
    >>> b0, pl, sse = linear_given_tau(t, y, np.ones_like(t, bool), np.array([10.0]))
    >>> round(float(b0[0]), 9), round(float(pl[0]), 9), round(float(sse[0]), 9)
    (7.0, 2.0, 0.0)
    """
    wf = w.astype(float) if wf is None else wf
    e = np.exp(-t / tau[:, None]) * wf
    f = wf - e
    a11, a12 = np.einsum("em,em->e", e, e), np.einsum("em,em->e", e, f)
    a22 = np.einsum("em,em->e", f, f)
    r1, r2 = np.einsum("em,em->e", e, y), np.einsum("em,em->e", f, y)
    yy = np.einsum("em,em->e", y * wf, y) if yy is None else yy
    return solve_normal_equations(a11, a12, a22, r1, r2, yy)


def solve_normal_equations(a11, a12, a22, r1, r2, yy):
    """``(b0, plateau, sse)`` from the 2x2 normal equations of the linear parameters given tau.

    With ``e = exp(-t / tau)`` and ``f = 1 - e`` on the observed points, ``a`` holds the cross-products
    ``e'e``, ``e'f``, ``f'f``, ``r`` holds ``e'y``, ``f'y`` and ``yy = y'y``; the sum of squares comes
    from the normal equations without forming residuals. Where the equations are singular (no decay
    visible), the fit is a constant.

    Examples
    --------
    >>> b0, pl, sse = solve_normal_equations(*[np.array([v]) for v in (1.0, 0.0, 1.0, 6.0, 2.0, 40.0)])
    >>> float(b0[0]), float(pl[0]), float(sse[0])
    (6.0, 2.0, 0.0)
    """
    det = a11 * a22 - a12**2
    ok = det > 1e-12 * np.maximum(a11 * a22, 1e-300)
    safe = np.where(ok, det, 1.0)
    b0 = np.where(ok, (a22 * r1 - a12 * r2) / safe, (r1 + r2) / np.maximum(a11 + 2 * a12 + a22, 1e-300))
    pl = np.where(ok, (a11 * r2 - a12 * r1) / safe, b0)
    sse = np.maximum(yy - 2 * (b0 * r1 + pl * r2) + b0 * b0 * a11 + 2 * b0 * pl * a12 + pl * pl * a22, 0.0)
    return b0, pl, sse


def profile_start(t, y, grid=TAU_GRID):
    """Starting values ``(b0, plateau, tau)`` for one series by profiling tau over ``grid``.

    For each tau, ``(b0, plateau)`` come from :func:`linear_given_tau`; the
    grid point with the smallest SSE wins, so the fit does not depend on a
    user's guess.

    Examples
    --------
    >>> t = np.arange(0.0, 200.0, 10.0)
    >>> [round(float(v), 1) for v in profile_start(t, exp_plateau(t, 7.0, 2.0, 25.0))]
    [7.0, 2.0, 25.0]
    """
    t = np.asarray(t, float)[None, :]
    y = np.asarray(y, float)[None, :]
    w = np.ones_like(t, bool)
    wf = w.astype(float)
    yy = np.einsum("em,em->e", y, y)
    best = (np.nan, np.nan, np.nan, np.inf)
    for tau in np.asarray(grid, float):
        b0, pl, sse = linear_given_tau(t, y, w, np.array([tau]), wf, yy)
        if sse[0] < best[3]:
            best = (float(b0[0]), float(pl[0]), float(tau), float(sse[0]))
    return best[:3]


def identifiable_tau(tau, t, w, b0=None, plateau=None):
    """Whether each row's tau is identified by its data.

    tau is identified only off its bounds (by 1%), when the curve has not
    reached its plateau before the first follow-up (``tau >= first gap / 5``;
    below that every smaller tau fits equally well) and, when ``b0`` and
    ``plateau`` are given, when the curve is not flat
    (``|b0 - plateau| > 1e-6`` points: with no decay, tau is arbitrary).

    Parameters
    ----------
    tau : ndarray (E,)
    t : ndarray (E, M)
        Days since each series' first measurement (padded).
    w : ndarray of bool (E, M)

    Examples
    --------
    >>> t = np.array([[0.0, 7.0, 14.0, 28.0]])
    >>> identifiable_tau(np.array([10.0, 0.5, 1.0, 2.0]), np.repeat(t, 4, 0), np.ones((4, 4), bool)).tolist()
    [True, False, False, True]
    """
    return tau_problem(tau, t, w, b0, plateau) == ""


def tau_problem(tau, t, w, b0=None, plateau=None) -> np.ndarray:
    """Why tau is not identified, per row (empty string where it is); see :func:`identifiable_tau`.

    Examples
    --------
    >>> t = np.array([[0.0, 7.0, 14.0, 28.0]])
    >>> tau_problem(np.array([10.0]), t, np.ones((1, 4), bool), np.array([5.0]), np.array([5.0])).tolist()
    ['the curve is flat (no change over follow-up), so tau is not identified']
    >>> tau_problem(np.array([10.0]), t[:, :2], np.ones((1, 2), bool)).tolist()[0][:40]
    'measurements on fewer than 3 distinct da'
    """
    tau = np.asarray(tau, float)
    t = np.where(w, np.asarray(t, float), np.inf)
    srt = np.sort(t, axis=1)
    with np.errstate(invalid="ignore"):  # inf - inf between padded entries
        step = np.diff(srt, axis=1)
    n_distinct = np.isfinite(srt[:, :1]).sum(1) + ((step > 0) & np.isfinite(srt[:, 1:])).sum(1)
    with np.errstate(invalid="ignore"):  # day of the first follow-up after the first measurement, minus that day
        first_gap = np.where(t > srt[:, :1], t, np.inf).min(axis=1, initial=np.inf) - srt[:, 0]
    out = np.full(tau.shape, "", dtype=object)
    out[~(tau >= first_gap / 5)] = ("the plateau is reached before the first follow-up (tau below a fifth of "
                                    "the first gap), so tau is not identified")
    out[~(tau > TAU_BOUNDS[0] * 1.01)] = (f"tau is on its lower bound ({TAU_BOUNDS[0]:g} days): the decay is over "
                                          "before the data show it, so tau is not identified")
    out[~(tau < TAU_BOUNDS[1] * 0.99)] = (f"tau is on its upper bound ({TAU_BOUNDS[1]:g} days): no decay is visible "
                                          "within follow-up, so tau is not identified")
    if b0 is not None:
        flat = ~(np.abs(np.asarray(b0, float) - np.asarray(plateau, float)) > FLAT)
        out[flat] = "the curve is flat (no change over follow-up), so tau is not identified"
    out[n_distinct < MIN_DISTINCT_DAYS] = (f"measurements on fewer than {MIN_DISTINCT_DAYS} distinct days, so "
                                           "the three parameters are not identified")
    out[~np.isfinite(tau)] = "the fit failed (no finite estimate)"
    return out
