"""Therapist benchmarking and the outcome at a horizon, recomputed independently."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from backpain_outcomes.benchmarking import benchmark_therapists, outcome_at_day


@pytest.fixture(scope="module")
def near(example_study):
    return outcome_at_day(example_study, "nrs", 42, origin="onset", window=14)


def test_outcome_at_day_is_the_nearest_follow_up_measurement(example_study, near):
    # independent: every non-baseline NRS score within 14 days of day 42 since onset, the nearest (earlier on a tie)
    sc = example_study.scores[example_study.scores["instrument"] == "nrs"].sort_values(["episode_id", "date"])
    sc = sc[sc.groupby("episode_id").cumcount() > 0]
    sc = sc.assign(dist=(sc["days_since_onset"] - 42).abs())
    sc = sc[sc["dist"] <= 14].sort_values(["episode_id", "dist", "days_since_onset"])
    ref = sc.groupby("episode_id").head(1).set_index("episode_id")
    got = near.set_index("episode_id")
    assert set(got.index) == set(ref.index)
    np.testing.assert_array_equal(got.loc[ref.index, "score"], ref["score"])
    base = example_study.episodes.set_index("episode_id")["baseline_nrs"]
    drop = base.loc[ref.index] - ref["score"]
    np.testing.assert_array_equal(got.loc[ref.index, "responder"], (drop >= 2) & (drop >= 0.3 * base.loc[ref.index]))


def test_therapist_benchmark_is_mean_ols_residual_with_one_control_limit(example_study, near):
    bench = benchmark_therapists(example_study, show_therapists=True, min_n=5)
    ss = example_study.sessions
    main = ss.groupby("episode_id")["therapist_id"].agg(lambda s: s.value_counts().sort_index().idxmax())
    d = near[near["episode_id"].isin(main.index)].assign(therapist=lambda x: x["episode_id"].map(main))
    fit = smf.ols("improvement ~ baseline + C(chronicity) + age", d).fit()
    ref = d.assign(r=fit.resid).groupby("therapist")["r"].agg(["mean", "size"])
    t = bench.table.set_index("therapist")
    np.testing.assert_allclose(t["o_minus_e"], ref.loc[t.index, "mean"], atol=1e-10)
    np.testing.assert_allclose(bench.sigma, np.sqrt(fit.scale), rtol=1e-12)
    assert bench.limit == 0.998 and round(bench.z, 4) == 3.0902  # scipy.stats.norm.ppf(0.999)
    np.testing.assert_allclose(t["upper"], bench.z * bench.sigma / np.sqrt(t["n"]))
    flagged = (t["o_minus_e"].abs() > t["upper"])
    assert (flagged == (t["flag"] != "")).all()
    assert set(t["flag"]) <= {"", "above expected", "below expected"}
    assert bench.n_hidden == int((ref["size"] < 5).sum())


def test_anonymised_labels_and_hiding_returns_a_new_result(example_study):
    bench = benchmark_therapists(example_study)
    assert bench.table["therapist"].tolist() == [f"T{i + 1}" for i in range(len(bench.table))]
    assert (np.diff(bench.table["n"]) <= 0).all()
    fewer = bench.without(["T2"])
    assert "T2" not in set(fewer.table["therapist"]) and fewer.n_hidden == bench.n_hidden + 1
    assert "T2" in set(bench.table["therapist"])  # the original is unchanged
    assert fewer.episodes["therapist"].isna().sum() == int(bench.table.set_index("therapist").loc["T2", "n"])
    with pytest.raises(AttributeError, match="immutable"):
        bench.sigma = 1.0


def test_min_n_hides_small_caseloads_and_arguments_are_checked(example_study):
    bench = benchmark_therapists(example_study, min_n=25)
    assert (bench.table["n"] >= 25).all() and bench.n_hidden > 0
    hidden = bench.episodes[bench.episodes["therapist"].isna()]
    assert hidden["caseload"].str.startswith("hidden").all()
    assert (hidden.groupby("caseload").size() < 25).all()
    with pytest.raises(ValueError, match="limit"):
        benchmark_therapists(example_study, limit=99.8)
    with pytest.raises(ValueError, match="instrument"):
        benchmark_therapists(example_study, instrument="pain")


def test_no_therapists_is_a_note_not_an_error(example_study):
    from backpain_outcomes.study import Study
    inp = example_study._inputs
    study = Study(scores=inp["scores"], patients=inp["patients"], episodes=inp["episodes"],
                  sessions=inp["sessions"].assign(therapist_id=pd.Series(dtype=object)))
    bench = benchmark_therapists(study)
    assert bench.table.empty and "No therapist" in bench.notes[0]
