"""Checking: every value of every row against the data dictionary, and exact duplicates.

The second stage of loading. Each ``validate_<table>`` function parses one
table's columns (ids as text, dates, numbers, vocabulary) into a clean frame
and records a problem for every value that breaks a rule; nothing is
dropped here. :func:`set_aside_duplicates` then compares rows on their
*parsed* values (``6`` equals ``6.0``, ``NPRS`` equals ``nrs``) and
:func:`conflicting_ids` reports an id on several different rows once.

The tables checked are :class:`~backpain_outcomes.raw_table.RawTable` objects
(:mod:`backpain_outcomes.raw_table`); the duplicates and conflicting ids, and the
integer codes of values and rows they use, are in :mod:`backpain_outcomes.duplicates`.
This module re-exports both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .dates import AMBIGUOUS, BAD, parse_dates, parse_distinct
from .duplicates import (
    DAY_TICKS,
    conflicting_ids,
    group_codes,
    in_order_seen,
    row_keys,
    set_aside_duplicates,
    small_codes,
    value_codes,
)
from .instruments import score_odi, score_rmdq
from .problems import ERROR, OPTIONAL, Problems
from .raw_table import RawTable
from .reading import ITEM_COLUMN
from .vocabulary import INSTRUMENTS, MODALITIES, UNTREATED, normalise_instrument, normalise_modality

__all__ = ["RawTable", "validate_patients", "validate_episodes", "validate_sessions", "validate_scores",
           "set_aside_duplicates", "conflicting_ids", "id_text", "numbers", "row_keys", "group_codes", "value_codes",
           "in_order_seen", "MISSING_MARKS", "OPTIONAL_COLUMNS", "blank_missing_marks", "DAY_TICKS"]

#: Values that mark a missing value (compared without case or surrounding spaces).
MISSING_MARKS = frozenset({"na", "n/a", "n.a.", "-", "--", ".", "?", "missing", "none", "null", "nan", "unknown",
                           "not known", "not recorded"})
#: The optional columns of each table where a missing-value mark is a blank (never ``arm``, where "none"
#: says untreated, nor a required column, where a mark stays a missing value).
OPTIONAL_COLUMNS = {"patients": ("age", "sex", "clinic_id"), "episodes": ("onset_date",),
                    "sessions": ("episode_id", "therapist_id", "duration_min"), "scores": ("episode_id",)}

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_SEX = {"f": "female", "female": "female", "w": "female", "woman": "female",
        "m": "male", "male": "male", "man": "male"}


# --------------------------------------------------------------------------------------------- values
def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def id_text(s: pd.Series) -> pd.Series:
    """Identifiers as text (``str`` dtype; "12" and 12.0 are the same id); missing stays missing."""
    if pd.api.types.is_string_dtype(s) and s.dtype != object:
        return s
    codes, uniq = pd.factorize(s.astype(object))
    text = np.array([_text(u) for u in uniq] + [None], dtype=object)
    return pd.Series(text[codes], index=s.index, dtype="str")


def numbers(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as float, present but not a number, a yes/no value). Booleans are not numbers."""
    n = len(s)
    if pd.api.types.is_bool_dtype(s):
        present = s.notna().to_numpy(bool)
        return np.full(n, np.nan), present, present
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan), np.zeros(n, bool), np.zeros(n, bool)
    if pd.api.types.is_string_dtype(s) and s.dtype != object:
        present = s.notna().to_numpy(bool)
        try:  # every value a number: one Arrow cast
            out = pc.cast(pa.array(s), pa.float64()).to_numpy(zero_copy_only=False)
            if not (present & np.isnan(out)).any():  # "nan" written as text is not a number
                return out, np.zeros(n, bool), np.zeros(n, bool)
        except pa.ArrowInvalid:
            pass
        ok = s.str.fullmatch(_NUMBER).to_numpy(dtype=bool, na_value=False)
        out = np.full(n, np.nan)
        out[ok] = s[ok].astype(float).to_numpy()
        return out, present & ~ok, np.zeros(n, bool)
    codes, uniq = pd.factorize(s.astype(object))
    val, flag = np.full(len(uniq) + 1, np.nan), np.zeros(len(uniq) + 1, np.int8)  # 1 not a number, 2 yes/no
    for i, u in enumerate(uniq):
        if isinstance(u, bool | np.bool_):
            flag[i] = 2
        elif isinstance(u, int | float | np.integer | np.floating):
            val[i] = float(u)
        elif isinstance(u, str) and pd.Series([u], dtype="str").str.fullmatch(_NUMBER).iat[0]:
            val[i] = float(u)
        else:
            flag[i] = 1
    return val[codes], flag[codes] > 0, flag[codes] == 2


