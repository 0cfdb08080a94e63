"""Delimited text files: exact line numbers through quoted multi-line cells, blank and ragged rows, in the fast
(Arrow) and the exact (field by field) reader and every encoding; delimiters; trailing delimiters. Expected line
numbers are counted by hand from the text written (header = line 1)."""

import warnings

import pytest
from conftest import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backpain_outcomes as bpo
from backpain_outcomes.delimited import ReadError, decode, scan_records
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.reading import read_part

HEAD = "patient_id,date,instrument,score,note\n"
# line 2 ok; line 3-5 one row whose note spans three lines; line 6 blank; line 7 delimiters only;
# line 8 bad score; line 9 ragged (6 fields); line 10 a quoted note with a doubled quote, bad date
BODY = ('p1,2024-01-05,nrs,7,first\n'
        'p1,2024-01-06,nrs,6,"a note\nover three\nlines"\n'
        '\n'
        ',,,,\n'
        'p1,2024-01-07,nrs,12,x\n'
        'p1,2024-01-08,nrs,5,x,extra\n'
        'p1,2024-13-01,nrs,5,"say ""hi"""\n')


def _write(path, text, encoding="utf-8", newline="\n", bom=b""):
    path.write_bytes(bom + text.replace("\n", newline).encode(encoding))
    return path


ENCODINGS = [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("utf-16", b""), ("utf-16-le", b""),
             ("utf-16-be", b"")]


@pytest.mark.parametrize("encoding,bom", ENCODINGS)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_through_multiline_cells_blank_and_ragged_rows(tmp_path, encoding, bom, newline):
    _write(tmp_path / "scores.csv", HEAD + BODY.replace("first", "café"), encoding, newline, bom)
    [part] = read_part(tmp_path / "scores.csv", "scores")
    assert part.lines.tolist() == [2, 3, 8, 10]
    assert part.blank.tolist() == [6, 7]
    assert part.ragged.tolist() == [9] and part.ragged_fields.tolist() == [6]
    assert part.data["note"].tolist()[1].splitlines() == ["a note", "over three", "lines"]
    assert part.data["note"].tolist()[0] == "café"
    assert part.data["note"].tolist()[3] == 'say "hi"'
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert list(zip(p["source"], p["row"], p["column"], p["reason"])) == [
        ("scores.csv", 8, "score", "out_of_range"), ("scores.csv", 9, "", "ragged_row"),
        ("scores.csv", 10, "date", "bad_date")]
    with pytest.warns(UserWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    ex = study.exclusions
    assert list(zip(ex["row"], ex["reason"])) == [(6, "blank_row"), (7, "blank_row"), (8, "out_of_range"),
                                                  (9, "ragged_row"), (10, "bad_date")]
    assert study.rows_read["scores"] == 7 == len(study.scores) + len(ex)


def test_slow_reader_for_nonstandard_quotes_keeps_line_numbers(tmp_path):
    # a quote inside an unquoted field (5" disc) is not RFC 4180: the field-by-field reader takes over
    text = HEAD + 'p1,2024-01-05,nrs,7,5" disc\n\np1,2024-01-06,nrs,6,"two\nlines"\np1,2024-01-07,nrs,11,x\n'
    _write(tmp_path / "scores.csv", text)
    assert scan_records((HEAD + 'p1,2024-01-05,nrs,7,5" disc\n').encode(), ",") is None
    [part] = read_part(tmp_path / "scores.csv", "scores")
    assert part.lines.tolist() == [2, 4, 6] and part.blank.tolist() == [3]
    assert part.data["note"].tolist()[0] == '5" disc'
    with pytest.raises(DataValidationError, match=r"scores\.csv:6:score: nrs score is out of range"):
        bpo.load_study(tmp_path, today=TODAY)


def test_trailing_delimiter_on_every_row_is_recognised(tmp_path):
    _write(tmp_path / "scores.csv", "patient_id,date,instrument,score\np1,2024-01-05,nrs,7,\np1,2024-01-06,nrs,4,\n")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores["score"].tolist() == [7.0, 4.0]
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-05", "2024-01-06"]
    assert any("ends with a comma" in n for n in study.notes)
    # header and rows both ending with the delimiter: the unnamed empty column is dropped
    _write(tmp_path / "scores.csv", "patient_id,date,instrument,score,\np1,2024-01-05,nrs,7,\n")
    assert bpo.load_study(tmp_path, today=TODAY).scores["score"].tolist() == [7.0]


@pytest.mark.parametrize("sep,name", [(";", "semicolon"), ("\t", "tab"), ("|", "vertical bar")])
def test_one_column_header_is_read_with_the_delimiter_it_holds(tmp_path, sep, name):
    text = f"patient_id{sep}date{sep}instrument{sep}score\np1{sep}2024-01-05{sep}nrs{sep}7\np1{sep}2024-01-06{sep}nrs{sep}11\n"
    _write(tmp_path / "scores.csv", text)
    with pytest.raises(DataValidationError, match=r"scores\.csv:3:score"):
        bpo.load_study(tmp_path, today=TODAY)
    with pytest.warns(UserWarning):
        study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
    assert [n for n in study.notes if name in n] == [
        f"scores.csv: read with the {name} ('{sep}') as the delimiter: the header line holds no comma"]


def test_utf16_without_bom_is_read_with_a_note(tmp_path):
    _write(tmp_path / "scores.csv", "patient_id,date,instrument,score\nJosé,2024-01-05,nrs,7\n", "utf-16-le")
    study = bpo.load_study(tmp_path, today=TODAY)
    assert study.scores["patient_id"].tolist() == ["José"]
    assert study.notes == ["scores.csv: read as UTF-16 (little-endian) without a byte-order mark"]


def test_mixed_encodings_name_the_first_line_that_does_not_decode(tmp_path):
    data = ("patient_id,date,instrument,score\nJosé,2024-01-05,nrs,7\n".encode()
            + "René,2024-01-06,nrs,6\n".encode("cp1252") + "Zoë,2024-01-07,nrs,5\n".encode("cp1252"))
    (tmp_path / "scores.csv").write_bytes(data)
    with pytest.raises(DataValidationError) as info:
        bpo.load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["source", "row", "reason"]].values.tolist() == [["scores.csv", 3, "encoding"]]
    assert "line 3 is not UTF-8 (byte E9) but line 2 is: the file mixes encodings" in p["message"].iat[0]


