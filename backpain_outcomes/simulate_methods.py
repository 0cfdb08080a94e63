"""Simulated studies with a known causal effect, known confounding and known informative drop-out.

For checking the methods of :mod:`backpain_outcomes.adjusted` and
:mod:`backpain_outcomes.followup` (the recovery-curve simulator is
:func:`~backpain_outcomes.simulate_study`). Each episode has covariates
(age, sex, clinic, chronicity, baseline NRS), a modality drawn from a
multinomial logit in which a **worse baseline and chronic pain make treatment
more likely**, and a responder outcome at day 42 after first contact drawn
from a logistic model in which a worse baseline and chronic pain make
responding **less** likely, plus a modality effect on the log-odds scale. An
unadjusted comparison therefore underestimates every modality's effect.

Visits: day 0 (baseline NRS), day 14 +/- 2 (an early score that tracks the
outcome) and day 42 +/- 3, whose score makes the episode a responder (a drop
of at least 2 points and 30%) or not. With ``dropout`` > 0 the day-42 visit is
missing more often for episodes with a high day-14 score (sicker patients
stop coming): missing at random given the day-14 score, informative for the
responder rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from .checks import check_int, check_positive
from .study import Study
from .vocabulary import UNTREATED

__all__ = ["simulate_confounded", "ConfoundedTruth", "CONFOUNDED_MODALITIES", "DEFAULT_EFFECTS"]

CONFOUNDED_MODALITIES = (UNTREATED, "deep_tissue", "dry_needling", "cupping")
#: modality effect on the log-odds of responding (untreated: 0)
DEFAULT_EFFECTS = {"deep_tissue": 0.8, "dry_needling": 0.4, "cupping": 0.0}
#: treatment model: modality -> (intercept, baseline slope, chronic, clinic C1)
_TREATMENT = {"deep_tissue": (0.4, 0.5, 0.6, 0.4), "dry_needling": (0.2, 0.4, 0.5, -0.3),
              "cupping": (0.1, 0.25, 0.3, 0.0)}
_BASELINE_MEAN = 6.3


@dataclass(frozen=True)
class ConfoundedTruth:
    """The truth of :func:`simulate_confounded`.

    Attributes
    ----------
    rates : DataFrame
        Per modality: ``rate`` (share responding had everyone received it,
        the ATE target), ``rd`` and ``rr`` against untreated, ``rate_att``,
        ``rate_reference_att``, ``rd_att`` and ``rr_att`` (the same among
        those who received the modality).
    responder_rate : float
        Share of responders among all episodes (observed and missing).
    episodes : DataFrame
        Per episode: covariates, ``modality``, ``p_responder``,
        ``responder``, ``score_14``, ``observed`` (day-42 visit present).
    """

    rates: pd.DataFrame
    responder_rate: float
    episodes: pd.DataFrame


def _draw(rng, n, effects, confounding, dropout):
    chron = np.array(["acute", "subacute", "chronic"])[rng.choice(3, n, p=[0.55, 0.15, 0.30])]
    chronic = (chron == "chronic").astype(float)
    age = np.clip(np.round(rng.normal(46, 14, n)), 18, 90)
    female = rng.random(n) < 0.55
    clinic = rng.integers(0, 3, n)
    base = np.clip(np.round(rng.normal(_BASELINE_MEAN + 0.5 * chronic, 1.5)), 3, 10)
    bc = base - _BASELINE_MEAN
    eta = [np.zeros(n)] + [a + confounding * (b * bc + c * chronic + d * (clinic == 0))
                           for a, b, c, d in _TREATMENT.values()]
    prob = np.exp(np.column_stack(eta))
    prob /= prob.sum(1, keepdims=True)
    cum = prob.cumsum(1)
    a = (rng.random(n)[:, None] > cum).sum(1).clip(max=len(CONFOUNDED_MODALITIES) - 1)
    lin = 0.6 - 0.45 * bc - 0.8 * chronic + 0.2 * female - 0.01 * (age - 46)
    p_all = np.column_stack([expit(lin + ([0.0] + [effects[m] for m in CONFOUNDED_MODALITIES[1:]])[k])
                             for k in range(len(CONFOUNDED_MODALITIES))])
    p = p_all[np.arange(n), a]
    y = rng.random(n) < p
    score14 = np.clip(base - np.where(y, rng.integers(1, 4, n), rng.integers(0, 2, n)), 0, 10)
    observed = rng.random(n) >= expit(-1.0 + dropout * (score14 - 5.0) / 2.0) if dropout > 0 else np.ones(n, bool)
    eps = pd.DataFrame({"age": age, "sex": np.where(female, "female", "male"),
                        "clinic_id": np.array(["C1", "C2", "C3"])[clinic], "chronicity": chron, "baseline": base,
                        "modality": np.array(CONFOUNDED_MODALITIES)[a], "p_responder": p, "responder": y,
                        "score_14": score14, "observed": observed})
    return eps, p_all, a


def _truth(effects, confounding, dropout, n_mc=400_000):
    eps, p_all, a = _draw(np.random.default_rng(20170815), n_mc, effects, confounding, dropout)
    rows = []
    for k, m in enumerate(CONFOUNDED_MODALITIES):
        got = a == k
        rows.append({"modality": m, "rate": p_all[:, k].mean(), "rd": p_all[:, k].mean() - p_all[:, 0].mean(),
                     "rr": p_all[:, k].mean() / p_all[:, 0].mean(), "rate_att": p_all[got, k].mean(),
                     "rate_reference_att": p_all[got, 0].mean(), "rd_att": p_all[got, k].mean() - p_all[got, 0].mean(),
                     "rr_att": p_all[got, k].mean() / p_all[got, 0].mean()})
    return pd.DataFrame(rows), float(eps["p_responder"].mean())


def _study(rng, eps):
    n = len(eps)
    eid = np.array([f"E{i + 1:05d}" for i in range(n)])
    pid = np.array([f"P{i + 1:05d}" for i in range(n)])
    lo = eps["chronicity"].map({"acute": 0, "subacute": 42, "chronic": 84}).to_numpy()
    hi = eps["chronicity"].map({"acute": 41, "subacute": 83, "chronic": 400}).to_numpy()
    delay = rng.integers(lo, hi + 1)
    first = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    onset = first - pd.to_timedelta(delay, unit="D")
    base = eps["baseline"].to_numpy()
    y = eps["responder"].to_numpy(bool)
    drop42 = np.where(y, np.maximum(2, np.ceil(0.3 * base)) + rng.integers(0, 2, n), rng.integers(-1, 2, n))
    s42 = np.clip(base - drop42, 0, 10)
    d14, d42 = 14 + rng.integers(-2, 3, n), 42 + rng.integers(-3, 4, n)
    obs = eps["observed"].to_numpy(bool)
    idx = np.r_[np.arange(n), np.arange(n), np.flatnonzero(obs)]
    days = np.r_[np.zeros(n), d14, d42[obs]]
    scores = pd.DataFrame({"episode_id": eid[idx], "patient_id": pid[idx],
                           "date": first[idx] + pd.to_timedelta(days, unit="D"), "instrument": "nrs",
                           "score": np.r_[base, eps["score_14"].to_numpy(float), s42[obs]].astype(float)})
    treated = eps["modality"].to_numpy() != UNTREATED
    episodes = pd.DataFrame({"episode_id": eid, "patient_id": pid, "onset_date": onset,
                             "arm": np.where(treated, "treated", UNTREATED)})
    patients = pd.DataFrame({"patient_id": pid, "age": eps["age"].to_numpy(), "sex": eps["sex"].to_numpy(),
                             "clinic_id": eps["clinic_id"].to_numpy()})
    t = np.flatnonzero(treated)
    sessions = pd.DataFrame({"patient_id": pid[t], "episode_id": eid[t], "modality": eps["modality"].to_numpy()[t],
                             "therapist_id": "T1", "session_date": first[t], "duration_min": 45.0})
    return Study(scores, patients=patients, episodes=episodes, sessions=sessions), eid


def simulate_confounded(n_patients: int = 600, seed: int | None = None, *, effects: dict | None = None,
                        confounding: float = 1.0, dropout: float = 0.0):
    """Simulate a study with confounded modality choice and a known effect on responding at day 42.

    Parameters
    ----------
    n_patients : int
        One episode per patient.
    seed : int, optional
    effects : dict, optional
        Modality -> effect on the log-odds of responding (default
        :data:`DEFAULT_EFFECTS`; modalities deep_tissue, dry_needling, cupping).
    confounding : float
        Multiplies the dependence of treatment on baseline, chronicity and
        clinic (0: randomised).
    dropout : float
        Strength of the dependence of a missing day-42 visit on the day-14
        score (0: every day-42 visit is observed).

    Returns
    -------
    (Study, ConfoundedTruth)
        Days count from first contact (analyse with ``origin="first_contact"``).

    Examples
    --------
    >>> study, truth = simulate_confounded(200, seed=1)
    >>> sorted(truth.rates["modality"])
    ['cupping', 'deep_tissue', 'dry_needling', 'untreated']
    >>> bool(truth.rates.set_index("modality").loc["deep_tissue", "rd"] > 0)
    True
    """
    n = check_int(n_patients, "n_patients", low=10)
    confounding = check_positive(confounding, "confounding", allow_zero=True)
    dropout = check_positive(dropout, "dropout", allow_zero=True)
    eff = dict(DEFAULT_EFFECTS)
    if effects is not None:
        if not isinstance(effects, dict) or not set(effects) <= set(DEFAULT_EFFECTS):
            raise ValueError(f"effects must be a dict with keys among {', '.join(DEFAULT_EFFECTS)}, got {effects!r}")
        eff.update({k: float(v) for k, v in effects.items()})
    rng = np.random.default_rng(seed)
    eps, _, _ = _draw(rng, n, eff, confounding, dropout)
    study, eid = _study(rng, eps)
    rates, overall = _truth_cached(tuple(sorted(eff.items())), confounding, dropout)
    return study, ConfoundedTruth(rates.copy(), overall, eps.assign(episode_id=eid))


_CACHE: dict = {}


def _truth_cached(effects: tuple, confounding: float, dropout: float):
    key = (effects, confounding, dropout)
    if key not in _CACHE:
        _CACHE[key] = _truth(dict(effects), confounding, dropout)
    return _CACHE[key]
