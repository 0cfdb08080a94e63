"""The public contract: every result has the same shape; every argument is checked at the boundary."""

import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.axes import Axes

import backpain_outcomes as bpo
from backpain_outcomes.results import Result


@pytest.fixture(scope="module")
def study():
    return bpo.simulate_study(n_patients=300, seed=3)[0]


def _all_results(study):
    """One of every public result type, built on a small simulated study."""
    rule = "nrs<=1 x2"
    out = {
        "time_to_resolution": bpo.time_to_resolution(study, rule),
        "resolution_curve": bpo.resolution_curve(study, rule, by="modality"),
        "test_resolution_claim": bpo.test_resolution_claim(study, day=42, rule=rule, sensitivity=False),
        "evaluate_seed_claims": bpo.evaluate_seed_claims(study, rule=rule),
        "fit_recovery_curves": bpo.fit_recovery_curves(study, by="modality", progress=False),
        "fit_episode_curves": bpo.fit_episode_curves(study),
        "fit_mixed_model": bpo.fit_mixed_model(study, "score ~ day + baseline", re_formula="1"),
        "compare_modalities": bpo.compare_modalities(study, day=42),
        "fit_trajectories": bpo.fit_trajectories(study, k=[1, 2], n_init=2),
    }
    out["fit_trajectories.select"] = out["fit_trajectories"].select(1)
    out["benchmark_therapists"] = bpo.benchmark_therapists(study)
    out["benchmark_clinic"] = bpo.benchmark_clinic(study, clinic="C1")
    out["claim_power"] = bpo.claim_power([50, 100], 0.7, method="formula")
    out["claim_sample_size"] = bpo.claim_sample_size(0.7, method="formula")
    out["report_content"] = bpo.report_content(study, progress=False)
    out["weighted_comparison"] = bpo.weighted_comparison(study, covariates=("age", "sex", "chronicity", "baseline"))
    out["e_value"] = bpo.e_value(1.8, 1.2, 2.6)
    out["responder_rate"] = bpo.responder_rate(study, covariates=("age", "sex", "chronicity", "baseline"))
    out["fit_grc_model"] = bpo.fit_grc_model(bpo.load_anderson1984(), by="x1", reference=1, adjust=["x2", "x3"],
                                             scale=6)
    out["table_one"] = bpo.table_one(study)
    out["recurrence"] = bpo.recurrence(bpo.simulate_recurrence(60, seed=2, recurrence_12m=0.3)[0])
    return out


def test_every_public_result_has_the_contract(study):
    results = _all_results(study)
    public_types = {obj for obj in vars(bpo).values() if isinstance(obj, type) and issubclass(obj, Result)}
    assert {type(r) for r in results.values()} >= public_types - {Result}, "a public result type is not walked"
    for name, res in results.items():
        assert isinstance(res, Result), name
        assert isinstance(res.table, pd.DataFrame) and len(res.table.columns), name
        assert isinstance(res.notes, list) and all(isinstance(n, str) for n in res.notes), name
        text = res.summary()
        assert isinstance(text, str) and len(text) > 20, name
        html = res._repr_html_()
        assert html.startswith("<") and "</" in html, name
        ax = res.plot()
        assert isinstance(ax, Axes), name
        plt.close("all")
        with pytest.raises((AttributeError, dataclasses.FrozenInstanceError)):
            res.table = pd.DataFrame()
        with pytest.raises((AttributeError, dataclasses.FrozenInstanceError)):
            res.notes = []


def test_select_returns_a_new_result(study):
    traj = bpo.fit_trajectories(study, k=[1, 2], n_init=2)
    before = traj.table.copy()
    other = traj.select(1)
    assert other is not traj
    pd.testing.assert_frame_equal(traj.table, before)


def test_rule_strings_and_instrument_aliases_work_everywhere(study):
    by_obj = bpo.test_resolution_claim(study, rule=bpo.Resolution("nrs", max_score=1, sustained=2), sensitivity=False)
    by_str = bpo.test_resolution_claim(study, rule="nrs<=1 x2", sensitivity=False)
    assert by_obj.estimate == by_str.estimate
    assert bpo.time_to_resolution(study, "NRS <= 1 x2").table.equals(
        bpo.time_to_resolution(study, bpo.DEFAULT_RULE).table)
    a = bpo.fit_recovery_curves(study, instrument="NPRS", progress=False).table
    b = bpo.fit_recovery_curves(study, instrument="nrs", progress=False).table
    pd.testing.assert_frame_equal(a, b)
    assert bpo.compare_modalities(study, instrument="Numeric Pain Rating Scale").table.equals(
        bpo.compare_modalities(study, instrument="nrs").table)


