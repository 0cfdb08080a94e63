"""FHIR R4 sources (backpain_outcomes.fhir): a Bundle and a Bulk Data NDJSON export of the same resources.

The test resources (tests/data/fhir/bundle.json, tests/data/fhir/export/*.ndjson) are written as a FHIR server
exports them: a searchset Bundle with fullUrls (one subject given as an absolute URL), and one NDJSON file per
resource type. Every expected value below is read off those files by hand.
"""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from backpain_outcomes import fhir_read
from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning, MissingDependencyError
from backpain_outcomes.fhir import load_fhir

DATA = Path(__file__).parent / "data" / "fhir"
BUNDLE, EXPORT = DATA / "bundle.json", DATA / "export"
CUP = {"http://clinic.example.org/CodeSystem/treatments|CUP": "cupping"}


def _load(source, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_fhir(source, today="2025-01-01", errors="exclude", modality_map=CUP, **kw)
    return study, caught


@pytest.fixture(scope="module")
def bundle():
    return _load(BUNDLE)


def _rows(frame: pd.DataFrame, columns: list) -> list:
    out = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [tuple(r) for r in out.itertuples(index=False)]


# ------------------------------------------------------------------------------------------ tables
def test_patients_ages_at_onset_and_sex_from_gender(bundle):
    study, _ = bundle
    # p1 born 1980-06-15, first onset 2024-02-20: 43 (birthday not yet reached); p2 1975-01-10 at 2024-03-01: 49;
    # p3 has gender "unknown" (no sex) and birthDate "1990" (a year only: age blank, said in the notes)
    assert _rows(study.patients, ["patient_id", "age", "sex"]) == [("p1", 43.0, "female"), ("p2", 49.0, "male"),
                                                                   ("p3", None, None)]
    assert any("1 patient(s) have a birthDate without a day" in n for n in study.notes)


def test_episodes_from_low_back_pain_conditions(bundle):
    study, _ = bundle
    # c1 onsetDateTime; c2 onsetDateTime with a +01:00 offset (the day written); c3 ICD-10 M54.5, onsetPeriod.start;
    # c9 (hypertension, SNOMED 38341003) is not an episode
    got = _rows(study.episodes.assign(onset=study.episodes["onset_date"].dt.strftime("%Y-%m-%d")),
                ["episode_id", "patient_id", "onset", "modality", "n_sessions"])
    assert got == [("c1", "p1", "2024-02-20", "mixed", 2), ("c2", "p2", "2024-03-01", "cupping", 1),
                   ("c3", "p3", "2024-01-05", "dry_needling", 1)]


def test_scores_from_observations_and_questionnaires(bundle):
    study, _ = bundle
    sc = study.scores.assign(day=study.scores["date"].dt.strftime("%Y-%m-%d")).sort_values("_row")
    got = _rows(sc, ["_row", "episode_id", "instrument", "day", "score"])
    assert got == [
        (9, "c1", "nrs", "2024-03-01", 7.0),     # obs-1, 72514-3, valueQuantity 7 {score}, 09:30+01:00
        (10, "c1", "nrs", "2024-03-15", 4.0),    # obs-2, valueInteger 4
        (11, "c1", "vas", "2024-03-01", 62.0),   # obs-3, 38214-3, 62 mm
        (12, "c2", "vas", "2024-03-05", 55.0),   # obs-4, 38208-5 in cm: 5.5 cm = 55 mm (absolute subject URL)
        (13, "c2", "nrs", "2024-03-05", 6.0),    # obs-5, 38208-5 in {score}: the 0-10 NRS
        (14, "c2", "nrs", "2024-03-20", 3.0),    # obs-6
        (17, "c3", "nrs", "2024-01-10", 8.0),    # obs-9, 09:30Z
        # qr-odi-1: sections 2,1,2,1,2,1,-,1,2,2 (ordinalValue of valueCoding), section 7 unanswered:
        # 100 * 14 / (5 * 9) (Fairbank & Pynsent 2000, one missing section reduces the denominator)
        (20, "c1", "odi", "2024-03-01", pytest.approx(100 * 14 / 45)),
        (22, "c2", "rmdq", "2024-03-05", 6.0),   # qr-rmdq-1: items 1, 2, 5, 9, 14, 20 true
    ]
    assert set(study.scores["_source"]) == {"bundle.json"}


def test_sessions_from_procedures_and_encounters(bundle):
    study, _ = bundle
    ss = study.sessions.assign(day_=study.sessions["session_date"].dt.strftime("%Y-%m-%d")).sort_values("_row")
    assert _rows(ss, ["_row", "patient_id", "day_", "modality", "therapist_id"]) == [
        (24, "p1", "2024-03-01", "deep_tissue", "pr-1"),     # proc-1: display "Deep tissue massage"
        (25, "p1", "2024-03-08", "trigger_point", "pr-1"),   # proc-2: text "Trigger point therapy"
        (26, "p2", "2024-03-05", "cupping", None),           # proc-3: local code CUP through modality_map
        (29, "p3", "2024-01-10", "dry_needling", None),      # enc-1: Encounter.type text "Dry needling"
    ]


def test_every_resource_is_used_or_excluded_with_its_reason(bundle):
    study, caught = bundle
    assert _rows(study.exclusions, ["table", "row", "column", "reason"]) == [
        ("episodes", 8, "Condition/c9: code", "other_code"),
        ("scores", 15, "Observation/obs-7: code", "other_code"),              # heart rate, LOINC 8867-4
        ("scores", 16, "Observation/obs-8: status", "entered_in_error"),
        ("scores", 18, "Observation/obs-10: subject.reference", "unknown_patient"),  # Patient/p9 not in the Bundle
        ("scores", 19, "Observation/obs-17: valueQuantity.value", "invalid_fhir"),   # "seven"
        ("scores", 21, "QuestionnaireResponse/qr-odi-2: item", "not_scorable"),      # two sections unanswered
        ("sessions", 23, "Encounter/enc-2", "visit_of_procedure"),            # proc-1's encounter
        ("sessions", 27, "Procedure/proc-4: code", "unknown_modality"),       # "Hot stones", not mapped
        ("sessions", 28, "Procedure/proc-5: status", "not_done"),
    ]
    # 28 resources of the types read (3 Patient, 4 Condition, 11 Observation, 3 QuestionnaireResponse,
    # 5 Procedure, 2 Encounter) = 19 rows used + 9 excluded; the Practitioner is counted in the notes
    used = len(study.patients) + len(study.episodes) + len(study.scores) + len(study.sessions)
    assert used + len(study.exclusions) == 28
    flow = study.flow().set_index(["stage", "table"])["n"]
    assert [flow[("rows read", t)] for t in ("patients", "episodes", "sessions", "scores")] == [3, 4, 7, 14]
    assert "types not read by this loader: Practitioner 1" in study.notes[0]
    # unknown_patient, invalid_fhir, not_scorable, unknown_modality are errors; the others are set aside
    assert [str(w.message)[:47] for w in caught if w.category is ExcludedRowsWarning] == [
        "4 invalid resource(s) or row(s) were excluded ("]


def test_raise_lists_every_problem_with_resource_path_value_and_expectation():
    with pytest.raises(DataValidationError) as info:
        load_fhir(BUNDLE, today="2025-01-01", modality_map=CUP)
    p = info.value.problems
    assert _rows(p, ["source", "row", "column", "value", "reason"]) == [
        ("bundle.json", 18, "Observation/obs-10: subject.reference", "Patient/p9", "unknown_patient"),  # once
        ("bundle.json", 19, "Observation/obs-17: valueQuantity.value", "seven", "invalid_fhir"),
        ("bundle.json", 21, "QuestionnaireResponse/qr-odi-2: item", "8 of 10 answered", "not_scorable"),
        ("bundle.json", 27, "Procedure/proc-4: code", "http://clinic.example.org/CodeSystem/treatments|HS 'Hot stones'",
         "unknown_modality"),
    ]
    row = p.iloc[1]
    assert row["expected"] == "a FHIR decimal: a JSON number such as 7 or 6.5"
    assert "bundle.json:19:Observation/obs-17: valueQuantity.value: invalid Observation (FHIR R4)" in str(info.value)


def test_bundle_and_ndjson_export_give_the_same_study(bundle):
    a, _ = bundle
    b, _ = _load(EXPORT)
    for table in ("patients", "episodes", "scores", "sessions"):
        x = getattr(a, table).drop(columns=["_source", "_row"], errors="ignore")
        y = getattr(b, table).drop(columns=["_source", "_row"], errors="ignore")
        key = list(x.columns[:3])
        pd.testing.assert_frame_equal(x.sort_values(key).reset_index(drop=True),
                                      y.sort_values(key).reset_index(drop=True))
    assert _rows(a.exclusions, ["column", "reason"]) == _rows(b.exclusions, ["column", "reason"])
    # NDJSON problems name the file and the line: obs-17 is line 11 of Observation.ndjson
    hit = b.exclusions[b.exclusions["reason"] == "invalid_fhir"]
    assert _rows(hit, ["source", "row"]) == [("Observation.ndjson", 11)]


def test_parsed_json_loads_like_the_file():
    study, _ = _load(json.loads(BUNDLE.read_text(encoding="utf-8")))
    assert len(study.scores) == 9 and set(study.scores["_source"]) == {"<FHIR resources>"}


def test_missing_fhir_resources_names_the_extra(monkeypatch):
    monkeypatch.setattr(fhir_read, "R4B", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'backpain_outcomes\[sources\]'"):
        load_fhir(BUNDLE)


# ------------------------------------------------------------------------------------------ small cases
def _patient(pid="a"):
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}


def _nrs(oid, value=5, when="2024-05-02", **extra):
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": "Patient/a"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value}, **extra}


def test_partial_dates_units_and_declared_codes_are_named():
    vas_pct = {**_nrs("v1", 40), "code": {"coding": [{"system": "http://loinc.org", "code": "38214-3"}]},
               "valueQuantity": {"value": 40, "unit": "%", "code": "%"}}
    local = {**_nrs("l1", 3), "code": {"coding": [{"system": "http://clinic.example.org/obs", "code": "PAIN"}]}}
    res = [_patient(), _nrs("o1"), _nrs("o2", when="2024-05"), vas_pct, local,
           {"resourceType": "Procedure", "id": "x1", "status": "completed", "subject": {"reference": "Patient/a"},
            "code": {"text": "Consultation"}, "performedDateTime": "2024-05-02"}]
    with pytest.raises(DataValidationError) as info:
        load_fhir(res, today="2025-01-01", modality_map={"Consultation": None})
    assert _rows(info.value.problems, ["row", "column", "reason"]) == [
        (3, "Observation/o2: effectiveDateTime", "invalid_date"),   # "2024-05" is not a day
        (4, "Observation/v1: valueQuantity.code", "invalid_unit"),  # a VAS in % is neither mm nor cm
    ]
    with pytest.warns(ExcludedRowsWarning, match="2 invalid resource"):
        study = load_fhir(res, today="2025-01-01", modality_map={"Consultation": None}, errors="exclude",
                          observation_codes={"http://clinic.example.org/obs|PAIN": "NRS"})
    assert _rows(study.scores, ["_row", "instrument", "score"]) == [(2, "nrs", 5.0), (5, "nrs", 3.0)]
    assert _rows(study.exclusions[study.exclusions["table"] == "sessions"], ["column", "reason"]) == [
        ("Procedure/x1: code", "not_a_session")]


def test_questionnaire_declared_by_canonical_and_rmdq_items():
    items = [{"linkId": f"q{k}", "answer": [{"valueCoding": {"code": "Y" if k <= 10 else "N"}}]} for k in range(1, 25)]
    qr = {"resourceType": "QuestionnaireResponse", "id": "r1", "status": "completed",
          "questionnaire": "http://clinic.example.org/Questionnaire/back-form|3", "subject": {"reference": "Patient/a"},
          "authored": "2024-05-02T10:00:00+02:00", "item": items}
    study = load_fhir([_patient(), qr], today="2025-01-01",
                      questionnaires={"http://clinic.example.org/Questionnaire/back-form": "Roland-Morris"})
    assert _rows(study.scores, ["instrument", "score"]) == [("rmdq", 10.0)]  # ten "Y" answers
    with pytest.raises(DataValidationError, match="not the ODI or the RMDQ") as info:
        load_fhir([_patient(), qr], today="2025-01-01")
    assert info.value.problems["reason"].tolist() == ["other_questionnaire"]
    assert info.value.header.startswith("no resource gives a score")


def test_ndjson_line_that_is_not_json_is_a_problem_of_its_line(tmp_path):
    lines = [json.dumps(_patient()), '{"resourceType": "Observation", "id": "broken"', json.dumps(_nrs("o1"))]
    (tmp_path / "All.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        load_fhir(tmp_path, today="2025-01-01")
    assert _rows(info.value.problems, ["table", "source", "row", "reason"]) == [
        ("fhir", "All.ndjson", 2, "invalid_json")]
    with pytest.warns(ExcludedRowsWarning, match="1 invalid resource"):
        study = load_fhir(tmp_path / "All.ndjson", today="2025-01-01", errors="exclude")
    assert len(study.scores) == 1 and study.exclusions["reason"].tolist() == ["invalid_json"]


def test_invalid_patient_excludes_its_resources_as_a_consequence():
    bad = {**_patient(), "birthDate": "1970-02-30"}
    with pytest.raises(DataValidationError) as info:
        load_fhir([bad, _nrs("o1"), {**_nrs("o2"), "subject": {"reference": "Patient/b"}}, _patient("b")],
                  today="2025-01-01")
    # one problem, the patient's: its observation is not a second error
    assert _rows(info.value.problems, ["row", "column", "reason"]) == [(1, "Patient/a: birthDate", "invalid_fhir")]


def test_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="modality_map"):
        load_fhir(BUNDLE, modality_map={"HS": "hot stones"})
    with pytest.raises(ValueError, match=r"questionnaires\['x'\].*odi or rmdq"):
        load_fhir(BUNDLE, questionnaires={"x": "nrs"})
    with pytest.raises(TypeError, match="source must be a path"):
        load_fhir(42)


def test_transaction_bundle_with_urn_uuid_references():
    # a transaction Bundle as Synthea and most EHR exports write it: fullUrl urn:uuid, references to the fullUrl
    pid, cid = "3b1f6c52-8a7e-4d6b-9f0e-2f1c7d4e5a60", "9d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
    patient = {**_patient(pid), "id": pid}
    cond = {"resourceType": "Condition", "id": cid, "subject": {"reference": f"urn:uuid:{pid}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]},
            "onsetDateTime": "2024-04-28"}
    obs = {**_nrs("o1", 6), "subject": {"reference": f"urn:uuid:{pid}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "request": {"method": "POST",
                         "url": r["resourceType"]}} for r in (patient, cond, obs)]}
    study = load_fhir(bundle, today="2025-01-01")
    assert _rows(study.scores, ["patient_id", "episode_id", "score"]) == [(pid, cid, 6.0)]
    assert study.patients["age"].tolist() == [54.0]  # born 1970-01-01, onset 2024-04-28


