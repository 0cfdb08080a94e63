"""Disclosure control: primary and secondary suppression, and an independent attacker.

The attacker here does not use the ledger's own audit: it reads what a reader
sees (each printed text: a number, "<5" or "suppressed"), the structure of
the tables (which counts add up to which) and the stated relations, and
solves exact integer programmes (scipy.optimize.milp) for the smallest and
largest value of every hidden count.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from backpain_outcomes.disclosure import SUPPRESSED_LABEL, DisclosureLedger
from backpain_outcomes.exceptions import DisclosureError
from backpain_outcomes.redaction import redact_counts


def attack(ledger):
    """Exact integer bounds a reader can prove for every count not printed as a number.

    Returns a DataFrame with key, value (truth), text, low, high, small (truth < min_n).
    """
    n_atoms = sum(f.size for f in ledger.families.values())
    keep = np.concatenate([f.keep for f in ledger.families.values()])
    rows, lo, hi, hidden = [], [], [], []
    for key, cell in ledger.cells.items():
        vec = np.zeros(n_atoms)
        vec[cell.atoms] = 1
        if not cell.shown:
            hidden.append((key, vec, ""))
            continue
        text = ledger.text(key)
        if text == SUPPRESSED_LABEL:
            rows.append(vec), lo.append(ledger.min_n), hi.append(np.inf)
            hidden.append((key, vec, text))
        elif text.startswith("<"):
            rows.append(vec), lo.append(1), hi.append(int(text[1:]) - 1)
            hidden.append((key, vec, text))
        else:
            v = int(text.replace(",", ""))
            rows.append(vec), lo.append(v), hi.append(v)
    for terms, low, high in ledger.relations:
        vec = np.zeros(n_atoms)
        for k, coef in terms.items():
            vec[ledger.cells[k].atoms] += coef
        rows.append(vec), lo.append(low), hi.append(high)
    a = sp.csr_matrix(np.array(rows))
    ub = np.where(keep, np.inf, 0.0)  # structural zeros
    out = []
    for key, vec, text in hidden:
        bounds = []
        for sign in (1, -1):
            res = milp(sign * vec, constraints=[LinearConstraint(a, lo, hi)], integrality=np.ones(n_atoms),
                       bounds=Bounds(0, ub))
            bounds.append(sign * res.fun if res.status == 0 else sign * -np.inf)
        out.append({"key": key, "value": ledger.value(key), "text": text, "low": bounds[0], "high": bounds[1],
                    "small": 0 < ledger.value(key) < ledger.min_n})
    return pd.DataFrame(out, columns=["key", "value", "text", "low", "high", "small"])


def assert_protected(ledger):
    """No hidden count pinned; small ones (printed or implied) keep at least min_width + 1 possible values."""
    bounds = attack(ledger)
    assert (bounds["low"] <= bounds["value"]).all() and (bounds["value"] <= bounds["high"]).all()
    pinned = bounds[((bounds["text"] != "") | bounds["small"]) & (bounds["high"] - bounds["low"] < 1)]
    assert pinned.empty, pinned
    narrow = bounds[bounds["small"] & (bounds["high"] - bounds["low"] < ledger.min_width)]
    assert narrow.empty, narrow
    return bounds


def two_way(counts: pd.DataFrame, min_n=5, totals=True):
    """A ledger for one table with row, column and grand totals."""
    units = counts.stack().rename("n").reset_index()
    units.columns = ["row", "col", "n"]
    units = units.loc[units.index.repeat(units["n"])]
    led = DisclosureLedger(min_n)
    led.add_family("t", units, {"row": list(counts.index), "col": list(counts.columns)})
    for r in counts.index:
        for c in counts.columns:
            led.add_cell(f"{r}/{c}", "t", row=r, col=c)
        if totals:
            led.add_cell(f"{r}/total", "t", row=r)
    if totals:
        for c in counts.columns:
            led.add_cell(f"total/{c}", "t", col=c)
        led.add_cell("total", "t")
    return led.suppress()


def test_total_minus_shown_modalities_cannot_recover_the_hidden_one():
    # issue 12: "the episode count minus the shown modalities"
    counts = pd.DataFrame({"n": [3, 40, 22]}, index=["cupping", "swedish", "untreated"])
    led = two_way(counts)
    assert led.text("cupping/n") == "<5"
    assert led.text("swedish/n") == SUPPRESSED_LABEL or led.text("untreated/n") == SUPPRESSED_LABEL
    assert_protected(led)


def test_row_of_two_small_cells_with_a_known_total():
    # issue 12: "two hidden cells of a row totalling 2 are both 1"
    counts = pd.DataFrame({"acute": [1, 30, 12], "chronic": [1, 25, 9]}, index=["a", "b", "c"])
    led = two_way(counts)
    assert led.text("a/acute") == "<5" and led.text("a/total") == "<5"
    bounds = assert_protected(led)
    assert (bounds.loc[bounds["key"] == "a/acute", "high"] - bounds.loc[bounds["key"] == "a/acute", "low"]).item() >= 2


def test_secondary_cells_are_marked_suppressed_not_small():
    counts = pd.DataFrame({"x": [10, 3, 12], "y": [8, 9, 7]}, index=["r1", "r2", "r3"])
    led = two_way(counts)
    tab = led.table()
    secondary = tab[tab["status"] == "secondary"]
    assert len(secondary) >= 2
    assert (secondary["text"] == SUPPRESSED_LABEL).all() and (secondary["value"] >= 5).all()
    assert (tab.loc[tab["status"] == "primary", "text"] == "<5").all()
    assert_protected(led)


def test_implied_complement_is_protected():
    # 18 responders of 20: the 2 non-responders follow from the printed numbers
    units = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 30, "resp": [1] * 18 + [0] * 2 + [1] * 15 + [0] * 15})
    led = DisclosureLedger(5)
    led.add_family("e", units, {"g": ["a", "b"], "resp": [0, 1]})
    for g in "ab":
        led.add_cell(f"{g}/n", "e", g=g)
        led.add_cell(f"{g}/resp", "e", g=g, resp=1)
        led.add_cell(f"{g}/nonresp", "e", shown=False, g=g, resp=0)
    led.add_cell("resp", "e", resp=1)
    led.add_cell("n", "e")
    led.suppress()
    assert not led.published("a/n", "a/resp")  # so the rate 18/20 is not printed either
    assert_protected(led)


def test_relations_between_families_are_used_by_the_attacker():
    # therapists' caseloads add up to a count printed in another family
    ep = pd.DataFrame({"m": ["x"] * 30 + ["y"] * 12})
    th = pd.DataFrame({"t": ["T1"] * 20 + ["T2"] * 7 + ["T3"] * 3})
    led = DisclosureLedger(5)
    led.add_family("ep", ep, {"m": ["x", "y"]})
    led.add_family("th", th, {"t": ["T1", "T2", "T3"]})
    led.add_cell("x", "ep", m="x")
    led.add_cell("y", "ep", m="y")
    for t in ("T1", "T2", "T3"):
        led.add_cell(t, "th", t=t)
    led.add_cell("th_total", "th", shown=False)
    led.add_relation({"th_total": 1, "x": -1})
    led.suppress()
    assert led.text("T3") == "<5"
    assert SUPPRESSED_LABEL in {led.text("T1"), led.text("T2"), led.text("x")}
    assert_protected(led)


def test_structural_zeros_are_known_to_the_reader():
    units = pd.DataFrame({"fu": ["yes"] * 9 + ["no"] * 3, "m": ["yes"] * 6 + ["no"] * 6})
    led = DisclosureLedger(5)
    with pytest.raises(ValueError, match="impossible"):
        led.add_family("bad", units.assign(m="yes"), {"fu": ["yes", "no"], "m": ["yes", "no"]},
                       zeros=[{"fu": "no", "m": "yes"}])
    led.add_family("e", units, {"fu": ["yes", "no"], "m": ["yes", "no"]}, zeros=[{"fu": "no", "m": "yes"}])
    led.add_cell("fu", "e", fu="yes")
    led.add_cell("m", "e", m="yes")
    led.add_cell("all", "e")
    led.suppress()
    # fu=no is 3 (= all - fu); measured implies followed up, so the 3 are all not measured
    assert led.text("fu") == "9" or led.text("all") != "12"
    assert_protected(led)


@pytest.mark.parametrize("seed", range(12))
def test_random_small_studies_with_modalities_of_one_to_four_episodes(seed):
    rng = np.random.default_rng(seed)
    mods = ["untreated", "cupping", "swedish", "dry_needling", "deep_tissue"]
    sizes = rng.integers(1, 5, size=2).tolist() + rng.integers(5, 40, size=3).tolist()
    units = pd.DataFrame({"m": np.repeat(mods, sizes)})
    units["chr"] = rng.choice(["acute", "chronic"], len(units))
    units["resp"] = rng.choice(["no", "yes"], len(units))
    units["q"] = rng.choice(["Q1", "Q2", "Q3"], len(units))
    led = DisclosureLedger(5)
    led.add_family("e", units, {"m": mods, "chr": ["acute", "chronic"], "resp": ["no", "yes"], "q": ["Q1", "Q2", "Q3"]})
    led.add_cell("all", "e")
    for m in mods:
        led.add_cell(f"{m}/n", "e", m=m)
        led.add_cell(f"{m}/resp", "e", m=m, resp="yes")
        led.add_cell(f"{m}/nonresp", "e", shown=False, m=m, resp="no")
        led.add_cell(f"{m}/chronic", "e", m=m, chr="chronic")
    for q in ("Q1", "Q2", "Q3"):
        led.add_cell(f"{q}/n", "e", q=q)
        led.add_cell(f"{q}/resp", "e", q=q, resp="yes")
    led.suppress()
    bounds = assert_protected(led)
    assert (led.table().query("value > 0 and value < 5 and shown")["text"] == "<5").all()
    assert len(bounds)


def test_ledger_audit_agrees_with_the_independent_attacker():
    counts = pd.DataFrame({"x": [10, 3, 12, 2], "y": [8, 9, 7, 30]}, index=["r1", "r2", "r3", "r4"])
    led = two_way(counts)
    mine = led.audit().set_index("key")
    theirs = attack(led).set_index("key")
    shown = mine.index.intersection(theirs.index)
    np.testing.assert_array_equal(mine.loc[shown, "low"], theirs.loc[shown, "low"])
    np.testing.assert_array_equal(mine.loc[shown, "high"].replace(np.inf, 1e9), theirs.loc[shown, "high"].replace(np.inf, 1e9))


def test_redact_counts():
    led = DisclosureLedger(5)
    units = pd.DataFrame({"g": ["a"] * 17 + ["b"] * 3})
    led.add_family("e", units, {"g": ["a", "b"]})
    led.add_cell("a", "e", g="a")
    led.add_cell("b", "e", g="b")
    led.add_cell("all", "e")
    led.suppress()
    assert led.text("a") == SUPPRESSED_LABEL
    assert redact_counts("only 17 untreated chronic episodes", led) == "only some untreated chronic episodes"
    assert redact_counts("3 of 20 episodes", led) == "fewer than 5 of 20 episodes"
    assert redact_counts("day 42 and 30 sessions", led) == "day 42 and 30 sessions"
    with pytest.raises(ValueError, match="implied"):
        led.add_cell("x", "e", shown=False, g="a")
        led.text("x")


def test_too_few_units_to_protect_is_a_documented_value_error_with_advice():
    # 3 episodes in all: the total itself is under min_n and no other count can hide it (adversarial C2)
    # in three groups: each is at least 1, so the total "<5" is pinned to 3 or 4, and hiding a group's count
    # would leave it unprotected in turn
    units = pd.DataFrame({"group": ["a", "b", "c"]})
    led = DisclosureLedger(min_n=5)
    led.add_family("episodes", units, {"group": ["a", "b", "c"]})
    for g in "abc":
        led.add_cell(g, "episodes", group=g)
    led.add_cell("all", "episodes")
    with pytest.raises(DisclosureError, match=r"cannot protect the count 'a' \(group a; under min_n=5\).*"
                                              r"Report on more episodes") as info:
        led.suppress()
    assert isinstance(info.value, ValueError)  # the CLI reports it as a data error, without a traceback
