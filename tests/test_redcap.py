"""REDCap exports: a longitudinal flat export, its data dictionary and a mapping give the study derived by hand
from the export's rows (tests/data/redcap/make_files.py lists them with their lines; line 2 = first record row).

The export (records_raw.csv), by line: 2 enrolment of 101 (onset 2024-02-20, ODI items 2321212312), 3-5 its
sessions, 6-8 its NRS, 9 an adverse event (instrument not mapped), 10 its week-6 ODI (1110101101), 11 its week-6
NRS; 12 enrolment of 102 (ODI 3332223223), 13-14 its sessions (14: date 2024-13-06), 15-16 its NRS (16: no
score), 17 week-6 NRS, 18 an exit NRS (event not mapped); 19 enrolment of 103 in arm 2 (ODI nine 2s, one blank),
20-22 its NRS, 23 its week-6 ODI (ten 1s); 24 enrolment of 104 (no ODI), 25-26 its NRS, 27 an empty week-6 row.
"""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning
from backpain_outcomes.redcap import load_redcap
from backpain_outcomes.redcap_export import event_key
from backpain_outcomes.redcap_mapping import parse_choices, read_dictionary, read_mapping

DATA = Path(__file__).parent / "data" / "redcap"
DICTIONARY = DATA / "dictionary.csv"
TODAY = "2025-01-01"
ITEMS = [f"odi_q{k}" for k in range(1, 11)]
MAPPING = {
    "events": ["enrolment_arm_1", "treatment_arm_1", "week_6_arm_1", "enrolment_arm_2", "follow_up_arm_2",
               "week_6_arm_2"],
    "arms": {1: "treated", 2: "natural course"},
    "onset": "onset_date",
    "patients": {"age": "age", "sex": "sex", "clinic": "site"},
    "sessions": {"instrument": "treatment_session", "date": "sess_date", "treatment": "sess_modality",
                 "therapist": "sess_therapist", "duration": "sess_minutes"},
    "scores": [{"instrument": "pain_nrs", "date": "nrs_date", "value": "nrs_score", "as": "nrs"},
               {"instrument": "oswestry", "date": "odi_date", "items": ITEMS, "as": "odi"}],
}
# Sessions with a valid date, by line: modality codes 1 = Deep tissue, 2 = Trigger point, 5 = Cupping; therapist
# 1 = T. Ngata, 2 = R. Okafor (dictionary.csv).
SESSIONS = [("101", "2024-03-04", "deep_tissue", "T. Ngata", 45.0, 3),
            ("101", "2024-03-11", "deep_tissue", "T. Ngata", 45.0, 4),
            ("101", "2024-03-18", "trigger_point", "R. Okafor", 30.0, 5),
            ("102", "2024-03-06", "cupping", "R. Okafor", 30.0, 13)]
# NRS as written; ODI = 100 * sum of sections / (5 * sections answered) (Fairbank & Pynsent 2000):
# line 2 19/50 = 38, line 10 7/50 = 14, line 12 25/50 = 50, line 19 18/45 = 40, line 23 10/50 = 20.
SCORES = [("101", "2024-03-04", "nrs", 7.0, 6), ("101", "2024-03-11", "nrs", 5.0, 7),
          ("101", "2024-03-18", "nrs", 3.0, 8), ("101", "2024-04-15", "nrs", 1.0, 11),
          ("101", "2024-03-04", "odi", 38.0, 2), ("101", "2024-04-15", "odi", 14.0, 10),
          ("102", "2024-03-06", "nrs", 8.0, 15), ("102", "2024-04-17", "nrs", 4.0, 17),
          ("102", "2024-03-06", "odi", 50.0, 12),
          ("103", "2024-03-08", "nrs", 6.0, 20), ("103", "2024-03-22", "nrs", 4.0, 21),
          ("103", "2024-04-05", "nrs", 3.0, 22), ("103", "2024-03-08", "odi", 40.0, 19),
          ("103", "2024-04-19", "odi", 20.0, 23),
          ("104", "2024-03-12", "nrs", 5.0, 25), ("104", "2024-03-26", "nrs", 2.0, 26)]


def _load(records=DATA / "records_raw.csv", mapping=MAPPING, dictionary=DICTIONARY, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcludedRowsWarning)
        study = load_redcap(records, dictionary, mapping, today=TODAY, errors="exclude", **kw)
    return study, [str(w.message) for w in caught]


