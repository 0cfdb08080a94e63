"""Clinic report: one configuration, numbers equal to the analyses, disclosure control against the whole report,
escaping, self-contained HTML, and a real-browser PDF with page numbers and sound page breaks."""

import re
import shutil
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from test_disclosure import attack

import backpain_outcomes as bpo
from backpain_outcomes.benchmarking import benchmark_therapists, outcome_at_day
from backpain_outcomes.casemix import benchmark_clinic
from backpain_outcomes.compare import comparison_rule
from backpain_outcomes.disclosure import SUPPRESSED_LABEL
from backpain_outcomes.exceptions import DisclosureError, MissingDependencyError
from backpain_outcomes.redaction import redact_counts
from backpain_outcomes.report import render_html
from backpain_outcomes.report_config import check_config, in_selection
from backpain_outcomes.report_content import check_period, report_content, select_study
from backpain_outcomes.report_data import EpisodeView, ReportData, episode_frames

SECTIONS = ["1. At a glance", "2. Outcomes by modality", "3. Pain and function", "4. Trend by quarter",
            "5. Follow-up and visits", "6. Therapist benchmarking", "7. What the data say about common claims",
            "8. Data quality", "9. Methods, limitations and notes"]
HAS_BROWSER = shutil.which("chromium") is not None and shutil.which("pdftotext") is not None


def pct(x):
    return f"{100 * x:.0f}%"


@pytest.fixture(scope="module")
def content(example_study):
    return report_content(example_study, progress=False)


@pytest.fixture(scope="module")
def html(content):
    return render_html(content)


@pytest.fixture(scope="module")
def hostile():
    """A simulated study with a script as a therapist id and markup as a clinic name."""
    _, _, frames = bpo.simulate_study(300, seed=21, return_frames=True)
    frames["sessions"]["therapist_id"] = "staff-" + frames["sessions"]["therapist_id"]
    busiest = frames["sessions"]["therapist_id"].value_counts().index[0]
    frames["sessions"].loc[frames["sessions"]["therapist_id"] == busiest, "therapist_id"] = "<script>alert(1)</script>"
    frames["patients"]["clinic_id"] = frames["patients"]["clinic_id"].replace("C1", "<b>C1</b>")
    return bpo.load_study(**frames), frames


def tiny_modalities(seed, sizes=(1, 2, 3, 4)):
    """A simulated study in which four modalities keep only 1-4 episodes each."""
    study, _ = bpo.simulate_study(260, seed=seed, n_clinics=1)
    ep = study.episodes
    keep = []
    small = ["cupping", "swedish", "dry_needling", "trigger_point"]
    for mod, g in ep.groupby("modality"):
        ids = g["episode_id"].tolist()
        keep += ids[:sizes[small.index(mod)]] if mod in small else ids
    return study.subset(keep)


def untreated_numbers(cfg_kwargs, study):
    claim = bpo.test_resolution_claim(study, 0.90, population="untreated", sensitivity=False, **cfg_kwargs)
    return claim, [pct(claim.estimate), f"{100 * claim.ci_low:.0f}-{100 * claim.ci_high:.0f}%", str(claim.events),
                   str(claim.n)]


def test_untreated_resolution_equals_test_resolution_claim_in_content_and_html(example_study, content, html):
    cfg = content.config
    claim, texts = untreated_numbers({"day": cfg.day, "rule": cfg.rule, "origin": cfg.origin}, example_study)
    got = content.numbers["untreated_resolution"]
    assert got["published"]
    for key in ("estimate", "ci_low", "ci_high"):
        assert got[key] == pytest.approx(getattr(claim, key), abs=1e-12)
    assert (got["n"], got["events"]) == (claim.n, claim.events)
    # the outcomes table's untreated row (its own Kaplan-Meier) and the claim sentence print the same numbers
    row = content.tables["outcomes"].loc["Untreated", "Resolved by day 42 (95% CI)"]
    assert row == f"{texts[0]} ({texts[1]}); {texts[2]} of {texts[3]} followed"
    sentence = content.claims[0]["detail"]
    assert sentence.startswith(f"{texts[0]} (95% CI {texts[1]}) of untreated episodes had resolved by day 42 from pain onset: "
                               f"{texts[2]} of {texts[3]}")
    assert content.claims[0]["answer"] == "No" and claim.verdict_code == "not supported"
    for t in (row, sentence):
        assert t.replace("&", "&amp;") in html


