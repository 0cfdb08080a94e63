"""The Cox proportional-hazards model of time to resolution on a grouping factor (:func:`cox_by_group`), adjusted
for the baseline score and chronicity, with delayed entry (an episode is at risk from its first measurement,
``entry < t``, as R's ``coxph``), fitted by partial likelihood with statsmodels ``PHReg`` (Efron ties) and
checked against R ``coxph``. Levels whose hazard ratio has no finite estimate are reported as not estimable."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg

from .checks import check_alpha, check_by, check_choice, check_modality
from .rules import as_rule
from .vocabulary import UNKNOWN, label

__all__ = ["cox_by_group", "CoxFit", "ENTRY_EPS", "MAX_LOG_SE", "ADJUST"]

#: PHReg counts a subject at risk at t when entry <= t; R's coxph (and
#: :func:`~backpain_outcomes.survival.kaplan_meier`) use entry < t. Days are whole numbers, so this shift of the
#: entries reproduces R exactly.
ENTRY_EPS = 1e-6
#: A log hazard ratio with a larger standard error is reported as not estimable (monotone likelihood).
MAX_LOG_SE = 10.0
#: Covariates :func:`cox_by_group` can adjust for.
ADJUST = ("baseline", "chronicity")


@dataclass(frozen=True)
class CoxFit:
    """A Cox model of time to resolution on one grouping factor (:func:`cox_by_group`).

    Unpacks as ``table, params, cov = cox_by_group(...)``.

    Attributes
    ----------
    table : DataFrame
        One row per non-reference level: ``level``, ``label``, ``reference``,
        ``hazard_ratio``, ``hr_ci_low``, ``hr_ci_high``, ``p_value``, ``n``,
        ``events``. Empty when the model could not be fitted (``notes`` says why).
    params : Series
        Log hazard ratios of the levels against the reference.
    cov : DataFrame
        Their covariance.
    notes : list of str
        Why rows were left out, and every warning of the fit, in plain sentences.
    formula : str
    n, events : int
        Episodes and resolutions in the model.
    """

    table: pd.DataFrame
    params: pd.Series
    cov: pd.DataFrame
    notes: list = field(default_factory=list)
    formula: str = ""
    n: int = 0
    events: int = 0

    def __iter__(self):
        return iter((self.table, self.params, self.cov))

    @property
    def fitted(self) -> bool:
        """Whether the model was fitted (``table`` is not empty)."""
        return len(self.table) > 0


_COX_COLUMNS = ["level", "label", "reference", "hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "n", "events"]


def _empty_fit(notes, formula="", n=0, events=0) -> CoxFit:
    return CoxFit(pd.DataFrame(columns=_COX_COLUMNS), pd.Series(dtype=float), pd.DataFrame(), list(notes),
                  formula, n, events)


def _cox_frame(events, study, rule, by, reference, notes):
    """At-risk episodes with the baseline covariate; unknown treatment status left out (noted)."""
    ev = getattr(events, "table", events)
    if not isinstance(ev, pd.DataFrame):
        raise TypeError(f"events must be the result of time_to_resolution or its table, got {type(events).__name__}")
    missing = {"episode_id", "entry", "day", "resolved", "at_risk"} - set(ev.columns)
    if missing:
        raise ValueError(f"events lacks the column(s) {', '.join(sorted(missing))}; pass time_to_resolution(...)")
    check_by(by, ev.columns)
    if by == "modality":
        reference = check_modality(reference, "reference")
    r = ev[ev["at_risk"].to_numpy(bool)].copy()
    unknown = (r[by].astype(str) == UNKNOWN).to_numpy()
    if unknown.any():
        notes.append(f"{int(unknown.sum())} episode(s) with {by} '{UNKNOWN}' were left out of the Cox model.")
        r = r[~unknown]
    if "baseline" not in r:
        base = study.episodes.set_index("episode_id")[f"baseline_{rule.instrument}"]
        r["baseline"] = r["episode_id"].map(base).to_numpy(float)
    r[by] = r[by].astype(str)
    return r, reference


def cox_by_group(events, study, rule, by: str = "modality", reference: str = "untreated",
                 adjust=ADJUST, alpha: float = 0.05) -> CoxFit:
    """Cox model of time to resolution on a grouping factor, adjusted, with delayed entry.

    .. math:: h_i(t) = h_0(t) \\exp(\\beta_{g(i)} + \\gamma^\\top x_i)

    fitted by partial likelihood (Efron ties) on the episodes at risk, each
    entering at its first measurement (``entry < t``, as R's ``coxph``).

    Parameters
    ----------
    events : TimeToResolution or DataFrame
        The result of :func:`~backpain_outcomes.resolution.time_to_resolution`
        (or its ``table``), possibly restricted to some episodes.
    study : Study or None
        Source of the baseline scores (not needed when ``events`` has a
        ``baseline`` column, as the table of ``time_to_resolution`` has).
    rule : Resolution or str
        The rule behind ``events`` (its instrument gives the baseline covariate).
    by : str
        Grouping column of ``events`` (``"modality"``, ``"chronicity"``,
        ``"treatment_status"``, ...). Rows whose level is ``unknown`` are left
        out (noted).
    reference : str
        Comparator level (default ``"untreated"``).
    adjust : sequence of {"baseline", "chronicity"}
        Covariates; chronicity is dropped when it has one level or is ``by``.
    alpha : float
        1 - confidence level of the hazard-ratio intervals.

    Returns
    -------
    CoxFit
        Unpacks as ``(table, params, cov)``; ``notes`` holds the reasons for
        an empty fit and the warnings statsmodels raised while fitting.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> from backpain_outcomes.resolution import time_to_resolution
    >>> study = bpo.load_study(bpo.example_path())
    >>> fit = cox_by_group(time_to_resolution(study), study, "nrs<=1 x2")
    >>> fit.table["reference"].unique().tolist()
    ['untreated']
    """
    rule = as_rule(rule)
    alpha = check_alpha(alpha)
    adjust = (adjust,) if isinstance(adjust, str) else tuple(adjust or ())
    for a in adjust:
        check_choice(a, "adjust", ADJUST)
    notes: list[str] = []
    r, reference = _cox_frame(events, study, rule, by, reference, notes)
    levels = [reference, *sorted(lv for lv in pd.unique(r[by]) if lv != reference)]
    counts = r.groupby(by).size().reindex(levels, fill_value=0)
    n_ev = int(r["resolved"].sum())
    if counts[reference] == 0:
        return _empty_fit(notes + [f"No Cox model: no {label(reference)} episodes at risk (the reference level)."],
                          n=len(r), events=n_ev)
    if len(levels) < 2 or n_ev < 2:
        return _empty_fit(notes + [f"No Cox model: {len(levels)} level(s) of {by} and {n_ev} resolution(s); "
                                   "at least two of each are needed."], n=len(r), events=n_ev)
    r[by] = pd.Categorical(r[by], categories=levels)
    formula = _formula(r, by, reference, adjust)
    return _fit_cox(r, by, reference, formula, counts, alpha, notes)


def _formula(r, by, reference, adjust) -> str:
    """The model formula: the grouping factor against the reference, and the covariates that vary."""
    terms = [f"C({by}, Treatment({reference!r}))"]
    if "baseline" in adjust:
        terms.append("baseline")
    if "chronicity" in adjust and by != "chronicity" and "chronicity" in r and r["chronicity"].nunique() > 1:
        terms.append("C(chronicity)")
    return "day ~ " + " + ".join(terms)


def _fit_cox(r, by, reference, formula, counts, alpha, notes) -> CoxFit:
    n_ev = int(r["resolved"].sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = PHReg.from_formula(formula, r, status=r["resolved"].astype(int).to_numpy(),
                                       entry=r["entry"].to_numpy(float) + ENTRY_EPS, ties="efron")
            fit = model.fit()
            cov_all = fit.cov_params()
        except (np.linalg.LinAlgError, ValueError) as err:
            return _empty_fit(notes + [f"The Cox model could not be fitted ({err})."], formula, len(r), n_ev)
    for w in caught:
        notes.append(f"Cox model ({by}): {w.message}")
    names = model.exog_names
    idx = [i for i, n in enumerate(names) if n.startswith(f"C({by}")]
    level_names = [names[i].split("[T.")[1].rstrip("]") for i in idx]
    params = pd.Series(np.asarray(fit.params)[idx], index=level_names)
    cov = pd.DataFrame(np.asarray(cov_all)[np.ix_(idx, idx)], index=params.index, columns=params.index)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    beta = params.to_numpy()
    ev_counts = r.groupby(by, observed=False)["resolved"].sum()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # degenerate levels are noted below
        table = pd.DataFrame({"level": params.index, "label": [label(x) for x in params.index], "reference": reference,
                              "hazard_ratio": np.exp(beta), "hr_ci_low": np.exp(beta - z * se),
                              "hr_ci_high": np.exp(beta + z * se), "p_value": 2 * stats.norm.sf(np.abs(beta / se)),
                              "n": counts.reindex(params.index).to_numpy(int),
                              "events": ev_counts.reindex(params.index).to_numpy(int)})
    ci = table[["hazard_ratio", "hr_ci_low", "hr_ci_high"]].to_numpy(float)
    bad = (~np.isfinite(beta) | ~np.isfinite(se) | (se > MAX_LOG_SE) | ~np.isfinite(ci).all(axis=1)
           | (ci <= 0).any(axis=1) | (table["events"].to_numpy() == 0))
    for lv in table.loc[bad, "level"]:
        notes.append(f"Hazard ratio of {label(lv)} against {label(reference)} is not estimable "
                     "(no or too few resolutions in one of the groups: the partial likelihood has no finite maximum).")
    table.loc[bad, ["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]] = np.nan
    return CoxFit(table, params, cov, notes, formula, len(r), n_ev)
