"""Confounding-adjusted modality comparisons (backpain_outcomes.adjusted).

Recovery of known effects over 500 simulated studies is in benchmarks/validate_iptw.py; here: the contract, the
balance table rechecked by hand from the returned weights, E-values from the published formula, and errors.
"""

import warnings

import matplotlib.axes
import numpy as np
import pytest

from backpain_outcomes.adjusted import WeightedComparison, weighted_comparison
from backpain_outcomes.evalue import e_value
from backpain_outcomes.simulate_methods import simulate_confounded


@pytest.fixture(scope="module")
def confounded():
    return simulate_confounded(600, seed=11)


@pytest.fixture(scope="module")
def ate(confounded):
    return weighted_comparison(confounded[0], day=42, origin="first_contact")


def test_table_and_contract(ate):
    assert isinstance(ate, WeightedComparison)
    t = ate.table.set_index("modality")
    assert set(t.index) == {"deep_tissue", "dry_needling", "cupping"} and set(t["reference"]) == {"untreated"}
    for col in ("rd", "rd_ci_low", "rd_ci_high", "rr", "e_value", "e_value_ci", "rd_dr", "p_holm", "ess"):
        assert t[col].notna().all(), col
    assert (t["rd_ci_low"] < t["rd"]).all() and (t["rd"] < t["rd_ci_high"]).all()
    np.testing.assert_allclose(t["rd"], t["rate"] - t["rate_reference"])
    assert ate.converged and ate.estimand == "ATE"
    assert isinstance(ate.plot(), matplotlib.axes.Axes) and isinstance(ate.plot_effects(), matplotlib.axes.Axes)
    assert "Deep tissue" in ate.summary() and "<table" in ate._repr_html_()
    with pytest.raises(AttributeError):
        ate.table = None


def test_weighting_removes_the_confounding_by_baseline(ate, confounded):
    # treatment is more likely with a worse baseline, responding less likely: the crude difference is too low
    truth = confounded[1].rates.set_index("modality")
    t = ate.table.set_index("modality")
    assert (t["rd_crude"] < truth.loc[t.index, "rd"]).all()
    assert (t["max_abs_smd_after"] < t["max_abs_smd_before"]).all()
    base = ate.balance[ate.balance["covariate"] == "baseline NRS"]
    assert (base["smd_before"] > 0.2).all() and (base["smd_after"].abs() < base["smd_before"]).all()


def test_balance_rechecked_by_hand_from_the_weights(ate, confounded):
    study = confounded[0]
    w = ate.weights.merge(study.episodes[["episode_id", "baseline_nrs"]], on="episode_id")
    dt, un = w[w["modality"] == "deep_tissue"], w[w["modality"] == "untreated"]
    sd = np.sqrt((dt["baseline_nrs"].var() + un["baseline_nrs"].var()) / 2)
    before = (dt["baseline_nrs"].mean() - un["baseline_nrs"].mean()) / sd
    after = (np.average(dt["baseline_nrs"], weights=dt["weight"])
             - np.average(un["baseline_nrs"], weights=un["weight"])) / sd
    row = ate.balance[(ate.balance["modality"] == "deep_tissue") & (ate.balance["covariate"] == "baseline NRS")]
    assert row["smd_before"].item() == pytest.approx(before)
    assert row["smd_after"].item() == pytest.approx(after)
    # ATE weights are 1 / propensity of the episode's own modality
    np.testing.assert_allclose(ate.weights["weight"], 1 / ate.weights["propensity"])
    p = ate.propensity.drop(columns="episode_id").to_numpy()
    np.testing.assert_allclose(p.sum(1), 1)


def test_e_values_follow_the_published_formula(ate):
    for r in ate.table.itertuples():
        ev = e_value(r.rr, r.rr_ci_low, r.rr_ci_high)
        assert r.e_value == pytest.approx(ev.e_value) and r.e_value_ci == pytest.approx(ev.e_value_ci)
        rr = r.rr if r.rr >= 1 else 1 / r.rr
        assert r.e_value == pytest.approx(rr + np.sqrt(rr * (rr - 1)))


def test_att_trim_and_resolved_outcome(confounded, example_study):
    att = weighted_comparison(confounded[0], day=42, origin="first_contact", estimand="ATT", trim=0.01)
    t = att.table.set_index("modality")
    np.testing.assert_allclose(t["rate"], t["rate_crude"])  # the treated keep weight 1
    assert "weight_deep_tissue" in att.weights and any("truncated" in n for n in att.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes as a warning: it is in notes
        res = weighted_comparison(example_study, outcome="resolved", reference="none", covariates=("age", "baseline"))
    assert res.reference == "untreated" and res.outcome == "resolved"
    assert any("resolved by day 42" in n for n in res.notes)


def test_notes_state_positivity_and_complete_cases(example_study):
    res = weighted_comparison(example_study)
    text = " ".join(res.notes)
    assert "complete cases" in text and "positivity" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"estimand": "ATC"}, "estimand='ATC' is not valid"),
    ({"trim": 0.7}, "trim must be a quantile share below 0.5"),
    ({"covariates": ("agee",)}, "did you mean 'age'"),
    ({"reference": "reiki"}, "reference"),
    ({"outcome": "pain"}, "outcome='pain' is not valid"),
    ({"min_n": 10_000}, "fewer than min_n=10000"),
    ({"day": "six weeks"}, "day must be a number"),
    ({"instrument": "vass"}, "instrument"),
])
def test_arguments_are_checked(example_study, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        weighted_comparison(example_study, **kwargs)


def test_study_is_required():
    with pytest.raises(TypeError, match="study must be a Study"):
        weighted_comparison("data.csv")