def test_one_configuration_drives_every_number(example_study):
    c = report_content(example_study, origin="first_contact", day=84, rule="nrs<=1 x2", progress=False)
    assert "Days are counted from first contact; the horizon is day 84 (twelve weeks)." in c.config.lines()
    claim, texts = untreated_numbers({"day": 84, "rule": "nrs<=1 x2", "origin": "first_contact"}, example_study)
    assert c.numbers["untreated_resolution"]["estimate"] == pytest.approx(claim.estimate)
    assert c.tables["outcomes"].loc["Untreated", "Resolved by day 84 (95% CI)"].startswith(f"{texts[0]} ({texts[1]})")
    near = bpo.benchmarking.outcome_at_day(example_study, "nrs", 84, origin="first_contact")
    cmp = bpo.compare_modalities(example_study, day=84, origin="first_contact")
    k, n = int(near["responder"].sum()), len(near)
    assert c.tables["pain_function"].iloc[0]["Improved by that much (95% CI)"].endswith(f"{k} of {n}")
    sw = cmp.table.set_index("modality").loc["swedish"]
    assert c.tables["outcomes"].loc["Swedish"].iloc[-1].startswith(f"{sw['difference']:+.1f}")
    assert "first contact" in c.figures["resolution"]["caption"]


def test_sections_figures_alt_text_self_contained_and_labels(html, content):
    for title in SECTIONS:
        assert title in html
    imgs = re.findall(r"<img [^>]*>", html)
    assert len(imgs) >= 4 and all('alt="' in i and 'alt=""' not in i for i in imgs)
    assert html.count("<figcaption>") == len(imgs) + 1  # + the data-flow figure
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "<link" not in html and "<script" not in html
    assert "counter(page)" in html and "size: A4" in html
    assert "Untreated" in content.tables["outcomes"].index and not any("_" in i for i in content.tables["outcomes"].index)
    assert "Holm" not in html and "C1-C4" not in html and "dry_needling" not in html
    assert "measure different things" in html  # responders vs resolved, said once in words


def test_first_page_benchmarks(example_study):
    c = report_content(example_study, clinic="C1", progress=False)
    bench = bpo.casemix.benchmark_clinic(example_study, clinic="C1").table.set_index("outcome")
    k = c.tables["key_outcomes"]
    assert list(k.columns) == ["Outcome", "This clinic (95% CI)", "Expected for this case mix (95% range)",
                               "Compared with expected"]
    r = bench.loc["improved"]
    assert k.iloc[0, 2] == f"{pct(r['expected'])} (range {100 * r['expected_low']:.0f}-{pct(r['expected_high'])})"
    assert "all clinics" in c.text["benchmark"] and c.clinic_text == "C1"
    whole = report_content(example_study, progress=False)
    assert "published natural course" in whole.text["benchmark"]
    assert whole.tables["key_outcomes"].iloc[1, 2] != "no benchmark"


def test_attacker_on_the_whole_report(example_study):
    c = report_content(example_study, clinic="C1", progress=False)
    bounds = attack(c.ledger)
    hidden = bounds[bounds["text"] != ""]
    assert len(hidden) and ((hidden["high"] - hidden["low"]) >= 1).all(), hidden
    small = bounds[bounds["small"]]
    assert ((small["high"] - small["low"]) >= c.ledger.min_width).all(), small


