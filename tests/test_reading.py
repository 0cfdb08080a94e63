"""Reading: every file and sheet of a table (workbooks sheet by sheet, Parquet, DataFrames), with sheet rows and
blank rows counted. Expected rows are counted by hand (header = row 1; Parquet/DataFrame rows: position + 2)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY

import backpain_outcomes as bpo
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.reading import find_table_files, frame_part, table_of_file


def test_workbook_sheets_are_all_read_and_named(tmp_path):
    good = pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-01", "2024-01-02"],
                         "instrument": ["nrs", "nrs"], "score": [3, 4]})
    bad = good.assign(score=[5, 11])
    with pd.ExcelWriter(tmp_path / "scores.xlsx") as xw:
        good.to_excel(xw, sheet_name="Clinic A", index=False)
        bad.to_excel(xw, sheet_name="Clinic B", index=False)
        pd.DataFrame().to_excel(xw, sheet_name="Empty", index=False)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    assert "scores.xlsx[Clinic B]:3:score: nrs score is out of range" in str(info.value)
    study = bpo.load_study(tmp_path, today=TODAY, sheet="Clinic A")
    assert study.scores["score"].tolist() == [3.0, 4.0] and study.rows_read == {"scores": 2}
    with pytest.raises(DataValidationError, match="no sheet 'Nope'"):
        bpo.load_study(tmp_path, today=TODAY, sheet="Nope")


def test_workbook_sheet_without_the_columns_is_refused_by_name(tmp_path):
    good = pd.DataFrame({"patient_id": ["p1"], "date": ["2024-01-01"], "instrument": ["nrs"], "score": [3]})
    with pd.ExcelWriter(tmp_path / "scores.xlsx") as xw:
        good.to_excel(xw, sheet_name="Data", index=False)
        pd.DataFrame({"field": ["score"], "meaning": ["NRS"]}).to_excel(xw, sheet_name="Codebook", index=False)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["source", "reason"]].values.tolist() == [["scores.xlsx[Codebook]", "missing_column"]]
    assert len(bpo.load_study(tmp_path, today=TODAY, sheet={"scores": "Data"}).scores) == 1


def test_excel_rows_are_sheet_rows_with_blank_rows_counted(tmp_path):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["patient_id", "date", "instrument", "score"])
    ws.append(["p1", "2024-01-01", "nrs", 3])      # row 2
    ws.append([])                                  # row 3 blank
    ws.append(["p1", "2024-01-02", "nrs", True])   # row 4: a TRUE cell is not a score
    ws.append(["p1", "2024-01-03", "nrs", 4, "x"])  # row 5: a value beyond the header
    wb.save(tmp_path / "scores.xlsx")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert list(zip(p["row"], p["column"], p["reason"])) == [(4, "score", "not_a_number"), (5, "", "ragged_row")]
    assert "yes/no value" in p["message"].iat[0]
    with pytest.warns(UserWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert study.exclusions["row"].tolist() == [3, 4, 5] and study.rows_read["scores"] == 4


def test_parquet_and_dataframe_rows_are_position_plus_two(tmp_path):
    df = pd.DataFrame({"patient_id": ["p1", None, "p1"], "date": ["2024-01-01", None, "2024-01-02"],
                       "instrument": ["nrs", None, "nrs"], "score": [3.0, np.nan, 11.0]})
    df.to_parquet(tmp_path / "scores.parquet")
    for source in (tmp_path, None):
        kwargs = {"scores": df} if source is None else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = bpo.load_study(source, today=TODAY, errors="exclude", **kwargs)
        assert list(zip(study.exclusions["row"], study.exclusions["reason"])) == [(3, "blank_row"), (4, "out_of_range")]




def test_files_belong_to_the_table_they_are_named_after(tmp_path):
    for name in ("scores.csv", "Scores_2024.xlsx", "scores-part2.tsv", "scoresheet.csv", "sessions.parquet",
                 "notes.csv", "README.txt", ".scores.csv", "~$scores.xlsx"):
        (tmp_path / name).write_text("x")
    found, strays = find_table_files(tmp_path)
    assert {k: [f.name for f in v] for k, v in found.items()} == {
        "scores": ["scores-part2.tsv", "scores.csv", "Scores_2024.xlsx"], "sessions": ["sessions.parquet"]}
    assert [f.name for f in strays] == ["notes.csv", "scoresheet.csv"]
    assert table_of_file(tmp_path / "patients.CSV") == "patients" and table_of_file(tmp_path / "x.csv") is None


def test_column_names_in_camel_case_or_with_a_unit_match_their_aliases():
    from backpain_outcomes.reading import column_keys, normalise_column
    cases = {("VisitDate", "sessions"): "session_date", ("Visit Date", "sessions"): "session_date",
             ("VisitDate", "scores"): "date", ("PatientID", "scores"): "patient_id",
             ("patientId", "episodes"): "patient_id", ("OnsetDate", "episodes"): "onset_date",
             ("Duration (min)", "sessions"): "duration_min", ("DurationMin", "sessions"): "duration_min",
             ("Score (0-10)", "scores"): "score", ("Age [years]", "patients"): "age",
             ("TherapistID", "sessions"): "therapist_id", ("VisitDate", "visits"): "date",
             ("Treatment", "visits"): "treatment", ("Clinician", "visits"): "therapist_id"}
    assert {k: normalise_column(*k) for k in cases} == cases
    # names that match nothing keep their plain spelling, as before (item columns, extra columns)
    keep = {"ODI_Q1": "odi_q1", "OdiQ1": "odiq1", "BMIValue": "bmivalue", "score (raw)": "score_raw",
            "PainScore(0-10)": "painscore_0_10"}
    assert {k: normalise_column(k, "scores") for k in keep} == keep
    assert column_keys("NPRS_score") == ["nprs_score"]
    assert column_keys("\ufeffVAS (mm)") == ["vas_mm", "vas"]


def test_headers_in_camel_case_load(tmp_path):
    (tmp_path / "scores.csv").write_text("PatientID,VisitDate,Instrument,Score (0-10)\np1,2024-01-05,nrs,7\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores[["patient_id", "score"]].values.tolist() == [["p1", 7.0]]


def test_a_part_already_read_keeps_its_source_and_lines():
    from backpain_outcomes.reading import Part, read_part
    data = pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-05", "2024-01-40"],
                         "instrument": ["nrs", "nrs"], "score": ["7", "3"]})
    part = Part("export.csv", data, np.array([7, 12]), blank=np.array([9]))
    assert read_part(part, "scores") == [part]
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(scores=part, today=TODAY)
    assert info.value.problems[["source", "row", "reason"]].values.tolist() == [["export.csv", 12, "bad_date"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = bpo.load_study(scores=part, today=TODAY, errors="exclude")
    assert study.exclusions[["row", "reason"]].values.tolist() == [[9, "blank_row"], [12, "bad_date"]]
    assert study.scores["_row"].tolist() == [7] and study.rows_read == {"scores": 3} and study.input_files == []


def test_spss_and_stata_files_use_value_labels_and_case_numbers(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    sessions = pd.DataFrame({"patient_id": ["p1", "p1", "p2"],
                             "session_date": pd.to_datetime(["2024-01-05", "2024-01-12", "2024-01-06"]),
                             "modality": [1.0, 2.0, 9.0]})
    pyreadstat.write_sav(sessions, tmp_path / "sessions.sav", variable_value_labels={
        "modality": {1: "Cupping", 2: "Deep tissue massage", 9: "No treatment"}})
    scores = pd.DataFrame({"patient_id": ["p1", "p1", "", "p2", "p2"],
                           "date": ["2024-01-05", "2024-01-19", "", "2024-01-06", "2024-01-20"],
                           "instrument": [1.0, 1.0, np.nan, 2.0, 3.0], "score": [7.0, 12.0, np.nan, 40.0, 5.0]})
    # the score's own labels (0 = no pain) are not applied: scores are numbers, not categories
    pyreadstat.write_dta(scores, tmp_path / "scores.dta", variable_value_labels={
        "instrument": {1: "NRS", 2: "Oswestry"}, "score": {0: "no pain", 10: "worst pain"}})
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    # case 2 (NRS 12) out of range; case 5 (code 3, no label) an unknown instrument, shown as written
    assert p[["source", "row", "column", "reason"]].values.tolist() == [
        ["scores.dta", 2, "score", "out_of_range"], ["scores.dta", 5, "instrument", "unknown_instrument"]]
    assert p["value"].iat[1] == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert study.exclusions[["row", "reason"]].values.tolist() == [[2, "out_of_range"], [3, "blank_row"],
                                                                   [5, "unknown_instrument"]]
    assert study.sessions["modality"].tolist() == ["cupping", "deep_tissue"]
    assert study.episodes.set_index("episode_id")["modality"].to_dict() == {"p1": "mixed", "p2": "untreated"}
    assert study.scores[["instrument", "_row"]].values.tolist() == [["nrs", 1], ["odi", 4]]
    assert any("Stata file: rows are numbered by case; value labels used for instrument" in n for n in study.notes)


def test_sas_transport_files_load_with_case_numbers(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    scores = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "date": ["2024-01-05", "2024-01-19", "2024-01-06"],
                           "instrument": ["nrs", "nrs", "odi"], "score": [7.0, 12.0, 40.0]})
    pyreadstat.write_xport(scores, tmp_path / "scores.xpt", table_name="SCORES")
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    # case 2 holds NRS 12: out of range, named by the file and its case number
    assert info.value.problems[["source", "row", "column", "reason"]].values.tolist() == [
        ["scores.xpt", 2, "score", "out_of_range"]]
    study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert study.scores[["instrument", "score", "_row"]].values.tolist() == [["nrs", 7.0, 1], ["odi", 40.0, 3]]
    assert any("SAS file: rows are numbered by case" in n for n in study.notes)


def test_a_visit_export_in_spss(tmp_path):
    from backpain_outcomes.visits import load_visits
    pyreadstat = pytest.importorskip("pyreadstat")
    visits = pd.DataFrame({"PatientID": ["p1", "p1", "p2"], "VisitDate": pd.to_datetime(["2024-07-01", "2024-07-20",
                                                                                         "2024-07-02"]),
                           "Treatment": [1.0, np.nan, 2.0], "NRS": [7.0, 11.0, 6.0]})
    pyreadstat.write_sav(visits, tmp_path / "visits.sav", variable_value_labels={
        "Treatment": {1: "Swedish massage", 2: "No treatment"}})
    with pytest.raises(DataValidationError) as info:
        load_visits(tmp_path / "visits.sav", today=TODAY)
    assert info.value.problems[["source", "row", "column"]].values.tolist() == [["visits.sav", 2, "NRS"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_visits(tmp_path / "visits.sav", today=TODAY, errors="exclude")
    assert study.episodes.set_index("episode_id")["modality"].to_dict() == {"p1": "swedish", "p2": "untreated"}


def test_frame_part_leaves_the_callers_frame_as_it_was():
    # frame_part strips the text columns of a shallow copy (copy on write): the caller's frame keeps its values;
    # a row is blank only when every value is missing (row 3: the first value missing, not blank)
    df = pd.DataFrame({"patient_id": pd.Series([" p1 ", None, None, "p3"], dtype="str"),
                       "score": pd.Series(["5", None, "6", " 7"], dtype="str"), "note": [" a", None, None, "b "]})
    before = df.copy(deep=True)
    part = frame_part(df, "<scores DataFrame>")
    pd.testing.assert_frame_equal(df, before)
    assert part.lines.tolist() == [2, 4, 5] and part.blank.tolist() == [3]
    assert part.data["patient_id"].tolist()[::2] == ["p1", "p3"] and part.data["note"].tolist()[::2] == ["a", "b"]
    assert part.data["score"].tolist() == ["5", "6", "7"]


def _parquet_files(tmp_path):
    """Parquet files whose text columns the reader decodes from their dictionaries (issue 17), and the
    frames ``pd.read_parquet`` gives of them (the reference)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    df = pd.DataFrame({"a": pd.Categorical(["x", "y", "x", None, "z"], categories=["z", "y", "x"]),
                       "b": pd.Series(["p1", " p2", "", None, "p1"], dtype="str"), "c": [1.0, 2, np.nan, 4, 5],
                       "d": pd.Series(["u", "v", None, "u", "w"], dtype=object)})
    df.to_parquet(tmp_path / "a.parquet")
    df.set_index("d").to_parquet(tmp_path / "b.parquet")
    pq.write_table(pa.table({"x": pa.array(["b", "a", "b", None, "c"] * 3), "y": list(range(15))}),
                   tmp_path / "c.parquet", row_group_size=4)  # four row groups, each with its own dictionary
    pq.write_table(pa.table({"x": pa.array([], pa.string())}), tmp_path / "d.parquet")
    pq.write_table(pa.table({"x": pa.array([None, None], pa.string()), "y": [1, 2]}), tmp_path / "e.parquet")
    pq.write_table(pa.table({"x": pa.array(["b", "a", "b"])}), tmp_path / "f.parquet", use_dictionary=False)
    pq.write_table(pa.table({"x": pa.DictionaryArray.from_arrays(pa.array([1, 0, 1, None], pa.int32()),
                                                                 pa.array(["q", "r"])).cast(pa.string()),
                             "z": pa.array([None, "s", "t", None])}), tmp_path / "g.parquet")
    pd.DataFrame({"x": [None, "a", None], "y": [None, 1.0, None]}).to_parquet(tmp_path / "h.parquet")  # blank rows
    paths = sorted(tmp_path.glob("*.parquet"))
    return paths