def _sessions(study):
    ss = study.sessions
    return list(zip(ss["episode_id"], ss["session_date"].dt.strftime("%Y-%m-%d"), ss["modality"],
                    ss["therapist_id"], ss["duration_min"], ss["_row"]))


def _scores(study):
    sc = study.scores
    return list(zip(sc["episode_id"], sc["date"].dt.strftime("%Y-%m-%d"), sc["instrument"], sc["score"],
                    sc["_row"]))


@pytest.fixture(scope="module")
def raw_study():
    return _load()


def test_sessions_and_scores_are_the_hand_derived_ones(raw_study):
    study, warned = raw_study
    assert _sessions(study) == SESSIONS
    assert _scores(study) == SCORES
    assert warned == ["2 invalid row(s) were excluded (see study.exclusions; reasons: {'missing_value': 1, "
                      "'bad_date': 1})"]


def test_episodes_take_onset_arm_and_patient_fields_from_the_enrolment_rows(raw_study):
    ep = raw_study[0].episodes.set_index("episode_id")
    assert ep["onset_date"].dt.strftime("%Y-%m-%d").to_dict() == {
        "101": "2024-02-20", "102": "2024-01-10", "103": "2024-03-01", "104": "2024-03-05"}
    # arm 1 is "treated" (sessions give the modality), arm 2 "natural course" (untreated, no sessions)
    assert ep["modality"].to_dict() == {"101": "deep_tissue", "102": "cupping", "103": "untreated",
                                        "104": "untreated"}
    assert ep["treatment_status"].tolist() == ["treated", "treated", "untreated", "untreated"]
    assert ep["age"].tolist() == [42.0, 35.0, 51.0, 29.0]
    assert ep["sex"].tolist() == ["female", "male", "female", "male"]          # codes 1, 2, 1, 2
    assert ep["clinic_id"].tolist() == ["North clinic", "South clinic", "North clinic", "South clinic"]


def test_problems_name_the_line_and_field_of_the_export():
    with pytest.raises(DataValidationError) as err:
        load_redcap(DATA / "records_raw.csv", DICTIONARY, MAPPING, today=TODAY)
    got = err.value.problems[["source", "row", "column", "value", "reason"]].astype(object)
    assert got.values.tolist() == [["records_raw.csv", 14, "sess_date", "2024-13-06", "bad_date"],
                                   ["records_raw.csv", 16, "nrs_score", None, "missing_value"]]
    assert "records_raw.csv:14:sess_date: not a valid date (got '2024-13-06'" in str(err.value)


def test_every_row_is_used_or_reported_with_its_reason(raw_study):
    study = raw_study[0]
    ex = study.exclusions
    assert ex[["table", "source", "row", "column", "reason"]].values.tolist() == [
        ["scores", "records_raw.csv (pain_nrs)", 16, "nrs_score", "missing_value"],
        ["sessions", "records_raw.csv", 14, "sess_date", "bad_date"]]
    notes = study.notes
    # 26 record rows (lines 2-27): sessions 3-5, 13-14; NRS 6-8, 11, 15-17, 20-22, 25-26; ODI 2, 10, 12, 19, 23;
    # enrolment rows 2, 12, 19, 24; not used: 18 (event), 9 (instrument), 27 (nothing mapped)
    assert notes[0] == ("records_raw.csv: 26 row(s) read: 5 session(s) from 'treatment_session'; 12 nrs score(s) "
                        "from 'pain_nrs'; 5 odi score(s) from 'oswestry'; 4 row(s) holding patient or episode fields")
    assert notes[1] == ("records_raw.csv: not used: 1 row(s) of the event 'exit_arm_1', not in mapping['events'] "
                        "(line 18)")
    assert notes[2] == ("records_raw.csv: not used: 1 row(s) of the repeating instrument 'adverse_event', not in "
                        "the mapping (line 9)")
    assert notes[3] == ("records_raw.csv: not used: 1 row(s) holding no treatment, score, patient or episode value "
                        "(line 27)")
    flow = study.flow().set_index(["stage", "table"])["n"]
    for table, used, excluded in (("sessions", 4, 1), ("scores", 16, 1), ("episodes", 4, 0), ("patients", 4, 0)):
        assert flow[("rows read", table)] == used + excluded
        assert flow[("rows used", table)] == used


