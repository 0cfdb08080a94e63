"""Resolution rules, event days and the delayed-entry Kaplan-Meier estimator."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

import backpain_outcomes as bpo
from backpain_outcomes.resolution import episode_events
from backpain_outcomes.survival import kaplan_meier
from backpain_outcomes.survival import km_median as _median


def km_data(seed=1, n=60):
    rng = np.random.default_rng(seed)
    entry = rng.integers(0, 20, n).astype(float)
    time = entry + rng.integers(1, 40, n)
    event = rng.random(n) < 0.7
    return time, event, entry


def test_km_matches_r_survfit_loglog():
    # R 4.x survival: survfit(Surv(entry, time, event) ~ 1, conf.type = "log-log") on km_data(1);
    # summary(f) rows 1, 6, 21, 26, 31: time, n.risk, surv, std.err, lower, upper.
    r = np.array([
        [3, 11, 0.9090909090909091, 0.0866784172041448, 0.50808020576992974, 0.986673822667823],
        [18, 44, 0.7788958297989222, 0.0893232260030911, 0.54102030659753109, 0.903352198887830],
        [36, 23, 0.4262608838667385, 0.0767332449185043, 0.27534758913207047, 0.569060714544744],
        [44, 13, 0.2392280470680675, 0.0637144045555286, 0.12741298068292470, 0.370469489045562],
        [49, 2, 0.0354411921582322, 0.0331803954613966, 0.00307208604297392, 0.145424868292850]])
    km = kaplan_meier(*km_data(1))
    got = km.iloc[[0, 5, 20, 25, 30]][["time", "n_at_risk", "survival", "se", "surv_low", "surv_high"]]
    np.testing.assert_allclose(got.to_numpy(float), r, rtol=0, atol=1e-12)
    # print(f): median 34, 0.95LCL 24, 0.95UCL 39
    assert _median(km) == (34.0, 24.0, 39.0)


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_km_matches_statsmodels_with_ties_censoring_and_entry(seed):
    time, event, entry = km_data(seed, n=150)
    km = kaplan_meier(time, event, entry)
    sf = SurvfuncRight(time, event, entry=entry)
    np.testing.assert_allclose(km["time"], sf.surv_times)
    np.testing.assert_allclose(km["survival"], sf.surv_prob, atol=1e-12)
    np.testing.assert_allclose(km["n_at_risk"], sf.n_risk)
    ok = km["survival"] > 0
    np.testing.assert_allclose(km["se"][ok], sf.surv_prob_se[ok], atol=1e-12)


def frame(*episodes):
    rows = [(eid, d, s) for eid, pts in episodes for d, s in pts]
    return pd.DataFrame(rows, columns=["episode_id", "day", "score"])


def test_event_day_is_first_of_first_sustained_run():
    # hand-computed: NRS <= 1 on 2 consecutive visits
    f = frame(("a", [(0, 7), (7, 1), (14, 3), (21, 1), (28, 0), (35, 4)]),   # run starts day 21
              ("b", [(0, 6), (10, 1)]),                                       # incomplete run: censored day 10
              ("c", [(3, 1), (9, 0), (15, 5)]),                               # resolved at entry
              ("d", [(5, 8)]),                                                # single measurement
              ("e", [(0, 6), (5, 2), (9, 1), (12, 1), (20, 1)]))              # day 9
    ev = episode_events(f, bpo.Resolution("nrs", max_score=1, sustained=2)).set_index("episode_id")
    assert ev["day"].to_dict() == {"a": 21, "b": 10, "c": 3, "d": 5, "e": 9}
    assert ev["resolved"].to_dict() == {"a": True, "b": False, "c": False, "d": False, "e": True}
    assert ev["at_risk"].to_dict() == {"a": True, "b": True, "c": False, "d": False, "e": True}
    assert ev.loc["a", "relapsed"] and ev.loc["a", "relapse_day"] == 35
    undo = episode_events(f, bpo.Resolution("nrs", max_score=1, sustained=2), relapse="undo").set_index("episode_id")
    assert not undo.loc["a", "resolved"] and undo.loc["a", "day"] == 35
    assert undo.loc["e", "day"] == 9


def test_relative_and_mcid_rules():
    f = frame(("a", [(0, 8), (7, 6), (14, 5), (21, 3)]), ("z", [(0, 0), (7, 0)]))
    rel = episode_events(f, bpo.Resolution("nrs", min_relative_drop=0.5)).set_index("episode_id")
    assert rel.loc["a", "day"] == 21 and rel.loc["a", "resolved"]
    assert not rel.loc["z", "at_risk"]  # baseline 0: relative change undefined
    # MCID (Ostelo 2008): 2 points and 30%: 8 -> 6 is 25%, 8 -> 5 is 37.5% and 3 points
    both = episode_events(f, bpo.Resolution("nrs", mcid=True)).set_index("episode_id")
    assert both.loc["a", "day"] == 14
    either = episode_events(f, bpo.Resolution("nrs", mcid="either")).set_index("episode_id")
    assert either.loc["a", "day"] == 7
    assert repr(bpo.Resolution("nrs", max_score=1, sustained=2)) == "NRS <= 1 on 2 consecutive visits"


def test_resolution_curve_on_study_equals_km_of_event_table(sim):
    study, _ = sim
    with pytest.warns(bpo.SmallSampleWarning, match="at risk"):  # some modalities have few early episodes
        curve = bpo.resolution_curve(study, by="modality", origin="onset")
    ev = curve.events
    g = ev[(ev["modality"] == "untreated") & ev["at_risk"]]
    sf = SurvfuncRight(g["day"], g["resolved"].astype(int), entry=g["entry"])
    tab = curve.table[curve.table["modality"] == "untreated"]
    np.testing.assert_allclose(tab["cumulative_resolution"], 1 - sf.surv_prob, atol=1e-12)
    assert {"n_at_risk", "n_events", "ci_low", "ci_high"} <= set(tab.columns)
    assert (tab["ci_low"].dropna() <= tab["cumulative_resolution"][tab["ci_low"].notna()] + 1e-12).all()


def test_onset_origin_requires_known_onsets(tmp_path):
    (tmp_path / "scores.csv").write_text("patient_id,date,instrument,score\np1,2024-01-01,nrs,7\n"
                                         "p1,2024-01-09,nrs,1\np1,2024-01-19,nrs,0\n")
    study = bpo.load_study(tmp_path)
    with pytest.raises(ValueError, match="first_contact"):
        bpo.time_to_resolution(study)
    t = bpo.time_to_resolution(study, origin="first_contact")
    assert t["day"].tolist() == [8.0] and t["resolved"].tolist() == [True]
