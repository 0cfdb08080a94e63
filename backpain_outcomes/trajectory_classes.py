"""The classes of one latent class growth fit described (:class:`~backpain_outcomes.trajectories.TrajectoryResult`):
each episode's modal class and posteriors, each class's mean curve with its interval over the days where its
episodes have data, the class sizes and labels, and the notes on curves cut short or missing their data.
Class 1 is the class whose curve is highest at its start.

Everything here comes from sums that add up over disjoint sets of episodes (:func:`member_summary`,
:func:`merge_member_summaries`), so a partitioned fit (:mod:`backpain_outcomes.registry_trajectories`)
describes its classes exactly as the in-memory fit without gathering measurements: per class the
``min_n`` smallest first days and largest last days of its episodes (its data window), the number and
sum of its members' scores on each day (the misfit note, :func:`class_misfit`) and the posterior-weighted
sum of the episodes' B'B (the curves' intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .lcga import pinv_psd
from .trajectory_labels import class_label, distinct_labels

__all__ = ["describe_classes", "class_misfit", "member_summary", "merge_member_summaries", "FrameRows",
           "EpisodeColumns", "basis_notes"]


def member_summary(codes, day, score, modal, K: int, min_n: int) -> dict:
    """What the description of the classes needs from the rows of some episodes, in sums that add up over
    disjoint sets of episodes (:func:`merge_member_summaries`).

    ``codes`` numbers the rows' episodes 0, 1, ... (rows sorted by episode), ``modal`` is each episode's
    modal class (0 to K - 1). Per class: ``n`` its episodes; ``first`` the ``min_n`` smallest first days
    and ``last`` the ``min_n`` largest last days of its episodes; ``days`` (class, day, n, score_sum) the
    number and sum of its episodes' scores on each day.
    """
    codes, day = np.asarray(codes), np.asarray(day, float)
    E = len(modal)
    first = np.full(E, np.inf)
    last = np.full(E, -np.inf)
    np.minimum.at(first, codes, day)
    np.maximum.at(last, codes, day)
    cls = np.asarray(modal)[codes]
    days = (pd.DataFrame({"class": cls, "day": day, "score": np.asarray(score, float)})
            .groupby(["class", "day"], sort=True)["score"].agg(n="size", score_sum="sum").reset_index())
    return {"n": np.bincount(modal, minlength=K),
            "first": [np.sort(first[modal == c])[:min_n] for c in range(K)],
            "last": [-np.sort(-last[modal == c])[:min_n] for c in range(K)], "days": days}


def merge_member_summaries(parts: list[dict], K: int, min_n: int) -> dict:
    """One :func:`member_summary` of the episodes of all ``parts``, with each class's data window: ``windows``
    (first, last) per class, the day by which ``min_n`` of its episodes have had their first measurement and
    the last day on which ``min_n`` of them still have one at or after it (as
    :func:`~backpain_outcomes.curves.data_window`; nan with fewer than ``min_n`` episodes or windows that do
    not overlap), and ``days`` per class (day, n, score_sum) summed over the parts."""
    n = np.sum([p["n"] for p in parts], axis=0)
    windows = []
    for c in range(K):
        if n[c] < min_n:
            windows.append((np.nan, np.nan))
            continue
        first = float(np.sort(np.concatenate([p["first"][c] for p in parts]))[min_n - 1])
        last = float(-np.sort(-np.concatenate([p["last"][c] for p in parts]))[min_n - 1])
        windows.append((first, last) if first <= last else (np.nan, np.nan))
    days = pd.concat([p["days"] for p in parts], ignore_index=True)
    days = days.groupby(["class", "day"], sort=True)[["n", "score_sum"]].sum().reset_index()
    by_class = {c: g.drop(columns="class").reset_index(drop=True) for c, g in days.groupby("class")}
    empty = pd.DataFrame({"day": np.array([], float), "n": np.array([], int), "score_sum": np.array([], float)})
    return {"n": n, "windows": windows, "days": [by_class.get(c, empty) for c in range(K)]}


def basis_notes(basis, days) -> list[str]:
    """The note when the distinct measured ``days`` cannot identify every coefficient of the class curves
    on ``basis`` (its design matrix at those days has lower rank than its columns).

    Examples
    --------
    >>> from backpain_outcomes.lcga import TimeBasis
    >>> days = np.array([0.0, 10.0, 50.0, 100.0])
    >>> basis_notes(TimeBasis(days, "spline", n_knots=3), days)[0][:60]
    'the 4 distinct days identify only 4 of the 7 coefficients of'
    >>> basis_notes(TimeBasis(days, "polynomial", degree=3), days)
    []
    """
    B = basis(np.asarray(days, float))
    rank = int(np.linalg.matrix_rank(B)) if len(B) else 0
    if rank >= B.shape[1]:
        return []
    return [f"the {len(B)} distinct days identify only {rank} of the {B.shape[1]} coefficients of each class curve "
            f"({basis.kind} time basis): between the measured days the curves are not set by the data (the "
            "smallest coefficients that fit are used); use fewer knots (n_knots) or a lower degree."]


class FrameRows:
    """The rows of some episodes from an in-memory frame (the spaghetti of
    :meth:`~backpain_outcomes.trajectories.TrajectoryResult.plot`)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def __call__(self, episode_ids) -> pd.DataFrame:
        return self.frame[self.frame["episode_id"].isin(set(episode_ids))]


