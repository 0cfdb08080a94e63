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
from pathlib import Path

import matplotlib
import pandas as pd

from .checks import ORIGINS, check_alpha, check_day, check_min_n, check_proportion
from .claims import evaluate_seed_claims, test_resolution_claim
from .compare import compare_modalities
from .curves import fit_recovery_curves
from .exceptions import DataValidationError, MissingDependencyError, format_problems
from .export import FORMATS, to_markdown
from .loading import load_study
from .problems import count_by_kind
from .provenance import (
    figure_metadata,
    invocation,
    make_provenance,
    seal_figure,
    sidecar_path,
    text_with_provenance,
    written_with_sidecar,
)
from .reading import TABLES, find_table_files, table_of_file
from .report import clinic_report
from .rules import DEFAULT_RULE, as_rule
from .safe_io import OutputError, atomic_path, check_directory, check_output, safe_csv
from .simulate import simulate_study
from .table_one import table_one
from .version import __version__
from .visits import load_visits
from .vocabulary import instrument_name, modality_name

__all__ = ["main", "build_parser", "SHOWN"]

#: Problems printed before the count by kind.
SHOWN = 50
_COMMANDS: dict[str, tuple] = {}


def command(name: str, help: str, arguments):
    """Register ``func(args)`` as a sub-command; ``arguments(parser)`` adds its options."""
    def wrap(func):
        _COMMANDS[name] = (func, help, arguments)
        return func
    return wrap


