"""Latent class growth models."""

import numpy as np
import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.trajectories import adjusted_rand_index


@pytest.fixture(scope="module")
def sim_traj():
    study, truth = bpo.simulate_study(1500, seed=3)
    return study, truth, bpo.fit_trajectories(study, k=range(1, 6), n_init=8, seed=1, origin="first_contact",
                                              day=365)


def test_enumeration_table_and_best_k(sim_traj):
    _, _, tr = sim_traj
    e = tr.enumeration
    for col in ("k", "loglik", "n_params", "bic", "aic", "sabic", "entropy", "smallest_class", "converged"):
        assert col in e
    assert e["loglik"].is_monotonic_increasing  # more classes never fit worse (best of starts)
    ok = e[e["converged"] & (e["smallest_class"] >= 0.05)]
    assert tr.best_k == ok.loc[ok["bic"].idxmin(), "k"]
    assert "best k" in tr.explanation


def test_recovers_simulated_classes(sim_traj):
    # Four generating classes (Dunn 2006 shapes); the 4-class fit should find them, and name them after their shape
    _, truth, tr = sim_traj
    t4 = tr.select(4)
    true = truth.episodes.set_index("episode_id")["trajectory_class"].reindex(t4.classes["episode_id"])
    ari = adjusted_rand_index(t4.classes["class"], true)
    assert ari > 0.75
    majority = pd.crosstab(t4.classes["class"].to_numpy(), true.to_numpy()).idxmax(axis=1)
    names = t4.sizes.set_index("class")["label"]
    expected = {"severe_persistent": "Persistent high", "recovering": "Rapid recovery",
                "fluctuating": "Fluctuating", "persistent_mild": "Persistent mild"}
    assert {names[c]: expected[m] for c, m in majority.items()} == {names[c]: names[c] for c in majority.index}
    tab = t4.crosstab("modality")
    assert tab.to_numpy().sum() == len(t4.classes) and "Untreated" in tab.index  # labels in a reading table
    ax = t4.plot(n_spaghetti=20)
    assert ax.get_legend() is not None


def test_select_returns_a_new_result(sim_traj):
    _, _, tr = sim_traj
    k0, classes0 = tr.k, tr.classes.copy()
    t2 = tr.select(2)
    assert t2 is not tr and t2.k == 2 and tr.k == k0 == tr.best_k
    pd.testing.assert_frame_equal(tr.classes, classes0)
    assert t2.table is tr.table and t2.enumeration is tr.table
    with pytest.raises(AttributeError):
        tr.k = 3
    with pytest.raises(ValueError, match="k=9"):
        tr.select(9)


def test_example_curves_stay_inside_the_data_and_the_range(example_study):
    tr = bpo.fit_trajectories(example_study, n_init=10, min_n=10)
    curves = tr.curves
    assert curves[["mean", "ci_low", "ci_high"]].stack().dropna().between(0, 10).all()
    frame = example_study.analysis_frame("nrs", include_baseline=True)
    span = frame.groupby("episode_id")["day"].agg(["min", "max"])
    members = tr.classes.set_index("episode_id")["class"]
    for c, g in curves.groupby("class"):
        s = span.loc[members[members == c].index]
        # the curve ends on the last day on which 10 of the class's episodes still have data, and starts on the
        # day by which 10 of them have been measured
        assert g["day"].max() == pytest.approx(np.sort(s["max"])[::-1][9])
        assert g["day"].min() == pytest.approx(np.sort(s["min"])[9])
    labels = tr.sizes["label"]
    assert labels.is_unique and labels.str.match(r"(Rapid|Slow|Partial) recovery|Persistent|Low pain|Fluct").all()
    ax = tr.plot(n_spaghetti=0)
    for line in ax.get_lines():
        assert np.nanmax(line.get_ydata()) <= 10 and np.nanmin(line.get_ydata()) >= 0
    assert ax.get_ylim() == (0, 10)


