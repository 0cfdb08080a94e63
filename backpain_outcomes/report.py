"""Clinic outcome report: one self-contained HTML file (or PDF) for staff.

Sections: summary, data quality, patients at baseline, outcomes by modality
(recovery curves against the natural course of Costa et al. 2012, responder
rates, median time to resolution), the claim check (C1-C4), therapist
benchmarking in the style of FOTO (observed minus expected improvement, risk
adjusted; Gozalo, Resnik & Silver 2016 Health Serv Res 51:768) with a funnel
plot (Spiegelhalter 2005, Stat Med 24:1185), and methods and limitations.

Privacy and safety: no patient or episode identifiers; counts under
``min_cell`` hidden with complementary suppression; every string from the
data is escaped by Jinja2's autoescaping; figures are embedded PNGs (no text
from the data reaches the markup unescaped); nothing is loaded from outside
the file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

import re
from .exceptions import MissingDependencyError

__all__ = ["clinic_report", "html_to_pdf", "therapist_benchmark"]

REFERENCES = [
    "Menezes Costa L da C et al. The prognosis of acute and persistent low-back pain: a meta-analysis. "
    "CMAJ 2012;184(11):E613-24.",
    "Ostelo RWJG et al. Interpreting change scores for pain and functional status in low back pain. "
    "Spine 2008;33(1):90-94.",
    "Croft PR et al. Outcome of low back pain in general practice: a prospective study. BMJ 1998;316:1356-9.",
    "Kamper SJ et al. What is usual care for low back pain? / Measuring recovery. Eur Spine J 2010;19:1495-1501.",
    "Gozalo PL, Resnik LJ, Silver B. Benchmarking outpatient rehabilitation clinics using functional status "
    "outcomes. Health Serv Res 2016;51(2):768-89.",
    "Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-1202.",
    "Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat 1979;6:65-70.",
]


# interim: legacy suppression while the report is rebuilt (issue 12)
def suppress_counts(counts: pd.DataFrame, min_cell: int = 5, totals: bool = True) -> pd.DataFrame:
    """Return a string table with small counts hidden.

    Parameters
    ----------
    counts : DataFrame of non-negative integers
    min_cell : int
        Counts from 1 to ``min_cell - 1`` are hidden.
    totals : bool
        Append a ``Total`` row and column (sums of the true counts, also
        hidden when small) and protect them with complementary suppression.
    """
    c = counts.fillna(0).astype(int)
    vals = c.to_numpy()
    hidden = (vals > 0) & (vals < min_cell)
    changed = True
    while changed:
        changed = False
        for axis in (0, 1):
            lines = hidden if axis == 1 else hidden.T
            v = vals if axis == 1 else vals.T
            for i in range(lines.shape[0]):
                row_h, row_v = lines[i], v[i]
                if row_h.sum() == 1 and len(row_h) > 1:
                    candidates = np.where(~row_h & (row_v > 0), row_v, np.iinfo(np.int64).max)
                    if candidates.min() == np.iinfo(np.int64).max:
                        continue
                    j = int(np.argmin(candidates))
                    row_h[j] = True
                    changed = True
    hide = f"<{min_cell}"
    out = pd.DataFrame(np.where(hidden, hide, vals.astype(str)), index=c.index, columns=c.columns)
    if totals:
        col_tot = c.sum(axis=1)
        out["Total"] = np.where((col_tot > 0) & (col_tot < min_cell), hide, col_tot.astype(str))
        if c.shape[0] > 1:
            row_tot = c.sum(axis=0)
            last = list(np.where((row_tot > 0) & (row_tot < min_cell), hide, row_tot.astype(str)))
            grand = int(c.to_numpy().sum())
            out.loc["Total"] = last + [hide if 0 < grand < min_cell else str(grand)]
    return out


_COUNT_WORDS = r"((?:\s+(?:untreated|treated|chronic|acute|subacute|resolved|of|the))*\s+(?:episodes?|resolutions?|patients?|sessions?))"


def mask_small_numbers(text: str, min_cell: int = 5) -> str:
    """Hide counts under ``min_cell`` in free text ("only 3 untreated episodes" -> "only <5 untreated episodes")."""
    def repl(m):
        return (f"<{min_cell}" if int(m.group(1)) < min_cell else m.group(1)) + m.group(2)
    def repl_of(m):
        small = [f"<{min_cell}" if int(g) < min_cell else g for g in (m.group(1), m.group(3))]
        return small[0] + m.group(2) + small[1] + m.group(4)
    text = re.sub(r"\b(\d+)(\s+of\s+)(\d+)" + _COUNT_WORDS, repl_of, text)
    return re.sub(r"(?<![<\d])\b(\d+)" + _COUNT_WORDS, repl, text)


def _png(ax) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(df: pd.DataFrame, index: bool = False) -> Markup:
    """HTML table with every cell escaped (pandas escapes by default)."""
    html = df.to_html(index=index, escape=True, border=0, na_rep="", classes="data")
    return Markup("<div class='table-wrap'>" + html + "</div>")


def therapist_benchmark(study, instrument: str = "nrs", at_day: float = 42, window: float = 14,
                        show_therapists: bool = False, min_cell: int = 5):
    """Observed minus expected improvement per therapist (risk-adjusted).

    Expected improvement comes from an OLS model of improvement (baseline -
    score at the measurement nearest ``at_day``) on baseline score,
    chronicity and age over all treated episodes; each episode is credited to
    the therapist who gave most of its sessions. Per therapist: mean residual
    (observed - expected), n, and funnel limits :math:`\\pm z\\,\\sigma/\\sqrt{n}`
    at 95% (z = 1.96) and 99.8% (z = 3.09).

    Returns ``(table, sigma, n_hidden)``; therapists are labelled T1, T2, ... by
    decreasing caseload unless ``show_therapists``; therapists with fewer
    than ``min_cell`` episodes are left out (counted in ``n_hidden``).
    """
    import statsmodels.formula.api as smf

    from .compare import _nearest
    ss = study.sessions
    if ss.empty or "therapist_id" not in ss or ss["therapist_id"].isna().all():
        return pd.DataFrame(), np.nan, 0
    main = (ss.dropna(subset=["therapist_id"]).groupby(["episode_id", "therapist_id"]).size()
            .reset_index(name="k").sort_values(["episode_id", "k"], ascending=[True, False])
            .drop_duplicates("episode_id").set_index("episode_id")["therapist_id"])
    frame = study.analysis_frame(instrument, origin="first_contact")
    near = _nearest(frame, at_day, window)
    near = near[near["episode_id"].isin(main.index)].assign(improvement=lambda d: d["baseline"] - d["score"])
    near["therapist"] = near["episode_id"].map(main)
    terms = ["baseline"]
    if near["chronicity"].astype(str).nunique() > 1:
        terms.append("C(chronicity)")
    if near["age"].notna().all() and near["age"].nunique() > 1:
        terms.append("age")
    if len(near) < 10:
        return pd.DataFrame(), np.nan, 0
    fit = smf.ols("improvement ~ " + " + ".join(terms), data=near.assign(chronicity=near["chronicity"].astype(str))).fit()
    near["residual"] = fit.resid
    sigma = float(np.sqrt(fit.scale))
    g = near.groupby("therapist").agg(n=("residual", "size"), observed=("improvement", "mean"),
                                      o_minus_e=("residual", "mean")).reset_index()
    g["expected"] = g["observed"] - g["o_minus_e"]
    small = g["n"] < min_cell
    g = g[~small].sort_values(["n", "therapist"], ascending=[False, True]).reset_index(drop=True)
    if not show_therapists:
        g["therapist"] = [f"T{i + 1}" for i in range(len(g))]
    g["limit95"] = 1.96 * sigma / np.sqrt(g["n"])
    g["limit998"] = 3.09 * sigma / np.sqrt(g["n"])
    g["flag"] = np.select([g["o_minus_e"].abs() > g["limit998"], g["o_minus_e"].abs() > g["limit95"]],
                          ["outside 99.8% limits", "outside 95% limits"], "")
    return g, sigma, int(small.sum())


def _funnel(g, sigma, instrument):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    n = np.linspace(max(g["n"].min() * 0.8, 1), g["n"].max() * 1.1, 100)
    for z, ls, lab in ((1.96, "--", "95% limits"), (3.09, ":", "99.8% limits")):
        ax.plot(n, z * sigma / np.sqrt(n), "k" + ls, lw=1, label=lab)
        ax.plot(n, -z * sigma / np.sqrt(n), "k" + ls, lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.scatter(g["n"], g["o_minus_e"], color="#2a6f97", zorder=3)
    for rec in g.itertuples():
        ax.annotate(str(rec.therapist), (rec.n, rec.o_minus_e), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("episodes per therapist")
    ax.set_ylabel(f"observed - expected improvement ({instrument.upper()} points)")
    ax.legend(fontsize=8)
    return ax


def _count(n: int, min_cell: int) -> str:
    """A count for publication: 1 to min_cell - 1 become "<min_cell"."""
    return f"<{min_cell}" if 0 < n < min_cell else str(n)


def _baseline_table(study, min_cell):
    ep = study.episodes
    rows = {}
    for mod, g in ep.groupby("modality", sort=True):
        n = len(g)
        col = {"episodes": _count(n, min_cell)}
        if n < min_cell:
            rows[mod] = col
            continue
        col["age, mean (SD)"] = f"{g['age'].mean():.1f} ({g['age'].std():.1f})" if g["age"].notna().any() else ""
        col["age missing"] = _count(int(g["age"].isna().sum()), min_cell)
        fem = (g["sex"] == "female").sum()
        col["female, %"] = f"{100 * fem / n:.0f}%" if min_cell <= fem <= n - min_cell else "suppressed"
        for ch in ("acute", "subacute", "chronic", "unknown"):
            k = int((g["chronicity"].astype(str) == ch).sum())
            col[f"{ch}, n"] = _count(k, min_cell)
        for inst in study.instruments:
            b = g.get(f"baseline_{inst}")
            if b is not None:
                col[f"baseline {inst.upper()}, mean (SD)"] = f"{b.mean():.1f} ({b.std():.1f})"
                col[f"baseline {inst.upper()} missing"] = _count(int(b.isna().sum()), min_cell)
        rows[mod] = col
    tab = pd.DataFrame(rows)
    # complementary protection of the chronicity counts across modalities
    chron_rows = [r for r in tab.index if r.endswith(", n")]
    if chron_rows:
        raw = ep.assign(ch=ep["chronicity"].astype(str)).pivot_table(index="ch", columns="modality",
                                                                     values="episode_id", aggfunc="size", fill_value=0)
        raw.index = [f"{i}, n" for i in raw.index]
        tab.loc[chron_rows] = suppress_counts(raw.reindex(index=chron_rows, columns=tab.columns).fillna(0),
                                              min_cell, totals=False)
    return tab.fillna("")


def _html(study, title, clinic, period, show_therapists, min_cell, progress):
    import matplotlib
    matplotlib.use("Agg")
    from tqdm.auto import tqdm

    from . import __version__
    from .compare import compare_modalities
    from .curves import fit_recovery_curves
    from .resolution import DEFAULT_RULE, resolution_curve
    from .seed_claims import evaluate_seed_claims
    steps = ["summary", "data quality", "baseline", "outcomes", "claims", "benchmarking", "render"]
    bar = tqdm(steps, desc="clinic report", disable=not progress, leave=False)
    it = iter(bar)
    next(it)
    ep = study.episodes
    period_txt = (f"{study.scores['date'].min():%d %b %Y} to {study.scores['date'].max():%d %b %Y}")
    tables, figures = {}, {"outcomes": [], "funnel": []}
    sess = study.sessions.groupby("modality").size().to_frame("sessions")
    tables["sessions"] = _table(suppress_counts(sess, min_cell, totals=False), index=True)

    def show(n):
        return _count(int(n), min_cell)
    kpis = [{"label": "patients", "value": show(ep["patient_id"].nunique())},
            {"label": "episodes", "value": show(len(ep))},
            {"label": "sessions", "value": show(len(study.sessions))},
            {"label": "untreated episodes", "value": show(int((ep["modality"] == "none").sum()))}]
    next(it)
    flow = study.flow()
    flow["n"] = [show(int(n)) if n is not None and not pd.isna(n) else "" for n in flow["n"]]
    tables["flow"] = _table(flow)
    ex = study.exclusions
    if len(ex):
        exc = ex.groupby(["table", "reason"]).size().unstack(fill_value=0)
        tables["exclusions"] = _table(suppress_counts(exc, min_cell), index=True)
    else:
        tables["exclusions"] = Markup("<p>No rows were excluded.</p>")
    next(it)
    tables["baseline"] = _table(_baseline_table(study, min_cell), index=True)
    next(it)
    instrument = "nrs" if "nrs" in study.instruments else study.instruments[0]
    outcome_note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            curves = fit_recovery_curves(study, by="modality", instrument=instrument, origin="first_contact",
                                         progress=False, min_episodes=min_cell)
            ax = curves.plot(reference="costa2012")
            ax.set_title("Recovery curves by modality, with the natural course (Costa 2012)", fontsize=10)
            figures["outcomes"].append({
                "data": _png(ax), "alt": f"Line chart of mean {instrument.upper()} over days since first contact, "
                                         "one fitted curve per modality with 95% bands, and dashed published "
                                         "natural-course curves for acute and persistent back pain.",
                "caption": f"Figure 1. Fitted recovery curves (mean {instrument.upper()}) by modality with 95% CI; "
                           "black lines: natural course of acute and persistent low back pain from onset "
                           "(Costa et al. 2012)."})
        except ValueError as err:
            outcome_note += f"Recovery curves not shown: {err}. "
        rule = DEFAULT_RULE if instrument == "nrs" else None
        res_rows = None
        if rule is not None:
            rc = resolution_curve(study, rule, by="modality", origin="first_contact")
            ax = rc.plot(claimed=0.9)
            figures["outcomes"].append({
                "data": _png(ax), "alt": "Step chart of the share of episodes resolved over days since first "
                                         "contact, one line per modality, with a dashed line at 90%.",
                "caption": f"Figure 2. Cumulative resolution ({rule!r}) by modality, Kaplan-Meier with 95% CI; "
                           "dashed line: the claimed 90%."})
            res_rows = rc.medians.set_index("modality")
        try:
            cmp = compare_modalities(study, instrument=instrument, at_day=42,
                                     origin="first_contact").table.set_index("modality")
        except ValueError as err:
            cmp = pd.DataFrame()
            outcome_note += f"Responder comparison not shown: {err}. "
    out = {}
    for mod in sorted(ep["modality"].unique()):
        row = {}
        if res_rows is not None and mod in res_rows.index:
            r = res_rows.loc[mod]
            row["episodes followed"] = show(int(r["n"]))
            if r["n"] >= min_cell and not np.isnan(r["median_days"]):
                row["median days to resolution (95% CI)"] = (f"{r['median_days']:.0f} ({r['median_ci_low']:.0f}-"
                                                             f"{r['median_ci_high']:.0f})" if not np.isnan(r["median_ci_high"])
                                                             else f"{r['median_days']:.0f} ({r['median_ci_low']:.0f}-not reached)")
            else:
                row["median days to resolution (95% CI)"] = "not reached" if r["n"] >= min_cell else "suppressed"
        if mod in cmp.index:
            c = cmp.loc[mod]
            k, n = int(c["responders"]), int(c["n"])
            if k >= min_cell and n - k >= min_cell:
                row["responders at 6 weeks (95% CI)"] = (f"{100 * c['responder_rate']:.0f}% "
                                                         f"({100 * c['responder_ci_low']:.0f}-{100 * c['responder_ci_high']:.0f}%)")
            else:
                row["responders at 6 weeks (95% CI)"] = "suppressed (small numbers)"
            row["adjusted difference vs untreated (95% CI)"] = (f"{c['difference']:.2f} ({c['ci_low']:.2f} to "
                                                               f"{c['ci_high']:.2f}); Holm p = {c['p_holm']:.2g}")
        out[mod] = row
    tables["outcomes"] = _table(pd.DataFrame(out).T.fillna(""), index=True)
    outcome_note += ("Responders improved by the minimal clinically important change (Ostelo 2008: 2 NRS points and "
                     "30%) at the visit nearest 6 weeks. Differences are adjusted for baseline score and chronicity; "
                     "they are associations, not proof that a treatment caused the difference.")
    next(it)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rep = evaluate_seed_claims(study)
            claims = [{"claim": r.claim, "comparison": r.comparison, "verdict": mask_small_numbers(r.verdict, min_cell)}
                      for r in rep.table.itertuples()]
        except ValueError as err:
            claims = [{"claim": "C1-C4", "comparison": "", "verdict": f"Not assessed: {err}"}]
    next(it)
    g, sigma, n_hidden = therapist_benchmark(study, instrument, show_therapists=show_therapists, min_cell=min_cell)
    if len(g):
        figures["funnel"].append({
            "data": _png(_funnel(g, sigma, instrument)),
            "alt": "Funnel plot: each dot is a therapist, placed by number of episodes (x) and observed minus "
                   "expected improvement (y), between 95% and 99.8% control limits that narrow with caseload.",
            "caption": "Figure 3. Risk-adjusted improvement per therapist (observed minus expected, NRS points at "
                       "the visit nearest 6 weeks) with 95% and 99.8% control limits."})
        shown = g[["therapist", "n", "observed", "expected", "o_minus_e", "flag"]].rename(columns={
            "n": "episodes", "observed": "observed improvement", "expected": "expected improvement",
            "o_minus_e": "observed - expected"}).round(2)
        tables["therapists"] = _table(shown)
    else:
        tables["therapists"] = Markup("<p>No therapist data (or too few episodes) for benchmarking.</p>")
    bench_intro = ("Each episode is credited to the therapist who gave most of its sessions. Expected improvement "
                   "comes from a model of improvement on baseline score, chronicity and age across all treated "
                   "episodes; a therapist above zero did better than expected for their case mix. Points outside "
                   "the 99.8% limits are unlikely to be chance alone; inside them, differences are noise. "
                   + (f"{n_hidden} therapist(s) with fewer than {min_cell} episodes are not shown. " if n_hidden else "")
                   + ("Therapists are anonymised (T1, T2, ... by caseload)." if not show_therapists else ""))
    methods = [
        "Rows that broke the data rules were excluded and are counted in section 2; nothing was dropped silently.",
        "Chronicity is time from pain onset to first contact: acute under 6 weeks, subacute 6-12, chronic 12 or more.",
        f"Resolution: {DEFAULT_RULE!r}, from first contact; cumulative resolution is 1 - Kaplan-Meier with "
        "Greenwood variance and log-log confidence intervals. Episodes lost to follow-up count until their last visit.",
        "Recovery curves: score = plateau + (start - plateau) x exp(-day / tau), fitted per modality with "
        "episode-clustered standard errors.",
        "This is observational clinic data: patients chose or were given treatments for reasons that may also "
        "affect recovery. Comparisons are adjusted associations, not randomised evidence.",
        "Patients enter when their pain is bad; part of any improvement is regression to the mean.",
        f"Counts under {min_cell} are hidden, with a second cell hidden where a total would reveal them.",
    ]
    subtitle = " | ".join(x for x in [f"Period: {period_txt}", f"Clinic: {clinic}" if clinic else "",
                                      f"Selection: {period[0]} to {period[1]}" if period else ""] if x)
    env = Environment(loader=PackageLoader("backpain_outcomes", "templates"), autoescape=select_autoescape(["j2", "html"]))
    html = env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, kpis=kpis, tables=tables, figures=figures, claims=claims,
        claims_note="Verdicts test the popular claims with explicit definitions; see the package documentation "
                    "for the sensitivity analysis over definitions, time origins and relapse handling.",
        outcome_note=outcome_note, bench_intro=bench_intro, methods=methods, references=REFERENCES,
        min_cell=min_cell, version=__version__, generated=_dt.date.today().isoformat())
    next(it, None)
    bar.close()
    return html


def _select(study, clinic, period):
    ep = study.episodes
    keep = pd.Series(True, index=ep.index)
    if clinic is not None:
        if "clinic_id" not in ep or ep["clinic_id"].isna().all():
            raise ValueError("clinic= was given but the study has no clinic_id in its patients table")
        if clinic not in set(ep["clinic_id"]):
            raise ValueError(f"no episodes for clinic {clinic!r}; clinics present: "
                             f"{', '.join(sorted(map(str, ep['clinic_id'].dropna().unique())))}")
        keep &= ep["clinic_id"] == clinic
    if period is not None:
        lo, hi = (pd.Timestamp(p) for p in period)
        keep &= ep["first_visit_date"].between(lo, hi)
    if keep.all():
        return study
    if not keep.any():
        raise ValueError("no episodes in the selected clinic and period")
    return study.subset(ep.loc[keep, "episode_id"])


def html_to_pdf(html_path, pdf_path, browser: str | None = None, timeout: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium.

    Raises :class:`MissingDependencyError` with install advice when no
    Chromium is found (Debian: ``apt-get install chromium``).
    """
    exe = browser or next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome")
                           if shutil.which(b)), None)
    if exe is None:
        raise MissingDependencyError("PDF output needs headless Chromium, which was not found. Install it "
                                     "(Debian/Ubuntu: `apt-get install -y chromium`) or write report.html instead.")
    pdf_path = Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--log-level=3",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
               Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise MissingDependencyError(f"Chromium did not write the PDF: {proc.stderr[-500:]}")
    return pdf_path


