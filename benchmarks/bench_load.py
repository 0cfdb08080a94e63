"""Load + validate + derive versus a plain pandas read of the same files, in one run.

Simulates a study with about 1,000,000 score rows, writes CSV and Parquet, then
times ``load_study`` against ``pd.read_csv(engine="pyarrow")`` / ``pd.read_parquet``
of the same files and prints the ratios and the peak memory of each.

Run: ``.venv/bin/python benchmarks/bench_load.py [n_patients]``
"""

import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import backpain_outcomes as bpo
from backpain_outcomes.simulate import write_study


def timed(fn):
    """Wall time, and the growth of the process's peak RSS during the call (MiB).

    (tracemalloc is not used: it slows allocation-heavy pandas code many-fold.)"""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return out, dt, peak


def main(n_patients=40000):
    _, _, frames = bpo.simulate_study(n_patients, seed=1, return_frames=True)
    print(f"{len(frames['scores']):,} score rows, {len(frames['sessions']):,} sessions, {n_patients:,} patients")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, reader in (("csv", lambda p: pd.read_csv(p, engine="pyarrow")), ("parquet", pd.read_parquet)):
            d = Path(tmp) / fmt
            write_study(frames, d, fmt=fmt)
            files = sorted(d.iterdir())
            _, t_raw, m_raw = timed(lambda reader=reader, files=files: [reader(f) for f in files])
            study, t_ours, m_ours = timed(lambda d=d: bpo.load_study(d))
            assert len(study.scores) == len(frames["scores"])
            print(f"{fmt:8s} raw read {t_raw:6.2f} s ({m_raw:7.0f} MiB peak growth)   load_study {t_ours:6.2f} s "
                  f"({m_ours:7.0f} MiB peak growth)   ratio {t_ours / t_raw:5.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40000)
