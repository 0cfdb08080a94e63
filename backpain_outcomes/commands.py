"""Analysis sub-commands of the CLI (claims, curves, report), one small function each."""

from __future__ import annotations

import re

import pandas as pd

from .cli import _add_study_args, _load, command
from .resolution import Resolution


def parse_rule(text: str, sustained: int = 2) -> Resolution:
    """Parse ``nrs<=1``, ``odi-50%`` (relative drop) or ``nrs:mcid`` into a :class:`Resolution`."""
    t = text.strip().lower().replace(" ", "")
    if m := re.fullmatch(r"(\w+)<=([\d.]+)", t):
        return Resolution(m[1], max_score=float(m[2]), sustained=sustained)
    if m := re.fullmatch(r"(\w+)-([\d.]+)%", t):
        return Resolution(m[1], min_relative_drop=float(m[2]) / 100, sustained=sustained)
    if m := re.fullmatch(r"(\w+):mcid", t):
        return Resolution(m[1], mcid=True, sustained=sustained)
    raise ValueError(f"cannot read rule {text!r}: use e.g. 'nrs<=1', 'odi-50%' or 'nrs:mcid'")


def _claims_args(p):
    _add_study_args(p)
    p.add_argument("--rule", default="nrs<=1", help="definition of resolved: 'nrs<=1', 'odi-50%%', 'nrs:mcid'")
    p.add_argument("--sustained", type=int, default=2, help="consecutive visits that must meet the rule")
    p.add_argument("--by-day", type=float, default=42)
    p.add_argument("--claimed", type=float, default=0.90)
    p.add_argument("--origin", choices=["onset", "first_contact"], default=None)
    p.add_argument("--csv", help="also write the claims table to this CSV file")


@command("claims", "test the claims C1-C4 (does back pain resolve on its own?) and print the verdicts", _claims_args)
def cmd_claims(args):
    from .safe_io import safe_csv
    from .seed_claims import evaluate_seed_claims
    study = _load(args)
    rule = parse_rule(args.rule, args.sustained)
    report = evaluate_seed_claims(study, rule=rule, by_day=args.by_day, origin=args.origin, claimed=args.claimed)
    print(f"Rule: {rule!r}; day {args.by_day:g}; claimed {args.claimed:.0%}")
    print()
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        for rec in report.table.itertuples(index=False):
            print(f"[{rec.claim}] {rec.comparison}")
            print(f"     {rec.verdict}")
            if rec.caveat:
                print(f"     caveat: {rec.caveat}")
    if args.csv:
        safe_csv(report.table, args.csv)
        print(f"\nclaims table written to {args.csv}")
    return 0



def _curves_args(p):
    _add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--instrument", default="nrs")
    p.add_argument("--by", default="modality", help="modality, chronicity or modality,chronicity")
    p.add_argument("--origin", choices=["onset", "first_contact"], default="first_contact")


@command("curves", "fit recovery curves per group; write the parameters (CSV) and the figure (PNG, SVG)", _curves_args)
def cmd_curves(args):
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    from .curves import fit_recovery_curves
    from .safe_io import safe_csv
    study = _load(args)
    curves = fit_recovery_curves(study, by=args.by.split(","), instrument=args.instrument, origin=args.origin,
                                 progress=False)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    safe_csv(curves.params, out / "recovery_curves.csv")
    ax = curves.plot()
    for ext in ("png", "svg"):
        ax.figure.savefig(out / f"recovery_curves.{ext}", bbox_inches="tight", dpi=120)
    print(curves.summary())
    print(f"\nwrote {out.resolve() / 'recovery_curves.csv'}, .png and .svg")
    return 0



def _report_args(p):
    _add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="report.html or report.pdf")
    p.add_argument("--clinic", help="restrict to one clinic_id")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="episodes first seen in this period")
    p.add_argument("--title")
    p.add_argument("--show-therapists", action="store_true", help="show therapist ids instead of T1, T2, ...")
    p.add_argument("--min-cell", type=int, default=5, help="hide counts under this (default 5)")


@command("report", "write the clinic outcome report (self-contained HTML, or PDF with Chromium)", _report_args)
def cmd_report(args):
    from .report import clinic_report
    study = _load(args)
    out = clinic_report(study, args.output, clinic=args.clinic, period=tuple(args.period) if args.period else None,
                        title=args.title, show_therapists=args.show_therapists, min_cell=args.min_cell)
    print(f"report written to {out.resolve()}")
    return 0

