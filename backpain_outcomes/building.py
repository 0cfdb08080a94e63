"""Building: the last stage of loading, from the checked and linked tables to the :class:`~backpain_outcomes.study.Study`.

:func:`build_study` takes the rows used (not excluded, not set aside), sets the invalid values of optional
columns blank (listed in ``study.blanked_values``), warns of the rows excluded, finds the score rows that
share a visit (:func:`same_day_scores`) and hands the Study the codes of each row's episode, instrument and
modality that checking and linking already found. Split out of :mod:`backpain_outcomes.loading` (which
re-exports :func:`same_day_scores`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .duplicates import group_codes, ordered_keys, repeated_rows, value_codes
from .exceptions import DataValidationError, ExcludedRowsWarning, warn
from .problems import CONSEQUENCE, ERROR, EXCLUSION_COLUMNS, OPTIONAL, SET_ASIDE, Problems
from .reading import Part
from .study import Study

__all__ = ["build_study", "same_day_scores"]


def same_day_scores(scores: pd.DataFrame, codes: dict | None = None) -> pd.DataFrame:
    """Score rows that share their episode, instrument and calendar day with a row of another score.

    The analyses combine the measurements of one instrument, episode and day into one visit (by their
    mean); this table lists the rows so combined, with ``n_same_day`` (rows of that visit) and
    ``rows`` (where they all are). ``codes`` (optional): column -> a code (from 0) per row, equal where
    the column's values are (as validation and linking give them), so that the column is not hashed again.

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
    known = {c: v for c, v in (codes or {}).items() if len(v) == len(scores)}
    visit = [known[c] if c in known else value_codes(scores[c])[0] for c in ("episode_id", "instrument", "date")]
    key = ordered_keys(visit)  # (None: the keys increase, no visit has two rows)
    if key is None or not repeated_rows(key).any():  # (no group numbered when no visit has two rows)
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    group = group_codes(key)[0]
    size = np.bincount(group)[group]
    rep = size > 1
    sc = scores[rep]
    where = pd.Series(sc["_source"].astype(str).to_numpy(object) + ":" + sc["_row"].astype(str).to_numpy(object))
    joined = where.groupby(group[rep], sort=False).agg(", ".join)
    out = pd.DataFrame({"table": "scores", "source": sc["_source"].to_numpy(), "row": sc["_row"].to_numpy(),
                        **{c: sc[c].to_numpy() for c in ["episode_id", "patient_id", "instrument", "date", "score"]},
                        "n_same_day": size[rep], "rows": joined.loc[group[rep]].to_numpy()})
    return out.sort_values(["source", "row"], kind="stable").reset_index(drop=True)[cols]


def _kept(name: str, frame: pd.DataFrame, p: Problems) -> np.ndarray:
    """Rows of the table that are used (not excluded, not set aside)."""
    ok = np.ones(len(frame), bool)
    ok[p.positions(name, kinds=(ERROR, CONSEQUENCE, SET_ASIDE))] = False
    return ok


