"""Long visit exports: one table of visits split into treatment sessions and scores.

A clinic's record system usually exports one row per visit: the patient, the
visit date, the treatment given and one or more scores (``PatientID``,
``VisitDate``, ``Treatment``, ``PainScore(0-10)``). :func:`load_visits` reads
such a table once, splits every row into a session (when it has a treatment)
and one score per score column (when it has a value), and hands them to
:func:`~backpain_outcomes.load_study` with the line each row came from, so
that every check, link and exclusion of the loader applies and every problem
names the line and the column of the original file.

Every row is accounted for: a row with a treatment is a session, a row with a
score is a score of that column's instrument, a row with neither is a
``missing_value`` problem of the first score column, and blank rows are set
aside as ``blank_row``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_bool, check_choice, check_positive
from .dates import OK, date_order, order_note, parse_dates
from .exceptions import DataValidationError, ExcludedRowsWarning, warn
from .loading import load_study
from .problems import Problems, relabel_problems
from .reading import Part, ReadError, read_part
from .study import NO_SESSIONS, Study
from .visits_layout import VISIT_ROLES, Layout, check_column, instrument_of_column, score_columns, visit_layout
from .visits_prepare import clean_ids, clean_treatments, episode_note, episodes_by_gap, prepare_dates
from .vocabulary import UNTREATED, normalise_modality

__all__ = ["load_visits", "instrument_of_column", "VISIT_ROLES"]

def _labels(untreated_labels) -> list[str]:
    if untreated_labels is None:
        return []
    if not isinstance(untreated_labels, str | list | tuple | set):
        raise TypeError(f"untreated_labels must be text labels (a str or a list of str), got {untreated_labels!r}")
    labels = [untreated_labels] if isinstance(untreated_labels, str) else list(untreated_labels)
    bad = [v for v in labels if not isinstance(v, str)]
    if bad:
        raise TypeError(f"untreated_labels must be text labels, got {bad[0]!r}")
    return labels


# ------------------------------------------------------------------------------------------ split
def _iso_dates(values: pd.Series, dayfirst) -> pd.Series:
    """Dates read once for the whole column, written back as ISO text; values that do not parse stay as written
    (the loader reports them)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    parsed, status = parse_dates(values, dayfirst=dayfirst)
    ok = (status == OK).to_numpy() & parsed.notna().to_numpy()
    codes, uniq = pd.factorize(parsed)  # each distinct date written once
    iso = np.append(pd.DatetimeIndex(uniq).strftime("%Y-%m-%d").to_numpy(object), None)[codes]
    return values.mask(ok, pd.Series(iso, index=values.index))


@dataclass
class _Split:
    """One part of visits as the loader's tables, and how problems of those are named in the visit file."""

    sessions: Part | None
    scores: list[Part]
    names: dict          # (table, source, column) -> header of the visit file; ("base", source) -> its file
    nothing: int         # rows with neither a treatment nor a score


_ROLE_COLUMNS = {"sessions": (("patient", "patient_id"), ("date", "session_date"), ("treatment", "modality"),
                              ("episode", "episode_id"), ("therapist", "therapist_id"),
                              ("duration", "duration_min")),
                 "scores": (("patient", "patient_id"), ("date", "date"), ("episode", "episode_id"))}


def _split(part: Part, lay: Layout, dates: pd.Series) -> _Split:
    """Sessions (rows with a treatment) and one scores part per score column (rows with a value), each row on
    its own line. Rows with neither go with the first score column (the loader reports the missing score);
    blank and ragged lines are counted once, with the first scores part."""
    d, r = part.data, lay.roles
    treated = d[r["treatment"]].notna().to_numpy() if "treatment" in r else np.zeros(len(d), bool)
    present = [d[h].notna().to_numpy() for h, _ in lay.scores]
    nothing = ~treated & ~np.any(present, axis=0)
    cols = {table: {c: d[r[a]] if a != "date" else dates for a, c in pairs if a in r and a != "treatment"}
            for table, pairs in _ROLE_COLUMNS.items()}
    names: dict = {}
    sessions = None
    if treated.any():
        data = pd.DataFrame({**cols["sessions"], "modality": d[r["treatment"]]}).loc[treated]
        sessions = Part(part.source, data.reset_index(drop=True), part.lines[treated], header_fields=part.header_fields)
        names.update({("sessions", part.source, c): r[a] for a, c in _ROLE_COLUMNS["sessions"] if a in r})
    rows = [present[0] | nothing, *present[1:]]
    carrier = next((k for k, m in enumerate(rows) if m.any()), None)
    if carrier is None:
        return _Split(sessions, [], names, 0)
    scores, empty = [], np.zeros(0, np.int64)
    for k, (header, inst) in enumerate(lay.scores):
        if not rows[k].any():
            continue
        source = f"{part.source} ({header})" if len(lay.scores) > 1 else part.source
        data = pd.DataFrame({**cols["scores"], "instrument": inst, "score": d[header]}).loc[rows[k]]
        own = k == carrier
        scores.append(Part(source, data.reset_index(drop=True), part.lines[rows[k]], part.blank if own else empty,
                           part.ragged if own else empty, part.ragged_fields if own else empty, part.header_fields,
                           list(part.notes) if own else []))
        names.update({("scores", source, c): r[a] for a, c in _ROLE_COLUMNS["scores"] if a in r})
        names[("scores", source, "score")] = header
        names[("base", source)] = part.source
    return _Split(sessions, scores, names, int(nothing.sum()))


