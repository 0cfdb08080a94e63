"""Tables and sentences of the clinic report, built from the analyses and the suppressed ledger.

Every count is printed through the ledger (a number, ``"<min_n"`` or
``"suppressed"``); a rate, mean or median is printed only when the counts
behind it are published.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from .survival import kaplan_meier, km_at_days
from .vocabulary import MCID_ABSOLUTE, MODALITY_LEVELS, TREATED_MODALITIES, UNKNOWN, UNTREATED, instrument_label, label

__all__ = ["key_outcomes", "outcome_table", "pain_function_table", "trend_table", "follow_up_table", "case_mix_table",
           "therapist_table", "claims_section", "flow_numbers", "paragraphs", "NOT_SHOWN"]

NOT_SHOWN = "not shown (small numbers)"


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def _ci(lo, hi) -> str:
    return "n/a" if not (np.isfinite(lo) and np.isfinite(hi)) else f"{100 * lo:.0f}-{100 * hi:.0f}%"


def _wilson(k, n):
    return proportion_confint(k, n, 0.05, method="wilson") if n else (np.nan, np.nan)


def _share(led, k_key, n_key) -> str:
    """``"68% (58-77%), 45 of 66"`` when both counts are published."""
    if not led.published(k_key, n_key):
        return NOT_SHOWN
    k, n = led.value(k_key), led.value(n_key)
    if n == 0:
        return "none"
    lo, hi = _wilson(k, n)
    return f"{_pct(k / n)} ({_ci(lo, hi)}), {led.text(k_key)} of {led.text(n_key)}"


def _days(med, lo, hi) -> str:
    if not np.isfinite(med):
        return "not reached"
    return f"{med:.0f} ({lo:.0f}-{hi:.0f})" if np.isfinite(hi) else f"{med:.0f} ({lo:.0f}-not reached)"


def _mean_ci(values) -> tuple[float, float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else np.nan), np.nan, np.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _modalities(km) -> list[str]:
    return [m for m in MODALITY_LEVELS if m in km]


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
        fmt = {"share": lambda x: _pct(x), "score": lambda x: f"{x:.1f}", "days": lambda x: f"{x:.0f} days"}[kind]
        if not ok:
            value = NOT_SHOWN
        elif kind == "days":
            value = _days(r["observed"], r["ci_low"], r["ci_high"]).replace(" (", " days (", 1)
        else:
            value = f"{fmt(r['observed'])} ({fmt(r['ci_low'])}-{fmt(r['ci_high'])})".replace("%-", "-", 1)
        has_bench = ok and np.isfinite(r["expected"])
        expected = (f"{fmt(r['expected'])} (range {fmt(r['expected_low'])}-{fmt(r['expected_high'])})".replace("%-", "-", 1)
                    .replace(" days-", "-").replace(" days)", ")") if has_bench else "no benchmark")
        if not has_bench or not np.isfinite(r["observed"]):
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
        elif not np.isfinite(k["estimate"]):
            resolved = "not followed that long"
        else:
            resolved = (f"{_pct(k['estimate'])} ({_ci(k['ci_low'], k['ci_high'])}); {led.text(f'mod/{m}/resolved')} of "
                        f"{led.text(f'mod/{m}/at_risk')} followed")
        median = _days(k["median"], k["median_low"], k["median_high"]) if led.published(f"mod/{m}/at_risk") else NOT_SHOWN
        if m == UNTREATED:
            diff = "reference"
        elif m in ctab.index and led.published(f"mod/{m}/measured", f"mod/{UNTREATED}/measured") and np.isfinite(
                ctab.loc[m, "difference"]):
            c = ctab.loc[m]
            diff = f"{c['difference']:+.1f} ({c['ci_low']:+.1f} to {c['ci_high']:+.1f})"
        else:
            diff = NOT_SHOWN if m in ctab.index else "no comparison"
        rows[label(m)] = {"Episodes": led.text(f"mod/{m}/n"),
                          f"Improved at {cfg.horizon} (95% CI)": _share(led, f"mod/{m}/improved", f"mod/{m}/measured"),
                          f"Resolved by day {cfg.day:g} (95% CI)": resolved,
                          "Median days to resolution (95% CI)": median,
                          f"Difference in {inst} at {cfg.horizon} vs untreated, adjusted (points, 95% CI)": diff}
        machine.append({"modality": m, **k, "published": led.published(f"mod/{m}/at_risk", f"mod/{m}/resolved")})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["machine"] = pd.DataFrame(machine)
    return out


def pain_function_table(cfg, near, other_near, led) -> pd.DataFrame:
    """Pain and function: one row per instrument recorded (the report's instrument first)."""
    rows = {}
    for inst, nr, prefix in [(cfg.instrument, near, "tot"), *[(i, n, f"inst/{i}") for i, n in other_near.items()]]:
        measured, improved = f"{prefix}/measured", f"{prefix}/improved"
        scored = f"{prefix}/scored"
        ok = led.published(measured)
        first = _mean_ci(nr["baseline"])[0]
        at, lo, hi = _mean_ci(nr["score"])
        ch, clo, chi = _mean_ci(nr["improvement"])
        rows[instrument_label(inst)] = {
            "Episodes with a score": led.text(scored), f"Measured at {cfg.horizon}": led.text(measured),
            "Mean first score": f"{first:.1f}" if ok else NOT_SHOWN,
            f"Mean score at {cfg.horizon} (95% CI)": f"{at:.1f} ({lo:.1f}-{hi:.1f})" if ok and np.isfinite(lo) else NOT_SHOWN,
            "Mean improvement (95% CI)": f"{ch:.1f} ({clo:.1f} to {chi:.1f})" if ok and np.isfinite(clo) else NOT_SHOWN,
            "Clinically important change": f"{MCID_ABSOLUTE[inst]:g} points and 30%",
            "Improved by that much (95% CI)": _share(led, improved, measured)}
    return pd.DataFrame.from_dict(rows, orient="index")


def trend_table(classes, led) -> pd.DataFrame:
    """Episodes, measured and improved (Wilson interval) per quarter of first visit."""
    rows, machine = {}, []
    for q in sorted(classes["quarter"].unique()):
        rows[q] = {"Episodes": led.text(f"q/{q}/n"), "Measured at the horizon": led.text(f"q/{q}/measured"),
                   "Improved (95% CI)": _share(led, f"q/{q}/improved", f"q/{q}/measured")}
        k, n = led.value(f"q/{q}/improved"), led.value(f"q/{q}/measured")
        ok = led.published(f"q/{q}/improved", f"q/{q}/measured") and n > 0
        lo, hi = _wilson(k, n)
        machine.append({"quarter": q, "rate": k / n if ok else np.nan, "ci_low": lo if ok else np.nan,
                        "ci_high": hi if ok else np.nan})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["machine"] = pd.DataFrame(machine)
    return out


def _median_iqr(values) -> str:
    q = np.nanpercentile(np.asarray(values, float), [50, 25, 75]) if len(values) else [np.nan] * 3
    return f"{q[0]:.0f} ({q[1]:.0f}-{q[2]:.0f})"


def follow_up_table(classes, sub, cfg, led) -> pd.DataFrame:
    """Follow-up completeness, measurements and treatment sessions per episode, by modality."""
    n_meas = sub.scores[sub.scores["instrument"] == cfg.instrument].groupby("episode_id").size()
    ep = sub.episodes.set_index("episode_id")
    rows = {}
    for m in [m for m in MODALITY_LEVELS if m in set(classes["modality"])]:
        ids = classes.loc[classes["modality"] == m, "episode_id"]
        ok = led.published(f"mod/{m}/n")
        rows[label(m)] = {
            "Episodes": led.text(f"mod/{m}/n"),
            "Followed up (a second score; 95% CI)": _share(led, f"mod/{m}/followed", f"mod/{m}/scored"),
            f"{cfg.instrument.upper()} scores per episode, median (IQR)": _median_iqr(n_meas.reindex(ids).fillna(0)) if ok else NOT_SHOWN,
            "Treatment sessions per episode, median (IQR)": (_median_iqr(ep.loc[ids, "n_sessions"]) if ok and m not in (UNTREATED, UNKNOWN)
                                                            else "none recorded" if ok else NOT_SHOWN)}
    return pd.DataFrame.from_dict(rows, orient="index")


def case_mix_table(classes, sub, cfg, led) -> pd.DataFrame:
    """The case mix behind the benchmarks: chronicity, age and first score."""
    rows = {label(c): led.text(f"chr/{c}") for c in ("acute", "subacute", "chronic", "unknown") if f"chr/{c}" in led.cells}
    ok = led.published("all")
    age = pd.to_numeric(sub.episodes["age"], errors="coerce")
    base = sub.episodes.get(f"baseline_{cfg.instrument}")
    rows["Mean age (years)"] = f"{age.mean():.0f}" if ok and age.notna().any() else "not recorded"
    if base is not None:
        rows[f"Mean first {instrument_label(cfg.instrument)}"] = f"{base.mean():.1f}" if ok else NOT_SHOWN
    return pd.DataFrame({"Episodes (chronicity: time from onset to first visit)": rows})


def therapist_table(ther, led) -> pd.DataFrame:
    """Therapists shown, with their risk-adjusted improvement and the one control limit."""
    t = ther.table
    if t.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "Therapist": t["therapist"].astype(str), "Episodes": [led.text(f"ther/{x}") for x in t["therapist"]],
        "Observed improvement (points)": t["observed"].map("{:.1f}".format),
        "Expected for their case mix": t["expected"].map("{:.1f}".format),
        "Observed - expected": t["o_minus_e"].map("{:+.1f}".format),
        f"{ther.limit:.1%} control limit (±)": t["upper"].map("{:.1f}".format),
        "Flag": t["flag"].replace("", "within limits")}).reset_index(drop=True)


