"""The exact vectorised (RE)ML engine: deviance against the dense multivariate normal, typed result."""

import numpy as np
import pytest
from scipy import stats

from backpain_outcomes.lmm_fast import GroupStats, LMMFit, fit_lmm, profiled_deviance, singular_columns


def _data(seed=0, G=25, n=5):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), n)
    t = np.tile(np.arange(n, dtype=float), G)
    X = np.column_stack([np.ones(G * n), t, rng.normal(size=G * n)])
    Z = np.column_stack([np.ones(G * n), t])
    b = rng.multivariate_normal([0, 0], [[1.0, 0.1], [0.1, 0.2]], G)
    y = X @ np.array([5.0, -0.5, 0.3]) + (Z * b[g]).sum(1) + rng.normal(0, 0.7, G * n)
    return X, Z, y, g


def _dense_ml_deviance(theta, X, Z, y, g):
    """-2 log L maximised over beta and sigma^2 at fixed theta, from the dense marginal covariance."""
    L = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    Vr = np.zeros((len(y), len(y)))  # V / sigma^2
    for k in np.unique(g):
        i = g == k
        Vr[np.ix_(i, i)] = Z[i] @ L @ L.T @ Z[i].T + np.eye(i.sum())
    Vi = np.linalg.inv(Vr)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    s2 = r @ Vi @ r / len(y)
    return -2 * stats.multivariate_normal(np.zeros(len(y)), s2 * Vr).logpdf(r)


def test_profiled_ml_deviance_equals_dense_likelihood():
    X, Z, y, g = _data()
    s = GroupStats(X, Z, y, g)
    for theta in ([1.0, 0.1, 0.5], [0.3, -0.2, 0.05], [2.0, 0.0, 0.0]):
        np.testing.assert_allclose(profiled_deviance(np.array(theta), s, reml=False),
                                   _dense_ml_deviance(theta, X, Z, y, g), rtol=1e-10)


def test_fit_returns_a_typed_frozen_result():
    X, Z, y, g = _data()
    fit = fit_lmm(X, Z, y, g)
    assert isinstance(fit, LMMFit) and fit.converged
    assert fit.beta.shape == (3,) and fit.cov_re.shape == (2, 2) and fit.blup.shape == (25, 2)
    assert len(fit.groups) == 25 and np.isfinite(fit.llf)
    with pytest.raises(AttributeError):
        fit.llf = 0.0


def test_bad_designs_raise_value_errors():
    X, Z, y, g = _data()
    with pytest.raises(ValueError, match="not of full rank"):
        fit_lmm(np.column_stack([X, 2 * X[:, 1]]), Z, y, g)
    with pytest.raises(ValueError, match="two groups"):
        fit_lmm(X, Z, y, np.zeros(len(y)))
    with pytest.raises(ValueError, match="one or two columns"):
        fit_lmm(X, np.column_stack([Z, Z[:, 1] ** 2]), y, g)
    assert singular_columns(X.T @ X) == []
    Xz = np.column_stack([X, np.zeros(len(y))])
    assert singular_columns(Xz.T @ Xz) == [3]
