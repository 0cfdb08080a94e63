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

Run: ``.venv/bin/python benchmarks/bench_registry_models.py n [--dir DIR] [--per 50000]
[--formula "score ~ day + baseline"]``
"""

import argparse
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil
from distributed import Client, LocalCluster

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
    block runs; ``step()`` gives the peak (GB) since its last call."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak, self.step_peak, self._stop = every, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
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


def timed(label, fn):
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
    print(f"{label}: {wall:.1f} s wall, peak memory (driver + workers) {mem.peak / 2**30:.2f} GB", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--dir")
    ap.add_argument("--per", type=int, default=50_000)
    ap.add_argument("--formula", default=FORMULA)
    args = ap.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="bench_registry_")) / f"registry_{args.n}"
    if not (directory / "registry.json").exists() and not any(directory.glob("*")):
        timed(f"simulate {args.n} patients to Parquet",
              lambda: simulate_partitioned(directory, args.n, patients_per_partition=args.per, seed=1))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as client:
        study = timed("load_partitioned", lambda: load_partitioned(directory, client=client))
        print(f"{study.n_partitions} partitions", flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            curves = timed("fit_recovery_curves(by='modality')", lambda: recovery_curves(study))
            model = timed(f"fit_mixed_model({args.formula!r}, re_formula='~ day')",
                          lambda: mixed_model(study, args.formula))
        for w in caught:
            print(f"warning: {w.message}")
        print(curves.table[["modality", "b0", "plateau", "tau_days", "n_episodes", "n_scores"]].to_string())
        print(model.table.to_string(), f"\nnobs {model.nobs}, groups {model.n_groups}, converged {model.converged}")
        print("\n".join(model.notes))
    cluster.close()


if __name__ == "__main__":
    main()