def _answer(code: str) -> str:
    return {"not supported": "No", "supported": "Yes", "not refuted": "Cannot tell", "insufficient data":
            "Too few episodes to tell", "not estimable": "Cannot tell"}.get(code, "Cannot tell")


def claims_section(cfg, res, km, led, c3):
    """The study's claims in plain words, a glossary, and the machine numbers behind them."""
    day, origin = f"{cfg.day:g}", cfg.origin_text
    c1 = res["c1"]
    numbers = {}
    claims = []
    if c1 is not None:
        numbers["untreated_resolution"] = {"estimate": c1.estimate, "ci_low": c1.ci_low, "ci_high": c1.ci_high,
                                           "n": c1.n, "events": c1.events, "day": cfg.day, "rule": cfg.rule.code,
                                           "origin": cfg.origin, "verdict_code": c1.verdict_code,
                                           "published": led.published(f"mod/{UNTREATED}/at_risk", f"mod/{UNTREATED}/resolved")}
    if c1 is None:
        detail, answer = "The data hold no episode known to be untreated, so this cannot be checked.", "Cannot tell"
    elif numbers["untreated_resolution"]["published"]:
        answer = _answer(c1.verdict_code)
        detail = (f"{_pct(c1.estimate)} (95% CI {_ci(c1.ci_low, c1.ci_high)}) of untreated episodes had resolved by day "
                  f"{day} from {origin}: {led.text(f'mod/{UNTREATED}/resolved')} of {led.text(f'mod/{UNTREATED}/at_risk')} "
                  "untreated episodes followed. The 90% figure comes from people who stopped consulting, not from "
                  "people whose pain had gone.")
    else:
        answer = "Too few episodes to tell"
        detail = (f"Too few untreated episodes were followed, or resolved by day {day}, to report the share without "
                  "revealing a small count.")
    claims.append({"statement": f"Almost 90% of back-pain episodes resolve on their own within {cfg.horizon}.",
                   "answer": answer, "detail": detail})
    claims.append(_c2(cfg, res, km, led))
    claims.append(_c3(cfg, res, led, c3))
    claims.append(_c4(cfg, res, km, led))
    glossary = [
        ("Improved", f"the {instrument_label(cfg.instrument)} at the visit nearest day {day} is at least "
                     f"{MCID_ABSOLUTE[cfg.instrument]:g} points and 30% below the first score: a change patients notice."),
        ("Resolved", f"{cfg.rule!r}: the pain has (nearly) gone. Counted by day {day} from {origin}."),
        ("95% CI (confidence interval)", "the range of values compatible with the data; narrower with more episodes."),
        ("Expected for this case mix", "what episodes like this clinic's (same chronicity, first score and age) "
                                       "achieved; the range is where this clinic's figure would fall 95 times in 100 "
                                       "if it did exactly as expected."),
        ("Kaplan-Meier", "a way of counting resolutions that does not treat episodes no longer followed as failures."),
        ("Times as fast", "how much faster one group resolves than another at any moment (a hazard ratio), "
                          "after allowing for first score and chronicity."),
        ("Control limit", "a line outside which a therapist's result is unlikely to be chance alone."),
        ("<5 and suppressed", "counts under the threshold are shown as <5; 'suppressed' marks a count hidden so that "
                              "a small one cannot be worked out from totals."),
    ]
    return claims, glossary, numbers


