"""Publication tables: every estimate round-trips into Markdown, LaTeX and Word; escaping; no overwriting."""

import re

import numpy as np
import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes import export
from backpain_outcomes.exceptions import MissingDependencyError
from backpain_outcomes.export import (
    format_p,
    interval_pairs,
    latex_escape,
    publication_table,
    term_label,
    to_docx,
    to_latex,
    to_markdown,
)
from backpain_outcomes.safe_io import OutputError

docx = pytest.importorskip("docx")

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
ESTIMATES = ("estimate", "difference", "ci_low", "ci_high", "hazard_ratio", "hr_ci_low", "hr_ci_high",
             "responder_rate", "responder_ci_low", "responder_ci_high", "se", "z")


@pytest.fixture(scope="module")
def results(example_study):
    return {"compare": bpo.compare_modalities(example_study, day=42),
            "claim": bpo.test_resolution_claim(example_study, claimed=0.9, day=42, rule="nrs<=1 x2"),
            "mixed": bpo.fit_mixed_model(example_study, "score ~ day * modality + baseline")}


def _shown(value: float, tokens: list[str]) -> bool:
    """Some number printed in ``tokens`` is ``value`` rounded to the decimals it is printed with."""
    for tok in tokens:
        decimals = len(tok.split(".")[1]) if "." in tok else 0
        if abs(float(tok) - value) <= 0.5 * 10 ** -decimals + 1e-12:
            return True
    return False


def _markdown_rows(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return lines[2:]  # header and alignment rows first


def _latex_rows(text: str) -> list[str]:
    body = text.split("\\midrule")[1].split("\\bottomrule")[0]
    return [ln for ln in body.strip().splitlines() if ln.endswith("\\\\")]


def _check_every_estimate(result, rows: list[str]):
    table = result.table
    assert len(rows) == len(table)
    for (_, row), line in zip(table.iterrows(), rows):
        tokens = NUMBER.findall(line)
        for col in ESTIMATES:
            if col in table and np.isfinite(row[col]):
                assert _shown(float(row[col]), tokens), (col, row[col], line)
        if "p_value" in table and np.isfinite(row["p_value"]):
            p = float(row["p_value"])
            assert ("&lt;0.001" in line or "textless{}0.001" in line) if p < 0.001 else f"{p:.3f}" in line, (p, line)


@pytest.mark.parametrize("name", ["compare", "claim", "mixed"])
def test_markdown_and_latex_hold_every_estimate_of_the_result(results, name):
    result = results[name]
    _check_every_estimate(result, _markdown_rows(to_markdown(result)))
    _check_every_estimate(result, _latex_rows(to_latex(result)))


def test_estimate_and_its_interval_share_one_cell(results):
    pub = publication_table(results["compare"])
    cell = pub["Difference, NRS points (95% CI)"]
    assert cell.str.fullmatch(r"-?\d+\.\d+ \(-?\d+\.\d+ to -?\d+\.\d+\)").all()
    assert "Hazard ratio (95% CI)" in pub and "ci_low" not in pub and "Modality" in pub
    assert pub["Modality"].tolist() == [bpo.label(m) for m in results["compare"].table["modality"]]
    assert pub.attrs["title"] == "Modalities vs Untreated, Pain NRS at day 42"
    # the reference (the same in every row) moves to a note
    assert "For every row: Reference: Untreated." in pub.attrs["notes"]
    separate = publication_table(results["compare"], ci="separate")
    assert {"Difference (NRS points)", "Difference, 95% CI", "Hazard ratio, 95% CI"} <= set(separate.columns)
    assert separate["Difference, 95% CI"].str.fullmatch(r"-?\d+\.\d+ to -?\d+\.\d+").all()


def test_small_coefficients_keep_two_significant_digits(results):
    pub = publication_table(results["mixed"])
    day = pub.loc[pub["Term"] == "Day", "Estimate (95% CI)"].item()
    est = results["mixed"].table.set_index("term").loc["day", "estimate"]  # about -0.0023 NRS points a day
    assert day.startswith(f"{est:.4f} (") and not day.startswith("-0.00 ")
    assert "Day × Modality: Cupping" in pub["Term"].tolist()


def test_docx_opens_and_holds_the_same_cells(results, tmp_path):
    result = results["compare"]
    path = to_docx(result, tmp_path / "compare.docx")
    document = docx.Document(str(path))
    assert len(document.tables) == 1
    cells = [[c.text for c in row.cells] for row in document.tables[0].rows]
    pub = publication_table(result)
    assert cells[0] == list(pub.columns)
    assert cells[1:] == pub.to_numpy().tolist()
    assert all(run.bold for run in document.tables[0].rows[0].cells[0].paragraphs[0].runs)
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == pub.attrs["title"]
    assert texts[-1].startswith("Notes: ") and "Reference: Untreated" in texts[-1]


def test_latex_escapes_special_characters_of_the_data():
    frame = pd.DataFrame({"group": ["50% & A_B #1 $x$ {y} ~^\\"], "estimate": [0.5], "ci_low": [0.25],
                          "ci_high": [0.75], "p_value": [0.0001]})
    frame.attrs = {"title": "Odd_title & 100%", "notes": ["a_b costs $5 #now"]}
    text = to_latex(frame)
    row = _latex_rows(text)[0]
    assert row.startswith(r"50\% \& A\_B \#1 \$x\$ \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{} & ")
    assert r"0.50 (0.25 to 0.75) & \textless{}0.001 \\" in row
    assert r"\caption{Odd\_title \& 100\%}" in text
    assert r"Notes: a\_b costs \$5 \#now." in text
    assert "\\toprule" in text and "\\bottomrule" in text  # booktabs
    # outside the commands produced by escaping, no special character is left bare
    stripped = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater)\{\}|\\[%&$#_{}]",
                      "", row)
    assert not re.search(r"[%$#_{}~^]", stripped.replace(" & ", " ").rstrip("\\ "))
    assert latex_escape("a × b ≥ c") == r"a $\times$ b $\geq$ c"


