"""Visit exports before splitting: treatment labels, dates as record systems write them, and episodes.

Helpers of :func:`~backpain_outcomes.visits.load_visits`, each returning the
cleaned column and a plain sentence for ``study.notes`` saying what was done:

- :func:`clean_treatments`: labels are compared in Unicode compatibility
  form (NFKC: a full-width ``ＳＷＥＤＩＳＨ`` is ``SWEDISH``, a no-break space
  a space), without zero-width characters and with single spaces; a
  missing-value mark (``N/A``, ``-``, ``unknown``, ...; see
  :data:`~backpain_outcomes.validation.MISSING_MARKS`) that the vocabulary
  and the user's labels do not name is read as blank, so the visit is not a
  session (``none`` and ``No treatment`` still say untreated).
- :func:`clean_ids`: patient and episode ids lose zero-width characters and
  are read in compatibility form (``p1`` followed by a zero-width space, as
  pasted from a web page, is ``p1``; full-width ``ｐ１`` is ``p1``), so one
  patient does not become two.
- :func:`prepare_dates`: a time of day after a date (``14/08/2024 10:15``,
  ``2024-08-21T09:30``) is dropped; a whole number of days from 32874
  (1990-01-01) to one year after today (as text or a number) is an Excel
  serial date, counted from 1899-12-30 (Excel's 1900 date system; 45504 is
  2024-07-31). Both are read by :func:`~backpain_outcomes.dates.read_forms`,
  the rules :func:`~backpain_outcomes.load_study` applies. A workbook in the
  1904 date system (older Excel for Mac) counts from 1904-01-01, so its
  dates would be read 1,462 days too early; the note says which epoch was
  assumed, and ``excel_serial=False`` leaves such numbers as written here
  (:func:`~backpain_outcomes.load_study` still reads a plausible serial
  number, and its notes say so).
- :func:`episodes_by_gap` and :func:`episode_note`: without an episode
  column or an episodes table each patient's visits are one episode; a gap
  longer than :data:`LONG_GAP_DAYS` is pointed out, and ``episode_gap``
  starts a new episode after a longer gap (de Vet et al. 2002 separate
  episodes of low back pain by at least a month without pain; a visit gap is
  the export's only trace of that).

References
----------
de Vet HCW, Heymans MW, Dunn KM, et al. Episodes of low back pain: a proposal
for uniform definitions to be used in research. Spine 2002;27(21):2409-16.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from .dates import SERIAL, TIMED, WRITTEN, read_forms
from .validation import MISSING_MARKS
from .vocabulary import normalise_modality

__all__ = ["LONG_GAP_DAYS", "clean_ids", "clean_treatments", "prepare_dates", "episodes_by_gap", "episode_note"]

#: Days between two visits of one patient above which the notes point out that they may be two episodes.
LONG_GAP_DAYS = 90
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")


def _lines(lines: np.ndarray, shown: int = 8) -> str:
    head = ", ".join(str(int(v)) for v in lines[:shown])
    return f"line{'s' if len(lines) > 1 else ''} {head}{', ...' if len(lines) > shown else ''}"


def _clean(value):
    if not isinstance(value, str):
        return value
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", value))
    return re.sub(r"\s+", " ", text).strip() or None


def clean_ids(values: pd.Series, lines: np.ndarray, header: str) -> tuple[pd.Series, str]:
    """Ids without zero-width characters, in compatibility form; and a note on the ids changed (none: "")."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return values, ""
    codes, uniq = pd.factorize(values)
    clean = [_clean(u) for u in uniq]
    changed = np.append(np.array([c != u for c, u in zip(clean, uniq)], bool), False)[codes]
    if not changed.any():
        return values, ""
    out = pd.Series(np.array(clean + [None], dtype=object)[codes], index=values.index, dtype=object)
    return out.where(codes >= 0, None), (f"{int(changed.sum())} id(s) of {header!r} held invisible or full-width "
                                         f"characters, removed or read in compatibility form: {_lines(lines[changed])}")


def clean_treatments(values: pd.Series, lines: np.ndarray, header: str, user_map: dict) -> tuple[pd.Series, str]:
    """Treatment labels in compatibility form; missing-value marks as blank; and a note on the marks.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> out, note = clean_treatments(pd.Series(["Deep\\u00a0tissue", "N/A", "none"]), np.array([2, 3, 4]), "Tx", {})
    >>> out.tolist(), note
    (['Deep tissue', None, 'none'], "1 value(s) of 'Tx' are missing-value marks ('N/A'), read as blank: line 3")
    """
    codes, uniq = pd.factorize(values)
    clean = [_clean(u) for u in uniq]
    known = normalise_modality(pd.Series(clean, dtype=object), user_map or None).notna().to_numpy() if clean else []
    user = {str(k).strip().lower() for k in (user_map or {})}
    mark = [isinstance(c, str) and c.lower() in MISSING_MARKS and not k and c.lower() not in user
            for c, k in zip(clean, known)]
    table = np.array([None if m else c for c, m in zip(clean, mark)] + [None], dtype=object)
    out = pd.Series(table[codes], index=values.index, dtype=object)
    hit = np.append(np.array(mark, bool), False)[codes]
    if not hit.any():
        return out, ""
    shown = ", ".join(repr(u) for u, m in zip(uniq, mark) if m)
    return out, (f"{int(hit.sum())} value(s) of {header!r} are missing-value marks ({shown}), read as blank: "
                 f"{_lines(lines[hit])}")


