"""The :class:`Study`: validated canonical tables and the tables derived from them.

The steps that derive the tables (episodes' first visits, chronicity and treatment, the scores' days and
``score_100``, baselines) are in :mod:`backpain_outcomes.study_tables`.
"""

from __future__ import annotations

import pandas as pd

from .checks import check_choice, check_instrument, check_origin
from .results import html_block, text_block
from .study_tables import (
    TREATED_ARMS,
    add_first_visits,
    add_patient_info,
    add_treatment,
    episode_frame,
    episode_positions,
    fitting_row_codes,
    patient_frame,
    score_table,
    session_frame,
    session_table,
    split_declared,
)
from .vocabulary import (
    CHRONICITY_LEVELS,
    INSTRUMENTS,
    MODALITY_LEVELS,
    UNKNOWN,
    UNTREATED,
)

__all__ = ["Study", "NO_SESSIONS", "TREATED_ARMS"]

#: What an episode without sessions means: treatment not recorded, or known to be untreated.
NO_SESSIONS = (UNKNOWN, UNTREATED)


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
        codes = fitting_row_codes(row_codes, scores, sessions, episodes)
        sc = scores.copy(deep=False)  # copy on write: the columns added below never reach ``scores``
        declared, sessions = split_declared(sessions, codes)
        self.n_untreated_records = len(declared)
        ss = session_frame(sessions)
        ep = episode_frame(episodes, sc, ss)
        self.patients = patient_frame(patients, ep, sc)
        ep = ep.reset_index(drop=True)
        sc_pos, ss_pos = episode_positions(sc, ss, ep, codes)  # row of each score's / session's episode
        add_first_visits(ep, sc, ss, sc_pos, ss_pos)
        self.notes += add_treatment(ep, ss, ss_pos, declared, codes, self.no_sessions, self.excluded_sessions)
        self.scores = score_table(sc, ep, sc_pos, codes)
        add_patient_info(ep, self.patients)
        self.episodes = ep
        self.sessions = session_table(ss, ss_pos, ep)

    def subset(self, episode_ids) -> Study:
        """A Study restricted to some episodes (exclusions and read counts are kept as loaded).

        With no episode (an empty ``episode_ids``) the Study is empty: its tables have no rows, and the
        columns and dtypes of this study's tables. An id that is not an episode of this study raises
        ``ValueError`` naming it (a mistyped id would otherwise drop its episode silently).
        """
        keep = pd.Index(episode_ids)
        unknown = keep[~keep.isin(self.episodes["episode_id"])]
        if len(unknown):
            shown = ", ".join(repr(v) for v in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ValueError(f"episode_ids: {len(unknown)} id(s) are not episodes of this study: {shown}; "
                             "give ids from study.episodes['episode_id']")
        pats = self.episodes.loc[self.episodes["episode_id"].isin(keep), "patient_id"]
        inp = self._inputs

        def by_ep(df):
            return None if df is None else df[df["episode_id"].isin(keep)]
        sub = Study(scores=by_ep(inp["scores"]),
                    patients=None if inp["patients"] is None else inp["patients"][inp["patients"]["patient_id"].isin(pats)],
                    episodes=by_ep(inp["episodes"]), sessions=by_ep(inp["sessions"]),
                    exclusions=self.exclusions, rows_read=self.rows_read, sources=self.sources,
                    no_sessions=self.no_sessions, notes=self._given_notes,
                    same_day_scores=self.same_day_scores[self.same_day_scores["episode_id"].isin(keep)],
                    input_files=self.input_files, excluded_sessions=self.excluded_sessions,
                    blanked_values=self.blanked_values)
        if len(sub.episodes) == 0:  # no rows to take the dtypes from: this study's tables, without their rows
            for name in ("patients", "episodes", "scores", "sessions"):
                setattr(sub, name, getattr(self, name).iloc[:0].copy())
        return sub

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