def test_markdown_pipe_table_escapes_pipes_and_newlines():
    frame = pd.DataFrame({"note": ["a|b\nc"], "n": [3]})
    text = to_markdown(frame)
    assert "| a\\|b c | 3 |" in text
    assert "|:---|---:|" in text


def test_refuses_to_overwrite_and_to_write_onto_an_input(results, tmp_path):
    result = results["claim"]
    out = tmp_path / "claim.md"
    result.export(out)
    first = out.read_text(encoding="utf-8")
    out.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match="exists"):
        result.export(out)
    assert out.read_text(encoding="utf-8") == "mine"
    result.export(out, force=True)
    assert out.read_text(encoding="utf-8") == first
    tex = tmp_path / "claim.tex"
    tex.write_text("an input", encoding="utf-8")
    with pytest.raises(OutputError, match="input"):
        to_latex(result, tex, inputs=[tex], force=True)
    assert tex.read_text(encoding="utf-8") == "an input"
    word = tmp_path / "claim.docx"
    word.write_bytes(b"x")
    with pytest.raises(OutputError, match="exists"):
        to_docx(result, word)
    assert word.read_bytes() == b"x"
    assert list(tmp_path.glob(".*partial*")) == []


def test_export_dispatches_on_the_suffix(results, tmp_path):
    result = results["compare"]
    assert result.export(tmp_path / "t.md").read_text(encoding="utf-8").startswith("**Modalities vs Untreated")
    assert "\\begin{tabular}" in result.export(tmp_path / "t.tex").read_text(encoding="utf-8")
    assert len(docx.Document(str(result.export(tmp_path / "t.docx"))).tables) == 1
    raw = pd.read_csv(result.export(tmp_path / "t.csv"))
    assert list(raw.columns) == list(result.table.columns)
    np.testing.assert_allclose(raw["difference"], result.table["difference"])
    assert "Difference" in result.export(tmp_path / "t.txt", format="markdown").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="suffix"):
        result.export(tmp_path / "t.xyz")
    with pytest.raises(ValueError, match="format"):
        result.export(tmp_path / "t.md", format="html")


def test_interval_pairs_follow_every_naming_of_the_results():
    cols = ["rate_weighted", "se", "ci_low", "ci_high", "cc_ci_low", "cc_ci_high", "rate_complete_case",
            "expected", "expected_low", "expected_high", "sensitivity_low", "sensitivity_high", "x", "x_conf_low",
            "x_conf_high"]
    assert interval_pairs(cols) == [("rate_weighted", "ci_low", "ci_high", ""),
                                    ("rate_complete_case", "cc_ci_low", "cc_ci_high", "cc"),
                                    ("expected", "expected_low", "expected_high", "expected"),
                                    (None, "sensitivity_low", "sensitivity_high", "sensitivity"),
                                    ("x", "x_conf_low", "x_conf_high", "x")]
    # bare lower/upper are control limits unless the table has an `estimate` (broom's conf.low naming too)
    assert interval_pairs(["observed", "lower", "upper"]) == [(None, "lower", "upper", "")]
    assert interval_pairs(["estimate", "conf_low", "conf_high"]) == [("estimate", "conf_low", "conf_high", "")]
    pub = publication_table(pd.DataFrame({"observed": [1.0], "lower": [-0.5], "upper": [0.5]}))
    assert pub.iloc[0].tolist() == ["1.00", "-0.50 to 0.50"]


def test_p_values_labels_and_options():
    assert [format_p(p) for p in (0.5, 0.0456, 0.001, 0.000999, np.nan)] == ["0.500", "0.046", "0.001", "<0.001",
                                                                             "NA"]
    assert term_label("C(chronicity)[T.chronic]") == "Chronicity: Chronic (>= 12 weeks)"
    frame = pd.DataFrame({"modality": ["dry_needling"], "estimate": [0.123456], "ci_low": [np.nan],
                          "ci_high": [np.nan], "n": [12]})
    assert publication_table(frame).iloc[0].tolist() == ["Dry needling", "0.12", "12"]  # no interval: estimate only
    raw = publication_table(frame, labels=False, digits=3)
    assert list(raw.columns) == ["modality", "estimate (95% CI)", "n"]
    assert raw.iloc[0].tolist() == ["dry_needling", "0.123", "12"]
    assert list(publication_table(frame, columns=["estimate"]).columns) == ["Estimate (95% CI)"]
    with pytest.raises(ValueError, match="ci="):
        publication_table(frame, ci="both")
    with pytest.raises(ValueError, match="columns"):
        publication_table(frame, columns=["nope"])
    with pytest.raises(TypeError, match="DataFrame"):
        publication_table([1, 2])


