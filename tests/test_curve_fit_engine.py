"""The pooled fit of the recovery model (one group of episodes)."""

import numpy as np
from scipy.optimize import curve_fit

from backpain_outcomes.curve_fit_engine import fit_curve
from backpain_outcomes.recovery_model import exp_plateau


def test_group_fit_equals_scipy_curve_fit_and_recovers_truth():
    rng = np.random.default_rng(3)
    t = np.tile(np.arange(0, 200, 10.0), 50)
    y = exp_plateau(t, 7.0, 2.0, 25.0) + rng.normal(0, 0.5, t.size)
    fit = fit_curve(t, y, np.repeat(np.arange(50), 20))
    ref, _ = curve_fit(exp_plateau, t, y, p0=[6, 1, 10])
    np.testing.assert_allclose(fit.theta, ref, rtol=1e-6)
    assert abs(fit.theta[2] - 25) < 2 and fit.converged and not fit.problem
    assert np.isfinite(fit.cov).all()
