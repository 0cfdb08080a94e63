"""Command line options: the sub-command marker, the flags shared by the sub-commands and the conversion of
their values.

Every flag has the name of the argument of the Python function it feeds and the same default; a value is
checked by the function of :mod:`backpain_outcomes.checks` (or the vocabulary) that checks the argument, whose
message becomes the usage error of the flag.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .checks import ORIGINS, check_alpha, check_day, check_min_n, check_proportion
from .export import FORMATS
from .rules import DEFAULT_RULE, as_rule
from .vocabulary import instrument_name, modality_name

__all__ = ["command", "flag", "number", "whole", "add_analysis_flags", "add_min_n", "add_study_args",
           "add_table_flag", "inputs", "loading", "VISIT_COLUMNS"]

#: The columns of a long visit export that ``--patient``, ``--date``, ... name.
VISIT_COLUMNS = ("patient", "date", "treatment", "episode", "therapist", "duration")


def command(name: str, help: str, arguments):
    """Mark ``func(args)`` as the sub-command ``name``; ``arguments(parser)`` adds its options
    (:func:`backpain_outcomes.cli.build_parser` adds the marked functions to the parser)."""
    def wrap(func):
        func.command = (name, help, arguments)
        return func
    return wrap


# ----------------------------------------------------------------------------------------- flag values
def flag(check):
    """An argparse type from a check of the API: its message becomes the usage error of the flag."""
    def parse(text: str):
        try:
            return check(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = getattr(check, "__name__", "value")
    return parse


def number(text: str, name: str) -> float:
    """``text`` as a number (an ``int`` when it is whole); the error names the argument ``name``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    return int(value) if value.is_integer() else value


def whole(text: str, name: str) -> int:
    """``text`` as a whole number; the error names the argument ``name``."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


def _day(text: str):
    value = number(text, "day")
    check_day(value)
    return value


def _dayfirst(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"dayfirst must be true or false, got {text!r}")
    return text.lower() == "true"


_DAY = flag(_day)
_DAYFIRST = flag(_dayfirst)
_CLAIMED = flag(lambda t: check_proportion(number(t, "claimed"), "claimed"))
_ALPHA = flag(lambda t: check_alpha(number(t, "alpha"), "alpha"))
_MIN_N = flag(lambda t: check_min_n(whole(t, "min_n"), "min_n"))
_INSTRUMENT = flag(lambda t: instrument_name(t, "instrument"))
_REFERENCE = flag(lambda t: modality_name(t, "reference"))
_RULE = flag(lambda t: as_rule(t, "rule"))


def _score(text: str) -> tuple[str, str | None]:
    """``--score COLUMN=INSTRUMENT`` (or ``COLUMN``: the instrument is read from the column's name)."""
    column, sep, inst = text.rpartition("=")
    if not sep:
        return text, None
    if not column:
        raise ValueError(f"score must be COLUMN=INSTRUMENT, got {text!r}")
    return column, instrument_name(inst.strip(), "score", ratings=True)


_SCORE = flag(_score)


# ----------------------------------------------------------------------------------------- shared flags
def add_analysis_flags(p, *names):
    """Flags named and defaulted like the arguments of the analysis functions."""
    flags = {
        "rule": (("--rule",), dict(type=_RULE, default=DEFAULT_RULE, metavar="RULE",
                                   help="definition of resolved, e.g. 'nrs<=1 x2' (default), 'nrs<=1 for 14 days', "
                                        "'mcid', 'odi-50%%'")),
        "day": (("--day",), dict(type=_DAY, default=42, help="horizon in days since the origin (default 42)")),
        "origin": (("--origin",), dict(choices=ORIGINS, default="onset", help="day 0: onset (default) or first_contact")),
        "claimed": (("--claimed",), dict(type=_CLAIMED, default=0.90, help="claimed share resolved (default 0.90)")),
        "alpha": (("--alpha",), dict(type=_ALPHA, default=0.05, help="error rate of tests and intervals (0.05)")),
        "instrument": (("--instrument",), dict(type=_INSTRUMENT, default="nrs", help="outcome instrument (nrs)")),
        "reference": (("--reference",), dict(type=_REFERENCE, default="untreated",
                                             help="comparator modality (untreated)")),
        "by": (("--by",), dict(default="modality", help="grouping column(s), comma-separated (modality)")),
    }
    for name in names:
        args, kwargs = flags[name]
        p.add_argument(*args, **kwargs)


def add_min_n(p, default: int):
    """``--min-n`` with the command's default."""
    p.add_argument("--min-n", type=_MIN_N, default=default, help=f"minimum count (default {default})")


def add_table_flag(p, what: str):
    """``--table FILE``: the result's publication table, in the format of the file's suffix."""
    p.add_argument("--table", metavar="FILE", help=f"also write the {what} publication table to this file: "
                                                   f"{', '.join(FORMATS)} (by its suffix)")


def add_study_args(p):
    """The input of a command that loads a study: paths, how to read them, ``--problems`` and ``--force``."""
    p.add_argument("path", nargs="*", help="study directory, or table files (scores.csv sessions.csv ...); "
                                          "with --visits, the patients and episodes files to load with it; "
                                          "the report command also reads a partitioned registry directory")
    p.add_argument("--dayfirst", type=_DAYFIRST, default=None, metavar="{true,false}",
                   help="order of dd/mm/yyyy dates: true (day first) or false (month first)")
    p.add_argument("--exclude", action="store_true", help="exclude invalid rows instead of failing")
    p.add_argument("--no-sessions", choices=["unknown", "untreated"], default="unknown",
                   help="what an episode without sessions means (default unknown)")
    p.add_argument("--sheet", help="the sheet to read from workbooks (default: every non-empty sheet)")
    p.add_argument("--problems", metavar="FILE", help="write every problem (or every excluded row) to this CSV file")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    v = p.add_argument_group("long visit export (one row per visit; see load_visits)")
    v.add_argument("--visits", metavar="FILE", help="a visit export to split into sessions and scores")
    for name in VISIT_COLUMNS:
        v.add_argument(f"--{name}", metavar="COLUMN", help=f"the {name} column (default: found by its name)")
    v.add_argument("--score", type=_SCORE, action="append", metavar="COLUMN[=INSTRUMENT]",
                   help="a score column and its instrument, e.g. 'PainScore(0-10)=nrs' (repeat for each; default: "
                        "every column named after an instrument)")
    v.add_argument("--untreated-label", action="append", metavar="LABEL",
                   help="a treatment value meaning 'not treated' (repeatable; 'No treatment' always is)")


# ----------------------------------------------------------------------------------------- parsed values
def inputs(args) -> list[Path]:
    """The input paths given on the command line (the paths, then the ``--visits`` file)."""
    return [Path(p) for p in args.path] + ([Path(args.visits)] if getattr(args, "visits", None) else [])


def loading(args) -> dict:
    """How the input was read (recorded in every output's provenance)."""
    keys = ("exclude", "dayfirst", "no_sessions", "sheet", "visits", *VISIT_COLUMNS, "score", "untreated_label")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
