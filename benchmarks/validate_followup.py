"""Validation of responder_rate (issue 15, item 3) under simulated informative drop-out.

simulate_confounded(dropout=1.5): the day-42 visit is missing more often when the day-14 score is high (sicker
patients stop coming), so the complete cases over-represent responders. Over ``n_rep`` replicates of ``n``
patients: mean complete-case and weighted rates against the true responder rate of all episodes (and of each
modality), and the coverage of the 95% CIs. Done when the weighted CI covers at about the nominal level and the
complete-case one does not.

Run: ``.venv/bin/python benchmarks/validate_followup.py [n_rep] [n]`` (defaults 500, 800; seeds 5000 + replicate).
"""

import sys
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from backpain_outcomes.followup import responder_rate
from backpain_outcomes.simulate_methods import simulate_confounded


def main(n_rep=500, n=800):
    t0 = time.time()
    rows = []
    for rep in tqdm(range(n_rep), desc="replicates"):
        study, truth = simulate_confounded(n, seed=5000 + rep, dropout=1.5)
        res = responder_rate(study, day=42, origin="first_contact")
        true = truth.rates.set_index("modality")["rate_att"].to_dict() | {"all": truth.responder_rate}
        for r in res.table.itertuples():
            t = true[r.group]
            rows.append({"group": r.group, "truth": t, "share_missing": r.share_missing, "cc": r.rate_complete_case,
                         "cc_covered": r.cc_ci_low <= t <= r.cc_ci_high, "weighted": r.rate_weighted,
                         "se": r.se, "covered": r.ci_low <= t <= r.ci_high})
    d = pd.DataFrame(rows)
    out = d.groupby("group").agg(truth=("truth", "first"), share_missing=("share_missing", "mean"),
                                 cc_mean=("cc", "mean"), cc_coverage=("cc_covered", "mean"),
                                 weighted_mean=("weighted", "mean"), weighted_sd=("weighted", "std"),
                                 mean_se=("se", "mean"), coverage=("covered", "mean"))
    out["mc_se_coverage"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / n_rep)
    print(f"{n_rep} replicates of {n} patients, informative drop-out (dropout=1.5), 95% CIs")
    print(out.round(4).to_string())
    print(f"[{time.time() - t0:.0f} s]")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
