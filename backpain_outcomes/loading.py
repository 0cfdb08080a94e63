"""Load study tables from files or DataFrames, validate every row, never guess.

The four canonical tables and their columns are listed in :data:`TABLES`. Reading is
two-pass: every table is read and checked, **then** either one
:class:`~backpain_outcomes.exceptions.DataValidationError` lists every problem
(``errors="raise"``) or the invalid rows move to ``study.exclusions``
(``errors="exclude"``). Exact duplicate rows are excluded in both modes.

Row numbers are the line of the source file (header = line 1); for Excel the
sheet row; for DataFrames and Parquet the line the row would have in a CSV
export with a header (position + 2).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_choice
from .dates import AMBIGUOUS, BAD, parse_dates
from .exceptions import DataValidationError, ExcludedRowsWarning
from .instruments import score_odi, score_rmdq
from .vocabulary import INSTRUMENTS, MODALITIES, UNTREATED, normalise_instrument, normalise_modality

__all__ = ["load_study", "TABLES", "read_table"]

TABLES = {
    "patients": (["patient_id"], ["age", "sex", "clinic_id"]),
    "episodes": (["episode_id", "patient_id", "onset_date"], ["arm"]),
    "sessions": (["patient_id", "session_date", "modality"], ["episode_id", "therapist_id", "duration_min"]),
    "scores": (["patient_id", "date", "instrument", "score"], ["episode_id"]),
}
_ALIASES = {
    "*": {"patientid": "patient_id", "patient": "patient_id", "pid": "patient_id",
          "episodeid": "episode_id", "episode": "episode_id"},
    "patients": {"gender": "sex", "clinic": "clinic_id", "clinicid": "clinic_id"},
    "episodes": {"onset": "onset_date", "onsetdate": "onset_date", "date_of_onset": "onset_date"},
    "sessions": {"date": "session_date", "sessiondate": "session_date", "visit_date": "session_date",
                 "treatment": "modality", "therapy": "modality", "therapist": "therapist_id",
                 "therapistid": "therapist_id", "duration": "duration_min", "minutes": "duration_min"},
    "scores": {"score_date": "date", "visit_date": "date", "session_date": "date",
               "measure": "instrument", "outcome": "instrument", "questionnaire": "instrument",
               "value": "score", "result": "score"},
}
_ITEM_COL = re.compile(r"^(odi|rmdq)_?q?(\d{1,2})$")
_READERS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel"}
_SEX = {"f": "female", "female": "female", "w": "female", "woman": "female",
        "m": "male", "male": "male", "man": "male"}


@dataclass
class RawTable:
    """One table as read: normalised column names, raw values, source line numbers."""

    name: str
    source: str
    data: pd.DataFrame
    rows: np.ndarray
    columns_found: list = field(default_factory=list)


class _Problems:
    """Collects row-level and structural problems as records."""

    def __init__(self):
        self.parts: list[pd.DataFrame] = []
        self.fatal: list[dict] = []

    def add(self, t: RawTable, mask, column, reason, message, expected="", values=None):
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        if values is None:
            values = t.data[column] if column in t.data else pd.Series([None] * len(t.data))
        vals = pd.Series(values).to_numpy(dtype=object)[mask]
        msgs = message if isinstance(message, str) else np.asarray(message, dtype=object)[mask]
        self.parts.append(pd.DataFrame({
            "table": t.name, "source": t.source, "row": t.rows[mask], "column": column,
            "value": vals, "reason": reason, "message": msgs, "expected": expected,
            "_pos": np.flatnonzero(mask)}))

    def structural(self, table, source, column, reason, message, expected="", value=None):
        self.fatal.append({"table": table, "source": source, "row": np.nan, "column": column,
                           "value": value, "reason": reason, "message": message,
                           "expected": expected, "_pos": -1})

    def frame(self) -> pd.DataFrame:
        cols = ["table", "source", "row", "column", "value", "reason", "message", "expected", "_pos"]
        parts = [p for p in self.parts if len(p)]
        if self.fatal:
            parts.insert(0, pd.DataFrame(self.fatal))
        if not parts:
            return pd.DataFrame(columns=cols)
        out = pd.concat(parts, ignore_index=True)
        out["row"] = out["row"].astype("Int64")
        return out.sort_values(["table", "row"], kind="stable").reset_index(drop=True)


def _norm_col(name: object, table: str) -> str:
    key = re.sub(r"[^0-9a-z]+", "_", str(name).replace("\ufeff", "").strip().lower()).strip("_")
    return _ALIASES.get(table, {}).get(key, _ALIASES["*"].get(key, key))


_BLANK_LINE = re.compile(rb"\n[ \t]*\r?\n")  # an empty or whitespace-only line inside the file


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    data = path.read_bytes()
    head = data[:4]
    encodings = ["utf-16"] if head[:2] in (b"\xff\xfe", b"\xfe\xff") else ["utf-8-sig", "cp1252"]
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    first_line_blank = body[:1] in (b"\n", b"\r", b" ", b"\t")
    if (encodings[0] == "utf-8-sig" and body and not first_line_blank
            and not _BLANK_LINE.search(body.rstrip(b"\r\n"))):
        try:
            body.decode("utf-8")
            # fast path: UTF-8 without blank lines, so row i is line i + 2 for the pyarrow reader as well
            df = pd.read_csv(io.BytesIO(body), dtype=str, engine="pyarrow", sep=sep, keep_default_na=False,
                             na_values=[""])
            return df, "utf-8"
        except UnicodeDecodeError:
            pass
    last = None
    for enc in encodings:
        try:
            df = pd.read_csv(path, dtype=str, encoding=enc, sep=sep, skip_blank_lines=False,
                             keep_default_na=False, na_values=[""])
            return df, enc
        except UnicodeDecodeError as err:
            last = err
    raise UnicodeDecodeError(last.encoding, last.object, last.start, last.end,
                             "not UTF-8 (with or without BOM), UTF-16 or cp1252")


def read_table(obj, name: str, problems: _Problems | None = None) -> RawTable | None:
    """Read one table from a path or DataFrame; structural problems go to ``problems``."""
    problems = problems or _Problems()
    if isinstance(obj, pd.DataFrame):
        df, source = obj.copy(), f"<{name} DataFrame>"
        rows = np.arange(len(df)) + 2
        blank = np.zeros(len(df), dtype=bool)
    else:
        path = Path(obj)
        source = path.name
        kind = _READERS.get(path.suffix.lower())
        if not path.exists():
            problems.structural(name, source, "", "missing_file", f"file not found: {path}")
            return None
        if kind is None:
            problems.structural(name, source, "", "unknown_format",
                                "unknown file type", ".csv, .tsv, .parquet or .xlsx", path.suffix)
            return None
        try:
            if kind == "csv":
                df, _ = _read_csv(path)
            elif kind == "parquet":
                df = pd.read_parquet(path)
            else:
                df = pd.read_excel(path, sheet_name=0, dtype=object)
        except UnicodeDecodeError as err:
            problems.structural(name, source, "", "encoding",
                                f"cannot decode the file (byte {err.object[err.start:err.start + 1]!r} "
                                f"at offset {err.start})", "UTF-8, UTF-8 with BOM, UTF-16 or cp1252")
            return None
        except pd.errors.EmptyDataError:
            problems.structural(name, source, "", "empty_file", "the file is empty", "a header line and rows")
            return None
        except Exception as err:  # noqa: BLE001 - reported to the user with the file name
            problems.structural(name, source, "", "unreadable", f"cannot read the file: {err}")
            return None
        rows = np.arange(len(df)) + 2
        blank = df.isna().all(axis=1).to_numpy() if len(df.columns) else np.zeros(len(df), bool)
    df.columns = [_norm_col(c, name) for c in df.columns]
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]
    found = list(df.columns)
    if blank.any():
        df, rows = df.loc[~blank].reset_index(drop=True), rows[~blank]
    else:
        df = df.reset_index(drop=True)
    if len(df) == 0:
        problems.structural(name, source, "", "empty_file", "the table has no data rows",
                            "at least one row under the header")
        return None
    required = list(TABLES[name][0])
    if name == "scores" and any(_ITEM_COL.match(c) for c in found):
        required.remove("score")
    missing = [c for c in required if c not in found]
    if missing:
        problems.structural(name, source, ", ".join(missing), "missing_column",
                            f"missing required column(s) {', '.join(missing)}; columns found: "
                            f"{', '.join(found) if found else '(none)'}", ", ".join(TABLES[name][0]))
        return None
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_string_dtype(s) and s.dtype != object:
            st = s.str.strip()
            df[col] = st.where(st != "")  # stays an Arrow-backed string column (fast vectorised checks)
        elif s.dtype == object:
            st = s.map(lambda v: v.strip() if isinstance(v, str) else v)
            df[col] = st.where(st != "", None)
    return RawTable(name, source, df, rows, found)


def _id_text(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _ids(s: pd.Series) -> pd.Series:
    """Identifiers as strings ("12" and 12.0 are the same id); mapped once per distinct value."""
    if pd.api.types.is_string_dtype(s) and s.dtype != object:
        return s
    s = s.astype(object)
    uniq = pd.unique(s.dropna())
    if all(isinstance(u, str) for u in uniq):
        return s.where(s.notna(), None)
    return s.map({u: _id_text(u) for u in uniq}).astype(object).where(s.notna(), None)


def _member(values: pd.Series, ids) -> pd.Series:
    """``values.isin(ids)`` through a hash lookup (Arrow-string ``isin`` builds a Python list of the ids)."""
    index = pd.Index(ids)
    if not index.is_unique:
        index = index.unique()
    return pd.Series(index.get_indexer(values.astype(index.dtype) if len(index) else values) >= 0,
                     index=values.index)


def _check_required_values(t: RawTable, p: _Problems, cols):
    for col in cols:
        p.add(t, t.data[col].isna().to_numpy(), col, "missing_value", "required value is missing",
              "a value")


def _check_dates(t, p, col, dayfirst, today, required=True):
    parsed, status = parse_dates(t.data[col], dayfirst=dayfirst)
    p.add(t, (status == BAD).to_numpy(), col, "bad_date", "not a valid date",
          "an ISO 8601 date such as 2024-03-25")
    hint = ""
    if dayfirst is None:
        hint = "; pass dayfirst=True or dayfirst=False to load_study"
    p.add(t, (status == AMBIGUOUS).to_numpy(), col, "ambiguous_date",
          "ambiguous date: day and month order cannot be told" + hint,
          "an ISO 8601 date such as 2024-03-25")
    if required:
        p.add(t, t.data[col].isna().to_numpy(), col, "missing_value", "required date is missing",
              "an ISO 8601 date")
    p.add(t, (parsed > today).to_numpy(), col, "date_in_future", f"date is after today ({today.date()})",
          f"a date on or before {today.date()}")
    return parsed


def _check_number(t, p, col, low, high, what, integer=False):
    raw = t.data[col]
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    p.add(t, (raw.notna() & num.isna()).to_numpy(), col, "not_a_number", f"{what} is not a number",
          f"a number from {low:g} to {high:g}")
    bad = (num < low) | (num > high)
    if integer:
        bad |= num.notna() & (num != np.floor(num))
    p.add(t, bad.to_numpy(), col, "out_of_range", f"{what} is out of range",
          f"{'an integer' if integer else 'a number'} from {low:g} to {high:g}")
    return num


def _validate_patients(t, p):
    d = t.data
    _check_required_values(t, p, ["patient_id"])
    out = pd.DataFrame({"patient_id": _ids(d["patient_id"])})
    dup = out["patient_id"].notna() & out["patient_id"].duplicated(keep=False)
    p.add(t, dup.to_numpy(), "patient_id", "duplicate_id", "patient_id appears on more than one row",
          "each patient once")
    out["age"] = _check_number(t, p, "age", 0, 120, "age") if "age" in d else np.nan
    if "sex" in d:
        out["sex"] = d["sex"].map(lambda v: None if v is None else _SEX.get(str(v).lower(), str(v).lower()))
    else:
        out["sex"] = None
    out["clinic_id"] = _ids(d["clinic_id"]) if "clinic_id" in d else None
    for col in d.columns:
        if col not in out:
            out[col] = d[col]
    return out


def _validate_episodes(t, p, dayfirst, today):
    d = t.data
    _check_required_values(t, p, ["episode_id", "patient_id"])
    out = pd.DataFrame({"episode_id": _ids(d["episode_id"]), "patient_id": _ids(d["patient_id"])})
    dup = out["episode_id"].notna() & out["episode_id"].duplicated(keep=False)
    p.add(t, dup.to_numpy(), "episode_id", "duplicate_id", "episode_id appears on more than one row",
          "each episode once")
    out["onset_date"] = _check_dates(t, p, "onset_date", dayfirst, today, required=False)
    out["arm"] = d["arm"] if "arm" in d else None
    return out


def _validate_sessions(t, p, dayfirst, today, modality_map):
    d = t.data
    _check_required_values(t, p, ["patient_id", "modality"])
    out = pd.DataFrame({"patient_id": _ids(d["patient_id"])})
    out["episode_id"] = _ids(d["episode_id"]) if "episode_id" in d else None
    out["session_date"] = _check_dates(t, p, "session_date", dayfirst, today)
    mod = normalise_modality(d["modality"], modality_map)
    p.add(t, (d["modality"].notna() & mod.isna()).to_numpy(), "modality", "unknown_modality",
          "unknown modality (map it with modality_map={...})", "one of " + ", ".join([*MODALITIES, UNTREATED]))
    out["modality"] = mod
    out["therapist_id"] = _ids(d["therapist_id"]) if "therapist_id" in d else None
    out["duration_min"] = (_check_number(t, p, "duration_min", 0, 600, "duration")
                           if "duration_min" in d else np.nan)
    return out


def _item_scores(t, p, inst, options):
    """Scores computed from item columns (odi_1..odi_10, rmdq_1..rmdq_24), NaN elsewhere."""
    d = t.data
    out = pd.Series(np.nan, index=d.index)
    for name, n_items in (("odi", 10), ("rmdq", 24)):
        cols = {int(m[2]): c for c in d.columns if (m := _ITEM_COL.match(c)) and m[1] == name}
        if not cols:
            continue
        items = pd.DataFrame({i: d[cols[i]] if i in cols else None for i in range(1, n_items + 1)})
        rows = (inst == name) & d.get("score", pd.Series(None, index=d.index)).isna() & items.notna().any(axis=1)
        if not rows.any():
            continue
        if name == "odi":
            num = items.apply(pd.to_numeric, errors="coerce")
            bad_item = ((num < 0) | (num > 5) | (items.notna() & num.isna())).any(axis=1)
            p.add(t, (rows & bad_item).to_numpy(), "odi items", "out_of_range",
                  "an Oswestry section is not scored 0-5", "each section 0-5 or blank",
                  values=items.apply(lambda r: ",".join("" if pd.isna(v) else str(v) for v in r), axis=1))
            sc = score_odi(num, max_missing=options["odi_max_missing"])
            unscored = rows & ~bad_item & sc.isna()
            p.add(t, unscored.to_numpy(), "odi items", "not_scorable",
                  f"more than {options['odi_max_missing']} Oswestry section(s) unanswered",
                  f"at most {options['odi_max_missing']} missing", values=items.notna().sum(axis=1))
        else:
            sc = score_rmdq(items, rescale=options["rmdq_rescale"], max_missing=options["rmdq_max_missing"])
            unscored = rows & sc.isna()
            p.add(t, unscored.to_numpy(), "rmdq items", "not_scorable",
                  "Roland-Morris items missing or not yes/no", "24 yes/no answers",
                  values=items.notna().sum(axis=1))
        out = out.where(~rows, sc)
    return out


def _validate_scores(t, p, dayfirst, today, instrument_map, options):
    d = t.data
    _check_required_values(t, p, ["patient_id", "instrument"])
    out = pd.DataFrame({"patient_id": _ids(d["patient_id"])})
    out["episode_id"] = _ids(d["episode_id"]) if "episode_id" in d else None
    out["date"] = _check_dates(t, p, "date", dayfirst, today)
    inst = normalise_instrument(d["instrument"], instrument_map)
    p.add(t, (d["instrument"].notna() & inst.isna()).to_numpy(), "instrument", "unknown_instrument",
          "unknown instrument (map it with instrument_map={...})", "one of " + ", ".join(INSTRUMENTS))
    out["instrument"] = inst
    raw = d["score"] if "score" in d else pd.Series(None, index=d.index, dtype=object)
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    items = _item_scores(t, p, inst, options)
    p.add(t, (raw.notna() & num.isna()).to_numpy(), "score", "not_a_number", "score is not a number",
          "a number", values=raw)
    code = pd.Categorical(inst, categories=list(INSTRUMENTS)).codes  # -1 where unknown
    has_item_cols = any(_ITEM_COL.match(c) for c in d.columns)
    has_items = items.notna().to_numpy() | (raw.isna().to_numpy() & np.isin(code, [2, 3]) & has_item_cols)
    p.add(t, raw.isna().to_numpy() & ~has_items, "score", "missing_value", "score is missing", "a number",
          values=raw)
    bounds = np.array([v[:2] for v in INSTRUMENTS.values()] + [(np.nan, np.nan)], float)
    low, high = bounds[code, 0], bounds[code, 1]  # code -1 picks the NaN row
    x = num.to_numpy()
    with np.errstate(invalid="ignore"):
        oor = ~np.isnan(x) & ((x < low) | (x > high))
    for j, k in enumerate(INSTRUMENTS):
        p.add(t, oor & (code == j), "score", "out_of_range", f"{k} score is out of range",
              f"{INSTRUMENTS[k][0]:g}-{INSTRUMENTS[k][1]:g} for {k}", values=raw)
    out["score"] = num.where(num.notna(), items)
    return out


def _link(t, p, frame, patients, episodes, date_col):
    """Check patient/episode links and assign episodes; return frame with episode_id."""
    bad = pd.Series(False, index=frame.index)
    if patients is not None:
        unknown = frame["patient_id"].notna() & ~_member(frame["patient_id"], patients)
        p.add(t, unknown.to_numpy(), "patient_id", "unknown_patient",
              "patient_id is not in the patients table", "an id listed in patients",
              values=frame["patient_id"])
        bad |= unknown
    if episodes is None:
        if frame["episode_id"].notna().any():
            frame["episode_id"] = frame["episode_id"].where(frame["episode_id"].notna(), frame["patient_id"])
        else:
            frame["episode_id"] = frame["patient_id"]
        return frame
    given = frame["episode_id"].notna()
    known = _member(frame["episode_id"], episodes.index)
    p.add(t, (given & ~known).to_numpy(), "episode_id", "unknown_episode",
          "episode_id is not in the episodes table", "an id listed in episodes",
          values=frame["episode_id"])
    owner = frame["episode_id"].map(episodes["patient_id"])
    wrong = given & known & (owner != frame["patient_id"])
    p.add(t, wrong.to_numpy(), "episode_id", "unknown_episode",
          "episode belongs to another patient", "an episode of this patient", values=frame["episode_id"])
    need = ~given & frame[date_col].notna() & frame["patient_id"].notna()
    if need.any():
        ep = episodes.reset_index()[["episode_id", "patient_id", "onset_date"]].dropna(subset=["onset_date"])
        left = frame.loc[need, ["patient_id", date_col]].reset_index().sort_values(date_col)
        right = ep.sort_values("onset_date")
        m = pd.merge_asof(left, right, left_on=date_col, right_on="onset_date", by="patient_id",
                          direction="backward")
        assigned = pd.Series(m["episode_id"].to_numpy(), index=m["index"].to_numpy())
        frame.loc[assigned.index, "episode_id"] = assigned
        unassigned = need & frame["episode_id"].isna()
        p.add(t, unassigned.to_numpy(), date_col, "no_episode",
              "no episode of this patient has an onset on or before this date (give episode_id)",
              "a date on or after the onset of one of the patient's episodes")
    onset = frame["episode_id"].map(episodes["onset_date"])
    before = (frame[date_col] < onset).fillna(False)
    p.add(t, (before & given).to_numpy(), date_col, "date_before_onset",
          "date is before the episode's onset_date", "a date on or after the onset")
    return frame


def _collect_sources(path, patients, episodes, sessions, scores):
    given = {"patients": patients, "episodes": episodes, "sessions": sessions, "scores": scores}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            for name in TABLES:
                if given[name] is not None:
                    continue
                hits = sorted(f for f in path.iterdir() if f.stem.lower() == name and f.suffix.lower() in _READERS)
                if hits:
                    given[name] = hits[0]
        elif path.is_file():
            given["scores"] = given["scores"] if given["scores"] is not None else path
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return given


def load_study(path=None, *, patients=None, episodes=None, sessions=None, scores=None,
               errors: str = "raise", dayfirst: bool | None = None, today=None,
               modality_map: dict | None = None, instrument_map: dict | None = None,
               odi_max_missing: int = 1, rmdq_rescale: bool = False, rmdq_max_missing: int = 0,
               no_sessions: str = "unknown"):
    """Load and validate a study.

    Parameters
    ----------
    path : str or Path, optional
        A directory holding ``patients``, ``episodes``, ``sessions`` and
        ``scores`` files (``.csv``, ``.parquet`` or ``.xlsx``; the table is the
        file stem), or a single scores file.
    patients, episodes, sessions, scores : path or DataFrame, optional
        Tables given one by one (they override files found in ``path``).
        Only ``scores`` is required.
    errors : {"raise", "exclude"}
        ``"raise"`` (default) raises one :class:`DataValidationError` listing
        every problem; ``"exclude"`` loads the valid rows, moves the others to
        ``study.exclusions`` with their reason and warns with the count.
    dayfirst : bool, optional
        Order of day and month in ``dd/mm/yyyy``-style dates. Without it such
        dates load only when unambiguous.
    today : date-like, optional
        Dates after this day are errors (default: today).
    modality_map, instrument_map : dict, optional
        Extra spellings, e.g. ``{"Hot stones": "other"}``.
    odi_max_missing : int
        Oswestry questionnaires with more unanswered sections are not scored.
    rmdq_rescale, rmdq_max_missing :
        Roland-Morris missing-item policy, see :func:`score_rmdq`.
    no_sessions : {"unknown", "untreated"}
        What an episode without treatment sessions means. ``"unknown"``
        (default): treatment was not recorded, so the episode is never counted
        as untreated. ``"untreated"``: declare that the sessions table is
        complete, so episodes without sessions were untreated. Episodes whose
        ``arm`` (episodes table) or a session's modality says "untreated",
        "none", "no treatment" or "natural course" are untreated either way.

    Returns
    -------
    Study

    Notes
    -----
    Missing-data policy: rows missing a required value are errors (or
    exclusions); optional columns may be blank. Exact duplicate rows are
    always excluded with reason ``duplicate``. Rows read = rows used + rows
    excluded, per table.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> study.episodes.shape[0] > 0
    True
    """
    from .study import Study

    check_choice(errors, "errors", ("raise", "exclude"))
    check_choice(no_sessions, "no_sessions", ("unknown", "untreated"))
    today = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    given = _collect_sources(path, patients, episodes, sessions, scores)
    if given["scores"] is None:
        raise FileNotFoundError("no scores table: the scores table is the only one that is required "
                                f"(looked in {path!s})" if path is not None else
                                "no scores table given: pass scores=... or a directory")
    p = _Problems()
    raw = {name: read_table(obj, name, p) for name, obj in given.items() if obj is not None}
    if p.fatal:
        raise DataValidationError(p.frame().drop(columns="_pos"), header="the input cannot be read")
    raw = {k: v for k, v in raw.items() if v is not None}
    dup_parts, clean = [], {}
    for name, t in raw.items():
        dup = t.data.duplicated(keep="first").to_numpy()
        if dup.any():
            group = t.data.groupby(list(t.data.columns), dropna=False, sort=False).ngroup().to_numpy()
            first_row = pd.Series(t.rows).groupby(group).transform("first").to_numpy()
            dup_parts.append(pd.DataFrame({
                "table": name, "source": t.source, "row": t.rows[dup], "column": "",
                "value": None, "reason": "duplicate",
                "message": ["exact duplicate of row " + str(r) for r in first_row[dup]],
                "expected": "", "_pos": np.flatnonzero(dup)}))
        keep = ~dup
        t.data, t.rows = t.data.loc[keep].reset_index(drop=True), t.rows[keep]
    options = {"odi_max_missing": odi_max_missing, "rmdq_rescale": rmdq_rescale,
               "rmdq_max_missing": rmdq_max_missing}
    if "patients" in raw:
        clean["patients"] = _validate_patients(raw["patients"], p)
    if "episodes" in raw:
        clean["episodes"] = _validate_episodes(raw["episodes"], p, dayfirst, today)
    if "sessions" in raw:
        clean["sessions"] = _validate_sessions(raw["sessions"], p, dayfirst, today, modality_map)
    clean["scores"] = _validate_scores(raw["scores"], p, dayfirst, today, instrument_map, options)

    def _bad_positions(name):
        f = p.frame()
        return set(f.loc[f["table"] == name, "_pos"].astype(int))

    patient_ids = None
    if "patients" in clean:
        ok = np.ones(len(clean["patients"]), bool)
        ok[list(_bad_positions("patients"))] = False
        patient_ids = pd.Index(clean["patients"].loc[ok, "patient_id"])
    episodes_ok = None
    if "episodes" in clean:
        e = clean["episodes"]
        if patient_ids is not None:
            unknown = e["patient_id"].notna() & ~_member(e["patient_id"], patient_ids)
            p.add(raw["episodes"], unknown.to_numpy(), "patient_id", "unknown_patient",
                  "patient_id is not in the patients table", "an id listed in patients",
                  values=e["patient_id"])
        ok = np.ones(len(e), bool)
        ok[list(_bad_positions("episodes"))] = False
        episodes_ok = e.loc[ok].set_index("episode_id")
    for name, date_col in (("sessions", "session_date"), ("scores", "date")):
        if name in clean:
            clean[name] = _link(raw[name], p, clean[name], patient_ids, episodes_ok, date_col)
    problems = p.frame()
    if errors == "raise" and len(problems):
        raise DataValidationError(problems.drop(columns="_pos"))
    excl_parts = list(dup_parts)
    used = {}
    for name, frame in clean.items():
        t = raw[name]
        mine = problems[problems["table"] == name]
        first = mine.groupby("_pos", sort=True).agg(
            column=("column", "first"), value=("value", "first"), reason=("reason", "first"),
            message=("message", lambda m: "; ".join(dict.fromkeys(m))))
        if len(first):
            pos = first.index.to_numpy(int)
            excl_parts.append(pd.DataFrame({
                "table": name, "source": t.source, "row": t.rows[pos], "column": first["column"].to_numpy(),
                "value": first["value"].to_numpy(), "reason": first["reason"].to_numpy(),
                "message": first["message"].to_numpy(), "expected": "", "_pos": pos}))
        ok = np.ones(len(frame), bool)
        ok[first.index.to_numpy(int)] = False
        used[name] = frame.loc[ok].assign(_source=t.source, _row=t.rows[ok]).reset_index(drop=True)
    cols = ["table", "source", "row", "column", "value", "reason", "message"]
    exclusions = (pd.concat(excl_parts, ignore_index=True)[cols] if excl_parts
                  else pd.DataFrame(columns=cols))
    exclusions["row"] = exclusions["row"].astype("Int64")
    exclusions = exclusions.sort_values(["table", "row"], kind="stable").reset_index(drop=True)
    if len(used["scores"]) == 0:
        raise DataValidationError(exclusions.assign(expected=""),
                                  header="no valid score rows remain after excluding the invalid ones")
    n_bad = int((exclusions["reason"] != "duplicate").sum())
    if n_bad:
        warnings.warn(f"{n_bad} invalid row(s) were excluded (see study.exclusions; "
                      f"reasons: {exclusions['reason'].value_counts().to_dict()})",
                      ExcludedRowsWarning, stacklevel=2)
    read_counts = {name: len(raw[name].data) + sum(len(d) for d in dup_parts if d["table"].iat[0] == name)
                   for name in raw}
    return Study(patients=used.get("patients"), episodes=used.get("episodes"),
                 sessions=used.get("sessions"), scores=used["scores"], exclusions=exclusions,
                 rows_read=read_counts, sources={k: raw[k].source for k in raw}, no_sessions=no_sessions)
