"""Linking: every session and score to a known patient and episode.

The third stage of loading. An id that is not in its table is an error
(``unknown_patient``, ``unknown_episode``); a row whose patient or episode is
in its table but excluded there is excluded with it as a *consequence*
(``patient_excluded``, ``episode_excluded``), never reported as an error of
its own, so that one bad row is one problem, not a cascade. Rows without
``episode_id`` get the patient's episode with the latest onset on or before
their date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .duplicates import small_codes
from .problems import CONSEQUENCE, Problems
from .reading import DATE_COLUMNS
from .text_columns import same_text, text_key
from .validation import RawTable, in_order_seen

__all__ = ["link_tables", "link_parents", "link_rows", "member", "index_of", "leading_zero_note", "parent_positions", "id_codes"]


def _text(values) -> pa.Array:
    """Text ids as one Arrow array (no copy for an Arrow-backed ``str`` column)."""
    s = values if isinstance(values, pd.Series | pd.Index) else pd.Series(values)
    if not (pd.api.types.is_string_dtype(s) and s.dtype != object):
        s = pd.Series(s, dtype="str")
    arr = pa.array(s)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.cast(arr, pa.large_string())


def member(values: pd.Series, ids) -> np.ndarray:
    """``values.isin(ids)`` for text ids (an Arrow hash lookup); missing values are not members."""
    if not len(values):
        return np.zeros(0, bool)
    if same_text(values, ids):  # the same ids in the same order: each is a member (no hash lookup)
        return np.asarray(pd.notna(values), dtype=bool)
    found = pc.is_in(_text(values), value_set=_text(ids))
    return found.to_numpy(zero_copy_only=False).astype(bool) & np.asarray(pd.notna(values))


def index_of(values, ids) -> np.ndarray:
    """Position of each of ``values`` in ``ids`` (-1 where absent), as ``pd.Index(ids).get_indexer(values)``
    for text ids (an Arrow hash lookup; a missing value finds a missing id). Numbers are looked up by pandas."""
    return _positions(values, ids).astype(np.int64, copy=False)


def _positions(values, ids) -> np.ndarray:
    """:func:`index_of`, with the positions of text ids as Arrow's int32 (not copied to int64)."""
    if not len(values):
        return np.zeros(0, np.int64)
    if not all(pd.api.types.is_string_dtype(v) or pd.api.types.infer_dtype(v, skipna=True) in ("string", "empty")
               for v in (values, ids)):
        return pd.Index(ids).get_indexer(values)
    found = pc.index_in(_text(values), value_set=_text(ids), skip_nulls=False)
    return found.fill_null(-1).to_numpy(zero_copy_only=False)


def _valid_ids(clean: pd.DataFrame, col: str, bad: np.ndarray) -> pd.Index:
    ok = np.ones(len(clean), bool)
    ok[bad] = False
    return pd.Index(clean.loc[ok, col].dropna(), dtype="str")


def parent_positions(t: RawTable, values: pd.Series, known) -> tuple[pd.Index, np.ndarray]:
    """(the distinct ``known`` ids, the position of each of ``values`` among them, -1 where absent): one lookup of
    every row, kept on the table (``t.lookups``) and given again while ``values`` are the same values."""
    kept = t.lookups.get(f"parent:{values.name}")
    key = text_key(known) if isinstance(known, pd.Series | pd.Index) else None
    if kept is not None and kept[0] is values.array and key is not None and kept[3] == key:
        return kept[1], kept[2]  # the same values among the same known ids (the same Arrow buffers)
    coded = t.known_distinct(values)  # the distinct values looked up, not every row, when they are known
    same = coded is not None and same_text(coded[1], known)  # they are the known ids, in their order
    distinct = pd.Index(known, dtype="str") if same else pd.Index(known, dtype="str").unique()
    if kept is not None and kept[0] is values.array and kept[1].equals(distinct):
        return kept[1], kept[2]
    width = np.int32 if len(distinct) < 2**31 else np.int64  # (int32: half the memory of a million positions)
    if same:  # each row's code is its id's position among the known ids (-1: missing); read-only when it is the
        at = coded[0].astype(width, copy=False)  # reader's array (Arrow's memory): positions are never changed in place
    elif coded is None:
        at = _positions(values, distinct)
    else:
        at = np.take(np.r_[index_of(coded[1], distinct), -1].astype(width), coded[0])
    t.lookups[f"parent:{values.name}"] = (values.array, distinct, at, key, known)  # (known: kept alive for its key)
    return distinct, at


