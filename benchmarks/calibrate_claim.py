"""Calibration of the claim test by simulation.

Over many simulated studies: coverage of the 95% CI for the true cumulative
resolution at day 42 (first-contact origin, untreated episodes), and the rate
at which the one-sided test rejects H0: p >= 0.90, for a truth of exactly 0.90
(type I error) and of 0.70 (power).

Run: ``.venv/bin/python benchmarks/calibrate_claim.py [n_studies] [n_patients]``
"""

import sys
import warnings

import numpy as np

import backpain_outcomes as bpo
from backpain_outcomes.claims import test_resolution_claim
from backpain_outcomes.exceptions import StatisticalWarning


def main(n_studies=1000, n_patients=600):
    warnings.simplefilter("ignore", StatisticalWarning)  # small simulated groups: the advice is not needed here
    for truth_p in (0.90, 0.70):
        cover, reject = [], []
        truth_val = None
        for rep in range(n_studies):
            study, truth = bpo.simulate_study(n_patients, seed=10_000 + rep, untreated_share=0.5,
                                              untreated_resolved_by_42=truth_p)
            if truth_val is None:
                truth_val = truth.cumulative_resolution(day=[42], origin="first_contact",
                                                        n_mc=200_000)["true_cumulative_resolution"].iloc[0]
            c = test_resolution_claim(study, origin="first_contact", sensitivity=False)
            cover.append(c.ci_low <= truth_val <= c.ci_high)
            reject.append(c.p_value_below < 0.05)
        cover, reject = np.array(cover), np.array(reject)
        se = np.sqrt(cover.mean() * (1 - cover.mean()) / len(cover))
        print(f"truth {truth_p:.2f} (Monte Carlo {truth_val:.4f}), {n_studies} studies of {n_patients} patients: "
              f"CI coverage {cover.mean():.3f} (MC SE {se:.3f}); rejection rate of H0 p>=0.90 {reject.mean():.3f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
