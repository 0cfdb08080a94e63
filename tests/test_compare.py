"""Modality comparison at a horizon."""

import numpy as np
from statsmodels.stats.proportion import proportion_confint

import backpain_outcomes as bpo
from backpain_outcomes.cli import main
from backpain_outcomes.compare import _nearest
from backpain_outcomes.safe_io import neutralise_formulas


def test_compare_modalities_table(example_study):
    cmp = bpo.compare_modalities(example_study, at_day=42, origin="first_contact")
    t = cmp.table.set_index("modality")
    for col in ("reference", "difference", "ci_low", "ci_high", "p_value", "p_holm", "responders", "responder_rate",
                "hazard_ratio", "hr_ci_low", "hr_ci_high", "n"):
        assert col in t
    assert (t["p_holm"] >= t["p_value"] - 1e-12).all()
    # ANCOVA difference equals least squares on a hand-built design (numpy lstsq, independent of patsy)
    near = _nearest(example_study.analysis_frame("nrs", origin="first_contact"), 42, 14)
    mods = sorted(m for m in near["modality"].astype(str).unique() if m != "none")
    chron = sorted(c for c in near["chronicity"].astype(str).unique())[1:]
    X = np.column_stack([np.ones(len(near))] + [(near["modality"].astype(str) == m).to_numpy(float) for m in mods]
                        + [near["baseline"].to_numpy(float)]
                        + [(near["chronicity"].astype(str) == c).to_numpy(float) for c in chron])
    beta = np.linalg.lstsq(X, near["score"].to_numpy(float), rcond=None)[0]
    np.testing.assert_allclose(t.loc[mods, "difference"].to_numpy(float), beta[1:1 + len(mods)], atol=1e-10)
    k, n = t.loc["cupping", "responders"], t.loc["cupping", "n"]
    lo, hi = proportion_confint(k, n, method="wilson")
    assert np.isclose(t.loc["cupping", "responder_ci_low"], lo) and np.isclose(t.loc["cupping", "responder_ci_high"], hi)
    ax = cmp.plot()
    assert len(ax.get_yticks()) == len(t)


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
