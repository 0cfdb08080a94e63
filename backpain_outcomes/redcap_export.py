"""Reading a REDCap export: its columns under field names, and what each row is.

The flat export of a longitudinal REDCap project has one row per record and
event (``redcap_event_name``) for the instruments that do not repeat, and one
row per instance of a repeating instrument (``redcap_repeat_instrument``,
``redcap_repeat_instance``). This module reads it with the lines of its rows
(:func:`read_export`), finds each field's column under raw headers (field
names) or label headers (field labels, the k-th header with a label being the
k-th field with that label in dictionary order; :func:`export_headers`),
tells the event, arm, episode and repeat instrument of every row
(:func:`classify_rows`) and reads choice fields as codes or labels from the
raw or the label export (:func:`field_values`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import DataValidationError
from .problems import Problems
from .reading import Part, ReadError, read_part
from .redcap_mapping import RedcapDictionary, RedcapMapping
from .vocabulary import did_you_mean

__all__ = ["REDCAP_COLUMNS", "RedcapExport", "ExportRows", "event_key", "read_export", "export_headers",
           "classify_rows", "form_rows", "choice_values", "field_values"]

REDCAP_COLUMNS = {"redcap_event_name": "Event Name", "redcap_repeat_instrument": "Repeat Instrument",
                  "redcap_repeat_instance": "Repeat Instance", "redcap_data_access_group": "Data Access Group"}
_LABEL_EVENT = re.compile(r"^(.*?)\s*\(\s*arm\s*(\d+)\s*(?::.*)?\)\s*$", re.IGNORECASE)
_RAW_EVENT = re.compile(r"^(.*)_arm_(\d+)$")
#: Study column -> whether the study wants the choice's code (a number) rather than its label.
_NUMERIC = {"score": True, "duration_min": True, "age": True, "modality": False, "therapist_id": False,
            "sex": False, "clinic_id": False, "arm": False}


def event_key(name: object) -> tuple[str, int]:
    """An event as (name, arm number), from its unique name or its label.

    Examples
    --------
    >>> event_key("week_6_arm_2"), event_key("Week 6 (Arm 2: Natural course)"), event_key("baseline")
    (('week_6', 2), ('week_6', 2), ('baseline', 1))
    """
    text = str(name).strip()
    m = _LABEL_EVENT.match(text) or _RAW_EVENT.match(text)
    base, arm = (m[1], int(m[2])) if m else (text, 1)
    return re.sub(r"[^0-9a-z]+", "_", base.lower()).strip("_"), arm


# ------------------------------------------------------------------------------------------------ read
@dataclass
class RedcapExport:
    """The export as read: rows under field names, with their lines, and each field's header as written."""

    part: Part
    data: pd.DataFrame
    header: dict     # field or REDCap column -> header as written
    labels: bool     # headers are field labels


def read_export(records) -> Part:
    """The export (a file, a DataFrame or a :class:`Part`) as one part with the line of every row; an export that
    cannot be read, or has no record row, is a :class:`DataValidationError` naming it."""
    source = "<REDCap records DataFrame>" if isinstance(records, pd.DataFrame) else (
        records.source if isinstance(records, Part) else Path(records).name)
    try:
        parts = read_part(records, "redcap", None, source)
    except ReadError as err:
        p = Problems()
        p.whole_file("redcap", source, err.reason, err.message, err.expected, err.value, err.line)
        raise DataValidationError(p.frame(), header="the REDCap export cannot be read") from None
    if len(parts) != 1 or not len(parts[0].data):
        p = Problems()
        p.whole_file("redcap", source, "empty_file" if len(parts) == 1 else "several_sheets",
                     "the export has no data rows" if len(parts) == 1 else "the workbook has several sheets",
                     "one table of records under one header row")
        raise DataValidationError(p.frame(), header="the REDCap export cannot be read")
    return parts[0]


