"""Notebooks: no hand-typed result in their narrative.

Every number in a markdown cell must come from code (printed, or written as Markdown by a code cell). The scan
removes what is not a result: inline code and LaTeX (parameter values, rule thresholds such as ``nrs<=1 x2``), years,
numbered list items and section numbers, references to another notebook, and the phrases of ``ALLOWED`` (each
with its reason: figures quoted from the literature, definitions). Any digit left is a hand-typed number.

The notebooks are written by scripts/make_notebooks.py; the generator's cells are scanned too, and the committed
notebooks must hold the generator's cells (regenerate with ``python scripts/make_notebooks.py --execute``).
"""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

CODE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$", re.S)
NOT_RESULTS = [
    re.compile(r"\b(?:19|20)\d{2}\b"),  # years (citations: "Croft et al. 1998", "Dunn 2006")
    re.compile(r"^\s*\d+\.\s", re.M),  # numbered list items
    re.compile(r"^#+\s+\d+(?:\.\d+)*\.?\s", re.M),  # section numbers of headings
    re.compile(r"\bnotebooks? \d{2}\b", re.I),  # "notebook 03"
]
#: Names with a digit, in any notebook, with the reason.
NAMES = {"lme4": "name of the R package"}
#: Phrases with numbers that are not results of the package, per notebook, with the reason.
ALLOWED = {
    "03_does_back_pain_resolve_on_its_own.ipynb": {
        "almost 90% of back-pain episodes": "the popular claim under test, quoted (the code tests claimed=0.90)",
        "about 90% stopped consulting by 3 months, 21% had completely recovered":
            "Croft et al. 1998 (BMJ 316:1356-9), published figures, cited",
    },
    "02_recovery_curves_by_modality.ipynb": {
        "(0-100, divided by 10)": "scale of the published curves of Costa et al. 2012 (a definition)",
    },
    "04_trajectory_subgroups.ipynb": {
        "found 5 to 12": "Kongsted et al. 2015, published range of the number of classes, cited",
    },
}


def hand_typed(text: str, allowed=()) -> list[str]:
    """Each number of ``text`` left after removing what is not a result, with its context."""
    text = CODE.sub(" ", text)
    for phrase in allowed:
        text = text.replace(phrase, " ")
    for pattern in NOT_RESULTS:
        text = pattern.sub(" ", text)
    return [text[max(m.start() - 40, 0):m.end() + 40].replace("\n", " ")
            for m in re.finditer(r"\d+(?:[.,]\d+)*%?", text)]


def generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "scripts" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers the notebooks; writes nothing
    return module


def markdown_cells(nb):
    return [(i, cell.source) for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"]


def findings(name, cells) -> list[str]:
    allowed = [*ALLOWED.get(name, {}), *NAMES]
    return [f"{name}, cell {i}: ...{hit}... (`{cell[:60]}`)" for i, cell in cells for hit in hand_typed(cell, allowed)]


def test_the_scan_flags_hand_typed_results_and_nothing_else():
    assert len(hand_typed("27% of untreated episodes resolved by day 42 (95% CI 14%-48%).")) == 5
    assert hand_typed("**500** patients") and hand_typed("a half-life of 11.5 days")
    assert hand_typed("Croft et al. 1998 found 21% recovered") == ["Croft et al.   found 21% recovered"]
    assert hand_typed("Croft et al. 1998; Dunn 2006; see notebook 03.\n1. Export\n## 2. Check") == []
    assert hand_typed("default `rule=\"nrs<=1 x2\"`, $\\tau \\ln 2$, `day=42`") == []
    assert hand_typed("about 90% stopped", ["about 90% stopped"]) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_markdown_holds_no_hand_typed_result(path):
    nb = nbformat.read(path, as_version=4)
    found = findings(path.name, markdown_cells(nb))
    assert not found, "numbers typed by hand (print them from the results instead):\n" + "\n".join(found)


def test_generator_cells_hold_no_hand_typed_result_and_every_allowance_is_used():
    gen = generator()
    assert sorted(gen.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    found, unused = [], []
    for name in gen.NOTEBOOKS:
        cells = markdown_cells(gen.notebook(name))
        found += findings(name, cells)
        unused += [p for p in ALLOWED.get(name, {}) if not any(p in c for _, c in cells)]
    assert not found, "\n".join(found)
    assert not unused, f"allow-list phrases no longer in the notebooks (remove them): {unused}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_hold_the_generators_cells(path):
    expected = [(c.cell_type, c.source) for c in generator().notebook(path.name).cells]
    stored = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    assert stored == expected, f"{path.name} is out of date: run python scripts/make_notebooks.py --execute"