def id_codes(t: RawTable, values: pd.Series, known) -> None:
    """Codes of an id column for exact duplicates (``t.codes``, as ``value_codes`` gives them) from its lookup
    among the ``known`` ids, which linking then uses again: a known id is coded by its position, another by
    ``pd.factorize`` of the unknown ids only."""
    distinct, at = parent_positions(t, values, known)
    codes, bound = at, len(distinct)
    other = (at < 0) & values.notna().to_numpy()
    if other.any():
        rc, uniq = pd.factorize(values[other])
        codes = at.copy()
        codes[other] = rc + bound
        bound += len(uniq)
    t.codes[values.name] = (codes, bound)


def _parent(t: RawTable, frame: pd.DataFrame, col: str, known, valid, what: str,
            p: Problems) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Rows whose ``col`` is unknown (errors) or whose parent row is excluded (consequences); also the position
    of each row's id among the distinct ``known`` ids (-1 where unknown) and those distinct ids."""
    given = frame[col].notna().to_numpy()
    distinct, at = parent_positions(t, frame[col], known)  # one lookup of every row; then whether its id is valid
    is_known = at >= 0
    t.flag(p, given & ~is_known, col, f"unknown_{what}", f"{col} is not in the {what}s table",
           f"an id listed in {what}s", values=frame[col])
    ok = member(distinct, valid)
    gone = given & is_known & ~np.take(np.r_[ok, False], at) if not ok.all() else np.zeros(len(at), bool)
    t.flag(p, gone, col, f"{what}_excluded", f"the {what}'s own row is excluded (see the {what}s table)",
           f"a {what} whose row is valid", values=frame[col], kind=CONSEQUENCE)
    return given & ~is_known | gone, at, distinct


def _covering(rows: pd.DataFrame, date_col: str, episodes: pd.DataFrame) -> pd.Series:
    """For each row, the episode of its patient with the latest onset on or before its date (NaN if none)."""
    ep = episodes[["episode_id", "patient_id", "onset_date"]].dropna(subset=["onset_date", "patient_id"])
    left = rows[["patient_id", date_col]].reset_index().sort_values(date_col)
    m = pd.merge_asof(left, ep.sort_values("onset_date"), left_on=date_col, right_on="onset_date", by="patient_id",
                      direction="backward")
    return pd.Series(m["episode_id"].to_numpy(), index=m["index"].to_numpy(), dtype="str").reindex(rows.index)


def _assign_episodes(t: RawTable, frame: pd.DataFrame, valid: pd.DataFrame, lost: pd.DataFrame, date_col: str,
                     p: Problems) -> bool:
    """Give rows without ``episode_id`` the patient's episode with the latest onset on or before their date
    (True when some rows needed one)."""
    need = frame["episode_id"].isna() & frame[date_col].notna() & frame["patient_id"].notna()
    if not need.any():
        return False
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
    return True


def _other_patient(patient: pd.Series, owners: pd.Series, at: np.ndarray, codes=None) -> np.ndarray:
    """Rows whose episode (at row ``at`` of the valid episodes, -1 for none) belongs to another patient
    (a missing patient on either side differs, as ``!=`` does). ``codes``: (the position of each row's patient,
    of each valid episode's patient) among the patients' ids, -1 where not one of them; where both are
    positions they are compared, the ids (text) elsewhere."""
    known = at >= 0
    if not known.any():
        return known
    if codes is None:
        unsure, other = known, np.zeros(len(at), bool)
    else:  # the owner's position of each row's episode (-1: no episode, or an owner not among the patients)
        row, owner = codes[0], np.take(np.r_[codes[1], -1], at)
        sure = (row >= 0) & (owner >= 0)  # (owner >= 0: the row has an episode)
        unsure, other = known & ~sure, sure & (row != owner)
    idx = np.flatnonzero(unsure)
    if len(idx):
        same = pc.equal(pc.take(_text(owners), pa.array(at[idx])), pc.take(_text(patient), pa.array(idx)))
        other[idx] = ~same.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    return other


