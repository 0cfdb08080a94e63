"""Power and sample size for the claim test ("a share ``claimed`` of untreated episodes resolve by ``day``").

Two ways to the same number:

* **simulation** (the reference): ``n_sim`` studies of ``n`` untreated
  episodes are simulated with :func:`~backpain_outcomes.simulate_study`
  (true share resolved by ``day`` after first contact = ``true_rate``) and
  each is tested with :func:`~backpain_outcomes.test_resolution_claim`
  (``origin="first_contact"``, the simulator's time origin); the power is the
  share of studies in which the one-sided test rejects the claim at level
  ``alpha``, with its Monte Carlo standard error.
* **formula** (a fast check): the normal approximation of that test on the
  complementary log-log scale. With :math:`u(S) = \\log(-\\log S)`,
  :math:`S_0 = 1 - \\text{claimed}`, :math:`S_1 = 1 - \\text{true rate}` and the
  Greenwood variance of :math:`\\log \\hat S`,

  .. math:: \\text{power} = \\Phi\\!\\left(\\frac{|u(S_1) - u(S_0)|}{\\mathrm{se}_1} - z_{1-\\alpha}\\right),
            \\qquad \\mathrm{se}_1 = \\frac{\\sqrt{V}}{|\\log S_1|},
            \\qquad V = \\frac{1 - S_1}{n S_1}

  without drop-out (the Greenwood variance of a complete sample). With
  exponential drop-out at rate :math:`c = 1/\\text{dropout\\_mean\\_days}` and
  a constant resolution hazard :math:`h = -\\log S_1 / \\text{day}`,
  :math:`V = \\frac{h}{n(h + c)}\\left(e^{(h + c)\\,\\text{day}} - 1\\right)`.
  The sample size inverts the same formula:
  :math:`n = \\left((z_{1-\\alpha} + z_{\\text{power}})\\, \\mathrm{sd}_1 / |u(S_1) - u(S_0)|\\right)^2`.

The test is the one of :func:`~backpain_outcomes.claims.test_resolution_claim`:
against the claim when ``true_rate < claimed`` (H1: p < claimed), the mirror
test when ``true_rate > claimed``. Power analysis for survival quantities on
the log-log scale: Borgan & Liestøl 1990 (Scand J Stat 17:35-41); simulation
of power: Arnold et al. 2011 (BMC Med Res Methodol 11:94).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy import optimize, stats
from tqdm import tqdm

from .checks import check_alpha, check_bool, check_choice, check_day, check_int, check_positive, check_proportion
from .claims import test_resolution_claim
from .results import Result
from .simulate import simulate_study
from .vocabulary import UNTREATED

__all__ = ["claim_power", "claim_sample_size", "PowerResult", "SampleSizeResult", "power_formula",
           "power_exact", "sample_size_formula"]

METHODS = ("simulation", "formula", "exact", "both")
#: share of untreated patients in each simulated study (the treated ones are dropped before the test)
_SIM_UNTREATED_SHARE = 0.85


# ------------------------------------------------------------------ the formula
def _variance_log_s(n, s1, day, dropout_mean_days):
    """Greenwood variance of log S(day) for ``n`` episodes (approximation under exponential drop-out)."""
    if not np.isfinite(dropout_mean_days):
        return (1 - s1) / (n * s1)
    h, c = -math.log(s1) / day, 1.0 / dropout_mean_days
    return h / (n * (h + c)) * math.expm1((h + c) * day)


def _distance_and_sd(true_rate, claimed, day, dropout_mean_days):
    """(|u1 - u0|, sd of u-hat for one episode) on the complementary log-log scale."""
    s0, s1 = 1 - claimed, 1 - true_rate
    delta = abs(math.log(-math.log(s1)) - math.log(-math.log(s0)))
    sd1 = math.sqrt(_variance_log_s(1, s1, day, dropout_mean_days)) / abs(math.log(s1))
    return delta, sd1


def power_formula(n, true_rate, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> float:
    """Normal-approximation power of the one-sided claim test (see the module docstring).

    Parameters
    ----------
    n : int
        Episodes at risk.
    true_rate, claimed : float
        True and claimed share resolved by ``day``.
    day : float
    alpha : float
        One-sided level.
    dropout_mean_days : float
        Mean of an exponential drop-out time (``np.inf``: none before ``day``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(power_formula(75, 0.80, claimed=0.90), 3)
    0.803
    """
    n = check_int(n, "n", low=1)
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    day, alpha = check_day(day), check_alpha(alpha)
    dropout_mean_days = _check_dropout(dropout_mean_days)
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    return float(stats.norm.cdf(delta * math.sqrt(n) / sd1 - stats.norm.ppf(1 - alpha)))


def sample_size_formula(true_rate, power=0.80, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> int:
    """Episodes at risk for the claim test to reach ``power`` (normal approximation, rounded up).

    Examples
    --------
    >>> sample_size_formula(0.80, power=0.80, claimed=0.90)
    75
    """
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    power, day, alpha = check_proportion(power, "power"), check_day(day), check_alpha(alpha)
    dropout_mean_days = _check_dropout(dropout_mean_days)
    if true_rate == claimed:
        raise ValueError(f"true_rate equals claimed ({claimed:g}): no number of episodes gives power above alpha; "
                         "choose the true rate under which the claim should be refuted")
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    return max(1, math.ceil(((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * sd1 / delta) ** 2 - 1e-9))


def _p_values_by_events(n, claimed):
    r"""One-sided p-values (below, above) of the claim test for 0..n resolutions among n episodes, no censoring.

    Without censoring the Kaplan-Meier estimate is :math:`\hat S = 1 - k/n` and the
    Greenwood variance of :math:`\log \hat S` telescopes to :math:`k / (n (n - k))`;
    no resolution and all resolved use the exact bounds of the package's test.
    """
    k = np.arange(n + 1)
    s = 1 - k / n
    below, above = np.empty(n + 1), np.empty(n + 1)
    inner = (k > 0) & (k < n)
    ki, si = k[inner], s[inner]
    se_u = np.sqrt(ki / (n * (n - ki))) / np.abs(np.log(si))
    z = (np.log(-np.log(si)) - math.log(-math.log(1 - claimed))) / se_u
    below[inner], above[inner] = stats.norm.cdf(z), stats.norm.sf(z)
    below[0], above[0] = (1 - claimed) ** n, 1.0
    below[n], above[n] = 1.0, claimed ** n
    return below, above


def power_exact(n, true_rate, claimed=0.90, alpha=0.05) -> float:
    """Exact power of the claim test under complete follow-up to the day, every episode at risk.

    The number of resolutions by the day is Binomial(``n``, ``true_rate``);
    the power sums its probabilities over the counts at which the one-sided
    test rejects. It shows the saw-tooth in ``n`` that the smooth formula
    (:func:`power_formula`) cannot.

    Examples
    --------
    >>> round(power_exact(10, 0.70, claimed=0.90), 4)
    0.3504
    """
    n = check_int(n, "n", low=1)
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    alpha = check_alpha(alpha)
    below, above = _p_values_by_events(n, claimed)
    p = below if true_rate < claimed else above
    return float(stats.binom.pmf(np.arange(n + 1), n, true_rate)[p < alpha].sum())


# ------------------------------------------------------------------ the simulation
def _check_dropout(value) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == np.inf:
        return np.inf
    return check_positive(value, "dropout_mean_days")


@functools.lru_cache(maxsize=32)
def _rate_at_42(true_rate: float, day: float, horizon: int) -> float:
    """The simulator's ``untreated_resolved_by_42`` giving ``true_rate`` resolved by ``day`` (first contact)."""
    if day == 42:
        try:
            simulate_study(40, seed=0, untreated_resolved_by_42=true_rate, horizon=horizon)
        except ValueError as err:
            raise ValueError(f"true_rate={true_rate:g} cannot be simulated: {err}; use method='formula'") from err
        return true_rate

    def truth(x):
        _, tr = simulate_study(40, seed=0, untreated_resolved_by_42=x, horizon=horizon)
        cum = tr.cumulative_resolution(day=day, origin="first_contact", n_mc=20000, seed=1)
        return float(cum["true_cumulative_resolution"].iloc[0]) - true_rate

    lo, hi = 0.01, 0.95
    f_lo, f_hi = truth(lo), truth(hi)
    if f_lo > 0 or f_hi < 0:
        raise ValueError(f"true_rate={true_rate:g} by day {day:g} is outside what the simulator can produce "
                         f"({f_lo + true_rate:.3f} to {f_hi + true_rate:.3f}); use method='formula'")
    return float(optimize.brentq(truth, lo, hi, xtol=1e-4))


def _study_seed(seed: int, attempt: int) -> int:
    return seed if attempt == 0 else int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def _one_study(seed: int, ns: tuple, rate42: float, claimed: float, day: float, alpha: float, below: bool,
               dropout_mean_days: float, horizon: int) -> tuple[list[tuple], list[str]]:
    """Simulate one study with at least max(ns) untreated episodes and test the claim on the first n of each size.

    Returns ``([(rejected, n_at_risk, estimable) per n], warning texts)``.
    """
    n_max = max(ns)
    n_pat = math.ceil((n_max + 4 * math.sqrt(n_max) + 10) / _SIM_UNTREATED_SHARE)
    texts: list[str] = []
    for attempt in range(20):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study, _ = simulate_study(n_pat, seed=_study_seed(seed, attempt), untreated_share=_SIM_UNTREATED_SHARE,
                                      untreated_resolved_by_42=rate42, horizon=horizon,
                                      dropout_mean_days=dropout_mean_days)
        texts += [str(w.message) for w in caught]
        ids = study.episodes.loc[study.episodes["modality"] == UNTREATED, "episode_id"].to_numpy()
        if len(ids) >= n_max:
            break
    else:  # pragma: no cover - 20 draws short of n_max episodes has probability below 1e-80
        raise RuntimeError("the simulator did not produce enough untreated episodes")
    out = []
    for n in ns:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = test_resolution_claim(study.subset(ids[:n]), claimed=claimed, day=day, population=UNTREATED,
                                        origin="first_contact", alpha=alpha, sensitivity=False, min_n=1)
        texts += [str(w.message) for w in caught]
        p = res.p_value_below if below else res.p_value_above
        out.append((bool(np.isfinite(p) and p < alpha), int(res.n), bool(np.isfinite(res.estimate))))
    return out, texts


def _run(seed, args):
    return _one_study(seed, *args)


def _simulate(ns, true_rate, claimed, day, alpha, n_sim, seed, dropout_mean_days, n_jobs, progress):
    """Simulated power at each n for one true rate: (rows, notes)."""
    horizon = int(math.ceil(day)) + 56
    rate42 = _rate_at_42(true_rate, day, horizon)
    seeds = np.random.SeedSequence(seed).generate_state(n_sim).tolist()  # the same studies for every n
    args = (tuple(ns), rate42, claimed, day, alpha, true_rate < claimed, dropout_mean_days, horizon)
    bar = tqdm(total=n_sim, desc=f"simulated studies (true rate {true_rate:g})", disable=not progress, leave=False)
    results = []
    if n_jobs == 1:
        for s in seeds:
            results.append(_run(s, args))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for r in pool.map(_run, seeds, [args] * n_sim, chunksize=max(1, n_sim // (8 * n_jobs))):
                results.append(r)
                bar.update()
    bar.close()
    rows = []
    for j, n in enumerate(ns):
        rej = np.array([r[0][j][0] for r in results])
        p = float(rej.mean())
        rows.append({"n": n, "true_rate": true_rate, "claimed": claimed, "day": day, "alpha": alpha,
                     "method": "simulation", "power": p, "mc_se": math.sqrt(p * (1 - p) / n_sim), "n_sim": n_sim,
                     "mean_at_risk": float(np.mean([r[0][j][1] for r in results])),
                     "not_estimable": int(sum(not r[0][j][2] for r in results))})
    counts: dict[str, int] = {}
    for r in results:
        for t in set(r[1]):
            counts[t] = counts.get(t, 0) + 1
    notes = [f"{k} of {n_sim} simulated studies (true rate {true_rate:g}) warned: {t}"
             for t, k in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]
    return rows, notes


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
    notes.append("formula: normal approximation on the complementary log-log scale with the Greenwood variance; "
                 + ("no drop-out before the day" if not np.isfinite(dropout_mean_days) else
                    f"exponential drop-out (mean {dropout_mean_days:g} days) with a constant resolution hazard")
                 + "; being smooth in n it misses the saw-tooth of a test on counts, so at small n it can be "
                   "several points off (method='exact' shows it)")
    if simulated:
        notes.append("the simulator reaches its true rate by solving with Monte Carlo, to within a few thousandths; "
                     "at large n a shift of 0.002 in the true rate moves the power by up to 2-3 points")
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
        reaching ``target_power``); NaN-free: when no candidate reaches it, the
        largest is returned with ``achieved = False``.
    achieved : bool
    power : float
        Power at ``n`` (simulated or by the formula).
    formula_n : int
        The normal-approximation answer.
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
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for (rate, method), g in table.groupby(["true_rate", "method"], sort=True):
        g = g.sort_values("n")
        if method == "simulation":
            ax.errorbar(g["n"], g["power"], yerr=1.96 * g["mc_se"], marker="o", capsize=3,
                        label=f"true rate {rate:.0%}, simulated")
        else:
            ax.plot(g["n"], g["power"], ls="--" if method == "formula" else ":", marker=".",
                    label=f"true rate {rate:.0%}, {method}")
    if target is not None:
        ax.axhline(target, color="grey", ls=":", label=f"target power {target:.0%}")
    if chosen is not None:
        ax.axvline(chosen, color="black", ls=":", label=f"n = {chosen}")
    ax.set_xlabel("untreated episodes")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small")
    return ax


# ------------------------------------------------------------------ public functions
def _check_common(claimed, day, alpha, method, n_sim, seed, dropout_mean_days, n_jobs, progress):
    return (check_proportion(claimed, "claimed"), check_day(day), check_alpha(alpha),
            check_choice(method, "method", METHODS), check_int(n_sim, "n_sim", low=1), check_int(seed, "seed"),
            _check_dropout(dropout_mean_days), check_int(n_jobs, "n_jobs", low=1), check_bool(progress, "progress"))


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
        normal-approximation formula (see the module docstring), the exact
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
    [0.653, 0.892]
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
            r, w = _simulate(ns, rate, claimed, day, alpha, n_sim, seed, dropout, n_jobs, progress)
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


def _candidates(lo: int, hi: int, k: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(lo, hi, k)} - {0})


def claim_sample_size(true_rate: float, power: float = 0.80, claimed: float = 0.90, day: float = 42,
                      alpha: float = 0.05, method: str = "formula", n_sim: int = 1000, seed: int = 0,
                      dropout_mean_days: float = np.inf, n_jobs: int = 1, progress: bool = True) -> SampleSizeResult:
    """Untreated episodes needed for the claim test to reach ``power`` when the true rate is ``true_rate``.

    With ``method="formula"`` the normal approximation (instant). With
    ``method="simulation"`` the simulated power of candidates from 0.7 to 2
    times the formula's answer is computed on the same ``n_sim`` simulated
    studies, then refined between the last candidate below and the first at
    or above the target; the smallest candidate reaching ``power`` is
    returned (several minutes for ``n_sim=1000``).

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
    75
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
    rows, w = _simulate(cands, true_rate, claimed, day, alpha, n_sim, seed, dropout, n_jobs, progress)
    table = pd.DataFrame(rows)
    ok = table[table["power"] >= target]
    if len(ok) and not ok["n"].min() == table["n"].min():
        hi = int(ok["n"].min())
        lo = int(table.loc[table["n"] < hi, "n"].max())
        if hi - lo > 1:
            more, w2 = _simulate(_candidates(lo + 1, hi - 1, min(hi - lo - 1, 6)), true_rate, claimed, day, alpha,
                                 n_sim, seed, dropout, n_jobs, progress)
            table = pd.concat([table, pd.DataFrame(more)]).sort_values("n")
            w += w2
    ok = table[table["power"] >= target]
    if len(ok):
        best = ok.sort_values("n").iloc[0]
        n_best, achieved = int(best["n"]), True
    else:
        best, achieved = table.sort_values("n").iloc[-1], False
        n_best = int(best["n"])
        notes.append(f"no candidate up to {n_best} episodes reached {target:.0%} simulated power; the largest is "
                     f"returned (simulated power {best['power']:.1%})")
    if achieved and n_best == table["n"].min():
        notes.append(f"the smallest candidate ({n_best}) already reaches the target: fewer episodes may suffice")
    table = pd.concat([table, pd.DataFrame(_formula_rows([n0], true_rate, claimed, day, alpha, dropout))])
    return SampleSizeResult(n_best, achieved, best["power"], n0, table.sort_values(["method", "n"]), target,
                            true_rate, claimed, day, alpha, method, notes + w)
