"""Validation of recurrence() (issue 15, item 4): the 12-month recurrence of simulated patients is recovered.

Each replicate is ``n_patients`` patients of ``simulate_recurrence(..., recurrence_12m=p12, flare_share=...)``
(patients followed 1-2 years, several episodes each, flares within the 30-day gap), and the estimate is
``recurrence(study, day=[180, 365])``. Patients are independent and identically distributed, and the periods at
risk of a patient depend only on that patient's episodes, so one simulated study of ``BLOCKS * n_patients``
patients gives ``BLOCKS`` independent replicates: ``recurrence_intervals`` once, then
``recurrence_from_intervals`` on each disjoint block of patients (what ``recurrence`` computes on that block).
Reported per day: true cumulative recurrence, mean estimate (bias), SD of
the estimates, mean patient-clustered SE and mean Greenwood SE, and the coverage of the 95% log-log intervals with
either SE. Done when the patient-clustered interval covers the truth in about 95% of replicates.

Run: ``.venv/bin/python benchmarks/validate_recurrence.py [n_rep] [n_patients] [p12] [flare_share] [first_seed]
[frailty]`` (defaults 400 replicates, 400 patients, 0.3, 0.1, seed 1000, no frailty). With a gamma patient frailty
the truth of the pooled estimate is that of a patient with frailty 1 (``truth``) and the first-period estimate is
checked against the first-period truth (``truth_first``, ``coverage_first``).
"""

import sys
import time

import numpy as np
import pandas as pd

from backpain_outcomes.recurrence import recurrence_from_intervals, recurrence_intervals
from backpain_outcomes.simulate_recurrence import simulate_recurrence

#: replicates per simulated study
BLOCKS = 10


def main(n_rep=400, n_patients=400, p12=0.3, flare_share=0.1, first_seed=1000, frailty=0.0):
    t0 = time.time()
    rows = []
    truth = None
    for b in range(int(np.ceil(n_rep / BLOCKS))):
        study, truth = simulate_recurrence(BLOCKS * n_patients, seed=first_seed + b, recurrence_12m=p12,
                                           flare_share=flare_share, frailty_variance=frailty)
        intervals = recurrence_intervals(study)
        block = intervals["patient_id"].str[1:].astype(int).sub(1) // n_patients
        for k in range(BLOCKS):
            r = b * BLOCKS + k
            if r >= n_rep:
                break
            res = recurrence_from_intervals(intervals[block == k], "nrs<=1 x2", 30, "onset", day=[180, 365])
            rows.append(res.table.assign(rep=r, n_periods=res.n_periods, n_patients=res.n_patients,
                                         multi=res.max_periods_per_patient))
    df = pd.concat(rows, ignore_index=True)
    df["truth"] = truth.cumulative_recurrence(df["day"].to_numpy())
    df["cover"] = (df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"])
    df["cover_greenwood"] = (df["ci_low_greenwood"] <= df["truth"]) & (df["truth"] <= df["ci_high_greenwood"])
    df["truth_first"] = truth.first_period_recurrence(df["day"].to_numpy())
    df["cover_first"] = (df["first_ci_low"] <= df["truth_first"]) & (df["truth_first"] <= df["first_ci_high"])
    out = df.groupby("day").agg(truth=("truth", "first"), mean_estimate=("cumulative_recurrence", "mean"),
                                sd_estimate=("cumulative_recurrence", "std"), mean_se=("se", "mean"),
                                mean_se_greenwood=("se_greenwood", "mean"), coverage=("cover", "mean"),
                                coverage_greenwood=("cover_greenwood", "mean"),
                                not_estimable=("cumulative_recurrence", lambda x: int(x.isna().sum())),
                                truth_first=("truth_first", "first"),
                                mean_first=("first_period_recurrence", "mean"), coverage_first=("cover_first", "mean"))
    out["bias"] = out["mean_estimate"] - out["truth"]
    out["coverage_mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / n_rep)
    print(f"recurrence: {n_rep} replicates of {n_patients} patients of simulate_recurrence(recurrence_12m={p12}, "
          f"flare_share={flare_share}, frailty_variance={frailty}), {BLOCKS} per simulated study, seeds {first_seed}-"
          f"{first_seed + int(np.ceil(n_rep / BLOCKS)) - 1}; mean periods at risk "
          f"{df.groupby('rep')['n_periods'].first().mean():.0f} in {df.groupby('rep')['n_patients'].first().mean():.0f} "
          f"patients (up to {int(df['multi'].max())} per patient)", flush=True)
    print(out.round(4).to_string(), flush=True)
    print(f"[{time.time() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    kinds = [int, int, float, float, int, float]
    main(*[k(a) for k, a in zip(kinds, args)])
