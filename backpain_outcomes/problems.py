"""The problem record: one definition for every stage of loading.

A problem names the input row it is about (``table``, ``source`` = file or
``file[sheet]``, ``row`` = line), the ``column``, the ``value`` as written,
a ``reason`` code, a plain ``message`` and what was ``expected``
(:data:`PROBLEM_COLUMNS`). Each has a kind:

``error``
    The row breaks a rule of the data dictionary. ``errors="raise"`` lists
    every error; ``errors="exclude"`` moves the row to ``study.exclusions``.
``consequence``
    The row is fine but depends on a row that is excluded (a score of a
    patient whose patients row is excluded). Never listed as an error of its
    own (that would be a cascade); excluded together with its cause.
``set_aside``
    Not an error: an exact duplicate or a blank row. Excluded in both modes
    and counted in the flow.
``optional``
    An invalid value in an optional column (an age of 150, a duration of
    ``45 min``). ``errors="raise"`` lists it with the errors;
    ``errors="exclude"`` sets the cell blank and keeps the row (a missing
    age must not cost a patient's outcomes), listing it in
    ``study.blanked_values``.

Rows are collected column-wise (arrays per check), so a million problems
cost a few arrays, not a million objects.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .reading import TABLES

__all__ = ["PROBLEM_COLUMNS", "EXCLUSION_COLUMNS", "ERROR", "CONSEQUENCE", "SET_ASIDE", "OPTIONAL", "Problems",
           "count_by_kind", "relabel_problems"]

#: Columns of a problems table (``DataValidationError.problems``).
PROBLEM_COLUMNS = ["table", "source", "row", "column", "value", "reason", "message", "expected"]
#: Columns of ``study.exclusions``: one row per input row not used.
EXCLUSION_COLUMNS = ["table", "source", "row", "column", "value", "reason", "message"]
ERROR, CONSEQUENCE, SET_ASIDE, OPTIONAL = "error", "consequence", "set_aside", "optional"
_KIND_RANK = {ERROR: 0, OPTIONAL: 1, CONSEQUENCE: 2, SET_ASIDE: 3}
#: The order of the tables' problems of one stage in :meth:`Problems.frame`'s categories: that of the data
#: dictionary's tables (a problem of no table first).
_TABLE_RANK = {name: rank for rank, name in enumerate(TABLES)}


@dataclass
class _Batch:
    """Problems found by one check: scalars shared by the batch, arrays per row."""

    table: str
    source: np.ndarray     # index into Problems.sources, per row
    row: np.ndarray        # float (NaN: the whole file)
    position: np.ndarray   # row of the table as read, -1 when the row is not in it (blank, ragged, file)
    column: str
    value: object          # None (no value), an object array or an Arrow string array, per row
    reason: str
    message: object        # str, or object array per row
    expected: str
    kind: str
    stage: int = 0         # the stage of loading that found them (Problems.stage)

    def take(self, keep: np.ndarray) -> _Batch:
        value = self.value if self.value is None else (
            self.value.filter(pa.array(keep)) if isinstance(self.value, pa.Array) else self.value[keep])
        msg = self.message if isinstance(self.message, str) else self.message[keep]
        return _Batch(self.table, self.source[keep], self.row[keep], self.position[keep], self.column, value,
                      self.reason, msg, self.expected, self.kind, self.stage)


class Problems:
    """Collector shared by the loading stages.

    Files and sheets are registered (:meth:`source_index`) while reading, in one thread; the checks of
    different tables may then add problems from two threads (each table's from one), each thread naming the
    stage of its checks (:meth:`stage`): :meth:`frame` then takes the problems stage by stage and table by
    table, the order in which checks made one after the other find them, whichever thread ends first.
    """

    def __init__(self):
        self._batches: list[_Batch] = []
        self.sources: list[str] = []  # files and sheets in reading order
        self.fatal = False  # a whole file or sheet is refused
        self._stages: dict[int, int] = {}  # the stage of each thread's checks, by thread

    def stage(self, number: int) -> None:
        """The problems this thread adds from now on are found at stage ``number`` of the checks (stages in
        the order they would run one after the other; within a stage, the tables in the order of
        :data:`_TABLE_RANK`)."""
        self._stages[threading.get_ident()] = number

    def source_index(self, source: str) -> int:
        """Index of a file or sheet in :attr:`sources` (added at the end when new)."""
        if source not in self.sources:
            self.sources.append(source)
        return self.sources.index(source)

    def add(self, table: str, source, row, column: str, reason: str, message, expected: str = "",
            value=None, position=None, kind: str = ERROR) -> None:
        """Record problems of many rows at once.

        ``source`` is a file name or an array of indices into :attr:`sources`;
        ``row`` the line of each row; ``value`` None, or the values as written
        (an array, or an Arrow string array); ``message`` one text or one per
        row; ``position`` the row of the table as read.
        """
        row = np.atleast_1d(np.asarray(row, dtype=float))
        n = len(row)
        if n == 0:
            return
        pos = np.full(n, -1, np.int64) if position is None else np.asarray(position, np.int64)
        src = np.full(n, self.source_index(source), np.int64) if isinstance(source, str) else np.asarray(source)
        if value is not None and not isinstance(value, pa.Array):
            value = np.asarray(value, dtype=object)
        msg = message if isinstance(message, str) else np.asarray(message, dtype=object)
        self._batches.append(_Batch(table, src, row, pos, column, value, reason, msg, expected, kind,
                                    self._stages.get(threading.get_ident(), 0)))

    def whole_file(self, table: str, source: str, reason: str, message: str, expected: str = "", value=None,
                   row=None) -> None:
        """A problem that refuses a whole file or sheet (``row`` when a line is to blame)."""
        self.fatal = True
        self.add(table, source, [np.nan if row is None else row], "", reason, message, expected, value=[value])

    def drop(self, table: str, positions: np.ndarray, kinds=(ERROR, CONSEQUENCE, OPTIONAL)) -> None:
        """Forget problems of these rows of ``table`` (rows set aside as exact duplicates)."""
        if not len(positions):
            return
        for i, b in enumerate(self._batches):
            if b.table == table and b.kind in kinds:
                keep = ~np.isin(b.position, positions)
                if not keep.all():
                    self._batches[i] = b.take(keep)

    def any(self, kind: str = ERROR) -> bool:
        """Whether a problem of this kind was found."""
        return any(b.kind == kind and len(b.row) for b in self._batches)

    def positions(self, table: str, kinds=(ERROR, CONSEQUENCE)) -> np.ndarray:
        """Rows of ``table`` (as read) with a problem of these kinds."""
        parts = [b.position for b in self._batches if b.table == table and b.kind in kinds]
        pos = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return np.unique(pos[pos >= 0])

    def frame(self, kinds=(ERROR,), internal: bool = False) -> pd.DataFrame:
        """Problems of these kinds as a table (:data:`PROBLEM_COLUMNS`), by table, file and line.

        ``internal=True`` adds ``_position`` and ``_kind``.
        """
        # Stage by stage, table by table (a stable sort: each table's problems in the order its checks found them):
        # loading checks some tables in a second thread, so the batches of different tables come in any order;
        # this is the order of its checks made one after the other (the order of the categories of the text
        # columns, with which value_counts breaks ties, as in the message of DataValidationError).
        # (Problems found outside the stages, as in reading or by a caller that names none, keep the order they
        # were added in.)
        batches = sorted((b for b in self._batches if b.kind in kinds and len(b.row)),
                         key=lambda b: (b.stage, _TABLE_RANK.get(b.table, -1) if b.stage else 0))
        cols = PROBLEM_COLUMNS + (["_position", "_kind"] if internal else [])
        if not batches:
            out = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
            out["row"] = out["row"].astype("Int64")
            return out
        sizes = np.array([len(b.row) for b in batches])
        which = np.repeat(np.arange(len(batches)), sizes)
        row = np.concatenate([b.row for b in batches])
        source = np.concatenate([b.source for b in batches])
        tables = sorted({b.table for b in batches})
        order = np.lexsort((np.array([_KIND_RANK[b.kind] for b in batches])[which], np.nan_to_num(row, nan=-1.0),
                            source, np.array([tables.index(b.table) for b in batches])[which]))
        def text(attr) -> pd.Categorical:  # one code per problem, each distinct text stored once
            return _categorical([(getattr(b, attr), len(b.row)) for b in batches], order)
        out = pd.DataFrame({
            "table": text("table"),
            "source": pd.Categorical.from_codes(source[order], categories=pd.Index(self.sources, dtype=object)),
            "row": pd.array(row[order], dtype="Float64").astype("Int64"),
            "column": text("column"), "value": _values(batches, order),
            "reason": text("reason"), "message": text("message"), "expected": text("expected")})
        out["source"] = out["source"].cat.remove_unused_categories()
        if internal:
            out["_position"] = np.concatenate([b.position for b in batches])[order]
            out["_kind"] = text("kind")
        return out

    def exclusions(self) -> pd.DataFrame:
        """One row per input row with a problem of any kind (:data:`EXCLUSION_COLUMNS`).

        The reason, column and value are those of the row's first error (else its
        consequence, else why it was set aside); the message joins the distinct
        messages of all its problems with "; ".
        """
        f = self.frame(kinds=(ERROR, CONSEQUENCE, SET_ASIDE), internal=True)
        f = f[f["row"].notna()]
        if not len(f):
            return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else object) for c in EXCLUSION_COLUMNS})
        key = [f["table"].cat.codes.to_numpy(), f["source"].cat.codes.to_numpy(), f["row"].to_numpy("int64")]
        new = np.r_[True, (key[0][1:] != key[0][:-1]) | (key[1][1:] != key[1][:-1]) | (key[2][1:] != key[2][:-1])]
        group = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        rank = np.arange(len(f)) - first[group]
        msgs = f["message"].to_numpy(object)
        seen = [msgs[first]]
        joined = seen[0].copy()
        for r in range(1, int(rank.max()) + 1):
            at = np.flatnonzero(rank == r)
            col = np.full(len(first), None, object)
            col[group[at]] = msgs[at]
            fresh = ~pd.isna(col) & np.all([col != s for s in seen], axis=0)
            joined[fresh] = joined[fresh] + "; " + col[fresh]
            seen.append(col)
        out = pd.DataFrame({c: _objects(f[c].take(first)) for c in EXCLUSION_COLUMNS if c != "message"})
        out["row"] = out["row"].astype("Int64")
        out.insert(EXCLUSION_COLUMNS.index("message"), "message", pd.Series(joined, dtype=object))
        return out


def _categorical(parts: list, order: np.ndarray) -> pd.Categorical:
    """Texts given per batch (one text, or one per row) as a categorical in ``order``."""
    categories: dict[str, int] = {}
    codes = []
    for value, n in parts:
        if isinstance(value, str):
            codes.append(np.full(n, categories.setdefault(value, len(categories)), np.int32))
        else:
            inverse, uniques = pd.factorize(np.asarray(value, dtype=object))
            lookup = np.array([categories.setdefault(u, len(categories)) for u in uniques] + [-1], np.int32)
            codes.append(lookup[inverse])
    return pd.Categorical.from_codes(np.concatenate(codes)[order], categories=pd.Index(list(categories), dtype=object))


def _values(batches: list[_Batch], order: np.ndarray) -> pd.Series:
    """The ``value`` column: Arrow strings when every value is text (no Python object per value), else objects."""
    if all(b.value is None or isinstance(b.value, pa.Array) for b in batches):
        arrays = [pa.nulls(len(b.row), pa.large_string()) if b.value is None else b.value.cast(pa.large_string())
                  for b in batches]
        return pd.Series(pd.array(pa.concat_arrays(arrays).take(pa.array(order)), dtype="str"))
    parts = [np.full(len(b.row), None, object) if b.value is None else
             (b.value.to_numpy(zero_copy_only=False).astype(object) if isinstance(b.value, pa.Array) else b.value)
             for b in batches]
    return pd.Series(np.concatenate(parts)[order], dtype=object)


def _objects(s: pd.Series) -> pd.Series:
    """Text columns as plain objects (each distinct text shared), other columns as they are."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = np.asarray(s.cat.categories, dtype=object)
        return pd.Series(np.append(cats, None)[s.cat.codes.to_numpy()], dtype=object)
    if pd.api.types.is_string_dtype(s) and s.dtype != object:
        return pd.Series(s.to_numpy(dtype=object, na_value=None), dtype=object)
    return s.reset_index(drop=True)


