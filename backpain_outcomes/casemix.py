"""A clinic's key outcomes next to what its case mix predicts (:func:`benchmark_clinic`).

Benchmark source:

* **all clinics in the data** when a clinic is selected in a study with
  several clinics: models of each outcome on baseline score, chronicity and
  age (when known for all) are fitted over every clinic and averaged over
  this clinic's episodes (indirect standardisation, as outcome systems such
  as FOTO do; Gozalo, Resnik & Silver 2016, Health Serv Res 51:768). Time to
  resolution is standardised by reweighting: all clinics' episodes are
  weighted to this clinic's mix of chronicity and baseline band.
* **the published natural course** otherwise (one clinic, or the whole
  network): mean pain at the horizon expected if each episode followed the
  published natural-course curve of its chronicity (Menezes Costa et al.
  2012, CMAJ 184:E613, from onset; Wallwork et al. 2024, CMAJ 196:E29, from
  study entry, for ``origin="first_contact"``), relative to its baseline.

The interval next to an expected value is the range the clinic's own figure
would fall in 95 times in 100 if its episodes did exactly as expected (the
funnel limits of Spiegelhalter 2005, Stat Med 24:1185).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from . import style
from .benchmarking import covariate_terms, outcome_at_day
from .checks import check_alpha, check_day, check_instrument, check_origin
from .reference import reference_curves
from .resolution import DEFAULT_RULE, time_to_resolution
from .results import Result
from .rules import as_rule
from .survival import kaplan_meier, km_median

__all__ = ["benchmark_clinic", "ClinicBenchmark", "OUTCOMES"]

#: Key outcomes, in the order of the report's first page.
OUTCOMES = ("improved", "score_at_day", "median_days", "followed_up")
_COLUMNS = ["outcome", "observed", "ci_low", "ci_high", "n", "expected", "expected_low", "expected_high", "source"]
_NATURAL = {"onset": ("costa2012", {"acute": "acute", "subacute": "persistent", "chronic": "persistent"}),
            "first_contact": ("wallwork2024", {"acute": "acute", "subacute": "subacute", "chronic": "persistent"})}


class ClinicBenchmark(Result):
    """Key outcomes of a clinic and their case-mix benchmarks (:func:`benchmark_clinic`).

    Attributes
    ----------
    table : DataFrame
        One row per outcome of :data:`OUTCOMES`: ``outcome``, ``observed``
        with its ``ci_low``/``ci_high``, ``n`` (episodes behind it),
        ``expected`` with ``expected_low``/``expected_high`` (the range of a
        clinic of this size doing as expected; NaN where no benchmark
        exists, ``notes`` says why) and ``source``.
    clinic : str or None
    source : str
        ``"all clinics"`` or the natural-course source used.
    alpha : float
        One minus the level of every interval.
    notes : list of str
    """

    def __init__(self, table, clinic, source, notes, alpha: float = 0.05):
        self.table, self.clinic, self.source, self.alpha = table, clinic, source, alpha
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        return (f"Clinic benchmark ({self.clinic or 'all clinics'}; expected from {self.source})", self.notes,
                {"Key outcomes": self.table})

    def plot(self, ax=None):
        """Observed value with CI against the expected range, one row per outcome (scaled to expected), n per row."""
        names = {"improved": "Improved", "score_at_day": "Mean score at the horizon",
                 "median_days": "Median days to resolution", "followed_up": "Followed up"}
        t = self.table.reset_index(drop=True)
        ax = style.new_axes(ax, figsize=(7, 0.5 * len(t) + 1.6))
        y = np.arange(len(t))[::-1]
        scale = t["expected"].where(t["expected"] > 0)
        ax.errorbar(t["observed"] / scale, y, xerr=[(t["observed"] - t["ci_low"]) / scale,
                                                   (t["ci_high"] - t["observed"]) / scale], fmt="o",
                    color=style.OKABE_ITO["blue"], capsize=3, label=f"observed with its {style.ci_text(self.alpha)}")
        ax.hlines(y, t["expected_low"] / scale, t["expected_high"] / scale, color="grey", lw=6, alpha=0.4,
                  label="expected range")
        ax.axvline(1, color="k", lw=0.8)
        ax.set_yticks(y, [names.get(o, str(o).replace('_', ' ')) for o in t["outcome"]],
                      fontsize=style.TICK_SIZE)
        style.n_column(ax, y, t["n"])
        ax.set_xlabel("Observed / expected", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Outcome", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        style.legend(ax, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
        return ax


def _wilson(k, n, alpha):
    return proportion_confint(k, n, alpha, method="wilson") if n else (np.nan, np.nan)


def _fit(formula, data, family=None):
    """OLS or binomial GLM; warnings are returned as sentences."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = (smf.ols(formula, data).fit() if family is None
               else smf.glm(formula, data, family=sm.families.Binomial()).fit())
    return fit, [str(w.message) for w in caught]