def _c2(cfg, res, km, led) -> dict:
    mods = [m for m in TREATED_MODALITIES if m in km and led.published(f"mod/{m}/at_risk", f"mod/{m}/resolved")]
    statement = "Remedial massage helps most back-pain episodes resolve."
    if not mods:
        return {"statement": statement, "answer": "Too few episodes to tell", "detail": "No modality is large enough to report."}
    hr = _hazards(res, mods)
    parts, majority = [], 0
    for m in mods:
        k = km[m]
        txt = f"{label(m)} {_pct(k['estimate'])} ({_ci(k['ci_low'], k['ci_high'])})"
        if m in hr.index and led.published(f"mod/{UNTREATED}/at_risk"):
            h = hr.loc[m]
            txt += f", {h['hazard_ratio']:.1f} times as fast as untreated ({h['hr_ci_low']:.1f}-{h['hr_ci_high']:.1f})"
        parts.append(txt)
        majority += bool(np.isfinite(k["ci_low"]) and k["ci_low"] > 0.5)
    answer = "Yes" if majority == len(mods) else "No" if all(km[m]["ci_high"] < 0.5 for m in mods) else "Partly"
    return {"statement": statement, "answer": answer,
            "detail": f"Share resolved by day {cfg.day:g}: " + "; ".join(parts) + ". Treated and untreated patients "
                      "were not assigned at random, so differences are associations, not proof."}


