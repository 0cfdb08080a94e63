"""REDCap exports as they arrive: resaved, reordered, coded for missing values, half empty, or refused by the server.

Built on the test project of test_redcap.py (tests/data/redcap/, lines listed in make_files.py; line 2 = first
record row). Expected rows and counts are taken by hand from those lines.
"""

import copy
import warnings

import pandas as pd
import pytest
import requests
from test_redcap import DATA, DICTIONARY, ITEMS, MAPPING, SCORES, SESSIONS, TODAY, _scores, _sessions
from test_redcap_api import RECORDED, TOKEN, URL, _answer

from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning
from backpain_outcomes.redcap import load_redcap
from backpain_outcomes.redcap_api import fetch_redcap
from backpain_outcomes.redcap_mapping import parse_choices, read_dictionary, read_mapping

RAW = DATA / "records_raw.csv"
CHOICES = "Choices, Calculations, OR Slider Labels"


def _raw():
    return pd.read_csv(RAW, dtype=str, keep_default_na=False)


def _load(records=RAW, mapping=MAPPING, dictionary=DICTIONARY, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcludedRowsWarning)
        study = load_redcap(records, dictionary, mapping, today=TODAY, errors=kw.pop("errors", "exclude"), **kw)
    return study, [str(w.message) for w in caught]


def _flow_adds_up(study):
    """rows read = rows used + rows excluded, for every table."""
    flow = study.flow().set_index(["stage", "table"])["n"]
    for table, n_read in study.rows_read.items():
        excluded = flow[[k for k in flow.index if k[1] == table and k[0].startswith("rows excluded")]].sum()
        assert n_read == flow[("rows used", table)] + excluded, table


# ------------------------------------------------------------------------------------------------ file forms
def test_bom_crlf_unsorted_and_duplicated_rows_give_the_same_study(tmp_path):
    raw = _raw()
    shuffled = pd.concat([raw.sample(frac=1, random_state=3), raw.iloc[[2, 5]]], ignore_index=True)
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + shuffled.to_csv(index=False, lineterminator="\r\n").encode("utf-8"))
    dictionary = tmp_path / "dictionary.csv"          # the dictionary resaved the same way
    dictionary.write_bytes(b"\xef\xbb\xbf" + DICTIONARY.read_bytes().replace(b"\n", b"\r\n"))
    study, _ = _load(path, dictionary=dictionary)
    # same sessions and scores as the sorted export, with the lines of the shuffled file
    assert sorted(s[:5] for s in _sessions(study)) == sorted(s[:5] for s in SESSIONS)
    assert sorted(s[:4] for s in _scores(study)) == sorted(s[:4] for s in SCORES)
    dup = study.exclusions.loc[study.exclusions["reason"] == "duplicate"]
    assert sorted(dup["row"].tolist()) == [28, 29]          # the two repeated rows, appended at lines 28-29
    _flow_adds_up(study)


def test_two_rows_of_one_instance_with_other_values_are_named():
    raw = _raw()
    raw.loc[3, "redcap_repeat_instance"] = "2"    # line 5 claims instance 2 of 101's sessions, like line 4
    study, _ = _load(raw)
    assert any("2 row(s) share their record, event and repeat instance with another row but hold other values "
               "(lines 4, 5)" in n for n in study.notes)
    assert _sessions(study) == SESSIONS            # both are read


def test_excel_resaved_export_dates_day_first_and_ids_without_zeros():
    raw = _raw()
    for col in ("enrol_date", "onset_date", "sess_date", "nrs_date", "odi_date", "ae_date"):
        raw[col] = raw[col].map(lambda v: f"{v[8:]}/{v[5:7]}/{v[:4]}" if len(v) == 10 else v)
    raw["record_id"] = raw["record_id"].str.lstrip("1").str.lstrip("0")   # 101 -> "1" as Excel shows 001 -> 1
    study, _ = _load(raw, dayfirst=True)
    assert [s[1:] for s in _scores(study)] == [s[1:] for s in SCORES]
    assert sorted(set(study.episodes["episode_id"])) == ["1", "2", "3", "4"]


def test_date_time_fields_and_resaved_date_times_are_read_as_dates():
    raw = _raw()
    raw.loc[1, "sess_date"] = "2024-03-04 10:30"        # line 3: a datetime_ymd field as REDCap writes it
    raw.loc[5, "nrs_date"] = "11/03/2024 10:30"         # line 7: the same resaved by a spreadsheet, day first
    study, _ = _load(raw, dayfirst=True)
    assert _scores(study) == SCORES and _sessions(study) == SESSIONS
    assert any("'nrs_date' hold a time of day: times of day dropped (line 7)" in n for n in study.notes)


