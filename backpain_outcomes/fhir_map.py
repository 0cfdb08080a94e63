"""FHIR R4 resources as rows of the package's four tables.

Each mapper takes one parsed resource and either adds a row to its table,
with the JSON path each column came from, or records why the resource is not
used (a problem of its table: ``Observation/obs-3: status``). The rows are
handed to :func:`~backpain_outcomes.load_study` by
:func:`~backpain_outcomes.fhir.load_fhir`, so that every check of the loader
applies to them too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .fhir_codes import (
    code_text,
    coding_keys,
    day_of,
    modality_of,
    observation_instrument,
    patient_of,
    questionnaire_instrument,
    questionnaire_items,
    score_items,
    unit_ok,
)
from .fhir_read import Resource
from .problems import CONSEQUENCE, ERROR, SET_ASIDE, Problems
from .reading import Part

__all__ = ["Mapper", "Options", "SET_ASIDE_REASONS"]

#: Reasons of resources set aside (excluded in both modes, never errors).
SET_ASIDE_REASONS = ("entered_in_error", "not_done", "not_final", "other_code", "other_questionnaire",
                     "not_a_session", "no_treatment", "no_onset", "refuted", "data_absent", "visit_of_procedure",
                     "superseded", "deleted", "replaced")
_OBS_USED = {"final", "amended", "corrected", "preliminary"}
_PROC_USED = {"completed", "in-progress", "stopped"}
_ENC_USED = {"finished", "in-progress", "arrived", "onleave", "triaged"}


@dataclass
class Options:
    """What the arguments of load_fhir say about codes and scoring."""

    observation_codes: dict
    questionnaires: dict
    condition_codes: tuple
    modality_map: dict
    odi_max_missing: int = 1
    rmdq_rescale: bool = False
    rmdq_max_missing: int = 0


@dataclass
class Mapper:
    """Rows of each table by source, where each came from, and the problems of resources not used."""

    p: Problems
    options: Options
    full_urls: dict
    lost_patients: set                                   # ids of Patient resources not used
    known_patients: set | None                           # ids of every Patient resource (None: there are none)
    rows: dict = field(default_factory=dict)             # (table, source) -> list of row dicts
    lines: dict = field(default_factory=dict)            # (table, source) -> list of rows (line / entry)
    where: dict = field(default_factory=dict)            # (table, source, row) -> (label, {column: path})
    births: dict = field(default_factory=dict)           # patient id -> birthDate as parsed
    counts: Counter = field(default_factory=Counter)     # what was used, for the notes
    procedure_encounters: set = field(default_factory=set)
    flags: Counter = field(default_factory=Counter)      # things to say in the notes
    replaced: dict = field(default_factory=dict)         # patient id -> the id it was merged into

    def merges(self, patients: list[Resource]) -> None:
        """Patients merged into another (``link`` of type ``replaced-by`` naming a Patient of the input): their
        resources are the other patient's, so that one person is not counted twice."""
        for r in patients:
            for link in r.model.link or []:
                pid, why = patient_of(link.other, self.full_urls)
                if link.type == "replaced-by" and not why and pid is not None and pid != r.model.id and \
                        pid in (self.known_patients or ()):
                    self.replaced[r.model.id] = pid
                    break

    def _merged(self, pid: str) -> str:
        seen = {pid}
        while pid in self.replaced and self.replaced[pid] not in seen:  # a chain of merges, never a loop
            pid = self.replaced[pid]
            seen.add(pid)
        return pid

    def notes(self) -> list[str]:
        """Notes on how the resources were read (what no single problem says)."""
        out = []
        if self.known_patients is None:
            out.append("no Patient resource in the input: the patients are those named by the subjects, without "
                       "sex or age (a Bulk Data export without Patient.ndjson?)")
        if self.flags["vas_no_unit"]:
            out.append(f"{self.flags['vas_no_unit']} VAS observation(s) have no unit: read as mm (0-100); a VAS "
                       "recorded 0-10 needs its unit cm")
        if self.flags["utc_times"]:
            out.append(f"{self.flags['utc_times']} date(s) are times written in UTC (Z or +00:00): the day of each "
                       "is the UTC day written, which is the next local day for an evening visit west of UTC (the "
                       "day of a dateTime is always the day written, whatever its offset)")
        if self.flags["replaced"]:
            out.append(f"{self.flags['replaced']} Patient(s) were merged into another (link replaced-by): their "
                       "resources are counted as the other patient's")
        if self.flags["component_pain"]:
            out.append(f"{self.flags['component_pain']} Observation(s) of other codes (a panel) hold a pain score in "
                       "a component, which this loader does not read: they are set aside as other_code")
        return out

    # -------------------------------------------------------------------------------- bookkeeping
    def add(self, table: str, res: Resource, row: dict, paths: dict) -> None:
        key = (table, res.source)
        self.rows.setdefault(key, []).append(row)
        self.lines.setdefault(key, []).append(res.row)
        self.where[(table, res.source, res.row)] = (res.label, paths)

    def drop(self, res: Resource, path: str, reason: str, message: str, expected: str = "", value=None,
             kind: str = SET_ASIDE) -> None:
        column = f"{res.label}: {path}" if path else res.label
        self.p.add(res.table, res.source, [res.row], column, reason, message, expected,
                   value=[None if value is None else str(value)], kind=kind)

    def parts(self, table: str) -> list[Part]:
        out = []
        for (name, source), rows in self.rows.items():
            if name == table:
                lines = np.asarray(self.lines[(name, source)], np.int64)
                out.append(Part(source, pd.DataFrame(rows, dtype=object), lines, header_fields=len(rows[0])))
        return out

    def _subject(self, res: Resource, reference, row: dict, paths: dict) -> bool:
        """The row's patient from the resource's subject; False when the resource is not used because of it."""
        pid, why = patient_of(reference, self.full_urls)
        paths["patient_id"] = "subject.reference" if reference is not None else "subject"
        if why and why != "missing":
            self.drop(res, "subject.reference", "not_a_patient", f"the subject is {why}, not a Patient",
                      "a reference to a Patient", reference.reference, kind=ERROR)
            return False
        pid = None if pid is None else self._merged(pid)
        if pid is not None and self.known_patients is not None and pid not in self.known_patients:
            self.drop(res, "subject.reference", "unknown_patient", f"the subject {reference.reference} is not "
                      "in the input (no Patient resource has this id)", "a reference to a Patient of the input",
                      reference.reference, kind=ERROR)
            return False
        if pid is not None and pid in self.lost_patients:
            self.drop(res, "subject.reference", "patient_excluded", "the patient's own resource is not used "
                      "(see the Patient resource)", "a valid Patient", reference.reference, kind=CONSEQUENCE)
            return False
        row["patient_id"] = pid
        return True

    def _day(self, res: Resource, row: dict, paths: dict, column: str, candidates, missing: str) -> bool:
        """The row's date from the first present of ``candidates`` [(path, value)] (``missing``: the path named
        when none is present, which the loader reports); a partial date is a problem."""
        for path, value in candidates:
            if value is not None:
                day, why = day_of(value)
                if why:
                    self.drop(res, path, "invalid_date", f"date {why}", "a date with a day (YYYY-MM-DD)",
                              value, kind=ERROR)
                    return False
                row[column], paths[column] = day, path
                if isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0) and value.time() != dt.time():
                    self.flags["utc_times"] += 1
                return True
        row[column], paths[column] = None, missing
        return True

    # -------------------------------------------------------------------------------- resources
    def patient(self, res: Resource) -> None:
        m = res.model
        if m.id in self.replaced:
            self.drop(res, "link", "replaced", f"the patient was merged into Patient/{self._merged(m.id)} (link "
                      "replaced-by): their resources are that patient's", "", self.replaced[m.id])
            self.flags["replaced"] += 1
            return
        gender = None if m.gender in (None, "unknown") else m.gender
        self.births[m.id] = m.birthDate
        self.add("patients", res, {"patient_id": m.id, "sex": gender, "age": None},
                 {"patient_id": "id", "sex": "gender", "age": "birthDate"})
        self.counts["Patient"] += 1

    def condition(self, res: Resource) -> None:
        m = res.model
        keys = coding_keys(m.code)
        if not any(k in self.options.condition_codes for k in keys):
            self.drop(res, "code", "other_code", f"not a low back pain condition ({code_text(m.code)})",
                      "a low back pain code (SNOMED CT 279039007, ICD-10 M54.5) or one of condition_codes",
                      code_text(m.code))
            return
        status = (coding_keys(m.verificationStatus) or [""])[-1]
        if status in ("entered-in-error", "refuted"):
            self.drop(res, "verificationStatus", status.replace("-", "_"), f"the condition is {status}", "", status)
            return
        row: dict = {"episode_id": m.id}
        paths = {"episode_id": "id"}
        if not self._subject(res, m.subject, row, paths):
            return
        onset = m.onsetDateTime if m.onsetDateTime is not None else (
            m.onsetPeriod.start if m.onsetPeriod is not None else None)
        if onset is None:
            self.drop(res, "onset[x]", "no_onset", "the condition has no onsetDateTime or onsetPeriod.start, so "
                      "it gives no episode onset", "onsetDateTime")
            return
        if not self._day(res, row, paths, "onset_date", [("onsetDateTime" if m.onsetDateTime is not None
                                                          else "onsetPeriod.start", onset)], "onset[x]"):
            return
        self.add("episodes", res, row, paths)
        self.counts["Condition"] += 1

    def observation(self, res: Resource) -> None:
        m = res.model
        if m.status not in _OBS_USED:
            reason = "entered_in_error" if m.status == "entered-in-error" else "not_final"
            self.drop(res, "status", reason, f"the observation's status is {m.status}",
                      "final, amended, corrected or preliminary", m.status)
            return
        kind, factor, unit = observation_instrument(m, self.options.observation_codes)
        if kind is None:
            if any(k in self.options.observation_codes for c in (m.component or []) for k in coding_keys(c.code)):
                self.flags["component_pain"] += 1
            self.drop(res, "code", "other_code", f"not a pain score code ({code_text(m.code)})",
                      "LOINC 72514-3 (NRS), 38214-3 or 38208-5 (VAS), or one of observation_codes", code_text(m.code))
            return
        row: dict = {"instrument": kind}
        paths = {"instrument": "code"}
        if not self._subject(res, m.subject, row, paths):
            return
        if not self._day(res, row, paths, "date", [("effectiveDateTime", m.effectiveDateTime),
                                                   ("effectivePeriod.start", m.effectivePeriod and
                                                    m.effectivePeriod.start),
                                                   ("effectiveInstant", m.effectiveInstant)], "effective[x]"):
            return
        if not self._value(res, m, kind, factor, unit, row, paths):
            return
        self.add("scores", res, row, paths)
        self.counts[f"Observation ({kind})"] += 1

    def _value(self, res, m, kind, factor, unit, row, paths) -> bool:
        if m.valueQuantity is not None:
            if not unit_ok(kind, unit):
                self.drop(res, "valueQuantity.code", "invalid_unit", f"unit {unit!r} is not a unit of the {kind}",
                          "mm or cm" if kind == "vas" else "no unit, or {score}", unit, kind=ERROR)
                return False
            value = m.valueQuantity.value
            if m.valueQuantity.comparator is not None:
                self.drop(res, "valueQuantity.comparator", "inexact_value", f"the value is "
                          f"{m.valueQuantity.comparator} {value}, not a score", "a value without comparator",
                          f"{m.valueQuantity.comparator}{value}", kind=ERROR)
                return False
            if kind == "vas" and not unit:
                self.flags["vas_no_unit"] += 1
            row["score"] = None if value is None else float(value) * factor
            paths["score"] = "valueQuantity.value"
        elif m.valueInteger is not None:
            row["score"], paths["score"] = float(m.valueInteger), "valueInteger"
        elif m.valueString is not None:
            row["score"], paths["score"] = m.valueString, "valueString"  # the loader reports text
        elif m.dataAbsentReason is not None:
            self.drop(res, "dataAbsentReason", "data_absent", "no value: "
                      f"{code_text(m.dataAbsentReason) or 'data absent'}", "", code_text(m.dataAbsentReason))
            return False
        else:
            row["score"], paths["score"] = None, "value[x]"
        return True

    def questionnaire(self, res: Resource) -> None:
        m, o = res.model, self.options
        if m.status == "entered-in-error":
            self.drop(res, "status", "entered_in_error", "the response is entered-in-error", "", m.status)
            return
        kind, canonical = questionnaire_instrument(m, o.questionnaires)
        if kind is None:
            shown = canonical or "no questionnaire"
            self.drop(res, "questionnaire", "other_questionnaire", f"not the ODI or the RMDQ ({shown})",
                      "a canonical named in questionnaires=, or ending in odi, oswestry, rmdq, roland-morris",
                      canonical)
            return
        found, problems = questionnaire_items(m, kind)
        score, more = score_items(kind, found, o.odi_max_missing, o.rmdq_rescale, o.rmdq_max_missing)
        every = [(path, value, msg, "") for path, value, msg in problems] + more
        if every:
            for path, value, msg, expected in every:
                self.drop(res, path, "not_scorable", msg, expected, value, kind=ERROR)
            return
        row: dict = {"instrument": kind, "score": score}
        paths = {"instrument": "questionnaire", "score": "item"}
        if not self._subject(res, m.subject, row, paths):
            return
        if not self._day(res, row, paths, "date", [("authored", m.authored)], "authored"):
            return
        self.add("scores", res, row, paths)
        self.counts[f"QuestionnaireResponse ({kind})"] += 1

    def procedure(self, res: Resource) -> None:
        m = res.model
        if m.status not in _PROC_USED:
            reason = {"entered-in-error": "entered_in_error", "not-done": "not_done"}.get(m.status, "not_final")
            self.drop(res, "status", reason, f"the procedure's status is {m.status}",
                      "completed, in-progress or stopped", m.status)
            return
        self._session(res, "code", m.code, [("performedDateTime", m.performedDateTime),
                                            ("performedPeriod.start", m.performedPeriod and m.performedPeriod.start)],
                      [p.actor for p in (m.performer or [])], "performed[x]")
        if m.encounter is not None and m.encounter.reference:
            ref = re.sub(r"/_history/[^/]*$", "", m.encounter.reference.rstrip("/"))
            self.procedure_encounters.update({m.encounter.reference, ref, "/".join(ref.split("/")[-2:])})

    def encounter(self, res: Resource, refs: set) -> None:
        m = res.model
        if {f"Encounter/{m.id}", res.full_url} & refs:
            self.drop(res, "", "visit_of_procedure", "the encounter is the visit of a Procedure, which is the "
                      "session", "")
            return
        if m.status not in _ENC_USED:
            reason = "entered_in_error" if m.status == "entered-in-error" else "not_done"
            self.drop(res, "status", reason, f"the encounter's status is {m.status}",
                      "finished or in-progress", m.status)
            return
        concepts = [("type", t) for t in (m.type or [])] + ([("serviceType", m.serviceType)] if m.serviceType else [])
        self._session(res, concepts[0][0] if concepts else "type", concepts, [("period.start", m.period and
                      m.period.start)], [p.individual for p in (m.participant or [])], "period.start", encounter=True)

    def _session(self, res, path, concepts, dates, actors, missing, encounter=False) -> None:
        if not isinstance(concepts, list):
            concepts = [(path, concepts)]
        keys = [k for _, c in concepts for k in coding_keys(c)]
        texts = [t for _, c in concepts if c is not None for t in
                 [c.text, *[x.display for x in (c.coding or [])]] if t]
        modality, declared_not = modality_of(keys, texts, self.options.modality_map)
        shown = "; ".join(code_text(c) for _, c in concepts if c is not None) or "no code"
        if declared_not or (modality is None and encounter):
            self.drop(res, path, "not_a_session" if declared_not else "no_treatment",
                      f"not a treatment session ({shown})", "a treatment: a code or text mapped to a modality",
                      shown)
            return
        if modality is None:
            self.drop(res, path, "unknown_modality", f"the treatment {shown} is not a modality of the vocabulary; "
                      "map it with modality_map={'<system>|<code>': '<modality>'} (or None: not a session)",
                      "a code or text of deep_tissue, trigger_point, swedish, dry_needling, cupping or other",
                      shown, kind=ERROR)
            return
        row: dict = {"modality": modality}
        paths = {"modality": path}
        if not self._subject(res, res.model.subject, row, paths):
            return
        if not self._day(res, row, paths, "session_date", dates, missing):
            return
        actor = next((a.reference for a in actors if a is not None and a.reference), None)
        row["therapist_id"], paths["therapist_id"] = (actor.split("/")[-1] if actor else None), "performer"
        self.add("sessions", res, row, paths)
        self.counts[f"{res.rtype} ({modality})"] += 1

    # -------------------------------------------------------------------------------- ages
    def fill_ages(self) -> int:
        """Each patient's age in whole years at the onset of their first episode, else at their first score or
        session; returns how many birth dates were not full dates (age left blank)."""
        first: dict = {}
        for (table, _), rows in self.rows.items():
            col = {"episodes": "onset_date", "scores": "date", "sessions": "session_date"}.get(table)
            for r in rows if col else []:
                if r.get(col) and r.get("patient_id") is not None:
                    rank = (0 if table == "episodes" else 1, r[col])
                    first[r["patient_id"]] = min(first.get(r["patient_id"], rank), rank)
        partial = 0
        for (table, _), rows in self.rows.items():
            for r in rows if table == "patients" else []:
                born = self.births.get(r["patient_id"])
                if born is not None and not isinstance(born, dt.date):
                    partial += 1
                if isinstance(born, dt.date) and r["patient_id"] in first:
                    ref = dt.date.fromisoformat(first[r["patient_id"]][1])
                    r["age"] = ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))
        return partial