BAD_ARGUMENTS = [
    ("test_resolution_claim", {"claimed": 90}, "claimed"),
    ("test_resolution_claim", {"claimed": "90%"}, "claimed"),
    ("test_resolution_claim", {"day": "6 weeks"}, "day"),
    ("test_resolution_claim", {"day": -3}, "day"),
    ("test_resolution_claim", {"rule": "nrs<<1"}, "rule"),
    ("test_resolution_claim", {"origin": "onsett"}, "origin"),
    ("test_resolution_claim", {"alpha": 5}, "alpha"),
    ("test_resolution_claim", {"min_n": 0}, "min_n"),
    ("test_resolution_claim", {"population": "untreatd"}, "population"),
    ("resolution_curve", {"by": "modalty"}, "by"),
    ("resolution_curve", {"day": "42"}, "day"),
    ("evaluate_seed_claims", {"claimed": 90}, "claimed"),
    ("evaluate_seed_claims", {"day": "six weeks"}, "day"),
    ("fit_recovery_curves", {"by": "modalty"}, "by"),
    ("fit_recovery_curves", {"instrument": "pain"}, "instrument"),
    ("fit_recovery_curves", {"se": "robust"}, "se"),
    ("fit_recovery_curves", {"min_n": -1}, "min_n"),
    ("fit_episode_curves", {"instrument": "nrs2"}, "instrument"),
    ("fit_episode_curves", {"min_n": 0}, "min_n"),
    ("compare_modalities", {"reference": "nothing"}, "reference"),
    ("compare_modalities", {"day": "42 days"}, "day"),
    ("compare_modalities", {"alpha": 0}, "alpha"),
    ("fit_trajectories", {"k": 0}, "k"),
    ("fit_trajectories", {"k": [0, 1]}, "k"),
    ("fit_trajectories", {"instrument": "xyz"}, "instrument"),
    ("fit_mixed_model", {"groups": "episode"}, "groups"),
    ("fit_mixed_model", {"engine": "turbo"}, "engine"),
    ("benchmark_therapists", {"min_n": 0}, "min_n"),
    ("benchmark_clinic", {"clinic": "C99"}, "clinic"),
    ("report_content", {"day": "6 weeks"}, "day"),
    ("report_content", {"min_n": 0}, "min_n"),
    ("report_content", {"rule": "nrs=<1"}, "rule"),
]


@pytest.mark.parametrize("func,kwargs,argument", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(study, func, kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as err:
        getattr(bpo, func)(study, **kwargs)
    assert argument in str(err.value), str(err.value)
    assert "numpy" not in str(err.value) and "Traceback" not in str(err.value)


def test_one_number_through_api_cli_report_and_notebook(tmp_path, example_study):
    """The untreated day-42 resolution of the example study: the same value through every door."""
    import json
    import re
    from pathlib import Path

    from backpain_outcomes.cli import main

    api = bpo.test_resolution_claim(example_study, day=42, sensitivity=False).estimate
    out = tmp_path / "claims.csv"
    assert main(["claims", str(bpo.example_path()), "--day", "42", "--csv", str(out)]) == 0
    claims = pd.read_csv(out)
    cli = claims.loc[(claims["claim"] == "C1") & claims["comparison"].str.contains("day 42"), "estimate"].item()
    content = bpo.report_content(example_study, progress=False)
    report = content.numbers["untreated_resolution"]["estimate"]
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" /
                     "03_does_back_pain_resolve_on_its_own.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    notebook = float(re.search(r"UNTREATED_DAY42_ESTIMATE=([0-9.]+)", text).group(1))
    assert cli == pytest.approx(api, abs=1e-12)
    assert report == pytest.approx(api, abs=1e-12)
    assert notebook == pytest.approx(api, abs=1e-10)  # stored with 10 decimals


def test_same_day_repeats_give_one_answer_through_api_claims_cli_and_report(tmp_path):
    """Issue 10: with several scores on one day, the claim test, C1, the CLI and the report agree."""
    import shutil

    from backpain_outcomes.cli import main

    data = tmp_path / "study"
    shutil.copytree(bpo.example_path(), data)
    scores = pd.read_csv(data / "scores.csv")
    extra = scores[scores["instrument"] == "nrs"].iloc[::7].copy()
    extra["score"] = (extra["score"] + 3).clip(upper=10)         # a second, different score on the same day
    pd.concat([scores, extra]).to_csv(data / "scores.csv", index=False)
    study = bpo.load_study(data)
    assert len(study.same_day_scores) == 2 * len(extra)
    claim = bpo.test_resolution_claim(study, day=42, sensitivity=False)
    assert 0 <= claim.estimate <= 1 and "nan" not in claim.verdict and "inf" not in claim.verdict
    c1 = bpo.evaluate_seed_claims(study).table
    c1_42 = c1.loc[(c1["claim"] == "C1") & c1["comparison"].str.contains("day 42"), "estimate"].item()
    out = tmp_path / "claims.csv"
    assert main(["claims", str(data), "--csv", str(out)]) == 0
    cli = pd.read_csv(out)
    cli_42 = cli.loc[(cli["claim"] == "C1") & cli["comparison"].str.contains("day 42"), "estimate"].item()
    report = bpo.report_content(study, progress=False).numbers["untreated_resolution"]["estimate"]
    assert c1_42 == pytest.approx(claim.estimate, abs=1e-12)
    assert cli_42 == pytest.approx(claim.estimate, abs=1e-12)
    assert report == pytest.approx(claim.estimate, abs=1e-12)


def test_the_study_may_be_passed_by_keyword_to_every_dispatching_analysis(study):
    """The analyses dispatch on the study's type (in memory or a partitioned registry); the keyword form of
    the first argument, which their signatures allow, must keep working."""
    rule = "nrs<=1 x2"
    by_position = bpo.test_resolution_claim(study, day=42, rule=rule, sensitivity=False)
    by_keyword = bpo.test_resolution_claim(study=study, day=42, rule=rule, sensitivity=False)
    assert by_keyword.estimate == by_position.estimate
    assert bpo.time_to_resolution(study=study, rule=rule).table.equals(bpo.time_to_resolution(study, rule).table)
    assert bpo.resolution_curve(study=study, rule=rule).table.equals(bpo.resolution_curve(study, rule).table)
    fit = bpo.fit_mixed_model(study=study, formula="score ~ day + baseline", re_formula="1")
    assert fit.fe_params.equals(bpo.fit_mixed_model(study, "score ~ day + baseline", re_formula="1").fe_params)
    with pytest.raises(TypeError, match="study"):
        bpo.fit_recovery_curves(by="modality")
