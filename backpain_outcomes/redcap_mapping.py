"""REDCap projects: the data dictionary, and the declarative mapping of instruments and events onto a study.

A REDCap project is described by its **data dictionary** (the CSV file
downloaded from *Project Setup > Data Dictionary*, or the ``metadata`` of the
API): one row per field, naming its form (instrument), its type and, for
radio buttons, drop-downs and checkboxes, its choices ``"1, Deep tissue | 2,
Swedish"``. :func:`read_dictionary` (:mod:`backpain_outcomes.redcap_dictionary`)
reads it under either set of headers.

The **mapping** says which instruments and fields of the project are the
study's sessions, scores and patient-level facts. It is a plain dict (or a
``.json`` or ``.toml`` file holding one)::

    {"patient": "record_id",                       # default: the project's record id (first field)
     "events": ["enrolment_arm_1", "treatment_arm_1", "week6_arm_1"],   # default: every event
     "arms": {1: "treated", 2: "natural course"},  # arm number -> the episode's arm
     "onset": "onset_date",
     "patients": {"age": "age", "sex": "sex", "clinic": "site"},
     "sessions": {"instrument": "treatment_session", "date": "sess_date", "treatment": "sess_modality",
                  "therapist": "sess_therapist", "duration": "sess_minutes"},
     "scores": [{"instrument": "pain_nrs", "date": "nrs_date", "value": "nrs_score", "as": "nrs"},
                {"instrument": "oswestry", "date": "odi_date", "items": ["odi_q1", ..., "odi_q10"], "as": "odi"}],
     "untreated": ["Advice only"],                 # treatment labels meaning "not treated"
     "treatments": {"Hot stones": "other"}}        # extra treatment spellings

:func:`read_mapping` checks it against the dictionary: every field must exist
(an unknown one is an error naming the mapping key, the field and the closest
field names) and belong to the instrument of its entry, except a date, which
may be a field filled once per event on another instrument (a visit date);
dates must not be choice fields and no field may be a checkbox; every
instrument must be a form of the project; ``as`` must be an instrument of the
vocabulary; an ODI lists 10 item fields and an RMDQ 24. The same instrument
may be the sessions instrument and a score instrument (a visit form holding
the treatment and the pain score).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .redcap_dictionary import CHOICE_TYPES, RedcapDictionary, RedcapField, parse_choices, read_dictionary
from .vocabulary import did_you_mean, instrument_name, normalise_modality

__all__ = ["RedcapField", "RedcapDictionary", "RedcapMapping", "ScoreMap", "read_dictionary", "read_mapping",
           "parse_choices", "missing_codes", "MAPPING_KEYS", "STANDARD_MISSING_CODES"]

#: Top-level keys of a mapping, and the keys of its entries.
MAPPING_KEYS = {"patient": "the field holding the patient id (default: the record id)",
                "events": "list of the events whose rows are read (default: every event)",
                "arms": "{arm number: arm of the episode}", "arm": "the field holding the episode's arm",
                "onset": "the field holding the onset date of the episode",
                "patients": "{'age'|'sex'|'clinic': field}",
                "sessions": "{'instrument': form, 'date': field, 'treatment': field, 'therapist': field, "
                            "'duration': field}",
                "scores": "list of {'instrument': form, 'date': field, 'value': field or 'items': [fields], "
                          "'as': instrument}",
                "untreated": "treatment labels that mean 'not treated'",
                "treatments": "{treatment label: modality}",
                "missing_codes": "the project's missing-data codes: a list, {code: label} or 'UNK, Unknown | ...'"}
#: REDCap's built-in missing-data codes (Project Setup > Additional customizations > Missing Data Codes). Always
#: read as missing in numbers and dates, where they cannot be a value; in categories only when declared.
STANDARD_MISSING_CODES = ("NI", "INV", "UNK", "NASK", "ASKU", "NAV", "MSK", "NA", "NAVU", "NP", "QS", "QI", "TRC",
                          "UNC", "DER", "PINF", "NINF", "OTH")
#: Text validations of numbers and of dates (a field validated so holds only those).
_NUMBER_VALIDATIONS = ("integer", "number")
_NOT_NUMBERS = ("notes", "file", "signature", "descriptive", "checkbox")
_SESSION_KEYS = ("instrument", "date", "treatment", "therapist", "duration")
_SCORE_KEYS = ("instrument", "date", "value", "items", "as")
_PATIENT_KEYS = ("age", "sex", "clinic")
_N_ITEMS = {"odi": 10, "rmdq": 24}


# ------------------------------------------------------------------------------------------------ mapping
@dataclass(frozen=True)
class ScoreMap:
    """One scored instrument: its form, date field, score field or item fields, and the study instrument."""

    form: str
    date: str
    instrument: str
    value: str | None = None
    items: tuple = ()


@dataclass(frozen=True)
class RedcapMapping:
    """A checked mapping (see the module notes)."""

    patient: str
    record_id: str
    events: tuple | None
    arms: dict
    arm: str | None
    onset: str | None
    patients: dict               # study column (age, sex, clinic_id) -> field
    sessions: dict               # role -> field, with "instrument" -> form; empty without sessions
    scores: tuple
    untreated: tuple
    treatments: dict = field(default_factory=dict)
    missing_codes: dict = field(default_factory=dict)   # code -> label, declared by the mapping

    def fields(self) -> list[tuple[str, str]]:
        """(mapping key, field) of every field the mapping reads, in the mapping's order."""
        out = [("['patient']", self.patient)]
        out += [(f"[{k!r}]", f) for k, f in (("arm", self.arm), ("onset", self.onset)) if f is not None]
        out += [(f"['patients'][{'clinic' if k == 'clinic_id' else k!r}]", f) for k, f in self.patients.items()]
        out += [(f"['sessions'][{k!r}]", f) for k, f in self.sessions.items() if k != "instrument"]
        for i, s in enumerate(self.scores):
            out += [(f"['scores'][{i}]['date']", s.date)]
            out += [(f"['scores'][{i}]['value']", s.value)] if s.value else []
            out += [(f"['scores'][{i}]['items'][{j}]", f) for j, f in enumerate(s.items)]
        return out


