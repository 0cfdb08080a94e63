"""Mixed model: our exact vectorised REML versus statsmodels MixedLM, same data, one run (issue 4).

Random intercept + slope per episode, ``score ~ day * modality + baseline``.
Prints wall times, the ratio and the largest differences of the estimates.
statsmodels is fitted with time in days/30 (it does not converge on raw days)
and its estimates are put on the per-day scale for the comparison.

Run: ``.venv/bin/python benchmarks/bench_mixed.py [n_patients] [--no-statsmodels]``
"""

import sys
import time
import warnings

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM

import backpain_outcomes as bpo


def main(n=20000, with_sm=True):
    study, _ = bpo.simulate_study(n, seed=1)
    f = study.analysis_frame("nrs", origin="first_contact")
    print(f"{n:,} patients: {len(f):,} rows, {f['episode_id'].nunique():,} episodes")
    t0 = time.perf_counter()
    ours = bpo.fit_mixed_model(f, "score ~ day * modality + baseline", re_formula="~ day")  # frame: first contact
    t_ours = time.perf_counter() - t0
    print(f"ours (fast engine): {t_ours:.2f} s; converged {ours.converged}; llf {ours.llf:.4f}")
    if not with_sm:
        return
    g = f.assign(day=f["day"] / 30)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = MixedLM.from_formula("score ~ day * modality + baseline", g, groups=g["episode_id"],
                                  re_formula="~ day").fit(reml=True)
    t_sm = time.perf_counter() - t0
    scale = np.array([30.0 if "day" in name else 1.0 for name in sm.fe_params.index])
    fe_sm = sm.fe_params.to_numpy() / scale
    print(f"statsmodels MixedLM: {t_sm:.2f} s; converged {sm.converged}; llf (day/30 scale) {sm.llf:.4f}")
    print(f"ratio statsmodels / ours: {t_sm / t_ours:.1f}x")
    print(f"max |fixed-effect difference| {np.max(np.abs(fe_sm - ours.fe_params.to_numpy())):.2e}; "
          f"intercept variance {ours.cov_re.iloc[0, 0]:.6f} vs {sm.cov_re.iloc[0, 0]:.6f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 20000, "--no-statsmodels" not in sys.argv)
