"""Publication tables written to files: Markdown, LaTeX or Word (and the raw table as CSV), with provenance.

:func:`~backpain_outcomes.export_table.publication_table` (in
:mod:`backpain_outcomes.export_table`, and importable from here) turns a
result into a table of text: labels, units, intervals, p-values.

:func:`to_markdown`, :func:`to_latex` (booktabs, through pandas' Styler;
every special character of the data escaped) and :func:`to_docx`
(python-docx, the ``export`` extra) write the table with its title above and
the result's notes below. Files are written atomically and never over an
existing file without ``force=True`` (:mod:`backpain_outcomes.safe_io`).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pandas as pd

from .checks import check_choice
from .exceptions import MissingDependencyError
from .export_table import (
    CI_STYLES,
    code_label,
    format_number,
    format_p,
    interval_pairs,
    publication_table,
    term_label,
)
from .provenance import make_provenance, sidecar_path, written_with_sidecar
from .safe_io import check_output, final_path, neutralise_formulas

try:  # optional dependency: the ``export`` extra
    import docx
    import docx.shared
except ImportError:  # pragma: no cover - the tests monkeypatch docx to None
    docx = None  # type: ignore[assignment]

__all__ = ["publication_table", "to_markdown", "to_latex", "to_docx", "export_result", "interval_pairs", "term_label",
           "code_label", "format_number", "format_p", "latex_escape", "protected_inputs", "FORMATS", "CI_STYLES"]

#: file suffix -> format written by :func:`export_result`
FORMATS = {".md": "markdown", ".tex": "latex", ".docx": "docx", ".csv": "csv"}


# ---------------------------------------------------------------------------------------------- writers
#: Settings of a result recorded in the provenance of a table written from it (when the result has them).
_SETTINGS = ("rule", "origin", "day", "instrument", "alpha", "reference", "min_n", "by", "claimed", "seed")


def _provenance_config(result) -> dict:
    """What a written table records about the analysis: the result type, its settings, and the settings
    every row of its table shares (rule, origin, ... columns)."""
    config: dict = {"result": type(result).__name__}
    for name in _SETTINGS:
        value = getattr(result, name, None)
        if value is not None and not callable(value) and not isinstance(value, pd.DataFrame):
            config[name] = str(value) if isinstance(value, (list, tuple, dict)) else value
    table = getattr(result, "table", result)
    if isinstance(table, pd.DataFrame) and len(table):
        for col in ("rule", "origin", "alpha", "instrument", "reference"):
            if col in table and col not in config and table[col].nunique(dropna=False) == 1:
                config[col] = table[col].iloc[0]
    return config


def protected_inputs(study=None, inputs=()) -> list[Path]:
    """The paths an export may not write onto or into: ``inputs``, the ``input_files`` of ``study`` and
    the directories holding them.

    The rule is the command line's: a directory that was read is protected as a whole, since a file
    written there could be read as part of the study the next time it is loaded (the loader reads
    every table file of a study directory). An input is refused even with ``force=True``.
    """
    files = [Path(p) for p in (getattr(study, "input_files", None) or [])]
    out = [Path(p) for p in inputs] + files
    for parent in dict.fromkeys(f.parent for f in files):
        if parent not in out:
            out.append(parent)
    return out


@contextlib.contextmanager
def _written(path, result, force: bool, suffixes, inputs, study):
    """A temporary path for the output; on success the file and its provenance sidecar
    (``<name>.provenance.json``: version, the result's settings, date, hashes of the inputs) are moved
    into place. Neither may overwrite an input, nor an existing file without ``force``; with ``study``,
    its input files and their directories are inputs too (see :func:`protected_inputs`)."""
    protected = protected_inputs(study, inputs)
    path = check_output(path, protected, force, suffixes=suffixes, what="path")
    check_output(sidecar_path(path), protected, force, what="path")
    record = make_provenance(f"export.{type(result).__name__}", _provenance_config(result), study=study,
                             input_files=inputs)
    with written_with_sidecar(path, record) as tmp:
        yield Path(tmp)


def _write_text(text: str, path, result, force: bool, suffixes, inputs, study) -> None:
    with _written(path, result, force, suffixes, inputs, study) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _pipe_cell(text: object) -> str:
    """Text safe in a Markdown table cell: backslashes and pipes escaped, line breaks as spaces, and
    ``& < >`` as HTML entities so that no raw HTML (``<img onerror=...>``) reaches a Markdown renderer."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(result, path=None, *, force: bool = False, inputs=(), study=None, **options) -> str:
    """The publication table as a Markdown pipe table (title in bold above, notes below); written to
    ``path`` (``.md``) when given. ``options`` go to :func:`publication_table`. Returns the text."""
    table = publication_table(result, **options)
    numeric = [bool(table[c].str.fullmatch(r"[-<]?[\d.]+( \(.*\))?|NA").all()) if len(table) else False
               for c in table.columns]
    lines = []
    if table.attrs.get("title"):
        lines += [f"**{_pipe_cell(table.attrs['title'])}**", ""]
    lines.append("| " + " | ".join(_pipe_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_pipe_cell(v) for v in row) + " |")
    notes = table.attrs.get("notes", [])
    if notes:
        lines += ["", "Notes: " + " ".join(_pipe_cell(n).rstrip(".") + "." for n in notes)]
    text = "\n".join(lines) + "\n"
    if path is not None:
        _write_text(text, path, result, force, (".md", ".markdown", ".txt"), inputs, study)
    return text


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
          ">": r"\textgreater{}", "×": r"$\times$", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "–": "--",
          "—": "---"}
