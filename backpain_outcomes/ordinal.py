"""Global ratings of change by group: the distribution, the share improved and a proportional odds model.

The global rating of change (``grc``, see :mod:`backpain_outcomes.vocabulary`)
is an ordered category, 1 = the best ("very much better") and higher is
worse. Its analysis therefore keeps the categories as they are:

* **distribution**: the episodes of each group in each category, and the
  share *improved* (a rating of 1 or 2, the two best categories; Kamper,
  Maher & Mackay 2009, *J Man Manip Ther* 17:163-170) with its Wilson
  interval;
* **proportional odds model** (cumulative logit; McCullagh 1980, *JRSS B*
  42:109-142), fitted by statsmodels' ``OrderedModel``: one odds ratio per
  group against the reference, the odds of a *better* rating at every cut of
  the scale (above 1: better ratings than the reference), adjusted for
  ``adjust`` covariates;
* **per-cut logistic fits** (``cuts``): the same comparison as a binary
  logistic regression at each cut of the scale, an informal check of the
  proportional odds assumption (similar estimates at every cut support it).

Each episode contributes one rating: its last, or the one nearest ``day``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel

from . import style
from .checks import check_alpha, check_by, check_choice, check_day, check_min_n, check_origin, check_positive
from .ordinal_data import (
    GRC,
    attach_columns,
    complete_ratings,
    episode_ratings,
    group_levels,
    group_name,
    model_levels,
    rating_distribution,
    reference_level,
)
from .results import Result
from .vocabulary import GRC_LABELS, RATINGS_OF_CHANGE

__all__ = ["fit_grc_model", "GRCModel", "grc_scale", "COLUMNS"]

#: Columns of :attr:`GRCModel.table`.
COLUMNS = ["term", "group", "reference", "estimate", "se", "z", "p_value", "ci_low", "ci_high", "odds_ratio",
           "or_ci_low", "or_ci_high", "n"]


def grc_scale(scale) -> tuple[str, ...]:
    """Category labels of a rating scale, the best first: ``7`` and ``5`` have standard labels
    (:data:`~backpain_outcomes.vocabulary.GRC_LABELS`), another number of points is labelled ``"1"`` ...,
    a sequence of labels is its own scale.

    Examples
    --------
    >>> grc_scale(5)
    ('much better', 'a little better', 'no change', 'a little worse', 'much worse')
    >>> grc_scale(3)
    ('1', '2', '3')
    """
    high = int(RATINGS_OF_CHANGE[GRC][1])
    if isinstance(scale, int | np.integer) and not isinstance(scale, bool):
        if not 2 <= scale <= high:
            raise ValueError(f"scale must have 2 to {high} points, got {scale!r}")
        return GRC_LABELS.get(int(scale), tuple(str(i) for i in range(1, int(scale) + 1)))
    if isinstance(scale, Sequence) and not isinstance(scale, str) and all(isinstance(x, str) for x in scale):
        if not 2 <= len(scale) <= high:
            raise ValueError(f"scale must have 2 to {high} labels, got {len(scale)}")
        return tuple(scale)
    raise TypeError(f"scale must be a number of points or a list of category labels (the best first), got {scale!r}")


class GRCModel(Result):
    """Result of :func:`fit_grc_model`.

    Attributes
    ----------
    table : DataFrame
        One row per model term (:data:`COLUMNS`): ``term`` (``by[level]`` or
        an ``adjust`` covariate), ``group`` and ``reference`` (the levels
        compared; empty for covariates), ``estimate`` (log odds ratio of a
        better rating), ``se``, ``z``, ``p_value``, ``ci_low``, ``ci_high``,
        ``odds_ratio``, ``or_ci_low``, ``or_ci_high``, ``n`` (rated episodes
        of the group). NaN where not estimable.
    distribution : DataFrame
        One row per group: ``group``, ``label``, ``n``, the count in each
        category of the scale (columns named by the labels, the best first),
        ``improved`` (ratings 1-2), ``improved_share``, ``improved_ci_low``,
        ``improved_ci_high`` (Wilson).
    thresholds : DataFrame
        Cut-points of the latent scale: ``cut`` ("a|b": between categories
        a and b, the worse first), ``threshold``.
    cuts : DataFrame
        Per-cut binary logistic fits: ``term``, ``cut``, ``estimate``, ``se``.
    by, reference, link : str
    scale : tuple of str
        Category labels, the best (rating 1) first.
    n : int
        Episodes in the model.
    converged : bool
    llf : float
    model : statsmodels results or None
    notes : list of str
    """

    def __init__(self, table, distribution, thresholds, cuts, by, reference, scale, link, n, converged, llf, model,
                 notes):
        self.table, self.distribution, self.thresholds, self.cuts = table, distribution, thresholds, cuts
        self.by, self.reference, self.scale, self.link = by, reference, scale, link
        self.n, self.converged, self.llf, self.model, self.notes = n, converged, llf, model, notes
        self._freeze()

    def _parts(self):
        lines = [f"{self.n} rated episodes by {self.by}; reference {group_name(self.by, self.reference)}; "
                 f"{self.link} link; converged: {self.converged}", *self.notes]
        show = self.table.assign(term=self.table["term"].map(str))[
            ["term", "odds_ratio", "or_ci_low", "or_ci_high", "p_value", "n"]]
        return ("Global rating of change: proportional odds model", lines,
                {"Odds ratios of a better rating": show, "Ratings by group": self.distribution.drop(columns="group")})

    def plot(self, ax=None):
        """Share of each category per group (stacked bars, the best category on the left); returns the Axes.

        Colours run from blue (better) to red (worse) on ColorBrewer's RdBu scale, readable with
        the common colour-vision deficiencies.
        """
        import matplotlib.pyplot as plt

        ax = style.new_axes(ax, figsize=(8.5, 0.6 * len(self.distribution) + 1.7))
        counts = self.distribution[list(self.scale)].to_numpy(float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        colours = plt.get_cmap("RdBu_r")(np.linspace(0.05, 0.95, len(self.scale)))
        left = np.zeros(len(shares))
        totals = counts.sum(axis=1).astype(int)
        names = [f"{g} (n = {n})" for g, n in zip(self.distribution["label"], totals)]
        for j, name in enumerate(self.scale):
            ax.barh(names, shares[:, j], left=left, color=colours[j], edgecolor="white", lw=0.5,
                    label=str(name).replace("_", " "))
            left += shares[:, j]
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of rated episodes", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Group", fontsize=style.LABEL_SIZE)
        ax.tick_params(labelsize=style.TICK_SIZE)
        style.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="Global rating of change",
                     title_fontsize=style.LABEL_SIZE)
        return ax


def _design(frame: pd.DataFrame, by: str, levels: list, reference, adjust: list) -> pd.DataFrame:
    """Group indicators (against the reference) and the covariates (numbers as they are, categories as
    indicators against their first level)."""
    x = pd.DataFrame(index=frame.index)
    for lv in levels:
        if lv != reference:
            x[f"{by}[{lv}]"] = (frame[by] == lv).astype(float)
    for col in adjust:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            x[col] = s.astype(float)
        else:
            for lv in group_levels(s, col)[1:]:
                x[f"{col}[{lv}]"] = (s == lv).astype(float)
    return x


def _restate(caught, notes: list) -> None:
    for w in caught:
        text = str(w.message).strip().splitlines()[0]
        notes.append(f"statsmodels warned: {text}")


def _fit(y: pd.Series, x: pd.DataFrame, link: str, notes: list):
    """The proportional odds model; (results, converged)."""
    model = OrderedModel(y, x, distr=link)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(method="bfgs", disp=False, maxiter=2000)
    _restate(caught, notes)
    k = x.shape[1]
    se = np.asarray(res.bse[:k], float)
    converged = bool(res.mle_retvals.get("converged", False)) and bool(np.isfinite(se).all())
    if not converged:
        notes.append("The proportional odds model did not converge (or its standard errors are not finite): "
                     "the estimates are not reported.")
    return res, converged


def _cuts(y: pd.Series, x: pd.DataFrame, names: dict, notes: list) -> pd.DataFrame:
    """Binary logistic fits at each cut of the scale (rating r or better against worse)."""
    rows = []
    cats = list(y.cat.categories)
    for c in cats[1:]:
        better = (y.cat.codes >= cats.index(c)).astype(float)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = sm.Logit(better, sm.add_constant(x, has_constant="add")).fit(disp=False, maxiter=200)
                est, se = res.params.drop("const"), res.bse.drop("const")
                ok = bool(res.mle_retvals.get("converged", False)) and bool(np.isfinite(se).all())
            except (np.linalg.LinAlgError, ValueError):  # perfect separation, singular design
                est = se = pd.Series(np.nan, index=x.columns)
                ok = False
        if caught or not ok:
            notes.append(f"The logistic fit at the cut '{names[c]}' is unreliable (separation or no convergence); "
                         "its estimates are NaN.")
            est = se = pd.Series(np.nan, index=x.columns)
        rows += [{"term": t, "cut": names[c], "estimate": float(est[t]), "se": float(se[t])} for t in x.columns]
    return pd.DataFrame(rows, columns=["term", "cut", "estimate", "se"])


def _table(res, converged: bool, x: pd.DataFrame, by: str, reference, counts: dict, alpha: float) -> pd.DataFrame:
    k = x.shape[1]
    est = np.asarray(res.params[:k], float) if converged else np.full(k, np.nan)
    se = np.asarray(res.bse[:k], float) if converged else np.full(k, np.nan)
    z = est / se
    q = stats.norm.ppf(1 - alpha / 2)
    prefix = f"{by}["
    group = [t[len(prefix):-1] if t.startswith(prefix) else "" for t in x.columns]
    out = pd.DataFrame({"term": list(x.columns), "group": group,
                        "reference": [str(reference) if g else "" for g in group], "estimate": est, "se": se, "z": z,
                        "p_value": 2 * stats.norm.sf(np.abs(z)), "ci_low": est - q * se, "ci_high": est + q * se})
    out["odds_ratio"], out["or_ci_low"], out["or_ci_high"] = np.exp(est), np.exp(out["ci_low"]), np.exp(out["ci_high"])
    out["n"] = [counts.get(g, np.nan) if g else np.nan for g in group]
    return out[COLUMNS]


def _thresholds(res, converged: bool, names: dict, y: pd.Series) -> pd.DataFrame:
    cuts = [names[c] for c in list(y.cat.categories)[1:]]
    values = res.model.transform_threshold_params(res.params)[1:-1] if converged else np.full(len(cuts), np.nan)
    return pd.DataFrame({"cut": cuts, "threshold": np.asarray(values, float)})


# ------------------------------------------------------------------------------------------ analysis
def _check_arguments(study, by, adjust, day, origin, window, scale, alpha, min_n, link):
    labels = grc_scale(scale)
    check_alpha(alpha)
    check_min_n(min_n)
    check_choice(link, "link", ("logit", "probit"))
    check_origin(origin)
    if day is not None:
        check_day(day)
    check_positive(window, "window")
    available = list(study.episodes.columns) + [c for c in study.patients.columns if c not in study.episodes]
    groups = check_by(by, available)
    if len(groups) != 1:
        raise ValueError(f"by must name one column, got {by!r}; add other columns with adjust=")
    covariates = check_by(list(adjust) if adjust else None, available, "adjust")
    if groups[0] in covariates:
        raise ValueError(f"adjust: {groups[0]!r} is already the grouping column (by)")
    return labels, groups[0], covariates


def _proportional_odds(frame, by, kept, ref, adjust, scale, link, alpha, notes):
    """The model of the groups kept: (table, thresholds, per-cut fits, episodes, converged, statsmodels results)."""
    frame = frame[frame[by].isin(kept)]
    rating = frame["rating"].astype(int)
    y = pd.Series(pd.Categorical(len(scale) + 1 - rating, ordered=True), index=frame.index)  # better last
    if len(y.cat.categories) < 2:
        raise ValueError("every modelled rating is in the same category: there is nothing to model")
    names = {c: f"rating {len(scale) + 1 - c} ({scale[len(scale) - c]}) or better" for c in y.cat.categories}
    x = _design(frame, by, kept, ref, adjust)
    res, converged = _fit(y, x, link, notes)
    counts = frame[by].value_counts()
    table = _table(res, converged, x, by, ref, {str(k): int(v) for k, v in counts.items()}, alpha)
    cuts = _cuts(y, x, names, notes)
    return table, _thresholds(res, converged, names, y), cuts, len(frame), converged, res


def fit_grc_model(study, by="modality", reference="untreated", adjust=(), day=None, origin="onset", window=14,
                  scale=7, alpha=0.05, min_n=5, link="logit") -> GRCModel:
    """Global ratings of change by group: distribution, share improved and a proportional odds model.

    Parameters
    ----------
    study : Study
        With ratings of the instrument ``grc`` (1 = very much better).
    by : str
        The grouping column, of ``study.episodes`` or else of
        ``study.patients`` (default ``modality``; episodes of unknown
        treatment are left out).
    reference : str
        The group compared with (default ``untreated``; for another
        grouping without that level, its first level, as the notes say).
    adjust : sequence of str
        Covariates (columns of the episodes or patients): numbers enter as
        they are, other values as indicators against their first level.
    day : float, optional
        Use each episode's rating nearest this day (since ``origin``, within
        ``window`` days); by default its last rating.
    origin : {"onset", "first_contact"}
        Day 0 when ``day`` is given.
    window : float
        Days around ``day`` within which a rating counts.
    scale : int or sequence of str
        Points of the rating scale (default 7) or its category labels, the
        best (rating 1) first.
    alpha : float
        Error rate of the intervals.
    min_n : int
        Groups with fewer rated episodes are shown but not modelled.
    link : {"logit", "probit"}
        ``logit``: proportional odds; ``probit``: ordered probit (estimates
        are then not log odds ratios).

    Returns
    -------
    GRCModel

    Raises
    ------
    ValueError
        No ratings; a rating beyond the scale; a reference that is not a
        level, has fewer than ``min_n`` rated episodes or all its ratings in
        one extreme category; fewer than two groups to compare.

    Examples
    --------
    >>> from backpain_outcomes.datasets import ANDERSON_SCALE, load_anderson1984
    >>> res = fit_grc_model(load_anderson1984(), by="x1", reference=1, adjust=["x2", "x3"], scale=ANDERSON_SCALE)
    >>> round(float(res.table.loc[0, "estimate"]), 3), res.converged
    (-1.515, True)
    """
    scale, by, adjust = _check_arguments(study, by, adjust, day, origin, window, scale, alpha, min_n, link)
    notes: list[str] = []
    frame = episode_ratings(study, day, origin, window, notes)
    top = int(frame["rating"].max())
    if top > len(scale):
        raise ValueError(f"scale: ratings up to {top} were recorded but the scale has {len(scale)} points; pass "
                         f"scale={top} or its {top} labels")
    frame = complete_ratings(attach_columns(frame, study, [by, *adjust]), by, adjust, notes)
    levels = group_levels(frame[by], by)
    ref = reference_level(reference, levels, by, notes)
    distribution = rating_distribution(frame, by, levels, scale, alpha)
    kept = model_levels(frame, by, levels, ref, min_n, notes)
    if len(kept) < 2:
        raise ValueError(f"fewer than two groups of {by} can be modelled (groups: {', '.join(map(str, levels))})")
    table, thresholds, cuts, n, converged, res = _proportional_odds(frame, by, kept, ref, adjust, scale, link, alpha,
                                                                    notes)
    notes.append(f"Proportional odds ({link}) model: an odds ratio above 1 means better ratings than "
                 f"{group_name(by, ref)}, the same at every cut of the scale (the assumption of the model; the per-cut "
                 "logistic fits in .cuts show how far it holds).")
    if by == "modality":
        notes.append("Observational data: the odds ratios are adjusted associations, not causal effects.")
    return GRCModel(table, distribution, thresholds, cuts, by, ref, scale, link, n, converged,
                    float(res.llf) if converged else np.nan, res if converged else None, notes)
