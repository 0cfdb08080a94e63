"""The content of a clinic report, computed once (:func:`report_content`) and rendered by :mod:`backpain_outcomes.report`.

One analysis configuration (:class:`~backpain_outcomes.report_config.ReportConfig`: rule, origin,
horizon, instrument, ``min_n``) is used by every number, table and figure. Every count goes through
one disclosure ledger (:mod:`backpain_outcomes.report_counts`); a rate, mean or median is shown only
when the counts behind it are.

The report is computed from its episode-level data (:class:`~backpain_outcomes.report_data.ReportData`,
one row per episode) by :func:`content_of`, the same for an in-memory study and for a partitioned one
(:mod:`backpain_outcomes.registry_report` registers :func:`report_content` for those); only the
recovery curves and the claim test read the scores, through the selected study itself.
"""

from __future__ import annotations

import datetime as _dt
import warnings

import numpy as np
import pandas as pd
from tqdm import tqdm

from .benchmarking import TherapistBenchmark, benchmark_therapists, outcome_at_day
from .casemix import ClinicBenchmark, benchmark_clinic
from .claims import test_resolution_claim
from .compare import compare_modalities, comparison_rule
from .curves import fit_recovery_curves
from .disclosure import PUBLISHED, DisclosureLedger
from .dispatch import on_study
from .exceptions import DisclosureError
from .redaction import redact_counts
from .report_config import (
    ReportConfig,
    check_config,
    check_period,
    check_size,
    in_selection,
    period_words,
    select_episodes,
    select_study,
)
from .report_counts import build_ledger, episode_classes
from .report_data import EpisodeView, ReportData, episode_frames
from .report_figures import at_risk_days, funnel_figure, recovery_figure, resolution_figure, trend_figure
from .report_sections import (
    case_mix_table,
    claims_section,
    flow_numbers,
    follow_up_table,
    key_outcomes,
    outcome_table,
    pain_function_table,
    paragraphs,
    therapist_table,
    trend_table,
)
from .resolution import DEFAULT_RULE, time_to_resolution
from .results import Result
from .survival import cox_by_group, kaplan_meier, km_median
from .verdicts import claim_at_day
from .vocabulary import MODALITY_LEVELS, UNKNOWN, UNTREATED, label

__all__ = ["ReportConfig", "ReportContent", "report_content", "content_of", "select_study", "check_period"]


class ReportContent(Result):
    """Everything a clinic report shows, before any HTML.

    Attributes
    ----------
    config : ReportConfig
    table : DataFrame
        The key outcomes of the first page (display strings).
    tables : dict of str -> DataFrame
        Display tables with human labels: ``key_outcomes``, ``case_mix``,
        ``outcomes``, ``pain_function``, ``trend``, ``follow_up``,
        ``therapists``.
    figures : dict of str -> dict
        ``data`` (base64 PNG), ``alt``, ``caption``.
    numbers : dict
        Machine-readable numbers, e.g. ``numbers["untreated_resolution"]``
        with ``estimate``, ``ci_low``, ``ci_high``, ``n``, ``events``.
    text : dict of str -> list of str
        Paragraphs per section.
    claims : list of dict
        ``statement``, ``answer``, ``detail`` per claim, in plain words.
    glossary : list of (term, definition)
    flow : dict
        Rows read, used and excluded by reason per input table, and the episodes of the report.
    ledger : DisclosureLedger
        Every count with its publication status (audited).
    benchmark : ClinicBenchmark
        The key outcomes and their expected values (:func:`~backpain_outcomes.casemix.benchmark_clinic`).
    therapists : TherapistBenchmark
        The therapists shown (after disclosure control).
    title, clinic_text, period_text, generated : str
    notes : list of str
        Caveats and every warning raised by the analyses, safe to print.
    """

    config: ReportConfig
    title: str
    clinic_text: str
    period_text: str
    generated: str
    tables: dict
    figures: dict
    numbers: dict
    text: dict
    claims: list
    glossary: list
    flow: dict
    ledger: DisclosureLedger
    benchmark: ClinicBenchmark
    therapists: TherapistBenchmark


    def _parts(self):
        return self.title, [*self.config.lines(), *self.notes], {"Key outcomes": self.table}

    def plot(self, ax=None):
        """The key outcomes against their case-mix benchmarks (observed / expected) on ``ax``."""
        return self.benchmark.plot(ax=ax)



