"""The claim check: estimates against simulated truth, p-values by hand, verdicts."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import backpain_outcomes as bpo
from backpain_outcomes.claims import claim_at_day
from backpain_outcomes.survival import kaplan_meier


@pytest.mark.parametrize("truth,expected", [(0.95, {"supported", "not refuted"}), (0.90, {"not refuted"}),
                                             (0.70, {"not supported"}), (0.30, {"not supported"})])
def test_verdict_matches_simulated_truth(truth, expected):
    study, t = bpo.simulate_study(1500, seed=11, untreated_share=0.4, untreated_resolved_by_42=truth)
    claim = bpo.test_resolution_claim(study, origin="first_contact", sensitivity=False)
    assert claim.verdict_code in expected
    # the population truth (Monte Carlo) lies within the 95% CI
    true = t.cumulative_resolution(days=[42])["true_cumulative_resolution"].iloc[0]
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


def test_claim_result_fields_and_sensitivity(example_study):
    claim = bpo.test_resolution_claim(example_study)
    for attr in ("estimate", "ci_low", "ci_high", "p_value", "verdict", "n", "events", "caveats", "sensitivity"):
        assert hasattr(claim, attr)
    sens = claim.sensitivity
    assert set(sens["origin"]) == {"onset", "first_contact"}
    assert set(sens["relapse"]) == {"ignore", "undo"}
    assert set(sens["day"]) == {14, 42, 84, 182, 365}
    assert {"untreated", "untreated chronic"} <= set(sens["population"])
    assert sens["rule"].nunique() >= 5
    assert any("regression to the mean" in c for c in claim.caveats)
    assert claim.relapses["relapsed"] <= claim.relapses["resolved"]
    assert claim.verdict.split(":")[0] in {"Not supported", "Supported", "Not refuted", "Insufficient data"}
    assert "<li>" in claim._repr_html_()


def test_no_untreated_episodes_names_groups(tmp_path):
    study, _ = bpo.simulate_study(60, seed=2, untreated_share=0.0)
    with pytest.raises(ValueError, match="groups present: .*deep_tissue"):
        bpo.test_resolution_claim(study)


def test_small_sample_verdict_says_so():
    study, _ = bpo.simulate_study(40, seed=3, untreated_share=0.3)
    with pytest.warns(bpo.SmallSampleWarning):
        claim = bpo.test_resolution_claim(study, sensitivity=False, origin="first_contact")
    assert claim.verdict_code == "insufficient data" and claim.verdict.startswith("Insufficient data")


def test_cox_matches_r_coxph_with_delayed_entry():
    # R 4.x: coxph(Surv(entry, day, resolved) ~ modality + baseline + chronicity, ties = "efron")
    # on tests/data/cox_r_check.csv (simulate_study(300, seed=5), onset origin, at-risk episodes;
    # the file spells the untreated group "none", its pre-1.0 name).
    from backpain_outcomes.survival import cox_by_group
    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "cox_r_check.csv")
    d = d.assign(modality=d["modality"].replace("none", "untreated"), episode_id=np.arange(len(d)), at_risk=True,
                 resolved=d["resolved"].astype(bool))
    fit = cox_by_group(d, None, "nrs<=1 x2")
    r_coef = [-0.0926522070443, -0.3213178477646, 0.3987303686855, -0.2624394281267, 0.0400797623376,
              0.0901537723048]
    r_se = [0.286643391427, 0.264294794376, 0.238247503265, 0.260965283450, 0.251917215021, 0.049827519267]
    assert fit.params.index.tolist() == ["cupping", "deep_tissue", "dry_needling", "swedish", "trigger_point"]
    np.testing.assert_allclose(fit.params, r_coef[:5], atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), r_se[:5], atol=1e-6)
    np.testing.assert_allclose(fit.table["hazard_ratio"], np.exp(r_coef[:5]), rtol=1e-5)
    assert fit.formula == "day ~ C(modality, Treatment('untreated')) + baseline + C(chronicity)"
    table, params, cov = fit  # unpacks as (table, params, cov)
    assert table is fit.table


def test_seed_claims_report(example_study):
    rep = bpo.evaluate_seed_claims(example_study)
    assert set(rep.table["claim"]) == {"C1", "C2", "C3", "C4"}
    c2 = rep.table[rep.table["claim"] == "C2"]
    assert len(c2) == 5 and c2["caveat"].str.contains("adjusted association").all()
    assert (c2["p_holm"] >= c2["p_value"] - 1e-12).all()
    assert len(rep.pairwise) == 10
    assert "C1" in rep.summary()


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
