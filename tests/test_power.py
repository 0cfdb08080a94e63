"""Power and sample size of the claim test (backpain_outcomes.power).

Hand computations of the normal approximation (claimed 0.90, true rate 0.80, n = 75, alpha 0.05 one-sided):
u0 = log(-log 0.1) = 0.834032, u1 = log(-log 0.2) = 0.475885, Var(log S) = 0.8 / (75 * 0.2)
= 0.053333, se(u) = sqrt(0.053333) / 1.609438 = 0.143491, z = 0.358147 / 0.143491 = 2.495951,
power = Phi(2.495951 - 1.644854) = Phi(0.851097) = 0.80264. Sample size for 80% power:
n = ((1.644854 + 0.841621) * 1.242757 / 0.358147)^2 = 74.4 -> 75.

Hand computation of the formula (the test on binomial counts), n = 10, true rate 0.70, claimed 0.90: with k = 7
resolutions S = 0.3, Var(log S) = 7 / (10 * 3) = 0.23333, se(u) = 0.48305 / 1.20397 = 0.40121,
z = (log(-log 0.3) - 0.834032) / 0.40121 = (0.185627 - 0.834032) / 0.40121 = -1.6161 > -1.6449: not rejected;
k = 6: S = 0.4, Var = 6 / 40 = 0.15, se(u) = 0.42268, z = -2.1800: rejected (and every smaller k). Power =
P(Binomial(10, 0.7) <= 6) = 0.3504 (the normal approximation says 0.4885).
The agreement of simulation and formula over a grid is in benchmarks/validate_power.py.
"""

import math

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from backpain_outcomes import power_simulation
from backpain_outcomes.claims import test_resolution_claim
from backpain_outcomes.power import (
    PowerResult,
    SampleSizeResult,
    claim_power,
    claim_sample_size,
    power_exact,
    power_formula,
    power_normal,
    sample_size_formula,
)
from backpain_outcomes.power_formula import EXACT_MAX_N
from backpain_outcomes.resolution import time_to_resolution
from backpain_outcomes.simulate import simulate_study
from backpain_outcomes.verdicts import claim_at_day


@pytest.fixture(autouse=True)
def light_calibration(monkeypatch):
    """The simulator's rate is calibrated on 400,000 episodes by default (10 s); 5,000 keep the tests fast."""
    monkeypatch.setattr(power_simulation, "CALIBRATION_MC", 5000)


def test_normal_approximation_matches_hand_computation():
    assert power_normal(75, 0.80, claimed=0.90, day=42, alpha=0.05) == pytest.approx(0.80264, abs=5e-5)
    # with a drop-out so rare that it vanishes the sample size inverts the normal approximation (74.4 -> 75)
    assert sample_size_formula(0.80, power=0.80, claimed=0.90, dropout_mean_days=1e12) == 75


def test_formula_is_the_test_on_binomial_counts():
    assert power_formula(10, 0.70, claimed=0.90) == pytest.approx(0.35039, abs=5e-5)  # docstring hand computation
    assert power_formula(10, 0.70, claimed=0.90) == pytest.approx(stats.binom.cdf(6, 10, 0.7))
    assert power_normal(10, 0.70, claimed=0.90) == pytest.approx(0.4885, abs=5e-5)
    for n, rate in [(37, 0.8), (120, 0.85), (200, 0.95)]:
        assert power_formula(n, rate) == power_exact(n, rate)
    # above EXACT_MAX_N and with drop-out the normal approximation is used
    assert power_formula(EXACT_MAX_N + 1, 0.89) == power_normal(EXACT_MAX_N + 1, 0.89)
    assert power_formula(80, 0.8, dropout_mean_days=150) == power_normal(80, 0.8, dropout_mean_days=150)


def test_normal_approximation_is_the_greenwood_wald_power():
    # independent re-derivation from the binomial variance of a complete sample
    n, p1, p0, alpha = 60, 0.7, 0.9, 0.1
    s1, s0 = 1 - p1, 1 - p0
    se = math.sqrt(p1 / (n * s1)) / abs(math.log(s1))
    z = abs(math.log(-math.log(s1)) - math.log(-math.log(s0))) / se
    assert power_normal(n, p1, claimed=p0, alpha=alpha) == pytest.approx(stats.norm.cdf(z - stats.norm.ppf(1 - alpha)))


def test_power_at_the_claim_is_the_type_one_error_and_direction_symmetric():
    assert power_normal(100, 0.9, claimed=0.9, alpha=0.05) == pytest.approx(0.05)
    # the Wald test on counts is slightly liberal at n = 100: its size is 0.0576 (binomial sum over its region)
    assert power_formula(100, 0.9, claimed=0.9, alpha=0.05) == pytest.approx(0.05758, abs=5e-5)
    # above the claim the mirror test is used: power grows with n as well
    assert power_formula(400, 0.95, claimed=0.9) > power_formula(100, 0.95, claimed=0.9) > 0.05


