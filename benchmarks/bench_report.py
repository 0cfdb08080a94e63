"""Clinic report on a simulated network of 100k episodes (issue 6 target: under 60 s).

Run: ``.venv/bin/python benchmarks/bench_report.py [n_episodes]``
"""

import sys
import tempfile
import time
from pathlib import Path

import backpain_outcomes as bpo


def main(n=100_000):
    t0 = time.perf_counter()
    study, _ = bpo.simulate_study(n, seed=1, n_clinics=10, therapists_per_clinic=8)
    t_sim = time.perf_counter() - t0
    print(f"simulated {n:,} episodes, {len(study.scores):,} scores in {t_sim:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = bpo.clinic_report(study, Path(tmp) / "report.html", progress=False)
        dt = time.perf_counter() - t0
        print(f"clinic_report: {dt:.1f} s for {n:,} episodes ({out.stat().st_size / 1e6:.1f} MB HTML)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