class _Checker:
    """Field and form checks naming the mapping key they come from."""

    def __init__(self, dictionary: RedcapDictionary):
        self.d = dictionary

    def field(self, name, where: str, form: str | None = None) -> str:
        if not isinstance(name, str):
            raise TypeError(f"mapping{where} must be a field name (str), got {name!r}")
        f = self.d.fields.get(name)
        box = name.rpartition("___")[0]
        if f is None and box in self.d.fields and self.d.fields[box].type == "checkbox":
            raise ValueError(f"mapping{where}: {name!r} is the column of one option of the checkbox field {box!r} "
                             "(several answers per row); map a radio, drop-down or text field")
        if f is None:
            raise ValueError(f"mapping{where}: no field {name!r} in the data dictionary "
                             f"{self.d.source}{did_you_mean(name, self.d.fields)}")
        if f.type == "checkbox":
            raise ValueError(f"mapping{where}: {name!r} is a checkbox field (several answers per row); map a "
                             "radio, drop-down or text field")
        if form is not None and f.form != form:
            raise ValueError(f"mapping{where}: field {name!r} is on the instrument {f.form!r}, not {form!r}")
        return name

    def date(self, name, where: str, form: str | None = None) -> str:
        name = self.field(name, where, form)
        f = self.d.fields[name]
        if f.type in CHOICE_TYPES:
            raise ValueError(f"mapping{where}: field {name!r} is a {f.type} field, not a date; map the field that "
                             "holds the date (a text field validated as a date)")
        if f.type in ("calc", "slider", "file", "signature") or f.validation.startswith(_NUMBER_VALIDATIONS):
            raise ValueError(f"mapping{where}: field {name!r} is a number ({_kind(f)}), not a date; map the field "
                             "that holds the date (a text field validated as a date)")
        return name

    def number(self, name, where: str, form: str | None = None) -> str:
        """A field holding a number (a score, an item, a duration, an age)."""
        name = self.field(name, where, form)
        f = self.d.fields[name]
        if f.is_date or f.type in _NOT_NUMBERS or (f.type == "text" and f.validation and not
                                                   f.validation.startswith(_NUMBER_VALIDATIONS)):
            what = "date" if f.is_date else f"{f.type} field" if f.type != "text" else f"text field ({f.validation})"
            raise ValueError(f"mapping{where}: field {name!r} is a {what}, not a number; map a field that holds "
                             "numbers (integer or number text, radio or drop-down with numeric codes, calc, slider)")
        return name

    def category(self, name, where: str, form: str | None = None) -> str:
        """A field holding a label (a treatment, a sex, a clinic, a therapist, an arm)."""
        name = self.field(name, where, form)
        f = self.d.fields[name]
        if f.is_date or f.type in ("calc", "slider", "file", "signature") or \
                f.validation.startswith(_NUMBER_VALIDATIONS):
            what = "date" if f.is_date else f"number ({_kind(f)})"
            raise ValueError(f"mapping{where}: field {name!r} is a {what}, not a label; map the radio, drop-down or "
                             "text field holding the label")
        return name

    def form(self, name, where: str) -> str:
        if not isinstance(name, str) or name not in self.d.forms:
            raise ValueError(f"mapping{where}: no instrument {name!r} in the data dictionary {self.d.source} "
                             f"(instruments: {', '.join(self.d.forms)}){did_you_mean(name, self.d.forms)}")
        return name


