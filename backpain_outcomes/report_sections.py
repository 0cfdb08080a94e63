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

from .verdicts import claim_at_day
from .vocabulary import MCID_ABSOLUTE, MODALITY_LEVELS, TREATED_MODALITIES, UNKNOWN, UNTREATED, instrument_label, label

__all__ = ["key_outcomes", "outcome_table", "pain_function_table", "trend_table", "follow_up_table", "case_mix_table",
           "therapist_table", "claims_section", "flow_numbers", "paragraphs", "first_score_text", "NOT_SHOWN",
           "NOT_MEASURED"]

NOT_SHOWN = "not shown (small numbers)"
#: A statistic of episodes of which none was measured (never "n/a" or "nan").
NOT_MEASURED = "not measured"


def _finite(*values) -> bool:
    return all(v is not None and np.isfinite(float(v)) for v in values)


def _not_estimable(reason: str) -> str:
    return f"not estimable: {reason}"


def _pct(x) -> str:
    return f"{100 * x:.0f}%" if _finite(x) else "not estimable"


def _ci(lo, hi) -> str:
    return f"{100 * lo:.0f}-{100 * hi:.0f}%" if _finite(lo, hi) else "no interval"


def _wilson(k, n):
    return proportion_confint(k, n, 0.05, method="wilson") if n else (np.nan, np.nan)


def _share(led, k_key, n_key, empty: str = NOT_MEASURED) -> str:
    """``"68% (58-77%), 45 of 66"`` when both counts are published; ``empty`` when ``n`` is 0."""
    if not led.published(k_key, n_key):
        return NOT_SHOWN
    k, n = led.value(k_key), led.value(n_key)
    if n == 0:
        return empty
    lo, hi = _wilson(k, n)
    return f"{_pct(k / n)} ({_ci(lo, hi)}), {led.text(k_key)} of {led.text(n_key)}"


def _days(med, lo, hi) -> str:
    if not _finite(med):
        return "not reached"
    return f"{med:.0f} ({_day(lo)}-{_day(hi)})"


def _day(x) -> str:
    """A bound of a median time: a day, or "not reached" when the curve never crosses one half."""
    return f"{x:.0f}" if _finite(x) else "not reached"


def _mean_ci(values) -> tuple[float, float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else np.nan), np.nan, np.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _modalities(km) -> list[str]:
    return [m for m in MODALITY_LEVELS if m in km]


def _key_value(code, kind, r, cfg) -> str:
    """This clinic's value of one key outcome (its counts are published): never "n/a" or "nan"."""
    fmt = _FORMATS[kind]
    if r["n"] == 0:
        return {"median_days": _not_estimable("no episode was followed after its first visit"),
                "followed_up": f"{NOT_MEASURED}: no {instrument_label(cfg.instrument)} score recorded"}.get(
            code, f"{NOT_MEASURED}: no episode has a score within {cfg.window:g} days of day {cfg.day:g}")
    if kind == "days":
        return _days(r["observed"], r["ci_low"], r["ci_high"]).replace(" (", " days (", 1)
    if not _finite(r["observed"]):
        return _not_estimable("no episode measured")
    if not _finite(r["ci_low"], r["ci_high"]):
        return f"{fmt(r['observed'])} (no interval: one episode measured)"
    return f"{fmt(r['observed'])} ({fmt(r['ci_low'])}-{fmt(r['ci_high'])})".replace("%-", "-", 1)


def _key_expected(kind, r) -> str:
    """The value expected for the case mix and its range, or "no benchmark"."""
    if not _finite(r["expected"]):
        return "no benchmark"
    fmt = _FORMATS[kind]
    if kind == "days":
        return f"{r['expected']:.0f} days (range {_day(r['expected_low'])}-{_day(r['expected_high'])})"
    if not _finite(r["expected_low"], r["expected_high"]):
        return f"{fmt(r['expected'])} (range not estimable)"
    return f"{fmt(r['expected'])} (range {fmt(r['expected_low'])}-{fmt(r['expected_high'])})".replace("%-", "-", 1)


