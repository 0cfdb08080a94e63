"""Command line: exit codes, the 1.0 flags, safe writing (never onto an input, --force, temp file and move, a
failed PDF), problems at scale (first 50 printed, all of them with --problems)."""

import re
import shutil
import stat
from pathlib import Path

import matplotlib.figure
import pandas as pd
import pytest
from conftest import write

import backpain_outcomes as bpo
from backpain_outcomes.cli import SHOWN, main
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.visits import load_visits

SCORES = "patient_id,date,instrument,score\n"


@pytest.fixture
def study(tmp_path):
    """A copy of the example study (so that a bug cannot damage the shipped files)."""
    return shutil.copytree(bpo.example_path(), tmp_path / "study")


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"backpain-outcomes {bpo.__version__}\n"


def test_exit_codes(tmp_path, capsys):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-01,nrs,14\n")
    assert main(["validate", str(tmp_path)]) == 1
    assert "scores.csv:2:score: nrs score is out of range" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2


def test_no_output_may_be_an_input(study, tmp_path, capsys):
    before = snapshot(study)
    files = [str(study / f) for f in before]
    refused = [
        (["claims", str(study), "--csv", str(study / "scores.csv")], "--csv: refusing to write"),
        (["claims", *files, "--csv", str(study / "scores.csv")], "it is one of the input files"),
        (["report", str(study), "-o", str(study / "patients.csv")], "-o: cannot write a .csv file"),
        (["report", str(study), "-o", str(study / "report.html")], "into the input directory"),
        (["curves", str(study), "-o", str(study)], "it is the input directory"),
        (["validate", str(study), "--problems", str(study / "scores.csv")], "--problems: refusing to write"),
        (["validate", *files, "--problems", str(study / "sessions.csv"), "--force"], "one of the input files"),
        (["simulate", "-n", "50", "-o", str(study)], "is not empty"),
    ]
    for argv, message in refused:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert snapshot(study) == before


