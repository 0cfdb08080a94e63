"""Date parsing that never guesses and keeps the calendar date as written.

ISO 8601 dates (``2024-03-04``, with or without a time and a UTC offset) are
read as the date written: ``2024-03-04T23:30-05:00`` is 4 March, not 5 March in
UTC. Dates with a month name (``4 Mar 2024``) are unambiguous and accepted.
Date and datetime cells of a workbook or a DataFrame keep their wall-clock
date.

Day/month/year numeric dates are read in the order the caller states with
``dayfirst=``. Without it, the column decides: when some of its dates can
only be read one way (``14/07/2024`` has a day above 12 in first place) and
none can only be read the other way, every date of the column is read in that
order (:func:`date_order` says which, :func:`order_note` says so in plain
words). A column whose dates are all readable both ways (``03/04/2024``), or
that holds dates proving each order, leaves those dates ambiguous: they are
refused, never guessed. A two-digit year is ambiguous (its century).

A time of day after a date (``14/08/2024 10:15``, ``2024-08-14 10:15:00``,
``2024-08-14T10:15``, ``8/14/2024 10:15 AM``) is dropped: the calendar day
written is the date, as for an offset; the date before it follows the rules
above. A whole number of days from :data:`FIRST_SERIAL` (1 January 1990) to
one year after today, written as a number or as five digits of text
(``45504``, ``45504.5``), is an Excel serial date: days since 1899-12-30
(Excel's 1900 date system; ``45504`` is 31 July 2024 and a fraction, the
time of day, is dropped). Other numbers are not dates. A workbook saved in
the 1904 date system counts from 1904-01-01, so its dates would be 1,462
days later than read here; :func:`forms_note` says how many values of a
column were read as serial numbers or with a time, and states this
assumption.

Each distinct value is parsed once, and the text patterns are matched on all of
them at once, so a million dates cost about as much as their distinct values.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["parse_dates", "date_order", "order_note", "DateOrder", "OK", "BAD", "AMBIGUOUS", "read_forms",
           "forms_note", "WRITTEN", "SERIAL", "TIMED", "EXCEL_EPOCH", "FIRST_SERIAL"]

#: Status codes of :func:`parse_dates`.
OK, BAD, AMBIGUOUS = 0, 1, 2
#: Forms of :func:`read_forms`: a date as written, an Excel serial day number, a date followed by a time of day.
WRITTEN, SERIAL, TIMED = 0, 1, 2
#: Day 0 of Excel serial dates in the 1900 date system (so that day 60 is Excel's fictitious 29 February 1900).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: The first plausible serial day number: 1990-01-01 (32874 days after 1899-12-30).
FIRST_SERIAL = 32874

_ISO = (r"(\d{4})-(\d{2})-(\d{2})(?:[ T]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:[.,]\d+)?)?)?"
        r"(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)?")
_YMD = r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})"
_DMY = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
_MONTH = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
_TIME_OF_DAY = (r"(?:T|\s+)(?:(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
                r"|(?:0?[1-9]|1[0-2]):[0-5]\d(?::[0-5]\d)?\s*[ap]\.?m\.?)"
                r"(?:\s*(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d))?")
_SERIAL = r"\d{5}(?:\.\d*)?"
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


def _years(year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(year as a number, written with two digits); a two-digit year is placed in 2000 for checking only."""
    two_digit = np.char.str_len(year.astype(str)) == 2
    return np.where(two_digit, 2000, year.astype(np.int64)), two_digit


def _proof(a: np.ndarray, b: np.ndarray, y: np.ndarray, two_digit: np.ndarray):
    """(only day first, only month first, both ways) for numeric ``a/b/year`` dates: a value proves an
    order when it is a real date read that way, its other number is above 12 and its year has four digits
    (a date refused for its century proves nothing)."""
    as_day_first = ~np.isnat(_build(y, b, a))
    as_month_first = ~np.isnat(_build(y, a, b))
    both = as_day_first & as_month_first & (a != b)
    return as_day_first & (a > 12) & ~two_digit, as_month_first & (b > 12) & ~two_digit, both


def _proven(day_first: np.ndarray, month_first: np.ndarray) -> bool | None:
    if day_first.any() and not month_first.any():
        return True
    if month_first.any() and not day_first.any():
        return False
    return None


def _day_month(a: np.ndarray, b: np.ndarray, year: np.ndarray, dayfirst: bool | None):
    """Day/month/year in the order stated, else the order the values prove, else only unambiguous values."""
    y, two_digit = _years(year)
    if dayfirst is None:
        dayfirst = _proven(*_proof(a, b, y, two_digit)[:2])
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