# ----------------------------------------------------------------------------------------- flag values
def _flag(check):
    """An argparse type from a check of the API: its message becomes the usage error of the flag."""
    def parse(text: str):
        try:
            return check(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = getattr(check, "__name__", "value")
    return parse


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    return int(value) if value.is_integer() else value


def _whole(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


def _day(text: str):
    value = _number(text, "day")
    check_day(value)
    return value


def _dayfirst(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"dayfirst must be true or false, got {text!r}")
    return text.lower() == "true"


_DAY = _flag(_day)
_DAYFIRST = _flag(_dayfirst)
_CLAIMED = _flag(lambda t: check_proportion(_number(t, "claimed"), "claimed"))
_ALPHA = _flag(lambda t: check_alpha(_number(t, "alpha"), "alpha"))
_MIN_N = _flag(lambda t: check_min_n(_whole(t, "min_n"), "min_n"))
_INSTRUMENT = _flag(lambda t: instrument_name(t, "instrument"))
_REFERENCE = _flag(lambda t: modality_name(t, "reference"))
_RULE = _flag(lambda t: as_rule(t, "rule"))


def _score(text: str) -> tuple[str, str | None]:
    """``--score COLUMN=INSTRUMENT`` (or ``COLUMN``: the instrument is read from the column's name)."""
    column, sep, inst = text.rpartition("=")
    if not sep:
        return text, None
    if not column:
        raise ValueError(f"score must be COLUMN=INSTRUMENT, got {text!r}")
    return column, instrument_name(inst.strip(), "score", ratings=True)


_SCORE = _flag(_score)
_VISIT_COLUMNS = ("patient", "date", "treatment", "episode", "therapist", "duration")


def _add_analysis_flags(p, *names):
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


def _add_min_n(p, default: int):
    p.add_argument("--min-n", type=_MIN_N, default=default, help=f"minimum count (default {default})")


def _add_study_args(p):
    p.add_argument("path", nargs="*", help="study directory, or table files (scores.csv sessions.csv ...); "
                                          "with --visits, the patients and episodes files to load with it")
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
    for name in _VISIT_COLUMNS:
        v.add_argument(f"--{name}", metavar="COLUMN", help=f"the {name} column (default: found by its name)")
    v.add_argument("--score", type=_SCORE, action="append", metavar="COLUMN[=INSTRUMENT]",
                   help="a score column and its instrument, e.g. 'PainScore(0-10)=nrs' (repeat for each; default: "
                        "every column named after an instrument)")
    v.add_argument("--untreated-label", action="append", metavar="LABEL",
                   help="a treatment value meaning 'not treated' (repeatable; 'No treatment' always is)")


# ----------------------------------------------------------------------------------------- loading
def _inputs(args) -> list[Path]:
    return [Path(p) for p in args.path] + ([Path(args.visits)] if getattr(args, "visits", None) else [])


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
    tables = _tables(paths)
    others = sorted(set(tables) - {"patients", "episodes"})
    if others:
        raise ValueError(f"with --visits, the other files may be patients and episodes tables only, not {others[0]}")
    scores = dict(args.score) if args.score else None
    return load_visits(args.visits, **{c: getattr(args, c) for c in _VISIT_COLUMNS}, scores=scores,
                       untreated_labels=args.untreated_label, **tables, **kwargs)


def _load(args):
    """Load the study named on the command line (a directory, or table files named after their table, or a
    visit export)."""
    kwargs = {"errors": "exclude" if args.exclude else "raise", "dayfirst": args.dayfirst,
              "no_sessions": args.no_sessions, "sheet": args.sheet}
    paths = _inputs(args)
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
    given = [f"--{c}" for c in (*_VISIT_COLUMNS, "score", "untreated_label") if getattr(args, c, None)]
    if args.visits:
        study = _load_visits(args, paths[:-1], kwargs)
    elif given:
        raise ValueError(f"{given[0].replace('_', '-')} describes a visit export: give the file with --visits FILE")
    elif not paths:
        raise ValueError("give a study directory or table files, or a visit export with --visits FILE")
    elif len(paths) == 1 and paths[0].is_dir():
        study = load_study(paths[0], **kwargs)
    else:
        study = load_study(**_tables(paths), **kwargs)
    for note in getattr(study, "notes", []):
        print(f"note: {note}", file=sys.stderr)
    if args.problems:
        _csv(study.exclusions, args.problems, make_provenance("load_study", {}, study=study), engine="arrow")
        print(f"{len(study.exclusions)} excluded row(s) written to {args.problems}", file=sys.stderr)
    return study


def _check_file(path, args, suffixes, what: str) -> Path:
    """Check an output and its provenance sidecar (neither an input; replaced only with ``--force``), and that
    no other output of the command has the same path."""
    out = check_output(path, _inputs(args), args.force, suffixes=suffixes, what=what)
    _claim(args, out, what)
    if out.suffix.lower() in _SIDECAR_SUFFIXES:
        check_output(sidecar_path(out), _inputs(args), args.force, what=what)
    return out


def _claim(args, path: Path, what: str) -> None:
    """Refuse a second output of the command on the same path (it would replace the first)."""
    claimed = vars(args).setdefault("_outputs", {})
    for p in (path, sidecar_path(path)):
        other = claimed.get(p.resolve())
        if other is not None:
            raise OutputError(f"{what}: {path} is also written by {other}; give each output its own file")
    claimed.update({path.resolve(): what, sidecar_path(path).resolve(): what})


#: Outputs whose provenance is a sidecar (the others embed it: HTML, text, PNG, SVG).
_SIDECAR_SUFFIXES = (".csv", ".pdf", ".parquet", ".xlsx")


def _csv(df: pd.DataFrame, path, provenance, engine: str = "pandas") -> None:
    """Write a CSV file and its provenance sidecar, atomically."""
    with written_with_sidecar(path, provenance) as tmp:
        safe_csv(df, tmp, engine=engine)


def _check_table(path, args, what: str) -> Path:
    """Check a publication table (``.md``, ``.tex``, ``.docx`` or ``.csv``) and its sidecar, which every
    format of table has."""
    out = _check_file(path, args, tuple(FORMATS), what)
    check_output(sidecar_path(out), _inputs(args), args.force, what=what)
    return out


def _write_table(result, path, args, config: dict, study) -> Path:
    """Write ``result.export(path, study=study)`` (its publication table, format by suffix, with a provenance
    sidecar hashing the inputs) with the command's flags in the record's configuration, as the other outputs."""
    command, settings = vars(args)["_invocation"]
    with invocation(command, **settings, **config):
        return result.export(path, force=args.force, study=study)


def _read_files(args) -> list[Path]:
    """The data files a failed load read (directories expanded to their table files)."""
    files = []
    for p in _inputs(args):
        files += [f for fs in find_table_files(p)[0].values() for f in fs] if p.is_dir() else [p]
    return files


def _loading(args) -> dict:
    """How the input was read (recorded in every output's provenance)."""
    keys = ("exclude", "dayfirst", "no_sessions", "sheet", "visits", *_VISIT_COLUMNS, "score", "untreated_label")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _check_problems_file(args) -> None:
    if getattr(args, "problems", None):
        _check_file(args.problems, args, (".csv",), "--problems")


def _print_problems(err: DataValidationError, args) -> None:
    problems = err.problems
    for line in format_problems(problems.head(SHOWN)):
        print(line)
    n = len(problems)
    if n > SHOWN:
        print(f"... and {n - SHOWN} more problem(s).")
    print(f"\n{n} problem(s) by kind:")
    print(count_by_kind(problems).to_string(index=False))
    if getattr(args, "problems", None):
        _csv(problems, args.problems, make_provenance("load_study", {}, input_files=_read_files(args)), engine="arrow")
        print(f"all {n} problem(s) written to {args.problems}", file=sys.stderr)
    elif n > SHOWN:
        print("Write them all with --problems FILE.", file=sys.stderr)
    print(f"{n} problem(s); nothing was analysed.", file=sys.stderr)


# ----------------------------------------------------------------------------------------- commands
@command("validate", "check a study and print its summary and flow, or every problem", _add_study_args)
def cmd_validate(args):
    _check_problems_file(args)
    study = _load(args)
    print(study.summary())
    print()
    print(study.flow().to_string(index=False))
    repeats = getattr(study, "same_day_scores", None)
    if repeats is not None and len(repeats):
        print(f"\n{len(repeats)} score row(s) share their episode, instrument and day with a different score; "
              "the analyses average each such day into one visit.")
    ex = study.exclusions
    if len(ex):
        print(f"\n{len(ex)} excluded row(s)" + (f"; the first {SHOWN}:" if len(ex) > SHOWN else ":"))
        print(ex.head(SHOWN).to_string(index=False))
    return 0


def _claims_args(p):
    _add_study_args(p)
    _add_analysis_flags(p, "rule", "day", "origin", "claimed", "alpha")
    _add_min_n(p, 20)
    p.add_argument("--population", help="test one claim on this population (e.g. untreated) instead of C1-C4")
    p.add_argument("--csv", metavar="FILE", help="also write the claims table to this CSV file")
    p.add_argument("--text", metavar="FILE", help="also write the printed verdicts to this .txt file")
    _add_table_flag(p, "claims")


def _add_table_flag(p, what: str):
    p.add_argument("--table", metavar="FILE", help=f"also write the {what} publication table to this file: "
                                                   f"{', '.join(FORMATS)} (by its suffix)")


def _claims_text(args, report) -> str:
    lines = [f"Rule: {args.rule!r}; day {args.day:g}; origin {args.origin}; claimed {args.claimed:.0%}\n"]
    for rec in report.table.itertuples(index=False):
        lines += [f"[{rec.claim}] {rec.comparison}", f"     {rec.verdict}"]
        if isinstance(rec.caveat, str) and rec.caveat:
            lines.append(f"     caveat: {rec.caveat}")
    return "\n".join(lines + [f"note: {note}" for note in report.notes])


@command("claims", "test the claims C1-C4 (does back pain resolve on its own?) and print the verdicts", _claims_args)
def cmd_claims(args):
    _check_problems_file(args)
    if args.csv:
        _check_file(args.csv, args, (".csv",), "--csv")
    if args.text:
        _check_file(args.text, args, (".txt",), "--text")
    if args.table:
        _check_table(args.table, args, "--table")
    study = _load(args)
    config = {k: getattr(args, k) for k in ("rule", "day", "origin", "claimed", "alpha", "min_n", "population")}
    if args.population:
        res = test_resolution_claim(study, claimed=args.claimed, day=args.day, rule=args.rule,
                                    population=args.population, origin=args.origin, alpha=args.alpha, min_n=args.min_n)
        text, result, function = res.summary(), res, "test_resolution_claim"
    else:
        report = evaluate_seed_claims(study, rule=args.rule, day=args.day, origin=args.origin, claimed=args.claimed,
                                      alpha=args.alpha, min_n=args.min_n)
        text, result, function = _claims_text(args, report), report, "evaluate_seed_claims"
    print(text)
    provenance = make_provenance(function, config, study=study)
    if args.csv:
        _csv(result.table, args.csv, provenance)
        print(f"\nclaims table written to {args.csv}")
    if args.text:
        with atomic_path(args.text) as tmp:
            tmp.write_text(text_with_provenance(text, provenance), encoding="utf-8")
        print(f"claims text written to {args.text}")
    if args.table:
        _write_table(result, args.table, args, config, study)
        print(f"claims publication table written to {args.table}")
    return 0


def _compare_args(p):
    _add_study_args(p)
    _add_analysis_flags(p, "instrument", "day", "reference", "origin", "alpha")
    _add_min_n(p, 5)
    p.add_argument("--csv", metavar="FILE", help="also write the comparison table to this CSV file")
    _add_table_flag(p, "comparison")


@command("compare", "compare every modality with a reference at a horizon (ANCOVA, responders, hazard ratios)",
         _compare_args)
def cmd_compare(args):
    _check_problems_file(args)
    if args.csv:
        _check_file(args.csv, args, (".csv",), "--csv")
    if args.table:
        _check_table(args.table, args, "--table")
    study = _load(args)
    res = compare_modalities(study, instrument=args.instrument, day=args.day, reference=args.reference,
                             origin=args.origin, alpha=args.alpha, min_n=args.min_n)
    print(res.summary())
    config = {k: getattr(args, k) for k in ("instrument", "day", "reference", "origin", "alpha", "min_n")}
    if args.csv:
        _csv(res.table, args.csv, make_provenance("compare_modalities", config, study=study))
        print(f"\ncomparison table written to {args.csv}")
    if args.table:
        _write_table(res, args.table, args, config, study)
        print(f"comparison publication table written to {args.table}")
    return 0


_CURVE_FILES = ("recovery_curves.csv", "recovery_curves.png", "recovery_curves.svg")
_CURVE_SIDECAR = sidecar_path(_CURVE_FILES[0]).name


def _curves_args(p):
    _add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    _add_analysis_flags(p, "instrument", "by", "origin", "alpha")
    _add_min_n(p, 5)


@command("curves", "fit recovery curves per group; write the parameters (CSV) and the figure (PNG, SVG)", _curves_args)
def cmd_curves(args):
    _check_problems_file(args)
    out = check_directory(args.output, _inputs(args), args.force, (*_CURVE_FILES, _CURVE_SIDECAR))
    for name in _CURVE_FILES:
        _claim(args, out / name, "-o")
    study = _load(args)
    by = [b.strip() for b in args.by.split(",")]
    curves = fit_recovery_curves(study, by=by, instrument=args.instrument,
                                 origin=args.origin, alpha=args.alpha, min_n=args.min_n, progress=False)
    matplotlib.use("Agg")
    ax = curves.plot()
    config = {"instrument": args.instrument, "by": by, "origin": args.origin, "alpha": args.alpha, "min_n": args.min_n}
    provenance = make_provenance("fit_recovery_curves", config, study=study)
    with written_with_sidecar(out / _CURVE_FILES[0], provenance) as csv, atomic_path(out / _CURVE_FILES[1]) as png, \
            atomic_path(out / _CURVE_FILES[2]) as svg:
        safe_csv(curves.table, csv)
        ax.figure.savefig(png, bbox_inches="tight", dpi=120, metadata=figure_metadata(provenance, "png"))
        ax.figure.savefig(svg, bbox_inches="tight", metadata=figure_metadata(provenance, "svg"))
        seal_figure(png, provenance)
        seal_figure(svg, provenance)
    print(curves.summary())
    print(f"\nwrote {', '.join(str(out / f) for f in (*_CURVE_FILES, _CURVE_SIDECAR))}")
    return 0


def _report_args(p):
    _add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="report.html or report.pdf (PDF needs Chromium)")
    p.add_argument("--clinic", help="report on one clinic_id")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="episodes first seen in this period")
    p.add_argument("--title")
    _add_analysis_flags(p, "rule", "day", "origin", "instrument")
    _add_min_n(p, 5)
    p.add_argument("--show-therapists", action="store_true", help="show therapist ids instead of T1, T2, ...")