@pytest.mark.parametrize("seed", [1, 2])
def test_attacker_on_studies_with_modalities_of_one_to_four_episodes(seed):
    study = tiny_modalities(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = report_content(study, progress=False)
    assert not caught  # every warning became a note
    led = c.ledger
    for mod in ("cupping", "swedish", "dry_needling", "trigger_point"):
        assert led.text(f"mod/{mod}/n") == "<5"
    bounds = attack(led)
    hidden = bounds[bounds["text"] != ""]
    assert ((hidden["high"] - hidden["low"]) >= 1).all(), hidden[hidden["high"] - hidden["low"] < 1]
    small = bounds[bounds["small"]]
    assert ((small["high"] - small["low"]) >= led.min_width).all(), small
    tab = led.table()
    assert (tab.loc[tab["status"] == "secondary", "text"] == SUPPRESSED_LABEL).all()
    # the tables print the ledger's texts, and no rate of a small modality
    out = c.tables["outcomes"]
    for mod in ("Cupping", "Swedish"):
        assert out.loc[mod, "Episodes"] == "<5"
        assert not re.search(r"\d+%", " ".join(out.loc[mod].astype(str)))
    # sentences never state a hidden count
    sentences = [cl["detail"] for cl in c.claims] + list(c.text.values()) + list(c.notes)
    for s in sentences:
        assert redact_counts(s, led) == s, s
    assert "resolution" not in c.figures or all(m not in c.figures["resolution"]["alt"] for m in ("Cupping", "Swedish"))


def test_no_patient_or_episode_identifiers(html, example_study):
    ids = set(example_study.episodes["patient_id"]) | set(example_study.episodes["episode_id"])
    assert not [i for i in ids if re.search(rf"\b{re.escape(i)}\b", html)]


def test_strings_from_data_are_escaped(hostile, tmp_path):
    study, _ = hostile
    html = bpo.clinic_report(study, tmp_path / "r.html", show_therapists=True, progress=False).read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html_c = bpo.clinic_report(study, tmp_path / "c.html", clinic="<b>C1</b>", progress=False).read_text()
    assert "<b>C1</b>" not in html_c and "&lt;b&gt;C1&lt;/b&gt;" in html_c


def test_therapists_anonymised_by_default_and_flags_match_the_text(hostile, tmp_path):
    study, frames = hostile
    c = report_content(study, progress=False)
    html = render_html(c)
    assert not any(t in html for t in set(frames["sessions"]["therapist_id"]) if t.startswith("staff-"))
    t = c.tables["therapists"]
    assert t["Therapist"].tolist()[:2] == ["T1", "T2"]
    assert len([col for col in t.columns if "control limit" in col]) == 1
    flagged = t[t["Flag"] != "within limits"]
    if len(flagged):
        for r in flagged.itertuples():
            assert f"{r.Therapist} ({r.Flag})" in c.text["therapists"]
    else:
        assert "No therapist is outside the limit." in c.text["therapists"]


def test_min_n_and_arguments(tmp_path, example_study):
    study, _ = bpo.simulate_study(60, seed=4)
    c = report_content(study, min_n=10, progress=False)
    assert "Counts under 10 are not shown, nor any number that would reveal them." in c.config.lines()
    shown = c.ledger.table().query("shown and status == 'published'")
    assert not ((shown["value"] > 0) & (shown["value"] < 10)).any()
    with pytest.raises(ValueError, match="origin"):
        report_content(example_study, origin="start", progress=False)
    with pytest.raises(ValueError, match="rule"):
        report_content(example_study, rule="nrs<<1", progress=False)
    with pytest.raises(ValueError, match="C1, C2, C3"):
        report_content(example_study, clinic="C9", progress=False)
    with pytest.raises(ValueError, match=r"path: cannot write a \.txt file; use \.html or \.htm or \.pdf"):
        bpo.clinic_report(example_study, tmp_path / "r.txt", progress=False)


def test_unknown_treatment_status_is_counted(example_study):
    inp = example_study._inputs
    no_sessions = bpo.Study(scores=inp["scores"], patients=inp["patients"], episodes=inp["episodes"].assign(arm=None))
    c = report_content(no_sessions, progress=False)
    assert ("Treatment unknown", "500") in c.flow["status"]
    assert "Treatment status unknown: 500 episodes" in c.text["unknown"]
    assert c.claims[0]["answer"] == "Cannot tell"


def test_pdf_without_chromium_is_a_clear_error(example_study, tmp_path, monkeypatch):
    import backpain_outcomes.report as report
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install -y chromium"):
        bpo.clinic_report(example_study, tmp_path / "r.pdf", progress=False)


def _pages(pdf):
    n = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout)[1])
    return [subprocess.run(["pdftotext", "-layout", "-f", str(i), "-l", str(i), str(pdf), "-"], capture_output=True,
                           text=True).stdout for i in range(1, n + 1)]


