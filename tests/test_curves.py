"""Recovery curves per group (pooled fit)."""

import numpy as np
import pytest
from conftest import tiny_study

import backpain_outcomes as bpo
from backpain_outcomes.curves import data_window, fit_recovery_curves


def test_fit_recovery_curves_contract_and_bootstrap(example_study):
    c = fit_recovery_curves(example_study, origin="first_contact", progress=False)
    assert c.params is c.table
    p = c.table
    for col in ("b0", "plateau", "tau_days", "half_life_days", "b0_ci_low", "tau_days_ci_high", "n_episodes",
                "n_scores", "first_day", "last_day", "start_score", "converged", "note"):
        assert col in p
    np.testing.assert_allclose(p["half_life_days"], p["tau_days"] * np.log(2))
    assert (p["tau_days_ci_low"] < p["tau_days"]).all() and (p["tau_days"] < p["tau_days_ci_high"]).all()
    assert set(p["modality"]) == set(example_study.episodes["modality"])  # codes in the machine table
    pred = c.predict([0, 14, 42, 84])
    assert len(pred) == 4 * len(p)
    b = fit_recovery_curves(example_study, by="chronicity", origin="first_contact", se="bootstrap", n_boot=30,
                            progress=False)
    assert set(b.table["chronicity"]) <= {"acute", "subacute", "chronic"}
    ax = c.plot()
    assert ax.get_xlabel() == "days since first contact"
    assert "Untreated" in [t.get_text() for t in ax.get_legend().get_texts()]  # human labels in figures
    assert "Untreated" in c.summary() and "<table" in c._repr_html_()
    with pytest.raises(AttributeError):
        c.table = None


def test_predictions_stay_inside_the_data_and_the_range(example_study):
    c = fit_recovery_curves(example_study, progress=False)
    pred = c.predict(np.arange(0, 1300, 5.0))
    for rec in c.table.itertuples():
        g = pred[pred["modality"] == rec.modality]
        inside = g[g["in_data"]]
        assert inside["day"].min() >= rec.first_day and inside["day"].max() <= rec.last_day
        assert g.loc[~g["in_data"], "predicted"].isna().all()
    assert pred[["predicted", "ci_low", "ci_high"]].stack().dropna().between(0, 10).all()
    frame = example_study.analysis_frame("nrs", include_baseline=True)
    g = frame[frame["modality"] == "untreated"]
    first, last = data_window(g, 5)
    span = g.groupby("episode_id")["day"].agg(["min", "max"])
    assert (span["max"] >= last).sum() >= 5 and (span["max"] > last).sum() < 5
    assert (span["min"] <= first).sum() >= 5
    assert any("fewer than 5 episodes have measurements after day" in n for n in c.notes)
    s100 = fit_recovery_curves(example_study, scale="100", progress=False)
    assert s100.predict(np.arange(0, 400, 10.0))[["predicted", "ci_low", "ci_high"]].stack().dropna().between(0, 100).all()
    ax = c.plot()
    for line in ax.get_lines()[:len(c.table)]:
        assert line.get_ydata().min() >= 0 and line.get_ydata().max() <= 10


def test_small_groups_warned_not_faked(example_study):
    with pytest.warns(bpo.SmallSampleWarning):
        c = fit_recovery_curves(example_study, by=["modality", "chronicity"], origin="first_contact", min_n=15,
                                progress=False)
    small = c.table[c.table["n_episodes"] < 15]
    assert len(small) and small["b0"].isna().all() and (~small["converged"]).all()
    assert small["note"].str.contains("fewer than min_n=15").all()


def _fit_quietly(study, **kw):
    with pytest.warns(bpo.StatisticalWarning):
        return fit_recovery_curves(study, by=None, origin="first_contact", progress=False, **kw)


def _assert_not_fitted(c, why):
    row = c.table.iloc[0]
    assert not row["converged"]
    assert row[["b0", "plateau", "tau_days", "b0_ci_low", "plateau_ci_high", "tau_days_ci_low"]].isna().all()
    assert why in row["note"] and any(why in n for n in c.notes)


def test_single_measurement_per_episode_is_not_fitted():
    study = tiny_study({f"e{i}": [(0, 5 + i % 3)] for i in range(8)})
    _assert_not_fitted(_fit_quietly(study), "single measurement")


def test_all_measurements_on_one_day_are_not_identified():
    study = tiny_study({f"e{i}": [(0, 5 + i % 3), (0, 4 + i % 2)] for i in range(8)})
    _assert_not_fitted(_fit_quietly(study), "fewer than 3 distinct days")


def test_constant_scores_leave_tau_unidentified():
    study = tiny_study({f"e{i}": [(d, 4) for d in (0, 7, 14, 28, 56)] for i in range(8)})
    _assert_not_fitted(_fit_quietly(study), "flat")


def test_tau_on_its_bound_is_reported():
    # an exactly linear decline: the best exponential has an infinite time constant (tau on its upper bound)
    study = tiny_study({f"e{i}": [(d, 8 - d / 30 + (i % 2) * 0.5) for d in (0, 30, 60, 90)] for i in range(8)})
    _assert_not_fitted(_fit_quietly(study), "upper bound")


@pytest.mark.parametrize("kw, name", [
    ({"by": "modaltiy"}, "by"), ({"by": 3}, "by"), ({"instrument": "pain"}, "instrument"),
    ({"origin": "start"}, "origin"), ({"scale": "10"}, "scale"), ({"se": "robust"}, "se"),
    ({"n_boot": 0}, "n_boot"), ({"n_boot": 2.5}, "n_boot"), ({"seed": -1}, "seed"), ({"alpha": 5}, "alpha"),
    ({"min_n": 0}, "min_n"), ({"progress": "yes"}, "progress"),
])
def test_invalid_arguments_name_themselves(example_study, kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        fit_recovery_curves(example_study, **kw)


def test_invalid_study_and_prediction_days(example_study):
    with pytest.raises(TypeError, match="study"):
        fit_recovery_curves("data.csv")
    c = fit_recovery_curves(example_study, by=None, progress=False)
    for bad in (-1, "42", [np.nan]):
        with pytest.raises((ValueError, TypeError), match="day"):
            c.predict(bad)


def test_did_you_mean_and_aliases(example_study):
    with pytest.raises(ValueError, match="did you mean 'modality'"):
        fit_recovery_curves(example_study, by="modaltiy")
    a = fit_recovery_curves(example_study, by=None, instrument="NPRS", progress=False)
    assert a.instrument == "nrs"
