"""Load a study from files or DataFrames: read, check, link, exclude, build.

Loading runs in visible stages, each accounting for every input row:

1. **read** (:mod:`backpain_outcomes.reading`): every file of every table and
   every non-empty sheet of a workbook, with the exact line of each row;
   blank rows are counted, rows with the wrong number of fields are problems.
2. **check** (:mod:`backpain_outcomes.validation`): every value against the
   data dictionary; exact duplicates (compared as parsed values) are set
   aside; an id on several different rows is one problem.
3. **link**: every session and score to a known patient and episode (an
   episode is assigned from the onset dates when no ``episode_id`` is given).
   Rows of a patient or an episode whose own row is excluded are excluded
   with it, as a consequence, not reported as new errors.
4. **exclude**: ``errors="raise"`` raises one
   :class:`~backpain_outcomes.exceptions.DataValidationError` listing every
   error; ``errors="exclude"`` moves the rows with errors to
   ``study.exclusions``. Blank rows and exact duplicates are excluded in both
   modes.
5. **build** the :class:`~backpain_outcomes.study.Study`.

Rows read = rows used + rows excluded, for every table. Every problem (a
:mod:`problem record <backpain_outcomes.problems>`) names its file (``file`` or
``file[sheet]``), line and column. For DataFrames and Parquet files the line is
the one the row would have in a CSV export with a header (position + 2).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .checks import check_bool, check_choice, check_int
from .exceptions import DataValidationError, ExcludedRowsWarning
from .problems import CONSEQUENCE, ERROR, EXCLUSION_COLUMNS, SET_ASIDE, Problems
from .reading import COLUMN_ALIASES, ITEM_COLUMN, TABLES, ReadError, find_table_files, normalise_column, read_part
from .study import Study
from .validation import (
    RawTable,
    conflicting_ids,
    row_keys,
    set_aside_duplicates,
    validate_episodes,
    validate_patients,
    validate_scores,
    validate_sessions,
)
from .vocabulary import normalise_instrument, normalise_modality

__all__ = ["load_study", "TABLES", "COLUMN_ALIASES", "same_day_scores"]

_ALIASES = COLUMN_ALIASES  # kept for the documentation build, which reads it


# ------------------------------------------------------------------------------------------------ read
def _as_list(obj) -> list:
    return list(obj) if isinstance(obj, list | tuple) else [obj]


def _inputs(path, given: dict, p: Problems) -> dict[str, list]:
    """Inputs of each table: explicit arguments first, then the files of ``path``."""
    given = {k: _as_list(v) for k, v in given.items() if v is not None}
    if path is None:
        return given
    path = Path(path)
    if path.is_dir():
        found, strays = find_table_files(path)
        for name, files in found.items():
            given.setdefault(name, files)
        for f in strays:
            p.whole_file("", f.name, "unrecognised_file", "cannot tell which table this file holds: name it "
                         "patients, episodes, sessions or scores (scores.csv, scores_2024.xlsx, ...), or move it out "
                         "of the directory", "a file named after its table")
    elif path.is_file():
        given.setdefault("scores", [path])
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")
    return given


def _sheet_for(sheet, name: str):
    return sheet.get(name) if isinstance(sheet, dict) else sheet


def _read(name: str, objs: list, p: Problems, sheet, notes: list) -> RawTable | None:
    """Read every input of one table and put their rows together (each keeps its file and line)."""
    frames, sources, rows, n_read = [], [], [], 0
    for obj in objs:
        try:
            parts = read_part(obj, name, _sheet_for(sheet, name))
        except ReadError as err:
            label = f"<{name} DataFrame>" if isinstance(obj, pd.DataFrame) else Path(obj).name
            p.whole_file(name, label, err.reason, err.message, err.expected, err.value, err.line)
            continue
        for part in parts:
            index = p.source_index(part.source)
            notes.extend(f"{part.source}: {n}" for n in part.notes)
            data = _columns(name, part, p)
            if data is None:
                continue
            _rows_not_read(name, part, p)
            frames.append(data)
            sources.append(np.full(len(data), index, np.int64))
            rows.append(part.lines)
            n_read += part.n_rows
    if not frames:
        return None
    data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return RawTable(name, data.reset_index(drop=True), np.concatenate(sources), np.concatenate(rows), p.sources,
                    n_read)


def _columns(name: str, part, p: Problems) -> pd.DataFrame | None:
    """The part's columns under their canonical names, values stripped; None when the part is refused."""
    df = part.data
    names = [normalise_column(c, name) for c in df.columns]
    keep = [i for i, n in enumerate(names) if n or df.iloc[:, i].notna().any()]  # drop unnamed empty columns
    df = df.iloc[:, keep]
    names = [names[i] or f"column_{i + 1}" for i in keep]
    seen = {}
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
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_string_dtype(s) and s.dtype != object:
            st = s.str.strip()
            df[col] = st.where(st != "")
    return df


