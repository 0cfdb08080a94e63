"""E-values (backpain_outcomes.evalue) against the published formula (VanderWeele & Ding 2017, Ann Intern Med).

Hand computations:
* the paper's worked example, RR 3.9 (95% CI 1.8-8.7): E = 3.9 + sqrt(3.9 * 2.9) = 7.263; CI: 1.8 + sqrt(1.8 * 0.8) = 3.0.
* RR 0.5 (0.3-0.8): 1/RR = 2, E = 2 + sqrt(2) = 3.4142; limit closest to 1 is 0.8 -> 1.25 + sqrt(1.25 * 0.25) = 1.8090.
* OR 4, common outcome: RR ~ sqrt(4) = 2 -> 3.4142; rare: RR ~ 4 -> 4 + sqrt(12) = 7.4641.
* HR 0.8, common outcome: RR ~ (1 - 0.5^0.894427) / (1 - 0.5^1.118034) = 0.462039 / 0.539279 = 0.856773,
  1/RR = 1.167171, E = 1.167171 + sqrt(1.167171 * 0.167171) = 1.6089.
* SMD 0.5: RR ~ exp(0.455) = 1.576173, E = 1.576173 + sqrt(1.576173 * 0.576173) = 2.5291.
"""

import math

import matplotlib.axes
import pytest

from backpain_outcomes.evalue import EValue, approximate_rr, ci_e_value, e_value, e_value_rr


def test_published_worked_example():
    ev = e_value(3.9, 1.8, 8.7)
    assert isinstance(ev, EValue)
    assert ev.e_value == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert ev.e_value == pytest.approx(7.263, abs=1e-3)
    assert ev.e_value_ci == pytest.approx(3.0)


def test_protective_ratio_uses_the_inverse_and_the_upper_limit():
    ev = e_value(0.5, 0.3, 0.8)
    assert ev.e_value == pytest.approx(3.4142, abs=1e-4)
    assert ev.e_value_ci == pytest.approx(1.8090, abs=1e-4)


def test_interval_including_one_gives_one():
    assert e_value(1.4, 0.9, 2.2).e_value_ci == 1.0
    assert e_value(0.7, 0.4, 1.05).e_value_ci == 1.0
    assert e_value_rr(1.0) == 1.0
    assert ci_e_value(1.5, float("nan"), float("nan")) != ci_e_value(1.5, float("nan"), float("nan"))  # NaN


def test_odds_ratio_conversion():
    assert e_value(4.0, kind="OR").e_value == pytest.approx(3.4142, abs=1e-4)
    assert e_value(4.0, kind="OR", rare_outcome=True).e_value == pytest.approx(7.4641, abs=1e-4)
    assert approximate_rr(4.0, "OR") == pytest.approx(2.0)


def test_hazard_ratio_conversion_for_a_common_outcome():
    assert approximate_rr(0.8, "HR") == pytest.approx(0.856773, abs=1e-6)
    ev = e_value(0.8, 0.71, 0.91, kind="hr")
    assert ev.e_value == pytest.approx(1.6089, abs=1e-4)
    assert ev.e_value_ci == pytest.approx(e_value_rr(approximate_rr(0.91, "HR")))
    assert any("common outcome" in n for n in ev.notes)
    assert e_value(0.8, kind="HR", rare_outcome=True).e_value == pytest.approx(e_value_rr(0.8))


def test_standardised_mean_difference():
    ev = e_value(0.5, 0.2, 0.8, kind="SMD")
    assert ev.e_value == pytest.approx(2.5291, abs=1e-4)
    assert ev.table["rr_ci_low"].item() == pytest.approx(math.exp(0.91 * 0.2))
    assert e_value(-0.5, kind="SMD").e_value == pytest.approx(2.5291, abs=1e-4)


def test_result_contract():
    ev = e_value(2.0, 1.2, 3.1)
    assert list(ev.table.columns) == ["kind", "estimate", "ci_low", "ci_high", "rr", "rr_ci_low", "rr_ci_high",
                                      "e_value", "e_value_ci"]
    assert "3.41" in ev.summary() and "<table" in ev._repr_html_()
    assert isinstance(ev.plot(), matplotlib.axes.Axes)
    with pytest.raises(AttributeError):
        ev.e_value = 1


@pytest.mark.parametrize("args, kwargs, match", [
    ((-1.0,), {}, "estimate must be a positive number"),
    ((2.0, 2.5, 3.0), {}, "must contain the estimate"),
    ((2.0, 3.0, 1.0), {}, "must not exceed"),
    ((2.0,), {"kind": "RD"}, "kind='RD' is not valid"),
    ((2.0,), {"rare_outcome": "yes"}, "rare_outcome must be True or False"),
    (("big",), {"kind": "SMD"}, "estimate must be a finite number"),
])
def test_arguments_are_checked(args, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        e_value(*args, **kwargs)
