"""Registry benchmark: simulate a study of N episodes to partitioned Parquet, load it on a local Dask cluster,
run the registry analyses, and record time and peak memory (driver + workers, sampled every 0.2 s).

    nice .venv/bin/python benchmarks/bench_registry.py --episodes 100000 --workers 1 2
    nice .venv/bin/python benchmarks/bench_registry.py --episodes 1000000 --workers 2 --keep /tmp/reg1e6

A registry already in ``--keep`` (with as many episodes) is reused, not simulated again.

Each analysis is one function in ``ANALYSES`` taking the partitioned study; add one there to time
it too. With several ``--workers`` values the analyses are timed on each cluster size. The time for
more workers is projected with Amdahl's law, T(w) = T_serial + T_tasks / w: ``T_tasks`` is the summed
compute time of the partition tasks (Dask's task stream) and ``T_serial`` the rest of the measured
time (the driver's merging and estimation, scheduling); on a machine shared with other work this is
steadier than comparing 1 and 2 workers. The output is a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_registry_models import MODEL_ANALYSES, PeakMemory  # the pooled curves, the mixed model (same directory)
from distributed import Client, LocalCluster, get_task_stream

from backpain_outcomes.claims import test_resolution_claim
from backpain_outcomes.registry import load_partitioned, simulate_partitioned
from backpain_outcomes.registry_store import read_registry


def claim_test(study):
    """C1 on the registry: the default rule, untreated episodes, day 42, with the sensitivity grid."""
    return test_resolution_claim(study, claimed=0.5, day=42, origin="first_contact")


def claim_test_alone(study):
    """The same test without the sensitivity grid (one definition of resolved instead of 7 x 2 origins x 2)."""
    return test_resolution_claim(study, claimed=0.5, day=42, origin="first_contact", sensitivity=False)


#: name -> function(partitioned study); the results are kept so a reader can check them.
ANALYSES = {"claim test (no sensitivity grid)": claim_test_alone, "claim test (with sensitivity grid)": claim_test,
            **MODEL_ANALYSES}


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def _task_seconds(stream) -> float:
    """Summed compute time of the tasks in a Dask task stream."""
    return sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"] if s["action"] == "compute")


def _simulated(directory: Path, episodes: int) -> bool:
    try:
        meta = read_registry(directory)
    except FileNotFoundError:
        return False
    return sum(1 for _ in (directory / "episodes").glob("*.parquet")) == meta["n_partitions"] and \
        meta["patients_per_partition"] * (meta["n_partitions"] - 1) < episodes <= \
        meta["patients_per_partition"] * meta["n_partitions"]


def run(episodes: int, workers: list[int], per: int, directory: Path, only: list[str] | None) -> list[dict]:
    rows = []
    with PeakMemory() as mem:
        if not _simulated(directory, episodes):
            with LocalCluster(n_workers=max(workers), threads_per_worker=1, dashboard_address=":0") as cluster, \
                    Client(cluster) as client:
                _, t_sim = _timed(simulate_partitioned, directory, episodes, patients_per_partition=per, seed=1,
                                  untreated_resolved_by_42=0.5, force=True, client=client)
            rows.append({"step": "simulate to Parquet", "workers": max(workers), "seconds": t_sim,
                         "peak_gb": mem.step()})
        for w in sorted(workers):
            with LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=":0") as cluster, \
                    Client(cluster) as client:
                mem.step()
                with get_task_stream(client) as ts:
                    study, t_load = _timed(load_partitioned, directory, client=client, today="2100-01-01")
                rows.append({"step": "load and validate", "workers": w, "seconds": t_load, "peak_gb": mem.step(),
                             "tasks": _task_seconds(ts)})
                print(rows[-1], flush=True)
                for name, fn in ANALYSES.items():
                    if only and not any(o in name for o in only):
                        continue
                    with get_task_stream(client) as ts:
                        result, t = _timed(fn, study)
                    rows.append({"step": name, "workers": w, "seconds": t, "peak_gb": mem.step(),
                                 "tasks": _task_seconds(ts), "check": (getattr(result, "verdict", "") or "")[:70]})
                    print(rows[-1], flush=True)
                study.close()
    return rows


def projection(rows: list[dict], to=(1, 2, 4, 8, 16)) -> list[str]:
    """Amdahl's law from each measured step: T(w) = T_serial + T_tasks / w."""
    out = []
    for r in rows:
        if "tasks" not in r:
            continue
        serial = max(0.0, r["seconds"] - r["tasks"] / r["workers"])
        proj = " | ".join(f"{serial + r['tasks'] / w:.0f}" for w in to)
        out.append(f"| {r['step']} | {r['workers']} | {r['seconds']:.0f} | {r['tasks']:.0f} | {serial:.0f} | {proj} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--per", type=int, default=50_000, help="patients per partition")
    ap.add_argument("--keep", type=Path, help="write the registry here and keep it (reused when it is there)")
    ap.add_argument("--only", nargs="*", help="run only the analyses whose name contains one of these words")
    args = ap.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bpo_registry_")) / "registry"
    try:
        rows = run(args.episodes, args.workers, args.per, directory, args.only)
    finally:
        if args.keep is None:
            shutil.rmtree(directory.parent, ignore_errors=True)
    print(f"\n{args.episodes:,} episodes, {args.per:,} patients per partition; load average at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores\n")
    print("| step | workers | seconds | peak memory, driver + workers (GB) | check |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['workers']} | {r['seconds']:.1f} | {r['peak_gb']:.2f} | {r.get('check', '')} |")
    lines = projection(rows)
    if lines:
        print("\n| step | workers | measured (s) | task compute (s) | serial (s) | "
              "projected: 1 | 2 | 4 | 8 | 16 workers (s) |\n|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
