"""Rows of the seed-claim report for the comparisons C2-C4 (used by :func:`~backpain_outcomes.claims.evaluate_seed_claims`).

Every comparison is a Cox model of the time to resolution
(:func:`~backpain_outcomes.survival.cox_by_group`), reported as an adjusted
association. Verdict texts state the estimate, the events and episodes
behind it, and say "not estimable" (with the reason) rather than print a
missing number.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .cox import MAX_LOG_SE, cox_by_group
from .verdicts import basis_text, ci_text, claim_at_day, pct, verdict_text
from .vocabulary import TREATED_MODALITIES, UNTREATED, label

__all__ = ["claim_row", "c2_rows", "c3_rows", "pairwise_hazards", "c4_row", "OBSERVATIONAL", "CLAIMS"]

CLAIMS = {
    "C1": "Almost 90% of back-pain episodes resolve on their own with time",
    "C2": "Remedial massage helps resolve the majority of musculoskeletal back pain",
    "C3": "Chronic back pain does not resolve on its own and needs treatment",
    "C4": "Five named modalities (deep tissue, trigger point, Swedish, dry needling, cupping) differ",
}
OBSERVATIONAL = "adjusted association (observational data, not a randomised comparison)"


def claim_row(claim, comparison, res=None, verdict="", caveat="", **extra) -> dict:
    """One row of the report table."""
    out = {"claim": claim, "statement": CLAIMS[claim], "comparison": comparison,
           "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "hazard_ratio": np.nan,
           "hr_ci_low": np.nan, "hr_ci_high": np.nan, "p_value": np.nan, "p_holm": np.nan,
           "n": 0 if res is None else res["n"], "events": 0 if res is None else res["events"],
           "verdict": verdict, "caveat": caveat}
    if res is not None:
        out.update(estimate=res["estimate"], ci_low=res["ci_low"], ci_high=res["ci_high"])
    out.update(extra)
    return out


def _hr_fields(h) -> dict:
    if h is None or not np.isfinite(h["hazard_ratio"]):
        return {}
    return {k: h[k] for k in ("hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value")}


def _num(x: float) -> str:
    return f"{x:.2f}" if 0.01 <= abs(x) < 1000 else f"{x:.2g}"


def _hr_text(h, versus: str, level: float) -> str:
    vals = [np.nan] if h is None else [h.get(k, np.nan) for k in ("hazard_ratio", "hr_ci_low", "hr_ci_high")]
    if not np.isfinite(vals).all():
        return f"hazard ratio against {versus} not estimable (see notes)"
    return f"HR against {versus} {_num(vals[0])} ({level:.0%} CI {_num(vals[1])}-{_num(vals[2])})"


def _p_text(p) -> str:
    return "not estimable" if not np.isfinite(p) else f"{p:.3g}"


def c2_rows(ev, study, rule, day, alpha, min_n, notes) -> list[dict]:
    """C2: per named modality, resolution by ``day`` against 50% ("the majority") and the HR against untreated."""
    mods = [m for m in TREATED_MODALITIES if m in set(ev["modality"])]
    fit = cox_by_group(ev, study, rule, alpha=alpha)
    notes += [f"C2: {n}" for n in fit.notes]
    hr = fit.table.set_index("level")
    rows = []
    for m in mods:
        res = claim_at_day(ev[ev["modality"] == m], 0.5, day, alpha)
        h = hr.loc[m].to_dict() if m in hr.index else None
        rows.append(claim_row("C2", f"{label(m)}, day {day:g} (HR vs untreated)", res, "", OBSERVATIONAL, **_hr_fields(h),
                              _res=res, _h=h))
    p = np.array([r["p_value"] for r in rows], float)
    holm = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        holm[ok] = multipletests(p[ok], method="holm")[1]
    for r, ph, m in zip(rows, holm, mods):
        res, h = r.pop("_res"), r.pop("_h")
        r["p_holm"] = ph
        who = label(m).lower()
        code, text = verdict_text(res, 0.5, day, who, alpha, min_n)
        if code in ("not estimable", "insufficient data"):
            r["verdict"] = text
            continue
        est = (f"{pct(res['estimate'])} ({ci_text(res['ci_low'], res['ci_high'], 1 - alpha)}) of {who} episodes "
               f"resolved by day {day:g} ({basis_text(res)})")
        hr_txt = f"{_hr_text(h, 'untreated', 1 - alpha)}, Holm p = {_p_text(ph)}"
        better = h is not None and np.isfinite(r["hazard_ratio"]) and r["hazard_ratio"] > 1
        if res["p_above"] < alpha and better and np.isfinite(ph) and ph < alpha:
            r["verdict"] = f"Supported: {est}, a majority, and faster resolution than untreated ({hr_txt})."
        elif np.isfinite(res["ci_high"]) and res["ci_high"] < 0.5:
            r["verdict"] = f"Not supported: only {est}; {hr_txt}."
        else:
            r["verdict"] = f"Not established: {est}; {hr_txt}."
    return rows


def c3_rows(un, ev, study, rule, alpha, min_n, notes) -> list[dict]:
    """C3: untreated chronic episodes by day 365, chronic against acute (untreated), treated against untreated (chronic)."""
    chronic = un[un["chronicity"] == "chronic"]
    res = claim_at_day(chronic, 0.5, 365, alpha)
    if res["n"] < min_n:
        return [claim_row("C3", "untreated chronic, day 365", res,
                          f"Insufficient data: only {res['n']} untreated chronic episode(s) at risk "
                          f"({res['events']} resolution(s) by day 365); at least {min_n} are needed.")]
    fit = cox_by_group(un[un["chronicity"].isin(["acute", "chronic"])], study, rule, by="chronicity",
                       reference="acute", adjust=("baseline",), alpha=alpha)
    h = fit.table.iloc[0].to_dict() if fit.fitted else None
    fit2 = cox_by_group(ev[ev["chronicity"] == "chronic"], study, rule, by="treatment_status", reference=UNTREATED,
                        adjust=("baseline",), alpha=alpha)
    notes += [f"C3: {n}" for n in fit.notes + fit2.notes]
    h2 = fit2.table.iloc[0].to_dict() if fit2.fitted else None
    text = (f"{pct(res['estimate'])} ({ci_text(res['ci_low'], res['ci_high'], 1 - alpha)}) of untreated chronic "
            f"episodes resolved within a year ({basis_text(res)}); {_hr_text(h, 'acute', 1 - alpha)} "
            "(hazard ratio chronic vs acute, untreated)")
    slower = h is not None and np.isfinite(h["hr_ci_high"]) and h["hr_ci_high"] < 1
    if res["p_below"] < alpha and slower:
        text = "Supported in part (most do not resolve on their own): " + text + "."
    elif res["p_above"] < alpha:
        text = "Not supported (most chronic episodes resolved on their own): " + text + "."
    else:
        text = "Not established: " + text + "."
    rows = [claim_row("C3", "untreated chronic vs untreated acute", res, text, OBSERVATIONAL, **_hr_fields(h),
                      p_holm=np.nan if h is None else h["p_value"])]
    if h2 is not None and np.isfinite(h2["hazard_ratio"]):
        faster = h2["hr_ci_low"] > 1
        rows.append(claim_row(
            "C3", "chronic: treated vs untreated", None,
            ("Treated chronic episodes resolved faster" if faster else
             "No clear difference between treated and untreated chronic episodes")
            + f" ({_hr_text(h2, 'untreated', 1 - alpha)}; {fit2.events} resolutions among {fit2.n} chronic "
              "episodes at risk).", OBSERVATIONAL, **_hr_fields(h2), p_holm=h2["p_value"], n=fit2.n,
            events=fit2.events))
    return rows


def pairwise_hazards(ev, study, rule, alpha, notes) -> pd.DataFrame:
    """C4: hazard ratios of every pair of the named modalities (one Cox model), Holm-adjusted."""
    mods = [m for m in TREATED_MODALITIES if m in set(ev["modality"])]
    cols = ["modality", "versus", "hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "p_holm"]
    if len(mods) < 2:
        return pd.DataFrame(columns=cols)
    fit = cox_by_group(ev[ev["modality"].isin(mods)], study, rule, reference=mods[0], alpha=alpha)
    notes += [f"C4: {n}" for n in fit.notes]
    if not fit.fitted:
        return pd.DataFrame(columns=cols)
    beta = pd.concat([pd.Series({mods[0]: 0.0}), fit.params])
    cov = pd.DataFrame(0.0, index=beta.index, columns=beta.index)
    cov.loc[fit.cov.index, fit.cov.columns] = fit.cov.to_numpy()
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    usable = [mods[0], *fit.table.loc[np.isfinite(fit.table["hazard_ratio"].to_numpy(float)), "level"]]
    for a, b in itertools.combinations([m for m in mods if m in beta], 2):
        d = beta[a] - beta[b]
        se = np.sqrt(max(cov.loc[a, a] + cov.loc[b, b] - 2 * cov.loc[a, b], 0.0))
        if a not in usable or b not in usable or not (np.isfinite(d) and 0 < se <= MAX_LOG_SE and abs(d) < 50):
            notes.append(f"C4: the hazard ratio of {label(a)} against {label(b)} is not estimable.")
            continue
        rows.append({"modality": a, "versus": b, "hazard_ratio": np.exp(d), "hr_ci_low": np.exp(d - z * se),
                     "hr_ci_high": np.exp(d + z * se), "p_value": 2 * stats.norm.sf(abs(d / se))})
    out = pd.DataFrame(rows, columns=cols[:-1])
    out["p_holm"] = multipletests(out["p_value"], method="holm")[1] if len(out) else []
    return out


def c4_row(pairwise: pd.DataFrame, alpha: float) -> dict:
    """C4 summary row: how many pairwise differences are significant after Holm adjustment."""
    if not len(pairwise):
        return claim_row("C4", "pairwise modality comparisons (Holm)", None,
                         "Cannot be assessed: fewer than two named modalities with a usable Cox model.", OBSERVATIONAL)
    n_sig = int((pairwise["p_holm"] < alpha).sum())
    best = pairwise.loc[pairwise["p_holm"].idxmin()]
    return claim_row("C4", f"{len(pairwise)} pairwise modality comparisons (Holm)", None,
                     f"{n_sig} of {len(pairwise)} pairwise differences between modalities are significant after Holm "
                     f"adjustment (smallest Holm p = {best['p_holm']:.3g}: {label(best['modality'])} against "
                     f"{label(best['versus'])}, HR {_num(best['hazard_ratio'])}).", OBSERVATIONAL,
                     p_holm=float(pairwise["p_holm"].min()))
