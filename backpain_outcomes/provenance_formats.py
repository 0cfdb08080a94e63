"""Where a provenance record lives inside an HTML, text, PNG or SVG output, and the hash of the rest.

The record itself (:class:`~backpain_outcomes.provenance.Provenance`) is
built in :mod:`backpain_outcomes.provenance`; this module only places its
JSON text in a file and finds it again. Each writer takes ``make_json``, a
function from the SHA-256 of the output's content (the file without its
record) to the record's JSON, so that the record can hold the hash of the
very file it is written into:

========  ===========================================================  =====================================
output    where the record is                                          content hashed
========  ===========================================================  =====================================
HTML      ``<meta name="backpain-outcomes:provenance">`` and a JSON    the document without the two elements
          ``<script id="backpain-outcomes-provenance">`` before        (line ends read as ``\\n``)
          ``</head>``
text      a footer: a marker line and one JSON line                    the text above the footer
PNG       a ``tEXt`` chunk ``backpain-outcomes:provenance``            every other chunk (type and data)
SVG       the Dublin Core ``<dc:description>`` of matplotlib's         the file with the description's text
          metadata                                                     left out
========  ===========================================================  =====================================
"""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

__all__ = ["KEY", "TEXT_MARK", "SCRIPT_ID", "sha256_text", "html_with_record", "text_with_record", "seal_file",
           "embedded_record", "EMBEDDED_SUFFIXES"]

#: Name of the HTML meta element and of the PNG text chunk.
KEY = "backpain-outcomes:provenance"
#: The line that opens the provenance footer of a text output.
TEXT_MARK = "-- backpain-outcomes provenance (JSON) --"
#: id of the JSON script element of an HTML output.
SCRIPT_ID = "backpain-outcomes-provenance"
#: Suffixes of outputs that carry their record inside.
EMBEDDED_SUFFIXES = (".html", ".htm", ".png", ".svg", ".txt")
_DC = "{http://purl.org/dc/elements/1.1/}description"
_PNG = b"\x89PNG\r\n\x1a\n"
_SVG_RECORD = re.compile(r"(<dc:description>)(.*?)(</dc:description>)", re.DOTALL)
_HTML_BLOCK = re.compile(f'<meta name="{re.escape(KEY)}" content="[^"]*">\n<script type="application/json" '
                         f'id="{SCRIPT_ID}">([^<]*)</script>\n')
MakeJson = Callable[[str], str]


def sha256_text(text: str) -> str:
    """SHA-256 (hex) of a text in UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ HTML and text
def _script_json(text: str) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>`` and ``&`` as ``\\u`` escapes (no ``</script>`` can occur)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_with_record(document: str, make_json: MakeJson) -> str:
    """``document`` with the record in a ``<meta>`` element and a JSON ``<script>`` at the end of ``<head>``."""
    document = document.replace("\r\n", "\n")  # as read back (universal newlines)
    at = document.lower().find("</head>")
    if at < 0:
        raise ValueError("the HTML document has no </head> to hold the provenance record")
    text = make_json(sha256_text(document))
    block = (f'<meta name="{KEY}" content="{html.escape(text, quote=True)}">\n'
             f'<script type="application/json" id="{SCRIPT_ID}">{_script_json(text)}</script>\n')
    return document[:at] + block + document[at:]


def text_with_record(text: str, make_json: MakeJson) -> str:
    """``text`` followed by the provenance footer (a marker line and one JSON line)."""
    body = text.replace("\r\n", "\n").rstrip("\n") + "\n"
    return body + f"\n{TEXT_MARK}\n{make_json(sha256_text(body))}\n"


class _HeadReader(HTMLParser):
    """The record of an HTML document that is no longer as written (re-saved by an editor)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.meta: str | None = None
        self.script: list[str] | None = None
        self._in = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("name") == KEY and self.meta is None:
            self.meta = a.get("content")
        elif tag == "script" and a.get("id") == SCRIPT_ID and self.script is None:
            self.script, self._in = [], True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = False

    def handle_data(self, data):
        if self._in and self.script is not None:
            self.script.append(data)