def test_sample_size_is_where_the_power_stays_above_the_target():
    # rate 0.8: power 0.817 at n = 73 but 0.743 at 74 (saw-tooth); 0.785 at 82, 0.800 at 83 and above
    assert sample_size_formula(0.80, power=0.80, claimed=0.90) == 83
    assert power_formula(73, 0.8) > 0.8 > power_formula(82, 0.8)
    for rate, target in [(0.8, 0.8), (0.85, 0.9), (0.6, 0.8), (0.95, 0.8)]:
        n = sample_size_formula(rate, power=target, claimed=0.9)
        assert all(power_formula(m, rate, claimed=0.9) >= target for m in range(n, 2 * n + 21))
        assert n == 1 or power_formula(n - 1, rate, claimed=0.9) < target


def test_dropout_increases_the_variance_and_vanishes_in_the_limit():
    complete = power_formula(80, 0.8, claimed=0.9)
    assert power_formula(80, 0.8, claimed=0.9, dropout_mean_days=100) < complete
    assert power_formula(80, 0.8, claimed=0.9, dropout_mean_days=1e9) == pytest.approx(
        power_normal(80, 0.8, claimed=0.9), abs=1e-6)
    assert sample_size_formula(0.8, dropout_mean_days=100) > sample_size_formula(0.8)


def test_formula_result_table_and_contract():
    res = claim_power([50, 100], [0.8, 0.85], method="formula")
    assert isinstance(res, PowerResult)
    assert list(res.table.columns) == ["n", "true_rate", "claimed", "day", "alpha", "method", "power", "mc_se",
                                       "n_sim", "mean_at_risk", "not_estimable"]
    assert len(res.table) == 4 and res.table["mc_se"].isna().all()
    assert res.table.loc[(res.table["n"] == 100) & (res.table["true_rate"] == 0.8), "power"].item() == pytest.approx(
        power_formula(100, 0.8))
    assert any("saw-tooth" in n for n in res.notes)
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
    if res.achieved:  # every candidate from n on reaches the target, the one before does not
        assert (sim.loc[sim["n"] >= res.n, "power"] >= 0.8).all()
        assert res.n == sim["n"].min() or sim.loc[sim["n"] < res.n].sort_values("n")["power"].iat[-1] < 0.8
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


def test_simulated_test_is_test_resolution_claim_on_the_first_n_untreated_episodes():
    # power_simulation computes claim_at_day once per study on time_to_resolution's untreated rows; this is what
    # test_resolution_claim does on study.subset(first n untreated episodes)
    study, _ = simulate_study(70, seed=5, untreated_share=0.85, untreated_resolved_by_42=0.7, horizon=98)
    ids = study.episodes.loc[study.episodes["modality"] == "untreated", "episode_id"].to_numpy()
    ttr = time_to_resolution(study, origin="first_contact").table.set_index("episode_id")
    for n in (12, 40):
        ref = test_resolution_claim(study.subset(ids[:n]), claimed=0.9, day=42, population="untreated",
                                    origin="first_contact", sensitivity=False, min_n=1)
        fast = claim_at_day(ttr.loc[ids[:n]], 0.9, 42, 0.05)
        assert (fast["n"], fast["events"]) == (ref.n, ref.events)
        assert fast["p_below"] == pytest.approx(ref.p_value_below, rel=1e-12)
        assert fast["p_above"] == pytest.approx(ref.p_value_above, rel=1e-12)


def _reject_region_by_hand(n, claimed=0.90, alpha=0.05):
    """Resolution counts k at which the claim test rejects 'at least `claimed` resolve', coded here from the
    test's definition (log-log scale; Greenwood's variance of log S for 1 - k/n is k / (n (n - k)))."""
    out = []
    for k in range(n + 1):
        s = 1 - k / n
        if k == 0:
            p = (1 - claimed) ** n  # no resolution: the exact bound
        elif k == n:
            p = 1.0
        else:
            se_u = np.sqrt(k / (n * (n - k))) / abs(np.log(s))
            p = stats.norm.cdf((np.log(-np.log(s)) - np.log(-np.log(1 - claimed))) / se_u)
        if p < alpha:
            out.append(k)
    return out


@pytest.mark.parametrize("n,true_rate", [(10, 0.70), (40, 0.75), (83, 0.80)])
def test_formula_power_is_the_binomial_mass_of_the_rejection_region_coded_by_hand(n, true_rate):
    region = _reject_region_by_hand(n)
    expected = stats.binom.pmf(region, n, true_rate).sum()
    if n == 10:
        assert region == list(range(0, 7)) and abs(expected - stats.binom.cdf(6, 10, 0.7)) < 1e-12  # 0.3504
    assert power_formula(n, true_rate) == pytest.approx(expected, abs=1e-12)


def test_sample_size_is_the_size_from_which_power_stays_above_target():
    n = sample_size_formula(0.80, power=0.80)
    power = [stats.binom.pmf(_reject_region_by_hand(m), m, 0.80).sum() for m in range(n - 1, 2 * n)]
    assert power[0] < 0.80 and min(power[1:]) >= 0.80