def test_dag_column_dag_prefixed_ids_survey_timestamps_and_status_columns_are_read_alike():
    raw = _raw()
    raw.insert(1, "redcap_data_access_group", "north_site")
    raw["record_id"] = "12-" + raw["record_id"]
    raw.insert(list(raw.columns).index("ae_desc"), "ae_kind___1", "0")       # an unmapped checkbox's columns
    raw.insert(list(raw.columns).index("ae_desc"), "ae_kind___2", "1")
    raw.insert(list(raw.columns).index("nrs_date"), "pain_nrs_timestamp", "")
    raw.loc[raw["redcap_repeat_instrument"] == "pain_nrs", "pain_nrs_timestamp"] = "2024-03-04 10:11:12"
    study, _ = _load(raw)
    assert [s[1:] for s in _scores(study)] == [s[1:] for s in SCORES]
    assert set(study.episodes["episode_id"]) == {"12-101", "12-102", "12-103", "12-104"}


def test_the_label_export_with_dag_and_survey_columns_loads_alike():
    lab = pd.read_csv(DATA / "records_labels.csv", dtype=str, keep_default_na=False)
    lab.insert(1, "Data Access Group", "North site")
    lab.insert(1, "Survey Identifier", "")
    lab.insert(18, "Survey Timestamp", "2024-03-04 10:00")
    study, _ = _load(lab)
    assert _scores(study) == SCORES and _sessions(study) == SESSIONS


def test_repeating_events_and_a_classic_project_are_read():
    raw = _raw()
    raw.loc[raw["redcap_event_name"] == "week_6_arm_1", "redcap_repeat_instance"] = "1"   # whole event repeats
    again = raw.loc[[8]].assign(redcap_repeat_instance="2", odi_date="2024-04-29", odi_q1="0")
    study, _ = _load(pd.concat([raw, again], ignore_index=True))
    # line 28: second instance of 101's week 6, ODI 6/50 = 12 (Fairbank & Pynsent 2000)
    assert ("101", "2024-04-29", "odi", 12.0, 28) in _scores(study)
    classic = _raw().drop(columns="redcap_event_name")
    mapping = {k: v for k, v in MAPPING.items() if k not in ("events", "arms")}
    study, _ = _load(classic, mapping=mapping)
    assert 18 in study.scores["_row"].tolist()             # no event list: the exit NRS is read too
    _flow_adds_up(study)


def test_choices_written_without_spaces_and_labels_with_commas():
    assert parse_choices("1,Deep tissue|2,Swedish, relaxing") == {"1": "Deep tissue", "2": "Swedish, relaxing"}
    dic = pd.read_csv(DICTIONARY, dtype=str, keep_default_na=False)
    dic[CHOICES] = dic[CHOICES].str.replace(" | ", "|").str.replace(", ", ",", regex=False)
    study, _ = _load(DATA / "records_labels.csv", dictionary=dic)
    assert _sessions(study) == SESSIONS


