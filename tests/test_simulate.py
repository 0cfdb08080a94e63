"""Simulated studies: known treatment status, the truth they were built from, checked arguments, calibration."""

import numpy as np
import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.claims import test_resolution_claim
from backpain_outcomes.reference import reference_curves
from backpain_outcomes.simulate import SimulationTruth, simulate_study, write_study


def test_untreated_episodes_are_declared(tmp_path):
    study, truth, frames = simulate_study(120, seed=1, untreated_share=0.3, return_frames=True)
    assert set(frames["episodes"]["arm"]) == {"untreated", "treated"}
    status = study.episodes.set_index("episode_id")["treatment_status"]
    true_mod = truth.episodes.set_index("episode_id")["modality"]
    assert (status[true_mod == "untreated"] == "untreated").all()
    assert "unknown" not in set(study.episodes["modality"])
    write_study(frames, tmp_path)  # round trip through files keeps the declaration
    assert (bpo.load_study(tmp_path, today=pd.Timestamp("2100-01-01")).episodes["treatment_status"]
            == study.episodes["treatment_status"]).all()


def test_a_world_without_treatment_has_no_sessions():
    study, truth = simulate_study(40, seed=3, untreated_share=1.0)
    assert len(study.sessions) == 0
    assert set(study.episodes["treatment_status"]) == {"untreated"}
    assert set(truth.episodes["modality"]) == {"untreated"}


def test_untreated_resolved_by_42_is_the_first_contact_truth():
    _, truth = simulate_study(100, seed=2, untreated_resolved_by_42=0.6)
    assert truth.untreated_resolved_by_42 == pytest.approx(0.6)
    fc = truth.cumulative_resolution(day=42, origin="first_contact", n_mc=40000)["true_cumulative_resolution"].item()
    assert abs(fc - 0.6) < 0.01  # Monte Carlo SE about 0.003
    onset = truth.cumulative_resolution(day=42)["true_cumulative_resolution"].item()  # default origin: onset
    assert onset < fc  # from onset, day 42 comes earlier in the course of each episode
    _, computed = simulate_study(100, seed=2)
    direct = computed.cumulative_resolution(day=[42], origin="first_contact", n_mc=20000)
    assert computed.untreated_resolved_by_42 == pytest.approx(direct["true_cumulative_resolution"].item())


def test_truth_accepts_rule_strings_and_checks_arguments():
    _, truth = simulate_study(50, seed=3)
    assert isinstance(truth, SimulationTruth)
    a = truth.cumulative_resolution("nrs<=1 x2", day=[14, 42], modality="none", n_mc=5000)
    b = truth.cumulative_resolution(bpo.DEFAULT_RULE, day=[14, 42], modality="untreated", n_mc=5000)
    pd.testing.assert_frame_equal(a, b)
    for kwargs, argument in [({"day": "42"}, "day"), ({"modality": "massage"}, "modality"),
                             ({"origin": "contact"}, "origin"), ({"rule": "nrs<1"}, "rule"),
                             ({"chronicity": "old"}, "chronicity"), ({"relapse": "x"}, "relapse")]:
        with pytest.raises((ValueError, TypeError), match=argument):
            truth.cumulative_resolution(**kwargs)


@pytest.mark.parametrize("kwargs,argument", [
    ({"n_patients": 0}, "n_patients"), ({"n_patients": "10"}, "n_patients"), ({"untreated_share": 20}, "untreated_share"),
    ({"untreated_resolved_by_42": 90}, "untreated_resolved_by_42"), ({"horizon": -5}, "horizon"),
    ({"dropout_mean_days": 0}, "dropout_mean_days"), ({"chronicity_shares": {"acute": 1.0}}, "chronicity_shares"),
    ({"n_clinics": 0}, "n_clinics"), ({"therapists_per_clinic": 1.5}, "therapists_per_clinic")])
def test_simulation_arguments_are_checked(kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as err:
        simulate_study(**{"n_patients": 20, "seed": 1, **kwargs})
    assert argument in str(err.value)


def test_write_study_format_is_checked(tmp_path):
    _, _, frames = simulate_study(10, seed=1, return_frames=True)
    with pytest.raises(ValueError, match="fmt"):
        write_study(frames, tmp_path, fmt="json")


def test_reference_curves_source_is_checked():
    assert set(reference_curves()["source"]) == {"costa2012", "wallwork2024"}
    with pytest.raises(ValueError, match="did you mean 'costa2012'"):
        reference_curves("costa2021")


@pytest.mark.slow
def test_claim_test_is_calibrated_at_the_boundary():
    # 60 studies where the truth is exactly the claim (0.90 by day 42 from first contact): the 95% CI covers the
    # truth in about 95% of studies and H0 p >= 0.90 is rejected in about 5% (benchmarks/calibrate_claim.py runs
    # 1000 studies). Bounds: binomial(60, 0.95) is below 51 with probability < 0.001.
    cover, reject = [], []
    for rep in range(60):
        study, truth = simulate_study(600, seed=10_000 + rep, untreated_share=0.5, untreated_resolved_by_42=0.90)
        c = test_resolution_claim(study, origin="first_contact", sensitivity=False)
        cover.append(c.ci_low <= truth.untreated_resolved_by_42 <= c.ci_high)
        reject.append(c.p_value_below < 0.05)
    assert np.sum(cover) >= 51 and np.sum(reject) <= 9