def _binary(name, y_all, frame_all, mine, terms, z, alpha, notes):
    """Observed share in ``mine`` with Wilson CI; expected from a logistic model over all clinics."""
    k, n = int(y_all[mine].sum()), int(mine.sum())
    lo, hi = _wilson(k, n, alpha)
    row = {"outcome": name, "observed": k / n if n else np.nan, "ci_low": lo, "ci_high": hi, "n": n}
    if frame_all is None or n == 0 or y_all.nunique() < 2:
        return row
    data = frame_all.assign(y=y_all.astype(float).to_numpy())
    fit, warns = _fit("y ~ " + " + ".join(terms), data, family="binomial")
    notes += [f"Expected {name}: {w}" for w in warns]
    p = np.asarray(fit.predict(data[mine.to_numpy()]), float)
    e, half = p.mean(), z * np.sqrt(np.sum(p * (1 - p))) / n
    return {**row, "expected": e, "expected_low": max(e - half, 0.0), "expected_high": min(e + half, 1.0)}


def _natural_ratio(chronicity: pd.Series, origin: str, day: float):
    """Published mean pain at ``day`` relative to week 0, per episode (NaN for unknown chronicity)."""
    source, strata = _NATURAL[origin]
    ref = reference_curves(source)
    ratio = {}
    for stratum, g in ref.groupby("stratum"):
        g = g.sort_values("day")
        ratio[stratum] = float(np.interp(day, g["day"], g["mean_pain_0_100"]) / g["mean_pain_0_100"].iloc[0])
    return chronicity.map(lambda c: ratio.get(strata.get(c), np.nan)).astype(float), source


def _weighted_survival(time, event, entry, weight, grid):
    """Kaplan-Meier with delayed entry and case weights, read at ``grid`` (risk set: entry < t <= time)."""
    order_t, order_e = np.argsort(time), np.argsort(entry)
    ts, ws_t = time[order_t], np.cumsum(weight[order_t][::-1])[::-1]
    es, ws_e = entry[order_e], np.cumsum(weight[order_e][::-1])[::-1]
    ev_t = np.unique(time[event])

    def weight_from(sorted_vals, suffix, t, side):
        pos = np.searchsorted(sorted_vals, t, side=side)
        return np.where(pos < len(sorted_vals), suffix[np.minimum(pos, len(suffix) - 1)], 0.0)
    n_risk = weight_from(ts, ws_t, ev_t, "left") - weight_from(es, ws_e, ev_t, "left")
    d = np.bincount(np.searchsorted(ev_t, time[event]), weights=weight[event], minlength=len(ev_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n_risk > 0, 1 - d / n_risk, 1.0))
    pos = np.searchsorted(ev_t, grid, side="right") - 1
    return np.where(pos >= 0, surv[np.maximum(pos, 0)], 1.0) if len(ev_t) else np.ones(len(grid))


