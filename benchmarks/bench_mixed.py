"""Mixed model: ours against R lme4 on the same rows, in one run (issue 17).

Random intercept and slope per episode, ``score ~ day * modality + baseline``, REML, on
``bpo.simulate_study(n, seed=1).analysis_frame("nrs")`` (origin onset). Ours is the whole
``bpo.fit_mixed_model(frame, ...)`` call (design, checks, fit, result). lme4 gets the same rows
through ``benchmarks/lme4_bench.R`` (``lmer(score ~ day30 * modality + baseline + (day30 |
episode_id), REML = TRUE)`` with time in units of 30 days, default control); only its ``lmer()``
call is timed. The two run alternately ``--repeat`` times so that the load of the shared
machine falls on both; the ratio of each pair and their range are printed, with wall and CPU
seconds. Agreement: fixed effects and standard errors (per day), random-effect covariance,
residual variance and the REML criterion on lme4's day/30 scale. lme4 is skipped with a
message when ``Rscript`` is absent.

``--previous COMMIT`` also fits the same design with the engine ``backpain_outcomes/lmm_fast.py``
had at COMMIT (read with ``git show``) and prints the relative difference of the two optima's
deviances. ``--statsmodels`` adds statsmodels' MixedLM (minutes at 20,000 patients).

Run: ``.venv/bin/python benchmarks/bench_mixed.py [n_patients ...] [--repeat 3] [--previous COMMIT]
[--statsmodels]``
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import backpain_outcomes as bpo
from backpain_outcomes.lmm_fast import fit_lmm
from backpain_outcomes.mixed_design import build_design

FORMULA = "score ~ day * modality + baseline"
HERE = Path(__file__).resolve().parent


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_lme4(csv, levels):
    """Parsed key=value output of lme4_bench.R, or None without Rscript."""
    if shutil.which("Rscript") is None:
        return None
    out = subprocess.run(["Rscript", str(HERE / "lme4_bench.R"), str(csv), ",".join(levels)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _our_name(name, levels):
    """lme4's term name in patsy's spelling: ``day30:modalitycupping`` -> ``day:modality[T.cupping]``."""
    parts = []
    for part in name.split(":"):
        level = part[len("modality"):]
        parts.append("Intercept" if part == "(Intercept)" else "day" if part == "day30" else
                     f"modality[T.{level}]" if part.startswith("modality") and level in levels else part)
    return ":".join(parts)


def agreement(ours, r, levels):
    """Largest differences between our per-day estimates and lme4's (put per day)."""
    names = [_our_name(n, levels) for n in r["fe_names"].split(",")]
    per = np.array([30.0 if "day" in n else 1.0 for n in names])
    fe_r = np.array(r["fe"].split(","), float) / per
    se_r = np.array(r["se"].split(","), float) / per
    fe_o, se_o = ours.fe_params[names].to_numpy(), ours.bse_fe[names].to_numpy()
    th = np.array(r["theta"].split(","), float)
    sigma2 = float(r["sigma"]) ** 2
    lam = np.array([[th[0], 0.0], [th[1], th[2]]])
    cov_r = sigma2 * lam @ lam.T / np.outer([1, 30], [1, 30])
    k = sum("day" in n for n in ours.fe_params.index)  # time columns: REML llf per day = day/30 one - k log 30
    dev_ours = -2 * (ours.llf + k * np.log(30))
    return {"fe_over_se": np.max(np.abs(fe_o - fe_r) / se_r), "se_rel": np.max(np.abs(se_o / se_r - 1)),
            "se_abs": np.max(np.abs(se_o - se_r)),
            "cov_re_rel": np.max(np.abs(ours.cov_re.to_numpy() - cov_r) / np.abs(cov_r)),
            "scale_rel": abs(ours.scale / sigma2 - 1), "dev_ours": dev_ours, "dev_lme4": float(r["reml_criterion"])}


def previous_engine(commit):
    """fit_lmm of backpain_outcomes.lmm_fast as it was at ``commit`` (the whole package of that commit is
    extracted and imported under another name, since lmm_fast imports its sibling modules)."""
    tmp = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "archive", commit, "backpain_outcomes"], cwd=HERE.parent, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "backpain_outcomes").rename(tmp / "bpo_previous")
    for name in [m for m in sys.modules if m == "bpo_previous" or m.startswith("bpo_previous.")]:
        del sys.modules[name]  # another commit extracted before
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("bpo_previous.lmm_fast").fit_lmm
    finally:
        sys.path.remove(str(tmp))


