"""Sub-commands that write files: ``curves`` (parameters and figures), ``report`` (the clinic report) and
``simulate`` (a simulated study)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from .checks import check_min_n, check_proportion
from .cli_loading import load
from .cli_options import add_analysis_flags, add_min_n, add_study_args, command, flag, inputs, number, whole
from .cli_outputs import check_file, check_problems_file, claim, write_csv
from .curves import fit_recovery_curves
from .provenance import figure_metadata, make_provenance, seal_figure, sidecar_path, written_with_sidecar
from .reading import TABLES, find_table_files
from .report import clinic_report
from .safe_io import OutputError, atomic_path, check_directory, safe_csv
from .simulate import simulate_study

__all__ = ["cmd_curves", "cmd_report", "cmd_simulate"]

_CURVE_FILES = ("recovery_curves.csv", "recovery_curves.png", "recovery_curves.svg")
_CURVE_SIDECAR = sidecar_path(_CURVE_FILES[0]).name


def _curves_args(p):
    add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    add_analysis_flags(p, "instrument", "by", "origin", "alpha")
    add_min_n(p, 5)


@command("curves", "fit recovery curves per group; write the parameters (CSV) and the figure (PNG, SVG)", _curves_args)
def cmd_curves(args):
    check_problems_file(args)
    out = check_directory(args.output, inputs(args), args.force, (*_CURVE_FILES, _CURVE_SIDECAR))
    for name in _CURVE_FILES:
        claim(args, out / name, "-o")
    study = load(args)
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
    add_study_args(p)
    p.add_argument("-o", "--output", required=True, help="report.html or report.pdf (PDF needs Chromium)")
    p.add_argument("--clinic", help="report on one clinic_id")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="episodes first seen in this period")
    p.add_argument("--title")
    add_analysis_flags(p, "rule", "day", "origin", "instrument")
    add_min_n(p, 5)
    p.add_argument("--show-therapists", action="store_true", help="show therapist ids instead of T1, T2, ...")


@command("report", "write the clinic outcome report (self-contained HTML, or PDF with Chromium)", _report_args)
def cmd_report(args):
    check_problems_file(args)
    out = check_file(args.output, args, (".html", ".htm", ".pdf"), "-o")
    study = load(args)
    with atomic_path(out) as tmp:
        clinic_report(study, tmp, clinic=args.clinic, period=tuple(args.period) if args.period else None,
                      title=args.title, rule=args.rule, day=args.day, origin=args.origin, instrument=args.instrument,
                      min_n=args.min_n, show_therapists=args.show_therapists, progress=False)
    print(f"report written to {out.resolve()}")
    return 0


def _simulate_args(p):
    p.add_argument("-n", type=flag(lambda t: check_min_n(whole(t, "n"), "n")), default=500,
                   help="number of patients")
    p.add_argument("--seed", type=flag(lambda t: whole(t, "seed")), default=1)
    p.add_argument("-o", "--output", required=True, help="output directory (new or empty)")
    p.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    p.add_argument("--untreated-resolved-by-42", type=flag(lambda t: check_proportion(
        number(t, "untreated_resolved_by_42"), "untreated_resolved_by_42")), default=None,
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
        write_csv(truth.episodes, out / "truth" / "episodes.csv", provenance)
    print(f"wrote {args.n} patients to {out.resolve()}")
    return 0
