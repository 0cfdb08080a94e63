"""Study: treatment status known or unknown, flow counts, same-day visits, subsets keep what was loaded."""

from contextlib import nullcontext

import numpy as np
import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.exceptions import ExcludedRowsWarning
from backpain_outcomes.study_tables import BLOCK, days_between, in_order, sort_order

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


def test_subset_of_no_episode_is_an_empty_study_with_the_same_columns():
    # subset([]) used to fail with a TypeError; the package's callers (registry partitions, the clinic report)
    # expect an empty Study. Expected by hand: no rows in any table, the same columns and dtypes as the study's
    # tables, the read counts and exclusions kept as loaded (as for any subset), 0 patients and episodes in the flow.
    study = load(scores=SCORES, sessions=SESSIONS)
    for ids in ([], pd.Index([], dtype=object), np.array([], dtype=object)):
        empty = study.subset(ids)
        for name in ("patients", "episodes", "scores", "sessions"):
            got, whole = getattr(empty, name), getattr(study, name)
            assert len(got) == 0 and len(whole) > 0, name
            assert list(got.columns) == list(whole.columns), name
            assert list(map(str, got.dtypes)) == list(map(str, whole.dtypes)), name
        assert len(empty.same_day_scores) == 0 and empty.rows_read == study.rows_read
        flow = empty.flow().set_index("stage")["n"]
        assert flow["patients"] == 0 and flow["episodes"] == 0 and flow["episodes with scores"] == 0
        assert empty.instruments == [] and "0 patients, 0 episodes" in empty.summary()
        with pytest.raises(ValueError, match="no nrs scores"):
            empty.analysis_frame("nrs", origin="first_contact")


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


def _example_with_hot_stones(tmp_path, arm=False):
    """A copy of the example study where 'cupping' is written 'Hot stones' (not in the vocabulary), so its
    session rows are excluded, and without the arm column (which would declare the episodes treated)."""
    import shutil
    d = shutil.copytree(bpo.example_path(), tmp_path / "ex")
    ss = pd.read_csv(d / "sessions.csv", dtype=str)
    ss["modality"] = ss["modality"].replace("cupping", "Hot stones")
    ss.to_csv(d / "sessions.csv", index=False)
    if not arm:
        pd.read_csv(d / "episodes.csv", dtype=str).drop(columns="arm").to_csv(d / "episodes.csv", index=False)
    return d


def test_episodes_whose_session_rows_were_excluded_are_never_declared_untreated(tmp_path):
    d = _example_with_hot_stones(tmp_path)
    complete = bpo.load_study(bpo.example_path(), no_sessions="untreated")
    n_untreated = int((complete.episodes["treatment_status"] == "untreated").sum())
    cupping = set(complete.episodes.loc[complete.episodes["modality"] == "cupping", "episode_id"])
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(d, errors="exclude", no_sessions="untreated")
    ep = study.episodes.set_index("episode_id")
    # the untreated group is the one of the complete data: no cupping episode joined it
    assert int((ep["treatment_status"] == "untreated").sum()) == n_untreated
    lost = ep.loc[sorted(cupping)]
    only_cupping = lost[lost["n_sessions"] == 0]
    assert len(only_cupping) > 0 and set(only_cupping["modality"]) == {"unknown"}
    assert set(only_cupping["treatment_status"]) == {"unknown"}
    assert set(lost.loc[lost["n_sessions"] > 0, "treatment_status"]) == {"treated"}   # the other sessions remain
    text = " ".join(study.notes)
    assert f"{len(only_cupping)} episode(s) have no usable session because all their session rows were excluded" \
        in text and "no_sessions='untreated' does not apply" in text
    # a subset keeps what was excluded, and counts again for its own episodes (the note is not repeated)
    sub = study.subset(only_cupping.index[:3])
    assert set(sub.episodes["treatment_status"]) == {"unknown"}
    assert sum("no usable session" in n for n in sub.notes) == 1 and "3 episode(s) have no usable" in sub.notes[-1]


def test_an_excluded_session_row_without_its_episode_covers_every_episode_of_its_patient():
    scores = SCORES.drop(columns="episode_id").assign(patient_id=["p1"] * 4 + ["p3"] * 3)
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p1", "p3"],
                             "onset_date": ["2023-12-20", "2024-01-25", "2023-12-20"]})
    sessions = pd.DataFrame({"patient_id": ["p1"], "session_date": ["2024-13-40"], "modality": ["cupping"]})
    with pytest.warns(ExcludedRowsWarning):
        study = load(scores=scores, episodes=episodes, sessions=sessions, no_sessions="untreated",
                     errors="exclude")
    status = study.episodes.set_index("episode_id")["treatment_status"]
    assert status.to_dict() == {"e1": "unknown", "e2": "unknown", "e3": "untreated"}