def _analyses(scope, sub, base, cfg, bar):
    """Every analysis the report needs, on the selection (benchmarks on all clinics of the period).

    ``sub`` and ``base`` are :class:`~backpain_outcomes.report_data.EpisodeView` of the selection and of
    all clinics in the period; ``scope`` is the selected study (the curves and the claim read its scores).
    """
    out = {}
    out["events"] = time_to_resolution(sub, cfg.rule, origin=cfg.origin)
    bar.update()
    out["near"] = outcome_at_day(sub, cfg.instrument, cfg.day, cfg.origin, cfg.window)
    ev = out["events"].table
    untreated = (ev["modality"] == UNTREATED).any()
    out["cox"] = (cox_by_group(ev[ev["modality"] != UNKNOWN], None, cfg.rule, by="modality", reference=UNTREATED)
                  if untreated else None)
    out["c1"] = (test_resolution_claim(scope, 0.90, day=cfg.day, rule=cfg.rule, population="untreated",
                                       origin=cfg.origin, sensitivity=False) if untreated else None)
    bar.update()
    try:
        out["compare"] = compare_modalities(sub, instrument=cfg.instrument, day=cfg.day, reference="untreated",
                                            origin=cfg.origin, window=cfg.window, rule=comparison_rule(cfg.instrument))
    except ValueError as err:
        out["compare"], out["compare_error"] = None, str(err)
    try:
        out["curves"] = fit_recovery_curves(scope, by="modality", instrument=cfg.instrument, origin=cfg.origin,
                                            min_n=cfg.min_n, progress=False)
    except ValueError as err:
        out["curves"], out["curves_error"] = None, str(err)
    bar.update()
    out["therapists"] = benchmark_therapists(sub, cfg.instrument, cfg.day, cfg.origin, cfg.window, min_n=cfg.min_n,
                                             show_therapists=cfg.show_therapists)
    same = base is sub  # the whole study: reuse what is computed already
    out["benchmark"] = benchmark_clinic(base, cfg.clinic, cfg.instrument, cfg.day, cfg.rule, cfg.origin, cfg.window,
                                        events=ev if same else None, outcomes=out["near"] if same else None)
    bar.update()
    return out

def _per_modality_km(events, day):
    """Cumulative resolution at ``day`` and the median per modality (and overall), from the same events.

    The share and its interval are those of :func:`~backpain_outcomes.verdicts.claim_at_day` (as in
    :func:`~backpain_outcomes.claims.test_resolution_claim`: the exact interval when none or all have
    resolved). Every modality of ``events`` has a row, also one with no episode at risk (``n`` = 0).
    """
    rows = {}
    for key, g in [("all", events), *events.groupby("modality")]:
        at = claim_at_day(g, 0.5, day)
        r = g[g["at_risk"].to_numpy(bool)]
        med = km_median(kaplan_meier(r["day"], r["resolved"], r["entry"])) if len(r) else (np.nan,) * 3
        rows[key] = {"estimate": at["estimate"], "ci_low": at["ci_low"], "ci_high": at["ci_high"], "n": at["n"],
                     "events": at["events"], "median": med[0], "median_low": med[1], "median_high": med[2]}
    return rows


def _other_instruments(sub, cfg):
    """Scored, measured at the horizon and improved, for every other instrument recorded."""
    out, nears = {}, {}
    for inst in sub.instruments:
        if inst == cfg.instrument:
            continue
        near = outcome_at_day(sub, inst, cfg.day, cfg.origin, cfg.window)
        scored = int((sub.n_measurements(inst) > 0).sum())
        out[inst] = (scored, len(near), int(near["responder"].sum()))
        nears[inst] = near
    return out, nears


def _safe_notes(messages, led, suppressed_groups) -> list[str]:
    """Analysis warnings and notes as printable sentences: counts redacted, notes on hidden groups left out."""
    out, dropped = [], False
    names = {label(g).lower() for g in suppressed_groups} | {g.lower() for g in suppressed_groups}
    for msg in dict.fromkeys(str(m).strip().rstrip(".") + "." for m in messages if str(m).strip()):
        low = msg.lower()
        if any(n in low for n in names):
            dropped = True
            continue
        out.append(redact_counts(msg, led))
    if dropped:
        out.append("Notes about groups too small to report are left out.")
    return out