def _hazards(res, mods) -> pd.DataFrame:
    """Hazard ratios of the modalities against untreated (one Cox model, adjusted; shared with C4)."""
    fit = res.get("cox")
    return fit.table.set_index("level") if fit is not None and fit.fitted else pd.DataFrame()


def _c3(cfg, res, led, c3) -> dict:
    statement = "Chronic back pain does not resolve on its own."
    if c3 is None or not led.published("c3/at_risk", "c3/resolved_365"):
        return {"statement": statement, "answer": "Too few episodes to tell",
                "detail": "Too few untreated chronic episodes were followed to report."}
    ev = res["events"].table
    g = ev[(ev["modality"] == UNTREATED) & (ev["chronicity"] == "chronic") & ev["at_risk"]]
    at = km_at_days(kaplan_meier(g["day"], g["resolved"], g["entry"]), [365], g["day"], g["entry"], g["resolved"]).iloc[0]
    est, lo, hi = at["cumulative_resolution"], at["ci_low"], at["ci_high"]
    if est == 0:  # no resolution: the log-log interval is not defined; the exact upper bound is 1 - 0.025^(1/n)
        lo, hi = 0.0, 1 - 0.025 ** (1 / len(g))
    answer = "Mostly true here" if hi < 0.5 else "No" if lo > 0.5 else "Cannot tell"
    return {"statement": statement, "answer": answer,
            "detail": (f"{_pct(est)} (95% CI {_ci(lo, hi)}) of untreated chronic episodes had resolved within a year: "
                       f"{led.text('c3/resolved_365')} of {led.text('c3/at_risk')} followed." if np.isfinite(est) else
                       "Untreated chronic episodes were not followed for a year.")}


