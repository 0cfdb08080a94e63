"""Provenance under hostile use: unicode paths, outputs edited after writing, sidecars that collide with inputs,
two outputs on one path, markup in configuration values, figures read back, stable hashes, corrupt files."""

import dataclasses
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

import backpain_outcomes as bpo
from backpain_outcomes import provenance_values
from backpain_outcomes.cli import main
from backpain_outcomes.exceptions import ExcludedRowsWarning
from backpain_outcomes.fhir import load_fhir
from backpain_outcomes.provenance import (
    KEY,
    Provenance,
    ProvenanceError,
    embed_html,
    figure_metadata,
    make_provenance,
    read_provenance,
    seal_figure,
    sha256_frame,
    sidecar_path,
    text_with_provenance,
    written_with_sidecar,
)
from backpain_outcomes.report import clinic_report
from backpain_outcomes.safe_io import OutputError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

EVIL = "</script><script>alert(1)</script><!-- -->"


@pytest.fixture
def study(tmp_path):
    return shutil.copytree(bpo.example_path(), tmp_path / "my study ü")


@pytest.fixture
def record():
    return make_provenance("test", {"title": "Rückenschmerz – " + EVIL, "day": 42})


def _figure(tmp_path, record, fmt):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    path = tmp_path / f"fig ü.{fmt}"
    fig.savefig(path, metadata=figure_metadata(record, fmt))
    plt.close(fig)
    seal_figure(path, record)
    return path


def _same(a: Provenance, b: Provenance) -> None:
    assert dataclasses.replace(a, content_sha256=None) == dataclasses.replace(b, content_sha256=None)


# ------------------------------------------------------------------------------------------ round trips
def test_unicode_and_spaces_in_paths(study, tmp_path, capsys):
    out = tmp_path / "out dir é" / "claims ü.csv"
    text = out.with_name("verdicts – ü.txt")
    assert main(["claims", str(study), "--csv", str(out), "--text", str(text)]) == 0
    for path in (out, text):
        record = read_provenance(path)
        assert {i["path"] for i in record.inputs} == {str(p.resolve()) for p in study.glob("*.csv")}
        assert record.command[2] == str(study)
    assert sidecar_path(out).name == "claims ü.csv.provenance.json"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_figures_round_trip_with_unicode_and_markup_in_the_config(tmp_path, record, fmt):
    path = _figure(tmp_path, record, fmt)
    back = read_provenance(path)
    _same(back, record)
    assert back.config["title"] == "Rückenschmerz – " + EVIL and back.content_sha256 is not None


def test_created_is_utc_iso_8601_and_hashes_are_stable(study):
    a = make_provenance("x", {}, study=bpo.load_study(study))
    b = make_provenance("x", {}, study=bpo.load_study(study))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a.created)
    assert a.created_at.utcoffset().total_seconds() == 0
    assert a.inputs == b.inputs and a.tables == b.tables  # the same inputs give the same hashes
    # the same files named in another order are the same inputs (listed by path)
    files = sorted(study.glob("*.csv"))
    assert make_provenance("x", {}, input_files=files).inputs == make_provenance("x", {}, input_files=files[::-1]).inputs
    # the table hash identifies the table as analysed, row order included (documented in sha256_frame)
    df = pd.DataFrame({"a": [1, 2]})
    assert sha256_frame(df) != sha256_frame(df.iloc[::-1])


def test_a_large_table_is_hashed_in_chunks_to_the_same_hash(monkeypatch):
    df = pd.DataFrame({"a": [1.5, None, 3.0, 4.25, 5.0], "b": list("vwxyz")})
    whole = sha256_frame(df)
    monkeypatch.setattr(provenance_values, "_CHUNK_ROWS", 2)
    assert sha256_frame(df) == whole   # the header once, then the rows: the same text in pieces


def test_configuration_values_that_json_cannot_hold():
    record = make_provenance("x", {"alpha": float("nan"), "day": np.float64("inf"), "flag": np.bool_(True),
                                   "n": np.int64(3), "when": pd.Timestamp("2024-01-02")})
    back = Provenance.from_dict(json.loads(record.to_json()))
    assert back.config == {"alpha": "nan", "day": "inf", "flag": True, "n": 3, "when": "2024-01-02T00:00:00"}