def _kind(f: RedcapField) -> str:
    return f"{f.type} field" + (f", {f.validation}" if f.validation else "")


def missing_codes(value) -> dict:
    """The mapping's ``missing_codes`` as {code: label}: a list of codes, a dict, or REDCap's setting text.

    Examples
    --------
    >>> missing_codes("UNK, Unknown | -999, Not collected")
    {'UNK': 'Unknown', '-999': 'Not collected'}
    >>> missing_codes(["-9", -99])
    {'-9': '-9', '-99': '-99'}
    """
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_choices(value)
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(v, v) for v in value]
    else:
        items = None
    if items is None or any(not isinstance(v, str | int) or isinstance(v, bool) for pair in items for v in pair):
        raise TypeError(f"mapping['missing_codes'] must list the project's missing-data codes (a list of codes, "
                        f"{{code: label}} or 'UNK, Unknown | -999, Not collected'), got {value!r}")
    return {str(c).strip(): str(lab).strip() for c, lab in items}


def _keys(entry, allowed, where: str) -> dict:
    if not isinstance(entry, dict):
        raise TypeError(f"mapping{where} must be a dict with keys {', '.join(allowed)}, got {entry!r}")
    unknown = [k for k in entry if k not in allowed]
    if unknown:
        raise ValueError(f"mapping{where}: unknown key {unknown[0]!r}; keys: {', '.join(allowed)}"
                         f"{did_you_mean(unknown[0], allowed)}")
    return entry


def _labels(value, where: str) -> tuple:
    values = [value] if isinstance(value, str) else [] if value is None else list(value) if isinstance(
        value, list | tuple) else None
    if values is None or any(not isinstance(v, str) for v in values):
        raise TypeError(f"mapping{where} must be text labels, got {values!r}")
    return tuple(values)


def _score(entry, k: int, check: _Checker) -> ScoreMap:
    where = f"['scores'][{k}]"
    entry = _keys(entry, _SCORE_KEYS, where)
    for need in ("instrument", "date", "as"):
        if need not in entry:
            raise ValueError(f"mapping{where}: missing {need!r} ({', '.join(_SCORE_KEYS)})")
    form = check.form(entry["instrument"], f"{where}['instrument']")
    inst = instrument_name(entry["as"], f"mapping{where}['as']", ratings=True)
    date = check.date(entry["date"], f"{where}['date']")  # may be a field filled once per event on another form
    if ("value" in entry) == ("items" in entry):
        raise ValueError(f"mapping{where}: give either 'value' (the score field) or 'items' (the item fields)")
    if "value" in entry:
        return ScoreMap(form, date, inst, value=check.number(entry["value"], f"{where}['value']", form))
    items = entry["items"]
    if inst not in _N_ITEMS or not isinstance(items, list | tuple):
        raise ValueError(f"mapping{where}['items']: items are scored for odi (10 fields) and rmdq (24 fields) only, "
                         f"given as a list of field names; got {entry['as']!r} with {items!r}")
    if len(items) != _N_ITEMS[inst]:
        raise ValueError(f"mapping{where}['items']: {inst} has {_N_ITEMS[inst]} items; {len(items)} field(s) given")
    return ScoreMap(form, date, inst,
                    items=tuple(check.number(f, f"{where}['items'][{i}]", form) for i, f in enumerate(items)))


