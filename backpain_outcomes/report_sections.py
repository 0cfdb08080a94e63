"""Tables of the clinic report, built from the analyses and the suppressed ledger.

Every count is printed through the ledger (a number, ``"<min_n"`` or
``"suppressed"``); a rate, mean or median is printed only when the counts
behind it are published. The claims and the sentences that depend on the
data are in :mod:`~backpain_outcomes.report_claims`, the shared formatting
in :mod:`~backpain_outcomes.report_format`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .report_claims import claims_section, paragraphs
from .report_format import (
    NOT_MEASURED,
    NOT_SHOWN,
    ci_text,
    day_text,
    days_text,
    is_finite,
    mean_ci,
    not_estimable,
    pct_text,
    share_text,
    wilson,
)
from .vocabulary import MCID_ABSOLUTE, MODALITY_LEVELS, UNKNOWN, UNTREATED, instrument_label, label

__all__ = ["key_outcomes", "outcome_table", "pain_function_table", "trend_table", "follow_up_table", "case_mix_table",
           "therapist_table", "claims_section", "flow_numbers", "paragraphs", "first_score_text", "NOT_SHOWN",
           "NOT_MEASURED"]


def _modalities(km) -> list[str]:
    return [m for m in MODALITY_LEVELS if m in km]


def _key_value(code, kind, r, cfg) -> str:
    """This clinic's value of one key outcome (its counts are published): never "n/a" or "nan"."""
    fmt = _FORMATS[kind]
    if r["n"] == 0:
        return {"median_days": not_estimable("no episode was followed after its first visit"),
                "followed_up": f"{NOT_MEASURED}: no {instrument_label(cfg.instrument)} score recorded"}.get(
            code, f"{NOT_MEASURED}: no episode has a score within {cfg.window:g} days of day {cfg.day:g}")
    if kind == "days":
        return days_text(r["observed"], r["ci_low"], r["ci_high"]).replace(" (", " days (", 1)
    if not is_finite(r["observed"]):
        return not_estimable("no episode measured")
    if not is_finite(r["ci_low"], r["ci_high"]):
        return f"{fmt(r['observed'])} (no interval: one episode measured)"
    return f"{fmt(r['observed'])} ({fmt(r['ci_low'])}-{fmt(r['ci_high'])})".replace("%-", "-", 1)


def _key_expected(kind, r) -> str:
    """The value expected for the case mix and its range, or "no benchmark"."""
    if not is_finite(r["expected"]):
        return "no benchmark"
    fmt = _FORMATS[kind]
    if kind == "days":
        return f"{r['expected']:.0f} days (range {day_text(r['expected_low'])}-{day_text(r['expected_high'])})"
    if not is_finite(r["expected_low"], r["expected_high"]):
        return f"{fmt(r['expected'])} (range not estimable)"
    return f"{fmt(r['expected'])} (range {fmt(r['expected_low'])}-{fmt(r['expected_high'])})".replace("%-", "-", 1)


_FORMATS = {"share": lambda x: pct_text(x), "score": lambda x: f"{x:.1f}", "days": lambda x: f"{x:.0f} days"}


def key_outcomes(cfg, bench, led):
    """The first page: each key outcome next to its case-mix benchmark (display table, machine rows)."""
    t = bench.table.set_index("outcome")
    inst = instrument_label(cfg.instrument)
    spec = [("improved", f"Improved by a clinically important amount at {cfg.horizon}", ("tot/improved", "tot/measured"),
             "share", True),
            ("score_at_day", f"Average {inst} at {cfg.horizon} (lower is better)", ("tot/measured",), "score", False),
            ("median_days", f"Median days from {cfg.origin_text} to resolution", ("tot/at_risk",), "days", False),
            ("followed_up", "Followed up (a second score recorded)", ("tot/followed", "tot/scored"), "share", True)]
    rows, machine = [], []
    for code, name, keys, kind, higher_better in spec:
        r = t.loc[code]
        ok = led.published(*keys)
        value = _key_value(code, kind, r, cfg) if ok else NOT_SHOWN
        has_bench = ok and is_finite(r["expected"])
        expected = _key_expected(kind, r) if has_bench else "no benchmark"
        if not has_bench or not is_finite(r["observed"], r["expected_low"], r["expected_high"]):
            verdict = ""
        elif r["expected_low"] <= r["observed"] <= r["expected_high"]:
            verdict = "in line with expected"
        else:
            better = (r["observed"] > r["expected_high"]) == higher_better
            verdict = "better than expected" if better else "worse than expected"
        rows.append({"Outcome": name, "This clinic (95% CI)": value, "Expected for this case mix (95% range)": expected,
                     "Compared with expected": verdict})
        machine.append({"outcome": code, "published": ok, **{k: r[k] for k in ("observed", "ci_low", "ci_high", "expected",
                                                                              "expected_low", "expected_high")}})
    return pd.DataFrame(rows), pd.DataFrame(machine)


