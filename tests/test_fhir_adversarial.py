"""load_fhir on messy real-world exports: searchset Bundles with OperationOutcomes, paged and history Bundles,
versions of one resource, versioned references, BOMs and CRLF, R5 resources given by mistake, bad arguments.

Every expected value is read off the small resources written in each test.
"""

import json
import warnings

import pandas as pd
import pytest

from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning
from backpain_outcomes.fhir import load_fhir
from backpain_outcomes.results import html_block

LBP = {"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]}


def _patient(pid="a", **extra):
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01", **extra}


def _nrs(oid, value=5, when="2024-05-02", subject="Patient/a", **extra):
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": subject},
            "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value}, **extra}


def _load(source, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_fhir(source, today="2025-01-01", **kw)
    return study, [str(w.message) for w in caught if w.category is ExcludedRowsWarning]


def _rows(frame: pd.DataFrame, columns: list) -> list:
    out = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [tuple(r) for r in out.itertuples(index=False)]


def _adds_up(study, n_resources: int, episodes: bool = False) -> None:
    """Every resource of a type read is a row used or an exclusion, and the flow's rows read say the same
    (``episodes``: whether Conditions gave the episodes, else the loader made one per patient)."""
    used = sum(len(getattr(study, t)) for t in ("patients", "scores", "sessions", *(("episodes",) if episodes else ())))
    assert used + len(study.exclusions) == n_resources
    flow = study.flow()
    read = flow[flow["stage"] == "rows read"].set_index("table")["n"]
    kept = flow[flow["stage"] == "rows used"].set_index("table")["n"]
    excluded = study.exclusions["table"].value_counts()
    for table in read.index:
        assert read[table] == kept.get(table, 0) + excluded.get(table, 0), table


# ------------------------------------------------------------------------------------------ Bundles
def test_searchset_with_operation_outcome_and_next_link_is_said_in_the_notes():
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "too-costly", "diagnostics": "search truncated at 1000 <b>results</b>"},
        {"severity": "information", "code": "informational", "diagnostics": "ok"}]}
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 3,
              "link": [{"relation": "self", "url": "https://ehr.example.org/Observation?page=1"},
                       {"relation": "next", "url": "https://ehr.example.org/Observation?page=2"}],
              "entry": [{"fullUrl": "https://ehr.example.org/Patient/a", "resource": _patient(),
                         "search": {"mode": "include"}},
                        {"fullUrl": "https://ehr.example.org/Observation/o1", "resource": _nrs("o1"),
                         "search": {"mode": "match"}},
                        {"resource": outcome, "search": {"mode": "outcome"}}]}
    study, _ = _load(bundle)
    assert _rows(study.scores, ["patient_id", "score"]) == [("a", 5.0)]
    # the server's error is a note (information issues are not), and so is the page not given
    notes = " | ".join(study.notes)
    assert "<FHIR resources>:3: OperationOutcome error (too-costly): search truncated at 1000 <b>results</b>" in notes
    assert "informational" not in notes
    assert "one page of a paged search" in notes and "https://ehr.example.org/Observation?page=2" in notes
    # notes are plain text; the package's HTML blocks escape them where they are shown
    page = html_block("notes", study.notes)
    assert "<b>results</b>" not in page and "&lt;b&gt;results&lt;/b&gt;" in page


def test_history_bundle_deleted_entries_are_set_aside_not_errors():
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [
        {"resource": _patient(), "request": {"method": "PUT", "url": "Patient/a"}},
        {"resource": _nrs("o1"), "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "https://ehr.example.org/Observation/o9", "request": {"method": "DELETE",
                                                                         "url": "Observation/o9"}}]}
    study, warned = _load(bundle)  # errors="raise": a deletion is not a problem of the data
    assert warned == []
    assert _rows(study.exclusions, ["table", "row", "reason"]) == [("fhir", 3, "deleted")]
    # the flow counts the four tables; what is not a resource of one is said in the notes
    assert "1 item(s) of the input are not resources of a table (deleted 1)" in " ".join(study.notes)