def export_headers(part: Part, dic: RedcapDictionary, m: RedcapMapping) -> RedcapExport:
    """Columns under their field names: as written (raw headers) or by their labels, the k-th header with a label
    being the k-th field with that label in dictionary order (the export's order; pandas names a repeated header
    ``Date.1``)."""
    cols = [str(c) for c in part.data.columns]
    labels = dic.record_id not in cols
    if not labels:
        names = cols
    else:
        def key(text):
            return re.sub(r"\s+", " ", str(text)).strip().lower()
        by_label: dict = {}
        for f in dic.fields.values():
            by_label.setdefault(key(f.label), []).append(f.name)
        for col, lab in REDCAP_COLUMNS.items():
            by_label.setdefault(key(lab), []).append(col)
        seen: dict = {}
        names = []
        for c in cols:
            label = key(c)
            dup = re.match(r"^(.*)\.\d+$", label)  # "Date.1": pandas' name for a second "Date" column
            if label not in by_label and dup and dup[1] in by_label:
                label = dup[1]
            k = seen[label] = seen.get(label, -1) + 1
            hits = by_label.get(label, [])
            names.append(hits[k] if k < len(hits) else c)
        if dic.record_id not in names:
            raise ValueError(f"records: {part.source} has no column {dic.record_id!r} (the record id, the first field "
                             f"of the data dictionary) nor its label {dic.fields[dic.record_id].label!r}; columns: "
                             f"{', '.join(map(repr, cols[:8]))}{' ...' if len(cols) > 8 else ''}")
    missing = [(where, f) for where, f in m.fields() if f not in names]
    if missing:
        where, f = missing[0]
        raise ValueError(f"mapping{where}: the export {part.source} has no column for field {f!r} (nor its label "
                         f"{dic.fields[f].label!r}); export the fields of every mapped instrument"
                         f"{did_you_mean(f, names)}")
    data = part.data.set_axis(names, axis=1)
    return RedcapExport(part, data, dict(zip(names, cols)), labels)


# ------------------------------------------------------------------------------------------------ rows
@dataclass
class ExportRows:
    """Which rows of the export are read for what, and why the others are not."""

    event_ok: np.ndarray
    form: np.ndarray          # form of the repeat instrument, "" for event rows, None for an unknown value
    repeat: pd.Series         # the repeat-instrument value as written
    episode: np.ndarray
    arm: np.ndarray           # arm number of each row's event
    notes: list


def classify_rows(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping) -> ExportRows:
    """The event, arm, repeat instrument and episode of every row, and whether its event is read."""
    d, n = ex.data, len(ex.data)
    notes = []
    if m.events is not None and "redcap_event_name" not in d:
        raise ValueError(f"mapping['events']: {ex.part.source} has no column redcap_event_name (the project is not "
                         "longitudinal, or the export left the events out); leave 'events' out of the mapping")
    events = d["redcap_event_name"] if "redcap_event_name" in d else pd.Series(None, index=d.index, dtype=object)
    codes, uniq = pd.factorize(events)
    keys = [event_key(e) for e in uniq]
    arm = np.append(np.array([a for _, a in keys], np.int64), 1)[codes]
    if m.events is None:
        event_ok = np.ones(n, bool)
    else:
        wanted = {event_key(e) for e in m.events}
        event_ok = np.append(np.array([k in wanted for k in keys], bool), False)[codes]
        absent = [e for e in m.events if event_key(e) not in set(keys)]
        if absent:
            notes.append(f"mapping['events']: no row of event(s) {', '.join(map(repr, absent))} in {ex.part.source}"
                         f"{did_you_mean(absent[0], [str(u) for u in uniq])}")
    repeat = d["redcap_repeat_instrument"] if "redcap_repeat_instrument" in d else pd.Series(
        None, index=d.index, dtype=object)
    rcodes, runiq = pd.factorize(repeat)
    forms = [dic.form_of(r) for r in runiq]
    for k, r in enumerate(runiq):
        if forms[k] is None:
            forms[k] = _form_filled(d.loc[rcodes == k], dic)
            if forms[k] is not None:
                notes.append(f"{ex.part.source}: repeating instrument {r!r} read as the instrument {forms[k]!r}, "
                             "whose fields its rows fill")
    form = np.append(np.array(forms, dtype=object), "")[rcodes]
    record = d[dic.record_id].astype(object)
    span = pd.Series(arm[event_ok]).groupby(record[event_ok].to_numpy()).nunique()
    several = record.map(span).fillna(1).to_numpy() > 1
    episode = np.where(several, record.astype(str) + " (arm " + pd.Series(arm).astype(str).to_numpy() + ")",
                       record.to_numpy(object))
    episode = np.asarray(np.where(record.isna().to_numpy(), None, episode), dtype=object)
    if several.any():
        notes.append(f"{int(record[several].nunique())} record(s) are enrolled in several arms: each arm is an "
                     "episode, named 'record (arm N)'")
    notes += _repeated_keys(ex, dic)
    return ExportRows(event_ok, form, repeat, episode, arm, notes)