def _rows_not_read(name: str, part, p: Problems) -> None:
    """Blank rows (set aside) and rows with the wrong number of fields (errors) of one part."""
    p.add(name, part.source, part.blank, "", "blank_row", "blank row (no values)", "", kind=SET_ASIDE)
    if len(part.ragged):
        msg = np.array([f"row has {k} fields but the header has {part.header_fields}" for k in part.ragged_fields],
                       dtype=object)
        p.add(name, part.source, part.ragged, "", "ragged_row", msg, f"{part.header_fields} fields", value=None)


# ------------------------------------------------------------------------------------------------ link
def _member(values: pd.Series, ids) -> np.ndarray:
    """``values.isin(ids)`` for text ids (an Arrow hash lookup); missing values are not members."""
    text = pc.cast(pa.array(pd.Series(values, dtype="str")), pa.large_string())
    found = pc.is_in(text, value_set=pc.cast(pa.array(pd.Series(ids, dtype="str")), pa.large_string()))
    return found.to_numpy(zero_copy_only=False).astype(bool) & pd.notna(values).to_numpy() if len(values) else \
        np.zeros(0, bool)


def _valid_ids(clean: pd.DataFrame, col: str, bad: np.ndarray) -> pd.Index:
    ok = np.ones(len(clean), bool)
    ok[bad] = False
    return pd.Index(clean.loc[ok, col].dropna(), dtype="str")


def _parent(t: RawTable, frame: pd.DataFrame, col: str, known, valid, what: str, p: Problems) -> np.ndarray:
    """Rows whose ``col`` is unknown (errors) or whose parent row is excluded (consequences)."""
    given = frame[col].notna().to_numpy()
    is_known = _member(frame[col], known)
    t.flag(p, given & ~is_known, col, f"unknown_{what}", f"{col} is not in the {what}s table",
           f"an id listed in {what}s", values=frame[col])
    gone = given & is_known & ~_member(frame[col], valid)
    t.flag(p, gone, col, f"{what}_excluded", f"the {what}'s own row is excluded (see the {what}s table)",
           f"a {what} whose row is valid", values=frame[col], kind=CONSEQUENCE)
    return given & ~is_known | gone


def _covering(rows: pd.DataFrame, date_col: str, episodes: pd.DataFrame) -> pd.Series:
    """For each row, the episode of its patient with the latest onset on or before its date (NaN if none)."""
    ep = episodes[["episode_id", "patient_id", "onset_date"]].dropna(subset=["onset_date", "patient_id"])
    left = rows[["patient_id", date_col]].reset_index().sort_values(date_col)
    m = pd.merge_asof(left, ep.sort_values("onset_date"), left_on=date_col, right_on="onset_date", by="patient_id",
                      direction="backward")
    return pd.Series(m["episode_id"].to_numpy(), index=m["index"].to_numpy(), dtype="str").reindex(rows.index)


def _assign_episodes(t: RawTable, frame: pd.DataFrame, valid: pd.DataFrame, lost: pd.DataFrame, date_col: str,
                     p: Problems) -> None:
    """Give rows without ``episode_id`` the patient's episode with the latest onset on or before their date."""
    need = frame["episode_id"].isna() & frame[date_col].notna() & frame["patient_id"].notna()
    if not need.any():
        return
    found = _covering(frame.loc[need], date_col, valid.reset_index())
    frame.loc[found.index, "episode_id"] = found.to_numpy()
    unassigned = need & frame["episode_id"].isna()
    cause = np.zeros(len(frame), bool)
    if unassigned.any() and len(lost):
        cause[np.flatnonzero(unassigned)] = _covering(frame.loc[unassigned], date_col, lost).notna().to_numpy()
    unassigned = unassigned.to_numpy()
    t.flag(p, unassigned & ~cause, date_col, "no_episode",
           "no episode of this patient has an onset on or before this date (give episode_id)",
           "a date on or after the onset of one of the patient's episodes")
    t.flag(p, unassigned & cause, date_col, "episode_excluded", "the episode that would hold this row is excluded "
           "(see the episodes table)", "a valid episode", kind=CONSEQUENCE)


