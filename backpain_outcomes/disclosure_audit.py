"""The reader of a report as an attacker: the bounds a reader can prove on every hidden count.

A :class:`~backpain_outcomes.disclosure.DisclosureLedger` holds every
published count as a sum of *atoms* (cells of the full cross-classification
of the units of a family). A reader knows, for each printed count, that the
sum of its atoms equals the printed number; for a count printed as
``"<min_n"``, that the sum lies in ``[1, min_n - 1]``; for one printed as
``"suppressed"``, that it is at least ``min_n``; and every stated linear
relation between families. The atoms are non-negative integers. The bounds
on a hidden count are the minimum and maximum of its sum over that
polytope: first by linear programming (:func:`scipy.optimize.linprog`,
HiGHS), whose dual values name the published counts that bind the bound,
then, where the linear bound comes close to the limit, by the exact integer
programme (:func:`scipy.optimize.milp`). Families tied by no relation are
audited separately.

The functions take the ledger and read its public attributes (``families``,
``cells``, ``relations``, ``status``, ``min_n``, ``min_width``, ``n_atoms``
and ``sensitive``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

__all__ = ["PUBLISHED", "PRIMARY", "SECONDARY", "IMPLIED", "audit_counts", "components", "reader_system", "atom_row",
           "targets", "audit_component", "integer_bounds"]

PUBLISHED, PRIMARY, SECONDARY, IMPLIED = "published", "primary", "secondary", "implied"


def components(ledger) -> list[set]:
    """Groups of families tied by stated relations (each is audited on its own)."""
    parent = {f: f for f in ledger.families}

    def find(f):
        while parent[f] != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f
    for terms, _, _ in ledger.relations:
        fams = [ledger.cells[k].family for k in terms]
        for f in fams[1:]:
            parent[find(f)] = find(fams[0])
    groups: dict = {}
    for f in ledger.families:
        groups.setdefault(find(f), set()).add(f)
    return list(groups.values())

def reader_system(ledger, families: set):
    """Variables (atoms of ``families`` not known to be empty), and the reader's constraints on them."""
    live = np.zeros(ledger.n_atoms, bool)
    for name in families:
        fam = ledger.families[name]
        live[fam.offset:fam.offset + fam.size] = fam.keep
    cells = {k: c for k, c in ledger.cells.items() if c.family in families}
    for k, c in cells.items():
        if c.shown and ledger.status[k] == PUBLISHED and c.value == 0:
            live[c.atoms] = False
    index = np.full(ledger.n_atoms, -1)
    index[live] = np.arange(live.sum())
    rows: list = []
    low: list[float] = []
    high: list[float] = []
    names: list[str | None] = []
    for k, c in cells.items():
        st = ledger.status[k]
        if not c.shown or (st == PUBLISHED and c.value == 0):
            continue
        bounds = {PUBLISHED: (c.value, c.value), PRIMARY: (1, ledger.min_n - 1), SECONDARY: (ledger.min_n, np.inf)}[st]
        rows.append(atom_row(c.atoms, index))
        low.append(bounds[0])
        high.append(bounds[1])
        names.append(k)
    for terms, lo, hi in ledger.relations:
        if ledger.cells[next(iter(terms))].family not in families:
            continue
        vec = sum((coef * atom_row(ledger.cells[k].atoms, index) for k, coef in terms.items()),
                  sp.csr_matrix((1, int(live.sum()))))
        rows.append(vec)
        low.append(lo)
        high.append(hi)
        names.append(None)
    a = sp.vstack(rows).tocsr() if rows else sp.csr_matrix((0, int(live.sum())))
    return index, a, np.array(low, float), np.array(high, float), names

def atom_row(atoms, index):
    """The 0/1 row selecting ``atoms`` among the variables (``index``: atom -> variable, -1 when fixed)."""
    cols = index[atoms]
    cols = cols[cols >= 0]
    return sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), int), cols)), shape=(1, int((index >= 0).sum())))

def targets(ledger) -> list[str]:
    """The counts that must stay hidden: suppressed ones, and implied ones that are small."""
    return [k for k, c in ledger.cells.items()
            if (c.shown and ledger.status[k] in (PRIMARY, SECONDARY)) or (not c.shown and ledger.sensitive(k))]

def audit_counts(ledger, mode: str, skip=frozenset()) -> pd.DataFrame:
    """Bounds by linear programming; ``mode="exact"`` also solves the integer programme for every count,
    ``"screen"`` only where the linear bound is within 4 of the limit, ``"linear"`` never."""
    wanted = [k for k in targets(ledger) if k not in skip]
    out = []
    for families in components(ledger):
        mine = [k for k in wanted if ledger.cells[k].family in families]
        if mine:
            out += audit_component(ledger, families, mine, mode)
    return pd.DataFrame(out, columns=["key", "value", "status", "low", "high", "required", "protected", "binding"])

def audit_component(ledger, families, targets, mode) -> list[dict]:
    """Bounds of ``targets`` from the reader's system of one group of families (:func:`audit_counts`)."""
    index, a, lo, hi, names = reader_system(ledger, families)
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
        c = ledger.cells[key]
        obj = atom_row(c.atoms, index).toarray().ravel()
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
        required = ledger.min_width if ledger.sensitive(key) else 1
        close = np.isfinite(high) and high - low < required + 4
        if high - low >= required and (mode == "exact" or (mode == "screen" and close)):
            low, high = integer_bounds(obj, a, lo, hi, n, low, high)
        out.append({"key": key, "value": c.value, "status": ledger.status[key], "low": low, "high": high,
                    "required": required, "protected": bool(high - low >= required),
                    "binding": tuple(sorted(binding))})
    return out

def integer_bounds(obj, a, lo, hi, n, low, high):
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