def prepare_dates(values: pd.Series, lines: np.ndarray, where: str,
                  excel_serial: bool = True) -> tuple[pd.Series, list[str]]:
    """Dates without their time of day, Excel serial day numbers as ISO dates; and notes saying so.

    The forms are those of :func:`~backpain_outcomes.dates.read_forms` (one implementation with
    :func:`~backpain_outcomes.load_study`): a whole number of days from 32874 (1990-01-01) to one year after
    today is read as days since 1899-12-30, Excel's 1900 date system (the one of Excel for Windows and of
    current Excel for Mac); other numbers stay as written. A workbook saved in the 1904 date system counts
    from 1904-01-01: its dates are 1,462 days later than read here. The note names the epoch assumed;
    ``excel_serial=False`` leaves such numbers as written (the loader still reads a plausible serial number
    and says so in its notes).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> out, notes = prepare_dates(pd.Series(["45504", "14/08/2024 10:15", "2024-08-21"]), np.array([2, 3, 4]), "d")
    >>> out.tolist()
    ['2024-07-31', '14/08/2024', '2024-08-21']
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values, []
    out, kind = read_forms(values)   # each distinct value read once
    if not excel_serial:
        out = out.mask(kind == SERIAL, values.astype(object))
        kind = np.where(kind == SERIAL, WRITTEN, kind)
    if not kind.any():
        return values, []
    serial, timed = kind == SERIAL, kind == TIMED
    notes = []
    if serial.any():
        notes.append(f"{int(serial.sum())} date(s) of {where} read as Excel serial day numbers ({_lines(lines[serial])};"
                     " days since 1899-12-30, Excel's 1900 date system; a workbook in the 1904 date system "
                     "would give dates 1,462 days later)")
    if timed.any():
        notes.append(f"{int(timed.sum())} date(s) of {where} hold a time of day: times of day dropped "
                     f"({_lines(lines[timed])})")
    return out, notes


def _days(iso: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(iso):
        return iso.dt.tz_localize(None).dt.normalize() if iso.dt.tz is not None else iso.dt.normalize()
    return pd.to_datetime(iso.where(iso.map(lambda v: isinstance(v, str))), format="%Y-%m-%d", errors="coerce")


def episodes_by_gap(patients: pd.Series, iso: pd.Series, gap: float) -> pd.Series:
    """Episode ids ``patient/1``, ``patient/2``, ...: a new episode after more than ``gap`` days without a visit.
    Rows without a readable date join their patient's episode before them in date order (the loader excludes
    them)."""
    frame = pd.DataFrame({"p": patients.astype(str).to_numpy(), "d": _days(iso).to_numpy()})
    order = frame.sort_values(["p", "d"], kind="stable", na_position="last")
    step = order.groupby("p")["d"].diff().dt.days.gt(gap)
    number = step.astype(int).groupby(order["p"]).cumsum() + 1
    ids = order["p"] + "/" + number.astype(str)
    out = pd.Series(ids.reindex(frame.index).to_numpy(object), index=patients.index, dtype=object)
    return out.where(patients.notna().to_numpy(), None)


def episode_note(patients: pd.Series, iso: pd.Series, lines: np.ndarray, gap: float | None) -> list[str]:
    """How episodes were formed from the visits, and the patients whose visits are far apart."""
    if gap is not None:
        return [f"episodes: a new episode starts after more than {gap:g} days without a visit (episode_gap); "
                "episodes are named patient/1, patient/2, ... in date order"]
    notes = ["episodes: without an episode column or an episodes table, each patient's visits are one episode "
             "(episode_id = patient id) whose onset is unknown; analyse with origin='first_contact'"]
    frame = pd.DataFrame({"p": patients.astype(str).to_numpy(), "d": _days(iso).to_numpy(), "line": lines})
    frame = frame.loc[frame["d"].notna() & patients.notna().to_numpy()].sort_values(["p", "d"], kind="stable")
    gaps = frame.groupby("p")["d"].diff().dt.days
    far = frame.assign(gap=gaps, before=frame.groupby("p")["line"].shift()).loc[gaps > LONG_GAP_DAYS]
    if len(far):
        widest = far.sort_values("gap", ascending=False, kind="stable").drop_duplicates("p")
        shown = "; ".join(f"{r.p}: {int(r.gap)} days, lines {int(r.before)} and {int(r.line)}"
                          for r in widest.head(5).itertuples())
        notes.append(f"{widest['p'].nunique()} patient(s) have visits more than {LONG_GAP_DAYS} days apart ({shown}"
                     f"{'; ...' if len(widest) > 5 else ''}): they may be several episodes; give episode= (a column), "
                     "an episodes table, or episode_gap= (days) to split them")
    return notes
