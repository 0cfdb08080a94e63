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
   within 4 of the limit), knowing that a count printed
   as ``"suppressed"`` is at least ``min_n``. While a count is pinned to
   fewer than ``min_width + 1`` values it hides one more published count,
   chosen among those whose constraint binds the bound (the smallest first),
   and audits again.

Zeros stay visible: an empty cell describes nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .checks import check_min_n
from .exceptions import DisclosureError

__all__ = ["DisclosureLedger", "PUBLISHED", "PRIMARY", "SECONDARY", "IMPLIED", "SUPPRESSED_LABEL", "redact_counts"]

PUBLISHED, PRIMARY, SECONDARY, IMPLIED = "published", "primary", "secondary", "implied"
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
        self._n_atoms = 0
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
        fam = _Family(name, dims, self._n_atoms, keep, counts)
        self._n_atoms += fam.size
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
    def _sensitive(self, key: str) -> bool:
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
            if cell.shown and self._sensitive(key):
                self.status[key] = PRIMARY
        safe: set = set()  # hiding more only widens a reader's bounds: a protected count stays protected
        for self.rounds in range(1, max_rounds + 1):
            audit = self._audit(mode="screen", skip=safe)
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
    def _components(self) -> list[set]:
        """Groups of families tied by stated relations (each is audited on its own)."""
        parent = {f: f for f in self.families}

        def find(f):
            while parent[f] != f:
                parent[f] = parent[parent[f]]
                f = parent[f]
            return f
        for terms, _, _ in self.relations:
            fams = [self.cells[k].family for k in terms]
            for f in fams[1:]:
                parent[find(f)] = find(fams[0])
        groups: dict = {}
        for f in self.families:
            groups.setdefault(find(f), set()).add(f)
        return list(groups.values())

    def _system(self, families: set):
        """Variables (atoms of ``families`` not known to be empty), and the reader's constraints on them."""
        live = np.zeros(self._n_atoms, bool)
        for name in families:
            fam = self.families[name]
            live[fam.offset:fam.offset + fam.size] = fam.keep
        cells = {k: c for k, c in self.cells.items() if c.family in families}
        for k, c in cells.items():
            if c.shown and self.status[k] == PUBLISHED and c.value == 0:
                live[c.atoms] = False
        index = np.full(self._n_atoms, -1)
        index[live] = np.arange(live.sum())
        rows: list = []
        low: list[float] = []
        high: list[float] = []
        names: list[str | None] = []
        for k, c in cells.items():
            st = self.status[k]
            if not c.shown or (st == PUBLISHED and c.value == 0):
                continue
            bounds = {PUBLISHED: (c.value, c.value), PRIMARY: (1, self.min_n - 1), SECONDARY: (self.min_n, np.inf)}[st]
            rows.append(self._row(c.atoms, index))
            low.append(bounds[0])
            high.append(bounds[1])
            names.append(k)
        for terms, lo, hi in self.relations:
            if self.cells[next(iter(terms))].family not in families:
                continue
            vec = sum((coef * self._row(self.cells[k].atoms, index) for k, coef in terms.items()),
                      sp.csr_matrix((1, int(live.sum()))))
            rows.append(vec)
            low.append(lo)
            high.append(hi)
            names.append(None)
        a = sp.vstack(rows).tocsr() if rows else sp.csr_matrix((0, int(live.sum())))
        return index, a, np.array(low, float), np.array(high, float), names

    @staticmethod
    def _row(atoms, index):
        cols = index[atoms]
        cols = cols[cols >= 0]
        return sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), int), cols)), shape=(1, int((index >= 0).sum())))

    def _targets(self):
        return [k for k, c in self.cells.items()
                if (c.shown and self.status[k] in (PRIMARY, SECONDARY)) or (not c.shown and self._sensitive(k))]

    def audit(self, exact: bool = True) -> pd.DataFrame:
        """The attacker's bounds on every hidden count that must stay hidden.

        Returns a DataFrame with ``key``, ``value``, ``status``, ``low``, ``high``
        (the integer interval a reader can prove from everything published),
        ``required`` (smallest allowed ``high - low``) and ``protected``.
        """
        return self._audit(mode="exact" if exact else "linear").drop(columns="binding")

    def _audit(self, mode: str, skip=frozenset()) -> pd.DataFrame:
        """Bounds by linear programming; ``mode="exact"`` also solves the integer programme for every count,
        ``"screen"`` only where the linear bound is within 4 of the limit, ``"linear"`` never."""
        targets = [k for k in self._targets() if k not in skip]
        out = []
        for families in self._components():
            mine = [k for k in targets if self.cells[k].family in families]
            if mine:
                out += self._audit_component(families, mine, mode)
        return pd.DataFrame(out, columns=["key", "value", "status", "low", "high", "required", "protected", "binding"])

    def _audit_component(self, families, targets, mode) -> list[dict]:
        index, a, lo, hi, names = self._system(families)
        n = a.shape[1]
        eq = lo == hi
        a_eq, b_eq = a[eq], lo[eq]
        up, down = ~eq & np.isfinite(hi), ~eq & (lo > -np.inf)
        a_ub = sp.vstack([a[up], -a[down]]).tocsr()
        b_ub = np.r_[hi[up], -lo[down]]
        eq_names = [nm for nm, e in zip(names, eq) if e]
        ub_names = [nm for nm, u in zip(names, up) if u] + [nm for nm, d in zip(names, down) if d]
        out = []
        for key in targets:
            c = self.cells[key]
            obj = self._row(c.atoms, index).toarray().ravel()
            bounds, binding = [], set()
            for sign in (1.0, -1.0):
                res = linprog(sign * obj, A_ub=a_ub if a_ub.shape[0] else None, b_ub=b_ub if a_ub.shape[0] else None,
                              A_eq=a_eq if a_eq.shape[0] else None, b_eq=b_eq if a_eq.shape[0] else None,
                              bounds=(0, None), method="highs")
                if res.status == 3:      # unbounded above
                    bounds.append(np.inf if sign < 0 else -np.inf)
                    continue
                if res.status != 0:
                    raise RuntimeError(f"disclosure audit: the reader's constraints are infeasible ({res.message})")
                bounds.append(sign * res.fun)
                for group, marg in ((eq_names, res.eqlin), (ub_names, res.ineqlin)):
                    marginals = getattr(marg, "marginals", None) if len(group) else None
                    for nm, m in zip(group, marginals if marginals is not None else []):
                        if nm is not None and abs(m) > 1e-9:
                            binding.add(nm)
            low, high = np.ceil(bounds[0] - 1e-7), np.floor(bounds[1] + 1e-7)
            required = self.min_width if self._sensitive(key) else 1
            close = np.isfinite(high) and high - low < required + 4
            if high - low >= required and (mode == "exact" or (mode == "screen" and close)):
                low, high = self._integer_bounds(obj, a, lo, hi, n, low, high)
            out.append({"key": key, "value": c.value, "status": self.status[key], "low": low, "high": high,
                        "required": required, "protected": bool(high - low >= required),
                        "binding": tuple(sorted(binding))})
        return out

    @staticmethod
    def _integer_bounds(obj, a, lo, hi, n, low, high):
        """Exact integer bounds (the linear-programming ones are only outer bounds)."""
        cons = [LinearConstraint(a, lo, hi)] if a.shape[0] else []
        found = []
        for sign in (1.0, -1.0):
            res = milp(sign * obj, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, np.inf),
                       options={"time_limit": 20})
            if res.status == 0:
                found.append(sign * res.fun)
            else:  # time limit: keep the linear-programming bound (an outer bound)
                found.append(low if sign > 0 else high)
        return float(np.round(found[0])), float(np.round(found[1]))