# --------------------------------------------------------------------------------- times and serial numbers
def _last_serial(today) -> int:
    """The last plausible serial day number: one year after today."""
    day = pd.Timestamp.today() if today is None else pd.Timestamp(today)
    return int((day.normalize() + pd.DateOffset(years=1) - EXCEL_EPOCH).days)


def _serial_days(days: np.ndarray) -> np.ndarray:
    """ISO text of serial day numbers."""
    return (np.datetime64("1899-12-30", "D") + days.astype("timedelta64[D]")).astype(str).astype(object)


def _forms_text(text: pd.Series, last: int) -> tuple[pd.Series, np.ndarray]:
    """Distinct strings (stripped) without a time of day, plausible serial day numbers as ISO dates; and the
    form of each (:data:`WRITTEN`, :data:`SERIAL`, :data:`TIMED`)."""
    form = np.full(len(text), WRITTEN, np.int64)
    out = None
    clock = np.flatnonzero(text.str.contains(":", regex=False).to_numpy(dtype=bool, na_value=False))
    if len(clock):  # only a value with a colon can hold a time of day
        dated = text.iloc[clock].str.extract(rf"^(.*\d){_TIME_OF_DAY}$", flags=re.IGNORECASE)[0]
        timed = clock[dated.notna().to_numpy(bool)]
        if len(timed):
            out = text.to_numpy(object).copy()
            out[timed] = dated.dropna().to_numpy(object)
            form[timed] = TIMED
    serial = pd.Series(out if out is not None else text, dtype=text.dtype).str.fullmatch(_SERIAL).to_numpy(
        dtype=bool, na_value=False)
    if serial.any():
        out = text.to_numpy(object).copy() if out is None else out
        days = np.floor(out[serial].astype(float)).astype(np.int64)
        ok = (days >= FIRST_SERIAL) & (days <= last)
        idx = np.flatnonzero(serial)[ok]
        out[idx] = _serial_days(days[ok])
        form[idx] = SERIAL
    return (text if out is None else pd.Series(out, index=text.index, dtype=text.dtype)), form


def _serial_cell(value, last: int) -> np.datetime64 | None:
    """A number cell's date when it is a plausible serial day number, else None (booleans are not numbers)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    try:
        day = math.floor(value)
    except (ValueError, OverflowError):  # nan, infinity
        return None
    return np.datetime64(_serial_days(np.array([day]))[0], "ns") if FIRST_SERIAL <= day <= last else None


def _has_time(value) -> bool:
    if not isinstance(value, _dt.datetime | np.datetime64):
        return False
    ts = pd.Timestamp(value)
    return ts is not pd.NaT and ts != ts.normalize()


def _forms(uniq: pd.Series, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values as :func:`read_forms` writes them, and the form of each."""
    out = uniq.to_numpy(object).copy()
    form = np.zeros(len(out), np.int64)
    is_text = np.array([isinstance(v, str) for v in out], bool)
    if is_text.any():
        text, f = _forms_text(pd.Series(out[is_text], dtype="str").str.strip(), last)
        idx = np.flatnonzero(is_text)
        out[idx[f > 0]] = text.to_numpy(object)[f > 0]
        form[idx] = f
    for i in np.flatnonzero(~is_text):
        day = _serial_cell(out[i], last)
        if day is not None:
            out[i], form[i] = str(day.astype("datetime64[D]")), SERIAL
        elif _has_time(out[i]):
            out[i], form[i] = str(_wall_date(out[i])[0].astype("datetime64[D]")), TIMED
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
    written, form = _forms(pd.Series(uniq, dtype=object), _last_serial(today))
    rows = np.append(form, WRITTEN)[codes]
    new = pd.Series(np.append(written, None)[codes], index=values.index, dtype=object)
    return values.astype(object).mask(rows > 0, new), rows