def _same_study(a, b):
    for name in ("patients", "episodes", "scores", "sessions", "exclusions", "same_day_scores"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.notes == b.notes
    pd.testing.assert_frame_equal(a.flow(), b.flow())


@pytest.mark.parametrize("errors", ["raise", "exclude"])
def test_row_codes_from_loading_give_the_same_study(monkeypatch, errors):
    # load_study hands the Study the episode of each score and session row (from linking) and each score's
    # instrument (from checking) so that it does not look them up again; the Study built without them (its
    # own lookups, the general path) must be the same, cell for cell. The input has a rating of change, an
    # untreated mark, an episode assigned from its onset and, for errors="exclude", rows excluded.
    from backpain_outcomes import building

    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3", "e4"], "patient_id": ["p1", "p2", "p3", "p3"],
                             "onset_date": ["2023-12-20", "2023-12-30", "2024-01-01", "2024-01-25"]})
    scores = SCORES.assign(episode_id=["e1", "e1", "e2", "e2", "e3", None, "e4"],
                           instrument=["nrs", "grc", "nrs", "odi", "nrs", "nrs", "nrs"],
                           score=[7, 3, 6, 40, 8, 6, 2])
    if errors == "exclude":
        scores = pd.concat([scores, pd.DataFrame({"patient_id": ["p9", "p1"], "episode_id": ["e1", "e1"],
                                                  "date": ["2024-01-02", "2024-01-02"],
                                                  "instrument": ["nrs", "bogus"], "score": [1, 2]})])
    sessions = pd.concat([SESSIONS, pd.DataFrame({"patient_id": ["p3"], "episode_id": ["e4"],
                                                  "session_date": ["2024-01-26"], "modality": ["cupping"]})])
    kw = {"scores": scores, "sessions": sessions, "episodes": episodes, "errors": errors}
    given = []
    real = building._row_codes
    monkeypatch.setattr(building, "_row_codes", lambda *a: given.append(real(*a)) or given[-1])
    with pytest.warns(ExcludedRowsWarning) if errors == "exclude" else nullcontext():
        fast = load(**kw)
    assert sorted(given[0]) == ["scores_episode", "scores_instrument", "sessions_episode", "sessions_modality"]
    # small codes (a million rows: 1 MB of instrument codes, not 8), which the Study takes without a copy to int64
    assert given[0]["scores_instrument"].dtype == given[0]["sessions_modality"].dtype == np.int8
    monkeypatch.setattr(building, "_row_codes", lambda *a: {})
    with pytest.warns(ExcludedRowsWarning) if errors == "exclude" else nullcontext():
        general = load(**kw)
    _same_study(fast, general)
    # score_100 by hand: NRS 7 of 10 = 70, ODI 40 of 100 = 40, a rating of change has none
    got = {(i, s): v for i, s, v in fast.scores[["instrument", "score", "score_100"]].itertuples(index=False)}
    assert got[("nrs", 7.0)] == 70.0 and got[("odi", 40.0)] == 40.0 and np.isnan(got[("grc", 3.0)])


def test_row_codes_that_do_not_fit_are_refused():
    study = load(scores=SCORES)
    with pytest.raises(ValueError, match="scores_episode"):
        bpo.Study(scores=study.scores, row_codes={"scores_episode": [0, 1]})
    with pytest.raises(ValueError, match="scores_instrument"):
        bpo.Study(scores=study.scores, row_codes={"scores_instrument": [9] * len(study.scores)})
    with pytest.raises(ValueError, match="sessions_modality"):
        bpo.Study(scores=study.scores, sessions=SESSIONS.assign(session_date=pd.to_datetime(SESSIONS["session_date"])),
                  row_codes={"sessions_modality": [0, 1]})


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5, 6], [4, 5, 6, 0, 1, 2, 3]])
def test_same_day_visits_with_rows_in_and_out_of_the_episodes_order(monkeypatch, order):
    # same-day visits group rows by episode, instrument and day; the episode codes come from linking, as they are
    # when the rows follow the episodes' order (the first order) and renumbered when they do not (the second).
    # By hand: e3's two NRS rows of 2024-01-05 (scores 8 and 6) are the only same-day visit
    from backpain_outcomes import linking

    renumbered = []
    real = linking.in_order_seen
    monkeypatch.setattr(linking, "in_order_seen", lambda c, b: renumbered.append(len(c)) or real(c, b))
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
                             "onset_date": ["2023-12-20", "2023-12-30", "2024-01-01"]})
    scores = SCORES.iloc[order].reset_index(drop=True)
    study = load(scores=scores, episodes=episodes)
    lines = {2 + i for i, k in enumerate(order) if k in (4, 5)}  # where e3's same-day rows are in the file
    same = study.same_day_scores
    assert set(same["row"]) == lines and same["score"].tolist() == [8.0, 6.0] and same["n_same_day"].tolist() == [2, 2]
    assert renumbered == ([] if order[0] == 0 else [len(scores)])


