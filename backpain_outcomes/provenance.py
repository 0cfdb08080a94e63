"""Provenance of every written output: which version, configuration, seed, date and input data produced it.

A :class:`Provenance` record holds the package version, the function (and
command line) that wrote the file, the analysis configuration (rule, origin,
horizon, instrument, alpha, ``min_n``, reference, ...), the random seed
(``None`` when nothing was random), the UTC time of writing, the SHA-256 of
every input file, the SHA-256 of each table of the study as analysed (a
canonical CSV serialisation, so that a study built in memory is identified
too) and the versions of Python, pandas and NumPy.

Each kind of output carries it in a form a script reads back with
:func:`read_provenance`:

========================  ==========================================================================
output                    where the record is
========================  ==========================================================================
HTML                      ``<meta name="backpain-outcomes:provenance" content="JSON">`` and
                          ``<script type="application/json" id="backpain-outcomes-provenance">``
PNG                       a ``tEXt`` chunk with the key ``backpain-outcomes:provenance``
SVG                       the Dublin Core ``<dc:description>`` of the figure's metadata
text (``.txt``)           a footer: a line ``-- backpain-outcomes provenance (JSON) --`` and one JSON line
CSV, PDF, Parquet, Excel  a sidecar file ``<name>.provenance.json`` next to the output (a PDF printed by
                          Chromium keeps no custom metadata; a comment line would break CSV readers),
                          which also holds the SHA-256 of the output, so a changed output is detected
========================  ==========================================================================

An embedded record holds the SHA-256 of the rest of its file
(``content_sha256``, see :mod:`backpain_outcomes.provenance_formats`), so
:func:`read_provenance` refuses every kind of output edited after it was
written. Neither hash is a signature: whoever edits the record as well can
make it match; they detect mistakes and stale files, not forgery.

Decisions
    Times are UTC, ISO 8601 with ``Z`` (``2026-11-26T23:59:01Z``). Input files
    are listed by path, so the same files named in another order give the
    same record. A table hash (:func:`sha256_frame`) depends on row order: it
    identifies the table as analysed, whose rows name their file and line.
    A configuration value JSON cannot hold (NaN, infinity) is kept as text.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import BackpainError
from .provenance_formats import (
    EMBEDDED_SUFFIXES,
    KEY,
    TEXT_MARK,
    embedded_record,
    html_with_record,
    seal_file,
    text_with_record,
)
from .provenance_values import input_records, plain_config, sha256_file, sha256_frame
from .safe_io import atomic_path, final_path
from .version import __version__

__all__ = ["Provenance", "ProvenanceError", "make_provenance", "invocation", "read_provenance", "sha256_file",
           "sha256_frame", "sidecar_path", "written_with_sidecar", "embed_html", "figure_metadata",
           "text_with_provenance", "seal_figure", "SCHEMA", "KEY", "SIDECAR_SUFFIX", "TEXT_MARK", "STUDY_TABLES"]

#: Identifies the layout of the record (changes when fields change meaning).
SCHEMA = "backpain-outcomes/provenance/1"
#: Suffix of the sidecar file: ``claims.csv`` -> ``claims.csv.provenance.json``.
SIDECAR_SUFFIX = ".provenance.json"
#: The tables of a Study whose canonical serialisation is hashed.
STUDY_TABLES = ("patients", "episodes", "sessions", "scores")
_INVOCATION: contextvars.ContextVar[dict | None] = contextvars.ContextVar("backpain_outcomes_invocation",
                                                                          default=None)


class ProvenanceError(BackpainError, ValueError):
    """A file without a readable provenance record, or whose sidecar no longer matches it."""


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where an output came from.

    Attributes
    ----------
    version : str
        Version of backpain_outcomes that wrote the file.
    function : str
        The function that wrote it (``"clinic_report"``, ``"cli.claims"``, ...).
    command : list of str or None
        The command line (``["backpain-outcomes", "claims", ...]``), None when called from Python.
    config : dict
        The analysis configuration: ``rule`` (its text, which :func:`~backpain_outcomes.rules.as_rule`
        reads back), ``rule_description``, ``origin``, ``day``, ``instrument``, ``alpha``, ``min_n``,
        ``reference``, ... and, from the command line, ``loading`` (how the input was read).
    seed : int or None
        Random seed; None when the output involves no random numbers.
    created : str
        UTC time of writing, ISO 8601 (``2026-11-26T23:59:01Z``).
    inputs : list of dict
        Every input file read: ``path``, ``bytes``, ``sha256``, sorted by path.
    tables : dict of str -> str
        SHA-256 of each table of the study as analysed (:func:`sha256_frame`).
    environment : dict
        Versions of Python, pandas and NumPy.
    output_sha256 : str or None
        SHA-256 of the output (sidecar records only: an embedded record cannot hash its own file).
    content_sha256 : str or None
        SHA-256 of the output without its embedded record (HTML, PNG, SVG and text outputs), so that
        :func:`read_provenance` tells an output edited after writing: of the document as written for
        HTML (line ends read as ``\\n``), of the text above the footer for text, of every PNG chunk but
        the record's (type and data), of the SVG with the record's text left out.
    """

    version: str
    function: str
    config: dict
    seed: int | None = None
    created: str = ""
    inputs: list = dataclasses.field(default_factory=list)
    tables: dict = dataclasses.field(default_factory=dict)
    environment: dict = dataclasses.field(default_factory=dict)
    command: list | None = None
    output_sha256: str | None = None
    content_sha256: str | None = None
    schema: str = SCHEMA

    @property
    def created_at(self) -> dt.datetime:
        """``created`` as a timezone-aware datetime (UTC)."""
        return dt.datetime.fromisoformat(self.created.replace("Z", "+00:00"))

    def to_dict(self) -> dict:
        """The record as plain JSON types."""
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        """The record as JSON text (ASCII only, keys in a fixed order)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict) -> Provenance:
        """Read a record back from :meth:`to_dict` (unknown keys are an error: they belong to another schema)."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ProvenanceError(f"not a provenance record of schema {SCHEMA!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ProvenanceError(f"unknown provenance field(s) {', '.join(unknown)}")
        missing = [name for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ProvenanceError(f"the provenance record is missing the field(s) {', '.join(missing)}")
        for name, value in data.items():
            kinds = _FIELD_TYPES.get(name)
            if (kinds is not None and not isinstance(value, kinds)) or (isinstance(value, bool) and name == "seed"):
                raise ProvenanceError(f"provenance field {name} holds {type(value).__name__} {value!r:.60}, not "
                                      f"{' or '.join(k.__name__.replace('NoneType', 'null') for k in kinds or ())}")
        return cls(**data)


_FIELD_TYPES: dict[str, tuple] = {"version": (str,), "function": (str,), "config": (dict,), "seed": (int, type(None)),
                                  "created": (str,), "inputs": (list,), "tables": (dict,), "environment": (dict,),
                                  "command": (list, type(None)), "output_sha256": (str, type(None)),
                                  "content_sha256": (str, type(None)), "schema": (str,)}


# ----------------------------------------------------------------------------------------- building
@contextlib.contextmanager
def invocation(command, **settings):
    """Within this block every record made by :func:`make_provenance` names the command line
    ``command`` (a list of words) and adds ``settings`` (e.g. ``loading=...``) to its configuration."""
    token = _INVOCATION.set({"command": [str(c) for c in command], "settings": dict(settings)})
    try:
        yield
    finally:
        _INVOCATION.reset(token)


def make_provenance(function: str, config: dict, study=None, seed: int | None = None, input_files=()) -> Provenance:
    """A record for an output written now.

    Parameters
    ----------
    function : str
        The writer (``"clinic_report"``, ``"cli.claims"``).
    config : dict
        The analysis configuration (a :class:`~backpain_outcomes.rules.Resolution` is stored as its text).
    study : Study, optional
        Its ``input_files`` are hashed, and so are its tables as analysed.
    seed : int, optional
    input_files : iterable of path
        Files read in addition to (or instead of) the study's.
    """
    files = [*(getattr(study, "input_files", None) or []), *input_files]
    tables = {}
    if study is not None:
        tables = {name: sha256_frame(getattr(study, name)) for name in STUDY_TABLES
                  if isinstance(getattr(study, name, None), pd.DataFrame)}
    inv = _INVOCATION.get()
    cfg = plain_config({**(inv["settings"] if inv else {}), **config})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    env = {"python": platform.python_version(), "pandas": pd.__version__, "numpy": np.__version__}
    return Provenance(version=__version__, function=function, config=cfg, seed=None if seed is None else int(seed),
                      created=now, inputs=input_records(files), tables=tables, environment=env,
                      command=inv["command"] if inv else None)


# ----------------------------------------------------------------------------------------- writing
def sidecar_path(path) -> Path:
    """The sidecar of an output: ``out/claims.csv`` -> ``out/claims.csv.provenance.json``."""
    final = final_path(path)
    return final.with_name(final.name + SIDECAR_SUFFIX)


@contextlib.contextmanager
def written_with_sidecar(path, provenance: Provenance):
    """A temporary path for the output; on success the output and its sidecar are moved into place.

    The sidecar records the SHA-256 of the output. If the block raises, neither file is written
    and older ones are left untouched (both go through :func:`~backpain_outcomes.safe_io.atomic_path`).
    """
    with atomic_path(sidecar_path(path)) as side, atomic_path(path) as tmp:
        yield tmp
        record = dataclasses.replace(provenance, output_sha256=sha256_file(tmp))
        side.write_text(record.to_json(indent=2) + "\n", encoding="utf-8")


def _with_hash(provenance: Provenance):
    return lambda content: dataclasses.replace(provenance, content_sha256=content).to_json()


def embed_html(document: str, provenance: Provenance) -> str:
    """``document`` with the record in a ``<meta>`` element and a JSON ``<script>`` at the end of ``<head>``.

    The record holds the SHA-256 of ``document`` (``content_sha256``), which :func:`read_provenance` checks.
    """
    return html_with_record(document, _with_hash(provenance))


def figure_metadata(provenance: Provenance, fmt: str) -> dict:
    """``metadata=`` for matplotlib's ``savefig`` in format ``fmt`` (``png``: a text chunk; ``svg``: the
    Dublin Core description). Call :func:`seal_figure` on the file written to add the hash of its content."""
    fmt = fmt.lower().lstrip(".")
    creator = f"backpain-outcomes {provenance.version}"
    if fmt == "png":
        return {"Software": creator, KEY: provenance.to_json()}
    if fmt == "svg":
        return {"Creator": creator, "Description": provenance.to_json()}
    raise ValueError(f"fmt must be png or svg, got {fmt!r}")


def text_with_provenance(text: str, provenance: Provenance) -> str:
    """``text`` followed by the provenance footer (a marker line and one JSON line); the record holds the
    SHA-256 of the text above the footer."""
    return text_with_record(text, _with_hash(provenance))


def seal_figure(path, provenance: Provenance) -> None:
    """Write the record, with the SHA-256 of the figure's content, into a PNG or SVG file saved by matplotlib
    (a PNG needs no ``metadata=``; an SVG must have been saved with :func:`figure_metadata`)."""
    seal_file(path, _with_hash(provenance), final_path(path).suffix.lower())


# ----------------------------------------------------------------------------------------- reading
def _parse(text: str, where) -> Provenance:
    try:
        return Provenance.from_dict(json.loads(text))
    except json.JSONDecodeError as err:
        raise ProvenanceError(f"{where}: the provenance record is not valid JSON ({err})") from None


def _embedded(path: Path) -> Provenance | None:
    """The record embedded in ``path``, checked against the file's content; None when there is none."""
    try:
        found = embedded_record(path)
    except (OSError, ValueError, SyntaxError) as err:  # UnicodeDecodeError, ET.ParseError, a corrupt image
        raise ProvenanceError(f"{path}: cannot read its provenance record ({type(err).__name__}: {err})") from None
    if found is None:
        return None
    record = _parse(found[0], path)
    if record.content_sha256 is None:  # every record this version embeds holds it (a figure once sealed)
        raise ProvenanceError(f"{path}: its provenance record holds no content_sha256, so the file cannot be "
                              "verified: it was not written (or, for a figure, not sealed with seal_figure) by "
                              "this version of backpain-outcomes, or the record was edited")
    if record.content_sha256 != found[1]:
        raise ProvenanceError(f"{path} has changed since it was written (the SHA-256 of its content differs "
                              "from the one its provenance record holds)")
    return record


def _checked(path: Path, side: Path) -> Provenance:
    try:
        text = side.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ProvenanceError(f"{side}: the provenance sidecar is not UTF-8 text ({err.reason} at byte "
                              f"{err.start}); it was not written by backpain-outcomes or was edited") from None
    record = _parse(text, side)
    if record.output_sha256 != sha256_file(path):
        raise ProvenanceError(f"{path} has changed since {side.name} was written (SHA-256 differs)")
    return record


def read_provenance(path) -> Provenance:
    """The provenance record of a file written by the package.

    Reads the record embedded in HTML, PNG, SVG and text outputs (whose ``content_sha256`` must match
    the file without its record), else the sidecar ``<name>.provenance.json`` (whose ``output_sha256``
    must match the file). ``path`` may also be the sidecar itself; its output is checked the same way.

    Raises
    ------
    TypeError
        When ``path`` is not a path (``None``, a number, ...).
    ProvenanceError
        When the file does not exist or is a directory, has no record, its record cannot be read (a sidecar
        not in UTF-8, invalid JSON) or cannot be verified (an embedded record without ``content_sha256``,
        which every record written by this version holds), or the file has changed since it was written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
    >>> with written_with_sidecar(out, make_provenance("example", {"day": 42, "origin": "onset"})) as tmp:
    ...     _ = tmp.write_text("a\\n1\\n")
    >>> sorted(p.name for p in out.parent.iterdir())
    ['table.csv', 'table.csv.provenance.json']
    >>> read_provenance(out).config
    {'day': 42, 'origin': 'onset'}
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}: {path!r}")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ProvenanceError(f"{path} is a directory; give the file whose provenance to read")
    if not path.is_file():
        raise ProvenanceError(f"{path}: no such file")
    if path.name.endswith(SIDECAR_SUFFIX):
        output = path.with_name(path.name.removesuffix(SIDECAR_SUFFIX))
        if not output.is_file():
            raise ProvenanceError(f"{output} no longer exists (its sidecar {path.name} remains)")
        return _checked(output, path)
    record = _embedded(path) if path.suffix.lower() in EMBEDDED_SUFFIXES else None
    if record is not None:
        return record
    side = sidecar_path(path)
    if not side.is_file():
        raise ProvenanceError(f"{path} carries no provenance record and has no sidecar {side.name}")
    return _checked(path, side)
