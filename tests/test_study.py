"""Study: treatment status known or unknown, flow counts, same-day visits, subsets keep what was loaded."""

import pandas as pd
import pytest

import backpain_outcomes as bpo

SCORES = pd.DataFrame({
    "patient_id": ["p1", "p1", "p2", "p2", "p3", "p3", "p3"],
    "episode_id": ["e1", "e1", "e2", "e2", "e3", "e3", "e3"],
    "date": ["2024-01-02", "2024-01-20", "2024-01-03", "2024-02-01", "2024-01-05", "2024-01-05", "2024-02-05"],
    "instrument": ["nrs"] * 7,
    "score": [7, 3, 6, 5, 8, 6, 2],
})
SESSIONS = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "episode_id": ["e1", "e1", "e2"],
                         "session_date": ["2024-01-02", "2024-01-09", "2024-01-03"],
                         "modality": ["Deep tissue massage", "deep tissue", "No treatment"]})


def load(**kw):
    return bpo.load_study(today="2026-01-01", **kw)


def test_scores_alone_give_unknown_status_never_untreated():
    study = load(scores=SCORES)
    assert set(study.episodes["modality"]) == {"unknown"}
    assert set(study.episodes["treatment_status"]) == {"unknown"}
    flow = study.flow().set_index("stage")["n"]
    assert flow["episodes with treatment status unknown"] == 3
    assert flow["episodes with treatment status untreated"] == 0


def test_declared_untreated_without_sessions():
    study = load(scores=SCORES, no_sessions="untreated")
    assert set(study.episodes["modality"]) == {"untreated"}


def test_no_treatment_rows_and_uncovered_episodes():
    study = load(scores=SCORES, sessions=SESSIONS)
    mod = study.episodes.set_index("episode_id")["modality"]
    assert mod["e1"] == "deep_tissue"     # both sessions deep tissue (two spellings)
    assert mod["e2"] == "untreated"       # a session row that records no treatment
    assert mod["e3"] == "unknown"         # not covered by the sessions table, not declared
    assert study.episodes.set_index("episode_id").loc["e2", "n_sessions"] == 0
    flow = study.flow()
    read = flow[(flow["stage"] == "rows read") & (flow["table"] == "sessions")]["n"].item()
    used = flow[(flow["stage"] == "rows used") & (flow["table"] == "sessions")]["n"].item()
    assert read == used == 3              # the "no treatment" row is used: it declares the status


def test_arm_declares_untreated():
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
                             "onset_date": ["2023-12-20"] * 3, "arm": ["treated", "treated", "Natural course"]})
    study = load(scores=SCORES, sessions=SESSIONS.iloc[:2], episodes=episodes)
    mod = study.episodes.set_index("episode_id")["modality"]
    assert (mod["e1"], mod["e2"], mod["e3"]) == ("deep_tissue", "unknown", "untreated")


def test_same_day_scores_are_counted_in_the_flow_and_kept_by_subset():
    study = load(scores=SCORES)
    assert study.same_day_scores["row"].tolist() == [6, 7]   # lines 6 and 7 of a CSV export (header = 1)
    flow = study.flow().set_index("stage")["n"]
    assert flow["score rows combined into same-day visits (mean)"] == 2
    assert flow["same-day visits they form"] == 1
    sub = study.subset(["e3"])
    assert len(sub.same_day_scores) == 2 and sub.no_sessions == study.no_sessions
    assert len(study.subset(["e1"]).same_day_scores) == 0


def test_no_sessions_argument_is_checked():
    with pytest.raises(ValueError, match="no_sessions"):
        load(scores=SCORES, no_sessions="none")


def test_onset_origin_error_names_the_alternative():
    study = load(scores=SCORES)
    with pytest.raises(ValueError, match="first_contact"):
        study.analysis_frame("nrs")
    assert study.analysis_frame("NPRS", origin="first_contact")["day"].max() == 31


def test_arm_treated_overrides_the_no_sessions_declaration_and_conflicts_are_noted():
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
                             "onset_date": ["2023-12-20"] * 3, "arm": ["Untreated", "treated", "sham"]})
    sessions = SESSIONS.iloc[:2]                          # e1 has two deep-tissue sessions
    study = load(scores=SCORES, sessions=sessions, episodes=episodes, no_sessions="untreated")
    ep = study.episodes.set_index("episode_id")
    assert ep.loc["e1", "treatment_status"] == "treated"          # sessions win over the arm
    assert (ep.loc["e2", "modality"], ep.loc["e2", "treatment_status"]) == ("unknown", "treated")
    assert ep.loc["e3", "treatment_status"] == "untreated"        # 'sham' says nothing; the declaration applies
    text = " ".join(study.notes)
    assert "1 episode(s) declared untreated" in text and "'sham'" in text


def test_control_is_not_read_as_untreated():
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
                             "onset_date": ["2023-12-20"] * 3, "arm": ["control"] * 3})
    study = load(scores=SCORES, episodes=episodes)
    assert set(study.episodes["treatment_status"]) == {"unknown"}
