"""Kaplan-Meier with delayed entry and the Cox model, against R and statsmodels."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

import backpain_outcomes as bpo
from backpain_outcomes.resolution import time_to_resolution
from backpain_outcomes.survival import CoxFit, cox_by_group, kaplan_meier, km_at_days, km_median

DATA = Path(__file__).parent / "data"


def km_data(seed=1, n=60):
    rng = np.random.default_rng(seed)
    entry = rng.integers(0, 20, n).astype(float)
    time = entry + rng.integers(1, 40, n)
    event = rng.random(n) < 0.7
    return time, event, entry


def test_km_matches_r_survfit_loglog():
    # R 4.x survival: survfit(Surv(entry, time, event) ~ 1, conf.type = "log-log") on km_data(1);
    # summary(f) rows 1, 6, 21, 26, 31: time, n.risk, surv, std.err, lower, upper.
    r = np.array([
        [3, 11, 0.9090909090909091, 0.0866784172041448, 0.50808020576992974, 0.986673822667823],
        [18, 44, 0.7788958297989222, 0.0893232260030911, 0.54102030659753109, 0.903352198887830],
        [36, 23, 0.4262608838667385, 0.0767332449185043, 0.27534758913207047, 0.569060714544744],
        [44, 13, 0.2392280470680675, 0.0637144045555286, 0.12741298068292470, 0.370469489045562],
        [49, 2, 0.0354411921582322, 0.0331803954613966, 0.00307208604297392, 0.145424868292850]])
    km = kaplan_meier(*km_data(1))
    got = km.iloc[[0, 5, 20, 25, 30]][["time", "n_at_risk", "survival", "se", "surv_low", "surv_high"]]
    np.testing.assert_allclose(got.to_numpy(float), r, rtol=0, atol=1e-12)
    # print(f): median 34, 0.95LCL 24, 0.95UCL 39
    assert km_median(km) == (34.0, 24.0, 39.0)


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_km_matches_statsmodels_with_ties_censoring_and_entry(seed):
    time, event, entry = km_data(seed, n=150)
    km = kaplan_meier(time, event, entry)
    sf = SurvfuncRight(time, event, entry=entry)
    np.testing.assert_allclose(km["time"], sf.surv_times)
    np.testing.assert_allclose(km["survival"], sf.surv_prob, atol=1e-12)
    np.testing.assert_allclose(km["n_at_risk"], sf.n_risk)
    ok = km["survival"] > 0
    np.testing.assert_allclose(km["se"][ok], sf.surv_prob_se[ok], atol=1e-12)


def test_km_at_days_is_the_step_function_by_hand():
    # hand: times 2, 3 (event), 3 (censored), 5; S(2) = 3/4, S(3) = 3/4 * 2/3 = 1/2; S(5) = 0
    t, e = np.array([2.0, 3, 3, 5]), np.array([True, True, False, True])
    km = kaplan_meier(t, e)
    at = km_at_days(km, [1, 2, 4, 5, 6], t, np.zeros(4), e)
    np.testing.assert_allclose(at["cumulative_resolution"].to_numpy()[:4], [0, 0.25, 0.5, 1.0])
    assert at["cumulative_resolution"].iloc[4] == 1.0  # S reached 0 at day 5 (an event) and stays 0
    e_last_censored = np.array([True, True, False, False])  # hand: S(3) = 1/2, last follow-up censored at 5
    later = km_at_days(kaplan_meier(t, e_last_censored), [5, 6], t, np.zeros(4), e_last_censored)
    assert later["cumulative_resolution"].iloc[0] == 0.5
    assert np.isnan(later["cumulative_resolution"].iloc[1])  # after the last follow-up: not defined
    assert at["n_at_risk"].tolist() == [4, 4, 1, 1, 0]
    assert at["n_events"].tolist() == [0, 1, 2, 3, 3]


def test_cox_matches_r_coxph_with_delayed_entry():
    # R 4.x: coxph(Surv(entry, day, resolved) ~ modality + baseline + chronicity, ties = "efron")
    # on tests/data/cox_r_check.csv (simulate_study(300, seed=5), onset origin, at-risk episodes;
    # the file spells the untreated group "none", its pre-1.0 name).
    d = pd.read_csv(DATA / "cox_r_check.csv")
    d = d.assign(modality=d["modality"].replace("none", "untreated"), episode_id=np.arange(len(d)), at_risk=True,
                 resolved=d["resolved"].astype(bool))
    fit = cox_by_group(d, None, "nrs<=1 x2")
    r_coef = [-0.0926522070443, -0.3213178477646, 0.3987303686855, -0.2624394281267, 0.0400797623376]
    r_se = [0.286643391427, 0.264294794376, 0.238247503265, 0.260965283450, 0.251917215021]
    assert fit.params.index.tolist() == ["cupping", "deep_tissue", "dry_needling", "swedish", "trigger_point"]
    np.testing.assert_allclose(fit.params, r_coef, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), r_se, atol=1e-6)
    np.testing.assert_allclose(fit.table["hazard_ratio"], np.exp(r_coef), rtol=1e-5)
    assert fit.formula == "day ~ C(modality, Treatment('untreated')) + baseline + C(chronicity)"
    table, params, cov = fit  # unpacks as (table, params, cov)
    assert table is fit.table and fit.n == len(d) and fit.events == int(d["resolved"].sum())


def test_cox_leaves_out_unknown_status_and_reports_degenerate_levels():
    d = pd.read_csv(DATA / "cox_r_check.csv")
    d = d.assign(modality=d["modality"].replace("none", "untreated"), episode_id=np.arange(len(d)), at_risk=True,
                 resolved=d["resolved"].astype(bool))
    d.loc[d.index[:7], "modality"] = "unknown"
    never = d["modality"] == "cupping"
    d.loc[never, "resolved"] = False  # a level without any resolution: its HR is not estimable
    fit = cox_by_group(d, None, "nrs<=1 x2")
    assert "unknown" not in fit.table["level"].tolist()
    assert any("7 episode(s) with modality 'unknown' were left out" in n for n in fit.notes)
    row = fit.table.set_index("level").loc["cupping"]
    assert np.isnan(row["hazard_ratio"]) and any("Cupping" in n and "not estimable" in n for n in fit.notes)


def test_cox_without_reference_is_empty_with_a_reason(sim):
    study, _ = sim
    ev = time_to_resolution(study)
    fit = cox_by_group(ev.table[ev.table["modality"] != "untreated"], study, "nrs<=1 x2")
    assert isinstance(fit, CoxFit) and not fit.fitted and "reference level" in fit.notes[0]
    assert cox_by_group(ev, study, bpo.DEFAULT_RULE, reference="none").fitted  # "none" is an alias of untreated


@pytest.mark.parametrize("kwargs,argument", [
    ({"by": "modalty"}, "by"), ({"reference": "nothing"}, "reference"), ({"adjust": ("age",)}, "adjust"),
    ({"alpha": 5}, "alpha"), ({"rule": "nrs<<1"}, "rule"), ({"events": "table"}, "events")])
def test_cox_arguments_are_checked(sim, kwargs, argument):
    study, _ = sim
    args = {"events": time_to_resolution(study), "study": study, "rule": "nrs<=1 x2", **kwargs}
    with pytest.raises((ValueError, TypeError)) as err:
        cox_by_group(**args)
    assert argument in str(err.value)


@pytest.mark.parametrize("kwargs,argument", [
    ({"alpha": 0}, "alpha"), ({"entry": [0, 0]}, "entry"), ({"time": [1, np.nan, 3]}, "time")])
def test_kaplan_meier_arguments_are_checked(kwargs, argument):
    args = {"time": [1.0, 2.0, 3.0], "event": [True, False, True], **kwargs}
    with pytest.raises((ValueError, TypeError)) as err:
        kaplan_meier(**args)
    assert argument in str(err.value)
