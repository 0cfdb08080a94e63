"""Date parsing that never guesses.

ISO 8601 dates (``2024-03-04``, with or without a time) are read directly.
Day/month/year numeric dates are accepted only when unambiguous (``25/03/2024``)
or when the caller states the order with ``dayfirst=``; ``03/04/2024`` without
it is reported as ambiguous. Dates with a month name (``4 Mar 2024``) are
unambiguous and accepted.
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
import pandas as pd

__all__ = ["parse_dates"]

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_YMD_SLASH = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_NAMED = ["%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y",
          "%d-%b-%Y", "%d-%B-%Y", "%d %b, %Y", "%a %d %b %Y"]

OK, BAD, AMBIGUOUS = 0, 1, 2


def _one(value: object, dayfirst: bool | None) -> tuple[object, int]:
    """Parse one value; return (Timestamp or NaT, status)."""
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date, np.datetime64)):
        ts = pd.Timestamp(value)
        return (ts.tz_localize(None) if ts.tzinfo else ts).normalize(), OK
    s = str(value).strip()
    if _ISO.match(s):
        try:
            ts = pd.Timestamp(s)
            return (ts.tz_convert(None) if ts.tzinfo else ts).normalize(), OK
        except ValueError:
            return pd.NaT, BAD
    m = _YMD_SLASH.match(s)
    if m:
        return _safe(int(m[1]), int(m[2]), int(m[3]))
    m = _DMY.match(s)
    if m:
        a, b, y = int(m[1]), int(m[2]), m[3]
        if len(y) == 2:
            return pd.NaT, AMBIGUOUS  # century unknown
        year = int(y)
        if dayfirst is None:
            if a > 12 >= b:
                return _safe(year, b, a)
            if b > 12 >= a:
                return _safe(year, a, b)
            if a == b:
                return _safe(year, a, b)
            if a <= 12 and b <= 12:
                return pd.NaT, AMBIGUOUS
            return pd.NaT, BAD
        return _safe(year, b, a) if dayfirst else _safe(year, a, b)
    if re.search(r"[A-Za-z]", s):
        for fmt in _NAMED:
            try:
                return pd.Timestamp(_dt.datetime.strptime(s, fmt)), OK
            except ValueError:
                continue
    return pd.NaT, BAD


def _safe(year: int, month: int, day: int) -> tuple[object, int]:
    try:
        return pd.Timestamp(year=year, month=month, day=day), OK
    except ValueError:
        return pd.NaT, BAD


def parse_dates(values: pd.Series, dayfirst: bool | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse a column of dates without guessing.

    Parameters
    ----------
    values : Series
        Strings, datetimes or missing values.
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
    >>> parsed, status = parse_dates(pd.Series(["2024-03-04", "25/03/2024", "03/04/2024"]))
    >>> status.tolist()
    [0, 0, 2]
    """
    values = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return parsed.dt.normalize().astype("datetime64[ns]"), pd.Series(0, index=values.index)
    codes, uniq = pd.factorize(values)  # parse each distinct value once
    table = [(pd.NaT, 0) if isinstance(u, str) and not u.strip() else _one(u, dayfirst) for u in uniq]
    ts = pd.to_datetime(pd.Series([t[0] for t in table] + [pd.NaT], dtype=object)).to_numpy("datetime64[ns]")
    st = np.array([t[1] for t in table] + [0], dtype=int)
    parsed = pd.Series(ts[codes], index=values.index)  # code -1 (missing) picks the trailing NaT / 0
    status = pd.Series(st[codes], index=values.index)
    return parsed, status.astype(int)
