"""The check stage of loading: every table's values checked, exact duplicates set aside, conflicting ids
reported once, the tables linked (the second and third stages of :func:`~backpain_outcomes.load_study`).

:func:`check_tables` checks the scores table in the calling thread while a second thread checks the
patients, episodes and sessions (:func:`~backpain_outcomes.two_threads.alongside`); then the second
thread sets aside their exact duplicates, reports conflicting ids and links the episodes and the sessions
while the calling thread sets aside the scores' duplicates; then the scores are linked. Each table's
problems are found by one thread, in the order of its checks, and each thread names the stage of its
checks (``Problems.stage``), so that the problem table comes in the order of checks made one after the
other, whichever thread ends first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .dates import date_order, forms_note, order_note
from .linking import id_codes, link_parents, link_rows
from .problems import Problems
from .reading import DATE_COLUMNS, TABLES
from .two_threads import alongside
from .validation import (
    RawTable,
    blank_missing_marks,
    conflicting_ids,
    set_aside_duplicates,
    validate_episodes,
    validate_patients,
    validate_scores,
    validate_sessions,
)
from .vocabulary import RATINGS_OF_CHANGE

__all__ = ["check_tables"]


def _date_notes(raw: dict, names) -> list[str]:
    """How the date column of each of the tables ``names`` reads its ambiguous dates when the column proves the
    order, and its serial day numbers and times of day (see dates)."""
    notes = []
    for name, col in DATE_COLUMNS.items():
        t = raw.get(name) if name in names else None
        if t is not None and col in t.data:
            where = f"{name}.{col} ({', '.join(t.sources[i] for i in t.files_read())})"
            notes.append(order_note(date_order(t.data[col], t.distinct(col)), where))
            notes.append(forms_note(t.data[col], where, distinct=t.distinct(col)))
    return [n for n in notes if n]


def _check_ratings(t: RawTable, scores: pd.DataFrame, p: Problems) -> None:
    """Ratings of change (``grc``): a whole category number within the scale (see the vocabulary)."""
    value = scores["score"].to_numpy(float)
    known = t.lookups.get("instrument")  # a rating of change is none of the instruments (-1), as unknown names
    rows = np.flatnonzero(known < 0) if known is not None and len(known) == len(value) else np.arange(len(value))
    instrument, value_r = scores["instrument"].to_numpy()[rows], value[rows]  # (only these rows are compared)
    for code, (low, high, _) in RATINGS_OF_CHANGE.items():
        with np.errstate(invalid="ignore"):
            out = ~np.isnan(value_r) & ((value_r < low) | (value_r > high) | (value_r != np.round(value_r)))
        bad = np.zeros(len(value), bool)
        bad[rows[out & (instrument == code)]] = True
        t.flag(p, bad, "score", "out_of_range", f"{code} rating is out of range",
               f"a whole number from {low:g} (the best category) to {high:g} for {code}",
               values=t.data["score"] if "score" in t.data else None)


def _id_codes(raw: dict, clean: dict, name: str) -> None:
    """The ids of a sessions or scores table looked up once among their parent table's, for duplicates and
    linking."""
    for col, parent in (("patient_id", "patients"), ("episode_id", "episodes")):
        if name in clean and parent in clean:
            id_codes(raw[name], clean[name][col], clean[parent][col].dropna())


def _first_look(raw: dict, names, dayfirst) -> tuple[list, list]:
    """The notes on the date columns of the tables ``names`` (when ``dayfirst`` is not given) and their
    missing-value marks set blank, with the notes on them."""
    return (_date_notes(raw, names) if dayfirst is None else [],
            [n for name in names for n in blank_missing_marks(raw[name])])


def check_tables(raw, p, dayfirst, today, modality_map, instrument_map, options, notes: list) -> dict:
    """Check every table, set exact duplicates aside, report conflicting ids once, link the tables; the notes
    on dates and missing-value marks are added to ``notes``. The other tables are checked, their duplicates set
    aside and their rows linked in a second thread while this one checks the scores and sets their duplicates
    aside (see :func:`~backpain_outcomes.two_threads.alongside`)."""
    clean = {}
    names = [name for name in TABLES if name in raw and name != "scores"]

    def scores():
        p.stage(1)  # (the stages of the checks, in the order they would run one after the other: see Problems.frame)
        found = _first_look(raw, ["scores"], dayfirst)
        checked = validate_scores(raw["scores"], p, dayfirst, today, instrument_map, options)
        _check_ratings(raw["scores"], checked, p)
        return checked, found

    def others():
        p.stage(1)
        found = _first_look(raw, names, dayfirst)
        if "patients" in raw:
            clean["patients"] = validate_patients(raw["patients"], p)
        if "episodes" in raw:
            clean["episodes"] = validate_episodes(raw["episodes"], p, dayfirst, today)
        if "sessions" in raw:
            clean["sessions"] = validate_sessions(raw["sessions"], p, dayfirst, today, modality_map)
        return found

    on_others, (clean["scores"], on_scores) = alongside(others, scores)
    notes.extend([*on_others[0], *on_scores[0], *on_others[1], *on_scores[1]])  # dates, then marks

    def scores_duplicates():
        p.stage(2)
        _id_codes(raw, clean, "scores")
        return set_aside_duplicates(raw["scores"], clean["scores"], p)

    def others_linked():  # (the scores' duplicates are set aside before their links are checked, as these are)
        p.stage(2)
        _id_codes(raw, clean, "sessions")
        set_aside = {name: set_aside_duplicates(raw[name], clean[name], p) for name in clean if name != "scores"}
        p.stage(3)
        for name, col in (("patients", "patient_id"), ("episodes", "episode_id")):
            if name in clean:
                conflicting_ids(raw[name], clean[name][col], col, p, set_aside[name])
        p.stage(4)
        parents = link_parents(raw, clean, p, set_aside)
        link_rows(raw, clean, "sessions", parents, p)
        return parents

    parents = alongside(others_linked, scores_duplicates)[0]
    p.stage(4)
    link_rows(raw, clean, "scores", parents, p)
    return {name: clean[name] for name in TABLES if name in clean}
