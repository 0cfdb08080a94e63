"""Loading: every problem kind of the data dictionary, with file, line and column; every input row accounted for."""

import datetime as dt
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import TODAY, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backpain_outcomes as bpo
from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning

SCORES = "patient_id,date,instrument,score\n"


def problems_of(tmp_path, text, name="scores", **kw):
    write(tmp_path / f"{name}.csv", text)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY, **kw)
    return info.value


def test_messy_export_reports_every_problem_at_once(tmp_path):
    # A hand-made clinic export: BOM, CRLF, aliases, duplicate, bad dates, out-of-range scores.
    text = ("Patient ID,Date,Instrument,Score\n"
            "p1,2024-01-05,NPRS,7\n"          # line 2 ok (alias)
            "p1,2024-01-12,Oswestry,40\n"     # line 3 ok
            "p1,2024-01-12,Oswestry,40\n"     # line 4 exact duplicate -> excluded, not an error
            "p1,03/04/2024,nrs,5\n"           # line 5 ambiguous date
            "p2,2024-01-05,VAS (mm),120\n"    # line 6 out of range
            "p2,2024-13-40,RDQ,3\n"           # line 7 bad date
            "p2,2024-02-01,rolAND-morris,abc\n"  # line 8 not a number
            "p3,2024-02-01,SF-36,50\n"        # line 9 unknown instrument
            "p3,2031-02-01,nrs,2\n")          # line 10 in the future
    (tmp_path / "scores.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    err = info.value
    got = set(zip(err.problems["row"].astype(int), err.problems["column"], err.problems["reason"]))
    assert got == {(5, "date", "ambiguous_date"), (6, "score", "out_of_range"), (7, "date", "bad_date"),
                   (8, "score", "not_a_number"), (9, "instrument", "unknown_instrument"),
                   (10, "date", "date_in_future")}
    assert "scores.csv:6:score: vas score is out of range (got '120', expected 0-100 for vas)" in str(err)
    # exclude mode keeps the valid rows and lists the others
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert len(study.scores) == 2
    assert sorted(study.exclusions["row"].astype(int)) == [4, 5, 6, 7, 8, 9, 10]
    assert study.exclusions.set_index("row").loc[4, "reason"] == "duplicate"
    assert set(study.scores["instrument"]) == {"nrs", "odi"}


def test_missing_required_column_names_found_columns(tmp_path):
    err = problems_of(tmp_path, "patient_id,date,score\np1,2024-01-01,5\n")
    msg = str(err)
    assert "missing required column(s) instrument" in msg and "columns found: patient_id, date, score" in msg


def test_empty_file(tmp_path):
    err = problems_of(tmp_path, "")
    assert err.problems["reason"].tolist() == ["empty_file"]
    err = problems_of(tmp_path, SCORES)
    assert err.problems["reason"].tolist() == ["empty_file"]


def test_encodings_utf8_bom_cp1252_and_crlf_load(tmp_path):
    text = "patient_id,date,instrument,score,note\nJosé,2024-01-05,nrs,7,café\nJosé,2024-01-20,nrs,2,ok\n"
    for enc, bom in (("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b"")):
        (tmp_path / "scores.csv").write_bytes(bom + text.replace("\n", "\r\n").encode(enc))
        study = bpo.load_study(tmp_path, today=TODAY)
        assert study.scores["patient_id"].unique().tolist() == ["José"]


def test_undecodable_bytes_are_a_clear_error(tmp_path):
    (tmp_path / "scores.csv").write_bytes(SCORES.encode() + b"p1,2024-01-05,nrs,\x81\x8d\n")
    with pytest.raises(DataValidationError, match="cannot decode"):
        bpo.load_study(tmp_path, today=TODAY)


def test_unknown_modality_lists_accepted_ones_and_user_map(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,7\n")
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality\np1,2024-01-05,Deep Tissue Massage\n"
          "p1,2024-01-06,Hot stones\np1,2024-01-07,trigger-point therapy\n")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["row", "column", "reason"]].values.tolist() == [[3, "modality", "unknown_modality"]]
    assert "deep_tissue, trigger_point, swedish, dry_needling, cupping, other" in p["expected"].iat[0]
    study = bpo.load_study(tmp_path, today=TODAY, modality_map={"hot stones": "other"})
    assert study.sessions["modality"].tolist() == ["deep_tissue", "other", "trigger_point"]


def test_dates_ambiguous_need_dayfirst(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,03/04/2024,nrs,7\np1,05/06/2024,nrs,3\n")
    with pytest.raises(DataValidationError, match="dayfirst"):
        bpo.load_study(tmp_path, today=TODAY)
    study = bpo.load_study(tmp_path, today=TODAY, dayfirst=True)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-03", "2024-06-05"]


def test_a_date_column_that_proves_its_order_loads_with_a_note(tmp_path):
    # 25/04/2024 can only be day first, so the column's 03/04/2024 is 3 April (and the note says so)
    write(tmp_path / "scores.csv", SCORES + "p1,03/04/2024,nrs,7\np1,25/04/2024,nrs,3\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-03", "2024-04-25"]
    assert any(n.startswith("scores.date (scores.csv): 1 date(s) such as 03/04/2024 read as day/month/year")
               for n in study.notes)
    study = bpo.load_study(tmp_path, today=TODAY, dayfirst=True)
    assert not any("day/month/year" in n for n in study.notes)  # stated, not inferred


def test_links_unknown_patient_episode_and_before_onset(tmp_path):
    write(tmp_path / "patients.csv", "patient_id,age,sex\np1,40,F\np2,50,M\np2,51,M\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne1,p1,2024-02-01\n"
          "e2,p1,2024-03-01\n")
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\n"
          "p1,e2,2024-03-05,nrs,5\n"      # 2 ok
          "p9,e2,2024-03-05,nrs,5\n"      # 3 unknown patient
          "p1,e7,2024-03-05,nrs,5\n"      # 4 unknown episode
          "p1,e2,2024-02-05,nrs,5\n"      # 5 before onset
          "p1,,2023-12-05,nrs,5\n")       # 6 no episode yet
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    got = set(zip(p["table"], p["row"].astype(int), p["reason"]))
    # a repeated id is one problem (on its second row), not one per row nor a cascade
    assert got == {("patients", 4, "duplicate_id"), ("episodes", 3, "duplicate_id"),
                   ("scores", 3, "unknown_patient"), ("scores", 3, "unknown_episode"),
                   ("scores", 4, "unknown_episode"),
                   ("scores", 5, "date_before_onset"), ("scores", 6, "no_episode")}


def test_episode_assigned_by_onset_when_scores_lack_episode_id(tmp_path):
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne2,p1,2024-06-01\n")
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-10,nrs,6\np1,2024-06-10,nrs,8\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores["episode_id"].tolist() == ["e1", "e2"]
    assert study.scores["days_since_onset"].tolist() == [9.0, 9.0]


def test_item_level_odi_and_rmdq_scored_by_loader(tmp_path):
    odi = ",".join(f"odi_{i}" for i in range(1, 11))
    rmdq = ",".join(f"rmdq_{i}" for i in range(1, 25))
    head = f"patient_id,date,instrument,score,{odi},{rmdq}\n"
    rmdq_blank = "," * 23
    rows = ("p1,2024-01-05,odi,,2,1,2,1,2,1,2,1,2,2," + rmdq_blank + "\n"   # 16/50 -> 32
            "p1,2024-01-06,odi,,2,1,2,1,2,1,2,2,3,," + rmdq_blank + "\n"    # 16/45 -> 35.56
            "p1,2024-01-07,odi,,2,1,2,1,2,1,2,1,,," + rmdq_blank + "\n"     # 2 missing -> not scored
            "p1,2024-01-08,rmdq,,,,,,,,,,,," + ",".join(["yes"] * 6 + ["no"] * 18) + "\n")
    write(tmp_path / "scores.csv", head + rows)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    assert info.value.problems[["row", "reason"]].values.tolist() == [[4, "not_scorable"]]
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    # Expected values by hand: Oswestry 16 of 50 points = 32%, 16 of 45 (one section unanswered) = 35.6%;
    # Roland-Morris: 6 items answered yes.
    np.testing.assert_allclose(study.scores["score"], [32.0, 100 * 16 / 45, 6.0])


def test_dataframes_parquet_and_excel_load_the_same(tmp_path):
    _, _, frames = bpo.simulate_study(30, seed=3, return_frames=True)
    a = bpo.load_study(**frames)
    for fmt in ("parquet", "xlsx"):
        d = tmp_path / fmt
        bpo.simulate.write_study(frames, d, fmt=fmt)
        b = bpo.load_study(d)
        pd.testing.assert_frame_equal(a.scores.drop(columns=["_source"]), b.scores.drop(columns=["_source"]))
        assert a.episodes["modality"].tolist() == b.episodes["modality"].tolist()


def test_excel_row_is_sheet_row(tmp_path):
    df = pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-01", "2024-01-02"],
                       "instrument": ["nrs", "nrs"], "score": [3, 11]})
    df.to_excel(tmp_path / "scores.xlsx", index=False)
    with pytest.raises(DataValidationError, match=r"scores.xlsx:3:score"):
        bpo.load_study(tmp_path, today=TODAY)


