"""Is it true that "almost 90% of back-pain episodes resolve on their own"?

The figure comes from guidelines ("90% will recover within six weeks", RCGP
2000, quoted by Pengel et al. 2003 BMJ 327:323) and is, in the source that
tested it, a *consultation* statistic: Croft et al. 1998 (BMJ 316:1356) found
about 90% had stopped consulting by 3 months but only 21% had completely
recovered. Published estimates range from 21% to 90% depending on the
definition of recovery, the time origin, the population and recurrence
(Itz et al. 2013 Eur J Pain; Hestbaek et al. 2003 Eur Spine J). The test here
makes each choice explicit and varies it in ``sensitivity``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._display import ResultMixin
from .exceptions import SmallSampleWarning
from .instruments import INSTRUMENTS
from .resolution import DEFAULT_RULE, Resolution, time_to_resolution
from .survival import kaplan_meier, km_at_days

__all__ = ["test_resolution_claim", "ClaimResult", "sensitivity_rules", "claim_at_day"]

SENSITIVITY_DAYS = (14, 42, 84, 182, 365)


def sensitivity_rules(instruments) -> list[Resolution]:
    """The definitions of "resolved" varied in the sensitivity analysis.

    NRS <= 1 on 2 visits (default), NRS 0 on 2 visits (complete recovery,
    Kamper et al. 2010), NRS <= 1 once, MCID (Ostelo 2008), 50% reduction;
    RMDQ <= 2 (Kamper 2010) and ODI <= 20 / 50% reduction where measured.
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


def _population(ev: pd.DataFrame, group) -> tuple[pd.DataFrame, str]:
    if group is None:
        return ev, "all episodes"
    if isinstance(group, str):
        group = {"modality": group}
    mask = np.ones(len(ev), bool)
    for col, val in group.items():
        vals = [val] if isinstance(val, str) else list(val)
        mask &= ev[col].isin(vals).to_numpy()
    label = " ".join(str(v) if k != "modality" or v != "untreated" else "untreated" for k, v in group.items())
    return ev[mask], label


def claim_at_day(ev: pd.DataFrame, claimed: float, day: float, alpha: float = 0.05) -> dict:
    """Estimate and one-sided tests of the cumulative resolution at ``day``.

    The test uses the complementary log-log scale of the log-log interval:
    :math:`z = (\\log(-\\log \\hat S) - \\log(-\\log S_0)) / (\\mathrm{se}(\\log \\hat S)/|\\log \\hat S|)`
    with :math:`S_0 = 1 - p_0`; ``p_below`` tests H0: p >= claimed against
    p < claimed, ``p_above`` the mirror. When no episode has resolved yet
    (:math:`\\hat S = 1`) the exact bound :math:`(1 - p_0)^{n}` over the
    episodes at risk is used.
    """
    r = ev[ev["at_risk"]]
    time, entry, event = r["day"].to_numpy(float), r["entry"].to_numpy(float), r["resolved"].to_numpy(bool)
    out = {"n": int(len(r)), "events": int((event & (time <= day)).sum()), "estimate": np.nan,
           "ci_low": np.nan, "ci_high": np.nan, "p_below": np.nan, "p_above": np.nan, "n_at_risk": 0}
    if len(r) == 0:
        return out
    km = kaplan_meier(time, event, entry, alpha=alpha)
    row = km_at_days(km, [day], time, entry, event).iloc[0]
    out.update(estimate=row["cumulative_resolution"], ci_low=row["ci_low"], ci_high=row["ci_high"],
               n_at_risk=int(row["n_at_risk"]))
    if np.isnan(row["cumulative_resolution"]):
        return out
    s_hat = 1 - row["cumulative_resolution"]
    s0 = 1 - claimed
    if s_hat >= 1:
        out["p_below"], out["p_above"] = (1 - claimed) ** len(r), 1.0
        out["ci_low"] = 0.0
    elif s_hat <= 0:
        out["p_below"], out["p_above"] = 1.0, claimed ** len(r)
    else:
        se_u = row["se_log"] / abs(np.log(s_hat))
        z = (np.log(-np.log(s_hat)) - np.log(-np.log(s0))) / se_u
        out["p_below"], out["p_above"] = float(stats.norm.cdf(z)), float(stats.norm.sf(z))
    return out


