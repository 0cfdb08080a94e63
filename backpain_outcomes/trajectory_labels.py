"""Plain labels of trajectory classes from the shape of their mean curves.

A class of :func:`~backpain_outcomes.trajectories.fit_trajectories` is named
after its own mean curve over the days where its episodes have data
("Rapid recovery", "Slow recovery", "Persistent high", "Fluctuating", "Low
pain", "Partial recovery", "Persistent moderate", "Persistent mild"), with
thresholds in fractions of the score range so they hold for every instrument;
labels repeated within a fit are made distinct.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_label", "distinct_labels", "RAPID_DAYS"]

#: A recovery class covering half of its drop within this many days of its start is "rapid".
RAPID_DAYS = 42


def _recovery_label(curve, days, start, end):
    """"Rapid recovery" when the curve covers half of its drop within six weeks of its start, else "Slow"."""
    half = start - 0.5 * (start - end)
    reached = np.flatnonzero(curve <= half)
    t_half = days[reached[0]] - days[0] if len(reached) else np.inf
    return "Rapid recovery" if t_half <= RAPID_DAYS else "Slow recovery"


def class_label(curve, days, lo, hi, sigma, min_sigma, n_classes) -> str:
    """Plain label of a class from its mean curve over its own data (fractions of the score range).

    * drops by at least 20% of the range and ends at or below 25%: *Rapid
      recovery* (half of the drop within 6 weeks of the curve's start) or
      *Slow recovery*;
    * ends at or above 55%: *Persistent high*;
    * residual SD above 1.4 times the smallest class SD and above 12% of the
      range: *Fluctuating*;
    * starts at or below 30% and ends at or below 25%: *Low pain*;
    * drops by at least 20% of the range: *Partial recovery*;
    * else *Persistent moderate* (ends at or above 35%) or *Persistent mild*.

    Examples
    --------
    >>> days = np.linspace(0, 365, 60)
    >>> class_label(2 + 6 * np.exp(-days / 10), days, 0, 10, 1.0, 1.0, 3)
    'Rapid recovery'
    >>> class_label(np.full(60, 7.5), days, 0, 10, 1.0, 1.0, 3)
    'Persistent high'
    """
    r = max(hi - lo, 1e-12)
    start, end = (curve[0] - lo) / r, (curve[-1] - lo) / r
    if start - end >= 0.2 and end <= 0.25:
        return _recovery_label(curve, days, curve[0], curve[-1])
    if end >= 0.55:
        return "Persistent high"
    if n_classes > 1 and sigma > 1.4 * min_sigma and sigma > 0.12 * r:
        return "Fluctuating"
    if start <= 0.3 and end <= 0.25:
        return "Low pain"
    if start - end >= 0.2:
        return "Partial recovery"
    return "Persistent moderate" if end >= 0.35 else "Persistent mild"


def distinct_labels(labels, starts) -> list[str]:
    """Labels made distinct: a repeated label gets the class curve's starting score, then its class number.

    Examples
    --------
    >>> distinct_labels(["Slow recovery", "Slow recovery", "Low pain"], [7.0, 5.5, 2.0])
    ['Slow recovery (from 7.0)', 'Slow recovery (from 5.5)', 'Low pain']
    """
    out = list(labels)
    for name in set(labels):
        idx = [i for i, x in enumerate(labels) if x == name]
        if len(idx) > 1:
            for i in idx:
                out[i] = f"{name} (from {starts[i]:.1f})"
    if len(set(out)) < len(out):
        out = [f"{x} (class {i + 1})" for i, x in enumerate(out)]
    return out
