"""Writes the REDCap test files of this directory (run once; the files are committed).

``dictionary.csv`` is a data dictionary as downloaded from Project Setup; ``records_raw.csv`` the flat raw
export (codes, field names as headers); ``records_labels.csv`` the same records as the label export of the
user interface (choice labels, event and instrument labels, field labels as headers); ``api_metadata.json`` and
``api_records.csv`` the responses of the REDCap API (content=metadata, format=json; content=record,
format=csv, type=flat, rawOrLabel=raw) recorded for the same project.
"""

import csv
import io
import json
from pathlib import Path

HERE = Path(__file__).parent
HEAD = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
        "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
        "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
        "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
        "Matrix Ranking?", "Field Annotation"]
API = ["field_name", "form_name", "section_header", "field_type", "field_label", "select_choices_or_calculations",
       "field_note", "text_validation_type_or_show_slider_number", "text_validation_min", "text_validation_max",
       "identifier", "branching_logic", "required_field", "custom_alignment", "question_number",
       "matrix_group_name", "matrix_ranking", "field_annotation"]
ODI = " | ".join(f"{k}, {t}" for k, t in enumerate(["No problem", "Slight", "Moderate", "Marked", "Severe",
                                                       "Complete"]))
NRS = " | ".join(["0, 0 No pain", *[f"{k}, {k}" for k in range(1, 10)], "10, 10 Worst imaginable pain"])
SECTIONS = ["Pain intensity", "Personal care", "Lifting", "Walking", "Sitting", "Standing", "Sleeping",
            "Sex life", "Social life", "Travelling"]
FIELDS = [  # name, form, type, label, choices, validation
    ("record_id", "enrolment", "text", "Record ID", "", ""),
    ("consent_info", "enrolment", "descriptive", "Consent was obtained before any study procedure.", "", ""),
    ("enrol_date", "enrolment", "text", "Date of enrolment", "", "date_ymd"),
    ("age", "enrolment", "text", "Age (years)", "", "integer"),
    ("sex", "enrolment", "radio", "Sex", "1, Female | 2, Male", ""),
    ("site", "enrolment", "dropdown", "Clinic", "1, North clinic | 2, South clinic", ""),
    ("onset_date", "enrolment", "text", "Date the back pain began", "", "date_ymd"),
    ("sess_date", "treatment_session", "text", "Date", "", "date_ymd"),
    ("sess_modality", "treatment_session", "dropdown", "Treatment given",
     "1, Deep tissue | 2, Trigger point | 3, Swedish | 4, Dry needling | 5, Cupping | 9, No treatment", ""),
    ("sess_therapist", "treatment_session", "dropdown", "Therapist", "1, T. Ngata | 2, R. Okafor", ""),
    ("sess_minutes", "treatment_session", "text", "Duration (minutes)", "", "integer"),
    ("nrs_date", "pain_nrs", "text", "Date", "", "date_ymd"),
    ("nrs_score", "pain_nrs", "radio", "Pain now (0-10)", NRS, ""),
    ("odi_date", "oswestry", "text", "Date", "", "date_ymd"),
    *[(f"odi_q{k}", "oswestry", "radio", f"Section {k}: {s}", ODI, "") for k, s in enumerate(SECTIONS, 1)],
    ("ae_date", "adverse_event", "text", "Date", "", "date_ymd"),
    ("ae_desc", "adverse_event", "notes", "Description", "", ""),
]
FORMS = ["enrolment", "treatment_session", "pain_nrs", "oswestry", "adverse_event"]
FORM_LABELS = {"enrolment": "Enrolment", "treatment_session": "Treatment Session", "pain_nrs": "Pain NRS",
               "oswestry": "Oswestry", "adverse_event": "Adverse Event"}
EVENT_LABELS = {"enrolment_arm_1": "Enrolment (Arm 1: Massage)", "treatment_arm_1": "Treatment (Arm 1: Massage)",
                "week_6_arm_1": "Week 6 (Arm 1: Massage)", "exit_arm_1": "Exit (Arm 1: Massage)",
                "enrolment_arm_2": "Enrolment (Arm 2: Natural course)",
                "follow_up_arm_2": "Follow-up (Arm 2: Natural course)",
                "week_6_arm_2": "Week 6 (Arm 2: Natural course)"}
EXPORTED = [f for f in FIELDS if f[2] != "descriptive"]