def test_the_label_export_gives_the_same_study():
    raw, _ = _load()
    lab, _ = _load(DATA / "records_labels.csv")
    assert _sessions(lab) == SESSIONS
    assert _scores(lab) == SCORES
    cols = ["episode_id", "onset_date", "modality", "age", "sex", "clinic_id"]
    pd.testing.assert_frame_equal(lab.episodes[cols], raw.episodes[cols])
    # the same problems, named by the label export's own headers
    assert lab.exclusions[["row", "column", "reason"]].values.tolist() == [
        [16, "Pain now (0-10)", "missing_value"], [14, "Date", "bad_date"]]
    assert "records_labels.csv: not used: 1 row(s) of the event 'Exit (Arm 1: Massage)'" in lab.notes[1]
    assert "headers read as field labels" in " ".join(lab.notes)


def test_an_instrument_label_unlike_its_name_is_read_from_the_fields_it_fills():
    lab = pd.read_csv(DATA / "records_labels.csv", dtype=str, keep_default_na=False)
    lab["Repeat Instrument"] = lab["Repeat Instrument"].replace("Pain NRS", "Numeric pain rating")
    study, _ = _load(lab)
    assert _scores(study) == SCORES
    assert ("<REDCap records DataFrame>: repeating instrument 'Numeric pain rating' read as the instrument 'pain_nrs', "
            "whose fields its rows fill") in study.notes


def test_raw_headers_with_label_values_load_alike():
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    lab = pd.read_csv(DATA / "records_labels.csv", dtype=str, keep_default_na=False)
    mixed = raw.copy()
    for col in ("sess_modality", "sess_therapist", "nrs_score", "sex", "site", *ITEMS):
        mixed[col] = lab.iloc[:, list(raw.columns).index(col)]
    assert mixed.loc[0, "odi_q1"] == "Moderate" and mixed.loc[1, "sess_modality"] == "Deep tissue"
    study, _ = _load(mixed)
    assert _scores(study) == SCORES
    assert _sessions(study) == SESSIONS


def test_an_item_scored_row_without_any_item_is_a_problem_of_its_line():
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    raw.loc[21, ITEMS] = ""  # line 23: the ODI date of 103's week 6 stays, no section answered
    with pytest.raises(DataValidationError) as err:
        load_redcap(raw, DICTIONARY, MAPPING, today=TODAY)
    assert err.value.problems[["row", "column", "reason"]].values.tolist() == [
        [14, "sess_date", "bad_date"], [16, "nrs_score", "missing_value"], [23, "odi_q1..odi_q10", "missing_value"]]
    study, warned = _load(raw)
    assert 23 not in study.scores["_row"].tolist() and len(study.scores) == len(SCORES) - 1
    assert study.exclusions["row"].tolist() == [16, 14, 23]
    flow = study.flow().set_index(["stage", "table"])["n"]
    assert flow[("rows read", "scores")] == 17 and flow[("rows used", "scores")] == 15
    assert any("no item answered" in w for w in warned)


def test_a_record_field_with_two_values_is_one_problem_naming_both_lines():
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    raw.loc[8, "onset_date"] = "2024-02-21"  # line 10 (week 6 of record 101) repeats the onset differently
    with pytest.raises(DataValidationError) as err:
        load_redcap(raw, DICTIONARY, MAPPING, today=TODAY)
    first = err.value.problems.iloc[0]
    assert (first["row"], first["column"], first["reason"]) == (10, "record_id", "duplicate_id")
    assert "<REDCap records DataFrame>:2, <REDCap records DataFrame>:10" in first["message"]


def test_a_record_in_two_arms_is_two_episodes():
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    raw.loc[25, "redcap_event_name"] = "week_6_arm_1"       # line 27: 104 has an ODI in arm 1 too
    raw.loc[25, ["odi_date", *ITEMS]] = ["2024-04-20", *["1"] * 10]
    study, _ = _load(raw)
    ep = study.episodes.set_index("episode_id")
    assert ep.loc["104 (arm 1)", "patient_id"] == "104" and ep.loc["104 (arm 2)", "modality"] == "untreated"
    assert study.scores.loc[study.scores["_row"] == 27, "episode_id"].tolist() == ["104 (arm 1)"]


