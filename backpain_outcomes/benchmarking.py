"""Benchmarking: therapists and clinics against what their case mix predicts.

* :func:`outcome_at_day`: each episode's measurement nearest a horizon (the
  outcome behind responder rates and benchmarks).
* :func:`benchmark_therapists`: observed minus expected improvement per
  therapist, risk adjusted by an ordinary least squares model of improvement
  on baseline score, chronicity and age over all treated episodes (in the
  style of FOTO: Gozalo, Resnik & Silver 2016, Health Serv Res 51:768), with
  funnel control limits :math:`\\pm z\\,\\sigma/\\sqrt{n}` at one stated
  level (Spiegelhalter 2005, Stat Med 24:1185).
* :func:`benchmark_clinic`: a clinic's key outcomes next to the value its
  case mix predicts (:mod:`backpain_outcomes.casemix`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from . import style
from .checks import check_bool, check_day, check_instrument, check_min_n, check_origin, check_positive, check_proportion
from .results import Result
from .vocabulary import MCID_ABSOLUTE, MCID_RELATIVE, instrument_label

__all__ = ["outcome_at_day", "benchmark_therapists", "TherapistBenchmark", "covariate_terms"]


def outcome_at_day(study, instrument: str = "nrs", day: float = 42, origin: str = "onset",
                   window: float = 14) -> pd.DataFrame:
    """Each episode's follow-up measurement nearest ``day`` (within ``window`` days; the earlier one on a tie).

    Parameters
    ----------
    study : Study
    instrument : str
        Any spelling of an instrument ("NPRS", "Oswestry", ...).
    day : float
        The horizon, in days since ``origin``.
    origin : {"onset", "first_contact"}
    window : float
        Largest distance in days between the measurement and ``day``.

    Returns
    -------
    DataFrame with one row per episode measured near ``day``: ``episode_id``,
    ``modality``, ``chronicity``, ``age``, ``baseline`` (first measurement),
    ``day``, ``score``, ``improvement`` (baseline - score) and ``responder``
    (improved by the MCID of Ostelo et al. 2008: the instrument's points
    *and* 30% of baseline).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> out = outcome_at_day(bpo.load_study(bpo.example_path()), "nrs", 42)
    >>> bool(((out["day"] - 42).abs() <= 14).all())
    True
    """
    instrument = check_instrument(instrument)
    day = check_day(day)
    origin = check_origin(origin)
    window = check_positive(window, "window", allow_zero=True)
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=False)
    f = frame.assign(dist=(frame["day"] - day).abs())
    f = f[f["dist"] <= window].sort_values(["episode_id", "dist", "day"], kind="stable")
    near = f.groupby("episode_id", sort=False).head(1).drop(columns="dist")
    near = near.assign(modality=near["modality"].astype(str), chronicity=near["chronicity"].astype(str),
                       improvement=near["baseline"] - near["score"])
    near["responder"] = ((near["improvement"] >= MCID_ABSOLUTE[instrument] - 1e-12)
                         & (near["improvement"] >= MCID_RELATIVE * near["baseline"] - 1e-12))
    cols = ["episode_id", "modality", "chronicity", "age", "baseline", "day", "score", "improvement", "responder"]
    return near[cols].reset_index(drop=True)


def covariate_terms(frame: pd.DataFrame) -> list[str]:
    """Case-mix terms a frame supports: baseline, chronicity (when it varies), age (when known for all and varying)."""
    terms = ["baseline"]
    if frame["chronicity"].astype(str).nunique() > 1:
        terms.append("C(chronicity)")
    if "age" in frame and frame["age"].notna().all() and frame["age"].nunique() > 1:
        terms.append("age")
    return terms


class TherapistBenchmark(Result):
    """Risk-adjusted improvement per therapist (:func:`benchmark_therapists`).

    Attributes
    ----------
    table : DataFrame
        One row per therapist shown: ``therapist`` (T1, T2, ... by caseload
        unless real ids were asked for), ``n`` (episodes), ``observed`` and
        ``expected`` mean improvement, ``o_minus_e``, ``lower`` and ``upper``
        control limits, ``flag`` (``"above expected"``, ``"below expected"``
        or empty).
    episodes : DataFrame
        One row per benchmarked episode: ``episode_id``, ``therapist`` (the
        label of ``table``, or ``None`` when hidden), ``caseload``
        (the therapist label, or ``"hidden 1"``, ``"hidden 2"``, ... for
        therapists not shown), ``improvement``, ``expected``, ``residual``.
    sigma : float
        Residual standard deviation of the risk model.
    limit : float
        Coverage of the control limits (one level, e.g. 0.998).
    z : float
    n_hidden : int
        Therapists not shown (fewer than ``min_n`` episodes, or hidden to protect them).
    instrument, origin : str
    day, window : float
    notes : list of str
    """

    def __init__(self, table, episodes, sigma, limit, n_hidden, instrument, day, origin, window, notes):
        self.table, self.episodes, self.sigma, self.limit = table, episodes, sigma, limit
        self.z = float(stats.norm.ppf(0.5 + limit / 2))
        self.n_hidden, self.instrument, self.day, self.origin, self.window = n_hidden, instrument, day, origin, window
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        lines = [f"{len(self.table)} therapist(s) shown, {self.n_hidden} hidden; {self.limit:.1%} control limits",
                 *self.notes]
        return "Therapist benchmarking", lines, {"Therapists": self.table}

    def flagged(self) -> pd.DataFrame:
        """The rows outside the control limits."""
        return self.table[self.table["flag"] != ""]

    def without(self, therapists) -> TherapistBenchmark:
        """A new result with some therapists hidden (their episodes stay in the risk model)."""
        drop = set(therapists)
        keep = self.table[~self.table["therapist"].isin(drop)].reset_index(drop=True)
        eps = self.episodes.assign(therapist=self.episodes["therapist"].where(~self.episodes["therapist"].isin(drop)))
        eps["caseload"] = eps["caseload"].where(~self.episodes["therapist"].isin(drop),
                                                "hidden to protect: " + self.episodes["therapist"].astype(str))
        return TherapistBenchmark(keep, eps, self.sigma, self.limit, self.n_hidden + len(self.table) - len(keep),
                                  self.instrument, self.day, self.origin, self.window, self.notes)

    def plot(self, ax=None):
        """Funnel plot: observed minus expected improvement against caseload, with the control limits."""
        ax = style.new_axes(ax, figsize=(7, 4.2))
        g = self.table
        if len(g):
            n = np.linspace(max(g["n"].min() * 0.8, 1), g["n"].max() * 1.1, 100)
            ax.plot(n, self.z * self.sigma / np.sqrt(n), "k--", lw=1, label=f"{self.limit:.1%} control limits")
            ax.plot(n, -self.z * self.sigma / np.sqrt(n), "k--", lw=1)
            out = (g["flag"] != "").to_numpy()
            for mask, name, col in ((~out, "within the limits", style.OKABE_ITO["blue"]),
                                    (out, "outside the limits", style.OKABE_ITO["vermillion"])):
                if mask.any():
                    ax.scatter(g["n"][mask], g["o_minus_e"][mask], color=col, zorder=3, label=f"therapist, {name}")
            for rec in g.itertuples():
                ax.annotate(str(rec.therapist), (rec.n, rec.o_minus_e), fontsize=style.TEXT_SIZE, xytext=(3, 3),
                            textcoords="offset points")
            style.legend(ax, loc="upper right")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("Episodes per therapist (n)", fontsize=style.LABEL_SIZE)
        ax.set_ylabel(f"Observed - expected improvement\n({instrument_label(self.instrument)} points)",
                      fontsize=style.LABEL_SIZE)
        ax.tick_params(labelsize=style.TICK_SIZE)
        return ax


def main_therapist(sessions: pd.DataFrame) -> pd.Series:
    """The therapist who gave most of each episode's sessions (ties: the first in id order), by ``episode_id``.

    The rule by which :func:`benchmark_therapists` credits each episode to one therapist; the clinic report
    uses the same function.
    """
    if sessions is None or "therapist_id" not in sessions:
        return pd.Series(dtype=object, name="therapist_id", index=pd.Index([], dtype=object, name="episode_id"))
    ss = sessions.dropna(subset=["therapist_id"])
    counts = ss.groupby(["episode_id", "therapist_id"]).size().reset_index(name="k")
    counts = counts.sort_values(["episode_id", "k", "therapist_id"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("episode_id").set_index("episode_id")["therapist_id"]


def benchmark_therapists(study, instrument: str = "nrs", day: float = 42, origin: str = "onset", window: float = 14,
                         limit: float = 0.998, min_n: int = 5, show_therapists: bool = False) -> TherapistBenchmark:
    """Observed minus expected improvement per therapist, with funnel control limits at one level.

    Each treated episode measured near ``day`` is credited to the therapist
    who gave most of its sessions. Expected improvement (baseline - score at
    the measurement nearest ``day``) comes from an OLS model on baseline
    score, chronicity and age (when known for every episode) over all these
    episodes; a therapist's ``o_minus_e`` is the mean residual of their
    episodes, and is flagged when outside :math:`\\pm z\\,\\sigma/\\sqrt{n}`
    with :math:`z` the normal quantile of ``limit`` (3.09 for 99.8%).

    Parameters
    ----------
    study : Study
    instrument : str
    day : float
        Horizon in days since ``origin``.
    origin : {"onset", "first_contact"}
    window : float
        Largest distance (days) between the measurement and ``day``.
    limit : float
        Coverage of the control limits (default 0.998: about 1 in 500
        therapists performing as expected falls outside by chance).
    min_n : int
        Therapists with fewer episodes are not shown (counted in ``n_hidden``).
    show_therapists : bool
        Show therapist ids instead of T1, T2, ... (by decreasing caseload).

    Returns
    -------
    TherapistBenchmark

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> bench = benchmark_therapists(bpo.load_study(bpo.example_path()))
    >>> round(bench.z, 2), list(bench.table.columns)[:3]
    (3.09, ['therapist', 'n', 'observed'])
    """
    instrument, day, origin = check_instrument(instrument), check_day(day), check_origin(origin)
    limit, min_n = check_proportion(limit, "limit"), check_min_n(min_n)
    show_therapists = check_bool(show_therapists, "show_therapists")
    cols = ["therapist", "n", "observed", "expected", "o_minus_e", "lower", "upper", "flag"]
    empty = pd.DataFrame(columns=cols)
    no_eps = pd.DataFrame(columns=["episode_id", "therapist", "caseload", "improvement", "expected", "residual"])
    ss = study.sessions
    if ss.empty or "therapist_id" not in ss or ss["therapist_id"].isna().all():
        return TherapistBenchmark(empty, no_eps, np.nan, limit, 0, instrument, day, origin, window,
                                  ["No therapist is recorded in the sessions table; nothing to benchmark."])
    main = main_therapist(ss)
    near = outcome_at_day(study, instrument, day, origin, window)
    near = near[near["episode_id"].isin(main.index)].copy()
    near["therapist_id"] = near["episode_id"].map(main)
    if len(near) < 10:
        return TherapistBenchmark(empty, no_eps, np.nan, limit, 0, instrument, day, origin, window,
                                  [f"Fewer than 10 treated episodes were measured near day {day:g}; no benchmark."])
    terms = covariate_terms(near)
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = smf.ols("improvement ~ " + " + ".join(terms), data=near).fit()
    notes += [f"Risk model: {w.message}" for w in caught]
    near["expected"] = fit.fittedvalues
    near["residual"] = fit.resid
    sigma = float(np.sqrt(fit.scale))
    g = near.groupby("therapist_id").agg(n=("residual", "size"), observed=("improvement", "mean"),
                                         o_minus_e=("residual", "mean")).reset_index()
    g["expected"] = g["observed"] - g["o_minus_e"]
    g = g.sort_values(["n", "therapist_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    small = g["n"] < min_n
    shown = g[~small].reset_index(drop=True)
    labels = dict(zip(shown["therapist_id"], shown["therapist_id"].astype(str) if show_therapists
                      else [f"T{i + 1}" for i in range(len(shown))]))
    shown["therapist"] = shown["therapist_id"].map(labels)
    z = float(stats.norm.ppf(0.5 + limit / 2))
    shown["upper"] = z * sigma / np.sqrt(shown["n"])
    shown["lower"] = -shown["upper"]
    shown["flag"] = np.select([shown["o_minus_e"] > shown["upper"], shown["o_minus_e"] < shown["lower"]],
                              ["above expected", "below expected"], "")
    hidden = {t: f"hidden {i + 1}" for i, t in enumerate(g.loc[small, "therapist_id"])}
    eps = near.assign(therapist=near["therapist_id"].map(labels),
                      caseload=near["therapist_id"].map(lambda t: labels.get(t, hidden.get(t))))[
        ["episode_id", "therapist", "caseload", "improvement", "expected", "residual"]].reset_index(drop=True)
    notes.append(f"Expected improvement from an OLS model of improvement on {', '.join(terms)} over "
                 f"{len(near)} treated episodes; residual SD {sigma:.2f} points.")
    return TherapistBenchmark(shown[cols], eps, sigma, limit, int(small.sum()), instrument, day, origin, window, notes)
