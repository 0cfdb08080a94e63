"""The Resolution rule, its text grammar and the round trip rule -> code -> rule."""

import pytest

from backpain_outcomes.rules import DEFAULT_RULE, RULE_GRAMMAR, Resolution, as_rule

GRAMMAR = [
    ("nrs<=1", Resolution("nrs", max_score=1)),
    ("NRS <= 1 x2", DEFAULT_RULE),
    ("nrs<=1 for 14 days", Resolution("nrs", max_score=1, sustained_days=14)),
    ("mcid", Resolution("nrs", mcid=True)),
    ("odi mcid", Resolution("odi", mcid=True)),
    ("ODI:MCID", Resolution("odi", mcid="both")),
    ("rmdq mcid(either) x2", Resolution("rmdq", mcid="either", sustained=2)),
    ("odi-50%", Resolution("odi", min_relative_drop=0.5)),
    ("nrs-2", Resolution("nrs", min_drop=2)),
    ("nprs <= 0 x 3", Resolution("nrs", max_score=0, sustained=3)),
    ("Oswestry<=20", Resolution("odi", max_score=20)),
    ("nrs<=1 & nrs-50% x2 same day max", Resolution("nrs", max_score=1, min_relative_drop=0.5, sustained=2,
                                                    same_day="max")),
]


@pytest.mark.parametrize("text,rule", GRAMMAR)
def test_grammar_and_round_trip(text, rule):
    assert as_rule(text) == rule
    assert Resolution.parse(rule.code) == rule
    assert as_rule(rule) is rule


@pytest.mark.parametrize("max_score", [0, 1, 2.5, 7])
@pytest.mark.parametrize("k,days,same", [(1, None, "mean"), (3, 10, "min"), (2, 28, "max")])
def test_round_trip_over_fields(max_score, k, days, same):
    for rule in (Resolution("vas", max_score=max_score * 10, sustained=k, sustained_days=days, same_day=same),
                 Resolution("rmdq", min_drop=max_score + 1, mcid="points", sustained=k, same_day=same),
                 Resolution("odi", min_relative_drop=0.05 * (max_score + 1), sustained_days=days)):
        assert Resolution.parse(rule.code) == rule, rule.code


@pytest.mark.parametrize("text", ["nrs<1", "nrs=<1", "", "x2", "nrs<=1 y2", "nrs<=1 & odi<=20", "nrs<=1 & nrs<=2"])
def test_syntax_errors_show_the_grammar(text):
    with pytest.raises(ValueError) as err:
        as_rule(text)
    assert "rule" in str(err.value)
    if text not in ("nrs<=1 & odi<=20", "nrs<=1 & nrs<=2"):
        assert RULE_GRAMMAR in str(err.value)


@pytest.mark.parametrize("kwargs,argument", [
    ({"instrument": "pain"}, "instrument"), ({"max_score": "1"}, "max_score"), ({"max_score": 11}, "max_score"),
    ({"min_relative_drop": 50}, "min_relative_drop"), ({"min_drop": -1}, "min_drop"), ({"mcid": "some"}, "mcid"),
    ({"max_score": 1, "sustained": 0}, "sustained"), ({"max_score": 1, "sustained_days": 1.5}, "sustained_days"),
    ({"max_score": 1, "same_day": "median"}, "same_day"), ({}, "max_score")])
def test_resolution_fields_are_checked(kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as err:
        Resolution(**{"instrument": "nrs", **kwargs})
    assert argument in str(err.value)


def test_relative_drop_hint_and_non_rule():
    with pytest.raises(ValueError, match="did you mean 0.5"):
        Resolution("nrs", min_relative_drop=50)
    with pytest.raises(TypeError, match="rule"):
        as_rule(1)
