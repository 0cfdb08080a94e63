"""Mixed-model engines: lme4's conditional covariance of the fixed effects."""

import numpy as np

from backpain_outcomes.mixed_engines import conditional_cov_fe


def test_conditional_cov_equals_dense_gls():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(30), 4)
    t = np.tile(np.arange(4.0), 30)
    X = np.column_stack([np.ones(120), t, rng.normal(size=120)])
    Z = np.column_stack([np.ones(120), t])
    G = np.array([[2.0, 0.3], [0.3, 0.5]])
    V = np.zeros((120, 120))
    for k in range(30):
        i = g == k
        V[np.ix_(i, i)] = Z[i] @ G @ Z[i].T + 0.7 * np.eye(4)
    dense = np.linalg.inv(X.T @ np.linalg.solve(V, X))
    np.testing.assert_allclose(conditional_cov_fe(X, Z, g, G, 0.7), dense, rtol=1e-10)
    G0 = np.array([[2.0, 0.0], [0.0, 0.0]])  # boundary: singular G still works
    assert np.isfinite(conditional_cov_fe(X, Z, g, G0, 0.7)).all()


def test_time_entering_through_a_shift_gives_the_same_fit(example_study):
    # I(day - 10) is linear in day but not a column scaling: the design map falls back to least squares;
    # the shift is an invertible map of the fixed effects with determinant 1, so slope and REML llf are unchanged
    import backpain_outcomes as bpo
    f = example_study.analysis_frame("nrs")
    a = bpo.fit_mixed_model(f, "score ~ day + baseline")
    b = bpo.fit_mixed_model(f, "score ~ I(day - 10) + baseline")
    np.testing.assert_allclose(b.fe_params["I(day - 10)"], a.fe_params["day"], rtol=1e-7)
    np.testing.assert_allclose(b.bse_fe["I(day - 10)"], a.bse_fe["day"], rtol=1e-6)
    np.testing.assert_allclose(b.llf, a.llf, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b.cov_re.to_numpy(), a.cov_re.to_numpy(), rtol=1e-5)  # optimiser tolerance
