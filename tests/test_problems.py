"""The problem record: ordering, kinds, one exclusion per input row with its messages joined."""

import numpy as np

from backpain_outcomes.problems import CONSEQUENCE, EXCLUSION_COLUMNS, PROBLEM_COLUMNS, SET_ASIDE, Problems, count_by_kind


def test_frame_orders_by_table_file_line_and_lists_errors_only():
    p = Problems()
    p.source_index("b.csv")
    p.source_index("a.csv")
    p.add("scores", "a.csv", [5, 2], "score", "out_of_range", "too high", "0-10", value=["11", "12"], position=[3, 0])
    p.add("scores", "b.csv", [9], "date", "bad_date", "not a date", value=["x"], position=[0])
    p.add("patients", "p.csv", [4], "age", "out_of_range", "too old", value=[130.0], position=[2])
    p.add("scores", "a.csv", [7], "", "blank_row", "blank", kind=SET_ASIDE)
    f = p.frame()
    assert list(f.columns) == PROBLEM_COLUMNS
    assert list(zip(f["table"], f["source"], f["row"])) == [("patients", "p.csv", 4), ("scores", "b.csv", 9),
                                                          ("scores", "a.csv", 2), ("scores", "a.csv", 5)]
    assert f["value"].tolist() == [130.0, "x", "12", "11"]
    assert p.any() and not p.fatal and p.positions("scores").tolist() == [0, 3]


def test_exclusions_one_row_per_input_row_first_error_wins():
    p = Problems()
    p.add("scores", "s.csv", [2, 3], "patient_id", "unknown_patient", "not in patients", position=[0, 1],
          value=np.array(["p9", "p8"], object), kind=CONSEQUENCE)
    p.add("scores", "s.csv", [3], "score", "out_of_range", "nrs score is out of range", position=[1], value=["12"])
    p.add("scores", "s.csv", [3], "date", "bad_date", "not a valid date", position=[1], value=["x"])
    p.add("scores", "s.csv", [3], "date", "bad_date", "not a valid date", position=[1], value=["x"])
    ex = p.exclusions()
    assert list(ex.columns) == EXCLUSION_COLUMNS
    assert ex[["row", "column", "reason"]].values.tolist() == [[2, "patient_id", "unknown_patient"],
                                                              [3, "score", "out_of_range"]]
    assert ex["message"].tolist() == ["not in patients",
                                      "nrs score is out of range; not a valid date; not in patients"]


def test_drop_forgets_problems_of_duplicates_and_counts_by_kind():
    p = Problems()
    p.add("scores", "s.csv", [2, 3, 4], "score", "out_of_range", "high", position=[0, 1, 2])
    p.drop("scores", np.array([1]))
    assert p.frame()["row"].tolist() == [2, 4]
    p.whole_file("", "x.csv", "unrecognised_file", "which table?")
    assert p.fatal
    counts = count_by_kind(p.frame())
    assert counts.values.tolist() == [["scores", "score", "out_of_range", 2], ["", "", "unrecognised_file", 1]]
