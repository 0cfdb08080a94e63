"""Global ratings of change, the data side of :func:`~backpain_outcomes.ordinal.fit_grc_model`: one rating
per episode, the grouping and covariate columns attached, the groups kept, the reference, and each group's
distribution over the categories with the share improved."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .checks import check_modality
from .vocabulary import GRC_IMPROVED, MODALITY_LEVELS, UNKNOWN, label

__all__ = ["GRC", "episode_ratings", "attach_columns", "group_name", "group_levels", "reference_level",
           "rating_distribution", "extreme_groups", "complete_ratings", "model_levels"]

#: The instrument name of the global rating of change.
GRC = "grc"


def episode_ratings(study, day, origin, window, notes) -> pd.DataFrame:
    """One rating per episode: the last, or the one nearest ``day`` within ``window`` days."""
    sc = study.scores[study.scores["instrument"] == GRC]
    if sc.empty:
        raise ValueError("this study has no global ratings of change (instrument grc); load them with the "
                         "instrument 'grc' (or 'PGIC', 'global rating of change')")
    if day is None:
        last = sc.groupby("episode_id", sort=False)["date"].transform("max")
        at = sc[sc["date"] == last]
        what = "each episode's last rating"
    else:
        col = study.days(origin, GRC)
        gap = (sc[col] - day).abs()
        near = sc.assign(_gap=gap)[gap <= window]
        best = near.groupby("episode_id", sort=False)["_gap"].transform("min")
        at = near[near["_gap"] == best]
        missed = sc["episode_id"].nunique() - at["episode_id"].nunique()
        what = f"the rating nearest day {day:g} ({label(origin)}, within {window:g} days)"
        if missed:
            notes.append(f"{missed} rated episode(s) have no rating within {window:g} days of day {day:g} and are "
                         "left out")
    several = at.duplicated("episode_id", keep=False)
    if several.any():
        notes.append(f"{at.loc[several, 'episode_id'].nunique()} episode(s) have several ratings on the day used; "
                     "the last recorded is used")
    at = at.drop_duplicates("episode_id", keep="last")
    notes.insert(0, f"One rating per episode: {what}.")
    return at[["episode_id", "patient_id", "score"]].rename(columns={"score": "rating"})


def attach_columns(frame: pd.DataFrame, study, columns: list[str]) -> pd.DataFrame:
    """The episode's (or else the patient's) value of each column."""
    ep, pt = study.episodes, study.patients
    for col in columns:
        if col in ep:
            frame[col] = frame["episode_id"].map(ep.set_index("episode_id")[col]).to_numpy()
        else:
            frame[col] = frame["patient_id"].map(pt.drop_duplicates("patient_id").set_index("patient_id")[col]).to_numpy()
    return frame


def group_name(by: str, level) -> str:
    """How a group is named in tables and notes: the modality's label, else ``column = level``."""
    return label(level) if by == "modality" else f"{by} = {level}"


def group_levels(values: pd.Series, by: str) -> list:
    present = list(pd.unique(values.dropna()))
    if by == "modality":
        return [m for m in MODALITY_LEVELS if m in present]
    try:
        return sorted(present)
    except TypeError:
        return sorted(present, key=str)


def reference_level(reference, levels: list, by: str, notes: list):
    if by == "modality":
        ref = check_modality(reference)
        if ref not in levels:
            raise ValueError(f"reference={reference!r} has no rated episodes; groups: {', '.join(map(str, levels))}")
        return ref
    hit = [lv for lv in levels if lv == reference or str(lv) == str(reference)]
    if hit:
        return hit[0]
    if reference == "untreated":  # the default: not a level of this grouping
        notes.append(f"Reference: {by} = {levels[0]} (the first level; pass reference=... to choose another).")
        return levels[0]
    raise ValueError(f"reference={reference!r} is not a level of {by}; levels: {', '.join(map(str, levels))}")


def rating_distribution(frame: pd.DataFrame, by: str, levels: list, scale: tuple, alpha: float) -> pd.DataFrame:
    """Episodes per group and category, and the share improved (ratings 1-2) with its Wilson interval."""
    rows = []
    for lv in levels:
        r = frame.loc[frame[by] == lv, "rating"].to_numpy(int)
        counts = np.bincount(r - 1, minlength=len(scale))[: len(scale)]
        improved = int((r <= GRC_IMPROVED).sum())
        lo, hi = proportion_confint(improved, len(r), alpha=alpha, method="wilson")
        rows.append({"group": lv, "label": group_name(by, lv), "n": len(r), **dict(zip(scale, counts.tolist())),
                     "improved": improved, "improved_share": improved / len(r), "improved_ci_low": lo,
                     "improved_ci_high": hi})
    return pd.DataFrame(rows)


def extreme_groups(frame: pd.DataFrame, by: str, levels: list) -> list:
    """Groups whose ratings all lie in the best or all in the worst category rated: their odds ratio is infinite."""
    lo, hi = frame["rating"].min(), frame["rating"].max()
    out = []
    for lv in levels:
        r = frame.loc[frame[by] == lv, "rating"]
        if (r == lo).all() or (r == hi).all():
            out.append(lv)
    return out


def complete_ratings(frame: pd.DataFrame, by: str, adjust: list, notes: list) -> pd.DataFrame:
    """Leave out the episodes without a group or a covariate (and, by modality, those of unknown treatment)."""
    if by == "modality":
        unknown = frame[by] == UNKNOWN
        if unknown.any():
            notes.append(f"{int(unknown.sum())} rated episode(s) of unknown treatment are left out "
                         "(their treatment was not recorded)")
            frame = frame[~unknown]
    missing = frame[[by, *adjust]].isna().any(axis=1)
    if missing.any():
        notes.append(f"{int(missing.sum())} rated episode(s) without {by}"
                     + (f" or {', '.join(adjust)}" if adjust else "") + " are left out")
        frame = frame[~missing]
    return frame


def model_levels(frame, by, levels, reference, min_n, notes) -> list:
    """Groups in the model: at least ``min_n`` rated episodes, and not all in one extreme category."""
    counts = frame[by].value_counts()
    small = [lv for lv in levels if counts.get(lv, 0) < min_n]
    if reference in small:
        raise ValueError(f"the reference group {group_name(by, reference)} has {int(counts.get(reference, 0))} rated "
                         f"episode(s), fewer than min_n={min_n}")
    if small:
        notes.append(f"Groups with fewer than min_n={min_n} rated episodes are shown but not modelled: "
                     f"{', '.join(group_name(by, s) for s in small)}")
    kept = frame[frame[by].isin([lv for lv in levels if lv not in small])]
    extreme = extreme_groups(kept, by, [lv for lv in levels if lv not in small])
    if reference in extreme:
        raise ValueError(f"every rating of the reference group {group_name(by, reference)} lies in one extreme "
                         "category: "
                         "no odds ratio against it is finite; choose another reference")
    if extreme:
        notes.append("Groups whose ratings all lie in the best or all in the worst category rated have an infinite "
                     f"odds ratio and are shown but not modelled: {', '.join(group_name(by, s) for s in extreme)}")
    return [lv for lv in levels if lv not in small and lv not in extreme]
