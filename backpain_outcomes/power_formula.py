"""The normal-approximation and exact power of the claim test (used by :mod:`backpain_outcomes.power`).

* :func:`power_formula`: the normal approximation of the one-sided test of
  :func:`~backpain_outcomes.test_resolution_claim` on the complementary
  log-log scale. With :math:`u(S) = \\log(-\\log S)`,
  :math:`S_0 = 1 - \\text{claimed}`, :math:`S_1 = 1 - \\text{true rate}` and the
  Greenwood variance of :math:`\\log \\hat S`,

  .. math:: \\text{power} = \\Phi\\!\\left(\\frac{|u(S_1) - u(S_0)|}{\\mathrm{se}_1} - z_{1-\\alpha}\\right),
            \\qquad \\mathrm{se}_1 = \\frac{\\sqrt{V}}{|\\log S_1|},
            \\qquad V = \\frac{1 - S_1}{n S_1}

  without drop-out (the Greenwood variance of a complete sample). With
  exponential drop-out at rate :math:`c = 1/\\text{dropout\\_mean\\_days}` and
  a constant resolution hazard :math:`h = -\\log S_1 / \\text{day}`,
  :math:`V = \\frac{h}{n(h + c)}\\left(e^{(h + c)\\,\\text{day}} - 1\\right)`.
* :func:`sample_size_formula` inverts it:
  :math:`n = \\left((z_{1-\\alpha} + z_{\\text{power}})\\, \\mathrm{sd}_1 / |u(S_1) - u(S_0)|\\right)^2`.
* :func:`power_exact`: under complete follow-up the number of resolutions is
  binomial, and the power sums its probabilities over the counts at which the
  test rejects; it shows the saw-tooth in n that the smooth formula misses.

Log-log transformed survival estimates: Borgan & Liestøl 1990 (Scand J Stat 17:35-41).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .checks import check_alpha, check_day, check_int, check_positive, check_proportion

__all__ = ["power_formula", "sample_size_formula", "power_exact", "check_dropout"]


def check_dropout(value) -> float:
    """A mean drop-out time in days: positive, or ``np.inf`` for none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == np.inf:
        return np.inf
    return check_positive(value, "dropout_mean_days")



def _variance_log_s(n, s1, day, dropout_mean_days):
    """Greenwood variance of log S(day) for ``n`` episodes (approximation under exponential drop-out)."""
    if not np.isfinite(dropout_mean_days):
        return (1 - s1) / (n * s1)
    h, c = -math.log(s1) / day, 1.0 / dropout_mean_days
    return h / (n * (h + c)) * math.expm1((h + c) * day)


def _distance_and_sd(true_rate, claimed, day, dropout_mean_days):
    """(|u1 - u0|, sd of u-hat for one episode) on the complementary log-log scale."""
    s0, s1 = 1 - claimed, 1 - true_rate
    delta = abs(math.log(-math.log(s1)) - math.log(-math.log(s0)))
    sd1 = math.sqrt(_variance_log_s(1, s1, day, dropout_mean_days)) / abs(math.log(s1))
    return delta, sd1


def power_formula(n, true_rate, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> float:
    """Normal-approximation power of the one-sided claim test (see the module docstring).

    Parameters
    ----------
    n : int
        Episodes at risk.
    true_rate, claimed : float
        True and claimed share resolved by ``day``.
    day : float
    alpha : float
        One-sided level.
    dropout_mean_days : float
        Mean of an exponential drop-out time (``np.inf``: none before ``day``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(power_formula(75, 0.80, claimed=0.90), 3)
    0.803
    """
    n = check_int(n, "n", low=1)
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    day, alpha = check_day(day), check_alpha(alpha)
    dropout_mean_days = check_dropout(dropout_mean_days)
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    return float(stats.norm.cdf(delta * math.sqrt(n) / sd1 - stats.norm.ppf(1 - alpha)))


def sample_size_formula(true_rate, power=0.80, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> int:
    """Episodes at risk for the claim test to reach ``power`` (normal approximation, rounded up).

    Examples
    --------
    >>> sample_size_formula(0.80, power=0.80, claimed=0.90)
    75
    """
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    power, day, alpha = check_proportion(power, "power"), check_day(day), check_alpha(alpha)
    dropout_mean_days = check_dropout(dropout_mean_days)
    if true_rate == claimed:
        raise ValueError(f"true_rate equals claimed ({claimed:g}): no number of episodes gives power above alpha; "
                         "choose the true rate under which the claim should be refuted")
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    return max(1, math.ceil(((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * sd1 / delta) ** 2 - 1e-9))


def _p_values_by_events(n, claimed):
    r"""One-sided p-values (below, above) of the claim test for 0..n resolutions among n episodes, no censoring.

    Without censoring the Kaplan-Meier estimate is :math:`\hat S = 1 - k/n` and the
    Greenwood variance of :math:`\log \hat S` telescopes to :math:`k / (n (n - k))`;
    no resolution and all resolved use the exact bounds of the package's test.
    """
    k = np.arange(n + 1)
    s = 1 - k / n
    below, above = np.empty(n + 1), np.empty(n + 1)
    inner = (k > 0) & (k < n)
    ki, si = k[inner], s[inner]
    se_u = np.sqrt(ki / (n * (n - ki))) / np.abs(np.log(si))
    z = (np.log(-np.log(si)) - math.log(-math.log(1 - claimed))) / se_u
    below[inner], above[inner] = stats.norm.cdf(z), stats.norm.sf(z)
    below[0], above[0] = (1 - claimed) ** n, 1.0
    below[n], above[n] = 1.0, claimed ** n
    return below, above


def power_exact(n, true_rate, claimed=0.90, alpha=0.05) -> float:
    """Exact power of the claim test under complete follow-up to the day, every episode at risk.

    The number of resolutions by the day is Binomial(``n``, ``true_rate``);
    the power sums its probabilities over the counts at which the one-sided
    test rejects. It shows the saw-tooth in ``n`` that the smooth formula
    (:func:`power_formula`) cannot.

    Examples
    --------
    >>> round(power_exact(10, 0.70, claimed=0.90), 4)
    0.3504
    """
    n = check_int(n, "n", low=1)
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    alpha = check_alpha(alpha)
    below, above = _p_values_by_events(n, claimed)
    p = below if true_rate < claimed else above
    return float(stats.binom.pmf(np.arange(n + 1), n, true_rate)[p < alpha].sum())