def _kept_positions(t: RawTable, values: pd.Series) -> tuple[pd.Index, np.ndarray] | None:
    """(the parent table's distinct ids, the positions of ``values`` among them) as ``parent_positions`` kept
    them, or None."""
    kept = t.lookups.get(f"parent:{values.name}")
    return kept[1:3] if kept is not None and kept[0] is values.array else None


def _link(t: RawTable, frame: pd.DataFrame, date_col: str, patients, episodes, p: Problems) -> pd.DataFrame:
    """Check the patient and episode of each session or score row; assign episodes from onsets."""
    if patients is not None:
        _parent(t, frame, "patient_id", *patients, "patient", p)
    if episodes is None:
        frame["episode_id"] = frame["episode_id"].where(frame["episode_id"].notna(), frame["patient_id"])
        return frame
    known, valid, lost, owners = episodes
    given = frame["episode_id"].notna().to_numpy()
    broken, at_known, distinct = _parent(t, frame, "episode_id", known, valid.index, "episode", p)
    if valid.index.hasnans:
        at = index_of(frame["episode_id"], valid.index)  # row of each row's episode among the valid ones
    else:  # every valid id is a known id: look up the distinct ids only, not every row again
        at = (small_codes(at_known, len(valid)) if same_text(distinct, valid.index) else  # (the same ids, in order)
              np.take(small_codes(np.r_[index_of(distinct, valid.index), -1], len(valid)), at_known))  # (int32 or smaller)
    rows = _kept_positions(t, frame["patient_id"]) if owners is not None else None
    codes = (rows[1], owners[1]) if rows is not None and rows[0].equals(owners[0]) else None  # the same ids
    wrong = given & ~broken & _other_patient(frame["patient_id"], valid["patient_id"], at, codes)
    t.flag(p, wrong, "episode_id", "unknown_episode", "episode belongs to another patient",
           "an episode of this patient", values=frame["episode_id"])
    if _assign_episodes(t, frame, valid, lost, date_col, p):
        at = index_of(frame["episode_id"], valid.index)
    ordered = len(at) and at.min() >= 0 and (at[1:] >= at[:-1]).all()  # rows in the episodes' order: codes in order
    t.codes["episode_id"] = (at if ordered else in_order_seen(at, len(valid)), len(valid))  # for same-day visits
    t.lookups["episode_id"] = at  # for the Study
    onsets = np.r_[valid["onset_date"].to_numpy("datetime64[ns]"), np.datetime64("NaT", "ns")]
    before = frame[date_col].to_numpy("datetime64[ns]") < np.take(onsets, at)  # at -1 picks NaT: never before
    t.flag(p, before & given, date_col, "date_before_onset", "date is before the episode's onset_date",
           "a date on or after the onset")
    return frame


def _leading_zero(values: pd.Series, t: RawTable | None = None) -> bool:
    """Whether some value of ``values`` (as text) begins with "0" (among its distinct values when the raw table
    ``t`` knows them); True when unsure (not an Arrow text column)."""
    if not (pd.api.types.is_string_dtype(values) and values.dtype != object):
        return True
    coded = t.known_distinct(values) if t is not None else None
    arr = pa.array((values if coded is None else coded[1]).array)
    return bool(pc.any(pc.starts_with(arr, "0")).as_py())


