"""The result of a test of a resolution claim (:class:`ClaimResult`) and its one builder (:func:`claim_result`:
the verdict, the relapse sentence, a warning when few episodes are at risk), shared by the in-memory test
(:func:`~backpain_outcomes.claims.test_resolution_claim`) and the test of a partitioned registry, so both say
the same."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import SmallSampleWarning, warn
from .results import Result
from .rules import Resolution
from .verdicts import pct, verdict_text

__all__ = ["ClaimResult", "claim_result"]


class ClaimResult(Result):
    """Result of :func:`test_resolution_claim`.

    Attributes
    ----------
    table : DataFrame
        One row: ``population``, ``day``, ``claimed``, ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``alternative``, ``n``,
        ``events``, ``sensitivity_low``, ``sensitivity_high``,
        ``verdict_code``, ``verdict``, ``rule``, ``origin``.
    estimate, ci_low, ci_high : float
        Cumulative resolution at ``day`` and its log-log CI (level 1 - alpha).
    p_value : float
        One-sided p-value for H0: p >= claimed when the estimate is below the
        claim, and for the mirror H0: p <= claimed when it is above
        (``alternative`` says which); ``p_value_below``, ``p_value_above``: both.
    verdict : str
        Plain-language verdict stating the estimate, the events and episodes
        behind it and the range over the sensitivity analyses; ``verdict_code``
        is one of ``not supported``, ``supported``, ``not refuted``,
        ``insufficient data``, ``not estimable``.
    n, events : int
        Episodes at risk and resolutions by ``day``.
    notes : list of str
        Every caveat (``caveats`` is a read-only alias).
    relapses : dict
        Resolved episodes that later relapsed, and the estimate when a relapse
        undoes the resolution.
    excluded : dict
        Episodes of the population not at risk, by reason.
    sensitivity : DataFrame
        Estimates over rule x population x origin x relapse handling x day.
    sensitivity_range : tuple of float
        (min, max) of the estimates at ``day`` over the sensitivity analyses
        of the population (NaN without sensitivity analyses).
    events_table : DataFrame
        The per-episode event table of the population.
    """

    claimed: float
    day: float
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
    relapses: dict
    excluded: dict
    sensitivity: pd.DataFrame
    sensitivity_range: tuple
    events_table: pd.DataFrame

    def __init__(self, **fields):
        for key, value in fields.items():
            setattr(self, key, value)
        self.table = pd.DataFrame([{
            "population": self.population, "day": self.day, "claimed": self.claimed, "estimate": self.estimate,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value, "alternative": self.alternative,
            "n": self.n, "events": self.events, "sensitivity_low": self.sensitivity_range[0],
            "sensitivity_high": self.sensitivity_range[1], "verdict_code": self.verdict_code,
            "verdict": self.verdict, "rule": self.rule.code, "origin": self.origin}])
        self._freeze()

    @property
    def caveats(self) -> list[str]:
        """Alias of ``notes``."""
        return self.notes

    def _parts(self):
        p = "not estimable" if not np.isfinite(self.p_value) else f"{self.p_value:.3g}"
        lines = [self.verdict, f"rule: {self.rule!r}; origin: {self.origin}; population: {self.population}",
                 f"one-sided p = {p} ({self.alternative}); n = {self.n}, events = {self.events}",
                 *[f"caveat: {c}" for c in self.notes]]
        tables = {}
        if len(self.sensitivity):
            s = self.sensitivity[self.sensitivity["population"] == self.population]
            tables["Sensitivity (estimate by day)"] = s.pivot_table(
                index=["rule", "origin", "relapse"], columns="day", values="estimate").reset_index()
        return f"Claim: {pct(self.claimed)} resolve by day {self.day:g}", lines, tables

    def plot(self, ax=None):
        """Cumulative resolution of the population with its CI, the claim and the day marked."""
        from .plotting import plot_claim
        return plot_claim(self, ax=ax)

    def plot_sensitivity(self, ax=None):
        """Heat map of the sensitivity analyses: estimate by rule, origin, relapse handling (rows) and day."""
        from .plotting import plot_sensitivity
        return plot_sensitivity(self, ax=ax)


def claim_result(res: dict, *, claimed, day, rule, who, origin, alpha, min_n, notes, relapses, excluded,
                 sensitivity, events_table) -> ClaimResult:
    """The :class:`ClaimResult` of the test at one day (``res`` of :func:`~backpain_outcomes.verdicts.claim_at_day`
    or its counts version): the verdict, the relapse sentence, a warning when few episodes are at risk.

    One builder for the in-memory test and the test of a partitioned registry, so both say the same.
    ``sensitivity`` is ``(table, (low, high), context sentence)``.
    """
    sens, rng, context = sensitivity
    code, text = verdict_text(res, claimed, day, who, alpha, min_n, context)
    below = bool(np.isfinite(res["estimate"]) and res["estimate"] < claimed)
    notes = list(notes)
    if relapses["relapsed"]:
        notes.append(f"{relapses['relapsed']} of {relapses['resolved']} resolved episodes relapsed later (a visit "
                     f"failing the rule); counting a relapse as undoing the resolution gives "
                     f"{pct(relapses['estimate_if_relapse_undoes'])} by day {day:g}.")
    if res["n"] < min_n:
        warn(f"only {res['n']} {who} episodes at risk: {text}", SmallSampleWarning)
    return ClaimResult(claimed=claimed, day=day, rule=rule, population=who, origin=origin, alpha=alpha,
                       estimate=res["estimate"], ci_low=res["ci_low"], ci_high=res["ci_high"],
                       p_value=res["p_below"] if below else res["p_above"], p_value_below=res["p_below"],
                       p_value_above=res["p_above"], alternative=f"H1: p {'<' if below else '>'} {claimed:g}",
                       verdict=text, verdict_code=code, n=res["n"], events=res["events"], notes=notes,
                       relapses=relapses, excluded=excluded, sensitivity=sens, sensitivity_range=rng,
                       events_table=events_table)