_LATEX_RE = re.compile("|".join(map(re.escape, _LATEX)))


def latex_escape(text: object) -> str:
    r"""Text safe in LaTeX: the ten special characters, ``< >`` and a few symbols replaced; line breaks
    become spaces (a blank line inside a ``tabular`` ends the paragraph and breaks compilation).

    Examples
    --------
    >>> latex_escape("50% of A_B & C #1 <0.001")
    '50\\% of A\\_B \\& C \\#1 \\textless{}0.001'
    >>> latex_escape("two\n\nlines")
    'two  lines'
    """
    text = str(text).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return _LATEX_RE.sub(lambda m: _LATEX[m[0]], text)


def to_latex(result, path=None, *, force: bool = False, inputs=(), study=None, **options) -> str:
    """The publication table as a LaTeX ``table`` with booktabs rules (``\\usepackage{booktabs}``), the
    title as caption and the notes in a footnote-size paragraph below; every cell and header is escaped.
    Written to ``path`` (``.tex``) when given. ``options`` go to :func:`publication_table`."""
    table = publication_table(result, **options)
    escaped = table.map(latex_escape)
    escaped.columns = [latex_escape(c) for c in table.columns]
    styler = escaped.style.hide(axis="index")
    caption = latex_escape(table.attrs.get("title", "")) or None
    text = styler.to_latex(hrules=True, environment="table", position="htbp", caption=caption,
                           column_format="l" * len(table.columns))
    notes = table.attrs.get("notes", [])
    if notes:
        foot = "\\par\\footnotesize Notes: " + " ".join(latex_escape(n).rstrip(".") + "." for n in notes) + "\n"
        text = text.replace("\\end{table}", foot + "\\end{table}")
    if path is not None:
        _write_text(text, path, result, force, (".tex",), inputs, study)
    return text


def to_docx(result, path, *, force: bool = False, inputs=(), study=None, **options) -> Path:
    """The publication table in a Word document (python-docx, the ``export`` extra): the title above, a
    table with a bold header row, the notes in a small paragraph below. Returns the path."""
    if docx is None:
        raise MissingDependencyError("Word output needs python-docx; install the export extra: "
                                     "pip install 'backpain_outcomes[export]'")
    table = publication_table(result, **options)
    document = docx.Document()
    if table.attrs.get("title"):
        document.add_paragraph().add_run(str(table.attrs["title"])).bold = True
    grid = document.add_table(rows=1, cols=len(table.columns))
    grid.style = "Table Grid"
    for cell, name in zip(grid.rows[0].cells, table.columns):
        cell.paragraphs[0].add_run(str(name)).bold = True
    for row in table.itertuples(index=False):  # row by row: table.cell(i, j) is quadratic in python-docx
        for cell, value in zip(grid.add_row().cells, row):
            cell.text = str(value)
    notes = table.attrs.get("notes", [])
    if notes:
        run = document.add_paragraph().add_run("Notes: " + " ".join(str(n).rstrip(".") + "." for n in notes))
        run.font.size = docx.shared.Pt(8)
    with _written(path, result, force, (".docx",), inputs, study) as tmp:
        document.save(str(tmp))
    return final_path(path)


def export_result(result, path, format: str | None = None, force: bool = False, study=None, **options) -> Path:
    """Write ``result`` to ``path`` in the format of its suffix (``.md``, ``.tex``, ``.docx``) or ``format``;
    ``.csv`` writes the result's own ``.table`` (all columns, numbers unrounded, formulas neutralised).
    Never overwrites an existing file without ``force=True``, and never writes onto an input or into the
    directory of one, even with ``force=True``: with ``study``, its ``input_files`` and their directories are
    inputs (the command line's rule for an input directory, see :func:`protected_inputs`; a study loaded from
    table files named one by one protects their directories too, since the study does not record how it was
    loaded). Every file gets a provenance sidecar
    (``<name>.provenance.json``, read back by :func:`~backpain_outcomes.read_provenance`) recording the
    package version, the result's settings and, when ``study`` is given, hashes of its input files and tables.
    Returns the path."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower()) if format is None else check_choice(format, "format",
                                                                                 tuple(FORMATS.values()))
    if kind is None:
        raise ValueError(f"path: cannot tell the format of {path.name!r}; use a suffix "
                         f"{', '.join(FORMATS)} or pass format= one of {', '.join(FORMATS.values())}")
    if kind == "markdown":
        to_markdown(result, path, force=force, study=study, **options)
    elif kind == "latex":
        to_latex(result, path, force=force, study=study, **options)
    elif kind == "docx":
        to_docx(result, path, force=force, study=study, **options)
    else:
        inputs = options.pop("inputs", ())
        if options:
            raise ValueError(f"{', '.join(sorted(options))}: a .csv export writes the raw table; digits, ci, "
                             "labels and columns apply to .md, .tex and .docx")
        with _written(path, result, force, None, inputs, study) as tmp:
            neutralise_formulas(getattr(result, "table", result)).to_csv(tmp, index=False)
    return final_path(path)