def _load(mapping) -> dict:
    """The mapping as a dict: given as one, as JSON text (a string starting with ``{``), or as the path of a
    ``.json`` or ``.toml`` file."""
    if isinstance(mapping, dict):
        return mapping
    if isinstance(mapping, str) and mapping.lstrip()[:1] in ("{", "["):
        try:
            out = json.loads(mapping)
        except json.JSONDecodeError as err:
            raise ValueError(f"mapping: looks like JSON text but cannot be read: {err}") from None
        if not isinstance(out, dict):
            raise TypeError(f"mapping: JSON text must hold one object (a dict), got {type(out).__name__}")
        return out
    if isinstance(mapping, str | Path):
        path = Path(mapping)
        if path.suffix.lower() not in (".json", ".toml"):
            raise ValueError(f"mapping: {_short(path.name)} is neither a .json nor a .toml file; or pass a dict "
                             "or JSON text")
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise FileNotFoundError(f"mapping: {path}: {what}; give the .json or .toml file of the mapping")
        try:
            text = path.read_text(encoding="utf-8")
            out = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"mapping: {path.name} cannot be read: {err}") from None
        if not isinstance(out, dict):
            raise TypeError(f"mapping: {path.name} must hold one object (a dict), got {type(out).__name__}")
        return out
    raise TypeError(f"mapping must be a dict, JSON text or the path of a .json or .toml file, "
                    f"got {type(mapping).__name__}")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def read_mapping(mapping, dictionary: RedcapDictionary) -> RedcapMapping:
    """Check a mapping (dict, JSON text, or ``.json``/``.toml`` file) against the data dictionary.

    Raises
    ------
    ValueError
        Naming the mapping key, the value and the closest valid names.
    """
    m = _keys(_load(mapping), tuple(MAPPING_KEYS), "")
    check = _Checker(dictionary)
    if "sessions" not in m and "scores" not in m:
        raise ValueError("mapping: give 'scores' (and usually 'sessions'); keys: " + ", ".join(MAPPING_KEYS))
    rid = dictionary.record_id
    patient = check.field(m.get("patient", rid), "['patient']")
    sessions: dict = {}
    if m.get("sessions") is not None:
        s = _keys(m["sessions"], _SESSION_KEYS, "['sessions']")
        for need in ("instrument", "date", "treatment"):
            if need not in s:
                raise ValueError(f"mapping['sessions']: missing {need!r} ({', '.join(_SESSION_KEYS)})")
        form = check.form(s["instrument"], "['sessions']['instrument']")
        kinds = {"treatment": check.category, "therapist": check.category, "duration": check.number}
        sessions = {"instrument": form, "date": check.date(s["date"], "['sessions']['date']"),
                    **{r: kinds[r](s[r], f"['sessions'][{r!r}]", form)
                       for r in _SESSION_KEYS[2:] if s.get(r) is not None}}
    scores = m.get("scores") or []
    if isinstance(scores, dict):
        scores = [scores]
    if not isinstance(scores, list) or not scores:
        raise ValueError("mapping['scores'] must be a list of score instruments, e.g. [{'instrument': 'pain_nrs', "
                         "'date': 'nrs_date', 'value': 'nrs_score', 'as': 'nrs'}]")
    patients = _keys(m.get("patients") or {}, _PATIENT_KEYS, "['patients']")
    events = m.get("events")
    if events is not None:
        events = _labels(events, "['events']")
        if not events:
            raise ValueError("mapping['events'] lists no event; leave it out to read every event")
    arms = m.get("arms") or {}
    if not isinstance(arms, dict) or any(not str(a).strip().isdigit() or not isinstance(v, str)
                                         for a, v in arms.items()):
        raise ValueError(f"mapping['arms'] must map arm numbers to arm labels, e.g. {{1: 'treated', 2: 'natural "
                         f"course'}}, got {arms!r}")
    if arms and m.get("arm") is not None:
        raise ValueError("mapping: give either 'arms' (arm numbers of the events) or 'arm' (a field), not both")
    treatments = m.get("treatments") or {}
    normalise_modality(pd.Series([], dtype=object), treatments)  # a target outside the vocabulary raises
    kinds = {"age": check.number, "sex": check.category, "clinic": check.category}
    out = RedcapMapping(
        patient=patient, record_id=rid, events=events, arms={int(str(a).strip()): v for a, v in arms.items()},
        arm=None if m.get("arm") is None else check.category(m["arm"], "['arm']"),
        onset=None if m.get("onset") is None else check.date(m["onset"], "['onset']"),
        patients={("clinic_id" if r == "clinic" else r): kinds[r](f, f"['patients'][{r!r}]")
                  for r, f in patients.items() if f is not None},
        sessions=sessions, scores=tuple(_score(e, k, check) for k, e in enumerate(scores)),
        untreated=_labels(m.get("untreated"), "['untreated']"), treatments=dict(treatments),
        missing_codes=missing_codes(m.get("missing_codes")))
    _check_once(out)
    return out


def _check_once(m: RedcapMapping) -> None:
    """A score, item, treatment or duration field is read for one purpose only (dates may be shared)."""
    seen: dict = {}
    for where, f in m.fields():
        if where.endswith("['date']") or where in ("['patient']", "['onset']"):
            continue
        if f in seen:
            raise ValueError(f"mapping{where}: field {f!r} is already mapped by mapping{seen[f]}; map each field "
                             "once (only dates may be shared)")
        seen[f] = where
