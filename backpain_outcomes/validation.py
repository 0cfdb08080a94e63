"""Checking: every value of every row against the data dictionary, and exact duplicates.

The second stage of loading. Each ``validate_<table>`` function parses one
table's columns (ids as text, dates, numbers, vocabulary) into a clean frame
and records a problem for every value that breaks a rule; nothing is
dropped here. :func:`set_aside_duplicates` then compares rows on their
*parsed* values (``6`` equals ``6.0``, ``NPRS`` equals ``nrs``) and
:func:`conflicting_ids` reports an id on several different rows once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .dates import AMBIGUOUS, BAD, parse_dates
from .instruments import score_odi, score_rmdq
from .problems import CONSEQUENCE, ERROR, OPTIONAL, SET_ASIDE, Problems
from .reading import ITEM_COLUMN
from .vocabulary import INSTRUMENTS, MODALITIES, UNTREATED, normalise_instrument, normalise_modality

__all__ = ["RawTable", "validate_patients", "validate_episodes", "validate_sessions", "validate_scores",
           "set_aside_duplicates", "conflicting_ids", "id_text", "numbers", "row_keys", "group_codes", "value_codes",
           "in_order_seen", "MISSING_MARKS", "OPTIONAL_COLUMNS", "blank_missing_marks"]

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


@dataclass
class RawTable:
    """One table as read from all its files: canonical column names, values as written (stripped),
    and the file (an index into ``sources``) and line of every row."""

    name: str
    data: pd.DataFrame
    source_index: np.ndarray
    rows: np.ndarray
    sources: list
    n_read: int = 0  # rows read below the headers, blank and ragged ones included
    #: Column -> (codes, bound) of its values where they come without hashing every row again (as
    #: ``value_codes`` gives them): vocabulary columns coded from their distinct labels at validation, and the
    #: position of each row's episode among the valid episodes at linking.
    codes: dict = field(default_factory=dict)
    #: What checking and linking found for each row, kept for building the Study: ``"instrument"``, the
    #: position of each score's instrument in ``INSTRUMENTS`` (-1: a rating of change, unknown or missing);
    #: ``"modality"``, of each session's modality in ``MODALITIES`` then ``UNTREATED`` (-1: unknown or missing);
    #: ``"episode_id"``, the row of each row's episode among the valid episodes (-1: none); for the episodes
    #: table, ``"valid_rows"``, the rows that are those valid episodes.
    lookups: dict = field(default_factory=dict)
    #: Column -> (its values, ``pd.factorize`` of them), made by :meth:`distinct` (see there).
    factorized: dict = field(default_factory=dict)

    def distinct(self, column: str) -> tuple:
        """``pd.factorize`` of a column, made once and kept while the column holds the same values (a column
        replaced, as ``blank_missing_marks`` replaces one, is factorized again)."""
        values = self.data[column]
        kept = self.factorized.get(column)
        if kept is None or kept[0] is not values.array:
            kept = (values.array, *pd.factorize(values))
            self.factorized[column] = kept
        return kept[1:]

    def files_read(self) -> np.ndarray:
        """The indexes into ``sources`` of the table's files, in the order their rows come (as ``pd.unique`` of
        ``source_index``; the rows of one file come together, so this is usually a count per file)."""
        si = self.source_index
        if len(si) and (si[1:] >= si[:-1]).all():
            return np.flatnonzero(np.bincount(si))
        return pd.unique(si)

    @property
    def source(self) -> np.ndarray:
        """File (or ``file[sheet]``) of every row."""
        return np.array(self.sources, dtype=object)[self.source_index]

    def source_text(self, rows: np.ndarray):
        """File of the rows selected by the mask ``rows``, as an Arrow-backed ``str`` array (built in Arrow; an
        empty selection is an empty object array, as a column of no rows is)."""
        if not rows.any():
            return self.source[rows]
        names = pa.array([str(s) for s in self.sources], pa.large_string())
        return pd.array(pc.take(names, pa.array(self.source_index[rows])), dtype="str")

    def flag(self, p: Problems, mask, column: str, reason: str, message, expected: str = "", values=None,
             kind: str = ERROR) -> None:
        """Record a problem for each row where ``mask`` holds."""
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(idx):
            return
        if values is None:
            values = self.data[column] if column in self.data else None
        val = None if values is None else _pick(values, idx)
        msg = message if isinstance(message, str) else np.asarray(message, dtype=object)[idx]
        p.add(self.name, self.source_index[idx], self.rows[idx], column, reason, msg, expected, value=val,
              position=idx, kind=kind)


def _pick(values, idx: np.ndarray):
    """The values of some rows: an Arrow array for text columns (no Python object per value)."""
    if isinstance(values, pd.Series | pd.Index):
        sub = values.take(idx)
        if pd.api.types.is_string_dtype(sub) and sub.dtype != object:
            return pa.array(sub)
        return sub.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)[idx]


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
        hit = _marks(t.data[col])
        if hit.any():
            written = ", ".join(repr(u) for u in pd.unique(t.data[col][hit]))  # in the order first written
            t.data[col] = t.data[col].where(~hit)
            notes.append(f"{t.name}.{col}: {int(hit.sum())} value(s) written {written} read as blank (a mark of "
                         "a missing value)")
    return notes


def _marks(values: pd.Series) -> np.ndarray:
    """Rows holding a missing-value mark (text only; compared stripped, in lower case)."""
    if pd.api.types.is_string_dtype(values) and values.dtype != object:
        arr = pa.array(values)
        distinct = pc.unique(arr)  # the distinct values are compared, then the rows holding a mark found
        text = pc.utf8_lower(pc.utf8_trim_whitespace(distinct))
        marked = pc.is_in(text, value_set=pa.array(sorted(MISSING_MARKS), text.type))
        if not pc.any(marked).as_py():
            return np.zeros(len(values), bool)
        hit = pc.is_in(arr, value_set=distinct.filter(marked))
        return hit.to_numpy(zero_copy_only=False).astype(bool)
    codes, uniq = pd.factorize(values)
    mark = np.array([isinstance(u, str) and u.strip().lower() in MISSING_MARKS for u in uniq] + [False])
    return mark[codes]


def _required(t: RawTable, p: Problems, cols) -> None:
    for col in cols:
        t.flag(p, t.data[col].isna().to_numpy(), col, "missing_value", "required value is missing", "a value")


def _dates(t: RawTable, p: Problems, col: str, dayfirst, today, required: bool = True) -> pd.Series:
    parsed, status = parse_dates(t.data[col], dayfirst=dayfirst, distinct=t.distinct(col))
    status = status.to_numpy()
    t.flag(p, status == BAD, col, "bad_date", "not a valid date", "an ISO 8601 date such as 2024-03-25")
    hint = "; pass dayfirst=True or dayfirst=False to load_study" if dayfirst is None else ""
    t.flag(p, status == AMBIGUOUS, col, "ambiguous_date", "ambiguous date: day and month order cannot be told" + hint,
           "an ISO 8601 date such as 2024-03-25")
    if required:
        t.flag(p, t.data[col].isna().to_numpy(), col, "missing_value", "required date is missing", "an ISO 8601 date")
    t.flag(p, (parsed > today).to_numpy(), col, "date_in_future", f"date is after today ({today.date()})",
           f"a date on or before {today.date()}")
    return parsed


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
    codes, labels = pd.factorize(t.data[col])  # each distinct label mapped once
    names = normalise(pd.Series(labels, dtype=object), user_map).to_numpy(object)
    mapped = pd.Series(np.r_[names, None][codes], index=t.data.index, dtype=object)
    known = np.r_[pd.notna(names), True][codes]  # a missing value is not an unknown label
    t.flag(p, ~known, col, f"unknown_{col}", f"unknown {col} (map it with {col}_map={{...}})",
           "one of " + ", ".join(choices))
    position = pd.Index(list(choices), dtype=object).get_indexer(pd.Index(names, dtype=object))
    canonical, distinct = pd.factorize(pd.Series(names, dtype=object))  # equal names, equal codes; -1: None
    t.codes[col] = (np.r_[canonical, -1][codes], len(distinct))  # the rows' codes, as value_codes(mapped) gives
    return mapped, np.r_[position, -1][codes]


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
    items = _item_scores(t, p, inst, options)
    _not_a_number(t, p, "score", bad, yes_no, "score", "a number")
    # code: -1 where unknown or a rating of change (grc)
    # a row with some items of its instrument was scored from them or flagged by _item_scores; a row whose
    # score and every item are blank has no value at all
    answered = np.zeros(len(d), bool)
    for j, name in ((2, "odi"), (3, "rmdq")):
        cols = [c for c in d.columns if (m := ITEM_COLUMN.match(c)) and m[1] == name]
        if cols:
            answered |= (code == j) & d[cols].notna().any(axis=1).to_numpy(bool)
    missing = raw.isna().to_numpy(bool)
    has_items = items.notna().to_numpy() | (missing & answered)
    t.flag(p, missing & ~has_items, "score", "missing_value", "score is missing", "a number", values=raw)
    bounds = np.array([v[:2] for v in INSTRUMENTS.values()] + [(np.nan, np.nan)], float)
    low, high = bounds[code, 0], bounds[code, 1]  # code -1 picks the NaN row
    with np.errstate(invalid="ignore"):
        oor = ~np.isnan(num) & ((num < low) | (num > high))
    for j, k in enumerate(INSTRUMENTS):
        t.flag(p, oor & (code == j), "score", "out_of_range", f"{k} score is out of range",
               f"{INSTRUMENTS[k][0]:g}-{INSTRUMENTS[k][1]:g} for {k}", values=raw)
    out["score"] = np.where(np.isnan(num), items.to_numpy(float), num)
    return out


# --------------------------------------------------------------------------------------------- duplicates
#: Ticks of a day in each unit of ``datetime64``.
DAY_TICKS = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def value_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """(codes, bound): codes from 0 equal where the values are equal, -1 where missing, all below ``bound``.
    Dates that are whole days are coded by their day and whole numbers by their value (no hashing), other
    values by ``pd.factorize``."""
    day = DAY_TICKS.get(np.datetime_data(values.dtype)[0]) if isinstance(values.dtype, np.dtype) \
        and values.dtype.kind == "M" else None
    if day:
        ticks = values.to_numpy().view(np.int64)
        nat = ticks == np.iinfo(np.int64).min
        given = ticks[~nat]
        if len(given) and not (given % day).any():
            codes = np.where(nat, -1, ticks // day - int(given.min()) // day)
            return codes, int(codes.max()) + 1
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "f":
        whole = _whole_number_codes(values.to_numpy())
        if whole is not None:
            return whole
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    return codes, len(uniq)


def _whole_number_codes(v: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Codes of floats that are all whole numbers (NaN aside) in a range below 2**31: the value minus the
    smallest (-0.0 equals 0.0, as for ``pd.factorize``); None for any other column."""
    given = ~np.isnan(v)
    g = v if given.all() else v[given]
    if not len(g) or not np.isfinite(g).all() or not (g == np.round(g)).all():
        return None
    low, high = g.min(), g.max()
    if high - low >= 2**31:
        return None
    codes = np.full(len(v), -1, np.int64)
    codes[given] = (g - low).astype(np.int64)
    return codes, int(high - low) + 1


