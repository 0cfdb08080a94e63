"""Arrow-backed text columns: white space checked in place, where a column's values are, and the codes of
dictionary-encoded ones.

Helpers of reading (:mod:`backpain_outcomes.reading`) that let loading find the distinct values of a text
column without hashing it again (issue 17): :func:`strip_text` strips only a column that needs it (two
bytes read per value); :func:`text_key` tells whether two columns hold the very same Arrow buffers (so that
codes found for one are those of the other); :func:`dictionary_codes` turns the indices of a dictionary
column (as Parquet files store text) into ``pd.factorize`` codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["strip_text", "tidy", "text_key", "chunks_key", "same_text", "dictionary_codes", "BLOCK"]

#: Rows per block of the element-wise steps over a million-row column (here, and in duplicates and the Study's
#: tables): computed block by block, their temporaries stay small, in the processor's cache, and are reused,
#: instead of a fresh million-row array (fresh pages) for each intermediate.
BLOCK = 1 << 16


def strip_text(s: pd.Series) -> pd.Series:
    """An Arrow-backed text column with surrounding white space removed and empty values missing.

    The column is returned as it is when no value is empty or begins or ends with a byte that could be
    white space (ASCII control characters, space, any non-ASCII byte): a check of two bytes per value.
    """
    if not tidy(s):
        st = s.str.strip()
        return st.where(st != "")
    return s


def _chunks(values: pd.Series | pd.Index) -> list:
    """The Arrow arrays of an Arrow-backed column (no copy)."""
    arr = pa.array(values.array)
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]


def _tidy(arr: pa.Array) -> bool:
    """True when no value of an Arrow text array is empty or has a byte that could be white space at an end."""
    if not (pa.types.is_large_string(arr.type) or pa.types.is_string(arr.type)):
        return False
    if not len(arr) or arr.null_count == len(arr):
        return True
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.asarray(np.frombuffer(arr.buffers()[1], width)[arr.offset: arr.offset + len(arr) + 1],
                         dtype=np.int64)  # no copy of the offsets of a large string array
    start, stop = offsets[:-1], offsets[1:]
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        start, stop = start[valid], stop[valid]
    if not (stop > start).all():
        return False
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    first, last = data[start], data[stop - 1]
    return not (((first <= 32) | (first >= 127)).any() or ((last <= 32) | (last >= 127)).any())


def text_key(values) -> tuple | None:
    """Where the values of an Arrow-backed text column are in memory: the type, offset, length and buffer
    addresses of each chunk (None for another column). Two columns with equal keys hold the same values, as
    long as the column the key was taken from is kept alive (its buffers are not freed and reused)."""
    if not (isinstance(values, pd.Series | pd.Index) and pd.api.types.is_string_dtype(values)
            and values.dtype != object):
        return None
    return chunks_key(_chunks(values))


def chunks_key(chunks) -> tuple:
    """The key of :func:`text_key` for a list of Arrow arrays."""
    return tuple((str(c.type), c.offset, len(c), tuple(0 if b is None else b.address for b in c.buffers()))
                 for c in chunks)


def same_text(a, b) -> bool:
    """Whether two Arrow-backed text columns hold the same values in the same order, missing values in the
    same places: their bytes compared, nothing hashed. False when either is not an Arrow-backed text column.

    Linking uses it to skip a hash lookup when a table's distinct ids are its parent table's ids in their
    order, as when both files list patients in the same order.

    Examples
    --------
    >>> import pandas as pd
    >>> same_text(pd.Index(["P1", "P2"], dtype="str"), pd.Series(["P1", "P2"], dtype="str"))
    True
    >>> same_text(pd.Index(["P1", "P2"], dtype="str"), pd.Index(["P2", "P1"], dtype="str"))
    False
    """
    key_a, key_b = text_key(a), text_key(b)
    if len(a) != len(b) or key_a is None or key_b is None:
        return False
    if not len(a) or a is b or key_a == key_b:
        return True
    left, right = (pa.chunked_array(_chunks(v)).cast(pa.large_string()) for v in (a, b))
    return left.equals(right)


def tidy(values: pd.Series | pd.Index) -> bool:
    """True when no value of an Arrow-backed text column is empty or has a byte that could be white space at an
    end (see :func:`strip_text`)."""
    return all(_tidy(c) for c in _chunks(values))


def dictionary_codes(col: pa.ChunkedArray, dictionary: pa.Array) -> tuple[np.ndarray, pd.Index] | None:
    """``pd.factorize`` of a dictionary column from its indices: when its values are distinct, not missing, all
    used and numbered in the order they first appear (None otherwise).

    Two checks are made without hashing when they can be: a dictionary in increasing order (as sorted ids are)
    has distinct values, and indices that count up from 0 (0, 0, 1, 2, 2, ..., as the ids of rows sorted by id
    do) are numbered in the order they first appear."""
    if dictionary.null_count or not (_increasing(dictionary) or len(pc.unique(dictionary)) == len(dictionary)):
        return None
    chunks = [c.indices for c in col.chunks]  # (one chunk: not copied, as combine_chunks would)
    indices = chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, col.type.index_type).combine_chunks()
    if indices.null_count:  # (fill_null copies even an array without nulls)
        indices = indices.fill_null(-1)
    codes = indices.to_numpy()  # Arrow's int32 indices, not copied into numpy
    if not (len(codes) and codes[-1] == len(dictionary) - 1 and _counted_up(codes)):
        few = len(dictionary) < 128  # (Arrow finds the distinct values of 8-bit integers without hashing)
        seen = pc.unique(pa.array(codes.astype(np.int8) if few else codes)).to_numpy()  # in the order first seen
        if not np.array_equal(seen[seen >= 0], np.arange(len(dictionary))):
            return None
    return codes, pd.Index(pd.array(dictionary, dtype="str"))


def _counted_up(codes: np.ndarray) -> bool:
    """Whether the codes go 0, then each the same as the one before or one more (checked in blocks)."""
    if not len(codes) or codes[0] != 0:
        return False
    unsigned = np.dtype(f"u{codes.dtype.itemsize}")
    for s in range(0, len(codes) - 1, BLOCK):
        c = codes[s:s + BLOCK + 1]
        if ((c[1:] - c[:-1]).view(unsigned) > 1).any():  # (a step down is a large unsigned number)
            return False
    return True


def _increasing(values: pa.Array) -> bool:
    """Whether each text is greater than the one before (byte by byte): then no two are equal."""
    return len(values) < 2 or bool(pc.all(pc.less(values.slice(0, len(values) - 1), values.slice(1))).as_py())
