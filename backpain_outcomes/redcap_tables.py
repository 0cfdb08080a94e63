"""The study's tables built from a REDCap export's classified rows (:func:`~backpain_outcomes.redcap.load_redcap`):
episodes and patients from the record-level fields (one row per record, at the line of its first row holding a
value; disagreeing rows kept for the loader to report), sessions and one scores part per score instrument (item-
scored rows with no item answered are problems of their own, rows with a missing-data code excluded), and how
each column is named in the export."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .problems import PROBLEM_COLUMNS
from .reading import Part
from .redcap_codes import Coded, coded_rows, items_coded
from .redcap_export import ExportRows, RedcapExport, field_values, form_rows
from .redcap_mapping import RedcapDictionary, RedcapMapping

__all__ = ["StudyTables", "study_tables"]


def _record_table(frame: pd.DataFrame, key: np.ndarray, lines: np.ndarray, base: np.ndarray) -> pd.DataFrame:
    """One row per key (episode or patient) holding its record-level columns, at the line of its first row that
    holds one of them (else its first row). A key whose rows disagree keeps each of those rows, so that the loader
    reports the id as on several rows with different values, naming their lines."""
    cols = list(frame.columns)
    frame = frame.assign(_key=key, _line=lines).loc[base & pd.notna(key)]
    filled = frame[cols].notna().any(axis=1) if cols else pd.Series(False, index=frame.index)
    holders = frame.loc[filled]
    if cols and len(holders):
        conflict = holders.groupby("_key", sort=False)[cols].nunique().gt(1).any(axis=1)
        bad = holders["_key"].isin(conflict.index[conflict.to_numpy()]).to_numpy()
    else:
        bad = np.zeros(len(holders), bool)
    merged = holders.loc[~bad].groupby("_key", sort=False).agg({**{c: "first" for c in cols}, "_line": "min"})
    rest = frame.loc[~frame["_key"].isin(holders["_key"])].groupby("_key", sort=False)[["_line"]].min()
    out = pd.concat([merged.reset_index(), rest.reset_index(), holders.loc[bad]], ignore_index=True)
    out = out.astype({c: object for c in cols}).sort_values("_line", kind="stable").reset_index(drop=True)
    return out.where(out.notna(), None).astype({"_line": np.int64})


@dataclass
class StudyTables:
    """The study's tables as parts, and how their problems are named in the export."""

    episodes: Part
    patients: Part | None
    sessions: Part | None
    scores: list[Part]
    names: dict                 # (table, source, column) -> header of the export
    pre: pd.DataFrame           # problems found before loading (rows not handed to the loader)
    used: dict                  # what -> rows (bool) of the export, for the notes
    coded: pd.DataFrame         # rows excluded before loading: their date, treatment or score is a missing code
    by_form: dict               # form -> rows handed to the loader as sessions or scores


def _episodes(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, names: dict):
    """Episodes (and each row's patient id) from the record-level fields of the used rows."""
    src, fields = ex.part.source, {}
    if m.patient != dic.record_id:
        fields["patient_id"] = m.patient
    fields.update({c: f for c, f in (("onset_date", m.onset), ("arm", m.arm)) if f is not None})
    frame = pd.DataFrame({c: field_values(ex, dic, f, c) for c, f in fields.items()}, index=ex.data.index)
    table = _record_table(frame, rows.episode, ex.part.lines, rows.event_ok)
    record = pd.Series(ex.data[dic.record_id].astype(object).to_numpy(), index=rows.episode).groupby(level=0).first()
    first = table.drop_duplicates("_key").set_index("_key")
    patient = first["patient_id"] if "patient_id" in first else record.reindex(first.index)
    arm_of = pd.Series(rows.arm, index=rows.episode).groupby(level=0).first()
    out = pd.DataFrame({"episode_id": table["_key"].to_numpy(object),
                        "patient_id": table["patient_id"] if "patient_id" in table
                        else record.reindex(table["_key"]).to_numpy(object),
                        "onset_date": table["onset_date"] if "onset_date" in table else None,
                        "arm": table["arm"] if "arm" in table else
                        arm_of.reindex(table["_key"]).map(m.arms).to_numpy(object) if m.arms else None})
    names.update({("episodes", src, c): ex.header[f] for c, f in {"episode_id": dic.record_id, **fields}.items()})
    if m.arms and "redcap_event_name" in ex.header:
        names[("episodes", src, "arm")] = ex.header["redcap_event_name"]
    notes = []
    unnamed = sorted(set(arm_of.to_numpy()) - set(m.arms)) if m.arms else []
    if unnamed:
        notes.append(f"arm(s) {', '.join(map(str, unnamed))} not in mapping['arms']: their episodes have no arm")
    holders = frame.notna().any(axis=1).to_numpy() & rows.event_ok if fields else np.zeros(len(frame), bool)
    return Part(src, out, table["_line"].to_numpy(np.int64)), patient, holders, notes


