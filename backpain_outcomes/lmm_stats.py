"""Per-group sufficient statistics of a grouped design, the input of the exact (RE)ML fitter.

:class:`GroupStats` holds :math:`X^TX`, :math:`X^Ty`, :math:`y^Ty` and, per
group g, :math:`Z_g^TZ_g`, :math:`Z_g^TX_g` and :math:`Z_g^Ty_g`: everything the
profiled deviance of :mod:`backpain_outcomes.lmm_fast` depends on (its module
docstring states the mathematics). Statistics of parts of the data are merged
(:meth:`GroupStats.merge`) and summed over blocks of groups
(:meth:`GroupStats.blocks`); :func:`singular_columns` checks the rank of the
fixed-effects design from :math:`X^TX`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["BLOCK_GROUPS", "GroupStats", "singular_columns"]


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
    arrays; ``size`` the number of rows per group.
    """

    def __init__(self, X, Z, y, groups):
        codes, self.groups = pd.factorize(groups)
        G, p, q = len(self.groups), X.shape[1], Z.shape[1]
        self.n, self.p, self.q, self.G = len(y), p, q, G
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        # per-group sums weighted by Z_a: products with a sparse (G x n) indicator matrix per random-effect column
        rows = np.arange(len(y) + 1)
        ind = [sparse.csc_matrix((Z[:, a], codes, rows), shape=(G, len(y))) for a in range(q)]
        zx = np.stack([m @ X for m in ind])  # (q, G, p)
        self.Zx = list(zx)  # (G, p) each, contiguous
        self.zy = [m @ y for m in ind]
        self.zz = [[ind[a] @ Z[:, b] for b in range(q)] for a in range(q)]
        self.ZtX = zx.transpose(1, 0, 2)
        self.ZtZ = np.stack([np.column_stack(row) for row in self.zz], axis=1)
        self.Zty = np.column_stack(self.zy)
        self.codes = codes
        self.size = np.bincount(codes, minlength=G)

    def blocks(self, size: int | None = None):
        """The statistics of consecutive blocks of at most ``size`` groups (default :data:`BLOCK_GROUPS`):
        views of the per-group arrays with the totals of all groups; ``self`` when it is one block."""
        size = size or BLOCK_GROUPS
        if self.G <= size:
            yield self
            return
        for start in range(0, self.G, size):
            yield self._block(start, min(start + size, self.G))

    def _block(self, start: int, stop: int) -> GroupStats:
        blk = GroupStats.__new__(GroupStats)
        blk.XtX, blk.Xty, blk.yty, blk.n, blk.p, blk.q = self.XtX, self.Xty, self.yty, self.n, self.p, self.q
        blk.G, blk.groups, blk.codes, blk.size = stop - start, self.groups[start:stop], self.codes[:0], \
            self.size[start:stop]
        blk.Zx, blk.zy = [z[start:stop] for z in self.Zx], [z[start:stop] for z in self.zy]
        blk.zz = [[z[start:stop] for z in row] for row in self.zz]
        blk.ZtX, blk.ZtZ, blk.Zty = self.ZtX[start:stop], self.ZtZ[start:stop], self.Zty[start:stop]
        return blk

    def compact(self) -> dict:
        """The statistics as a few arrays (what :meth:`merge` takes): ``groups``, ``ZtX`` (G, q, p),
        ``ZtZ`` (G, q, q), ``Zty`` (G, q), ``size`` and the totals ``XtX``, ``Xty``, ``yty``, ``n``."""
        return {"groups": np.asarray(self.groups), "ZtX": self.ZtX, "ZtZ": self.ZtZ,
                "Zty": self.Zty, "size": self.size, "XtX": self.XtX, "Xty": self.Xty, "yty": self.yty, "n": self.n}

    @classmethod
    def merge(cls, parts, consume: bool = False) -> GroupStats:
        """The statistics of all rows of several parts (dicts from :meth:`compact`), in the order given.

        Totals are summed; per-group arrays are concatenated, and summed by
        group label where a group has rows in more than one part. The rows
        themselves are not held: ``codes`` is empty. ``consume=True`` drops
        each part's largest array (``ZtX``) from its dict once it is copied,
        so the merge needs one copy of it, not two.

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
        labels = np.concatenate([part["groups"] for part in parts])
        arrays = {key: np.concatenate([part[key] for part in parts]) for key in ("ZtZ", "Zty", "size")}
        G, q, p = len(labels), parts[0]["ZtZ"].shape[1], parts[0]["XtX"].shape[0]
        qzx = np.empty((q, G, p))  # (q, G, p), as the constructor lays it out, filled without a second copy
        start = 0
        for part in parts:
            qzx[:, start:start + len(part["groups"])] = part["ZtX"].transpose(1, 0, 2)
            start += len(part["groups"])
            if consume:
                part["ZtX"] = None
        codes, uniq = pd.factorize(labels)
        if len(uniq) < len(labels):  # a group split across parts: add its pieces
            for key, arr in arrays.items():
                total = np.zeros((len(uniq), *arr.shape[1:]), arr.dtype)
                np.add.at(total, codes, arr)
                arrays[key] = total
            summed = np.zeros((q, len(uniq), p))
            for a in range(q):
                np.add.at(summed[a], codes, qzx[a])
            qzx, labels = summed, np.asarray(uniq)
        s = cls.__new__(cls)
        s.XtX, s.Xty = sum(part["XtX"] for part in parts), sum(part["Xty"] for part in parts)
        s.yty, s.n = float(sum(part["yty"] for part in parts)), int(sum(part["n"] for part in parts))
        s.ZtZ, s.Zty, s.size = arrays["ZtZ"], arrays["Zty"], arrays["size"]
        s.q, s.G, s.p = qzx.shape
        s.groups, s.codes = labels, np.empty(0, np.intp)
        s.Zx, s.ZtX = list(qzx), qzx.transpose(1, 0, 2)
        s.zy = [np.ascontiguousarray(s.Zty[:, a]) for a in range(s.q)]
        s.zz = [[np.ascontiguousarray(s.ZtZ[:, a, b]) for b in range(s.q)] for a in range(s.q)]
        return s
