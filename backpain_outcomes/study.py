"""The :class:`Study`: validated canonical tables and the tables derived from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_choice, check_instrument, check_origin
from .instruments import score_100
from .linking import index_of, member
from .results import html_block, text_block
from .vocabulary import (
    CHRONICITY_LEVELS,
    INSTRUMENTS,
    MIXED,
    MODALITIES,
    MODALITY_LEVELS,
    UNKNOWN,
    UNTREATED,
    chronicity_from_days,
    normalise_modality,
)

__all__ = ["Study", "NO_SESSIONS"]

#: What an episode without sessions means: treatment not recorded, or known to be untreated.
NO_SESSIONS = (UNKNOWN, UNTREATED)
#: ``arm`` labels that declare an episode treated (matched without regard to case).
TREATED_ARMS = frozenset({"treated", "treatment", "intervention", "active", "active treatment"})


def _sort_order(pos: np.ndarray, code: np.ndarray, dates: np.ndarray) -> np.ndarray:
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


def _row_codes(row_codes, scores, sessions, episodes) -> dict:
    """The given row codes that fit their tables (see ``Study``); none without an episodes table."""
    n_sessions = len(sessions) if sessions is not None else -1
    lengths = {"scores_episode": len(scores), "scores_instrument": len(scores), "sessions_episode": n_sessions,
               "sessions_modality": n_sessions}
    highest = {"scores_instrument": len(INSTRUMENTS) - 1, "sessions_modality": len(MODALITIES)}
    n_episodes = len(episodes) if episodes is not None else 0
    out = {}
    for key, codes in (row_codes or {}).items():
        codes = np.asarray(codes, np.int64)
        if key not in lengths or len(codes) != lengths[key]:
            raise ValueError(f"row_codes[{key!r}]: expected {lengths.get(key, 'no')} codes, got {len(codes)}")
        if key.endswith("_episode") and (episodes is None or (len(codes) and not (
                (codes >= 0).all() and (codes < n_episodes).all()))):
            raise ValueError(f"row_codes[{key!r}]: every row needs its row of the episodes table")
        if key in highest and len(codes) and not ((codes >= -1) & (codes <= highest[key])).all():
            raise ValueError(f"row_codes[{key!r}]: codes from -1 to {highest[key]} expected")
        out[key] = codes
    return out


class Study:
    """A validated study: canonical tables plus derived, analysis-ready tables.

    Build it with :func:`backpain_outcomes.load_study` or
    :func:`backpain_outcomes.simulate_study` rather than directly.

    Parameters
    ----------
    no_sessions : {"unknown", "untreated"}
        What an episode without treatment sessions means. ``"unknown"`` (the
        default): its treatment was not recorded, so its ``modality`` is
        ``unknown`` and it never counts as untreated. ``"untreated"``: the
        sessions table is complete, so an episode without sessions was not
        treated. An episode is also untreated when its ``arm`` in the
        episodes table, or a session's modality, says so ("untreated",
        "none", "no treatment", "natural course", ...).
    excluded_sessions : DataFrame, optional
        ``episode_id`` and ``patient_id`` of the session rows excluded at
        loading (either may be missing). An episode with such a row (or,
        when the row's episode is not known, every episode of its patient)
        had sessions recorded, so the ``no_sessions="untreated"``
        declaration never makes it untreated: without a usable session its
        ``modality`` and ``treatment_status`` are ``unknown`` (``notes``
        counts them).

    Attributes
    ----------
    episodes : DataFrame
        One row per episode: ``episode_id``, ``patient_id``, ``onset_date``,
        ``onset_known``, ``first_visit_date``, ``chronicity``, ``modality``
        (primary modality: the one with more than half of the treatment
        sessions, else ``mixed``; ``untreated`` when known to be untreated;
        ``unknown`` when treatment was not recorded), ``treatment_status``
        (``treated``, ``untreated`` or ``unknown``), ``n_sessions``,
        ``baseline_<instrument>``, and the patient's ``age``, ``sex``,
        ``clinic_id``.
    scores : DataFrame
        Long format, one row per measurement, with ``days_since_onset`` (NaN
        where onset is unknown), ``days_since_first_contact``, ``score_100``.
    sessions : DataFrame
        Normalised treatment sessions with ``episode_id``, ``day`` (days since
        first contact) and ``days_since_onset``. Rows that only record "no
        treatment" declare the episode untreated and are not sessions.
    patients : DataFrame
    exclusions : DataFrame
        Every input row not used: ``table``, ``source``, ``row``, ``column``,
        ``value``, ``reason``, ``message``.
    blanked_values : DataFrame
        Invalid values of optional columns (an age of 150) that were set
        blank, their rows kept; same columns as ``exclusions``.
    same_day_scores : DataFrame
        Score rows that share their episode, instrument and calendar day with
        another score row. The analyses combine the measurements of one
        instrument, episode and day into one visit (their mean by default);
        ``flow()`` counts them.
    notes : list of str
        How the input was read (encodings, delimiters, sheets).
    input_files : list of Path
        The files read (commands never write onto them).
    row_codes : dict, optional
        For :func:`~backpain_outcomes.load_study`, which has already found them: ``"scores_episode"`` and
        ``"sessions_episode"``, the row of ``episodes`` of each score and session row (as
        ``linking.index_of`` gives them; the episodes' ids are then distinct), ``"scores_instrument"``,
        the position of each score's instrument in the vocabulary's ``INSTRUMENTS`` (-1: a rating of
        change), and ``"sessions_modality"``, of each session's modality in ``MODALITIES`` then
        ``UNTREATED``. The Study is the same with or without them; without them it looks them up.
    """

    def __init__(self, scores, patients=None, episodes=None, sessions=None, exclusions=None,
                 rows_read=None, sources=None, no_sessions: str = UNKNOWN, notes=None, same_day_scores=None,
                 input_files=None, excluded_sessions=None, blanked_values=None, row_codes=None):
        self.notes = list(notes or [])
        self.blanked_values = blanked_values if blanked_values is not None else pd.DataFrame(
            columns=["table", "source", "row", "column", "value", "reason", "message"])
        self._given_notes = list(self.notes)  # without the sentences on status, which a subset recounts
        self.excluded_sessions = (pd.DataFrame({"episode_id": pd.Series(dtype=object), "patient_id":
                                                pd.Series(dtype=object)}) if excluded_sessions is None
                                  else excluded_sessions[["episode_id", "patient_id"]].reset_index(drop=True))
        self.same_day_scores = same_day_scores if same_day_scores is not None else pd.DataFrame(
            columns=["table", "source", "row", "episode_id", "patient_id", "instrument", "date", "score",
                     "n_same_day", "rows"])
        self.input_files = list(input_files or [])
        self.no_sessions = check_choice(no_sessions, "no_sessions", NO_SESSIONS)
        self.has_sessions_table = sessions is not None
        self._inputs = {"scores": scores, "patients": patients, "episodes": episodes, "sessions": sessions}
        self.sources = dict(sources or {})
        self.rows_read = dict(rows_read or {})
        self.exclusions = exclusions if exclusions is not None else pd.DataFrame(
            columns=["table", "source", "row", "column", "value", "reason", "message"])
        codes = _row_codes(row_codes, scores, sessions, episodes)
        sc = scores.copy(deep=False)  # copy on write: the columns added below never reach ``scores``
        declared = pd.DataFrame(columns=["episode_id"])
        if sessions is not None:
            marks = (codes["sessions_modality"] == len(MODALITIES) if "sessions_modality" in codes
                     else (sessions["modality"].astype(object) == UNTREATED).to_numpy(bool))
            declared, sessions = sessions[marks], sessions[~marks]
            for key in ("sessions_episode", "sessions_modality"):
                if key in codes:
                    codes[key] = codes[key][~marks]
        self.n_untreated_records = len(declared)
        ss = sessions.copy(deep=False) if sessions is not None else pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ["patient_id", "episode_id", "modality", "therapist_id"]}
        ).assign(session_date=pd.Series(dtype="datetime64[ns]"), duration_min=pd.Series(dtype=float))
        if episodes is None:
            ids = pd.concat([sc[["episode_id", "patient_id"]], ss[["episode_id", "patient_id"]]])
            ep = ids.drop_duplicates("episode_id").reset_index(drop=True)
            ep["onset_date"] = pd.NaT
            ep["arm"] = None
        else:
            ep = episodes[["episode_id", "patient_id", "onset_date", "arm"]].copy()
        ep["onset_date"] = pd.to_datetime(ep["onset_date"]).astype("datetime64[ns]")
        if patients is None:
            pt = pd.DataFrame({"patient_id": pd.unique(pd.concat([ep["patient_id"], sc["patient_id"]]))})
            pt["age"], pt["sex"], pt["clinic_id"] = np.nan, None, None
        else:
            pt = patients.drop(columns=[c for c in ("_source", "_row") if c in patients]).copy()
        self.patients = pt.reset_index(drop=True)
        ep = ep.reset_index(drop=True)
        # row of each score's / session's episode
        sc_pos = codes.get("scores_episode", None)
        sc_pos = index_of(sc["episode_id"], ep["episode_id"]) if sc_pos is None else sc_pos
        ss_pos = codes.get("sessions_episode", None)
        ss_pos = index_of(ss["episode_id"], ep["episode_id"]) if ss_pos is None else ss_pos
        big = np.iinfo(np.int64).max
        first = np.full(len(ep), big)
        np.minimum.at(first, sc_pos, sc["date"].to_numpy("datetime64[ns]").astype(np.int64))
        if len(ss):
            np.minimum.at(first, ss_pos, ss["session_date"].to_numpy("datetime64[ns]").astype(np.int64))
        ep["first_visit_date"] = np.where(first == big, np.iinfo(np.int64).min, first).view("datetime64[ns]")  # min: NaT
        ep["onset_known"] = ep["onset_date"].notna()
        delay = (ep["first_visit_date"] - ep["onset_date"]).dt.days
        ep["chronicity"] = chronicity_from_days(delay)
        ep["n_sessions"] = np.bincount(ss_pos, minlength=len(ep)).astype(int) if len(ss) else 0
        has_sessions = None
        if "sessions_episode" in codes:  # the episodes' ids are distinct: the rows of the sessions' episodes
            has_sessions = np.zeros(len(ep), bool)
            has_sessions[ss_pos] = True
        status_notes = self._declared_status(ep, ss, declared, has_sessions)
        said_untreated, said_treated = status_notes.pop("_untreated"), status_notes.pop("_treated")
        lost = self._lost_sessions(ep, self.excluded_sessions)
        ep["modality"] = self._primary_modality(ep, ss, ss_pos, said_untreated, said_treated | lost,
                                                self.no_sessions, codes.get("sessions_modality"))
        self.notes += list(status_notes.values()) + self._lost_notes(ep, lost, said_untreated)
        ep["treatment_status"] = np.where(ep["modality"] == UNTREATED, UNTREATED,
                                          np.where((ep["modality"] == UNKNOWN) & ~said_treated, UNKNOWN, "treated"))
        onset = ep["onset_date"].to_numpy("datetime64[ns]")
        first_dt = ep["first_visit_date"].to_numpy("datetime64[ns]")
        dates = sc["date"].to_numpy("datetime64[ns]")
        sc["days_since_onset"] = ((dates - onset[sc_pos]) / np.timedelta64(1, "D")).astype(float)
        sc["days_since_first_contact"] = ((dates - first_dt[sc_pos]) / np.timedelta64(1, "D")).astype(float)
        inst_code = codes.get("scores_instrument", None)
        if inst_code is None:
            inst_cat = pd.Categorical(sc["instrument"])  # each instrument looked up once
            inst_code = np.r_[index_of(inst_cat.categories, list(INSTRUMENTS)), -1][inst_cat.codes]  # -1: grc
            sc["score_100"] = score_100(pd.Series(inst_cat, index=sc.index), sc["score"])
        else:  # as score_100 computes it: score / the instrument's highest score * 100 (NaN for grc)
            high = np.r_[[float(v[1]) for v in INSTRUMENTS.values()], np.nan][inst_code]
            sc["score_100"] = pd.to_numeric(sc["score"], errors="coerce").astype(float) / high * 100.0
        order = _sort_order(sc_pos, inst_code, dates)  # by episode, instrument, date (stable)
        sc = sc.iloc[order].reset_index(drop=True)
        sc_pos, inst_code = sc_pos[order], inst_code[order]
        first_row = np.r_[True, (sc_pos[1:] != sc_pos[:-1]) | (inst_code[1:] != inst_code[:-1])] if len(sc) else []
        score = sc["score"].to_numpy(float)
        for j, inst in enumerate(INSTRUMENTS):
            rows = np.flatnonzero(first_row & (inst_code == j))
            if len(rows):
                base = np.full(len(ep), np.nan)
                base[sc_pos[rows]] = score[rows]
                ep[f"baseline_{inst}"] = base
        info = self.patients.set_index("patient_id")
        pat_pos = index_of(ep["patient_id"], info.index)
        for col in ("age", "sex", "clinic_id"):
            ep[col] = (pd.Series(info[col].to_numpy()[pat_pos], index=ep.index).where(pat_pos >= 0)
                       if col in info else None)
        self.episodes = ep
        self.scores = sc[["episode_id", "patient_id", "date", "days_since_onset", "days_since_first_contact",
                          "instrument", "score", "score_100", *[c for c in ("_source", "_row") if c in sc]]]
        sdates = ss["session_date"].to_numpy("datetime64[ns]")
        ss = ss.assign(day=((sdates - first_dt[ss_pos]) / np.timedelta64(1, "D")).astype(float) if len(ss) else [],
                       days_since_onset=((sdates - onset[ss_pos]) / np.timedelta64(1, "D")).astype(float)
                       if len(ss) else [])
        self.sessions = ss.iloc[_sort_order(ss_pos, np.zeros(len(ss), np.int64), sdates)].reset_index(drop=True)

    @staticmethod
    def _declared_status(ep: pd.DataFrame, ss: pd.DataFrame, declared: pd.DataFrame, has_sessions=None) -> dict:
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

    @staticmethod
    def _lost_sessions(ep: pd.DataFrame, excluded: pd.DataFrame) -> np.ndarray:
        """Episodes with a session row excluded at loading: the row's episode, or every episode of its
        patient when its episode is not one of the study's."""
        known = member(excluded["episode_id"], ep["episode_id"].dropna())
        return (member(ep["episode_id"], excluded.loc[known, "episode_id"].dropna())
                | member(ep["patient_id"], excluded.loc[~known, "patient_id"].dropna()))

    def _lost_notes(self, ep: pd.DataFrame, lost: np.ndarray, said_untreated: np.ndarray) -> list[str]:
        """Sentences on the episodes whose session rows were excluded (all of them, or some)."""
        notes = []
        none_left = lost & (ep["n_sessions"].to_numpy() == 0) & ~said_untreated
        if none_left.any():
            tail = (" (no_sessions='untreated' does not apply to them: they had sessions)"
                    if self.no_sessions == UNTREATED else "")
            notes.append(f"{int(none_left.sum())} episode(s) have no usable session because all their session "
                         "rows were excluded (see study.exclusions): their modality is unknown, and their "
                         f"treatment status too unless their arm says treated{tail}")
        some_left = lost & (ep["n_sessions"].to_numpy() > 0)
        if some_left.any():
            notes.append(f"{int(some_left.sum())} episode(s) have some session rows excluded (see "
                         "study.exclusions): their modality is that of their remaining sessions")
        orphans = int((self.excluded_sessions["episode_id"].isna() & self.excluded_sessions["patient_id"].isna()
                       ).sum())
        if orphans and self.no_sessions == UNTREATED:
            notes.append(f"{orphans} excluded session row(s) name no patient or episode: an episode they belong "
                         "to may be counted as untreated under no_sessions='untreated'; check them")
        return notes

    @staticmethod
    def _primary_modality(ep, ss, ss_pos, said_untreated, said_treated, no_sessions, code=None) -> pd.Series:
        """The modality of more than half of the sessions, else ``mixed``; without sessions
        ``untreated`` where declared (arm, a "no treatment" row, or ``no_sessions="untreated"``
        unless the arm says treated), else ``unknown`` (for an arm-treated episode: treated,
        modality not recorded)."""
        untreated = said_untreated | ((no_sessions == UNTREATED) & ~said_treated)
        without = np.where(untreated, UNTREATED, UNKNOWN)
        if len(ss) == 0:
            return pd.Series(without.astype(object), index=ep.index)
        mods = np.array(MODALITIES, dtype=object)
        if code is None:
            code = pd.Categorical(ss["modality"], categories=list(MODALITIES)).codes
        counts = np.bincount(ss_pos * len(mods) + code, minlength=len(ep) * len(mods)).reshape(len(ep), len(mods))
        total = counts.sum(axis=1)
        top = counts.argmax(axis=1)
        major = counts[np.arange(len(ep)), top] * 2 > total
        out = np.where(total == 0, without, np.where(major, mods[top], MIXED))
        return pd.Series(out.astype(object), index=ep.index)

    def subset(self, episode_ids) -> Study:
        """A Study restricted to some episodes (exclusions and read counts are kept as loaded)."""
        keep = pd.Index(episode_ids)
        pats = self.episodes.loc[self.episodes["episode_id"].isin(keep), "patient_id"]
        inp = self._inputs

        def by_ep(df):
            return None if df is None else df[df["episode_id"].isin(keep)]
        return Study(scores=by_ep(inp["scores"]),
                     patients=None if inp["patients"] is None else inp["patients"][inp["patients"]["patient_id"].isin(pats)],
                     episodes=by_ep(inp["episodes"]), sessions=by_ep(inp["sessions"]),
                     exclusions=self.exclusions, rows_read=self.rows_read, sources=self.sources,
                     no_sessions=self.no_sessions, notes=self._given_notes,
                     same_day_scores=self.same_day_scores[self.same_day_scores["episode_id"].isin(keep)],
                     input_files=self.input_files, excluded_sessions=self.excluded_sessions,
                     blanked_values=self.blanked_values)

    # ------------------------------------------------------------------ frames
    @property
    def instruments(self) -> list[str]:
        """Instruments present in the scores, in vocabulary order."""
        present = set(self.scores["instrument"].unique())
        return [i for i in INSTRUMENTS if i in present]

    def days(self, origin: str = "onset", instrument: str | None = None) -> str:
        """Name of the day column for ``origin``; raises if onsets are unknown."""
        check_origin(origin)
        if origin == "first_contact":
            return "days_since_first_contact"
        sc = self.scores if instrument is None else self.scores[self.scores["instrument"] == instrument]
        n_unknown = sc.loc[sc["days_since_onset"].isna(), "episode_id"].nunique()
        if n_unknown:
            raise ValueError(f"origin='onset' needs the onset date of every episode, but {n_unknown} "
                             "episode(s) have none (no episodes table or blank onset_date); "
                             "use origin='first_contact' instead")
        return "days_since_onset"

    def analysis_frame(self, instrument: str = "nrs", origin: str = "onset",
                       include_baseline: bool = False, scale: str | None = None) -> pd.DataFrame:
        """Model-ready long frame for one instrument.

        Columns: ``episode_id``, ``patient_id``, ``day`` (days since ``origin``),
        ``visit`` (1 = baseline), ``score``, ``baseline`` (the episode's first
        score on this instrument), ``modality`` (categorical, ``untreated`` first so
        it is the reference level), ``chronicity``, ``age``, ``sex``.

        Parameters
        ----------
        instrument : str
        origin : {"onset", "first_contact"}
        include_baseline : bool
            Keep the baseline measurement as a row (it is always the
            ``baseline`` covariate).
        scale : {None, "100"}
            ``"100"`` uses ``score_100`` instead of the instrument's own scale.
        """
        instrument = check_instrument(instrument)
        check_origin(origin)
        key = (instrument, origin, bool(include_baseline), scale)
        cache = self.__dict__.setdefault("_frames", {})
        if key not in cache:
            cache[key] = self._analysis_frame(instrument, origin, include_baseline, scale)
        return cache[key].copy()

    def _analysis_frame(self, instrument, origin, include_baseline, scale):
        col = self.days(origin, instrument)
        sc = self.scores[self.scores["instrument"] == instrument]
        if sc.empty:
            raise ValueError(f"no {instrument} scores in this study; instruments present: "
                             f"{', '.join(self.instruments) or 'none'}")
        value = "score_100" if scale == "100" else "score"
        ep = self.episodes
        pos = pd.Index(ep["episode_id"]).get_indexer(sc["episode_id"])  # row of each score's episode
        codes = pd.factorize(sc["episode_id"])[0]
        out = pd.DataFrame({"episode_id": sc["episode_id"].to_numpy(), "patient_id": sc["patient_id"].to_numpy(),
                            "day": sc[col].to_numpy(float), "score": sc[value].to_numpy(float)})
        out["visit"] = out.groupby(codes, sort=False).cumcount().to_numpy() + 1
        out["baseline"] = out["score"].groupby(codes, sort=False).transform("first").to_numpy()
        mods = set(ep["modality"])
        chron = ep["chronicity"].astype(str)
        present_chron = set(chron)
        out["modality"] = pd.Categorical(ep["modality"].to_numpy()[pos],
                                         categories=[m for m in MODALITY_LEVELS if m in mods])
        out["chronicity"] = pd.Categorical(chron.to_numpy()[pos],
                                           categories=[c for c in CHRONICITY_LEVELS if c in present_chron])
        out["age"] = pd.to_numeric(ep["age"], errors="coerce").to_numpy(float)[pos]
        out["sex"] = ep["sex"].to_numpy()[pos]
        if not include_baseline:
            out = out[out["visit"] > 1]
        cols = ["episode_id", "patient_id", "day", "visit", "score", "baseline", "modality",
                "chronicity", "age", "sex"]
        return out[cols].reset_index(drop=True)

    # ------------------------------------------------------------------ flow
    def flow(self) -> pd.DataFrame:
        """Counts behind a CONSORT-style flow diagram.

        Returns a DataFrame with ``stage``, ``table``, ``n``: rows read, rows
        excluded (by reason) and rows used per table, then patients, episodes,
        episodes with scores, with follow-up (two or more measurements), and
        episodes per modality.
        """
        rows = []
        used = {"scores": len(self.scores), "sessions": len(self.sessions) + self.n_untreated_records,
                "patients": len(self.patients) if "patients" in self.rows_read else None,
                "episodes": len(self.episodes) if "episodes" in self.rows_read else None}
        for table, n_read in self.rows_read.items():
            rows.append(("rows read", table, n_read))
            ex = self.exclusions[self.exclusions["table"] == table]
            for reason, n in ex["reason"].value_counts().sort_index().items():
                rows.append((f"rows excluded: {reason}", table, int(n)))
            rows.append(("rows used", table, used[table]))
            blanked = self.blanked_values[self.blanked_values["table"] == table]
            for column, n in blanked["column"].value_counts().sort_index().items():
                rows.append((f"values set blank (invalid): {column}", table, int(n)))
        n_scores = self.scores.groupby("episode_id").size()
        rows += [("patients", "", int(self.episodes["patient_id"].nunique())),
                 ("episodes", "", len(self.episodes)),
                 ("episodes with scores", "", int(len(n_scores))),
                 ("episodes with follow-up (2+ measurements)", "", int((n_scores >= 2).sum()))]
        same_day = self.same_day_scores
        if len(same_day):
            visits = same_day.groupby(["episode_id", "instrument", "date"]).ngroups
            rows += [("score rows combined into same-day visits (mean)", "scores", len(same_day)),
                     ("same-day visits they form", "scores", int(visits))]
        status = self.episodes["treatment_status"].value_counts()
        for st in ("treated", UNTREATED, UNKNOWN):
            rows.append((f"episodes with treatment status {st}", "", int(status.get(st, 0))))
        counts = self.episodes["modality"].value_counts()
        for mod in MODALITY_LEVELS:
            if mod in counts:
                rows.append((f"episodes: {mod}", "", int(counts[mod])))
        return pd.DataFrame(rows, columns=["stage", "table", "n"])

    def summary(self) -> str:
        """Plain-text overview: counts, exclusions, onset and treatment status."""
        return text_block(*self._parts())

    def _repr_html_(self) -> str:
        return html_block(*self._parts())

    def __repr__(self) -> str:
        return f"<Study: {self._parts()[1][0]}>"

    def _parts(self):
        ep = self.episodes
        lines = [f"{ep['patient_id'].nunique()} patients, {len(ep)} episodes, {len(self.sessions)} sessions, "
                 f"{len(self.scores)} scores ({', '.join(self.instruments)})",
                 f"{len(self.exclusions)} input row(s) excluded"
                 + (f": {self.exclusions['reason'].value_counts().to_dict()}" if len(self.exclusions) else ""),
                 f"onset known for {int(ep['onset_known'].sum())} of {len(ep)} episodes",
                 f"treatment status unknown for {int((ep['modality'] == UNKNOWN).sum())} of {len(ep)} episodes"
                 + ("" if self.has_sessions_table else " (no sessions table)")]
        tab = pd.crosstab(ep["modality"], ep["chronicity"].astype(str)).reset_index()
        return "Study", lines, {"Episodes by modality and chronicity": tab}