def compare_previous(frame, commit):
    design = build_design(frame, FORMULA, "~ day", "episode_id", "day", 30.0, [])
    args = (design.X_s, design.Z_s, design.y, design.scaled["episode_id"])
    new, t_new, _ = _timed(lambda: fit_lmm(*args))
    old, t_old, _ = _timed(lambda: previous_engine(commit)(*args))
    rel = abs(new.llf - old.llf) / abs(old.llf)
    print(f"  engine at {commit}: {t_old:.2f} s, deviance {-2 * old.llf:.6f}; now {t_new:.2f} s, deviance "
          f"{-2 * new.llf:.6f}; relative difference {rel:.1e} ({'ours lower' if new.llf > old.llf else 'previous lower'})"
          f"; theta now {np.round(new.theta, 6).tolist()}, before {np.round(old.theta, 6).tolist()}")


def compare_statsmodels(frame, ours, t_ours):
    from statsmodels.regression.mixed_linear_model import MixedLM
    g = frame.assign(day=frame["day"] / 30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sm, t_sm, _ = _timed(lambda: MixedLM.from_formula(FORMULA, g, groups=g["episode_id"],
                                                          re_formula="~ day").fit(reml=True))
    scale = np.array([30.0 if "day" in name else 1.0 for name in sm.fe_params.index])
    print(f"  statsmodels MixedLM: {t_sm:.1f} s (ours / statsmodels {t_ours / t_sm:.3f}); converged {sm.converged}"
          f" ({len(caught)} warnings); max |fixed-effect difference| "
          f"{np.max(np.abs(sm.fe_params.to_numpy() / scale - ours.fe_params.to_numpy())):.1e}")


def main(n, repeat, previous, with_sm):
    study, _ = bpo.simulate_study(n, seed=1)
    frame = study.analysis_frame("nrs")
    levels = list(frame["modality"].cat.categories)
    print(f"{n:,} patients: {len(frame):,} rows, {frame['episode_id'].nunique():,} episodes")
    tmp = Path(tempfile.mkdtemp())
    csv = tmp / "rows.csv"
    frame[["score", "day", "modality", "baseline", "episode_id"]].to_csv(csv, index=False)
    ratios, r = [], None
    for i in range(repeat):
        ours, t_ours, c_ours = _timed(lambda: bpo.fit_mixed_model(frame, FORMULA, re_formula="~ day"))
        line = f"  run {i + 1} (load average {os.getloadavg()[0]:.1f}): ours {t_ours:.2f} s wall ({c_ours:.2f} s CPU), converged {ours.converged}"
        r = run_lme4(csv, levels)
        if r is None:
            print(line + "; lme4 skipped: Rscript not found (install r-base-core and r-cran-lme4)")
            continue
        t_r, c_r = float(r["seconds"]), float(r["cpu_seconds"])
        ratios.append(t_ours / t_r)
        print(line + f"; lme4 {t_r:.2f} s wall ({c_r:.2f} s CPU); ours / lme4 = {t_ours / t_r:.3f} (CPU "
                     f"{c_ours / c_r:.3f})")
    if ratios:
        print(f"  ours / lme4 over {len(ratios)} runs: {min(ratios):.3f}-{max(ratios):.3f} (target <= 0.1); "
              f"lme4 {r['lme4_version']} on {r['r_version']}")
        a = agreement(ours, r, levels)
        print(f"  agreement with lme4: max |fixed effect difference| / lme4 SE {a['fe_over_se']:.1e}; SE max "
              f"relative difference {a['se_rel']:.1e} (absolute {a['se_abs']:.1e}); random-effect covariance "
              f"{a['cov_re_rel']:.1e} relative; residual variance {a['scale_rel']:.1e} relative")
        print(f"  REML criterion (day/30 scale): ours {a['dev_ours']:.6f}, lme4 {a['dev_lme4']:.6f} "
              f"(ours {'lower' if a['dev_ours'] < a['dev_lme4'] else 'higher'} by "
              f"{abs(a['dev_ours'] - a['dev_lme4']):.2g}); lme4's messages: {r.get('messages') or 'none'}")
    if previous:
        compare_previous(frame, previous)
    if with_sm:
        compare_statsmodels(frame, ours, t_ours)


if __name__ == "__main__":
    argv = sys.argv[1:]
    opts = {a: argv[i + 1] for i, a in enumerate(argv) if a in ("--repeat", "--previous")}
    sizes = [int(a) for i, a in enumerate(argv) if a.isdigit() and (i == 0 or argv[i - 1] not in opts)]
    for size in sizes or [20000, 100000]:
        main(size, int(opts.get("--repeat", 3)), opts.get("--previous"), "--statsmodels" in argv)