def outcome_table(cfg, km, res, led) -> pd.DataFrame:
    """Outcomes by modality, the untreated comparison row first and filled."""
    cmp = res.get("compare")
    ctab = cmp.table.set_index("modality") if cmp is not None and len(cmp.table) else pd.DataFrame()
    inst = cfg.instrument.upper()
    rows, machine = {}, []
    for m in _modalities(km):
        k = km[m]
        if not led.published(f"mod/{m}/at_risk", f"mod/{m}/resolved"):
            resolved = NOT_SHOWN
        elif k["n"] == 0:
            resolved = not_estimable("no episode was followed after its first visit")
        elif not is_finite(k["estimate"]):
            resolved = "not followed that long"
        else:
            resolved = (f"{pct_text(k['estimate'])} ({ci_text(k['ci_low'], k['ci_high'])}); {led.text(f'mod/{m}/resolved')} of "
                        f"{led.text(f'mod/{m}/at_risk')} followed")
        median = (NOT_SHOWN if not led.published(f"mod/{m}/at_risk") else
                  not_estimable("no episode was followed after its first visit") if k["n"] == 0 else
                  days_text(k["median"], k["median_low"], k["median_high"]))
        if m == UNTREATED:
            diff = "reference"
        elif m not in ctab.index:
            diff = "no comparison"
        elif not led.published(f"mod/{m}/measured", f"mod/{UNTREATED}/measured"):
            diff = NOT_SHOWN
        elif is_finite(ctab.loc[m, "difference"], ctab.loc[m, "ci_low"], ctab.loc[m, "ci_high"]):
            c = ctab.loc[m]
            diff = f"{c['difference']:+.1f} ({c['ci_low']:+.1f} to {c['ci_high']:+.1f})"
        else:
            diff = not_estimable("see the notes on the adjusted comparison")
        rows[label(m)] = {"Episodes": led.text(f"mod/{m}/n"),
                          f"Improved at {cfg.horizon} (95% CI)": share_text(led, f"mod/{m}/improved", f"mod/{m}/measured"),
                          f"Resolved by day {cfg.day:g} (95% CI)": resolved,
                          "Median days to resolution (95% CI)": median,
                          f"Difference in {inst} at {cfg.horizon} vs untreated, adjusted (points, 95% CI)": diff}
        machine.append({"modality": m, **k, "published": led.published(f"mod/{m}/at_risk", f"mod/{m}/resolved")})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["machine"] = pd.DataFrame(machine)
    return out


def first_score_text(study, instrument, led, scored_key) -> str:
    """Mean first score of the episodes with a score of ``instrument``: one computation for every table."""
    if not led.published(scored_key):
        return NOT_SHOWN
    base = study.episodes.get(f"baseline_{instrument}")
    base = pd.to_numeric(base, errors="coerce").dropna() if base is not None else pd.Series(dtype=float)
    return f"{base.mean():.1f}" if len(base) else f"{NOT_MEASURED}: no {instrument_label(instrument)} score recorded"


def _mean_text(values, published: bool, sep: str) -> str:
    """``"4.1 (3.6-4.6)"``; "not measured" when no episode was, no interval for one episode."""
    if not published:
        return NOT_SHOWN
    m, lo, hi = mean_ci(values)
    if not is_finite(m):
        return NOT_MEASURED
    if not is_finite(lo, hi):
        return f"{m:.1f} (no interval: one episode measured)"
    return f"{m:.1f} ({lo:.1f}{sep}{hi:.1f})"


def pain_function_table(cfg, near, other_near, led, study) -> pd.DataFrame:
    """Pain and function: one row per instrument recorded (the report's instrument first)."""
    rows = {}
    for inst, nr, prefix in [(cfg.instrument, near, "tot"), *[(i, n, f"inst/{i}") for i, n in other_near.items()]]:
        measured, improved = f"{prefix}/measured", f"{prefix}/improved"
        scored = f"{prefix}/scored"
        ok = led.published(measured)
        rows[instrument_label(inst)] = {
            "Episodes with a score": led.text(scored), f"Measured at {cfg.horizon}": led.text(measured),
            "Mean first score": first_score_text(study, inst, led, scored),
            f"Mean score at {cfg.horizon} (95% CI)": _mean_text(nr["score"], ok, "-"),
            "Mean improvement (95% CI)": _mean_text(nr["improvement"], ok, " to "),
            "Clinically important change": f"{MCID_ABSOLUTE[inst]:g} points and 30%",
            "Improved by that much (95% CI)": share_text(led, improved, measured)}
    return pd.DataFrame.from_dict(rows, orient="index")


