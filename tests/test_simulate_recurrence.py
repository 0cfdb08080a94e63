"""Simulated patients with several episodes and a known recurrence probability (backpain_outcomes.simulate_recurrence).

Truth by hand: recurrence_12m 0.3, gap 30: rate = -log(0.7) / 335 = 0.00106471 per day; F(365) = 0.3,
F(30) = 0, F(197.5) = 1 - exp(-0.00106471 * 167.5) = 1 - 0.7 ** 0.5 = 0.16334. With a gamma frailty of
variance 1 the first period's truth is 1 - 1 / (1 + rate * (t - 30)): at 197.5, 1 - 1 / (1 + 0.5 * -log 0.7)
= 1 - 1 / 1.178337 = 0.15135.
"""

import math

import numpy as np
import pytest

from backpain_outcomes.recurrence import recurrence_intervals
from backpain_outcomes.simulate_recurrence import RecurrenceTruth, simulate_recurrence


def test_truth_by_hand():
    _, truth = simulate_recurrence(20, seed=2, recurrence_12m=0.3, gap=30)
    assert isinstance(truth, RecurrenceTruth)
    assert truth.rate == pytest.approx(-math.log(0.7) / 335)
    assert truth.cumulative_recurrence([0, 30, 197.5, 365]) == pytest.approx([0, 0, 1 - 0.7 ** 0.5, 0.3])
    assert truth.first_period_recurrence([197.5]) == pytest.approx(truth.cumulative_recurrence([197.5]))
    _, frail = simulate_recurrence(20, seed=2, recurrence_12m=0.3, gap=30, frailty_variance=1.0)
    assert frail.first_period_recurrence([10, 197.5]) == pytest.approx([0, 0.15135], abs=5e-6)


def test_episodes_follow_the_definitions():
    study, truth = simulate_recurrence(150, seed=3, recurrence_12m=0.5, flare_share=0.3)
    t = recurrence_intervals(study).set_index("episode_id")
    tr = truth.episodes.set_index("episode_id")
    assert len(t) == len(tr) == len(study.episodes)
    # the analysis finds every simulated resolution, and flares are continuations, recurrences are not
    assert (t["resolved"] == tr["resolved"]).all()
    recorded = tr["next"] != "none"
    assert (t.loc[recorded & (tr["next"] == "flare"), "status"] == "continued within the gap").all()
    assert (t.loc[recorded & (tr["next"] == "recurrence"), "status"] == "recurrence").all()
    assert (t.loc[t["recurred"], "time"] > 30).all()
    assert study.episodes.groupby("patient_id").size().max() > 2


def test_seed_reproduces_and_arguments_are_checked():
    a, _ = simulate_recurrence(30, seed=5)
    b, _ = simulate_recurrence(30, seed=5)
    assert a.scores["score"].tolist() == b.scores["score"].tolist()
    assert np.isin(a.scores["instrument"], ["nrs"]).all()
    for kwargs, match in [({"recurrence_12m": 1.0}, "recurrence_12m"), ({"gap": 5}, "gap"),
                          ({"gap": 400}, "gap must be below 365"), ({"followup_days": 100}, "followup_days"),
                          ({"frailty_variance": -1}, "frailty_variance")]:
        with pytest.raises(ValueError, match=match):
            simulate_recurrence(10, seed=1, **kwargs)