def test_bundles_in_a_list_and_in_a_batch_response_keep_a_row_each():
    first = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": _patient()},
                                                                     {"resource": _nrs("o1")}]}
    second = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": _patient("b")}, {"resource": _nrs("o2", 11, subject="Patient/b")}]}
    with pytest.raises(DataValidationError) as info:
        load_fhir([first, second], today="2025-01-01")
    assert _rows(info.value.problems, ["source", "row", "column"]) == [
        ("<FHIR resources> item 2", 2, "Observation/o2: valueQuantity.value")]
    batch = {"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": first, "response": {"status": "200 OK"}}, {"resource": second, "response": {"status": "200 OK"}}]}
    study, _ = _load(batch, errors="exclude")
    assert _rows(study.scores, ["_source", "_row", "patient_id"]) == [("<FHIR resources> entry 1", 2, "a")]
    assert _rows(study.exclusions, ["source", "row", "reason"]) == [("<FHIR resources> entry 2", 2, "out_of_range")]


def test_same_patient_in_two_pages_of_a_search(tmp_path):
    for k, (obs, day) in enumerate([("o1", "2024-05-02"), ("o2", "2024-05-09")], start=1):
        page = {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"fullUrl": "https://ehr.example.org/Patient/a", "resource": _patient()},
            {"resource": _nrs(obs, when=day)}]}
        (tmp_path / f"page{k}.json").write_text(json.dumps(page), encoding="utf-8")
    study, warned = _load(tmp_path)
    assert warned == [] and _rows(study.patients, ["patient_id"]) == [("a",)]
    assert _rows(study.scores, ["_source", "score"]) == [("page1.json", 5.0), ("page2.json", 5.0)]
    # the copy read second is the duplicate (read in file-name order)
    assert _rows(study.exclusions, ["source", "row", "reason"]) == [("page2.json", 1, "duplicate")]
    _adds_up(study, 4)


# ------------------------------------------------------------------------------------------ versions and duplicates
def test_two_versions_of_one_observation_keep_the_latest():
    v1 = _nrs("o1", 5, meta={"versionId": "1", "lastUpdated": "2024-05-02T10:00:00Z"})
    v2 = _nrs("o1", 7, meta={"versionId": "2", "lastUpdated": "2024-05-03T08:00:00Z"}, status="amended")
    study, warned = _load([_patient(), v2, v1])  # newest first, as a history search returns them
    assert warned == []
    assert _rows(study.scores, ["_row", "score"]) == [(2, 7.0)]   # version 2 only: never both
    assert _rows(study.exclusions, ["row", "column", "reason"]) == [(3, "Observation/o1: meta.versionId",
                                                                      "superseded")]
    _adds_up(study, 3)


def test_versions_ordered_by_last_updated_when_there_is_no_version_id():
    old = _nrs("o1", 5, meta={"lastUpdated": "2024-05-02T23:30:00-05:00"})  # 04:30Z on the 3rd
    new = _nrs("o1", 6, meta={"lastUpdated": "2024-05-03T05:00:00+00:00"})
    study, _ = _load([_patient(), new, old])
    assert _rows(study.scores, ["score"]) == [(6.0,)]
    assert _rows(study.exclusions, ["column", "value", "reason"]) == [
        ("Observation/o1: meta.lastUpdated", "2024-05-02T23:30:00-05:00", "superseded")]


def test_the_same_observation_in_two_ndjson_files_is_counted_once(tmp_path):
    (tmp_path / "Patient.ndjson").write_text(json.dumps(_patient()) + "\n", encoding="utf-8")
    for name in ("Observation.ndjson", "Observation.001.ndjson"):
        (tmp_path / name).write_text(json.dumps(_nrs("o1")) + "\n", encoding="utf-8")
    study, warned = _load(tmp_path)
    assert warned == [] and len(study.scores) == 1
    assert _rows(study.exclusions, ["source", "reason"]) == [("Observation.ndjson", "duplicate")]
    _adds_up(study, 3)


