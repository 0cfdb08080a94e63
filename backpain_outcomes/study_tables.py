"""The steps that build a :class:`~backpain_outcomes.study.Study`'s tables from its input tables.

The Study's constructor runs them in order: the row codes given by loading are checked
(:func:`fitting_row_codes`); session rows that only declare an episode untreated are set apart
(:func:`split_declared`); the episodes and patients tables are made (:func:`episode_frame`,
:func:`patient_frame`), each score and session row finds its episode (:func:`episode_positions`), the
episodes get their first visit, chronicity and session count (:func:`add_first_visits`), their treatment
(:func:`add_treatment`, from :func:`declared_status`, :func:`lost_sessions` and :func:`primary_modality`),
and the scores and sessions their days, ``score_100`` and order (:func:`score_table`,
:func:`session_table`), the episodes their baselines and the patient's details (:func:`add_patient_info`).
Split out of :mod:`backpain_outcomes.study`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .instruments import score_100
from .linking import index_of, member
from .text_columns import BLOCK
from .vocabulary import INSTRUMENTS, MIXED, MODALITIES, UNKNOWN, UNTREATED, chronicity_from_days, normalise_modality

__all__ = ["TREATED_ARMS", "sort_order", "fitting_row_codes", "split_declared", "session_frame", "episode_frame",
           "patient_frame", "episode_positions", "add_first_visits", "add_treatment", "declared_status",
           "lost_sessions", "lost_notes", "primary_modality", "score_table", "add_patient_info", "session_table",
           "SCORE_COLUMNS", "in_order", "days_between", "BLOCK"]

#: ``arm`` labels that declare an episode treated (matched without regard to case).
TREATED_ARMS = frozenset({"treated", "treatment", "intervention", "active", "active treatment"})
#: The columns of ``Study.scores`` (then ``_source`` and ``_row`` when loading gives them).
SCORE_COLUMNS = ["episode_id", "patient_id", "date", "days_since_onset", "days_since_first_contact", "instrument",
                 "score", "score_100"]



def in_order(pos: np.ndarray, code: np.ndarray, dates: np.ndarray) -> bool:
    """Whether the rows already come by ``pos``, then ``code``, then ``dates`` (NaT first, as the sort of
    :func:`sort_order` puts them), checked in blocks; the stable sort of rows in order keeps them as they are."""
    ns = dates.view(np.int64)
    for s in range(0, len(ns) - 1, BLOCK):
        p, c, t = pos[s:s + BLOCK + 1], code[s:s + BLOCK + 1], ns[s:s + BLOCK + 1]
        same_pos, same_code = p[1:] == p[:-1], c[1:] == c[:-1]
        later = (p[1:] > p[:-1]) | same_pos & ((c[1:] > c[:-1]) | same_code & (t[1:] >= t[:-1]))
        if not later.all():
            return False
    return True


def days_between(dates: np.ndarray, origin: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``((dates - origin[pos]) / one day)`` as float (NaN where either is NaT), computed in blocks of rows."""
    out = np.empty(len(dates), float)
    for s in range(0, len(dates), BLOCK):
        out[s:s + BLOCK] = (dates[s:s + BLOCK] - np.take(origin, pos[s:s + BLOCK])) / np.timedelta64(1, "D")
    return out