@pytest.mark.browser
@pytest.mark.skipif(not HAS_BROWSER, reason="needs Debian's chromium and poppler-utils (installed by .ci/run)")
def test_real_browser_pdf_numbers_page_numbers_and_breaks(example_study, content, tmp_path):
    pdf = bpo.clinic_report(example_study, tmp_path / "report.pdf", progress=False)
    pages = _pages(pdf)
    assert 4 <= len(pages) <= 16
    for i, text in enumerate(pages, start=1):
        assert f"Page {i} of {len(pages)}" in text, i
    flat = re.sub(r"\s+", " ", " ".join(pages))
    for title in SECTIONS:
        assert title in flat
    assert not FORBIDDEN.search(flat), FORBIDDEN.search(flat)
    # every number of the day-42 untreated resolution, as test_resolution_claim gives it
    _, texts = untreated_numbers({"day": 42, "rule": "nrs<=1 x2", "origin": "onset"}, example_study)
    assert f"{texts[0]} (95% CI {texts[1]}) of untreated episodes had resolved by day 42 from pain onset: " \
           f"{texts[2]} of {texts[3]}" in flat
    headings = set(SECTIONS) | {"Key outcomes, each next to what this clinic's case mix predicts", "Case mix",
                                "Glossary", "References"}
    for i, text in enumerate(pages, start=1):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "Page " not in ln]
        assert lines, f"page {i} is empty"
        assert re.sub(r"\s+", " ", lines[-1]) not in headings, f"page {i} ends with a heading"
        body = [ln for ln in lines if not ln.startswith("Figure ")]
        assert sum(len(ln) for ln in body) > 200, f"page {i} holds only a figure"


@pytest.mark.browser
@pytest.mark.skipif(not HAS_BROWSER, reason="needs Debian's chromium and poppler-utils (installed by .ci/run)")
def test_real_browser_pdf_of_a_study_with_nothing_measured(example_frames, tmp_path):
    study = bpo.load_study(**dict(example_frames, scores=example_frames["scores"].groupby("episode_id").head(1)))
    flat = re.sub(r"\s+", " ", " ".join(_pages(bpo.clinic_report(study, tmp_path / "r.pdf", progress=False))))
    assert "not measured" in flat and "not estimable" in flat  # table cells wrap: words, not whole cells
    assert not FORBIDDEN.search(flat), FORBIDDEN.search(flat)


@pytest.mark.browser
@pytest.mark.skipif(not HAS_BROWSER, reason="needs Debian's chromium (installed by .ci/run)")
def test_real_browser_screenshot(example_study, tmp_path):
    html = bpo.clinic_report(example_study, tmp_path / "report.html", progress=False)
    png = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--log-level=3",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400", f"--screenshot={png}",
                    html.as_uri()], capture_output=True, timeout=120)
    assert png.stat().st_size > 20000


def test_api_never_writes_onto_an_input_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import shutil as _shutil

    import backpain_outcomes.report as report_module
    from backpain_outcomes.safe_io import OutputError

    data = tmp_path / "study"
    _shutil.copytree(bpo.example_path(), data)
    study = bpo.load_study(data)
    with pytest.raises(OutputError, match="cannot write a .csv file"):   # a table of the study is never replaced
        bpo.clinic_report(study, data / "patients.csv", progress=False)
    with pytest.raises(OutputError, match="docx"):
        bpo.clinic_report(study, tmp_path / "report.docx", progress=False)
    old = tmp_path / "report.html"
    old.write_text("older report", encoding="utf-8")

    def broken(content):
        raise RuntimeError("rendering failed")
    monkeypatch.setattr(report_module, "render_html", broken)
    with pytest.raises(RuntimeError):
        bpo.clinic_report(study, old, progress=False)
    assert old.read_text(encoding="utf-8") == "older report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _clinic_of(study, clinic, n):
    """``study`` with only the first ``n`` episodes of ``clinic`` left."""
    ep = study.episodes
    return study.subset(ep.loc[ep["clinic_id"] != clinic, "episode_id"].tolist()
                        + ep.loc[ep["clinic_id"] == clinic, "episode_id"].tolist()[:n])


