"""Long visit exports as EHR systems and spreadsheets write them: marks for "no treatment", mixed and serial dates,
times of day, several episodes without an episode column, duplicates, header and label variants, formula strings.
Expected lines are counted by hand (header = line 1); every row must be used or excluded with its reason."""

import io
import warnings

import pandas as pd
import pytest

from backpain_outcomes.exceptions import ExcludedRowsWarning
from backpain_outcomes.safe_io import safe_csv
from backpain_outcomes.visits import load_visits

TODAY = "2025-01-01"


def _csv(text):
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _load(visits, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcludedRowsWarning)
        study = load_visits(visits, today=TODAY, errors=kw.pop("errors", "exclude"), **kw)
    return study, [str(w.message) for w in caught]


def _flow_adds_up(study, rows):
    """Every table: rows read = used + excluded; and every visit row reached a table or an exclusion."""
    flow = study.flow().set_index(["stage", "table"])["n"]
    for table, n_read in study.rows_read.items():
        excluded = flow[[k for k in flow.index if k[1] == table and k[0].startswith("rows excluded")]].sum()
        assert n_read == flow[("rows used", table)] + excluded, table
    seen = set(study.sessions["_row"]) | set(study.scores["_row"]) | set(study.exclusions["row"].dropna())
    assert seen == set(rows), sorted(set(rows) ^ seen)


def test_no_treatment_marks_blank_and_missing_value_marks():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,2024-07-01,Deep tissue,7\n"     # 2 session + score
                  "p1,2024-07-08,,6\n"                # 3 blank: score only
                  "p2,2024-07-01,No treatment,5\n"    # 4 declares p2 untreated
                  "p3,2024-07-01,none,5\n"            # 5 the vocabulary's "none": untreated
                  "p4,2024-07-01,N/A,5\n"             # 6 a missing-value mark: as blank, score only
                  "p5,2024-07-01,Swedish,5\n"         # 7
                  "p5,2024-07-08,n/a,4\n")            # 8 as blank
    study, warned = _load(visits, errors="raise")
    assert study.sessions["_row"].tolist() == [2, 7]
    ep = study.episodes.set_index("episode_id")
    assert ep["modality"].to_dict() == {"p1": "deep_tissue", "p2": "untreated", "p3": "untreated", "p4": "unknown",
                                        "p5": "swedish"}
    assert study.exclusions.empty and not warned
    assert any("2 value(s) of 'Treatment' are missing-value marks ('N/A', 'n/a'), read as blank: lines 6, 8" in n
               for n in study.notes)
    _flow_adds_up(study, range(2, 9))


def test_several_score_columns_with_blanks():
    visits = _csv("PatientID,VisitDate,Treatment,NRS,ODI\n"
                  "p1,2024-07-01,Cupping,7,40\n"      # 2 NRS + ODI
                  "p1,2024-07-08,Cupping,,30\n"       # 3 ODI only
                  "p1,2024-07-15,,5,\n"               # 4 NRS only
                  "p1,2024-07-22,,,\n")               # 5 neither: a missing score of the first column
    study, _ = _load(visits)
    assert sorted(zip(study.scores["instrument"], study.scores["_row"])) == [
        ("nrs", 2), ("nrs", 4), ("odi", 2), ("odi", 3)]
    assert study.exclusions[["row", "column", "reason"]].values.tolist() == [[5, "NRS", "missing_value"]]
    _flow_adds_up(study, range(2, 6))


def test_mixed_serial_and_timed_dates_in_one_column():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,14/07/2024,Deep tissue,7\n"          # 2 day first (14 > 12)
                  "p1,2024-07-21,Deep tissue,6\n"          # 3 ISO
                  "p1,45504,,5\n"                          # 4 Excel serial: 45504 days after 1899-12-30 = 2024-07-31
                  "p1,45511.75,,4\n"                       # 5 serial with a time: 2024-08-07
                  "p1,14/08/2024 10:15,,3\n"               # 6 date and time
                  "p1,2024-08-21T09:30:00,,2\n")           # 7 ISO date-time
    study, _ = _load(visits, errors="raise")
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-07-14", "2024-07-21", "2024-07-31", "2024-08-07", "2024-08-14", "2024-08-21"]
    notes = " ".join(study.notes)
    assert "2 date(s) of <visits DataFrame>: 'VisitDate' read as Excel serial day numbers (lines 4, 5;" in notes
    assert "2 date(s) of <visits DataFrame>: 'VisitDate' hold a time of day: times of day dropped (lines 6, 7)" in notes


