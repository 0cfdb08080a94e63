"""Argument checks: messages name the argument, the value and the choices."""

import pytest

from backpain_outcomes.checks import check_by, check_day, check_days, check_k, check_min_n, check_origin, check_proportion


def test_proportion_suggests_the_fraction():
    assert check_proportion(0.9) == 0.9
    with pytest.raises(ValueError, match=r"claimed .* got 90; did you mean 0.9\?"):
        check_proportion(90)
    with pytest.raises(TypeError, match="claimed"):
        check_proportion("90%")
    with pytest.raises(ValueError, match="alpha"):
        check_proportion(1.0, "alpha")


def test_days():
    assert check_days(42) == [42.0]
    assert check_days([84, 42, 42]) == [42.0, 84.0]
    with pytest.raises(TypeError, match="day=42 for six weeks"):
        check_day("6 weeks")
    with pytest.raises(ValueError, match="day"):
        check_days([])
    with pytest.raises(ValueError, match="day"):
        check_day(float("nan"))


def test_counts_and_classes():
    assert check_min_n(5) == 5
    with pytest.raises(ValueError, match="min_n"):
        check_min_n(0)
    with pytest.raises(TypeError, match="min_n"):
        check_min_n(2.5)
    assert check_k(range(1, 4)) == [1, 2, 3]
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        check_k(0)


def test_by_and_origin():
    assert check_by("modality", ["modality", "chronicity"]) == ["modality"]
    with pytest.raises(ValueError, match="by='modalty'.*did you mean 'modality'"):
        check_by("modalty", ["modality", "chronicity"])
    with pytest.raises(ValueError, match="'onset', 'first_contact'"):
        check_origin("first contact")


def test_one_day_where_one_is_expected():
    with pytest.raises(TypeError, match="day takes one number of days here"):
        check_day([42, 84])