_COUNT_NOUNS = r"(?:episodes?|episode\(s\)|patients?|patient\(s\)|resolutions?|resolution\(s\)|sessions?|measurements?|" \
               r"measurement\(s\)|responders?|rows?|row\(s\)|visits?|visit\(s\))"
_COUNT = re.compile(r"(?<!fewer than )(?<!at least )(?<!under )(?<![\w.<])"
                    r"(\d[\d,]*)(\s+(?:of\s+(?:the\s+)?\d[\d,]*\s+)?(?:[a-z]+\s+){0,3}?" + _COUNT_NOUNS + r")\b")


def redact_counts(text: str, ledger: DisclosureLedger) -> str:
    """Make a sentence from an analysis safe to print next to the ledger's tables.

    A count (a number followed, within three words, by episodes, patients,
    resolutions, sessions, measurements, responders, rows or visits)
    under ``min_n``, or equal to a count the ledger hides, becomes "a few" /
    "some"; ``"k of n episodes"`` is treated the same way for both numbers.

    Examples
    --------
    >>> led = DisclosureLedger(min_n=5)
    >>> redact_counts("only 3 untreated episodes at risk", led)
    'only fewer than 5 untreated episodes at risk'
    """
    hidden = {c.value for k, c in ledger.cells.items()
              if c.value > 0 and (ledger.status[k] in (PRIMARY, SECONDARY) or (not c.shown and ledger._sensitive(k)))}

    def word(num: str) -> str | None:
        v = int(num.replace(",", ""))
        if 0 < v < ledger.min_n:
            return f"fewer than {ledger.min_n}"
        if v in hidden:
            return "some"
        return None

    def repl(m):
        head, tail = m.group(1), m.group(2)
        if "consecutive" in tail:  # "on 2 consecutive visits" is a rule, not a count
            return m.group(0)
        inner = re.match(r"(\s+of\s+(?:the\s+)?)(\d[\d,]*)(.*)", tail, re.S)
        if inner:
            w2 = word(inner.group(2))
            tail = inner.group(1) + (w2 or inner.group(2)) + inner.group(3)
        w = word(head)
        return (w or head) + tail
    return _COUNT.sub(repl, text)
