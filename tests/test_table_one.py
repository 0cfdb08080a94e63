"""Table 1: numbers against plain pandas, SMDs against Yang & Dalton's formula by hand, missing counts."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import backpain_outcomes as bpo
from backpain_outcomes.export import publication_table, to_docx, to_latex, to_markdown
from backpain_outcomes.table_one import TableOne, categorical_smd, continuous_smd, table_one


@pytest.fixture(scope="module")
def t1(example_study):
    return table_one(example_study, test=True)


def _row(t, variable, group, level=""):
    tab = t.table
    return tab[(tab["variable"] == variable) & (tab["group"] == group) & (tab["level"] == level)].iloc[0]


def test_numbers_match_plain_pandas(example_study, t1):
    ep = example_study.episodes
    by = ep.groupby("modality")
    for mod, g in by:
        age = g["age"].astype(float)
        assert _row(t1, "episodes", mod)["count"] == len(g)
        assert _row(t1, "patients", mod)["count"] == g["patient_id"].nunique()
        assert _row(t1, "age", mod)["mean"] == pytest.approx(age.mean())
        assert _row(t1, "age", mod)["sd"] == pytest.approx(age.std())  # pandas: n - 1, like R's sd()
        for sex, n in g["sex"].value_counts().items():
            assert _row(t1, "sex", mod, sex)["count"] == n
            assert _row(t1, "sex", mod, sex)["percent"] == pytest.approx(100 * n / g["sex"].notna().sum())
        base = g["baseline_nrs"]  # the study's own baseline (first NRS of the episode)
        assert _row(t1, "baseline_nrs", mod)["mean"] == pytest.approx(base.mean())
        sessions = _row(t1, "n_sessions", mod)  # R's quantile type 7 = pandas' linear interpolation
        assert [sessions["median"], sessions["q1"], sessions["q3"]] == pytest.approx(
            g["n_sessions"].quantile([0.5, 0.25, 0.75]).tolist())
        chronic = (g["chronicity"].astype(str) == "chronic").sum()
        assert _row(t1, "chronicity", mod, "chronic")["count"] == chronic
    assert _row(t1, "episodes", "overall")["count"] == len(ep)
    assert t1.groups[0] == "untreated"  # vocabulary order, the reference first


def test_p_values_match_textbook_tests(example_study, t1):
    ep = example_study.episodes
    groups = [g["age"].astype(float).to_numpy() for _, g in ep.groupby("modality")]
    # one-way ANOVA by hand: F = (SSB / (k - 1)) / (SSW / (n - k))
    allx = np.concatenate(groups)
    ssb = sum(len(g) * (g.mean() - allx.mean()) ** 2 for g in groups)
    ssw = sum(((g - g.mean()) ** 2).sum() for g in groups)
    k, n = len(groups), len(allx)
    p_age = stats.f.sf((ssb / (k - 1)) / (ssw / (n - k)), k - 1, n - k)
    comp = t1.comparisons.set_index("variable")
    assert comp.loc["age", "p_value"] == pytest.approx(p_age)
    assert comp.loc["age", "test"] == "one-way ANOVA"
    # Pearson chi-square by hand on the sex x modality table (no continuity correction beyond 2 x 2)
    obs = pd.crosstab(ep["sex"], ep["modality"]).to_numpy(float)
    exp = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert comp.loc["sex", "p_value"] == pytest.approx(stats.chi2.sf(chi2, (obs.shape[0] - 1) * (obs.shape[1] - 1)))
    assert comp.loc["n_sessions", "test"] == "Kruskal-Wallis"
    assert table_one(example_study).comparisons["p_value"].isna().all()  # off by default


def test_smd_formulas_by_hand():
    a, b = np.array([1, 1, 1, 0, 0, 0], bool), np.array([0, 0, 0, 1, 1, 1], bool)
    # continuous: |2 - 4| / sqrt((1 + 4) / 2) for a = (1, 2, 3), b = (2, 4, 6)
    x = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 6.0])
    assert continuous_smd(x, a, b) == pytest.approx(2 / np.sqrt(2.5))
    assert np.isnan(continuous_smd(np.array([1.0, 2, 3, np.nan, np.nan, np.nan]), a, b))  # a group without values
    # binary (Yang & Dalton 2012, eq. for proportions): (2/3 - 1/3) / sqrt((2/9 + 2/9) / 2)
    sex = np.array(["m", "f", "f", "m", "m", "f"], dtype=object)
    assert categorical_smd(sex, a, b) == pytest.approx((1 / 3) / np.sqrt(2 / 9))
    # three levels, first level dropped: p_a = (y 1/4, z 1/4), p_b = (y 1/2, z 1/4)
    # S = ((diag p_a - p_a p_a') + (diag p_b - p_b p_b')) / 2 = [[7/32, -3/32], [-3/32, 3/16]]
    # d' S^-1 d = (1/16) * (3/16) / det(S), det(S) = 33/1024  ->  4/11, SMD = 2 / sqrt(11)
    v = np.array(["x", "x", "y", "z", "x", "y", "y", "z"], dtype=object)
    g1, g2 = np.arange(8) < 4, np.arange(8) >= 4
    assert categorical_smd(v, g1, g2) == pytest.approx(2 / np.sqrt(11))
    assert categorical_smd(np.array(["f"] * 6, dtype=object), a, b) == 0.0  # one level: no difference


def test_smds_of_the_example_match_r(t1):
    # R 4.2, written from Yang & Dalton's formula as tableone's modules-smd.R computes it: for each pair of the six
    # modalities, categorical sqrt(d' MASS::ginv(S) d) (first level dropped, S the mean of the two multinomial
    # covariances), continuous |mean_a - mean_b| / sqrt((var_a + var_b) / 2); mean and max over the 15 pairs
    expected = {"sex": (0.143892, 0.354787), "chronicity": (0.216498, 0.326814), "clinic_id": (0.163045, 0.374782),
                "age": (0.082034, 0.192867)}
    comp = t1.comparisons.set_index("variable")
    for var, (mean, largest) in expected.items():
        assert comp.loc[var, "smd"] == pytest.approx(mean, abs=1e-6), var
        assert comp.loc[var, "smd_max"] == pytest.approx(largest, abs=1e-6), var
        assert comp.loc[var, "n_pairs"] == 15


def _small_study():
    rows = [("e1", "p1", "untreated", 30.0, "female", 6), ("e2", "p2", "untreated", 40.0, None, 7),
            ("e3", "p3", "cupping", 50.0, "male", 5), ("e4", "p4", "cupping", np.nan, "female", 8),
            ("e5", "p5", "swedish", 60.0, "male", 4), ("e6", "p6", "swedish", 70.0, "male", 6)]
    d0 = pd.Timestamp("2024-03-01")
    patients = pd.DataFrame({"patient_id": [r[1] for r in rows], "age": [r[3] for r in rows],
                             "sex": [r[4] for r in rows], "clinic_id": ["c_1"] * 6})
    episodes = pd.DataFrame({"episode_id": [r[0] for r in rows], "patient_id": [r[1] for r in rows],
                             "onset_date": [d0 - pd.Timedelta(days=10 * (i + 1)) for i in range(6)],
                             "arm": ["untreated" if r[2] == "untreated" else None for r in rows]})
    scores = pd.DataFrame([{"episode_id": r[0], "patient_id": r[1], "date": d0 + pd.Timedelta(days=d),
                            "instrument": "nrs", "score": float(r[5] - d // 7)} for r in rows for d in (0, 14)])
    sessions = pd.DataFrame([{"patient_id": r[1], "episode_id": r[0], "modality": r[2], "session_date": d0}
                             for r in rows if r[2] != "untreated"])
    return bpo.load_study(patients=patients, episodes=episodes, scores=scores, sessions=sessions, today="2026-01-01")


def test_missing_values_are_counted_per_group_and_left_out_of_percentages():
    t = table_one(_small_study(), min_n=1)  # groups of two episodes: described here, to check the numbers
    assert t.groups == ["untreated", "swedish", "cupping"]
    assert _row(t, "age", "cupping")[["n", "missing"]].tolist() == [1, 1]
    assert _row(t, "age", "cupping")["mean"] == 50.0
    assert _row(t, "sex", "untreated", "female")[["count", "n", "missing", "percent"]].tolist() == [1, 1, 1, 100.0]
    # chronicity: onset 10..60 days before first contact -> 10, 20, 30 acute; 40 acute; 50, 60 subacute
    assert _row(t, "chronicity", "swedish", "subacute")["count"] == 2
    pub = t.formatted
    assert pub.loc[pub["Characteristic"] == "Age (years), mean (SD)", "Missing, n (%)"].item() == "1 (16.7)"
    assert pub.loc[pub["Characteristic"] == "    c_1", "Overall"].item() == "6 (100.0)"
    # age: the cupping group has one age (no SD), so two of the three pairwise SMDs do not exist; tableone's
    # mean of the pairs is then NA, and so is the largest
    comp = t.comparisons.set_index("variable")
    assert comp.loc["age", "n_pairs"] == 1 and np.isnan(comp.loc["age", ["smd", "smd_max"]].astype(float)).all()
    assert any(n.startswith("SMD not estimable for Age (years)") for n in t.notes)
    # baseline NRS: 6, 7 | 4, 6 | 5, 8 (first scores); every pair estimable
    base = {"untreated": [6.0, 7.0], "swedish": [4.0, 6.0], "cupping": [5.0, 8.0]}
    pairs = [abs(np.mean(base[a]) - np.mean(base[b])) / np.sqrt((np.var(base[a], ddof=1) + np.var(base[b], ddof=1))
                                                                / 2)
             for a, b in [("untreated", "swedish"), ("untreated", "cupping"), ("swedish", "cupping")]]
    assert comp.loc["baseline_nrs", "smd"] == pytest.approx(np.mean(pairs))
    assert comp.loc["baseline_nrs", "smd_max"] == pytest.approx(max(pairs))


def test_skewed_variables_show_median_and_options(example_study, t1):
    assert t1.comparisons.set_index("variable").loc["n_sessions", "statistic"] == "median_iqr"
    assert t1.comparisons.set_index("variable").loc["age", "statistic"] == "mean_sd"
    forced = table_one(example_study, nonnormal=["age"], smd=False)
    assert forced.comparisons.set_index("variable").loc["age", "statistic"] == "median_iqr"
    assert "SMD" not in forced.formatted.columns
    assert any(c.startswith("Age (years), median [IQR]") for c in forced.formatted["Characteristic"])
    by_chronicity = table_one(example_study, by="chronicity", origin="first_contact")
    assert by_chronicity.groups == ["acute", "subacute", "chronic"]
    with pytest.raises(ValueError, match="by="):
        table_one(example_study, by="colour")
    with pytest.raises(ValueError, match="one column"):
        table_one(example_study, by=["modality", "sex"])
    with pytest.raises(ValueError, match="nonnormal"):
        table_one(example_study, nonnormal=["sex"])
    with pytest.raises(ValueError, match="instrument"):
        table_one(example_study, instrument="grip strength")


def test_exports_as_a_publication_table(t1, tmp_path):
    assert isinstance(t1, TableOne) and isinstance(t1, bpo.Result)
    with pytest.raises(AttributeError):
        t1.by = "sex"
    pub = publication_table(t1)
    assert list(pub.columns[:3]) == ["Characteristic", "Untreated", "Deep tissue"]
    assert pub.attrs["title"] == "Baseline characteristics by modality"
    md = to_markdown(t1)
    age = _row(t1, "age", "cupping")
    assert f"{age['mean']:.2f} ({age['sd']:.2f})" in md
    assert "Chronic (&gt;= 12 weeks)" in md and r"Chronic (\textgreater{}= 12 weeks)" in to_latex(t1)
    import docx
    table = docx.Document(str(to_docx(t1, tmp_path / "t1.docx"))).tables[0]
    assert [c.text for c in table.rows[0].cells] == list(pub.columns)
    assert len(table.rows) == len(pub) + 1
    assert "Baseline characteristics by modality" in t1.summary()
    assert t1.plot() is not None


def test_by_refuses_identifiers_and_numeric_columns(example_study):
    with pytest.raises(ValueError, match=r"by='patient_id' is a column with 500 levels; .* at most 20 groups .* "
                                         r"choose from .*modality.*treatment_status.*clinic_id"):
        table_one(example_study, by="patient_id")
    with pytest.raises(ValueError, match=r"by='age' is a numeric column with 60 levels"):  # 60: nunique of age
        table_one(example_study, by="age")
    assert table_one(example_study, by="treatment_status").groups == ["treated", "untreated"]


def test_small_groups_are_suppressed_not_described():
    t = table_one(_small_study())  # min_n=5 by default; every modality has two episodes, Overall six
    assert t.suppressed == ["untreated", "swedish", "cupping"]
    assert set(t.table.loc[t.table["variable"] == "age", "group"]) == {"overall"}
    assert _row(t, "episodes", "cupping")["count"] == 2  # the counts stay
    pub = t.formatted
    age = pub[pub["Characteristic"] == "Age (years), mean (SD)"].iloc[0]
    assert age["Cupping"] == "suppressed (n < 5)" and age["Overall"] == "50.00 (15.81)"  # ages 30..70 by hand
    assert pub.loc[pub["Characteristic"] == "    Female", "Cupping"].tolist() == [""]
    assert t.comparisons["smd"].isna().all() and any(n.startswith("fewer than min_n=5 episodes in untreated (2)")
                                                     for n in t.notes)
    with pytest.raises(ValueError, match="min_n"):
        table_one(_small_study(), min_n=0)


def test_patients_with_several_episodes_are_noted_and_identifiers_kept(example_study):
    assert not any("more than one episode" in n for n in table_one(example_study).notes)  # one per patient
    study = _small_study()
    twice = study.episodes.copy()
    twice.loc[twice["episode_id"].isin(["e2", "e4"]), "patient_id"] = "p1"  # p1 now has three episodes
    object.__setattr__(study, "episodes", twice)
    t = table_one(study, min_n=1)
    assert "rows are episodes: 1 patient(s) have more than one episode (3 episodes in all)" in " ".join(t.notes)
    assert "    c_1" in t.formatted["Characteristic"].tolist()  # a clinic id is not a vocabulary code
    assert {"Untreated", "Swedish", "Cupping"} <= set(t.formatted.columns)
    assert "c_1" in table_one(study, by="clinic_id", min_n=1).formatted.columns