def sort_order(pos: np.ndarray, code: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """``np.lexsort((dates, code, pos))`` (codes from -1): one stable sort of a combined key when the dates are
    whole days and the key fits in 63 bits, else the lexsort."""
    ns = dates.astype(np.int64)
    day = 86_400_000_000_000
    if len(ns) and not np.isnat(dates).any() and not (ns % day).any():
        days = ns // day - ns.min() // day
        span, width = int(days.max()) + 1, int(code.max()) + 2
        group = (pos.astype(np.int64) + 1) * width + (code + 1)
        if (int(group.max()) + 1) * span < 2**62:
            return np.argsort(group * span + days, kind="stable")
    return np.lexsort((ns, code, pos))


def fitting_row_codes(row_codes, scores, sessions, episodes) -> dict:
    """The given row codes that fit their tables (see ``Study``); none without an episodes table."""
    n_sessions = len(sessions) if sessions is not None else -1
    lengths = {"scores_episode": len(scores), "scores_instrument": len(scores), "sessions_episode": n_sessions,
               "sessions_modality": n_sessions}
    highest = {"scores_instrument": len(INSTRUMENTS) - 1, "sessions_modality": len(MODALITIES)}
    n_episodes = len(episodes) if episodes is not None else 0
    out = {}
    for key, codes in (row_codes or {}).items():
        codes = np.asarray(codes)
        if codes.dtype.kind != "i":  # (signed integer codes are taken as they are: no copy to int64)
            codes = codes.astype(np.int64)
        if key not in lengths or len(codes) != lengths[key]:
            raise ValueError(f"row_codes[{key!r}]: expected {lengths.get(key, 'no')} codes, got {len(codes)}")
        if key.endswith("_episode") and (episodes is None or (len(codes) and not (
                (codes >= 0).all() and (codes < n_episodes).all()))):
            raise ValueError(f"row_codes[{key!r}]: every row needs its row of the episodes table")
        if key in highest and len(codes) and not ((codes >= -1) & (codes <= highest[key])).all():
            raise ValueError(f"row_codes[{key!r}]: codes from -1 to {highest[key]} expected")
        out[key] = codes
    return out


def declared_status(ep: pd.DataFrame, ss: pd.DataFrame, declared: pd.DataFrame, has_sessions=None) -> dict:
    """What the data declare about treatment, and sentences on every conflict or unread value.

    ``arm`` values that spell untreated ("untreated", "none", "no treatment", "natural course", ...)
    or treated ("treated", "treatment", "intervention", "active") are read; other arm labels (trial
    arm names, "sham", "usual care") say nothing about treatment status and are listed in a note.
    Sessions win over a declaration: an episode with treatment sessions is treated.
    """
    arm_raw = ep["arm"].astype(object) if "arm" in ep else pd.Series(None, index=ep.index, dtype=object)
    codes, labels = pd.factorize(arm_raw)  # each distinct arm label read once
    treated = [isinstance(v, str) and v.strip().lower() in TREATED_ARMS for v in labels]
    untreated = (normalise_modality(pd.Series(labels, dtype=object)) == UNTREATED).tolist()
    arm_treated = np.array([*treated, False], bool)[codes]
    arm_untreated = np.array([*untreated, False], bool)[codes]
    marked = member(ep["episode_id"], declared["episode_id"].dropna())
    if has_sessions is None:
        has_sessions = member(ep["episode_id"], ss["episode_id"].dropna()) if len(ss) else np.zeros(len(ep), bool)
    notes = {"_untreated": (arm_untreated | marked) & ~arm_treated, "_treated": arm_treated}
    unread = sorted({str(v) for v, a, t in zip(labels, untreated, treated)
                     if isinstance(v, str) and v.strip() and not a and not t})
    if unread:
        notes["unread"] = (f"arm values {', '.join(map(repr, unread[:8]))} do not say whether an episode was "
                           "treated; they are not used for treatment status")
    conflict = (arm_untreated | marked) & has_sessions
    if conflict.any():
        notes["conflict"] = (f"{int(conflict.sum())} episode(s) declared untreated (arm or a 'no treatment' "
                             "row) have treatment sessions; they are analysed as treated")
    both = arm_treated & marked
    if both.any():
        notes["both"] = (f"{int(both.sum())} episode(s) with arm 'treated' have a 'no treatment' row; the arm "
                         "is kept (treated)")
    return notes


def lost_sessions(ep: pd.DataFrame, excluded: pd.DataFrame) -> np.ndarray:
    """Episodes with a session row excluded at loading: the row's episode, or every episode of its
    patient when its episode is not one of the study's."""
    known = member(excluded["episode_id"], ep["episode_id"].dropna())
    return (member(ep["episode_id"], excluded.loc[known, "episode_id"].dropna())
            | member(ep["patient_id"], excluded.loc[~known, "patient_id"].dropna()))


def lost_notes(ep: pd.DataFrame, lost: np.ndarray, said_untreated: np.ndarray, no_sessions: str,
               excluded: pd.DataFrame) -> list[str]:
    """Sentences on the episodes whose session rows were excluded (all of them, or some)."""
    notes = []
    none_left = lost & (ep["n_sessions"].to_numpy() == 0) & ~said_untreated
    if none_left.any():
        tail = (" (no_sessions='untreated' does not apply to them: they had sessions)"
                if no_sessions == UNTREATED else "")
        notes.append(f"{int(none_left.sum())} episode(s) have no usable session because all their session "
                     "rows were excluded (see study.exclusions): their modality is unknown, and their "
                     f"treatment status too unless their arm says treated{tail}")
    some_left = lost & (ep["n_sessions"].to_numpy() > 0)
    if some_left.any():
        notes.append(f"{int(some_left.sum())} episode(s) have some session rows excluded (see "
                     "study.exclusions): their modality is that of their remaining sessions")
    orphans = int((excluded["episode_id"].isna() & excluded["patient_id"].isna()).sum())
    if orphans and no_sessions == UNTREATED:
        notes.append(f"{orphans} excluded session row(s) name no patient or episode: an episode they belong "
                     "to may be counted as untreated under no_sessions='untreated'; check them")
    return notes


def primary_modality(ep, ss, ss_pos, said_untreated, said_treated, no_sessions, code=None) -> pd.Series:
    """The modality of more than half of the sessions, else ``mixed``; without sessions
    ``untreated`` where declared (arm, a "no treatment" row, or ``no_sessions="untreated"``
    unless the arm says treated), else ``unknown`` (for an arm-treated episode: treated,
    modality not recorded)."""
    untreated = said_untreated | ((no_sessions == UNTREATED) & ~said_treated)
    labels = [*MODALITIES, MIXED, UNTREATED, UNKNOWN]
    without = np.where(untreated, len(MODALITIES) + 1, len(MODALITIES) + 2)
    if len(ss) == 0:
        return _labels_of(labels, without, ep.index)
    if code is None:
        code = pd.Categorical(ss["modality"], categories=list(MODALITIES)).codes
    n_mods = len(MODALITIES)
    counts = np.bincount(ss_pos.astype(np.int64) * n_mods + code, minlength=len(ep) * n_mods).reshape(len(ep), n_mods)
    total = counts.sum(axis=1)
    top = counts.argmax(axis=1)
    major = counts[np.arange(len(ep)), top] * 2 > total
    return _labels_of(labels, np.where(total == 0, without, np.where(major, top, n_mods)), ep.index)


def split_declared(sessions, codes: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(rows that only declare their episode untreated, the treatment sessions); the sessions' codes in
    ``codes`` are cut to the sessions kept."""
    declared = pd.DataFrame(columns=["episode_id"])
    if sessions is not None:
        marks = (codes["sessions_modality"] == len(MODALITIES) if "sessions_modality" in codes
                 else (sessions["modality"].astype(object) == UNTREATED).to_numpy(bool))
        declared = sessions[marks]
        if marks.any():  # (else the sessions as they are: no copy of every row)
            sessions = sessions[~marks]
            for key in ("sessions_episode", "sessions_modality"):
                if key in codes:
                    codes[key] = codes[key][~marks]
    return declared, sessions


def session_frame(sessions) -> pd.DataFrame:
    """The sessions (a shallow copy), or an empty sessions table without one."""
    if sessions is not None:
        return sessions.copy(deep=False)
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ["patient_id", "episode_id", "modality", "therapist_id"]}
                        ).assign(session_date=pd.Series(dtype="datetime64[ns]"), duration_min=pd.Series(dtype=float))


def episode_frame(episodes, sc: pd.DataFrame, ss: pd.DataFrame) -> pd.DataFrame:
    """The episodes' ids, patients, onsets and arms (without an episodes table: those of the scores and
    sessions, onset unknown)."""
    if episodes is None:
        ids = pd.concat([sc[["episode_id", "patient_id"]], ss[["episode_id", "patient_id"]]])
        ep = ids.drop_duplicates("episode_id").reset_index(drop=True)
        ep["onset_date"] = pd.NaT
        ep["arm"] = None
    else:
        ep = episodes[["episode_id", "patient_id", "onset_date", "arm"]].copy()
    ep["onset_date"] = pd.to_datetime(ep["onset_date"]).astype("datetime64[ns]")
    return ep


def patient_frame(patients, ep: pd.DataFrame, sc: pd.DataFrame) -> pd.DataFrame:
    """The patients table without loading's row columns (without one: the patients of the episodes and
    scores, details unknown)."""
    if patients is None:
        pt = pd.DataFrame({"patient_id": pd.unique(pd.concat([ep["patient_id"], sc["patient_id"]]))})
        pt["age"], pt["sex"], pt["clinic_id"] = np.nan, None, None
    else:
        pt = patients.drop(columns=[c for c in ("_source", "_row") if c in patients]).copy()
    return pt.reset_index(drop=True)


def episode_positions(sc: pd.DataFrame, ss: pd.DataFrame, ep: pd.DataFrame, codes: dict) -> tuple:
    """The row of ``ep`` of each score and of each session (from ``codes`` when loading gave them)."""
    sc_pos = codes.get("scores_episode", None)
    sc_pos = index_of(sc["episode_id"], ep["episode_id"]) if sc_pos is None else sc_pos
    ss_pos = codes.get("sessions_episode", None)
    ss_pos = index_of(ss["episode_id"], ep["episode_id"]) if ss_pos is None else ss_pos
    return sc_pos, ss_pos


def _min_at(out: np.ndarray, pos: np.ndarray, values: np.ndarray) -> None:
    """``np.minimum.at(out, pos, values)``; by runs of equal ``pos`` (``np.minimum.reduceat``) when the rows
    come by ``pos``, as they usually do."""
    if not len(pos) or not all(_non_decreasing(pos[s:s + BLOCK + 1]) for s in range(0, len(pos) - 1, BLOCK)):
        np.minimum.at(out, pos, values)
        return
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    at = pos[starts]
    out[at] = np.minimum(out[at], np.minimum.reduceat(values, starts))


def _non_decreasing(values: np.ndarray) -> bool:
    return bool((values[1:] >= values[:-1]).all())


def _column(values: np.ndarray, frame: pd.DataFrame) -> pd.Series:
    """A new array as a column of ``frame``, without the copy pandas makes of an array set as a column (a copy is
    fresh memory, and a million-row one costs more in page faults than in copying)."""
    return pd.Series(values, index=frame.index, copy=False)


def _labels_of(labels, codes: np.ndarray, index) -> pd.Series:
    """``pd.Series(labels[codes])`` (object labels): ``str`` for some rows, taken in Arrow; object for none."""
    if not len(codes):
        return pd.Series(np.asarray(labels, dtype=object)[codes], index=index)
    return pd.Series(np.asarray(labels, dtype=object)).take(codes).set_axis(index)


def add_first_visits(ep: pd.DataFrame, sc: pd.DataFrame, ss: pd.DataFrame, sc_pos, ss_pos) -> None:
    """Add each episode's ``first_visit_date`` (first score or session), ``onset_known``, ``chronicity`` and
    ``n_sessions``."""
    big = np.iinfo(np.int64).max
    first = np.full(len(ep), big)
    _min_at(first, sc_pos, sc["date"].to_numpy("datetime64[ns]").view(np.int64))
    if len(ss):
        _min_at(first, ss_pos, ss["session_date"].to_numpy("datetime64[ns]").view(np.int64))
    ep["first_visit_date"] = np.where(first == big, np.iinfo(np.int64).min, first).view("datetime64[ns]")  # min: NaT
    ep["onset_known"] = ep["onset_date"].notna()
    delay = (ep["first_visit_date"] - ep["onset_date"]).dt.days
    ep["chronicity"] = chronicity_from_days(delay)
    ep["n_sessions"] = np.bincount(ss_pos, minlength=len(ep)).astype(int) if len(ss) else 0


def add_treatment(ep: pd.DataFrame, ss: pd.DataFrame, ss_pos, declared: pd.DataFrame, codes: dict,
                  no_sessions: str, excluded: pd.DataFrame) -> list[str]:
    """Add each episode's ``modality`` and ``treatment_status``; returns the sentences on what the data
    declare and on the session rows excluded (see :func:`declared_status` and :func:`lost_notes`)."""
    has_sessions = None
    if "sessions_episode" in codes:  # the episodes' ids are distinct: the rows of the sessions' episodes
        has_sessions = np.zeros(len(ep), bool)
        has_sessions[ss_pos] = True
    status_notes = declared_status(ep, ss, declared, has_sessions)
    said_untreated, said_treated = status_notes.pop("_untreated"), status_notes.pop("_treated")
    lost = lost_sessions(ep, excluded)
    ep["modality"] = primary_modality(ep, ss, ss_pos, said_untreated, said_treated | lost, no_sessions,
                                      codes.get("sessions_modality"))
    notes = list(status_notes.values()) + lost_notes(ep, lost, said_untreated, no_sessions, excluded)
    modality = ep["modality"].to_numpy(object)
    status = np.where(modality == UNTREATED, 0, np.where((modality == UNKNOWN) & ~said_treated, 1, 2))
    ep["treatment_status"] = (_labels_of([UNTREATED, UNKNOWN, "treated"], status, ep.index) if len(ep)
                              else np.array([UNTREATED, UNKNOWN, "treated"])[status])
    return notes


def score_table(sc: pd.DataFrame, ep: pd.DataFrame, sc_pos, codes: dict) -> pd.DataFrame:
    """The scores with their days since onset and first contact and ``score_100``, by episode, instrument
    and date; adds each episode's ``baseline_<instrument>`` (its first score on it) to ``ep``."""
    dates = sc["date"].to_numpy("datetime64[ns]")
    sc["days_since_onset"] = _column(days_between(dates, ep["onset_date"].to_numpy("datetime64[ns]"), sc_pos), sc)
    sc["days_since_first_contact"] = _column(
        days_between(dates, ep["first_visit_date"].to_numpy("datetime64[ns]"), sc_pos), sc)
    inst_code = codes.get("scores_instrument", None)
    if inst_code is None:
        inst_cat = pd.Categorical(sc["instrument"])  # each instrument looked up once
        inst_code = np.r_[index_of(inst_cat.categories, list(INSTRUMENTS)), -1][inst_cat.codes]  # -1: grc
        sc["score_100"] = score_100(pd.Series(inst_cat, index=sc.index), sc["score"])
    else:  # as score_100 computes it: score / the instrument's highest score * 100 (NaN for grc), in blocks
        high = np.r_[[float(v[1]) for v in INSTRUMENTS.values()], np.nan]
        score = (sc["score"].to_numpy() if sc["score"].dtype == np.float64  # (as loading gives it: no pass)
                 else pd.to_numeric(sc["score"], errors="coerce").astype(float).to_numpy())
        out = np.empty(len(sc), float)
        for s in range(0, len(sc), BLOCK):
            out[s:s + BLOCK] = score[s:s + BLOCK] / np.take(high, inst_code[s:s + BLOCK]) * 100.0
        sc["score_100"] = _column(out, sc)
    if not in_order(sc_pos, inst_code, dates):  # by episode, instrument, date (stable)
        order = sort_order(sc_pos, inst_code, dates)
        sc = sc.iloc[order].reset_index(drop=True)
        sc_pos, inst_code = sc_pos[order], inst_code[order]
    else:  # (no take of the rows)
        sc = sc.reset_index(drop=True)
    first_row = (np.r_[True, (sc_pos[1:] != sc_pos[:-1]) | (inst_code[1:] != inst_code[:-1])] if len(sc)
                 else np.zeros(0, bool))
    score = sc["score"].to_numpy(float)
    for j, inst in enumerate(INSTRUMENTS):
        rows = np.flatnonzero(first_row & (inst_code == j))
        if len(rows):
            base = np.full(len(ep), np.nan)
            base[sc_pos[rows]] = score[rows]
            ep[f"baseline_{inst}"] = base
    return sc[[*SCORE_COLUMNS, *[c for c in ("_source", "_row") if c in sc]]]