def test_without_an_event_list_every_event_is_read():
    mapping = {k: v for k, v in MAPPING.items() if k != "events"}
    study, _ = _load(mapping=mapping)
    assert 18 in study.scores["_row"].tolist()          # the exit NRS of 102 (2024-06-01, 2)
    assert not any("of the event" in n for n in study.notes)


def test_mapping_errors_name_the_key_the_field_and_close_matches():
    dic = read_dictionary(DICTIONARY)

    def error(change):
        mapping = json.loads(json.dumps(MAPPING))
        change(mapping)
        with pytest.raises((ValueError, TypeError)) as err:
            read_mapping(mapping, dic)
        return str(err.value)

    msg = error(lambda m: m["scores"][0].update(value="nrs_scor"))
    assert msg.startswith("mapping['scores'][0]['value']: no field 'nrs_scor' in the data dictionary dictionary.csv")
    assert "(did you mean 'nrs_score'?)" in msg
    msg = error(lambda m: m["scores"][0].update(value="sess_minutes"))
    assert msg == ("mapping['scores'][0]['value']: field 'sess_minutes' is on the instrument 'treatment_session', "
                   "not 'pain_nrs'")
    msg = error(lambda m: m["sessions"].update(instrument="treatment_sessions"))
    assert "no instrument 'treatment_sessions'" in msg and "(did you mean 'treatment_session'?)" in msg
    assert "unknown key 'onest'" in error(lambda m: m.update(onest="onset_date"))
    assert "mapping['scores'][1]['as']='oswestri' is not a known instrument" in error(
        lambda m: m["scores"][1].update({"as": "oswestri"}))
    assert "odi has 10 items; 9 field(s) given" in error(lambda m: m["scores"][1].update(items=ITEMS[:9]))
    assert "either 'value'" in error(lambda m: m["scores"][0].update(items=ITEMS))
    assert "mapping['patients']: unknown key 'gender'" in error(lambda m: m["patients"].update(gender="sex"))
    assert "either 'arms'" in error(lambda m: m.update(arm="site"))
    assert "field 'sess_modality' is a dropdown field, not a date" in error(
        lambda m: m["sessions"].update(date="sess_modality"))


def test_a_repeating_instrument_needs_its_own_date_field():
    mapping = json.loads(json.dumps(MAPPING))
    mapping["scores"][0]["date"] = "sess_date"   # pain_nrs repeats: its rows never hold the session date
    with pytest.raises(ValueError, match=r"mapping\['scores'\]\[0\]\['date'\]: field 'sess_date' is on the instrument "
                                         "'treatment_session', but 'pain_nrs' repeats"):
        load_redcap(DATA / "records_raw.csv", DICTIONARY, mapping, today=TODAY)


def test_a_visit_form_holds_the_session_and_the_score_and_an_event_date():
    """One visit form per event (date, treatment, NRS), the ODI on its own form dated by the visit's date; a visit
    without a score is a session only, a visit without a treatment a score only (lines counted by hand)."""
    dic = pd.DataFrame({"Variable / Field Name": ["record_id", "visit_date", "treatment", "nrs", "odi_total"],
                        "Form Name": ["enrolment", "visit", "visit", "visit", "oswestry"],
                        "Field Type": ["text", "text", "dropdown", "text", "text"],
                        "Choices, Calculations, OR Slider Labels": ["", "", "1, Swedish | 9, No treatment", "", ""],
                        "Text Validation Type OR Show Slider Number": ["", "date_ymd", "", "integer", "number"]})
    records = pd.DataFrame({
        "record_id": ["1", "1", "2", "2", "2"],
        "redcap_event_name": ["baseline_arm_1", "week_2_arm_1", "baseline_arm_1", "week_2_arm_1", "week_4_arm_1"],
        "visit_date": ["2024-05-01", "2024-05-15", "2024-05-02", "2024-05-16", "2024-05-30"],
        "treatment": ["1", "1", "9", None, None],
        "nrs": ["6", None, "5", "3", None],
        "odi_total": ["40", "30", None, None, None]})
    mapping = {"sessions": {"instrument": "visit", "date": "visit_date", "treatment": "treatment"},
               "scores": [{"instrument": "visit", "date": "visit_date", "value": "nrs", "as": "nrs"},
                          {"instrument": "oswestry", "date": "visit_date", "value": "odi_total", "as": "odi"}]}
    study = load_redcap(records, dic, mapping, today=TODAY)
    assert _scores(study) == [("1", "2024-05-01", "nrs", 6.0, 2), ("1", "2024-05-01", "odi", 40.0, 2),
                              ("1", "2024-05-15", "odi", 30.0, 3), ("2", "2024-05-02", "nrs", 5.0, 4),
                              ("2", "2024-05-16", "nrs", 3.0, 5)]
    assert study.sessions["_row"].tolist() == [2, 3]            # line 4 ("No treatment") declares 2 untreated
    assert study.episodes["modality"].tolist() == ["swedish", "untreated"]
    assert study.notes[1] == ("<REDCap records DataFrame>: not used: 1 row(s) holding no treatment, score, patient "
                              "or episode value (line 6)")


