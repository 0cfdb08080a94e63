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


def _data(n=400, seed=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + x)))).astype(float)
    observed = rng.random(n) < 1 / (1 + np.exp(-(0.5 - 0.9 * x)))
    g = rng.random(n) < 0.5
    return X, np.where(observed, y, np.nan), observed, g


def _psi(theta, X, y, observed, groups):
    p = X.shape[1]
    prob = 1 / (1 + np.exp(-(X @ theta[:p])))
    w = np.where(observed, 1 / prob, 0.0)
    yy = np.where(observed, y, 0.0)
    cols = [X * (observed - prob)[:, None]] + [(gm * w * (yy - theta[p + j]))[:, None] for j, gm in enumerate(groups)]
    return np.hstack(cols)


def test_sandwich_matches_finite_differences():
    X, y, observed, g = _data()
    fit = sm.Logit(observed.astype(float), X).fit(disp=False)
    prob = fit.predict(X)
    groups = [np.ones(len(y)), g.astype(float)]
    mu, cov = ipw_observed_means(y, observed, X, prob, groups)
    w = np.where(observed, 1 / prob, 0)
    assert mu[1] == pytest.approx(np.sum(g * w * np.nan_to_num(y)) / np.sum(g * w))
    theta = np.r_[fit.params, mu]
    h, k = 1e-6, len(theta)
    jac = np.column_stack([(_psi(theta + h * np.eye(k)[j], X, y, observed, groups).mean(0)
                            - _psi(theta - h * np.eye(k)[j], X, y, observed, groups).mean(0)) / (2 * h)
                           for j in range(k)])
    psi = _psi(theta, X, y, observed, groups)
    inv = np.linalg.inv(-jac)
    expected = (inv @ (psi.T @ psi / len(y)) @ inv.T / len(y))[2:, 2:]
    np.testing.assert_allclose(cov, expected, rtol=1e-4)


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
