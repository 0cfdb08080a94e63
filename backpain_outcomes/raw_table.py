"""The raw table: one table's rows as read from all its files, before checking.

:class:`RawTable` holds the values as written (stripped, under canonical column names), the file and line
of every row, and what checking and linking find about the rows for the later stages; its
:meth:`~RawTable.flag` records a problem for each row of a mask. Split out of
:mod:`backpain_outcomes.validation` (which re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .problems import ERROR, Problems
from .text_columns import text_key

__all__ = ["RawTable"]


@dataclass
class RawTable:
    """One table as read from all its files: canonical column names, values as written (stripped),
    and the file (an index into ``sources``) and line of every row. When every row comes from one file,
    ``source_index`` is a read-only view of that file's index (``np.broadcast_to``: no array of a million
    equal values)."""

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
    #: Column -> (its values, ``pd.factorize`` of them), made by :meth:`distinct` or given by the reader
    #: (:meth:`keep_codes`).
    factorized: dict = field(default_factory=dict)

    def distinct(self, column: str) -> tuple:
        """``pd.factorize`` of a column, made once and kept while the column holds the same values (a column
        replaced, as ``blank_missing_marks`` replaces one, is factorized again)."""
        values = self.data[column]
        kept = self.known_distinct(values, column)
        if kept is None:
            kept = pd.factorize(values)
            self.factorized[column] = (_anchor(values), *kept)
        return kept

    def known_distinct(self, values: pd.Series, column: str | None = None) -> tuple | None:
        """``pd.factorize(values)`` when it is kept for ``column`` (default: ``values.name``) and ``values`` are
        that column's values (the same Arrow buffers, or the same array); None otherwise."""
        kept = self.factorized.get(values.name if column is None else column)
        if kept is None or len(kept[1]) != len(values) or not _same(kept[0], values):
            return None
        return kept[1:]

    def keep_codes(self, codes: dict) -> None:
        """Keep the codes a reader found (column -> ``(key, codes, uniques)``, see ``reading.Part.codes``) for
        the columns whose values are still the ones they were found for."""
        for column, (key, c, u) in codes.items():
            if column in self.data and key is not None and text_key(self.data[column]) == key \
                    and len(c) == len(self.data):
                self.factorized[column] = (_anchor(self.data[column]), c, u)

    def files_read(self) -> np.ndarray:
        """The indexes into ``sources`` of the table's files, in the order their rows come (as ``pd.unique`` of
        ``source_index``; the rows of one file come together, so this is usually a count per file)."""
        si = self.source_index
        if len(si) and si.strides == (0,):  # one file: a read-only view of its index
            return si[:1].copy()
        if len(si) and (si[1:] >= si[:-1]).all():
            return np.flatnonzero(np.bincount(si))
        return pd.unique(si)

    @property
    def source(self) -> np.ndarray:
        """File (or ``file[sheet]``) of every row."""
        return np.array(self.sources, dtype=object)[self.source_index]

    def source_text(self, rows: np.ndarray):
        """File of the rows selected by the mask ``rows``, as an Arrow-backed ``str`` array (an empty selection
        is an empty object array, as a column of no rows is). The rows of one file come one after another: the
        array is made of blocks of the file's name repeated, one block shared by all its chunks
        (see :func:`_repeated`)."""
        if not rows.any():
            return self.source[rows]
        if self.source_index.strides == (0,):  # one file
            return pd.array(_repeated(str(self.sources[self.source_index[0]]), int(rows.sum())), dtype="str")
        at = self.source_index if rows.all() else self.source_index[rows]  # (no copy when every row is selected)
        starts = np.flatnonzero(np.r_[True, at[1:] != at[:-1]])
        if len(starts) <= MAX_RUNS:  # (the files' rows one after another, as they were read)
            ends = np.r_[starts[1:], len(at)]
            chunks = [c for s, e in zip(starts, ends) for c in _repeated(str(self.sources[at[s]]), int(e - s)).chunks]
            return pd.array(pa.chunked_array(chunks, pa.large_string()), dtype="str")
        names = pa.array([str(s) for s in self.sources], pa.large_string())
        return pd.array(pc.take(names, pa.array(at)), dtype="str")

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


#: Rows per chunk of a repeated file name (:func:`_repeated`), and the most runs of one file's rows for which
#: ``RawTable.source_text`` repeats names run by run (more: one Arrow take of every row).
REPEAT_BLOCK, MAX_RUNS = 1 << 16, 256


def _repeated(text: str, n: int) -> pa.ChunkedArray:
    """``n`` times the same text as an Arrow array in chunks of ``REPEAT_BLOCK`` values that all share one
    block's buffers (Arrow arrays do not change): about 1.4 MB for a million rows of a 14-character name
    instead of about 22 MB (a load of a million score rows holds 23 MiB less; ``benchmarks/RESULTS.md``,
    seventh round)."""
    block = pa.repeat(pa.scalar(text, pa.large_string()), min(n, REPEAT_BLOCK))
    full, rest = divmod(n, REPEAT_BLOCK)
    return pa.chunked_array([block] * full + ([block.slice(0, rest)] if rest else []), pa.large_string())


def _anchor(values: pd.Series) -> tuple:
    """What identifies a column's values: its Arrow buffers (with the array, which keeps them alive) for an
    Arrow-backed text column, else the array object itself."""
    return values.array, text_key(values)


def _same(anchor: tuple, values: pd.Series) -> bool:
    return anchor[0] is values.array or (anchor[1] is not None and anchor[1] == text_key(values))


def _pick(values, idx: np.ndarray):
    """The values of some rows: an Arrow array for text columns (no Python object per value)."""
    if isinstance(values, pd.Series | pd.Index):
        sub = values.take(idx)
        if pd.api.types.is_string_dtype(sub) and sub.dtype != object:
            return pa.array(sub)
        return sub.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)[idx]
