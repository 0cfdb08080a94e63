"""Safe output: no input overwritten, --force, temp file moved into place, formula injection neutralised."""

import pandas as pd
import pytest

from backpain_outcomes.safe_io import (
    OutputError,
    atomic_path,
    check_directory,
    check_output,
    final_path,
    neutralise_formulas,
    safe_csv,
)


def test_csv_formula_injection_neutralised():
    df = pd.DataFrame({"a": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "ok"], "b": [-1.5, 2, 3, 4, 5]})
    out = neutralise_formulas(df)
    assert out["a"].tolist() == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "ok"]
    assert out["b"].tolist() == [-1.5, 2, 3, 4, 5]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    out = tmp_path / "table.csv"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != out
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    with pytest.raises(OSError, match="was not written"), atomic_path(out):
        pass  # a writer that produced nothing
    assert out.read_text() == "old"
    safe_csv(pd.DataFrame({"a": [1]}), out)
    assert out.read_text().splitlines() == ["a", "1"]


def test_check_output_refuses_inputs_existing_files_and_suffixes(tmp_path):
    data = tmp_path / "study"
    data.mkdir()
    scores = data / "scores.csv"
    scores.write_text("x")
    with pytest.raises(OutputError, match="one of the input files"):
        check_output(tmp_path / "study" / ".." / "study" / "scores.csv", [scores], force=True)
    with pytest.raises(OutputError, match="into the input directory"):
        check_output(data / "new.csv", [data], force=True)
    (tmp_path / "old.csv").write_text("x")
    with pytest.raises(OutputError, match=r"exists; pass force=True \(--force on the command line\)"):
        check_output(tmp_path / "old.csv", [data])  # from Python: the argument, not the flag
    with pytest.raises(OutputError, match=r"-o: .* exists; pass --force to replace it$"):
        check_output(tmp_path / "old.csv", [data], what="-o")  # from the command line: the flag
    assert check_output(tmp_path / "old.csv", [data], force=True) == tmp_path / "old.csv"
    with pytest.raises(OutputError, match="cannot write a .docx file; use .html or .pdf"):
        check_output(tmp_path / "r.docx", suffixes=(".html", ".pdf"), what="-o")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(data, force=True)
    with pytest.raises(OutputError, match="it is the input directory"):
        check_directory(data, [data], force=True)
    with pytest.raises(OutputError, match="is a file"):
        check_directory(scores)


def test_arrow_engine_writes_the_same_values(tmp_path):
    df = pd.DataFrame({"a": ["=x", None, "ok"], "b": [1.5, None, 2.0], "c": [1, "y", None],
                       "d": pd.Categorical(["@m", "n", "n"]), "row": pd.array([2, None, 4], dtype="Int64")})
    safe_csv(df, tmp_path / "a.csv", engine="arrow")
    back = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    assert back.values.tolist() == [["'=x", "1.5", "1", "'@m", "2"], ["", "", "y", "n", ""], ["ok", "2", "", "n", "4"]]


def test_nested_atomic_paths_use_one_partial_marker_and_errors_name_the_users_file(tmp_path):
    out = tmp_path / "r.html"
    with atomic_path(out) as outer, atomic_path(outer) as inner:
        # the CLI wraps clinic_report, which uses atomic_path again: no "..r.x.partial.y.partial.html"
        assert inner.name.count("partial") == 1 and inner.name.startswith(".r.") and inner.suffix == ".html"
        assert final_path(inner) == final_path(outer) == out
        inner.write_text("report")
    assert out.read_text() == "report" and [p.name for p in tmp_path.iterdir()] == ["r.html"]

    def refused(target):  # what writing into a read-only directory raises (the tests may run as root)
        raise PermissionError(13, "Permission denied", str(target))
    for nested in (False, True):
        with pytest.raises(PermissionError) as info, atomic_path(out) as outer:
            if nested:
                with atomic_path(outer) as inner:
                    refused(inner)
            else:
                refused(outer)
        msg = str(info.value)
        assert msg == f"cannot write {out}: Permission denied; check that the directory {tmp_path} exists and is writable"
        assert "partial" not in msg and info.value.errno == 13
    assert out.read_text() == "report" and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with pytest.raises(FileNotFoundError, match="missing.csv"), atomic_path(out):
        open(tmp_path / "missing.csv")  # an error about another file is left as it is