def test_blank_lines_keep_line_numbers(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-01,nrs,3\n\np1,2024-01-02,nrs,12\n")
    with pytest.raises(DataValidationError, match=r"scores.csv:4:score"):
        bpo.load_study(tmp_path, today=TODAY)


rows_strategy = st.lists(st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from(["2024-01-05", "2024-02-10", "31/12/2024", "03/04/2024", "2024-02-30", "", "2030-01-01"]),
    st.sampled_from(["nrs", "NPRS", "Oswestry", "rdq", "sf36", ""]),
    st.sampled_from(["0", "5", "10", "24", "99", "-1", "x", ""])), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_rows_read_equals_used_plus_excluded(tmp_path, rows):
    text = SCORES + "".join(",".join(r) + "\n" for r in rows)
    write(tmp_path / "scores.csv", text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
        except DataValidationError as err:  # fatal only when no valid score row remains
            if "empty_file" in set(err.problems["reason"]):
                assert not any(any(r) for r in rows)  # a file of blank rows
                return
            assert len(err.problems) == len(rows)  # one line per excluded row, blank ones included
            return
    assert study.rows_read["scores"] == len(rows)
    assert len(study.scores) + (study.exclusions["table"] == "scores").sum() == len(rows)
    assert sorted(study.exclusions.loc[study.exclusions["reason"] == "blank_row", "row"]) == [
        i + 2 for i, r in enumerate(rows) if not any(r)]
    assert study.exclusions["row"].is_unique
    # every used row is in range for its instrument
    hi = study.scores["instrument"].map({"nrs": 10, "odi": 100, "rmdq": 24})
    assert (study.scores["score"] <= hi).all()


# ------------------------------------------------------------------------------------------------------------
# Issue 11 input classes. Expected lines are counted by hand from the text written (header = line 1; for
# Parquet and DataFrames the line a CSV export would give, position + 2).
def accounted(study):
    """Rows read = rows used + rows excluded, for every table."""
    used = {"scores": len(study.scores), "sessions": len(study.sessions) + study.n_untreated_records,
            "patients": len(study.patients), "episodes": len(study.episodes)}
    for table, n in study.rows_read.items():
        assert n == used[table] + int((study.exclusions["table"] == table).sum()), table
    return True


def test_messy_export_accounts_for_every_row(tmp_path):
    text = ("Patient ID,Date,Instrument,Score\np1,2024-01-05,NPRS,7\np1,2024-01-12,Oswestry,40\n"
            "p1,2024-01-12,Oswestry,40\np1,03/04/2024,nrs,5\np2,2024-01-05,VAS (mm),120\n")
    (tmp_path / "scores.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert study.rows_read == {"scores": 5} and accounted(study)


def test_every_file_of_a_table_is_read_and_named(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,2024-01-06,nrs,14\n")
    pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-05", "2024-01-07"], "instrument": ["NPRS", "nrs"],
                  "score": [6.0, 3.0]}).to_excel(tmp_path / "scores.xlsx", index=False)
    pd.DataFrame({"patient_id": ["p1"], "date": ["2024-02-30"], "instrument": ["nrs"], "score": [2]}).to_parquet(
        tmp_path / "Scores.parquet")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert list(zip(p["source"], p["row"], p["column"], p["reason"])) == [
        ("scores.csv", 3, "score", "out_of_range"), ("Scores.parquet", 2, "date", "bad_date")]
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    ex = study.exclusions
    assert list(zip(ex["source"], ex["row"], ex["reason"])) == [
        ("scores.csv", 3, "out_of_range"), ("Scores.parquet", 2, "bad_date"), ("scores.xlsx", 2, "duplicate")]
    # 6 in a CSV file and 6.0 (NPRS) in a workbook are the same measurement
    assert ex["message"].iat[2] == "exact duplicate of scores.csv:2 (same values)"
    assert study.rows_read == {"scores": 5} and accounted(study)
    assert sorted(zip(study.scores["_source"], study.scores["_row"])) == [("scores.csv", 2), ("scores.xlsx", 3)]
    assert study.sources == {"scores": "scores.csv, Scores.parquet, scores.xlsx"}


def test_a_data_file_named_after_no_table_is_refused(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\n")
    write(tmp_path / "visits.csv", SCORES)
    write(tmp_path / "README.txt", "not a table")
    write(tmp_path / ".hidden.csv", "x")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["source", "reason"]].values.tolist() == [["visits.csv", "unrecognised_file"]]
    (tmp_path / "visits.csv").rename(tmp_path / "scores_visits.csv")  # named after its table: read with the other
    with pytest.raises(DataValidationError, match="scores_visits.csv: the table has no data rows"):
        bpo.load_study(tmp_path, today=TODAY)


def test_blank_rows_are_counted_in_every_table(tmp_path):
    write(tmp_path / "patients.csv", "patient_id,age\np1,40\n,\n\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\n\ne1,p1,2024-01-01\n")
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality\np1,2024-01-05,swedish\n , ,\n")
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\n,,,\np1,2024-01-20,nrs,2\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    ex = study.exclusions
    assert list(zip(ex["table"], ex["row"], ex["reason"])) == [
        ("episodes", 2, "blank_row"), ("patients", 3, "blank_row"), ("patients", 4, "blank_row"),
        ("scores", 3, "blank_row"), ("sessions", 3, "blank_row")]
    assert study.rows_read == {"patients": 3, "episodes": 2, "sessions": 2, "scores": 3} and accounted(study)
    flow = study.flow().set_index(["stage", "table"])["n"]
    assert flow[("rows excluded: blank_row", "patients")] == 2


def test_mapped_values_pass_the_same_checks(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,PAIN,9999\np1,2024-01-06,PAIN,3\n")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY, instrument_map={"pain": "NRS"})  # target in capitals
    assert "scores.csv:2:score: nrs score is out of range (got '9999', expected 0-10 for nrs)" in str(info.value)
    with pytest.raises(ValueError, match="instrument_map: target 'pain scale'.*choose one of nrs, vas, odi, rmdq"):
        bpo.load_study(tmp_path, today=TODAY, instrument_map={"PAIN": "pain scale"})
    with pytest.raises(ValueError, match=r"modality_map: target 5 .*choose one of deep_tissue"):
        bpo.load_study(tmp_path, today=TODAY, modality_map={"x": 5})
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality\np1,2024-01-05,Hot stones\n")
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,PAIN,9\np1,2024-01-06,PAIN,3\n")
    study = bpo.load_study(tmp_path, today=TODAY, instrument_map={"PAIN": "nprs"}, modality_map={"HOT STONES": "Other"})
    assert study.sessions["modality"].tolist() == ["other"] and study.scores["instrument"].tolist() == ["nrs", "nrs"]


def test_exact_duplicates_compare_parsed_values(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,05/01/2024,NPRS,6.0\np1,2024-01-06,nrs,x\n"
          "p1,2024-01-06,nrs,y\n")
    with pytest.raises(DataValidationError) as info:  # x and y do not parse: they are compared as written
        bpo.load_study(tmp_path, today=TODAY, dayfirst=True)
    assert info.value.problems["row"].tolist() == [4, 5]
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,05/01/2024,NPRS,6.0\n")
    study = bpo.load_study(tmp_path, today=TODAY, dayfirst=True)
    assert study.exclusions[["row", "reason", "message"]].values.tolist() == [
        [3, "duplicate", "exact duplicate of line 2 (same values)"]]
    assert len(study.scores) == 1 and accounted(study)


def test_same_day_scores_are_kept_and_counted(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,2024-01-05,nrs,7\np1,2024-01-05,odi,30\n"
          "p1,2024-01-09,nrs,2\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert len(study.scores) == 4 and len(study.exclusions) == 0
    rep = study.same_day_scores
    assert rep[["row", "instrument", "score", "n_same_day", "rows"]].values.tolist() == [
        [2, "nrs", 6.0, 2, "scores.csv:2, scores.csv:3"], [3, "nrs", 7.0, 2, "scores.csv:2, scores.csv:3"]]


def test_repeated_id_is_one_problem_not_a_cascade(tmp_path):
    write(tmp_path / "patients.csv", "patient_id,age\np1,40\np1,41\np2,50\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne2,p2,2024-01-01\n")
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\n"
          + "".join(f"p1,e1,2024-01-{d:02d},nrs,5\n" for d in range(2, 12)) + "p2,e2,2024-01-05,nrs,3\n")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["table", "row", "column", "reason"]].values.tolist() == [["patients", 3, "patient_id", "duplicate_id"]]
    assert "'p1' is on 2 rows with different values (patients.csv:2, patients.csv:3)" in p["message"].iat[0]
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    reasons = study.exclusions.groupby(["table", "reason"]).size().to_dict()
    assert reasons == {("episodes", "patient_excluded"): 1, ("patients", "duplicate_id"): 2,
                       ("scores", "patient_excluded"): 10}
    assert study.episodes["episode_id"].tolist() == ["e2"] and accounted(study)


def test_dates_are_the_calendar_date_written(tmp_path):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-03-05T23:30:00-05:00,nrs,6\np1,2024-03-06T01:00:00+09:00,nrs,5\n"
          "p1,2024-03-07T12:00:00Z,nrs,4\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-05", "2024-03-06", "2024-03-07"]


def test_booleans_are_not_scores(tmp_path):
    df = pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-01", "2024-01-02"], "instrument": ["nrs", "nrs"],
                       "score": pd.array([True, False], dtype="boolean")})
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(scores=df, today=TODAY)
    assert info.value.problems[["row", "reason"]].values.tolist() == [[2, "not_a_number"], [3, "not_a_number"]]
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,TRUE\n")
    with pytest.raises(DataValidationError, match="scores.csv:2:score: score is not a number"):
        bpo.load_study(tmp_path, today=TODAY)


