"""Power and sample size of the claim test (backpain_outcomes.power).

Hand computations (claimed 0.90, true rate 0.80, n = 75, alpha 0.05 one-sided):
u0 = log(-log 0.1) = 0.834032, u1 = log(-log 0.2) = 0.475885, Var(log S) = 0.8 / (75 * 0.2)
= 0.053333, se(u) = sqrt(0.053333) / 1.609438 = 0.143491, z = 0.358147 / 0.143491 = 2.495951,
power = Phi(2.495951 - 1.644854) = Phi(0.851097) = 0.80264. Sample size for 80% power:
n = ((1.644854 + 0.841621) * 1.242757 / 0.358147)^2 = 74.4 -> 75.
The agreement of simulation and formula over a grid is in benchmarks/validate_power.py.
"""

import math

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from backpain_outcomes.power import (
    PowerResult,
    SampleSizeResult,
    claim_power,
    claim_sample_size,
    power_exact,
    power_formula,
    sample_size_formula,
)
from backpain_outcomes.verdicts import claim_at_day


def test_formula_matches_hand_computation():
    assert power_formula(75, 0.80, claimed=0.90, day=42, alpha=0.05) == pytest.approx(0.80264, abs=5e-5)
    assert sample_size_formula(0.80, power=0.80, claimed=0.90) == 75


def test_formula_is_the_greenwood_wald_power():
    # independent re-derivation from the binomial variance of a complete sample
    n, p1, p0, alpha = 60, 0.7, 0.9, 0.1
    s1, s0 = 1 - p1, 1 - p0
    se = math.sqrt(p1 / (n * s1)) / abs(math.log(s1))
    z = abs(math.log(-math.log(s1)) - math.log(-math.log(s0))) / se
    assert power_formula(n, p1, claimed=p0, alpha=alpha) == pytest.approx(stats.norm.cdf(z - stats.norm.ppf(1 - alpha)))


def test_power_at_the_claim_is_alpha_and_direction_symmetric():
    assert power_formula(100, 0.9, claimed=0.9, alpha=0.05) == pytest.approx(0.05)
    # above the claim the mirror test is used: power grows with n as well
    assert power_formula(400, 0.95, claimed=0.9) > power_formula(100, 0.95, claimed=0.9) > 0.05


def test_sample_size_is_the_smallest_n_reaching_the_target():
    for rate, target in [(0.8, 0.8), (0.85, 0.9), (0.6, 0.8), (0.95, 0.8)]:
        n = sample_size_formula(rate, power=target, claimed=0.9)
        assert power_formula(n, rate, claimed=0.9) >= target
        assert n == 1 or power_formula(n - 1, rate, claimed=0.9) < target


def test_dropout_increases_the_variance_and_vanishes_in_the_limit():
    complete = power_formula(80, 0.8, claimed=0.9)
    assert power_formula(80, 0.8, claimed=0.9, dropout_mean_days=100) < complete
    assert power_formula(80, 0.8, claimed=0.9, dropout_mean_days=1e9) == pytest.approx(complete, abs=1e-6)
    assert sample_size_formula(0.8, dropout_mean_days=100) > sample_size_formula(0.8)


def test_formula_result_table_and_contract():
    res = claim_power([50, 100], [0.8, 0.85], method="formula")
    assert isinstance(res, PowerResult)
    assert list(res.table.columns) == ["n", "true_rate", "claimed", "day", "alpha", "method", "power", "mc_se",
                                       "n_sim", "mean_at_risk", "not_estimable"]
    assert len(res.table) == 4 and res.table["mc_se"].isna().all()
    assert res.table.loc[(res.table["n"] == 100) & (res.table["true_rate"] == 0.8), "power"].item() == pytest.approx(
        power_formula(100, 0.8))
    assert isinstance(res.plot(), matplotlib.axes.Axes)
    assert "Power of the claim test" in res.summary() and "<table" in res._repr_html_()
    with pytest.raises(AttributeError):
        res.table = None