def test_a_mapping_loads_from_json_and_toml(tmp_path):
    dic = read_dictionary(DICTIONARY)
    (tmp_path / "m.json").write_text(json.dumps(MAPPING), encoding="utf-8")
    toml = ('events = ["enrolment_arm_1", "treatment_arm_1", "week_6_arm_1", "enrolment_arm_2", '
            '"follow_up_arm_2", "week_6_arm_2"]\nonset = "onset_date"\n'
            '[arms]\n1 = "treated"\n2 = "natural course"\n'
            '[patients]\nage = "age"\nsex = "sex"\nclinic = "site"\n'
            '[sessions]\ninstrument = "treatment_session"\ndate = "sess_date"\ntreatment = "sess_modality"\n'
            'therapist = "sess_therapist"\nduration = "sess_minutes"\n'
            '[[scores]]\ninstrument = "pain_nrs"\ndate = "nrs_date"\nvalue = "nrs_score"\nas = "nrs"\n'
            '[[scores]]\ninstrument = "oswestry"\ndate = "odi_date"\nas = "odi"\n'
            f'items = {json.dumps(ITEMS)}\n')
    (tmp_path / "m.toml").write_text(toml, encoding="utf-8")
    expected = read_mapping(MAPPING, dic)
    assert read_mapping(tmp_path / "m.json", dic) == expected
    assert read_mapping(tmp_path / "m.toml", dic) == expected
    with pytest.raises(ValueError, match="neither a .json nor a .toml"):
        read_mapping(tmp_path / "m.yaml", dic)


def test_a_mapped_field_missing_from_the_export_is_named():
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    with pytest.raises(ValueError, match=r"mapping\['sessions'\]\['duration'\]: the export .* has no column for "
                                         r"field 'sess_minutes'"):
        load_redcap(raw.drop(columns="sess_minutes"), DICTIONARY, MAPPING, today=TODAY)
    with pytest.raises(ValueError, match="has no column redcap_event_name"):
        load_redcap(raw.drop(columns="redcap_event_name"), DICTIONARY, MAPPING, today=TODAY)


def test_a_mapped_event_without_rows_is_noted_with_close_names():
    study, _ = _load(mapping={**MAPPING, "events": [*MAPPING["events"], "week_12_arm_1"]})
    assert any(n.startswith("mapping['events']: no row of event(s) 'week_12_arm_1'") and "did you mean" in n
               for n in study.notes)


def test_the_dictionary_reads_file_and_api_headers_alike():
    from_file = read_dictionary(DICTIONARY)
    from_api = read_dictionary(json.loads((DATA / "api_metadata.json").read_text(encoding="utf-8")))
    assert from_file.fields == from_api.fields
    assert from_file.record_id == "record_id" and "consent_info" not in from_file.fields   # descriptive
    assert from_file.forms == ["enrolment", "treatment_session", "pain_nrs", "oswestry", "adverse_event"]
    assert from_file.fields["sess_modality"].choices["9"] == "No treatment"
    with pytest.raises(ValueError, match="is not a REDCap data dictionary"):
        read_dictionary(pd.DataFrame({"name": ["x"]}))


def test_choices_and_events_are_parsed_as_redcap_writes_them():
    assert parse_choices("1, Deep tissue | 2, Swedish, relaxing") == {"1": "Deep tissue", "2": "Swedish, relaxing"}
    assert event_key("follow_up_arm_2") == event_key("Follow-up (Arm 2: Natural course)") == ("follow_up", 2)


