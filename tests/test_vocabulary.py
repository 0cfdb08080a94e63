"""Vocabulary: aliases, labels, validated user maps."""

import pandas as pd
import pytest

from backpain_outcomes.vocabulary import (
    MODALITY_LEVELS,
    chronicity_from_days,
    instrument_name,
    label,
    modality_name,
    normalise_instrument,
    normalise_modality,
)


@pytest.mark.parametrize("raw,code", [("NPRS", "nrs"), ("Numeric Pain Rating Scale", "nrs"), ("VAS (mm)", "vas"),
                                      ("Oswestry", "odi"), ("RDQ", "rmdq"), ("Roland-Morris", "rmdq")])
def test_instrument_aliases(raw, code):
    assert instrument_name(raw) == code


@pytest.mark.parametrize("raw", ["none", "No treatment", "natural course", "natural_course", "UNTREATED"])
def test_untreated_aliases(raw):
    assert modality_name(raw) == "untreated"


def test_unknown_names_list_choices_and_suggest():
    with pytest.raises(ValueError, match=r"instrument='nrs2'.*did you mean 'nrs'"):
        instrument_name("nrs2")
    with pytest.raises(ValueError, match="reference='cuping'.*did you mean 'cupping'"):
        modality_name("cuping", "reference")


def test_labels_are_human_and_untreated_is_the_reference_level():
    assert [label(m) for m in ("deep_tissue", "untreated", "unknown")] == ["Deep tissue", "Untreated",
                                                                          "Treatment unknown"]
    assert MODALITY_LEVELS[0] == "untreated"


def test_user_map_targets_are_vocabulary_in_any_spelling():
    mapped = normalise_instrument(pd.Series(["PAIN", "nrs"]), {"PAIN": "NPRS"})
    assert mapped.tolist() == ["nrs", "nrs"]
    assert normalise_modality(pd.Series(["Hot stones"]), {"Hot stones": "Other"}).tolist() == ["other"]
    with pytest.raises(ValueError, match="modality_map: target 'reiki'"):
        normalise_modality(pd.Series(["x"]), {"x": "reiki"})
    with pytest.raises(TypeError, match="instrument_map"):
        normalise_instrument(pd.Series(["x"]), ["nrs"])


def test_chronicity_cut_offs_at_6_and_12_weeks():
    out = chronicity_from_days(pd.Series([0, 41, 42, 83, 84, None]))
    assert out.astype(str).tolist() == ["acute", "acute", "subacute", "subacute", "chronic", "unknown"]
    assert list(out.cat.categories) == ["acute", "subacute", "chronic", "unknown"]  # every level, in order
    odd = chronicity_from_days(pd.Series([84, None, 3], dtype="Int64", index=[7, 8, 9]))  # nullable, own index
    assert odd.tolist() == ["chronic", "unknown", "acute"] and odd.index.tolist() == [7, 8, 9]
    assert chronicity_from_days(pd.Series(["50", "x"])).tolist() == ["subacute", "unknown"]  # text: as numbers
    assert len(chronicity_from_days(pd.Series([], dtype=float))) == 0


def test_full_width_and_zero_width_spellings_match():
    from backpain_outcomes.vocabulary import modality_name, normalise_modality

    assert modality_name("ＳＷＥＤＩＳＨ") == "swedish"  # full-width letters, as some East Asian exports write them
    assert modality_name("dry\u200bneedling") == "dry_needling"  # a zero-width space pasted from a web form
    out = normalise_modality(pd.Series(["Ｃｕｐｐｉｎｇ", "deep tissue", "reiki"]))
    assert out.tolist() == ["cupping", "deep_tissue", None]
