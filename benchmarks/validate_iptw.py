"""Validation of weighted_comparison (issue 15, item 2) on studies with known confounding.

simulate_confounded: treatment more likely with a worse baseline and chronic pain, responding less likely with
them, and known modality effects (log-odds 0.8, 0.4, 0 for deep tissue, dry needling, cupping). Over
``n_rep`` replicates of ``n`` patients: mean unweighted (crude) and weighted risk differences against the true
ones, the SD of the estimates against the mean sandwich SE, and the coverage of the 95% CIs (IPTW and doubly
robust). Done when the crude estimate is biased and the weighted CI covers the true effect in >= 93% of replicates.

Run: ``.venv/bin/python benchmarks/validate_iptw.py [n_rep] [n] [estimand]`` (defaults 500, 800, ATE; seeds
1000 + replicate).
"""

import sys
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from backpain_outcomes.adjusted import weighted_comparison
from backpain_outcomes.simulate_methods import simulate_confounded


def main(n_rep=500, n=800, estimand="ATE"):
    t0 = time.time()
    rows, converged = [], []
    for rep in tqdm(range(n_rep), desc="replicates"):
        study, truth = simulate_confounded(n, seed=1000 + rep)
        res = weighted_comparison(study, day=42, origin="first_contact", estimand=estimand)
        converged.append(res.converged)
        true = truth.rates.set_index("modality")["rd" if estimand == "ATE" else "rd_att"]
        true_rr = truth.rates.set_index("modality")["rr" if estimand == "ATE" else "rr_att"]
        for r in res.table.itertuples():
            t = true[r.modality]
            rows.append({"modality": r.modality, "true_rd": t, "crude": r.rd_crude, "iptw": r.rd, "se": r.rd_se,
                         "covered": r.rd_ci_low <= t <= r.rd_ci_high,
                         "crude_covered": abs(r.rd_crude - t) <= 1.96 * r.rd_se,
                         "rr_covered": r.rr_ci_low <= true_rr[r.modality] <= r.rr_ci_high,
                         "dr": r.rd_dr, "dr_covered": r.rd_dr_ci_low <= t <= r.rd_dr_ci_high})
    d = pd.DataFrame(rows)
    out = d.groupby("modality").agg(
        true_rd=("true_rd", "first"), crude_mean=("crude", "mean"), iptw_mean=("iptw", "mean"),
        iptw_sd=("iptw", "std"), mean_se=("se", "mean"), coverage=("covered", "mean"),
        rr_coverage=("rr_covered", "mean"), dr_mean=("dr", "mean"), dr_coverage=("dr_covered", "mean"),
        dr_available=("dr", lambda s: s.notna().mean()))
    out["crude_bias"] = out["crude_mean"] - out["true_rd"]
    out["iptw_bias"] = out["iptw_mean"] - out["true_rd"]
    out["mc_se_coverage"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / n_rep)
    print(f"{estimand}, {n_rep} replicates of {n} patients, 95% CIs; propensity model converged in "
          f"{np.mean(converged):.1%} of replicates")
    cols = ["true_rd", "crude_mean", "crude_bias", "iptw_mean", "iptw_bias", "iptw_sd", "mean_se", "coverage",
            "mc_se_coverage", "rr_coverage", "dr_mean", "dr_coverage", "dr_available"]
    print(out[cols].round(4).to_string())
    print(f"worst IPTW coverage {out['coverage'].min():.3f} (target >= 0.93); crude CI (same width, centred on the "
          f"crude estimate) covers in {d.groupby('modality')['crude_covered'].mean().round(3).to_dict()}")
    print(f"[{time.time() - t0:.0f} s]")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(int(a) for a in args[:2]), *args[2:3])