def forms_note(values: pd.Series, where: str, today=None) -> str | None:
    """A plain sentence on the values of a column read as serial day numbers or with a time of day (None: none).

    Examples
    --------
    >>> import pandas as pd
    >>> forms_note(pd.Series(["45504", "2024-08-01", "2024-08-02 10:15"]), "scores.date")[:84]
    'scores.date: 1 value(s) read as Excel serial day numbers, such as 45504 = 2024-07-31'
    """
    values = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        codes, uniq = np.arange(len(values)), values.reset_index(drop=True)
        form_u = read_forms(values, today)[1]
        written = uniq
    else:  # the forms of the distinct values only, counted over the rows (no copy of the column)
        codes, uniq = pd.factorize(values)
        written, form_u = _forms(pd.Series(uniq, dtype=object), _last_serial(today))
    count = np.bincount(codes[codes >= 0], minlength=len(uniq))
    parts = []
    n_serial, n_timed = int(count[form_u == SERIAL].sum()), int(count[form_u == TIMED].sum())
    if n_serial:
        first = np.flatnonzero(form_u == SERIAL)[0]  # distinct values are in order of first appearance
        parts.append(f"{n_serial} value(s) read as Excel serial day numbers, such as "
                     f"{uniq[first]} = {written[first]}: days since 1899-12-30 (Excel's 1900 date "
                     "system; a workbook in the 1904 date system would give dates 1,462 days later)")
        serial = np.append(form_u, WRITTEN)[codes] == SERIAL
        rest = values[~serial]
        status = parse_dates(rest, today=today)[1].to_numpy()
        present = rest.notna().to_numpy(bool) & ~rest.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(bool)
        dated = present & (status != BAD)
        if dated.any():
            parts.append(f"the column mixes them with {int(dated.sum())} date(s) written as dates, such as "
                         f"{rest[dated].iloc[0]}; both kinds are read")
    if n_timed:
        parts.append(f"{n_timed} date(s) followed by a time of day, such as {uniq[np.flatnonzero(form_u == TIMED)[0]]}: the "
                     "time is dropped (the calendar day written is the date)")
    return f"{where}: " + "; ".join(parts) if parts else None


def parse_dates(values: pd.Series, dayfirst: bool | None = None, today=None) -> tuple[pd.Series, pd.Series]:
    """Parse a column of dates without guessing.

    Parameters
    ----------
    values : Series
        Strings, dates/datetimes or missing values.
    dayfirst : bool or None
        Order of ``dd/mm/yyyy`` style dates. ``None``: the order the column's
        own dates prove (see :func:`date_order`); when they prove none, only
        dates that can be read one way are accepted.
    today : date-like, optional
        Serial day numbers after one year from ``today`` (default: the clock)
        are not dates.

    Returns
    -------
    parsed : Series of datetime64 (NaT where missing or not parsed)
    status : Series of int: 0 parsed or missing, 1 not a date, 2 ambiguous

    Examples
    --------
    >>> import pandas as pd
    >>> parsed, status = parse_dates(pd.Series(["2024-03-04", "03/04/2024", "2024-03-04T23:30:00-05:00"]))
    >>> status.tolist()
    [0, 2, 0]
    >>> parsed.dt.strftime("%Y-%m-%d").tolist()[2]
    '2024-03-04'
    >>> parsed, status = parse_dates(pd.Series(["03/04/2024", "25/03/2024"]))  # 25/03 proves day first
    >>> parsed.dt.strftime("%Y-%m-%d").tolist(), status.tolist()
    (['2024-04-03', '2024-03-25'], [0, 0])
    >>> parsed, status = parse_dates(pd.Series(["14/08/2024 10:15", "45504", 45504, "12345"]))
    >>> parsed.dt.strftime("%Y-%m-%d").tolist()[:3], status.tolist()
    (['2024-08-14', '2024-07-31', '2024-07-31'], [0, 0, 0, 1])
    """
    values = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return parsed.dt.normalize().astype("datetime64[ns]"), pd.Series(0, index=values.index)
    codes, uniq = pd.factorize(values)  # parse each distinct value once
    uniq = pd.Series(uniq)
    last = _last_serial(today)
    ts = np.full(len(uniq) + 1, np.datetime64("NaT"), "datetime64[ns]")  # the last entry: missing values
    st = np.zeros(len(uniq) + 1, np.int64)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool) if uniq.dtype == object else np.full(
        len(uniq), pd.api.types.is_string_dtype(uniq))
    if is_text.any():
        text = uniq[is_text].astype("str").str.strip()
        empty = (text == "").to_numpy(bool)
        idx = np.flatnonzero(is_text)
        dated, _ = _forms_text(text[~empty].reset_index(drop=True), last)
        d, s = _parse_text(dated, dayfirst)
        ts[idx[~empty]], st[idx[~empty]] = d, s
    for i in np.flatnonzero(~is_text):
        day = _serial_cell(uniq.iat[i], last)
        ts[i], st[i] = (day, OK) if day is not None else _wall_date(uniq.iat[i])
    return (pd.Series(ts[codes], index=values.index, dtype="datetime64[ns]"),
            pd.Series(st[codes], index=values.index, dtype=np.int64))


