"""Mixed-model design: formula checks, listwise deletion and data no mixed model can use."""

import numpy as np
import pytest

import backpain_outcomes as bpo


def frame_of(study):
    return study.analysis_frame("nrs", origin="first_contact")


def test_formula_error_lists_available_columns(example_study):
    with pytest.raises(ValueError, match=r"did you mean 'day'.*available columns: episode_id"):
        bpo.fit_mixed_model(frame_of(example_study), "score ~ dya")
    with pytest.raises(TypeError, match="study"):
        bpo.fit_mixed_model([1, 2, 3])


def test_one_group_singular_design_and_single_observations_are_clear_errors(example_study):
    f = frame_of(example_study)
    one = f[f["episode_id"] == f["episode_id"].iat[0]]
    with pytest.raises(ValueError, match="at least two groups"):
        bpo.fit_mixed_model(one, "score ~ day")
    with pytest.raises(ValueError, match=r"singular: baseline, twice"):
        bpo.fit_mixed_model(f.assign(twice=2 * f["baseline"]), "score ~ day + baseline + twice")
    empty_level = f[f["modality"] != "cupping"]  # the category stays, with no rows
    with pytest.raises(ValueError, match=r"modality\[T.cupping\]"):
        bpo.fit_mixed_model(empty_level, "score ~ day + modality")
    firsts = f.groupby("episode_id").head(1)
    with pytest.raises(ValueError, match="single observation"):
        bpo.fit_mixed_model(firsts, "score ~ day")
    with pytest.raises(ValueError, match="at most two random effects"):
        bpo.fit_mixed_model(f, "score ~ day", re_formula="~ day + baseline", engine="fast")


def test_too_few_groups_for_a_random_slope_is_noted(example_study):
    f = frame_of(example_study)
    few = f[f["episode_id"].isin(f["episode_id"].unique()[:4])]
    m = bpo.fit_mixed_model(few, "score ~ day")
    assert any("only 4 groups" in n for n in m.notes)
    assert any("random slope" in n for n in m.notes)


def test_missing_values_are_dropped_and_counted(example_study):
    f = frame_of(example_study).copy()
    f.loc[f.index[:7], "baseline"] = np.nan
    m = bpo.fit_mixed_model(f, "score ~ day + baseline", re_formula="1")
    assert m.nobs == len(f) - 7 and any("7 row(s) with missing values" in n for n in m.notes)


def test_constant_outcome_is_refused_not_fitted_with_zero_standard_errors():
    import numpy as np
    import pandas as pd
    import pytest

    import backpain_outcomes as bpo
    frame = pd.DataFrame({"score": 5.0, "day": np.tile([0.0, 14.0, 42.0], 20), "episode_id": np.repeat(range(20), 3)})
    with pytest.raises(ValueError, match="does not vary"):
        bpo.fit_mixed_model(frame, "score ~ day", re_formula="1")