def _link(t: RawTable, frame: pd.DataFrame, date_col: str, patients, episodes, p: Problems) -> pd.DataFrame:
    """Check the patient and episode of each session or score row; assign episodes from onsets."""
    if patients is not None:
        _parent(t, frame, "patient_id", *patients, "patient", p)
    if episodes is None:
        frame["episode_id"] = frame["episode_id"].where(frame["episode_id"].notna(), frame["patient_id"])
        return frame
    known, valid, lost = episodes
    given = frame["episode_id"].notna().to_numpy()
    broken = _parent(t, frame, "episode_id", known, valid.index, "episode", p)
    owner = frame["episode_id"].map(valid["patient_id"])
    wrong = given & ~broken & (owner != frame["patient_id"]).fillna(False).to_numpy()
    t.flag(p, wrong, "episode_id", "unknown_episode", "episode belongs to another patient",
           "an episode of this patient", values=frame["episode_id"])
    _assign_episodes(t, frame, valid, lost, date_col, p)
    onset = frame["episode_id"].map(valid["onset_date"])
    before = (frame[date_col] < onset).fillna(False).to_numpy()
    t.flag(p, before & given, date_col, "date_before_onset", "date is before the episode's onset_date",
           "a date on or after the onset")
    return frame


def _link_all(raw: dict, clean: dict, p: Problems, set_aside: dict) -> None:
    def bad(name):
        return np.union1d(p.positions(name), set_aside.get(name, []))
    patients = episodes = None
    if "patients" in clean:
        ids = clean["patients"]["patient_id"]
        patients = (pd.Index(ids.dropna(), dtype="str"), _valid_ids(clean["patients"], "patient_id", bad("patients")))
    if "episodes" in clean:
        e = clean["episodes"]
        if patients is not None:
            _parent(raw["episodes"], e, "patient_id", *patients, "patient", p)
        b = bad("episodes")
        ok = np.ones(len(e), bool)
        ok[b] = False
        lost = e.iloc[p.positions("episodes")]
        episodes = (pd.Index(e["episode_id"].dropna(), dtype="str"), e.loc[ok].set_index("episode_id"), lost)
    for name, date_col in (("sessions", "session_date"), ("scores", "date")):
        if name in clean:
            clean[name] = _link(raw[name], clean[name], date_col, patients, episodes, p)


