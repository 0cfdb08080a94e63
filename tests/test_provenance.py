"""Provenance: every file the command line writes records the version, command, configuration, seed, date and
the SHA-256 of its inputs, and read_provenance reads it back from each kind of output."""

import datetime as dt
import hashlib
import json
import shutil
import stat

import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.cli import main
from backpain_outcomes.provenance import (
    SIDECAR_SUFFIX,
    Provenance,
    ProvenanceError,
    make_provenance,
    read_provenance,
    sha256_frame,
    sidecar_path,
    written_with_sidecar,
)
from backpain_outcomes.report import clinic_report
from backpain_outcomes.rules import as_rule

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def study(tmp_path):
    """A copy of the example study (outputs can then be checked against the bytes of these very files)."""
    return shutil.copytree(bpo.example_path(), tmp_path / "study")


@pytest.fixture
def pdf_browser(tmp_path, monkeypatch):
    """A 'chromium' that writes a small PDF to the --print-to-pdf path (the real one takes seconds)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "chromium"
    exe.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in --print-to-pdf=*) '
                   'printf "%%PDF-1.4 fake" > "${a#--print-to-pdf=}";; esac; done\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def written(directory):
    """Every output file under ``directory`` (sidecars are read through their output)."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(SIDECAR_SUFFIX))


def check_common(record: Provenance, argv, inputs):
    assert record.version == bpo.__version__
    assert record.command == ["backpain-outcomes", *argv]
    created = record.created_at
    assert created.tzinfo is not None and abs((created - NOW).total_seconds()) < 600
    assert {(i["path"], i["sha256"]) for i in record.inputs} == {(str(p.resolve()), sha(p)) for p in inputs}
    assert set(record.environment) == {"python", "pandas", "numpy"}


def test_every_output_of_every_command_carries_its_provenance(study, tmp_path, pdf_browser, capsys):
    out = tmp_path / "out"
    inputs = sorted(study.glob("*.csv"))
    rule = "nrs<=1 for 14 days"
    runs = {
        "validate": ["validate", str(study), "--problems", str(out / "problems.csv")],
        "claims": ["claims", str(study), "--rule", rule, "--day", "56", "--origin", "first_contact", "--alpha", "0.1",
                   "--csv", str(out / "claims.csv"), "--text", str(out / "claims.txt")],
        "compare": ["compare", str(study), "--instrument", "NPRS", "--day", "84", "--reference", "untreated",
                    "--origin", "first_contact", "--min-n", "6", "--csv", str(out / "compare.csv")],
        "curves": ["curves", str(study), "-o", str(out / "curves"), "--instrument", "nrs", "--origin", "first_contact"],
        "report": ["report", str(study), "-o", str(out / "report.html"), "--rule", rule, "--day", "56",
                   "--origin", "first_contact", "--instrument", "nrs", "--min-n", "6"],
        "pdf": ["report", str(study), "-o", str(out / "report.pdf"), "--day", "84"],
    }
    for argv in runs.values():
        assert main(argv) == 0, argv
    expected = {  # output -> (command, configuration given on its command line)
        "problems.csv": ("validate", {}),
        "claims.csv": ("claims", {"day": 56, "origin": "first_contact", "alpha": 0.1, "min_n": 20}),
        "claims.txt": ("claims", {"day": 56, "origin": "first_contact", "alpha": 0.1}),
        "compare.csv": ("compare", {"instrument": "nrs", "day": 84, "reference": "untreated",
                                    "origin": "first_contact", "min_n": 6}),
        "recovery_curves.csv": ("curves", {"instrument": "nrs", "origin": "first_contact", "by": ["modality"]}),
        "recovery_curves.png": ("curves", {"instrument": "nrs", "origin": "first_contact"}),
        "recovery_curves.svg": ("curves", {"instrument": "nrs", "origin": "first_contact"}),
        "report.html": ("report", {"day": 56, "origin": "first_contact", "instrument": "nrs", "min_n": 6}),
        "report.pdf": ("pdf", {"day": 84, "origin": "onset", "instrument": "nrs", "min_n": 5}),
    }
    files = written(out)
    assert sorted(p.name for p in files) == sorted(expected)
    loaded = bpo.load_study(study)
    for path in files:
        name, config = expected[path.name]
        record = read_provenance(path)
        check_common(record, runs[name], inputs)
        assert record.seed is None
        for key, value in config.items():
            assert record.config[key] == value, (path.name, key)
        if name in ("claims", "report"):
            assert as_rule(record.config["rule"]) == as_rule(rule)
            assert record.config["rule_description"] == repr(as_rule(rule))
        assert record.config["loading"]["no_sessions"] == "unknown"
        # the tables as analysed, hashed the same way as the study loaded in Python
        assert record.tables == {t: sha256_frame(getattr(loaded, t)) for t in ("patients", "episodes", "sessions",
                                                                               "scores")}
    for name in ("problems.csv", "claims.csv", "compare.csv", "report.pdf"):  # sidecars hash their output
        path = next(p for p in files if p.name == name)
        assert json.loads(sidecar_path(path).read_text())["output_sha256"] == sha(path)