def _dictionary_with(**changes):
    """The test dictionary as a DataFrame, with choices changed ({field: choices}) and fields added (name: row)."""
    d = pd.read_csv(DICTIONARY, dtype=str, keep_default_na=False)
    col = "Choices, Calculations, OR Slider Labels"
    for name, value in changes.items():
        if isinstance(value, str):
            d.loc[d["Variable / Field Name"] == name, col] = value
        else:
            d = pd.concat([d.iloc[:2], pd.DataFrame([dict(zip(d.columns, [name, *value]))]), d.iloc[2:]])
    return d.fillna("")


def test_untreated_and_treatment_labels_of_the_mapping():
    choices = "1, Deep tissue | 2, Trigger point | 5, Cupping | 8, Advice only | 9, No treatment"
    dic = _dictionary_with(sess_modality=choices)
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    raw.loc[[11, 12], "sess_modality"] = "8"        # lines 13-14: 102's sessions were advice only
    raw.loc[12, "sess_date"] = "2024-03-13"
    mapping = {k: v for k, v in MAPPING.items() if k != "arms"}
    with pytest.raises(DataValidationError) as err:   # "Advice only" is not in the vocabulary
        load_redcap(raw, dic, mapping, today=TODAY)
    assert err.value.problems[["row", "column", "value"]].values.tolist()[:2] == [
        [13, "sess_modality", "Advice only"], [14, "sess_modality", "Advice only"]]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", ExcludedRowsWarning)
        study = load_redcap(raw, dic, {**mapping, "untreated": ["Advice only"]}, today=TODAY, errors="exclude")
        other = load_redcap(raw, dic, {**mapping, "treatments": {"Advice only": "other"}}, today=TODAY,
                            errors="exclude")
    assert study.episodes.set_index("episode_id").loc["102", "treatment_status"] == "untreated"
    assert other.episodes.set_index("episode_id").loc["102", "modality"] == "other"


def test_a_patient_field_groups_records_as_episodes_of_one_patient():
    dic = _dictionary_with(mrn=["enrolment", "", "text", "Medical record number", "", "", "", *[""] * 10])
    raw = pd.read_csv(DATA / "records_raw.csv", dtype=str, keep_default_na=False)
    raw.insert(4, "mrn", "")
    raw.loc[[0, 10, 17, 22], "mrn"] = ["P1", "P1", "P3", "P4"]   # enrolment rows: 101 and 102 are one patient
    mapping = {k: v for k, v in MAPPING.items() if k != "patients"} | {"patient": "mrn"}
    study, _ = _load(raw, mapping=mapping, dictionary=dic)
    assert study.episodes[["episode_id", "patient_id"]].values.tolist() == [
        ["101", "P1"], ["102", "P1"], ["103", "P3"], ["104", "P4"]]
    assert study.sessions["patient_id"].tolist() == ["P1", "P1", "P1", "P1"]
    assert study.scores.groupby("patient_id").size().to_dict() == {"P1": 9, "P3": 5, "P4": 2}


def test_a_dataframe_read_with_numeric_columns_loads_alike():
    raw = pd.read_csv(DATA / "records_raw.csv")        # codes and scores read as numbers (1.0, 7.0), ids as 101
    assert raw["sess_modality"].dtype == float
    study, _ = _load(raw)
    assert _sessions(study) == SESSIONS
    assert _scores(study) == SCORES


def test_mapping_as_json_text_or_a_missing_file_is_named(tmp_path):
    dic = read_dictionary(DICTIONARY)
    text = json.dumps(MAPPING)
    assert read_mapping(text, dic) == read_mapping(MAPPING, dic)  # JSON text is read, not taken as a file name
    with pytest.raises(FileNotFoundError, match=r"^mapping: .*nope\.json: no such file"):
        read_mapping(tmp_path / "nope.json", dic)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^mapping: .*dir\.json: is a directory"):
        read_mapping(tmp_path / "dir.json", dic)
    with pytest.raises(ValueError, match=r"^mapping: looks like JSON text but cannot be read") as info:
        read_mapping(text[:-1], dic)
    assert text[:200] not in str(info.value)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"patient": "Zürich"}'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"^mapping: latin\.json cannot be read"):
        read_mapping(latin, dic)