# ------------------------------------------------------------------------------------------------ build
def same_day_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Score rows that share their episode, instrument and calendar day with a row of another score.

    The analyses combine the measurements of one instrument, episode and day into one visit (by their
    mean); this table lists the rows so combined, with ``n_same_day`` (rows of that visit) and
    ``rows`` (where they all are).

    Examples
    --------
    >>> import pandas as pd
    >>> sc = pd.DataFrame({"episode_id": ["e1", "e1"], "patient_id": ["p1", "p1"], "instrument": ["nrs", "nrs"],
    ...                    "date": pd.to_datetime(["2024-01-02"] * 2), "score": [6.0, 7.0],
    ...                    "_source": ["scores.csv"] * 2, "_row": [2, 5]})
    >>> same_day_scores(sc)[["row", "score", "n_same_day", "rows"]].values.tolist()
    [[2, 6.0, 2, 'scores.csv:2, scores.csv:5'], [5, 7.0, 2, 'scores.csv:2, scores.csv:5']]
    """
    cols = ["table", "source", "row", "episode_id", "patient_id", "instrument", "date", "score", "n_same_day", "rows"]
    codes = row_keys([pd.factorize(scores[c])[0] for c in ("episode_id", "instrument", "date")])
    codes = np.unique(codes, return_inverse=True)[1] if len(codes) else codes
    size = np.bincount(codes)[codes] if len(codes) else np.zeros(0, int)
    rep = size > 1
    if not rep.any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    sc = scores[rep]
    where = pd.Series(sc["_source"].astype(str).to_numpy(object) + ":" + sc["_row"].astype(str).to_numpy(object))
    joined = where.groupby(codes[rep], sort=False).agg(", ".join)
    out = pd.DataFrame({"table": "scores", "source": sc["_source"].to_numpy(), "row": sc["_row"].to_numpy(),
                        **{c: sc[c].to_numpy() for c in ["episode_id", "patient_id", "instrument", "date", "score"]},
                        "n_same_day": size[rep], "rows": joined.loc[codes[rep]].to_numpy()})
    return out.sort_values(["source", "row"], kind="stable").reset_index(drop=True)[cols]


def _used(raw: dict, clean: dict, p: Problems) -> dict:
    used = {}
    for name, frame in clean.items():
        t = raw[name]
        ok = np.ones(len(frame), bool)
        ok[p.positions(name, kinds=(ERROR, CONSEQUENCE, SET_ASIDE))] = False
        used[name] = frame.loc[ok].assign(_source=t.source[ok], _row=t.rows[ok]).reset_index(drop=True)
    return used


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
    patients, episodes, sessions, scores : path, DataFrame or list of them, optional
        Tables given one by one (they replace files found in ``path``).
        Only ``scores`` is required.
    errors : {"raise", "exclude"}
        ``"raise"`` (default) raises one :class:`DataValidationError` listing
        every problem; ``"exclude"`` loads the valid rows, moves the others to
        ``study.exclusions`` with their reason and warns with the count.
    dayfirst : bool, optional
        Order of day and month in ``dd/mm/yyyy``-style dates. Without it such
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
    exclusions); optional columns may be blank. Blank rows and exact
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
    today = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    p = Problems()
    given = _inputs(path, {"patients": patients, "episodes": episodes, "sessions": sessions, "scores": scores}, p)
    if "scores" not in given:
        raise FileNotFoundError("no scores table: the scores table is the only one that is required "
                                f"(looked in {path!s})" if path is not None else
                                "no scores table given: pass scores=... or a directory")
    notes: list[str] = []
    raw = {name: _read(name, given[name], p, sheet, notes) for name in TABLES if name in given}
    if p.fatal:
        raise DataValidationError(p.frame(), header="the input cannot be read")
    options = {"odi_max_missing": odi_max_missing, "rmdq_rescale": rmdq_rescale, "rmdq_max_missing": rmdq_max_missing}
    clean = _check(raw, p, dayfirst, today, modality_map, instrument_map, options)
    if errors == "raise" and p.any():
        raise DataValidationError(p.frame())
    return _build(raw, clean, p, notes, given, no_sessions)


def _check(raw, p, dayfirst, today, modality_map, instrument_map, options) -> dict:
    """Check every table, set exact duplicates aside, report conflicting ids once, link the tables."""
    clean = {}
    if "patients" in raw:
        clean["patients"] = validate_patients(raw["patients"], p)
    if "episodes" in raw:
        clean["episodes"] = validate_episodes(raw["episodes"], p, dayfirst, today)
    if "sessions" in raw:
        clean["sessions"] = validate_sessions(raw["sessions"], p, dayfirst, today, modality_map)
    clean["scores"] = validate_scores(raw["scores"], p, dayfirst, today, instrument_map, options)
    set_aside = {name: set_aside_duplicates(raw[name], frame, p) for name, frame in clean.items()}
    for name, col in (("patients", "patient_id"), ("episodes", "episode_id")):
        if name in clean:
            conflicting_ids(raw[name], clean[name][col], col, p, set_aside[name])
    _link_all(raw, clean, p, set_aside)
    return clean


def _build(raw, clean, p, notes, given, no_sessions) -> Study:
    exclusions = p.exclusions()[EXCLUSION_COLUMNS]
    used = _used(raw, clean, p)
    if len(used["scores"]) == 0:
        raise DataValidationError(exclusions.assign(expected=""),
                                  header="no valid score rows remain after excluding the invalid ones")
    n_bad = int((~exclusions["reason"].isin(["duplicate", "blank_row"])).sum())
    if n_bad:
        warnings.warn(f"{n_bad} invalid row(s) were excluded (see study.exclusions; "
                      f"reasons: {exclusions['reason'].value_counts().to_dict()})", ExcludedRowsWarning, stacklevel=3)
    read = {name: raw[name].n_read for name in raw}
    sources = {name: ", ".join(dict.fromkeys(raw[name].source)) for name in raw}
    study = Study(patients=used.get("patients"), episodes=used.get("episodes"), sessions=used.get("sessions"),
                  scores=used["scores"], exclusions=exclusions, rows_read=read, sources=sources,
                  no_sessions=no_sessions)
    study.notes = notes
    study.same_day_scores = same_day_scores(used["scores"])
    study.input_files = [Path(f).resolve() for objs in given.values() for f in objs
                         if not isinstance(f, pd.DataFrame)]
    return study
