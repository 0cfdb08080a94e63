"""Visit exports: which column of a visit file plays which role, and which columns hold which instrument.

:func:`visit_layout` finds the patient, date, treatment, episode, therapist
and duration columns of one file or sheet (declared by the caller, or by a
header the loader knows: ``PatientID``, ``Patient ID``, ``patient-id``,
``VisitDate``, ...) and its score columns (declared, or every column named
after an instrument: ``PainScore(0-10)``, ``NPRS_score``, ``ODI``). A header
that two roles or two score columns of one instrument could both claim is
an error asking the caller to name the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .reading import Part, column_keys, normalise_column
from .vocabulary import did_you_mean, instrument_name, normalise_instrument

__all__ = ["VISIT_ROLES", "Layout", "instrument_of_column", "check_column", "score_columns", "find_column",
           "visit_layout"]

#: Argument of :func:`load_visits` -> the column it names, as the loader calls it.
VISIT_ROLES = {"patient": "patient_id", "date": "date", "treatment": "treatment", "episode": "episode_id",
               "therapist": "therapist_id", "duration": "duration_min"}
_REQUIRED = ("patient", "date")
_SUFFIXES = ("_score", "score", "_total", "_value")


def instrument_of_column(name: object) -> str | None:
    """The instrument a column's name says it holds, or None.

    The name is matched as written, without a trailing unit and with its
    camelCase words split, with or without a trailing ``score``, against the
    instrument spellings of the vocabulary.

    Examples
    --------
    >>> instrument_of_column("PainScore(0-10)"), instrument_of_column("NPRS_score"), instrument_of_column("ODI (%)")
    ('nrs', 'nrs', 'odi')
    >>> instrument_of_column("Treatment") is None
    True
    """
    candidates = []
    for key in column_keys(name):
        candidates.append(key)
        candidates += [key[: -len(s)] for s in _SUFFIXES if key.endswith(s) and len(key) > len(s)]
    found = normalise_instrument(pd.Series(candidates, dtype=object)).dropna()
    return found.iat[0] if len(found) else None


# ------------------------------------------------------------------------------------------ arguments
def check_column(value, argument: str) -> str | None:
    """A column named by an argument: None or its header (str)."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{argument} must be the name of a column (str), got {type(value).__name__}")
    return value


def _score_column(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"scores must name columns by their headers (str), got {value!r}")
    return value


def score_columns(scores) -> list[tuple[str, str | None]] | None:
    """``scores=`` as [(column, instrument or None to be read from the name)]."""
    if scores is None:
        return None
    if isinstance(scores, str):
        scores = [scores]
    if isinstance(scores, dict):
        if not scores:
            raise ValueError("scores={} names no column; give {column: instrument}, e.g. {'PainScore': 'nrs'}")
        return [(_score_column(c), None if i is None else instrument_name(i, f"scores[{c!r}]", ratings=True))
                for c, i in scores.items()]
    if isinstance(scores, list | tuple) and scores:
        return [(_score_column(c), None) for c in scores]
    raise TypeError("scores must be a dict {column: instrument}, a column name or a list of column names, "
                    f"got {scores!r}")


# ------------------------------------------------------------------------------------------ layout
@dataclass
class Layout:
    """Which column of one part plays which role, and which columns hold which instrument."""

    roles: dict[str, str]                       # argument -> header
    scores: list[tuple[str, str]]               # (header, instrument)
    found: list[str] = field(default_factory=list)  # what was found by name, for the notes


def find_column(headers: list[str], name: str, argument: str, source: str) -> str:
    """The header a declared column name means: as written, else the one spelt alike (case, spaces, brackets)."""
    if name in headers:
        return name
    def key(text):
        return column_keys(text)[0].replace("_", "")
    same = [h for h in headers if key(h) == key(name)]
    if len(same) == 1:
        return same[0]
    raise ValueError(f"{argument}={name!r}: no such column in {source}; columns: {', '.join(map(repr, headers))}"
                     f"{did_you_mean(name, headers)}")


def visit_layout(part: Part, declared: dict, scores) -> Layout:
    headers = [str(c) for c in part.data.columns]
    roles, found = {}, []
    for arg, canonical in VISIT_ROLES.items():
        if declared[arg] is not None:
            roles[arg] = find_column(headers, declared[arg], arg, part.source)
            continue
        hits = [h for h in headers if normalise_column(h, "visits") == canonical]
        if len(hits) > 1:
            raise ValueError(f"{arg}: columns {', '.join(map(repr, hits))} of {part.source} could each be the "
                             f"{arg}; name one with {arg}='...'")
        if hits:
            roles[arg] = hits[0]
            found.append(f"{arg} {hits[0]!r}")
        elif arg in _REQUIRED:
            raise ValueError(f"{arg}: no column of {part.source} is named like a {arg} "
                             f"(columns: {', '.join(map(repr, headers))}); pass {arg}='<column>'")
    used = set(roles.values())
    if scores is None:
        detected = [(h, instrument_of_column(h)) for h in headers if h not in used]
        out = [(h, i) for h, i in detected if i is not None]
        if not out:
            raise ValueError(f"scores: no column of {part.source} is named after an instrument (columns: "
                             f"{', '.join(map(repr, headers))}); declare them, e.g. scores={{'PainScore': 'nrs'}}")
        twice = [i for i in dict.fromkeys(i for _, i in out) if sum(j == i for _, j in out) > 1]
        if twice:
            cols = [h for h, i in out if i == twice[0]]
            raise ValueError(f"scores: columns {', '.join(map(repr, cols))} of {part.source} are each named like a "
                             f"{twice[0]} score (each visit would have {len(cols)} {twice[0]} scores); declare the "
                             f"score columns, e.g. scores={{{cols[0]!r}: {twice[0]!r}}}")
        found += [f"{i} scores {h!r}" for h, i in out]
    else:
        out = []
        for name, inst in scores:
            h = find_column(headers, name, "scores", part.source)
            if inst is None:
                inst = instrument_of_column(h)
                if inst is None:
                    raise ValueError(f"scores: the instrument of column {h!r} cannot be told from its name; "
                                     f"declare it, e.g. scores={{{h!r}: 'nrs'}}")
                found.append(f"{inst} scores {h!r}")
            out.append((h, inst))
    twice = sorted({h for h, _ in out} & used)
    if twice:
        raise ValueError(f"scores: column {twice[0]!r} of {part.source} is already the "
                         f"{next(a for a, h in roles.items() if h == twice[0])}")
    return Layout(roles, out, found)
