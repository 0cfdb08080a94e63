"""Building blocks of the claim checks: populations, the test at one day, verdict texts, caveats, sensitivity.

Used by :mod:`backpain_outcomes.claims`; every text written here is meant to
be read by a clinician, so it never shows ``nan``, ``inf`` or ``n/a``: a
number that cannot be computed is called *not estimable*, with the reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .checks import check_by, check_choice, check_modality
from .resolution import DEFAULT_RULE, Resolution, time_to_resolution
from .survival import kaplan_meier_counts, km_at_days_counts, risk_counts
from .vocabulary import CHRONICITY_LEVELS, INSTRUMENTS, UNKNOWN, UNTREATED, label

__all__ = ["claim_at_day", "pct", "ci_text", "basis_text", "verdict_text", "claim_caveats", "sensitivity_rules",
           "sensitivity_grid", "sensitivity_range", "population_spec", "population_label", "select_population",
           "wants_untreated", "untreated_notes", "POPULATION_COLUMNS", "STATUS", "event_counts", "claim_at_counts",
           "caveats_from_counts", "untreated_notes_from_counts", "sensitivity_populations", "sensitivity_table"]

#: Columns of the event table a population may be defined on.
POPULATION_COLUMNS = ("modality", "chronicity", "treatment_status")
STATUS = ("treated", UNTREATED, UNKNOWN)


def pct(x, digits: int = 0) -> str:
    """``0.423 -> "42%"`` (``digits`` decimals of the percentage); a missing value reads "not estimable"."""
    return "not estimable" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def ci_text(lo, hi, level: float = 0.95, digits: int = 0) -> str:
    """``"95% CI 35%-49%"`` or ``"95% CI not estimable"``."""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{level:.0%} CI not estimable"
    return f"{level:.0%} CI {pct(lo, digits)}-{pct(hi, digits)}"


def share_digits(claimed: float, lo, hi, most: int = 3) -> int:
    """Decimals of the percentages in a verdict, so that its words and its numbers agree.

    Whole percentages, unless rounding would make an interval that lies below (above) the claimed share
    read as reaching it, or a non-empty interval read as one value: in a large registry the interval is
    a fraction of a point wide, and "50% (95% CI 50%-50%) ... below the claimed 50%" would contradict
    itself. Then as many decimals as needed, at most ``most``.

    Examples
    --------
    >>> share_digits(0.5, 0.30, 0.41), share_digits(0.5, 0.4991, 0.4996), share_digits(0.5, 0.4999, 0.49998)
    (0, 2, 3)
    """
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return 0
    for digits in range(most + 1):
        c, low, high = (float(f"{100 * x:.{digits}f}") for x in (claimed, lo, hi))  # as pct shows them
        if (hi >= claimed or high < c) and (lo <= claimed or low > c) and (lo >= hi or low < high):
            return digits
    return most


# ------------------------------------------------------------------ populations
def population_spec(population) -> dict | None:
    """Validated population: None (all episodes) or ``{column: [codes]}``.

    A string is a modality or treatment status (``"untreated"``, ``"none"``,
    ``"dry needling"``, ``"treated"``); a dict maps ``modality``,
    ``chronicity`` or ``treatment_status`` to a value or a list of values.
    """
    if population is None:
        return None
    if isinstance(population, str):
        if population.strip().lower() == "treated":
            return {"treatment_status": ["treated"]}
        return {"modality": [check_modality(population, "population")]}
    if not isinstance(population, dict) or not population:
        raise TypeError("population must be None, a modality such as 'untreated', or a dict such as "
                        f"{{'modality': 'untreated', 'chronicity': 'chronic'}}, got {population!r}")
    check_by(list(population), POPULATION_COLUMNS, name="population")
    spec = {}
    for col, val in population.items():
        vals = [val] if isinstance(val, str) else list(val)
        if col == "modality":
            spec[col] = [check_modality(v, "population") for v in vals]
        elif col == "chronicity":
            spec[col] = [check_choice(v, "population", CHRONICITY_LEVELS) for v in vals]
        else:
            spec[col] = [check_choice(v, "population", STATUS) for v in vals]
    return spec


def population_label(spec: dict | None) -> str:
    """``{"modality": ["untreated"], "chronicity": ["chronic"]} -> "untreated chronic"``."""
    if spec is None:
        return "all"
    words = []
    for col, vals in spec.items():
        words.append("/".join(label(v).lower() if col == "modality" else str(v) for v in vals))
    return " ".join(words)


def wants_untreated(spec: dict | None) -> bool:
    return spec is not None and (UNTREATED in spec.get("modality", []) or UNTREATED in spec.get("treatment_status", []))


def untreated_notes(ev: pd.DataFrame, argument: str = "population") -> list[str]:
    """Refuse an analysis of untreated episodes when none is *known* untreated; note unknowns left out.

    Raises
    ------
    ValueError
        When no episode is known to be untreated: explains how to declare it.
    """
    status = ev["treatment_status"].astype(str)
    return untreated_notes_from_counts(int((status == UNTREATED).sum()), int((status == UNKNOWN).sum()),
                                       set(ev["modality"].astype(str)), argument)


def untreated_notes_from_counts(n_untreated: int, n_unknown: int, modalities, argument: str = "population"
                                ) -> list[str]:
    """:func:`untreated_notes` from the numbers of untreated and unknown episodes and the modalities present."""
    if n_untreated == 0 and n_unknown > 0:
        raise ValueError(
            f"{argument}='untreated': no episode is known to be untreated, and {n_unknown} episode(s) have an "
            "unknown treatment status (no treatment session recorded). Unknown is never counted as untreated. "
            "If the sessions table is complete, so that an episode without sessions was not treated, load the "
            "study with load_study(..., no_sessions='untreated'); otherwise add an 'arm' column to the episodes "
            "table ('untreated' or 'treated'), or a session row with modality 'no treatment' for each untreated "
            "episode.")
    if n_untreated == 0:
        present = ", ".join(sorted(modalities))
        raise ValueError(f"{argument}='untreated': the study has no untreated episodes; groups present: {present}. "
                         f"Pass {argument}=... to test another population.")
    if n_unknown:
        return [f"{n_unknown} episode(s) of unknown treatment status were left out (unknown is never counted as "
                f"untreated); {n_untreated} episode(s) known to be untreated were analysed."]
    return []


def select_population(ev: pd.DataFrame, spec: dict | None) -> pd.DataFrame:
    """Rows of the event table in the population."""
    if spec is None:
        return ev
    mask = np.ones(len(ev), bool)
    for col, vals in spec.items():
        mask &= ev[col].astype(str).isin(vals).to_numpy()
    return ev[mask]


# ------------------------------------------------------------------ the test at one day
def claim_at_day(ev: pd.DataFrame, claimed: float, day: float, alpha: float = 0.05) -> dict:
    """Estimate and one-sided tests of the cumulative resolution at ``day``.

    The test uses the complementary log-log scale of the log-log interval:
    :math:`z = (\\log(-\\log \\hat S) - \\log(-\\log S_0)) / (\\mathrm{se}(\\log \\hat S)/|\\log \\hat S|)`
    with :math:`S_0 = 1 - p_0`; ``p_below`` tests H0: p >= claimed against
    p < claimed, ``p_above`` the mirror. When no episode has resolved yet
    (:math:`\\hat S = 1`) the exact bound :math:`(1 - p_0)^{n}` over the
    ``n`` episodes at risk is used, and the interval is the exact
    (Clopper-Pearson) one for 0 of ``n``; likewise when all have resolved.

    Returns
    -------
    dict with ``n`` (episodes at risk), ``events`` (resolutions by ``day``),
    ``estimate``, ``ci_low``, ``ci_high``, ``p_below``, ``p_above``,
    ``n_at_risk`` (at ``day``), ``last_day`` (last follow-up).

    Examples
    --------
    >>> ev = pd.DataFrame({"entry": 0.0, "at_risk": True, "day": [5, 10, 60, 60], "resolved": [True, True, False, False]})
    >>> float(claim_at_day(ev, 0.9, 42)["estimate"])
    0.5
    """
    return claim_at_counts(event_counts(ev), claimed, day, alpha)


def event_counts(ev: pd.DataFrame) -> pd.DataFrame:
    """Per-day counts (:func:`~backpain_outcomes.survival.risk_counts`) of the episodes at risk of an event table."""
    r = ev[ev["at_risk"].to_numpy(bool)]
    return risk_counts(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float))


def claim_at_counts(counts: pd.DataFrame, claimed: float, day: float, alpha: float = 0.05) -> dict:
    """:func:`claim_at_day` from the per-day counts of the episodes at risk (:func:`event_counts`, or their
    sum over the partitions of a registry)."""
    day_col, events = counts["day"].to_numpy(float), counts["events"].to_numpy(np.int64)
    exits = events + counts["censored"].to_numpy(np.int64)
    n = int(counts["entries"].to_numpy(np.int64).sum())
    out = {"n": n, "events": int(events[day_col <= day].sum()), "estimate": np.nan,
           "ci_low": np.nan, "ci_high": np.nan, "p_below": np.nan, "p_above": np.nan, "n_at_risk": 0,
           "last_day": float(day_col[exits > 0].max()) if n else np.nan}
    if n == 0:
        return out
    km = kaplan_meier_counts(counts, alpha=alpha)
    row = km_at_days_counts(km, [day], counts).iloc[0]
    out.update(estimate=row["cumulative_resolution"], ci_low=row["ci_low"], ci_high=row["ci_high"],
               n_at_risk=int(row["n_at_risk"]))
    if np.isnan(row["cumulative_resolution"]):
        return out
    s_hat = 1 - row["cumulative_resolution"]
    if s_hat >= 1:
        out.update(p_below=(1 - claimed) ** n, p_above=1.0, ci_low=0.0, ci_high=1 - (alpha / 2) ** (1 / n))
    elif s_hat <= 0:
        out.update(p_below=1.0, p_above=claimed ** n, ci_low=(alpha / 2) ** (1 / n), ci_high=1.0)
    else:
        se_u = row["se_log"] / abs(np.log(s_hat))
        z = (np.log(-np.log(s_hat)) - np.log(-np.log(1 - claimed))) / se_u
        out["p_below"], out["p_above"] = float(stats.norm.cdf(z)), float(stats.norm.sf(z))
    return out


def basis_text(res: dict) -> str:
    """"12 resolutions by then among 40 episodes at risk"."""
    return (f"{res['events']} resolution{'s' if res['events'] != 1 else ''} by then among {res['n']} "
            f"episode{'s' if res['n'] != 1 else ''} at risk")


def verdict_text(res: dict, claimed: float, day: float, who: str, alpha: float, min_n: int,
                 context: str = "") -> tuple[str, str]:
    """``(verdict_code, verdict)`` for one claim: a share ``claimed`` of ``who`` episodes resolve by ``day``.

    The text states the estimate, its interval, the events and episodes
    behind it, and ``context`` (e.g. the sensitivity range); never ``nan``.
    """
    tail = f" {context}" if context else ""
    if res["n"] == 0:
        return "not estimable", (f"Not estimable: no {who} episode is at risk (every one was resolved at entry, had "
                                 f"a single visit or could not be evaluated), so no share resolved by day {day:g} "
                                 f"can be estimated.{tail}")
    if not np.isfinite(res["estimate"]):
        return "not estimable", (f"Not estimable: no {who} episode was followed to day {day:g} (the last follow-up "
                                 f"is day {res['last_day']:g}), so the share resolved by then is not defined; "
                                 f"{res['n']} episodes at risk.{tail}")
    digits = share_digits(claimed, res["ci_low"], res["ci_high"])
    body = (f"{pct(res['estimate'], digits)} ({ci_text(res['ci_low'], res['ci_high'], 1 - alpha, digits)}) of {who} "
            f"episodes resolved by day {day:g} ({basis_text(res)})")
    if res["n"] < min_n or res["events"] < 5:
        return "insufficient data", (f"Insufficient data: {body}; too few episodes or resolutions for a verdict on "
                                     f"{pct(claimed, digits)}.{tail}")
    if res["p_below"] < alpha:
        how = "well below" if np.isfinite(res["ci_high"]) and res["ci_high"] < claimed - 0.10 else "below"
        return "not supported", f"Not supported: {body}, {how} the claimed {pct(claimed, digits)}.{tail}"
    if res["p_above"] < alpha:
        return "supported", f"Supported: {body}, above the claimed {pct(claimed, digits)}.{tail}"
    return "not refuted", (f"Not refuted: {body}; the data are consistent with {pct(claimed, digits)} but do not "
                           f"establish it.{tail}")


# ------------------------------------------------------------------ caveats
def claim_caveats(ev_pop: pd.DataFrame, rule: Resolution, origin: str, day: float, res: dict, spec) -> list[str]:
    """Plain-language caveats of a claim estimate: censoring, delayed entry, size, regression to the mean."""
    r = ev_pop[ev_pop["at_risk"].to_numpy(bool)]
    return caveats_from_counts(event_counts(ev_pop), float(r["baseline"].mean()) if len(r) else np.nan, rule,
                               origin, day, res, spec)


def caveats_from_counts(counts: pd.DataFrame, mean_baseline: float, rule: Resolution, origin: str, day: float,
                        res: dict, spec) -> list[str]:
    """:func:`claim_caveats` from the per-day counts of the episodes at risk and their mean baseline score."""
    out = []
    n = int(counts["entries"].sum())
    if n:
        before = (counts["day"] < day).to_numpy()
        share = float(counts.loc[before, "censored"].sum() / n)
        if share > 0.1:
            out.append(f"{share:.0%} of episodes at risk were censored (lost to follow-up) before day {day:g}; the "
                       "estimate assumes their chance of resolving equals that of those still followed.")
        late = float(counts.loc[~before, "entries"].sum() / n)
        if origin == "onset" and late > 0:
            out.append(f"{late:.0%} of episodes were first measured on or after day {day:g} from onset and cannot "
                       "inform resolution by that day (delayed entry).")
        high = INSTRUMENTS[rule.instrument][1]
        if np.isfinite(mean_baseline) and mean_baseline > 0.4 * high:
            out.append(f"Episodes entered when care was sought (mean baseline {rule.instrument.upper()} "
                       f"{mean_baseline:.1f} of {high:g}); part of the later improvement may be regression to the "
                       "mean rather than natural recovery.")
    if res["n"] < 30:
        out.append(f"Only {res['n']} episodes at risk: the interval is wide and the normal approximation is rough.")
    if wants_untreated(spec):
        out.append("Untreated episodes were not randomised: they may differ from treated ones in severity and "
                   "care-seeking. The popular 90% figure is a consultation statistic (Croft et al. 1998 BMJ).")
    return out


# ------------------------------------------------------------------ sensitivity
def sensitivity_rules(instruments) -> list[Resolution]:
    """The definitions of "resolved" varied in the sensitivity analysis.

    NRS <= 1 on 2 visits (default), NRS 0 on 2 visits (complete recovery,
    Kamper et al. 2010), NRS <= 1 once, MCID (Ostelo 2008), 50% reduction;
    VAS <= 10 / MCID, ODI <= 20 / 50% reduction, RMDQ <= 2 (Kamper 2010) /
    MCID where measured.
    """
    rules = []
    if "nrs" in instruments:
        rules += [DEFAULT_RULE, Resolution("nrs", max_score=0, sustained=2), Resolution("nrs", max_score=1),
                  Resolution("nrs", mcid=True, sustained=2), Resolution("nrs", min_relative_drop=0.5, sustained=2)]
    if "vas" in instruments:
        rules += [Resolution("vas", max_score=10, sustained=2), Resolution("vas", mcid=True, sustained=2)]
    if "odi" in instruments:
        rules += [Resolution("odi", max_score=20, sustained=2), Resolution("odi", min_relative_drop=0.5)]
    if "rmdq" in instruments:
        rules += [Resolution("rmdq", max_score=2, sustained=2), Resolution("rmdq", mcid=True, sustained=2)]
    return rules


def sensitivity_grid(study, claimed, alpha, spec, origins, rules, days, min_n) -> pd.DataFrame:
    """Estimates over rule x population (and its chronicity strata) x origin x relapse handling x day."""
    pops = sensitivity_populations(spec)
    counts = {}
    for rule in rules:
        for origin in origins:
            for relapse in ("ignore", "undo"):
                ev = time_to_resolution(study, rule, origin=origin, relapse=relapse).table
                for i, pop in enumerate(pops):
                    counts[rule, origin, relapse, i] = event_counts(select_population(ev, pop))
    return sensitivity_table(counts, claimed, alpha, pops, origins, rules, days, min_n)


def sensitivity_populations(spec: dict | None) -> list:
    """The populations of the sensitivity analyses: ``spec``, and its chronicity strata unless it names one."""
    pops = [spec]
    if spec is not None and "chronicity" not in spec:
        pops += [{**spec, "chronicity": [c]} for c in CHRONICITY_LEVELS[:3]]
    return pops


def sensitivity_table(counts: dict, claimed, alpha, pops, origins, rules, days, min_n) -> pd.DataFrame:
    """The sensitivity grid from per-day counts: ``counts[rule, origin, relapse, i]`` (:func:`event_counts`) of
    population ``pops[i]`` (:func:`sensitivity_populations`)."""
    rows = []
    for rule in rules:
        for origin in origins:
            for relapse in ("ignore", "undo"):
                for i, pop in enumerate(pops):
                    name = population_label(pop)
                    for day in days:
                        res = claim_at_counts(counts[rule, origin, relapse, i], claimed, day, alpha)
                        rows.append({"rule": repr(rule), "rule_code": rule.code, "population": name, "origin": origin,
                                     "relapse": relapse, "day": day, "estimate": res["estimate"],
                                     "ci_low": res["ci_low"], "ci_high": res["ci_high"], "n": res["n"],
                                     "events": res["events"], "p_value": res["p_below"],
                                     "verdict": verdict_text(res, claimed, day, name, alpha, min_n)[0]})
    return pd.DataFrame(rows)


def sensitivity_range(sens: pd.DataFrame, population: str, day: float) -> tuple[float, float, int, str]:
    """(min, max, number of estimable analyses, sentence) of the estimates at ``day`` for ``population``."""
    if not len(sens):
        return np.nan, np.nan, 0, ""
    s = sens[(sens["population"] == population) & (sens["day"] == day)]
    est = s["estimate"].to_numpy(float)
    ok = np.isfinite(est)
    n_rules, n_orig = s["rule"].nunique(), s["origin"].nunique()
    grid = (f"{len(s)} sensitivity analyses ({n_rules} definitions of resolved x {n_orig} origin{'s' if n_orig > 1 else ''} x 2 relapse "
            "handlings)")
    if not ok.any():
        return np.nan, np.nan, 0, f"None of the {grid} is estimable at day {day:g}."
    lo, hi = float(est[ok].min()), float(est[ok].max())
    missing = "" if ok.all() else f"; {int((~ok).sum())} not estimable"
    return lo, hi, int(ok.sum()), (f"Across {grid} the estimate at day {day:g} ranged from {pct(lo)} to {pct(hi)}"
                                   f"{missing}.")