def _scores_file(path, n, valid):
    rng = np.random.default_rng(1)
    i = np.arange(n)
    if valid:
        df = pd.DataFrame({"patient_id": "p" + pd.Series(i // 10).astype(str), "date": (
            pd.Timestamp("2022-01-01") + pd.to_timedelta(i % 700, "D")).strftime("%Y-%m-%d"),
            "instrument": np.where(i % 2, "nrs", "odi"), "score": rng.integers(0, 11, n)})
    else:  # every row invalid, most of them in several columns, with distinct junk values
        df = pd.DataFrame({"patient_id": np.where(i % 7 == 0, "", "p" + pd.Series(i // 10).astype(str)),
                           "date": np.where(i % 3 == 0, "x" + pd.Series(i).astype(str), "2024-13-45"),
                           "instrument": np.where(i % 2 == 0, "inst" + pd.Series(i % 1000).astype(str), "nrs"),
                           "score": np.where(i % 2 == 1, "s", "99") + pd.Series(i).astype(str)})
    path.mkdir()
    df.to_csv(path / "scores.csv", index=False)


def test_invalid_rows_are_checked_about_as_fast_as_valid_ones(tmp_path):
    """200,000 invalid rows within 2.5 times the time of 200,000 valid ones (1,000,000 rows: bench_load.py)."""
    import time
    n = 200_000
    _scores_file(tmp_path / "valid", n, True)
    _scores_file(tmp_path / "junk", n, False)
    best = {"valid": np.inf, "junk": np.inf}
    for _ in range(3):
        for kind in best:
            t0 = time.perf_counter()
            try:
                bpo.load_study(tmp_path / kind, today=TODAY)
            except DataValidationError as err:
                assert kind == "junk" and err.problems["row"].nunique() == n
                assert len(str(err).splitlines()) < 60  # the message shows the first 50 problems
            best[kind] = min(best[kind], time.perf_counter() - t0)
    assert best["junk"] < 2.5 * best["valid"], best


def test_several_inputs_of_one_table_given_as_a_list_keep_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,2024-01-06,nrs,12\n")
    write(tmp_path / "b" / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,2024-01-07,nrs,13\n")
    frame = pd.DataFrame({"patient_id": ["p2"], "date": ["2024-01-05"], "instrument": ["nrs"], "score": [14]})
    paths = [tmp_path / "a" / "scores.csv", tmp_path / "b" / "scores.csv"]
    with pytest.warns(ExcludedRowsWarning):
        study = bpo.load_study(scores=[*paths, frame, frame.assign(score=2)], errors="exclude", today=TODAY)
    ex = study.exclusions
    assert list(zip(ex["source"], ex["row"], ex["reason"])) == [  # same file name: named by their paths
        (str(paths[0]), 3, "out_of_range"), (str(paths[1]), 2, "duplicate"), (str(paths[1]), 3, "out_of_range"),
        ("<scores DataFrame 3>", 2, "out_of_range")]
    assert ex["message"].iat[1] == f"exact duplicate of {paths[0]}:2 (same values)"
    assert study.rows_read == {"scores": 6} and accounted(study)


@pytest.mark.parametrize("episodes", [
    "episode_id,patient_id,onset_date\nE1,1,03/04/2024\nE2,2,04/03/2024\n",   # every onset ambiguous
    "episode_id,patient_id,onset_date\nE1,1,2024-13-01\nE2,2,2024-01-01\n",   # no such month (E2 is fine)
    "episode_id,patient_id,onset_date\nE1,1,2024-01-01\nE1,1,2023-12-01\nE2,2,2024-01-01\n",  # id on two rows
])
@pytest.mark.parametrize("errors", ["raise", "exclude"])
def test_an_episodes_table_without_a_valid_row_is_a_validation_error(tmp_path, episodes, errors):
    episodes = episodes.replace("E2,2,2024-01-01\n", "") if errors == "exclude" else episodes
    write(tmp_path / "episodes.csv", episodes)
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\n"
          "1,E1,2024-05-02,nrs,7\n1,E1,2024-05-09,nrs,6\n")
    with pytest.raises(DataValidationError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        bpo.load_study(tmp_path, today=TODAY, errors=errors)
    assert "episodes.csv:2:" in str(info.value) or "episodes.csv:3:" in str(info.value)
    if errors == "exclude":
        assert "no valid score rows remain" in str(info.value)
        assert set(info.value.problems.query("table == 'scores'")["reason"]) == {"episode_excluded"}


@pytest.mark.parametrize(("today", "error"), [("tomorrow", ValueError), ("2024-02-30", ValueError), ("", ValueError),
                                              (5, TypeError), (True, TypeError)])
def test_today_that_is_not_a_date_is_refused_by_name(tmp_path, today, error):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-01,nrs,5\n")
    with pytest.raises(error, match=r"^today: "):
        bpo.load_study(tmp_path, today=today)
    # dates in any usual form are days
    assert len(bpo.load_study(tmp_path, today=pd.Timestamp("2024-01-01 13:00", tz="Asia/Tokyo")).scores) == 1
    with pytest.raises(DataValidationError, match="date is after today"):
        bpo.load_study(tmp_path, today=dt.date(2023, 12, 31))


def test_marks_of_a_missing_value_in_optional_columns_are_blanks(tmp_path):
    write(tmp_path / "patients.csv", "patient_id,age,sex,clinic_id\np1,N/A,NA,-\np2,45,f,c1\np3,none,missing,.\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date,arm\ne1,p1,2024-01-01,\n"
          "e2,p2,n/a,none\ne3,p3,2024-01-01,\n")
    write(tmp_path / "sessions.csv", "patient_id,episode_id,session_date,modality,therapist_id,duration_min\n"
          "p1,e1,2024-01-02,cupping,N/A,--\np3,-,2024-01-02,swedish,t1,30\n")
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\np1,e1,2024-01-02,nrs,7\n"
          "p2,e2,2024-01-02,nrs,6\np3,?,2024-01-02,nrs,5\n")
    study = bpo.load_study(tmp_path, today=TODAY)          # errors="raise": nothing to raise
    assert study.patients["age"].isna().tolist() == [True, False, True]
    assert study.patients["sex"].tolist()[1] == "female" and study.patients["sex"].isna().sum() == 2
    assert study.patients["clinic_id"].isna().sum() == 2
    ep = study.episodes.set_index("episode_id")
    assert pd.isna(ep.loc["e2", "onset_date"])
    assert ep.loc["e2", "modality"] == "untreated"          # "none" in arm still says untreated
    assert ep.loc["e3", "modality"] == "swedish"            # the session's "-" episode: assigned from the onset
    assert study.sessions["therapist_id"].isna().sum() == 1 and study.sessions["duration_min"].isna().sum() == 1
    assert "patients.age: 2 value(s) written 'N/A', 'none' read as blank" in " ".join(study.notes)
    # a mark in a required column is still an error
    err = problems_of(tmp_path, SCORES + "p1,2024-01-02,nrs,N/A\n")
    assert err.problems["column"].tolist() == ["score"]


def test_an_invalid_optional_value_is_set_blank_and_never_costs_the_outcomes(tmp_path):
    write(tmp_path / "patients.csv", "patient_id,age,sex\np1,forty,f\np2,150,m\np3,45,f\n")
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality,duration_min\np1,2024-01-02,cupping,45 min\n"
          "p2,2024-01-02,cupping,30\n")
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-02,nrs,7\np1,2024-01-09,nrs,5\np2,2024-01-02,nrs,6\n"
          "p3,2024-01-02,nrs,4\n")
    # strict mode lists them, saying what errors="exclude" does with them
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    assert set(zip(info.value.problems["row"], info.value.problems["column"])) == {
        (2, "age"), (3, "age"), (2, "duration_min")}
    assert "3 of them invalid values in optional columns, which errors='exclude' sets blank" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no row is excluded: no warning
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert len(study.exclusions) == 0 and len(study.scores) == 4 and len(study.sessions) == 2
    assert study.patients.set_index("patient_id")["age"].isna().to_dict() == {"p1": True, "p2": True, "p3": False}
    assert study.sessions["duration_min"].isna().sum() == 1
    assert set(zip(study.blanked_values["table"], study.blanked_values["row"], study.blanked_values["reason"])) == {
        ("patients", 2, "not_a_number"), ("patients", 3, "out_of_range"), ("sessions", 2, "not_a_number")}
    flow = study.flow().set_index(["stage", "table"])["n"]
    assert flow[("rows read", "patients")] == flow[("rows used", "patients")] == 3
    assert flow[("values set blank (invalid): age", "patients")] == 2
    assert "3 invalid value(s) in optional columns were set blank" in " ".join(study.notes)
    assert len(study.subset(["p1"]).blanked_values) == 3   # kept as loaded, like the exclusions