def test_existing_outputs_are_replaced_only_with_force(study, tmp_path, capsys):
    out = tmp_path / "claims.csv"
    out.write_text("old")
    assert main(["claims", str(study), "--csv", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == "old"
    assert main(["claims", str(study), "--csv", str(out), "--force"]) == 0
    table = pd.read_csv(out)
    api = bpo.evaluate_seed_claims(bpo.load_study(study)).table
    # the same numbers as the API with the same (default) arguments
    pd.testing.assert_series_equal(table["estimate"], api["estimate"].astype(float), check_dtype=False, atol=1e-9)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.fixture
def failing_browser(tmp_path, monkeypatch):
    """A 'chromium' that fails without writing anything, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        exe = bin_dir / name
        exe.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return bin_dir


def test_failed_pdf_leaves_the_older_file_and_exits_1(study, tmp_path, failing_browser, capsys):
    out = tmp_path / "out" / "report.pdf"
    out.parent.mkdir()
    out.write_bytes(b"%PDF-1.4 an older report")
    assert main(["report", str(study), "-o", str(out), "--force"]) == 1
    captured = capsys.readouterr()
    assert "written" not in captured.out and "nothing written" in captured.err
    assert out.read_bytes() == b"%PDF-1.4 an older report"
    assert [p.name for p in out.parent.iterdir()] == ["report.pdf"]  # no partial file


def test_a_failed_write_leaves_every_older_file(study, tmp_path, monkeypatch, capsys):
    out = tmp_path / "curves"
    out.mkdir()
    for name in ("recovery_curves.csv", "recovery_curves.png", "recovery_curves.svg"):
        (out / name).write_text("old")

    def broken(self, fname, *args, **kwargs):
        if str(fname).endswith(".svg"):
            raise OSError("disk full")
        return original(self, fname, *args, **kwargs)
    original = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    assert main(["curves", str(study), "-o", str(out), "--force"]) == 1
    assert "wrote" not in capsys.readouterr().out
    assert snapshot(out) == {n: b"old" for n in ("recovery_curves.csv", "recovery_curves.png", "recovery_curves.svg")}


def test_curves_and_compare_write_their_files(study, tmp_path, capsys):
    out = tmp_path / "curves"
    assert main(["curves", str(study), "-o", str(out), "--origin", "first_contact", "--by", "modality"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["recovery_curves.csv", "recovery_curves.csv.provenance.json",
                                                     "recovery_curves.png", "recovery_curves.svg"]
    assert main(["compare", str(study), "--day", "42", "--reference", "none", "--csv", str(tmp_path / "c.csv")]) == 0
    assert "untreated" in pd.read_csv(tmp_path / "c.csv").to_string()


def test_unwritable_suffix_is_a_usage_error(study, tmp_path, capsys):
    for argv in (["report", str(study), "-o", str(tmp_path / "report.docx")],
                 ["claims", str(study), "--csv", str(tmp_path / "claims.xlsx")],
                 ["validate", str(study), "--problems", str(tmp_path / "problems.json")]):
        assert main(argv) == 2
        assert "cannot write a" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.docx")) and not list(tmp_path.glob("*.xlsx"))


def test_bad_flag_values_are_usage_errors_naming_the_flag(study, capsys):
    for flags, words in ((["--rule", "nrs<<1"], ["argument --rule", "nrs<=1 x2"]),
                         (["--claimed", "90"], ["argument --claimed", "did you mean 0.9"]),
                         (["--min-n", "0"], ["argument --min-n"]),
                         (["--day", "-1"], ["argument --day"]),
                         (["--alpha", "5"], ["argument --alpha"]),
                         (["--origin", "visit"], ["argument --origin"])):
        assert main(["claims", str(study), *flags]) == 2, flags
        err = capsys.readouterr().err
        assert all(w in err for w in words), (flags, err)
    assert main(["report", str(study), "-o", "r.html", "--instrument", "sf36"]) == 2
    assert "argument --instrument" in capsys.readouterr().err


def test_problems_are_printed_up_to_50_and_written_all(tmp_path, capsys):
    rows = "".join(f"p{i},2024-01-{1 + i % 28:02d},nrs,{11 + i}\n" for i in range(90))
    rows += "".join(f"p{i},2024-13-01,nprs,x{i}\n" for i in range(40))
    write(tmp_path / "scores.csv", SCORES + rows)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path)
    expected = info.value.problems
    out_file = tmp_path.parent / "problems.csv"
    assert main(["validate", str(tmp_path), "--problems", str(out_file)]) == 1
    out = capsys.readouterr().out
    shown = [ln for ln in out.splitlines() if re.match(r"scores\.csv:\d+:", ln)]
    assert len(shown) == SHOWN and f"... and {len(expected) - SHOWN} more problem(s)." in out
    assert re.search(r"scores\s+score\s+out_of_range\s+90", out) and re.search(r"scores\s+date\s+bad_date\s+40", out)
    written = pd.read_csv(out_file)
    assert len(written) == len(expected) == 170
    assert list(zip(written["row"], written["column"], written["reason"])) == list(
        zip(expected["row"], expected["column"], expected["reason"]))
    # --exclude: one problem per excluded row (here every row, so nothing is left to analyse)
    assert main(["validate", str(tmp_path), "--exclude", "--problems", str(out_file), "--force"]) == 1
    assert sorted(pd.read_csv(out_file)["row"]) == list(range(2, 132))
    with open(tmp_path / "scores.csv", "a") as f:
        f.write("p1,2024-02-01,nrs,3\n")
    with pytest.warns(UserWarning, match="130 invalid row"):
        assert main(["validate", str(tmp_path), "--exclude", "--problems", str(out_file), "--force"]) == 0
    assert len(pd.read_csv(out_file)) == 130


def test_validate_reports_blank_rows_and_same_day_scores(tmp_path, capsys):
    write(tmp_path / "scores.csv", SCORES + "p1,2024-01-05,nrs,6\n,,,\np1,2024-01-05,nrs,7\np1,2024-01-09,nrs,2\n")
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows excluded: blank_row" in out
    assert "2 score row(s) share their episode, instrument and day with a different score" in out


def test_simulate_writes_a_new_directory_that_validates(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "-n", "60", "-o", str(out), "--truth"]) == 0
    tables = ["episodes.csv", "patients.csv", "scores.csv", "sessions.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*tables, *(t + ".provenance.json" for t in tables),
                                                            "truth"])
    assert main(["validate", str(out)]) == 0
    before = snapshot(out)
    assert main(["simulate", "-n", "60", "-o", str(out)]) == 2
    assert snapshot(out) == before
    assert main(["simulate", "-n", "60", "-o", str(out), "--format", "parquet", "--force"]) == 2  # would mix tables
    assert main(["simulate", "-n", "60", "-o", str(out), "--seed", "2", "--force"]) == 0
    assert snapshot(out) != before


def test_claims_population_tests_one_claim_like_the_api(study, tmp_path, capsys):
    out = tmp_path / "claim.csv"
    assert main(["claims", str(study), "--population", "none", "--rule", "nrs<=1 x2", "--day", "42",
                 "--claimed", "0.9", "--csv", str(out)]) == 0
    api = bpo.test_resolution_claim(bpo.load_study(study), claimed=0.9, day=42, rule="nrs<=1 x2",
                                    population="untreated")
    assert pd.read_csv(out)["estimate"].iat[0] == pytest.approx(api.estimate)
    assert main(["claims", str(study), "--population", "nonsense"]) == 2
    assert "population='nonsense'" in capsys.readouterr().err


VISITS = ("PatientID,VisitDate,Treatment,PainScore(0-10)\n"
          "p1,14/07/2024,Deep tissue,7\np1,21/07/2024,,4\np2,15/07/2024,No treatment,6\np2,03/08/2024,,9\n")


def test_validate_a_visit_export_like_the_api(tmp_path, capsys):
    write(tmp_path / "visits.csv", VISITS)
    argv = ["validate", "--visits", str(tmp_path / "visits.csv"), "--patient", "PatientID", "--date", "VisitDate",
            "--treatment", "Treatment", "--score", "PainScore(0-10)=nrs"]
    assert main(argv) == 0
    out = capsys.readouterr()
    api = load_visits(tmp_path / "visits.csv", patient="PatientID", date="VisitDate", treatment="Treatment",
                      scores={"PainScore(0-10)": "nrs"})
    assert api.flow().to_string(index=False) in out.out
    assert "note: visits.csv: 4 visit row(s)" in out.err and "read as day/month/year" in out.err
    # a problem names the visit file's line and column; --problems writes them all
    write(tmp_path / "visits.csv", VISITS + "p2,32/08/2024,,5\n")
    assert main([*argv, "--problems", str(tmp_path / "problems.csv")]) == 1
    assert "visits.csv:6:VisitDate: not a valid date" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "problems.csv")[["row", "column"]].values.tolist() == [[6, "VisitDate"]]
    # with an episodes table (onsets) given as a path
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-07-01\ne2,p2,2024-07-10\n")
    assert main(["validate", str(tmp_path / "episodes.csv"), "--visits", str(tmp_path / "visits.csv"),
                 "--score", "PainScore(0-10)", "--exclude"]) == 0
    assert "onset known for 2 of 2 episodes" in capsys.readouterr().out


def test_visit_flags_are_checked(tmp_path, capsys):
    write(tmp_path / "visits.csv", VISITS)
    cases = [(["validate", "--visits", str(tmp_path / "visits.csv"), "--score", "PainScore(0-10)=SF36"],
              "score='SF36' is not a known instrument"),
             (["validate", str(tmp_path), "--patient", "PatientID"], "--patient describes a visit export"),
             (["validate"], "give a study directory or table files, or a visit export with --visits FILE"),
             (["validate", "--visits", str(tmp_path / "visits.csv"), "--date", "When"],
              "date='When': no such column in visits.csv"),
             (["validate", str(tmp_path / "visits.csv"), "--visits", str(tmp_path / "visits.csv")],
              "cannot tell which table")]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_a_path_that_does_not_exist_is_named_as_such(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere'}: no such file or directory" in err and "no scores table" not in err
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        bpo.load_study(tmp_path / "nowhere")


def test_an_episodes_table_without_a_valid_row_exits_1_listing_the_problems(tmp_path, capsys):
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\nE1,1,03/04/2024\nE2,2,04/03/2024\n")
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\n1,E1,2024-05-02,nrs,7\n"
          "2,E2,2024-05-02,nrs,7\n")
    for flags in ([], ["--exclude"]):
        assert main(["validate", str(tmp_path), *flags]) == 1
        out = capsys.readouterr().out
        assert "episodes.csv:2:onset_date: ambiguous date" in out and "episodes.csv:3:onset_date" in out


# ----------------------------------------------------------------------------------------- publication tables
def _config_has(record, flags: dict):
    """The provenance configuration records every flag with the value given (the API's names)."""
    assert {k: record.config[k] for k in flags} == flags, record.config
    assert record.config["loading"] == {"exclude": False, "no_sessions": "unknown"}


def _docx_cells(path):
    import docx  # the export extra, installed in the development environment
    grid = docx.Document(str(path)).tables[0]
    return [[cell.text for cell in row.cells] for row in grid.rows]


def test_table1_writes_each_format_like_the_api_with_provenance(study, tmp_path, capsys):
    from backpain_outcomes.export import publication_table, to_latex, to_markdown
    from backpain_outcomes.provenance import read_provenance, sha256_file
    from backpain_outcomes.table_one import table_one
    flags = ["--by", "chronicity", "--instrument", "nrs", "--origin", "first_contact", "--min-n", "3", "--test"]
    # the expected table: the API with the same arguments on the same files
    api = table_one(bpo.load_study(study), by="chronicity", instrument="nrs", origin="first_contact", min_n=3,
                    test=True)
    assert main(["table1", str(study), *flags]) == 0  # no -o: the Markdown table on stdout
    assert capsys.readouterr().out == to_markdown(api)
    for name in ("t1.md", "t1.tex", "t1.docx", "t1.csv"):
        assert main(["table1", str(study), *flags, "-o", str(tmp_path / name)]) == 0, name
        assert f"Table 1 written to {tmp_path / name}" in capsys.readouterr().out
        record = read_provenance(tmp_path / name)  # also checks the sidecar's hash of the output
        _config_has(record, {"by": "chronicity", "instrument": "nrs", "origin": "first_contact", "min_n": 3,
                             "test": True})
        assert record.command == ["backpain-outcomes", "table1", str(study), *flags, "-o", str(tmp_path / name)]
        assert {Path(i["path"]).name: i["sha256"] for i in record.inputs} == {
            f.name: sha256_file(f) for f in study.iterdir() if f.suffix == ".csv"}
    assert (tmp_path / "t1.md").read_text(encoding="utf-8") == to_markdown(api)
    assert (tmp_path / "t1.tex").read_text(encoding="utf-8") == to_latex(api)
    pub = publication_table(api)
    assert _docx_cells(tmp_path / "t1.docx") == [list(pub.columns), *pub.astype(str).values.tolist()]
    csv = pd.read_csv(tmp_path / "t1.csv")
    assert "p_value" in api.comparisons and len(csv) == len(api.table)
    pd.testing.assert_series_equal(csv["mean"], api.table["mean"].astype(float), check_dtype=False, atol=1e-9)


def test_table1_output_safety(study, tmp_path, capsys):
    before = snapshot(study)
    out = tmp_path / "t1.md"
    out.write_text("old")
    assert main(["table1", str(study), "-o", str(out)]) == 2
    assert "-o: " in capsys.readouterr().err and out.read_text() == "old"
    assert main(["table1", str(study), "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith("**Baseline characteristics by modality**")
    capsys.readouterr()
    (tmp_path / "t2.md.provenance.json").write_text("old")  # a sidecar is an output too
    refused = [
        (["table1", str(study), "-o", str(tmp_path / "t2.md")], "exists; pass --force"),
        (["table1", str(study / "scores.csv"), str(study / "sessions.csv"), "-o", str(study / "scores.csv"),
          "--force"], "one of the input files"),
        (["table1", str(study), "-o", str(study / "t1.md")], "into the input directory"),
        (["table1", str(study), "-o", str(tmp_path / "p.csv"), "--problems", str(tmp_path / "p.csv")],
         "give each output its own file"),
        (["table1", str(study), "-o", str(tmp_path / "t1.xlsx")], "-o: cannot write a .xlsx file"),
    ]
    for argv, message in refused:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert snapshot(study) == before and (tmp_path / "t2.md.provenance.json").read_text() == "old"
    assert not (tmp_path / "t2.md").exists() and not (tmp_path / "t1.xlsx").exists()


def test_claims_and_compare_write_their_publication_tables(study, tmp_path, capsys):
    from backpain_outcomes.export import to_markdown
    from backpain_outcomes.provenance import read_provenance
    loaded = bpo.load_study(study)
    out = tmp_path / "claims.md"
    assert main(["claims", str(study), "--day", "42", "--table", str(out)]) == 0
    assert f"claims publication table written to {out}" in capsys.readouterr().out
    api = bpo.evaluate_seed_claims(loaded, day=42)  # the same numbers as the API with the same arguments
    assert out.read_text(encoding="utf-8") == to_markdown(api)
    record = read_provenance(out)
    _config_has(record, {"rule": "nrs<=1 x2", "day": 42, "origin": "onset", "claimed": 0.9, "alpha": 0.05,
                         "min_n": 20, "population": None})
    assert len(record.inputs) == 4 and set(record.tables) >= {"scores", "sessions"}
    out = tmp_path / "compare.csv"
    argv = ["compare", str(study), "--reference", "none", "--min-n", "6", "--table", str(out)]
    assert main(argv) == 0
    api = bpo.compare_modalities(loaded, reference="untreated", min_n=6)
    table = pd.read_csv(out)
    for col in ("difference", "ci_low", "ci_high", "hazard_ratio"):
        pd.testing.assert_series_equal(table[col], api.table[col].astype(float), check_dtype=False, atol=1e-9)
    _config_has(read_provenance(out), {"instrument": "nrs", "day": 42, "reference": "untreated", "origin": "onset",
                                       "alpha": 0.05, "min_n": 6})
    before = out.read_bytes()
    assert main(argv) == 2  # exists: replaced only with --force
    assert "--table: " in capsys.readouterr().err and out.read_bytes() == before
    assert main([*argv, "--force"]) == 0
    for argv, message in ((["claims", str(study), "--table", str(study / "episodes.csv")], "--table: refusing"),
                          (["compare", str(study), "--table", str(tmp_path / "c.json")], "--table: cannot write"),
                          (["compare", str(study), "--csv", str(tmp_path / "c.csv"), "--table",
                            str(tmp_path / "c.csv")], "give each output its own file")):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_table1_bad_flag_values_are_usage_errors_naming_the_flag(study, capsys):
    for flags, word in ((["--min-n", "0"], "argument --min-n"), (["--origin", "visit"], "argument --origin"),
                        (["--instrument", "sf36"], "argument --instrument"), (["--by", "nonsense"], "argument --by"),
                        (["--by", "age"], "argument --by")):
        assert main(["table1", str(study), *flags]) == 2, flags
        err = capsys.readouterr().err
        assert word in err, (flags, err)