def _patients(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, patient: np.ndarray,
              names: dict):
    """One patients row per patient id with the age, sex and clinic fields; and the rows holding them."""
    frame = pd.DataFrame({c: field_values(ex, dic, f, c) for c, f in m.patients.items()}, index=ex.data.index)
    table = _record_table(frame, patient, ex.part.lines, rows.event_ok)
    out = pd.DataFrame({"patient_id": table["_key"].to_numpy(object), **{c: table[c] for c in m.patients}})
    src = ex.part.source
    names.update({("patients", src, c): ex.header[f] for c, f in {"patient_id": m.patient, **m.patients}.items()})
    return Part(src, out, table["_line"].to_numpy(np.int64)), frame.notna().any(axis=1).to_numpy() & rows.event_ok


_SESSION_COLUMNS = {"date": "session_date", "treatment": "modality", "therapist": "therapist_id",
                    "duration": "duration_min"}


def _presence(dic: RedcapDictionary, form: str, date: str, fields: list[str], shared: bool) -> list[str]:
    """The fields whose value makes a row of ``form`` a session or a score: its own fields, the date only when it is
    on the form and the form is not shared by the sessions and a score."""
    return [f for f in fields if f != date or (dic.fields[f].form == form and not shared)]


def _sessions(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, ids: dict, names: dict,
              coded: Coded):
    """The sessions part: rows of the sessions instrument (see :func:`form_rows`), or None when there is none; the
    rows read, and those excluded before loading (date or treatment a missing-data code)."""
    fields = {c: m.sessions[r] for r, c in _SESSION_COLUMNS.items() if r in m.sessions}
    form = m.sessions["instrument"]
    shared = any(s.form == form for s in m.scores)
    present = _presence(dic, form, m.sessions["date"], list(fields.values()), shared)
    found = form_rows(ex, rows, form, present, shared) | (_coded_any(ex, coded, present) & _form_ok(rows, form))
    src = ex.part.source
    take, out = coded_rows(ex, coded, found, "sessions", src, [m.sessions["date"], m.sessions["treatment"]])
    names.update({("sessions", src, c): ex.header[f] for c, f in {**_id_fields(dic, m), **fields}.items()})
    if not take.any():
        return None, found, out
    data = pd.DataFrame({**ids, **{c: field_values(ex, dic, f, c) for c, f in fields.items()}}).loc[take]
    return Part(src, data.reset_index(drop=True), ex.part.lines[take]), found, out


def _coded_any(ex: RedcapExport, coded: Coded, fields: list[str]) -> np.ndarray:
    """Rows where one of ``fields`` held a missing-data code (now blank): rows of the form all the same."""
    n = len(ex.data)
    return np.any([coded.mask(f, n) for f in fields], axis=0) if fields else np.zeros(n, bool)


def _form_ok(rows: ExportRows, form: str) -> np.ndarray:
    """Rows of a read event that are instances of ``form`` or event rows (which may hold it)."""
    return rows.event_ok & ((rows.form == form) | (rows.form == ""))


def _id_fields(dic: RedcapDictionary, m: RedcapMapping) -> dict:
    return {"patient_id": m.patient, "episode_id": dic.record_id}


