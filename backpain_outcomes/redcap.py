"""REDCap exports: a longitudinal project's flat export, its data dictionary and a mapping, as a study.

REDCap exports a longitudinal project as one flat table: one row per record
and event (``record_id``, ``redcap_event_name``) for the instruments that do
not repeat, and one row per instance of each repeating instrument
(``redcap_repeat_instrument``, ``redcap_repeat_instance``), holding that
instrument's fields only. :func:`load_redcap` reads that table with the
project's data dictionary and a small declarative mapping
(:mod:`backpain_outcomes.redcap_mapping`) and hands the study's tables to
:func:`~backpain_outcomes.load_study`, so that every check of the loader
applies and every problem names the line and the column of the export:

- each row of the sessions instrument (each repeat instance, or each event
  row where the instrument holds a value) is a treatment session;
- each row of a score instrument is a score of its study instrument (ODI and
  RMDQ may be scored from their item fields by the loader's
  :func:`~backpain_outcomes.instruments.score_odi` and
  :func:`~backpain_outcomes.instruments.score_rmdq`); an instrument that is
  both (a visit form holding the treatment and the pain score) gives a
  session for each row with a treatment and a score for each row with a
  score;
- a record is one patient's episode (``episode_id`` = the record id; a record
  enrolled in several arms has one episode per arm), with the onset date and
  the arm of the mapping; the patient is the record, or the ``patient`` field
  when one patient has several records;
- rows of events and repeating instruments the mapping does not name, and
  rows holding no treatment, score, patient or episode value, are not used:
  ``study.notes`` counts them by reason, with their lines. Nothing is dropped
  silently.

Choice fields are read from the raw export (codes, ``1``) or the label
export (``Deep tissue``) alike: treatments, sex, clinic, arm and therapist
become labels, scores and items codes. Headers may be field names or, as in
the label export of the REDCap user interface, field labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_bool, check_choice
from .exceptions import DataValidationError, ExcludedRowsWarning, warn
from .loading import load_study
from .problems import EXCLUSION_COLUMNS, PROBLEM_COLUMNS, Problems, relabel_problems
from .reading import Part
from .redcap_codes import Coded, blank_codes, coded_rows, incomplete_note, items_coded, prepare_date_fields
from .redcap_export import ExportRows, RedcapExport, classify_rows, export_headers, field_values, form_rows, read_export
from .redcap_mapping import RedcapDictionary, RedcapMapping, read_dictionary, read_mapping
from .study import NO_SESSIONS, Study
from .vocabulary import UNTREATED

__all__ = ["load_redcap"]

# ------------------------------------------------------------------------------------------------ tables
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
class _Tables:
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


def _tables(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows, coded: Coded) -> _Tables:
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
    return _Tables(episodes, patients, sessions, scores, names, pre, used, coded_frame, by_form)


# ------------------------------------------------------------------------------------------------ notes
def _lines(lines: np.ndarray, shown: int = 8) -> str:
    head = ", ".join(str(int(v)) for v in lines[:shown])
    return f"line{'s' if len(lines) > 1 else ''} {head}{', ...' if len(lines) > shown else ''}"


def _account(ex: RedcapExport, m: RedcapMapping, rows: ExportRows, used: dict) -> list[str]:
    """How every row of the export was used, and why the others were not."""
    part, lines = ex.part, ex.part.lines
    what = [f"{int(mask.sum())} {name}" for name, mask in used.items() if mask.any()]
    notes = [f"{part.source}: {part.n_rows} row(s) read: {'; '.join(what)}"
             + (f"; {len(part.blank)} blank row(s)" if len(part.blank) else "")]
    events = ex.data["redcap_event_name"] if "redcap_event_name" in ex.data else None
    if events is not None:
        for ev, idx in pd.Series(np.flatnonzero(~rows.event_ok)).groupby(events.to_numpy(object)[~rows.event_ok]):
            notes.append(f"{part.source}: not used: {len(idx)} row(s) of the event {ev!r}, not in mapping['events'] "
                         f"({_lines(lines[idx.to_numpy()])})")
    mapped = [m.sessions.get("instrument"), *(s.form for s in m.scores)]
    other = rows.event_ok & (rows.form != "") & ~np.isin(rows.form.astype(str), [f for f in mapped if f])
    for value, idx in pd.Series(np.flatnonzero(other)).groupby(rows.repeat.to_numpy(object)[other]):
        known = rows.form[idx.iat[0]] is not None
        notes.append(f"{part.source}: not used: {len(idx)} row(s) of the repeating instrument {value!r}, "
                     + ("not in the mapping" if known else "which is not an instrument of the data dictionary")
                     + f" ({_lines(lines[idx.to_numpy()])})")
    empty = rows.event_ok & ~other & ~np.any(list(used.values()), axis=0)
    if empty.any():
        notes.append(f"{part.source}: not used: {int(empty.sum())} row(s) holding no treatment, score, patient or "
                     f"episode value ({_lines(lines[empty])})")
    if ex.labels:
        notes.append(f"{part.source}: headers read as field labels (a label export)")
    return notes


# ------------------------------------------------------------------------------------------------ problems
def _in_file_order(problems: pd.DataFrame) -> pd.DataFrame:
    """Problems by file and line (a whole-file problem first)."""
    order = problems.assign(_s=problems["source"].astype(str), _r=problems["row"].astype("Float64").fillna(-1.0))
    return problems.loc[order.sort_values(["_s", "_r"], kind="stable").index].reset_index(drop=True)


def _load(t: _Tables, errors: str, options: dict) -> Study:
    """Hand the tables to the loader; problems found before loading join the loader's."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ExcludedRowsWarning)
            study = load_study(sessions=t.sessions, scores=t.scores, patients=t.patients, episodes=t.episodes,
                               errors=errors, **options)
    except DataValidationError as err:
        both = pd.concat([err.problems, t.pre], ignore_index=True) if len(t.pre) else err.problems
        raise DataValidationError(_in_file_order(relabel_problems(both, t.names, dedupe=True, derived_only=False)),
                                  header=err.header) from None
    if len(t.pre) and errors == "raise":
        raise DataValidationError(_in_file_order(relabel_problems(t.pre, t.names, dedupe=True, derived_only=False)))
    for w in caught:  # re-stated for the caller's line
        warn(w.message, w.category)
    study.exclusions = relabel_problems(study.exclusions, t.names)
    if len(t.coded):
        study.exclusions = pd.concat([study.exclusions, t.coded[EXCLUSION_COLUMNS]],
                                     ignore_index=True).astype({"row": "Int64"})
        for table, n in t.coded["table"].value_counts().items():
            study.rows_read[table] = study.rows_read.get(table, 0) + int(n)
        warn(f"{len(t.coded)} row(s) of the REDCap export excluded before loading (date, treatment or "
                      "score is a missing-data code); see study.exclusions", ExcludedRowsWarning)
    if len(t.pre):
        study.exclusions = pd.concat([study.exclusions, relabel_problems(t.pre, t.names)[EXCLUSION_COLUMNS]],
                                     ignore_index=True).astype({"row": "Int64"})
        study.rows_read["scores"] = study.rows_read.get("scores", 0) + len(t.pre)
        warn(f"{len(t.pre)} score row(s) of the REDCap export excluded before loading (no item answered); "
                      "see study.exclusions", ExcludedRowsWarning)
    return study


