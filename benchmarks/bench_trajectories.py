"""Trajectory model benchmark (issue 5): 20k episodes, k = 1..5, n_init = 10 (default cubic B-spline time basis);
with ``--registry`` (issue 16) the partitioned fit of a simulated registry.

In memory: prints wall time, peak RSS, EM iterations and the enumeration table.

``--registry``: simulates a registry of ``n`` patients (one episode each) straight to Parquet
(``simulate_partitioned``, ``--per`` patients a partition), loads it on a ``LocalCluster`` of two
single-threaded worker processes and fits ``k = 1..5``, ``n_init = 10`` twice, each time sampling the
resident memory of this process (the driver) and of driver + workers every 0.2 s:

* the partitioned design (:mod:`backpain_outcomes.registry_trajectories`: EM on per-partition sums, the
  episodes' statistics held on the workers);
* the gather design it replaced (every partition's trajectory rows and episodes table concatenated on
  the driver, then the in-memory EM, ``fit_trajectories_frame``), rebuilt here from its code.

and the largest differences between the two fits' log-likelihoods, coefficients and posteriors.

Run: ``.venv/bin/python benchmarks/bench_trajectories.py [n_episodes] [--registry] [--per 25000]``
"""

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from bench_registry_models import PeakMemory  # same directory

import backpain_outcomes as bpo
from backpain_outcomes.registry import load_partitioned, simulate_partitioned
from backpain_outcomes.registry_mixed import frame_or_reason, raise_for_reasons
from backpain_outcomes.trajectories import check_trajectory_options, fit_trajectories_frame, trajectory_notes, trajectory_rows

OPTIONS = {"k": range(1, 6), "n_init": 10, "seed": 0, "origin": "first_contact", "day": 365}


def main(n=20000):
    study, truth = bpo.simulate_study(n, seed=1)
    frame = study.analysis_frame("nrs", origin="first_contact", include_baseline=True)
    print(f"{n} episodes, {len(frame):,} NRS measurements")
    t0 = time.perf_counter()
    tr = bpo.fit_trajectories(study, **OPTIONS)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fit_trajectories k=1..5, n_init=10: {dt:.1f} s; process peak RSS {peak:.0f} MiB (includes the "
          f"simulation); EM iterations of the kept fits: {tr.enumeration['n_iter'].sum()}")
    print(tr.table.drop(columns="note").round(3).to_string(index=False))
    t4 = tr.select(4)
    true = truth.episodes.set_index("episode_id")["trajectory_class"].reindex(t4.classes["episode_id"])
    print(f"adjusted Rand index (k=4 vs simulated classes): {bpo.adjusted_rand_index(t4.classes['class'], true):.3f}")
    print("class labels (k=4):", ", ".join(t4.sizes["label"]))


def _gather_rows(study, origin, day):
    """The gather design's partition step: its trajectory rows, the rows left out and its episodes table."""
    found = frame_or_reason(study, "nrs", origin, include_baseline=True)
    if not isinstance(found, pd.DataFrame):
        return found
    frame, n_late, n_single = trajectory_rows(found, day)
    return {"frame": frame, "n_late": n_late, "n_single": n_single, "episodes": study.episodes}


def gather_fit(parts, k, n_init, seed, origin, day):
    """The gather design (registry_trajectories before issue 16's partitioned EM), with default options."""
    ks, degree, day, min_n = check_trajectory_options(k, "spline", 2, 2, n_init, seed, "class", 1000, 1e-9, 30, 3,
                                                      0.05, day, 10)
    found = raise_for_reasons(parts.map(_gather_rows, origin, day), "nrs", parts)
    notes = trajectory_notes(sum(p["n_late"] for p in found), sum(p["n_single"] for p in found), day)
    frame = pd.concat([p["frame"] for p in found], ignore_index=True)
    episodes = pd.concat([p["episodes"] for p in found], ignore_index=True)
    return fit_trajectories_frame(frame, episodes, (0.0, 10.0), "nrs", origin, notes, ks, "spline", degree, 2,
                                  n_init, seed, "class", 1000, 1e-9, 30, 3, 0.05, day, min_n)


def _timed(label, fn):
    base = psutil.Process().memory_info().rss
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        time.sleep(0.3)
    print(f"{label}: {dt:.1f} s; driver peak RSS {mem.driver_peak / 2**30:.2f} GB (at start "
          f"{base / 2**30:.2f} GB), driver + workers peak {mem.peak / 2**30:.2f} GB")
    return out


def registry(n, per):
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        directory = simulate_partitioned(Path(tmp) / "reg", n, patients_per_partition=per, seed=1)
        print(f"simulated {n} patients in {time.perf_counter() - t0:.0f} s")
        with load_partitioned(directory) as part:
            print(f"{part.n_partitions} partitions, {part.rows_read['scores']:,} score rows; persist={part.persist}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                new = _timed("partitioned EM (per-partition sums)", lambda: bpo.fit_trajectories(part, **OPTIONS))
                print(f"  maps over the partitions: {new._context['n_maps']}")
                old = _timed("gather design (rows on the driver)", lambda: gather_fit(part, **OPTIONS))
    print(new.table.drop(columns="note").round(3).to_string(index=False))
    print(f"n_iter equal: {new.table['n_iter'].tolist() == old.table['n_iter'].tolist()}; best k "
          f"{new.best_k} vs {old.best_k}; notes equal: {new.notes == old.notes}")
    d_ll = np.max(np.abs(new.table["loglik"] - old.table["loglik"]) / np.abs(old.table["loglik"]))
    d_beta = max(np.max(np.abs(new.fits[k].beta - old.fits[k].beta)) for k in new.fits)
    d_post = max(np.max(np.abs(new.fits[k].post - old.fits[k].post)) for k in new.fits)
    print(f"largest differences: loglik {d_ll:.1e} relative, beta {d_beta:.1e}, posteriors {d_post:.1e}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=20000)
    ap.add_argument("--registry", action="store_true")
    ap.add_argument("--per", type=int, default=25000)
    a = ap.parse_args()
    registry(a.n, a.per) if a.registry else main(a.n)
