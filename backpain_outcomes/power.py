"""Power and sample size for the claim test ("a share ``claimed`` of untreated episodes resolve by ``day``").

Three ways to the same number:

* **simulation** (the reference): ``n_sim`` studies of ``n`` untreated
  episodes are simulated with :func:`~backpain_outcomes.simulate_study`
  (true share resolved by ``day`` after first contact = ``true_rate``) and
  each is tested with :func:`~backpain_outcomes.test_resolution_claim`
  (``origin="first_contact"``, the simulator's time origin); the power is the
  share of studies in which the one-sided test rejects the claim at level
  ``alpha``, with its Monte Carlo standard error.
* **formula** (no simulation): the test's own rejection region on the
  binomial number of resolutions under complete follow-up (it follows the
  saw-tooth of a test on counts), and with drop-out the normal approximation
  on the complementary log-log scale with the expected Greenwood variance
  (:mod:`backpain_outcomes.power_formula`); the sample size is the smallest n
  from which the formula's power stays at or above the target;
* **exact**: the binomial computation alone (complete follow-up only; equal
  to the formula there).

The test is the one of :func:`~backpain_outcomes.claims.test_resolution_claim`:
against the claim when ``true_rate < claimed`` (H1: p < claimed), the mirror
test when ``true_rate > claimed``. Power analysis for survival quantities on
the log-log scale: Borgan & Liestøl 1990 (Scand J Stat 17:35-41); simulation
of power: Arnold et al. 2011 (BMC Med Res Methodol 11:94) and
:mod:`backpain_outcomes.power_simulation`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from . import style
from .checks import check_alpha, check_bool, check_choice, check_day, check_int, check_proportion
from .power_formula import check_dropout, power_exact, power_formula, power_normal, sample_size_formula
from .power_simulation import simulate_power
from .results import Result

__all__ = ["claim_power", "claim_sample_size", "PowerResult", "SampleSizeResult", "power_formula",
           "power_exact", "power_normal", "sample_size_formula"]

METHODS = ("simulation", "formula", "exact", "both")


def _formula_rows(ns, true_rate, claimed, day, alpha, dropout_mean_days, method="formula"):
    def power(n):
        if method == "exact":
            return power_exact(n, true_rate, claimed, alpha)
        return power_formula(n, true_rate, claimed, day, alpha, dropout_mean_days)
    return [{"n": n, "true_rate": true_rate, "claimed": claimed, "day": day, "alpha": alpha, "method": method,
             "power": power(n), "mc_se": np.nan, "n_sim": 0, "mean_at_risk": float(n), "not_estimable": 0}
            for n in ns]


def _as_list(value, name, check):
    vals = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else [value]
    if not vals:
        raise ValueError(f"{name} must hold at least one value, got {value!r}")
    return [check(v) for v in vals]


def _common_notes(claimed, day, dropout_mean_days, simulated):
    notes = [f"the claim is tested one-sided at each true rate: against 'at least {claimed:.0%} resolve by day "
             f"{day:g}' when the true rate is lower, the mirror test when it is higher; at the claimed rate itself "
             "the power is the type I error"]
    if simulated:
        notes.append("simulated studies: untreated episodes of the package's simulator, resolution NRS <= 1 on 2 "
                     "consecutive visits, days counted from first contact (the simulator's time origin), each tested "
                     "with test_resolution_claim(origin='first_contact'); n counts untreated episodes enrolled, "
                     "mean_at_risk those at risk (episodes with one visit or resolved at entry are not)")
    if np.isfinite(dropout_mean_days):
        notes.append("formula: normal approximation on the complementary log-log scale with the expected Greenwood "
                     f"variance under exponential drop-out (mean {dropout_mean_days:g} days) and a constant "
                     "resolution hazard; being smooth in n it misses the saw-tooth of a test on counts, so at small "
                     "n it can be several points off")
    else:
        notes.append("formula: the test's rejection region on the Binomial(n, true rate) number of resolutions by the "
                     "day (complete follow-up, n episodes at risk), so it follows the saw-tooth of a test on counts: "
                     "a larger n can have lower power")
    if simulated:
        notes.append("the simulator's rate is corrected once by a Monte Carlo of 400,000 episodes (it otherwise "
                     "delivers about 0.002 more than asked); a shift of 0.001 moves the power at large n by about "
                     "one point")
    return notes


# ------------------------------------------------------------------ results
class PowerResult(Result):
    """Result of :func:`claim_power`.

    Attributes
    ----------
    table : DataFrame
        One row per n x true rate x method: ``n``, ``true_rate``, ``claimed``,
        ``day``, ``alpha``, ``method`` (``simulation``, ``formula`` or ``exact``),
        ``power``, ``mc_se`` (Monte Carlo standard error; NaN for the
        formula), ``n_sim``, ``mean_at_risk`` (episodes at risk, mean over
        the simulated studies), ``not_estimable`` (simulated studies without
        an estimate at ``day``; they count as not rejecting).
    claimed, day, alpha, dropout_mean_days : float
    n_sim, seed : int
    notes : list of str
    """

    def __init__(self, table, claimed, day, alpha, dropout_mean_days, n_sim, seed, notes):
        self.table = table.reset_index(drop=True)
        self.claimed, self.day, self.alpha, self.dropout_mean_days = claimed, day, alpha, dropout_mean_days
        self.n_sim, self.seed, self.notes = n_sim, seed, list(notes)
        self._freeze()

    def _parts(self):
        show = self.table[["n", "true_rate", "method", "power", "mc_se", "mean_at_risk"]]
        return (f"Power of the claim test: {self.claimed:.0%} resolve by day {self.day:g} (one-sided alpha "
                f"{self.alpha:g})", list(self.notes), {"Power": show})

    def plot(self, ax=None):
        """Power against the number of episodes, one line per true rate and method (simulation with 95% MC bars)."""
        return _plot_power(self.table, ax, target=None, chosen=None)


class SampleSizeResult(Result):
    """Result of :func:`claim_sample_size`.

    Attributes
    ----------
    n : int
        Episodes needed (the formula's, or the smallest simulated candidate
        from which every larger candidate reaches ``target_power``); NaN-free:
        when the largest candidate does not reach it, that one is returned
        with ``achieved = False``.
    achieved : bool
    power : float
        Power at ``n`` (simulated or by the formula).
    formula_n : int
        The formula's answer (:func:`sample_size_formula`).
    table : DataFrame
        Every n evaluated, with the columns of :class:`PowerResult` ``.table``.
    target_power, true_rate, claimed, day, alpha : float
    method : str
    notes : list of str
    """

    def __init__(self, n, achieved, power, formula_n, table, target_power, true_rate, claimed, day, alpha, method,
                 notes):
        self.n, self.achieved, self.power, self.formula_n = int(n), bool(achieved), float(power), int(formula_n)
        self.table = table.reset_index(drop=True)
        self.target_power, self.true_rate, self.claimed, self.day, self.alpha = (target_power, true_rate, claimed,
                                                                                  day, alpha)
        self.method, self.notes = method, list(notes)
        self._freeze()

    def _parts(self):
        verb = "reach" if self.achieved else "do not reach"
        lines = [f"{self.n} untreated episodes {verb} {self.target_power:.0%} power ({self.method}: "
                 f"{self.power:.1%}) to refute 'at least {self.claimed:.0%} resolve by day {self.day:g}' when the "
                 f"true rate is {self.true_rate:.0%} (one-sided alpha {self.alpha:g}); formula: {self.formula_n}",
                 *self.notes]
        return "Sample size for the claim test", lines, {"Candidates": self.table[["n", "method", "power", "mc_se"]]}

    def plot(self, ax=None):
        """Power of the candidates against n, the target power and the chosen n."""
        return _plot_power(self.table, ax, target=self.target_power, chosen=self.n)


def _plot_power(table, ax, target, chosen):
    ax = style.new_axes(ax, figsize=(7, 4.5))
    rates = sorted(table["true_rate"].unique())
    colours = style.group_styles([f"{r:.0%}" for r in rates])
    dashes = {"formula": "--", "exact": ":", "normal": "-."}
    for (rate, method), g in table.groupby(["true_rate", "method"], sort=True):
        g = g.sort_values("n")
        col = colours[f"{rate:.0%}"][0]
        if method == "simulation":
            ax.errorbar(g["n"], g["power"], yerr=1.96 * g["mc_se"], marker="o", capsize=3, color=col,
                        label=f"true rate {rate:.0%}, simulated (95% Monte Carlo interval)")
        else:
            ax.plot(g["n"], g["power"], ls=dashes.get(method, "--"), marker=".", color=col,
                    label=f"true rate {rate:.0%}, {str(method).replace('_', ' ')}")
    if target is not None:
        ax.axhline(target, color="grey", ls=":", label=f"target power {target:.0%}")
    if chosen is not None:
        ax.axvline(chosen, color="black", ls=":", label=f"n = {chosen}")
    ax.set_xlabel("Untreated episodes (n)", fontsize=style.LABEL_SIZE)
    ax.set_ylabel("Power", fontsize=style.LABEL_SIZE)
    ax.set_ylim(0, 1.02)
    ax.tick_params(labelsize=style.TICK_SIZE)
    style.legend(ax)
    return ax


# ------------------------------------------------------------------ public functions
def _check_common(claimed, day, alpha, method, n_sim, seed, dropout_mean_days, n_jobs, progress):
    return (check_proportion(claimed, "claimed"), check_day(day), check_alpha(alpha),
            check_choice(method, "method", METHODS), check_int(n_sim, "n_sim", low=1), check_int(seed, "seed"),
            check_dropout(dropout_mean_days), check_int(n_jobs, "n_jobs", low=1), check_bool(progress, "progress"))


def claim_power(n, true_rate, claimed: float = 0.90, day: float = 42, alpha: float = 0.05,
                method: str = "simulation", n_sim: int = 1000, seed: int = 0, dropout_mean_days: float = np.inf,
                n_jobs: int = 1, progress: bool = True) -> PowerResult:
    """Power of the claim test for ``n`` untreated episodes when the true share resolved by ``day`` is ``true_rate``.

    Parameters
    ----------
    n : int or list of int
        Untreated episodes in the study.
    true_rate : float or list of float
        True share resolved by ``day`` (days since first contact).
    claimed : float
        The claimed share (0.90, not 90).
    day : float
        Horizon of the claim (42 = six weeks).
    alpha : float
        One-sided level of the test.
    method : {"simulation", "formula", "exact", "both"} or list of them
        Simulation through :func:`~backpain_outcomes.simulate_study` and
        :func:`~backpain_outcomes.test_resolution_claim`, the
        formula (the test on binomial counts, or the normal approximation
        with drop-out; see the module docstring), the exact
        binomial power under complete follow-up (:func:`power_exact`), or
        ``"both"`` (simulation and formula).
    n_sim : int
        Simulated studies per true rate (the same studies serve every n).
    seed : int
    dropout_mean_days : float
        Mean of the exponential drop-out time of the simulated patients
        (``np.inf``, the default: complete follow-up).
    n_jobs : int
        Worker processes for the simulation (1: none).
    progress : bool
        Show a progress bar over the simulated studies.

    Returns
    -------
    PowerResult

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> res = claim_power([50, 100], true_rate=0.8, method="formula")
    >>> res.table["power"].round(3).tolist()
    [0.693, 0.871]
    """
    methods = ["simulation", "formula"] if method == "both" else _as_list(
        method, "method", lambda m: check_choice(m, "method", METHODS[:3]))
    claimed, day, alpha, _, n_sim, seed, dropout, n_jobs, progress = _check_common(
        claimed, day, alpha, methods[0], n_sim, seed, dropout_mean_days, n_jobs, progress)
    if "exact" in methods and np.isfinite(dropout):
        raise ValueError("method='exact' assumes complete follow-up to the day (every episode at risk); with "
                         f"dropout_mean_days={dropout_mean_days!r} use 'simulation' or 'formula'")
    ns = sorted(set(_as_list(n, "n", lambda v: check_int(v, "n", low=1))))
    rates = _as_list(true_rate, "true_rate", lambda v: check_proportion(v, "true_rate"))
    rows, notes = [], _common_notes(claimed, day, dropout, "simulation" in methods)
    for rate in rates:
        if "simulation" in methods:
            r, w = simulate_power(ns, rate, claimed, day, alpha, n_sim, seed, dropout, n_jobs, progress)
            rows += r
            notes += w
        for m in ("formula", "exact"):
            if m in methods:
                rows += _formula_rows(ns, rate, claimed, day, alpha, dropout, m)
    if "exact" in methods:
        notes.append("exact: the number of resolutions by the day is Binomial(n, true rate) without censoring, and "
                     "the test's p-value is evaluated at every count")
    return PowerResult(pd.DataFrame(rows), claimed, day, alpha, dropout, n_sim if "simulation" in methods else 0,
                       seed, notes)


def _stays_above(table: pd.DataFrame, target: float) -> int | None:
    """Smallest simulated n from which every larger candidate reaches ``target`` (None: the largest does not)."""
    t = table.sort_values("n")
    below = np.flatnonzero(t["power"].to_numpy() < target)
    if len(below) == 0:
        return int(t["n"].iat[0])
    return None if below[-1] == len(t) - 1 else int(t["n"].iat[below[-1] + 1])


def _candidates(lo: int, hi: int, k: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(lo, hi, k)} - {0})


def claim_sample_size(true_rate: float, power: float = 0.80, claimed: float = 0.90, day: float = 42,
                      alpha: float = 0.05, method: str = "formula", n_sim: int = 1000, seed: int = 0,
                      dropout_mean_days: float = np.inf, n_jobs: int = 1, progress: bool = True) -> SampleSizeResult:
    """Untreated episodes needed for the claim test to reach ``power`` when the true rate is ``true_rate``.

    With ``method="formula"`` :func:`sample_size_formula` (instant). With
    ``method="simulation"`` the simulated power of candidates from 0.7 to 2
    times the formula's answer is computed on the same ``n_sim`` simulated
    studies, then refined between the last candidate below the target and the
    next; the smallest candidate from which every larger candidate reaches
    ``power`` is returned (the power of a test on counts is a saw-tooth in n;
    several minutes for ``n_sim=1000``).

    Parameters
    ----------
    true_rate : float
        True share resolved by ``day`` under which the claim should be refuted.
    power : float
        Target power.
    claimed, day, alpha, n_sim, seed, dropout_mean_days, n_jobs, progress :
        As in :func:`claim_power`.
    method : {"formula", "simulation"}

    Returns
    -------
    SampleSizeResult

    Examples
    --------
    >>> claim_sample_size(0.80, power=0.80, claimed=0.90).n
    83
    """
    claimed, day, alpha, method, n_sim, seed, dropout, n_jobs, progress = _check_common(
        claimed, day, alpha, method, n_sim, seed, dropout_mean_days, n_jobs, progress)
    check_choice(method, "method", ("formula", "simulation"))
    true_rate, target = check_proportion(true_rate, "true_rate"), check_proportion(power, "power")
    n0 = sample_size_formula(true_rate, target, claimed, day, alpha, dropout)
    notes = _common_notes(claimed, day, dropout, method == "simulation")
    if method == "formula":
        table = pd.DataFrame(_formula_rows([n0], true_rate, claimed, day, alpha, dropout))
        return SampleSizeResult(n0, True, table["power"].iat[0], n0, table, target, true_rate, claimed, day, alpha,
                                method, notes)
    cands = _candidates(max(2, int(0.7 * n0)), max(3, 2 * n0), 10)
    rows, w = simulate_power(cands, true_rate, claimed, day, alpha, n_sim, seed, dropout, n_jobs, progress)
    table = pd.DataFrame(rows)
    hi = _stays_above(table, target)
    if hi is not None and hi != table["n"].min():
        lo = int(table.loc[table["n"] < hi, "n"].max())
        if hi - lo > 1:
            more, w2 = simulate_power(_candidates(lo + 1, hi - 1, min(hi - lo - 1, 6)), true_rate, claimed, day, alpha,
                                      n_sim, seed, dropout, n_jobs, progress)
            table = pd.concat([table, pd.DataFrame(more)]).sort_values("n")
            w += w2
    hi = _stays_above(table, target)
    if hi is not None:
        best, achieved = table.loc[table["n"] == hi].iloc[0], True
        n_best = hi
    else:
        best, achieved = table.sort_values("n").iloc[-1], False
        n_best = int(best["n"])
        notes.append(f"the simulated power at the largest candidate ({n_best} episodes) is below {target:.0%} "
                     f"({best['power']:.1%}); it is returned")
    if achieved and n_best == table["n"].min():
        notes.append(f"the smallest candidate ({n_best}) already reaches the target: fewer episodes may suffice")
    table = pd.concat([table, pd.DataFrame(_formula_rows([n0], true_rate, claimed, day, alpha, dropout))])
    return SampleSizeResult(n_best, achieved, best["power"], n0, table.sort_values(["method", "n"]), target,
                            true_rate, claimed, day, alpha, method, notes + w)
