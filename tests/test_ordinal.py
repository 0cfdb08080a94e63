"""Global rating of change: the instrument (coding, range, refused by the analyses of levels) and the proportional
odds model, checked against closed forms and statsmodels fitted directly."""

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY
from statsmodels.miscmodels.ordinal_model import OrderedModel

import backpain_outcomes as bpo
from backpain_outcomes.datasets import ANDERSON_SCALE, anderson1984_path, load_anderson1984
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.instruments import score_100
from backpain_outcomes.ordinal import COLUMNS, fit_grc_model
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


# ---------------------------------------------------------------------------------------------- the model
def _two_groups(better_a=30, worse_a=10, better_b=15, worse_b=25, early=False):
    """Cupping (A) against untreated (B), one rating per patient (1 or 2) 29 days after the first session;
    ``early``: also a rating 10 days after the first session (3 for 30 of A and 10 of B, else 4)."""
    rows, sessions = [], []
    for grp, nb, nw, first in (("cupping", better_a, worse_a, 30), ("no treatment", better_b, worse_b, 10)):
        for i in range(nb + nw):
            pid = f"{grp[0]}{i}"
            rows.append({"patient_id": pid, "date": "2024-03-01", "instrument": "grc", "score": 1 if i < nb else 2})
            if early:
                rows.append({"patient_id": pid, "date": "2024-02-11", "instrument": "grc",
                             "score": 3 if i < first else 4})
            sessions.append({"patient_id": pid, "session_date": "2024-02-01", "modality": grp})
    return bpo.load_study(scores=pd.DataFrame(rows), sessions=pd.DataFrame(sessions), today=TODAY)


def test_two_categories_give_the_odds_ratio_of_the_two_by_two_table():
    # by hand: odds of the better category 30/10 = 3 (cupping) and 15/25 = 0.6 (untreated): OR 5, log OR ln 5;
    # Woolf's SE sqrt(1/30 + 1/10 + 1/15 + 1/25) = sqrt(0.24) is the logistic MLE's
    res = fit_grc_model(_two_groups())
    row = res.table.iloc[0]
    assert (row["term"], row["group"], row["reference"], row["n"]) == ("modality[cupping]", "cupping", "untreated", 40)
    assert row["estimate"] == pytest.approx(np.log(5), abs=1e-5)
    assert row["se"] == pytest.approx(np.sqrt(0.24), abs=1e-4)
    assert row["odds_ratio"] == pytest.approx(5, rel=1e-4)
    assert row["or_ci_low"] == pytest.approx(np.exp(np.log(5) - 1.959964 * np.sqrt(0.24)), rel=1e-3)
    # the one threshold is minus the log odds of the better category in the reference group: -ln(0.6)
    assert res.thresholds["threshold"].iat[0] == pytest.approx(-np.log(0.6), abs=1e-5)
    d = res.distribution.set_index("group")
    assert d.loc["cupping", ["very much better", "much better", "improved"]].tolist() == [30, 10, 40]
    assert res.converged and res.n == 80 and "not causal effects" in res.notes[-1]


def test_anderson_data_load_and_agree_with_statsmodels_fitted_directly():
    study = load_anderson1984()
    assert study.rows_read == {"patients": 101, "scores": 101} and len(study.exclusions) == 0
    raw = pd.read_csv(anderson1984_path())
    # rating = 7 - pain_code: complete relief (pain_code 6) is rating 1; improved = ratings 1-2 = pain_code 5-6
    assert (study.scores.set_index("patient_id")["score"].sort_index()
            == (7 - raw.set_index(raw["id"].astype(str))["pain_code"]).sort_index()).all()
    res = fit_grc_model(study, by="x1", reference=1, adjust=["x2", "x3"], scale=ANDERSON_SCALE)
    # the same model fitted directly: Anderson's own coding (higher pain_code = better), x1 as an indicator
    x = pd.DataFrame({"x1[2]": (raw["x1"] == 2).astype(float), "x2": raw["x2"].astype(float),
                      "x3": raw["x3"].astype(float)})
    direct = OrderedModel(pd.Categorical(raw["pain_code"], ordered=True), x, distr="logit").fit(
        method="bfgs", disp=False)
    assert res.table["estimate"].to_numpy() == pytest.approx(direct.params[:3].to_numpy(), abs=1e-4)
    assert res.table["se"].to_numpy() == pytest.approx(direct.bse[:3].to_numpy(), abs=1e-3)
    assert res.llf == pytest.approx(direct.llf, abs=1e-6)
    assert res.thresholds["threshold"].to_numpy() == pytest.approx(
        direct.model.transform_threshold_params(direct.params)[1:-1], abs=1e-4)
    # improved (marked improvement or complete relief) per group, counted by hand with pandas: 27/39 and 17/62
    d = res.distribution.set_index("group")
    counted = raw.assign(imp=raw["pain_code"] >= 5).groupby("x1")["imp"].agg(["sum", "count"])
    assert d[["improved", "n"]].values.tolist() == counted.values.tolist() == [[27, 39], [17, 62]]
    assert list(d.columns[2:8]) == list(ANDERSON_SCALE)
    assert int(d["improved"].sum()) == 44  # the data README: marked improvement or better 44/101