def test_subset_names_ids_that_are_not_episodes(example_study):
    """A mistyped id must not drop its episode silently."""
    ids = example_study.episodes["episode_id"].tolist()
    with pytest.raises(ValueError, match=r"episode_ids: 1 id\(s\) are not episodes of this study: 'zzz'"):
        example_study.subset([ids[0], "zzz"])
    with pytest.raises(ValueError, match=r"7 id\(s\) .* and 2 more"):
        example_study.subset([f"x{i}" for i in range(7)])
    assert len(example_study.subset(ids[:2]).episodes) == 2


@pytest.mark.parametrize("n", [0, 1, 5, BLOCK, BLOCK + 1, 3 * BLOCK + 7])
def test_in_order_and_days_between_match_the_direct_expressions(n):
    """in_order is True exactly when sort_order (the stable sort) keeps the rows as they are, across block
    boundaries and with NaT; days_between equals the one-pass numpy expression bit for bit."""
    rng = np.random.default_rng(n)
    pos = np.sort(rng.integers(0, max(n // 3, 1), n))
    code = rng.integers(-1, 3, n)
    dates = (np.datetime64("2024-01-01", "ns") + rng.integers(0, 90, n) * np.timedelta64(1, "D")
             + rng.integers(0, 2, n) * np.timedelta64(3, "h"))
    dates[rng.random(n) < 0.01] = np.datetime64("NaT")
    ordered = np.lexsort((dates.view(np.int64), code, pos))
    pos_s, code_s, dates_s = pos[ordered], code[ordered], dates[ordered]
    assert in_order(pos_s, code_s, dates_s)
    assert (sort_order(pos_s, code_s, dates_s) == np.arange(n)).all()
    if n > 1 and not (np.diff(code) == 0).all():
        shuffled = rng.permutation(n)
        expect = (sort_order(pos[shuffled], code[shuffled], dates[shuffled]) == np.arange(n)).all()
        assert in_order(pos[shuffled], code[shuffled], dates[shuffled]) == expect
        swapped = ordered.copy()  # one pair out of order, at the end (last block)
        i = next(i for i in range(n - 2, -1, -1) if (pos_s[i], code_s[i], dates_s[i].view(np.int64))
                 != (pos_s[i + 1], code_s[i + 1], dates_s[i + 1].view(np.int64)))
        swapped[[i, i + 1]] = swapped[[i + 1, i]]
        assert not in_order(pos[swapped], code[swapped], dates[swapped])
    origin = np.datetime64("2023-12-01", "ns") + rng.integers(0, 30, max(n // 3, 1)) * np.timedelta64(1, "D")
    origin[0] = np.datetime64("NaT")
    expect = ((dates - origin[pos]) / np.timedelta64(1, "D")).astype(float)
    np.testing.assert_array_equal(days_between(dates, origin, pos), expect)


def test_study_of_shuffled_scores_is_the_study_of_sorted_ones():
    """The rows in order take the path without a sort; shuffled, the sort: the same tables either way."""
    study = bpo.simulate_study(60, seed=3)[0]
    inp = study._inputs
    shuffled = inp["scores"].sample(frac=1.0, random_state=1)
    other = bpo.Study(scores=shuffled, patients=inp["patients"], episodes=inp["episodes"], sessions=inp["sessions"])
    again = bpo.Study(scores=inp["scores"], patients=inp["patients"], episodes=inp["episodes"],
                      sessions=inp["sessions"])
    for name in ("scores", "episodes", "sessions"):
        pd.testing.assert_frame_equal(getattr(other, name), getattr(again, name))


@pytest.mark.parametrize("clinics", [["c1", None, "c3"], [None, None, None]])
def test_patient_details_of_episodes_keep_the_dtypes_of_picking_them_as_objects(clinics):
    """Age, sex and clinic of each episode's patient (NaN for a patient not in the patients table): taken in
    Arrow, yet with the values and dtypes of picking them as Python objects (text: str when some value is
    there, object when none is)."""
    patients = pd.DataFrame({"patient_id": pd.array(["p1", "p2", "p3"], dtype="str"), "age": [40.0, np.nan, 61.0],
                             "sex": pd.array(["F", "M", None], dtype="str"),
                             "clinic_id": pd.array(clinics, dtype="str")})
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e4"], "patient_id": ["p1", "p2", "p4"],
                             "onset_date": pd.to_datetime(["2024-01-01"] * 3), "arm": [None] * 3})
    scores = pd.DataFrame({"episode_id": ["e1", "e2", "e4"], "patient_id": ["p1", "p2", "p4"],
                           "date": pd.to_datetime(["2024-01-05"] * 3), "instrument": ["nrs"] * 3,
                           "score": [5.0, 6.0, 7.0]})
    ep = bpo.Study(scores=scores, patients=patients, episodes=episodes).episodes.set_index("episode_id")
    pos = np.array([0, 1, -1])  # e1 -> p1, e2 -> p2, e4 -> no patient
    for col in ("age", "sex", "clinic_id"):
        expect = pd.Series(patients[col].to_numpy()[pos], index=ep.index, name=col).where(pos >= 0)
        pd.testing.assert_series_equal(ep[col], expect)
    assert ep["clinic_id"].dtype == (object if clinics[0] is None else "str")
