"""Delimited text files: decoding, records with their exact lines, a fast and an exact reader.

Text files are decoded from UTF-8 (with or without byte-order mark), UTF-16 or
UTF-32 (with byte-order mark, or UTF-16 recognised by its zero bytes), or
Windows-1252 when no line is UTF-8; a file that mixes encodings is refused
with the first line that does not decode. Fields are split at the delimiter
of the file type (``,``; tab for ``.tsv``); a header that holds no delimiter
but a ``;``, tab or ``|`` is read with that delimiter, with a note.

Records are found without parsing the fields (:func:`scan_records`): a newline
inside a quoted field does not end a record, so every row keeps the line it
starts on; blank records (only delimiters, spaces and quotes) and records with
the wrong number of fields are set apart before the fields are parsed by
Arrow. Files with non-standard quoting are read field by field by Python's
``csv`` module, which also counts lines.

This module also defines :class:`Part` (one file or sheet as read) and
:class:`ReadError` (a file that cannot be read), shared by every reader.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["Part", "ReadError", "decode", "scan_records", "Scan", "read_text"]

_NL, _CR, _QUOTE = 10, 13, 34
_OTHER_DELIMITERS = {",": ";\t|", "\t": ",;|"}
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


class ReadError(Exception):
    """A file or sheet that cannot be read at all (the whole table is refused)."""

    def __init__(self, reason: str, message: str, expected: str = "", line: int | None = None, value=None):
        super().__init__(message)
        self.reason, self.message, self.expected, self.line, self.value = reason, message, expected, line, value


@dataclass
class Part:
    """One file or sheet as read.

    ``data`` holds the rows that have one value per header column, under the
    header's own column names; ``lines`` the line (sheet row) of each of them;
    ``blank`` the lines without any value; ``ragged`` the lines whose number of
    fields differs from the header's (``ragged_fields`` their field counts).
    """

    source: str
    data: pd.DataFrame
    lines: np.ndarray
    blank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ragged: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ragged_fields: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    header_fields: int = 0
    notes: list = field(default_factory=list)
    #: Column -> ``(key, codes, uniques)``: ``pd.factorize`` of a text column of ``data`` that the reader got
    #: without hashing (a Parquet file's dictionary), valid while the column's key (``reading.text_key``) is
    #: ``key``.
    codes: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Rows read below the header, blank and ragged ones included."""
        return len(self.data) + len(self.blank) + len(self.ragged)


