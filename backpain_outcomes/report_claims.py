"""The clinic report's claims in plain words, its glossary, and the sentences that depend on the data.

Every count is printed through the suppressed ledger; a share or a median is printed only when the counts
behind it are published (see :mod:`~backpain_outcomes.report_sections` for the tables).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .report_format import ci_text, is_finite, pct_text
from .verdicts import claim_at_day
from .vocabulary import MCID_ABSOLUTE, TREATED_MODALITIES, UNKNOWN, UNTREATED, instrument_label, label

__all__ = ["claims_section", "paragraphs"]


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
    elif numbers["untreated_resolution"]["published"] and not is_finite(c1.estimate):
        answer = "Cannot tell"
        detail = f"Not estimable: no untreated episode was followed to day {day}, so the share resolved by then is unknown."
    elif numbers["untreated_resolution"]["published"]:
        answer = _answer(c1.verdict_code)
        detail = (f"{pct_text(c1.estimate)} (95% CI {ci_text(c1.ci_low, c1.ci_high)}) of untreated episodes had resolved by day "
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
        if not is_finite(k["estimate"], k["ci_low"], k["ci_high"]):
            parts.append(f"{label(m)} not estimable (" + ("no episode followed after its first visit)" if k["n"] == 0
                                                          else f"not followed to day {cfg.day:g})"))
            continue
        known.append(k)
        txt = f"{label(m)} {pct_text(k['estimate'])} ({ci_text(k['ci_low'], k['ci_high'])})"
        if m in hr.index and led.published(f"mod/{UNTREATED}/at_risk"):
            h = hr.loc[m]
            txt += (f", {h['hazard_ratio']:.1f} times as fast as untreated ({h['hr_ci_low']:.1f}-{h['hr_ci_high']:.1f})"
                    if is_finite(h["hazard_ratio"], h["hr_ci_low"], h["hr_ci_high"]) else
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
    answer = ("Cannot tell" if not is_finite(est, lo, hi) else
              "Mostly true here" if hi < 0.5 else "No" if lo > 0.5 else "Cannot tell")
    return {"statement": statement, "answer": answer,
            "detail": (f"{pct_text(est)} (95% CI {ci_text(lo, hi)}) of untreated chronic episodes had resolved within a year: "
                       f"{led.text('c3/resolved_365')} of {led.text('c3/at_risk')} followed." if is_finite(est) else
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
    if not is_finite(p):
        return {"statement": statement, "answer": "Cannot tell",
                "detail": "The test across modalities is not estimable: the hazard-ratio model is degenerate for these data."}
    differ = p < 0.05
    return {"statement": statement, "answer": "Yes" if differ else "No clear difference",
            "detail": (f"One test across {len(mods)} modalities, allowing for first score and chronicity: "
                       + ("the differences are larger than chance would usually produce (p = " if differ else
                          "the differences are within what chance produces (p = ") + f"{p:.2f}).")}



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