def test_ids_written_with_and_without_leading_zeros_are_noted(tmp_path):
    # 001 in the sessions table and 1 in the scores table: two patients as written, said in the notes
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality\n001,2024-01-02,cupping\n")
    write(tmp_path / "scores.csv", SCORES + "1,2024-01-02,nrs,7\n002,2024-01-02,nrs,5\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.episodes["patient_id"].nunique() == 3
    note = [n for n in study.notes if "leading zeros" in n]
    assert note == ["patient_id: 1 id(s) are written with and without leading zeros, such as '001' (sessions) and "
                    "'1' (scores); they are read as different ids: if they are the same, write them the same way "
                    "in every table"]
    write(tmp_path / "sessions.csv", "patient_id,session_date,modality\n1,2024-01-02,cupping\n")
    assert not any("leading zeros" in n for n in bpo.load_study(tmp_path, today=TODAY).notes)


def test_a_score_row_with_item_columns_but_no_value_is_a_missing_score():
    # the score and all ten Oswestry sections blank: nothing to score (it loaded as a NaN score before)
    scores = pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-01", "2024-01-08"],
                           "instrument": ["odi", "odi"], "score": [None, "30"],
                           **{f"odi_{i}": [None, None] for i in range(1, 11)}})
    with pytest.raises(bpo.DataValidationError) as err:
        bpo.load_study(scores=scores)
    problems = err.value.problems
    assert problems[["row", "column", "reason"]].values.tolist() == [[2, "score", "missing_value"]]
    study = bpo.load_study(scores=scores, errors="exclude")
    assert study.scores["score"].tolist() == [30.0]


@pytest.mark.parametrize("kwargs,argument", [({"patients": 42}, "patients"), ({"path": 3.5}, "path"),
                                             ({"scores": [None]}, "scores")])
def test_inputs_of_the_wrong_type_name_the_argument(kwargs, argument):
    with pytest.raises(TypeError, match=f"^{argument} must be"):
        bpo.load_study(**{"scores": bpo.example_path() / "scores.csv", **kwargs})


def test_id_codes_from_the_parent_lookup_code_equal_ids_equally():
    # exact duplicates compare id columns by codes; id_codes makes them from the lookup among the parent table's
    # ids (which linking uses again) instead of hashing the column: equal ids must get equal codes, different ids
    # different ones (known or not), a missing id -1, exactly as pd.factorize would group them
    from backpain_outcomes.linking import id_codes, parent_positions
    from backpain_outcomes.validation import RawTable

    values = pd.Series(["p2", "p9", None, "p1", "p9", "p2", "p8"], dtype="str", name="patient_id")
    t = RawTable("scores", pd.DataFrame({"patient_id": values}), np.zeros(7, np.int64), np.arange(2, 9),
                 ["scores.csv"])
    known = pd.Series(["p1", "p2", "p3"], dtype="str")
    id_codes(t, values, known)
    codes, bound = t.codes["patient_id"]
    assert codes.tolist() == [1, 3, -1, 0, 3, 1, 4] and bound == 5  # p1 p2 p3 known (0-2), then p9, p8
    expected = pd.factorize(values)[0]
    assert all((codes[i] == codes[j]) == (expected[i] == expected[j]) for i in range(7) for j in range(7))
    again = parent_positions(t, values, known)[1]
    assert again is t.lookups["parent:patient_id"][2]  # linking's lookup is the one made here