class EpisodeColumns:
    """A column of the episodes table by episode id (``crosstab``); ``columns`` lists them."""

    def __init__(self, episodes: pd.DataFrame):
        self.episodes, self.columns = episodes, list(episodes.columns)

    def __call__(self, column: str) -> pd.Series:
        return self.episodes.set_index("episode_id")[column]


def describe_classes(fit, context: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """(classes, curves, sizes, notes) of one fit, with the tables of
    :class:`~backpain_outcomes.trajectories.TrajectoryResult`; ``context`` holds the time ``basis``, the
    ``episodes`` (ids in the order of ``fit.post``), the score range (``low``, ``high``), ``min_n`` and the
    ``last_day``; the fit carries ``members`` (:func:`merge_member_summaries`) and ``weighted_S`` (sum over
    episodes of post S_i per class, the curves' covariance)."""
    basis = context["basis"]
    windows = fit.members["windows"]
    curves = []
    for c in range(fit.K):
        start = windows[c][0] if np.isfinite(windows[c][0]) else 0.0
        curves.append((basis(np.array([start])) @ fit.beta[:, c])[0])
    order = np.argsort(-np.array(curves), kind="stable")  # class 1 = highest curve at its start
    post = fit.post[:, order]
    modal = post.argmax(1)
    classes = pd.DataFrame({"episode_id": context["episodes"], "class": modal + 1,
                            "posterior": post[np.arange(len(modal)), modal]})
    for j in range(fit.K):
        classes[f"p_class_{j + 1}"] = post[:, j]
    rows, labels, starts = _class_curves(fit, context, order, windows)
    labels = distinct_labels(labels, starts)
    sizes, notes = _class_sizes(fit, context, order, windows, labels, post, modal)
    drawn = [r.assign(label=labels[j]) for j, r in enumerate(rows) if r is not None]
    columns = ["class", "label", "day", "mean", "ci_low", "ci_high"]
    if drawn:
        curve_tab = pd.concat(drawn, ignore_index=True)[columns]
    else:  # no class has min_n episodes: no curve (the notes say so), an empty table
        curve_tab = pd.DataFrame({"class": np.array([], np.int64), "label": np.array([], object),
                                  **{c: np.array([], float) for c in columns[2:]}})
    return classes, curve_tab, pd.DataFrame(sizes), notes


def _class_curves(fit, context, order, windows):
    """(curve rows or None, labels, starting values) of the classes in ``order``."""
    basis, lo, hi = context["basis"], context["low"], context["high"]
    sig = np.sqrt(fit.sigma2)
    rows, labels, starts = [], [], []
    for j, c in enumerate(order):
        first, last = windows[c]
        if not np.isfinite(first):
            labels.append(f"Class {j + 1} (too few episodes)")
            starts.append(np.nan)
            rows.append(None)
            continue
        days = np.linspace(first, last, 60)
        Bd = basis(days)
        mean = Bd @ fit.beta[:, c]
        cov = fit.sigma2[c] * pinv_psd(fit.weighted_S[c])
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Bd, cov, Bd), 0))
        labels.append(class_label(np.clip(mean, lo, hi), days, lo, hi, sig[c], sig.min(), fit.K))
        starts.append(float(np.clip(mean[0], lo, hi)))
        rows.append(pd.DataFrame({"class": j + 1, "day": days, "mean": np.clip(mean, lo, hi),
                                  "ci_low": np.clip(mean - 1.96 * se, lo, hi),
                                  "ci_high": np.clip(mean + 1.96 * se, lo, hi)}))
    return rows, labels, starts


