"""Load a study from files or DataFrames: read, check, link, exclude, build.

Loading runs in visible stages, each accounting for every input row:

1. **read** (:mod:`backpain_outcomes.reading`): every file of every table and
   every non-empty sheet of a workbook, with the exact line of each row;
   blank rows are counted, rows with the wrong number of fields are problems.
2. **check** (:mod:`backpain_outcomes.checking`, with
   :mod:`backpain_outcomes.validation`): every value against the data
   dictionary; exact duplicates (compared as parsed values) are set aside;
   an id on several different rows is one problem.
3. **link** (:mod:`backpain_outcomes.linking`): every session and score to a
   known patient and episode (an
   episode is assigned from the onset dates when no ``episode_id`` is given).
   Rows of a patient or an episode whose own row is excluded are excluded
   with it, as a consequence, not reported as new errors.
4. **exclude**: ``errors="raise"`` raises one
   :class:`~backpain_outcomes.exceptions.DataValidationError` listing every
   error; ``errors="exclude"`` moves the rows with errors to
   ``study.exclusions``. Blank rows and exact duplicates are excluded in both
   modes.
5. **build** (:mod:`backpain_outcomes.building`) the
   :class:`~backpain_outcomes.study.Study`.

The scores table is read and checked in the calling thread while a second
thread reads and checks the other tables (:mod:`backpain_outcomes.two_threads`);
the result is the one the stages give one after the other.

Rows read = rows used + rows excluded, for every table. Every problem (a
:mod:`problem record <backpain_outcomes.problems>`) names its file (``file`` or
``file[sheet]``), line and column. For DataFrames and Parquet files the line is
the one the row would have in a CSV export with a header (position + 2).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .building import build_study, same_day_scores
from .checking import check_tables
from .checks import check_bool, check_choice, check_int
from .exceptions import DataValidationError
from .inputs import input_labels, sheet_for, table_inputs
from .linking import leading_zero_note
from .problems import ERROR, OPTIONAL, PROBLEM_COLUMNS, SET_ASIDE, Problems
from .reading import (
    COLUMN_ALIASES,
    ITEM_COLUMN,
    TABLES,
    ReadError,
    normalise_column,
    read_part,
    strip_text,
    text_key,
)
from .study import Study
from .two_threads import alongside
from .validation import RawTable
from .vocabulary import normalise_instrument, normalise_modality

__all__ = ["load_study", "TABLES", "COLUMN_ALIASES", "same_day_scores"]


# ------------------------------------------------------------------------------------------------ read
def _read_all(given: dict, sheet, labels: dict) -> dict:
    """The parts of every input (or its ``ReadError``): the scores table's inputs read in this thread while a
    second thread reads the others (Arrow's readers and most of the work on their arrays run without holding
    the interpreter lock). The results are used in the order of the inputs, so that loading does not depend on
    which read ends first."""
    def read(job):
        name, obj = job
        try:
            return read_part(obj, name, sheet_for(sheet, name), labels[id(obj)])
        except ReadError as err:
            return err

    def read_jobs(jobs):  # (by table and input: one file given for two tables is read for each, with its sheet)
        return {(name, id(obj)): read((name, obj)) for name, obj in jobs}

    jobs = [(name, obj) for name, objs in given.items() for obj in objs]
    scores = [job for job in jobs if job[0] == "scores"]
    others = [job for job in jobs if job[0] != "scores"]
    if not others:
        return read_jobs(scores)
    found_others, found_scores = alongside(lambda: read_jobs(others), lambda: read_jobs(scores))
    return {**found_others, **found_scores}


def _read(name: str, objs: list, p: Problems, read: dict, notes: list, labels: dict) -> RawTable | None:
    """Put the parts of every input of one table together (each row keeps its file and line); an input that
    cannot be read is a problem of the whole file."""
    frames, sources, rows, n_read = [], [], [], 0
    for obj in objs:
        parts = read[name, id(obj)]
        if isinstance(parts, ReadError):
            err = parts
            p.whole_file(name, labels[id(obj)], err.reason, err.message, err.expected, err.value, err.line)
            continue
        for part in parts:
            index = p.source_index(part.source)
            notes.extend(f"{part.source}: {n}" for n in part.notes)
            columns = _columns(name, part, p)
            if columns is None:
                continue
            _rows_not_read(name, part, p)
            frames.append(columns)
            sources.append(np.broadcast_to(np.int64(index), len(columns[0])))  # (one value, no 8 MB array)
            rows.append(part.lines.copy() if part is obj else part.lines)  # (a caller's Part: its lines kept apart)
            n_read += part.n_rows
    if not frames:
        return None
    data = frames[0][0] if len(frames) == 1 else pd.concat([f for f, _ in frames], ignore_index=True)
    t = RawTable(name, data.reset_index(drop=True), sources[0] if len(sources) == 1 else np.concatenate(sources),
                 rows[0] if len(rows) == 1 else np.concatenate(rows), p.sources, n_read)
    if len(frames) == 1:  # the reader's codes of text columns (those of several files would need merging)
        t.keep_codes(frames[0][1])
    return t


def _columns(name: str, part, p: Problems) -> tuple[pd.DataFrame, dict] | None:
    """The part's columns under their canonical names, values stripped, and the reader's codes of text columns
    under those names; None when the part is refused."""
    df = part.data
    names = [normalise_column(c, name) for c in df.columns]
    keep = [i for i, n in enumerate(names) if n or df.iloc[:, i].notna().any()]  # drop unnamed empty columns
    codes = {names[i] or f"column_{i + 1}": part.codes[c] for i, c in enumerate(df.columns)
             if i in keep and c in part.codes}
    data = _named(name, part, df.iloc[:, keep], [names[i] or f"column_{i + 1}" for i in keep], p)
    if data is None:
        return None
    for col in data.columns:
        s = data[col]
        if pd.api.types.is_string_dtype(s) and s.dtype != object and not (
                col in codes and codes[col][0] == text_key(s)):  # (a reader's coded column is stripped already)
            data[col] = strip_text(s)
    return data, codes


def _named(name: str, part, df: pd.DataFrame, names: list, p: Problems) -> pd.DataFrame | None:
    """The columns under their canonical names; None (a problem recorded) when two columns have one name, the
    part has no rows or misses a required column."""
    seen: dict = {}
    for raw, n in zip(df.columns, names):
        seen.setdefault(n, []).append(str(raw))
    twice = {n: raws for n, raws in seen.items() if len(raws) > 1}
    if twice:
        n, raws = next(iter(twice.items()))
        p.whole_file(name, part.source, "ambiguous_column", f"columns {' and '.join(map(repr, raws))} are both read "
                     f"as {n}; rename or remove one", "each column once")
        return None
    df = df.set_axis(names, axis=1)
    if part.n_rows == len(part.blank):
        p.whole_file(name, part.source, "empty_file", "the table has no data rows", "at least one row under the header")
        return None
    required = list(TABLES[name][0])
    if name == "scores" and any(ITEM_COLUMN.match(c) for c in names):
        required.remove("score")
    missing = [c for c in required if c not in names]
    if missing:
        p.whole_file(name, part.source, "missing_column", f"missing required column(s) {', '.join(missing)}; "
                     f"columns found: {', '.join(names) if names else '(none)'}", ", ".join(TABLES[name][0]))
        return None
    return df


def _rows_not_read(name: str, part, p: Problems) -> None:
    """Blank rows (set aside) and rows with the wrong number of fields (errors) of one part."""
    p.add(name, part.source, part.blank, "", "blank_row", "blank row (no values)", "", kind=SET_ASIDE)
    if len(part.ragged):
        msg = np.array([f"row has {k} fields but the header has {part.header_fields}" for k in part.ragged_fields],
                       dtype=object)
        p.add(name, part.source, part.ragged, "", "ragged_row", msg, f"{part.header_fields} fields", value=None)


def _check_arguments(errors, no_sessions, dayfirst, modality_map, instrument_map, odi_max_missing, rmdq_rescale,
                     rmdq_max_missing, sheet):
    check_choice(errors, "errors", ("raise", "exclude"))
    check_choice(no_sessions, "no_sessions", ("unknown", "untreated"))
    if dayfirst is not None:
        check_bool(dayfirst, "dayfirst")
    normalise_modality(pd.Series([], dtype=object), modality_map)  # raises on a target outside the vocabulary
    normalise_instrument(pd.Series([], dtype=object), instrument_map)
    check_int(odi_max_missing, "odi_max_missing")
    check_bool(rmdq_rescale, "rmdq_rescale")
    check_int(rmdq_max_missing, "rmdq_max_missing")
    if isinstance(sheet, dict):
        unknown = set(sheet) - set(TABLES)
        if unknown:
            raise ValueError(f"sheet: {sorted(unknown)} are not tables; use {', '.join(TABLES)}")


def _today(today) -> pd.Timestamp:
    """The ``today`` argument as a day (default: today); anything that is not a date is refused by name."""
    if today is None:
        return pd.Timestamp.today().normalize()
    if not isinstance(today, str | dt.date | np.datetime64):  # a number is not a date (5 would be 1970)
        raise TypeError(f"today: expected a date such as '2024-03-25' or a datetime.date, got "
                        f"{type(today).__name__} {today!r}")
    try:
        day = pd.Timestamp(today)
    except (ValueError, TypeError, OverflowError):
        day = pd.NaT
    if day is pd.NaT:
        raise ValueError(f"today: {today!r} is not a date; give a date such as '2024-03-25' (ISO 8601) or a "
                         "datetime.date, or leave it out for today")
    return (day.tz_localize(None) if day.tzinfo is not None else day).normalize()


def load_study(path=None, *, patients=None, episodes=None, sessions=None, scores=None,
               errors: str = "raise", dayfirst: bool | None = None, today=None,
               modality_map: dict | None = None, instrument_map: dict | None = None,
               odi_max_missing: int = 1, rmdq_rescale: bool = False, rmdq_max_missing: int = 0,
               no_sessions: str = "unknown", sheet=None) -> Study:
    """Load and validate a study.

    Parameters
    ----------
    path : str or Path, optional
        A directory holding the ``patients``, ``episodes``, ``sessions`` and
        ``scores`` tables (``.csv``, ``.tsv``, ``.parquet`` or ``.xlsx``; a file
        belongs to the table it is named after, ``scores.csv`` or
        ``scores_2024.xlsx``, and several files of one table are read
        together), or a single scores file. A data file in the directory that
        is named after no table is an error, never ignored.
    patients, episodes, sessions, scores : path, DataFrame, Part or list of them, optional
        Tables given one by one (they replace files found in ``path``).
        Only ``scores`` is required. A :class:`~backpain_outcomes.reading.Part`
        holds rows already read, each with the line it came from (problems
        name that line): importers of other layouts, such as
        :func:`~backpain_outcomes.load_visits`, hand their rows over this way.
    errors : {"raise", "exclude"}
        ``"raise"`` (default) raises one :class:`DataValidationError` listing
        every problem; ``"exclude"`` loads the valid rows, moves the others to
        ``study.exclusions`` with their reason and warns with the count.
    dayfirst : bool, optional
        Order of day and month in ``dd/mm/yyyy``-style dates. Without it each
        date column is read in the order its own dates prove (a day above 12,
        ``14/07/2024``), which ``study.notes`` states; when none proves it, such
        dates load only when unambiguous.
    today : date-like, optional
        Dates after this day are errors (default: today).
    modality_map, instrument_map : dict, optional
        Extra spellings, e.g. ``{"Hot stones": "other"}``. Targets are names
        of the vocabulary in any accepted spelling (``"NRS"``, ``"Oswestry"``);
        another target is a ``ValueError`` listing the choices. Mapped values
        pass the same checks as any other (an NRS of 9999 is out of range).
    odi_max_missing : int
        Oswestry questionnaires with more unanswered sections are not scored.
    rmdq_rescale, rmdq_max_missing :
        Roland-Morris missing-item policy, see :func:`score_rmdq`.
    no_sessions : {"unknown", "untreated"}
        What an episode without treatment sessions means. ``"unknown"``
        (default): treatment was not recorded, so the episode is never counted
        as untreated. ``"untreated"``: declare that the sessions table is
        complete, so episodes without sessions were untreated. Episodes whose
        ``arm`` (episodes table) or a session's modality says "untreated",
        "none", "no treatment" or "natural course" are untreated either way.
    sheet : str, int or dict, optional
        The sheet to read from workbooks (a name or 0-based position), or a
        dict ``{table: sheet}``. By default every non-empty sheet is read and
        problems name ``file[sheet]``.

    Returns
    -------
    Study
        With ``notes`` (how files were read: encodings, delimiters, sheets),
        ``same_day_scores`` (score rows that share their episode, instrument
        and day with a different score; the analyses average them into one
        visit) and ``input_files`` (the files read).

    Raises
    ------
    DataValidationError
        Listing every problem as ``file:row:column: message``.

    Notes
    -----
    Missing-data policy: rows missing a required value are errors (or
    exclusions); optional columns may be blank. In the optional columns
    (patients ``age``, ``sex``, ``clinic_id``; episodes ``onset_date``;
    sessions ``episode_id``, ``therapist_id``, ``duration_min``; scores
    ``episode_id``) the usual marks of a missing value (``N/A``, ``NA``,
    ``-``, ``--``, ``.``, ``?``, ``missing``, ``none``, ``null``, ``unknown``,
    any case) are blanks, said in ``study.notes``; ``arm`` is not one of them
    ("none" there says untreated). An invalid value of an optional number
    column (an age of 150, a duration of ``45 min``) is listed with the errors
    by ``errors="raise"``; ``errors="exclude"`` sets that cell blank and keeps
    the row, so a bad demographic never costs a patient's outcomes: the
    values so cleared are in ``study.blanked_values`` and counted in
    ``study.flow()``. An invalid ``onset_date`` stays an error: the onset is
    the origin of the analyses, not a detail. Blank rows and exact
    duplicate rows (same values once parsed: ``6`` and ``6.0`` are equal) are
    always excluded with reasons ``blank_row`` and ``duplicate``. An id on
    several rows with different values is one problem; in ``"exclude"`` mode
    all its rows are excluded, and the rows of other tables that belong to it
    with reason ``patient_excluded`` or ``episode_excluded``. Rows read = rows
    used + rows excluded, per table. Dates are the calendar date written (a
    UTC offset does not move it); TRUE/FALSE cells are not numbers.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> study.episodes.shape[0] > 0
    True
    """
    _check_arguments(errors, no_sessions, dayfirst, modality_map, instrument_map, odi_max_missing, rmdq_rescale,
                     rmdq_max_missing, sheet)
    today = _today(today)
    p = Problems()
    given = table_inputs(path, {"patients": patients, "episodes": episodes, "sessions": sessions, "scores": scores}, p)
    if "scores" not in given:
        raise FileNotFoundError("no scores table: the scores table is the only one that is required "
                                f"(looked in {path!s})" if path is not None else
                                "no scores table given: pass scores=... or a directory")
    notes: list[str] = []
    labels = input_labels(given)
    read = _read_all(given, sheet, labels)
    raw = {name: _read(name, given[name], p, read, notes, labels) for name in TABLES if name in given}
    del read
    if p.fatal:
        raise DataValidationError(p.frame(), header="the input cannot be read")
    options = {"odi_max_missing": odi_max_missing, "rmdq_rescale": rmdq_rescale, "rmdq_max_missing": rmdq_max_missing}
    clean = check_tables(raw, p, dayfirst, today, modality_map, instrument_map, options, notes)
    id_cols = ("patient_id", "episode_id") if "episodes" in clean else ("patient_id",)
    notes.extend(n for n in (leading_zero_note(clean, c, raw) for c in id_cols) if n)
    if errors == "raise" and (p.any() or p.any(OPTIONAL)):
        problems = p.frame(kinds=(ERROR, OPTIONAL), internal=True)
        n_optional = int((problems["_kind"] == OPTIONAL).sum())
        raise DataValidationError(problems[PROBLEM_COLUMNS], header=None if not n_optional else (
            f"{len(problems)} problem(s) found in the input data ({n_optional} of them invalid values in optional "
            "columns, which errors='exclude' sets blank, keeping their rows)"))
    return build_study(raw, clean, p, notes, given, no_sessions)
