"""Recurrence after resolution (backpain_outcomes.recurrence).

Hand-computed study (rule NRS <= 1 on 2 consecutive visits, gap 30 days, new episodes dated by onset):

* P1: episode A (visits 01-01 6, 01-08 4, 01-15 1, 01-22 0, 02-15 0) resolves 2023-01-15; episode B starts
  03-01, 45 days later: a recurrence at 45. B (03-03 7, 03-10 1, 03-17 1, 05-20 0) resolves 03-10; no later
  episode: censored at the last contact 05-20, 71 days.
* P2: episode C (01-02 5, 01-09 1, 01-16 1) resolves 01-09; episode D starts 01-25, 16 days later (< 30): the
  same episode continuing. D (01-26 4, 02-02 1, 02-09 0) resolves 02-02; E starts 05-03, 90 days later:
  a recurrence at 90. E (05-04 6, 05-11 5) does not resolve.
* P3: episode F (02-01 6, 02-08 0, 02-15 1, 03-10 0, 08-07 1) resolves 02-08: censored at 08-07, 180 days.
* P4: episode G (01-10 8, 01-17 7) does not resolve.

Periods at risk: 45 (event), 71, 90 (event), 180. Kaplan-Meier: at 45 n = 4, d = 1, S = 3/4; at 90 n = 2,
d = 1, S = 3/8. Greenwood Var(log S(120)) = 1/(4*3) + 1/(2*1) = 7/12; Var(log S(60)) = 1/12.
Influence on log S(120) (jump 1/12 at 45 with own term 1/3, jump 1/2 at 90 with own term 1): A 1/12 - 1/3 =
-1/4, B 1/12, D 1/12 + 1/2 - 1 = -5/12, F 1/12 + 1/2 = 7/12; patient sums P1 -1/6, P2 -5/12, P3 7/12;
robust Var = 1/36 + 25/144 + 49/144 = 13/24. At 60: A -1/4, B 1/12, D 1/12, F 1/12: P1 -1/6 -> 1/36 + 1/144
+ 1/144 = 1/24.
"""

import math

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from backpain_outcomes.loading import load_study
from backpain_outcomes.recurrence import (
    Recurrence,
    clustered_km_variance,
    recurrence,
    recurrence_from_intervals,
    recurrence_intervals,
)
from backpain_outcomes.simulate_recurrence import simulate_recurrence
from backpain_outcomes.survival import kaplan_meier

EPISODES = [("P1", "A", "2023-01-01"), ("P1", "B", "2023-03-01"), ("P2", "C", "2023-01-01"),
            ("P2", "D", "2023-01-25"), ("P2", "E", "2023-05-03"), ("P3", "F", "2023-02-01"),
            ("P4", "G", "2023-01-10")]
VISITS = {"A": [("01-01", 6), ("01-08", 4), ("01-15", 1), ("01-22", 0), ("02-15", 0)],
          "B": [("03-03", 7), ("03-10", 1), ("03-17", 1), ("05-20", 0)],
          "C": [("01-02", 5), ("01-09", 1), ("01-16", 1)],
          "D": [("01-26", 4), ("02-02", 1), ("02-09", 0)],
          "E": [("05-04", 6), ("05-11", 5)],
          "F": [("02-01", 6), ("02-08", 0), ("02-15", 1), ("03-10", 0), ("08-07", 1)],
          "G": [("01-10", 8), ("01-17", 7)]}


def hand_study():
    pid = {e: p for p, e, _ in EPISODES}
    scores = pd.DataFrame([(pid[e], e, f"2023-{d}", "nrs", s) for e, v in VISITS.items() for d, s in v],
                          columns=["patient_id", "episode_id", "date", "instrument", "score"])
    episodes = pd.DataFrame(EPISODES, columns=["patient_id", "episode_id", "onset_date"]).assign(arm="untreated")
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4"]})
    return load_study(patients=patients, episodes=episodes, scores=scores, today=pd.Timestamp("2030-01-01"))


