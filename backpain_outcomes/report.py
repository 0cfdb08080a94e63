"""Clinic outcome report: one self-contained HTML file (or PDF) for a clinic manager.

The content is computed once by :func:`~backpain_outcomes.report_content.report_content`
(one analysis configuration, disclosure control audited against a reader
who has the whole report); this module renders it with Jinja2 (every string
from the data escaped; figures are embedded PNGs; nothing is loaded from
outside the file) and prints PDF through headless Chromium, with page
numbers from CSS page-margin boxes.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .dispatch import on_study
from .exceptions import MissingDependencyError
from .provenance import embed_html, make_provenance, sidecar_path, written_with_sidecar
from .report_content import ReportContent, report_content
from .resolution import DEFAULT_RULE
from .safe_io import atomic_path, check_output
from .version import __version__

__all__ = ["clinic_report", "render_html", "html_to_pdf", "REFERENCES"]

REFERENCES = [
    "Menezes Costa L da C et al. The prognosis of acute and persistent low-back pain: a meta-analysis. "
    "CMAJ 2012;184(11):E613-24.",
    "Wallwork SB et al. The natural course of acute, subacute and persistent low back pain. CMAJ 2024;196:E29-46.",
    "Ostelo RWJG et al. Interpreting change scores for pain and functional status in low back pain. "
    "Spine 2008;33(1):90-94.",
    "Croft PR et al. Outcome of low back pain in general practice: a prospective study. BMJ 1998;316:1356-9.",
    "Gozalo PL, Resnik LJ, Silver B. Benchmarking outpatient rehabilitation clinics using functional status "
    "outcomes. Health Serv Res 2016;51(2):768-89.",
    "Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-1202.",
]
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _table(df: pd.DataFrame) -> Markup:
    """HTML table with every cell escaped (pandas escapes by default); the index holds row labels."""
    if df is None or df.empty:
        return Markup("<p class='note'>Nothing to show.</p>")
    index = not isinstance(df.index, pd.RangeIndex)
    html = df.to_html(index=index, escape=True, border=0, na_rep="", classes="data")
    return Markup("<div class='table-wrap'>" + html + "</div>")


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML document."""
    env = Environment(loader=PackageLoader("backpain_outcomes", "templates"), autoescape=select_autoescape(["j2", "html"]))
    order = [n for n in ("resolution", "recovery", "trend", "funnel") if n in content.figures] + ["flow"]
    footer = re.sub(r"[^A-Za-z0-9 .,:()-]", "", f"{content.title}, first visits {content.period_text}")
    return env.get_template("report.html.j2").render(
        c=content, t={k: _table(v) for k, v in content.tables.items()},
        numbers={name: i + 1 for i, name in enumerate(order)}, references=REFERENCES, version=__version__,
        footer_title=footer[:120])


def _browser(browser: str | None) -> str:
    exe = browser or next((shutil.which(b) for b in _BROWSERS if shutil.which(b)), None)
    if exe is None:
        raise MissingDependencyError("PDF output needs headless Chromium, which was not found. Install it "
                                     "(Debian/Ubuntu: `apt-get install -y chromium`) or write report.html instead.")
    return exe


