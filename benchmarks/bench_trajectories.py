"""Trajectory model benchmark (issue 5): 20k episodes, k = 1..5, n_init = 10 (default cubic B-spline time basis).

Prints wall time, peak RSS growth, EM iterations per second, and the
enumeration table. Run: ``.venv/bin/python benchmarks/bench_trajectories.py [n_episodes]``
"""

import resource
import sys
import time

import backpain_outcomes as bpo


def main(n=20000):
    study, truth = bpo.simulate_study(n, seed=1)
    frame = study.analysis_frame("nrs", origin="first_contact", include_baseline=True)
    print(f"{n} episodes, {len(frame):,} NRS measurements")
    t0 = time.perf_counter()
    tr = bpo.fit_trajectories(study, k=range(1, 6), n_init=10, seed=0, origin="first_contact", day=365)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fit_trajectories k=1..5, n_init=10: {dt:.1f} s; process peak RSS {peak:.0f} MiB (includes the "
          f"simulation); EM iterations of the kept fits: {tr.enumeration['n_iter'].sum()}")
    print(tr.table.drop(columns="note").round(3).to_string(index=False))
    t4 = tr.select(4)
    true = truth.episodes.set_index("episode_id")["trajectory_class"].reindex(t4.classes["episode_id"])
    print(f"adjusted Rand index (k=4 vs simulated classes): {bpo.adjusted_rand_index(t4.classes['class'], true):.3f}")
    print("class labels (k=4):", ", ".join(t4.sizes["label"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