def _of_kept(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``values[ok]``; ``values`` themselves when every row is kept (no copy of a million codes)."""
    return values if ok.all() else values[ok]


def _used(raw: dict, clean: dict, p: Problems) -> dict:
    used = {}
    for name, frame in clean.items():
        t = raw[name]
        ok = _kept(name, frame, p)
        rows = frame if ok.all() else frame.loc[ok]
        rows = rows.reset_index(drop=True)  # (the file and line of each row as new columns, not copied again)
        used[name] = rows.assign(_source=pd.Series(t.source_text(ok), index=rows.index, copy=False),
                                 _row=pd.Series(_of_kept(t.rows, ok), index=rows.index, copy=False))
    return used


def _blank_optional(clean: dict, p: Problems, notes: list) -> pd.DataFrame:
    """Set the invalid values of optional columns blank (the rows are kept); those of the rows kept, listed."""
    f = p.frame(kinds=(OPTIONAL,), internal=True)
    keep = np.ones(len(f), bool)
    for (table, column), at in f.groupby(["table", "column"], observed=True).indices.items():
        frame, pos = clean[table], f["_position"].to_numpy()[at]
        frame.iloc[pos, frame.columns.get_loc(column)] = np.nan
        keep[at] = ~np.isin(pos, p.positions(table, kinds=(ERROR, CONSEQUENCE, SET_ASIDE)))
    f = f[keep].reset_index(drop=True)
    if len(f):
        counts = (f["table"].astype(str) + "." + f["column"].astype(str)).value_counts()
        notes.append(f"{len(f)} invalid value(s) in optional columns were set blank and their rows kept (see "
                     f"study.blanked_values): {', '.join(f'{k} {n}' for k, n in counts.items())}")
    return f[EXCLUSION_COLUMNS].astype({c: object for c in ("table", "source", "column", "reason", "message")})


def _row_codes(raw: dict, clean: dict, p: Problems) -> dict:
    """The rows' episodes (linking) and instruments (checking) for the Study, so that it does not look them up
    again: only when the episodes linking found valid are the ones used, in the same order, and every used
    row has one."""
    out = {}
    for name, col in (("scores", "instrument"), ("sessions", "modality")):
        if name in raw and col in raw[name].lookups:
            out[f"{name}_{col}"] = _of_kept(raw[name].lookups[col], _kept(name, clean[name], p))
    valid = raw["episodes"].lookups.get("valid_rows") if "episodes" in raw else None
    if valid is None or not np.array_equal(np.flatnonzero(_kept("episodes", clean["episodes"], p)), valid):
        return out
    for name in ("scores", "sessions"):
        at = raw[name].lookups.get("episode_id") if name in raw else None
        if at is not None and len(at) == len(clean[name]):
            at = _of_kept(at, _kept(name, clean[name], p))
            if (at >= 0).all():
                out[f"{name}_episode"] = at
    return out


def build_study(raw, clean, p, notes, given, no_sessions) -> Study:
    """The Study of the rows used (the last stage of ``load_study``): invalid optional values set blank,
    excluded rows counted and warned of, the same-day table, and the row codes checking and linking found."""
    exclusions = p.exclusions()[EXCLUSION_COLUMNS]
    blanked = _blank_optional(clean, p, notes)
    used = _used(raw, clean, p)
    if len(used["scores"]) == 0:
        raise DataValidationError(exclusions.assign(expected=""),
                                  header="no valid score rows remain after excluding the invalid ones")
    n_bad = int((~exclusions["reason"].isin(["duplicate", "blank_row"])).sum())
    if n_bad:
        warn(f"{n_bad} invalid row(s) were excluded (see study.exclusions; "
             f"reasons: {exclusions['reason'].value_counts().to_dict()})", ExcludedRowsWarning)
    read = {name: raw[name].n_read for name in raw}
    sources = {name: ", ".join(dict.fromkeys(np.asarray(raw[name].sources, object)[raw[name].files_read()]))
               for name in raw}
    lost = clean["sessions"].iloc[p.positions("sessions")] if "sessions" in clean else None
    kept = _kept("scores", clean["scores"], p)  # codes of the used rows' instrument (validation), episode (linking)
    codes = {c: _of_kept(v[0], kept) for c, v in raw["scores"].codes.items() if c in ("instrument", "episode_id", "date")}
    same_day = same_day_scores(used["scores"], {c: v for c, v in codes.items() if (v >= 0).all()})
    del codes
    for t in raw.values():
        t.codes.clear()  # not needed any more: free them before the Study is built
        t.factorized.clear()
    row_codes = _row_codes(raw, clean, p)
    for t in raw.values():
        t.lookups.clear()
    study = Study(patients=used.get("patients"), episodes=used.get("episodes"), sessions=used.get("sessions"),
                  scores=used["scores"], exclusions=exclusions, rows_read=read, sources=sources,
                  no_sessions=no_sessions, excluded_sessions=lost, blanked_values=blanked, notes=notes,
                  same_day_scores=same_day, row_codes=row_codes,
                  input_files=[Path(f).resolve() for objs in given.values() for f in objs
                               if not isinstance(f, pd.DataFrame | Part)])
    return study