def _standardised_median(ttr_all, mine, z):
    """Median of all clinics' episodes reweighted to this clinic's mix of chronicity and baseline band.

    Each episode at risk is weighted by (clinic share / all-clinic share) of its stratum, so the weighted
    Kaplan-Meier curve (with delayed entry, like the clinic's own) describes all clinics' results for
    this clinic's case mix; the range is where a clinic of this size would see its median cross.
    """
    r = ttr_all[ttr_all["at_risk"]].copy()
    band = (pd.qcut(r["baseline"].rank(method="first"), 3, labels=["low", "middle", "high"]).astype(str)
            if len(r) >= 30 else "all")
    r["stratum"] = r["chronicity"].astype(str) + "/" + pd.Series(band, index=r.index).astype(str)
    own = mine.reindex(r.index, fill_value=False).to_numpy()
    if not own.any():
        return np.nan, np.nan, np.nan
    ratio = r.loc[own, "stratum"].value_counts(normalize=True) / r["stratum"].value_counts(normalize=True)
    w = r["stratum"].map(ratio).fillna(0.0).to_numpy(float)
    grid = np.unique(r.loc[r["resolved"], "day"])
    surv = _weighted_survival(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float),
                              w, grid)
    half = z * np.sqrt(surv * (1 - surv) / own.sum())

    def first(values):
        hit = grid[values <= 0.5]
        return float(hit[0]) if len(hit) else np.nan
    return first(surv), first(surv - half), first(surv + half)


def benchmark_clinic(study, clinic=None, instrument: str = "nrs", day: float = 42, rule=DEFAULT_RULE,
                     origin: str = "onset", window: float = 14, alpha: float = 0.05, *, events=None,
                     outcomes=None) -> ClinicBenchmark:
    """A clinic's key outcomes next to the value expected for its case mix.

    Parameters
    ----------
    study : Study
        The whole study (every clinic): the benchmark is fitted on it.
    clinic : str, optional
        A ``clinic_id``; None for the whole study (benchmarked against the
        published natural course).
    instrument : str
        Outcome instrument (any spelling).
    day : float
        Horizon in days since ``origin`` (42 = six weeks).
    rule : Resolution or str
        Definition of resolved, for the median time to resolution.
    origin : {"onset", "first_contact"}
    window : float
        Largest distance (days) between the measurement used and ``day``.
    alpha : float
        1 - confidence level of the intervals.
    events, outcomes : DataFrame, optional
        The table of :func:`~backpain_outcomes.resolution.time_to_resolution` and the result of
        :func:`~backpain_outcomes.benchmarking.outcome_at_day` for this ``study`` with these
        arguments, when already computed (they are then not computed again).

    Returns
    -------
    ClinicBenchmark
        ``table`` rows: ``improved`` (share improved by the MCID at ``day``),
        ``score_at_day`` (mean score at ``day``), ``median_days`` (median
        days to resolution), ``followed_up`` (share with a second
        measurement).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> b = benchmark_clinic(bpo.load_study(bpo.example_path()), clinic="C1")
    >>> b.source, b.table["outcome"].tolist()
    ('all clinics', ['improved', 'score_at_day', 'median_days', 'followed_up'])
    """
    instrument, day, origin = check_instrument(instrument), check_day(day), check_origin(origin)
    rule, alpha = as_rule(rule), check_alpha(alpha)
    ep = study.episodes
    clinics = sorted(map(str, ep["clinic_id"].dropna().unique())) if "clinic_id" in ep else []
    if clinic is not None and clinic not in clinics:
        raise ValueError(f"clinic={clinic!r} is not in the study; clinics present: {', '.join(clinics) or 'none'}")
    network = clinic is not None and len(clinics) > 1
    in_clinic = set(ep.loc[ep["clinic_id"] == clinic, "episode_id"]) if clinic is not None else set(ep["episode_id"])
    z = float(stats.norm.ppf(1 - alpha / 2))
    notes: list[str] = []
    near = outcome_at_day(study, instrument, day, origin, window) if outcomes is None else outcomes
    mine = near["episode_id"].isin(in_clinic)
    terms = covariate_terms(near) if len(near) else ["baseline"]
    rows = [_binary("improved", near["responder"], near if network else None, mine, terms, z, alpha, notes)]
    rows.append(_score_row(near, mine, terms, network, instrument, origin, day, z, notes))
    ttr = time_to_resolution(study, rule, origin=origin).table if events is None else events
    own = ttr[ttr["episode_id"].isin(in_clinic) & ttr["at_risk"]]
    km = kaplan_meier(own["day"], own["resolved"], own["entry"], alpha=alpha)
    med = km_median(km)
    row = {"outcome": "median_days", "observed": med[0], "ci_low": med[1], "ci_high": med[2], "n": len(own)}
    if network:
        e = _standardised_median(ttr, ttr["episode_id"].isin(in_clinic), z)
        row.update(expected=e[0], expected_low=e[1], expected_high=e[2])
    rows.append(row)
    counts = study.scores.loc[study.scores["instrument"] == instrument, "episode_id"].value_counts()
    per_ep = ep.loc[ep["episode_id"].isin(counts.index), ["episode_id", "chronicity", "age", f"baseline_{instrument}"]]
    per_ep = per_ep.rename(columns={f"baseline_{instrument}": "baseline"}).assign(
        n=lambda d: d["episode_id"].map(counts).to_numpy(), chronicity=lambda d: d["chronicity"].astype(str),
        age=lambda d: pd.to_numeric(d["age"], errors="coerce")).reset_index(drop=True)
    rows.append(_binary("followed_up", per_ep["n"] >= 2, per_ep if network else None,
                        per_ep["episode_id"].isin(in_clinic), covariate_terms(per_ep), z, alpha, notes))
    table = pd.DataFrame(rows).reindex(columns=_COLUMNS)
    source = "all clinics" if network else _NATURAL[origin][0]
    table["source"] = np.where(table["expected"].notna(), source, "")
    if not network:
        notes.append("Expected values come from the published natural course, which reports mean pain only; the "
                     "other outcomes have no published benchmark" + (" (one clinic in the data)." if clinic else "."))
    return ClinicBenchmark(table, clinic, "all clinics" if network else source, notes, alpha=alpha)


