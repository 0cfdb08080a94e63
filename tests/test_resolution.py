"""Event days per episode (visits, sustained runs, relapse) and the cumulative resolution curves."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

import backpain_outcomes as bpo
from backpain_outcomes.resolution import ResolutionCurve, TimeToResolution, episode_events, resolution_curve, time_to_resolution


def frame(*episodes):
    rows = [(eid, d, s) for eid, pts in episodes for d, s in pts]
    return pd.DataFrame(rows, columns=["episode_id", "day", "score"])


def test_event_day_is_first_of_first_sustained_run():
    # hand-computed: NRS <= 1 on 2 consecutive visits
    f = frame(("a", [(0, 7), (7, 1), (14, 3), (21, 1), (28, 0), (35, 4)]),   # run starts day 21
              ("b", [(0, 6), (10, 1)]),                                       # incomplete run: censored day 10
              ("c", [(3, 1), (9, 0), (15, 5)]),                               # resolved at entry
              ("d", [(5, 8)]),                                                # single visit
              ("e", [(0, 6), (5, 2), (9, 1), (12, 1), (20, 1)]))              # day 9
    ev = episode_events(f, bpo.Resolution("nrs", max_score=1, sustained=2)).set_index("episode_id")
    assert ev["day"].to_dict() == {"a": 21, "b": 10, "c": 3, "d": 5, "e": 9}
    assert ev["resolved"].to_dict() == {"a": True, "b": False, "c": False, "d": False, "e": True}
    assert ev["at_risk"].to_dict() == {"a": True, "b": True, "c": False, "d": False, "e": True}
    assert ev.loc["c", "status"] == "resolved at entry" and ev.loc["d", "status"] == "single visit"
    assert ev.loc["a", "relapsed"] and ev.loc["a", "relapse_day"] == 35
    undo = episode_events(f, "nrs<=1 x2", relapse="undo").set_index("episode_id")
    assert not undo.loc["a", "resolved"] and undo.loc["a", "day"] == 35
    assert undo.loc["e", "day"] == 9


def test_relative_and_mcid_rules():
    f = frame(("a", [(0, 8), (7, 6), (14, 5), (21, 3)]), ("z", [(0, 0), (7, 0)]))
    rel = episode_events(f, bpo.Resolution("nrs", min_relative_drop=0.5)).set_index("episode_id")
    assert rel.loc["a", "day"] == 21 and rel.loc["a", "resolved"]
    assert not rel.loc["z", "at_risk"]  # baseline 0: relative change undefined
    # MCID (Ostelo 2008): 2 points and 30%: 8 -> 6 is 25%, 8 -> 5 is 37.5% and 3 points
    assert episode_events(f, "nrs mcid").set_index("episode_id").loc["a", "day"] == 14
    assert episode_events(f, "nrs mcid(either)").set_index("episode_id").loc["a", "day"] == 7
    assert repr(bpo.Resolution("nrs", max_score=1, sustained=2)) == "NRS <= 1 on 2 consecutive visits"


def test_same_day_measurements_are_one_visit():
    # by hand: day 7 has 1 and 3 -> mean 2 (fails <=1), min 1 (meets), max 3 (fails)
    f = frame(("a", [(0, 6), (7, 1), (7, 3), (14, 1), (21, 0)]))
    mean = episode_events(f, "nrs<=1 x2").iloc[0]
    assert mean["day"] == 14 and mean["n_visits"] == 4 and mean["n_measurements"] == 5 and mean["n_combined"] == 1
    assert episode_events(f, "nrs<=1 x2 same day min").iloc[0]["day"] == 7
    assert episode_events(f, bpo.Resolution("nrs", max_score=1, sustained=2, same_day="max")).iloc[0]["day"] == 14
    # "x2" counts distinct days: two measurements on one day are not two visits
    g = frame(("b", [(0, 6), (7, 1), (7, 1)]))
    b = episode_events(g, "nrs<=1 x2").iloc[0]
    assert not b["resolved"] and b["at_risk"] and b["day"] == 7


def test_same_day_repeats_give_the_estimate_of_the_collapsed_study(sim):
    study, _ = sim
    sc = study.scores[study.scores["instrument"] == "nrs"]
    f = pd.DataFrame({"episode_id": sc["episode_id"], "day": sc["days_since_first_contact"], "score": sc["score"]})
    rng = np.random.default_rng(0)
    dup = f.sample(frac=0.3, random_state=1)
    jitter = np.clip(dup["score"] + rng.choice([-1, 1], len(dup)), 0, 10)
    # the duplicated rows and their twins: replace each pair by its mean in the collapsed version
    repeated = pd.concat([f, dup.assign(score=jitter)])
    collapsed = repeated.groupby(["episode_id", "day"], as_index=False)["score"].mean()
    a = episode_events(repeated, "nrs<=1 x2")
    b = episode_events(collapsed, "nrs<=1 x2")
    cols = ["episode_id", "entry", "day", "resolved", "at_risk", "n_visits"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    assert a["n_combined"].sum() == len(dup) and b["n_combined"].sum() == 0


def test_sustained_days_needs_a_qualifying_run_spanning_the_days():
    f = frame(("a", [(0, 6), (7, 1), (14, 1), (21, 1), (28, 5)]),   # 7..21 spans 14 days: event day 7
              ("b", [(0, 6), (7, 1), (14, 1), (18, 4), (30, 1)]),   # 7..14 only 7 days, broken at 18: censored
              ("c", [(0, 6), (7, 1), (12, 1)]))                      # no visit 14 days after: censored
    ev = episode_events(f, "nrs<=1 for 14 days").set_index("episode_id")
    assert ev["resolved"].to_dict() == {"a": True, "b": False, "c": False}
    assert ev.loc["a", "day"] == 7 and ev.loc["b", "day"] == 30 and ev.loc["c", "day"] == 12
    both = episode_events(f, "nrs<=1 x4 for 14 days").set_index("episode_id")
    assert not both.loc["a", "resolved"]  # 3 qualifying visits only


def test_entry_and_event_never_coincide(sim):
    study, _ = sim
    t = time_to_resolution(study, "nrs<=1", origin="first_contact").table
    r = t[t["at_risk"]]
    assert (r["day"] > r["entry"]).all()
    assert (t.loc[t["censored_reason"] == "resolved at entry", "at_risk"] == False).all()  # noqa: E712


def test_time_to_resolution_is_a_result(sim):
    study, _ = sim
    t = time_to_resolution(study, "NRS <= 1 x2")
    assert isinstance(t, TimeToResolution) and t.rule == bpo.DEFAULT_RULE and t.origin == "onset"
    assert {"modality", "treatment_status", "entry", "day", "resolved", "n_visits"} <= set(t.table.columns)
    assert "Time to resolution" in t.summary()
    with pytest.raises(AttributeError):
        t.rule = "nrs<=2"


def test_resolution_curve_on_study_equals_km_of_event_table(sim):
    study, _ = sim
    with pytest.warns(bpo.SmallSampleWarning, match="at risk"):  # some modalities have few early episodes
        curve = resolution_curve(study, by="modality", origin="onset")
    assert isinstance(curve, ResolutionCurve)
    ev = curve.events
    g = ev[(ev["modality"] == "untreated") & ev["at_risk"]]
    sf = SurvfuncRight(g["day"], g["resolved"].astype(int), entry=g["entry"])
    tab = curve.table[curve.table["modality"] == "untreated"]
    np.testing.assert_allclose(tab["cumulative_resolution"], 1 - sf.surv_prob, atol=1e-12)
    assert {"n_at_risk", "n_events", "ci_low", "ci_high"} <= set(tab.columns)
    assert (tab["ci_low"].dropna() <= tab["cumulative_resolution"][tab["ci_low"].notna()] + 1e-12).all()
    assert any("at risk" in n for n in curve.notes)


def test_resolution_curve_at_days_and_plot(sim):
    import matplotlib.pyplot as plt
    study, _ = sim
    curve = resolution_curve(study, "nrs<=1 x2", by=["treatment_status"], day=[42, 84], min_n=1)
    assert curve.table["day"].tolist() == [42, 84] * 2  # treated, untreated
    full = resolution_curve(study, "nrs<=1 x2", by="treatment_status", min_n=1).table
    for status, g in curve.table.groupby("treatment_status"):
        steps = full[(full["treatment_status"] == status) & (full["day"] <= 42)]
        assert g.iloc[0]["cumulative_resolution"] == pytest.approx(steps["cumulative_resolution"].iloc[-1])
    ax = curve.plot(claimed=0.9)
    texts = [t.get_text() for t in ax.texts]
    assert "Untreated" in texts and "Number at risk" in texts and " day 42" in texts
    assert any("95% CI" in t.get_text() for t in ax.get_legend().get_texts())
    plt.close("all")


def test_onset_origin_requires_known_onsets(tmp_path):
    (tmp_path / "scores.csv").write_text("patient_id,date,instrument,score\np1,2024-01-01,nrs,7\n"
                                         "p1,2024-01-09,nrs,1\np1,2024-01-19,nrs,0\n")
    study = bpo.load_study(tmp_path)
    with pytest.raises(ValueError, match="first_contact"):
        time_to_resolution(study)
    t = time_to_resolution(study, origin="first_contact").table
    assert t["day"].tolist() == [8.0] and t["resolved"].tolist() == [True]


@pytest.mark.parametrize("func,kwargs,argument", [
    (time_to_resolution, {"rule": "nrs<<1"}, "rule"), (time_to_resolution, {"rule": 3}, "rule"),
    (time_to_resolution, {"origin": "onsett"}, "origin"), (time_to_resolution, {"relapse": "drop"}, "relapse"),
    (resolution_curve, {"by": "modalty"}, "by"), (resolution_curve, {"day": "42"}, "day"),
    (resolution_curve, {"day": -1}, "day"), (resolution_curve, {"alpha": 1.5}, "alpha"),
    (resolution_curve, {"min_n": 0}, "min_n"), (resolution_curve, {"origin": "first contact"}, "origin"),
    (resolution_curve, {"relapse": 1}, "relapse")])
def test_arguments_are_checked(sim, func, kwargs, argument):
    study, _ = sim
    with pytest.raises((ValueError, TypeError)) as err:
        func(study, **kwargs)
    assert argument in str(err.value)
    with pytest.raises(TypeError, match="study"):
        func(study.episodes)
