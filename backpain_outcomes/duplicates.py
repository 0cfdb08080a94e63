"""Exact duplicates and conflicting ids: rows compared on their parsed values, and the integer codes that do it.

The end of the checking stage of loading (see :mod:`backpain_outcomes.validation`, which re-exports these
names). :func:`set_aside_duplicates` compares rows on their *parsed* values (``6`` equals ``6.0``, ``NPRS``
equals ``nrs``) and sets the later copies aside; :func:`conflicting_ids` reports an id on several different
rows once. :func:`value_codes`, :func:`row_keys`, :func:`group_codes` and :func:`in_order_seen` code values,
rows and groups as integers (without hashing where the values allow it); linking and building use them too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .problems import CONSEQUENCE, SET_ASIDE, Problems
from .raw_table import RawTable
from .reading import ITEM_COLUMN
from .text_columns import BLOCK

__all__ = ["set_aside_duplicates", "conflicting_ids", "row_keys", "group_codes", "value_codes", "in_order_seen",
           "repeated_rows", "first_copies", "small_codes", "sorted_order", "keys_increasing", "ordered_keys",
           "DAY_TICKS"]

#: Ticks of a day in each unit of ``datetime64``.
DAY_TICKS = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def value_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """(codes, bound): codes from 0 equal where the values are equal, -1 where missing, all below ``bound``.
    Dates that are whole days are coded by their day and whole numbers by their value (no hashing), other
    values by ``pd.factorize``."""
    day = DAY_TICKS.get(np.datetime_data(values.dtype)[0]) if isinstance(values.dtype, np.dtype) \
        and values.dtype.kind == "M" else None
    if day:
        codes = _day_codes(values.to_numpy().view(np.int64), day)
        if codes is not None:
            return codes, int(codes.max()) + 1
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "f":
        whole = _whole_number_codes(values.to_numpy())
        if whole is not None:
            return whole
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    return codes, len(uniq)


def _day_codes(ticks: np.ndarray, day: int) -> np.ndarray | None:
    """Codes of datetimes (as int64 ticks, NaT the smallest int64) that are all whole days: the day minus the
    first day, -1 for NaT; None when some value has a time of day (or every value is NaT)."""
    nat = ticks == np.iinfo(np.int64).min
    some_nat = bool(nat.any())
    given = ticks[~nat] if some_nat else ticks
    if not len(given) or (given % day).any():
        return None
    codes = ticks // day  # (one new array, then changed in place)
    codes -= int(given.min()) // day
    if some_nat:
        codes[nat] = -1
    return codes


def _whole_number_codes(v: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Codes of floats that are all whole numbers (NaN aside) in a range below 2**31: the value minus the
    smallest (-0.0 equals 0.0, as for ``pd.factorize``); None for any other column."""
    given = ~np.isnan(v)
    every = bool(given.all())
    g = v if every else v[given]
    if not len(g):
        return None
    low, high = g.min(), g.max()  # (NaN or an infinity in g: not finite, refused below)
    if not (np.isfinite(low) and np.isfinite(high)) or high - low >= 2**31:
        return None
    bound = int(high - low) + 1
    codes = np.empty(len(g), small_codes(np.zeros(0), bound).dtype)
    for s in range(0, len(g), BLOCK):  # (block by block: no temporary of a million floats)
        block = g[s:s + BLOCK]
        whole = np.round(block)
        if not (whole == block).all():
            return None
        whole -= low
        codes[s:s + BLOCK] = whole  # (whole numbers from 0 below bound: exact in the codes' type)
    if every:
        return codes, bound
    out = np.full(len(v), -1, codes.dtype)
    out[given] = codes
    return out, bound


def small_codes(codes: np.ndarray, bound: int) -> np.ndarray:
    """``codes`` (from -1, below ``bound``) as the smallest signed integers that hold them (int8 for a few
    values): a million codes of a few values take 1 MB, not 8."""
    for kind in (np.int8, np.int16, np.int32):
        if bound <= np.iinfo(kind).max:
            return codes.astype(kind, copy=False)
    return codes.astype(np.int64, copy=False)


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
            codes = codes.astype(np.int64)  # (a copy, wide enough for the codes of the text added)
            codes[miss] = np.where(rc >= 0, rc + bound, -1)
    return codes


def _distinct_codes(t: RawTable, values: pd.Series) -> tuple | None:
    """(codes, bound) of a column whose ``pd.factorize`` the raw table knows (a text column kept as read)."""
    known = t.known_distinct(values)
    return None if known is None else (known[0], len(known[1]))