def test_intervals_by_hand():
    t = recurrence_intervals(hand_study()).set_index("episode_id")
    assert t["status"].to_dict() == {"A": "recurrence", "B": "censored", "C": "continued within the gap",
                                     "D": "recurrence", "E": "not resolved", "F": "censored", "G": "not resolved"}
    assert t.loc[["A", "B", "D", "F"], "time"].tolist() == [45, 71, 90, 180]
    assert t.loc["A", "next_episode_id"] == "B" and t.loc["A", "resolution_date"] == pd.Timestamp("2023-01-15")
    assert t["at_risk"].sum() == 4 and t["recurred"].sum() == 2
    # a gap of 50 days: B (45 days after A) continues A; C -> D (16 days) still continues
    t50 = recurrence_intervals(hand_study(), gap=50).set_index("episode_id")
    assert t50.loc["A", "status"] == "continued within the gap" and t50.loc["D", "status"] == "recurrence"
    # dated by the first visit, B starts 03-03: 47 days after A's resolution
    assert recurrence_intervals(hand_study(), origin="first_contact").set_index("episode_id").loc["A", "time"] == 47


def test_estimate_and_clustered_se_by_hand():
    res = recurrence(hand_study(), day=[60, 120, 365])
    assert isinstance(res, Recurrence)
    t = res.table.set_index("day")
    assert t.loc[60, "cumulative_recurrence"] == pytest.approx(1 / 4)
    assert t.loc[120, "cumulative_recurrence"] == pytest.approx(5 / 8)
    assert t.loc[120, "se_greenwood"] == pytest.approx(3 / 8 * math.sqrt(7 / 12))
    assert t.loc[120, "se"] == pytest.approx(3 / 8 * math.sqrt(13 / 24))
    assert t.loc[60, "se"] == pytest.approx(3 / 4 * math.sqrt(1 / 24))
    assert t.loc[60, "se_greenwood"] == pytest.approx(3 / 4 * math.sqrt(1 / 12))
    # log-log interval of S with the robust variance: S^exp(-+z se/log S); cumulative recurrence 1 - S
    z = stats.norm.ppf(0.975)
    s, se_log = 3 / 8, math.sqrt(13 / 24)
    assert t.loc[120, "ci_low"] == pytest.approx(1 - s ** math.exp(z * se_log / math.log(s)))
    assert t.loc[120, "ci_high"] == pytest.approx(1 - s ** math.exp(-z * se_log / math.log(s)))
    assert (t.loc[120, "n_at_risk"], t.loc[120, "n_events"]) == (1, 2)
    assert np.isnan(t.loc[365, "cumulative_recurrence"])  # after the last follow-up (180 days)
    assert any("after the last follow-up" in n for n in res.notes)
    assert any("1 patient(s) contribute more than one period" in n for n in res.notes)
    assert any("1 resolution(s) were followed by a new episode within 30 days" in n for n in res.notes)
    assert (res.n_patients, res.n_periods, res.n_recurrences, res.max_periods_per_patient) == (3, 4, 2, 2)
    # first periods only: A (45, event), D (90, event), F (180): S(60) = 2/3, S(120) = 1/3
    assert t.loc[[60, 120], "first_period_recurrence"].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_clustered_variance_matches_r_survfit_robust():
    # R 4.2, survival 3.5-3: survfit(Surv(time, status) ~ 1, data = d, cluster = pid, conf.type = "log-log");
    # f$std.err (robust SE of S) at times 40 45 60 90 100 120 150:
    r_se = [0.08717798, 0.10198039, 0.09165151, 0.09797959, 0.14142136, 0.16000000, 0.14282857]
    pid = [1, 1, 2, 2, 3, 4, 5, 5, 6, 7]
    time = [40, 100, 60, 200, 90, 300, 45, 120, 365, 150]
    event = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1], bool)
    days = [40, 45, 60, 90, 100, 120, 150]
    surv = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    assert surv * np.sqrt(clustered_km_variance(time, event, pid, days)) == pytest.approx(r_se, abs=1e-8)
    # R's log-log lower limit at 60 with the robust SE: 0.48076248
    lo = 0.7 ** math.exp(-stats.norm.ppf(0.975) * (0.09165151 / 0.7) / math.log(0.7))
    assert lo == pytest.approx(0.48076248, abs=1e-6)