@pytest.mark.parametrize("values", [[3.0, -0.0, 0.0, np.nan, 3.0, 7.0, 1e6], [2.5, 2.5, np.nan, 1.0],
                                    [np.nan, np.nan], [1.0, np.inf, 1.0], [0.0, 2.0**40, 0.0]])
def test_value_codes_of_numbers_group_as_factorize(values):
    # whole numbers are coded by their value instead of a hash; the codes must group the rows exactly as
    # pd.factorize does (-0.0 equals 0.0, NaN is -1), and the other columns (fractions, infinity, a range of
    # 2**40) go through pd.factorize itself
    from backpain_outcomes.validation import value_codes

    codes, bound = value_codes(pd.Series(values, dtype=float))
    expected = pd.factorize(pd.Series(values, dtype=float))[0]
    assert ((codes < 0) == (expected < 0)).all() and codes.max(initial=-1) < bound
    n = len(values)
    assert all((codes[i] == codes[j]) == (expected[i] == expected[j]) for i in range(n) for j in range(n))


@pytest.mark.parametrize("case", ["whole", "with_nan", "fraction_late", "negative"])
def test_value_codes_of_numbers_across_blocks_of_rows(case):
    # whole numbers are coded block by block (65,536 rows); over 200,001 rows the codes must group the rows as
    # pd.factorize does, and a fraction in the third block must send the column to pd.factorize (codes from 0
    # in the order first seen)
    from backpain_outcomes.validation import value_codes

    rng = np.random.default_rng(3)
    values = rng.integers(0, 300, 200_001).astype(float)
    if case == "with_nan":
        values[rng.random(len(values)) < 0.05] = np.nan
    elif case == "fraction_late":
        values[150_000] = 2.5
    elif case == "negative":
        values -= 1_000.0
    codes, bound = value_codes(pd.Series(values))
    expected, uniques = pd.factorize(pd.Series(values))
    assert ((codes < 0) == (expected < 0)).all() and codes.max(initial=-1) < bound
    first = pd.Series(np.arange(len(values)))[expected >= 0].groupby(expected[expected >= 0]).transform("first")
    assert (pd.Series(codes[expected >= 0]).groupby(first.to_numpy()).nunique() == 1).all()  # equal values, one code
    assert len(np.unique(codes[codes >= 0])) == len(uniques)  # different values, different codes
    if case == "fraction_late":
        assert codes.tolist() == expected.tolist()


@pytest.mark.parametrize("names", [["nrs", "odi"], ["nrs", None, "odi", np.nan], [f"m{i}" for i in range(20)], []])
def test_vocabulary_labels_of_rows_as_a_gather(names):
    # the mapped label of each row (few labels set by mask, many gathered) must be np.r_[names, None][codes]
    # exactly: the same objects, None for a missing value (code -1), a None or NaN name kept as it is
    from backpain_outcomes.validation import _labels_at

    names = np.array(names, dtype=object)
    rng = np.random.default_rng(len(names))
    codes = rng.integers(-1, len(names), 70_000).astype(np.int32)
    got, expected = _labels_at(names, codes), np.r_[names, None][codes]
    assert got.dtype == object and len(got) == len(expected)
    assert all(a is b for a, b in zip(got, expected))


def test_missing_value_marks_of_a_text_column_found_among_its_distinct_values():
    # marks are looked for among the distinct values, then the rows holding them found; by hand: rows 1, 2, 4, 6
    # hold marks (any case, surrounding spaces), row 5 is missing already, "none1" and "e1" are ids
    from backpain_outcomes.validation import RawTable, blank_missing_marks

    col = pd.Series(["e1", " N/A", "none", "e1", "NULL ", None, "n/a", "none1"], dtype="str")
    t = RawTable("scores", pd.DataFrame({"episode_id": col}), np.zeros(8, np.int64), np.arange(2, 10), ["s.csv"])
    notes = blank_missing_marks(t)
    assert t.data["episode_id"].isna().tolist() == [False, True, True, False, True, True, True, False]
    assert notes == ["scores.episode_id: 4 value(s) written ' N/A', 'none', 'NULL ', 'n/a' read as blank (a mark of "
                     "a missing value)"]
    t = RawTable("scores", pd.DataFrame({"episode_id": col[[0, 3, 7]]}), np.zeros(3, np.int64), np.arange(2, 5),
                 ["s.csv"])
    assert blank_missing_marks(t) == [] and t.data["episode_id"].notna().all()


def test_episode_of_another_patient_found_by_codes_as_by_ids(monkeypatch):
    # with a patients table, whether a row's episode belongs to its patient is decided on the positions of the
    # patient ids (from the lookups made once); rows whose patient is unknown or missing are compared as text.
    # By hand: line 3 (e1 is p1's, the row says p2), line 5 (p9, unknown, on e2 of p2) and line 6 (a missing
    # patient differs from any, as != does) are of another patient; the result must equal the comparison of the
    # ids as text
    from backpain_outcomes import linking

    patients = pd.DataFrame({"patient_id": ["p1", "p2", "p3"]})
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p9"],
                             "onset_date": ["2024-01-01"] * 3})
    scores = pd.DataFrame({"patient_id": ["p1", "p2", "p2", "p9", None, "p3"],
                           "episode_id": ["e1", "e1", "e2", "e2", "e1", "e3"], "date": ["2024-01-05"] * 6,
                           "instrument": ["nrs"] * 6, "score": [5, 6, 7, 8, 9, 4]})
    kw = {"patients": patients, "episodes": episodes, "scores": scores, "today": TODAY}

    def problems():
        with pytest.raises(DataValidationError) as err:
            bpo.load_study(**kw)
        return err.value.problems

    by_codes = problems()
    other = by_codes[by_codes["message"] == "episode belongs to another patient"]
    assert other["row"].tolist() == [3, 5, 6]
    monkeypatch.setattr(linking, "_kept_positions", lambda *a: None)
    pd.testing.assert_frame_equal(by_codes, problems())


@pytest.mark.parametrize("index", [[0, 0, 1, 1, 3], [2, 2, 0, 0], [], [5], [1, 0, 1]])
def test_files_read_in_the_order_their_rows_come(index):
    # the files of a table, named in notes and study.sources, in the order of their first row: pd.unique gives it
    from backpain_outcomes.validation import RawTable

    t = RawTable("scores", pd.DataFrame(), np.array(index, np.int64), np.arange(len(index)), [])
    assert t.files_read().tolist() == pd.unique(np.array(index, np.int64)).tolist()


def test_row_keys_are_the_mixed_radix_number_of_the_codes():
    # by hand: radixes are max + 2 per column (codes from -1), key = ((c0 + 1) * r1 + (c1 + 1)) * r2 + (c2 + 1);
    # int8 codes (as categoricals give) are added to the int64 keys in place
    from backpain_outcomes.validation import row_keys

    c0, c1, c2 = np.array([-1, 0, 4, 4]), np.array([2, -1, 0, 2], np.int8), np.array([99, 0, -1, 99])
    assert row_keys([c0, c1, c2]).tolist() == [((0 * 4) + 3) * 101 + 100, ((1 * 4) + 0) * 101 + 1,
                                               ((5 * 4) + 1) * 101 + 0, ((5 * 4) + 3) * 101 + 100]