def test_the_rating_nearest_a_day_within_the_window():
    study = _two_groups(early=True)
    last = fit_grc_model(study)  # the last ratings (day 29 after first contact): the two-by-two table above
    assert last.table["odds_ratio"].iat[0] == pytest.approx(5, rel=1e-4)
    # "no treatment" is not a session: untreated first contact is the day-0 rating; cupping rates on days 10 and 29
    near = fit_grc_model(study, day=5, origin="first_contact", window=5)  # the early ratings: 3 against 4
    assert near.distribution.set_index("group")[["a little better", "no change"]].values.tolist() == [[10, 30], [30, 10]]
    assert near.table["odds_ratio"].iat[0] == pytest.approx((30 / 10) / (10 / 30), rel=1e-4)  # by hand: 9
    assert near.notes[0] == ("One rating per episode: the rating nearest day 5 (days since first contact, within 5 "
                             "days).")
    with pytest.raises(ValueError, match="origin='onset' needs the onset date"):
        fit_grc_model(study, day=12)
    nothing = fit_grc_model(study, day=40, origin="first_contact", window=25)  # the late ratings
    assert nothing.n == 80 and nothing.table["odds_ratio"].iat[0] == pytest.approx(5, rel=1e-4)


def test_degenerate_groups_and_bad_arguments():
    # every cupping rating in the best category: an infinite odds ratio, shown but not modelled
    study = _two_groups(better_a=20, worse_a=0)
    with pytest.raises(ValueError, match="fewer than two groups of modality can be modelled"):
        fit_grc_model(study)
    with pytest.raises(ValueError, match="every rating of the reference group Cupping lies in one extreme"):
        fit_grc_model(study, reference="cupping")
    study = _two_groups(better_a=3, worse_a=1)
    with pytest.raises(ValueError, match="fewer than min_n=5"):
        fit_grc_model(study, reference="cupping")
    with pytest.raises(ValueError, match="fewer than two groups"):
        fit_grc_model(study)
    res = fit_grc_model(study, min_n=4)
    assert res.converged and res.distribution["n"].tolist() == [40, 4]
    bad = {"scale": 1, "by": ["modality", "sex"], "adjust": ["modality"], "link": "cloglog", "alpha": 5,
           "reference": "swedish", "window": 0}
    messages = {"scale": "scale must have 2 to 7 points", "by": "by must name one column",
                "adjust": "already the grouping column", "link": "link", "alpha": "alpha",
                "reference": "reference='swedish' has no rated episodes", "window": "window"}
    for arg, value in bad.items():
        with pytest.raises((ValueError, TypeError), match=messages[arg]):
            fit_grc_model(study, min_n=4, **{arg: value})
    with pytest.raises(ValueError, match="scale: ratings up to 6 were recorded but the scale has 5 points"):
        fit_grc_model(load_anderson1984(), by="x1", scale=5)
    no_grc = bpo.load_study(bpo.example_path())
    with pytest.raises(ValueError, match="no global ratings of change"):
        fit_grc_model(no_grc)


def test_the_result_contract():
    res = fit_grc_model(load_anderson1984(), by="x2", adjust=["x1", "x3"], scale=ANDERSON_SCALE)
    assert list(res.table.columns) == COLUMNS and res.table["term"].tolist() == ["x2[2]", "x2[3]", "x1", "x3"]
    assert "Reference: x2 = 1 (the first level" in " ".join(res.notes)
    assert "Global rating of change" in res.summary() and "<table" in res._repr_html_()
    assert res.plot().get_xlabel() == "share of rated episodes"
    with pytest.raises(AttributeError):
        res.table = None
    # per-cut logistic fits: one row per term and cut; the cut where one group alone is 'worse' is not estimable
    assert len(res.cuts) == 4 * 5 and res.cuts["cut"].iat[0] == "rating 5 (same) or better"
