"""Clinic benchmarks: observed key outcomes and their case-mix expectations, recomputed by hand."""

import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

import backpain_outcomes as bpo
from backpain_outcomes.benchmarking import outcome_at_day
from backpain_outcomes.casemix import _weighted_survival, benchmark_clinic
from backpain_outcomes.survival import kaplan_meier, km_at_days, km_median


@pytest.fixture(scope="module")
def c1(example_study):
    return benchmark_clinic(example_study, clinic="C1")


def test_improved_share_and_its_logistic_expectation(example_study, c1):
    near = outcome_at_day(example_study, "nrs", 42)
    mine = near["episode_id"].isin(example_study.episodes.query("clinic_id == 'C1'")["episode_id"])
    fit = smf.glm("y ~ baseline + C(chronicity) + age", near.assign(y=near["responder"].astype(float)),
                  family=sm.families.Binomial()).fit()
    p = fit.predict(near[mine])
    row = c1.table.set_index("outcome").loc["improved"]
    assert row["observed"] == near.loc[mine, "responder"].mean() and row["n"] == mine.sum()
    np.testing.assert_allclose(row["expected"], p.mean())
    np.testing.assert_allclose(row["expected_high"] - row["expected"], 1.959964 * np.sqrt((p * (1 - p)).sum()) / mine.sum(),
                               rtol=1e-6)
    assert c1.source == "all clinics"


def test_observed_median_is_the_clinic_kaplan_meier_median(example_study, c1):
    t = bpo.time_to_resolution(example_study).table
    own = t[t["episode_id"].isin(example_study.episodes.query("clinic_id == 'C1'")["episode_id"]) & t["at_risk"]]
    med = km_median(kaplan_meier(own["day"], own["resolved"], own["entry"]))
    row = c1.table.set_index("outcome").loc["median_days"]
    assert (row["observed"], row["ci_low"]) == med[:2]
    assert row["expected_low"] <= row["expected"] <= row["expected_high"]


def test_weighted_survival_with_unit_weights_is_kaplan_meier(example_study):
    t = bpo.time_to_resolution(example_study).table
    r = t[t["at_risk"]]
    grid = np.unique(r["day"])
    mine = _weighted_survival(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float),
                              np.ones(len(r)), grid)
    km = km_at_days(kaplan_meier(r["day"], r["resolved"], r["entry"]), grid, r["day"], r["entry"], r["resolved"])
    np.testing.assert_allclose(mine, 1 - km["cumulative_resolution"], atol=1e-12)
    # weights of 2 on every episode change nothing
    twice = _weighted_survival(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float),
                               np.full(len(r), 2.0), grid)
    np.testing.assert_allclose(twice, mine, atol=1e-12)


def test_whole_study_is_benchmarked_against_the_natural_course(example_study):
    b = benchmark_clinic(example_study)
    row = b.table.set_index("outcome").loc["score_at_day"]
    near = outcome_at_day(example_study, "nrs", 42)
    # Costa 2012: acute 52 -> 23, persistent 51 -> 33 (0-100) at week 6 = day 42
    ratio = near["chronicity"].map({"acute": 23 / 52, "subacute": 33 / 51, "chronic": 33 / 51})
    pred = near["baseline"] * ratio
    np.testing.assert_allclose(row["expected"], pred.mean())
    half = stats.norm.ppf(0.975) * np.std(near["score"] - pred, ddof=1) / np.sqrt(len(near))
    np.testing.assert_allclose(row["expected_high"] - row["expected"], half)
    assert b.source == "costa2012" and np.isnan(b.table.set_index("outcome").loc["median_days", "expected"])
    assert any("no published benchmark" in n for n in b.notes)


def test_unknown_clinic_names_the_choices(example_study):
    with pytest.raises(ValueError, match="C1, C2, C3"):
        benchmark_clinic(example_study, clinic="C9")


def test_the_plot_states_the_interval_level_asked_for(example_study):
    bench = bpo.benchmark_clinic(example_study, alpha=0.10)
    assert bench.alpha == 0.10
    legend = [t.get_text() for t in bench.plot().get_legend().get_texts()]
    assert "observed with its 90% CI" in legend
