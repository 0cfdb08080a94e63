"""Sub-commands that print a study or an analysis and write its tables: ``validate``, ``claims``, ``compare``
and ``table1``."""

from __future__ import annotations

from .claims import evaluate_seed_claims, test_resolution_claim
from .cli_loading import SHOWN, load
from .cli_options import add_analysis_flags, add_min_n, add_study_args, add_table_flag, command
from .cli_outputs import check_file, check_problems_file, check_table, write_csv, write_table
from .compare import compare_modalities
from .export import FORMATS, to_markdown
from .provenance import Provenance, make_provenance, text_with_provenance
from .safe_io import atomic_path
from .table_one import table_one

__all__ = ["cmd_validate", "cmd_claims", "cmd_compare", "cmd_table1"]


@command("validate", "check a study and print its summary and flow, or every problem", add_study_args)
def cmd_validate(args):
    check_problems_file(args)
    study = load(args)
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
    add_study_args(p)
    add_analysis_flags(p, "rule", "day", "origin", "claimed", "alpha")
    add_min_n(p, 20)
    p.add_argument("--population", help="test one claim on this population (e.g. untreated) instead of C1-C4")
    p.add_argument("--csv", metavar="FILE", help="also write the claims table to this CSV file")
    p.add_argument("--text", metavar="FILE", help="also write the printed verdicts to this .txt file")
    add_table_flag(p, "claims")


def _claims_text(args, report) -> str:
    lines = [f"Rule: {args.rule!r}; day {args.day:g}; origin {args.origin}; claimed {args.claimed:.0%}\n"]
    for rec in report.table.itertuples(index=False):
        lines += [f"[{rec.claim}] {rec.comparison}", f"     {rec.verdict}"]
        if isinstance(rec.caveat, str) and rec.caveat:
            lines.append(f"     caveat: {rec.caveat}")
    return "\n".join(lines + [f"note: {note}" for note in report.notes])


@command("claims", "test the claims C1-C4 (does back pain resolve on its own?) and print the verdicts", _claims_args)
def cmd_claims(args):
    _check_outputs(args)
    study = load(args)
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
    _write_outputs(args, result, make_provenance(function, config, study=study), config, study, "claims", text)
    return 0


def _check_outputs(args) -> None:
    """Refuse the problems file and the output files (``--csv``, ``--text``, ``--table``) before the study is
    loaded: a mistyped name should not cost a load."""
    check_problems_file(args)
    if getattr(args, "csv", None):
        check_file(args.csv, args, (".csv",), "--csv")
    if getattr(args, "text", None):
        check_file(args.text, args, (".txt",), "--text")
    if getattr(args, "table", None):
        check_table(args.table, args, "--table")


def _write_outputs(args, result, provenance: Provenance, config: dict, study, what: str, text: str | None = None) -> None:
    """Write the result's table to ``--csv``, the printed ``text`` to ``--text`` and the publication table to
    ``--table`` (each with its provenance), saying where."""
    if args.csv:
        write_csv(result.table, args.csv, provenance)
        print(f"\n{what} table written to {args.csv}")
    if getattr(args, "text", None):
        with atomic_path(args.text) as tmp:
            tmp.write_text(text_with_provenance(text or "", provenance), encoding="utf-8")
        print(f"{what} text written to {args.text}")
    if args.table:
        write_table(result, args.table, args, config, study)
        print(f"{what} publication table written to {args.table}")


def _compare_args(p):
    add_study_args(p)
    add_analysis_flags(p, "instrument", "day", "reference", "origin", "alpha")
    add_min_n(p, 5)
    p.add_argument("--csv", metavar="FILE", help="also write the comparison table to this CSV file")
    add_table_flag(p, "comparison")


@command("compare", "compare every modality with a reference at a horizon (ANCOVA, responders, hazard ratios)",
         _compare_args)
def cmd_compare(args):
    _check_outputs(args)
    study = load(args)
    res = compare_modalities(study, instrument=args.instrument, day=args.day, reference=args.reference,
                             origin=args.origin, alpha=args.alpha, min_n=args.min_n)
    print(res.summary())
    config = {k: getattr(args, k) for k in ("instrument", "day", "reference", "origin", "alpha", "min_n")}
    _write_outputs(args, res, make_provenance("compare_modalities", config, study=study), config, study, "comparison")
    return 0


def _table1_args(p):
    add_study_args(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the table to this file: {', '.join(FORMATS)} (by its suffix); default: print Markdown")
    p.add_argument("--by", default="modality",
                   help="one categorical column of the episodes: modality (default), treatment_status, chronicity, "
                        "sex, clinic_id, ...")
    add_analysis_flags(p, "instrument", "origin")
    add_min_n(p, 5)
    p.add_argument("--test", action="store_true", help="add p-values across the groups (off: a Table 1 describes)")


@command("table1", "Table 1: baseline characteristics of the episodes by group, with standardised mean differences",
         _table1_args)
def cmd_table1(args):
    check_problems_file(args)
    if args.output:
        check_table(args.output, args, "-o")
    study = load(args)
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
    write_table(res, args.output, args, config, study)
    print(f"Table 1 written to {args.output}")
    return 0