def test_word_output_without_python_docx_names_the_extra(results, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "docx", None)
    with pytest.raises(MissingDependencyError, match="export"):
        to_docx(results["claim"], tmp_path / "c.docx")
    assert not (tmp_path / "c.docx").exists()


def test_other_result_types_and_large_word_tables(tmp_path):
    ev = bpo.e_value(1.8, 1.2, 2.6)  # risk ratio 1.8 (1.2 to 2.6): interval pairs ci_* and rr_ci_*
    pub = publication_table(ev)
    assert pub["Estimate (95% CI)"].item() == "1.80 (1.20 to 2.60)"
    assert pub["Risk ratio (95% CI)"].item() == "1.80 (1.20 to 2.60)"
    power = bpo.claim_power([50, 100], 0.7, method="formula")
    assert publication_table(power)["N (episodes)"].tolist() == ["50", "100"]
    # 300 rows x 12 columns: every row reaches the Word table (filled row by row)
    big = pd.DataFrame(np.arange(3600).reshape(300, 12) / 7, columns=[f"c{i}" for i in range(12)])
    table = docx.Document(str(to_docx(big, tmp_path / "big.docx"))).tables[0]
    assert len(table.rows) == 301 and table.rows[300].cells[11].text == f"{3599 / 7:.2f}"


@pytest.mark.parametrize("suffix", [".md", ".tex", ".docx", ".csv"])
def test_every_exported_table_records_its_provenance(results, example_study, tmp_path, suffix):
    import hashlib

    claim = results["claim"]
    out = claim.export(tmp_path / f"claim{suffix}", study=example_study)
    record = bpo.read_provenance(out)
    assert record.version == bpo.__version__
    assert record.function == "export.ClaimResult"
    assert record.config["day"] == claim.day and record.config["origin"] == claim.origin
    assert bpo.as_rule(record.config["rule"]) == claim.rule
    # the input hashes are those of the study's files, computed here independently
    for entry in record.inputs:
        assert entry["sha256"] == hashlib.sha256(open(entry["path"], "rb").read()).hexdigest()
    assert {e["path"] for e in record.inputs} == {str(p) for p in example_study.input_files}
    with pytest.raises(OutputError):  # the sidecar obeys force like the table
        claim.export(tmp_path / f"claim{suffix}", study=example_study)
    claim.export(tmp_path / f"claim{suffix}", study=example_study, force=True)


def test_markdown_escapes_raw_html_in_cells_title_and_notes():
    frame = pd.DataFrame({"clinic_id": ["<img src=x onerror=alert(1)>"], "n": [3]})
    frame.attrs = {"title": "A & <b>", "notes": ["<script>x</script>"]}
    text = to_markdown(frame)
    assert "<" not in text and ">" not in text.replace("---:", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "**A &amp; &lt;b&gt;**" in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text


def test_latex_escape_turns_line_breaks_into_spaces():
    assert latex_escape("a\r\nb\n\nc") == "a b  c"  # no blank line can end a tabular paragraph
    frame = pd.DataFrame({"note": ["one\n\ntwo"], "n": [1]})
    assert "\n\n" not in to_latex(frame).split("\\toprule")[1]


@pytest.fixture
def study_copy(tmp_path):
    import shutil

    folder = tmp_path / "study"
    shutil.copytree(bpo.example_path(), folder)
    return folder, bpo.load_study(folder)


def test_export_never_writes_onto_or_into_the_studys_input(results, study_copy):
    folder, study = study_copy
    scores = folder / "scores.csv"
    before = scores.read_bytes()
    with pytest.raises(OutputError, match="input"):
        results["compare"].export(scores, study=study, force=True)
    assert scores.read_bytes() == before
    with pytest.raises(OutputError, match="input directory"):  # the command line's rule: not into it either
        results["compare"].export(folder / "t1.md", study=study, force=True)
    assert not (folder / "t1.md").exists() and not list(folder.glob(".*partial*"))
    assert export.protected_inputs(study)[-1] == folder.resolve()


def test_options_that_do_not_apply_are_refused_not_ignored(results, example_study, tmp_path):
    one = bpo.table_one(example_study)
    with pytest.raises(ValueError, match="columns: 'nonexistent'"):
        publication_table(one, columns=["nonexistent"])
    with pytest.raises(ValueError, match="ci: TableOne"):
        publication_table(one, ci="separate")
    assert list(publication_table(one, columns=["Characteristic", "Overall"]).columns) == ["Characteristic",
                                                                                          "Overall"]
    with pytest.raises(ValueError, match="ci, digits: a .csv export writes the raw table"):
        results["compare"].export(tmp_path / "t.csv", digits=3, ci="separate")
    assert not (tmp_path / "t.csv").exists()
