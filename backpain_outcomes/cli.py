"""Command line: ``backpain-outcomes validate|claims|curves|report|simulate``.

Exit codes: 0 success, 1 invalid data (problems printed one per line as
``file:row:column: message``), 2 usage errors. Each command is one small
function registered with :func:`command`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .exceptions import DataValidationError, MissingDependencyError, format_problems

_COMMANDS: dict[str, tuple] = {}


def command(name: str, help: str, arguments):
    """Register ``func(args)`` as a sub-command; ``arguments(parser)`` adds its options."""
    def wrap(func):
        _COMMANDS[name] = (func, help, arguments)
        return func
    return wrap


def _add_study_args(p):
    p.add_argument("path", nargs="+", help="study directory, or table files (scores.csv sessions.csv ...)")
    p.add_argument("--dayfirst", choices=["true", "false"], help="order of dd/mm/yyyy dates")
    p.add_argument("--exclude", action="store_true", help="exclude invalid rows instead of failing")


def _load(args):
    from .loading import TABLES, load_study
    kwargs = {"errors": "exclude" if args.exclude else "raise"}
    if args.dayfirst:
        kwargs["dayfirst"] = args.dayfirst == "true"
    paths = [Path(p) for p in args.path]
    if len(paths) == 1 and paths[0].is_dir():
        return load_study(paths[0], **kwargs)
    tables = {}
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
        if p.stem.lower() not in TABLES:
            raise ValueError(f"cannot tell which table {p} is: name it "
                             f"{', '.join(t + '.csv' for t in TABLES)}")
        tables[p.stem.lower()] = p
    return load_study(**tables, **kwargs)


def _usage(msg: str) -> int:
    print(f"backpain-outcomes: error: {msg}", file=sys.stderr)
    return 2


@command("validate", "check a study and print its summary, or every problem one per line", _add_study_args)
def cmd_validate(args):
    study = _load(args)
    print(study.summary())
    print()
    print(study.flow().to_string(index=False))
    if len(study.exclusions):
        print()
        print(study.exclusions.to_string(index=False))
    return 0


def _simulate_args(p):
    p.add_argument("-n", type=int, default=500, help="number of patients")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    p.add_argument("--untreated-resolved-by-42", type=float, default=None,
                   help="true share of untreated episodes resolved by day 42")
    p.add_argument("--truth", action="store_true", help="also write truth_episodes.csv")


@command("simulate", "write a simulated study (canonical CSV files) into a directory", _simulate_args)
def cmd_simulate(args):
    from .simulate import simulate_study, write_study
    kwargs = {}
    if args.untreated_resolved_by_42 is not None:
        kwargs["untreated_resolved_by_42"] = args.untreated_resolved_by_42
    _, truth, frames = simulate_study(args.n, seed=args.seed, return_frames=True, **kwargs)
    out = write_study(frames, args.output, fmt=args.format)
    if args.truth:
        truth.episodes.to_csv(out / "truth_episodes.csv", index=False)
    print(f"wrote {args.n} patients to {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # noqa: F401  - registers the analysis commands
    parser = argparse.ArgumentParser(prog="backpain-outcomes", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text, arguments) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(func=func)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return int(args.func(args) or 0)
    except DataValidationError as err:
        for line in format_problems(err.problems):
            print(line)
        print(f"{len(err.problems)} problem(s); nothing was analysed.", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        return _usage(str(err))
    except MissingDependencyError as err:
        print(f"backpain-outcomes: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