def _class_sizes(fit, context, order, windows, labels, post, modal):
    """(size rows, notes) of the classes in ``order``."""
    min_n = context["min_n"]
    sig = np.sqrt(fit.sigma2)
    sizes, notes = [], []
    for j, c in enumerate(order):
        members = modal == j
        first, last = windows[c]
        sizes.append({"class": j + 1, "label": labels[j], "share": float(fit.pi[c]), "n": int(members.sum()),
                      "avepp": float(post[members, j].mean()) if members.any() else np.nan,
                      "sigma": float(sig[c]), "first_day": first, "last_day": last})
        if not np.isfinite(first):
            notes.append(f"Class {j + 1}: fewer than {min_n} episodes are assigned to it (min_n), so its "
                         "curve is not drawn.")
        elif last < context["last_day"]:
            notes.append(f"Class {j + 1} ({labels[j]}): fewer than {min_n} of its episodes have data after "
                         f"day {last:g}; its curve stops there.")
        misfit = class_misfit(fit.beta[:, c], fit.members["days"][c], windows[c], context)
        if misfit:
            notes.append(f"Class {j + 1} ({labels[j]}): {misfit}")
    return sizes, notes


def class_misfit(beta_c, days: pd.DataFrame, window, context: dict) -> str:
    """A sentence when the class curve misses its members' mean scores by more than 10% of the range.

    ``days`` holds, for each day, the number ``n`` of the class members' measurements and their sum
    ``score_sum``. The measurements inside the class's data ``window`` are cut into
    ``min(10, count // min_n)`` bins of consecutive days holding about equal numbers of measurements,
    the measurements of one day always in the same bin (a day goes to bin ``floor(bins * m / count)``,
    ``m`` the number of measurements on earlier days); in each bin the mean residual is
    ``(sum of scores - sum over its days of n x curve) / measurements``. With fewer than ``2 min_n``
    measurements there is no sentence.

    Examples
    --------
    >>> from backpain_outcomes.lcga import TimeBasis
    >>> basis = TimeBasis(np.array([0.0, 100.0]), "polynomial", degree=1)
    >>> days = pd.DataFrame({"day": [0.0, 50.0, 100.0], "n": [10, 10, 10], "score_sum": [80.0, 50.0, 80.0]})
    >>> context = {"basis": basis, "min_n": 5, "low": 0, "high": 10}
    >>> print(class_misfit(np.array([7.0, 0.0]), days, (0.0, 100.0), context).split(";")[0])  # bins of 0, 10, 20
    its curve misses its episodes' mean score by 2 points around days 50-50
    """
    min_n = context["min_n"]
    t = days[(days["day"] >= window[0]) & (days["day"] <= window[1])]
    n = t["n"].to_numpy(np.int64)
    count = int(n.sum())
    if count < 2 * min_n:
        return ""
    day = t["day"].to_numpy(float)
    resid = t["score_sum"].to_numpy(float) - n * (context["basis"](day) @ beta_c)
    n_bins = min(10, count // min_n)
    bins = n_bins * (np.cumsum(n) - n) // count
    by_bin = pd.Series(resid).groupby(bins).sum() / pd.Series(n).groupby(bins).sum()
    worst = by_bin.abs().idxmax()
    if abs(by_bin[worst]) <= 0.1 * (context["high"] - context["low"]):
        return ""
    near = day[bins == worst]
    return (f"its curve misses its episodes' mean score by {abs(by_bin[worst]):.2g} points around days "
            f"{near.min():g}-{near.max():g}; the time basis is too rigid for this class (try time='spline' "
            "or more knots).")