# ----------------------------------------------------------------------------------------------- decoding
def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes) -> tuple[bytes, list[str]]:
    """UTF-8 bytes of a text file, and notes on the encoding it was read from.

    Raises :class:`ReadError` for a file that mixes encodings or does not decode.
    """
    boms = [(b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xfe\xff", "utf-16-be"),
            (b"\xff\xfe", "utf-16-le")]
    for bom, enc in boms:
        if data.startswith(bom):
            return _transcode(data[len(bom):], enc, data, len(bom)), []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data[:65536]
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        half = len(head) / 2
        if odd > 0.3 * half and even < 0.05 * half:
            return _transcode(data, "utf-16-le", data, 0), ["read as UTF-16 (little-endian) without a byte-order mark"]
        if even > 0.3 * half and odd < 0.05 * half:
            return _transcode(data, "utf-16-be", data, 0), ["read as UTF-16 (big-endian) without a byte-order mark"]
        raise ReadError("encoding", f"the file holds zero bytes (first on line {_line_of(data, data.index(0))}); "
                        "it is not a text table", "a CSV file in UTF-8, UTF-16 or Windows-1252",
                        line=_line_of(data, data.index(0)))
    if not len(data) or np.frombuffer(data, np.uint8).max() < 0x80:  # ASCII: nothing to decode
        return data, []
    try:
        data.decode("utf-8")
        return data, []
    except UnicodeDecodeError as err:
        bad = err.start
    good = _UTF8_MULTIBYTE.search(data)
    if good is not None:
        raise ReadError("encoding", f"line {_line_of(data, bad)} is not UTF-8 (byte {data[bad:bad + 1].hex(' ').upper()}) "
                        f"but line {_line_of(data, good.start())} is: the file mixes encodings; save it again as UTF-8",
                        "one encoding for the whole file (UTF-8)", line=_line_of(data, bad))
    return _transcode(data, "cp1252", data, 0), ["read as Windows-1252 (cp1252): the file is not UTF-8"]


def _transcode(body: bytes, encoding: str, data: bytes, skip: int) -> bytes:
    try:
        return body.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as err:
        where = skip + err.start
        line = _line_of(body, err.start) if encoding.startswith("utf-") else _line_of(data, where)
        name = {"cp1252": "UTF-8 nor Windows-1252"}.get(encoding, encoding.upper())
        raise ReadError("encoding", f"cannot decode the file: line {line} (byte offset {where}) is not "
                        f"{name}", "UTF-8, UTF-8 with BOM, UTF-16 or Windows-1252", line=line) from None


# ----------------------------------------------------------------------------------------------- scanning
@dataclass
class Scan:
    """Records of a delimited text: start/end byte offsets, line of each start, field counts, blanks."""

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    fields: np.ndarray
    blank: np.ndarray
    trailing: np.ndarray  # the record's last field is empty (the record ends with the delimiter)
    multiline: bool


def _quotes_standard(b: np.ndarray, qpos: np.ndarray, delim: int) -> bool:
    """True when every quote opens a field, closes one, or is doubled inside one (RFC 4180)."""
    if len(qpos) % 2:
        return False
    opening, closing = qpos[0::2], qpos[1::2]
    prev = np.where(opening > 0, b[np.maximum(opening - 1, 0)], _NL)
    escaped = np.r_[False, closing[:-1] == opening[1:] - 1]  # an opening quote right after a closing one
    ok_open = np.isin(prev, [delim, _NL]) | escaped
    nxt = np.where(closing + 1 < len(b), b[np.minimum(closing + 1, len(b) - 1)], _NL)
    ok_close = np.isin(nxt, [delim, _NL, _CR, _QUOTE])
    return bool(ok_open.all() and ok_close.all())


def scan_records(buf: bytes, delim: str) -> Scan | None:
    """Split ``buf`` into CSV records without parsing the fields.

    Newlines inside quoted fields do not end a record. Returns ``None`` when
    the quoting is not standard (a quote inside an unquoted field), so that
    the caller can fall back on a field-by-field reader.
    """
    b = np.frombuffer(buf, np.uint8)
    d = ord(delim)
    nl = np.flatnonzero(b == _NL)
    qpos = np.flatnonzero(b == _QUOTE)
    dpos = np.flatnonzero(b == d)
    multiline = False
    if len(qpos):
        if not _quotes_standard(b, qpos, d):
            return None
        inside = np.searchsorted(qpos, nl) % 2 == 1
        multiline = bool(inside.any())
        term = nl[~inside]
        dpos = dpos[np.searchsorted(qpos, dpos) % 2 == 0]
    else:
        term = nl
    starts = np.r_[0, term + 1]
    ends = np.r_[term, len(b)]
    lines = np.r_[1, np.searchsorted(nl, term) + 2]
    if starts[-1] >= len(b):  # nothing after the last newline
        starts, ends, lines = starts[:-1], ends[:-1], lines[:-1]
    fields = np.searchsorted(dpos, ends) - np.searchsorted(dpos, starts) + 1
    lut = np.ones(256, bool)
    lut[[d, 32, 9, _CR, _NL, _QUOTE]] = False
    blank = ~np.logical_or.reduceat(lut[b], starts) if len(starts) else np.zeros(0, bool)
    last = np.maximum(ends - 1, 0)
    last = last - ((b[last] == _CR) & (last > starts))
    trailing = (ends > starts) & (b[last] == d) if len(b) else np.zeros(0, bool)
    return Scan(starts, ends, lines, fields, blank, trailing, multiline)


def _split_header(text: str, delim: str) -> list[str]:
    return next(csv.reader([text], delimiter=delim), [])


def _keep_bytes(buf: bytes, scan: Scan, keep: np.ndarray) -> bytes:
    """The bytes of the kept records (each with its line end), in order."""
    nxt = np.r_[scan.starts[1:], len(buf)]
    if keep.all():
        return buf[scan.starts[0]:] if len(keep) else b""
    d = np.zeros(len(buf) + 1, np.int8)  # +1 where a dropped record starts, -1 where it ends
    np.add.at(d, scan.starts[~keep], 1)
    np.add.at(d, nxt[~keep], -1)
    mask = np.cumsum(d[:-1], dtype=np.int8) == 0
    mask[: scan.starts[0] if len(scan.starts) else len(buf)] = False
    return np.frombuffer(buf, np.uint8)[mask].tobytes()


def _arrow_read(body: bytes, names: list[str], delim: str, multiline: bool) -> pd.DataFrame:
    df = _arrow_table(body, len(names), delim, multiline).to_pandas()
    df.columns = names
    return df


def _arrow_table(body, n_columns: int, delim: str, multiline: bool) -> pa.Table:
    """Every field as text (large strings, as pandas keeps them: no conversion), an empty one missing (``body``:
    bytes or a memoryview, read without a copy)."""
    cols = [f"c{i}" for i in range(n_columns)]
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(body)),
        read_options=pacsv.ReadOptions(column_names=cols),
        parse_options=pacsv.ParseOptions(delimiter=delim, quote_char='"', double_quote=True, escape_char=False,
                                         newlines_in_values=multiline, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.large_string() for c in cols}, null_values=[""],
                                             strings_can_be_null=True, quoted_strings_can_be_null=True))