def _pct(x):
    return "n/a" if x is None or np.isnan(x) else f"{100 * x:.0f}%"


def _verdict(res: dict, claimed: float, by_day, who: str, alpha: float, min_n: int) -> tuple[str, str]:
    est, lo, hi = res["estimate"], res["ci_low"], res["ci_high"]
    if np.isnan(est):
        return "not estimable", (f"Cannot be assessed: no {who} episode was followed to day {by_day:g} "
                                 "(the estimate is not defined beyond the last follow-up).")
    body = f"{_pct(est)} (95% CI {_pct(lo)}-{_pct(hi)}) of {who} episodes resolved by day {by_day:g}"
    if res["n"] < min_n or res["events"] < 5:
        return "insufficient data", (f"Insufficient data: {body}, from only {res['n']} episodes and "
                                     f"{res['events']} resolutions; no verdict on {_pct(claimed)} is possible.")
    if res["p_below"] < alpha:
        how = "well below" if hi < claimed - 0.10 else "below"
        return "not supported", f"Not supported: {body}, {how} the claimed {_pct(claimed)}."
    if res["p_above"] < alpha:
        return "supported", f"Supported: {body}, above the claimed {_pct(claimed)}."
    return "not refuted", (f"Not refuted: {body}; the data are consistent with {_pct(claimed)} "
                           "but do not establish it.")


@dataclass
class ClaimResult(ResultMixin):
    """Result of :func:`test_resolution_claim`.

    Attributes
    ----------
    estimate, ci_low, ci_high : float
        Cumulative resolution at ``by_day`` and its 95% log-log CI.
    p_value : float
        One-sided p-value for H0: p >= claimed when the estimate is below the
        claim, and for the mirror H0: p <= claimed when it is above
        (``alternative`` says which).
    p_value_below, p_value_above : float
        Both one-sided p-values.
    verdict : str
        Plain-language verdict; ``verdict_code`` is one of ``not supported``,
        ``supported``, ``not refuted``, ``insufficient data``, ``not estimable``.
    n, events : int
        Episodes at risk and resolutions by ``by_day``.
    caveats : list of str
    relapses : dict
        Resolved episodes that later relapsed, and the estimate when a relapse
        undoes the resolution.
    sensitivity : DataFrame
        Estimates over rule x population x origin x relapse handling x day.
    """

    claimed: float
    by_day: float
    rule: Resolution
    population: str
    origin: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_value_below: float
    p_value_above: float
    alternative: str
    verdict: str
    verdict_code: str
    n: int
    events: int
    caveats: list = field(default_factory=list)
    relapses: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    events_table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def _parts(self):
        lines = [self.verdict, f"rule: {self.rule!r}; origin: {self.origin}; population: {self.population}",
                 f"one-sided p = {self.p_value:.3g} ({self.alternative}); n = {self.n}, events = {self.events}",
                 *[f"caveat: {c}" for c in self.caveats]]
        tables = {}
        if len(self.sensitivity):
            tables["Sensitivity (default population)"] = self.sensitivity[
                self.sensitivity["population"] == self.population].pivot_table(
                index=["rule", "origin", "relapse"], columns="day", values="estimate").reset_index()
        return f"Claim: {_pct(self.claimed)} resolve by day {self.by_day:g}", lines, tables

    def plot(self, ax=None):
        """Sensitivity heat map: estimate by rule (rows) and day (columns), default population."""
        from .plotting import plot_sensitivity
        return plot_sensitivity(self, ax=ax)


