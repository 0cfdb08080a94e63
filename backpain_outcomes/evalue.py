"""E-values: how strong unmeasured confounding would have to be to explain an association away.

VanderWeele & Ding 2017 (Ann Intern Med 167:268-274): for an observed risk
ratio :math:`RR > 1`,

.. math:: E = RR + \\sqrt{RR\\,(RR - 1)}

is the minimum strength of association, on the risk-ratio scale, that an
unmeasured confounder would need with both the treatment and the outcome,
conditional on the measured covariates, to fully explain away the observed
association; for :math:`RR < 1` the formula is applied to :math:`1/RR`. The
E-value of the confidence interval uses the limit closest to 1 (and is 1 when
the interval includes 1). Other measures are first converted to an
approximate risk ratio (VanderWeele & Ding 2017, Table 2):

* odds ratio: :math:`RR \\approx OR` for a rare outcome (< 15%), else
  :math:`RR \\approx \\sqrt{OR}`;
* hazard ratio: :math:`RR \\approx HR` for a rare outcome, else
  :math:`RR \\approx (1 - 0.5^{\\sqrt{HR}}) / (1 - 0.5^{\\sqrt{1/HR}})`;
* standardised mean difference *d*: :math:`RR \\approx e^{0.91 d}`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import style
from .checks import check_bool, check_choice, check_positive
from .results import Result

__all__ = ["e_value", "EValue", "e_value_rr", "ci_e_value", "approximate_rr", "interpret", "KINDS"]

KINDS = ("RR", "OR", "HR", "SMD")


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio (point estimate); NaN for a missing or non-positive ratio.

    Examples
    --------
    >>> round(e_value_rr(3.9), 2)
    7.26
    >>> e_value_rr(1.0)
    1.0
    """
    if rr is None or not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


def approximate_rr(value: float, kind: str = "RR", rare_outcome: bool = False) -> float:
    """A risk ratio from a risk, odds or hazard ratio or a standardised mean difference (module docstring).

    Examples
    --------
    >>> round(approximate_rr(4.0, "OR"), 2)
    2.0
    >>> round(approximate_rr(0.5, "HR"), 4)
    0.6201
    """
    if value is None or not np.isfinite(value):
        return float("nan")
    if kind == "SMD":
        return float(math.exp(0.91 * value))
    if value <= 0:
        return float("nan")
    if kind == "RR" or rare_outcome:
        return float(value)
    if kind == "OR":
        return float(math.sqrt(value))
    return float((1 - 0.5 ** math.sqrt(value)) / (1 - 0.5 ** math.sqrt(1 / value)))


def ci_e_value(rr, lo, hi) -> float:
    """E-value of the interval limit closest to 1; 1 when the interval includes 1."""
    if not (np.isfinite(lo) or np.isfinite(hi)):
        return float("nan")
    if np.isfinite(lo) and np.isfinite(hi) and lo <= 1 <= hi:
        return 1.0
    if np.isfinite(rr) and rr < 1:
        return e_value_rr(hi) if np.isfinite(hi) and hi < 1 else 1.0
    return e_value_rr(lo) if np.isfinite(lo) and lo > 1 else 1.0