def trend_table(classes, led) -> pd.DataFrame:
    """Episodes, measured and improved (Wilson interval) per quarter of first visit."""
    rows, machine = {}, []
    for q in sorted(classes["quarter"].unique()):
        rows[q] = {"Episodes": led.text(f"q/{q}/n"), "Measured at the horizon": led.text(f"q/{q}/measured"),
                   "Improved (95% CI)": share_text(led, f"q/{q}/improved", f"q/{q}/measured")}
        k, n = led.value(f"q/{q}/improved"), led.value(f"q/{q}/measured")
        ok = led.published(f"q/{q}/improved", f"q/{q}/measured") and n > 0
        lo, hi = wilson(k, n)
        machine.append({"quarter": q, "rate": k / n if ok else np.nan, "ci_low": lo if ok else np.nan,
                        "ci_high": hi if ok else np.nan})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["machine"] = pd.DataFrame(machine)
    return out


def _median_iqr(values, none: str = "none recorded") -> str:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(float)
    if not len(v):
        return none
    q = np.percentile(v, [50, 25, 75])
    return f"{q[0]:.0f} ({q[1]:.0f}-{q[2]:.0f})"


def follow_up_table(classes, episodes, n_meas, cfg, led) -> pd.DataFrame:
    """Follow-up completeness, measurements and treatment sessions per episode, by modality.

    ``n_meas`` is the number of measurements of the report's instrument per episode (indexed by ``episode_id``).
    """
    ep = episodes.set_index("episode_id")
    rows = {}
    for m in [m for m in MODALITY_LEVELS if m in set(classes["modality"])]:
        ids = classes.loc[classes["modality"] == m, "episode_id"]
        ok = led.published(f"mod/{m}/n")
        rows[label(m)] = {
            "Episodes": led.text(f"mod/{m}/n"),
            "Followed up (a second score; 95% CI)": share_text(led, f"mod/{m}/followed", f"mod/{m}/scored",
                                                           empty=f"{NOT_MEASURED}: no score recorded"),
            f"{cfg.instrument.upper()} scores per episode, median (IQR)": _median_iqr(n_meas.reindex(ids).fillna(0)) if ok else NOT_SHOWN,
            "Treatment sessions per episode, median (IQR)": (_median_iqr(ep.loc[ids, "n_sessions"]) if ok and m not in (UNTREATED, UNKNOWN)
                                                            else "none recorded" if ok else NOT_SHOWN)}
    return pd.DataFrame.from_dict(rows, orient="index")


def case_mix_table(classes, sub, cfg, led) -> pd.DataFrame:
    """The case mix behind the benchmarks: chronicity, age and first score."""
    rows = {label(c): led.text(f"chr/{c}") for c in ("acute", "subacute", "chronic", "unknown") if f"chr/{c}" in led.cells}
    ok = led.published("all")
    age = pd.to_numeric(sub.episodes["age"], errors="coerce")
    rows["Mean age (years)"] = (NOT_SHOWN if not ok else f"{age.mean():.0f}" if age.notna().any() else "not recorded")
    # the same computation and wording as the "Mean first score" of the pain and function table
    rows[f"Mean first {instrument_label(cfg.instrument)}"] = first_score_text(sub, cfg.instrument, led, "tot/scored")
    return pd.DataFrame({"Episodes (chronicity: time from onset to first visit)": rows})


def _number(pattern: str):
    return lambda x: pattern.format(x) if is_finite(x) else "not estimable"


def therapist_table(ther, led) -> pd.DataFrame:
    """Therapists shown, with their risk-adjusted improvement and the one control limit."""
    t = ther.table
    if t.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "Therapist": t["therapist"].astype(str), "Episodes": [led.text(f"ther/{x}") for x in t["therapist"]],
        "Observed improvement (points)": t["observed"].map(_number("{:.1f}")),
        "Expected for their case mix": t["expected"].map(_number("{:.1f}")),
        "Observed - expected": t["o_minus_e"].map(_number("{:+.1f}")),
        f"{ther.limit:.1%} control limit (±)": t["upper"].map(_number("{:.1f}")),
        "Flag": t["flag"].replace("", "within limits")}).reset_index(drop=True)



def flow_numbers(study, led) -> dict:
    """Rows read, used and excluded by reason per input table, and the episodes of the report, as printed."""
    tables = []
    for key in [k for k in led.cells if k.startswith("rows/") and k.endswith("/read")]:
        table = key.split("/")[1]
        fates = [k for k in led.cells if k.startswith(f"rows/{table}/") and k not in (key, f"rows/{table}/used")]
        tables.append({"table": table, "read": led.text(key), "used": led.text(f"rows/{table}/used"),
                       "excluded": [(k.split("/", 2)[2], led.text(k)) for k in fates if led.value(k) > 0]})
    status = [(label(s) if s != "treated" else "Treated", led.text(f"status/{s}") if f"status/{s}" in led.cells else "0")
              for s in ("treated", UNTREATED, UNKNOWN)]
    return {"tables": tables, "episodes": led.text("all"), "status": status,
            "scored": led.text("tot/scored"), "followed": led.text("tot/followed")}
