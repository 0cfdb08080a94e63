"""The classes of one latent class growth fit described (:class:`~backpain_outcomes.trajectories.TrajectoryResult`):
each episode's modal class and posteriors, each class's mean curve with its interval over the days where its
episodes have data, the class sizes and labels, and the notes on curves cut short or missing their data.
Class 1 is the class whose curve is highest at its start."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .curves import data_window
from .trajectory_labels import class_label, distinct_labels

__all__ = ["describe_classes", "class_misfit"]


def describe_classes(fit, context: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """(classes, curves, sizes, notes) of one fit, with the tables of
    :class:`~backpain_outcomes.trajectories.TrajectoryResult`; ``context`` holds the time ``basis``, the rows
    (``frame``), the ``episodes``, the sufficient statistics (``suff``), the score range (``low``, ``high``),
    ``min_n`` and the ``last_day``."""
    basis, frame, min_n = context["basis"], context["frame"], context["min_n"]
    modal_raw = fit.post.argmax(1)
    windows, curves = [], []
    for c in range(fit.K):
        members = frame[modal_raw[frame["_ep"].to_numpy()] == c]
        windows.append(data_window(members, min_n) if len(members) else (np.nan, np.nan))
        start = windows[-1][0] if np.isfinite(windows[-1][0]) else 0.0
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
    sizes, notes = _class_sizes(fit, context, order, windows, labels, post, modal, modal_raw)
    curve_tab = pd.concat([r.assign(label=labels[j]) for j, r in enumerate(rows) if r is not None],
                          ignore_index=True)
    curve_tab = curve_tab[["class", "label", "day", "mean", "ci_low", "ci_high"]]
    return classes, curve_tab, pd.DataFrame(sizes), notes


def _class_curves(fit, context, order, windows):
    """(curve rows or None, labels, starting values) of the classes in ``order``."""
    basis, suff, lo, hi = context["basis"], context["suff"], context["low"], context["high"]
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
        cov = fit.sigma2[c] * np.linalg.pinv(np.einsum("e,epq->pq", fit.post[:, c], suff.S))
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Bd, cov, Bd), 0))
        labels.append(class_label(np.clip(mean, lo, hi), days, lo, hi, sig[c], sig.min(), fit.K))
        starts.append(float(np.clip(mean[0], lo, hi)))
        rows.append(pd.DataFrame({"class": j + 1, "day": days, "mean": np.clip(mean, lo, hi),
                                  "ci_low": np.clip(mean - 1.96 * se, lo, hi),
                                  "ci_high": np.clip(mean + 1.96 * se, lo, hi)}))
    return rows, labels, starts


def _class_sizes(fit, context, order, windows, labels, post, modal, modal_raw):
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
        misfit = class_misfit(fit, c, modal_raw, windows[c], context)
        if misfit:
            notes.append(f"Class {j + 1} ({labels[j]}): {misfit}")
    return sizes, notes


def class_misfit(fit, c, modal_raw, window, context: dict) -> str:
    """A sentence when the class curve misses its members' mean scores by more than 10% of the range."""
    min_n = context["min_n"]
    f = context["frame"]
    m = f[(modal_raw[f["_ep"].to_numpy()] == c) & f["day"].between(*window)]
    if len(m) < 2 * min_n:
        return ""
    resid = m["score"].to_numpy() - context["basis"](m["day"].to_numpy(float)) @ fit.beta[:, c]
    bins = pd.qcut(m["day"].rank(method="first"), min(10, len(m) // min_n), labels=False)
    by_bin = pd.Series(resid).groupby(bins.to_numpy()).mean()
    worst = by_bin.abs().idxmax()
    if abs(by_bin[worst]) <= 0.1 * (context["high"] - context["low"]):
        return ""
    near = m["day"].to_numpy()[bins.to_numpy() == worst]
    return (f"its curve misses its episodes' mean score by {abs(by_bin[worst]):.2g} points around days "
            f"{near.min():g}-{near.max():g}; the time basis is too rigid for this class (try time='spline' "
            "or more knots).")
