"""Reading FHIR R4 resources: Bundles, NDJSON files, Bulk Data export directories, parsed dicts.

Every resource read is a :class:`Resource` that remembers where it came from:
its file (``source``) and its ``row``, the line of an NDJSON file or the
entry number of a Bundle (``entry[0]`` is row 1), so that every problem names
the resource as a reader finds it. Resources of the types the loader reads are
parsed with the maintained `fhir.resources <https://pypi.org/project/fhir.resources/>`_
models (:func:`parse`); a resource that fails its model is one problem per
element at fault, named ``Observation/obs-17: valueQuantity.value`` with the
value and what FHIR expects there.

FHIR version
    fhir.resources 8 ships three model sets: FHIR R5 (the top-level package),
    R4B (``fhir.resources.R4B``, FHIR 4.3.0) and STU3. There is no R4
    (4.0.1) set. R4B changed none of the elements read here (Patient,
    Condition, Observation, QuestionnaireResponse, Procedure, Encounter) from
    R4, whereas R5 renamed several of them (``Procedure.performed[x]`` became
    ``occurrence[x]``, ``Encounter.period`` became ``actualPeriod``), so R4
    data are validated with the R4B models.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import MissingDependencyError
from .problems import ERROR, SET_ASIDE, Problems
from .provenance import SIDECAR_SUFFIX

R4B: Any
ValidationError: Any
try:  # optional dependency: the ``sources`` extra
    from fhir.resources import R4B
    from pydantic import ValidationError
except ImportError:  # pragma: no cover - the tests monkeypatch R4B to None
    R4B = None
    ValidationError = None

__all__ = ["Resource", "READ_TYPES", "TABLE_OF_TYPE", "require_fhir_resources", "read_resources", "parse",
           "json_path", "FHIR_VERSION", "short"]

#: The FHIR version of the models used (fhir.resources.R4B).
FHIR_VERSION = "R4B (4.3.0), read as R4"
#: Resource types the loader reads, and the table each one feeds.
TABLE_OF_TYPE = {"Patient": "patients", "Condition": "episodes", "Observation": "scores",
                 "QuestionnaireResponse": "scores", "Procedure": "sessions", "Encounter": "sessions"}
READ_TYPES = tuple(TABLE_OF_TYPE)
#: Table of problems about input that is not a resource (a line that is not JSON, a resource without a type).
OTHER_TABLE = "fhir"


def require_fhir_resources() -> None:
    """Raise :class:`MissingDependencyError` when fhir.resources is not installed."""
    if R4B is None or ValidationError is None:
        raise MissingDependencyError("reading FHIR resources needs fhir.resources (the maintained FHIR models): "
                                     "pip install 'backpain_outcomes[sources]' (or pip install fhir.resources)")


@dataclass
class Resource:
    """One resource as read, and where it came from."""

    source: str            # file name (or "<FHIR resources>")
    row: int               # NDJSON line, or Bundle entry number (entry[0] is row 1)
    raw: dict
    full_url: str | None = None
    model: Any = None      # the parsed fhir.resources model, once valid
    id_from_url: bool = False  # no id of its own: named by the last segment of its fullUrl

    @property
    def rtype(self) -> str:
        return str(self.raw.get("resourceType") or "")

    @property
    def rid(self) -> str | None:
        rid = self.raw.get("id")
        return None if rid is None else str(rid)

    @property
    def label(self) -> str:
        """``Observation/obs-17``, or ``Observation (no id)``."""
        return f"{self.rtype}/{self.rid}" if self.rid is not None else f"{self.rtype or 'resource'} (no id)"

    @property
    def table(self) -> str:
        return TABLE_OF_TYPE.get(self.rtype, OTHER_TABLE)


# ------------------------------------------------------------------------------------------ reading
def _bad(p: Problems, source: str, row, reason: str, message: str, expected: str, value=None,
         kind: str = ERROR) -> None:
    p.add(OTHER_TABLE, source, [row], "", reason, message, expected, value=[value], kind=kind)


def _next_page(obj: dict, source: str, notes: list | None) -> None:
    """A note when a Bundle is one page of a paged search (its ``link`` has a ``next``)."""
    links = obj.get("link")
    links = links if isinstance(links, list) else []
    url = next((str(link.get("url")) for link in links if isinstance(link, dict) and link.get("relation") == "next"),
               None)
    if url is not None and notes is not None:
        notes.append(f"{source}: one page of a paged search (its next page is {short(url, 200)}); the resources "
                     "of other pages are read only when their files are given too")


def _deleted(entry) -> bool:
    request = entry.get("request") if isinstance(entry, dict) else None
    return isinstance(request, dict) and str(request.get("method", "")).upper() == "DELETE"


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _entry_resource(source: str, row: int, res: dict, full_url) -> Resource:
    """A Bundle entry's resource; one without ``id`` (a transaction that POSTs it) is named by the last segment
    of its fullUrl (``urn:uuid:<uuid>`` -> ``<uuid>``), which is what the other entries' references name."""
    full_url = full_url if isinstance(full_url, str) and full_url else None
    if res.get("id") is None and full_url is not None:
        derived = re.split(r"[/:]", full_url.rstrip("/"))[-1]
        if _ID.fullmatch(derived):
            return Resource(source, row, {**res, "id": derived}, full_url, id_from_url=True)
    return Resource(source, row, res, full_url)