def leading_zero_note(clean: dict, col: str, raw: dict | None = None) -> str | None:
    """A sentence when ids of ``col`` differ only by leading zeros (``001`` and ``1``), which are different
    ids here: usually one file was saved by a program that drops them. ``raw`` (optional): the raw tables,
    whose known distinct ids are then looked at instead of every row.

    Examples
    --------
    >>> import pandas as pd
    >>> leading_zero_note({"patients": pd.DataFrame({"patient_id": ["001", "002"]}),
    ...                    "scores": pd.DataFrame({"patient_id": ["1", "002"]})}, "patient_id")[:73]
    "patient_id: 1 id(s) are written with and without leading zeros, such as '"
    """
    if not any(_leading_zero(frame[col], (raw or {}).get(name)) for name, frame in clean.items() if col in frame):
        return None  # no id written with a leading zero (checked without hashing the ids)
    parts = [pd.DataFrame({"table": name, "id": pd.unique(frame[col].dropna().astype("str"))})
             for name, frame in clean.items() if col in frame]
    ids = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["table", "id"])
    zero = ids["id"].str.startswith("0").to_numpy(bool, na_value=False)
    if not zero.any():  # only an id written with a leading zero can have another spelling
        return None
    bare = pd.Series(ids["id"].to_numpy()[zero], dtype="str").str.replace(r"^0+(.)", r"\1", regex=True)
    ids = ids[zero | member(ids["id"], bare)].reset_index(drop=True)  # the ids that can share a key
    ids["key"] = ids["id"].str.replace(r"^0+(.)", r"\1", regex=True)  # leading zeros off, one character kept
    spellings = ids.groupby("key")["id"].transform("nunique")
    near = ids[spellings > 1]
    if not len(near):
        return None
    first = near[near["key"] == near["key"].iat[0]].drop_duplicates("id")
    example = " and ".join(f"{i!r} ({', '.join(near.loc[near['id'] == i, 'table'].unique())})" for i in first["id"])
    return (f"{col}: {near['key'].nunique()} id(s) are written with and without leading zeros, such as {example}; "
            "they are read as different ids: if they are the same, write them the same way in every table")


def link_parents(raw: dict, clean: dict, p: Problems, set_aside: dict) -> tuple:
    """Link the episodes to the patients; returns what :func:`link_rows` links sessions and scores with: the
    patients' ids and the valid ones, and the episodes' ids, valid rows, excluded rows and owners (None for a
    table that is not given)."""
    def bad(name):
        return np.union1d(p.positions(name), set_aside.get(name, []))
    patients = episodes = None
    if "patients" in clean:
        ids = clean["patients"]["patient_id"]
        patients = (pd.Index(ids.dropna(), dtype="str"), _valid_ids(clean["patients"], "patient_id", bad("patients")))
    if "episodes" in clean:
        e = clean["episodes"]
        if patients is not None:
            _parent(raw["episodes"], e, "patient_id", *patients, "patient", p)  # flags only
        b = bad("episodes")
        ok = np.ones(len(e), bool)
        ok[b] = False
        lost = e.iloc[p.positions("episodes")]
        raw["episodes"].lookups["valid_rows"] = np.flatnonzero(ok)
        owners = _kept_positions(raw["episodes"], e["patient_id"]) if patients is not None else None
        valid = e.loc[ok].set_index("episode_id")
        valid.index.hasnans  # noqa: B018 - (found here, once: link_rows may run in two threads)
        episodes = (pd.Index(e["episode_id"].dropna(), dtype="str"), valid, lost,
                    None if owners is None else (owners[0], owners[1][ok]))
    return patients, episodes


def link_rows(raw: dict, clean: dict, name: str, parents: tuple, p: Problems) -> None:
    """Link the rows of the sessions or scores table (``name``) to their patients and episodes, in place:
    ``parents`` as :func:`link_parents` gives them. The tables' links may run in two threads: each reads the
    parents and writes its own table."""
    if name in clean:
        clean[name] = _link(raw[name], clean[name], DATE_COLUMNS[name], *parents, p)


def link_tables(raw: dict, clean: dict, p: Problems, set_aside: dict) -> None:
    """Link sessions and scores to patients and episodes (and episodes to patients), in place."""
    parents = link_parents(raw, clean, p, set_aside)
    for name in ("sessions", "scores"):
        link_rows(raw, clean, name, parents, p)
