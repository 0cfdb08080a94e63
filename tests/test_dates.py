"""Dates: never guessed, the calendar date as written (offsets do not move it), booleans and numbers are not dates."""

import datetime as dt

import pandas as pd

from backpain_outcomes.dates import AMBIGUOUS, BAD, OK, parse_dates


def _parse(values, dayfirst=None):
    parsed, status = parse_dates(pd.Series(values, dtype=object), dayfirst=dayfirst)
    return [None if pd.isna(p) else p.strftime("%Y-%m-%d") for p in parsed], status.tolist()


def test_text_dates():
    got = _parse(["2024-03-04", "25/03/2024", "03/04/2024", "2024/3/5", "4 Mar 2024", "Mar 4, 2024", "05/05/2024",
                  "03/04/24", "2024-02-30", "13/13/2024", "x", "", None])
    assert got == (["2024-03-04", "2024-03-25", None, "2024-03-05", "2024-03-04", "2024-03-04", "2024-05-05", None,
                    None, None, None, None, None],
                   [OK, OK, AMBIGUOUS, OK, OK, OK, OK, AMBIGUOUS, BAD, BAD, BAD, OK, OK])
    assert _parse(["03/04/2024", "25/03/2024"], dayfirst=True)[0] == ["2024-04-03", "2024-03-25"]
    assert _parse(["03/04/2024", "25/03/2024"], dayfirst=False) == (["2024-03-04", None], [OK, BAD])


def test_offsets_do_not_move_the_date():
    got = _parse(["2024-03-04T23:30:00-05:00", "2024-03-04T01:00+09:00", "2024-03-04 12:00:00Z",
                  "2024-03-04T25:00", pd.Timestamp("2024-03-04 23:30", tz="America/New_York")])
    assert got == (["2024-03-04", "2024-03-04", "2024-03-04", None, "2024-03-04"],
                   [OK, OK, OK, BAD, OK])
    aware = pd.Series(pd.to_datetime(["2024-03-04 23:30"]).tz_localize("Asia/Tokyo"))
    assert parse_dates(aware)[0].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-04"]


def test_cells_that_are_not_dates():
    got = _parse([dt.datetime(2024, 1, 2, 23, 0), dt.date(2024, 1, 3), 45000, 5.0, True, dt.time(3, 4)])
    assert got == (["2024-01-02", "2024-01-03", None, None, None, None], [OK, OK, BAD, BAD, BAD, BAD])


def test_each_distinct_value_is_parsed_once_even_for_a_million_rows():
    values = pd.Series(["2024-01-05", "x"] * 500_000, dtype="str")
    parsed, status = parse_dates(values)
    assert status.value_counts().to_dict() == {OK: 500_000, BAD: 500_000}