def test_conflicting_copies_without_versions_are_errors_of_every_copy():
    a, b = _nrs("o1", 5), _nrs("o1", 8)
    with pytest.raises(DataValidationError) as info:
        load_fhir([_patient(), a, b, _nrs("o2", when="2024-05-09")], today="2025-01-01")
    assert _rows(info.value.problems, ["row", "column", "reason"]) == [
        (2, "Observation/o1", "conflicting_versions"), (3, "Observation/o1", "conflicting_versions")]
    study, warned = _load([_patient(), a, b, _nrs("o2", when="2024-05-09")], errors="exclude")
    assert _rows(study.scores, ["_row"]) == [(4,)] and "2 invalid resource(s)" in warned[0]
    _adds_up(study, 4)


def test_a_patient_given_twice_with_different_content_loses_its_scores_as_a_consequence():
    study, _ = _load([_patient(), _patient(gender="male"), _nrs("o1"), _patient("b"),
                      _nrs("o2", subject="Patient/b")], errors="exclude")
    assert _rows(study.scores, ["patient_id"]) == [("b",)]
    assert _rows(study.exclusions, ["row", "reason"]) == [(1, "conflicting_versions"), (2, "conflicting_versions"),
                                                          (3, "patient_excluded")]
    _adds_up(study, 5)


# ------------------------------------------------------------------------------------------ references and dates
def test_a_transaction_bundle_without_resource_ids_is_read_by_full_url():
    # a transaction POSTs resources without id; the entries reference each other by their urn:uuid fullUrls
    pid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    patient, obs = _patient(), _nrs("x", subject=f"urn:uuid:{pid}")
    patient.pop("id")
    obs.pop("id")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{pid}", "resource": patient, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:7c9e6679-7425-40de-944b-e07fc1f90ae7", "resource": obs,
         "request": {"method": "POST", "url": "Observation"}}]}
    study, _ = _load(bundle)
    assert _rows(study.scores, ["patient_id", "score"]) == [(pid, 5.0)]
    assert _rows(study.patients, ["patient_id", "sex"]) == [(pid, "female")]
    assert "id" not in patient  # the input is not changed
    assert any(n.startswith("2 resource(s) without an id (a transaction Bundle) are named by their fullUrl")
               for n in study.notes)


def test_a_patient_merged_into_another_is_one_patient():
    # an EHR merge: the old record is inactive and links to the surviving one; its Observations keep its id
    old = _patient("old", active=False, link=[{"other": {"reference": "Patient/a"}, "type": "replaced-by"}])
    res = [_patient(), old, _nrs("o1"), _nrs("o2", 3, when="2024-05-20", subject="Patient/old")]
    study, warned = _load(res)
    assert warned == [] and _rows(study.patients, ["patient_id"]) == [("a",)]
    assert _rows(study.scores, ["patient_id", "score"]) == [("a", 5.0), ("a", 3.0)]
    assert _rows(study.exclusions, ["row", "column", "value", "reason"]) == [(2, "Patient/old: link", "a", "replaced")]
    assert any(n.startswith("1 Patient(s) were merged into another") for n in study.notes)
    _adds_up(study, 4)


def test_versioned_and_absolute_subject_references():
    res = [_patient(), _nrs("o1", subject="Patient/a/_history/3"),
           _nrs("o2", when="2024-05-03", subject="https://fhir.epic.com/api/FHIR/R4/Patient/a/_history/1"),
           _nrs("o3", when="2024-05-04", subject="https://fhir.epic.com/api/FHIR/R4/Patient/a")]
    study, _ = _load(res)
    assert _rows(study.scores, ["patient_id", "score"]) == [("a", 5.0)] * 3


def test_the_visit_of_a_procedure_named_by_a_versioned_or_absolute_reference_is_not_a_second_session():
    def visit(eid, day):
        return {"resourceType": "Encounter", "id": eid, "status": "finished", "class": {"code": "AMB"},
                "subject": {"reference": "Patient/a"}, "type": [{"text": "Cupping"}], "period": {"start": day}}

    def proc(pid, encounter, day):
        return {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/a"},
                "code": {"text": "Cupping"}, "performedDateTime": day, "encounter": {"reference": encounter}}

    res = [_patient(), _nrs("o1"), visit("e1", "2024-05-02"), visit("e2", "2024-05-09"),
           proc("x1", "Encounter/e1/_history/4", "2024-05-02"),
           proc("x2", "https://ehr.example.org/fhir/Encounter/e2", "2024-05-09")]
    study, _ = _load(res)
    assert _rows(study.sessions, ["_row"]) == [(5,), (6,)]  # the Procedures only
    assert _rows(study.exclusions, ["row", "reason"]) == [(3, "visit_of_procedure"), (4, "visit_of_procedure")]