def add_patient_info(ep: pd.DataFrame, patients: pd.DataFrame) -> None:
    """Add the ``age``, ``sex`` and ``clinic_id`` of each episode's patient."""
    info = patients.set_index("patient_id")
    pat_pos = index_of(ep["patient_id"], info.index)
    for col in ("age", "sex", "clinic_id"):
        if col not in info:
            ep[col] = None
            continue
        taken = None  # float or text taken as it is (no Python objects) when that keeps the dtype
        if len(pat_pos) and info[col].dtype in (np.float64, pd.StringDtype("pyarrow", na_value=np.nan)):
            taken = info[col].take(np.maximum(pat_pos, 0)).set_axis(ep.index).where(pat_pos >= 0)
        if taken is None or (taken.dtype != np.float64 and not taken.notna().any()):  # (all missing: object)
            taken = pd.Series(info[col].to_numpy()[pat_pos], index=ep.index).where(pat_pos >= 0)
        ep[col] = taken


def session_table(ss: pd.DataFrame, ss_pos, ep: pd.DataFrame) -> pd.DataFrame:
    """The sessions with their ``day`` (since first contact) and days since onset, by episode and date."""
    sdates = ss["session_date"].to_numpy("datetime64[ns]")
    if len(ss):
        ss = ss.assign(day=_column(days_between(sdates, ep["first_visit_date"].to_numpy("datetime64[ns]"), ss_pos), ss),
                       days_since_onset=_column(
                           days_between(sdates, ep["onset_date"].to_numpy("datetime64[ns]"), ss_pos), ss))
    else:
        ss = ss.assign(day=[], days_since_onset=[])
    no_code = np.zeros(len(ss), np.int8)
    if in_order(ss_pos, no_code, sdates):
        return ss.reset_index(drop=True)
    return ss.iloc[sort_order(ss_pos, no_code, sdates)].reset_index(drop=True)
