"""Modality comparison at a horizon."""

import numpy as np
import pytest
from conftest import tiny_study
from statsmodels.stats.proportion import proportion_confint

import backpain_outcomes as bpo
from backpain_outcomes.benchmarking import outcome_at_day
from backpain_outcomes.cli import main
from backpain_outcomes.safe_io import neutralise_formulas


def test_compare_modalities_table(example_study):
    cmp = bpo.compare_modalities(example_study, day=42, origin="first_contact")
    t = cmp.table.set_index("modality")
    for col in ("reference", "difference", "ci_low", "ci_high", "p_value", "p_holm", "responders", "responder_rate",
                "hazard_ratio", "hr_ci_low", "hr_ci_high", "n", "note"):
        assert col in t
    assert (t["reference"] == "untreated").all() and "untreated" not in t.index
    # Holm by hand: sorted p times (m - i), running maximum, capped at 1
    p = t["p_value"].sort_values()
    holm = np.minimum(np.maximum.accumulate(p.to_numpy() * (len(p) - np.arange(len(p)))), 1)
    np.testing.assert_allclose(t.loc[p.index, "p_holm"], holm)
    # ANCOVA difference equals least squares on a hand-built design (numpy lstsq, independent of patsy)
    near = outcome_at_day(example_study, "nrs", 42, "first_contact", 14)
    mods = sorted(m for m in near["modality"].unique() if m != "untreated")
    chron = sorted(near["chronicity"].unique())[1:]
    X = np.column_stack([np.ones(len(near))] + [(near["modality"] == m).to_numpy(float) for m in mods]
                        + [near["baseline"].to_numpy(float)]
                        + [(near["chronicity"] == c).to_numpy(float) for c in chron])
    beta = np.linalg.lstsq(X, near["score"].to_numpy(float), rcond=None)[0]
    np.testing.assert_allclose(t.loc[mods, "difference"].to_numpy(float), beta[1:1 + len(mods)], atol=1e-10)
    np.testing.assert_allclose(t["effect_size"], t["difference"] / near["score"].std())
    k, n = t.loc["cupping", "responders"], t.loc["cupping", "n"]
    lo, hi = proportion_confint(k, n, method="wilson")
    assert np.isclose(t.loc["cupping", "responder_ci_low"], lo) and np.isclose(t.loc["cupping", "responder_ci_high"], hi)
    ax = cmp.plot()
    assert len(ax.get_yticks()) == len(t)
    assert "Dry needling" in [x.get_text() for x in ax.get_yticklabels()]
    assert "Dry needling" in cmp.summary() and "<table" in cmp._repr_html_()
    with pytest.raises(AttributeError):
        cmp.table = None


def test_rule_as_text_and_reference_alias(example_study):
    a = bpo.compare_modalities(example_study, origin="first_contact", rule="nrs<=1 x2", reference="none")
    b = bpo.compare_modalities(example_study, origin="first_contact")
    np.testing.assert_allclose(a.table["hazard_ratio"], b.table["hazard_ratio"])
    assert a.reference == "untreated" and repr(a.rule) == repr(b.rule)


def test_small_groups_are_listed_not_compared(example_study):
    counts = outcome_at_day(example_study, "nrs", 42, "onset", 14)["modality"].value_counts()
    cut = int(counts.drop("untreated").min()) + 1
    cmp = bpo.compare_modalities(example_study, min_n=cut)
    small = cmp.table[cmp.table["n"] < cut]
    assert len(small) and small["difference"].isna().all() and small["p_holm"].isna().all()
    assert small["note"].str.contains("not compared").all() and any("not compared" in n for n in cmp.notes)
    with pytest.raises(ValueError, match="reference='untreated'.*min_n=500"):
        bpo.compare_modalities(example_study, min_n=500)


def _two_groups(untreated_scores, cupping_scores):
    rows, mods = {}, {}
    for i, s in enumerate(untreated_scores):
        rows[f"u{i}"], mods[f"u{i}"] = [(0, 6 + i % 2), (42, s)], "untreated"
    for i, s in enumerate(cupping_scores):
        rows[f"c{i}"], mods[f"c{i}"] = [(0, 6 + i % 2), (42, s)], "cupping"
    return tiny_study(rows, mods)


def test_zero_variance_outcome_gives_no_test():
    cmp = bpo.compare_modalities(_two_groups([3] * 6, [3] * 6), origin="first_contact")
    row = cmp.table.iloc[0]
    assert np.isnan(row["p_value"]) and np.isnan(row["p_holm"]) and np.isnan(row["effect_size"])
    assert np.isnan(row["ci_low"]) and any("does not vary" in n for n in cmp.notes)


def test_exact_fit_gives_no_test():
    # every untreated episode scores 4, every cupping episode 2: the model has no residual variation
    cmp = bpo.compare_modalities(_two_groups([4] * 6, [2] * 6), origin="first_contact")
    row = cmp.table.iloc[0]
    assert np.isnan(row["p_value"]) and np.isnan(row["ci_low"]) and row["difference"] == pytest.approx(-2)
    assert np.isfinite(row["effect_size"]) and any("fits every score exactly" in n for n in cmp.notes)


@pytest.mark.parametrize("kw, name", [
    ({"instrument": "pain"}, "instrument"), ({"day": 0}, "day"), ({"day": "6 weeks"}, "day"),
    ({"reference": "massage"}, "reference"), ({"adjust": ("baseline", "sex")}, "adjust"),
    ({"origin": "start"}, "origin"), ({"window": -1}, "window"), ({"rule": "nrs<<1"}, "rule"),
    ({"rule": 5}, "rule"), ({"alpha": 0}, "alpha"), ({"min_n": 0}, "min_n"),
])
def test_invalid_arguments_name_themselves(example_study, kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        bpo.compare_modalities(example_study, **kw)
    with pytest.raises(TypeError, match="study"):
        bpo.compare_modalities(example_study.episodes)


def test_cli_curves_writes_csv_png_svg(tmp_path, capsys):
    assert main(["curves", str(bpo.example_path()), "-o", str(tmp_path)]) == 0
    for name in ("recovery_curves.csv", "recovery_curves.png", "recovery_curves.svg"):
        assert (tmp_path / name).stat().st_size > 0


def test_csv_formula_injection_neutralised():
    import pandas as pd
    df = pd.DataFrame({"a": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "ok"], "b": [-1.5, 2, 3, 4, 5]})
    out = neutralise_formulas(df)
    assert out["a"].tolist() == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "ok"]
    assert out["b"].tolist() == [-1.5, 2, 3, 4, 5]


def test_scores_only_study_says_how_to_declare_untreated(example_study):
    import pandas as pd
    import pytest

    import backpain_outcomes as bpo
    scores = pd.read_csv(bpo.example_path() / "scores.csv")
    study = bpo.load_study(scores=scores, today="2026-01-01")
    with pytest.raises(ValueError, match="no_sessions='untreated'"):
        bpo.compare_modalities(study, origin="first_contact")
    untreated_only = bpo.load_study(scores=scores, today="2026-01-01", no_sessions="untreated")
    with pytest.raises(ValueError, match="no other group"):
        bpo.compare_modalities(untreated_only, origin="first_contact")