def count_by_kind(problems: pd.DataFrame) -> pd.DataFrame:
    """Problems counted by table, column and reason (most frequent first)."""
    if not len(problems):
        return pd.DataFrame(columns=["table", "column", "reason", "n"])
    counts = problems.groupby(["table", "column", "reason"], sort=False, dropna=False, observed=True).size().rename("n")
    return counts.reset_index().sort_values("n", ascending=False, kind="stable").reset_index(drop=True)


def relabel_problems(frame: pd.DataFrame, names: dict, dedupe: bool = False, derived_only: bool = True) -> pd.DataFrame:
    """Problems of tables split from a foreign layout (a visit export, a REDCap export), named as in that file.

    ``names`` maps ``(table, source, column)`` to the file's own header, and ``("base", source)`` to the file
    a derived source came from. With ``dedupe`` the derived sources are renamed to their file and a cell is
    reported once (a bad date of a visit is one problem, not one per table the row went to); with
    ``derived_only=False`` repeats are dropped whatever their source.
    """
    if not len(frame) or not names:
        return frame
    out = frame.copy()
    table = out["table"].astype(object).to_numpy()
    source = out["source"].astype(object).to_numpy()
    column = out["column"].astype(object).to_numpy()
    new = column.copy()
    for key, header in names.items():
        if key[0] != "base":
            new[(table == key[0]) & (source == key[1]) & (column == key[2])] = header
    out["column"] = pd.Series(new, index=out.index, dtype=object)
    if not dedupe:
        return out
    base = {k[1]: v for k, v in names.items() if k[0] == "base"}
    derived = np.isin(source, list(base)) | np.isin(source, list(base.values())) if derived_only else True
    out["source"] = pd.Series([base.get(s, s) for s in source], index=out.index, dtype=object)
    repeat = out.duplicated(["source", "row", "column", "reason"]).to_numpy() & derived
    return out.loc[~repeat].reset_index(drop=True)