def test_a_missing_subject_is_named():
    no_subject = _nrs("o1")
    no_subject.pop("subject")
    by_identifier = _nrs("o2", when="2024-05-03")
    by_identifier["subject"] = {"identifier": {"system": "urn:mrn", "value": "123"}}
    with pytest.raises(DataValidationError) as info:
        load_fhir([_patient(), no_subject, by_identifier, _nrs("o3")], today="2025-01-01")
    assert _rows(info.value.problems, ["row", "column", "reason"]) == [
        (2, "Observation/o1: subject", "missing_value"), (3, "Observation/o2: subject.reference", "missing_value")]


def test_the_score_day_is_the_local_day_written_whatever_the_offset():
    # 23:30 at UTC-05:00 is 04:30 UTC the next day: the day is the one written (2024-05-03), for every date
    # element alike; an effectivePeriod gives its start
    period = _nrs("o2", when=None)
    period.pop("effectiveDateTime")
    period["effectivePeriod"] = {"start": "2024-05-10T23:30:00-05:00", "end": "2024-05-11T00:30:00-05:00"}
    integer = _nrs("o3", when="2024-05-20T00:15:00+14:00")
    integer.pop("valueQuantity")
    integer["valueInteger"] = 4
    res = [_patient(), _nrs("o1", when="2024-05-03T23:30:00-05:00"), period, integer]
    study, _ = _load(res)
    days = study.scores.sort_values("_row")["date"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2024-05-03", "2024-05-10", "2024-05-20"]
    assert study.scores.sort_values("_row")["score"].tolist() == [5.0, 5.0, 4.0]
    assert not any("UTC" in n for n in study.notes)
    # a time in UTC is its UTC day (Epic-style exports write Z): said in the notes, not moved
    study, _ = _load([_patient(), _nrs("o1", when="2024-05-04T02:30:00Z"), _nrs("o2", when="2024-05-05")])
    assert study.scores.sort_values("_row")["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-05-04", "2024-05-05"]
    assert any(n.startswith("1 date(s) are times written in UTC") for n in study.notes)


# ------------------------------------------------------------------------------------------ values and units
def test_scores_out_of_range_are_problems_of_their_resource():
    vas = {**_nrs("v1", 150), "code": {"coding": [{"system": "http://loinc.org", "code": "38214-3"}]},
           "valueQuantity": {"value": 150, "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"}}
    with pytest.raises(DataValidationError) as info:
        load_fhir([_patient(), _nrs("o1", 11), vas, _nrs("o2", 3, when="2024-05-09")], today="2025-01-01")
    assert _rows(info.value.problems, ["row", "column", "value", "reason"]) == [
        (2, "Observation/o1: valueQuantity.value", 11.0, "out_of_range"),
        (3, "Observation/v1: valueQuantity.value", 150.0, "out_of_range")]


def test_a_value_with_a_comparator_is_not_a_score():
    with pytest.raises(DataValidationError) as info:
        load_fhir([_patient(), _nrs("o1"), {**_nrs("o2"), "valueQuantity": {"value": 3, "comparator": "<"}}],
                  today="2025-01-01")
    assert _rows(info.value.problems, ["column", "value", "reason"]) == [
        ("Observation/o2: valueQuantity.comparator", "<3", "inexact_value")]


def test_a_pain_score_inside_a_panel_is_said():
    panel = {**_nrs("vs"), "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1"}]},
             "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
                            "valueQuantity": {"value": 6}}]}
    panel.pop("valueQuantity")
    study, _ = _load([_patient(), _nrs("o1"), panel])
    assert _rows(study.exclusions, ["column", "reason"]) == [("Observation/vs: code", "other_code")]
    assert any(n.startswith("1 Observation(s) of other codes (a panel) hold a pain score in a component")
               for n in study.notes)