def row_keys(columns: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of the columns' codes (mixed radix, renumbered before overflow).
    The key is built block by block of rows (:data:`BLOCK`), each block through every column while it is in
    the processor's cache, instead of a pass over a million keys for each step of each column."""
    key = np.zeros(len(columns[0]) if columns else 0, np.int64)
    width = 1
    pending: list[tuple[np.ndarray, int]] = []  # (columns not yet folded into the key, with their radixes)
    for c in columns:
        radix = int(c.max(initial=-1)) + 2
        if width * radix >= 2**62:
            _fold(key, pending)
            pending = []
            key, width = pd.factorize(key)[0].astype(np.int64), int(key.max(initial=0)) + 1
        pending.append((c, radix))
        width *= radix
    _fold(key, pending)
    return key


def _fold(key: np.ndarray, columns: list) -> None:
    """``key = (key * radix + code + 1)`` for each ``(codes, radix)`` in turn, in place, block by block."""
    for s in range(0, len(key), BLOCK):
        k = key[s:s + BLOCK]  # (a view: changed in place)
        for c, radix in columns:
            k *= radix
            k += c[s:s + BLOCK]
            k += 1


def keys_increasing(columns: list[np.ndarray]) -> bool:
    """Whether the rows' keys (as :func:`row_keys` gives them) come in increasing order, so that no row equals
    another: checked block by block in one small buffer, without a key of every row (False when the keys would
    need renumbering, which needs them all)."""
    radices = [int(c.max(initial=-1)) + 2 for c in columns]
    if not columns or math.prod(radices) >= 2**62:
        return False
    buffer, last = np.empty(min(BLOCK, len(columns[0])), np.int64), -1
    for s in range(0, len(columns[0]), BLOCK):
        k = buffer[:min(BLOCK, len(columns[0]) - s)]
        k[:] = 0
        _fold(k, [(c[s:s + BLOCK], r) for c, r in zip(columns, radices)])
        if k[0] <= last or not (k[1:] > k[:-1]).all():
            return False
        last = int(k[-1])
    return True


def ordered_keys(columns: list[np.ndarray]) -> np.ndarray | None:
    """The rows' keys (:func:`row_keys`) with the columns in the order the rows come (:func:`sorted_order`), or
    None when those keys increase: then no two rows are equal, and no key of every row is made. Equal rows get
    equal keys whatever the order of the columns."""
    columns = [columns[j] for j in sorted_order(columns)]
    return None if keys_increasing(columns) else row_keys(columns)


def sorted_order(columns: list[np.ndarray]) -> list[int]:
    """An order of the columns (their positions) by which the first rows (a block of :data:`BLOCK`) come
    sorted, so that their row keys come in order and need no sort: scores listed by episode, then instrument,
    then date, give keys in order with the columns in that order, not in the order episode, date, instrument.
    Found greedily: each next column is one whose codes never go down between rows equal in the columns before
    (such a column stays so whatever is chosen before it); the given order when no column is."""
    head = [c[:BLOCK] for c in columns]
    same = np.ones(max(len(head[0]) - 1, 0) if head else 0, bool)  # rows equal to the one before, so far
    order, left = [], list(range(len(columns)))
    while left:
        pick = next((j for j in left if not (same & (head[j][1:] < head[j][:-1])).any()), None)
        if pick is None:
            return list(range(len(columns)))
        order.append(pick)
        left.remove(pick)
        same &= head[pick][1:] == head[pick][:-1]
    return order


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


def _equal_neighbours(key: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(the stable order of the keys, None when they already come in order; whether each key in that order
    equals the next): equal keys are neighbours once in order (at least two keys)."""
    order = None if (key[1:] >= key[:-1]).all() else np.argsort(key, kind="stable")
    ordered = key if order is None else key[order]
    return order, ordered[1:] == ordered[:-1]


def repeated_rows(key: np.ndarray) -> np.ndarray:
    """Whether each row's key is also another row's (as ``np.bincount(group)[group] > 1`` of the groups of
    :func:`group_codes`): one stable sort, none when the keys come in order."""
    if len(key) < 2:
        return np.zeros(len(key), bool)
    order, same = _equal_neighbours(key)
    if not same.any():
        return np.zeros(len(key), bool)
    near = np.r_[same, False] | np.r_[False, same]
    if order is None:
        return near
    out = np.zeros(len(key), bool)
    out[order] = near
    return out


def first_copies(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose key an earlier row has, the first row with that key), the rows in order: what
    :func:`group_codes` gives (its groups' first rows), without numbering the groups when no key repeats."""
    if len(key) < 2 or not _equal_neighbours(key)[1].any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    inverse, first_of_key = group_codes(key)
    dup = np.ones(len(key), bool)
    dup[first_of_key] = False  # first_of_key[c]: the first row of group c
    pos = np.flatnonzero(dup)
    return pos, first_of_key[inverse[pos]]


def _where(t: RawTable, pos: np.ndarray, other: np.ndarray) -> np.ndarray:
    """'line N' (or 'file:N' when the other row is in another file) for each pair of rows."""
    same = t.source[pos] == t.source[other]
    lines = t.rows[other].astype(str).astype(object)
    return np.where(same, "line " + lines, t.source[other] + ":" + lines)


def set_aside_duplicates(t: RawTable, clean: pd.DataFrame, p: Problems) -> np.ndarray:
    """Set aside rows whose values equal an earlier row's, compared as parsed; returns their positions.

    Problems found on a duplicate are forgotten (they are those of the first copy).
    """
    cols = [_codes(clean[c], t.data[c] if c in t.data else None, t.codes.get(c) or _distinct_codes(t, clean[c]))
            for c in clean.columns]
    cols += [_codes(t.data[c], None) for c in t.data.columns if ITEM_COLUMN.match(c)]
    key = ordered_keys(cols)
    del cols
    if key is None:  # (the keys increase: no copy)
        return np.zeros(0, np.int64)
    pos, first = first_copies(key)
    if len(pos):
        dup = np.zeros(len(key), bool)
        dup[pos] = True
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