def _summary(part: Part, lay: Layout, split: _Split, untreated: int) -> str:
    """How one part was split, for ``study.notes``."""
    r = lay.roles
    what = [f"{len(split.sessions.lines)} session(s) from {r['treatment']!r}" + (
        f" ({untreated} of them 'no treatment' records)" if untreated else "")] if split.sessions is not None else []
    what += [f"{int(part.data[h].notna().sum())} {inst} score(s) from {h!r}" for h, inst in lay.scores]
    tail = f"; {split.nothing} row(s) with neither a treatment nor a score" if split.nothing else ""
    found = f"; found by name: {', '.join(lay.found)}" if lay.found else ""
    return (f"{part.source}: {part.n_rows} visit row(s) (patient {r['patient']!r}, date {r['date']!r}) split into "
            f"{', '.join(what)}{tail}{found}")


# ------------------------------------------------------------------------------------------ problems
# ------------------------------------------------------------------------------------------ load
def load_visits(visits, *, patient: str | None = None, date: str | None = None, treatment: str | None = None,
                scores=None, episode: str | None = None, therapist: str | None = None,
                duration: str | None = None, untreated_labels=None,
                patients=None, episodes=None, errors: str = "raise", dayfirst: bool | None = None, today=None,
                modality_map: dict | None = None, no_sessions: str = "unknown", sheet=None,
                episode_gap: float | None = None) -> Study:
    """Load a long export of visits (one row per visit) as a study.

    Parameters
    ----------
    visits : str, Path or DataFrame
        The visits: a ``.csv``, ``.tsv``, ``.xlsx`` or ``.parquet`` file or a
        DataFrame, one row per visit.
    patient, date, treatment, episode, therapist, duration : str, optional
        The column holding each (its header as written; case, spaces and
        brackets may differ). A column not named is found by its header
        (``PatientID``, ``Patient ID``; ``VisitDate``, ``Visit Date``,
        ``Date``; ``Treatment``, ``Modality``, ``Therapy``; ``EpisodeID``;
        ``Therapist``; ``Duration (min)``) when there is one; ``patient`` and
        ``date`` are required, the others optional.
    scores : dict, str or list, optional
        The score columns and their instruments, ``{"PainScore(0-10)":
        "nrs"}`` (any spelling of an instrument; ``None`` reads it from the
        column's name). A column name or list of names reads each instrument
        from its column name; by default every
        column named after an instrument (``PainScore``, ``NPRS_score``,
        ``ODI``, ``VAS (mm)``, ``GRC``) is a score column. ``study.notes``
        says what was found by name.
    untreated_labels : str or list of str, optional
        Treatment values that mean the patient was not treated at that
        visit (``"Advice only"``); the vocabulary's spellings (``"No
        treatment"``, ``"none"``, ``"natural course"``, ...) always do. Such
        a row declares its episode untreated and is not a session.
    patients, episodes : path, DataFrame or list of them, optional
        Tables to load with the visits (patients' age and sex, episodes with
        their onset dates). Without an episodes table each patient's visits
        are one episode (``episode_id`` = ``patient_id``, unless ``episode``
        names a column) whose onset is unknown: analyse it with
        ``origin="first_contact"``.
    errors, today, no_sessions :
        As for :func:`~backpain_outcomes.load_study`.
    dayfirst : bool, optional
        Order of ``dd/mm/yyyy`` dates. Without it the date column is read in
        the order its own dates prove (a day above 12), which ``study.notes``
        states; when none proves it, dates readable both ways are refused.
    modality_map : dict, optional
        Extra treatment spellings, ``{"Hot stones": "other"}``.
    sheet : str or int, optional
        The sheet of a workbook to read (default: every non-empty sheet).
    episode_gap : float, optional
        Without an episode column or an episodes table: start a new episode
        of a patient after more than this many days without a visit
        (episodes ``p1/1``, ``p1/2``, ...). By default each patient's visits
        are one episode, and ``study.notes`` names the patients whose visits
        are more than 90 days apart.

    Returns
    -------
    Study
        Sessions and scores keep the line of the visit they came from
        (``_source``, ``_row``); ``study.notes`` starts with how each file was
        split.

    Raises
    ------
    DataValidationError
        Every problem once, as ``file:line:column`` of the visit file, with
        the file's own column names (``visits.csv:12:VisitDate: not a valid
        date``).
    ValueError
        A declared column is not in the file, or a required one cannot be
        found by its name.

    Notes
    -----
    A visit row becomes a session when its treatment is filled in (a
    "no treatment" value declares the episode untreated; a missing-value mark
    such as ``N/A`` is read as blank) and one score per score column that
    holds a value. Treatment labels are compared in Unicode compatibility form
    without zero-width characters; a time of day after a date is dropped and
    a number of 20000 to 80000 in the date column is an Excel serial date
    (:mod:`backpain_outcomes.visits_prepare`; the notes count both). A row with neither a treatment nor a
    score is a ``missing_value`` problem of the first score column; blank
    rows are set aside. With several score columns the scores of each are
    named ``file (column)`` in ``study.exclusions`` and ``study.scores``
    (``_source``), so that every row of every table stays one row.

    Examples
    --------
    >>> import pandas as pd
    >>> from backpain_outcomes.visits import load_visits
    >>> visits = pd.DataFrame({"PatientID": ["p1", "p1", "p2"],
    ...                        "VisitDate": ["14/07/2024", "03/08/2024", "03/08/2024"],
    ...                        "Treatment": ["Deep tissue", None, "No treatment"],
    ...                        "PainScore(0-10)": [7, 4, 6]})
    >>> study = load_visits(visits, scores={"PainScore(0-10)": "nrs"}, today="2025-01-01")
    >>> study.episodes[["episode_id", "modality"]].values.tolist()
    [['p1', 'deep_tissue'], ['p2', 'untreated']]
    >>> study.scores["_row"].tolist()
    [2, 3, 4]
    """
    declared = {"patient": patient, "date": date, "treatment": treatment, "episode": episode, "therapist": therapist,
                "duration": duration}
    for arg, value in declared.items():
        check_column(value, arg)
    score_cols = score_columns(scores)
    labels = _labels(untreated_labels)
    check_choice(errors, "errors", ("raise", "exclude"))
    check_choice(no_sessions, "no_sessions", NO_SESSIONS)
    if dayfirst is not None:
        check_bool(dayfirst, "dayfirst")
    normalise_modality(pd.Series([], dtype=object), modality_map)  # a target outside the vocabulary raises
    if episode_gap is not None:
        check_positive(episode_gap, "episode_gap")
    _check_tables(patients, episodes)
    mapping = {**(modality_map or {}), **{lab: UNTREATED for lab in labels}}
    parts = _read_visits(visits, sheet)
    layouts = [visit_layout(part, declared, score_cols) for part in parts]
    parts, notes = _clean_parts(parts, layouts, mapping)
    lines = np.concatenate([part.lines for part in parts])
    where = ", ".join(f"{p.source}: {lay.roles['date']!r}" for p, lay in zip(parts, layouts))
    raw_dates, date_notes = prepare_dates(pd.concat([part.data[lay.roles["date"]].astype(object)
                                                     for part, lay in zip(parts, layouts)], ignore_index=True),
                                          lines, where)
    dates = _iso_dates(raw_dates, dayfirst)
    parts, layouts, episode_notes = _episodes(parts, layouts, dates, lines, episode_gap, episodes is not None)
    sessions, score_parts, names, summaries = [], [], {}, []
    start = 0
    for part, lay in zip(parts, layouts):
        split = _split(part, lay, dates.iloc[start:start + len(part.data)].set_axis(part.data.index))
        start += len(part.data)
        sessions += [split.sessions] if split.sessions is not None else []
        score_parts += split.scores
        names.update(split.names)
        untreated = 0 if split.sessions is None else int(
            (normalise_modality(split.sessions.data["modality"], mapping) == UNTREATED).sum())
        summaries.append(_summary(part, lay, split, untreated))
    if not score_parts:
        p = Problems()
        for part, lay in zip(parts, layouts):
            p.whole_file("visits", part.source, "no_scores", "no row has a score in "
                         f"{', '.join(repr(h) for h, _ in lay.scores)}", "at least one score")
        raise DataValidationError(p.frame(), header="the visits hold no score")
    notes = summaries + notes + date_notes
    if dayfirst is None:
        notes.append(order_note(date_order(raw_dates), f"visit dates ({where})"))
    notes += episode_notes
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ExcludedRowsWarning)
            study = load_study(sessions=sessions or None, scores=score_parts, patients=patients, episodes=episodes,
                               errors=errors, dayfirst=dayfirst, today=today, modality_map=mapping or None,
                               no_sessions=no_sessions)
    except DataValidationError as err:
        raise DataValidationError(relabel_problems(err.problems, names, dedupe=True), header=err.header) from None
    for w in caught:  # re-stated for the caller's line
        warn(w.message, w.category)
    study.exclusions = relabel_problems(study.exclusions, names)
    study.notes = [n for n in notes if n] + study.notes
    if not isinstance(visits, pd.DataFrame):
        study.input_files.append(Path(visits).resolve())
    return study