def test_decode_cp1252_note_and_undecodable_line():
    assert decode("é".encode("cp1252")) == ("é".encode(), ["read as Windows-1252 (cp1252): the file is not UTF-8"])
    with pytest.raises(ReadError) as info:
        decode(b"a,b\nok,1\n\x81\x8d,2\n")
    assert info.value.line == 3 and "neither" not in info.value.message and "line 3" in info.value.message


# ------------------------------------------------------------------------------------------------------------
# Random studies: quoted multi-line notes, blank lines, CRLF, encodings, delimiters. Every reported line is
# checked against the file as written.
note = st.text(alphabet=st.sampled_from(list("ab é,;\"\n\t")), max_size=12)
row = st.tuples(st.sampled_from(["ok", "bad_score", "bad_date", "blank", "ragged"]), note)


def _render(rows, sep):
    """The file text and, per row, (kind, line of its first line)."""
    lines = [sep.join(["patient_id", "date", "instrument", "score", "note"])]
    expected = []
    for i, (kind, text) in enumerate(rows):
        line = len(lines) + 1
        quoted = '"' + text.replace('"', '""') + '"'
        fields = [f"p{i}", "2024-13-01" if kind == "bad_date" else "2024-01-05", "nrs",
                  "11" if kind == "bad_score" else "4", quoted]
        if kind == "blank":
            record = sep * 4 if i % 2 else ""
        elif kind == "ragged":
            record = sep.join(fields + ["extra"])
        else:
            record = sep.join(fields)
        lines.extend(record.split("\n"))
        expected.append((kind, line))
    return "\n".join(lines) + "\n", expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=25), enc=st.sampled_from(ENCODINGS),
       newline=st.sampled_from(["\n", "\r\n"]), sep=st.sampled_from([",", ";"]))
def test_every_reported_line_matches_the_file(tmp_path, rows, enc, newline, sep):
    text, expected = _render(rows, sep)
    encoding, bom = enc
    path = _write(tmp_path / "scores.csv", text, encoding, newline, bom)
    physical = path.read_bytes()[len(bom):].decode(encoding).split(newline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study = bpo.load_study(tmp_path, today=TODAY, errors="exclude")
            ex = study.exclusions
        except DataValidationError as err:  # no valid row left
            ex = err.problems
            study = None
            if "empty_file" in set(ex["reason"]):  # a file of blank rows has no table at all
                assert all(kind == "blank" for kind, _ in expected)
                return
    want = {line: kind for kind, line in expected if kind != "ok"}
    got = dict(zip(ex["row"].astype(int), ex["reason"]))
    reasons = {"bad_score": "out_of_range", "bad_date": "bad_date", "blank": "blank_row", "ragged": "ragged_row"}
    assert got == {line: reasons[kind] for line, kind in want.items()}
    for line, kind in want.items():  # the physical line holds the row's patient id (or nothing)
        if kind != "blank":
            assert physical[line - 1].startswith(f"p{[ln for _, ln in expected].index(line)}{sep}")
    if study is not None:
        assert study.rows_read["scores"] == len(rows) == len(study.scores) + len(ex)
        assert sorted(study.scores["_row"]) == sorted(ln for kind, ln in expected if kind == "ok")


@pytest.mark.parametrize("buf", [b"", b"a", b"a\n", b"\n\n", b"x\ny\nz", b"\n".join(b"l%d" % i for i in range(120)),
                                 b"\r\n".join(b"l" for _ in range(60)) + b"\n"])
def test_first_lines_and_byte_counts_as_bytes_methods_give_them(buf):
    # the header search and the line count of a plain file avoid copying and counting a large buffer the slow way;
    # they must give exactly what bytes.split and bytes.count give (blocks of 3 bytes test the block boundaries)
    from backpain_outcomes.delimited import _count_byte, _first_lines

    assert _first_lines(buf, 50) == buf.split(b"\n", 50)[:50]
    assert _count_byte(buf, 10) == _count_byte(buf, 10, block=3) == buf.count(b"\n")
    assert _count_byte(buf, 13, block=3) == buf.count(b"\r")