# ------------------------------------------------------------------------------------------ edited outputs
def test_an_edited_csv_is_reported_also_through_its_sidecar(tmp_path, record):
    out = tmp_path / "t.csv"
    with written_with_sidecar(out, record) as tmp:
        tmp.write_text("a\n1\n")
    out.write_text("a\n2\n")
    for path in (out, sidecar_path(out)):  # reading the sidecar itself checks the output too
        with pytest.raises(ProvenanceError, match="has changed since"):
            read_provenance(path)
    out.unlink()
    with pytest.raises(ProvenanceError, match="no longer exists"):
        read_provenance(sidecar_path(out))


def test_an_edited_html_or_text_output_is_reported(tmp_path, record):
    page = tmp_path / "r.html"
    page.write_text(embed_html("<html><head><title>t</title></head><body><p>42%</p></body></html>", record),
                    encoding="utf-8")
    text = tmp_path / "v.txt"
    text.write_text(text_with_provenance("C1: resolved 42%", record), encoding="utf-8")
    for path in (page, text):
        _same(read_provenance(path), record)
        path.write_text(path.read_text(encoding="utf-8").replace("42%", "24%"), encoding="utf-8")
        with pytest.raises(ProvenanceError, match="has changed since it was written"):
            read_provenance(path)


def test_text_added_below_the_footer_is_an_edit(tmp_path, record):
    text = tmp_path / "v.txt"
    text.write_text(text_with_provenance("C1: resolved 42%", record), encoding="utf-8")
    with text.open("a", encoding="utf-8") as f:
        f.write("C5: resolved 99%\n")
    with pytest.raises(ProvenanceError, match="has changed since it was written"):
        read_provenance(text)


def test_an_edited_png_keeping_its_metadata_is_reported(tmp_path, record):
    path = _figure(tmp_path, record, "png")
    with Image.open(path) as im:  # an editor that keeps the text chunks and changes one pixel
        info = PngImagePlugin.PngInfo()
        for k, v in im.text.items():
            info.add_text(k, v)
        im = im.convert("RGBA")
        im.putpixel((0, 0), (1, 2, 3, 255))
        im.save(path, pnginfo=info)
    with pytest.raises(ProvenanceError, match="has changed since it was written"):
        read_provenance(path)


def test_an_edited_svg_is_reported(tmp_path, record):
    path = _figure(tmp_path, record, "svg")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("</svg>", '<rect width="1" height="1"/></svg>'), encoding="utf-8")
    with pytest.raises(ProvenanceError, match="has changed since it was written"):
        read_provenance(path)


# ------------------------------------------------------------------------------------------ markup
class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self._in = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append([dict(attrs), ""])
            self._in = True

    def handle_endtag(self, tag):
        self._in = False if tag == "script" else self._in

    def handle_data(self, data):
        if self._in:
            self.scripts[-1][1] += data


def test_markup_in_the_configuration_cannot_leave_the_record(tmp_path, record):
    page = embed_html("<html><head></head><body></body></html>", record)
    parser = _Scripts()
    parser.feed(page)
    # one script element only, ours, whose content is the whole record
    assert len(parser.scripts) == 1 and parser.scripts[0][0]["id"] == "backpain-outcomes-provenance"
    assert json.loads(parser.scripts[0][1])["config"]["title"].endswith(EVIL)
    assert page.count("</script>") == 1 and "<!--" not in page


def test_a_file_name_with_markup_stays_inside_the_record(tmp_path):
    # '/' cannot be in a file name, but a path can spell </script> across a directory boundary
    data = tmp_path / "a<" / "script><img src=x onerror=alert(1)>.csv"
    data.parent.mkdir()
    data.write_text("x\n1\n")
    record = make_provenance("test", {}, input_files=[data])
    out = tmp_path / "r.html"
    out.write_text(embed_html("<html><head></head><body></body></html>", record), encoding="utf-8")
    page = out.read_text(encoding="utf-8")
    assert "</script><img" not in page and "<img" not in page
    assert read_provenance(out).inputs[0]["path"] == str(data.resolve())