def test_score_units_and_a_vas_without_unit_is_said():
    vas = {**_nrs("v1", 40), "code": {"coding": [{"system": "http://loinc.org", "code": "38214-3"}]}}
    res = [_patient(), {**_nrs("o1"), "valueQuantity": {"value": 5, "code": "1"}},
           {**_nrs("o2", when="2024-05-03"), "valueQuantity": {"value": 6, "unit": "score", "code": "{score}"}}, vas]
    study, _ = _load(res)
    assert _rows(study.scores.sort_values("_row"), ["instrument", "score"]) == [("nrs", 5.0), ("nrs", 6.0),
                                                                                ("vas", 40.0)]
    assert any("1 VAS observation(s) have no unit: read as mm" in n for n in study.notes)


def test_markup_in_codes_is_kept_as_text_and_escaped_in_html():
    evil = "<script>alert(1)</script>"
    res = [_patient(), _nrs("o1"), {**_nrs("h1"), "code": {"text": evil, "coding": [
        {"system": "urn:x", "code": "<img src=x onerror=alert(1)>", "display": "</td>" + evil}]},
        "note": [{"text": evil}]}]
    study, _ = _load(res)
    assert evil in study.exclusions["value"].iat[0]    # the data as written, for the reader
    page = html_block("exclusions", list(study.exclusions["message"]), {"exclusions": study.exclusions})
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page


# ------------------------------------------------------------------------------------------ files
def test_bom_crlf_empty_files_and_a_huge_line(tmp_path):
    (tmp_path / "Patient.ndjson").write_bytes(b"\xef\xbb\xbf" + json.dumps(_patient()).encode() + b"\r\n")
    big = _nrs("o2", when="2024-05-03", note=[{"text": "x" * 2_000_000}])
    (tmp_path / "Observation.ndjson").write_bytes((json.dumps(_nrs("o1")) + "\r\n" + json.dumps(big) + "\r\n\r\n")
                                                  .encode())
    (tmp_path / "Condition.ndjson").write_text("", encoding="utf-8")
    study, warned = _load(tmp_path)
    assert warned == [] and _rows(study.scores, ["_source", "_row"]) == [("Observation.ndjson", 1),
                                                                        ("Observation.ndjson", 2)]