def _check_tables(patients, episodes) -> None:
    for name, value in (("patients", patients), ("episodes", episodes)):
        items = value if isinstance(value, list | tuple) else [value]
        if value is not None and not all(isinstance(v, str | Path | pd.DataFrame) for v in items):
            raise TypeError(f"{name} must be a file path, a DataFrame or a list of them, got {type(value).__name__}")


def _clean_parts(parts: list[Part], layouts: list[Layout], mapping: dict) -> tuple[list[Part], list[str]]:
    """Treatment labels in compatibility form, missing-value marks blank (see :func:`clean_treatments`); patient
    and episode ids without invisible characters (see :func:`clean_ids`)."""
    out, notes = [], []
    for part, lay in zip(parts, layouts):
        data, said = part.data, []
        for role in ("patient", "episode"):
            header = lay.roles.get(role)
            if header is not None:
                values, note = clean_ids(data[header], part.lines, header)
                data = data.assign(**{header: values}) if note else data
                said += [note] if note else []
        header = lay.roles.get("treatment")
        if header is not None:
            values, note = clean_treatments(data[header].astype(object), part.lines, header, mapping)
            data = data.assign(**{header: values})
            said += [note] if note else []
        out.append(replace(part, data=data) if data is not part.data else part)
        notes += [f"{part.source}: {n}" for n in said]
    return out, notes


