"""Simulated patients with several episodes and a known probability of recurrence after resolution.

For checking :func:`~backpain_outcomes.recurrence.recurrence`. Each patient
is followed from the onset of a first episode for a uniform 1 to
``followup_days / 365`` years (staggered entry, administrative end). Every
episode is first seen 0-14 days after its onset, then about weekly: its NRS
falls from 5-8 over 1-8 weeks to 0-1 on two consecutive visits (resolution
under :data:`~backpain_outcomes.resolution.DEFAULT_RULE` on the first of
them), or, with probability ``unresolved_share``, stays at 3-7 to the end of
follow-up (no resolution, so no further episode is looked for). After a
resolution the patient is seen about monthly with NRS 0-1 until the next
onset or the end of follow-up, and

* with probability ``flare_share`` a new episode starts 8 to ``gap - 1`` days
  after the resolution (a flare: the same episode continuing under the
  definition of the analysis);
* otherwise the symptom-free time is ``T = gap + E`` with ``E`` exponential
  at the rate :math:`\\lambda = -\\log(1 - p_{12}) / (365 - \\mathrm{gap})`,
  so that the true cumulative recurrence ``gap`` or more days after a
  resolution is :math:`F(t) = 1 - e^{-\\lambda (t - \\mathrm{gap})}` for
  :math:`t \\ge \\mathrm{gap}` and :math:`F(365) = p_{12}` =
  ``recurrence_12m``. The next onset is on day ``ceil(T)`` after the
  resolution (so :math:`P(\\text{onset day} \\le 365) = F(365)` exactly).

Episodes whose onset falls after the end of follow-up are not recorded; the
visits of a recorded episode are kept to its resolution even past the end.

With ``frailty_variance`` :math:`\\theta > 0` each patient's hazard is
:math:`Z \\lambda` with :math:`Z` gamma (mean 1, variance :math:`\\theta`):
some patients recur faster, and they contribute more periods. The
cumulative recurrence of a patient's **first** period is then
:math:`1 - (1 + \\theta \\lambda (t - \\mathrm{gap}))^{-1/\\theta}`
(:meth:`RecurrenceTruth.first_period_recurrence`), while pooling all
periods leans towards the frail patients (Lin, Sun & Ying 1999, Biometrika
86:59-70).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import check_int, check_positive, check_proportion
from .loading import load_study
from .vocabulary import UNTREATED

__all__ = ["simulate_recurrence", "RecurrenceTruth"]


@dataclass(frozen=True)
class RecurrenceTruth:
    """The truth of :func:`simulate_recurrence`.

    Attributes
    ----------
    recurrence_12m : float
        True cumulative recurrence within 365 days of a resolution.
    gap : int
    rate : float
        Daily hazard of recurrence ``gap`` or more days after a resolution.
    flare_share : float
    episodes : DataFrame
        Per simulated episode: ``patient_id``, ``episode_id``, ``onset_day``
        (days since the patient's first onset), ``resolved``,
        ``resolution_day``, ``next`` (``recurrence``, ``flare`` or ``none``).
    """

    recurrence_12m: float
    gap: int
    rate: float
    flare_share: float
    episodes: pd.DataFrame
    frailty_variance: float = 0.0

    def cumulative_recurrence(self, day) -> np.ndarray:
        """True cumulative recurrence ``day`` days after a resolution (0 before ``gap``; a patient with Z = 1)."""
        t = np.asarray(day, float)
        return np.where(t >= self.gap, -np.expm1(-self.rate * (t - self.gap)), 0.0)

    def first_period_recurrence(self, day) -> np.ndarray:
        """True cumulative recurrence of a patient's first period, averaged over the frailty (module docstring)."""
        t = np.asarray(day, float)
        if self.frailty_variance == 0:
            return self.cumulative_recurrence(t)
        th = self.frailty_variance
        return np.where(t >= self.gap, 1 - (1 + th * self.rate * np.maximum(t - self.gap, 0)) ** (-1 / th), 0.0)


def _episode_visits(rng, first: int, end: int, resolves: bool):
    """(visit days, NRS scores, resolution day or None) of one episode first seen on day ``first``."""
    if not resolves:
        k = int(np.ceil((end - first) / 7)) + 1
        days = first + 7 * np.arange(max(k, 2)) + np.r_[0, rng.integers(-1, 2, max(k, 2) - 1)]
        return days, rng.integers(3, 8, len(days)).astype(float), None
    k = int(rng.integers(1, 9))  # weeks before the first pain-free visit
    falling = np.round(np.linspace(rng.integers(5, 9), 3, k))
    days = first + 7 * np.arange(k + 2)
    scores = np.r_[falling, rng.integers(0, 2, 2)].astype(float)
    return days, scores, int(days[k])


def _patient(rng, pid, end, p12, gap, flare_share, unresolved_share, rate, counter):
    """Scores and episode rows of one patient followed to day ``end``."""
    eps, scores, truth = [], [], []
    onset = 0
    while onset <= end:
        counter[0] += 1
        eid = f"E{counter[0]:05d}"
        first = onset + int(rng.integers(0, 15))
        resolves = rng.random() >= unresolved_share
        days, sc, res = _episode_visits(rng, first, end, resolves)
        eps.append((pid, eid, onset))
        scores += [(pid, eid, d, s) for d, s in zip(days, sc)]
        if res is None:
            truth.append((pid, eid, onset, False, np.nan, "none"))
            break
        if rng.random() < flare_share:
            nxt, kind = res + int(rng.integers(8, gap)), "flare"
        else:
            nxt, kind = res + math.ceil(gap + rng.exponential(1 / rate)), "recurrence"
        truth.append((pid, eid, onset, True, float(res), kind if nxt <= end else "none"))
        follow = days[-1] + np.cumsum(np.maximum(1, np.round(rng.normal(30, 4, 24))))
        follow = follow[(follow < nxt) & (follow <= end)]
        scores += [(pid, eid, int(d), float(rng.integers(0, 2))) for d in follow]
        onset = nxt
    return eps, scores, truth


def simulate_recurrence(n_patients: int = 300, seed: int | None = None, *, recurrence_12m: float = 0.3,
                        gap: int = 30, flare_share: float = 0.1, unresolved_share: float = 0.15,
                        followup_days: int = 730, frailty_variance: float = 0.0, start: str = "2021-01-04"):
    """Simulate patients with several back-pain episodes and a known 12-month recurrence after resolution.

    Parameters
    ----------
    n_patients : int
    seed : int, optional
    recurrence_12m : float
        True probability of a new episode within 365 days of a resolution
        (among resolutions not followed by a flare).
    gap : int
        Minimum symptom-free days before a recurrence (at least 10); new
        episodes within the gap are flares.
    flare_share : float
        Share of resolutions followed by a flare (a new episode 8 to
        ``gap - 1`` days later).
    unresolved_share : float
        Share of episodes that never resolve.
    followup_days : int
        Longest follow-up; each patient is followed for a uniform 365 to
        ``followup_days`` days from the first onset.
    frailty_variance : float
        Variance of a gamma patient frailty multiplying the hazard of
        recurrence (0: every patient has the same hazard).
    start : str
        Earliest first onset (first onsets spread over one year).

    Returns
    -------
    (Study, RecurrenceTruth)
        Untreated episodes (``arm = "untreated"``), NRS scores, onset dates.

    Examples
    --------
    >>> study, truth = simulate_recurrence(50, seed=1)
    >>> truth.recurrence_12m, bool(study.episodes.groupby("patient_id").size().max() > 1)
    (0.3, True)
    """
    n = check_int(n_patients, "n_patients", low=1)
    p12 = check_proportion(recurrence_12m, "recurrence_12m")
    gap = check_int(gap, "gap", low=10)
    if gap >= 365:
        raise ValueError(f"gap must be below 365 days, got {gap}")
    flare_share = check_proportion(flare_share, "flare_share")
    unresolved_share = check_proportion(unresolved_share, "unresolved_share")
    followup_days = check_int(followup_days, "followup_days", low=365)
    if not 0 < p12 < 1 or not 0 <= flare_share < 1 or not 0 <= unresolved_share < 1:
        raise ValueError("recurrence_12m must lie strictly between 0 and 1, flare_share and unresolved_share "
                         f"in [0, 1); got {recurrence_12m!r}, {flare_share!r}, {unresolved_share!r}")
    frailty_variance = check_positive(frailty_variance, "frailty_variance", allow_zero=True)
    rate = -math.log(1 - p12) / (365 - gap)
    rng = np.random.default_rng(seed)
    frailty = (rng.gamma(1 / frailty_variance, frailty_variance, n) if frailty_variance > 0 else np.ones(n))
    eps, scores, truth, counter = [], [], [], [0]
    base = pd.Timestamp(start)
    offsets = rng.integers(0, 365, n)
    for i in range(n):
        pid = f"P{i + 1:05d}"
        e, s, t = _patient(rng, pid, int(rng.integers(365, followup_days + 1)), p12, gap, flare_share,
                           unresolved_share, rate * frailty[i], counter)
        shift = pd.Timedelta(days=int(offsets[i]))
        eps += [(p, ep, base + shift + pd.Timedelta(days=int(o))) for p, ep, o in e]
        scores += [(p, ep, base + shift + pd.Timedelta(days=int(d)), sc) for p, ep, d, sc in s]
        truth += t
    episodes = pd.DataFrame(eps, columns=["patient_id", "episode_id", "onset_date"]).assign(arm=UNTREATED)
    sc = pd.DataFrame(scores, columns=["patient_id", "episode_id", "date", "score"]).assign(instrument="nrs")
    patients = pd.DataFrame({"patient_id": [f"P{i + 1:05d}" for i in range(n)]})
    study = load_study(patients=patients, episodes=episodes, scores=sc, today=pd.Timestamp("2100-01-01"))
    tr = pd.DataFrame(truth, columns=["patient_id", "episode_id", "onset_day", "resolved", "resolution_day", "next"])
    return study, RecurrenceTruth(p12, gap, rate, flare_share, tr, frailty_variance)