def _score_row(near, mine, terms, network, instrument, origin, day, z, notes):
    """Mean score at the horizon, and what all clinics (or the natural course) predict for these episodes."""
    s = near.loc[mine.to_numpy(), "score"]
    n = len(s)
    m = s.mean() if n else np.nan
    half = stats.t.ppf(stats.norm.cdf(z), n - 1) * s.std() / np.sqrt(n) if n > 1 else np.nan
    row = {"outcome": "score_at_day", "observed": m, "ci_low": m - half, "ci_high": m + half, "n": n}
    if n < 2:
        return row
    if network:
        fit, warns = _fit("score ~ " + " + ".join(terms), near)
        notes += [f"Expected score: {w}" for w in warns]
        e = float(np.mean(fit.predict(near[mine.to_numpy()])))
        h = z * np.sqrt(fit.scale) / np.sqrt(n)
        return {**row, "expected": e, "expected_low": e - h, "expected_high": e + h}
    if instrument not in ("nrs", "vas"):
        notes.append(f"No natural-course benchmark for {instrument.upper()}: the published curves are of pain.")
        return row
    own = near[mine.to_numpy()]
    ratio, source = _natural_ratio(own["chronicity"], origin, day)
    known = ratio.notna().to_numpy()
    if not known.any():
        return row
    pred = own["baseline"].to_numpy(float)[known] * ratio.to_numpy()[known]
    if (~known).any():
        notes.append(f"{int((~known).sum())} episode(s) of unknown chronicity have no natural-course benchmark.")
    e = float(pred.mean())
    h = z * float(np.std(own["score"].to_numpy(float)[known] - pred, ddof=1)) / np.sqrt(known.sum())
    notes.append(f"Natural course ({source}): each episode's baseline times the published mean pain at day "
                 f"{day:g} relative to week 0 for its chronicity.")
    return {**row, "expected": e, "expected_low": e - h, "expected_high": e + h}

