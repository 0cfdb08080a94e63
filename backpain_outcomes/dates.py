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
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .date_forms import (
    EXCEL_EPOCH,
    FIRST_SERIAL,
    SERIAL,
    TIMED,
    WRITTEN,
    forms_text,
    last_serial,
    read_forms,
    serial_cell,
    value_forms,
    wall_date,
)

__all__ = ["parse_dates", "parse_distinct", "value_counts_of", "date_order", "order_note", "DateOrder", "OK", "BAD", "AMBIGUOUS", "read_forms",
           "forms_note", "WRITTEN", "SERIAL", "TIMED", "EXCEL_EPOCH", "FIRST_SERIAL"]

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


#: The plainest way of writing a date, ``2024-03-25`` with ASCII digits, and the days within the range of
#: nanosecond timestamps that :func:`_plain_iso` reads (others go the general way, which refuses what is not a date).
_PLAIN_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PLAIN_RANGE = (np.datetime64("1678-01-01", "D"), np.datetime64("2261-12-31", "D"))


def _plain_iso(text: pd.Series) -> np.ndarray | None:
    """The dates (datetime64[ns]) of distinct strings that are all written ``YYYY-MM-DD`` with ASCII digits, each a
    real day from 1678 to 2261, read by numpy in one call; None when one is not (a day that does not exist, another
    form, a missing value): the general way then reads them all. The same dates as the general way, faster."""
    if not len(text) or not (pd.api.types.is_string_dtype(text) and text.dtype != object) or text.hasnans:
        return None
    plain = pc.match_substring_regex(pa.array(text.array), _PLAIN_ISO)
    if not pc.all(plain).as_py():
        return None
    try:
        days = text.to_numpy(object).astype("datetime64[D]")
    except ValueError:  # (a day or month that does not exist)
        return None
    if days.min() < _PLAIN_RANGE[0] or days.max() > _PLAIN_RANGE[1]:
        return None
    return days.astype("datetime64[ns]")


def _parse_text(text: pd.Series, dayfirst: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Parse distinct strings (already stripped, none empty)."""
    n = len(text)
    plain = _plain_iso(text)
    if plain is not None:  # (the usual export: every value an ISO date, each read as the general way reads it)
        return plain, np.full(n, OK, np.int64)
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


def forms_note(values: pd.Series, where: str, today=None, distinct: tuple | None = None) -> str | None:
    """A plain sentence on the values of a column read as serial day numbers or with a time of day (None: none).

    ``distinct``: ``pd.factorize(values)``, when the caller has it (see :func:`parse_dates`).

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
        codes, uniq = distinct if distinct is not None else pd.factorize(values)
        written, form_u = value_forms(pd.Series(uniq, dtype=object), last_serial(today))
    if not ((form_u == SERIAL) | (form_u == TIMED)).any():  # nothing to say: the rows are not counted
        return None
    count = value_counts_of(codes, len(uniq))
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


def parse_dates(values: pd.Series, dayfirst: bool | None = None, today=None,
                distinct: tuple | None = None) -> tuple[pd.Series, pd.Series]:
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
    distinct : tuple, optional
        ``pd.factorize(values)``, when the caller has it: a column whose
        dates are parsed, ordered and described (:func:`date_order`,
        :func:`forms_note`) is then hashed once for all three.

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
    codes, uniq = distinct if distinct is not None else pd.factorize(values)  # parse each distinct value once
    ts, st = parse_distinct(uniq, dayfirst, today)
    return (pd.Series(np.take(ts, codes), index=values.index, dtype="datetime64[ns]", copy=False),  # (new arrays: not
            pd.Series(st[codes], index=values.index, dtype=np.int64, copy=False))          # copied again)


def parse_distinct(uniq, dayfirst: bool | None = None, today=None) -> tuple[np.ndarray, np.ndarray]:
    """The date and status (see :func:`parse_dates`) of each of the distinct values ``uniq`` of a column (the
    uniques of ``pd.factorize``), then of a missing value (NaT and 0): indexed by the column's codes, they
    give the dates and statuses of its rows."""
    uniq = pd.Series(uniq)
    last = last_serial(today)
    ts = np.full(len(uniq) + 1, np.datetime64("NaT"), "datetime64[ns]")  # the last entry: missing values
    st = np.zeros(len(uniq) + 1, np.int64)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool) if uniq.dtype == object else np.full(
        len(uniq), pd.api.types.is_string_dtype(uniq))
    if is_text.any():
        text = uniq[is_text].astype("str").str.strip()
        empty = (text == "").to_numpy(bool)
        idx = np.flatnonzero(is_text)
        dated, _ = forms_text(text[~empty].reset_index(drop=True), last)
        d, s = _parse_text(dated, dayfirst)
        ts[idx[~empty]], st[idx[~empty]] = d, s
    for i in np.flatnonzero(~is_text):
        day = serial_cell(uniq.iat[i], last)
        day = day if day is not None else wall_date(uniq.iat[i])
        ts[i], st[i] = (day, OK) if day is not None else (np.datetime64("NaT"), BAD)
    return ts, st


def value_counts_of(codes: np.ndarray, n: int, block: int = 1 << 16) -> np.ndarray:
    """Rows holding each of ``n`` distinct values, from their codes (-1: missing, not counted). Counted in
    blocks of rows: the copies ``np.bincount`` makes (of codes other than int64, of the codes not missing)
    are small and reuse the same memory."""
    count = np.zeros(n, np.int64)
    for i in range(0, len(codes), block):
        c = codes[i:i + block]
        count += np.bincount(c[c >= 0], minlength=n)
    return count


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


def _text_values(values: pd.Series, distinct: tuple | None) -> tuple[pd.Series, Callable[[], np.ndarray]]:
    """Distinct text values (stripped), and a function giving the number of rows holding each (the rows are
    counted only when it is called)."""
    codes, uniq = distinct if distinct is not None else pd.factorize(pd.Series(values))
    uniq = pd.Series(uniq)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool) if uniq.dtype == object else np.full(
        len(uniq), pd.api.types.is_string_dtype(uniq))
    return (uniq[is_text].astype("str").str.strip().reset_index(drop=True),
            lambda: value_counts_of(codes, len(uniq))[is_text])


def date_order(values: pd.Series, distinct: tuple | None = None) -> DateOrder:
    """The order of day and month that a column of dates proves (``distinct``: see :func:`parse_dates`).

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
    text, counts = _text_values(values, distinct)
    text = forms_text(text, last_serial(None))[0]  # a time of day after a date says nothing of the order
    hit = text.str.fullmatch(_DMY).to_numpy(dtype=bool, na_value=False)
    if not hit.any():
        return DateOrder(None, 0, 0, 0, (None, None, None))
    g = text[hit].str.extract(f"^{_DMY}$")
    y, two_digit = _years(g[2].astype(str).to_numpy())
    kinds = _proof(_ints(g, 0), _ints(g, 1), y, two_digit)
    n = counts()[hit]
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
