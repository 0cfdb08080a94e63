"""Simulated power of the claim test through the package's own simulator and test (used by :mod:`backpain_outcomes.power`).

Each simulated study is a block of the largest ``n`` untreated episodes of a
run of :func:`~backpain_outcomes.simulate_study` (85% untreated; the treated
episodes are dropped). Untreated episodes are independent and identically
distributed (one per patient), so one run of the simulator with
``BLOCK_EPISODES`` untreated episodes holds ``BLOCK_EPISODES // max(n)``
independent studies in disjoint blocks, which saves the fixed cost of loading
a study per simulated study. The claim is tested on the first ``n``
episodes of each block for every ``n`` as
:func:`~backpain_outcomes.test_resolution_claim` (``origin="first_contact"``,
the simulator's time origin), so the same studies serve every ``n``
(common random numbers). The test is computed as
:func:`~backpain_outcomes.test_resolution_claim` computes it (``claim_at_day``
on the untreated rows of :func:`~backpain_outcomes.time_to_resolution`), once
per simulated study for every ``n``. Simulation of power: Arnold et al. 2011
(BMC Med Res Methodol 11:94).
"""

from __future__ import annotations

import functools
import math
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import optimize
from tqdm import tqdm

from .resolution import DEFAULT_RULE, time_to_resolution
from .simulate import simulate_study
from .verdicts import claim_at_day
from .vocabulary import UNTREATED

__all__ = ["simulate_power", "simulator_rate", "CALIBRATION_MC"]

#: share of untreated patients in each simulated study (the treated ones are dropped before the test)
SIM_UNTREATED_SHARE = 0.85


#: untreated episodes per run of the simulator: a run holds BLOCK_EPISODES // max(n) independent studies
BLOCK_EPISODES = 2400
#: Monte Carlo episodes of the check that the simulator delivers the true rate (SE about 0.0006 at a rate of 0.8)
CALIBRATION_MC = 400_000


def _delivered(x: float, day: float, horizon: int, n_mc: int) -> float:
    """True share resolved by ``day`` (first contact) of the simulator asked for ``x`` resolved by day 42."""
    _, tr = simulate_study(40, seed=0, untreated_resolved_by_42=x, horizon=horizon)
    cum = tr.cumulative_resolution(day=day, origin="first_contact", n_mc=n_mc, seed=1)
    return float(cum["true_cumulative_resolution"].iloc[0])


@functools.lru_cache(maxsize=32)
def simulator_rate(true_rate: float, day: float, horizon: int, n_mc: int = CALIBRATION_MC) -> float:
    """The simulator's ``untreated_resolved_by_42`` giving ``true_rate`` resolved by ``day`` (first contact).

    The simulator solves for its rate with a Monte Carlo of 20,000 episodes per class and delivers about 0.002
    more than asked (0.8018 for 0.80); at large n that moves the power by 2-3 points. A first solution ``x0``
    (the rate itself at day 42, else a root search on 20,000 episodes) is therefore corrected by one step,
    ``x1 = x0 - (delivered(x0) - true_rate)``, with ``delivered`` measured on ``n_mc`` episodes.
    """
    if day == 42:
        try:
            simulate_study(40, seed=0, untreated_resolved_by_42=true_rate, horizon=horizon)
        except ValueError as err:
            raise ValueError(f"true_rate={true_rate:g} cannot be simulated: {err}; use method='formula'") from err
        x0 = true_rate
    else:
        def truth(x):
            return _delivered(x, day, horizon, 20000) - true_rate

        lo, hi = 0.01, 0.95
        f_lo, f_hi = truth(lo), truth(hi)
        if f_lo > 0 or f_hi < 0:
            raise ValueError(f"true_rate={true_rate:g} by day {day:g} is outside what the simulator can produce "
                             f"({f_lo + true_rate:.3f} to {f_hi + true_rate:.3f}); use method='formula'")
        x0 = float(optimize.brentq(truth, lo, hi, xtol=1e-4))
    x1 = x0 - (_delivered(x0, day, horizon, n_mc) - true_rate)
    try:
        simulate_study(40, seed=0, untreated_resolved_by_42=x1, horizon=horizon)
    except ValueError:
        return x0  # the corrected rate leaves the simulator's range: keep the first solution
    return x1