def clinic_report(study, path, clinic=None, period=None, title: str | None = None, show_therapists: bool = False,
                  min_cell: int = 5, progress: bool = True) -> Path:
    """Write a clinic outcome report (self-contained HTML, or PDF when ``path`` ends in .pdf).

    Parameters
    ----------
    study : Study
    path : str or Path
        ``report.html`` or ``report.pdf`` (PDF needs headless Chromium).
    clinic : str, optional
        Restrict to one ``clinic_id``.
    period : (start, end), optional
        Restrict to episodes first seen in this period.
    title : str, optional
    show_therapists : bool
        Show therapist ids instead of T1, T2, ...
    min_cell : int
        Counts under this are hidden (with complementary suppression).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path of the written file.

    Examples
    --------
    >>> import backpain_outcomes as bpo, tempfile, os
    >>> out = bpo.clinic_report(bpo.load_study(bpo.example_path()),
    ...                         os.path.join(tempfile.mkdtemp(), "report.html"), progress=False)
    >>> out.suffix
    '.html'
    """
    path = Path(path)
    sub = _select(study, clinic, period)
    title = title or ("Back-pain outcome report" + (f": clinic {clinic}" if clinic else ""))
    html = _html(sub, title, clinic, period, show_therapists, min_cell, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        with tempfile.TemporaryDirectory() as tmp:
            h = Path(tmp) / "report.html"
            h.write_text(html, encoding="utf-8")
            html_to_pdf(h, path)
    else:
        path.write_text(html, encoding="utf-8")
    return path
