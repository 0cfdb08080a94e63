"""Statistical disclosure control for reports: a ledger of every published count, suppression, and an attacker.

A report publishes many counts of the same episodes: by modality, by quarter,
with and without follow-up, responders, resolutions. Hiding a small count in
one table is not enough when a reader can subtract it from a total printed
elsewhere. The :class:`DisclosureLedger` therefore holds *every* count of a
report as a sum of *atoms*: the cells of the full cross-classification of
the units by every variable the report tabulates (a *family*). Two counts of
the same family share atoms whenever they share episodes, so every margin,
total and sub-total relation between them is known to the ledger exactly as
it is to a reader. Counts of different families (rows of the input files,
episodes per therapist) are tied by stated linear relations.

Suppression (as statistics offices do):

1. **Primary**: a shown count from 1 to ``min_n - 1`` is printed as
   ``"<min_n"``; a reader then knows it lies in ``[1, min_n - 1]``. Counts
   that are not printed but follow from printed ones (the non-responders of
   a row whose total and responders are printed) are *implied* counts and
   must be protected in the same way.
2. **Secondary**: the ledger plays the attacker. From every published value
   it bounds each suppressed or small implied count by integer linear
   programming (:func:`scipy.optimize.linprog`, with the exact integer
   programme of :func:`scipy.optimize.milp` wherever the linear bound comes
   within 4 of the limit; :mod:`~backpain_outcomes.disclosure_audit`), knowing that a count printed
   as ``"suppressed"`` is at least ``min_n``. While a count is pinned to
   fewer than ``min_width + 1`` values it hides one more published count,
   chosen among those whose constraint binds the bound (the smallest first),
   and audits again.

Zeros stay visible: an empty cell describes nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import check_min_n
from .disclosure_audit import IMPLIED, PRIMARY, PUBLISHED, SECONDARY, audit_counts
from .exceptions import DisclosureError

__all__ = ["DisclosureLedger", "PUBLISHED", "PRIMARY", "SECONDARY", "IMPLIED", "SUPPRESSED_LABEL"]

#: How a count hidden to protect another one is printed.
SUPPRESSED_LABEL = "suppressed"


@dataclass
class _Family:
    name: str
    dims: dict          # dim -> tuple of levels
    offset: int         # first global atom index
    keep: np.ndarray    # bool per atom of the full cross: False for structural zeros
    counts: np.ndarray  # true count per atom of the full cross

    @property
    def size(self) -> int:
        return len(self.counts)


@dataclass
class _Cell:
    key: str
    family: str
    where: dict
    value: int
    shown: bool
    atoms: np.ndarray   # global atom indices
    sensitive: bool = True


class DisclosureLedger:
    """Every count a report publishes, with primary and secondary suppression and an attacker audit.

    Parameters
    ----------
    min_n : int
        Counts from 1 to ``min_n - 1`` are not published.
    min_width : int, optional
        A reader must not narrow a small or suppressed count to an interval
        shorter than this (``hi - lo``); default 2 (at least three possible
        values) when ``min_n >= 4``, else 1. A count hidden only to protect
        others needs width 1 (not pinned to one value).

    Examples
    --------
    >>> import pandas as pd
    >>> units = pd.DataFrame({"group": ["a"] * 3 + ["b"] * 9 + ["c"] * 7})
    >>> led = DisclosureLedger(min_n=5)
    >>> _ = led.add_family("episodes", units, {"group": ["a", "b", "c"]})
    >>> for g in "abc":
    ...     _ = led.add_cell(g, "episodes", group=g)
    >>> _ = led.add_cell("total", "episodes")
    >>> _ = led.suppress()
    >>> [led.text(k) for k in ("a", "b", "c", "total")]
    ['<5', '9', 'suppressed', '19']
    >>> bool(led.audit()["protected"].all())
    True
    """

    def __init__(self, min_n: int = 5, min_width: int | None = None):
        self.min_n = check_min_n(min_n)
        self.min_width = (2 if self.min_n >= 4 else 1) if min_width is None else int(min_width)
        self.families: dict[str, _Family] = {}
        self.cells: dict[str, _Cell] = {}
        self.relations: list[tuple[dict, float, float]] = []
        self.status: dict[str, str] = {}
        self.n_atoms = 0
        self.rounds = 0

    # ------------------------------------------------------------------ building
    def add_family(self, name: str, units: pd.DataFrame, levels: dict, zeros=(), weight: str | None = None) -> _Family:
        """Add a family: ``units`` has one row per unit (episode, input row, ...) and a column per dimension.

        ``levels`` gives every level a reader can know of for each dimension; ``zeros`` lists logically
        impossible combinations (dicts of dimension -> levels), which a reader also knows to be empty.
        ``weight`` names a column of whole-number counts when a row of ``units`` stands for several units.
        """
        dims = {d: tuple(levels[d]) for d in levels}
        shape = tuple(len(v) for v in dims.values()) or (1,)
        codes = []
        for d, lv in dims.items():
            c = pd.Categorical(units[d], categories=list(lv)).codes
            if (c < 0).any():
                bad = sorted(set(map(str, units.loc[c < 0, d])))[:3]
                raise ValueError(f"family {name!r}: values {bad} of {d!r} are not among its levels")
            codes.append(c)
        flat = np.ravel_multi_index(codes, shape) if codes else np.zeros(len(units), int)
        w = None if weight is None else units[weight].to_numpy(np.int64)
        counts = np.bincount(flat, weights=w, minlength=int(np.prod(shape))).astype(np.int64)
        keep = np.ones(len(counts), bool)
        for z in zeros:
            keep &= ~self._mask(dims, shape, z)
        if counts[~keep].any():
            raise ValueError(f"family {name!r}: a combination declared impossible holds units")
        fam = _Family(name, dims, self.n_atoms, keep, counts)
        self.n_atoms += fam.size
        self.families[name] = fam
        return fam

    @staticmethod
    def _mask(dims, shape, where) -> np.ndarray:
        mask = np.ones(shape, bool)
        for axis, (d, lv) in enumerate(dims.items()):
            if d in where:
                want = where[d] if isinstance(where[d], list | tuple | set | frozenset) else [where[d]]
                unknown = set(want) - set(lv)
                if unknown:
                    raise ValueError(f"levels {sorted(map(str, unknown))} are not levels of {d!r}")
                sel = np.isin(np.arange(len(lv)), [lv.index(w) for w in want])
                mask &= sel.reshape([-1 if i == axis else 1 for i in range(len(shape))])
        extra = set(where) - set(dims)
        if extra:
            raise ValueError(f"unknown dimension(s) {sorted(extra)}; dimensions: {list(dims)}")
        return mask.ravel()

    def add_cell(self, key: str, family: str, shown: bool = True, sensitive: bool = True, **where) -> int:
        """Register a count: the units of ``family`` matching ``where`` (dimension = level or list of levels).

        ``shown=False`` registers an *implied* count: not printed, but a reader can work it out (a
        complement, such as the episodes that did not improve); it is protected when small unless
        ``sensitive=False`` (a count registered only to state a relation). Returns the true count.
        """
        if key in self.cells:
            raise ValueError(f"count {key!r} is registered twice")
        fam = self.families[family]
        shape = tuple(len(v) for v in fam.dims.values()) or (1,)
        mask = self._mask(fam.dims, shape, where) & fam.keep
        value = int(fam.counts[mask].sum())
        self.cells[key] = _Cell(key, family, dict(where), value, bool(shown), fam.offset + np.flatnonzero(mask),
                                bool(sensitive))
        self.status[key] = PUBLISHED if shown else IMPLIED
        return value

    def add_relation(self, terms: dict, low: float = 0.0, high: float = 0.0) -> None:
        """State a relation a reader knows: ``low <= sum(coef * count) <= high`` (``terms``: key -> coef)."""
        total = sum(c * self.cells[k].value for k, c in terms.items())
        if not low - 1e-9 <= total <= high + 1e-9:
            raise ValueError(f"relation {terms} does not hold for the data ({total} not in [{low}, {high}])")
        self.relations.append((dict(terms), float(low), float(high)))

    # ------------------------------------------------------------------ reading
    def value(self, key: str) -> int:
        """The true count (for computing, never for printing)."""
        return self.cells[key].value

    def published(self, *keys: str) -> bool:
        """Whether every count in ``keys`` is printed as a number (a statistic built on them may be shown)."""
        return all(self.status[k] == PUBLISHED for k in keys)

    def text(self, key: str, thousands: bool = True) -> str:
        """The count as printed: the number, ``"<min_n"`` or ``"suppressed"``."""
        st = self.status[key]
        if st == PRIMARY:
            return f"<{self.min_n}"
        if st == SECONDARY:
            return SUPPRESSED_LABEL
        if st == IMPLIED:
            raise ValueError(f"{key!r} is an implied count and is never printed")
        return f"{self.value(key):,}" if thousands else str(self.value(key))

    def table(self) -> pd.DataFrame:
        """Every registered count: ``key``, ``family``, ``value``, ``status``, ``shown``, ``text``."""
        rows = [{"key": c.key, "family": c.family, "value": c.value, "status": self.status[c.key], "shown": c.shown,
                 "text": self.text(c.key) if c.shown else ""} for c in self.cells.values()]
        return pd.DataFrame(rows, columns=["key", "family", "value", "status", "shown", "text"])

    # ------------------------------------------------------------------ suppression
    def sensitive(self, key: str) -> bool:
        """Whether ``key`` is a count from 1 to ``min_n - 1`` that must be protected."""
        cell = self.cells[key]
        return cell.sensitive and 0 < cell.value < self.min_n

    def suppress(self, max_rounds: int = 500) -> DisclosureLedger:
        """Primary suppression, then secondary suppression until the audit protects every count.

        Raises
        ------
        DisclosureError
            (a ``ValueError``) when no choice of counts to hide protects a small count, typically when
            all the units together are fewer than ``min_n``; the message advises a larger selection.
        """
        for key, cell in self.cells.items():
            if cell.shown and self.sensitive(key):
                self.status[key] = PRIMARY
        safe: set = set()  # hiding more only widens a reader's bounds: a protected count stays protected
        for self.rounds in range(1, max_rounds + 1):
            audit = audit_counts(self, mode="screen", skip=safe)
            safe |= set(audit.loc[audit["protected"], "key"])
            failing = audit[~audit["protected"]]
            if failing.empty:
                return self
            chosen = set()
            for rec in failing.itertuples():
                pick = self._candidate(rec.key, rec.binding)
                if pick is None:
                    raise DisclosureError(
                        f"disclosure control cannot protect the count {rec.key!r} ({self._why(rec.key)}): even with "
                        f"every other count hidden a reader could work it out. {self.ADVICE}")
                chosen.add(pick)
            for key in chosen:
                self.status[key] = SECONDARY
        raise DisclosureError(f"disclosure control found no safe set of counts to hide in {max_rounds} rounds. "
                              f"{self.ADVICE}")

    #: What to do when no set of hidden counts protects every small one.
    ADVICE = ("Report on more episodes (several clinics, a longer period), or lower min_n only if your data "
              "governance allows it.")

    def _why(self, key: str) -> str:
        cell = self.cells[key]
        what = "every unit" if not cell.where else ", ".join(f"{d} {v}" for d, v in cell.where.items())
        small = 0 < cell.value < self.min_n
        return f"{what}; {'under' if small else 'hidden to protect a count under'} min_n={self.min_n}"

    def _candidate(self, key: str, binding: tuple) -> str | None:
        """The published count to hide next for ``key``: binding constraints first, the smallest first."""
        target = set(self.cells[key].atoms.tolist())

        def ok(k):
            return self.status[k] == PUBLISHED and self.cells[k].shown and self.cells[k].value >= self.min_n and k != key

        def rank(k):
            atoms = set(self.cells[k].atoms.tolist())
            contains = target <= atoms
            return (contains, self.cells[k].value, k)
        pool = [k for k in binding if ok(k)]
        if not pool:
            containing = {k for k, c in self.cells.items() if self.status[k] == PUBLISHED and target <= set(c.atoms.tolist())}
            for terms, _, _ in self.relations:
                if containing & set(terms):
                    containing |= set(terms)
            parents = [set(self.cells[k].atoms.tolist()) for k in containing]
            pool = [k for k, c in self.cells.items() if ok(k) and (
                target & set(c.atoms.tolist()) or any(set(c.atoms.tolist()) <= p for p in parents) or k in containing)]
        return min(pool, key=rank) if pool else None

    # ------------------------------------------------------------------ the attacker
    def audit(self, exact: bool = True) -> pd.DataFrame:
        """The attacker's bounds on every hidden count that must stay hidden
        (:mod:`~backpain_outcomes.disclosure_audit`).

        Returns a DataFrame with ``key``, ``value``, ``status``, ``low``, ``high``
        (the integer interval a reader can prove from everything published),
        ``required`` (smallest allowed ``high - low``) and ``protected``.
        """
        return audit_counts(self, mode="exact" if exact else "linear").drop(columns="binding")