def _from_object(obj, source: str, p: Problems, file_row: int | None = None,
                 notes: list | None = None) -> list[Resource]:
    """Resources of one parsed JSON value: a Bundle (its entries), one resource, or a list of resources.

    A Bundle inside a list or inside a Bundle entry (a batch-response holds one searchset Bundle per
    request) is read as its own source, ``<FHIR resources> item 2`` or ``bundle.json entry 3``, so that each
    resource keeps a row of its own: the entry number in its Bundle.
    """
    if isinstance(obj, list):
        out = []
        for i, item in enumerate(obj, start=1):
            nested = isinstance(item, dict) and item.get("resourceType") == "Bundle"
            out += _from_object(item, f"{source} item {i}" if nested else source, p, None if nested else i, notes)
        return out
    if not isinstance(obj, dict) or not obj.get("resourceType"):
        _bad(p, source, file_row or 1, "not_a_resource", "not a FHIR resource (no resourceType)",
             "a JSON object with a resourceType", short(obj))
        return []
    if obj["resourceType"] != "Bundle":
        return [Resource(source, file_row or 1, obj)]
    _next_page(obj, source, notes)
    entries = obj.get("entry") or []
    if not isinstance(entries, list):
        _bad(p, source, np.nan, "invalid_bundle", "Bundle.entry is not a list", "a list of entries", short(entries))
        return []
    out = []
    for i, entry in enumerate(entries, start=1):
        res = entry.get("resource") if isinstance(entry, dict) else None
        if res is None and _deleted(entry):
            _bad(p, source, i, "deleted", f"Bundle entry[{i - 1}] records a deletion ({entry['request'].get('url')})",
                 "", None, kind=SET_ASIDE)
            continue
        if not isinstance(res, dict) or not res.get("resourceType"):
            _bad(p, source, i, "not_a_resource", f"Bundle entry[{i - 1}] holds no resource",
                 "entry.resource with a resourceType", short(entry))
            continue
        if res["resourceType"] == "Bundle":
            out += _from_object(res, f"{source} entry {i}", p, None, notes)
            continue
        out.append(_entry_resource(source, i, res, entry.get("fullUrl")))
    return out


def _kind(path: Path) -> str | None:
    """``ndjson`` or ``json`` (also gzip-compressed, ``.ndjson.gz``, as Bulk Data servers may serve them)."""
    name = path.name.lower().removesuffix(".gz")
    return next((k for k in ("ndjson", "json") if name.endswith("." + k)), None)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


_NOT_UTF8 = "FHIR JSON in UTF-8 (re-export the file as UTF-8)"