def _caveats(ev_pop, study, rule, origin, by_day, res, population):
    out = []
    r = ev_pop[ev_pop["at_risk"]]
    cens_before = (~r["resolved"] & (r["day"] < by_day)).sum()
    if len(r):
        share = cens_before / len(r)
        if share > 0.1:
            out.append(f"{share:.0%} of episodes at risk were censored (lost to follow-up) before day {by_day:g}; "
                       "the estimate assumes their chance of resolving equals that of those still followed.")
    if origin == "onset" and len(r):
        late = (r["entry"] >= by_day).mean()
        if late > 0:
            out.append(f"{late:.0%} of episodes were first measured on or after day {by_day:g} from onset and "
                       "cannot inform resolution by that day (delayed entry).")
    if res["n"] < 30:
        out.append(f"Only {res['n']} episodes: the interval is wide and the normal approximation is rough.")
    base = study.episodes.set_index("episode_id").reindex(r["episode_id"])
    col = f"baseline_{rule.instrument}"
    if col in base and len(base):
        mean_base = base[col].mean()
        hi = INSTRUMENTS[rule.instrument][1]
        if mean_base > 0.4 * hi:
            out.append(f"Episodes entered when care was sought (mean baseline {rule.instrument.upper()} "
                       f"{mean_base:.1f} of {hi:g}); part of the later improvement may be regression to the "
                       "mean rather than natural recovery.")
    if "untreated" in population:
        out.append("Untreated episodes were not randomised: they may differ from treated ones in severity and "
                   "care-seeking. The popular 90% figure is a consultation statistic (Croft et al. 1998 BMJ).")
    return out


def _sensitivity(study, claimed, alpha, group, origins, rules, days):
    pops = [group] if group is not None else [None]
    base_group = {"modality": group} if isinstance(group, str) else group
    if base_group is not None:
        for chron in ("acute", "subacute", "chronic"):
            pops.append({**base_group, "chronicity": chron})
    rows = []
    for rule in rules:
        for origin in origins:
            for relapse in ("ignore", "undo"):
                ev = time_to_resolution(study, rule, origin=origin, relapse=relapse)
                for pop in pops:
                    sub, label = _population(ev, pop)
                    for day in days:
                        res = claim_at_day(sub, claimed, day, alpha)
                        rows.append({"rule": repr(rule), "population": label, "origin": origin, "relapse": relapse,
                                     "day": day, "estimate": res["estimate"], "ci_low": res["ci_low"],
                                     "ci_high": res["ci_high"], "n": res["n"], "events": res["events"],
                                     "p_value": res["p_below"],
                                     "verdict": _verdict(res, claimed, day, label, alpha, 20)[0]})
    return pd.DataFrame(rows)