def _study_seed(seed: int, attempt: int) -> int:
    return seed if attempt == 0 else int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def _block(seed: int, k: int, ns: tuple, rate42: float, claimed: float, day: float, alpha: float, below: bool,
           dropout_mean_days: float, horizon: int) -> tuple[list[list[tuple]], list[str]]:
    """``k`` simulated studies from one run of the simulator, each tested on its first n untreated episodes.

    The untreated episodes of a simulated study are independent and identically distributed (one per patient,
    no therapist effect), so consecutive disjoint blocks of ``max(ns)`` of them are ``k`` independent studies;
    one larger run of the simulator saves the fixed cost of ``k - 1`` loads. Returns
    ``([[(rejected, n_at_risk, estimable) per n] per study], warning texts)``.
    """
    n_max = max(ns)
    need = k * n_max
    n_pat = math.ceil((need + 4 * math.sqrt(need) + 10) / SIM_UNTREATED_SHARE)
    texts: list[str] = []
    for attempt in range(20):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study, _ = simulate_study(n_pat, seed=_study_seed(seed, attempt), untreated_share=SIM_UNTREATED_SHARE,
                                      untreated_resolved_by_42=rate42, horizon=horizon,
                                      dropout_mean_days=dropout_mean_days)
        texts += [str(w.message) for w in caught]
        ids = study.episodes.loc[study.episodes["modality"] == UNTREATED, "episode_id"].to_numpy()
        if len(ids) >= need:
            break
    else:  # pragma: no cover - 20 draws short of the episodes needed has probability below 1e-80
        raise RuntimeError("the simulator did not produce enough untreated episodes")
    # test_resolution_claim(study.subset(ids[:n]), population="untreated", origin="first_contact") computes its
    # p-values as claim_at_day on the untreated rows of time_to_resolution, which are per episode: one
    # time_to_resolution serves every n and every block (tests/test_power.py checks the identity)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ttr = time_to_resolution(study, DEFAULT_RULE, origin="first_contact").table.set_index("episode_id")
    texts += [str(w.message) for w in caught]
    studies = []
    for b in range(k):
        block, out = ids[b * n_max:(b + 1) * n_max], []
        for n in ns:
            res = claim_at_day(ttr.loc[block[:n]], claimed, day, alpha)
            p = res["p_below"] if below else res["p_above"]
            out.append((bool(np.isfinite(p) and p < alpha), int(res["n"]), bool(np.isfinite(res["estimate"]))))
        studies.append(out)
    return studies, texts


def _run(seed, args):
    return _block(seed, *args)


def simulate_power(ns, true_rate, claimed, day, alpha, n_sim, seed, dropout_mean_days, n_jobs, progress):
    """Simulated power at each n for one true rate: (rows, notes)."""
    horizon = int(math.ceil(day)) + 56
    rate42 = simulator_rate(true_rate, day, horizon, CALIBRATION_MC)
    k = max(1, min(n_sim, BLOCK_EPISODES // max(ns)))  # studies per run of the simulator
    n_runs = math.ceil(n_sim / k)
    seeds = np.random.SeedSequence(seed).generate_state(n_runs).tolist()  # the same studies for every n
    args = (k, tuple(ns), rate42, claimed, day, alpha, true_rate < claimed, dropout_mean_days, horizon)
    bar = tqdm(total=n_runs, desc=f"simulator runs of {k} studies (true rate {true_rate:g})", disable=not progress,
               leave=False)
    runs = []
    if n_jobs == 1:
        for s in seeds:
            runs.append(_run(s, args))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for r in pool.map(_run, seeds, [args] * n_runs, chunksize=max(1, n_runs // (8 * n_jobs))):
                runs.append(r)
                bar.update()
    bar.close()
    studies = [st for r in runs for st in r[0]][:n_sim]
    rows = []
    for j, n in enumerate(ns):
        rej = np.array([st[j][0] for st in studies])
        p = float(rej.mean())
        rows.append({"n": n, "true_rate": true_rate, "claimed": claimed, "day": day, "alpha": alpha,
                     "method": "simulation", "power": p, "mc_se": math.sqrt(p * (1 - p) / n_sim), "n_sim": n_sim,
                     "mean_at_risk": float(np.mean([st[j][1] for st in studies])),
                     "not_estimable": int(sum(not st[j][2] for st in studies))})
    results = runs
    counts: dict[str, int] = {}
    for r in results:
        for t in set(r[1]):
            counts[t] = counts.get(t, 0) + 1
    notes = [f"{c} of {n_runs} runs of the simulator (true rate {true_rate:g}) warned: {t}"
             for t, c in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]
    return rows, notes
