"""Validation of claim_power / claim_sample_size (issue 15, item 1).

1. Over a grid of sizes and true rates, the power of the claim test by simulation
   (n_sim studies through simulate_study + test_resolution_claim) against the
   normal-approximation formula: Done when every |simulated - formula| <= 3 points.
2. The sample size returned by claim_sample_size(method="simulation") achieves its
   target power when checked on fresh simulated studies (another seed).
3. The same comparison with exponential drop-out (mean 200 days), where the formula
   uses its constant-hazard approximation.

Run: ``.venv/bin/python benchmarks/validate_power.py [n_sim]`` (default 1000; seed fixed).
"""

import sys
import time

from backpain_outcomes.power import claim_power, claim_sample_size

GRID_N = [20, 40, 80, 160, 320]
GRID_RATES = [0.70, 0.80, 0.85]


def compare(res, label):
    t = res.table.pivot_table(index=["true_rate", "n"], columns="method", values=["power", "mc_se"])
    t.columns = [f"{a}_{b}" for a, b in t.columns]
    t = t.drop(columns=["mc_se_formula"], errors="ignore").reset_index()
    t["difference"] = t["power_simulation"] - t["power_formula"]
    print(f"\n{label}")
    print(t.round(4).to_string(index=False))
    worst = t.loc[t["difference"].abs().idxmax()]
    print(f"largest |simulated - formula| = {abs(worst['difference']) * 100:.1f} points (n={worst['n']:g}, "
          f"true rate {worst['true_rate']:g}); within 3 points: {int((t['difference'].abs() <= 0.03).sum())} of {len(t)}")
    return t


def main(n_sim=1000):
    t0 = time.time()
    res = claim_power(GRID_N, GRID_RATES, claimed=0.90, day=42, method="both", n_sim=n_sim, seed=2024)
    compare(res, f"1. complete follow-up, claimed 0.90, day 42, alpha 0.05, {n_sim} simulated studies per true rate")
    print(f"[{time.time() - t0:.0f} s]")

    for rate in (0.80, 0.75):
        t1 = time.time()
        ss = claim_sample_size(rate, power=0.80, claimed=0.90, method="simulation", n_sim=n_sim, seed=7)
        check = claim_power(ss.n, rate, claimed=0.90, method="simulation", n_sim=n_sim, seed=99)
        p, se = check.table["power"].iat[0], check.table["mc_se"].iat[0]
        print(f"\n2. sample size for 80% power, true rate {rate:g}: formula n = {ss.formula_n}, simulation n = {ss.n} "
              f"(search power {ss.power:.3f}); fresh {n_sim} studies (seed 99) at n = {ss.n}: power {p:.3f} "
              f"(MC SE {se:.3f}) -> {'achieves' if p >= 0.80 - 1.96 * se else 'FAILS'} the target within MC error; "
              f"[{time.time() - t1:.0f} s]")
        print(ss.table[["n", "method", "power", "mc_se"]].round(4).to_string(index=False))

    t2 = time.time()
    res = claim_power([40, 80, 160], [0.80, 0.85], claimed=0.90, method="both", n_sim=n_sim, seed=2025,
                      dropout_mean_days=200)
    compare(res, f"3. exponential drop-out, mean 200 days, {n_sim} simulated studies per true rate")
    print(f"[{time.time() - t2:.0f} s]; total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