@command("report", "write the clinic outcome report (self-contained HTML, or PDF with Chromium)", _report_args)
def cmd_report(args):
    _check_problems_file(args)
    out = _check_file(args.output, args, (".html", ".htm", ".pdf"), "-o")
    study = _load(args)
    with atomic_path(out) as tmp:
        clinic_report(study, tmp, clinic=args.clinic, period=tuple(args.period) if args.period else None,
                      title=args.title, rule=args.rule, day=args.day, origin=args.origin, instrument=args.instrument,
                      min_n=args.min_n, show_therapists=args.show_therapists, progress=False)
    print(f"report written to {out.resolve()}")
    return 0


def _table1_args(p):
    _add_study_args(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the table to this file: {', '.join(FORMATS)} (by its suffix); default: print Markdown")
    p.add_argument("--by", default="modality",
                   help="one categorical column of the episodes: modality (default), treatment_status, chronicity, "
                        "sex, clinic_id, ...")
    _add_analysis_flags(p, "instrument", "origin")
    _add_min_n(p, 5)
    p.add_argument("--test", action="store_true", help="add p-values across the groups (off: a Table 1 describes)")


@command("table1", "Table 1: baseline characteristics of the episodes by group, with standardised mean differences",
         _table1_args)
def cmd_table1(args):
    _check_problems_file(args)
    if args.output:
        _check_table(args.output, args, "-o")
    study = _load(args)
    try:
        res = table_one(study, by=args.by, instrument=args.instrument, origin=args.origin, test=args.test,
                        min_n=args.min_n)
    except ValueError as err:  # --by is checked against the study's columns, once it is loaded
        if str(err).startswith(("by=", "by ")):
            raise ValueError(f"argument --by: {err}") from None
        raise
    if not args.output:
        print(to_markdown(res), end="")
        return 0
    config = {k: getattr(args, k) for k in ("by", "instrument", "origin", "min_n", "test")}
    _write_table(res, args.output, args, config, study)
    print(f"Table 1 written to {args.output}")
    return 0


def _simulate_args(p):
    p.add_argument("-n", type=_flag(lambda t: check_min_n(_whole(t, "n"), "n")), default=500,
                   help="number of patients")
    p.add_argument("--seed", type=_flag(lambda t: _whole(t, "seed")), default=1)
    p.add_argument("-o", "--output", required=True, help="output directory (new or empty)")
    p.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    p.add_argument("--untreated-resolved-by-42", type=_flag(lambda t: check_proportion(
        _number(t, "untreated_resolved_by_42"), "untreated_resolved_by_42")), default=None,
                   help="true share of untreated episodes resolved by day 42 after first contact")
    p.add_argument("--truth", action="store_true", help="also write the true event days to truth/episodes.csv")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory, replacing the tables")


def _check_simulate_output(out: Path, names: list[str], force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o: {out} is a file; give a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputError(f"-o: {out} is not empty; choose a new or empty directory "
                              "(or pass --force to replace the tables in it)")
        found, _ = find_table_files(out)
        others = [f.name for files in found.values() for f in files if f.name not in names]
        if others:
            raise OutputError(f"-o: {out} holds {', '.join(others)}, which would be read together with the new "
                              "tables; choose a new or empty directory")


@command("simulate", "write a simulated study (one file per table) into a new or empty directory", _simulate_args)
def cmd_simulate(args):
    out = Path(args.output)
    suffix = {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}[args.format]
    names = [t + suffix for t in TABLES]
    _check_simulate_output(out, names, args.force)
    kwargs = {} if args.untreated_resolved_by_42 is None else {"untreated_resolved_by_42": args.untreated_resolved_by_42}
    _, truth, frames = simulate_study(args.n, seed=args.seed, return_frames=True, **kwargs)
    config = {"n": args.n, "format": args.format, "untreated_resolved_by_42": args.untreated_resolved_by_42}
    provenance = make_provenance("simulate_study", config, seed=args.seed)
    for name, df in frames.items():
        with written_with_sidecar(out / f"{name}{suffix}", provenance) as tmp:
            if args.format == "csv":
                df.to_csv(tmp, index=False)
            elif args.format == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_excel(tmp, index=False)
    if args.truth:
        _csv(truth.episodes, out / "truth" / "episodes.csv", provenance)
    print(f"wrote {args.n} patients to {out.resolve()}")
    return 0


# ----------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="backpain-outcomes", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"backpain-outcomes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text, arguments) in _COMMANDS.items():
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
    settings = {"loading": _loading(args)} if hasattr(args, "path") else {}
    vars(args)["_invocation"] = (command, settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            with pd.option_context("display.max_colwidth", 200, "display.width", 250), \
                    invocation(command, **settings):
                return int(args.func(args) or 0)
    except DataValidationError as err:
        _print_problems(err, args)
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