def _ndjson(path: Path, p: Problems) -> list[Resource]:
    """One resource per line. Lines end at a line feed (CRLF too), never at a U+2028 inside a JSON text as
    ``str.splitlines`` would have it. The file is read line by line (a huge export is not held
    as text twice)."""
    out = []
    with _open(path) as f:
        for line_no, raw in enumerate(f, start=1):
            raw = raw.removeprefix(b"\xef\xbb\xbf") if line_no == 1 else raw
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                _bad(p, path.name, line_no, "invalid_encoding", f"the line is not UTF-8 (byte {err.start + 1})",
                     _NOT_UTF8, short(raw.decode("utf-8", "replace")))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                _bad(p, path.name, line_no, "invalid_json", f"the line is not JSON ({err.msg} at column {err.colno})",
                     "one JSON resource per line", short(line.rstrip("\r\n")))
                continue
            if isinstance(obj, dict) and obj.get("resourceType") == "Bundle":
                _bad(p, path.name, line_no, "not_a_resource", "a Bundle on a line of an NDJSON file",
                     "one resource per line (Bulk Data NDJSON)", "Bundle")
                continue
            out += _from_object(obj, path.name, p, line_no)
        return out


def _json_file(path: Path, p: Problems, notes: list, in_directory: bool) -> list[Resource]:
    with _open(path) as f:
        data = f.read()
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        _bad(p, path.name, line, "invalid_encoding", f"the file is not UTF-8 (byte {err.start + 1}, line {line})",
             _NOT_UTF8)
        return []
    except json.JSONDecodeError as err:
        _bad(p, path.name, err.lineno, "invalid_json", f"the file is not JSON ({err.msg} at line {err.lineno}, "
             f"column {err.colno})", "a FHIR Bundle or resource in JSON")
        return []
    if in_directory and not (isinstance(obj, dict) and obj.get("resourceType")):
        what = ("the provenance record of an output written here" if path.name.endswith(SIDECAR_SUFFIX)
                else "no resourceType; a Bulk Data manifest?")
        notes.append(f"{path.name}: not read, not a FHIR resource ({what})")
        return []
    if isinstance(obj, list):
        _bad(p, path.name, np.nan, "not_a_resource", "a JSON list, not a Bundle", "a FHIR Bundle or resource")
        return []
    return _from_object(obj, path.name, p, notes=notes)


def read_resources(source, p: Problems) -> tuple[list[Resource], list[str], list[Path]]:
    """The resources of ``source`` in reading order, notes on what was read, and the files read.

    ``source`` is a Bundle or resource (``.json``), an NDJSON file (``.ndjson``), a directory of them (a Bulk
    Data export: ``Patient.ndjson``, ``Observation.ndjson``, ...; files are read in name order), a list of
    such paths (read in the order given), or parsed JSON: a Bundle or resource dict, or a list of resource
    dicts. JSON text (a string starting with ``{`` or ``[``) is refused: parse it with ``json.loads`` first.
    """
    if isinstance(source, list) and source and all(isinstance(s, str | Path) for s in source):
        out: list[Resource] = []
        notes: list[str] = []
        files: list[Path] = []
        for item in source:
            got, more, read = _read_path(item, p)
            out, notes, files = out + got, notes + more, files + read
        return out, notes, files
    if isinstance(source, dict | list):
        if isinstance(source, list) and any(isinstance(s, str | Path) for s in source):
            raise TypeError("source: a list must hold either paths or parsed FHIR resources (dicts), not both")
        found: list[str] = []
        return _from_object(source, "<FHIR resources>", p, notes=found), found, []
    if not isinstance(source, str | Path):
        raise TypeError(f"source must be a path (a Bundle .json file, an .ndjson file or a directory of them), a "
                        f"list of paths, or parsed FHIR JSON (a dict or a list of dicts), got {type(source).__name__}")
    return _read_path(source, p)