def test_simulate_records_its_seed_in_every_table(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["simulate", "-n", "40", "--seed", "17", "-o", str(out), "--truth", "--untreated-resolved-by-42", "0.8"]
    assert main(argv) == 0
    files = written(out)
    assert [p.relative_to(out).as_posix() for p in files] == [
        "episodes.csv", "patients.csv", "scores.csv", "sessions.csv", "truth/episodes.csv"]
    for path in files:
        record = read_provenance(path)
        check_common(record, argv, [])
        assert record.seed == 17 and record.function == "simulate_study"
        assert record.config["n"] == 40 and record.config["untreated_resolved_by_42"] == 0.8
    argv = ["simulate", "-n", "20", "--seed", "5", "-o", str(tmp_path / "pq"), "--format", "parquet"]
    assert main(argv) == 0
    assert {read_provenance(p).seed for p in written(tmp_path / "pq")} == {5}
    assert main(["validate", str(out)]) == 0  # the sidecars are not read as tables


def test_sidecars_obey_force(study, tmp_path, capsys):
    out = tmp_path / "claims.csv"
    sidecar_path(out).write_text("an older sidecar")
    assert main(["claims", str(study), "--csv", str(out)]) == 2
    assert "claims.csv.provenance.json exists; pass --force" in capsys.readouterr().err
    assert not out.exists() and sidecar_path(out).read_text() == "an older sidecar"
    assert main(["claims", str(study), "--csv", str(out), "--force"]) == 0
    assert read_provenance(out).function == "evaluate_seed_claims"


def test_reading_refuses_a_changed_output_and_a_file_without_record(tmp_path):
    record = make_provenance("test", {"day": 42})
    out = tmp_path / "table.csv"
    with written_with_sidecar(out, record) as tmp:
        tmp.write_text("a\n1\n")
    assert read_provenance(out).output_sha256 == hashlib.sha256(b"a\n1\n").hexdigest()
    assert read_provenance(sidecar_path(out)).config == {"day": 42}
    out.write_text("a\n2\n")
    with pytest.raises(ProvenanceError, match="has changed since"):
        read_provenance(out)
    plain = tmp_path / "plain.csv"
    plain.write_text("a\n1\n")
    with pytest.raises(ProvenanceError, match="no provenance record"):
        read_provenance(plain)


def test_a_failed_write_leaves_neither_output_nor_sidecar(tmp_path):
    out = tmp_path / "table.csv"
    with pytest.raises(RuntimeError), written_with_sidecar(out, make_provenance("test", {})) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_html_record_is_escaped_and_a_study_in_memory_is_identified_by_its_tables(tmp_path):
    sim, _ = bpo.simulate_study(80, seed=2)
    title = "</script><script>alert(1)</script> & \"C1\""
    out = clinic_report(sim, tmp_path / "r.html", title=title, day=28, progress=False)
    assert "<script>alert(1)" not in out.read_text(encoding="utf-8")
    record = read_provenance(out)
    assert record.config["title"] == title and record.config["day"] == 28
    assert record.function == "clinic_report" and record.command is None  # called from Python
    # no input file: the hashes of the tables as analysed identify the data
    assert record.inputs == [] and record.tables["scores"] == sha256_frame(sim.scores)


def test_frame_hash_is_the_hash_of_a_canonical_csv():
    df = pd.DataFrame({"a": [1.5, None], "b": ["x", "y"], "d": pd.to_datetime(["2024-01-02", "2024-03-04"])})
    # by hand: header, float with round-trip digits, empty missing value, ISO dates, \n line ends
    text = "a,b,d\n1.5,x,2024-01-02T00:00:00\n,y,2024-03-04T00:00:00\n"
    assert sha256_frame(df) == hashlib.sha256(text.encode()).hexdigest()
    assert sha256_frame(pd.DataFrame({"a": [0.1 + 0.2]})) != sha256_frame(pd.DataFrame({"a": [0.3]}))
