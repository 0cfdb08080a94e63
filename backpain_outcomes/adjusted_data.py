"""The data of a confounding-adjusted comparison: outcome at a horizon, covariates, design matrices.

Used by :func:`~backpain_outcomes.adjusted.weighted_comparison` and
:func:`~backpain_outcomes.followup.responder_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .checks import check_by
from .resolution import time_to_resolution
from .vocabulary import MCID_ABSOLUTE, MCID_RELATIVE, UNKNOWN, label

__all__ = ["ComparisonData", "comparison_data", "outcome_at_day", "covariate_frame", "design", "drop_missing",
           "common_support", "DEFAULT_COVARIATES",
           "OUTCOMES"]

DEFAULT_COVARIATES = ("age", "sex", "chronicity", "baseline", "clinic_id")
OUTCOMES = ("responder", "resolved")
_NOT_COVARIATES = ("episode_id", "patient_id", "modality", "treatment_status", "onset_date", "first_visit_date", "arm")


@dataclass
class ComparisonData:
    """Episodes of a comparison with their outcome, group codes and design matrices."""

    frame: pd.DataFrame  # episode_id, patient_id, modality, y and the raw covariates
    names: list  # group codes -> modality; reference first
    group: np.ndarray
    X: np.ndarray  # intercept + standardised numeric covariates + dummies (first level dropped)
    x_names: list
    Z: pd.DataFrame  # balance covariates: numeric + one 0/1 column per level
    covariates: list  # covariates used
    notes: list = field(default_factory=list)


def _nearest(frame: pd.DataFrame, day: float, window: float) -> pd.DataFrame:
    f = frame.assign(dist=(frame["day"] - day).abs())
    f = f[f["dist"] <= window].sort_values(["episode_id", "dist", "day"], kind="stable")
    return f.groupby("episode_id", sort=False).head(1)


def outcome_at_day(study, instrument: str, day: float, origin: str, window: float, outcome: str, rule) -> tuple:
    """Per episode, the outcome at ``day``: ``(DataFrame episode_id, y, known; description)``.

    ``responder``: the measurement nearest ``day`` within ``window`` days
    improved on the baseline by the MCID, in points and by 30% (Ostelo et al.
    2008); unknown without such a measurement. ``resolved``: the episode met
    ``rule`` by ``day``; unknown when follow-up ended earlier without
    resolution; episodes not at risk, or entering after ``day``, are left out.
    """
    if outcome == "responder":
        af = study.analysis_frame(instrument, origin=origin, include_baseline=False)
        near = _nearest(af, day, window)
        drop = near["baseline"] - near["score"]
        resp = (drop >= MCID_ABSOLUTE[instrument]) & (drop >= MCID_RELATIVE * near["baseline"])
        ids = study.episodes.loc[study.episodes["episode_id"].isin(
            study.scores.loc[study.scores["instrument"] == instrument, "episode_id"]), "episode_id"]
        out = pd.DataFrame({"episode_id": ids.to_numpy()})
        y = pd.Series(resp.to_numpy(float), index=near["episode_id"].to_numpy())
        out["y"] = out["episode_id"].map(y)
        what = (f"responder at day {day:g} (the {instrument.upper()} measurement nearest day {day:g} within "
                f"{window:g} days improved on the baseline by at least {MCID_ABSOLUTE[instrument]:g} points and 30%)")
    else:
        ev = time_to_resolution(study, rule, origin=origin).table
        ev = ev[ev["at_risk"].to_numpy(bool) & (ev["entry"].to_numpy(float) < day)]
        res = ev["resolved"].to_numpy(bool)
        t = ev["day"].to_numpy(float)
        y = np.where(res & (t <= day), 1.0, np.where(t >= day, 0.0, np.nan))
        out = pd.DataFrame({"episode_id": ev["episode_id"].to_numpy(), "y": y})
        what = f"resolved by day {day:g} ({rule!r})"
    out["known"] = out["y"].notna()
    return out, what


def covariate_frame(study, covariates, instrument: str) -> pd.DataFrame:
    """``episode_id``, ``patient_id``, ``modality`` and the covariates (``baseline`` = baseline of ``instrument``)."""
    ep = study.episodes
    allowed = ["baseline", *[c for c in ep.columns if c not in _NOT_COVARIATES and not c.startswith("baseline_")]]
    cols = check_by(list(covariates), allowed, name="covariates")
    out = ep[["episode_id", "patient_id", "modality"]].copy()
    out["modality"] = out["modality"].astype(str)
    for c in cols:
        out[c] = ep.get(f"baseline_{instrument}", np.nan) if c == "baseline" else ep[c]
    return out


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _covariate_label(c: str, instrument: str) -> str:
    return f"baseline {instrument.upper()}" if c == "baseline" else c.replace("_id", "")


def design(frame: pd.DataFrame, covariates, instrument: str) -> tuple:
    """``(X, x_names, Z, used, notes)`` for the covariates of ``frame`` (rows already complete)."""
    xs, x_names, zs, used, notes = [np.ones(len(frame))], ["intercept"], {}, [], []
    for c in covariates:
        s = frame[c]
        name = _covariate_label(c, instrument)
        if _is_numeric(s):
            v = s.to_numpy(float)
            if np.ptp(v) == 0:
                notes.append(f"{name} is the same for every analysed episode: not adjusted for")
                continue
            xs.append((v - v.mean()) / v.std())
            x_names.append(name)
            zs[name] = v
        else:
            s = s.astype(str)
            levels = sorted(s.unique())
            if len(levels) < 2:
                notes.append(f"{name} takes one value ({levels[0]}) in the analysed episodes: not adjusted for")
                continue
            for lev in levels:
                zs[f"{name}: {lev}"] = (s == lev).to_numpy(float)
            for lev in levels[1:]:
                xs.append((s == lev).to_numpy(float))
                x_names.append(f"{name}: {lev}")
        used.append(c)
    return np.column_stack(xs), x_names, pd.DataFrame(zs, index=frame.index), used, notes


def drop_missing(frame, covariates, notes, instrument):
    keep = []
    for c in covariates:
        miss = frame[c].isna() | (frame[c].astype(str).isin(["None", "nan", ""]) & ~_is_numeric(frame[c]))
        name = _covariate_label(c, instrument)
        if miss.all():
            notes.append(f"{name} is missing for every analysed episode: not adjusted for")
        else:
            if miss.any():
                notes.append(f"{int(miss.sum())} episode(s) without {name} were left out")
                frame = frame[~miss.to_numpy()]
            keep.append(c)
    return frame, keep


def _groups(frame, reference, min_n, notes):
    counts = frame["modality"].value_counts()
    if UNKNOWN in counts:
        notes.append(f"{int(counts[UNKNOWN])} episode(s) of unknown treatment status were left out")
    present = ", ".join(f"{label(k)} {v}" for k, v in counts.items())
    if counts.get(reference, 0) < min_n:
        raise ValueError(f"reference={reference!r} has {int(counts.get(reference, 0))} analysable episode(s), fewer "
                         f"than min_n={min_n}; groups (episodes with the outcome and covariates): {present}")
    small = [k for k, v in counts.items() if k not in (UNKNOWN, reference) and v < min_n]
    if small:
        notes.append(f"left out, fewer than min_n={min_n} analysable episodes: "
                     + ", ".join(f"{label(k)} ({int(counts[k])})" for k in small))
    names = [reference, *sorted(k for k in counts.index if k not in (UNKNOWN, reference, *small))]
    if len(names) < 2:
        raise ValueError(f"no modality besides {reference!r} has min_n={min_n} analysable episodes; groups: {present}")
    return names


def common_support(frame: pd.DataFrame, covariates, instrument: str, notes: list) -> pd.DataFrame:
    """Leave out episodes whose level of a categorical covariate some group never has (positivity fails there).

    The weighted comparison is then for the other episodes; each removal is stated in ``notes``.
    """
    for c in covariates:
        if _is_numeric(frame[c]):
            continue
        s = frame[c].astype(str)
        seen = pd.crosstab(s, frame["modality"])
        bad = [lev for lev in seen.index if (seen.loc[lev] == 0).any()]
        if bad and len(bad) < len(seen.index):
            drop = s.isin(bad).to_numpy()
            name = _covariate_label(c, instrument)
            missing = {lev: ", ".join(label(m).lower() for m in seen.columns if seen.loc[lev, m] == 0) for lev in bad}
            notes.append(f"left out {int(drop.sum())} episode(s) with {name} " + "; ".join(
                f"{lev} (no {who} episode has it)" for lev, who in missing.items())
                + ": positivity fails there, so the comparison is for the other episodes")
            frame = frame[~drop]
    return frame


def comparison_data(study, instrument, day, reference, covariates, origin, window, outcome, rule, min_n,
                    keep_unknown_outcome: bool = False) -> ComparisonData:
    """Assemble the episodes of a comparison (see :class:`ComparisonData`).

    With ``keep_unknown_outcome`` the episodes without an outcome stay in
    (``y`` NaN), for weighting by the chance of being observed.
    """
    notes: list[str] = []
    out, what = outcome_at_day(study, instrument, day, origin, window, outcome, rule)
    frame = covariate_frame(study, covariates, instrument).merge(out, on="episode_id", how="inner")
    n_all = len(frame)
    if not keep_unknown_outcome:
        frame = frame[frame["known"]]
        notes.append(f"outcome: {what}; known for {len(frame)} of {n_all} episodes, the others are left out "
                     "(complete cases)")
    else:
        notes.append(f"outcome: {what}; known for {int(frame['known'].sum())} of {n_all} episodes")
    frame, cov_used = drop_missing(frame, list(covariates), notes, instrument)
    names = _groups(frame[frame["known"]] if keep_unknown_outcome else frame, reference, min_n, notes)
    frame = common_support(frame[frame["modality"].isin(names)], cov_used, instrument, notes)
    names = _groups(frame, reference, min_n, notes)
    frame = frame[frame["modality"].isin(names)].reset_index(drop=True)
    X, x_names, Z, used, dnotes = design(frame, cov_used, instrument)
    group = pd.Categorical(frame["modality"], categories=names).codes.astype(int)
    return ComparisonData(frame, names, group, X, x_names, Z, used, notes + dnotes)
