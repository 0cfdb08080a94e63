"""The power of the claim test on a formula, with no simulation (used by :mod:`backpain_outcomes.power`).

The test of :func:`~backpain_outcomes.test_resolution_claim` is a one-sided
Wald test of the Kaplan-Meier estimate :math:`\\hat S(\\text{day})` on the
complementary log-log scale, :math:`u(S) = \\log(-\\log S)`, with the
Greenwood variance of :math:`\\log \\hat S` (Borgan & Liestøl 1990, Scand J
Stat 17:35-41), and exact bounds when no episode or every episode resolves.

* :func:`power_formula` models **that test**, not a smooth surrogate of it.
  Under complete follow-up to the day the Kaplan-Meier estimate is
  :math:`1 - k/n` and its Greenwood variance telescopes to
  :math:`k / (n (n - k))`, so the test is a function of the number of
  resolutions :math:`k \\sim \\text{Binomial}(n, \\text{true rate})`: the
  formula finds the counts at which the test rejects (its own p-value at every
  :math:`k`) and sums their binomial probabilities. This follows the
  saw-tooth of a test on counts in :math:`n` (Chernick & Liu 2002, Am Stat
  56:149-155), which the normal approximation misses by up to 14 points at
  10 episodes (``benchmarks/RESULTS_methods.md``). Above
  :data:`EXACT_MAX_N` episodes the saw-tooth is negligible and the normal
  approximation is used.
* With exponential drop-out the estimate is no longer a function of a count;
  :func:`power_normal` is used, the normal approximation with the expected
  Greenwood variance under drop-out at rate :math:`c = 1/\\text{dropout\\_mean\\_days}`
  and a constant resolution hazard :math:`h = -\\log S_1 / \\text{day}`:

  .. math:: \\text{power} = \\Phi\\!\\left(\\frac{|u(S_1) - u(S_0)|}{\\mathrm{se}_1} - z_{1-\\alpha}\\right),
            \\qquad \\mathrm{se}_1 = \\frac{\\sqrt{V}}{|\\log S_1|},
            \\qquad V = \\frac{h}{n(h + c)}\\left(e^{(h + c)\\,\\text{day}} - 1\\right),

  which is :math:`V = (1 - S_1) / (n S_1)` without drop-out
  (:math:`S_0 = 1 - \\text{claimed}`, :math:`S_1 = 1 - \\text{true rate}`).
* :func:`sample_size_formula` returns the smallest :math:`n` from which the
  formula's power stays at or above the target (checked up to twice the
  normal-approximation answer plus 20), so that a saw-tooth dip just above
  :math:`n` does not undo it; with drop-out it inverts the normal
  approximation, :math:`n = \\left((z_{1-\\alpha} + z_{\\text{power}})\\, \\mathrm{sd}_1 / |u(S_1) - u(S_0)|\\right)^2`.
* :func:`power_exact` is the binomial computation alone (complete follow-up
  required); it equals :func:`power_formula` without drop-out.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .checks import check_alpha, check_day, check_int, check_positive, check_proportion

__all__ = ["power_formula", "power_normal", "sample_size_formula", "power_exact", "check_dropout", "EXACT_MAX_N"]

#: above this many episodes the formula uses the normal approximation (the saw-tooth is below 0.1 point there)
EXACT_MAX_N = 5000


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


def _checked(n, true_rate, claimed, day, alpha, dropout_mean_days):
    return (check_int(n, "n", low=1), check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed"),
            check_day(day), check_alpha(alpha), check_dropout(dropout_mean_days))


def _normal(n, true_rate, claimed, day, alpha, dropout_mean_days):
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    return float(stats.norm.cdf(delta * math.sqrt(n) / sd1 - stats.norm.ppf(1 - alpha)))


def _exact(n, true_rate, claimed, alpha):
    below, above = _p_values_by_events(n, claimed)
    p = below if true_rate < claimed else above
    return float(stats.binom.pmf(np.arange(n + 1), n, true_rate)[p < alpha].sum())


def _power(n, true_rate, claimed, day, alpha, dropout_mean_days):
    if np.isfinite(dropout_mean_days) or n > EXACT_MAX_N:
        return _normal(n, true_rate, claimed, day, alpha, dropout_mean_days)
    return _exact(n, true_rate, claimed, alpha)


def power_normal(n, true_rate, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> float:
    """Normal-approximation power of the one-sided claim test (smooth in ``n``; see the module docstring).

    Examples
    --------
    >>> round(power_normal(75, 0.80, claimed=0.90), 3)
    0.803
    """
    n, true_rate, claimed, day, alpha, dropout_mean_days = _checked(n, true_rate, claimed, day, alpha,
                                                                    dropout_mean_days)
    return _normal(n, true_rate, claimed, day, alpha, dropout_mean_days)


def power_formula(n, true_rate, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> float:
    """Power of the one-sided claim test: the test's own rejection region on binomial counts, or with drop-out the normal approximation.

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
    >>> round(power_formula(10, 0.70, claimed=0.90), 4)
    0.3504
    >>> round(power_formula(75, 0.80, claimed=0.90, dropout_mean_days=200), 3)
    0.755
    """
    return _power(*_checked(n, true_rate, claimed, day, alpha, dropout_mean_days))


def sample_size_formula(true_rate, power=0.80, claimed=0.90, day=42, alpha=0.05, dropout_mean_days=np.inf) -> int:
    """Episodes at risk from which the claim test keeps at least ``power`` (see the module docstring).

    Examples
    --------
    >>> sample_size_formula(0.80, power=0.80, claimed=0.90)
    83
    """
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    power, day, alpha = check_proportion(power, "power"), check_day(day), check_alpha(alpha)
    dropout_mean_days = check_dropout(dropout_mean_days)
    if true_rate == claimed:
        raise ValueError(f"true_rate equals claimed ({claimed:g}): no number of episodes gives power above alpha; "
                         "choose the true rate under which the claim should be refuted")
    delta, sd1 = _distance_and_sd(true_rate, claimed, day, dropout_mean_days)
    n_normal = max(1, math.ceil(((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * sd1 / delta) ** 2 - 1e-9))
    if np.isfinite(dropout_mean_days) or n_normal > EXACT_MAX_N:
        return n_normal

    def last_failure(lo, hi):
        """The largest size in [lo, hi] whose exact power is below the target, or None."""
        bad = [m for m in range(lo, hi + 1) if _exact(m, true_rate, claimed, alpha) < power]
        return bad[-1] if bad else None

    start, hi = max(1, n_normal // 2), min(2 * n_normal + 20, EXACT_MAX_N)
    last = last_failure(start, hi)
    while last == hi:  # still below the target at the end of the search: look further
        if hi >= EXACT_MAX_N:
            raise ValueError(f"power={power:g} is not reached by the exact test below {EXACT_MAX_N} episodes at "
                             f"true_rate={true_rate:g} against claimed={claimed:g}; ask for less power or a true "
                             "rate further from the claim")
        wider = min(2 * hi, EXACT_MAX_N)
        last, hi = last_failure(hi + 1, wider) or last, wider
    if last is None and start > 1:
        last = last_failure(1, start - 1)  # every size from start passes: the last failure, if any, lies below it
    return 1 if last is None else int(last) + 1


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
    test rejects. It is :func:`power_formula` without drop-out (for any
    ``n``), and shows the saw-tooth in ``n`` that the smooth
    :func:`power_normal` cannot.

    Examples
    --------
    >>> round(power_exact(10, 0.70, claimed=0.90), 4)
    0.3504
    """
    n = check_int(n, "n", low=1)
    true_rate, claimed = check_proportion(true_rate, "true_rate"), check_proportion(claimed, "claimed")
    return _exact(n, true_rate, claimed, check_alpha(alpha))