def _not_a_number(t: RawTable, p: Problems, column: str, bad: np.ndarray, yes_no: np.ndarray, what: str,
                  expected: str, kind: str = ERROR) -> None:
    t.flag(p, bad & ~yes_no, column, "not_a_number", f"{what} is not a number", expected, kind=kind)
    t.flag(p, yes_no, column, "not_a_number", f"{what} is a yes/no value (TRUE/FALSE), not a number", expected,
           kind=kind)


def _number(t: RawTable, p: Problems, col: str, low: float, high: float, what: str) -> np.ndarray:
    """An optional number column: an invalid value is a problem of kind ``optional`` (see problems)."""
    num, bad, yes_no = numbers(t.data[col])
    _not_a_number(t, p, col, bad, yes_no, what, f"a number from {low:g} to {high:g}", kind=OPTIONAL)
    with np.errstate(invalid="ignore"):
        t.flag(p, (num < low) | (num > high), col, "out_of_range", f"{what} is out of range",
               f"a number from {low:g} to {high:g}", kind=OPTIONAL)
    return num


def blank_missing_marks(t: RawTable) -> list[str]:
    """Set the missing-value marks (:data:`MISSING_MARKS`) of the table's optional columns blank, in place;
    one sentence per column where there were some."""
    notes = []
    for col in OPTIONAL_COLUMNS.get(t.name, ()):
        if col not in t.data:
            continue
        hit = _marks(t.data[col], t.known_distinct(t.data[col]))
        if hit.any():
            written = ", ".join(repr(u) for u in pd.unique(t.data[col][hit]))  # in the order first written
            t.data[col] = t.data[col].where(~hit)
            notes.append(f"{t.name}.{col}: {int(hit.sum())} value(s) written {written} read as blank (a mark of "
                         "a missing value)")
    return notes


def _marks(values: pd.Series, distinct: tuple | None = None) -> np.ndarray:
    """Rows holding a missing-value mark (text only; compared stripped, in lower case). ``distinct``:
    ``pd.factorize(values)`` when it is known (the distinct values are compared, then looked up by code)."""
    if distinct is not None and pd.api.types.is_string_dtype(values) and values.dtype != object:
        codes, uniq = distinct
        mark = _is_mark(pa.array(uniq.array)).to_numpy(zero_copy_only=False).astype(bool)
        return np.take(np.r_[mark, False], codes) if mark.any() else np.zeros(len(values), bool)
    if pd.api.types.is_string_dtype(values) and values.dtype != object:
        arr = pa.array(values)
        written = pc.unique(arr)  # the distinct values are compared, then the rows holding a mark found
        marked = _is_mark(written)
        if not pc.any(marked).as_py():
            return np.zeros(len(values), bool)
        hit = pc.is_in(arr, value_set=written.filter(marked))
        return hit.to_numpy(zero_copy_only=False).astype(bool)
    codes, uniq = pd.factorize(values)
    mark = np.array([isinstance(u, str) and u.strip().lower() in MISSING_MARKS for u in uniq] + [False])
    return mark[codes]


