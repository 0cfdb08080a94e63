"""Command line outputs: the checks made before anything is read (never an input, replaced only with
``--force``, one path per output, sidecars included) and the writers that record each output's provenance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cli_options import inputs
from .export import FORMATS
from .provenance import invocation, sidecar_path, written_with_sidecar
from .safe_io import OutputError, check_output, safe_csv

__all__ = ["check_file", "claim", "write_csv", "check_table", "write_table", "check_problems_file",
           "SIDECAR_SUFFIXES"]

#: Outputs whose provenance is a sidecar (the others embed it: HTML, text, PNG, SVG).
SIDECAR_SUFFIXES = (".csv", ".pdf", ".parquet", ".xlsx")


def check_file(path, args, suffixes, what: str) -> Path:
    """Check an output and its provenance sidecar (neither an input; replaced only with ``--force``), and that
    no other output of the command has the same path."""
    out = check_output(path, inputs(args), args.force, suffixes=suffixes, what=what)
    claim(args, out, what)
    if out.suffix.lower() in SIDECAR_SUFFIXES:
        check_output(sidecar_path(out), inputs(args), args.force, what=what)
    return out


def claim(args, path: Path, what: str) -> None:
    """Refuse a second output of the command on the same path (it would replace the first)."""
    claimed = vars(args).setdefault("_outputs", {})
    for p in (path, sidecar_path(path)):
        other = claimed.get(p.resolve())
        if other is not None:
            raise OutputError(f"{what}: {path} is also written by {other}; give each output its own file")
    claimed.update({path.resolve(): what, sidecar_path(path).resolve(): what})


def write_csv(df: pd.DataFrame, path, provenance, engine: str = "pandas") -> None:
    """Write a CSV file and its provenance sidecar, atomically."""
    with written_with_sidecar(path, provenance) as tmp:
        safe_csv(df, tmp, engine=engine)


def check_table(path, args, what: str) -> Path:
    """Check a publication table (``.md``, ``.tex``, ``.docx`` or ``.csv``) and its sidecar, which every
    format of table has."""
    out = check_file(path, args, tuple(FORMATS), what)
    check_output(sidecar_path(out), inputs(args), args.force, what=what)
    return out


def write_table(result, path, args, config: dict, study) -> Path:
    """Write ``result.export(path, study=study)`` (its publication table, format by suffix, with a provenance
    sidecar hashing the inputs) with the command's flags in the record's configuration, as the other outputs."""
    command, settings = vars(args)["_invocation"]
    with invocation(command, **settings, **config):
        return result.export(path, force=args.force, study=study)


def check_problems_file(args) -> None:
    """Check the ``--problems`` file, if one is given."""
    if getattr(args, "problems", None):
        check_file(args.problems, args, (".csv",), "--problems")
