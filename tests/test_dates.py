"""Dates: never guessed, the calendar date as written (offsets do not move it), booleans and numbers are not dates."""

import datetime as dt

import pandas as pd

from backpain_outcomes.dates import AMBIGUOUS, BAD, OK, DateOrder, date_order, order_note, parse_dates


def _parse(values, dayfirst=None):
    parsed, status = parse_dates(pd.Series(values, dtype=object), dayfirst=dayfirst)
    return [None if pd.isna(p) else p.strftime("%Y-%m-%d") for p in parsed], status.tolist()


def test_text_dates():
    got = _parse(["2024-03-04", "03/04/2024", "2024/3/5", "4 Mar 2024", "Mar 4, 2024", "05/05/2024",
                  "03/04/24", "2024-02-30", "13/13/2024", "x", "", None])
    assert got == (["2024-03-04", None, "2024-03-05", "2024-03-04", "2024-03-04", "2024-05-05", None,
                    None, None, None, None, None],
                   [OK, AMBIGUOUS, OK, OK, OK, OK, AMBIGUOUS, BAD, BAD, BAD, OK, OK])
    assert _parse(["03/04/2024", "25/03/2024"], dayfirst=True)[0] == ["2024-04-03", "2024-03-25"]
    assert _parse(["03/04/2024", "25/03/2024"], dayfirst=False) == (["2024-03-04", None], [OK, BAD])


def test_a_column_that_proves_its_order_is_read_in_that_order():
    # 14/07/2024 can only be 14 July, so 03/04/2024 in the same column is 3 April
    assert _parse(["03/04/2024", "14/07/2024"]) == (["2024-04-03", "2024-07-14"], [OK, OK])
    # 07/14/2024 can only be July 14, so 03/04/2024 is March 4
    assert _parse(["03/04/2024", "07/14/2024"]) == (["2024-03-04", "2024-07-14"], [OK, OK])
    # proof in both directions: each unambiguous date as it can be read, the ambiguous one refused
    assert _parse(["03/04/2024", "14/07/2024", "07/14/2024"]) == (
        [None, "2024-07-14", "2024-07-14"], [AMBIGUOUS, OK, OK])
    # a day above 12 that is not a real date (31 February) proves nothing
    assert _parse(["03/04/2024", "31/02/2024"]) == ([None, None], [AMBIGUOUS, BAD])
    # a two-digit year stays ambiguous (its century) whatever the order, and proves no order
    assert _parse(["03/04/24", "14/07/2024"])[1] == [AMBIGUOUS, OK]
    assert _parse(["03/04/2024", "25/03/24"])[1] == [AMBIGUOUS, AMBIGUOUS]
    # the explicit order wins over the column's proof
    assert _parse(["03/04/2024", "14/07/2024"], dayfirst=False) == (["2024-03-04", None], [OK, BAD])


def test_date_order_counts_rows_and_names_examples():
    values = pd.Series(["03/04/2024", "14/07/2024", "03/04/2024", "05/06/2024", "2024-01-05", None], dtype="str")
    order = date_order(values)
    assert order == DateOrder(True, 1, 0, 3, ("14/07/2024", None, "03/04/2024"))
    note = order_note(order, "scores.date (visits.csv)")
    assert note.startswith("scores.date (visits.csv): 3 date(s) such as 03/04/2024 read as day/month/year")
    assert "such as 14/07/2024; pass dayfirst=False" in note
    mixed = date_order(pd.Series(["14/07/2024", "07/14/2024", "03/04/2024"]))
    assert mixed.dayfirst is None and (mixed.day_first, mixed.month_first, mixed.ambiguous) == (1, 1, 1)
    assert "are refused as ambiguous" in order_note(mixed, "x")
    assert order_note(date_order(pd.Series(["03/04/2024"])), "x") is None  # nothing proven: the problems say it
    assert order_note(date_order(pd.Series(["14/07/2024"])), "x") is None  # nothing ambiguous to decide
    assert date_order(pd.Series([], dtype=object)) == DateOrder(None, 0, 0, 0, (None, None, None))


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


def test_a_refused_value_is_never_evidence_of_the_order():
    # 24-03-05 could be 24 March 2005 or 2024-03-05 (yy-mm-dd): it is refused, so it cannot prove that
    # 04-03-2024 in the same column is day first (a reproducer of the adversarial tests)
    assert _parse(["04-03-2024", "24-03-05"]) == ([None, None], [AMBIGUOUS, AMBIGUOUS])
    assert date_order(pd.Series(["04-03-2024", "24-03-05"])).dayfirst is None
    # a day above 12 that is no date (30 February) or a month above 12 proves nothing either
    assert _parse(["04-03-2024", "30/02/2024", "13/13/2024"])[1] == [AMBIGUOUS, BAD, BAD]
    # only a value read exactly one way (four-digit year, a number above 12) decides
    assert _parse(["04-03-2024", "24-03-2005"]) == (["2024-03-04", "2005-03-24"], [OK, OK])
