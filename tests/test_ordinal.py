"""Global rating of change: the instrument (coding, range, refused by the analyses of levels) and the proportional
odds model, checked against closed forms and statsmodels fitted directly."""

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY

import backpain_outcomes as bpo
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.instruments import score_100
from backpain_outcomes.vocabulary import GRC_LABELS, instrument_name, normalise_instrument


def test_grc_spellings_and_coding():
    names = pd.Series(["GRC", "PGIC", "Global rating of change", "GPE", "global perceived effect", "NRS"])
    assert normalise_instrument(names).tolist() == ["grc"] * 5 + ["nrs"]
    assert instrument_name("PGIC", ratings=True) == "grc"
    assert GRC_LABELS[7][0] == "very much better" and GRC_LABELS[7][3] == "no change"
    assert np.isnan(score_100(pd.Series(["grc"]), pd.Series([1])).iat[0])


def test_grc_ratings_are_checked_when_loading():
    scores = pd.DataFrame({"patient_id": "p1", "date": [f"2024-01-0{i}" for i in range(1, 7)], "instrument": "PGIC",
                           "score": [1, 7, 0, 8, 2.5, -3]})
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(scores=scores, today=TODAY)
    p = info.value.problems
    assert p[["row", "reason"]].values.tolist() == [[4, "out_of_range"], [5, "out_of_range"], [6, "out_of_range"],
                                                    [7, "out_of_range"]]
    assert "a whole number from 1 (the best category) to 7 for grc" in p["expected"].iat[0]


def test_the_analyses_of_levels_refuse_a_rating_of_change():
    study = bpo.load_study(scores=pd.DataFrame({"patient_id": ["p1", "p1"], "date": ["2024-01-01", "2024-01-20"],
                                                "instrument": ["nrs", "grc"], "score": [6, 2]}), today=TODAY)
    assert "baseline_grc" not in study.episodes and study.instruments == ["nrs"]
    for call in (lambda: study.analysis_frame("grc"), lambda: bpo.as_rule("grc<=2"),
                 lambda: bpo.fit_recovery_curves(study, instrument="PGIC")):
        with pytest.raises(ValueError, match="is a rating of change .grc., not a level"):
            call()
