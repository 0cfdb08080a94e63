"""Long visit exports: one table of visits gives the same study as the four-table form of the same data, and
every problem names the visit file's own line and column. Expected lines are counted by hand (header = line 1)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY, write

import backpain_outcomes as bpo
from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning
from backpain_outcomes.visits import instrument_of_column, load_visits

# The shape of a clinic export: PatientID, VisitDate (dd/mm/yyyy), Treatment with "No treatment", PainScore(0-10).
VISITS = ('PatientID,VisitDate,Treatment,PainScore(0-10),Notes\n'   # 1
          'p1,01/07/2024,Deep tissue massage,7,\n'                  # 2
          'p1,14/07/2024,Deep tissue massage,5,"long note\n'        # 3 (the quoted note spans lines 3-4)
          'on two lines"\n'
          'p1,03/08/2024,,3,\n'                                     # 5 score only
          '\n'                                                      # 6 blank
          'p2,02/07/2024,No treatment,6,\n'                         # 7 declares p2 untreated
          'p2,09/07/2024,No treatment,6,\n'                         # 8
          'p2,05/08/2024,,2,\n'                                     # 9
          'p3,04/07/2024,Cupping,8,\n'                              # 10
          'p3,11/07/2024,Cupping,,\n')                              # 11 session only
SESSIONS = ("patient_id,session_date,modality\n"
            "p1,2024-07-01,Deep tissue massage\np1,2024-07-14,Deep tissue massage\n"
            "p2,2024-07-02,No treatment\np2,2024-07-09,No treatment\n"
            "p3,2024-07-04,Cupping\np3,2024-07-11,Cupping\n")
SCORES = ("patient_id,date,instrument,score\n"
          "p1,2024-07-01,nrs,7\np1,2024-07-14,nrs,5\np1,2024-08-03,nrs,3\n"
          "p2,2024-07-02,nrs,6\np2,2024-07-09,nrs,6\np2,2024-08-05,nrs,2\np3,2024-07-04,nrs,8\n")


def _plain(df):
    return df.drop(columns=[c for c in ("_source", "_row") if c in df]).reset_index(drop=True)


def _same_study(a, b):
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    pd.testing.assert_frame_equal(_plain(a.scores), _plain(b.scores))
    pd.testing.assert_frame_equal(_plain(a.sessions), _plain(b.sessions), check_dtype=False)
    assert a.n_untreated_records == b.n_untreated_records


def test_a_visit_export_gives_the_study_of_its_four_table_form(tmp_path):
    write(tmp_path / "visits.csv", VISITS)
    study = load_visits(tmp_path / "visits.csv", patient="PatientID", date="VisitDate", treatment="Treatment",
                        scores={"PainScore(0-10)": "nrs"}, today=TODAY)
    (tmp_path / "four").mkdir()
    write(tmp_path / "four" / "sessions.csv", SESSIONS)
    write(tmp_path / "four" / "scores.csv", SCORES)
    _same_study(study, bpo.load_study(tmp_path / "four", today=TODAY))
    ep = study.episodes.set_index("episode_id")
    assert ep["modality"].to_dict() == {"p1": "deep_tissue", "p2": "untreated", "p3": "cupping"}
    assert ep["treatment_status"].to_dict() == {"p1": "treated", "p2": "untreated", "p3": "treated"}
    # every row keeps the line of the visit file it came from
    assert study.scores["_row"].tolist() == [2, 3, 5, 7, 8, 9, 10]
    assert study.sessions["_row"].tolist() == [2, 3, 10, 11]   # "No treatment" rows are not sessions
    assert set(study.scores["_source"]) == {"visits.csv"}
    assert study.exclusions[["row", "reason"]].values.tolist() == [[6, "blank_row"]]
    # 14/07/2024 proves day first: the whole column is read that way, and the notes say so
    assert any("01/07/2024 read as day/month/year" in n and "14/07/2024" in n for n in study.notes)
    assert study.notes[0].startswith("visits.csv: 9 visit row(s) (patient 'PatientID', date 'VisitDate') split into "
                                     "6 session(s) from 'Treatment' (2 of them 'no treatment' records), "
                                     "7 nrs score(s) from 'PainScore(0-10)'")
    assert study.input_files == [(tmp_path / "visits.csv").resolve()]


def test_columns_are_found_by_their_names(tmp_path):
    write(tmp_path / "visits.csv", VISITS.replace("PatientID,VisitDate,Treatment,PainScore(0-10)",
                                                  "Patient ID,Visit Date,treatment,NPRS_score"))
    study = load_visits(tmp_path / "visits.csv", today=TODAY)
    assert len(study.scores) == 7 and set(study.scores["instrument"]) == {"nrs"}
    assert "found by name: patient 'Patient ID', date 'Visit Date', treatment 'treatment', nrs scores 'NPRS_score'" \
        in study.notes[0]
    # declared names may differ in case, spaces and brackets
    study = load_visits(tmp_path / "visits.csv", patient="patient id", date="VisitDate", scores=["NPRS score"],
                        today=TODAY)
    assert len(study.scores) == 7


def test_problems_name_the_visit_file_line_and_column_once(tmp_path):
    text = ("PatientID,VisitDate,Treatment,PainScore(0-10)\n"
            "p1,14/07/2024,Deep tissue,7\n"       # 2 ok (and proves day first)
            "p1,31/02/2024,Deep tissue,5\n"       # 3 bad date (both the session and the score): one problem
            "p1,03/08/2024,Hot stones,11\n"       # 4 unknown treatment, score out of range
            "p1,04/08/2024,,\n"                   # 5 neither a treatment nor a score
            ",05/08/2024,Cupping,4\n")            # 6 patient missing
    write(tmp_path / "visits.csv", text)
    with pytest.raises(DataValidationError) as info:
        load_visits(tmp_path / "visits.csv", scores={"PainScore(0-10)": "NRS"}, today=TODAY)
    p = info.value.problems
    got = sorted(zip(p["row"].astype(int), p["column"], p["reason"]))
    assert got == [(3, "VisitDate", "bad_date"), (4, "PainScore(0-10)", "out_of_range"),
                   (4, "Treatment", "unknown_modality"), (5, "PainScore(0-10)", "missing_value"),
                   (6, "PatientID", "missing_value")]
    assert set(p["source"]) == {"visits.csv"}
    assert "visits.csv:3:VisitDate: not a valid date (got '31/02/2024'" in str(info.value)
    # exclude mode: every derived row is accounted for (a visit line may be a session and a score)
    with pytest.warns(ExcludedRowsWarning):
        study = load_visits(tmp_path / "visits.csv", scores={"PainScore(0-10)": "NRS"}, today=TODAY,
                            errors="exclude", modality_map={"Hot stones": "other"})
    ex = study.exclusions
    assert sorted(zip(ex["table"], ex["row"].astype(int), ex["column"])) == [
        ("scores", 3, "VisitDate"), ("scores", 4, "PainScore(0-10)"), ("scores", 5, "PainScore(0-10)"),
        ("scores", 6, "PatientID"), ("sessions", 3, "VisitDate"), ("sessions", 6, "PatientID")]
    flow = study.flow().set_index(["stage", "table"])["n"]
    for table in ("sessions", "scores"):
        excluded = flow[[s.startswith("rows excluded") for s, _ in flow.index]].xs(table, level="table").sum()
        assert flow[("rows read", table)] == flow[("rows used", table)] + excluded


def test_several_score_columns_and_declared_untreated_labels():
    visits = pd.DataFrame({"PatientID": ["p1", "p1", "p2", "p2"],
                           "VisitDate": ["2024-07-01", "2024-07-20", "2024-07-02", "2024-07-25"],
                           "Treatment": ["Swedish", "Swedish", "Advice only", None],
                           "NRS": [7, 3, 6, None], "ODI (%)": [40, None, 30, 20]})
    study = load_visits(visits, untreated_labels=["Advice only"], today=TODAY)
    assert study.episodes.set_index("episode_id")["modality"].to_dict() == {"p1": "swedish", "p2": "untreated"}
    sc = study.scores.sort_values(["instrument", "_row"])
    # DataFrame rows are on line position + 2; each score column is named in the source
    assert list(zip(sc["instrument"], sc["_row"], sc["_source"])) == [
        ("nrs", 2, "<visits DataFrame> (NRS)"), ("nrs", 3, "<visits DataFrame> (NRS)"),
        ("nrs", 4, "<visits DataFrame> (NRS)"), ("odi", 2, "<visits DataFrame> (ODI (%))"),
        ("odi", 4, "<visits DataFrame> (ODI (%))"), ("odi", 5, "<visits DataFrame> (ODI (%))")]
    with pytest.raises(DataValidationError) as info:  # without the label, "Advice only" is an unknown modality
        load_visits(visits, today=TODAY)
    assert info.value.problems[["row", "column", "reason"]].values.tolist() == [[4, "Treatment", "unknown_modality"]]


def test_dates_readable_both_ways_everywhere_are_refused(tmp_path):
    write(tmp_path / "visits.csv", "PatientID,VisitDate,NRS\np1,03/04/2024,5\np1,05/06/2024,3\n")
    with pytest.raises(DataValidationError) as info:
        load_visits(tmp_path / "visits.csv", today=TODAY)
    assert info.value.problems[["row", "column", "reason"]].values.tolist() == [
        [2, "VisitDate", "ambiguous_date"], [3, "VisitDate", "ambiguous_date"]]
    study = load_visits(tmp_path / "visits.csv", today=TODAY, dayfirst=False)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-04", "2024-05-06"]


def test_the_order_is_proved_by_the_whole_column_not_by_each_table(tmp_path):
    # the only date above 12 is on a session-only row; the score rows' dates are read in the same order
    write(tmp_path / "visits.csv", "PatientID,VisitDate,Treatment,NRS\np1,03/04/2024,,5\np1,25/04/2024,Cupping,\n")
    study = load_visits(tmp_path / "visits.csv", today=TODAY)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-03"]


def test_declared_columns_that_are_not_there(tmp_path):
    write(tmp_path / "visits.csv", "PatientID,VisitDate,Pain\np1,2024-01-05,5\n")
    with pytest.raises(ValueError, match=r"patient='Patient_No': no such column in visits.csv"):
        load_visits(tmp_path / "visits.csv", patient="Patient_No", scores={"Pain": "nrs"})
    with pytest.raises(ValueError, match="no column of visits.csv is named after an instrument"):
        load_visits(tmp_path / "visits.csv")
    with pytest.raises(ValueError, match="the instrument of column 'Pain' cannot be told"):
        load_visits(tmp_path / "visits.csv", scores="Pain")
    with pytest.raises(ValueError, match=r"scores\['Pain'\]='SF-36' is not a known instrument"):
        load_visits(tmp_path / "visits.csv", scores={"Pain": "SF-36"})
    with pytest.raises(ValueError, match="errors"):
        load_visits(tmp_path / "visits.csv", scores={"Pain": "nrs"}, errors="ignore")
    with pytest.raises(TypeError, match="untreated_labels"):
        load_visits(tmp_path / "visits.csv", scores={"Pain": "nrs"}, untreated_labels=[1])
    write(tmp_path / "empty.csv", "PatientID,VisitDate,NRS\n")
    with pytest.raises(DataValidationError, match="no data rows"):
        load_visits(tmp_path / "empty.csv")
    write(tmp_path / "noscore.csv", "PatientID,VisitDate,Treatment,NRS\np1,2024-01-05,Cupping,\n")
    with pytest.raises(DataValidationError, match="no row has a score in 'NRS'"):
        load_visits(tmp_path / "noscore.csv", today=TODAY)


def test_instrument_of_column():
    names = {"PainScore(0-10)": "nrs", "NPRS_score": "nrs", "Pain NRS": "nrs", "VAS (mm)": "vas", "ODI": "odi",
             "Oswestry score": "odi", "RMDQ_total": "rmdq", "Treatment": None, "Score": None, "VisitDate": None}
    assert {n: instrument_of_column(n) for n in names} == names


@pytest.fixture(scope="module")
def example_as_visits(tmp_path_factory):
    """The shipped example study rewritten as one visit export (dd/mm/yyyy dates, NRS and ODI columns)."""
    ex = bpo.example_path()
    ss = pd.read_csv(ex / "sessions.csv").rename(columns={"session_date": "date"})
    sc = pd.read_csv(ex / "scores.csv").pivot(index=["patient_id", "episode_id", "date"], columns="instrument",
                                             values="score").reset_index()
    v = ss.merge(sc, on=["patient_id", "episode_id", "date"], how="outer").sort_values(["patient_id", "date"])
    v["date"] = pd.to_datetime(v["date"]).dt.strftime("%d/%m/%Y")
    v = v.rename(columns={"patient_id": "PatientID", "episode_id": "EpisodeID", "date": "VisitDate",
                          "modality": "Treatment", "therapist_id": "Therapist", "duration_min": "Duration (min)",
                          "nrs": "NRS", "odi": "ODI"})
    path = tmp_path_factory.mktemp("visits") / "export.csv"
    v.to_csv(path, index=False)
    return path


def test_the_example_study_as_one_visit_export_loads_to_the_same_study(example_as_visits):
    ex = bpo.example_path()
    study = load_visits(example_as_visits, patients=ex / "patients.csv", episodes=ex / "episodes.csv")
    _same_study(study, bpo.load_study(ex))
    assert study.rows_read["sessions"] == 3762 and study.rows_read["scores"] == 12880
    assert any("read as day/month/year" in n for n in study.notes)


def test_load_visits_takes_each_sheet_of_a_workbook(tmp_path):
    a = pd.DataFrame({"PatientID": ["p1", "p1"], "VisitDate": ["2024-07-01", "2024-07-09"], "NRS": [7, 2]})
    with pd.ExcelWriter(tmp_path / "visits.xlsx") as xw:
        a.to_excel(xw, sheet_name="Clinic A", index=False)
        a.assign(PatientID=["p2", "p2"], NRS=[5, 12]).to_excel(xw, sheet_name="Clinic B", index=False)
    with pytest.raises(DataValidationError) as info:
        load_visits(tmp_path / "visits.xlsx", today=TODAY)
    assert "visits.xlsx[Clinic B]:3:NRS: nrs score is out of range" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        study = load_visits(tmp_path / "visits.xlsx", today=TODAY, errors="exclude")
    assert np.array_equal(study.scores["score"], [7.0, 2.0, 5.0])


def test_a_global_rating_of_change_column():
    visits = pd.DataFrame({"PatientID": ["p1", "p1", "p2"], "VisitDate": ["2024-07-01", "2024-07-29", "2024-07-02"],
                           "NRS": [7, 2, 6], "Global change": [None, 2, 9]})
    with pytest.raises(DataValidationError) as info:
        load_visits(visits, scores={"NRS": "nrs", "Global change": "PGIC"}, today=TODAY)
    assert info.value.problems[["row", "column", "reason"]].values.tolist() == [[4, "Global change", "out_of_range"]]
    study = load_visits(visits.assign(**{"Global change": [None, 2, 5]}), scores={"NRS": None, "Global change": "grc"},
                        today=TODAY)
    assert study.scores.groupby("instrument").size().to_dict() == {"grc": 2, "nrs": 3}
