"""Command line input: the study named on the command line (a directory, table files named after their
table, or a long visit export; for the commands of :data:`REGISTRY_COMMANDS`, also a partitioned registry
directory), and the problems printed when it cannot be loaded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .cli_options import VISIT_COLUMNS, inputs
from .cli_outputs import write_csv
from .exceptions import DataValidationError, format_problems
from .loading import load_study
from .problems import count_by_kind
from .provenance import make_provenance
from .reading import TABLES, find_table_files, table_of_file
from .registry_store import REGISTRY_FILE
from .visits import load_visits

__all__ = ["SHOWN", "REGISTRY_COMMANDS", "load", "print_problems"]

#: Problems printed before the count by kind.
SHOWN = 50
#: Commands that read a partitioned registry (a directory written by ``write_partitioned``) as their study.
REGISTRY_COMMANDS = ("report",)


def _tables(paths: list[Path]) -> dict[str, list]:
    tables: dict[str, list] = {}
    for p in paths:
        if p.is_dir():
            raise ValueError(f"{p} is a directory: give one study directory, or table files")
        name = table_of_file(p)
        if name is None:
            raise ValueError(f"cannot tell which table {p} is: name it {', '.join(t + '.csv' for t in TABLES)}")
        tables.setdefault(name, []).append(p)
    return tables


def _load_visits(args, paths: list[Path], kwargs: dict):
    """``--visits FILE`` (with the patients and episodes files given as paths)."""
    tables: dict[str, Any] = _tables(paths)  # splatted into load_visits' keyword arguments
    others = sorted(set(tables) - {"patients", "episodes"})
    if others:
        raise ValueError(f"with --visits, the other files may be patients and episodes tables only, not {others[0]}")
    scores = dict(args.score) if args.score else None
    return load_visits(args.visits, **{c: getattr(args, c) for c in VISIT_COLUMNS}, scores=scores,
                       untreated_labels=args.untreated_label, **tables, **kwargs)


def _load_registry(args, directory: Path, kwargs: dict):
    """A partitioned registry, on a local Dask cluster (stopped when the command ends)."""
    command = getattr(args, "command", None)
    if command not in REGISTRY_COMMANDS:
        raise ValueError(f"{directory} is a partitioned registry ({REGISTRY_FILE}); the {command} command reads a "
                         f"study directory or table files (commands that read registries: {', '.join(REGISTRY_COMMANDS)})")
    if kwargs["sheet"] is not None:
        raise ValueError(f"--sheet does not apply to a registry: {directory} holds Parquet files")
    from .registry import load_partitioned  # optional dependency (dask, distributed): imported when used
    return load_partitioned(directory, errors=kwargs["errors"], dayfirst=kwargs["dayfirst"],
                            no_sessions=kwargs["no_sessions"])


def load(args):
    """Load the study named on the command line (a directory, or table files named after their table, or a
    visit export)."""
    kwargs = {"errors": "exclude" if args.exclude else "raise", "dayfirst": args.dayfirst,
              "no_sessions": args.no_sessions, "sheet": args.sheet}
    paths = inputs(args)
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
    given = [f"--{c}" for c in (*VISIT_COLUMNS, "score", "untreated_label") if getattr(args, c, None)]
    if args.visits:
        study = _load_visits(args, paths[:-1], kwargs)
    elif given:
        raise ValueError(f"{given[0].replace('_', '-')} describes a visit export: give the file with --visits FILE")
    elif not paths:
        raise ValueError("give a study directory or table files, or a visit export with --visits FILE")
    elif len(paths) == 1 and paths[0].is_dir() and (paths[0] / REGISTRY_FILE).is_file():
        study = _load_registry(args, paths[0], kwargs)
    elif len(paths) == 1 and paths[0].is_dir():
        study = load_study(paths[0], **kwargs)
    else:
        study = load_study(**_tables(paths), **kwargs)
    for note in getattr(study, "notes", []):
        print(f"note: {note}", file=sys.stderr)
    if args.problems:
        write_csv(study.exclusions, args.problems, make_provenance("load_study", {}, study=study), engine="arrow")
        print(f"{len(study.exclusions)} excluded row(s) written to {args.problems}", file=sys.stderr)
    return study


def _read_files(args) -> list[Path]:
    """The data files a failed load read (directories expanded to their table files)."""
    files = []
    for p in inputs(args):
        files += [f for fs in find_table_files(p)[0].values() for f in fs] if p.is_dir() else [p]
    return files


def print_problems(err: DataValidationError, args) -> None:
    """Print the first :data:`SHOWN` problems of a failed load and a count by kind (all of them to
    ``--problems FILE``)."""
    problems = err.problems
    for line in format_problems(problems.head(SHOWN)):
        print(line)
    n = len(problems)
    if n > SHOWN:
        print(f"... and {n - SHOWN} more problem(s).")
    print(f"\n{n} problem(s) by kind:")
    print(count_by_kind(problems).to_string(index=False))
    if getattr(args, "problems", None):
        write_csv(problems, args.problems, make_provenance("load_study", {}, input_files=_read_files(args)),
                  engine="arrow")
        print(f"all {n} problem(s) written to {args.problems}", file=sys.stderr)
    elif n > SHOWN:
        print("Write them all with --problems FILE.", file=sys.stderr)
    print(f"{n} problem(s); nothing was analysed.", file=sys.stderr)