def columns():
    cols = ["record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for form in FORMS:
        cols += [f[0] for f in EXPORTED if f[1] == form and f[0] != "record_id"] + [f"{form}_complete"]
    return cols


def enrol(d, age, sex, site, onset):
    return {"enrol_date": d, "age": age, "sex": sex, "site": site, "onset_date": onset, "enrolment_complete": "2"}


def odi(d, items):
    return {"odi_date": d, **{f"odi_q{k}": v for k, v in enumerate(items, 1)}, "oswestry_complete": "2"}


def sess(d, mod, ther, mins):
    return {"sess_date": d, "sess_modality": mod, "sess_therapist": ther, "sess_minutes": mins,
            "treatment_session_complete": "2"}


def nrs(d, v, done="2"):
    return {"nrs_date": d, "nrs_score": v, "pain_nrs_complete": done}


ROWS = [  # line: (record, event, repeat instrument, instance, values)
    ("101", "enrolment_arm_1", "", "", {**enrol("2024-03-04", "42", "1", "1", "2024-02-20"),
                                        **odi("2024-03-04", "2321212312")}),                          # 2
    ("101", "treatment_arm_1", "treatment_session", "1", sess("2024-03-04", "1", "1", "45")),            # 3
    ("101", "treatment_arm_1", "treatment_session", "2", sess("2024-03-11", "1", "1", "45")),            # 4
    ("101", "treatment_arm_1", "treatment_session", "3", sess("2024-03-18", "2", "2", "30")),            # 5
    ("101", "treatment_arm_1", "pain_nrs", "1", nrs("2024-03-04", "7")),                                # 6
    ("101", "treatment_arm_1", "pain_nrs", "2", nrs("2024-03-11", "5")),                                # 7
    ("101", "treatment_arm_1", "pain_nrs", "3", nrs("2024-03-18", "3")),                                # 8
    ("101", "treatment_arm_1", "adverse_event", "1", {"ae_date": "2024-03-12", "ae_desc": "Soreness, next day",
                                                     "adverse_event_complete": "2"}),                   # 9
    ("101", "week_6_arm_1", "", "", odi("2024-04-15", "1110101101")),                                   # 10
    ("101", "week_6_arm_1", "pain_nrs", "1", nrs("2024-04-15", "1")),                                   # 11
    ("102", "enrolment_arm_1", "", "", {**enrol("2024-03-06", "35", "2", "2", "2024-01-10"),
                                        **odi("2024-03-06", "3332223223")}),                          # 12
    ("102", "treatment_arm_1", "treatment_session", "1", sess("2024-03-06", "5", "2", "30")),            # 13
    ("102", "treatment_arm_1", "treatment_session", "2", sess("2024-13-06", "5", "2", "30")),            # 14 bad date
    ("102", "treatment_arm_1", "pain_nrs", "1", nrs("2024-03-06", "8")),                                # 15
    ("102", "treatment_arm_1", "pain_nrs", "2", nrs("2024-03-20", "", "0")),                            # 16 no score
    ("102", "week_6_arm_1", "pain_nrs", "1", nrs("2024-04-17", "4")),                                   # 17
    ("102", "exit_arm_1", "pain_nrs", "1", nrs("2024-06-01", "2")),                                     # 18 unmapped
    ("103", "enrolment_arm_2", "", "", {**enrol("2024-03-08", "51", "1", "1", "2024-03-01"),
                                        **odi("2024-03-08", [*"222222222", ""])}),                      # 19
    ("103", "follow_up_arm_2", "pain_nrs", "1", nrs("2024-03-08", "6")),                                # 20
    ("103", "follow_up_arm_2", "pain_nrs", "2", nrs("2024-03-22", "4")),                                # 21
    ("103", "follow_up_arm_2", "pain_nrs", "3", nrs("2024-04-05", "3")),                                # 22
    ("103", "week_6_arm_2", "", "", odi("2024-04-19", "1111111111")),                                   # 23
    ("104", "enrolment_arm_2", "", "", {**enrol("2024-03-12", "29", "2", "2", "2024-03-05"),
                                        "oswestry_complete": "0"}),                                     # 24
    ("104", "follow_up_arm_2", "pain_nrs", "1", nrs("2024-03-12", "5")),                                # 25
    ("104", "follow_up_arm_2", "pain_nrs", "2", nrs("2024-03-26", "2")),                                # 26
    ("104", "week_6_arm_2", "", "", {"oswestry_complete": "0"}),                                        # 27 nothing
]


def raw_rows():
    cols = columns()
    out = []
    for rec, ev, rep, inst, vals in ROWS:
        row = dict.fromkeys(cols, "")
        row.update(record_id=rec, redcap_event_name=ev, redcap_repeat_instrument=rep, redcap_repeat_instance=inst)
        row.update(vals)
        out.append(row)
    return cols, out


def write_csv(path, header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def label_rows(cols, rows):
    choices = {f[0]: dict(c.split(", ", 1) for c in f[4].split(" | ")) for f in EXPORTED if f[4]}
    status = {"0": "Incomplete", "1": "Unverified", "2": "Complete", "": ""}
    labels = {f[0]: f[3] for f in EXPORTED}
    header = []
    for c in cols:
        header.append({"redcap_event_name": "Event Name", "redcap_repeat_instrument": "Repeat Instrument",
                       "redcap_repeat_instance": "Repeat Instance"}.get(c) or labels.get(c) or "Complete?")
    out = []
    for row in rows:
        vals = []
        for c in cols:
            v = row[c]
            if c == "redcap_event_name":
                v = EVENT_LABELS[v]
            elif c == "redcap_repeat_instrument":
                v = FORM_LABELS.get(v, "")
            elif c.endswith("_complete"):
                v = status[v]
            elif c in choices and v:
                v = choices[c][v]
            vals.append(v)
        out.append(vals)
    return header, out


def main():
    write_csv(HERE / "dictionary.csv", HEAD, [[n, f, "", t, lab, ch, "", val] + [""] * 10
                                              for n, f, t, lab, ch, val in FIELDS])
    cols, rows = raw_rows()
    write_csv(HERE / "records_raw.csv", cols, [[r[c] for c in cols] for r in rows])
    (HERE / "api_records.csv").write_text((HERE / "records_raw.csv").read_text(encoding="utf-8"), encoding="utf-8")
    header, lab = label_rows(cols, rows)
    write_csv(HERE / "records_labels.csv", header, lab)
    meta = [dict(zip(API, [n, f, "", t, lab, ch, "", val] + [""] * 10)) for n, f, t, lab, ch, val in FIELDS]
    (HERE / "api_metadata.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