def test_line_separators_inside_json_text_do_not_split_an_ndjson_line(tmp_path):
    # U+2028 and U+0085 are line breaks for str.splitlines but may stand unescaped inside a JSON string
    obs = _nrs("o1", note=[{"text": "first\u2028second \x85 third"}])
    (tmp_path / "a.ndjson").write_text(json.dumps(_patient()) + "\n" + json.dumps(obs, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    study, warned = _load(tmp_path / "a.ndjson")
    assert warned == [] and _rows(study.scores, ["_row", "score"]) == [(2, 5.0)]


def test_files_not_in_utf8_are_problems_of_their_line(tmp_path):
    latin = json.dumps(_nrs("o2", when="2024-05-03")).encode()[:-1] + b', "note": [{"text": "caf\xe9"}]}'
    (tmp_path / "a.ndjson").write_bytes(b"\n".join([json.dumps(_patient()).encode(), latin,
                                                    json.dumps(_nrs("o1")).encode()]) + b"\n")
    (tmp_path / "b.json").write_bytes(b'{"resourceType": "Patient", "id": "m",\n "name": [{"family": "M\xfcller"}]}')
    with pytest.raises(DataValidationError) as info:
        load_fhir(tmp_path, today="2025-01-01")
    assert _rows(info.value.problems, ["source", "row", "reason"]) == [("a.ndjson", 2, "invalid_encoding"),
                                                                      ("b.json", 2, "invalid_encoding")]


def test_a_gzipped_bulk_export(tmp_path):
    import gzip

    with gzip.open(tmp_path / "Patient.ndjson.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(_patient()) + "\n")
    with gzip.open(tmp_path / "Observation.ndjson.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(_nrs("o1")) + "\n")
    study, _ = _load(tmp_path)
    assert _rows(study.scores, ["_source", "_row", "score"]) == [("Observation.ndjson.gz", 1, 5.0)]


def test_a_contained_subject_is_named_as_such():
    obs = {**_nrs("o1"), "subject": {"reference": "#p"}, "contained": [_patient("p")]}
    with pytest.raises(DataValidationError, match="a contained resource") as info:
        load_fhir([_patient(), obs, _nrs("o2")], today="2025-01-01")
    assert _rows(info.value.problems, ["column", "reason"]) == [("Observation/o1: subject.reference", "not_a_patient")]


def test_a_directory_without_patients_says_so(tmp_path):
    (tmp_path / "Observation.ndjson").write_text(json.dumps(_nrs("o1")) + "\n", encoding="utf-8")
    study, _ = _load(tmp_path)
    assert len(study.scores) == 1
    assert any("no Patient resource" in n for n in study.notes)


def test_a_provenance_sidecar_in_an_export_directory_is_not_read(tmp_path):
    (tmp_path / "Patient.ndjson").write_text(json.dumps(_patient()) + "\n", encoding="utf-8")
    (tmp_path / "Observation.ndjson").write_text(json.dumps(_nrs("o1")) + "\n", encoding="utf-8")
    (tmp_path / "claims.csv.provenance.json").write_text(json.dumps({"schema": "backpain-outcomes/provenance/1"}),
                                                         encoding="utf-8")
    study, warned = _load(tmp_path)
    assert warned == [] and len(study.exclusions) == 0
    assert "claims.csv.provenance.json: not read, not a FHIR resource (the provenance record of an output" in \
        " ".join(study.notes)


def test_a_json_file_that_is_not_fhir(tmp_path):
    (tmp_path / "data.json").write_text(json.dumps({"name": "not fhir"}), encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        load_fhir(tmp_path / "data.json", today="2025-01-01")
    assert _rows(info.value.problems, ["source", "reason"]) == [("data.json", "not_a_resource")]


def test_r5_resources_are_named_as_r5():
    proc = {"resourceType": "Procedure", "id": "r5", "status": "completed", "subject": {"reference": "Patient/a"},
            "code": {"text": "Cupping"}, "occurrenceDateTime": "2024-05-02"}
    enc = {"resourceType": "Encounter", "id": "e5", "status": "finished", "class": {"code": "AMB"},
           "subject": {"reference": "Patient/a"}, "type": [{"text": "Cupping"}],
           "actualPeriod": {"start": "2024-05-02"}}
    with pytest.raises(DataValidationError) as info:
        load_fhir([_patient(), _nrs("o1"), proc, enc], today="2025-01-01")
    p = info.value.problems
    assert _rows(p, ["column", "reason"]) == [("Procedure/r5: occurrenceDateTime", "invalid_fhir"),
                                              ("Encounter/e5: actualPeriod", "invalid_fhir")]
    assert all("FHIR R5" in m for m in p["message"]), p["message"].tolist()


# ------------------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"modality_map": ["cupping"]}, r"modality_map must be a dict.*got list"),
    ({"modality_map": {"X": 3}}, r"modality_map.*choose one of"),
    ({"questionnaires": "odi"}, r"questionnaires must be a dict"),
    ({"questionnaires": {"x": 5}}, r"questionnaires\['x'\].*choose one of"),
    ({"observation_codes": ["72514-3"]}, r"observation_codes must be a dict"),
    ({"observation_codes": {"x": "odi"}}, r"observation_codes\['x'\].*nrs or vas"),
    ({"condition_codes": 5}, r"condition_codes must be a code or a list of codes.*got int"),
    ({"condition_codes": [None]}, r"condition_codes"),
    ({"odi_max_missing": "1"}, r"odi_max_missing"),
    ({"errors": "ignore"}, r"errors.*'raise', 'exclude'"),
])
def test_bad_arguments_name_the_argument_and_the_choices(kwargs, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        load_fhir([_patient(), _nrs("o1")], today="2025-01-01", **kwargs)


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_fhir(tmp_path / "nope.ndjson")