def test_without_an_episode_column_the_notes_say_how_episodes_are_formed():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,2023-01-10,Deep tissue,7\n"         # 2
                  "p1,2023-01-17,Deep tissue,5\n"         # 3
                  "p1,2023-02-01,,2\n"                    # 4
                  "p1,2024-06-01,Cupping,8\n"             # 5: 486 days after line 4 (2023-02-01 -> 2024-06-01)
                  "p1,2024-06-08,Cupping,6\n"             # 6
                  "p2,2024-06-01,Swedish,6\n")            # 7
    study, _ = _load(visits)
    assert study.episodes["episode_id"].tolist() == ["p1", "p2"]
    notes = " ".join(study.notes)
    assert "each patient's visits are one episode (episode_id = patient id)" in notes
    assert "1 patient(s) have visits more than 90 days apart (p1: 486 days, lines 4 and 5)" in notes
    split, _ = _load(visits, episode_gap=90)
    assert split.episodes[["episode_id", "modality"]].values.tolist() == [
        ["p1/1", "deep_tissue"], ["p1/2", "cupping"], ["p2/1", "swedish"]]
    assert split.scores.set_index("_row")["episode_id"].to_dict() == {2: "p1/1", 3: "p1/1", 4: "p1/1", 5: "p1/2",
                                                                      6: "p1/2", 7: "p2/1"}
    assert any("a new episode starts after more than 90 days without a visit" in n for n in split.notes)
    with pytest.raises(ValueError, match="episode_gap"):
        load_visits(visits, episode_gap=-3, today=TODAY)
    with pytest.raises(ValueError, match="episode_gap"):
        load_visits(visits.assign(Episode="e1"), episode="Episode", episode_gap=90, today=TODAY)


def test_duplicate_visits_the_same_day():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,2024-07-01,Deep tissue,7\n"     # 2
                  "p1,2024-07-01,Deep tissue,7\n"     # 3 exact duplicate of 2: set aside in both tables
                  "p1,2024-07-01,Cupping,6\n"         # 4 another treatment that day: a session and a score
                  "p1,2024-07-08,,5\n")               # 5
    study, _ = _load(visits)
    assert study.sessions["_row"].tolist() == [2, 4] and study.scores["_row"].tolist() == [2, 4, 5]
    assert sorted(study.exclusions[["table", "row", "reason"]].values.tolist()) == [["scores", 3, "duplicate"],
                                                                                   ["sessions", 3, "duplicate"]]
    _flow_adds_up(study, range(2, 6))


@pytest.mark.parametrize("header", ["Patient ID,Visit Date,Treatment,NPRS_score",
                                    "patient-id,visit-date,treatment,Pain (0-10)",
                                    "PatientID,Date,Modality,Pain (0-10)",
                                    "\ufeffPatient ID ,Visit\u00a0Date,Treatment ,NRS ",
                                    "Patient_ID,Date of visit,Therapy,Pain score"])
def test_header_variants_are_found(header):
    study, _ = _load(_csv(header + "\np1,2024-07-01,Deep tissue,7\np1,2024-07-08,,5\n"))
    assert study.scores["score"].tolist() == [7.0, 5.0] and study.sessions["modality"].tolist() == ["deep_tissue"]


def test_two_columns_named_like_one_instrument_must_be_declared():
    visits = _csv("PatientID,VisitDate,Treatment,NRS,Pain score\np1,2024-07-01,Cupping,7,6\n")
    with pytest.raises(ValueError, match="scores: columns 'NRS', 'Pain score' of <visits DataFrame> are each named "
                                         "like a nrs score"):
        load_visits(visits, today=TODAY)
    study, _ = _load(visits, scores={"NRS": "nrs"})
    assert study.scores["score"].tolist() == [7.0]


