"""Validation of claim_power / claim_sample_size (issue 15, item 1).

1. Over a grid of sizes and true rates, the power of the claim test by simulation
   (n_sim studies through simulate_study + test_resolution_claim) against the
   formula (the test's rejection region on binomial counts under complete follow-up):
   Done when every |simulated - formula| <= 3 points.
2. The sample sizes returned by claim_sample_size (formula, and simulation search) achieve their
   target power when checked on fresh simulated studies (another seed).
0. (exact) The formula, the smooth normal approximation, and the rate the simulator delivers after the
   calibration of backpain_outcomes.power_simulation (no simulation of studies).
3. The same comparison with exponential drop-out (mean 200 days), where the formula
   is the normal approximation with its constant-hazard expected Greenwood variance.

Run: ``.venv/bin/python benchmarks/validate_power.py [part] [n_sim] [search_sim] [dropout_sim] [rate]`` with part one of
exact, grid, size, dropout, all (defaults: all, 1000 studies per grid point and for the check of the sample size, 300 per
candidate of the simulated sample-size search (0: no search), 500 per point with drop-out; seeds fixed).
"""

import sys
import time

import pandas as pd

from backpain_outcomes.power import claim_power, claim_sample_size, power_formula, power_normal
from backpain_outcomes.power_simulation import CALIBRATION_MC, simulator_rate
from backpain_outcomes.simulate import simulate_study

#: true rate -> sizes where the power of refuting "90% by day 42" runs from low to high
GRID = {0.70: [10, 20, 30, 40], 0.80: [20, 40, 80, 120], 0.85: [40, 80, 160, 320]}


def compare(table, label):
    t = table.pivot_table(index=["true_rate", "n"], columns="method", values=["power", "mc_se"])
    t.columns = [f"{a}_{b}" for a, b in t.columns]
    t = t.drop(columns=["mc_se_formula"], errors="ignore").reset_index()
    t["difference"] = t["power_simulation"] - t["power_formula"]
    print(f"\n{label}", flush=True)
    print(t.round(4).to_string(index=False), flush=True)
    worst = t.loc[t["difference"].abs().idxmax()]
    print(f"largest |simulated - formula| = {abs(worst['difference']) * 100:.1f} points (n={worst['n']:g}, "
          f"true rate {worst['true_rate']:g}); within 3 points: {int((t['difference'].abs() <= 0.03).sum())} of {len(t)}",
          flush=True)
    return t


def grid(n_sim, rate=None):
    """The grid (or one true rate of it, for running the rates in parallel processes)."""
    t0 = time.time()
    rates = GRID if rate is None else {float(rate): GRID[float(rate)]}
    res = [claim_power(ns, r, claimed=0.90, day=42, method="both", n_sim=n_sim, seed=2024) for r, ns in rates.items()]
    table = pd.concat([r.table for r in res])
    compare(table, f"1. complete follow-up, claimed 0.90, day 42, alpha 0.05, {n_sim} simulated studies per true rate")
    print(f"[{time.time() - t0:.0f} s]", flush=True)


def size(n_sim, search_sim):
    """The formula's sample size (the default of claim_sample_size) checked on n_sim fresh simulated studies; with
    search_sim > 0 also the simulated search (search_sim studies per candidate) and its answer."""
    for rate in (0.80, 0.75):
        t1 = time.time()
        checks = [("formula", claim_sample_size(rate, power=0.80, claimed=0.90))]
        if search_sim:
            checks.append(("simulation search", claim_sample_size(rate, power=0.80, claimed=0.90, method="simulation",
                                                                  n_sim=search_sim, seed=7)))
        for label, ss in checks:
            check = claim_power(ss.n, rate, claimed=0.90, method="simulation", n_sim=n_sim, seed=99)
            p, se = check.table["power"].iat[0], check.table["mc_se"].iat[0]
            print(f"\n2. sample size for 80% power, true rate {rate:g}, {label}: n = {ss.n} (its own power "
                  f"{ss.power:.3f}); fresh {n_sim} studies (seed 99): power {p:.3f} (MC SE {se:.3f}) -> "
                  f"{'achieves' if p >= 0.80 - 1.96 * se else 'FAILS'} the target within MC error", flush=True)
            if label != "formula":
                print(ss.table[["n", "method", "power", "mc_se"]].round(4).to_string(index=False), flush=True)
        print(f"[{time.time() - t1:.0f} s]", flush=True)


def dropout(n_sim):
    t2 = time.time()
    res = claim_power([40, 80, 160], [0.80, 0.85], claimed=0.90, method="both", n_sim=n_sim, seed=2025,
                      dropout_mean_days=200)
    compare(res.table, f"3. exponential drop-out, mean 200 days, {n_sim} simulated studies per true rate")
    print(f"[{time.time() - t2:.0f} s]", flush=True)


def exact():
    """Formula, normal approximation and the simulator's delivered rate on the grid (no simulated studies)."""
    rows = []
    for rate, ns in GRID.items():
        asked = simulator_rate(rate, 42, 98, CALIBRATION_MC)
        _, truth = simulate_study(40, seed=0, untreated_resolved_by_42=asked, horizon=98)
        real = truth.cumulative_resolution(day=42, origin="first_contact", n_mc=400_000, seed=7)
        real = float(real["true_cumulative_resolution"].iloc[0])
        print(f"true rate {rate:g}: the calibrated simulator is asked for {asked:.4f} and delivers {real:.4f} "
              "(Monte Carlo, 400,000 episodes, another seed)", flush=True)
        for n in ns:
            rows.append({"true_rate": rate, "n": n, "formula": power_formula(n, rate), "normal": power_normal(n, rate),
                         "formula_at_delivered": power_formula(n, real)})
    print(pd.DataFrame(rows).round(4).to_string(index=False), flush=True)


def main(part="all", n_sim=1000, search_sim=300, dropout_sim=500, rate=None):
    if part in ("exact", "all"):
        exact()
    if part in ("grid", "all"):
        grid(n_sim, rate)
    if part in ("size", "all"):
        size(n_sim, search_sim)
    if part in ("dropout", "all"):
        dropout(dropout_sim)


if __name__ == "__main__":
    main(*sys.argv[1:2], *[int(a) for a in sys.argv[2:5]], *[float(a) for a in sys.argv[5:6]])