@on_study
def report_content(study, clinic=None, period=None, title=None, rule=DEFAULT_RULE, day: float = 42,
                   origin: str = "onset", instrument: str = "nrs", min_n: int = 5, show_therapists: bool = False,
                   progress: bool = True) -> ReportContent:
    """Compute everything a clinic report shows: tables, figures, numbers and notes, under disclosure control.

    Parameters are those of :func:`~backpain_outcomes.report.clinic_report` (without ``path``).
    ``study`` is an in-memory Study or a partitioned one
    (:func:`~backpain_outcomes.registry.load_partitioned`): the same content either way.

    Returns
    -------
    ReportContent

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> content = report_content(bpo.load_study(bpo.example_path()), clinic="C1", progress=False)
    >>> content.config.origin, content.tables["outcomes"].index[0]
    ('onset', 'Untreated')
    """
    if not hasattr(study, "episodes") or not hasattr(study, "analysis_frame"):
        raise TypeError(f"study must be a Study (from load_study or simulate_study), got {type(study).__name__}")
    cfg = check_config(clinic, period, title, rule, day, origin, instrument, min_n, show_therapists, progress)
    keep = select_episodes(study.episodes, cfg.clinic, cfg.period)
    check_size(int(keep.sum()), cfg)
    scope = study if keep.all() else study.subset(study.episodes.loc[keep, "episode_id"])
    data = ReportData.from_parts([episode_frames(study, cfg)], study.flow(), cfg.origin)
    return content_of(data, cfg, scope, progress)


