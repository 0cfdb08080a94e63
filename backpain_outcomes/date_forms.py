"""Forms of written dates: a time of day after a date, Excel serial day numbers, date and datetime cells.

A time of day after a date (``14/08/2024 10:15``, ``2024-08-14T10:15``, ``8/14/2024 10:15 AM``) is dropped:
the calendar day written is the date. A whole number of days from :data:`FIRST_SERIAL` (1 January 1990) to
one year after today, written as a number or as five digits of text (``45504``, ``45504.5``), is an Excel
serial date: days since :data:`EXCEL_EPOCH` (Excel's 1900 date system; a fraction, the time of day, is
dropped). :func:`read_forms` rewrites such values as ISO dates and says the form of each; the parsing itself
(and what these rules mean for a column) is in :mod:`backpain_outcomes.dates`, which uses these functions.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

import numpy as np
import pandas as pd

__all__ = ["WRITTEN", "SERIAL", "TIMED", "EXCEL_EPOCH", "FIRST_SERIAL", "TIME_OF_DAY", "SERIAL_TEXT", "wall_date",
           "last_serial", "serial_days", "forms_text", "serial_cell", "value_forms", "read_forms"]

#: Forms of :func:`read_forms`: a date as written, an Excel serial day number, a date followed by a time of day.
WRITTEN, SERIAL, TIMED = 0, 1, 2
#: Day 0 of Excel serial dates in the 1900 date system (so that day 60 is Excel's fictitious 29 February 1900).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: The first plausible serial day number: 1990-01-01 (32874 days after 1899-12-30).
FIRST_SERIAL = 32874
#: A time of day after a date (with an optional UTC offset).
TIME_OF_DAY = (r"(?:T|\s+)(?:(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
               r"|(?:0?[1-9]|1[0-2]):[0-5]\d(?::[0-5]\d)?\s*[ap]\.?m\.?)"
               r"(?:\s*(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d))?")
#: Five digits of text, with an optional fraction: a serial day number written as text.
SERIAL_TEXT = r"\d{5}(?:\.\d*)?"


def wall_date(value) -> np.datetime64 | None:
    """A date or datetime cell: its calendar date as written (an offset does not move it); NaT for a missing
    date, None when the value is not a date (numbers, booleans and times of day are not)."""
    if not isinstance(value, _dt.date | np.datetime64):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT:
        return np.datetime64("NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().to_datetime64().astype("datetime64[ns]")

# --------------------------------------------------------------------------------- times and serial numbers
def last_serial(today) -> int:
    """The last plausible serial day number: one year after today."""
    day = pd.Timestamp.today() if today is None else pd.Timestamp(today)
    return int((day.normalize() + pd.DateOffset(years=1) - EXCEL_EPOCH).days)


def serial_days(days: np.ndarray) -> np.ndarray:
    """ISO text of serial day numbers."""
    return (np.datetime64("1899-12-30", "D") + days.astype("timedelta64[D]")).astype(str).astype(object)


def forms_text(text: pd.Series, last: int) -> tuple[pd.Series, np.ndarray]:
    """Distinct strings (stripped) without a time of day, plausible serial day numbers as ISO dates; and the
    form of each (:data:`WRITTEN`, :data:`SERIAL`, :data:`TIMED`)."""
    form = np.full(len(text), WRITTEN, np.int64)
    out = None
    clock = np.flatnonzero(text.str.contains(":", regex=False).to_numpy(dtype=bool, na_value=False))
    if len(clock):  # only a value with a colon can hold a time of day
        dated = text.iloc[clock].str.extract(rf"^(.*\d){TIME_OF_DAY}$", flags=re.IGNORECASE)[0]
        timed = clock[dated.notna().to_numpy(bool)]
        if len(timed):
            out = text.to_numpy(object).copy()
            out[timed] = dated.dropna().to_numpy(object)
            form[timed] = TIMED
    serial = pd.Series(out if out is not None else text, dtype=text.dtype).str.fullmatch(SERIAL_TEXT).to_numpy(
        dtype=bool, na_value=False)
    if serial.any():
        out = text.to_numpy(object).copy() if out is None else out
        days = np.floor(out[serial].astype(float)).astype(np.int64)
        ok = (days >= FIRST_SERIAL) & (days <= last)
        idx = np.flatnonzero(serial)[ok]
        out[idx] = serial_days(days[ok])
        form[idx] = SERIAL
    return (text if out is None else pd.Series(out, index=text.index, dtype=text.dtype)), form


def serial_cell(value, last: int) -> np.datetime64 | None:
    """A number cell's date when it is a plausible serial day number, else None (booleans are not numbers)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    try:
        day = math.floor(value)
    except (ValueError, OverflowError):  # nan, infinity
        return None
    return np.datetime64(serial_days(np.array([day]))[0], "ns") if FIRST_SERIAL <= day <= last else None


def _has_time(value) -> bool:
    if not isinstance(value, _dt.datetime | np.datetime64):
        return False
    ts = pd.Timestamp(value)
    return ts is not pd.NaT and ts != ts.normalize()


def value_forms(uniq: pd.Series, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values as :func:`read_forms` writes them, and the form of each."""
    out = uniq.to_numpy(object).copy()
    form = np.zeros(len(out), np.int64)
    is_text = np.array([isinstance(v, str) for v in out], bool)
    if is_text.any():
        text, f = forms_text(pd.Series(out[is_text], dtype="str").str.strip(), last)
        idx = np.flatnonzero(is_text)
        out[idx[f > 0]] = text.to_numpy(object)[f > 0]
        form[idx] = f
    for i in np.flatnonzero(~is_text):
        day = serial_cell(out[i], last)
        if day is not None:
            out[i], form[i] = str(day.astype("datetime64[D]")), SERIAL
        elif _has_time(out[i]) and (wall := wall_date(out[i])) is not None:  # a datetime: never None here
            out[i], form[i] = str(wall.astype("datetime64[D]")), TIMED
    return out, form


def read_forms(values: pd.Series, today=None) -> tuple[pd.Series, np.ndarray]:
    """Dates without their time of day and serial day numbers as ISO dates; and the form of every value.

    Other values are returned as they are, for :func:`parse_dates` to read or
    refuse; a column of datetime64 values is returned unchanged.

    Parameters
    ----------
    values : Series
        Strings, numbers, dates/datetimes or missing values.
    today : date-like, optional
        Serial day numbers after one year from ``today`` (default: the clock)
        are not dates.

    Returns
    -------
    values : Series of objects (the values to parse)
    form : ndarray of int, one per value: :data:`WRITTEN` (0), :data:`SERIAL` (1) or :data:`TIMED` (2)

    Examples
    --------
    >>> import pandas as pd
    >>> out, form = read_forms(pd.Series(["45504", "14/08/2024 10:15", "2024-08-21", 45511.75, "1234"]))
    >>> out.tolist(), form.tolist()
    (['2024-07-31', '14/08/2024', '2024-08-21', '2024-08-07', '1234'], [1, 2, 0, 1, 0])
    """
    values = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        wall = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return values, np.where((wall.notna() & (wall != wall.dt.normalize())).to_numpy(bool), TIMED, WRITTEN)
    codes, uniq = pd.factorize(values)  # each distinct value read once
    written, form = value_forms(pd.Series(uniq, dtype=object), last_serial(today))
    rows = np.append(form, WRITTEN)[codes]
    new = pd.Series(np.append(written, np.array([None], dtype=object))[codes], index=values.index, dtype=object)
    return values.astype(object).mask(rows > 0, new), rows