@pytest.mark.parametrize("key", [[5, 3, 5, 1, 3, 5], [1, 2, 2, 3], [1, 2, 3], [3, 2, 1], [], [7], [4, 4], [2, 1, 1, 2]])
def test_repeated_rows_and_first_copies_as_np_unique(key):
    # the rows whose key another row has, and the later copies with their first row, must be those that
    # np.unique(return_inverse, return_index) gives: counts > 1; every row that is not its group's first row,
    # with that first row (keys in order take the path without a sort)
    from backpain_outcomes.duplicates import first_copies, repeated_rows

    key = np.array(key, np.int64)
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    assert repeated_rows(key).tolist() == (counts[inverse] > 1).tolist()
    later = np.flatnonzero(first[inverse] != np.arange(len(key)))
    pos, of = first_copies(key)
    assert pos.tolist() == later.tolist() and of.tolist() == first[inverse[later]].tolist()


def test_row_keys_and_copies_across_blocks_of_rows():
    # keys are built and checked block by block (65,536 rows); over 200,003 rows they must equal the whole-array
    # mixed radix of the codes (by numpy on all rows at once), also when a column's radix forces renumbering
    # (2**40 * 2**23 > 2**62), and copies must be found across a block boundary, in order or not
    from backpain_outcomes.duplicates import first_copies, repeated_rows, row_keys

    rng = np.random.default_rng(5)
    n = 200_003
    c0 = np.sort(rng.integers(-1, 30_000, n))
    c1 = rng.integers(-1, 7, n).astype(np.int8)
    c2 = np.arange(n) % 97
    expected = ((c0 + 1) * 8 + (c1 + 1)) * 98 + (c2 + 1)  # radixes: max + 2 (6 + 2, 96 + 2)
    assert np.array_equal(row_keys([c0, c1, c2]), expected)
    big = np.where(np.arange(n) % 2, 2**40, 0)
    renumbered = row_keys([c0, big, c2 + (1 << 23)])  # renumbered by pd.factorize before the third column
    assert np.array_equal(pd.factorize(renumbered)[0], pd.factorize(pd.Series(list(zip(c0, big, c2))))[0])
    key = np.arange(n, dtype=np.int64) * 3
    assert not repeated_rows(key).any() and len(first_copies(key)[0]) == 0
    for at in (65_535, 65_536, 65_537, n - 1):  # a copy of the row before, at and around a block's edge
        copied = key.copy()
        copied[at] = copied[at - 1]
        assert np.flatnonzero(repeated_rows(copied)).tolist() == [at - 1, at]
        assert [v.tolist() for v in first_copies(copied)] == [[at], [at - 1]]
        turned = key.copy()
        turned[at] = -1  # out of order, no copy
        assert not repeated_rows(turned).any() and len(first_copies(turned)[0]) == 0


def test_keys_increasing_without_the_keys_of_every_row():
    # the check block by block must say what the keys of row_keys say (each greater than the one before), also
    # when the only equal or decreasing pair straddles a block's edge (65,536 rows); with radixes whose product
    # reaches 2**62 (keys renumbered) it says False, and loading then builds the keys
    from backpain_outcomes.duplicates import keys_increasing, row_keys

    n = 140_000
    episode, day = np.repeat(np.arange(n // 7), 7), np.tile(np.arange(7), n // 7)
    assert keys_increasing([episode, day]) and np.all(np.diff(row_keys([episode, day])) > 0)
    for at in (65_535, 65_536, 65_537, n - 1):  # row at-1 copied into row at, at or near a block's edge
        cols = [episode.copy(), day.copy()]
        for c in cols:
            c[at] = c[at - 1]
        assert not keys_increasing(cols) and not np.all(np.diff(row_keys(cols)) > 0)
    assert not keys_increasing([day, episode])  # out of order
    assert not keys_increasing([episode, np.where(day == 0, 2**40, day), day + (1 << 23)])  # renumbered: False
    assert keys_increasing([np.zeros(0, int)]) and keys_increasing([np.array([4])]) and not keys_increasing([])


def test_key_columns_in_the_order_the_rows_come():
    # by hand: scores listed by patient, episode, instrument, then date (codes below) come sorted with the columns
    # in the order 0, 1, 3, 2; then the score (4) goes up within equal rows; the given order when no column can
    # come next (column 1 goes down within the rows equal in column 0)
    from backpain_outcomes.duplicates import sorted_order

    patient, episode = np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 0, 0, 1, 1])
    date, instrument = np.array([0, 1, 0, 1, 2, 2]), np.array([0, 0, 1, 1, 0, 0], np.int8)
    score = np.array([5, 3, 40, 20, 7, 8])
    assert sorted_order([patient, episode, date, instrument, score]) == [0, 1, 3, 2, 4]
    assert sorted_order([patient, np.array([0, 1, 0, 1, 2, 2]), np.array([1, 0, 0, 0, 0, 0])]) == [0, 1, 2]
    assert sorted_order([np.array([1, 0]), np.array([0, 1])]) == [1, 0]
    assert sorted_order([np.zeros(0, int)]) == [0] and sorted_order([]) == []


@pytest.mark.parametrize("seed", range(6))
def test_exact_duplicates_whatever_the_order_of_rows_and_columns(seed):
    # the copies found (later rows and their first row) must not depend on the order of the key's columns:
    # random codes with repeated rows, sorted by several columns or not, against pd.DataFrame.duplicated
    from backpain_outcomes.duplicates import first_copies, row_keys, sorted_order

    rng = np.random.default_rng(seed)
    n = 90_000
    cols = [rng.integers(-1, k, n) for k in (50, 3, 400, 2)]
    if seed % 2:
        order = np.lexsort([cols[j] for j in rng.permutation(4)])
        cols = [c[order] for c in cols]
    key = row_keys([cols[j] for j in sorted_order(cols)])
    frame = pd.DataFrame(np.column_stack(cols))
    pos, first = first_copies(key)
    assert pos.tolist() == np.flatnonzero(frame.duplicated().to_numpy()).tolist()
    first_row = pd.Series(np.arange(n)).groupby([frame[c] for c in frame.columns]).transform("first")
    assert first.tolist() == first_row[pos].tolist()


@pytest.mark.parametrize("days", [["2024-01-02", "NaT", "2024-01-01", "2024-01-02"], ["2024-03-01"], ["NaT", "NaT"],
                                  ["2024-01-01 10:00", "2024-01-01"]])
def test_value_codes_of_days_group_as_factorize(days):
    # whole days are coded by the day (from the first day, NaT -1); a time of day or no date at all goes
    # through pd.factorize; either way the codes must group the rows exactly as pd.factorize does
    from backpain_outcomes.validation import value_codes

    values = pd.Series(pd.to_datetime(days, format="ISO8601"), dtype="datetime64[ns]")
    codes, bound = value_codes(values)
    expected = pd.factorize(values)[0]
    n = len(days)
    assert ((codes < 0) == (expected < 0)).all() and codes.max(initial=-1) < bound
    assert all((codes[i] == codes[j]) == (expected[i] == expected[j]) for i in range(n) for j in range(n))


def test_date_codes_from_the_distinct_dates_group_the_parsed_dates():
    # validation codes a date column from its distinct written values (each parsed once); the codes must group
    # the rows as pd.factorize of the parsed dates does: '2024-01-02' and '02/01/2024' (day first, proven by
    # '14/01/2024') are one date, a bad date and a missing one are -1
    from backpain_outcomes.problems import Problems
    from backpain_outcomes.validation import RawTable, validate_scores

    data = pd.DataFrame({"patient_id": ["p1"] * 6, "date": ["2024-01-02", "02/01/2024", "14/01/2024", "bad", None,
                                                             "2024-01-02"], "instrument": ["nrs"] * 6,
                         "score": ["1", "2", "3", "4", "5", "6"]}, dtype="str")
    t = RawTable("scores", data, np.zeros(6, np.int64), np.arange(2, 8), ["s.csv"])
    clean = validate_scores(t, Problems(), None, pd.Timestamp(TODAY), None,
                            {"odi_max_missing": 1, "rmdq_rescale": False, "rmdq_max_missing": 0})
    codes, bound = t.codes["date"]
    expected = pd.factorize(clean["date"])[0]
    assert expected.tolist() == [0, 0, 1, -1, -1, 0] and codes.max() < bound
    assert all((codes[i] == codes[j]) == (expected[i] == expected[j]) for i in range(6) for j in range(6))