_GAP_COLUMN = "episode (from visit gaps)"


def _episodes(parts: list[Part], layouts: list[Layout], dates: pd.Series, lines: np.ndarray, gap, table: bool):
    """Without an episode column or an episodes table: the note on how episodes are formed; with ``gap``, an
    episode column numbering each patient's episodes."""
    if any("episode" in lay.roles for lay in layouts) or table:
        if gap is not None:
            raise ValueError("episode_gap: the visits have an episode column or an episodes table is given; "
                             "episode_gap forms episodes only when there is neither (leave it out)")
        return parts, layouts, []
    patients = pd.concat([part.data[lay.roles["patient"]].astype(object) for part, lay in zip(parts, layouts)],
                         ignore_index=True)
    notes = episode_note(patients, dates.reset_index(drop=True), lines, gap)
    if gap is None:
        return parts, layouts, notes
    ids = episodes_by_gap(patients, dates.reset_index(drop=True), float(gap))
    start, new_parts, new_layouts = 0, [], []
    for part, lay in zip(parts, layouts):
        n = len(part.data)
        new_parts.append(replace(part, data=part.data.assign(**{_GAP_COLUMN: ids.iloc[start:start + n].to_numpy()})))
        new_layouts.append(Layout({**lay.roles, "episode": _GAP_COLUMN}, lay.scores, lay.found))
        start += n
    return new_parts, new_layouts, notes


def _read_visits(visits, sheet) -> list[Part]:
    """Every sheet (or the file, or the DataFrame) of visits, with its lines; a file that cannot be read is one
    problem naming it."""
    if not isinstance(visits, str | Path | pd.DataFrame):
        raise TypeError(f"visits must be a file path (.csv, .tsv, .xlsx, .parquet, ...) or a DataFrame, got "
                        f"{type(visits).__name__}")
    if sheet is not None and (isinstance(visits, pd.DataFrame) or Path(visits).suffix.lower() not in
                              (".xlsx", ".xlsm", ".xls")):
        raise ValueError(f"sheet={sheet!r}: only a workbook (.xlsx, .xlsm, .xls) has sheets; leave sheet out for "
                         f"{'a DataFrame' if isinstance(visits, pd.DataFrame) else Path(visits).name}")
    source = "<visits DataFrame>" if isinstance(visits, pd.DataFrame) else Path(visits).name
    try:
        parts = read_part(visits, "visits", sheet, source)
    except ReadError as err:
        p = Problems()
        p.whole_file("visits", source, err.reason, err.message, err.expected, err.value, err.line)
        raise DataValidationError(p.frame(), header="the input cannot be read") from None
    parts = [part for part in parts if len(part.data.columns)]
    if not parts or all(part.n_rows == len(part.blank) for part in parts):
        p = Problems()
        p.whole_file("visits", source, "empty_file", "the table has no data rows", "at least one row under the header")
        raise DataValidationError(p.frame(), header="the input cannot be read")
    return parts
