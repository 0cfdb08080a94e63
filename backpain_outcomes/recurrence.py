"""Recurrence after resolution: several episodes per patient, Kaplan-Meier from the resolution date.

Definitions (de Vet et al. 2002, "Episodes of low back pain: a proposal for
uniform definitions to be used in research", Spine 27:2409-2416; Stanton et
al. 2008, "After an episode of acute low back pain, recurrence is
unpredictable and not as common as previously thought", Spine 33:2923-2928;
Stanton et al. 2010, "How do we define the condition 'recurrent low back
pain'? A systematic review", Eur Spine J 19:533-539):

* **Episode.** The episodes of a patient are ordered by their start (the
  onset date with ``origin="onset"``, the first visit with
  ``origin="first_contact"``).
* **Resolution.** The resolution day of an episode is the one of
  :func:`~backpain_outcomes.time_to_resolution` under ``rule``; its calendar
  date is the episode's first visit plus that day. Episodes that do not
  resolve (or resolve at their first visit, or have a single visit) start no
  period at risk of recurrence.
* **Recurrence.** A new episode of the same patient that starts at least
  ``gap`` days after a resolution (de Vet et al.: an episode is preceded and
  followed by at least one month without pain; ``gap=30``). A next episode
  that starts earlier than ``gap`` days after the resolution (or before it)
  is the **same episode continuing** (a flare, not a recurrence): that
  resolution starts no period at risk and the patient's next period at risk
  begins at the resolution of the continuing episode. So every patient's
  periods at risk are disjoint.
* **Follow-up.** A period at risk without a recurrence is censored at the
  patient's last contact (last score or session date of any episode). A
  recurrence is only seen when the patient comes back; a study without
  follow-up contacts after resolution cannot tell "no recurrence" from "not
  seen again", and its estimate is then unreliable (the notes count the
  periods with no contact after the resolution visit).

The cumulative recurrence :math:`1 - \\hat S(t)` is the Kaplan-Meier estimate
over the periods at risk, :math:`t` in days since resolution
(:func:`~backpain_outcomes.survival.kaplan_meier`, Greenwood variance, log-log
interval). When a patient contributes several periods the periods are not
independent; the standard error is then the patient-clustered
infinitesimal-jackknife (Lin-Wei type robust) one: with
:math:`\\partial \\log \\hat S(t) / \\partial w_i = \\sum_{t_j \\le t} Y_i(t_j)
\\frac{d_j}{n_j (n_j - d_j)} - \\frac{dN_i(t_j)}{n_j - d_j}` the influence of
period *i*,

.. math:: \\widehat{\\mathrm{Var}}_{\\mathrm{robust}}\\{\\log \\hat S(t)\\} =
          \\sum_{\\text{patients } g} \\Big(\\sum_{i \\in g}
          \\partial \\log \\hat S(t) / \\partial w_i\\Big)^2,

which equals Greenwood's variance exactly when every patient contributes one
period (Lin & Wei 1989, JASA 84:1074-1078; Therneau & Grambsch 2000,
Modeling Survival Data, section 7.2; equal to R
``survfit(Surv(time, status) ~ 1, cluster = patient)``, tests/test_recurrence.py).
The log-log interval uses it. Pooling the periods of a patient assumes that
they share one distribution of time to recurrence; with patients who recur
faster than others the later periods come mostly from them and the pooled
estimate leans their way (Lin, Sun & Ying 1999, Biometrika 86:59-70), so the
estimate from each patient's first period alone is reported beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import style
from .checks import check_alpha, check_days, check_int, check_min_n, check_origin
from .clustered_km import clustered_km_variance, first_period_estimates, loglog_interval, recurrence_at_days
from .resolution import DEFAULT_RULE, as_rule, check_study, time_to_resolution
from .results import Result
from .survival import kaplan_meier

__all__ = ["recurrence", "Recurrence", "recurrence_intervals", "recurrence_from_intervals", "clustered_km_variance",
           "DEFAULT_GAP"]

#: days without back pain between a resolution and a new episode for it to count as a recurrence (de Vet et al. 2002)
DEFAULT_GAP = 30
#: fewer periods at risk than this at a reported day gives a note
MIN_AT_RISK = 10
STATUS = ("recurrence", "censored", "continued within the gap", "not resolved")


def _episode_starts(study, origin):
    ep = study.episodes
    if origin == "onset":
        unknown = int((~ep["onset_known"]).sum())
        if unknown:
            raise ValueError(f"origin='onset' dates a new episode by its onset, but {unknown} episode(s) have no "
                             "onset date; use origin='first_contact' (the first visit) instead")
        return pd.to_datetime(ep["onset_date"])
    return pd.to_datetime(ep["first_visit_date"])


def _last_contacts(study) -> pd.Series:
    """Last score or session date per patient."""
    dates = [study.scores[["patient_id", "date"]]]
    if len(study.sessions):
        dates.append(study.sessions[["patient_id", "session_date"]].rename(columns={"session_date": "date"}))
    both = pd.concat(dates)
    return pd.to_datetime(both["date"]).groupby(both["patient_id"]).max()


def recurrence_intervals(study, rule=DEFAULT_RULE, gap: int = DEFAULT_GAP, origin: str = "onset") -> pd.DataFrame:
    """One row per episode: its resolution, the patient's next episode, and the period at risk of recurrence.

    Returns
    -------
    DataFrame sorted by patient and start: ``patient_id``, ``episode_id``,
    ``start_date``, ``resolved``, ``resolution_date``, ``next_episode_id``,
    ``next_start_date``, ``last_contact``, ``status`` (one of
    ``recurrence``, ``censored``, ``continued within the gap``,
    ``not resolved``), ``at_risk`` (the episode starts a period at risk),
    ``time`` (days from the resolution to the recurrence or to the last
    contact; NaN when not at risk), ``recurred``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> set(recurrence_intervals(study, origin="first_contact")["status"]) <= set(STATUS)
    True
    """
    check_study(study)
    rule = as_rule(rule)
    gap = check_int(gap, "gap", low=1)
    origin = check_origin(origin)
    ep = study.episodes
    ttr = time_to_resolution(study, rule, origin="first_contact").table.set_index("episode_id")
    resolved = ttr["resolved"].reindex(ep["episode_id"]).fillna(False).to_numpy(bool)
    res_day = ttr["day"].reindex(ep["episode_id"]).to_numpy(float)
    first = pd.to_datetime(ep["first_visit_date"]).to_numpy("datetime64[ns]")
    res_date = np.where(resolved, first + (np.nan_to_num(res_day) * 86400e9).astype("timedelta64[ns]"),
                        np.datetime64("NaT"))
    t = pd.DataFrame({"patient_id": ep["patient_id"].to_numpy(), "episode_id": ep["episode_id"].to_numpy(),
                      "start_date": _episode_starts(study, origin).to_numpy("datetime64[ns]"),
                      "resolved": resolved, "resolution_date": pd.to_datetime(res_date)})
    t = t.sort_values(["patient_id", "start_date", "episode_id"], kind="stable").reset_index(drop=True)
    same = t["patient_id"].shift(-1) == t["patient_id"]
    t["next_episode_id"] = t["episode_id"].shift(-1).where(same)
    t["next_start_date"] = t["start_date"].shift(-1).where(same)
    t["last_contact"] = t["patient_id"].map(_last_contacts(study)).to_numpy("datetime64[ns]")
    until_next = (t["next_start_date"] - t["resolution_date"]).dt.days
    continued = t["resolved"] & same & (until_next < gap)
    recurred = t["resolved"] & same & (until_next >= gap)
    censored = t["resolved"] & ~same
    t["status"] = np.select([recurred, censored, continued], list(STATUS[:3]), STATUS[3])
    t["at_risk"] = recurred | censored
    follow = (t["last_contact"] - t["resolution_date"]).dt.days
    t["time"] = np.where(recurred, until_next, np.where(censored, follow, np.nan)).astype(float)
    t["recurred"] = recurred.to_numpy(bool)
    return t


class Recurrence(Result):
    """Result of :func:`recurrence`.

    Attributes
    ----------
    table : DataFrame
        One row per day: ``day`` (days since resolution),
        ``cumulative_recurrence`` (1 - Kaplan-Meier), ``ci_low``, ``ci_high``
        (log-log, patient-clustered SE), ``se`` (patient-clustered SE of the
        cumulative recurrence), ``se_greenwood``, ``ci_low_greenwood``,
        ``ci_high_greenwood`` (as if periods were independent),
        ``n_at_risk``, ``n_events``, and ``first_period_recurrence``,
        ``first_ci_low``, ``first_ci_high`` (the estimate from each patient's
        first period at risk only, Greenwood log-log interval: a check of
        the pooling assumption).
    curve : DataFrame
        The Kaplan-Meier table (:func:`~backpain_outcomes.survival.kaplan_meier`)
        with ``cumulative_recurrence``, ``se_log_robust``, ``ci_low`` and
        ``ci_high`` (robust) at every recurrence time.
    intervals : DataFrame
        :func:`recurrence_intervals`: every episode, its status and period at risk.
    rule : Resolution
    gap : int
    origin : str
    alpha : float
    n_patients, n_periods, n_recurrences, max_periods_per_patient : int
    notes : list of str
    """

    def __init__(self, table, curve, intervals, rule, gap, origin, alpha, notes):
        self.table, self.curve, self.intervals = table.reset_index(drop=True), curve, intervals
        self.rule, self.gap, self.origin, self.alpha = rule, gap, origin, alpha
        risk = intervals[intervals["at_risk"]]
        self.n_patients = int(risk["patient_id"].nunique())
        self.n_periods, self.n_recurrences = int(len(risk)), int(risk["recurred"].sum())
        self.max_periods_per_patient = int(risk["patient_id"].value_counts().max()) if len(risk) else 0
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        lines = [f"{self.n_periods} periods at risk after a resolution ({self.rule.code}) in {self.n_patients} "
                 f"patients, {self.n_recurrences} recurrences (a new episode at least {self.gap} days after the "
                 f"resolution, dated by its {self.origin.replace('_', ' ')})", *self.notes]
        show = self.table[["day", "cumulative_recurrence", "ci_low", "ci_high", "se", "se_greenwood", "n_at_risk",
                           "n_events", "first_period_recurrence"]]
        counts = self.intervals["status"].value_counts().rename_axis("status").reset_index()
        return "Recurrence after resolution", lines, {"Cumulative recurrence": show, "Episodes by status": counts}

    def plot(self, ax=None):
        """Cumulative recurrence against days since resolution, with the patient-clustered CI band."""
        ax = style.new_axes(ax, figsize=(7, 4.5))
        c = self.curve
        x = np.r_[0.0, c["time"].to_numpy(float)]
        ax.step(x, np.r_[0.0, c["cumulative_recurrence"].to_numpy(float)], where="post", color="black",
                label="cumulative recurrence")
        ax.fill_between(x, np.r_[0.0, c["ci_low"].to_numpy(float)], np.r_[0.0, c["ci_high"].to_numpy(float)],
                        step="post", alpha=style.CI_ALPHA, color="black",
                        label=f"{style.ci_text(self.alpha)} (patient-clustered)")
        ax.axvline(self.gap, color="grey", ls=":", label=f"gap ({self.gap} days)")
        for _, r in self.table.iterrows():  # each reported day: the horizon and its estimate with the CI
            ax.axvline(r["day"], color="grey", ls="--", lw=1)
            if np.isfinite(r["cumulative_recurrence"]):
                ax.errorbar([r["day"]], [r["cumulative_recurrence"]], fmt="o", color="black", capsize=4,
                            yerr=[[r["cumulative_recurrence"] - r["ci_low"]], [r["ci_high"] - r["cumulative_recurrence"]]])
                ax.annotate(f" day {r['day']:g}: {r['cumulative_recurrence']:.0%}", (r["day"], r["ci_high"]),
                            fontsize=style.TEXT_SIZE, va="bottom")
        ax.set_xlabel("Days since resolution", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Cumulative recurrence", fontsize=style.LABEL_SIZE)
        ax.set_ylim(0, 1)
        style.legend(ax, loc="upper left")
        return ax


def _notes(intervals, table, gap, origin, min_n):
    risk = intervals[intervals["at_risk"]]
    per = risk["patient_id"].value_counts()
    notes = [f"a recurrence is a new episode starting at least {gap} days after the resolution of the previous one "
             f"(dated by its {origin.replace('_', ' ')}); a next episode starting earlier is the same episode "
             "continuing (de Vet et al. 2002)"]
    cont = int((intervals["status"] == STATUS[2]).sum())
    if cont:
        notes.append(f"{cont} resolution(s) were followed by a new episode within {gap} days and start no period at "
                     "risk (the episode continued)")
    many = int((per > 1).sum())
    if many:
        notes.append(f"{many} patient(s) contribute more than one period at risk (up to {int(per.max())}): the "
                     "confidence intervals use patient-clustered (robust) standard errors")
        notes.append("pooling a patient's periods assumes they share one distribution of time to recurrence; when "
                     "some patients recur faster than others, later periods come mostly from them and the pooled "
                     "estimate leans their way (Lin, Sun & Ying 1999); first_period_recurrence uses each patient's "
                     "first period only")
    none_after = int(((risk["time"] <= 7) & ~risk["recurred"]).sum())
    if none_after:
        notes.append(f"{none_after} of {len(risk)} periods at risk have no contact more than 7 days after the "
                     "resolution: a recurrence is only seen when the patient comes back, so censoring at the last "
                     "contact assumes those not seen again were followed no further")
    for _, r in table.iterrows():
        if np.isnan(r["cumulative_recurrence"]):
            notes.append(f"day {r['day']:g} is after the last follow-up: the cumulative recurrence is not estimable")
        elif r["n_at_risk"] < min_n:
            notes.append(f"only {int(r['n_at_risk'])} period(s) still at risk at day {r['day']:g}: the estimate "
                         "there is imprecise")
    return notes


def recurrence(study, *, rule=DEFAULT_RULE, gap: int = DEFAULT_GAP, day=365, origin: str = "onset",
               alpha: float = 0.05, min_n: int = MIN_AT_RISK) -> Recurrence:
    """Cumulative recurrence after resolution (Kaplan-Meier from the resolution date, patient-clustered CI).

    Parameters
    ----------
    study : Study
    rule : Resolution or str
        Definition of resolved (:func:`~backpain_outcomes.as_rule`).
    gap : int
        Days from a resolution before a new episode counts as a recurrence
        (default 30, the month without pain of de Vet et al. 2002); an
        earlier new episode is the same episode continuing.
    day : float or list of float
        Days since resolution at which to report the cumulative recurrence
        (365: within 12 months).
    origin : {"onset", "first_contact"}
        How the start of a new episode is dated: its onset date, or its first
        visit.
    alpha : float
        1 - confidence level.
    min_n : int
        A reported day with fewer periods still at risk gets a note that the
        estimate there is imprecise (default 10).

    Returns
    -------
    Recurrence

    Examples
    --------
    >>> from backpain_outcomes.simulate_recurrence import simulate_recurrence
    >>> study, truth = simulate_recurrence(150, seed=1, recurrence_12m=0.3)
    >>> res = recurrence(study, day=365)
    >>> bool(res.table["ci_low"].iat[0] < res.table["ci_high"].iat[0])
    True
    """
    check_study(study)
    rule = as_rule(rule)
    days, alpha, min_n = check_days(day), check_alpha(alpha), check_min_n(min_n)
    return recurrence_from_intervals(recurrence_intervals(study, rule, gap, origin), rule, int(gap), origin, days,
                                     alpha, min_n)


def recurrence_from_intervals(intervals: pd.DataFrame, rule, gap: int, origin: str, day=365,
                              alpha: float = 0.05, min_n: int = MIN_AT_RISK) -> Recurrence:
    """The estimate of :func:`recurrence` from a table of :func:`recurrence_intervals`.

    The intervals of a patient depend only on that patient's episodes, so the
    rows of any set of patients give the estimate for those patients (used by
    ``benchmarks/validate_recurrence.py`` to analyse blocks of patients of one
    simulated study).
    """
    rule, days, alpha = as_rule(rule), np.asarray(check_days(day), float), check_alpha(alpha)
    gap, origin, min_n = check_int(gap, "gap", low=1), check_origin(origin), check_min_n(min_n)
    missing = {"patient_id", "at_risk", "time", "recurred", "status"} - set(getattr(intervals, "columns", []))
    if not isinstance(intervals, pd.DataFrame) or missing:
        raise ValueError("intervals must be the table of recurrence_intervals(study, ...)"
                         + (f"; missing columns {sorted(missing)}" if missing else ""))
    risk = intervals[intervals["at_risk"]]
    if risk.empty:
        raise ValueError(f"no episode in this study resolved ({rule.code}) with a period of follow-up after it: "
                         "recurrence cannot be estimated")
    time, event = risk["time"].to_numpy(float), risk["recurred"].to_numpy(bool)
    cluster = risk["patient_id"].to_numpy()
    km = kaplan_meier(time, event, alpha=alpha)
    var_r = clustered_km_variance(time, event, cluster, km["time"].to_numpy(float))
    lo, hi = loglog_interval(km["survival"].to_numpy(float), var_r, alpha)
    curve = km.assign(cumulative_recurrence=1 - km["survival"], se_log_robust=np.sqrt(var_r), ci_low=1 - hi,
                      ci_high=1 - lo)
    table = recurrence_at_days(km, days, time, event, cluster, alpha)
    table = pd.concat([table, first_period_estimates(risk, days, alpha)], axis=1)
    return Recurrence(table, curve, intervals, rule, gap, origin, alpha, _notes(intervals, table, gap, origin, min_n))