def test_small_codes_hold_every_code():
    # codes from -1 below a bound are kept in the smallest signed type that holds them: the highest code is
    # bound - 1, so a bound of 127 fits int8 (max 127), 128 needs int16, and 40,000 is over int16's 32,767
    from backpain_outcomes.duplicates import small_codes

    for bound, kind in ((2, np.int8), (127, np.int8), (128, np.int16), (32_767, np.int16), (40_000, np.int32)):
        codes = np.array([-1, 0, bound - 1], np.int64)
        small = small_codes(codes, bound)
        assert small.dtype == kind and small.tolist() == [-1, 0, bound - 1]


def test_file_of_rows_from_one_file_is_its_name_repeated():
    """The rows of one file keep its index as a view of one value (no array of equal values); their file
    names (study.scores['_source']) are the same as those taken from an array of indexes, for every row and
    for a selection, and the files read are that one file."""
    from backpain_outcomes.validation import RawTable

    data = pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4"]})
    one = RawTable("scores", data, np.broadcast_to(np.int64(1), 4), np.arange(2, 6), ["a.csv", "scores b.csv"])
    full = RawTable("scores", data, np.full(4, 1, np.int64), np.arange(2, 6), ["a.csv", "scores b.csv"])
    for rows in (np.ones(4, bool), np.array([True, False, False, True]), np.zeros(4, bool)):
        got, expect = one.source_text(rows), full.source_text(rows)
        assert got.dtype == expect.dtype and list(got) == list(expect)
    assert list(one.source_text(np.array([False, True, True, False]))) == ["scores b.csv", "scores b.csv"]
    assert one.files_read().tolist() == full.files_read().tolist() == [1]
    for name in ("Übersicht [Blatt 1].xlsx", "", "=cmd|' /C calc'!A0"):  # written into Arrow's buffers as UTF-8
        got = RawTable("scores", data, np.broadcast_to(np.int64(0), 4), np.arange(2, 6), [name]).source_text(
            np.array([True, False, True, True]))
        assert got.dtype == "str" and list(got) == [name] * 3


def test_file_names_of_many_rows_share_one_block_and_follow_the_files_runs():
    """A million rows of one file hold its name in chunks that share one block of 65,536 values (about 1 MB, not
    22 MB); rows of several files, one file after another, get each file's name run by run, and rows whose
    files alternate more often than MAX_RUNS are taken row by row: every way gives the names of an array of
    indexes, for every row and for a selection."""
    import pyarrow as pa

    from backpain_outcomes import raw_table
    from backpain_outcomes.validation import RawTable

    n = 1_000_003
    one = RawTable("scores", pd.DataFrame({"a": np.zeros(n)}), np.broadcast_to(np.int64(0), n), np.arange(n),
                   ["scores.parquet"])
    arr = pa.array(one.source_text(np.ones(n, bool)))
    assert len(arr) == n and arr.num_chunks == 16 and len({c.buffers()[2].address for c in arr.chunks}) == 1
    assert sum(b.size for b in arr.chunks[0].buffers() if b is not None) < 2**20 + 2**19  # (one block: ~1.4 MB)
    assert set(arr.unique().to_pylist()) == {"scores.parquet"}
    names = ["a.csv", "b.csv", "c [Sheet 1].xlsx"]
    rng = np.random.default_rng(3)
    runs = np.repeat([0, 1, 0, 2], [70_000, 5, 140_000, 3])  # (file a again after b: two runs of a)
    mixed = rng.integers(0, 3, raw_table.MAX_RUNS * 4)  # (more runs than MAX_RUNS)
    for index in (runs, mixed):
        t = RawTable("scores", pd.DataFrame({"a": np.zeros(len(index))}), index, np.arange(len(index)), names)
        for rows in (np.ones(len(index), bool), rng.random(len(index)) < 0.5):
            got = t.source_text(rows)
            assert got.dtype == "str" and list(got) == list(np.array(names, dtype=object)[index[rows]])


@pytest.mark.parametrize("slow", ["scores.csv", "patients.csv"])
def test_inputs_read_in_threads_are_used_in_the_order_they_are_given(tmp_path, monkeypatch, slow):
    """The scores inputs are read in this thread while a second thread reads the other tables'; whichever read
    ends last (a read is made to here), rows, problems and notes come in the order of the inputs, as when they
    are read one after the other."""
    import threading
    import time

    from backpain_outcomes import loading

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\np1,2024-01-06,nrs,12\n")
    write(tmp_path / "b" / "scores.csv", "patient_id;date;instrument;score\np1;2024-01-07;nrs;13\np2;2024-01-08;nrs;4\n")
    write(tmp_path / "patients.csv", "patient_id,age\np1,40\np2,N/A\np3,200\n")
    paths = [tmp_path / "a" / "scores.csv", tmp_path / "b" / "scores.csv"]
    kwargs = {"scores": paths, "patients": tmp_path / "patients.csv", "errors": "exclude", "today": TODAY}
    with pytest.warns(ExcludedRowsWarning):
        expected = bpo.load_study(**kwargs)
    read_part, threads = loading.read_part, {}

    def slowed(obj, *args):
        threads.setdefault(Path(obj).name, set()).add(threading.get_ident() == threading.main_thread().ident)
        if str(obj).endswith(slow):
            time.sleep(0.2)
        return read_part(obj, *args)

    monkeypatch.setattr(loading, "read_part", slowed)
    with pytest.raises(DataValidationError) as err:  # a missing file refuses the input: named, the others read
        bpo.load_study(**{**kwargs, "scores": [*paths, tmp_path / "missing.csv"]})
    assert list(zip(err.value.problems["source"], err.value.problems["reason"])) == [("missing.csv", "missing_file")]
    with pytest.warns(ExcludedRowsWarning):
        got = bpo.load_study(**kwargs)
        again = bpo.load_study(**{**kwargs, "scores": paths[::-1]})
    assert threads == {"scores.csv": {True}, "missing.csv": {True}, "patients.csv": {(os.cpu_count() or 1) < 2}}
    for name in ("scores", "patients", "exclusions", "blanked_values"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name))
    assert got.notes == expected.notes and got.sources == expected.sources and accounted(got)
    assert list(zip(got.exclusions["source"], got.exclusions["value"])) == [(str(paths[0]), "12"), (str(paths[1]), "13")]
    assert again.sources["scores"] == f"{paths[1]}, {paths[0]}"  # the order given, not the order the reads end


# ---- found by comparing with the loading code before the fourth speed round (issue 17)
_TWO_SCORES = pd.DataFrame({"patient_id": ["p1", "p2"], "date": ["2024-01-02", "2024-01-09"],
                            "instrument": ["nrs", "odi"], "score": ["5", "30"]})


@pytest.mark.parametrize(("today", "n_future"), [("3000-01-01", 0), ("2262-04-12", 0), ("1677-09-21", 2),
                                                  ("1500-01-01", 2)])
def test_today_beyond_the_nanosecond_range_is_compared_exactly(today, n_future):
    """A `today` outside datetime64[ns] (before 1677-09-21 or after 2262-04-11) was converted to ns with a silent
    overflow when the distinct dates were checked: 3000-01-01 made every date 'in the future'."""
    if n_future == 0:
        assert len(bpo.load_study(scores=_TWO_SCORES, today=today).scores) == 2
    else:
        with pytest.raises(DataValidationError) as err:
            bpo.load_study(scores=_TWO_SCORES, today=today)
        assert err.value.problems["reason"].tolist() == ["date_in_future"] * n_future


