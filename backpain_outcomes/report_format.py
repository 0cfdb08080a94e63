"""Formatting shared by the clinic report's tables and sentences (:mod:`~backpain_outcomes.report_sections`,
:mod:`~backpain_outcomes.report_claims`): shares with their Wilson interval, means with theirs, days and
percentages, and the words printed for a number that is not shown or not measured.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

__all__ = ["NOT_SHOWN", "NOT_MEASURED", "is_finite", "not_estimable", "pct_text", "ci_text", "wilson", "share_text",
           "days_text", "day_text", "mean_ci"]

NOT_SHOWN = "not shown (small numbers)"
#: A statistic of episodes of which none was measured (never "n/a" or "nan").
NOT_MEASURED = "not measured"


def is_finite(*values) -> bool:
    return all(v is not None and np.isfinite(float(v)) for v in values)


def not_estimable(reason: str) -> str:
    return f"not estimable: {reason}"


def pct_text(x) -> str:
    return f"{100 * x:.0f}%" if is_finite(x) else "not estimable"


def ci_text(lo, hi) -> str:
    return f"{100 * lo:.0f}-{100 * hi:.0f}%" if is_finite(lo, hi) else "no interval"


def wilson(k, n):
    return proportion_confint(k, n, 0.05, method="wilson") if n else (np.nan, np.nan)


def share_text(led, k_key, n_key, empty: str = NOT_MEASURED) -> str:
    """``"68% (58-77%), 45 of 66"`` when both counts are published; ``empty`` when ``n`` is 0."""
    if not led.published(k_key, n_key):
        return NOT_SHOWN
    k, n = led.value(k_key), led.value(n_key)
    if n == 0:
        return empty
    lo, hi = wilson(k, n)
    return f"{pct_text(k / n)} ({ci_text(lo, hi)}), {led.text(k_key)} of {led.text(n_key)}"


def days_text(med, lo, hi) -> str:
    if not is_finite(med):
        return "not reached"
    return f"{med:.0f} ({day_text(lo)}-{day_text(hi)})"


def day_text(x) -> str:
    """A bound of a median time: a day, or "not reached" when the curve never crosses one half."""
    return f"{x:.0f}" if is_finite(x) else "not reached"


def mean_ci(values) -> tuple[float, float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else np.nan), np.nan, np.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)