def in_order_seen(codes: np.ndarray, bound: int) -> np.ndarray:
    """``codes`` (from 0, -1 for missing, below ``bound``) renumbered in the order they first appear, as
    ``pd.factorize`` numbers them (rows in order then give keys in order, which sort fast)."""
    given = codes >= 0
    first = np.full(bound + 1, len(codes))
    first[np.where(given, codes, bound)[::-1]] = np.arange(len(codes))[::-1]  # the first row of each code
    first[bound] = len(codes)
    rank = np.empty(bound + 1, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(bound + 1)
    return np.where(given, rank[np.maximum(codes, 0)], -1)


def _codes(parsed: pd.Series, raw: pd.Series | None, known: tuple | None = None) -> np.ndarray:
    """Codes equal where the parsed values are equal; where a value did not parse, where the raw text is.
    ``known``: the (codes, bound) of the parsed values, when validation made them."""
    codes, bound = known if known is not None and len(known[0]) == len(parsed) else value_codes(parsed)
    if raw is not None:
        miss = codes < 0
        if miss.any():
            rc, _ = pd.factorize(raw[miss])
            codes = codes.copy()
            codes[miss] = np.where(rc >= 0, rc + bound, -1)
    return codes


def row_keys(columns: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of the columns' codes (mixed radix, renumbered before overflow)."""
    key = np.zeros(len(columns[0]) if columns else 0, np.int64)
    width = 1
    for c in columns:
        radix = int(c.max(initial=-1)) + 2
        if width * radix >= 2**62:
            key, width = pd.factorize(key)[0].astype(np.int64), int(key.max(initial=0)) + 1
        key *= radix  # in place: no temporary arrays of a million keys
        key += c
        key += 1
        width *= radix
    return key


def group_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each row, first row of each group) for the distinct values of ``key``, groups numbered in the
    order of their values, as ``np.unique(key, return_inverse=True, return_index=True)`` gives them. A stable
    sort: fast on rows that come in order, as they usually do."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(key) else np.zeros(0, bool)
    inverse = np.empty(len(key), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return inverse, order[new]


def _where(t: RawTable, pos: np.ndarray, other: np.ndarray) -> np.ndarray:
    """'line N' (or 'file:N' when the other row is in another file) for each pair of rows."""
    same = t.source[pos] == t.source[other]
    lines = t.rows[other].astype(str).astype(object)
    return np.where(same, "line " + lines, t.source[other] + ":" + lines)


def set_aside_duplicates(t: RawTable, clean: pd.DataFrame, p: Problems) -> np.ndarray:
    """Set aside rows whose values equal an earlier row's, compared as parsed; returns their positions.

    Problems found on a duplicate are forgotten (they are those of the first copy).
    """
    cols = [_codes(clean[c], t.data[c] if c in t.data else None, t.codes.get(c)) for c in clean.columns]
    cols += [_codes(t.data[c], None) for c in t.data.columns if ITEM_COLUMN.match(c)]
    key = row_keys(cols)
    inverse, first_of_key = group_codes(key)
    dup = np.ones(len(key), bool)
    dup[first_of_key] = False  # first_of_key[c]: the first row of group c
    pos = np.flatnonzero(dup)
    if len(pos):
        first = first_of_key[inverse[pos]]
        p.drop(t.name, pos)
        msg = np.full(len(key), None, object)
        msg[pos] = "exact duplicate of " + _where(t, pos, first) + " (same values)"
        t.flag(p, dup, "", "duplicate", msg, kind=SET_ASIDE, values=np.full(len(key), None))
    return pos


def conflicting_ids(t: RawTable, ids: pd.Series, what: str, p: Problems, skip: np.ndarray) -> None:
    """An id on several rows with different values: one problem per id (on its second row, naming every
    line), the other rows excluded with it as consequences."""
    live = ids.notna().to_numpy() & ~np.isin(np.arange(len(ids)), skip)
    codes = np.where(live, pd.factorize(ids)[0], -1)
    counts = np.bincount(codes[codes >= 0]) if live.any() else np.zeros(0, int)
    repeated = live & (counts[np.maximum(codes, 0)] > 1 if len(counts) else False)
    if not repeated.any():
        return
    idx = np.flatnonzero(repeated)
    order = idx[np.lexsort((idx, codes[idx]))]
    grp = codes[order]
    start = np.r_[True, grp[1:] != grp[:-1]]
    rank = np.arange(len(order)) - np.flatnonzero(start)[np.cumsum(start) - 1]
    where = pd.Series(t.source[order] + ":" + t.rows[order].astype(str).astype(object)).groupby(
        grp, sort=False).agg(", ".join)
    root = order[rank == 1]
    msg = np.full(len(ids), None, object)
    msg[root] = [f"{what} {ids.iat[i]!r} is on {int(counts[codes[i]])} rows with different values "
                 f"({where[codes[i]]}); each {what.split('_')[0]} must have one row" for i in root]
    mark = np.zeros(len(ids), bool)
    mark[root] = True
    t.flag(p, mark, what, "duplicate_id", msg, f"each {what.split('_')[0]} once", values=ids)
    others = repeated & ~mark
    t.flag(p, others, what, "duplicate_id", f"{what} is on several rows with different values (see its second row)",
           f"each {what.split('_')[0]} once", values=ids, kind=CONSEQUENCE)
