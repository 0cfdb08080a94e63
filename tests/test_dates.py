"""Dates: never guessed, the calendar date as written (offsets and times do not move it), booleans are not dates,
numbers only as plausible Excel serial day numbers."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY, write

from backpain_outcomes.dates import AMBIGUOUS, BAD, OK, SERIAL, TIMED, WRITTEN, DateOrder, date_order, forms_note, order_note, parse_dates, read_forms
from backpain_outcomes.exceptions import DataValidationError
from backpain_outcomes.loading import load_study


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
    # 45000 is a plausible Excel serial day number: 504 days before 45504 (2024-07-31, see below) is 2023-03-15
    got = _parse([dt.datetime(2024, 1, 2, 23, 0), dt.date(2024, 1, 3), 45000, 5.0, True, dt.time(3, 4)])
    assert got == (["2024-01-02", "2024-01-03", "2023-03-15", None, None, None], [OK, OK, OK, BAD, BAD, BAD])


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


# ------------------------------------------------------------------------ times of day and Excel serial numbers
def test_a_time_of_day_after_a_date_is_dropped():
    got = _parse(["14/08/2024 10:15", "2024-08-14 10:15:00", "2024-08-14T10:15", "8/14/2024 10:15 AM",
                  "2024/08/14 23:59:59", "14/08/2024  07:05:09.5", "14/08/2024 10:15+02:00"])
    assert got == (["2024-08-14"] * 7, [OK] * 7)
    # a time that is no time of day leaves the value as written, which is no date
    assert _parse(["14/08/2024 25:15", "14/08/2024 10:75", "14/08/2024 13:00 pm", "14/08/2024 10"])[1] == [BAD] * 4


def test_a_time_of_day_keeps_the_column_wide_order_rules():
    # 14/08 proves day first even with a time, so 03/04/2024 10:00 is 3 April
    assert _parse(["03/04/2024 10:00", "14/08/2024 10:15"]) == (["2024-04-03", "2024-08-14"], [OK, OK])
    assert date_order(pd.Series(["03/04/2024 10:00", "14/08/2024 10:15"])).dayfirst is True
    # every value readable both ways: still refused, time or not
    assert _parse(["03/04/2024 10:00", "05/06/2024"])[1] == [AMBIGUOUS, AMBIGUOUS]
    assert _parse(["03/04/2024 10:00"], dayfirst=False)[0] == ["2024-03-04"]


def test_excel_serial_day_numbers_hand_checked():
    # By hand from the epoch 1899-12-30: 2 days to 1900-01-01; 1900-01-01 -> 2000-01-01 is 36524 days (100 years,
    # 24 leap years 1904..1996, 1900 is not one); 2000-01-01 -> 2024-01-01 is 8766 days (24 years, 6 leap years);
    # 2024-01-01 -> 2024-07-31 is 31+29+31+30+31+30+30 = 212 days. 2 + 36524 + 8766 + 212 = 45504.
    # 32874 = 2 + 32872 (1900 -> 1990: 90 years, 22 leap years 1904..1988) is 1990-01-01, the first accepted day;
    # a fraction is the time of day, dropped (45504.9 is 2024-07-31 21:36).
    got = _parse(["45504", 45504, 45504.9, "45504.9", np.int64(45505), "32874", 32874.0])
    assert got == (["2024-07-31", "2024-07-31", "2024-07-31", "2024-07-31", "2024-08-01", "1990-01-01",
                    "1990-01-01"], [OK] * 7)


def test_implausible_numbers_stay_bad_dates():
    # before 1990 (32873 is 1989-12-31), after today plus one year (2027-11-26 is 32874 + 13843: 1990 -> 2027 is
    # 37 years with 9 leap years 1992..2024 = 13514 days, and 2027-01-01 -> 2027-11-26 is 329 days), not five
    # digits of text, not finite, negative, booleans
    today = pd.Timestamp("2026-11-26")
    last = 32874 + 13514 + 329
    parsed, status = parse_dates(pd.Series([last, last + 1, "32873", 32873, "12345", "123456", float("inf"),
                                            -45504, True, "4550", "45504x"], dtype=object), today=today)
    assert parsed.iloc[0].strftime("%Y-%m-%d") == "2027-11-26"
    assert status.tolist() == [OK] + [BAD] * 10


def test_read_forms_says_which_values_were_serial_or_timed():
    values = pd.Series(["45504", "14/08/2024 10:15", "2024-08-21", 45511.75, "1234", None,
                        dt.datetime(2024, 8, 2, 9, 30), dt.datetime(2024, 8, 3)], dtype=object)
    out, form = read_forms(values)
    assert out.tolist()[:5] == ["2024-07-31", "14/08/2024", "2024-08-21", "2024-08-07", "1234"]
    assert out.tolist()[6] == "2024-08-02"
    assert form.tolist() == [SERIAL, TIMED, WRITTEN, SERIAL, WRITTEN, WRITTEN, TIMED, WRITTEN]
    stamps = pd.Series(pd.to_datetime(["2024-08-02 09:30", "2024-08-03 00:00", None]))
    assert read_forms(stamps)[1].tolist() == [TIMED, WRITTEN, WRITTEN]


def test_forms_note_names_the_column_counts_the_values_and_states_the_date_system():
    note = forms_note(pd.Series(["45504", "45504", "2024-08-01", "x", None, "", "2024-08-02 10:15"]), "scores.date")
    assert note.startswith("scores.date: 2 value(s) read as Excel serial day numbers, such as 45504 = 2024-07-31: "
                           "days since 1899-12-30 (Excel's 1900 date system; a workbook in the 1904 date system "
                           "would give dates 1,462 days later)")
    # the mix: "x" is no date and blanks are not counted, so 2 dates written as dates
    assert "the column mixes them with 2 date(s) written as dates, such as 2024-08-01; both kinds are read" in note
    assert note.endswith("1 date(s) followed by a time of day, such as 2024-08-02 10:15: the time is dropped "
                         "(the calendar day written is the date)")
    assert "mixes" not in forms_note(pd.Series(["45504", None]), "d")
    assert forms_note(pd.Series(["2024-08-01", "12345", 5]), "d") is None


def test_load_study_reads_serial_and_timed_dates_and_says_so(tmp_path):
    write(tmp_path / "scores.csv", "patient_id,date,instrument,score\n"
          "p1,45504,nrs,7\n"                 # line 2: 2024-07-31 (hand-checked above)
          "p1,14/08/2024 10:15,nrs,6\n"      # line 3: day first (14 > 12), time dropped
          "p1,2024-08-21T09:30,nrs,5\n"      # line 4: ISO with a time
          "p1,45535.5,nrs,4\n")              # line 5: 45504 + 31 = 2024-08-31, half a day dropped
    study = load_study(tmp_path, today=TODAY)
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-07-31", "2024-08-14", "2024-08-21", "2024-08-31"]
    notes = " ".join(study.notes)
    assert "scores.date (scores.csv): 2 value(s) read as Excel serial day numbers, such as 45504 = 2024-07-31" in notes
    assert "the column mixes them with 2 date(s) written as dates, such as 14/08/2024 10:15" in notes
    assert "2 date(s) followed by a time of day, such as 14/08/2024 10:15: the time is dropped" in notes


def test_load_study_refuses_implausible_numbers_with_the_bad_date_record(tmp_path):
    write(tmp_path / "scores.csv", "patient_id,date,instrument,score\n"
          "p1,45504,nrs,7\n"      # line 2: fine
          "p1,12345,nrs,6\n"      # line 3: 1933-10-18 as a serial, before 1990: not a date
          "p1,99999,nrs,5\n"      # line 4: 2173 as a serial: not a date
          "p1,14/08/2024 25:00,nrs,4\n")  # line 5: no time of day
    with pytest.raises(DataValidationError) as info:
        load_study(tmp_path, today=TODAY)
    p = info.value.problems
    assert p[["table", "source", "row", "column", "value", "reason", "expected"]].values.tolist() == [
        ["scores", "scores.csv", 3, "date", "12345", "bad_date", "an ISO 8601 date such as 2024-03-25"],
        ["scores", "scores.csv", 4, "date", "99999", "bad_date", "an ISO 8601 date such as 2024-03-25"],
        ["scores", "scores.csv", 5, "date", "14/08/2024 25:00", "bad_date", "an ISO 8601 date such as 2024-03-25"]]


def test_a_workbook_with_number_cells_in_its_date_column(tmp_path):
    # a date column whose cells are numbers (the cell format lost), next to real date cells and text
    pd.DataFrame({"patient_id": ["p1"] * 4, "date": [45504, dt.datetime(2024, 8, 14, 10, 15), "2024-08-21", 45535.5],
                  "instrument": ["nrs"] * 4, "score": [7, 6, 5, 4]}).to_excel(tmp_path / "scores.xlsx", index=False)
    study = load_study(tmp_path, today=TODAY)
    # 45504 -> 2024-07-31 (hand-checked above), 45535.5 -> 31 days later, 2024-08-31
    assert study.scores["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-07-31", "2024-08-14", "2024-08-21", "2024-08-31"]
    assert any(n.startswith("scores.date (scores.xlsx): 2 value(s) read as Excel serial day numbers") and
               "1 date(s) followed by a time of day" in n for n in study.notes)


def test_distinct_values_given_once_give_what_each_function_finds_alone():
    # load_study factorizes a date column once and hands the result to parse_dates, date_order and forms_note;
    # each must then give what it gives when it factorizes the column itself (mixed orders, a time of day,
    # serial numbers as text, blanks and a missing value)
    values = pd.Series(["14/07/2024", "03/04/2024", "45504", "2024-08-14 10:15", "03/04/2024", None, "x", "45504"],
                       dtype="str")
    distinct = pd.factorize(values)
    for dayfirst in (None, True, False):
        alone, given = parse_dates(values, dayfirst), parse_dates(values, dayfirst, distinct=distinct)
        pd.testing.assert_series_equal(alone[0], given[0])
        pd.testing.assert_series_equal(alone[1], given[1])
    assert date_order(values, distinct) == date_order(values) == DateOrder(True, 1, 0, 2, ("14/07/2024", None,
                                                                                          "03/04/2024"))
    note = forms_note(values, "x", distinct=distinct)
    assert note == forms_note(values, "x") and note.startswith("x: 2 value(s) read as Excel serial day numbers")


def test_a_table_factorizes_a_column_again_once_it_is_replaced():
    from backpain_outcomes.validation import RawTable

    t = RawTable("scores", pd.DataFrame({"date": pd.Series(["2024-01-02", "n/a", "2024-01-02"], dtype="str")}),
                 np.zeros(3, np.int64), np.arange(2, 5), ["scores.csv"])
    codes, uniq = t.distinct("date")
    assert codes.tolist() == [0, 1, 0] and t.distinct("date")[0] is codes  # kept
    t.data["date"] = t.data["date"].where([True, False, True])
    assert t.distinct("date")[0].tolist() == [0, -1, 0]  # the column was replaced: factorized again


def test_parse_distinct_indexed_by_codes_is_parse_dates():
    # parse_dates is parse_distinct of the distinct values, indexed by each row's code (-1, missing: the last
    # entry, NaT and status 0); value_counts_of counts the rows of each distinct value as np.bincount does
    from backpain_outcomes.dates import parse_dates, parse_distinct, value_counts_of

    values = pd.Series(["2024-01-02", None, "03/04/2024", "bad", "2024-01-02", "45300", "14/07/2024"], dtype="str")
    codes, uniq = pd.factorize(values)
    ts, st = parse_distinct(uniq)
    parsed, status = parse_dates(values)
    assert len(ts) == len(uniq) + 1 and np.isnat(ts[-1]) and st[-1] == 0
    assert parsed.equals(pd.Series(ts[codes], dtype="datetime64[ns]")) and status.tolist() == st[codes].tolist()
    assert status.tolist() == [0, 0, 0, 1, 0, 0, 0]  # 14/07 proves day first; 45300 is an Excel serial day
    for dtype in (np.int64, np.int32):
        assert value_counts_of(codes.astype(dtype), len(uniq), block=2).tolist() == [2, 1, 1, 1, 1]


def test_plain_iso_dates_read_in_one_call_as_the_general_way_reads_them(monkeypatch):
    """Distinct values all written YYYY-MM-DD are read by numpy in one call (dates.py: _plain_iso); the dates and
    statuses are those of the general way, for real days from 1678 to 2261 (a time of day dropped first). A column
    with one day that does not exist, a year outside that range, another form or non-ASCII digits is read the
    general way, whole."""
    from backpain_outcomes import dates

    rng = np.random.default_rng(11)
    days = pd.to_datetime("1678-01-01") + pd.to_timedelta(rng.integers(0, 213_000, 3_000), "D")
    valid = pd.Index(pd.unique(days.strftime("%Y-%m-%d")), dtype="str")
    cases = {"valid": valid, "leap day": pd.Index(["2024-02-29", "2000-02-29", "1900-03-01"], dtype="str"),
             "no such day": pd.Index([*valid[:50], "2023-02-29"], dtype="str"),
             "month 13": pd.Index(["2024-13-01", "2024-01-02"], dtype="str"),
             "year 1600": pd.Index(["1600-01-01", "2024-01-02"], dtype="str"),
             "year 9999": pd.Index(["9999-12-31"], dtype="str"),
             "with a time": pd.Index(["2024-01-02", "2024-01-03 10:15"], dtype="str"),
             "full-width digits": pd.Index(["２０２４-01-02", "2024-01-03"], dtype="str"),
             "day first": pd.Index(["2024-01-02", "14/07/2024"], dtype="str")}
    used = []
    real = dates._plain_iso

    def spy(text):
        out = real(text)
        used.append(out is not None)
        return out
    for name, uniq in cases.items():
        used.clear()
        monkeypatch.setattr(dates, "_plain_iso", spy)
        fast = dates.parse_distinct(uniq, None, today="2262-01-01")
        # (the fast way only where every value is plain once a time of day is dropped)
        assert used == [name in ("valid", "leap day", "with a time")], name
        monkeypatch.setattr(dates, "_plain_iso", lambda text: None)  # the general way
        general = dates.parse_distinct(uniq, None, today="2262-01-01")
        np.testing.assert_array_equal(fast[0], general[0], err_msg=name)
        np.testing.assert_array_equal(fast[1], general[1], err_msg=name)
    assert (general[1][:-1] == OK).all() and general[0][1] == np.datetime64("2024-07-14")  # (the last case)
    monkeypatch.setattr(dates, "_plain_iso", real)
    fast = dates.parse_distinct(valid, None, today="2262-01-01")
    assert (fast[1] == OK).all() and fast[0][:-1].astype("datetime64[D]").astype(str).tolist() == list(valid)


def test_date_notes_count_rows_only_when_there_is_something_to_say(monkeypatch):
    """date_order and forms_note count the rows of a column's distinct values (a pass over every row) only when a
    value is written dd/mm/yyyy, is a serial day number or has a time of day: their notes are the same."""
    from backpain_outcomes import dates

    counted = []
    real = dates.value_counts_of
    monkeypatch.setattr(dates, "value_counts_of", lambda *a, **k: counted.append(1) or real(*a, **k))
    iso = pd.Series(["2024-01-02", "2024-01-03", "2024-01-02"], dtype="str")
    assert date_order(iso) == DateOrder(None, 0, 0, 0, (None, None, None)) and forms_note(iso, "x") is None
    assert counted == []
    order = date_order(pd.Series(["03/04/2024", "14/07/2024", "03/04/2024"], dtype="str"))
    assert order.ambiguous == 2 and order.day_first == 1 and len(counted) == 1
    assert forms_note(pd.Series(["45504", "2024-08-01", "45504"], dtype="str"), "x").startswith(
        "x: 2 value(s) read as Excel serial day numbers, such as 45504 = 2024-07-31") and len(counted) == 2
