"""Per-group sufficient statistics of a grouped design, the input of the exact (RE)ML fitter.

:class:`GroupStats` holds :math:`X^TX`, :math:`X^Ty`, :math:`y^Ty` and, per
group g, :math:`Z_g^TZ_g`, :math:`Z_g^TX_g` and :math:`Z_g^Ty_g`: everything the
profiled deviance of :mod:`backpain_outcomes.lmm_fast` depends on (its module
docstring states the mathematics). Statistics of parts of the data are merged
(:class:`StatsAccumulator` as they arrive, or :meth:`GroupStats.merge`) and summed over blocks of groups
(:meth:`GroupStats.blocks`); :func:`singular_columns` checks the rank of the
fixed-effects design from :math:`X^TX`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["BLOCK_GROUPS", "GroupStats", "StatsAccumulator", "singular_columns"]


def singular_columns(XtX: np.ndarray, tol: float = 1e-10) -> list[int]:
    """Columns of a design (given by its cross-product ``X'X``) that are constant zero or linearly dependent.

    Returns the indices of the columns that take part in an (almost) exact
    linear dependence: empty for a design of full rank.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0, 1, 0, 1], [1, 0, 1, 0]])
    >>> singular_columns(X.T @ X)
    [0, 1, 2]
    >>> singular_columns(X[:, :2].T @ X[:, :2])
    []
    """
    d = np.sqrt(np.maximum(np.diag(XtX), 0.0))
    zero = d <= tol * max(d.max(initial=0.0), 1.0)
    scale = np.where(zero, 1.0, d)
    R = XtX / scale[:, None] / scale[None, :]
    vals, vecs = np.linalg.eigh(R)
    null = vecs[:, vals <= tol * max(vals.max(initial=0.0), 1.0)]
    involved = zero | (np.abs(null) > 1e-6).any(axis=1) if null.size else zero
    return [int(i) for i in np.flatnonzero(involved)]


#: Groups per block when the deviance and its derivatives are summed: their temporaries (about 80 numbers
#: a group) then take a few hundred MB however many groups there are.
BLOCK_GROUPS = 200_000


class GroupStats:
    """Sufficient statistics of a grouped design.

    ``zz[a][b]``, ``Zx[a]`` and ``zy[a]`` hold the per-group :math:`Z^TZ`,
    :math:`Z^TX` and :math:`Z^Ty` by random-effect column ``a`` as contiguous
    arrays (``zz[0][1]`` is ``zz[1][0]``: one array), ``size`` the number of rows
    per group, ``groups`` the group labels (as :func:`pandas.factorize` gives
    them: a pandas Index for a Series, so text labels stay Arrow strings, not
    Python objects); ``ZtX`` (G, q, p) is a view of the ``Zx``, and ``ZtZ``
    (G, q, q) and ``Zty`` (G, q) are stacked from ``zz`` and ``zy`` when asked
    for. Nothing per group is held twice. Statistics merged by
    :class:`StatsAccumulator` may hold ``Zx`` packed (its non-zero numbers),
    unpacked for each block of groups (:meth:`blocks`): with p = 15, q = 2
    and one modality per episode, about 150 bytes a group plus the labels.
    """

    def __init__(self, X, Z, y, groups):
        codes, self.groups = pd.factorize(groups)
        G, p, q = len(self.groups), X.shape[1], Z.shape[1]
        self.n, self.p, self.q, self.G = len(y), p, q, G
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        # per-group sums weighted by Z_a: products with a sparse (G x n) indicator matrix per random-effect column
        rows = np.arange(len(y) + 1)
        ind = [sparse.csc_matrix((Z[:, a], codes, rows), shape=(G, len(y))) for a in range(q)]
        self._zx, self._chunks = np.stack([m @ X for m in ind]), None  # (q, G, p)
        self.zy = [m @ y for m in ind]
        self.zz = _symmetric([[ind[a] @ Z[:, b] if b >= a else None for b in range(q)] for a in range(q)])
        self.codes = codes
        self.size = np.bincount(codes, minlength=G)

    @property
    def Zx(self) -> list:
        """Per-group :math:`Z_g^TX_g` by random-effect column: q contiguous (G, p) arrays (unpacked when the
        statistics hold them packed, see :class:`StatsAccumulator`)."""
        return list(self._zx if self._chunks is None else _unpack(self._chunks, 0, self.G, self.q, self.p))

    @property
    def ZtX(self) -> np.ndarray:
        """Per-group :math:`Z_g^TX_g`, (G, q, p): a view of the ``Zx``."""
        return np.stack(self.Zx).transpose(1, 0, 2) if self._chunks is not None else self._zx.transpose(1, 0, 2)

    @property
    def ZtZ(self) -> np.ndarray:
        """Per-group :math:`Z_g^TZ_g`, (G, q, q) (a new array)."""
        return np.stack([np.column_stack(row) for row in self.zz], axis=1)

    @property
    def Zty(self) -> np.ndarray:
        """Per-group :math:`Z_g^Ty_g`, (G, q) (a new array)."""
        return np.column_stack(self.zy)

    def blocks(self, size: int | None = None):
        """The statistics of consecutive blocks of at most ``size`` groups (default :data:`BLOCK_GROUPS`):
        views of the per-group arrays with the totals of all groups; ``self`` when it is one block."""
        size = size or BLOCK_GROUPS
        if self.G <= size and self._chunks is None:
            yield self
            return
        for start in range(0, self.G, size):
            yield self._block(start, min(start + size, self.G))

    def _block(self, start: int, stop: int) -> GroupStats:
        blk = GroupStats.__new__(GroupStats)
        blk.XtX, blk.Xty, blk.yty, blk.n, blk.p, blk.q = self.XtX, self.Xty, self.yty, self.n, self.p, self.q
        blk.G, blk.groups, blk.codes, blk.size = stop - start, self.groups[start:stop], self.codes[:0], \
            self.size[start:stop]
        blk._zx = self._zx[:, start:stop] if self._chunks is None else _unpack(self._chunks, start, stop, self.q,
                                                                               self.p)
        blk._chunks, blk.zy = None, [z[start:stop] for z in self.zy]
        blk.zz = _symmetric([[z[start:stop] if b >= a else None for b, z in enumerate(row)]
                             for a, row in enumerate(self.zz)])
        return blk

    def compact(self) -> dict:
        """The statistics as a few arrays (what :meth:`merge` and :class:`StatsAccumulator` take): ``groups``,
        ``ZtX`` (G, q, p), ``ZtZ`` (G, q, q), ``Zty`` (G, q), ``size`` and the totals ``XtX``, ``Xty``, ``yty``,
        ``n``."""
        return {"groups": self.groups, "ZtX": self.ZtX, "ZtZ": self.ZtZ, "Zty": self.Zty, "size": self.size,
                "XtX": self.XtX, "Xty": self.Xty, "yty": self.yty, "n": self.n}

    @classmethod
    def merge(cls, parts, consume: bool = False) -> GroupStats:
        """The statistics of all rows of several parts (dicts from :meth:`compact`), in the order given.

        Totals are summed; per-group arrays are concatenated, and summed by
        group label where a group has rows in more than one part (see
        :class:`StatsAccumulator`, which this uses). The rows themselves are
        not held: ``codes`` is empty. ``consume=True`` drops each part's
        largest array (``ZtX``) from its dict once it is copied.

        Examples
        --------
        >>> X = np.column_stack([np.ones(6), np.arange(6.0)])
        >>> y, g = np.array([1.0, 3, 2, 5, 4, 6]), np.array([0, 0, 1, 1, 2, 2])
        >>> whole = GroupStats(X, X[:, :1], y, g)
        >>> merged = GroupStats.merge([GroupStats(X[:3], X[:3, :1], y[:3], g[:3]).compact(),
        ...                            GroupStats(X[3:], X[3:, :1], y[3:], g[3:]).compact()])
        >>> bool(np.allclose(merged.ZtX, whole.ZtX) and np.allclose(merged.XtX, whole.XtX)), merged.G
        (True, 3)
        """
        acc = StatsAccumulator(sum(len(part["groups"]) for part in parts))
        for part in parts:
            acc.add(part)
            if consume:
                part["ZtX"] = None
        return acc.stats()


def _symmetric(rows: list) -> list:
    """``rows`` (upper triangle filled) with each lower element the same array as its mirror."""
    return [[rows[b][a] if b < a else rows[a][b] for b in range(len(rows))] for a in range(len(rows))]


#: Z'X of a part is held packed (its non-zero numbers and their columns) when at most this share is non-zero:
#: with p = 15 and one modality per episode about a third is, 100 bytes a group instead of 240.
PACK_DENSITY = 0.5


class StatsAccumulator:
    """Merges the statistics of parts of the data (dicts from :meth:`GroupStats.compact`) as they arrive.

    The driver holds the merged statistics once, plus the part being added,
    never the list of all parts and their concatenation: :math:`Z_g^TZ_g`,
    :math:`Z_g^Ty_g` and the sizes are written into arrays allocated once for
    ``capacity`` groups (grown when more arrive); :math:`Z_g^TX_g` is kept per
    part, packed when mostly zero (:data:`PACK_DENSITY`; factor columns are
    zero for the groups not at that level) and unpacked block by block
    (:meth:`GroupStats.blocks`) to exactly the numbers it held, so the fit is
    the same. Totals are summed in the order the parts are added.
    :meth:`stats` checks the labels: a group with rows in more than one part
    (for example a clinic) has its pieces added up; that is found from a
    64-bit hash per label (equal labels, equal hashes), and only when two
    hashes are equal are the labels themselves factorized.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), np.arange(6.0)])
    >>> y, g = np.array([1.0, 3, 2, 5, 4, 6]), np.array([0, 0, 1, 1, 2, 2])
    >>> acc = StatsAccumulator(capacity=1)  # grows
    >>> for rows in (slice(0, 3), slice(3, 6)):
    ...     _ = acc.add(GroupStats(X[rows], X[rows, :1], y[rows], g[rows]).compact())
    >>> merged = acc.stats()
    >>> merged.G, merged.size.tolist(), bool(np.array_equal(merged.ZtX, GroupStats(X, X[:, :1], y, g).ZtX))
    (3, [2, 2, 2], True)
    """

    def __init__(self, capacity: int = 0):
        self.capacity, self.G = max(int(capacity), 0), 0
        self._labels: list = []
        self._hashes: list = []
        self._chunks: list = []
        self._size: np.ndarray | None = None

    def add(self, part: dict) -> StatsAccumulator:
        """Add one part's statistics; returns the accumulator."""
        m, q, p = len(part["groups"]), part["ZtZ"].shape[1], part["XtX"].shape[0]
        if self._size is None:
            cap = max(self.capacity, m)
            self._zz = _symmetric([[np.empty(cap) if b >= a else None for b in range(q)] for a in range(q)])
            self._zy, self._size = [np.empty(cap) for _ in range(q)], np.empty(cap, int)
            self.XtX, self.Xty, self.yty, self.n, self.q, self.p = (part["XtX"], part["Xty"], float(part["yty"]),
                                                                    int(part["n"]), q, p)
        else:
            self.XtX, self.Xty = self.XtX + part["XtX"], self.Xty + part["Xty"]
            self.yty, self.n = float(self.yty + part["yty"]), self.n + int(part["n"])
        if self.G + m > len(self._size):
            self._resize(max(self.G + m, len(self._size) * 5 // 4))
        rows = slice(self.G, self.G + m)
        for a in range(q):
            self._zy[a][rows] = part["Zty"][:, a]
            for b in range(a, q):
                self._zz[a][b][rows] = part["ZtZ"][:, a, b]
        self._size[rows] = part["size"]
        self._chunks.append((self.G, _pack(part["ZtX"])))
        self._labels.append(part["groups"])
        self._hashes.append(pd.util.hash_pandas_object(pd.Index(part["groups"]), index=False).to_numpy())
        self.G += m
        return self

    def _resize(self, capacity: int) -> None:
        """Per-group arrays of ``capacity`` groups holding the first :attr:`G` (a copy: only when the
        capacity given was too small, or more than needed when the statistics are taken)."""
        def resized(arr):
            out = np.empty(capacity, arr.dtype)
            out[:self.G] = arr[:self.G]
            return out
        self._size, self._zy = resized(self._size), [resized(z) for z in self._zy]
        self._zz = _symmetric([[resized(z) if b >= a else None for b, z in enumerate(row)]
                               for a, row in enumerate(self._zz)])

    def stats(self) -> GroupStats:
        """The merged :class:`GroupStats` (``codes`` empty: the rows are not held); the accumulator is emptied."""
        if self._size is None:
            raise ValueError("no statistics were added")
        if len(self._size) != self.G:
            self._resize(self.G)
        hashes = np.concatenate(self._hashes)
        hashes.sort()
        s = GroupStats.__new__(GroupStats)
        s.XtX, s.Xty, s.yty, s.n, s.q, s.p, s.G = self.XtX, self.Xty, self.yty, self.n, self.q, self.p, self.G
        s._zx, s._chunks, s.zz, s.zy, s.size = None, self._chunks, self._zz, self._zy, self._size
        s.groups, s.codes = _concat_labels(self._labels), np.empty(0, np.intp)
        self._size, self._chunks, self._labels, self._hashes = None, [], [], []
        if (hashes[1:] == hashes[:-1]).any():  # possibly a group in several parts: add up its pieces
            _sum_by_label(s)
        return s


def _pack(ZtX: np.ndarray) -> tuple:
    """One part's Z'X (m, q, p) as ``(m, q, p, values, columns, row starts)`` when at most
    :data:`PACK_DENSITY` of it is non-zero, else ``(m, q, p, dense (m, q * p) copy)``."""
    m, q, p = ZtX.shape
    flat = ZtX.reshape(m, q * p)  # a copy when ZtX is a transposed view
    nonzero = flat != 0
    if nonzero.sum() > PACK_DENSITY * flat.size:
        return (m, q, p, np.array(flat))
    starts = np.zeros(m + 1, np.int64)
    np.cumsum(nonzero.sum(axis=1), out=starts[1:])
    columns = np.nonzero(nonzero)[1].astype(np.uint8 if q * p <= 256 else np.int32)
    return (m, q, p, flat[nonzero], columns, starts.astype(np.int32) if starts[-1] < 2**31 else starts)


def _unpack(chunks: list, start: int, stop: int, q: int, p: int) -> np.ndarray:
    """Groups ``start:stop`` of packed Z'X chunks (``(first group, _pack(...))``), as a (q, n, p) array."""
    out = np.zeros((stop - start, q * p))
    for first, packed in chunks:
        m = packed[0]
        lo, hi = max(start, first), min(stop, first + m)
        if lo >= hi:
            continue
        if len(packed) == 4:
            out[lo - start:hi - start] = packed[3][lo - first:hi - first]
            continue
        values, columns, starts = packed[3:]
        a, b = starts[lo - first], starts[hi - first]
        rows = np.repeat(np.arange(lo - start, hi - start), np.diff(starts[lo - first:hi - first + 1]))
        out[rows, columns[a:b]] = values[a:b]
    return np.ascontiguousarray(out.reshape(stop - start, q, p).transpose(1, 0, 2))


def _concat_labels(chunks: list):
    """The parts' labels end to end: a pandas Index when they are Indexes (Arrow strings stay Arrow
    strings), else an array."""
    if all(isinstance(c, pd.Index) for c in chunks):
        return chunks[0].append(chunks[1:]) if len(chunks) > 1 else chunks[0]
    return np.concatenate([np.asarray(c) for c in chunks])


def _sum_by_label(s: GroupStats) -> None:
    """Add up, in place of ``s``'s per-group arrays, the rows of groups whose label occurs more than once
    (in order of first appearance)."""
    codes, uniq = pd.factorize(s.groups)
    if len(uniq) == len(codes):
        return

    def summed(arr, axis=0):  # as the groups' rows were summed, in the order the parts came
        total = np.zeros(arr.shape[:axis] + (len(uniq),) + arr.shape[axis + 1:], arr.dtype)
        for a in range(arr.shape[0]) if axis else [None]:
            np.add.at(total if a is None else total[a], codes, arr if a is None else arr[a])
        return total
    s._zx, s._chunks = summed(_unpack(s._chunks, 0, s.G, s.q, s.p), axis=1), None
    s.size, s.zy = summed(s.size), [summed(z) for z in s.zy]
    s.zz = _symmetric([[summed(z) if b >= a else None for b, z in enumerate(row)] for a, row in enumerate(s.zz)])
    s.groups, s.G = (uniq if isinstance(s.groups, pd.Index) else np.asarray(uniq)), len(uniq)