def test_resolution_claim(study, claimed: float = 0.90, by_day: float = 42, rule: Resolution = DEFAULT_RULE,
                          group="untreated", origin: str = "onset", alpha: float = 0.05, relapse: str = "ignore",
                          sensitivity: bool = True, sensitivity_days=SENSITIVITY_DAYS,
                          min_n: int = 20) -> ClaimResult:
    """Test the claim that a share ``claimed`` of episodes resolve by ``by_day``.

    .. math:: H_0: F(d) \\ge p_0 \\quad\\text{vs}\\quad H_1: F(d) < p_0,
              \\qquad F(d) = 1 - S(d)

    with :math:`S` the delayed-entry Kaplan-Meier estimate (see
    :func:`resolution_curve`) and the test on the complementary log-log scale
    (:func:`claim_at_day`). The mirror test (H0: F(d) <= p0) is reported when
    the estimate is above the claim.

    Parameters
    ----------
    study : Study
    claimed : float
        The claimed proportion (0.90).
    by_day : float
        Day by which episodes are claimed to resolve (42 = six weeks).
    rule : Resolution
        Definition of resolved (default NRS <= 1 on 2 consecutive visits).
    group : str, dict or None
        Population: a modality (``"none"`` = untreated, the default), a dict
        such as ``{"modality": "none", "chronicity": "chronic"}``, or None for
        all episodes.
    origin : {"onset", "first_contact"}
    alpha : float
        One-sided level of the test; the interval is always 95%.
    relapse : {"ignore", "undo"}
    sensitivity : bool
        Compute ``sensitivity`` over rules, populations, origins, relapse
        handling and days.
    min_n : int
        Fewer episodes at risk than this give an "insufficient data" verdict.

    Returns
    -------
    ClaimResult

    Notes
    -----
    Episodes resolved at entry or with one measurement are not at risk and
    are counted in ``excluded``. Censoring is assumed independent of the
    chance of resolving.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> claim = bpo.test_resolution_claim(study, claimed=0.90, by_day=42, sensitivity=False)
    >>> claim.verdict_code in {"not supported", "supported", "not refuted", "insufficient data"}
    True
    """
    ev = time_to_resolution(study, rule, origin=origin, relapse=relapse)
    present = sorted(set(ev["modality"]))
    if isinstance(group, str) and group not in present:
        raise ValueError(f"no episodes in group {group!r} (episodes measured on {rule.instrument}); "
                         f"groups present: {', '.join(present)}. Pass group=... to test another population.")
    sub, label = _population(ev, group)
    if len(sub) == 0:
        raise ValueError(f"no episodes match {group!r}; groups present: {', '.join(present)}")
    res = claim_at_day(sub, claimed, by_day, alpha)
    code, text = _verdict(res, claimed, by_day, label, alpha, min_n)
    below = not np.isnan(res["estimate"]) and res["estimate"] < claimed
    p = res["p_below"] if below else res["p_above"]
    caveats = _caveats(sub, study, rule, origin, by_day, res, label)
    resolved = sub[sub["resolved"]]
    undo = claim_at_day(_population(time_to_resolution(study, rule, origin=origin, relapse="undo"), group)[0],
                        claimed, by_day, alpha)
    relapses = {"resolved": int(len(resolved)), "relapsed": int(resolved["relapsed"].sum()),
                "relapse_share": float(resolved["relapsed"].mean()) if len(resolved) else np.nan,
                "estimate_if_relapse_undoes": undo["estimate"]}
    if relapses["relapsed"]:
        caveats.append(f"{relapses['relapsed']} of {relapses['resolved']} resolved episodes relapsed later "
                       f"(a measurement above the threshold); counting a relapse as undoing the resolution "
                       f"gives {_pct(undo['estimate'])} by day {by_day:g}.")
    excluded = sub.loc[~sub["at_risk"], "censored_reason"].value_counts().to_dict()
    if excluded:
        caveats.append("Not in the risk set: " + ", ".join(f"{n} {k}" for k, n in excluded.items()) + ".")
    if res["n"] < min_n:
        warnings.warn(f"only {res['n']} {label} episodes at risk: {text}", SmallSampleWarning, stacklevel=2)
    sens = pd.DataFrame()
    if sensitivity:
        origins = ["first_contact"]
        if study.scores["days_since_onset"].notna().all():
            origins.insert(0, "onset")
        rules = [rule] + [r for r in sensitivity_rules(study.instruments) if r != rule]
        sens = _sensitivity(study, claimed, alpha, group, origins, rules, sensitivity_days)
    return ClaimResult(claimed=claimed, by_day=by_day, rule=rule, population=label, origin=origin,
                       estimate=res["estimate"], ci_low=res["ci_low"], ci_high=res["ci_high"], p_value=p,
                       p_value_below=res["p_below"], p_value_above=res["p_above"],
                       alternative=f"H1: p {'<' if below else '>'} {claimed:g}", verdict=text, verdict_code=code,
                       n=res["n"], events=res["events"], caveats=caveats, relapses=relapses, excluded=excluded,
                       sensitivity=sens, events_table=sub)


test_resolution_claim.__test__ = False  # not a pytest test
