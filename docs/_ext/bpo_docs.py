"""Build-time helpers for the backpain_outcomes documentation.

Everything that could drift from the package is generated from the package
when the site is built:

* ``notebooks/*.ipynb`` at the repository root are mirrored into
  ``docs/notebooks/`` (ignored by git) so that myst-nb renders them from their
  stored outputs; the repository keeps one copy of each notebook.
* ``docs/api.rst`` (ignored by git) is written from
  ``backpain_outcomes.__all__``: every public name appears, grouped by topic,
  and names that no group claims land in "Other public names".
* The ``bpo-aliases`` and ``bpo-tables`` directives render the accepted
  spellings of instruments, modalities and the untreated status, and the
  required and optional columns of each table, from the package's own
  vocabulary and loader; ``bpo-cli`` renders the command line's help texts
  from its parser.
* Every page and every docstring pulled in by autodoc is checked for pointers
  to documents outside the repository (a warning, so an error under ``-W``).
"""

from __future__ import annotations

import argparse
import filecmp
import importlib
import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent

# ----------------------------------------------------------------------------- notebooks


def sync_notebooks(app, config) -> None:
    """Mirror ``<repo>/notebooks/*.ipynb`` into ``docs/notebooks/`` (copy only what changed)."""
    source = ROOT / "notebooks"
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted(source.glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, src in wanted.items():
        dst = target / name
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copy2(src, dst)
    if not wanted:
        logger.warning("no notebooks found in %s", source, type="bpo", subtype="notebooks")


# ----------------------------------------------------------------------------- API page

#: Topic -> public names, in reading order. Names missing from ``__all__`` are
#: skipped; names of ``__all__`` not listed here go to "Other public names".
API_GROUPS: list[tuple[str, str, list[str]]] = [
    ("Loading data", "Files or DataFrames in, a validated :class:`~backpain_outcomes.Study` out.",
     ["load_study", "load_visits", "load_redcap", "fetch_redcap", "load_fhir", "load_anderson1984", "Study",
      "example_path", "simulate_study", "SimulationTruth", "simulate_recurrence", "RecurrenceTruth",
      "DataValidationError", "label"]),
    ("Instruments and vocabulary", "Scoring questionnaires and the minimal clinically important change.",
     ["score_odi", "score_rmdq", "mcid_table"]),
    ("Resolution", "Defining *resolved* and estimating cumulative resolution.",
     ["Resolution", "DEFAULT_RULE", "as_rule", "time_to_resolution", "TimeToResolution", "resolution_curve",
      "ResolutionCurve", "plot_resolution_panels", "recurrence", "Recurrence"]),
    ("Resolution claims", "Testing a claimed share of resolved episodes, with sensitivity analyses.",
     ["test_resolution_claim", "ClaimResult", "evaluate_seed_claims", "ClaimReport", "reference_curves",
      "claim_power", "PowerResult", "claim_sample_size", "SampleSizeResult"]),
    ("Recovery curves and models", "Group and per-episode recovery curves and longitudinal mixed models.",
     ["fit_recovery_curves", "RecoveryCurves", "fit_episode_curves", "EpisodeCurves", "fit_mixed_model",
      "MixedModelResult"]),
    ("Comparing modalities", "Adjusted comparisons with the untreated reference.",
     ["compare_modalities", "ModalityComparison", "weighted_comparison", "WeightedComparison", "e_value", "EValue",
      "responder_rate", "ResponderRate"]),
    ("Global rating of change", "Ordinal ratings of change by group.", ["fit_grc_model", "GRCModel"]),
    ("Trajectory subgroups", "Latent class growth models.",
     ["fit_trajectories", "TrajectoryResult", "adjusted_rand_index"]),
    ("Clinics", "Benchmarks and the clinic report (content, HTML or PDF).",
     ["benchmark_therapists", "TherapistBenchmark", "benchmark_clinic", "ClinicBenchmark", "report_content",
      "ReportContent", "clinic_report"]),
    ("Registries on Dask", "Studies too large for memory: Parquet partitioned by patient, analysed partition by "
     "partition; the analyses above accept the partitioned study and return the same results.",
     ["load_partitioned", "write_partitioned", "simulate_partitioned", "PartitionedStudy", "SequentialPartitions"]),
    ("Publication tables", "Table 1 by modality; any result's table as Markdown, LaTeX or Word "
     "(``result.export(path)`` picks the format from the suffix).",
     ["table_one", "TableOne", "publication_table", "to_markdown", "to_latex", "to_docx"]),
    ("Figures and provenance", "One colour per modality; what every written file records about how it was made.",
     ["MODALITY_COLOURS", "Provenance", "ProvenanceError", "read_provenance", "seal_figure"]),
    ("Result contract", "The base class every result derives from.", ["Result"]),
    ("Warnings", "Warning classes the analyses emit.",
     ["StatisticalWarning", "SmallSampleWarning", "ConvergenceWarning"]),
]

API_HEADER = """\
..
   This file is written by docs/_ext/bpo_docs.py on every build from
   backpain_outcomes.__all__; edit API_GROUPS there, not this file.

API reference
=============

Every name below is importable from the top-level package
(``import backpain_outcomes as bpo``). The page is generated from
``backpain_outcomes.__all__`` when the documentation is built, so it lists
exactly the public API of the installed version
(``{version}``). See :doc:`design` for the argument vocabulary and the result
contract that all analyses share.

.. currentmodule:: backpain_outcomes
"""


def api_page_text() -> str:
    import backpain_outcomes as bpo

    public = list(dict.fromkeys(getattr(bpo, "__all__", [])))
    missing = [n for n in public if not hasattr(bpo, n)]
    for name in missing:
        logger.warning("backpain_outcomes.__all__ names %r but the package has no such attribute", name,
                       type="bpo", subtype="api")
    public = [n for n in public if n not in missing]
    out = [API_HEADER.format(version=getattr(bpo, "__version__", "unknown"))]
    claimed: set[str] = set()
    sections = []
    for title, blurb, names in API_GROUPS:
        present = [n for n in names if n in public and n not in claimed]
        claimed.update(present)
        if present:
            sections.append((title, blurb, present))
    rest = [n for n in public if n not in claimed]
    if rest:
        sections.append(("Other public names", "", sorted(rest, key=str.lower)))
    for title, blurb, names in sections:
        out += ["", title, "-" * len(title), ""]
        if blurb:
            out += [blurb, ""]
        out += [".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        out += [f"   {n}" for n in names]
    return "\n".join(out) + "\n"


def write_api_page(app, config) -> None:
    """Write ``docs/api.rst`` from ``__all__`` (only when its text changes, for incremental builds)."""
    path = DOCS / "api.rst"
    try:
        text = api_page_text()
    except Exception as exc:  # the package itself fails to import: say so, keep a page
        logger.warning("cannot import backpain_outcomes to list its API: %s: %s", type(exc).__name__, exc,
                       type="bpo", subtype="api")
        text = "API reference\n=============\n\nThe package could not be imported when this site was built.\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- vocabulary


def vocabulary() -> dict:
    """Alias tables from ``backpain_outcomes.vocabulary`` or, in older trees, ``instruments``.

    Returns a dict with ``instrument``, ``modality`` (code -> spellings, the
    untreated status left out), ``untreated`` (spellings or None),
    ``untreated_code``, ``source`` and ``file`` (the module the lists came from).
    """
    voc = importlib.import_module("backpain_outcomes.vocabulary")
    instrument = dict(voc.INSTRUMENT_ALIASES)
    modality = dict(voc.MODALITY_ALIASES)
    untreated = list(voc.UNTREATED_ALIASES)
    code = voc.UNTREATED
    source = "backpain_outcomes.vocabulary"
    if code in modality:
        untreated = list(dict.fromkeys([*untreated, *modality.pop(code)]))
    return {"instrument": instrument, "modality": modality, "untreated": untreated or None,
            "untreated_code": code, "source": source, "file": voc.__file__}


# A table cell is a list of pieces: plain strings, or ("code", text) for inline literals.
Cell = list


def _codes(names, sep: str = ", ") -> Cell:
    out: Cell = []
    for i, name in enumerate(names):
        if i:
            out.append(sep)
        out.append(("code", str(name)))
    return out


def _spellings(code: str, names) -> Cell:
    seen, shown = {code.lower()}, []
    for name in names:
        if str(name).lower() not in seen:
            seen.add(str(name).lower())
            shown.append(str(name))
    return _codes(shown) if shown else ["(the code only)"]


def _cell(pieces: Cell) -> nodes.entry:
    para = nodes.paragraph()
    for piece in pieces:
        if isinstance(piece, tuple):
            para += nodes.literal(piece[1], piece[1])
        else:
            para += nodes.Text(piece)
    entry = nodes.entry()
    entry += para
    return entry


def _table(header: list[str], rows: list[list[Cell]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["bpo-generated"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for title in header:
        row += _cell([title])
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for pieces in cells:
            row += _cell(pieces)
        body += row
    return table


class AliasesDirective(SphinxDirective):
    """``bpo-aliases`` with argument instrument, modality or untreated: accepted spellings, from the package."""

    required_arguments = 1

    def run(self):
        kind = self.arguments[0].strip()
        if kind not in ("instrument", "modality", "untreated"):
            raise self.error(f"bpo-aliases: expected instrument, modality or untreated, got {kind!r}")
        voc = vocabulary()
        self.env.note_dependency(__file__)
        self.env.note_dependency(voc["file"])
        if kind == "untreated":
            names = voc["untreated"]
            if not names:
                return [nodes.paragraph(text="This version of the package has no list of untreated spellings.")]
            code = voc["untreated_code"]
            rows = [[[("code", code)], _spellings(code, names)]]
        else:
            rows = [[[("code", code)], _spellings(code, names)] for code, names in voc[kind].items()]
        return [_table(["code", "accepted spellings"], rows, [20, 80])]


class TablesDirective(SphinxDirective):
    """``bpo-tables``: required and optional columns per table, from the loader."""

    def run(self):
        loading = importlib.import_module("backpain_outcomes.loading")
        self.env.note_dependency(__file__)
        self.env.note_dependency(loading.__file__)
        aliases = loading.COLUMN_ALIASES
        rows = []
        for name, (required, optional) in loading.TABLES.items():
            spell = {**aliases.get("*", {}), **aliases.get(name, {})}
            cols = set(required) | set(optional)
            alt: dict[str, list[str]] = {}
            for raw, canonical in spell.items():
                if canonical in cols:
                    alt.setdefault(canonical, []).append(raw)
            alt_cell: Cell = []
            for i, (col, raws) in enumerate(sorted(alt.items())):
                alt_cell += (["; "] if i else []) + [("code", col), ": "] + _codes(sorted(raws))
            rows.append([[("code", name)], _codes(required) or ["(none)"], _codes(optional) or ["(none)"],
                         alt_cell or ["-"]])
        return [_table(["table", "required columns", "optional columns", "other column names accepted"],
                       rows, [12, 26, 26, 36])]


class CliDirective(SphinxDirective):
    """``bpo-cli``: the ``--help`` text of the command line and of each sub-command, from its parser."""

    def run(self):
        cli = importlib.import_module("backpain_outcomes.cli")
        self.env.note_dependency(__file__)
        for path in Path(cli.__file__).parent.glob("cli*.py"):  # the parser and every command module
            self.env.note_dependency(str(path))
        if not hasattr(cli, "build_parser"):
            return [nodes.paragraph(text="Run backpain-outcomes --help for the commands and their options.")]
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "90"  # argparse wraps help text to the terminal width
        try:
            parser = cli.build_parser()
            parser.prog = "backpain-outcomes"
            out: list[nodes.Node] = [_help_block(parser.format_help())]
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        out.append(nodes.rubric(text=f"backpain-outcomes {name}"))
                        out.append(_help_block(sub.format_help()))
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        return out


def _help_block(text: str) -> nodes.literal_block:
    block = nodes.literal_block(text.rstrip(), text.rstrip())
    block["language"] = "text"
    return block


# ----------------------------------------------------------------------------- docstring check

#: Pointers to documents that are not part of the repository (the same pattern as tests/test_layout.py).
_OUTSIDE = re.compile(r"DESIGN\.md|anchors\.md|\banchors [A-F]\d?\b|shared/", re.IGNORECASE)


_REPORTED: set[tuple[str, str]] = set()


def check_docstring(app, what, name, obj, options, lines) -> None:
    """Warn (once per object and line) when a docstring points to a document outside the repository."""
    for i, line in enumerate(lines):
        hit = _OUTSIDE.search(line)
        if hit and (name, line.strip()) not in _REPORTED:
            _REPORTED.add((name, line.strip()))
            logger.warning("docstring of %s refers to %r, which is not part of the repository (line %d: %s)",
                           name, hit.group(0), i + 1, line.strip(), type="bpo", subtype="outside-ref")


def check_source(app, docname, source) -> None:
    """The same check on every page, the notebooks included."""
    hit = _OUTSIDE.search(source[0])
    if hit:
        logger.warning("page %s refers to %r, which is not part of the repository", docname, hit.group(0),
                       type="bpo", subtype="outside-ref")


def setup(app):
    app.connect("config-inited", sync_notebooks)
    app.connect("config-inited", write_api_page)
    app.connect("autodoc-process-docstring", check_docstring)
    app.connect("source-read", check_source)
    app.add_directive("bpo-aliases", AliasesDirective)
    app.add_directive("bpo-tables", TablesDirective)
    app.add_directive("bpo-cli", CliDirective)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