def _is_mark(written: pa.Array) -> pa.BooleanArray:
    """Which of the Arrow text values are missing-value marks (compared stripped, in lower case)."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(written))
    return pc.is_in(text, value_set=pa.array(sorted(MISSING_MARKS), text.type))


def _required(t: RawTable, p: Problems, cols) -> None:
    for col in cols:
        t.flag(p, t.data[col].isna().to_numpy(), col, "missing_value", "required value is missing", "a value")


def _dates(t: RawTable, p: Problems, col: str, dayfirst, today, required: bool = True) -> pd.Series:
    """The dates of a column, each distinct value parsed and checked once (as ``parse_dates`` reads them); the
    rows of each problem are found from the codes of the distinct values that have it."""
    values = t.data[col]
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed, status = parse_dates(values, dayfirst=dayfirst)
        codes, bad_u, ambiguous_u = np.arange(len(values)), status.to_numpy() == BAD, status.to_numpy() == AMBIGUOUS
        future_u = (parsed > today).to_numpy()
    else:
        codes, uniq = t.distinct(col)
        ts, st = parse_distinct(uniq, dayfirst)
        # (np.take gathers a million rows about twice as fast as indexing, ts[codes]: benchmarks/RESULTS.md)
        parsed = pd.Series(np.take(ts, codes), index=values.index, dtype="datetime64[ns]", copy=False)  # (a new array)
        bad_u, ambiguous_u = st == BAD, st == AMBIGUOUS
        future_u = (pd.Series(ts, copy=False) > today).to_numpy()  # (pandas compares a today beyond ns range)
        day, bound = value_codes(pd.Series(ts))  # the dates' codes for duplicates: those of the distinct dates
        t.codes[col] = (np.take(small_codes(day, bound), codes), bound)
    _flag_values(t, p, codes, bad_u, col, "bad_date", "not a valid date", "an ISO 8601 date such as 2024-03-25")
    hint = "; pass dayfirst=True or dayfirst=False to load_study" if dayfirst is None else ""
    _flag_values(t, p, codes, ambiguous_u, col, "ambiguous_date",
                 "ambiguous date: day and month order cannot be told" + hint, "an ISO 8601 date such as 2024-03-25")
    if required:
        t.flag(p, values.isna().to_numpy(), col, "missing_value", "required date is missing", "an ISO 8601 date")
    _flag_values(t, p, codes, future_u, col, "date_in_future", f"date is after today ({today.date()})",
                 f"a date on or before {today.date()}")
    return parsed


def _flag_values(t: RawTable, p: Problems, codes: np.ndarray, hit: np.ndarray, col: str, reason: str, message: str,
                 expected: str) -> None:
    """Flag the rows whose value has a problem: ``hit`` says which of the distinct values have it (the last
    entry: a missing value), ``codes`` which value each row holds (-1: missing)."""
    if hit.any():
        t.flag(p, hit[codes], col, reason, message, expected)


def _optional_ids(d: pd.DataFrame, col: str) -> pd.Series:
    return id_text(d[col]) if col in d else pd.Series(np.nan, index=d.index, dtype="str")


# --------------------------------------------------------------------------------------------- tables
def validate_patients(t: RawTable, p: Problems) -> pd.DataFrame:
    """Patients: id required; age 0-120; sex as written (f/m spellings unified); other columns kept."""
    d = t.data
    _required(t, p, ["patient_id"])
    out = pd.DataFrame({"patient_id": id_text(d["patient_id"])})
    out["age"] = _number(t, p, "age", 0, 120, "age") if "age" in d else np.nan
    if "sex" in d:
        out["sex"] = _sex(id_text(d["sex"]))
    else:
        out["sex"] = None
    out["clinic_id"] = _optional_ids(d, "clinic_id")
    for col in d.columns:
        if col not in out:
            out[col] = d[col].to_numpy()
    return out


def _sex(written: pd.Series) -> pd.Series:
    """Sex as written, in lower case, the f/m spellings unified (each spelling read once)."""
    codes, spellings = pd.factorize(written)
    if not len(spellings):
        return written.map(lambda v: None)
    sex = pd.Series(spellings, dtype="str").map(lambda v: _SEX.get(v.lower(), v.lower()))
    return pd.Series(sex.array.take(codes, allow_fill=True), index=written.index)


def validate_episodes(t: RawTable, p: Problems, dayfirst, today) -> pd.DataFrame:
    """Episodes: episode and patient ids required, onset date optional (never in the future)."""
    d = t.data
    _required(t, p, ["episode_id", "patient_id"])
    out = pd.DataFrame({"episode_id": id_text(d["episode_id"]), "patient_id": id_text(d["patient_id"])})
    out["onset_date"] = _dates(t, p, "onset_date", dayfirst, today, required=False)
    out["arm"] = d["arm"].to_numpy(dtype=object) if "arm" in d else None
    return out


def _vocabulary_column(t: RawTable, p: Problems, col: str, normalise, user_map, choices) -> pd.Series:
    """``col`` mapped onto the vocabulary (aliases and the user's map); unknown labels flagged as problems."""
    return _vocabulary_codes(t, p, col, normalise, user_map, choices)[0]


def _vocabulary_codes(t: RawTable, p: Problems, col: str, normalise, user_map, choices):
    """``col`` mapped onto the vocabulary, and each row's position in ``choices`` (-1: missing or another)."""
    codes, labels = t.distinct(col)  # each distinct label mapped once
    names = normalise(pd.Series(labels, dtype=object), user_map).to_numpy(object)
    mapped = pd.Series(_labels_at(names, codes), index=t.data.index, dtype=object, copy=False)  # (a new array)
    _flag_values(t, p, codes, np.r_[pd.isna(names), False], col, f"unknown_{col}",  # (missing is not unknown)
                 f"unknown {col} (map it with {col}_map={{...}})", "one of " + ", ".join(choices))
    position = pd.Index(list(choices), dtype=object).get_indexer(pd.Index(names, dtype=object))
    canonical, distinct = pd.factorize(pd.Series(names, dtype=object))  # equal names, equal codes; -1: None
    canonical = small_codes(np.r_[canonical, -1], len(distinct))  # (a few names: int8 codes, 1 MB a million rows)
    t.codes[col] = (np.take(canonical, codes), len(distinct))  # the rows' codes, grouped as value_codes(mapped) groups them
    return mapped, np.take(small_codes(np.r_[position, -1], len(choices)), codes)  # (int8: 1 MB a million rows)


def _labels_at(names: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``np.r_[names, None][codes]``, an object array (None where a code is -1). A few names are set row by
    mask, which is about twice as fast as gathering a million Python objects; more names are gathered."""
    if len(names) > 8:
        return np.take(np.r_[names, None], codes)
    out = np.empty(len(codes), object)  # (every value None)
    for j, name in enumerate(names):
        out[codes == j] = name
    return out


def validate_sessions(t: RawTable, p: Problems, dayfirst, today, modality_map) -> pd.DataFrame:
    """Sessions: patient, date and a modality of the vocabulary required; duration 0-600 minutes."""
    d = t.data
    _required(t, p, ["patient_id", "modality"])
    out = pd.DataFrame({"patient_id": id_text(d["patient_id"]), "episode_id": _optional_ids(d, "episode_id")})
    out["session_date"] = _dates(t, p, "session_date", dayfirst, today)
    out["modality"], t.lookups["modality"] = _vocabulary_codes(t, p, "modality", normalise_modality, modality_map,
                                                               [*MODALITIES, UNTREATED])
    out["therapist_id"] = _optional_ids(d, "therapist_id")
    out["duration_min"] = _number(t, p, "duration_min", 0, 600, "duration") if "duration_min" in d else np.nan
    return out


def _joined(items: pd.DataFrame) -> pd.Series:
    return items.astype(object).apply(lambda r: ",".join("" if pd.isna(v) else str(v) for v in r), axis=1)


def _item_scores(t: RawTable, p: Problems, inst: pd.Series, options: dict) -> pd.Series:
    """Scores computed from item columns (odi_1..odi_10, rmdq_1..rmdq_24), NaN elsewhere."""
    d = t.data
    out = pd.Series(np.nan, index=d.index)
    raw_score = d["score"] if "score" in d else pd.Series(None, index=d.index, dtype=object)
    for name, n_items in (("odi", 10), ("rmdq", 24)):
        cols = {int(m[2]): c for c in d.columns if (m := ITEM_COLUMN.match(c)) and m[1] == name}
        if not cols:
            continue
        items = pd.DataFrame({i: d[cols[i]].astype(object) if i in cols else None for i in range(1, n_items + 1)},
                             index=d.index)
        rows = ((inst == name) & raw_score.isna() & items.notna().any(axis=1)).to_numpy(bool)
        if not rows.any():
            continue
        if name == "odi":
            parsed = [numbers(items[c]) for c in items.columns]
            num = pd.DataFrame({c: v for c, (v, _, _) in zip(items.columns, parsed)}, index=d.index)
            bad_item = np.any([b for _, b, _ in parsed], axis=0) | ((num < 0) | (num > 5)).any(axis=1).to_numpy()
            t.flag(p, rows & bad_item, "odi items", "out_of_range", "an Oswestry section is not scored 0-5",
                   "each section 0-5 or blank", values=_joined(items))
            sc = score_odi(num, max_missing=options["odi_max_missing"])
            t.flag(p, rows & ~bad_item & sc.isna().to_numpy(), "odi items", "not_scorable",
                   f"more than {options['odi_max_missing']} Oswestry section(s) unanswered",
                   f"at most {options['odi_max_missing']} missing", values=items.notna().sum(axis=1))
        else:
            sc = score_rmdq(items, rescale=options["rmdq_rescale"], max_missing=options["rmdq_max_missing"])
            t.flag(p, rows & sc.isna().to_numpy(), "rmdq items", "not_scorable",
                   "Roland-Morris items missing or not yes/no", "24 yes/no answers", values=items.notna().sum(axis=1))
        out = out.where(~rows, sc)
    return out


def validate_scores(t: RawTable, p: Problems, dayfirst, today, instrument_map, options: dict) -> pd.DataFrame:
    """Scores: patient, date, an instrument of the vocabulary and a score in its range (or its items)."""
    d = t.data
    _required(t, p, ["patient_id", "instrument"])
    out = pd.DataFrame({"patient_id": id_text(d["patient_id"]), "episode_id": _optional_ids(d, "episode_id")})
    out["date"] = _dates(t, p, "date", dayfirst, today)
    inst, code = _vocabulary_codes(t, p, "instrument", normalise_instrument, instrument_map, list(INSTRUMENTS))
    out["instrument"] = inst
    t.lookups["instrument"] = code
    raw = d["score"] if "score" in d else pd.Series(None, index=d.index, dtype=object)
    num, bad, yes_no = numbers(raw)
    with_items = any(ITEM_COLUMN.match(c) for c in d.columns)
    items = _item_scores(t, p, inst, options) if with_items else None
    _not_a_number(t, p, "score", bad, yes_no, "score", "a number")
    # code: -1 where unknown or a rating of change (grc)
    # a row with some items of its instrument was scored from them or flagged by _item_scores; a row whose
    # score and every item are blank has no value at all
    missing = raw.isna().to_numpy(bool)
    if items is not None:
        answered = np.zeros(len(d), bool)
        for j, name in ((2, "odi"), (3, "rmdq")):
            cols = [c for c in d.columns if (m := ITEM_COLUMN.match(c)) and m[1] == name]
            if cols:
                answered |= (code == j) & d[cols].notna().any(axis=1).to_numpy(bool)
        missing = missing & ~(items.notna().to_numpy() | (missing & answered))
    t.flag(p, missing, "score", "missing_value", "score is missing", "a number", values=raw)
    for j, k in enumerate(INSTRUMENTS):  # the scores of each instrument against its range
        _out_of_range(t, p, num, code == j, k, raw)
    if items is not None:
        out["score"] = np.where(np.isnan(num), items.to_numpy(float), num)
    else:  # the parsed numbers themselves when they are a new array of their own (not a view of the file's)
        own = num.flags.writeable and num.flags.owndata
        out["score"] = pd.Series(num if own else num.copy(), index=out.index, copy=False)
    return out


def _out_of_range(t: RawTable, p: Problems, num: np.ndarray, rows: np.ndarray, name: str, raw: pd.Series) -> None:
    """Flag the scores of instrument ``name`` (on ``rows``) outside its range (a missing score is not)."""
    if not rows.any():
        return
    low, high = INSTRUMENTS[name][:2]
    with np.errstate(invalid="ignore"):
        outside = num < low  # (NaN: neither below nor above)
        outside |= num > high
    outside &= rows
    t.flag(p, outside, "score", "out_of_range", f"{name} score is out of range", f"{low:g}-{high:g} for {name}",
           values=raw)
