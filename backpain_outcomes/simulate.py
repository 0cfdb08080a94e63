"""Simulate studies with known truth.

Every episode follows

.. math:: \\mu(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau}
          \\;[+\\, a \\sin(2\\pi t / 56 + \\phi)\\ \\text{for fluctuating episodes}]

in days *t* since first contact; the observed NRS is ``round(mu + e)``,
``e ~ N(0, 0.7^2)``, clipped to 0-10, and the ODI ``round(8 mu + 5 + N(0, 6^2))``
clipped to 0-100 at every other visit. Plateau and tau depend on modality and
chronicity; episodes belong to latent trajectory classes after Dunn, Jordan &
Croft 2006 (Am J Epidemiol 163:754-61): recovering, persistent mild, severe
persistent, fluctuating. Visits are irregular (about weekly for 8 weeks, then
about monthly to day 365) and patients drop out at random.

``untreated_resolved_by_42`` sets the true share of untreated at-risk episodes
that meet :data:`~backpain_outcomes.resolution.DEFAULT_RULE` (NRS <= 1 on two
consecutive visits) by day 42 **after first contact** (origin
``"first_contact"``) under complete follow-up, by solving for the share of
recovering episodes. :meth:`SimulationTruth.cumulative_resolution` gives the
truth for any rule, day and origin (``"onset"`` by default, as every analysis).

Untreated episodes have no sessions and ``arm = "untreated"`` in the episodes
table (treated ones ``arm = "treated"``), so their treatment status is known.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from .checks import check_choice, check_days, check_int, check_modality, check_origin, check_positive, check_proportion
from .loading import load_study
from .resolution import DEFAULT_RULE, RELAPSE, as_rule, episode_events
from .vocabulary import TREATED_MODALITIES, UNTREATED

__all__ = ["simulate_study", "SimulationTruth", "write_study"]

TREATED = TREATED_MODALITIES
CHRONICITY = ("acute", "subacute", "chronic")
#: class -> (b0 mean, b0 sd, plateau mean, plateau sd, tau median days, amplitude)
CLASSES = {
    "recovering": (6.5, 1.1, 0.2, 0.2, 8.0, 0.0),
    "persistent_mild": (4.2, 0.8, 3.0, 0.5, 20.0, 0.0),
    "severe_persistent": (7.6, 0.8, 6.6, 0.6, 30.0, 0.0),
    "fluctuating": (5.6, 0.9, 4.3, 0.6, 25.0, 1.8),
}
#: modality -> (tau multiplier, plateau shift in NRS points)
MODALITY_EFFECT = {"untreated": (1.0, 0.0), "deep_tissue": (0.8, -0.6), "trigger_point": (0.85, -0.5),
                   "swedish": (0.9, -0.4), "dry_needling": (0.75, -0.7), "cupping": (0.95, -0.2)}
TAU_CHRONICITY = {"acute": 1.0, "subacute": 1.3, "chronic": 1.6}
#: share of recovering episodes (treated, and untreated unless the target is set)
RECOVERING_SHARE = {"acute": 0.65, "subacute": 0.5, "chronic": 0.35}
OTHER_SHARES = {"persistent_mild": 0.45, "severe_persistent": 0.30, "fluctuating": 0.25}
ENTRY_DELAY = {"acute": (0, 41), "subacute": (42, 83), "chronic": (84, 900)}
NOISE_SD = 0.7


@dataclass
class SimulationTruth:
    """The generating values of a simulated study.

    Attributes
    ----------
    episodes : DataFrame
        Per episode: ``episode_id``, ``trajectory_class``, ``modality``,
        ``chronicity``, ``b0``, ``plateau``, ``tau_days``, ``amplitude``,
        ``entry_delay`` (onset to first contact), ``dropout_day``.
    config : dict
        Settings of the simulation.
    recovering_share_untreated : dict
        Share of recovering episodes among untreated episodes per chronicity.
    untreated_resolved_by_42 : float
        True cumulative resolution by day 42 of untreated at-risk episodes
        under the default rule, complete follow-up and the **first-contact**
        origin (day 42 after the first visit), whether set by
        ``simulate_study(untreated_resolved_by_42=...)`` or computed. Equal to
        ``cumulative_resolution(day=42, origin="first_contact")``.
    """

    episodes: pd.DataFrame
    config: dict
    recovering_share_untreated: dict
    untreated_resolved_by_42: float
    _cache: dict = field(default_factory=dict, repr=False)

    def cumulative_resolution(self, rule=DEFAULT_RULE, day=(14, 42, 84, 182, 365), modality: str = UNTREATED,
                              chronicity: str | None = None, origin: str = "onset", relapse: str = "ignore",
                              n_mc: int = 40000, seed: int = 12345) -> pd.DataFrame:
        """Population truth by Monte Carlo under complete follow-up (no dropout).

        The estimand matches :func:`~backpain_outcomes.resolution.resolution_curve`:
        the share of at-risk episodes (not resolved at entry) whose event day
        is <= ``day``.

        Parameters
        ----------
        rule : Resolution or str
        day : int or list of int
        modality : str
            ``"untreated"`` (default) or a named modality.
        chronicity : {"acute", "subacute", "chronic"}, optional
            Default: the study's mix of chronicity.
        origin : {"onset", "first_contact"}
            With ``"onset"`` the day adds the entry delay; the left-truncated
            estimator targets this only under quasi-independence of entry and
            event time. ``untreated_resolved_by_42`` uses ``"first_contact"``.
        relapse : {"ignore", "undo"}
        n_mc, seed : int
            Monte Carlo episodes and seed.

        Returns
        -------
        DataFrame with ``day`` and ``true_cumulative_resolution``.

        Examples
        --------
        >>> import backpain_outcomes as bpo
        >>> _, truth = bpo.simulate_study(100, seed=1, untreated_resolved_by_42=0.5)
        >>> t = truth.cumulative_resolution(day=42, origin="first_contact", n_mc=20000)
        >>> bool(abs(t["true_cumulative_resolution"].item() - 0.5) < 0.02)
        True
        """
        rule = as_rule(rule)
        days = np.asarray(check_days(day), float)
        modality = check_modality(modality, "modality")
        check_choice(modality, "modality", (UNTREATED, *TREATED))
        if chronicity is not None:
            check_choice(chronicity, "chronicity", CHRONICITY)
        origin = check_origin(origin)
        check_choice(relapse, "relapse", RELAPSE)
        n_mc, seed = check_int(n_mc, "n_mc", low=100), check_int(seed, "seed")
        cfg = dict(self.config)
        shares = self.recovering_share_untreated if modality == UNTREATED else RECOVERING_SHARE
        chron = [chronicity] if chronicity else list(CHRONICITY)
        weights = np.array([cfg["chronicity_shares"][c] for c in chron], float)
        weights /= weights.sum()
        rng = np.random.default_rng(seed)
        n_by = rng.multinomial(n_mc, weights)
        parts = []
        for c, n in zip(chron, n_by):
            ev = _complete_followup_events(rng, n, modality, c, shares[c], cfg["horizon"], rule, origin, relapse)
            parts.append(ev[ev["at_risk"]])
        ev = pd.concat(parts)
        val = [(ev["resolved"] & (ev["day"] <= d)).mean() for d in days]
        return pd.DataFrame({"day": days, "true_cumulative_resolution": val})


def _draw_class(rng, n, recovering_share):
    """Latent class per episode given the recovering share (array)."""
    u = rng.random(n)
    others = np.array(list(OTHER_SHARES))
    probs = np.array(list(OTHER_SHARES.values()))
    other = others[rng.choice(len(others), size=n, p=probs)]
    return np.where(u < recovering_share, "recovering", other)


def _generate(rng, n, modality, chronicity, recovering, dropout_mean, horizon, therapist_effect=None):
    """Episode parameters and their visits (long frame with t, instrument, score)."""
    if isinstance(recovering, dict):
        rec = pd.Series(chronicity).map(recovering).to_numpy(float)
    else:
        rec = np.broadcast_to(np.asarray(recovering, float), (n,))
    cls = _draw_class(rng, n, rec)
    par = pd.DataFrame(CLASSES).T.loc[cls].to_numpy(float)
    b0 = np.clip(rng.normal(par[:, 0], par[:, 1]), 2.0, 10.0)
    mod_eff = pd.DataFrame(MODALITY_EFFECT).T.loc[modality].to_numpy(float)
    shift = mod_eff[:, 1]
    if therapist_effect is not None:
        shift = shift + therapist_effect
    plateau = np.clip(rng.normal(par[:, 2], par[:, 3]) + np.where(cls == "recovering", 0, shift), 0, b0)
    tau = (par[:, 4] * np.exp(rng.normal(0, 0.25, n)) * mod_eff[:, 0]
           * pd.Series(chronicity).map(TAU_CHRONICITY).to_numpy(float))
    amp = par[:, 5]
    phase = rng.uniform(0, 2 * np.pi, n)
    lo = pd.Series(chronicity).map({k: v[0] for k, v in ENTRY_DELAY.items()}).to_numpy(int)
    hi = pd.Series(chronicity).map({k: v[1] for k, v in ENTRY_DELAY.items()}).to_numpy(int)
    delay = rng.integers(lo, hi + 1)
    dropout = rng.exponential(dropout_mean, n) if np.isfinite(dropout_mean) else np.full(n, np.inf)
    # visit times: ~weekly to day 56, then ~monthly
    m = 40
    early = np.maximum(1, np.round(rng.gamma(4.0, 7.0 / 4.0, (n, m))))
    late = np.maximum(1, np.round(rng.gamma(4.0, 28.0 / 4.0, (n, m))))
    t = np.zeros((n, m + 1))
    for j in range(1, m + 1):
        prev = t[:, j - 1]
        t[:, j] = prev + np.where(prev < 56, early[:, j - 1], late[:, j - 1])
    keep = (t <= horizon) & ((t <= dropout[:, None]) | (np.arange(m + 1) == 0))
    ei, vj = np.nonzero(keep)
    tt = t[ei, vj]
    mu = plateau[ei] + (b0[ei] - plateau[ei]) * np.exp(-tt / tau[ei]) + amp[ei] * np.sin(
        2 * np.pi * tt / 56 + phase[ei])
    nrs = np.clip(np.round(mu + rng.normal(0, NOISE_SD, len(tt))), 0, 10)
    odi = np.clip(np.round(8 * mu + 5 + rng.normal(0, 6, len(tt))), 0, 100)
    vis = pd.DataFrame({"ep": np.r_[ei, ei], "visit": np.r_[vj, vj], "t": np.r_[tt, tt],
                        "instrument": np.repeat(["nrs", "odi"], len(tt)), "score": np.r_[nrs, odi]})
    vis = vis[(vis["instrument"] == "nrs") | (vis["visit"] % 2 == 0)]
    vis["entry_delay"] = delay[vis["ep"].to_numpy()]
    vis = vis.sort_values(["ep", "instrument", "t"], kind="stable").reset_index(drop=True)
    eps = pd.DataFrame({"trajectory_class": cls, "modality": modality, "chronicity": chronicity, "b0": b0,
                        "plateau": plateau, "tau_days": tau, "amplitude": amp, "phase": phase,
                        "entry_delay": delay, "dropout_day": dropout})
    return eps, vis


def _complete_followup_events(rng, n, modality, chronicity, recovering, horizon, rule, origin="first_contact",
                              relapse="ignore"):
    """Event table (``episode_events``) of ``n`` simulated episodes followed to ``horizon`` without dropout."""
    _, vis = _generate(rng, n, np.array([modality] * n), np.array([chronicity] * n), recovering, np.inf, horizon)
    vis = vis[vis["instrument"] == rule.instrument]
    day = vis["t"] + (vis["entry_delay"] if origin == "onset" else 0)
    return episode_events(pd.DataFrame({"episode_id": vis["ep"], "day": day, "score": vis["score"]}), rule,
                          relapse=relapse)


@functools.lru_cache(maxsize=64)
def _resolution_given_class(chronicity: str, horizon: int, n_mc: int = 20000) -> tuple[float, float]:
    """P(untreated episode resolves by day 42 | at risk) for recovering and other classes (first-contact origin)."""
    rng = np.random.default_rng(2024)
    out = []
    for share in (1.0, 0.0):
        ev = _complete_followup_events(rng, n_mc, "untreated", chronicity, share, horizon, DEFAULT_RULE)
        r = ev[ev["at_risk"]]
        out.append(((r["resolved"] & (r["day"] <= 42)).mean(), r.shape[0] / n_mc))
    return out[0], out[1]


def _solve_untreated_shares(target, chron_shares, horizon):
    """Recovering share per chronicity so that the untreated truth at day 42 equals ``target``."""
    base = np.array([RECOVERING_SHARE[c] for c in CHRONICITY])
    base = base / base.max()
    w = np.array([chron_shares[c] for c in CHRONICITY])
    info = [_resolution_given_class(c, horizon) for c in CHRONICITY]

    def truth(s):
        q = np.minimum(1.0, s * base)
        # at-risk weighting: P(at risk) differs by class
        num = sum(wc * (qc * r[0] * r[1] + (1 - qc) * o[0] * o[1]) for wc, qc, (r, o) in zip(w, q, info))
        den = sum(wc * (qc * r[1] + (1 - qc) * o[1]) for wc, qc, (r, o) in zip(w, q, info))
        return num / den

    lo, hi = truth(0.0), truth(1.0 / base.min())
    if not lo <= target <= hi:
        raise ValueError(f"untreated_resolved_by_42 must lie between {lo:.3f} and {hi:.3f} "
                         "with this simulator's recovery curves")
    s = optimize.brentq(lambda s: truth(s) - target, 0.0, 1.0 / base.min(), xtol=1e-10)
    q = np.minimum(1.0, s * base)
    return dict(zip(CHRONICITY, q.tolist())), truth(s)


def _check_simulation(n_patients, untreated_share, untreated_resolved_by_42, chronicity_shares, horizon,
                      dropout_mean_days, n_clinics, therapists_per_clinic):
    n = check_int(n_patients, "n_patients", low=1)
    share = check_positive(untreated_share, "untreated_share", allow_zero=True)
    if share > 1:
        raise ValueError(f"untreated_share must be a proportion between 0 and 1, got {untreated_share!r}"
                         + (f"; did you mean {share / 100:g}?" if share <= 100 else ""))
    if untreated_resolved_by_42 is not None:
        check_proportion(untreated_resolved_by_42, "untreated_resolved_by_42")
    if chronicity_shares is not None:
        if not isinstance(chronicity_shares, dict) or set(chronicity_shares) != set(CHRONICITY):
            raise ValueError(f"chronicity_shares must be a dict with keys {', '.join(CHRONICITY)}, got {chronicity_shares!r}")
        total = sum(check_positive(v, "chronicity_shares", allow_zero=True) for v in chronicity_shares.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"chronicity_shares must sum to 1, got {total:g}")
    check_int(n_clinics, "n_clinics", low=1)
    check_int(therapists_per_clinic, "therapists_per_clinic", low=1)
    dropout = dropout_mean_days if dropout_mean_days == np.inf else check_positive(dropout_mean_days, "dropout_mean_days")
    return n, share, check_int(horizon, "horizon", low=1), dropout


def simulate_study(n_patients: int = 500, seed: int | None = None, *, untreated_share: float = 0.2,
                   untreated_resolved_by_42: float | None = None,
                   chronicity_shares: dict | None = None, horizon: int = 365,
                   dropout_mean_days: float = 600.0, n_clinics: int = 3, therapists_per_clinic: int = 4,
                   start: str = "2021-01-04", return_frames: bool = False):
    """Simulate a study with known truth.

    Parameters
    ----------
    n_patients : int
        One episode per patient.
    seed : int, optional
    untreated_share : float
        Share of untreated episodes (no sessions).
    untreated_resolved_by_42 : float, optional
        True cumulative resolution by day 42 **after first contact** (NRS <= 1
        on 2 consecutive visits, complete follow-up) of untreated at-risk
        episodes; set 0.9 for a world where the claim holds, 0.3 for one where
        it does not. Test it with ``origin="first_contact"``.
    chronicity_shares : dict, optional
        Default ``{"acute": 0.55, "subacute": 0.15, "chronic": 0.30}``.
    horizon : int
        Days of follow-up after first contact.
    dropout_mean_days : float
        Mean of the exponential (non-informative) dropout time (``np.inf``: no dropout).
    return_frames : bool
        Also return the canonical input tables (as written by ``simulate``).

    Returns
    -------
    (Study, SimulationTruth) or (Study, SimulationTruth, dict of DataFrames)

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study, truth = bpo.simulate_study(n_patients=200, seed=1)
    >>> len(study.episodes)
    200
    """
    n, untreated_share, horizon, dropout_mean_days = _check_simulation(
        n_patients, untreated_share, untreated_resolved_by_42, chronicity_shares, horizon, dropout_mean_days,
        n_clinics, therapists_per_clinic)
    rng = np.random.default_rng(seed)
    chron_shares = chronicity_shares or {"acute": 0.55, "subacute": 0.15, "chronic": 0.30}
    chron = np.array(CHRONICITY)[rng.choice(3, size=n, p=[chron_shares[c] for c in CHRONICITY])]
    untreated = rng.random(n) < untreated_share
    modality = np.where(untreated, "untreated", np.array(TREATED)[rng.integers(0, 5, n)])
    if untreated_resolved_by_42 is None:
        shares_untreated = dict(RECOVERING_SHARE)
        truth42 = None
    else:
        shares_untreated, truth42 = _solve_untreated_shares(untreated_resolved_by_42, chron_shares, horizon)
    rec = np.where(untreated, [shares_untreated[c] for c in chron], [RECOVERING_SHARE[c] for c in chron])
    clinic = rng.integers(0, n_clinics, n)
    therapist = clinic * therapists_per_clinic + rng.integers(0, therapists_per_clinic, n)
    t_effect_by = rng.normal(0, 0.3, n_clinics * therapists_per_clinic)
    t_effect = np.where(untreated, 0.0, t_effect_by[therapist])
    eps, vis = _generate(rng, n, modality, chron, rec, dropout_mean_days, horizon, therapist_effect=t_effect)
    pid = np.array([f"P{i + 1:05d}" for i in range(n)])
    eid = np.array([f"E{i + 1:05d}" for i in range(n)])
    start_ts = pd.Timestamp(start)
    onset = start_ts + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    first = onset + pd.to_timedelta(eps["entry_delay"].to_numpy(), unit="D")
    patients = pd.DataFrame({"patient_id": pid, "age": np.clip(np.round(rng.normal(46, 14, n)), 18, 90).astype(int),
                             "sex": np.where(rng.random(n) < 0.55, "female", "male"),
                             "clinic_id": np.array([f"C{c + 1}" for c in clinic])})
    episodes = pd.DataFrame({"episode_id": eid, "patient_id": pid, "onset_date": onset.strftime("%Y-%m-%d"),
                             "arm": np.where(untreated, UNTREATED, "treated")})
    ep_idx = vis["ep"].to_numpy()
    scores = pd.DataFrame({"patient_id": pid[ep_idx], "episode_id": eid[ep_idx],
                           "date": (first[ep_idx] + pd.to_timedelta(vis["t"].to_numpy(), unit="D")).strftime("%Y-%m-%d"),
                           "instrument": vis["instrument"].to_numpy(), "score": vis["score"].to_numpy()})
    nv = vis[(vis["instrument"] == "nrs") & (vis["t"] <= 70)]
    nv = nv[~untreated[nv["ep"].to_numpy()]]
    nv = nv[nv.groupby("ep").cumcount() < 10]
    s_ep = nv["ep"].to_numpy()
    other = np.array(TREATED)[rng.integers(0, 5, len(nv))]
    s_mod = np.where(rng.random(len(nv)) < 0.92, modality[s_ep], other)
    sessions = pd.DataFrame({"patient_id": pid[s_ep], "episode_id": eid[s_ep],
                             "session_date": (first[s_ep] + pd.to_timedelta(nv["t"].to_numpy(), unit="D")).strftime("%Y-%m-%d"),
                             "modality": s_mod, "therapist_id": np.array([f"T{t + 1:02d}" for t in therapist])[s_ep],
                             "duration_min": rng.choice([30, 45, 60], len(nv))})
    # A world without treatment has no sessions table at all (an empty table is refused as an empty file).
    frames = {"patients": patients, "episodes": episodes, "sessions": sessions if len(sessions) else None, "scores": scores}
    study = load_study(**frames, today=pd.Timestamp("2100-01-01"))
    te = eps.drop(columns=["phase"]).assign(episode_id=eid, patient_id=pid,
                                            therapist_id=np.where(untreated, None, [f"T{t + 1:02d}" for t in therapist]),
                                            therapist_effect=t_effect)
    te = te[["episode_id", "patient_id", *[c for c in te.columns if c not in ("episode_id", "patient_id")]]]
    config = {"n_patients": n, "seed": seed, "untreated_share": untreated_share,
              "chronicity_shares": chron_shares, "horizon": horizon, "dropout_mean_days": dropout_mean_days,
              "noise_sd": NOISE_SD, "classes": CLASSES, "modality_effect": MODALITY_EFFECT,
              "tau_chronicity": TAU_CHRONICITY}
    truth = SimulationTruth(te, config, shares_untreated, truth42 if truth42 is not None else np.nan)
    if truth42 is None:
        truth.untreated_resolved_by_42 = float(truth.cumulative_resolution(
            day=[42], origin="first_contact", n_mc=20000)["true_cumulative_resolution"].iloc[0])
    return (study, truth, frames) if return_frames else (study, truth)


def write_study(frames: dict, directory, fmt: str = "csv") -> Path:
    """Write canonical tables as ``<table>.csv`` (or ``.parquet``/``.xlsx``) into ``directory``."""
    check_choice(fmt, "fmt", ("csv", "parquet", "xlsx"))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        if fmt == "csv":
            df.to_csv(out / f"{name}.csv", index=False)
        elif fmt == "parquet":
            df.to_parquet(out / f"{name}.parquet", index=False)
        elif fmt == "xlsx":
            df.to_excel(out / f"{name}.xlsx", index=False)
        else:
            raise ValueError("fmt must be csv, parquet or xlsx")
    return out