def _read_path(source, p: Problems) -> tuple[list[Resource], list[str], list[Path]]:
    """The resources of one file or directory (see :func:`read_resources`)."""
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        raise ValueError(f"source looks like JSON text ({short(source.strip(), 40)!r}); pass json.loads(text) "
                         "or a path")
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"source: {short(str(path), 200)}: no such file or directory")
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    readable = [f for f in files if _kind(f) is not None]
    notes: list[str] = []
    skipped = [f.name for f in files if f not in readable and not f.name.startswith(".")]
    if skipped:
        notes.append(f"{path.name}: {len(skipped)} file(s) not read (neither .ndjson nor .json, nor gzipped): "
                     f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    if not readable:
        raise ValueError(f"source: {path} holds no .ndjson or .json file (nor .ndjson.gz, .json.gz)")
    out: list[Resource] = []
    for f in readable:
        out += _ndjson(f, p) if _kind(f) == "ndjson" else _json_file(f, p, notes, path.is_dir())
    return out, notes, [f.resolve() for f in readable]


# ------------------------------------------------------------------------------------------ parsing
def json_path(loc) -> str:
    """A pydantic error location as a JSON path: ``('item', 0, 'answer', 0, 'valueInteger')`` ->
    ``item[0].answer[0].valueInteger``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("__root__", "root"):
            out += ("." if out else "") + str(part)
    return out


def short(value, width: int = 80) -> str:
    """A value as at most ``width`` characters of text (JSON for objects)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


_EXPECTED = (("missing", "a value (the element is required in FHIR R4)"),
             ("extra_forbidden", "only elements that FHIR R4 defines for this type (check the spelling, or "
                                 "whether the element belongs to another FHIR version)"),
             ("Decimal", "a FHIR decimal: a JSON number such as 7 or 6.5"),
             ("DateTime", "a FHIR dateTime such as 2024-03-01 or 2024-03-01T10:30:00+01:00"),
             ("datetime", "a FHIR dateTime such as 2024-03-01 or 2024-03-01T10:30:00+01:00"),
             ("date", "a FHIR date such as 2024-03-01"),
             ("int", "a whole number"), ("bool", "true or false"),
             ("pattern", "a value of the FHIR type's pattern (ids: letters, digits, '-' and '.')"),
             ("multiple", "one value[x] element, not several"))


#: Elements that FHIR R5 added or renamed in the types read here (what an R5 resource given by mistake shows).
_R5_ELEMENTS = frozenset({"occurrenceDateTime", "occurrencePeriod", "occurrenceString", "occurrenceAge",
                          "occurrenceRange", "occurrenceTiming", "actualPeriod", "plannedStartDate", "plannedEndDate",
                          "virtualService", "careTeam", "reason", "admission", "recorded", "reported", "used",
                          "supportingInfo", "triggeredBy", "bodyStructure", "subjectStatus"})


def _expected(err) -> str:
    text = f"{err.get('type', '')} {err.get('msg', '')}"
    return next((e for key, e in _EXPECTED if key in text), "a value valid in FHIR R4")


def parse(res: Resource, p: Problems) -> bool:
    """Validate one resource with its fhir.resources R4B model (``res.model`` is set when valid); every error of
    an invalid one is a problem of its table, ``Type/id: json.path``."""
    require_fhir_resources()
    model = R4B.get_fhir_model_class(res.rtype)
    try:
        res.model = model.model_validate(res.raw)
        return True
    except ValidationError as err:
        errors = err.errors()
    columns, values, messages, expected = [], [], [], []
    for e in errors:
        path = json_path(e.get("loc", ()))
        columns.append(f"{res.label}: {path}" if path else res.label)
        value = e.get("input")
        values.append(None if value is None or e.get("type", "").endswith("missing") else short(value))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            last = path.split(".")[-1]
            msg = f"{path} is not an element of {res.rtype} in FHIR R4" + (
                " (it is one in FHIR R5: is the export R5? this loader reads R4)" if last in _R5_ELEMENTS else "")
        messages.append(f"invalid {res.rtype} (FHIR R4): {msg}")
        expected.append(_expected(e))
    for col, val, msg, exp in zip(columns, values, messages, expected):
        p.add(res.table, res.source, [res.row], col, "invalid_fhir", msg, exp, value=[val], kind=ERROR)
    return False
