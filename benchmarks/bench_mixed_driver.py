"""Driver memory of the partitioned mixed model (issue 16): merging per-partition statistics and fitting.

Synthetic partitions of ``--per`` groups (episodes) shaped like the default formula
``score ~ day * modality + baseline`` with ``(day | episode)``: 7 modalities (p = 15, q = 2), about
15 scores per episode over 0-180 days. Each partition's ``GroupStats(...).compact()`` is made in turn
(as results arrive from the workers) and handed to the driver's merge, then the REML fit runs; Python
allocations are traced with tracemalloc (peak of the driver's merge + fit, bytes per group), and the
resident memory of the process is reported as well.

Run: ``.venv/bin/python benchmarks/bench_mixed_driver.py 600000 [--per 50000] [--p-small]``
"""

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd
import psutil
from bench_registry_models import PeakMemory  # same directory

from backpain_outcomes import lmm_fast
from backpain_outcomes.lmm_fast import GroupStats, fit_lmm_stats

try:  # the streaming merge (issue 16); absent in older code
    from backpain_outcomes.lmm_stats import StatsAccumulator
except ImportError:  # pragma: no cover
    StatsAccumulator = None


def partition(k: int, per: int, small: bool, seed: int = 1) -> dict:
    """The compact statistics of partition ``k`` (episode ids ``E%08d`` as in the simulated registry)."""
    rng = np.random.default_rng(seed + k)
    n_i = rng.integers(5, 26, per)
    g = np.repeat(np.arange(per), n_i)
    n = len(g)
    day = rng.integers(0, 181, n)
    day = day[np.lexsort((day, g))].astype(float)  # sorted within each group
    mod = rng.integers(0, 7, per)[g]
    base = rng.integers(3, 11, per)[g].astype(float)
    b = rng.normal(0, [1.0, 0.5], (per, 2))
    y = 7 - 0.8 * day / 30 + 0.1 * mod + 0.2 * base + b[g, 0] + b[g, 1] * day / 30 + rng.normal(0, 1, n)
    t = day / 30
    if small:
        X = np.column_stack([np.ones(n), t, base])
    else:
        D = (mod[:, None] == np.arange(1, 7)).astype(float)
        X = np.column_stack([np.ones(n), D, t, D * t[:, None], base])
    Z = np.column_stack([np.ones(n), t])
    labels = pd.Series([f"E{k * per + i + 1:08d}" for i in range(per)], dtype="str")[g].reset_index(drop=True)
    return GroupStats(X, Z, y, labels).compact()


def _counted(fn, name, calls):
    def counted(*args, **kwargs):
        calls[name] += 1
        return fn(*args, **kwargs)
    return counted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("groups", type=int)
    ap.add_argument("--per", type=int, default=50_000)
    ap.add_argument("--p-small", action="store_true", help="score ~ day + baseline (p = 3)")
    ap.add_argument("--no-trace", action="store_true", help="resident memory only (tracemalloc slows the merge)")
    args = ap.parse_args()
    k = -(-args.groups // args.per)
    sizes = [min(args.per, args.groups - i * args.per) for i in range(k)]
    me = psutil.Process()
    rss0 = me.memory_info().rss
    if not args.no_trace:
        tracemalloc.start()
    rss = PeakMemory(every=0.5).__enter__()
    t0 = time.perf_counter()
    if StatsAccumulator is not None:
        acc = StatsAccumulator(sum(sizes))
        for i, m in enumerate(sizes):
            acc.add(partition(i, m, args.p_small))
        stats = acc.stats()
    else:
        stats = GroupStats.merge([partition(i, m, args.p_small) for i, m in enumerate(sizes)], consume=True)
    merged, merge_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    t1 = time.perf_counter()
    calls = {"deviance_terms": 0, "derivatives_from_terms": 0}
    for name in calls:  # each is one pass over all groups (a round trip if they were held on the workers)
        setattr(lmm_fast, name, _counted(getattr(lmm_fast, name), name, calls))
    fit = fit_lmm_stats(stats, True)
    t2 = time.perf_counter()
    _, fit_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss.__exit__(None, None, None)
    G = stats.G
    print(f"{G} groups, p = {stats.p}, tracemalloc {'off' if args.no_trace else 'on'}: merge {t1 - t0:.1f} s "
          f"(held after merge {merged / G:.0f} B/group, peak {merge_peak / G:.0f} B/group), fit {t2 - t1:.1f} s "
          f"(peak {fit_peak / G:.0f} B/group, "
          f"{fit.n_iter} Newton iterations, converged {fit.converged}); process RSS growth "
          f"{(me.memory_info().rss - rss0) / 2**20:.0f} MiB, peak {rss.driver_peak / 2**30:.2f} GB "
          f"({(rss.driver_peak - rss0) / G:.0f} B/group over the start)")
    print(f"passes over the groups: {calls['deviance_terms']} deviance, {calls['derivatives_from_terms']} "
          "derivatives "
          f"(+1 for the moment start, +1 for the BLUPs)")
    print("beta", np.round(fit.beta[:4], 6).tolist(), "theta", np.round(fit.theta, 6).tolist(), "llf", fit.llf)


if __name__ == "__main__":
    main()