class EValue(Result):
    """Result of :func:`e_value`.

    Attributes
    ----------
    table : DataFrame
        One row: ``kind``, ``estimate``, ``ci_low``, ``ci_high``, ``rr``,
        ``rr_ci_low``, ``rr_ci_high`` (the approximate risk ratios),
        ``e_value``, ``e_value_ci``.
    e_value, e_value_ci : float
        E-values of the point estimate and of the confidence limit closest
        to 1 (NaN when no interval was given).
    rr : float
    notes : list of str
    """

    def __init__(self, table, notes):
        self.table = table
        row = table.iloc[0]
        self.e_value, self.e_value_ci, self.rr = float(row["e_value"]), float(row["e_value_ci"]), float(row["rr"])
        self.kind = str(row["kind"])
        self.notes = list(notes)
        self._freeze()

    def _parts(self):
        return f"E-value ({self.kind})", [interpret(self.e_value, self.e_value_ci), *self.notes], {"E-value": self.table}

    def plot(self, ax=None):
        """The pairs (confounder-treatment RR, confounder-outcome RR) that just explain the estimate away."""
        ax = style.new_axes(ax, figsize=(5.5, 4.5))
        rr = self.rr if self.rr >= 1 else 1 / self.rr
        if np.isfinite(rr) and rr > 1:
            top = max(3 * self.e_value, 5)
            x = np.linspace(rr * 1.0001, top, 300)
            y = rr * (1 - x) / (rr - x)  # RR_UD * RR_EU / (RR_UD + RR_EU - 1) = RR
            keep = (y > 0) & (y <= top)
            ax.plot(x[keep], y[keep], color="black", label=f"explains away RR = {rr:.2f}")
            ax.plot([self.e_value], [self.e_value], "o", color="black", label=f"E-value = {self.e_value:.2f}")
            if np.isfinite(self.e_value_ci) and self.e_value_ci > 1:
                rl = _rr_from_e(self.e_value_ci)
                x2 = np.linspace(rl * 1.0001, top, 300)
                y2 = rl * (1 - x2) / (rl - x2)
                k2 = (y2 > 0) & (y2 <= top)
                ax.plot(x2[k2], y2[k2], color="grey", ls="--", label=f"CI limit, E-value = {self.e_value_ci:.2f}")
            ax.set_xlim(1, top)
            ax.set_ylim(1, top)
        ax.set_xlabel("Risk ratio of the confounder with the treatment", fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Risk ratio of the confounder with the outcome", fontsize=style.LABEL_SIZE)
        ax.tick_params(labelsize=style.TICK_SIZE)
        style.legend(ax)
        return ax


def _rr_from_e(e):
    """Inverse of the E-value formula for RR >= 1: RR = E^2 / (2E - 1)."""
    return e * e / (2 * e - 1)


def interpret(e: float, e_ci: float) -> str:
    """One sentence explaining an E-value pair."""
    if not np.isfinite(e):
        return "E-value not estimable (no estimate)."
    text = (f"An unmeasured confounder associated with both treatment and outcome by a risk ratio of {e:.2f} each, "
            "above the measured covariates, could explain the estimate away; weaker confounding could not")
    if np.isfinite(e_ci):
        text += ("; the confidence interval already includes no effect" if e_ci <= 1 else
                 f"; to move the confidence interval to include no effect, a risk ratio of {e_ci:.2f} each suffices")
    return text + "."


def e_value(estimate: float, ci_low: float | None = None, ci_high: float | None = None, kind: str = "RR",
            rare_outcome: bool = False) -> EValue:
    """E-value of an estimate and of its confidence interval (VanderWeele & Ding 2017).

    Parameters
    ----------
    estimate : float
        A risk, odds or hazard ratio (> 0), or a standardised mean difference.
    ci_low, ci_high : float, optional
        Confidence limits on the same scale.
    kind : {"RR", "OR", "HR", "SMD"}
    rare_outcome : bool
        The outcome is rare (below about 15% at the end of follow-up), so an
        odds or hazard ratio approximates the risk ratio directly; otherwise
        the square-root conversions of the module docstring are used.

    Returns
    -------
    EValue

    Examples
    --------
    >>> ev = e_value(3.9, 1.8, 8.7)  # VanderWeele & Ding 2017, the worked example
    >>> round(ev.e_value, 1), round(ev.e_value_ci, 1)
    (7.3, 3.0)
    >>> round(e_value(0.80, 0.71, 0.91, kind="HR").e_value, 2)
    1.61
    """
    kind = check_choice(kind.upper() if isinstance(kind, str) else kind, "kind", KINDS)
    rare_outcome = check_bool(rare_outcome, "rare_outcome")
    vals = []
    for name, v in (("estimate", estimate), ("ci_low", ci_low), ("ci_high", ci_high)):
        if v is None:
            vals.append(float("nan"))
        elif kind == "SMD":
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number for kind='SMD', got {v!r}")
            vals.append(float(v))
        else:
            vals.append(check_positive(v, name))
    est, lo, hi = vals
    if np.isfinite(lo) and np.isfinite(hi) and lo > hi:
        raise ValueError(f"ci_low ({lo:g}) must not exceed ci_high ({hi:g})")
    for name, v in (("ci_low", lo), ("ci_high", hi)):
        if np.isfinite(v) and ((name == "ci_low" and v > est) or (name == "ci_high" and v < est)):
            raise ValueError(f"the interval {lo:g} to {hi:g} must contain the estimate {est:g}")
    rr, rr_lo, rr_hi = (approximate_rr(v, kind, rare_outcome) for v in (est, lo, hi))
    notes = []
    if kind in ("OR", "HR") and not rare_outcome:
        notes.append(f"the {kind} was converted to an approximate risk ratio for a common outcome "
                     "(VanderWeele & Ding 2017); pass rare_outcome=True if fewer than about 15% have the outcome")
    if kind == "SMD":
        notes.append("the standardised mean difference was converted to an approximate risk ratio exp(0.91 d)")
    table = pd.DataFrame([{"kind": kind, "estimate": est, "ci_low": lo, "ci_high": hi, "rr": rr, "rr_ci_low": rr_lo,
                           "rr_ci_high": rr_hi, "e_value": e_value_rr(rr),
                           "e_value_ci": ci_e_value(rr, rr_lo, rr_hi)}])
    return EValue(table, notes)