def html_to_pdf(html_path, pdf_path, browser: str | None = None, timeout: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (A4, page numbers from the page's CSS).

    Raises
    ------
    MissingDependencyError
        With install advice when no Chromium is found (Debian: ``apt-get install chromium``).
    """
    exe = _browser(browser)
    pdf_path = Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--log-level=3",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
               Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise MissingDependencyError(f"Chromium did not write the PDF (exit code {proc.returncode}): "
                                     f"{proc.stderr[-500:]}")
    return pdf_path


def _input_files(study) -> list[Path]:
    """The files behind a study: its input files, or every file of a partitioned registry's directory."""
    files = getattr(study, "input_files", None)
    if files:
        return list(files)
    directory = getattr(study, "directory", None)  # a PartitionedStudy: registry.json and the Parquet partitions
    return sorted(p for p in Path(directory).rglob("*") if p.is_file()) if directory is not None else []


@on_study
def clinic_report(study, path, clinic=None, period=None, title: str | None = None, rule=DEFAULT_RULE, day: float = 42,
                  origin: str = "onset", instrument: str = "nrs", min_n: int = 5, show_therapists: bool = False,
                  progress: bool = True) -> Path:
    """Write a clinic outcome report: self-contained HTML, or PDF when ``path`` ends in ``.pdf``.

    Parameters
    ----------
    study : Study or PartitionedStudy
        The whole study; benchmarks use every clinic in it. A partitioned registry
        (:func:`~backpain_outcomes.registry.load_partitioned`) gives the same report as the
        same data in memory.
    path : str or Path
        ``report.html`` or ``report.pdf`` (PDF needs headless Chromium).
    clinic : str, optional
        Report on one ``clinic_id`` (benchmarked against all clinics of the study).
    period : (start, end), optional
        Restrict to episodes first seen in this period (both dates included); None for
        either end leaves it open: ``("2023-01-01", None)``. A reversed period or a text that
        is not a date is a ValueError naming ``period``.
    title : str, optional
    rule : Resolution or str
        Definition of resolved (default ``"nrs<=1 x2"``).
    day : float
        Horizon in days since ``origin`` (42 = six weeks).
    origin : {"onset", "first_contact"}
        Day 0 of every time in the report.
    instrument : str
        Outcome instrument for improvement, curves and benchmarks (any spelling).
    min_n : int
        Disclosure threshold: counts from 1 to ``min_n - 1`` are not published,
        nor any count or figure from which one could be worked out.
    show_therapists : bool
        Show therapist ids instead of T1, T2, ...
    progress : bool
        Show a progress bar.

    Raises
    ------
    DisclosureError
        (a ``ValueError``) when the clinic and period hold fewer than ``min_n`` episodes, or
        no choice of hidden counts protects every small one.

    Returns
    -------
    Path of the written file. An existing file at ``path`` is replaced, but
    never one of the study's input files; the report is written to a
    temporary file first, so a failure leaves an older report untouched.
    Its provenance (version, configuration, date, SHA-256 of the inputs: for a
    registry, of every file of its directory) is
    embedded in the HTML, or written next to a PDF as
    ``report.pdf.provenance.json``; read it with
    :func:`~backpain_outcomes.provenance.read_provenance`.

    See Also
    --------
    backpain_outcomes.report_content.report_content : the same content as an object, without HTML.

    Examples
    --------
    >>> import backpain_outcomes as bpo, tempfile, os
    >>> out = bpo.clinic_report(bpo.load_study(bpo.example_path()),
    ...                         os.path.join(tempfile.mkdtemp(), "report.html"), progress=False)
    >>> out.suffix
    '.html'
    """
    inputs = _input_files(study)
    path = check_output(path, inputs, force=True, suffixes=(".html", ".htm", ".pdf"), what="path")
    pdf = path.suffix.lower() == ".pdf"
    if pdf:
        check_output(sidecar_path(path), inputs, force=True, what="path")
        _browser(None)  # fail before the analyses when Chromium is missing
    content = report_content(study, clinic=clinic, period=period, title=title, rule=rule, day=day, origin=origin,
                             instrument=instrument, min_n=min_n, show_therapists=show_therapists, progress=progress)
    provenance = make_provenance("clinic_report", dataclasses.asdict(content.config) | {"rule": content.config.rule},
                                 study=study, input_files=[] if getattr(study, "input_files", None) else inputs)
    html = embed_html(render_html(content), provenance)
    # a failure leaves an existing report untouched; a PDF keeps its provenance in a sidecar
    with (written_with_sidecar(path, provenance) if pdf else atomic_path(path)) as tmp_out:
        if pdf:
            with tempfile.TemporaryDirectory() as tmp:
                h = Path(tmp) / "report.html"
                h.write_text(html, encoding="utf-8")
                html_to_pdf(h, tmp_out)
        else:
            tmp_out.write_text(html, encoding="utf-8")
    return path
