"""Is it true that "almost 90% of back-pain episodes resolve on their own"? The claims C1-C4.

The figure comes from guidelines ("90% will recover within six weeks", RCGP
2000, quoted by Pengel et al. 2003 BMJ 327:323) and is, in the source that
tested it, a *consultation* statistic: Croft et al. 1998 (BMJ 316:1356) found
about 90% had stopped consulting by 3 months but only 21% had completely
recovered. Published estimates range from 21% to 90% depending on the
definition of recovery, the time origin, the population and recurrence
(Itz et al. 2013 Eur J Pain; Hestbaek et al. 2003 Eur Spine J).
:func:`test_resolution_claim` makes each choice explicit and varies it in
``sensitivity``; :func:`evaluate_seed_claims` checks four claims together:

* C1 "Almost 90% of back-pain episodes resolve on their own with time";
* C2 "Remedial massage helps resolve the majority of musculoskeletal back pain";
* C3 "Chronic back pain does not resolve on its own and needs treatment";
* C4 "Five named modalities differ".

Group comparisons use Cox proportional-hazards models for the time to
resolution (:func:`~backpain_outcomes.survival.cox_by_group`: delayed entry,
Efron ties, adjusted for baseline score and chronicity), with Holm-adjusted
p-values (Holm 1979). They are adjusted associations in observational data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_alpha, check_bool, check_choice, check_day, check_days, check_min_n, check_origin, check_proportion
from .claims_result import ClaimResult, claim_result
from .dispatch import on_study
from .resolution import DEFAULT_RULE, RELAPSE, as_rule, check_study, time_to_resolution
from .results import Result
from .seed_rows import CLAIMS, c2_rows, c3_rows, c4_row, claim_row, pairwise_hazards
from .verdicts import (
    claim_at_day,
    claim_caveats,
    population_label,
    population_spec,
    select_population,
    sensitivity_grid,
    sensitivity_range,
    sensitivity_rules,
    untreated_notes,
    verdict_text,
    wants_untreated,
)
from .version import __version__

__all__ = ["test_resolution_claim", "ClaimResult", "claim_result", "evaluate_seed_claims", "ClaimReport", "claim_at_day",
           "sensitivity_rules", "SENSITIVITY_DAYS", "CLAIMS"]

SENSITIVITY_DAYS = (14, 42, 84, 182, 365)


def _check_claim_args(study, claimed, day, rule, origin, alpha, relapse, sensitivity, sensitivity_days, min_n):
    check_study(study)
    return (check_proportion(claimed, "claimed"), check_day(day), as_rule(rule), check_origin(origin),
            check_alpha(alpha), check_choice(relapse, "relapse", RELAPSE), check_bool(sensitivity, "sensitivity"),
            check_days(sensitivity_days, "sensitivity_days"), check_min_n(min_n))


def _population_events(ev, spec, argument="population"):
    """(episodes of the population, notes); raises when the population is empty or untreated cannot be known."""
    notes = untreated_notes(ev, argument) if wants_untreated(spec) else []
    sub = select_population(ev, spec)
    if len(sub) == 0:
        present = ", ".join(sorted(set(ev["modality"].astype(str))))
        raise ValueError(f"no episodes in {argument}={population_label(spec)!r} have measurements; groups present: "
                         f"{present}. Pass {argument}=... to test another population.")
    return sub, notes


def _relapses(sub, study, rule, origin, spec, claimed, day, alpha):
    resolved = sub[sub["resolved"]]
    undo = claim_at_day(select_population(time_to_resolution(study, rule, origin, "undo").table, spec),
                        claimed, day, alpha)
    return {"resolved": int(len(resolved)), "relapsed": int(resolved["relapsed"].sum()),
            "relapse_share": float(resolved["relapsed"].mean()) if len(resolved) else np.nan,
            "estimate_if_relapse_undoes": undo["estimate"]}


def _sensitivity(study, claimed, alpha, spec, rule, sens_days, day, min_n, who):
    """(table, (low, high), context sentence) of the sensitivity analyses of the claim."""
    origins = ["onset", "first_contact"] if study.scores["days_since_onset"].notna().all() else ["first_contact"]
    rules = [rule] + [r for r in sensitivity_rules(study.instruments) if r != rule]
    sens = sensitivity_grid(study, claimed, alpha, spec, origins, rules, sorted({*sens_days, day}), min_n)
    lo, hi, _, context = sensitivity_range(sens, who, day)
    return sens, (lo, hi), context


@on_study
def test_resolution_claim(study, claimed: float = 0.90, day: float = 42, rule=DEFAULT_RULE,
                          population="untreated", origin: str = "onset", alpha: float = 0.05,
                          relapse: str = "ignore", sensitivity: bool = True, sensitivity_days=SENSITIVITY_DAYS,
                          min_n: int = 20) -> ClaimResult:
    """Test the claim that a share ``claimed`` of episodes resolve by ``day``.

    .. math:: H_0: F(d) \\ge p_0 \\quad\\text{vs}\\quad H_1: F(d) < p_0,
              \\qquad F(d) = 1 - S(d)

    with :math:`S` the delayed-entry Kaplan-Meier estimate (see
    :func:`~backpain_outcomes.resolution.resolution_curve`) and the test on
    the complementary log-log scale (:func:`claim_at_day`). The mirror test
    (H0: F(d) <= p0) is reported when the estimate is above the claim.

    Parameters
    ----------
    study : Study
    claimed : float
        The claimed proportion, strictly between 0 and 1 (0.90, not 90).
    day : float
        Day by which episodes are claimed to resolve (42 = six weeks).
    rule : Resolution or str
        Definition of resolved (default ``"nrs<=1 x2"``: NRS <= 1 on 2
        consecutive visits).
    population : str, dict or None
        A modality or treatment status (``"untreated"``, the default;
        ``"none"`` is accepted; ``"treated"``; ``"dry_needling"``...), a dict
        such as ``{"modality": "untreated", "chronicity": "chronic"}``, or None
        for all episodes. Episodes of *unknown* treatment status are never
        counted as untreated: when no episode is known to be untreated the
        test refuses to run and says how to declare them.
    origin : {"onset", "first_contact"}
    alpha : float
        One-sided level of the test; the interval has level 1 - alpha.
    relapse : {"ignore", "undo"}
    sensitivity : bool
        Compute ``sensitivity`` over rules, populations, origins, relapse
        handling and days; the verdict then states the range of the estimate.
    sensitivity_days : list of int
        Days of the sensitivity analyses (``day`` is always added).
    min_n : int
        Fewer episodes at risk than this give an "insufficient data" verdict.

    Returns
    -------
    ClaimResult

    Notes
    -----
    Episodes resolved at entry or with one visit are not at risk and are
    counted in ``excluded``. Censoring is assumed independent of the chance
    of resolving.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> claim = bpo.test_resolution_claim(study, claimed=0.90, day=42, sensitivity=False)
    >>> claim.verdict_code in {"not supported", "supported", "not refuted", "insufficient data"}
    True
    """
    claimed, day, rule, origin, alpha, relapse, sensitivity, sens_days, min_n = _check_claim_args(
        study, claimed, day, rule, origin, alpha, relapse, sensitivity, sensitivity_days, min_n)
    spec = population_spec(population)
    ttr = time_to_resolution(study, rule, origin=origin, relapse=relapse)
    sub, status_notes = _population_events(ttr.table, spec)
    who = population_label(spec)
    res = claim_at_day(sub, claimed, day, alpha)
    sens, rng, context = (_sensitivity(study, claimed, alpha, spec, rule, sens_days, day, min_n, who) if sensitivity
                          else (pd.DataFrame(), (np.nan, np.nan), ""))
    notes = [*status_notes, *claim_caveats(sub, rule, origin, day, res, spec), *ttr.notes]
    relapses = _relapses(sub, study, rule, origin, spec, claimed, day, alpha)
    excluded = sub.loc[~sub["at_risk"], "censored_reason"].value_counts().to_dict()
    return claim_result(res, claimed=claimed, day=day, rule=rule, who=who, origin=origin, alpha=alpha, min_n=min_n,
                        notes=notes, relapses=relapses, excluded=excluded, sensitivity=(sens, rng, context),
                        events_table=sub)


test_resolution_claim.__test__ = False  # not a pytest test


class ClaimReport(Result):
    """C1-C4 with estimate, CI, test, verdict and caveat per row (:func:`evaluate_seed_claims`).

    Attributes
    ----------
    table : DataFrame
        ``claim``, ``statement``, ``comparison``, ``estimate``, ``ci_low``,
        ``ci_high``, ``hazard_ratio``, ``hr_ci_low``, ``hr_ci_high``,
        ``p_value``, ``p_holm``, ``n``, ``events``, ``verdict``, ``caveat``,
        and how the table was made: ``rule`` (its text form), ``origin``,
        ``claimed``, ``alpha``, ``package_version``.
    pairwise : DataFrame
        C4: every pair of named modalities, hazard ratio and Holm p-value.
    c1 : ClaimResult or None
        The C1 test (None when untreated episodes cannot be analysed).
    notes : list of str
        Why a claim could not be assessed, episodes left out, and every
        warning of the Cox models.
    """

    def __init__(self, table, pairwise, c1, rule, day, origin, notes):
        self.table, self.pairwise, self.c1 = table, pairwise, c1
        self.rule, self.day, self.origin = rule, day, origin
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        show = self.table[["claim", "comparison", "estimate", "ci_low", "ci_high", "p_holm", "verdict"]]
        return (f"Seed claims C1-C4 (rule: {self.rule!r}; day {self.day:g}; origin {self.origin})",
                [f"{k}: {v}" for k, v in CLAIMS.items()] + self.notes, {"Claims": show})

    def to_frame(self) -> pd.DataFrame:
        """A copy of ``table``."""
        return self.table.copy()

    def plot(self, ax=None):
        """Share resolved by ``day`` per comparison of C1 and C2 with CIs, and the 90% and 50% lines."""
        from .plotting import plot_claim_report
        return plot_claim_report(self, ax=ax)


def _c1_rows(study, ev, rule, day, origin, claimed, alpha, min_n, sensitivity, notes):
    """C1 rows (test at ``day``, then 84 and 365 days) and the ClaimResult; a refusal row without known untreated."""
    try:
        untreated_notes(ev)
    except ValueError as err:
        notes.append(f"C1 and C3 cannot be assessed: {err}")
        return [claim_row("C1", "untreated", verdict=f"Cannot be assessed: {err}")], None
    c1 = test_resolution_claim(study, claimed, day, rule, population="untreated", origin=origin, alpha=alpha,
                               sensitivity=sensitivity, min_n=min_n)
    rows = [claim_row("C1", f"untreated, day {day:g}", None, c1.verdict, " ".join(c1.notes[:2]),
                      estimate=c1.estimate, ci_low=c1.ci_low, ci_high=c1.ci_high, p_value=c1.p_value,
                      p_holm=c1.p_value, n=c1.n, events=c1.events)]
    un = ev[ev["treatment_status"] == "untreated"]
    for d in (84, 365):
        if d != day:
            res = claim_at_day(un, claimed, d, alpha)
            p = res["p_below"] if res["estimate"] < claimed else res["p_above"]
            rows.append(claim_row("C1", f"untreated, day {d}", res,
                                  verdict_text(res, claimed, d, "untreated", alpha, min_n)[1], p_value=p, p_holm=p))
    return rows, c1


def evaluate_seed_claims(study, rule=DEFAULT_RULE, day: float = 42, origin: str = "onset", claimed: float = 0.90,
                         alpha: float = 0.05, min_n: int = 20, sensitivity: bool = False) -> ClaimReport:
    """Evaluate the claims C1-C4 on a study.

    * C1: untreated episodes, cumulative resolution by ``day`` (and 84,
      365), one-sided test of p >= ``claimed`` (:func:`test_resolution_claim`).
    * C2: per named modality, cumulative resolution by ``day`` against 50%
      ("the majority") and the hazard ratio against untreated episodes.
    * C3: untreated chronic versus untreated acute episodes, and treated
      versus untreated chronic episodes.
    * C4: all pairwise differences between the five modalities, Holm-adjusted.

    Hazard ratios come from Cox models adjusted for baseline score and
    chronicity (:func:`~backpain_outcomes.survival.cox_by_group`) and are
    labelled adjusted associations. Episodes of unknown treatment status are
    never counted as untreated: without any episode known to be untreated,
    C1 and C3 say they cannot be assessed and how to declare untreated
    episodes.

    Parameters
    ----------
    study : Study
    rule : Resolution or str
    day : float
    origin : {"onset", "first_contact"}
    claimed, alpha, min_n :
        As in :func:`test_resolution_claim`.
    sensitivity : bool
        Run the sensitivity analyses of C1 (its verdict then states their range).

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
    claimed, day, rule, origin, alpha, _, sensitivity, _, min_n = _check_claim_args(
        study, claimed, day, rule, origin, alpha, "ignore", sensitivity, SENSITIVITY_DAYS, min_n)
    ttr = time_to_resolution(study, rule, origin=origin)
    ev = ttr.table
    notes = list(ttr.notes)
    rows, c1 = _c1_rows(study, ev, rule, day, origin, claimed, alpha, min_n, sensitivity, notes)
    rows += c2_rows(ev, study, rule, day, alpha, min_n, notes)
    if c1 is not None:
        rows += c3_rows(ev[ev["treatment_status"] == "untreated"], ev, study, rule, alpha, min_n, notes)
    else:
        rows.append(claim_row("C3", "untreated chronic", verdict="Cannot be assessed: no episode is known to be "
                              "untreated (see C1)."))
    pairwise = pairwise_hazards(ev, study, rule, alpha, notes)
    rows.append(c4_row(pairwise, alpha))
    # provenance on every row, so that an exported table says how it was made
    table = pd.DataFrame(rows).assign(rule=rule.code, origin=origin, claimed=claimed, alpha=alpha,
                                      package_version=__version__)
    return ClaimReport(table, pairwise, c1, rule, day, origin, notes)