# ------------------------------------------------------------------------------------------------ empty parts
def test_a_header_only_export_is_one_problem(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(RAW.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="empty.csv: the export has no data rows"):
        load_redcap(path, DICTIONARY, MAPPING, today=TODAY)


def test_an_export_without_any_session_row_loads_its_scores():
    """Only the enrolment events are mapped: no treatment_session row is read (the ODI of lines 2, 12, 19 are)."""
    study, _ = _load(mapping={**MAPPING, "events": ["enrolment_arm_1", "enrolment_arm_2"]})
    assert study.scores["_row"].tolist() == [2, 12, 19] and study.sessions.empty
    assert any("no row of 'treatment_session' holds a session" in n for n in study.notes)
    _flow_adds_up(study)


# ------------------------------------------------------------------------------------------------ status
def test_scores_of_incomplete_forms_are_used_and_counted_in_the_notes():
    raw = _raw()
    raw.loc[[5, 6], "pain_nrs_complete"] = "0"          # lines 7-8: NRS 5 and 3 saved as Incomplete
    raw.loc[0, "oswestry_complete"] = "1"               # line 2: Unverified
    study, _ = _load(raw)
    assert _scores(study) == SCORES
    # line 16 (NRS of 102, no score) was saved Incomplete in the test project
    assert any(n.startswith("<REDCap records DataFrame>: 3 session or score row(s) come from forms marked Incomplete "
                            "(status 0): pain_nrs lines 7, 8, 16; they are used as entered") for n in study.notes)


def test_the_status_of_the_label_export_is_read_from_its_complete_columns():
    lab = pd.read_csv(DATA / "records_labels.csv", dtype=str, keep_default_na=False)
    status = [k for k, c in enumerate(lab.columns) if c.startswith("Complete?")][2]   # after "Pain now (0-10)"
    lab.iloc[[5, 6], status] = "Incomplete"                                            # lines 7-8
    study, _ = _load(lab)
    assert any("3 session or score row(s) come from forms marked Incomplete (status 0): pain_nrs lines 7, 8, 16"
               in n for n in study.notes)


# ------------------------------------------------------------------------------------------------ missing codes
def test_missing_data_codes_never_load_as_scores_and_are_excluded_with_their_code():
    raw = _raw()
    raw.loc[5, "nrs_score"] = "UNK"       # line 7: REDCap's standard code for "unknown"
    raw.loc[6, "nrs_score"] = "-999"      # line 8: a project code, declared in the mapping
    raw.loc[0, "odi_q3"] = "NA"           # line 2: one ODI section coded: scored from the 9 others, 17/45 = 37.8
    raw.loc[1, "sess_minutes"] = "-999"   # line 3: optional duration coded: blank
    raw.loc[0, "age"] = "ASKU"            # line 2: age coded: blank
    mapping = {**MAPPING, "missing_codes": "-999, Not collected"}
    study, warned = _load(raw, mapping=mapping)
    nrs_rows = study.scores.loc[study.scores["instrument"] == "nrs", "_row"].tolist()
    assert 7 not in nrs_rows and 8 not in nrs_rows and -999.0 not in study.scores["score"].tolist()
    odi2 = study.scores.loc[(study.scores["_row"] == 2) & (study.scores["instrument"] == "odi"), "score"]
    assert odi2.round(1).tolist() == [37.8]                       # 100 * 17 / 45
    ex = study.exclusions.set_index("row")
    assert ex.loc[7, "value"] == "UNK" and ex.loc[7, "reason"] == "missing_value"
    assert ex.loc[8, "value"] == "-999" and "missing-data code" in ex.loc[8, "message"]
    assert pd.isna(study.sessions.set_index("_row").loc[3, "duration_min"])
    assert pd.isna(study.episodes.set_index("episode_id").loc["101", "age"])
    assert any("missing-data code" in n for n in study.notes)
    _flow_adds_up(study)
    # a coded score is a recorded "no value", not an error: errors="raise" fails only on the real problems
    with pytest.raises(DataValidationError) as err:
        load_redcap(raw, DICTIONARY, mapping, today=TODAY)
    assert err.value.problems["row"].tolist() == [14, 16]


def test_a_missing_data_code_in_a_vas_is_not_a_score_of_99():
    dic = pd.read_csv(DICTIONARY, dtype=str, keep_default_na=False)
    dic.loc[dic["Variable / Field Name"] == "nrs_score", ["Field Type", CHOICES,
                                                          "Text Validation Type OR Show Slider Number"]] = [
        "text", "", "integer"]
    raw = _raw()
    raw.loc[5, "nrs_score"] = "99"        # line 7
    mapping = copy.deepcopy(MAPPING)
    mapping["scores"][0]["as"] = "vas"
    mapping["missing_codes"] = ["99"]
    study, _ = _load(raw, mapping=mapping, dictionary=dic)
    assert 7 not in study.scores["_row"].tolist()
    assert study.exclusions.set_index("row").loc[7, "value"] == "99"


# ------------------------------------------------------------------------------------------------ mapping types
@pytest.mark.parametrize("change, message", [
    (lambda m: m["scores"][0].update(value="nrs_date"), "mapping['scores'][0]['value']: field 'nrs_date' is a date,"),
    (lambda m: m["sessions"].update(treatment="sess_minutes"),
     "mapping['sessions']['treatment']: field 'sess_minutes' is a number"),
    (lambda m: m["sessions"].update(date="sess_minutes"), "mapping['sessions']['date']: field 'sess_minutes' is a "
                                                          "number"),
    (lambda m: m["sessions"].update(duration="sess_date"), "mapping['sessions']['duration']: field 'sess_date' is a "
                                                           "date"),
    (lambda m: m.update(scores=[MAPPING["scores"][0], MAPPING["scores"][0]]),
     "mapping['scores'][1]['value']: field 'nrs_score' is already mapped by mapping['scores'][0]['value']"),
    (lambda m: m.update(untreated=5), "mapping['untreated'] must be text labels"),
    (lambda m: m.update(missing_codes=5), "mapping['missing_codes']"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_the_key(change, message):
    mapping = copy.deepcopy(MAPPING)
    change(mapping)
    with pytest.raises((ValueError, TypeError)) as err:
        read_mapping(mapping, read_dictionary(DICTIONARY))
    assert str(err.value).startswith(message), str(err.value)


def test_a_checkbox_or_one_of_its_option_columns_is_refused():
    dic = pd.read_csv(DICTIONARY, dtype=str, keep_default_na=False)
    dic.loc[dic["Variable / Field Name"] == "sess_modality", "Field Type"] = "checkbox"
    mapping = copy.deepcopy(MAPPING)
    with pytest.raises(ValueError, match=r"mapping\['sessions'\]\['treatment'\]: 'sess_modality' is a checkbox"):
        read_mapping(mapping, read_dictionary(dic))
    mapping["sessions"]["treatment"] = "sess_modality___1"
    with pytest.raises(ValueError, match="'sess_modality___1' is the column of one option of the checkbox field "
                                         "'sess_modality'"):
        read_mapping(mapping, read_dictionary(dic))


def test_a_notes_field_as_a_score_is_refused():
    dic = pd.read_csv(DICTIONARY, dtype=str, keep_default_na=False)
    dic.loc[dic["Variable / Field Name"] == "nrs_score", "Field Type"] = "notes"
    with pytest.raises(ValueError, match=r"mapping\['scores'\]\[0\]\['value'\]: field 'nrs_score' is a notes field"):
        read_mapping(MAPPING, read_dictionary(dic))


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="records must be"):
        load_redcap(42, DICTIONARY, MAPPING)
    with pytest.raises(TypeError, match="dictionary must be"):
        load_redcap(RAW, 42, MAPPING)


# ------------------------------------------------------------------------------------------------ the API
def _serve(monkeypatch, record=None, metadata=None, status=200):
    def post(session, url, data=None, **kwargs):
        body = {"record": record, "metadata": metadata}.get(data["content"])
        return _answer(RECORDED[data["content"]].read_bytes() if body is None else body, status)
    monkeypatch.setattr(requests.Session, "post", post)
    monkeypatch.setenv("REDCAP_API_TOKEN", TOKEN)


@pytest.mark.parametrize("record, metadata, status, message", [
    (b"", None, 200, "the REDCap API at https://redcap.example.org/api/ returned no records"),
    (b"\n", None, 200, "returned no records"),
    (b"<html><body>Session expired for " + TOKEN.encode() + b"</body></html>\n<p>x</p>\n", None, 200,
     "answered with an HTML page instead of the records"),
    (b'{"error": "Invalid token ' + TOKEN.encode() + b'"}', None, 200, "refused the export: Invalid token [token]"),
    (b'{"error": "Invalid token ' + TOKEN.encode() + b'"}', None, 400, "refused the export"),
    (None, b"<!DOCTYPE html><html>Login</html>", 200, "answered with an HTML page instead of the metadata"),
])
def test_the_api_answering_nothing_an_error_or_a_page_is_one_connection_error(monkeypatch, record, metadata,
                                                                             status, message):
    _serve(monkeypatch, record, metadata, status)
    with pytest.raises(ConnectionError) as err:
        fetch_redcap(URL, MAPPING, today=TODAY)
    assert message in str(err.value) and TOKEN not in str(err.value)


def test_arguments_are_checked_before_the_server_is_asked(monkeypatch):
    asked = []
    monkeypatch.setattr(requests.Session, "post", lambda *a, **k: asked.append(1))
    monkeypatch.setenv("REDCAP_API_TOKEN", TOKEN)
    with pytest.raises(TypeError, match="verify_ssl must be True or False"):
        fetch_redcap(URL, MAPPING, verify_ssl="no")
    with pytest.raises(ValueError, match="errors='skip' is not valid; choose one of 'raise', 'exclude'"):
        fetch_redcap(URL, MAPPING, errors="skip")
    with pytest.raises(ValueError, match="no_sessions='none' is not valid"):
        fetch_redcap(URL, MAPPING, no_sessions="none")
    for url in (URL + "?token=" + TOKEN, "https://me:" + TOKEN + "@redcap.example.org/api/", URL + "#" + TOKEN):
        with pytest.raises(ValueError, match="url: give the API address alone") as err:
            fetch_redcap(url, MAPPING)
        assert TOKEN not in str(err.value)
    assert not asked


def test_items_coded_missing_count_as_unanswered_items():
    raw = _raw()
    raw.loc[21, ITEMS] = "UNK"           # line 23: every section of 103's week-6 ODI coded
    study, _ = _load(raw)
    assert 23 not in study.scores["_row"].tolist()
    row = study.exclusions.set_index("row").loc[23]
    assert row["reason"] == "missing_value" and row["value"] == "UNK"