def content_of(data: ReportData, cfg: ReportConfig, scope, progress: bool = True) -> ReportContent:
    """The report of ``cfg`` from its episode-level ``data``; ``scope`` is the selected study (in memory or
    partitioned), for the recovery curves and the claim test.

    The selection was checked (:func:`~backpain_outcomes.report_config.select_episodes`,
    :func:`~backpain_outcomes.report_config.check_size`) before ``data`` was gathered.
    """
    keep = in_selection(data.episodes, cfg.clinic, cfg.period).to_numpy()
    sub = EpisodeView(data, keep)
    base_keep = in_selection(data.episodes, None, cfg.period).to_numpy()
    base = sub if keep.all() else EpisodeView(data, base_keep)
    bar = tqdm(total=6, desc="clinic report", disable=not progress, leave=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _analyses(scope, sub, base, cfg, bar)
        km = _per_modality_km(res["events"].table, cfg.day)
        others, other_near = _other_instruments(sub, cfg)
        c3 = _c3_events(res["events"].table)
        classes = episode_classes(sub.episodes, sub.n_measurements(cfg.instrument), cfg.day, res["near"],
                                  res["events"].table)
        drawn = [m for m in km if m != "all"]
        days = at_risk_days(cfg.day, float(res["events"].table["day"].max()) if len(res["events"].table) else cfg.day)
        risk = _at_risk(res["events"].table, drawn, days)
        caseload = res["therapists"].episodes.set_index("episode_id")["caseload"]
        led = _ledger(data, sub, cfg, classes, caseload, risk, others, c3)
        bar.update()
        content = _assemble(data, sub, cfg, res, km, others, other_near, classes, led, days, risk, c3)
        bar.update()
    bar.close()
    messages = [str(w.message) for w in caught] + content.pop("analysis_notes")
    hidden = [m for m in km if m != "all" and not led.published(f"mod/{m}/n")]
    return ReportContent(**content, notes=_safe_notes(messages, led, hidden))

def _ledger(data, sub, cfg, classes, caseload, risk, others, c3) -> DisclosureLedger:
    """The suppressed ledger; a selection no suppression can protect is a DisclosureError naming it."""
    try:
        return build_ledger(classes, cfg.min_n, flow=data.flow, caseload=caseload, at_risk=risk, others=others,
                            c3_events=c3, same_instrument=cfg.rule.instrument == cfg.instrument)
    except DisclosureError as err:
        who = f"clinic {cfg.clinic}" if cfg.clinic is not None else "the study"
        when = f" first seen {period_words(cfg.period)}" if cfg.period is not None else ""
        raise DisclosureError(f"{who} has {len(sub.episodes)} episodes{when}, too few to publish a report under "
                              f"min_n={cfg.min_n} without disclosing a small count: {err}") from err


def _c3_events(events):
    un = events[(events["modality"] == UNTREATED) & (events["chronicity"] == "chronic") & events["at_risk"]]
    return int((un["resolved"] & (un["day"] <= 365)).sum()) if len(un) else None


def _at_risk(events, groups, days):
    r = events[events["at_risk"]]
    out = {}
    for g in groups:
        e = r[r["modality"] == g]
        for d in days:
            out[(g, d)] = int(((e["entry"] < d) & (e["day"] >= d)).sum())
    return out


def _assemble(data, sub, cfg, res, km, others, other_near, classes, led, days, risk, c3) -> dict:
    """Display tables, figures, sentences and numbers from the analyses and the suppressed ledger."""
    bench, ther = res["benchmark"], res["therapists"]
    # a curve shows its group's resolutions step by step: drawn only where those counts are published
    shown_mods = [m for m in MODALITY_LEVELS if m in km and km[m]["n"] > 0 and led.published(
        f"mod/{m}/n", f"mod/{m}/at_risk", f"mod/{m}/resolved")]
    hide_ther = [k.split("/", 1)[1] for k, st in led.status.items() if k.startswith("ther/") and k != "ther/all"
                 and st != PUBLISHED and not k.startswith("ther/hidden")]
    ther = ther.without(hide_ther) if hide_ther else ther
    figures = {}
    risk_text = {k: led.text(f"risk/{k[0]}@{k[1]:g}") for k in risk}
    if shown_mods:
        figures["resolution"] = resolution_figure(res["events"].table, shown_mods, risk_text, days, cfg.day,
                                                  cfg.origin, cfg.rule)
    curve_mods = [m for m in MODALITY_LEVELS if m in km and led.published(f"mod/{m}/n")]
    if res["curves"] is not None and (fig := recovery_figure(res["curves"], curve_mods, cfg.instrument, cfg.origin)):
        figures["recovery"] = fig
    trend = trend_table(classes, led)
    if (fig := trend_figure(trend.attrs["machine"], cfg.day)) is not None:
        figures["trend"] = fig
    if (fig := funnel_figure(ther)) is not None:
        figures["funnel"] = fig
    key, key_machine = key_outcomes(cfg, bench, led)
    claims, glossary, numbers = claims_section(cfg, res, km, led, c3)
    ep = sub.episodes
    lo, hi = cfg.period or (None, None)  # an open end: the first or last first visit selected
    lo = ep["first_visit_date"].min() if lo is None else lo
    hi = ep["first_visit_date"].max() if hi is None else hi
    period_text = f"{lo:%d %b %Y} to {hi:%d %b %Y}" if pd.notna(lo) and pd.notna(hi) else "no visit dates recorded"
    notes = list(res["events"].notes) + list(bench.notes) + list(ther.notes)
    for name in ("compare", "curves"):
        if res.get(name) is not None:
            notes += list(res[name].notes)
        elif res.get(f"{name}_error"):
            notes.append(f"{'Adjusted comparison' if name == 'compare' else 'Recovery curves'} not shown: "
                         f"{res[name + '_error']}")
    tables = {"key_outcomes": key, "case_mix": case_mix_table(classes, sub, cfg, led),
              "outcomes": outcome_table(cfg, km, res, led), "pain_function": pain_function_table(cfg, res["near"], other_near, led, sub),
              "trend": trend, "follow_up": follow_up_table(classes, sub.episodes, sub.n_measurements(cfg.instrument), cfg, led),
              "therapists": therapist_table(ther, led)}
    return {"config": cfg, "title": cfg.title or ("Back-pain outcome report" + (f": clinic {cfg.clinic}" if cfg.clinic else "")),
            "clinic_text": cfg.clinic or "all clinics in the data", "period_text": period_text,
            "generated": _dt.date.today().isoformat(), "table": key, "tables": tables, "figures": figures,
            "numbers": {**numbers, "key_outcomes": key_machine}, "claims": claims, "glossary": glossary,
            "flow": flow_numbers(data, led), "ledger": led, "benchmark": bench, "therapists": ther,
            "text": paragraphs(cfg, led, ther, bench), "analysis_notes": notes}