def test_unicode_and_whitespace_in_treatment_labels():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,2024-07-01,Deep\u00a0tissue,7\n"          # no-break space
                  "p2,2024-07-01,Deep  tissue ,6\n"            # double and trailing space
                  "p3,2024-07-01,No\u00a0treatment,5\n"
                  "p4,2024-07-01,Swedish\u200b,5\n"            # zero-width space
                  "p5,2024-07-01,\uff33\uff37\uff25\uff24\uff29\uff33\uff28,5\n")   # full-width SWEDISH
    study, _ = _load(visits, errors="raise")
    assert study.episodes.set_index("episode_id")["modality"].to_dict() == {
        "p1": "deep_tissue", "p2": "deep_tissue", "p3": "untreated", "p4": "swedish", "p5": "swedish"}


def test_invisible_characters_do_not_split_a_patient():
    visits = _csv("PatientID,VisitDate,Treatment,NRS\n"
                  "p1,2024-07-01,Cupping,7\n"
                  "p1\u200b,2024-07-08,,5\n"                 # 3: zero-width space after the id
                  "\uff50\uff11,2024-07-15,,4\n")            # 4: full-width p1
    study, _ = _load(visits, errors="raise")
    assert study.episodes["episode_id"].tolist() == ["p1"] and study.scores["patient_id"].tolist() == ["p1"] * 3
    assert any("2 id(s) of 'PatientID' held invisible or full-width characters, removed or read in compatibility "
               "form: lines 3, 4" in n for n in study.notes)


def test_formula_strings_never_reach_a_csv_as_formulas(tmp_path):
    visits = _csv("PatientID,VisitDate,Treatment,NRS,Therapist\n"
                  '=1+1,2024-07-01,"=HYPERLINK(""http://x"")",7,@SUM(A1)\n'
                  "p1,2024-07-08,+cmd|' /C calc'!A0,6,-2+3\n"
                  "p2,2024-07-08,Swedish,6,=2+2\n")
    study, _ = _load(visits)
    for name in ("sessions", "scores", "episodes", "exclusions"):
        path = tmp_path / f"{name}.csv"
        safe_csv(getattr(study, name), path)
        cells = pd.read_csv(path, dtype=str, keep_default_na=False).to_numpy().ravel()
        assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit())], name
    assert study.sessions["therapist_id"].tolist() == ["=2+2"]   # kept as written in memory, quoted on output


def test_bad_arguments_name_the_argument():
    visits = _csv("PatientID,VisitDate,NRS\np1,2024-07-01,7\n")
    with pytest.raises(TypeError, match="untreated_labels must be text labels"):
        load_visits(visits, untreated_labels=5)
    for bad in (42, None, [visits]):
        with pytest.raises(TypeError, match="visits must be"):
            load_visits(bad)
    with pytest.raises(TypeError, match="patients must be"):
        load_visits(visits, patients=42)
    for bad in ("90 days", True, 0):
        with pytest.raises(ValueError, match="episode_gap must be a positive number"):
            load_visits(visits, episode_gap=bad)
    with pytest.raises(ValueError, match="sheet=2: only a workbook"):
        load_visits(visits, sheet=2)


def test_excel_serial_dates_name_their_epoch_and_can_be_left_alone():
    import numpy as np

    from backpain_outcomes.visits_prepare import prepare_dates

    values = pd.Series(["45504", 45505, "2024-08-21"])
    out, notes = prepare_dates(values, np.array([2, 3, 4]), "d")
    # 45504 days after 1899-12-30 is 2024-07-31 (Excel for Windows shows 45504 as 31/07/2024)
    assert out.tolist() == ["2024-07-31", "2024-08-01", "2024-08-21"]
    assert "Excel's 1900 date system; a workbook in the 1904 date system would give dates 1,462 days later" in notes[0]
    kept, said = prepare_dates(values, np.array([2, 3, 4]), "d", excel_serial=False)
    assert kept.tolist() == values.tolist() and said == []