def _python_read(text: str, delim: str) -> tuple[list[str], int, list, list, list, list]:
    """Field-by-field reader (Python's csv module) for files with non-standard quoting."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header, header_line, rows, lines, blank, prev = None, 0, [], [], [], 0
    try:
        for rec in reader:
            line, prev = prev + 1, reader.line_num
            if not any(f.strip() for f in rec):
                (blank.append(line) if header is not None else None)
                continue
            if header is None:
                header, header_line = rec, line
                continue
            rows.append(rec)
            lines.append(line)
    except csv.Error as err:
        raise ReadError("unreadable", f"cannot read the file after line {prev}: {err}", "a CSV file",
                        line=prev + 1) from None
    return header or [], header_line, rows, lines, blank, []


def _sniff(header: str, delim: str) -> str | None:
    """Another delimiter the header splits on, when it holds none of ``delim``."""
    if delim in header:
        return None
    for other in _OTHER_DELIMITERS[delim]:
        if len(_split_header(header, other)) > 1:
            return other
    return None


def read_text(path: Path, source: str) -> Part:
    """Read a delimited text file with the exact line of every row."""
    buf, notes = decode(path.read_bytes())
    if b"\r" in buf and b"\n" not in buf:
        buf = buf.replace(b"\r", b"\n")  # classic Mac line ends
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    header_line = next((ln for ln in _first_lines(buf, 50) if ln.strip(b" \t\r,;|")), b"")
    other = _sniff(header_line.decode("utf-8", "replace").rstrip("\r"), delim)
    if other is not None:
        notes.append(f"read with the {_NAMES[other]} ('{other}') as the delimiter: the header line holds "
                     f"no {_NAMES[delim]}")
        delim = other
    part = _plain_part(buf, delim, source, notes)
    if part is not None:
        return part
    scan = scan_records(buf, delim)
    if scan is None:
        return _slow_part(buf.decode("utf-8"), delim, source, notes)
    return _fast_part(buf, scan, delim, source, notes)


def _first_lines(buf: bytes, n: int) -> list[bytes]:
    """``buf.split(b"\\n", n)[:n]`` without copying the rest of the buffer."""
    lines, start = [], 0
    for _ in range(n):
        end = buf.find(b"\n", start)
        if end < 0:
            lines.append(buf[start:])
            break
        lines.append(buf[start:end])
        start = end + 1
    return lines


def _count_byte(buf, byte: int, block: int = 1 << 16) -> int:
    """``buf.count(bytes([byte]))``, counted by numpy in blocks (several times faster on a large file; blocks
    small enough that their temporary arrays reuse the same memory)."""
    data = np.frombuffer(buf, np.uint8)
    return sum(int(np.count_nonzero(data[i:i + block] == byte)) for i in range(0, len(data), block))


def _plain_part(buf: bytes, delim: str, source: str, notes: list) -> Part | None:
    """The common case in one Arrow read: no quote in the file (so every line is one record and the ``k``-th
    line below the header is line ``k + 1``), the header on line 1, every line with one field per header
    column, every carriage return part of a CRLF line end. None when the file needs the record scan."""
    end = buf.find(b"\n")
    if end <= 0 or b'"' in buf or (b"\r" in buf and buf.count(b"\r") != buf.count(b"\r\n")):
        return None
    head = buf[:end]
    if not head.strip(b" \t\r" + delim.encode()):  # a blank first line: the header is further down
        return None
    header = _split_header(head.decode("utf-8").rstrip("\r"), delim)
    body = memoryview(buf)[end + 1:]  # (not a copy of the file)
    n = _count_byte(body, _NL) + (len(body) > 0 and not buf.endswith(b"\n"))
    if not n:
        return None
    try:
        table = _arrow_table(body, len(header), delim, False)
    except (pa.ArrowInvalid, ValueError):  # a line with another number of fields
        return None
    if table.num_rows != n:
        return None
    blank = _blank_lines(body, table, delim)
    df = table.to_pandas()
    df.columns = header
    lines = np.arange(2, n + 2, dtype=np.int64)
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
    return Part(source, df, lines[~blank] if blank.any() else lines, lines[blank], header_fields=len(header),
                notes=notes)


def _blank_lines(body: bytes, table: pa.Table, delim: str) -> np.ndarray:
    """Rows (one per line, no quotes) holding only delimiters, spaces and tabs, as :func:`scan_records` finds."""
    maybe = np.ones(table.num_rows, bool)
    for col in table.columns:  # a blank line has every field missing or white space; the bytes then tell
        if not maybe.any():
            return maybe
        empty = pc.or_kleene(pc.is_null(col), pc.utf8_is_space(col)).fill_null(True)
        maybe &= empty.to_numpy(zero_copy_only=False).astype(bool)
    rows = np.flatnonzero(maybe)
    if not len(rows):
        return maybe
    starts = np.r_[0, np.flatnonzero(np.frombuffer(body, np.uint8) == _NL) + 1]
    ends = np.r_[starts[1:] - 1, len(body)]
    drop = (delim + " \t\r").encode()
    maybe[rows] = [not bytes(body[starts[i]:ends[i]]).translate(None, drop) for i in rows]
    return maybe


def _fast_part(buf: bytes, scan: Scan, delim: str, source: str, notes: list) -> Part:
    if not len(scan.starts) or scan.blank.all():
        raise ReadError("empty_file", "the file is empty", "a header line and rows")
    first = int(np.argmax(~scan.blank))
    header = _split_header(buf[scan.starts[first]:scan.ends[first]].decode("utf-8").rstrip("\r"), delim)
    body = slice(first + 1, None)
    fields, blank, trailing = scan.fields[body], scan.blank[body], scan.trailing[body]
    lines = scan.lines[body]
    n_head = len(header)
    data_rows = ~blank
    if data_rows.any() and trailing[data_rows].all() and (fields[data_rows] == n_head + 1).all():
        notes.append(f"every row ends with a {_NAMES[delim]}: the empty field after it was ignored")
        header = [*header, "\0trailing"]
        n_head += 1
    ragged = data_rows & (fields != n_head)
    keep = data_rows & ~ragged
    sub = Scan(scan.starts[body], scan.ends[body], lines, fields, blank, trailing, scan.multiline)
    content = _keep_bytes(buf, sub, keep) if len(keep) else b""
    names = header
    try:
        df = _arrow_read(content, names, delim, scan.multiline) if keep.any() else _empty(names)
    except (pa.ArrowInvalid, ValueError):
        df = None
    if df is None or len(df) != int(keep.sum()):
        return _slow_part(buf.decode("utf-8"), delim, source, notes)
    df = df.drop(columns=[c for c in df.columns if c == "\0trailing"])
    return Part(source, df, lines[keep], lines[blank], lines[ragged], fields[ragged], len(header), notes)


def _empty(names) -> pd.DataFrame:
    df = pd.DataFrame({i: pd.Series(dtype="str") for i in range(len(names))})
    df.columns = list(names)
    return df


def _slow_part(text: str, delim: str, source: str, notes: list) -> Part:
    header, _, rows, lines, blank, _ = _python_read(text, delim)
    if not header:
        raise ReadError("empty_file", "the file is empty", "a header line and rows")
    n_head = len(header)
    nonblank = [r for r in rows]
    trailing = bool(nonblank) and all(len(r) == n_head + 1 and r[-1] == "" for r in nonblank)
    if trailing:
        notes.append(f"every row ends with a {_NAMES[delim]}: the empty field after it was ignored")
        rows = [r[:-1] for r in rows]
    n_fields = np.array([len(r) for r in rows], dtype=np.int64)
    lines = np.asarray(lines, dtype=np.int64)
    ok = n_fields == n_head
    kept = [r for r, k in zip(rows, ok) if k]
    df = pd.DataFrame(kept, columns=range(n_head), dtype="str") if kept else _empty(list(range(n_head)))
    df = df.where(df != "")
    df.columns = header
    return Part(source, df, lines[ok], np.asarray(blank, np.int64), lines[~ok], n_fields[~ok] + trailing, n_head, notes)
