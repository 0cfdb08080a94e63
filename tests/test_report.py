"""Clinic report: content, privacy, escaping, suppression, and a real-browser PDF."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.cli import main
from backpain_outcomes.disclosure import mask_small_numbers, suppress_counts

SECTIONS = ["1. Summary", "2. Data quality", "3. Patients at baseline by modality", "4. Outcomes by modality",
            "5. Does back pain resolve on its own? (claim check)", "6. Therapist benchmarking",
            "7. Methods and limitations"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The example study with a script as a therapist id and an injected clinic name."""
    _, _, frames = bpo.simulate_study(300, seed=21, return_frames=True)
    frames["sessions"]["therapist_id"] = "staff-" + frames["sessions"]["therapist_id"]
    frames["sessions"].loc[frames["sessions"]["therapist_id"] == "staff-T01", "therapist_id"] = "<script>alert(1)</script>"
    frames["patients"]["clinic_id"] = frames["patients"]["clinic_id"].replace("C1", "<b>C1</b>")
    return bpo.load_study(**frames), frames


@pytest.fixture(scope="module")
def report_html(example_study, tmp_path_factory):
    out = bpo.clinic_report(example_study, tmp_path_factory.mktemp("r") / "report.html", progress=False)
    return out.read_text(encoding="utf-8")


def test_sections_figures_alt_text_and_self_contained(report_html):
    for title in SECTIONS:
        assert title.replace("?", "?") in report_html
    imgs = re.findall(r"<img [^>]*>", report_html)
    assert len(imgs) >= 3 and all('alt="' in i and 'alt=""' not in i for i in imgs)
    assert report_html.count("<figcaption>") == len(imgs)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report_html)
    assert "@import" not in report_html and "<link" not in report_html and "<script" not in report_html
    assert "size: A4" in report_html and 'name="viewport"' in report_html
    assert "Not supported" in report_html  # the C1 verdict on the example study


def test_no_patient_or_episode_identifiers(report_html, example_study):
    ids = set(example_study.episodes["patient_id"]) | set(example_study.episodes["episode_id"])
    found = [i for i in ids if re.search(rf"\b{re.escape(i)}\b", report_html)]
    assert not found


def test_strings_from_data_are_escaped(hostile, tmp_path):
    study, _ = hostile
    html = bpo.clinic_report(study, tmp_path / "r.html", show_therapists=True, progress=False).read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html_c = bpo.clinic_report(study, tmp_path / "c.html", clinic="<b>C1</b>", progress=False).read_text()
    assert "<b>C1</b>" not in html_c and "&lt;b&gt;C1&lt;/b&gt;" in html_c


def test_therapists_anonymised_by_default(hostile, tmp_path):
    study, frames = hostile
    html = bpo.clinic_report(study, tmp_path / "r.html", progress=False).read_text()
    real = set(frames["sessions"]["therapist_id"])
    assert not any(t in html for t in real if t.startswith("staff-"))
    assert re.search(r"<td>T1</td>", html)


def test_small_cells_hidden_with_complementary_suppression():
    counts = pd.DataFrame({"a": [10, 3, 12], "b": [8, 9, 7]}, index=["x", "y", "z"])
    out = suppress_counts(counts, 5)
    assert out.loc["y", "a"] == "<5"
    # row y has one hidden cell and a published total: a second cell in row y must be hidden too
    assert out.loc["y", "b"] == "<5"
    # column a then has one hidden cell in that column? (y) -> the smallest other (x, 10) is hidden as well
    assert (out["a"] == "<5").sum() >= 2
    assert out.loc["Total", "Total"] == str(counts.to_numpy().sum())
    assert mask_small_numbers("only 3 untreated chronic episodes") == "only <5 untreated chronic episodes"


def test_min_cell_in_report(tmp_path):
    study, _ = bpo.simulate_study(60, seed=4)
    html = bpo.clinic_report(study, tmp_path / "r.html", progress=False, min_cell=10).read_text()
    assert "&lt;10" in html and "Counts under 10" in html
    # the data-quality and baseline tables publish no count from 1 to 9
    for section in ("data-quality", "baseline"):
        block = html.split(f'id="{section}"')[1].split("</section>")[0]
        assert not [c for c in re.findall(r"<td>(\d+)</td>", block) if 0 < int(c) < 10]


def test_cli_report_and_csv_injection(tmp_path, capsys):
    assert main(["report", str(bpo.example_path()), "-o", str(tmp_path / "rep.html")]) == 0
    assert (tmp_path / "rep.html").stat().st_size > 10000
    assert "report written to" in capsys.readouterr().out
    assert main(["claims", str(bpo.example_path()), "--csv", str(tmp_path / "claims.csv")]) == 0
    text = (tmp_path / "claims.csv").read_text()
    cells = pd.read_csv(tmp_path / "claims.csv", dtype=str).fillna("").to_numpy().ravel()
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert text


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                    reason="needs Debian's chromium and poppler-utils (installed by .ci/run)")
def test_real_browser_png_and_pdf(example_study, tmp_path):
    html = bpo.clinic_report(example_study, tmp_path / "report.html", progress=False)
    png = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--log-level=3",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400", f"--screenshot={png}",
                    html.as_uri()], capture_output=True, timeout=120)
    assert png.stat().st_size > 20000
    pdf = bpo.clinic_report(example_study, tmp_path / "report.pdf", progress=False)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 3 <= pages <= 15
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    for title in SECTIONS:
        assert title.split(" (")[0] in text.replace("\n", " ")
    assert "Not supported" in text
    assert np.isfinite(pages)


def test_pdf_without_chromium_is_a_clear_error(example_study, tmp_path, monkeypatch):
    import backpain_outcomes.report as report
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    with pytest.raises(bpo.exceptions.MissingDependencyError, match="apt-get install -y chromium"):
        bpo.clinic_report(example_study, tmp_path / "r.pdf", progress=False)


def test_therapist_benchmark_is_mean_ols_residual_with_funnel_limits(example_study):
    import statsmodels.formula.api as smf

    from backpain_outcomes.compare import _nearest
    from backpain_outcomes.report import therapist_benchmark
    g, sigma, hidden = therapist_benchmark(example_study, show_therapists=True, min_cell=5)
    # independent recomputation: main therapist per episode, improvement at the visit nearest day 42
    ss = example_study.sessions
    main = ss.groupby("episode_id")["therapist_id"].agg(lambda s: s.value_counts().index[0])
    near = _nearest(example_study.analysis_frame("nrs", origin="first_contact"), 42, 14)
    near = near[near["episode_id"].isin(main.index)].assign(
        improvement=lambda d: d["baseline"] - d["score"], therapist=lambda d: d["episode_id"].map(main),
        chronicity=lambda d: d["chronicity"].astype(str))
    fit = smf.ols("improvement ~ baseline + C(chronicity) + age", near).fit()
    ref = near.assign(r=fit.resid).groupby("therapist")["r"].agg(["mean", "size"])
    t = g.set_index("therapist")
    np.testing.assert_allclose(t["o_minus_e"], ref.loc[t.index, "mean"], atol=1e-10)
    np.testing.assert_allclose(sigma, np.sqrt(fit.scale), rtol=1e-12)
    np.testing.assert_allclose(t["limit95"], 1.96 * sigma / np.sqrt(t["n"]))
    np.testing.assert_allclose(t["limit998"], 3.09 * sigma / np.sqrt(t["n"]))
    assert hidden == int((ref["size"] < 5).sum())