def test_a_clinic_under_min_n_is_a_clear_error_before_any_analysis(example_study, monkeypatch):
    rc = sys.modules["backpain_outcomes.report_content"]  # the package exports a function of the same name

    def no_analysis(*args, **kwargs):
        raise AssertionError("an analysis ran")
    with monkeypatch.context() as m:
        m.setattr(rc, "_analyses", no_analysis)
        with pytest.raises(DisclosureError, match=r"^clinic C1 has 3 episodes, fewer than min_n=5: a report would "
                                                  r"disclose them\. Report on more episodes") as info:
            report_content(_clinic_of(example_study, "C1", 3), clinic="C1", progress=False)
        assert isinstance(info.value, ValueError)  # the CLI prints it without a traceback (exit 2)
        with pytest.raises(DisclosureError, match=r"^the study has 340 episodes first seen up to 2022-01-01, fewer "
                                                  r"than min_n=400"):
            report_content(example_study, period=(None, "2022-01-01"), min_n=400, progress=False)
    # 5 episodes pass the size check, but no set of hidden counts protects them all: the same kind of error
    with pytest.raises(DisclosureError, match=r"^clinic C1 has 5 episodes, too few to publish a report under "
                                              r"min_n=5 without disclosing a small count: .*Report on more episodes"):
        report_content(_clinic_of(example_study, "C1", 5), clinic="C1", progress=False)


def test_open_ended_periods_and_period_errors(example_study):
    first = example_study.episodes["first_visit_date"]
    assert check_period(("2021-01-01", None)) == (pd.Timestamp("2021-01-01"), None)
    assert check_period((None, "")) is None and check_period(None) is None
    late = select_study(example_study, period=("2022-01-02", None))
    early = select_study(example_study, period=(None, "2022-01-01"))
    assert len(late.episodes) == (first >= "2022-01-02").sum() == 160
    assert len(early.episodes) == (first <= "2022-01-01").sum() == 340
    assert select_study(example_study, period=("2021-01-01", None)) is example_study  # every episode
    for bad, msg in [(("2022-01-01", "2021-01-01"), r"period: the start 2022-01-01 is after the end 2021-01-01"),
                     (("2021-13-45", None), r"period: the start date '2021-13-45' is not a date"),
                     ((None, "soon"), r"period: the end date 'soon' is not a date"),
                     ("2021", r"period must be \(start, end\)"), (("2021-01-01",), r"period must be \(start, end\)"),
                     (("2030-01-01", None), r"period: no episode of the study was first seen from 2030-01-01 on; "
                                            r"first visits in the data run from 2021-01-07 to 2024-04-14")]:
        with pytest.raises(ValueError, match=msg):
            report_content(example_study, period=bad, progress=False)
    c = report_content(example_study, period=(None, "2022-01-01"), progress=False)
    assert c.period_text == "07 Jan 2021 to 01 Jan 2022" and c.ledger.text("all") == "340"


# ---------------------------------------------------------------- nothing estimable: words, never nan/inf/n/a
FORBIDDEN = re.compile(r"\b(nan|inf|infinity|nat|n/a)\b", re.IGNORECASE)


def displayed_texts(content):
    """Every text a reader of the report sees, as (where, text)."""
    yield "title", f"{content.title} {content.clinic_text} {content.period_text}"
    for line in content.config.lines():
        yield "config", line
    for name, table in content.tables.items():
        for col in table.columns:
            yield f"{name} column", str(col)
        for idx in table.index:
            yield f"{name} row", str(idx)
        for col in table.columns:
            for idx, value in table[col].items():
                yield f"{name}[{idx!r}, {col!r}]", str(value)
    for name, paragraph in content.text.items():
        yield f"text {name}", paragraph
    for claim in content.claims:
        yield "claim", " ".join(str(v) for v in claim.values())
    for term, definition in content.glossary:
        yield "glossary", f"{term} {definition}"
    for note in content.notes:
        yield "note", note
    for name, fig in content.figures.items():
        yield f"figure {name}", f"{fig['alt']} {fig['caption']}"
    yield "flow", repr(content.flow)