def _from_html(path: Path) -> tuple[str, str] | None:
    text = path.read_text(encoding="utf-8")
    m = _HTML_BLOCK.search(text)
    if m is not None:
        return m[1], sha256_text(text[:m.start()] + text[m.end():])
    reader = _HeadReader()
    reader.feed(text)
    found = "".join(reader.script) if reader.script is not None else reader.meta
    return None if found is None else (found, "")


def _from_text(path: Path) -> tuple[str, str] | None:
    text = path.read_text(encoding="utf-8")
    at = text.rfind(f"\n{TEXT_MARK}\n")
    if at < 0:
        return None
    record, _, tail = text[at + len(TEXT_MARK) + 2:].partition("\n")
    return record, sha256_text(text[:at] + tail)  # text added below the footer is an edit too


# ------------------------------------------------------------------------------------------ figures
def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(_PNG):
        raise ValueError("not a PNG file")
    out, pos = [], len(_PNG)
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    if not out or out[-1][0] != b"IEND":
        raise ValueError("the PNG file is truncated")
    return out


def _ours(ctype: bytes, body: bytes) -> bool:
    return ctype in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\0", 1)[0] == KEY.encode("latin-1")


def _png_content(chunks) -> str:
    h = hashlib.sha256()
    for ctype, body in chunks:
        if not _ours(ctype, body):
            h.update(len(body).to_bytes(4, "big") + ctype + body)
    return h.hexdigest()


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + ctype + body + zlib.crc32(ctype + body).to_bytes(4, "big")


def seal_file(path, make_json: MakeJson, suffix: str) -> None:
    """Write the record into a PNG (a ``tEXt`` chunk before ``IEND``, replacing an older one) or an SVG saved
    with a Dublin Core description (its text)."""
    path = Path(path)
    if suffix == ".png":
        chunks = _png_chunks(path.read_bytes())
        ours = _chunk(b"tEXt", KEY.encode("latin-1") + b"\0" + make_json(_png_content(chunks)).encode("ascii"))
        kept = [_chunk(t, b) for t, b in chunks if not _ours(t, b)]
        path.write_bytes(_PNG + b"".join(kept[:-1]) + ours + kept[-1])
    elif suffix == ".svg":
        text = path.read_text(encoding="utf-8")
        if not _SVG_RECORD.search(text):
            raise ValueError(f"{path.name}: save the SVG with metadata=figure_metadata(provenance, 'svg') first")
        body = html.escape(make_json(sha256_text(_SVG_RECORD.sub(r"\1\3", text, count=1))), quote=False)
        path.write_text(_SVG_RECORD.sub(lambda m: m[1] + body + m[3], text, count=1), encoding="utf-8")
    else:
        raise ValueError(f"seal_figure writes PNG or SVG files, not {suffix or 'a file without a suffix'}")


def _from_png(path: Path) -> tuple[str, str] | None:
    chunks = _png_chunks(path.read_bytes())
    found = next(((t, b) for t, b in chunks if _ours(t, b)), None)
    if found is None:
        return None
    text: str | None = None
    if found[0] == b"tEXt":
        text = found[1][len(KEY) + 1:].decode("latin-1")
    else:  # a compressed or international text chunk
        with Image.open(path) as im:
            text = getattr(im, "text", {}).get(KEY)
    return None if text is None else (text, _png_content(chunks))


def _from_svg(path: Path) -> tuple[str, str] | None:
    node = ET.parse(path).getroot().find(f".//{_DC}")
    if node is None or node.text is None:
        return None
    raw = path.read_text(encoding="utf-8")
    return node.text, sha256_text(_SVG_RECORD.sub(r"\1\3", raw, count=1)) if _SVG_RECORD.search(raw) else ""


_READERS = {".html": _from_html, ".htm": _from_html, ".png": _from_png, ".svg": _from_svg, ".txt": _from_text}


def embedded_record(path) -> tuple[str, str] | None:
    """(the record's JSON, the SHA-256 of the file's content now) of an output that embeds its record, or None
    when there is none. The hash is "" when the record is no longer where it was written (the file was
    re-saved). Raises OSError, ValueError or SyntaxError (``ET.ParseError``) for a file that cannot be read."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    return None if reader is None else reader(path)
