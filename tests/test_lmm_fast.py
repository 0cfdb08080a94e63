"""The exact vectorised (RE)ML engine: deviance against the dense multivariate normal, typed result."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from backpain_outcomes import lmm_deviance, lmm_stats
from backpain_outcomes.lmm_fast import (
    GroupStats,
    LMMFit,
    deviance_derivatives,
    fit_lmm,
    fit_lmm_stats,
    moment_start,
    profiled_deviance,
    singular_columns,
)
from backpain_outcomes.lmm_stats import StatsAccumulator


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


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("q", [1, 2])
def test_analytic_gradient_and_hessian_equal_finite_differences(reml, q):
    X, Z, y, g = _data(seed=3)
    s = GroupStats(X, Z[:, :q], y, g)
    theta = np.array([0.9, 0.2, 0.4][:1 if q == 1 else 3])
    dev, grad, hess = deviance_derivatives(theta, s, reml)
    assert dev == profiled_deviance(theta, s, reml)
    h = 1e-5
    eye = np.eye(len(theta))
    fd_grad = [(profiled_deviance(theta + h * e, s, reml) - profiled_deviance(theta - h * e, s, reml)) / (2 * h)
               for e in eye]
    fd_hess = [(deviance_derivatives(theta + h * e, s, reml)[1] - deviance_derivatives(theta - h * e, s, reml)[1])
               / (2 * h) for e in eye]
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess, np.array(fd_hess), rtol=1e-5, atol=1e-5)


def test_fit_reaches_the_bounded_optimum_of_a_general_optimiser():
    # reference: scipy's L-BFGS-B (lme4's bounds, theta_11, theta_22 >= 0) on the profiled deviance, several starts
    from scipy.optimize import minimize
    X, Z, y, g = _data(seed=5, G=40, n=6)
    fit = fit_lmm(X, Z, y, g)
    s = GroupStats(X, Z, y, g)
    ref = min((minimize(profiled_deviance, x0, args=(s, True), method="L-BFGS-B",
                        bounds=[(0, None), (None, None), (0, None)], options={"ftol": 1e-15, "gtol": 1e-10})
               for x0 in ([1.0, 0.0, 0.1], [0.3, 0.3, 0.3], [2.0, -0.5, 1.0])), key=lambda r: r.fun)
    assert -2 * fit.llf <= ref.fun + 1e-8
    np.testing.assert_allclose(fit.theta, ref.x, rtol=1e-4, atol=1e-5)
    assert fit.converged and fit.newton_step_rel < 1e-6 and fit.at_boundary == []
    assert (fit.theta[[0, 2]] >= 0).all()
    _, grad, _ = deviance_derivatives(fit.theta, s)
    assert np.abs(grad).max() < 1e-4


def test_boundary_fit_has_an_exact_zero():
    rng = np.random.default_rng(0)  # a draw whose estimate lies on the boundary (the old L-BFGS-B fit agreed)
    G, n = 300, 6
    g = np.repeat(np.arange(G), n)
    t = np.tile(np.arange(n, dtype=float), G)
    X = np.column_stack([np.ones(G * n), t])
    y = X @ [5.0, -0.5] + rng.normal(0, 1, G)[g] + rng.normal(0, 1, G * n)  # random intercept only
    fit = fit_lmm(X, X, y, g)
    # theta_22 = 0: a singular random-effect covariance (perfectly correlated intercept and slope)
    assert fit.at_boundary == [2] and fit.theta[2] == 0.0 and abs(np.linalg.det(fit.cov_re)) < 1e-20
    s = GroupStats(X, X, y, g)
    # no interior point is better: the deviance grows when theta_22 leaves 0
    for eps in (1e-3, 1e-2):
        assert profiled_deviance(fit.theta + [0, 0, eps], s) > -2 * fit.llf
    assert fit.converged and fit.newton_step_rel < 1e-6


def test_moment_start_is_near_the_optimum():
    X, Z, y, g = _data(seed=1, G=200, n=6)
    s = GroupStats(X, Z, y, g)
    start, fit = moment_start(s), fit_lmm(X, Z, y, g)
    assert start.shape == (3,) and start[0] > 0 and start[2] > 0
    np.testing.assert_allclose(start[[0, 2]], fit.theta[[0, 2]], rtol=0.5)


def test_a_response_without_residual_variance_is_a_clear_error():
    X, Z, _, g = _data()
    with pytest.raises(ValueError, match="reproduce the response exactly"):
        fit_lmm(X, Z, X @ [5.0, -0.5, 0.3], g)


def _factor_data(seed=3, G=60):
    """Groups with a 4-level factor constant within each group and its interaction with time: Z'X is mostly
    zero (packed by StatsAccumulator), except a dense covariate column."""
    rng = np.random.default_rng(seed)
    n_i = rng.integers(2, 8, G)
    g = np.repeat(np.arange(G), n_i)
    t = rng.uniform(0, 6, len(g))
    D = (rng.integers(0, 4, G)[g][:, None] == np.arange(1, 4)).astype(float)
    X = np.column_stack([np.ones(len(g)), D, t, D * t[:, None], rng.normal(size=len(g))])
    Z = np.column_stack([np.ones(len(g)), t])
    y = X @ rng.normal(size=X.shape[1]) + rng.normal(size=G)[g] + 0.3 * rng.normal(size=G)[g] * t + rng.normal(size=len(g))
    labels = np.array([f"E{k:03d}" for k in range(G)], dtype=object)[g]
    return X, Z, y, g, labels


def test_accumulated_statistics_are_those_of_all_rows(monkeypatch):
    # reference: GroupStats of all rows at once (per-group arrays equal exactly: each group is in one part)
    X, Z, y, g, labels = _factor_data()
    whole = GroupStats(X, Z, y, labels)
    cuts = [0, 31, 170, 171, len(y)]  # row cuts: groups split between parts are added up by label
    assert any(labels[c - 1] == labels[c] for c in cuts[1:-1])
    acc = StatsAccumulator(capacity=5)  # too small: grows
    for a, b in zip(cuts, cuts[1:]):
        part = GroupStats(X[a:b], Z[a:b], y[a:b], pd.Series(labels[a:b], dtype="str")).compact()
        acc.add(part)
    merged = acc.stats()
    assert merged.G == whole.G and list(merged.groups) == list(whole.groups)
    assert isinstance(merged.groups, pd.Index) and merged.groups.dtype == "str"  # labels stay Arrow strings
    np.testing.assert_array_equal(merged.size, whole.size)
    for got, want in [(merged.ZtX, whole.ZtX), (merged.ZtZ, whole.ZtZ), (merged.Zty, whole.Zty),
                      (merged.XtX, whole.XtX), (merged.Xty, whole.Xty)]:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12)
    # blocks of 7 groups unpack exactly the merged numbers
    rows = np.concatenate([np.stack(blk.Zx, axis=1) for blk in merged.blocks(7)])
    np.testing.assert_array_equal(rows, merged.ZtX)
    fit, ref = fit_lmm_stats(merged), fit_lmm(X, Z, y, labels)
    np.testing.assert_allclose(fit.beta, ref.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.blup, ref.blup, rtol=0, atol=1e-8)
    assert list(fit.groups) == list(ref.groups)


def test_packed_and_dense_parts_give_the_unpacked_fit(monkeypatch):
    # whole groups per part, so every per-group number is copied, not added: the merged statistics equal
    # those of all rows exactly, whether a part's Z'X is packed (factor columns) or dense
    X, Z, y, g, labels = _factor_data(seed=5, G=80)
    whole = GroupStats(X, Z, y, g)
    cut = int(np.searchsorted(g, 40))
    monkeypatch.setattr(lmm_stats, "PACK_DENSITY", 0.0)  # the first part dense
    acc = StatsAccumulator(whole.G).add(GroupStats(X[:cut], Z[:cut], y[:cut], g[:cut]).compact())
    monkeypatch.setattr(lmm_stats, "PACK_DENSITY", 1.0)  # the second packed
    merged = acc.add(GroupStats(X[cut:], Z[cut:], y[cut:], g[cut:]).compact()).stats()
    assert [len(c[1]) for c in merged._chunks] == [4, 6]  # dense, packed
    np.testing.assert_array_equal(merged.ZtX, whole.ZtX)
    np.testing.assert_array_equal(merged.ZtZ, whole.ZtZ)
    for block in (None, 13):
        theta = np.array([0.9, 0.1, 0.4])
        a = lmm_deviance.deviance_derivatives(theta, whole)
        k = lmm_deviance.deviance_terms(theta, merged, True, block)
        b = lmm_deviance.derivatives_from_terms(theta, k, merged, True, block)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
        np.testing.assert_allclose(b[1], a[1], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(b[2], a[2], rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="no statistics"):
        StatsAccumulator().stats()
