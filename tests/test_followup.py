"""Missing follow-up in the responder analysis (backpain_outcomes.followup).

The sandwich of ipw_observed_means is checked against finite differences of the stacked estimating equations
built here; coverage under informative drop-out over 500 simulated studies is in benchmarks/validate_followup.py.
"""

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from backpain_outcomes.followup import ResponderRate, ipw_observed_means, responder_rate
from backpain_outcomes.simulate_methods import simulate_confounded
from backpain_outcomes.weighting import ridge_logit


def _data(n=400, seed=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + x)))).astype(float)
    observed = rng.random(n) < 1 / (1 + np.exp(-(0.5 - 0.9 * x)))
    g = rng.random(n) < 0.5
    return X, np.where(observed, y, np.nan), observed, g


def _psi(theta, X, y, observed, groups, ridge=0.0):
    p = X.shape[1]
    prob = 1 / (1 + np.exp(-(X @ theta[:p])))
    w = np.where(observed, 1 / prob, 0.0)
    yy = np.where(observed, y, 0.0)
    pen = np.r_[0.0, np.full(p - 1, ridge)] * theta[:p] / len(y)
    cols = [X * (observed - prob)[:, None] - pen] + [(gm * w * (yy - theta[p + j]))[:, None] for j, gm in enumerate(groups)]
    return np.hstack(cols)


@pytest.mark.parametrize("ridge", [0.0, 5.0])
def test_sandwich_matches_finite_differences(ridge):
    X, y, observed, g = _data()
    if ridge:
        beta, _, converged, _ = ridge_logit(X, observed.astype(float), ridge)
        assert converged
    else:
        beta = sm.Logit(observed.astype(float), X).fit(disp=False).params
    prob = 1 / (1 + np.exp(-(X @ beta)))
    groups = [np.ones(len(y)), g.astype(float)]
    mu, cov = ipw_observed_means(y, observed, X, prob, groups, beta=beta, ridge=ridge)
    w = np.where(observed, 1 / prob, 0)
    assert mu[1] == pytest.approx(np.sum(g * w * np.nan_to_num(y)) / np.sum(g * w))
    theta = np.r_[beta, mu]
    assert np.abs(_psi(theta, X, y, observed, groups, ridge).mean(0)).max() < 1e-8  # the estimating equations hold
    h, k = 1e-6, len(theta)
    jac = np.column_stack([(_psi(theta + h * np.eye(k)[j], X, y, observed, groups, ridge).mean(0)
                            - _psi(theta - h * np.eye(k)[j], X, y, observed, groups, ridge).mean(0)) / (2 * h)
                           for j in range(k)])
    psi = _psi(theta, X, y, observed, groups, ridge)
    inv = np.linalg.inv(-jac)
    expected = (inv @ (psi.T @ psi / len(y)) @ inv.T / len(y))[2:, 2:]
    np.testing.assert_allclose(cov, expected, rtol=1e-4)


def test_small_groups_always_observed_keep_finite_weights():
    # simulate_study: few "mixed" episodes, all observed, would separate an unpenalised logistic model
    import backpain_outcomes as bpo
    study = bpo.simulate_study(n_patients=300, seed=3)[0]
    res = responder_rate(study, day=42)
    assert np.isfinite(res.weights["weight"]).all() and res.converged
    assert np.isfinite(res.table["rate_weighted"]).all()


def test_weighted_corrects_informative_dropout():
    study, truth = simulate_confounded(1500, seed=3, dropout=1.5)
    res = responder_rate(study, day=42, origin="first_contact")
    assert isinstance(res, ResponderRate)
    row = res.table.set_index("group").loc["all"]
    # sicker patients drop out: complete cases over-represent responders (CI misses the truth), weighting covers it
    assert row["rate_complete_case"] > truth.responder_rate + 0.05 and row["cc_ci_low"] > truth.responder_rate
    assert row["ci_low"] <= truth.responder_rate <= row["ci_high"]
    assert row["share_missing"] == pytest.approx((~truth.episodes["observed"]).mean())
    assert set(res.table["group"]) == {"all", "untreated", "deep_tissue", "dry_needling", "cupping"}
    last = res.model.set_index("term").loc["last NRS before day 28", "odds_ratio"]
    assert last < 1  # a high day-14 score makes the day-42 visit less likely
    assert res.notes[0].startswith(f"{int((~truth.episodes['observed']).sum())} of 1500 episodes")
    assert isinstance(res.plot(), matplotlib.axes.Axes)
    assert "complete cases" in res.summary()


def test_complete_follow_up_gives_the_complete_case_rate():
    study, _ = simulate_confounded(300, seed=4)
    res = responder_rate(study, day=42, origin="first_contact", by=None)
    row = res.table.iloc[0]
    assert row["share_missing"] == 0 and list(res.table["group"]) == ["all"]
    assert row["rate_weighted"] == pytest.approx(row["rate_complete_case"])
    assert row["se"] == pytest.approx(np.sqrt(row["rate_complete_case"] * (1 - row["rate_complete_case"]) / 300),
                                      rel=1e-3)
    np.testing.assert_allclose(res.weights["weight"], 1.0, atol=1e-6)


def test_example_study_population_and_notes(example_study):
    res = responder_rate(example_study, day=42, by="chronicity")
    assert any("entered after day 42" in n for n in res.notes)
    assert res.table["n"].iloc[0] == res.table["n"].iloc[1:].sum()
    assert isinstance(res.weights, pd.DataFrame) and {"probability", "weight"} <= set(res.weights.columns)


@pytest.mark.parametrize("kwargs, match", [
    ({"by": "colour"}, "by='colour' is not a column"),
    ({"window": 0}, "window must be a positive number"),
    ({"day": 0}, "day must be a positive number"),
    ({"instrument": "pain"}, "instrument"),
    ({"min_n": 100_000}, "fewer than min_n=100000"),
])
def test_arguments_are_checked(example_study, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        responder_rate(example_study, **kwargs)
