"""Simulated power of the claim test through the package's own simulator and test (used by :mod:`backpain_outcomes.power`).

Each simulated study has at least the largest ``n`` untreated episodes
(:func:`~backpain_outcomes.simulate_study` with a share of 85% untreated; the
treated episodes are dropped), and the claim is tested on its first ``n``
untreated episodes for every ``n`` with
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


def _one_study(seed: int, ns: tuple, rate42: float, claimed: float, day: float, alpha: float, below: bool,
               dropout_mean_days: float, horizon: int) -> tuple[list[tuple], list[str]]:
    """Simulate one study with at least max(ns) untreated episodes and test the claim on the first n of each size.

    Returns ``([(rejected, n_at_risk, estimable) per n], warning texts)``.
    """
    n_max = max(ns)
    n_pat = math.ceil((n_max + 4 * math.sqrt(n_max) + 10) / SIM_UNTREATED_SHARE)
    texts: list[str] = []
    for attempt in range(20):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study, _ = simulate_study(n_pat, seed=_study_seed(seed, attempt), untreated_share=SIM_UNTREATED_SHARE,
                                      untreated_resolved_by_42=rate42, horizon=horizon,
                                      dropout_mean_days=dropout_mean_days)
        texts += [str(w.message) for w in caught]
        ids = study.episodes.loc[study.episodes["modality"] == UNTREATED, "episode_id"].to_numpy()
        if len(ids) >= n_max:
            break
    else:  # pragma: no cover - 20 draws short of n_max episodes has probability below 1e-80
        raise RuntimeError("the simulator did not produce enough untreated episodes")
    out = []
    # test_resolution_claim(study.subset(ids[:n]), population="untreated", origin="first_contact") computes its
    # p-values as claim_at_day on the untreated rows of time_to_resolution, which are per episode: one
    # time_to_resolution serves every n (tests/test_power.py checks the identity)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ttr = time_to_resolution(study, DEFAULT_RULE, origin="first_contact").table.set_index("episode_id")
    texts += [str(w.message) for w in caught]
    for n in ns:
        res = claim_at_day(ttr.loc[ids[:n]], claimed, day, alpha)
        p = res["p_below"] if below else res["p_above"]
        out.append((bool(np.isfinite(p) and p < alpha), int(res["n"]), bool(np.isfinite(res["estimate"]))))
    return out, texts


def _run(seed, args):
    return _one_study(seed, *args)


def simulate_power(ns, true_rate, claimed, day, alpha, n_sim, seed, dropout_mean_days, n_jobs, progress):
    """Simulated power at each n for one true rate: (rows, notes)."""
    horizon = int(math.ceil(day)) + 56
    rate42 = simulator_rate(true_rate, day, horizon, CALIBRATION_MC)
    seeds = np.random.SeedSequence(seed).generate_state(n_sim).tolist()  # the same studies for every n
    args = (tuple(ns), rate42, claimed, day, alpha, true_rate < claimed, dropout_mean_days, horizon)
    bar = tqdm(total=n_sim, desc=f"simulated studies (true rate {true_rate:g})", disable=not progress, leave=False)
    results = []
    if n_jobs == 1:
        for s in seeds:
            results.append(_run(s, args))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for r in pool.map(_run, seeds, [args] * n_sim, chunksize=max(1, n_sim // (8 * n_jobs))):
                results.append(r)
                bar.update()
    bar.close()
    rows = []
    for j, n in enumerate(ns):
        rej = np.array([r[0][j][0] for r in results])
        p = float(rej.mean())
        rows.append({"n": n, "true_rate": true_rate, "claimed": claimed, "day": day, "alpha": alpha,
                     "method": "simulation", "power": p, "mc_se": math.sqrt(p * (1 - p) / n_sim), "n_sim": n_sim,
                     "mean_at_risk": float(np.mean([r[0][j][1] for r in results])),
                     "not_estimable": int(sum(not r[0][j][2] for r in results))})
    counts: dict[str, int] = {}
    for r in results:
        for t in set(r[1]):
            counts[t] = counts.get(t, 0) + 1
    notes = [f"{k} of {n_sim} simulated studies (true rate {true_rate:g}) warned: {t}"
             for t, k in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]
    return rows, notes
