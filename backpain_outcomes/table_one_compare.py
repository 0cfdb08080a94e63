"""Comparisons of a Table 1's groups: standardised mean differences and p-values.

SMDs follow Yang & Dalton (2012), the definition of R ``tableone``'s ``smd = TRUE``
(see :mod:`backpain_outcomes.table_one`); p-values are ``tableone``'s defaults:
one-way ANOVA (mean (SD) rows), Kruskal-Wallis (median [IQR] rows), Pearson's
chi-square (n (%) rows).

References
----------
Yang D, Dalton JE (2012). A unified approach to measuring the effect size between two groups using
SAS. SAS Global Forum 2012, paper 335-2012.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .weighting import balance_table

__all__ = ["continuous_smd", "categorical_smd", "compare_groups", "group_test"]


def continuous_smd(x, a, b) -> float:
    """|SMD| of a continuous variable between the episodes in masks ``a`` and ``b`` (missing values dropped).

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> round(continuous_smd(x, np.array([1, 1, 0, 0], bool), np.array([0, 0, 1, 1], bool)), 4)
    2.8284
    """
    x = np.asarray(x, float)
    keep = np.isfinite(x) & (a | b)
    if min((keep & a).sum(), (keep & b).sum()) < 1:
        return float("nan")
    z = pd.DataFrame({"x": x[keep]})
    t = balance_table(z, b[keep].astype(int), {1: np.ones(int(keep.sum()))}, ["a", "b"])
    return float(abs(t["smd_before"].iloc[0]))


def categorical_smd(x, a, b) -> float:
    """Yang & Dalton (2012) SMD of a categorical variable between masks ``a`` and ``b`` (missing dropped).

    Examples
    --------
    >>> x = np.array(["f", "f", "m", "f", "m", "m"], dtype=object)
    >>> round(categorical_smd(x, np.arange(6) < 3, np.arange(6) >= 3), 4)  # (2/3 - 1/3) / sqrt(2/9)
    0.7071
    """
    x = pd.Series(np.asarray(x, dtype=object))
    ok = x.notna().to_numpy()
    levels = sorted(set(x[ok & (a | b)]), key=str)
    if len(levels) < 1 or min((ok & a).sum(), (ok & b).sum()) < 1:
        return float("nan")
    p = [np.array([(x[ok & m] == lev).mean() for lev in levels[1:]], float) for m in (a, b)]
    if len(levels) == 1:
        return 0.0
    cov = [np.diag(q) - np.outer(q, q) for q in p]
    s, d = (cov[0] + cov[1]) / 2, p[0] - p[1]
    if np.allclose(s, 0):
        return 0.0 if np.allclose(d, 0) else float("nan")
    return float(np.sqrt(max(d @ np.linalg.pinv(s) @ d, 0.0)))


def compare_groups(name: str, kind: str, x: pd.Series, masks: dict, smd: bool, test: bool) -> dict:
    """SMD (mean and largest of the pairwise ones) and a p-value of variable ``name`` (``x``, one value per
    episode) across the groups (``masks``: group -> boolean Series), each when asked for and when there are
    two groups or more. ``kind`` is the statistic shown: n_pct, mean_sd or median_iqr."""
    groups = {g: m.to_numpy() for g, m in masks.items()}
    out = {"variable": name, "statistic": kind, "smd": np.nan, "smd_max": np.nan, "n_pairs": 0, "p_value": np.nan,
           "test": ""}
    if len(groups) < 2:
        return out
    if smd:
        values = x.to_numpy(dtype=object if kind == "n_pct" else float)
        one = categorical_smd if kind == "n_pct" else continuous_smd
        pairs = [one(values, groups[a], groups[b]) for a, b in combinations(groups, 2)]
        every = all(np.isfinite(pairs))  # a pair without SMD: no summary (as tableone's mean of the pairs)
        out.update(smd=float(np.mean(pairs)) if every else np.nan, smd_max=float(np.max(pairs)) if every else np.nan,
                   n_pairs=int(np.isfinite(pairs).sum()))
    if test:
        out.update(group_test(kind, x, groups))
    return out


def group_test(kind: str, x: pd.Series, groups: dict) -> dict:
    """P-value across ``groups`` (group -> boolean array): Pearson's chi-square (n (%)), one-way ANOVA
    (mean (SD)) or Kruskal-Wallis (median [IQR])."""
    if kind == "n_pct":
        tab = pd.crosstab(x[np.any(list(groups.values()), axis=0)].dropna(),
                          pd.Series(np.select(list(groups.values()), list(groups), ""), index=x.index)[x.notna()])
        tab = tab.loc[:, [g for g in groups if g in tab.columns]]
        if tab.shape[0] < 2 or tab.shape[1] < 2:
            return {"p_value": np.nan, "test": "chi-square (not computable: one level or one group)"}
        chi = stats.chi2_contingency(tab.to_numpy())
        small = (chi.expected_freq < 5).mean()
        return {"p_value": float(chi.pvalue),
                "test": "chi-square" + (f" ({small:.0%} of expected counts < 5)" if small > 0 else "")}
    samples = [x[m].dropna().to_numpy(float) for m in groups.values()]
    samples = [s for s in samples if len(s) >= 2]
    if len(samples) < 2:
        return {"p_value": np.nan, "test": "not computable (fewer than two groups with two values)"}
    if np.ptp(np.concatenate(samples)) == 0:
        return {"p_value": np.nan, "test": "not computable (every value is the same)"}
    if kind == "mean_sd":
        return {"p_value": float(stats.f_oneway(*samples).pvalue), "test": "one-way ANOVA"}
    return {"p_value": float(stats.kruskal(*samples).pvalue), "test": "Kruskal-Wallis"}
