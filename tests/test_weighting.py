"""Propensity model, weights, balance and weighted means (backpain_outcomes.weighting).

The sandwich covariance of ipw_means is checked against an independent M-estimation sandwich built here from
finite differences of the stacked estimating equations (multinomial-logit score and Hajek means); the balance
table against SMDs computed by hand; the weights against 1/e and e_t/e.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from backpain_outcomes.weighting import (
    OUTCOME_RIDGE,
    aipw_means,
    balance_table,
    fit_propensity,
    ipt_weights,
    ipw_means,
    ridge_logit,
)


def _data(n=300, seed=4):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    eta = np.column_stack([np.zeros(n), 0.3 + 0.8 * X[:, 1], -0.2 + 0.5 * X[:, 1] - 0.6 * X[:, 2]])
    p = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    group = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.2 + 0.7 * X[:, 1] + 0.4 * group)))).astype(float)
    return X, group, y


def _softmax(X, beta_flat, k):
    B = np.column_stack([np.zeros(X.shape[1]), beta_flat.reshape(k - 1, X.shape[1]).T])
    e = np.exp(X @ B)
    return e / e.sum(1, keepdims=True)


def _psi(theta, X, group, y, k, groups, estimand, target):
    q = (k - 1) * X.shape[1]
    e = _softmax(X, theta[:q], k)
    onehot = np.eye(k)[group]
    score = np.concatenate([X * (onehot[:, j] - e[:, j])[:, None] for j in range(1, k)], axis=1)
    own = e[np.arange(len(y)), group]
    w = 1 / own if estimand == "ATE" else e[:, target] / own
    mus = [onehot[:, a] * w * (y - theta[q + i]) for i, a in enumerate(groups)]
    return np.column_stack([score, *mus])


def _numeric_sandwich(theta, X, group, y, k, groups, estimand="ATE", target=None, h=1e-6):
    n = len(y)
    psi = _psi(theta, X, group, y, k, groups, estimand, target)
    jac = np.zeros((len(theta), len(theta)))
    for j in range(len(theta)):
        d = np.zeros(len(theta))
        d[j] = h
        jac[:, j] = (_psi(theta + d, X, group, y, k, groups, estimand, target).mean(0)
                     - _psi(theta - d, X, group, y, k, groups, estimand, target).mean(0)) / (2 * h)
    bread = -jac
    meat = psi.T @ psi / n
    inv = np.linalg.inv(bread)
    return (inv @ meat @ inv.T / n)[-len(groups):, -len(groups):]


def test_propensity_is_the_multinomial_logit():
    X, group, _ = _data()
    fit = fit_propensity(X, group, 3)
    ref = sm.MNLogit(group, X).fit(disp=False)
    assert fit.converged
    np.testing.assert_allclose(fit.probs, ref.predict(X), atol=1e-8)
    two = fit_propensity(X, (group > 0).astype(int), 2)
    np.testing.assert_allclose(two.probs[:, 1], sm.Logit((group > 0).astype(float), X).fit(disp=False).predict(X),
                               atol=1e-8)


def test_weights_by_hand():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])
    group = np.array([0, 1, 2])
    w, g = ipt_weights(probs, group, "ATE")
    np.testing.assert_allclose(w, [2.0, 1 / 0.6, 2.0])
    np.testing.assert_allclose(g, -(np.eye(3)[group][:, 1:] - probs[:, 1:]))
    w, g = ipt_weights(probs, group, "ATT", target=1)
    np.testing.assert_allclose(w, [0.3 / 0.5, 1.0, 0.25 / 0.5])
    np.testing.assert_allclose(g, [[1, 0], [0, 0], [1, -1]])
    w, g = ipt_weights(np.array([[0.5, 0.5]] * 4 + [[0.99, 0.01]]), np.array([0, 1, 0, 1, 1]), trim=0.25)
    assert w.max() == pytest.approx(2.0) and g[4].item() == 0  # the weight 100 is truncated at the 75th percentile


def test_ipw_sandwich_matches_an_independent_m_estimation_sandwich():
    X, group, y = _data()
    fit = fit_propensity(X, group, 3)
    for estimand, target, groups in [("ATE", None, [0, 1, 2]), ("ATT", 2, [2, 0])]:
        w, g = ipt_weights(fit.probs, group, estimand, target=target)
        mu, cov = ipw_means(y, group, X, fit.probs, w, g, groups)
        for i, a in enumerate(groups):
            assert mu[i] == pytest.approx(np.average(y[group == a], weights=w[group == a]))
        theta = np.r_[fit.params.T.ravel(), mu]
        np.testing.assert_allclose(cov, _numeric_sandwich(theta, X, group, y, 3, groups, estimand, target),
                                   rtol=1e-4, atol=1e-9)


def test_intercept_only_propensity_gives_the_binomial_variance():
    _, group, y = _data()
    X = np.ones((len(y), 1))
    fit = fit_propensity(X, group, 3)
    w, g = ipt_weights(fit.probs, group)
    mu, cov = ipw_means(y, group, X, fit.probs, w, g, [0, 1, 2])
    for a in range(3):
        ya = y[group == a]
        assert mu[a] == pytest.approx(ya.mean())
        assert cov[a, a] == pytest.approx(ya.var() / len(ya))


def test_cluster_sums_equations_within_patients():
    X, group, y = _data(n=200)
    fit = fit_propensity(X, group, 3)
    w, g = ipt_weights(fit.probs, group)
    _, cov = ipw_means(y, group, X, fit.probs, w, g, [0, 1], cluster=np.arange(200))
    _, cov_none = ipw_means(y, group, X, fit.probs, w, g, [0, 1])
    np.testing.assert_allclose(cov, cov_none)  # one episode per patient: no change
    _, cov_pairs = ipw_means(y, group, X, fit.probs, w, g, [0, 1], cluster=np.arange(200) // 2)
    assert not np.allclose(cov_pairs, cov_none)


def test_aipw_by_hand_and_reduction_to_ipw():
    X, group, y = _data()
    fit = fit_propensity(X, group, 3)
    w, _ = ipt_weights(fit.probs, group)
    mu, cov, notes = aipw_means(y, group, X, w, np.ones(len(y)), [0, 1, 2])
    assert not notes
    # the outcome model of group 1 is the ridge-0.1 logistic fit: its penalised score equation holds
    beta = sm.GLM(y[group == 1], X[group == 1], family=sm.families.Binomial()).fit().params
    b1, _, ok, _ = ridge_logit(X[group == 1], y[group == 1], OUTCOME_RIDGE)
    p1 = 1 / (1 + np.exp(-X[group == 1] @ b1))
    np.testing.assert_allclose(X[group == 1].T @ (y[group == 1] - p1), [0, OUTCOME_RIDGE * b1[1], OUTCOME_RIDGE * b1[2]],
                               atol=1e-8)
    np.testing.assert_allclose(b1, beta, atol=0.05)  # close to the unpenalised maximum likelihood
    m1 = 1 / (1 + np.exp(-X @ b1))
    r = (group == 1) * w * (y - m1)
    assert mu[1] == pytest.approx(m1.mean() + r.sum() / ((group == 1) * w).sum())
    # intercept-only outcome models: the augmentation cancels and AIPW equals the Hajek IPW mean
    X0 = np.ones((len(y), 1))
    mu0, _, _ = aipw_means(y, group, X0, w, np.ones(len(y)), [0, 1, 2])
    np.testing.assert_allclose(mu0, [np.average(y[group == a], weights=w[group == a]) for a in range(3)])
    assert np.all(np.diag(cov) > 0)


def test_aipw_not_feasible_is_nan_with_a_note():
    X, group, y = _data()
    y = np.where(group == 2, 0.0, y)  # no outcome in group 2
    w, _ = ipt_weights(fit_propensity(X, group, 3).probs, group)
    mu, cov, notes = aipw_means(y, group, X, w, np.ones(len(y)), [0, 2])
    assert np.isfinite(mu[0]) and np.isnan(mu[1]) and np.isnan(cov[1, 1])
    assert notes and notes[0][0] == 2


def test_balance_table_by_hand():
    # group 0: x = 1, 2, 3 (mean 2, var 1); group 1: x = 2, 4 (mean 3, var 2); pooled SD sqrt(1.5)
    Z = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.0, 4.0], "sex: male": [1.0, 0.0, 0.0, 1.0, 1.0]})
    group = np.array([0, 0, 0, 1, 1])
    w = np.array([1.0, 1.0, 4.0, 1.0, 1.0])
    t = balance_table(Z, group, {1: w}, ["untreated", "cupping"]).set_index("covariate")
    assert t.loc["x", "smd_before"] == pytest.approx((3 - 2) / np.sqrt(1.5))
    assert t.loc["x", "weighted_mean_reference"] == pytest.approx((1 + 2 + 12) / 6)
    assert t.loc["x", "smd_after"] == pytest.approx((3 - 2.5) / np.sqrt(1.5))
    # binary: means 1/3 and 1, variances (ddof 1) 1/3 and 0 -> SD sqrt(1/6); weighted reference mean 1/6
    assert t.loc["sex: male", "smd_before"] == pytest.approx((1 - 1 / 3) / np.sqrt(1 / 6))
    assert t.loc["sex: male", "smd_after"] == pytest.approx((1 - 1 / 6) / np.sqrt(1 / 6))
    assert not t["balanced"].any()
    assert set(t["modality"]) == {"cupping"} and set(t["reference"]) == {"untreated"}
