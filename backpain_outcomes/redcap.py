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
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_bool, check_choice
from .exceptions import DataValidationError, ExcludedRowsWarning, warn
from .loading import load_study
from .problems import EXCLUSION_COLUMNS, Problems, relabel_problems
from .reading import Part
from .redcap_codes import blank_codes, incomplete_note, prepare_date_fields
from .redcap_export import ExportRows, RedcapExport, classify_rows, export_headers, read_export
from .redcap_mapping import RedcapDictionary, RedcapMapping, read_dictionary, read_mapping
from .redcap_tables import StudyTables, study_tables
from .study import NO_SESSIONS, Study
from .vocabulary import UNTREATED

__all__ = ["load_redcap"]


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


def _load(t: StudyTables, errors: str, options: dict) -> Study:
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


def _check_arguments(records, dictionary, errors, dayfirst, no_sessions) -> None:
    """The types and choices of the arguments of :func:`load_redcap`."""
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


def _require_scores(tables: StudyTables, ex: RedcapExport, m: RedcapMapping) -> None:
    """An export from which no score is loaded is an error: its problems, or the whole file."""
    if not tables.scores and len(tables.pre):
        raise DataValidationError(relabel_problems(tables.pre, tables.names, dedupe=True, derived_only=False))
    if not tables.scores:
        p = Problems()
        p.whole_file("scores", ex.part.source, "no_scores", "no row holds a score of "
                     f"{', '.join(repr(s.form) for s in m.scores)}", "at least one score")
        raise DataValidationError(p.frame(), header="the REDCap export holds no score")


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
    _check_arguments(records, dictionary, errors, dayfirst, no_sessions)
    dic = dictionary if isinstance(dictionary, RedcapDictionary) else read_dictionary(dictionary)
    m = read_mapping(mapping, dic)
    ex, coded, code_notes = blank_codes(export_headers(read_export(records), dic, m), dic, m)
    ex, date_notes = prepare_date_fields(ex, m)
    rows = classify_rows(ex, dic, m)
    _check_dates(dic, m, rows)
    tables = study_tables(ex, dic, m, rows, coded)
    _require_scores(tables, ex, m)
    options = {"dayfirst": dayfirst, "today": today, "no_sessions": no_sessions, "odi_max_missing": odi_max_missing,
               "rmdq_rescale": rmdq_rescale, "rmdq_max_missing": rmdq_max_missing,
               "modality_map": {**m.treatments, **{lab: UNTREATED for lab in m.untreated}} or None}
    notes = _account(ex, m, rows, tables.used) + rows.notes + code_notes + date_notes + incomplete_note(ex, dic, tables.by_form)
    study = _load(tables, errors, options)
    study.notes = notes + study.notes
    if isinstance(records, str | Path):
        study.input_files.append(Path(records).resolve())
    return study
