"""Registry scale (issue 16): pooled recovery curves and the mixed model of a partitioned study.

Simulates a registry of ``n`` patients (one episode each) straight to Parquet
(``simulate_partitioned``, ``--per`` patients a partition; reused when ``--dir`` already holds one),
loads it on a ``LocalCluster`` of two single-threaded worker processes and times, each on its own:

* ``fit_recovery_curves(study, by="modality")`` (per-(group, day) sums, then per-episode scores);
* ``fit_mixed_model(study, FORMULA, re_formula="~ day")`` (per-group cross-products merged on the
  driver, the in-memory optimiser).

Peak memory is the resident memory of this process and all its children (the workers), summed,
sampled every 0.2 s with psutil, during each analysis (the issue's bound: 8 GB). Agreement with
the in-memory fits is tested in tests/test_registry_models.py (to 1e-8).

Each step also reports the driver's own peak, the summed compute time of the partition tasks (Dask's
task stream) and Amdahl's projection T(w) = serial + tasks / w for more workers.

Run: ``.venv/bin/python benchmarks/bench_registry_models.py n [--dir DIR | --registry REGISTRY] [--per 50000]
[--formula "score ~ day + baseline"] [--only mixed] [--workers 2]``
"""

import argparse
import contextlib
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil
from distributed import Client, LocalCluster, get_task_stream

from backpain_outcomes import registry_models  # noqa: F401 - registers the partitioned implementations
from backpain_outcomes.curves import fit_recovery_curves
from backpain_outcomes.mixed import fit_mixed_model
from backpain_outcomes.registry import load_partitioned, simulate_partitioned

FORMULA = "score ~ day * modality + baseline"


def recovery_curves(study):
    """Pooled recovery curves by modality, episode-clustered SEs."""
    return fit_recovery_curves(study, progress=False)


def mixed_model(study, formula=FORMULA):
    """Random intercept and slope per episode, REML."""
    return fit_mixed_model(study, formula, re_formula="~ day")


def mixed_model_small(study):
    """The mixed model with three fixed effects: the driver's memory grows with groups x fixed effects."""
    return mixed_model(study, "score ~ day + baseline")


#: For benchmarks/bench_registry.py (``ANALYSES.update(MODEL_ANALYSES)``).
MODEL_ANALYSES = {"pooled recovery curves by modality": recovery_curves,
                  "mixed model, score ~ day + baseline, (day | episode)": mixed_model_small,
                  f"mixed model, {FORMULA}, (day | episode)": mixed_model}


class PeakMemory:
    """Peak of the summed resident memory (bytes) of this process and its children (the Dask workers) while the
    block runs; ``step()`` gives the peak (GB) since its last call. ``driver_peak`` is this process's own peak
    (bytes)."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak, self.step_peak, self.driver_peak, self._stop = every, 0, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p is me:
                    self.driver_peak = max(self.driver_peak, rss)
            self.peak, self.step_peak = max(self.peak, total), max(self.step_peak, total)
            time.sleep(self.every)

    def step(self) -> float:
        """Peak (GB) since the last call."""
        out, self.step_peak = self.step_peak, 0
        return out / 2**30

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _task_seconds(stream) -> float:
    """Summed compute time of the tasks in a Dask task stream."""
    return sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"] if s["action"] == "compute")


def timed(label, fn, client=None, workers=2):
    """Run ``fn()``; print wall time, peak memory (driver + workers, and the driver alone) and, with a client,
    the summed compute time of the partition tasks and Amdahl's projection T(w) = serial + tasks / w."""
    stream = get_task_stream(client) if client is not None else contextlib.nullcontext()
    with PeakMemory() as mem, stream as ts:
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
    line = (f"{label}: {wall:.1f} s wall, peak memory (driver + workers) {mem.peak / 2**30:.2f} GB, "
            f"driver alone {mem.driver_peak / 2**30:.2f} GB")
    if client is not None:
        tasks = _task_seconds(ts)
        serial = max(0.0, wall - tasks / workers)
        proj = ", ".join(f"{w}: {serial + tasks / w:.0f} s" for w in (1, 2, 4, 8, 16))
        line += f"; task compute {tasks:.1f} s, serial {serial:.1f} s; projected {proj}"
    print(line, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--dir", help="parent of registry_<n> (simulated there unless it holds one)")
    ap.add_argument("--registry", help="an existing registry directory, used as it is (no simulation)")
    ap.add_argument("--per", type=int, default=50_000)
    ap.add_argument("--formula", default=FORMULA)
    ap.add_argument("--only", choices=["curves", "mixed"], help="run only this analysis")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.registry:
        directory = Path(args.registry)
    else:
        directory = Path(args.dir or tempfile.mkdtemp(prefix="bench_registry_")) / f"registry_{args.n}"
        if not (directory / "registry.json").exists() and not any(directory.glob("*")):
            timed(f"simulate {args.n} patients to Parquet",
                  lambda: simulate_partitioned(directory, args.n, patients_per_partition=args.per, seed=1))
    print(f"{time.strftime('%H:%M:%S')} registry {directory}; load average {os.getloadavg()}", flush=True)
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as client:
        study = timed("load_partitioned", lambda: load_partitioned(directory, client=client), client, args.workers)
        print(f"{study.n_partitions} partitions", flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.only != "mixed":
                curves = timed("fit_recovery_curves(by='modality')", lambda: recovery_curves(study), client,
                               args.workers)
                print(curves.table[["modality", "b0", "plateau", "tau_days", "n_episodes", "n_scores"]].to_string())
            if args.only != "curves":
                model = timed(f"fit_mixed_model({args.formula!r}, re_formula='~ day')",
                              lambda: mixed_model(study, args.formula), client, args.workers)
                print(model.table.to_string(), f"\nnobs {model.nobs}, groups {model.n_groups}, converged "
                      f"{model.converged}, llf {model.llf!r}\ncov_re\n{model.cov_re}\nscale {model.scale!r}")
                print("\n".join(model.notes))
        for w in caught:
            print(f"warning: {w.message}")
    cluster.close()
    print(f"{time.strftime('%H:%M:%S')} done; load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