def test_export_directory_notes_a_manifest_and_other_files(tmp_path):
    (tmp_path / "Patient.ndjson").write_text(json.dumps(_patient()) + "\n", encoding="utf-8")
    (tmp_path / "Observation.ndjson").write_text(json.dumps(_nrs("o1")) + "\n\n", encoding="utf-8")  # a blank line
    (tmp_path / "manifest.json").write_text(json.dumps({"transactionTime": "2024-06-01T00:00:00Z", "output": []}),
                                            encoding="utf-8")
    (tmp_path / "README.txt").write_text("export of 2024-06-01\n", encoding="utf-8")
    study = load_fhir(tmp_path, today="2025-01-01")
    assert len(study.scores) == 1 and len(study.exclusions) == 0
    assert any("1 file(s) not read (neither .ndjson nor .json, nor gzipped): README.txt" in n for n in study.notes)
    assert any(n.startswith("manifest.json: not read, not a FHIR resource") for n in study.notes)


def test_r4b_models_read_r4_elements_that_r5_renamed():
    # why R4B: R5 renamed Procedure.performed[x] to occurrence[x], so an R4 Procedure fails the R5 model
    from fhir.resources import get_fhir_model_class as r5_model
    from fhir.resources.R4B import get_fhir_model_class as r4b_model
    from pydantic import ValidationError

    proc = {"resourceType": "Procedure", "status": "completed", "subject": {"reference": "Patient/a"},
            "performedDateTime": "2024-05-02"}
    assert str(r4b_model("Procedure").model_validate(proc).performedDateTime) == "2024-05-02"
    with pytest.raises(ValidationError, match="performedDateTime"):
        r5_model("Procedure").model_validate(proc)


