"""Simulated studies with known confounding and drop-out (backpain_outcomes.simulate_methods)."""

import numpy as np
import pytest

from backpain_outcomes.simulate_methods import DEFAULT_EFFECTS, simulate_confounded


def test_study_matches_the_generating_table():
    study, truth = simulate_confounded(300, seed=2)
    ep = study.episodes.set_index("episode_id")
    gen = truth.episodes.set_index("episode_id")
    assert (ep.loc[gen.index, "modality"] == gen["modality"]).all()
    assert (ep.loc[gen.index, "chronicity"] == gen["chronicity"]).all()
    assert (ep.loc[gen.index, "baseline_nrs"] == gen["baseline"]).all()
    # the day-42 score makes an episode a responder exactly when the generator says so
    sc = study.scores[(study.scores["days_since_first_contact"] >= 39)].set_index("episode_id")["score"]
    drop = gen.loc[sc.index, "baseline"] - sc
    responder = (drop >= 2) & (drop >= 0.3 * gen.loc[sc.index, "baseline"])
    assert (responder == gen.loc[sc.index, "responder"]).all()
    assert gen["observed"].all() and len(sc) == 300


def test_truth_has_the_stated_effects_and_confounding():
    _, truth = simulate_confounded(50, seed=1)
    t = truth.rates.set_index("modality")
    assert t.loc["cupping", "rd"] == pytest.approx(0.0) and t.loc["deep_tissue", "rd"] > t.loc["dry_needling", "rd"] > 0
    # log-odds effect 0.8 moves a population share of about 0.59 by about 0.15
    assert t.loc["deep_tissue", "rd"] == pytest.approx(0.15, abs=0.02)
    _, truth = simulate_confounded(4000, seed=3)
    e = truth.episodes
    assert e.loc[e["modality"] != "untreated", "baseline"].mean() > e.loc[e["modality"] == "untreated", "baseline"].mean() + 0.3
    assert set(DEFAULT_EFFECTS) == set(t.index) - {"untreated"}


def test_informative_dropout_removes_day_42_visits_of_the_sicker():
    study, truth = simulate_confounded(2000, seed=5, dropout=1.5)
    e = truth.episodes
    assert 0.2 < (~e["observed"]).mean() < 0.6
    assert e.loc[e["observed"], "responder"].mean() > truth.responder_rate + 0.03
    assert study.scores.groupby("episode_id").size().min() == 2


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="effects must be a dict"):
        simulate_confounded(100, effects={"reiki": 1.0})
    with pytest.raises(ValueError, match="confounding"):
        simulate_confounded(100, confounding=-1)
    with pytest.raises(ValueError, match="n_patients"):
        simulate_confounded(5)
    assert np.isfinite(simulate_confounded(100, seed=1, confounding=0)[1].responder_rate)