_FORMATS = {"share": lambda x: _pct(x), "score": lambda x: f"{x:.1f}", "days": lambda x: f"{x:.0f} days"}


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
        has_bench = ok and _finite(r["expected"])
        expected = _key_expected(kind, r) if has_bench else "no benchmark"
        if not has_bench or not _finite(r["observed"], r["expected_low"], r["expected_high"]):
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
            resolved = _not_estimable("no episode was followed after its first visit")
        elif not _finite(k["estimate"]):
            resolved = "not followed that long"
        else:
            resolved = (f"{_pct(k['estimate'])} ({_ci(k['ci_low'], k['ci_high'])}); {led.text(f'mod/{m}/resolved')} of "
                        f"{led.text(f'mod/{m}/at_risk')} followed")
        median = (NOT_SHOWN if not led.published(f"mod/{m}/at_risk") else
                  _not_estimable("no episode was followed after its first visit") if k["n"] == 0 else
                  _days(k["median"], k["median_low"], k["median_high"]))
        if m == UNTREATED:
            diff = "reference"
        elif m not in ctab.index:
            diff = "no comparison"
        elif not led.published(f"mod/{m}/measured", f"mod/{UNTREATED}/measured"):
            diff = NOT_SHOWN
        elif _finite(ctab.loc[m, "difference"], ctab.loc[m, "ci_low"], ctab.loc[m, "ci_high"]):
            c = ctab.loc[m]
            diff = f"{c['difference']:+.1f} ({c['ci_low']:+.1f} to {c['ci_high']:+.1f})"
        else:
            diff = _not_estimable("see the notes on the adjusted comparison")
        rows[label(m)] = {"Episodes": led.text(f"mod/{m}/n"),
                          f"Improved at {cfg.horizon} (95% CI)": _share(led, f"mod/{m}/improved", f"mod/{m}/measured"),
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
    m, lo, hi = _mean_ci(values)
    if not _finite(m):
        return NOT_MEASURED
    if not _finite(lo, hi):
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


def _median_iqr(values, none: str = "none recorded") -> str:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(float)
    if not len(v):
        return none
    q = np.percentile(v, [50, 25, 75])
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
            "Followed up (a second score; 95% CI)": _share(led, f"mod/{m}/followed", f"mod/{m}/scored",
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
    return lambda x: pattern.format(x) if _finite(x) else "not estimable"


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
    elif numbers["untreated_resolution"]["published"] and c1.n == 0:
        answer = "Cannot tell"
        detail = ("Not estimable: no untreated episode was followed after its first visit, so no share resolved can "
                  "be worked out.")
    elif numbers["untreated_resolution"]["published"] and not _finite(c1.estimate):
        answer = "Cannot tell"
        detail = f"Not estimable: no untreated episode was followed to day {day}, so the share resolved by then is unknown."
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
        (f"<{cfg.min_n} and suppressed", f"counts under the threshold are shown as <{cfg.min_n}; 'suppressed' marks a "
                                         "count hidden so that a small one cannot be worked out from totals."),
    ]
    return claims, glossary, numbers


def _c2(cfg, res, km, led) -> dict:
    mods = [m for m in TREATED_MODALITIES if m in km and led.published(f"mod/{m}/at_risk", f"mod/{m}/resolved")]
    statement = "Remedial massage helps most back-pain episodes resolve."
    if not mods:
        return {"statement": statement, "answer": "Too few episodes to tell", "detail": "No modality is large enough to report."}
    hr = _hazards(res, mods)
    parts, known = [], []
    for m in mods:
        k = km[m]
        if not _finite(k["estimate"], k["ci_low"], k["ci_high"]):
            parts.append(f"{label(m)} not estimable (" + ("no episode followed after its first visit)" if k["n"] == 0
                                                          else f"not followed to day {cfg.day:g})"))
            continue
        known.append(k)
        txt = f"{label(m)} {_pct(k['estimate'])} ({_ci(k['ci_low'], k['ci_high'])})"
        if m in hr.index and led.published(f"mod/{UNTREATED}/at_risk"):
            h = hr.loc[m]
            txt += (f", {h['hazard_ratio']:.1f} times as fast as untreated ({h['hr_ci_low']:.1f}-{h['hr_ci_high']:.1f})"
                    if _finite(h["hazard_ratio"], h["hr_ci_low"], h["hr_ci_high"]) else
                    ", speed against untreated not estimable")
        parts.append(txt)
    if not known:
        answer = "Cannot tell"
    else:
        answer = ("Yes" if len(known) == len(mods) and all(k["ci_low"] > 0.5 for k in known) else
                  "No" if all(k["ci_high"] < 0.5 for k in known) else "Partly")
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
    # the share and interval of test_resolution_claim (exact when none or all resolved)
    at = claim_at_day(ev[(ev["modality"] == UNTREATED) & (ev["chronicity"] == "chronic")], 0.5, 365)
    est, lo, hi = at["estimate"], at["ci_low"], at["ci_high"]
    answer = ("Cannot tell" if not _finite(est, lo, hi) else
              "Mostly true here" if hi < 0.5 else "No" if lo > 0.5 else "Cannot tell")
    return {"statement": statement, "answer": answer,
            "detail": (f"{_pct(est)} (95% CI {_ci(lo, hi)}) of untreated chronic episodes had resolved within a year: "
                       f"{led.text('c3/resolved_365')} of {led.text('c3/at_risk')} followed." if _finite(est) else
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
    try:
        chi2 = float(d @ np.linalg.solve(contrast @ cov @ contrast.T, d))
    except np.linalg.LinAlgError:
        chi2 = np.nan
    p = float(stats.chi2.sf(chi2, len(d)))
    if not _finite(p):
        return {"statement": statement, "answer": "Cannot tell",
                "detail": "The test across modalities is not estimable: the hazard-ratio model is degenerate for these data."}
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