def _repeated_keys(ex: RedcapExport, dic: RedcapDictionary) -> list[str]:
    """Rows with the record, event, repeat instrument and instance of another row but other values: REDCap writes
    each once, so the file was assembled from several exports (exact duplicates are set aside by the loader)."""
    keys = [c for c in (dic.record_id, "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")
            if c in ex.data]
    keyed = ex.data[keys].astype(object)
    by_key = keyed.where(keyed.notna(), "").duplicated(keep=False).to_numpy()
    if not by_key.any():
        return []
    rows = ex.data.loc[by_key].astype(object)
    same_key = by_key.copy()
    same_key[by_key] = ~rows.where(rows.notna(), "").duplicated(keep=False).to_numpy()
    if not same_key.any():
        return []
    lines = ex.part.lines[same_key]
    shown = ", ".join(str(int(v)) for v in lines[:8]) + (", ..." if len(lines) > 8 else "")
    return [f"{ex.part.source}: {int(same_key.sum())} row(s) share their record, event and repeat instance with "
            f"another row but hold other values (lines {shown}): REDCap exports each once, so the file may join "
            "several exports; all are read, check which to keep"]


def _form_filled(rows: pd.DataFrame, dic: RedcapDictionary) -> str | None:
    """The one instrument whose fields some of these rows fill (rows of a repeat instrument named by a label that
    is not its form's name), or None."""
    cols = [c for c in rows.columns if c in dic.fields and c != dic.record_id]
    filled = rows[cols].notna().any(axis=0) if cols else pd.Series(dtype=bool)
    forms = {dic.fields[c].form for c in filled.index[filled.to_numpy()]}
    return forms.pop() if len(forms) == 1 else None


def form_rows(ex: RedcapExport, rows: ExportRows, form: str, fields: list[str], shared: bool = False) -> np.ndarray:
    """Rows of one instrument: its repeat instances, and the event rows where one of ``fields`` holds a value.

    An instrument ``shared`` by the sessions and a score (a visit form holding the treatment and the pain score)
    gives only the rows, instances or not, where one of ``fields`` holds a value: a visit without a score is not a
    missing score, and a visit without a treatment is not a session.
    """
    filled = ex.data[fields].notna().any(axis=1).to_numpy() if fields else np.zeros(len(ex.data), bool)
    if shared:
        return rows.event_ok & ((rows.form == form) | (rows.form == "")) & filled
    return rows.event_ok & ((rows.form == form) | ((rows.form == "") & filled))


def _text(value: object) -> str:
    """A cell as REDCap writes it: 1.0 read from a numeric column is the code "1"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return re.sub(r"\s+", " ", str(value)).strip()


def choice_values(values: pd.Series, choices: dict, numeric: bool) -> pd.Series:
    """A choice field as codes (``numeric``) or labels, from the raw or the label export; other values as written.

    A value that is a code is read as the code (raw export); otherwise a value that is a label, in any case, is read
    as that label (label export).

    Examples
    --------
    >>> import pandas as pd
    >>> nrs = {"0": "0 No pain", "7": "7"}
    >>> choice_values(pd.Series(["7", "0 no pain", 7.0, "x"]), nrs, numeric=True).tolist()
    ['7', '0', '7', 'x']
    >>> choice_values(pd.Series(["1", "Cupping"]), {"1": "Deep tissue", "5": "Cupping"}, numeric=False).tolist()
    ['Deep tissue', 'Cupping']
    """
    if not choices:
        return values
    by_label = {_text(lab).lower(): code for code, lab in choices.items()}

    def read(v):
        if v is None or v != v:
            return None
        t = _text(v)
        code = t if t in choices else by_label.get(t.lower())
        if code is None:
            return v
        return code if numeric else choices[code]
    codes, uniq = pd.factorize(values)  # each distinct value read once
    return pd.Series(np.array([read(u) for u in uniq] + [None], dtype=object)[codes], index=values.index, dtype=object)


def field_values(ex: RedcapExport, dic: RedcapDictionary, name: str, study_column: str) -> pd.Series:
    """A field's values as the study column wants them: codes for numbers (scores, items, durations, ages),
    labels for categories (treatment, sex, clinic, arm, therapist)."""
    return choice_values(ex.data[name].astype(object), dic.fields[name].choices, _NUMERIC.get(study_column, False))
