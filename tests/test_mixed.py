"""Linear mixed model: per-day estimates against R lme4 and statsmodels."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

import backpain_outcomes as bpo


def frame_of(study):
    return study.analysis_frame("nrs", origin="first_contact")


def test_matches_lme4(example_study):
    # R 4.x, lme4: d <- example_study.analysis_frame("nrs", origin="first_contact") written to CSV;
    # d$day30 <- d$day / 30; lmer(score ~ day30 * modality + baseline + (day30 | episode_id), REML = TRUE)
    m = bpo.fit_mixed_model(frame_of(example_study), "score ~ day * modality + baseline")
    fe = m.fe_params
    assert abs(fe["Intercept"] - 1.59428365519416) < 1e-4
    assert abs(fe["baseline"] - 0.23915462228598) < 1e-4
    assert abs(fe["day"] - (-0.07577371479469 / 30)) < 1e-6
    assert abs(fe["day:modality[T.cupping]"] - (-0.02326407871962 / 30)) < 1e-6
    assert abs(m.bse_fe["Intercept"] - 0.4643836251490) < 1e-4
    assert abs(m.bse_fe["baseline"] - 0.0610770653041) < 1e-5
    assert abs(m.bse_fe["day"] - 0.0091740527147 / 30) < 1e-6
    np.testing.assert_allclose(m.cov_re.iloc[0, 0], 4.703338308102448, rtol=1e-4)
    np.testing.assert_allclose(m.cov_re.iloc[1, 1], 0.000815525249154 / 900, rtol=2e-3)
    np.testing.assert_allclose(m.scale, 0.902375431734616, rtol=1e-5)
    # REML log-likelihood: R's value is on the day/30 scale; ours is per day, shifted by -log|det A| with
    # A the design map (6 time columns scaled by 30).
    np.testing.assert_allclose(m.llf, -12081.5414996 - 6 * np.log(30), atol=1e-4)
    assert m.converged and m.engine.startswith("fast")


@pytest.mark.parametrize("reml", [True, False])
def test_fast_engine_equals_statsmodels_on_raw_days(example_study, reml):
    # Random intercept on raw days: statsmodels' own log-likelihood evaluated at our estimates equals our llf,
    # and statsmodels started from our estimates does not move (its default start stops ~1e-5 short).
    from statsmodels.regression.mixed_linear_model import MixedLMParams
    f = frame_of(example_study)
    formula = "score ~ day * modality + baseline"
    ours = bpo.fit_mixed_model(f, formula, re_formula="1", reml=reml)
    start = MixedLMParams.from_components(fe_params=ours.fe_params.to_numpy(),
                                          cov_re=ours.cov_re.to_numpy() / ours.scale)
    default = MixedLM.from_formula(formula, f, groups=f["episode_id"]).fit(reml=reml)
    warm = MixedLM.from_formula(formula, f, groups=f["episode_id"]).fit(reml=reml, start_params=start)
    np.testing.assert_allclose(warm.llf, ours.llf, rtol=0, atol=1e-6)
    assert ours.llf >= default.llf - 1e-8  # ours is at least as high as statsmodels' own optimum
    np.testing.assert_allclose(ours.fe_params.to_numpy(), warm.fe_params.to_numpy(), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(ours.scale, warm.scale, rtol=1e-5)
    np.testing.assert_allclose(ours.cov_re.to_numpy(), np.asarray(warm.cov_re), rtol=1e-5)


def test_fast_and_statsmodels_engines_agree_on_slopes(example_study):
    f = frame_of(example_study)
    fast = bpo.fit_mixed_model(f, "score ~ day + baseline", engine="fast")
    sm = bpo.fit_mixed_model(f, "score ~ day + baseline", engine="statsmodels")
    assert fast.llf >= sm.llf - 1e-8
    np.testing.assert_allclose(fast.fe_params, sm.fe_params, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(fast.bse_fe, sm.bse_fe, rtol=1e-3)
    assert "statsmodels" in sm.engine


def test_predict_with_and_without_random_effects(example_study):
    f = frame_of(example_study)
    m = bpo.fit_mixed_model(example_study, "score ~ day + baseline", origin="first_contact")
    with_re = m.predict(f)
    without = m.predict(f, include_random_effects=False)
    assert np.corrcoef(with_re, f["score"])[0, 1] > np.corrcoef(without, f["score"])[0, 1]
    new = pd.DataFrame({"day": [0.0, 42.0], "baseline": [7.0, 7.0], "episode_id": ["unseen", "unseen"]})
    np.testing.assert_allclose(m.predict(new), m.predict(new, include_random_effects=False))
    assert "Fixed effects" in m.summary()


def test_tidy_table_conf_int_and_pvalues(example_study):
    from scipy import stats
    m = bpo.fit_mixed_model(frame_of(example_study), "score ~ day * modality + baseline")
    t = m.table.set_index("term")
    assert list(m.table.columns) == ["term", "estimate", "se", "z", "p_value", "ci_low", "ci_high"]
    np.testing.assert_allclose(t["estimate"], m.fe_params)
    np.testing.assert_allclose(t["z"], m.fe_params / m.bse_fe)
    np.testing.assert_allclose(t["p_value"], 2 * stats.norm.sf(np.abs(m.fe_params / m.bse_fe)))
    np.testing.assert_allclose(t["ci_low"], m.fe_params - 1.959963984540054 * m.bse_fe)
    ci90 = m.conf_int(alpha=0.10)
    np.testing.assert_allclose(ci90[1], m.fe_params + 1.6448536269514722 * m.bse_fe)
    np.testing.assert_allclose(m.pvalues, t["p_value"])
    with pytest.raises(ValueError, match="alpha"):
        m.conf_int(alpha=1.5)
    with pytest.raises(AttributeError):
        m.llf = 0.0
    assert isinstance(m, bpo.results.Result) and "Dry needling" in m.summary()  # labels in the reading table
    assert "day:modality[T.dry_needling]" in set(m.table["term"])  # codes in the machine table


def test_study_input_equals_its_frame_and_accepts_aliases(example_study):
    a = bpo.fit_mixed_model(example_study, "score ~ day + baseline", re_formula="1", instrument="NPRS")
    b = bpo.fit_mixed_model(example_study.analysis_frame("nrs"), "score ~ day + baseline", re_formula="1")
    np.testing.assert_allclose(a.fe_params, b.fe_params, rtol=1e-10)
    assert a.instrument == "nrs" and a.origin == "onset" and b.instrument is None


def test_mean_curves_stay_inside_data_and_range(example_study):
    m = bpo.fit_mixed_model(example_study, "score ~ day * modality + baseline")
    curves = m.mean_curves("modality", min_n=5)
    f = example_study.analysis_frame("nrs")
    for mod, g in curves.groupby("modality"):
        last = np.sort(f[f["modality"] == mod].groupby("episode_id")["day"].max().to_numpy())[::-1][4]
        assert g["day"].max() == pytest.approx(last)
    assert curves["predicted"].between(0, 10).all()
    ax = m.plot()
    assert "Untreated" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(m.plot(kind="effects").get_yticklabels()) == len(m.table) - 1


@pytest.mark.parametrize("kw, name", [
    ({"formula": "score ~ dya + baseline"}, "formula"), ({"formula": "score ~ day +"}, "formula"),
    ({"formula": "day + baseline"}, "formula"), ({"formula": 3}, "formula"),
    ({"re_formula": "~ dya"}, "re_formula"), ({"re_formula": "score ~ day"}, "re_formula"),
    ({"groups": "episode"}, "groups"), ({"time": "days"}, "time"), ({"time": "modality"}, "time"),
    ({"reml": "yes"}, "reml"), ({"instrument": "pain"}, "instrument"), ({"origin": "start"}, "origin"),
    ({"engine": "lme4"}, "engine"),
])
def test_invalid_arguments_name_themselves(example_study, kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        bpo.fit_mixed_model(frame_of(example_study), **kw)


def test_result_methods_check_their_arguments(example_study):
    f = frame_of(example_study)
    m = bpo.fit_mixed_model(f, "score ~ day + baseline", re_formula="1")
    with pytest.raises(ValueError, match="kind"):
        m.plot(kind="forest")
    with pytest.raises(TypeError, match="frame"):
        m.predict([1, 2])
    with pytest.raises(ValueError, match="frame cannot be used"):
        m.predict(f.drop(columns="baseline"))
    with pytest.raises(TypeError, match="include_random_effects"):
        m.predict(f, include_random_effects="no")


def test_time_in_weeks_beside_a_day_column_gives_per_week_slopes_and_plots(example_study):
    frame = example_study.analysis_frame("nrs").assign(week=lambda d: d["day"] / 7)
    early = frame[frame["week"] <= 12]
    per_day = bpo.fit_mixed_model(early, "score ~ day + baseline", re_formula="~ day")
    per_week = bpo.fit_mixed_model(early, "score ~ week + baseline", re_formula="~ week", time="week")
    # a linear reparametrisation: the weekly slope is 7 times the daily one, with 7 times its SE
    np.testing.assert_allclose(per_week.fe_params["week"], 7 * per_day.fe_params["day"], rtol=1e-5)
    np.testing.assert_allclose(per_week.bse_fe["week"], 7 * per_day.bse_fe["day"], rtol=1e-4)
    ax = per_week.plot()  # the frame also has "day": the plot must use the week column
    assert ax.get_xlim()[1] < 13
    assert "per week" in per_week.plot(kind="effects").get_xlabel()
