"""The one exponential recovery model shared by the pooled and the per-episode fits."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from backpain_outcomes.recovery_model import (
    TAU_BOUNDS,
    TAU_GRID,
    exp_plateau,
    identifiable_tau,
    jacobian,
    linear_given_tau,
    profile_start,
    tau_problem,
)


def test_curve_values_by_hand():
    # plateau + (b0 - plateau) * exp(-t / tau): at t = 0 it is b0, at t = tau ln 2 halfway, far out the plateau
    assert exp_plateau(0.0, 7.0, 2.0, 25.0) == 7.0
    assert exp_plateau(25 * np.log(2), 7.0, 2.0, 25.0) == pytest.approx(4.5, rel=1e-12)
    assert exp_plateau(1e6, 7.0, 2.0, 25.0) == pytest.approx(2.0, rel=1e-12)


def test_jacobian_equals_finite_differences():
    t = np.array([0.0, 3.0, 14.0, 60.0])
    theta = np.array([7.0, 2.0, 25.0])
    J = jacobian(t, *theta)
    for i, ti in enumerate(t):
        num = approx_fprime(theta, lambda p, ti=ti: float(exp_plateau(ti, *p)), 1e-7)
        np.testing.assert_allclose(J[i], num, rtol=1e-5, atol=1e-7)


def test_closed_form_solve_equals_lstsq_per_row():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 100, (5, 7)), axis=1)
    y = rng.normal(5, 2, (5, 7))
    w = np.ones_like(t, bool)
    w[0, 5:] = False  # padded entries are ignored
    tau = np.array([3.0, 10.0, 30.0, 100.0, 1000.0])
    b0, pl, sse = linear_given_tau(t, y, w, tau)
    for i in range(5):
        e = np.exp(-t[i, w[i]] / tau[i])
        X = np.column_stack([e, 1 - e])
        coef, res, *_ = np.linalg.lstsq(X, y[i, w[i]], rcond=None)
        np.testing.assert_allclose([b0[i], pl[i]], coef, rtol=1e-8)
        np.testing.assert_allclose(sse[i], np.sum((y[i, w[i]] - X @ coef) ** 2), rtol=1e-8)


def test_profile_start_picks_the_best_grid_point():
    t = np.arange(0.0, 200.0, 10.0)
    y = exp_plateau(t, 7.0, 2.0, 25.0)
    b0, pl, tau = profile_start(t, y)
    assert tau in TAU_GRID and abs(np.log(tau / 25.0)) < np.log(TAU_GRID[1] / TAU_GRID[0])


def test_identifiability_reasons():
    t = np.tile(np.array([0.0, 7.0, 14.0, 28.0]), (6, 1))
    w = np.ones_like(t, bool)
    tau = np.array([10.0, TAU_BOUNDS[0], TAU_BOUNDS[1], 10.0, 0.6, np.nan])
    b0 = np.array([7.0, 7.0, 7.0, 5.0, 7.0, 7.0])
    pl = np.array([2.0, 2.0, 2.0, 5.0, 2.0, 2.0])
    why = tau_problem(tau, t, w, b0, pl)
    assert why[0] == ""
    assert "lower bound" in why[1] and "upper bound" in why[2] and "flat" in why[3]
    assert "before the first follow-up" in why[4] and "failed" in why[5]
    assert identifiable_tau(tau, t, w, b0, pl).tolist() == [True, False, False, False, False, False]
    two_days = np.array([[0.0, 0.0, 7.0, 7.0]])
    assert "fewer than 3 distinct days" in tau_problem(np.array([10.0]), two_days, np.ones((1, 4), bool))[0]


def test_first_gap_is_the_first_follow_up_not_the_smallest_gap():
    # follow-ups on days 20, 21, 22: the first gap is 20 days (tau must be >= 4), although later gaps are 1 day
    t = np.array([[0.0, 20.0, 21.0, 22.0]])
    w = np.ones_like(t, bool)
    assert identifiable_tau(np.array([4.0, 3.9]), np.repeat(t, 2, 0), np.repeat(w, 2, 0)).tolist() == [True, False]
    # unsorted and padded rows give the same answer
    t2 = np.array([[21.0, 0.0, 22.0, 20.0, 0.0]])
    w2 = np.array([[True, True, True, True, False]])
    assert identifiable_tau(np.array([3.9]), t2, w2).tolist() == [False]