def test_parquet_text_read_from_dictionaries_as_pandas_reads_it(tmp_path):
    """The Parquet reader decodes text columns from their dictionaries: its frame equals the one
    ``pd.read_parquet`` gives (then made a part by ``frame_part``), line for line, and the codes it keeps are
    those ``pd.factorize`` gives of the columns (order of first appearance, -1 missing)."""
    from backpain_outcomes.reading import read_parquet, text_key

    coded = set()
    for path in _parquet_files(tmp_path):
        new, old = read_parquet(path, "s"), frame_part(pd.read_parquet(path), "s")
        pd.testing.assert_frame_equal(new.data, old.data, check_exact=True)
        assert new.lines.tolist() == old.lines.tolist() and new.blank.tolist() == old.blank.tolist()
        for col, (key, codes, uniques) in new.codes.items():
            assert key == text_key(new.data[col])  # the codes are of the part's own column
            want, distinct = pd.factorize(new.data[col])
            assert codes.tolist() == want.tolist() and uniques.equals(distinct) and uniques.dtype == distinct.dtype
            coded.add((path.stem, col))
    # the columns whose codes are kept: not "a" (a categorical), "b" (stripped), nor "d" of b (the index)
    assert coded == {("a", "d"), ("c", "x"), ("d", "x"), ("e", "x"), ("f", "x"), ("g", "x"), ("g", "z"), ("h", "x")}