def test_rigid_curves_are_flagged(sim_traj):
    study, _, _ = sim_traj
    poly = bpo.fit_trajectories(study, k=[4], n_init=8, seed=1, origin="first_contact", day=365, time="polynomial")
    assert any("too rigid" in n for n in poly.notes)


def test_adjusted_rand_index_hand_values():
    assert adjusted_rand_index([1, 1, 2, 2], ["a", "a", "b", "b"]) == 1.0
    # Hubert & Arabie example computed by hand: contingency [[2,1],[0,2]]
    # sum C(n_ij, 2) = 2, rows 3+1 = 4, columns 1+3 = 4, C(5, 2) = 10: (2 - 1.6) / (4 - 1.6)
    assert adjusted_rand_index([0, 0, 0, 1, 1], [0, 0, 1, 1, 1]) == pytest.approx(0.4 / 2.4, rel=1e-12)


def test_spline_basis_and_common_variance(example_study):
    tr = bpo.fit_trajectories(example_study, k=[1, 2, 3], time="spline", n_knots=2, variance="common", n_init=4)
    e = tr.enumeration
    # 6 B-spline coefficients per class, one common variance, k - 1 weights
    assert e["n_params"].tolist() == [6 * 1 + 1 + 0, 6 * 2 + 1 + 1, 6 * 3 + 1 + 2]
    assert e["loglik"].is_monotonic_increasing
    assert np.allclose(tr.sizes["sigma"], tr.sizes["sigma"].iat[0])
    with pytest.raises(ValueError, match="polynomial"):
        bpo.fit_trajectories(example_study, k=[1], time="fourier")


@pytest.mark.parametrize("kw, name", [
    ({"instrument": "pain"}, "instrument"), ({"k": 0}, "k"), ({"k": "3"}, "k"), ({"time": "fourier"}, "time"),
    ({"degree": 4}, "degree"), ({"n_knots": -1}, "n_knots"), ({"origin": "start"}, "origin"),
    ({"n_init": 0}, "n_init"), ({"seed": 1.5}, "seed"), ({"variance": "pooled"}, "variance"),
    ({"max_iter": 0}, "max_iter"), ({"tol": 0}, "tol"), ({"short_iter": 0}, "short_iter"),
    ({"tol": 1e-16}, "tol must be at least 1e-12"),  # EM would stop where rounding noise says (in memory vs partitions)
    ({"n_refine": 0}, "n_refine"), ({"smallest_class": 5}, "smallest_class"), ({"day": -3}, "day"),
    ({"day": "1 year"}, "day"), ({"min_n": 0}, "min_n"),
])
def test_invalid_arguments_name_themselves(example_study, kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        bpo.fit_trajectories(example_study, **kw)


def test_bad_inputs_are_clear_errors(example_study):
    with pytest.raises(ValueError, match="study: the DataFrame lacks the column"):
        bpo.fit_trajectories(pd.DataFrame({"episode_id": [1], "score": [3.0]}))
    with pytest.raises(TypeError, match="study"):
        bpo.fit_trajectories([1, 2])
    tiny = pd.DataFrame({"episode_id": [1, 1, 2, 2], "day": [0, 7, 0, 7], "score": [5.0, 3.0, 6.0, 2.0]})
    with pytest.raises(ValueError, match="k=3"):
        bpo.fit_trajectories(tiny, k=[1, 3])
    tr = bpo.fit_trajectories(tiny, k=[1], time="polynomial", degree=1, min_n=2)
    with pytest.raises(ValueError, match="crosstab needs"):
        tr.crosstab()
    with pytest.raises(ValueError, match="modaltiy"):
        bpo.fit_trajectories(example_study, k=[1]).crosstab("modaltiy")


def test_constant_scores_are_refused(example_study):
    import pytest

    import backpain_outcomes as bpo
    frame = example_study.analysis_frame("nrs", include_baseline=True).assign(score=5.0)
    with pytest.raises(ValueError, match="score is 5: scores that do not vary have no trajectories"):
        bpo.fit_trajectories(frame, k=[1, 2], n_init=2)
