"""The claims C1-C4 of DESIGN.md, evaluated together (:func:`evaluate_seed_claims`).

Group comparisons use Cox proportional-hazards models for the time to
resolution (statsmodels ``PHReg``, Efron ties, delayed entry), adjusted for
the baseline score and chronicity, with Holm-adjusted p-values (Holm 1979).
In observational data these are **adjusted associations**, not causal effects.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ._display import ResultMixin
from .claims import _pct, _verdict, claim_at_day, test_resolution_claim
from .resolution import DEFAULT_RULE, Resolution, time_to_resolution
from .survival import cox_by_group

__all__ = ["evaluate_seed_claims", "ClaimReport"]

CLAIMS = {
    "C1": "Almost 90% of back-pain episodes resolve on their own with time",
    "C2": "Remedial massage helps resolve the majority of musculoskeletal back pain",
    "C3": "Chronic back pain does not resolve on its own and needs treatment",
    "C4": "Five named modalities (deep tissue, trigger point, Swedish, dry needling, cupping) differ",
}
OBSERVATIONAL = "adjusted association (observational data, not a randomised comparison)"


class ClaimReport(ResultMixin):
    """C1-C4 with estimate, CI, test, verdict and caveat per row.

    Attributes
    ----------
    table : DataFrame
        ``claim``, ``statement``, ``comparison``, ``estimate``, ``ci_low``,
        ``ci_high``, ``hazard_ratio``, ``hr_ci_low``, ``hr_ci_high``,
        ``p_value``, ``p_holm``, ``verdict``, ``caveat``.
    pairwise : DataFrame
        C4: every pair of treated modalities, hazard ratio and Holm p-value.
    c1 : ClaimResult
    """

    def __init__(self, table, pairwise, c1, rule, by_day):
        self.table, self.pairwise, self.c1, self.rule, self.by_day = table, pairwise, c1, rule, by_day

    def _parts(self):
        show = self.table[["claim", "comparison", "estimate", "ci_low", "ci_high", "p_holm", "verdict"]]
        return (f"Seed claims C1-C4 (rule: {self.rule!r}; day {self.by_day:g})",
                [f"{k}: {v}" for k, v in CLAIMS.items()], {"Claims": show})

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_html(self) -> str:
        return self._repr_html_()


def _row(claim, comparison, res=None, verdict="", caveat="", **extra):
    out = {"claim": claim, "statement": CLAIMS[claim], "comparison": comparison,
           "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "hazard_ratio": np.nan,
           "hr_ci_low": np.nan, "hr_ci_high": np.nan, "p_value": np.nan, "p_holm": np.nan,
           "verdict": verdict, "caveat": caveat}
    if res is not None:
        out.update(estimate=res["estimate"], ci_low=res["ci_low"], ci_high=res["ci_high"])
    out.update(extra)
    return out


def evaluate_seed_claims(study, rule: Resolution = DEFAULT_RULE, by_day: float = 42, origin: str | None = None,
                         claimed: float = 0.90, alpha: float = 0.05, min_n: int = 20) -> ClaimReport:
    """Evaluate every claim of DESIGN.md (C1-C4) on a study.

    * C1: untreated episodes, cumulative resolution by ``by_day`` (and 84,
      365), one-sided test of p >= ``claimed`` (:func:`test_resolution_claim`).
    * C2: per modality, cumulative resolution by ``by_day`` against 50%
      ("the majority") and the hazard ratio against untreated episodes.
    * C3: untreated chronic versus untreated acute episodes, and treated
      versus untreated chronic episodes.
    * C4: all pairwise differences between the five modalities, Holm-adjusted.

    Hazard ratios come from Cox models adjusted for baseline score and
    chronicity (:func:`cox_by_group`) and are labelled adjusted associations.

    Parameters
    ----------
    study : Study
    rule : Resolution
    by_day : float
    origin : {"onset", "first_contact"}, optional
        Default ``"onset"`` when every onset is known, else ``"first_contact"``.
    claimed, alpha, min_n :
        As in :func:`test_resolution_claim`.

    Returns
    -------
    ClaimReport

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> report = bpo.evaluate_seed_claims(bpo.load_study(bpo.example_path()))
    >>> sorted(set(report.table["claim"]))
    ['C1', 'C2', 'C3', 'C4']
    """
    if origin is None:
        origin = "onset" if study.scores["days_since_onset"].notna().all() else "first_contact"
    ev = time_to_resolution(study, rule, origin=origin)
    rows = []
    c1 = None
    if (ev["modality"] == "untreated").any():
        c1 = test_resolution_claim(study, claimed, by_day, rule, group="untreated", origin=origin, alpha=alpha,
                                   sensitivity=False, min_n=min_n)
        rows.append(_row("C1", f"untreated, day {by_day:g}", None, c1.verdict, " ".join(c1.caveats[:2]),
                         estimate=c1.estimate, ci_low=c1.ci_low, ci_high=c1.ci_high, p_value=c1.p_value,
                         p_holm=c1.p_value))
        for day in (84, 365):
            if day != by_day:
                res = claim_at_day(ev[ev["modality"] == "untreated"], claimed, day, alpha)
                p = res["p_below"] if res["estimate"] < claimed else res["p_above"]
                rows.append(_row("C1", f"untreated, day {day}", res,
                                 _verdict(res, claimed, day, "untreated", alpha, min_n)[1], p_value=p, p_holm=p))
    else:
        rows.append(_row("C1", "untreated", verdict="Cannot be assessed: the study has no untreated episodes "
                         f"(groups: {', '.join(sorted(set(ev['modality'])))})."))
    hr, _, _ = cox_by_group(ev, study, rule) if c1 is not None else (pd.DataFrame(), None, None)
    mods = [m for m in ("deep_tissue", "trigger_point", "swedish", "dry_needling", "cupping") if m in set(ev["modality"])]
    c2 = []
    for m in mods:
        res = claim_at_day(ev[ev["modality"] == m], 0.5, by_day, alpha)
        h = hr[hr["level"] == m].iloc[0] if len(hr) and (hr["level"] == m).any() else None
        majority = res["p_above"] < alpha
        better = h is not None and h["hazard_ratio"] > 1
        c2.append(_row("C2", f"{m}, day {by_day:g} (HR vs untreated)", res, "", OBSERVATIONAL,
                       hazard_ratio=np.nan if h is None else h["hazard_ratio"],
                       hr_ci_low=np.nan if h is None else h["hr_ci_low"],
                       hr_ci_high=np.nan if h is None else h["hr_ci_high"],
                       p_value=np.nan if h is None else h["p_value"], _majority=majority, _better=better,
                       _n=res["n"]))
    if c2:
        p = np.array([r["p_value"] for r in c2], float)
        ok = ~np.isnan(p)
        holm = np.full(len(p), np.nan)
        if ok.any():
            holm[ok] = multipletests(p[ok], method="holm")[1]
        for r, ph in zip(c2, holm):
            r["p_holm"] = ph
            est = f"{_pct(r['estimate'])} resolved by day {by_day:g}"
            if r.pop("_n") < min_n:
                r["verdict"] = f"Insufficient data: {est} from few episodes."
            elif r.pop("_majority") and r.pop("_better") and ph < alpha:
                r["verdict"] = (f"Supported: {est} (a majority) and faster resolution than untreated "
                                f"(HR {r['hazard_ratio']:.2f}, Holm p = {ph:.3g}).")
            elif r["ci_high"] < 0.5:
                r["verdict"] = f"Not supported: only {est} (95% CI {_pct(r['ci_low'])}-{_pct(r['ci_high'])})."
            else:
                hr_txt = "" if np.isnan(r["hazard_ratio"]) else f"; HR vs untreated {r['hazard_ratio']:.2f}"
                r["verdict"] = f"Not established: {est}{hr_txt} (Holm p = {ph:.3g})."
            for key in ("_majority", "_better"):
                r.pop(key, None)
        rows += c2
    rows += _c3(study, ev, rule, by_day, alpha, min_n)
    pairwise = _pairwise(ev, study, rule, mods, alpha)
    n_sig = int((pairwise["p_holm"] < alpha).sum()) if len(pairwise) else 0
    rows.append(_row("C4", f"{len(pairwise)} pairwise modality comparisons (Holm)",
                     verdict=(f"{n_sig} of {len(pairwise)} pairwise differences between modalities are "
                              "significant after Holm adjustment." if len(pairwise) else
                              "Cannot be assessed: fewer than two modalities with resolutions."),
                     caveat=OBSERVATIONAL, p_holm=pairwise["p_holm"].min() if len(pairwise) else np.nan))
    table = pd.DataFrame(rows)
    return ClaimReport(table, pairwise, c1, rule, by_day)


def _c3(study, ev, rule, by_day, alpha, min_n):
    rows = []
    un = ev[ev["modality"] == "untreated"]
    chronic = un[un["chronicity"] == "chronic"]
    res = claim_at_day(chronic, 0.5, 365, alpha)
    if res["n"] < min_n:
        return [_row("C3", "untreated chronic, day 365", res,
                     f"Insufficient data: only {res['n']} untreated chronic episodes at risk.")]
    sub = un[un["chronicity"].isin(["acute", "chronic"])]
    hr, _, _ = cox_by_group(sub, study, rule, by="chronicity", reference="acute", adjust=("baseline",))
    h = hr[hr["level"] == "chronic"].iloc[0] if len(hr) else None
    treated = ev[(ev["chronicity"] == "chronic") & (ev["modality"] != "mixed")].assign(
        treated=lambda d: np.where(d["modality"] == "untreated", "untreated", "treated"))
    hr2, _, _ = cox_by_group(treated, study, rule, by="treated", reference="untreated",
                             adjust=("baseline",))
    h2 = hr2.iloc[0] if len(hr2) else None
    low = res["p_below"] < alpha
    slower = h is not None and h["hr_ci_high"] < 1
    verdict = (f"{_pct(res['estimate'])} (95% CI {_pct(res['ci_low'])}-{_pct(res['ci_high'])}) of untreated chronic "
               "episodes resolved within a year")
    if h is not None:
        verdict += f"; HR chronic vs acute {h['hazard_ratio']:.2f} ({h['hr_ci_low']:.2f}-{h['hr_ci_high']:.2f})"
    if low and slower:
        verdict = "Supported in part (most do not resolve on their own): " + verdict + "."
    elif res["p_above"] < alpha:
        verdict = "Not supported (most chronic episodes resolved on their own): " + verdict + "."
    else:
        verdict = "Not established: " + verdict + "."
    rows.append(_row("C3", "untreated chronic vs untreated acute", res, verdict, OBSERVATIONAL,
                     hazard_ratio=np.nan if h is None else h["hazard_ratio"],
                     hr_ci_low=np.nan if h is None else h["hr_ci_low"],
                     hr_ci_high=np.nan if h is None else h["hr_ci_high"],
                     p_value=np.nan if h is None else h["p_value"], p_holm=np.nan if h is None else h["p_value"]))
    if h2 is not None:
        needs = h2["hr_ci_low"] > 1
        rows.append(_row("C3", "chronic: treated vs untreated", None,
                         ("Treated chronic episodes resolved faster" if needs else
                          "No clear difference between treated and untreated chronic episodes")
                         + f" (HR {h2['hazard_ratio']:.2f}, 95% CI {h2['hr_ci_low']:.2f}-{h2['hr_ci_high']:.2f}).",
                         OBSERVATIONAL, hazard_ratio=h2["hazard_ratio"], hr_ci_low=h2["hr_ci_low"],
                         hr_ci_high=h2["hr_ci_high"], p_value=h2["p_value"], p_holm=h2["p_value"]))
    return rows


def _pairwise(ev, study, rule, mods, alpha):
    treated = ev[ev["modality"].isin(mods)]
    if len(mods) < 2:
        return pd.DataFrame()
    _, params, cov = cox_by_group(treated, study, rule, reference=mods[0])
    if params is None or len(params) == 0:
        return pd.DataFrame()
    beta = pd.concat([pd.Series({mods[0]: 0.0}), params])
    full_cov = pd.DataFrame(0.0, index=beta.index, columns=beta.index)
    full_cov.loc[cov.index, cov.columns] = cov.to_numpy()
    rows = []
    for a, b in itertools.combinations(mods, 2):
        if a not in beta or b not in beta:
            continue
        d = beta[a] - beta[b]
        var = full_cov.loc[a, a] + full_cov.loc[b, b] - 2 * full_cov.loc[a, b]
        se = np.sqrt(var)
        rows.append({"modality": a, "versus": b, "hazard_ratio": np.exp(d),
                     "hr_ci_low": np.exp(d - 1.959963984540054 * se), "hr_ci_high": np.exp(d + 1.959963984540054 * se),
                     "p_value": 2 * stats.norm.sf(abs(d / se))})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = multipletests(out["p_value"], method="holm")[1]
    return out