def html_text(html):
    """The visible text of the report: no embedded images, style or markup."""
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def assert_no_missing_tokens(content):
    bad = [(where, text) for where, text in displayed_texts(content) if FORBIDDEN.search(text)]
    assert not bad, bad
    text = html_text(render_html(content))
    assert not FORBIDDEN.search(text), FORBIDDEN.search(text)
    return text


@pytest.fixture(scope="module")
def example_frames():
    return {name: pd.read_csv(bpo.example_path() / f"{name}.csv", dtype=str)
            for name in ("scores", "episodes", "sessions", "patients")}


@pytest.fixture(scope="module")
def one_score(example_frames):
    """Every episode with its first score only: nothing at the horizon, nobody at risk of resolving."""
    frames = dict(example_frames, scores=example_frames["scores"].groupby("episode_id").head(1))
    return report_content(bpo.load_study(**frames), progress=False)


def test_the_example_report_never_prints_nan_inf_or_n_a(content):
    assert_no_missing_tokens(content)


def test_nothing_measured_says_not_measured_or_not_estimable(one_score):
    text = assert_no_missing_tokens(one_score)
    key = one_score.tables["key_outcomes"].set_index("Outcome")["This clinic (95% CI)"]
    assert key.iloc[0] == key.iloc[1] == "not measured: no episode has a score within 14 days of day 42"
    assert key.iloc[2] == "not estimable: no episode was followed after its first visit"
    assert key.iloc[3] == "0% (0-1%)"  # 0 of 500 followed up: a real share
    out = one_score.tables["outcomes"]
    assert len(out) == 6  # every modality still has its row
    assert (out["Resolved by day 42 (95% CI)"] == "not estimable: no episode was followed after its first visit").all()
    assert (out["Improved at six weeks (95% CI)"] == "not measured").all()
    assert (one_score.tables["trend"]["Improved (95% CI)"] == "not measured").all()
    assert one_score.claims[0]["answer"] == "Cannot tell" and one_score.claims[0]["detail"].startswith("Not estimable")
    assert "not measured" in text


def test_mean_first_score_is_one_computation_in_both_tables(one_score, content, example_study):
    # 500 NRS episodes, none measured at the horizon: the mean first score is still known (6.1 = the mean of
    # baseline_nrs of the example, computed here by pandas)
    expected = f"{example_study.episodes['baseline_nrs'].mean():.1f}"
    assert expected == "6.1"
    for c in (one_score, content):
        assert c.tables["pain_function"].loc["Pain NRS (0-10)", "Mean first score"] == expected
        assert c.tables["case_mix"].loc["Mean first Pain NRS (0-10)"].item() == expected
    odi = f"{example_study.episodes['baseline_odi'].mean():.1f}"
    assert content.tables["pain_function"].loc["Oswestry Disability Index (0-100%)", "Mean first score"] == odi


def test_a_horizon_beyond_follow_up_prints_words(example_study):
    c = report_content(example_study, day=2000, progress=False)
    assert_no_missing_tokens(c)
    key = c.tables["key_outcomes"]["This clinic (95% CI)"]
    assert key.iloc[0] == key.iloc[1] == "not measured: no episode has a score within 14 days of day 2000"
    pf = c.tables["pain_function"].iloc[0]
    assert pf["Mean score at day 2000 (95% CI)"] == pf["Improved by that much (95% CI)"] == "not measured"