# ----------------------------------------------------------------------------------------------- column order
class DateOrder(NamedTuple):
    """What the numeric ``a/b/year`` dates of a column say about their order (counts are rows)."""

    #: True (day first), False (month first) or None (not proven, or both orders proven).
    dayfirst: bool | None
    #: Rows whose date can only be read day first (``14/07/2024``).
    day_first: int
    #: Rows whose date can only be read month first (``07/14/2024``).
    month_first: int
    #: Rows whose date can be read both ways (``03/04/2024``).
    ambiguous: int
    #: The first value of each kind: (day first, month first, both ways); None when there is none.
    examples: tuple


def _text_values(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Distinct text values (stripped) and the number of rows holding each."""
    codes, uniq = pd.factorize(pd.Series(values))
    counts = np.bincount(codes[codes >= 0], minlength=len(uniq))
    uniq = pd.Series(uniq)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool) if uniq.dtype == object else np.full(
        len(uniq), pd.api.types.is_string_dtype(uniq))
    return uniq[is_text].astype("str").str.strip().reset_index(drop=True), counts[is_text]


def date_order(values: pd.Series) -> DateOrder:
    """The order of day and month that a column of dates proves.

    A date proves an order when it is a real date read that way and its other
    number is above 12: ``14/07/2024`` can only be 14 July. The column proves
    day first when some of its dates can only be read day first and none can
    only be read month first (and the reverse); ISO dates and dates with a
    month name say nothing about the order.

    Examples
    --------
    >>> import pandas as pd
    >>> order = date_order(pd.Series(["03/04/2024", "14/07/2024", "03/04/2024", "2024-01-05"]))
    >>> order.dayfirst, order.day_first, order.ambiguous, order.examples
    (True, 1, 2, ('14/07/2024', None, '03/04/2024'))
    >>> date_order(pd.Series(["03/04/2024"])).dayfirst is None
    True
    """
    text, counts = _text_values(values)
    text = _forms_text(text, _last_serial(None))[0]  # a time of day after a date says nothing of the order
    hit = text.str.fullmatch(_DMY).to_numpy(dtype=bool, na_value=False)
    if not hit.any():
        return DateOrder(None, 0, 0, 0, (None, None, None))
    g = text[hit].str.extract(f"^{_DMY}$")
    y, two_digit = _years(g[2].astype(str).to_numpy())
    kinds = _proof(_ints(g, 0), _ints(g, 1), y, two_digit)
    n = counts[hit]
    written = text[hit].to_numpy(object)
    examples = tuple(written[k][0] if k.any() else None for k in kinds)
    return DateOrder(_proven(kinds[0], kinds[1]), *(int(n[k].sum()) for k in kinds), examples)


def order_note(order: DateOrder, where: str) -> str | None:
    """A plain sentence on how a column's ambiguous dates were read, or None when there is nothing to say.

    Examples
    --------
    >>> import pandas as pd
    >>> note = order_note(date_order(pd.Series(["03/04/2024", "14/07/2024"])), "scores.date")
    >>> note[:77]
    'scores.date: 1 date(s) such as 03/04/2024 read as day/month/year (dd/mm/yyyy)'
    >>> note[note.index("such as 14"):]
    'such as 14/07/2024; pass dayfirst=False to read them month first'
    """
    first_day, first_month, both = order.examples
    if order.dayfirst is not None and order.ambiguous:
        ex = first_day if order.dayfirst else first_month
        n = order.day_first if order.dayfirst else order.month_first
        shape, other, flag = (("day/month/year (dd/mm/yyyy)", "month first", False) if order.dayfirst else
                              ("month/day/year (mm/dd/yyyy)", "day first", True))
        return (f"{where}: {order.ambiguous} date(s) such as {both} read as {shape}, because {n} date(s) in the "
                f"same column can only be read that way, such as {ex}; pass dayfirst={flag} to read them {other}")
    if order.day_first and order.month_first:
        tail = (f"; the {order.ambiguous} date(s) readable both ways, such as {both}, are refused as ambiguous "
                "(pass dayfirst=True or dayfirst=False)" if order.ambiguous else "")
        return (f"{where}: the column mixes dates that can only be day first ({order.day_first}, such as "
                f"{first_day}) and dates that can only be month first ({order.month_first}, such as {first_month}); "
                f"each was read the only way it can be{tail}")
    return None