def test_a_fhir_study_names_its_files(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(Path(__file__).parent / "data" / "fhir" / "export", export)
    with pytest.warns(ExcludedRowsWarning):  # the test export holds invalid resources on purpose
        study = load_fhir(export, today="2025-01-01", errors="exclude",
                          modality_map={"http://clinic.example.org/CodeSystem/treatments|CUP": "cupping"})
    record = make_provenance("test", {}, study=study)
    assert [i["path"] for i in record.inputs] == [str(p.resolve()) for p in sorted(export.glob("*.ndjson"))]


def test_a_pdf_sidecar_that_is_an_input_is_refused(tmp_path):
    sim, _ = bpo.simulate_study(60, seed=3)
    clash = tmp_path / "r.pdf.provenance.json"
    clash.write_text("{}")
    sim.input_files.append(clash)
    with pytest.raises(OutputError, match="one of the input files"):
        clinic_report(sim, tmp_path / "r.pdf", progress=False)
    assert clash.read_text() == "{}"


# ------------------------------------------------------------------------------------------ command line
def test_two_outputs_on_one_path_are_refused(study, tmp_path, capsys):
    out = tmp_path / "both.csv"
    assert main(["claims", str(study), "--csv", str(out), "--problems", str(out)]) == 2
    assert "--csv" in capsys.readouterr().err and not out.exists()
    curves = tmp_path / "curves"
    argv = ["curves", str(study), "-o", str(curves), "--problems", str(curves / "recovery_curves.csv")]
    assert main(argv) == 2
    assert "is also written by --problems" in capsys.readouterr().err and not curves.exists()


def test_an_html_report_ignores_a_sidecar_it_does_not_write(study, tmp_path, capsys):
    out = tmp_path / "report.html"
    sidecar_path(out).write_text("someone else's file")
    assert main(["report", str(study), "-o", str(out), "--min-n", "5"]) == 0
    assert sidecar_path(out).read_text() == "someone else's file"
    assert read_provenance(out).function == "clinic_report"


# ------------------------------------------------------------------------------------------ corrupt files
@pytest.mark.parametrize(("name", "content"), [
    ("bad.png", b"not a png"), ("bad.svg", b"<svg><unclosed"), ("bad.html", b"\xff\xfe<html>"),
    ("bad.txt", b"x\n-- backpain-outcomes provenance (JSON) --\n{\"schema\": 1}\n"),
])
def test_corrupt_files_give_a_provenance_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProvenanceError):
        read_provenance(path)


def test_a_record_of_the_schema_with_missing_or_wrong_fields(tmp_path):
    with pytest.raises(ProvenanceError, match="missing"):
        Provenance.from_dict({"schema": "backpain-outcomes/provenance/1", "version": "1"})
    with pytest.raises(ProvenanceError, match="config"):
        Provenance.from_dict({"schema": "backpain-outcomes/provenance/1", "version": "1", "function": "f",
                              "config": "day=42"})
    assert KEY == "backpain-outcomes:provenance"


def test_arguments_that_are_not_a_readable_file_are_named(tmp_path, record):
    with pytest.raises(TypeError, match="path must be a file path .* got NoneType"):
        read_provenance(None)
    with pytest.raises(ProvenanceError, match="is a directory"):
        read_provenance(tmp_path)
    out = tmp_path / "t.csv"
    with written_with_sidecar(out, record) as tmp:
        tmp.write_text("a\n1\n")
    sidecar_path(out).write_bytes(b'{"schema": "\xff\xfe"}')  # Latin-1 bytes, not UTF-8
    for path in (out, sidecar_path(out)):
        with pytest.raises(ProvenanceError, match="not UTF-8"):
            read_provenance(path)


def test_an_embedded_record_without_its_content_hash_is_unverifiable(tmp_path, record):
    text = tmp_path / "v.txt"
    text.write_text(text_with_provenance("C1: resolved 42%", record), encoding="utf-8")
    lines = text.read_text(encoding="utf-8").splitlines()
    stripped = json.loads(lines[-1])
    del stripped["content_sha256"]
    text.write_text("\n".join([*lines[:-1], json.dumps(stripped)]) + "\n", encoding="utf-8")
    with pytest.raises(ProvenanceError, match="holds no content_sha256, so the file cannot be verified"):
        read_provenance(text)