def test_identical_scores_give_a_report(example_frames):
    # adversarial C3: every NRS is 5 (ODI 40): nobody improves or resolves; the trend figure used to fail on
    # Wilson bounds a rounding error above 0% ("'yerr' must not contain negative values")
    scores = example_frames["scores"].copy()
    scores["score"] = scores["instrument"].map({"nrs": "5", "odi": "40"})
    c = report_content(bpo.load_study(**dict(example_frames, scores=scores)), progress=False)
    assert_no_missing_tokens(c)
    assert "trend" in c.figures
    assert c.tables["outcomes"].loc["Untreated", "Resolved by day 42 (95% CI)"] == "0% (0-5%); 0 of 75 followed"
    assert c.claims[1]["answer"] == "No"  # every modality resolved 0% (exact upper bounds under 50%)
    assert c.tables["pain_function"].iloc[0]["Mean score at six weeks (95% CI)"] == "5.0 (5.0-5.0)"


def test_trend_figure_error_bars_at_zero_and_one_hundred_percent():
    # Wilson bounds of 0 of 7 and 9 of 9 miss the rate by ~1e-17 (statsmodels), which matplotlib refused
    from statsmodels.stats.proportion import proportion_confint

    from backpain_outcomes.report_figures import trend_figure
    (lo0, hi0), (lo1, hi1) = proportion_confint(0, 7, method="wilson"), proportion_confint(9, 9, method="wilson")
    assert lo0 > 0.0 and hi1 < 1.0  # the rounding the figure has to absorb
    machine = pd.DataFrame({"quarter": ["2021 Q1", "2021 Q2"], "rate": [0.0, 1.0], "ci_low": [lo0, lo1],
                            "ci_high": [hi0, hi1]})
    fig = trend_figure(machine, 42)
    assert fig["name"] == "trend" and len(fig["data"]) > 1000


def test_the_report_data_give_the_analyses_of_the_study_itself():
    """The benchmarks and the comparison read an EpisodeView of the report's episode-level data: each gives
    exactly what it gives on the selected study (the reference: the analysis run on ``Study.subset``)."""
    study, _ = bpo.simulate_study(240, seed=12, n_clinics=3)
    cfg = check_config("C2", ("2021-03-01", None), None, "nrs<=1 x2", 42, "onset", "odi", 5, False, False)
    data = ReportData.from_parts([episode_frames(study, cfg)], study.flow(), cfg.origin)
    keep = in_selection(data.episodes, cfg.clinic, cfg.period)
    view, sub = EpisodeView(data, keep), select_study(study, cfg.clinic, cfg.period)
    assert 0 < len(sub.episodes) < len(study.episodes) and view.instruments == sub.instruments
    pd.testing.assert_frame_equal(view.episodes, sub.episodes[view.episodes.columns])
    for inst in sub.instruments:
        pd.testing.assert_frame_equal(outcome_at_day(view, inst, 42), outcome_at_day(sub, inst, 42))
        counts = sub.scores[sub.scores["instrument"] == inst].groupby("episode_id").size()
        pd.testing.assert_series_equal(view.n_measurements(inst).loc[counts.index], counts, check_names=False)
    for rule in (cfg.rule, comparison_rule("odi")):
        a, b = bpo.time_to_resolution(view, rule), bpo.time_to_resolution(sub, rule)
        pd.testing.assert_frame_equal(a.table, b.table)
        assert a.notes == b.notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = benchmark_therapists(view, min_n=3), benchmark_therapists(sub, min_n=3)
        pd.testing.assert_frame_equal(a.table, b.table)
        pd.testing.assert_frame_equal(a.episodes, b.episodes)
        assert len(a.table) and len(a.episodes)  # therapists benchmarked
        a = bpo.compare_modalities(view, "odi", min_n=3, rule=comparison_rule("odi"))
        b = bpo.compare_modalities(sub, "odi", min_n=3)
        pd.testing.assert_frame_equal(a.table, b.table)
        assert a.notes == b.notes and a.table["hazard_ratio"].notna().any()  # compared, hazard ratios included
        whole = EpisodeView(data, in_selection(data.episodes, None, cfg.period))
        a = benchmark_clinic(whole, "C2", rule=cfg.rule)
        b = benchmark_clinic(select_study(study, None, cfg.period), "C2", rule=cfg.rule)
        pd.testing.assert_frame_equal(a.table, b.table)
        assert a.notes == b.notes
    with pytest.raises(ValueError, match="not of"):  # the view holds the events of the report's rules only
        bpo.time_to_resolution(view, "nrs<=3")