def test_parquet_codes_are_those_of_the_study(tmp_path):
    """A study read from Parquet (codes from the dictionaries) equals the same study given as DataFrames
    (every column hashed): missing-value marks, blank rows, unknown ids and duplicates included."""
    frames = {"patients": pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "age": ["40", "N/A", "33"]}),
              "episodes": pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
                                        "onset_date": ["2024-01-01", "2024-01-02", "n/a"]}),
              "scores": pd.DataFrame({"patient_id": ["p1", "p1", "p2", None, "p9", "p1"],
                                      "episode_id": ["e1", "e1", "NA", None, "e1", "e1"],
                                      "date": ["2024-01-03", "2024-01-03", "2024-01-04", None, "2024-01-05",
                                               "2024-01-06"], "instrument": ["nrs", "nrs", "odi", None, "nrs", "NRS"],
                                      "score": [3.0, 3.0, 40.0, None, 2.0, 4.0]})}
    for name, df in frames.items():
        df.to_parquet(tmp_path / f"{name}.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = bpo.load_study(tmp_path, errors="exclude", today=TODAY)
        b = bpo.load_study(errors="exclude", today=TODAY, **frames)
    for table in ("patients", "episodes", "scores"):
        pd.testing.assert_frame_equal(getattr(a, table).drop(columns="_source", errors="ignore"),
                                      getattr(b, table).drop(columns="_source", errors="ignore"), check_exact=True)
    pd.testing.assert_frame_equal(a.exclusions.drop(columns="source"), b.exclusions.drop(columns="source"))
    assert a.exclusions["reason"].tolist() == ["duplicate", "blank_row", "unknown_patient"]  # rows 3, 5 and 6
    assert a.notes == b.notes and len(a.notes) == 3  # the marks N/A, n/a and NA, each read as blank
