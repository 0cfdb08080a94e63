"""Command line: ``backpain-outcomes validate|claims|compare|curves|report|table1|simulate``.

Every flag has the name of the argument of the Python function it feeds
(``--day``, ``--by``, ``--reference``, ``--min-n``, ``--instrument``,
``--rule``, ``--origin``, ``--alpha``, ``--claimed``, ``--population``) and
the same default; ``--origin`` is ``onset`` everywhere.

Exit codes: 0 success; 1 invalid data (the first 50 problems are printed as
``file:row:column: message``, then a count by kind; ``--problems FILE``
writes all of them) or an output that could not be written; 2 usage errors
(a bad flag value, a missing input, an output that must not be written).

Outputs are never written onto an input or into an input directory,
replace an existing file only with ``--force``, and are written to a
temporary file moved into place on success, so a failure leaves an older
file untouched.

Every output records its provenance (package version, command line, analysis
configuration, seed, UTC date, SHA-256 of the input files and of the tables as
analysed): embedded in HTML, PNG, SVG and text files, in a sidecar
``<name>.provenance.json`` next to CSV, PDF, Parquet and Excel files and next to
publication tables (``--table``, ``table1 -o``: Markdown, LaTeX, Word, CSV); read it
back with :func:`backpain_outcomes.provenance.read_provenance`. A sidecar is
an output like any other: never an input, replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import pandas as pd

from .cli_files import cmd_curves, cmd_report, cmd_simulate
from .cli_loading import SHOWN, print_problems
from .cli_options import loading
from .cli_tables import cmd_claims, cmd_compare, cmd_table1, cmd_validate
from .exceptions import DataValidationError, MissingDependencyError
from .provenance import invocation
from .version import __version__

__all__ = ["main", "build_parser", "SHOWN"]

#: The sub-commands, in the order of ``--help`` (each marked with its name, help and options by
#: :func:`backpain_outcomes.cli_options.command`).
COMMANDS = (cmd_validate, cmd_claims, cmd_compare, cmd_curves, cmd_report, cmd_table1, cmd_simulate)


# ----------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="backpain-outcomes", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"backpain-outcomes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for func in COMMANDS:
        name, help_text, arguments = func.command
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(func=func)
    return parser


def _usage(msg: str) -> int:
    print(f"backpain-outcomes: error: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 success, 1 invalid data or failed write, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    command = ["backpain-outcomes", *(sys.argv[1:] if argv is None else argv)]
    settings = {"loading": loading(args)} if hasattr(args, "path") else {}
    vars(args)["_invocation"] = (command, settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            with pd.option_context("display.max_colwidth", 200, "display.width", 250), \
                    invocation(command, **settings):
                return int(args.func(args) or 0)
    except DataValidationError as err:
        print_problems(err, args)
        return 1
    except (FileNotFoundError, ValueError) as err:  # OutputError and bad option values included
        return _usage(str(err))
    except BrokenPipeError:  # the reader of the output went away (``| head``)
        return 1
    except (MissingDependencyError, OSError) as err:
        print(f"backpain-outcomes: nothing written: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