def _c4(cfg, res, km, led) -> dict:
    statement = "The five named massage modalities differ in how fast pain resolves."
    mods = [m for m in TREATED_MODALITIES if m in km and led.published(f"mod/{m}/at_risk")]
    fit = res.get("cox")
    if len(mods) < 2 or fit is None or not fit.fitted or not set(mods) <= set(fit.params.index):
        return {"statement": statement, "answer": "Too few episodes to tell",
                "detail": "Fewer than two modalities large enough to compare."}
    beta = fit.params[mods].to_numpy()
    cov = fit.cov.loc[mods, mods].to_numpy()
    contrast = np.eye(len(mods))[1:] - np.eye(len(mods))[0]  # every modality against the first: all equal?
    d = contrast @ beta
    chi2 = float(d @ np.linalg.solve(contrast @ cov @ contrast.T, d))
    p = float(stats.chi2.sf(chi2, len(d)))
    differ = p < 0.05
    return {"statement": statement, "answer": "Yes" if differ else "No clear difference",
            "detail": (f"One test across {len(mods)} modalities, allowing for first score and chronicity: "
                       + ("the differences are larger than chance would usually produce (p = " if differ else
                          "the differences are within what chance produces (p = ") + f"{p:.2f}).")}


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


def paragraphs(cfg, led, ther, bench) -> dict:
    """The sentences that depend on the data."""
    inst = instrument_label(cfg.instrument)
    out = {"responders_vs_resolved": (
        f"Two outcomes appear in this report and they measure different things: improved means the {inst} at the "
        f"visit nearest day {cfg.day:g} was at least {MCID_ABSOLUTE[cfg.instrument]:g} points and 30% below the first "
        f"score, while resolved means {cfg.rule!r} by day {cfg.day:g} from {cfg.origin_text}, so an episode can "
        "improve without resolving and the share improved is usually the larger.")}
    out["benchmark"] = ("Expected values come from all clinics in the data, adjusted to this clinic's case mix."
                        if bench.source == "all clinics" else
                        "Expected values come from the published natural course of back pain "
                        f"({'Menezes Costa et al. 2012' if bench.source == 'costa2012' else 'Wallwork et al. 2024'}), "
                        "which reports mean pain only; the other outcomes have no published benchmark.")
    flagged = ther.flagged()
    limit = f"{ther.limit:.1%}"
    if ther.table.empty:
        out["therapists"] = "Too few treated episodes with a recorded therapist to benchmark therapists."
    else:
        text = (f"One control limit is used: {limit}. A therapist outside it did better or worse than their case mix "
                "predicts by more than chance usually produces; inside it, differences are noise. ")
        if len(flagged):
            text += "Outside the limit: " + ", ".join(f"{r.therapist} ({r.flag})" for r in flagged.itertuples()) + "."
        else:
            text += "No therapist is outside the limit."
        if ther.n_hidden:
            text += (f" {ther.n_hidden} therapist(s) with fewer than {cfg.min_n} benchmarked episodes, or hidden to "
                     "protect them, are not shown.")
        out["therapists"] = text
    unknown = led.text(f"status/{UNKNOWN}") if f"status/{UNKNOWN}" in led.cells else "0"
    out["unknown"] = (f"Treatment status unknown: {unknown} episodes (no treatment session recorded and not declared "
                      "untreated); they are counted here and never counted as untreated.")
    return out
