"""The claim check: estimates against simulated truth, p-values by hand, verdicts, treatment status, C1-C4."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import backpain_outcomes as bpo
from backpain_outcomes.claims import ClaimReport, ClaimResult, claim_at_day, evaluate_seed_claims, test_resolution_claim
from backpain_outcomes.survival import kaplan_meier

FORBIDDEN = ("nan", "inf", "n/a")


def _clean(text: str) -> bool:
    words = text.lower().replace("(", " ").replace(")", " ").replace(",", " ").split()
    return not any(w.strip(".;:%") in FORBIDDEN for w in words)


@pytest.mark.parametrize("truth,expected", [(0.95, {"supported", "not refuted"}), (0.90, {"not refuted"}),
                                             (0.70, {"not supported"}), (0.30, {"not supported"})])
def test_verdict_matches_simulated_truth(truth, expected):
    study, t = bpo.simulate_study(1500, seed=11, untreated_share=0.4, untreated_resolved_by_42=truth)
    claim = test_resolution_claim(study, origin="first_contact", sensitivity=False)
    assert claim.verdict_code in expected
    # the population truth (Monte Carlo, first-contact origin as untreated_resolved_by_42) lies within the 95% CI
    true = t.cumulative_resolution(day=[42], origin="first_contact")["true_cumulative_resolution"].iloc[0]
    assert abs(true - truth) < 0.01
    assert claim.ci_low <= true <= claim.ci_high


def test_p_value_is_cloglog_z_by_hand():
    # 20 episodes, entry 0, 12 resolve on distinct days <= 42, 8 censored at 60.
    ev = pd.DataFrame({"episode_id": range(20), "entry": 0.0, "at_risk": True,
                       "day": [3, 5, 8, 10, 12, 15, 18, 20, 25, 30, 35, 40] + [60] * 8,
                       "resolved": [True] * 12 + [False] * 8})
    res = claim_at_day(ev, 0.9, 42)
    s = 8 / 20  # no censoring before day 42: S = 8/20, KM = proportion
    var_log = sum(1 / (n * (n - 1)) for n in range(20, 8, -1))
    z = (np.log(-np.log(s)) - np.log(-np.log(0.1))) / (np.sqrt(var_log) / abs(np.log(s)))
    assert res["estimate"] == pytest.approx(0.6)
    assert res["p_below"] == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert res["p_above"] == pytest.approx(stats.norm.sf(z), rel=1e-12)
    km = kaplan_meier(ev["day"], ev["resolved"])
    assert res["ci_high"] == pytest.approx(1 - km.loc[km.time == 40, "surv_low"].item())


def test_no_resolution_yet_uses_exact_bounds():
    # hand: 10 at risk, none resolved by day 42: p_below = 0.1^10, exact CI 0 to 1 - 0.025^(1/10)
    ev = pd.DataFrame({"entry": 0.0, "at_risk": True, "day": [50.0] * 10, "resolved": [True] * 10})
    res = claim_at_day(ev, 0.9, 42)
    assert res["estimate"] == 0 and res["p_below"] == pytest.approx(0.1 ** 10)
    assert res["ci_low"] == 0 and res["ci_high"] == pytest.approx(1 - 0.025 ** 0.1)


def test_claim_result_fields_and_sensitivity(example_study):
    claim = test_resolution_claim(example_study)
    assert isinstance(claim, ClaimResult)
    for attr in ("estimate", "ci_low", "ci_high", "p_value", "verdict", "n", "events", "notes", "caveats",
                 "sensitivity", "sensitivity_range", "table"):
        assert hasattr(claim, attr)
    assert claim.caveats is claim.notes
    sens = claim.sensitivity
    assert set(sens["origin"]) == {"onset", "first_contact"}
    assert set(sens["relapse"]) == {"ignore", "undo"}
    assert set(sens["day"]) == {14, 42, 84, 182, 365}
    assert {"untreated", "untreated chronic"} <= set(sens["population"])
    assert sens["rule"].nunique() >= 5
    assert any("regression to the mean" in c for c in claim.notes)
    assert claim.relapses["relapsed"] <= claim.relapses["resolved"]
    assert claim.verdict.split(":")[0] in {"Not supported", "Supported", "Not refuted", "Insufficient data"}
    assert "<li>" in claim._repr_html_()
    # the verdict states the events and episodes behind the estimate and the sensitivity range
    at42 = sens[(sens["population"] == "untreated") & (sens["day"] == 42)]["estimate"]
    lo, hi = claim.sensitivity_range
    assert (lo, hi) == (at42.min(), at42.max())
    assert f"{claim.events} resolutions by then among {claim.n} episodes at risk" in claim.verdict
    assert f"ranged from {100 * lo:.0f}% to {100 * hi:.0f}%" in claim.verdict
    row = claim.table.iloc[0]
    assert len(claim.table) == 1 and row["sensitivity_low"] == lo and row["verdict"] == claim.verdict
    assert _clean(claim.verdict) and _clean(claim.summary())
    plt.close(claim.plot().figure)
    plt.close(claim.plot_sensitivity().figure)


def test_day_beyond_follow_up_is_not_estimable_in_words(example_study):
    claim = test_resolution_claim(example_study, day=5000, sensitivity=False)
    assert claim.verdict_code == "not estimable" and claim.verdict.startswith("Not estimable: no untreated episode")
    assert "followed to day 5000" in claim.verdict and _clean(claim.verdict) and _clean(claim.summary())


def test_no_untreated_episodes_names_groups():
    study, _ = bpo.simulate_study(60, seed=2, untreated_share=0.0)
    with pytest.raises(ValueError, match="groups present: .*deep_tissue"):
        test_resolution_claim(study)


def test_scores_alone_cannot_make_an_untreated_claim(tmp_path):
    _, _, frames = bpo.simulate_study(200, seed=4, untreated_share=0.4, return_frames=True)
    episodes = frames["episodes"].drop(columns="arm")  # onsets known, treatment not recorded
    study = bpo.load_study(scores=frames["scores"], episodes=episodes, today=pd.Timestamp("2100-01-01"))
    assert set(study.episodes["treatment_status"]) == {"unknown"}
    with pytest.raises(ValueError, match="no_sessions='untreated'") as err:
        test_resolution_claim(study, sensitivity=False)
    assert "arm" in str(err.value) and "never counted as untreated" in str(err.value)
    report = evaluate_seed_claims(study)
    c1 = report.table[report.table["claim"] == "C1"]
    assert report.c1 is None and c1["verdict"].str.startswith("Cannot be assessed").all()
    assert c1["estimate"].isna().all() and any("no_sessions" in n for n in report.notes)
    declared = bpo.load_study(scores=frames["scores"], episodes=episodes, no_sessions="untreated",
                              today=pd.Timestamp("2100-01-01"))
    assert test_resolution_claim(declared, sensitivity=False).n > 0


def test_unknown_status_is_left_out_and_noted():
    _, _, frames = bpo.simulate_study(300, seed=4, untreated_share=0.4, return_frames=True)
    ep = frames["episodes"].copy()
    untreated = ep["arm"] == "untreated"
    ep.loc[untreated & (np.arange(len(ep)) % 2 == 0), "arm"] = None  # half the untreated become unknown
    study = bpo.load_study(**{**frames, "episodes": ep}, today=pd.Timestamp("2100-01-01"))
    n_unknown = int((study.episodes["treatment_status"] == "unknown").sum())
    assert n_unknown > 0
    claim = test_resolution_claim(study, sensitivity=False)
    assert any(f"{n_unknown} episode(s) of unknown treatment status were left out" in n for n in claim.notes)
    assert set(claim.events_table["treatment_status"]) == {"untreated"}


def test_small_sample_verdict_says_so():
    study, _ = bpo.simulate_study(40, seed=3, untreated_share=0.3)
    with pytest.warns(bpo.SmallSampleWarning):
        claim = test_resolution_claim(study, sensitivity=False, origin="first_contact")
    assert claim.verdict_code == "insufficient data" and claim.verdict.startswith("Insufficient data")


def test_seed_claims_report(example_study):
    rep = evaluate_seed_claims(example_study)
    assert isinstance(rep, ClaimReport) and rep.table is not None
    assert set(rep.table["claim"]) == {"C1", "C2", "C3", "C4"}
    c2 = rep.table[rep.table["claim"] == "C2"]
    assert len(c2) == 5 and c2["caveat"].str.contains("adjusted association").all()
    assert (c2["p_holm"] >= c2["p_value"] - 1e-12).all()
    assert len(rep.pairwise) == 10
    assert "C1" in rep.summary()
    assert all(_clean(v) for v in rep.table["verdict"])
    assert c2["verdict"].str.contains("resolutions by then among").all()
    plt.close(rep.plot().figure)


@pytest.mark.parametrize("func,kwargs,argument", [
    (test_resolution_claim, {"claimed": 90}, "claimed"), (test_resolution_claim, {"claimed": "90%"}, "claimed"),
    (test_resolution_claim, {"day": "6 weeks"}, "day"), (test_resolution_claim, {"day": 0}, "day"),
    (test_resolution_claim, {"rule": "nrs<<1"}, "rule"), (test_resolution_claim, {"origin": "onsett"}, "origin"),
    (test_resolution_claim, {"alpha": 5}, "alpha"), (test_resolution_claim, {"min_n": 0}, "min_n"),
    (test_resolution_claim, {"population": "untreatd"}, "population"),
    (test_resolution_claim, {"population": {"modalty": "untreated"}}, "population"),
    (test_resolution_claim, {"population": {"chronicity": "chronik"}}, "population"),
    (test_resolution_claim, {"population": 3}, "population"),
    (test_resolution_claim, {"relapse": "drop"}, "relapse"), (test_resolution_claim, {"sensitivity": "yes"}, "sensitivity"),
    (test_resolution_claim, {"sensitivity_days": ["day 1"]}, "sensitivity_days"),
    (evaluate_seed_claims, {"claimed": 90}, "claimed"), (evaluate_seed_claims, {"day": "six weeks"}, "day"),
    (evaluate_seed_claims, {"rule": "nrs<1"}, "rule"), (evaluate_seed_claims, {"origin": None}, "origin"),
    (evaluate_seed_claims, {"alpha": -0.1}, "alpha"), (evaluate_seed_claims, {"min_n": 2.5}, "min_n"),
    (evaluate_seed_claims, {"sensitivity": 1}, "sensitivity")])
def test_arguments_are_checked(example_study, func, kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as err:
        func(example_study, **kwargs)
    assert argument in str(err.value)
    assert "Traceback" not in str(err.value)


def test_misspelt_population_suggests_the_name(example_study):
    with pytest.raises(ValueError, match="did you mean 'untreated'"):
        test_resolution_claim(example_study, population="untreatd")
    with pytest.raises(ValueError, match="did you mean 0.9"):
        test_resolution_claim(example_study, claimed=90)


def test_cli_claims_exit_codes(tmp_path, capsys):
    from backpain_outcomes.cli import main
    assert main(["claims", str(bpo.example_path())]) == 0
    out = capsys.readouterr().out
    assert "[C1]" in out and "[C4]" in out
    (tmp_path / "scores.csv").write_text("patient_id,date,instrument,score\np1,2024-01-01,nrs,14\n")
    assert main(["validate", str(tmp_path)]) == 1
    assert "scores.csv:2:score: nrs score is out of range" in capsys.readouterr().out
    assert main(["claims", str(tmp_path / "nope")]) == 2
    assert main(["frobnicate"]) == 2


def test_same_day_repeats_give_the_estimate_of_the_collapsed_study():
    _, _, frames = bpo.simulate_study(400, seed=8, untreated_share=0.4, return_frames=True)
    sc = frames["scores"]
    nrs = sc[sc["instrument"] == "nrs"]
    dup = nrs.sample(frac=0.25, random_state=2)
    dup = dup.assign(score=np.clip(dup["score"] + np.random.default_rng(3).choice([-2, 2], len(dup)), 0, 10))
    repeated = pd.concat([sc, dup], ignore_index=True)
    key = ["patient_id", "episode_id", "date", "instrument"]
    collapsed = repeated.groupby(key, as_index=False, sort=False)["score"].mean()
    today = pd.Timestamp("2100-01-01")
    a = bpo.load_study(**{**frames, "scores": repeated}, today=today)
    b = bpo.load_study(**{**frames, "scores": collapsed}, today=today)
    ca = test_resolution_claim(a, sensitivity=False)
    cb = test_resolution_claim(b, sensitivity=False)
    assert (ca.estimate, ca.ci_low, ca.ci_high, ca.n, ca.events) == (cb.estimate, cb.ci_low, cb.ci_high, cb.n, cb.events)
    assert _clean(ca.verdict)
    n_rep = len(a.scores) - len(b.scores)  # the loader drops exact duplicate rows; the others are combined
    assert n_rep > 0.8 * len(dup)
    assert any(f"{n_rep} NRS measurement(s)" in n and "combined into one visit by their mean" in n for n in ca.notes)


def test_claims_table_records_how_it_was_made(example_study):
    import backpain_outcomes as bpo
    rep = bpo.evaluate_seed_claims(example_study, rule="nrs<=1 x2", day=42, claimed=0.9, alpha=0.05)
    t = rep.table
    assert set(t["rule"]) == {"nrs<=1 x2"} and set(t["origin"]) == {"onset"}
    assert set(t["claimed"]) == {0.9} and set(t["package_version"]) == {bpo.__version__}


def test_verdict_numbers_agree_with_its_words_when_the_interval_is_narrow():
    """A registry's interval is a fraction of a point wide: whole percentages would read "50% (95% CI 50%-50%)
    ... below the claimed 50%". The verdict then shows as many decimals as its words need (hand-made result
    dicts: the verdict's text depends only on these numbers)."""
    from backpain_outcomes.verdicts import verdict_text

    big = {"n": 2_000_000, "events": 998_600, "estimate": 0.4993, "ci_low": 0.49896, "ci_high": 0.49966,
           "p_below": 1e-9, "p_above": 1.0}
    code, text = verdict_text(big, 0.5, 42, "untreated", 0.05, 20)
    assert code == "not supported"
    assert text.startswith("Not supported: 49.93% (95% CI 49.90%-49.97%) of untreated episodes resolved by day 42")
    assert "below the claimed 50.00%." in text
    above = dict(big, estimate=0.5004, ci_low=0.50003, ci_high=0.50077, p_below=1.0, p_above=1e-3)
    code, text = verdict_text(above, 0.5, 42, "untreated", 0.05, 20)
    assert (code, text[:46]) == ("supported", "Supported: 50.040% (95% CI 50.003%-50.077%) of")
    # an ordinary study keeps whole percentages
    small = dict(big, n=120, events=40, estimate=0.333, ci_low=0.25, ci_high=0.42)
    assert "33% (95% CI 25%-42%)" in verdict_text(small, 0.9, 42, "untreated", 0.05, 20)[1]