def test_statuses_and_absent_values_are_set_aside_with_their_reason():
    lbp = {"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]}
    ver = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
    res = [_patient(),
           {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/a"}, "code": lbp,
            "onsetDateTime": "2024-04-01"},
           {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/a"}, "code": lbp,
            "onsetDateTime": "2024-04-20", "verificationStatus": {"coding": [{"system": ver, "code": "entered-in-error"}]}},
           {"resourceType": "Condition", "id": "c3", "subject": {"reference": "Patient/a"}, "code": lbp},
           _nrs("o1"),
           {**_nrs("o2", None), "valueQuantity": None, "dataAbsentReason": {"text": "Patient asleep"}},
           {**_nrs("o3", 4), "status": "cancelled"},
           {"resourceType": "QuestionnaireResponse", "id": "r1", "status": "entered-in-error",
            "questionnaire": "http://example.org/Questionnaire/odi", "subject": {"reference": "Patient/a"}},
           {"resourceType": "Encounter", "id": "e1", "status": "cancelled", "class": {"code": "AMB"},
            "subject": {"reference": "Patient/a"}, "type": [{"text": "Cupping"}], "period": {"start": "2024-05-02"}},
           {"resourceType": "Encounter", "id": "e2", "status": "finished", "class": {"code": "AMB"},
            "subject": {"reference": "Patient/a"}, "type": [{"text": "Follow-up visit"}], "period": {"start": "2024-05-03"}}]
    res[5].pop("valueQuantity")
    study = load_fhir(res, today="2025-01-01")  # nothing here is an error
    assert _rows(study.exclusions, ["row", "column", "reason"]) == [
        (3, "Condition/c2: verificationStatus", "entered_in_error"),
        (4, "Condition/c3: onset[x]", "no_onset"),
        (6, "Observation/o2: dataAbsentReason", "data_absent"),
        (7, "Observation/o3: status", "not_final"),
        (8, "QuestionnaireResponse/r1: status", "entered_in_error"),
        (9, "Encounter/e1: status", "not_done"),
        (10, "Encounter/e2: type", "no_treatment"),
    ]
    assert _rows(study.episodes, ["episode_id", "modality"]) == [("c1", "unknown")]


def test_a_list_of_paths_reads_each_file_and_json_text_is_refused():
    files = sorted(EXPORT.glob("*.ndjson"))
    a, _ = _load(EXPORT)
    b, _ = _load([str(f) for f in files])  # the files of the export, named one by one (as text)
    for table in ("patients", "episodes", "scores", "sessions"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert sorted(b.input_files) == sorted(f.resolve() for f in files)
    text = BUNDLE.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"source looks like JSON text .*; pass json.loads\(text\) or a path") as info:
        _load(text)
    assert len(str(info.value)) < 200  # the Bundle is not echoed
    with pytest.raises(ValueError, match="source looks like JSON text"):
        _load("  [" + text + "]")
    with pytest.raises(TypeError, match="source: a list must hold either paths or parsed FHIR resources"):
        _load([str(files[0]), {"resourceType": "Patient", "id": "x"}])
