"""Date parsing that never guesses and keeps the calendar date as written.

ISO 8601 dates (``2024-03-04``, with or without a time and a UTC offset) are
read as the date written: ``2024-03-04T23:30-05:00`` is 4 March, not 5 March in
UTC. Day/month/year numeric dates are accepted only when unambiguous
(``25/03/2024``) or when the caller states the order with ``dayfirst=``;
``03/04/2024`` without it is reported as ambiguous, and so is a two-digit year.
Dates with a month name (``4 Mar 2024``) are unambiguous and accepted. Date
and datetime cells of a workbook or a DataFrame keep their wall-clock date.

Each distinct value is parsed once, and the text patterns are matched on all of
them at once, so a million dates cost about as much as their distinct values.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

__all__ = ["parse_dates", "OK", "BAD", "AMBIGUOUS"]

#: Status codes of :func:`parse_dates`.
OK, BAD, AMBIGUOUS = 0, 1, 2

_ISO = (r"(\d{4})-(\d{2})-(\d{2})(?:[ T]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:[.,]\d+)?)?)?"
        r"(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)?")
_YMD = r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})"
_DMY = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
_MONTH = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
_NAMED = ["%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y",
          "%d-%b-%Y", "%d-%B-%Y", "%d %b, %Y", "%a %d %b %Y"]


def _build(year, month, day) -> np.ndarray:
    """datetime64[ns] from integer arrays (NaT where the date does not exist)."""
    if not len(year):
        return np.zeros(0, "datetime64[ns]")
    parts = pd.DataFrame({"year": year, "month": month, "day": day}).astype("int64")
    return pd.to_datetime(parts, errors="coerce").to_numpy("datetime64[ns]")


def _ints(frame: pd.DataFrame, col: int) -> np.ndarray:
    return frame[col].astype("int64").to_numpy()


def _parse_text(text: pd.Series, dayfirst: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Parse distinct strings (already stripped, none empty)."""
    n = len(text)
    out = np.full(n, np.datetime64("NaT"), "datetime64[ns]")
    status = np.full(n, BAD, np.int64)
    for pattern, kind in ((_ISO, "iso"), (_YMD, "ymd"), (_DMY, "dmy")):
        hit = text.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)
        if not hit.any():
            continue
        idx = np.flatnonzero(hit)
        g = text.iloc[idx].str.extract(_ISO[:_ISO.index(r"(?:[ T]")] if kind == "iso" else f"^{pattern}$")
        if kind == "dmy":
            d, st = _day_month(_ints(g, 0), _ints(g, 1), g[2].astype(str).to_numpy(), dayfirst)
        else:
            d = _build(_ints(g, 0), _ints(g, 1), _ints(g, 2))
            st = np.where(np.isnat(d), BAD, OK)
        out[idx], status[idx] = d, st
    named = (status == BAD) & text.str.contains(_MONTH).to_numpy(dtype=bool, na_value=False)
    for i in np.flatnonzero(named):
        out[i], status[i] = _named(text.iat[i])
    return out, status


def _day_month(a: np.ndarray, b: np.ndarray, year: np.ndarray, dayfirst: bool | None):
    """Day/month/year with the order stated, or told by a number above 12."""
    two_digit = np.char.str_len(year.astype(str)) == 2
    y = np.where(two_digit, 2000, year.astype(np.int64))
    if dayfirst is None:
        day = np.where(a > 12, a, np.where(b > 12, b, a))
        month = np.where(a > 12, b, np.where(b > 12, a, b))
        ambiguous = (a <= 12) & (b <= 12) & (a != b)
    else:
        day, month = (a, b) if dayfirst else (b, a)
        ambiguous = np.zeros(len(a), bool)
    d = _build(y, month, day)
    st = np.where(np.isnat(d), BAD, OK)
    st = np.where(two_digit | ambiguous, AMBIGUOUS, st)
    d = np.where(st == OK, d, np.datetime64("NaT"))
    return d, st


def _named(text: str) -> tuple[np.datetime64, int]:
    for fmt in _NAMED:
        try:
            return np.datetime64(_dt.datetime.strptime(text, fmt), "ns"), OK
        except ValueError:
            continue
    return np.datetime64("NaT"), BAD


def _wall_date(value) -> tuple[np.datetime64, int]:
    """A date or datetime cell: its calendar date as written (an offset does not move it)."""
    if not isinstance(value, _dt.date | np.datetime64):  # numbers, booleans, times of day are not dates
        return np.datetime64("NaT"), BAD
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return np.datetime64("NaT"), BAD
    if ts is pd.NaT:
        return np.datetime64("NaT"), OK
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().to_datetime64().astype("datetime64[ns]"), OK


def parse_dates(values: pd.Series, dayfirst: bool | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse a column of dates without guessing.

    Parameters
    ----------
    values : Series
        Strings, dates/datetimes or missing values.
    dayfirst : bool or None
        Order of ``dd/mm/yyyy`` style dates. ``None`` accepts only dates whose
        order is unambiguous.

    Returns
    -------
    parsed : Series of datetime64 (NaT where missing or not parsed)
    status : Series of int: 0 parsed or missing, 1 not a date, 2 ambiguous

    Examples
    --------
    >>> import pandas as pd
    >>> parsed, status = parse_dates(pd.Series(["2024-03-04", "25/03/2024", "03/04/2024",
    ...                                         "2024-03-04T23:30:00-05:00"]))
    >>> status.tolist()
    [0, 0, 2, 0]
    >>> parsed.dt.strftime("%Y-%m-%d").tolist()[3]
    '2024-03-04'
    """
    values = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return parsed.dt.normalize().astype("datetime64[ns]"), pd.Series(0, index=values.index)
    codes, uniq = pd.factorize(values)  # parse each distinct value once
    uniq = pd.Series(uniq)
    ts = np.full(len(uniq) + 1, np.datetime64("NaT"), "datetime64[ns]")  # the last entry: missing values
    st = np.zeros(len(uniq) + 1, np.int64)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool) if uniq.dtype == object else np.full(
        len(uniq), pd.api.types.is_string_dtype(uniq))
    if is_text.any():
        text = uniq[is_text].astype("str").str.strip()
        empty = (text == "").to_numpy(bool)
        idx = np.flatnonzero(is_text)
        d, s = _parse_text(text[~empty].reset_index(drop=True), dayfirst)
        ts[idx[~empty]], st[idx[~empty]] = d, s
    for i in np.flatnonzero(~is_text):
        ts[i], st[i] = _wall_date(uniq.iat[i])
    return (pd.Series(ts[codes], index=values.index, dtype="datetime64[ns]"),
            pd.Series(st[codes], index=values.index, dtype=np.int64))