def test_one_period_per_patient_gives_greenwood():
    rng = np.random.default_rng(4)
    time = rng.integers(1, 400, 60).astype(float)
    event = rng.random(60) < 0.6
    km = kaplan_meier(time, event)
    robust = clustered_km_variance(time, event, np.arange(60), km["time"])
    assert np.sqrt(robust) == pytest.approx(km["se_log"].to_numpy(), rel=1e-10)
    # the same through recurrence(): the patients of the hand study with one period each
    study = hand_study()
    one = study.subset(["C", "D", "E", "F", "G"])
    t = recurrence(one, day=100).table
    assert t["se"].iat[0] == pytest.approx(t["se_greenwood"].iat[0])


def test_simulated_study_recovers_the_truth_within_the_ci():
    study, truth = simulate_recurrence(400, seed=1, recurrence_12m=0.3)
    res = recurrence(study, day=[180, 365])
    t = res.table.set_index("day")
    assert t.loc[365, "ci_low"] <= truth.recurrence_12m <= t.loc[365, "ci_high"]
    assert t.loc[180, "ci_low"] <= truth.cumulative_recurrence(180) <= t.loc[180, "ci_high"]
    assert res.max_periods_per_patient > 1


def test_result_contract_and_plot():
    res = recurrence(hand_study(), day=60)
    assert list(res.table.columns) == ["day", "cumulative_recurrence", "ci_low", "ci_high", "se", "se_greenwood",
                                       "ci_low_greenwood", "ci_high_greenwood", "n_at_risk", "n_events",
                                       "first_period_recurrence", "first_ci_low", "first_ci_high"]
    assert "Recurrence after resolution" in res.summary() and "<table" in res._repr_html_()
    assert isinstance(res.plot(), matplotlib.axes.Axes)
    with pytest.raises(AttributeError):
        res.table = None


def test_arguments_are_checked():
    study = hand_study()
    with pytest.raises(ValueError, match="gap"):
        recurrence(study, gap=0)
    with pytest.raises(ValueError, match="origin"):
        recurrence(study, origin="resolution")
    with pytest.raises(ValueError, match="alpha"):
        recurrence(study, alpha=2)
    with pytest.raises(TypeError, match="study must be a Study"):
        recurrence(pd.DataFrame())
    with pytest.raises(ValueError, match="recurrence cannot be estimated"):
        recurrence(study.subset(["E", "G"]))


def test_estimate_from_intervals_of_some_patients_is_the_estimate_of_those_patients():
    study = hand_study()
    intervals = recurrence_intervals(study)
    part = recurrence_from_intervals(intervals[intervals["patient_id"].isin(["P1", "P3"])], "nrs<=1 x2", 30,
                                     "onset", day=[60, 100])
    whole = recurrence(study.subset(["A", "B", "F"]), day=[60, 100])
    pd.testing.assert_frame_equal(part.table, whole.table)


def test_arguments_are_checked_and_counts_are_whole_numbers():
    from backpain_outcomes.recurrence import recurrence, recurrence_from_intervals, recurrence_intervals
    from backpain_outcomes.simulate_recurrence import simulate_recurrence

    study, _ = simulate_recurrence(60, seed=4, recurrence_12m=0.4)
    res = recurrence(study, day=[90, 365], min_n=1000)
    assert res.table["n_at_risk"].dtype.kind == "i" and res.table["n_events"].dtype.kind == "i"
    assert any("still at risk at day 90" in n for n in res.notes)  # min_n=1000 exceeds every count
    intervals = recurrence_intervals(study)
    with pytest.raises(ValueError, match="gap"):
        recurrence_from_intervals(intervals, "nrs<=1 x2", gap=0, origin="onset")
    with pytest.raises(ValueError, match="origin"):
        recurrence_from_intervals(intervals, "nrs<=1 x2", gap=30, origin="visit")
    with pytest.raises(ValueError, match="intervals must be"):
        recurrence_from_intervals(intervals.drop(columns="recurred"), "nrs<=1 x2", gap=30, origin="onset")
    with pytest.raises(ValueError, match="min_n"):
        recurrence(study, min_n=-1)