def test_a_parquet_dataset_directory_loads_as_one_table(tmp_path):
    """A directory of part files (as Spark, Dask or pyarrow.dataset write) given as a table: read as pd.read_parquet
    reads it (the dictionary reader reads single files only)."""
    d = tmp_path / "scores.parquet"
    d.mkdir()
    _TWO_SCORES.iloc[:1].to_parquet(d / "part-0.parquet")
    _TWO_SCORES.iloc[1:].to_parquet(d / "part-1.parquet")
    study = bpo.load_study(scores=str(d), today=TODAY)
    assert sorted(study.scores["instrument"]) == ["nrs", "odi"]


@pytest.mark.parametrize("content", [b"not parquet", b"", b"patient_id,date\np1,2024-01-01\n"])
def test_an_unreadable_parquet_file_reports_the_reader_error(tmp_path, content):
    """The problem quotes pd.read_parquet's own error (as before the dictionary reader), file name included."""
    path = tmp_path / "scores.parquet"
    path.write_bytes(content)
    try:
        pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - whatever pyarrow says
        expected = f"cannot read the Parquet file: {exc}"
    with pytest.raises(DataValidationError) as err:
        bpo.load_study(scores=str(path), today=TODAY)
    assert err.value.problems["message"].tolist() == [expected]


@pytest.mark.parametrize("slow", ["validate_scores", "validate_patients", "set_aside_duplicates", "link_parents"])
def test_tables_checked_in_two_threads_give_the_same_problems_whichever_ends_first(tmp_path, monkeypatch, slow):
    """The scores table is checked (and its duplicates found) in a second thread while the other tables are:
    with one side made to end last, the problems (categories included), exclusions and Study are those of a
    load where the other ends last."""
    import time

    from backpain_outcomes import checking

    write(tmp_path / "patients.csv", "patient_id,age,sex\np1,40,F\np2,150,M\np2,41,M\np3,x,F\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne2,p2,2024-13-01\n"
          "e3,p3,2024-02-01\ne4,p9,2024-02-01\n")
    write(tmp_path / "sessions.csv", "patient_id,episode_id,session_date,modality\np1,e1,2024-01-03,swedish\n"
          "p1,e1,2024-01-03,swedish\np3,e3,2023-01-01,hot stones\np2,e2,2024-03-01,cupping\n")
    write(tmp_path / "scores.csv", SCORES.replace("score\n", "score,episode_id\n")
          + "p1,2024-01-02,nrs,6,e1\np1,2024-01-02,nrs,6,e1\np1,2024-01-09,nrs,12,e1\np2,2024-03-01,odi,30,e2\n"
            "p3,2024-02-05,vas,x,e3\np9,2024-02-05,nrs,3,e4\np1,2024-01-10,grc,9,e1\n")

    def slowed(name):
        real = getattr(checking, name)

        def f(*args, **kwargs):
            time.sleep(0.2)
            return real(*args, **kwargs)
        return f

    with pytest.raises(DataValidationError) as plain:
        bpo.load_study(tmp_path, today=TODAY)
    with pytest.warns(ExcludedRowsWarning):
        expected = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    monkeypatch.setattr(checking, slow, slowed(slow))
    with pytest.raises(DataValidationError) as err:
        bpo.load_study(tmp_path, today=TODAY)
    pd.testing.assert_frame_equal(err.value.problems, plain.value.problems, check_categorical=True)
    assert str(err.value) == str(plain.value) and len(plain.value.problems) >= 8
    with pytest.warns(ExcludedRowsWarning):
        got = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    for name in ("exclusions", "blanked_values", "scores", "sessions", "episodes", "patients"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name))
    assert got.notes == expected.notes and accounted(got)


def test_a_part_given_by_the_caller_stays_apart_from_the_study():
    """The Study's lines (``_row``) are not the caller's array: a Part given to load_study and changed later
    leaves the Study as loaded (the lines of rows read from files are the Study's own, without a copy)."""
    from backpain_outcomes.reading import Part

    lines = np.array([10, 12, 15])
    part = Part("visits.csv", pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "date": ["2024-01-02"] * 3,
                                            "instrument": ["nrs", "odi", "nrs"], "score": [5, 30, 7]}), lines)
    study = bpo.load_study(scores=part, today=TODAY)
    lines[:] = -1
    assert sorted(study.scores["_row"]) == [10, 12, 15]
    assert not np.shares_memory(study.scores["_row"].to_numpy(), lines)


@pytest.mark.parametrize("known", [["p1", "p2", "p3"], ["p2", "p3", "p1"], ["p1", "p2", "p3", "p4"]])
def test_parent_positions_without_a_lookup_when_the_ids_come_in_the_parents_order(monkeypatch, known):
    # a column whose distinct ids (known from its Parquet dictionary) are the parent table's ids in their order
    # is linked by its codes, without a hash lookup; in another order, or with a parent id the column lacks,
    # the ids are looked up. Either way the positions are those of pd.Index.get_indexer (-1 where missing)
    from backpain_outcomes import linking
    from backpain_outcomes.validation import RawTable

    values = pd.Series(["p1", "p1", None, "p2", "p3", "p2"], dtype="str", name="patient_id")
    t = RawTable("scores", pd.DataFrame({"patient_id": values}), np.zeros(6, np.int64), np.arange(2, 8), ["s.csv"])
    t.distinct("patient_id")  # (as a reader's dictionary gives them)
    looked_up, positions = [], linking._positions
    monkeypatch.setattr(linking, "_positions", lambda *a: looked_up.append(1) or positions(*a))
    distinct, at = linking.parent_positions(t, values, pd.Series(known, dtype="str"))
    assert distinct.tolist() == known
    assert at.tolist() == pd.Index(known).get_indexer(values.astype(object)).tolist()
    assert bool(looked_up) == (known != ["p1", "p2", "p3"])
    t.lookups.clear()
    assert linking.member(pd.Index(known, dtype="str"), pd.Series(known, dtype="str")).all()


@pytest.mark.parametrize("text", ["string[python]", "string[pyarrow]", pd.ArrowDtype(pa.string()),
                                  pd.ArrowDtype(pa.large_string()), pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))])
def test_dataframes_with_other_text_dtypes_load_as_plain_text(text):
    # a caller's DataFrame may hold its text as pandas' "string" (pd.NA) or as Arrow text or text dictionaries;
    # they load as the same values written as plain text would: before, ids of two such dtypes could not be
    # matched to assign episodes from onsets (a pandas MergeError), and Arrow dictionary dates were all bad_date
    episodes = pd.DataFrame({"episode_id": ["E1", "E2"], "patient_id": ["P1", "P2"],
                             "onset_date": ["2023-01-01", "2023-03-01"]})
    scores = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "date": ["2023-02-01", "2023-02-08", "2023-03-05"],
                           "instrument": ["nrs", "NRS", "nrs"], "score": ["5", "3", "7"], "episode_id": [None, "E1", None]})
    expected = bpo.load_study(episodes=episodes, scores=scores, today="2026-01-01")
    for which in ("episodes", "scores", "both"):
        ep = episodes.astype(text) if which in ("episodes", "both") else episodes
        sc = scores.astype({c: text for c in ("patient_id", "date", "instrument", "episode_id")}) \
            if which in ("scores", "both") else scores
        study = bpo.load_study(episodes=ep, scores=sc, today="2026-01-01")
        for name in ("scores", "episodes"):
            pd.testing.assert_frame_equal(getattr(study, name).drop(columns=["_source"], errors="ignore"),
                                          getattr(expected, name).drop(columns=["_source"], errors="ignore"))
        assert study.scores["episode_id"].tolist() == ["E1", "E1", "E2"]
