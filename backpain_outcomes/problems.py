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

Rows are collected column-wise (arrays per check), so a million problems
cost a few arrays, not a million objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PROBLEM_COLUMNS", "EXCLUSION_COLUMNS", "ERROR", "CONSEQUENCE", "SET_ASIDE", "Problems",
           "count_by_kind"]

#: Columns of a problems table (``DataValidationError.problems``).
PROBLEM_COLUMNS = ["table", "source", "row", "column", "value", "reason", "message", "expected"]
#: Columns of ``study.exclusions``: one row per input row not used.
EXCLUSION_COLUMNS = ["table", "source", "row", "column", "value", "reason", "message"]
ERROR, CONSEQUENCE, SET_ASIDE = "error", "consequence", "set_aside"
_KIND_RANK = {ERROR: 0, CONSEQUENCE: 1, SET_ASIDE: 2}


@dataclass
class _Batch:
    """Problems found by one check: scalars shared by the batch, arrays per row."""

    table: str
    source: np.ndarray     # object, per row
    row: np.ndarray        # float (NaN: the whole file)
    position: np.ndarray   # row of the table as read, -1 when the row is not in it (blank, ragged, file)
    column: str
    value: np.ndarray      # object, per row
    reason: str
    message: object        # str, or object array per row
    expected: str
    kind: str


class Problems:
    """Collector shared by the loading stages."""

    def __init__(self):
        self._batches: list[_Batch] = []
        self.sources: list[str] = []  # files and sheets in reading order
        self.fatal = False  # a whole file or sheet is refused

    def add(self, table: str, source, row, column: str, reason: str, message, expected: str = "",
            value=None, position=None, kind: str = ERROR) -> None:
        """Record problems of many rows at once.

        ``source``, ``value`` and ``message`` are a scalar or one entry per row;
        ``row`` the line of each; ``position`` the row of the table as read.
        """
        row = np.atleast_1d(np.asarray(row, dtype=float))
        n = len(row)
        if n == 0:
            return
        pos = np.full(n, -1, np.int64) if position is None else np.asarray(position, np.int64)
        src = np.asarray(source, dtype=object) if not isinstance(source, str) else np.full(n, source, object)
        val = np.full(n, value, object) if value is None or np.ndim(value) == 0 else np.asarray(value, dtype=object)
        msg = message if isinstance(message, str) else np.asarray(message, dtype=object)
        self._batches.append(_Batch(table, src, row, pos, column, val, reason, msg, expected, kind))

    def whole_file(self, table: str, source: str, reason: str, message: str, expected: str = "", value=None,
                   row=None) -> None:
        """A problem that refuses a whole file or sheet (``row`` when a line is to blame)."""
        self.fatal = True
        self.add(table, source, [np.nan if row is None else row], "", reason, message, expected, value=[value])

    def drop(self, table: str, positions: np.ndarray, kinds=(ERROR, CONSEQUENCE)) -> None:
        """Forget problems of these rows of ``table`` (rows set aside as exact duplicates)."""
        if not len(positions):
            return
        for i, b in enumerate(self._batches):
            if b.table == table and b.kind in kinds:
                keep = ~np.isin(b.position, positions)
                if not keep.all():
                    msg = b.message if isinstance(b.message, str) else b.message[keep]
                    self._batches[i] = _Batch(b.table, b.source[keep], b.row[keep], b.position[keep], b.column,
                                              b.value[keep], b.reason, msg, b.expected, b.kind)

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
        batches = [b for b in self._batches if b.kind in kinds and len(b.row)]
        cols = PROBLEM_COLUMNS + (["_position", "_kind"] if internal else [])
        if not batches:
            out = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
            out["row"] = out["row"].astype("Int64")
            return out
        sizes = np.array([len(b.row) for b in batches])
        which = np.repeat(np.arange(len(batches)), sizes)

        def scalar(attr):
            return np.array([getattr(b, attr) for b in batches], dtype=object)[which]
        message = scalar("message") if all(isinstance(b.message, str) for b in batches) else np.concatenate(
            [np.full(len(b.row), b.message, object) if isinstance(b.message, str) else b.message for b in batches])
        data = {"table": scalar("table"), "source": np.concatenate([b.source for b in batches]),
                "row": pd.array(np.concatenate([b.row for b in batches]), dtype="Float64").astype("Int64"),
                "column": scalar("column"), "value": np.concatenate([b.value for b in batches]),
                "reason": scalar("reason"), "message": message, "expected": scalar("expected")}
        if internal:
            data["_position"] = np.concatenate([b.position for b in batches])
            data["_kind"] = scalar("kind")
        out = pd.DataFrame(data)
        order = _order(out, np.array([_KIND_RANK[b.kind] for b in batches])[which], self.sources)
        return out.iloc[order].reset_index(drop=True)

    def exclusions(self) -> pd.DataFrame:
        """One row per input row with a problem of any kind (:data:`EXCLUSION_COLUMNS`).

        The reason, column and value are those of the row's first error (else its
        consequence, else why it was set aside); the message joins the distinct
        messages of all its problems with "; ".
        """
        f = self.frame(kinds=(ERROR, CONSEQUENCE, SET_ASIDE), internal=True)
        f = f[f["row"].notna()]
        if not len(f):
            return f[EXCLUSION_COLUMNS].reset_index(drop=True)
        key = [f["table"].to_numpy(), f["source"].to_numpy(), f["row"].to_numpy("int64")]
        new = np.r_[True, (key[0][1:] != key[0][:-1]) | (key[1][1:] != key[1][:-1]) | (key[2][1:] != key[2][:-1])]
        group = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        rank = np.arange(len(f)) - first[group]
        msgs = f["message"].to_numpy(object)
        joined = msgs[first].copy()
        seen = [joined]
        for r in range(1, int(rank.max()) + 1):
            at = np.flatnonzero(rank == r)
            col = np.full(len(first), None, object)
            col[group[at]] = msgs[at]
            fresh = ~pd.isna(col) & np.all([col != s for s in seen], axis=0)
            joined[fresh] = joined[fresh] + "; " + col[fresh]
            seen.append(col)
        out = f.iloc[first][EXCLUSION_COLUMNS].reset_index(drop=True)
        out["message"] = joined
        return out


def _order(frame: pd.DataFrame, kinds: np.ndarray, sources: list[str]) -> np.ndarray:
    """Stable order by table, file (in reading order), line, then kind (errors first)."""
    table = pd.factorize(frame["table"], sort=True)[0]
    source = pd.Index(list(dict.fromkeys(sources))).get_indexer(frame["source"])
    row = frame["row"].to_numpy("float64", na_value=-1.0)
    return np.lexsort((kinds, row, source, table))


def count_by_kind(problems: pd.DataFrame) -> pd.DataFrame:
    """Problems counted by table, column and reason (most frequent first)."""
    if not len(problems):
        return pd.DataFrame(columns=["table", "column", "reason", "n"])
    counts = problems.groupby(["table", "column", "reason"], sort=False, dropna=False).size().rename("n")
    return counts.reset_index().sort_values("n", ascending=False, kind="stable").reset_index(drop=True)