def test_simulation_runs_through_the_package_estimator():
    # true rate 0.5 against a claim of 0.9: with 40 episodes the claim is refuted in (almost) every study
    res = claim_power([10, 40], 0.5, claimed=0.9, n_sim=6, seed=3, progress=False)
    sim = res.table.set_index("n")
    assert (sim["method"] == "simulation").all() and (sim["n_sim"] == 6).all()
    assert sim.loc[40, "power"] == 1.0 and sim.loc[40, "mc_se"] == 0.0
    assert sim.loc[10, "mean_at_risk"] <= 10
    assert any("first contact" in n for n in res.notes)
    again = claim_power([10, 40], 0.5, claimed=0.9, n_sim=6, seed=3, progress=False)
    assert again.table["power"].tolist() == res.table["power"].tolist()


def test_simulated_sample_size_searches_around_the_formula():
    res = claim_sample_size(0.5, power=0.8, claimed=0.9, method="simulation", n_sim=4, seed=1, progress=False)
    assert isinstance(res, SampleSizeResult)
    assert res.formula_n == sample_size_formula(0.5, power=0.8, claimed=0.9)
    sim = res.table[res.table["method"] == "simulation"]
    assert res.n in set(sim["n"]) and len(sim) >= 5
    if res.achieved:
        assert sim.loc[sim["n"] == res.n, "power"].max() >= 0.8
        assert (sim.loc[sim["n"] < res.n, "power"] < 0.8).all()
    assert isinstance(res.plot(), matplotlib.axes.Axes)
    assert str(res.n) in res.summary()


@pytest.mark.parametrize("kwargs, match", [
    ({"claimed": 90}, "did you mean 0.9"),
    ({"method": "bootstrap"}, "method='bootstrap' is not valid"),
    ({"alpha": 1.5}, "alpha"),
    ({"day": "6 weeks"}, "day must be a number"),
    ({"n_sim": 0}, "n_sim"),
    ({"dropout_mean_days": -3}, "dropout_mean_days"),
])
def test_arguments_are_checked(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        claim_power(50, 0.8, **kwargs)


def test_bad_n_and_rates():
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        claim_power(0, 0.8, method="formula")
    with pytest.raises(ValueError, match="true_rate"):
        claim_power(10, 1.2, method="formula")
    with pytest.raises(ValueError, match="true_rate equals claimed"):
        claim_sample_size(0.9, claimed=0.9)
    with pytest.raises(ValueError, match="method='both' is not valid"):
        claim_sample_size(0.8, method="both")
    assert np.isfinite(claim_power(np.int64(12), np.float64(0.7), method="formula").table["power"]).all()


def test_rate_outside_the_simulator_is_refused_with_the_argument_name():
    with pytest.raises(ValueError, match="true_rate=0.99 cannot be simulated.*method='formula'"):
        claim_power(20, 0.99, claimed=0.9, n_sim=2, progress=False)


def test_exact_power_is_the_package_test_on_binomial_counts():
    # every count of resolutions k among n = 12 episodes (no censoring) through the package's own test
    n, claimed, rate = 12, 0.9, 0.6
    reject = []
    for k in range(n + 1):
        ev = pd.DataFrame({"entry": 0.0, "at_risk": True, "day": [10.0] * k + [60.0] * (n - k),
                           "resolved": [True] * k + [False] * (n - k)})
        reject.append(claim_at_day(ev, claimed, 42, 0.05)["p_below"] < 0.05)
    expected = stats.binom.pmf(np.arange(n + 1), n, rate)[np.array(reject)].sum()
    assert power_exact(n, rate, claimed) == pytest.approx(expected)
    res = claim_power([10, 11], 0.7, method=["formula", "exact"])
    assert set(res.table["method"]) == {"formula", "exact"}
    assert res.table.query("method == 'exact' and n == 10")["power"].item() == pytest.approx(0.3504, abs=1e-4)
    with pytest.raises(ValueError, match="method='exact' assumes complete follow-up"):
        claim_power(10, 0.7, method="exact", dropout_mean_days=300)