def _check_dates(dic: RedcapDictionary, m: RedcapMapping, rows: ExportRows) -> None:
    """A repeating instrument's rows hold only its own fields: its date must be one of them."""
    repeating = {f for f in rows.form if f}
    entries = [("['sessions']['date']", m.sessions["instrument"], m.sessions["date"])] if m.sessions else []
    entries += [(f"['scores'][{i}]['date']", s.form, s.date) for i, s in enumerate(m.scores)]
    for where, form, date in entries:
        if form in repeating and dic.fields[date].form != form:
            raise ValueError(f"mapping{where}: field {date!r} is on the instrument {dic.fields[date].form!r}, but "
                             f"{form!r} repeats and its rows hold only its own fields; map a date field of {form!r}")


# ------------------------------------------------------------------------------------------------ load
def load_redcap(records, dictionary, mapping, *, errors: str = "raise", dayfirst: bool | None = None, today=None,
                no_sessions: str = "unknown", odi_max_missing: int = 1, rmdq_rescale: bool = False,
                rmdq_max_missing: int = 0) -> Study:
    """Load a REDCap project's flat export as a study.

    Parameters
    ----------
    records : str, Path or DataFrame
        The records: the flat CSV export (raw or label values; field names or
        field labels as headers), one row per record and event and one per
        repeat instance.
    dictionary : str, Path, DataFrame or list of dict
        The project's data dictionary (the CSV file of *Project Setup >
        Data Dictionary*, or the API's metadata).
    mapping : dict, str or Path
        Which instruments and fields are sessions, scores and patient-level
        facts (see :mod:`backpain_outcomes.redcap_mapping`), or a ``.json`` or
        ``.toml`` file holding it.
    errors, dayfirst, today, no_sessions, odi_max_missing, rmdq_rescale, rmdq_max_missing :
        As for :func:`~backpain_outcomes.load_study`.

    Returns
    -------
    Study
        Sessions and scores keep the line of the export they came from
        (``_row``; line 2 is the first record row); ``study.notes`` starts
        with how every row of the export was used or why it was not.

    Raises
    ------
    DataValidationError
        Every problem once, as ``file:line:column`` of the export with its own
        headers (``redcap_export.csv:14:sess_date: not a valid date``).
    ValueError
        The mapping names a field or instrument the dictionary does not have
        (with the closest names), or the export lacks a mapped field.

    Examples
    --------
    >>> import pandas as pd
    >>> from backpain_outcomes.redcap import load_redcap
    >>> dictionary = pd.DataFrame({"Variable / Field Name": ["record_id", "nrs_date", "nrs_score"],
    ...                            "Form Name": ["enrolment", "pain_nrs", "pain_nrs"],
    ...                            "Field Type": ["text", "text", "text"]})
    >>> records = pd.DataFrame({"record_id": ["1", "1"], "redcap_repeat_instrument": ["pain_nrs", "pain_nrs"],
    ...                         "redcap_repeat_instance": ["1", "2"], "nrs_date": ["2024-03-01", "2024-03-15"],
    ...                         "nrs_score": ["7", "4"]})
    >>> mapping = {"scores": [{"instrument": "pain_nrs", "date": "nrs_date", "value": "nrs_score", "as": "nrs"}]}
    >>> study = load_redcap(records, dictionary, mapping, today="2025-01-01")
    >>> study.scores[["episode_id", "score", "_row"]].values.tolist()
    [['1', 7.0, 2], ['1', 4.0, 3]]
    """
    check_choice(errors, "errors", ("raise", "exclude"))
    check_choice(no_sessions, "no_sessions", NO_SESSIONS)
    if dayfirst is not None:
        check_bool(dayfirst, "dayfirst")
    if not isinstance(records, str | Path | pd.DataFrame | Part):
        raise TypeError(f"records must be the path of the exported CSV file or a DataFrame, got "
                        f"{type(records).__name__}")
    if not isinstance(dictionary, str | Path | pd.DataFrame | list | RedcapDictionary):
        raise TypeError(f"dictionary must be the path of the data dictionary CSV file, a DataFrame or the API's "
                        f"metadata (a list of dicts), got {type(dictionary).__name__}")
    dic = dictionary if isinstance(dictionary, RedcapDictionary) else read_dictionary(dictionary)
    m = read_mapping(mapping, dic)
    ex, coded, code_notes = blank_codes(export_headers(read_export(records), dic, m), dic, m)
    ex, date_notes = prepare_date_fields(ex, m)
    rows = classify_rows(ex, dic, m)
    _check_dates(dic, m, rows)
    tables = _tables(ex, dic, m, rows, coded)
    if not tables.scores and len(tables.pre):
        raise DataValidationError(relabel_problems(tables.pre, tables.names, dedupe=True, derived_only=False))
    if not tables.scores:
        p = Problems()
        p.whole_file("scores", ex.part.source, "no_scores", "no row holds a score of "
                     f"{', '.join(repr(s.form) for s in m.scores)}", "at least one score")
        raise DataValidationError(p.frame(), header="the REDCap export holds no score")
    options = {"dayfirst": dayfirst, "today": today, "no_sessions": no_sessions, "odi_max_missing": odi_max_missing,
               "rmdq_rescale": rmdq_rescale, "rmdq_max_missing": rmdq_max_missing,
               "modality_map": {**m.treatments, **{lab: UNTREATED for lab in m.untreated}} or None}
    notes = _account(ex, m, rows, tables.used) + rows.notes + code_notes + date_notes + incomplete_note(ex, dic, tables.by_form)
    study = _load(tables, errors, options)
    study.notes = notes + study.notes
    if isinstance(records, str | Path):
        study.input_files.append(Path(records).resolve())
    return study