def _scores(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, ids: dict, names: dict,
            coded: Coded):
    """One part per score instrument; item-scored rows without any answered item are problems of their own (the
    loader would read them as blank scores); rows whose date or score is a missing-data code are excluded."""
    parts, used, pre, out = [], {}, [], []
    by_form: dict = {}
    several = len(m.scores) > 1
    for s in m.scores:
        src = f"{ex.part.source} ({s.form})" if several else ex.part.source
        shared = s.form == m.sessions.get("instrument")
        fields = _presence(dic, s.form, s.date, [s.date, *([s.value] if s.value else s.items)], shared)
        take = form_rows(ex, rows, s.form, fields, shared) | (_coded_any(ex, coded, fields) &
                                                               _form_ok(rows, s.form))
        used[f"{s.instrument} score(s) from {s.form!r}"] = take
        take, gone = coded_rows(ex, coded, take, "scores", src, [s.date, *([s.value] if s.value else [])])
        if not s.value:
            all_coded = items_coded(ex, coded, take, s.items)
            if all_coded.any():  # no item answered, some coded: a recorded "no value", not a blank form
                _, more = coded_rows(ex, coded, all_coded, "scores", src, list(s.items))
                more["column"] = f"{ex.header[s.items[0]]}..{ex.header[s.items[-1]]}"
                gone = pd.concat([gone, more], ignore_index=True) if len(gone) else more
                take = take & ~all_coded
        out.append(gone)
        cols = {"date": ex.data[s.date].astype(object), "instrument": s.instrument}
        if s.value:
            cols["score"] = field_values(ex, dic, s.value, "score")
            names[("scores", src, "score")] = ex.header[s.value]
        else:
            cols.update({f"{s.instrument}_{i + 1}": field_values(ex, dic, f, "score") for i, f in enumerate(s.items)})
            span = f"{ex.header[s.items[0]]}..{ex.header[s.items[-1]]}"
            names.update({("scores", src, "score"): span, ("scores", src, f"{s.instrument} items"): span})
            empty = take & ex.data[list(s.items)].isna().all(axis=1).to_numpy()
            if empty.any():
                pre.append(pd.DataFrame({
                    "table": "scores", "source": src, "row": ex.part.lines[empty], "column": "score", "value": None,
                    "reason": "missing_value", "message": f"no item of {s.form!r} is answered",
                    "expected": f"the {len(s.items)} {s.instrument} items answered"}))
                take = take & ~empty
        names.update({("scores", src, c): ex.header[f] for c, f in {**_id_fields(dic, m), "date": s.date}.items()})
        names[("base", src)] = ex.part.source
        by_form[s.form] = by_form.get(s.form, np.zeros(len(take), bool)) | take
        if take.any():
            data = pd.DataFrame({**ids, **cols}, index=ex.data.index).loc[take]
            parts.append(Part(src, data.reset_index(drop=True), ex.part.lines[take]))
    frame = pd.concat(pre, ignore_index=True) if pre else pd.DataFrame({c: [] for c in PROBLEM_COLUMNS})
    return parts, used, frame.astype({"row": "Int64"}), pd.concat(out, ignore_index=True), by_form


def study_tables(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, coded: Coded) -> StudyTables:
    """The study's tables from the classified rows of the export, with the rows each came from, the problems
    found before loading and the export's header of every column (see :class:`StudyTables`)."""
    names: dict = {}
    episodes, patient, holders, notes = _episodes(ex, dic, m, rows, names)
    rows.notes += notes
    pid = pd.Series(rows.episode, dtype=object).map(patient).to_numpy(object)
    patients, p_holders = _patients(ex, dic, m, rows, pid, names) if m.patients else (None, holders & False)
    ids = {"patient_id": pd.Series(pid, index=ex.data.index, dtype=object),
           "episode_id": pd.Series(rows.episode, index=ex.data.index, dtype=object)}
    used: dict = {}
    sessions, coded_sessions = None, []
    if m.sessions:
        form = m.sessions["instrument"]
        sessions, used[f"session(s) from {form!r}"], gone = _sessions(ex, dic, m, rows, ids, names, coded)
        coded_sessions.append(gone)
        if sessions is None:
            rows.notes.append(f"{ex.part.source}: no row of {form!r} holds a session (no session is loaded)")
    scores, score_used, pre, gone, by_form = _scores(ex, dic, m, rows, ids, names, coded)
    if sessions is not None:
        form = m.sessions["instrument"]
        lines = pd.Series(ex.part.lines).isin(sessions.lines).to_numpy()
        by_form[form] = by_form.get(form, np.zeros(len(lines), bool)) | lines
    used.update(score_used)
    used["row(s) holding patient or episode fields"] = holders | p_holders
    if scores:  # blank and ragged lines are counted once, with the first scores part
        p = ex.part
        scores[0] = Part(scores[0].source, scores[0].data, scores[0].lines, p.blank, p.ragged, p.ragged_fields,
                         p.header_fields, list(p.notes))
    coded_frame = pd.concat([*coded_sessions, gone], ignore_index=True).astype({"row": "Int64"})
    return StudyTables(episodes, patients, sessions, scores, names, pre, used, coded_frame, by_form)
