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


def test_problems_of_tables_checked_in_two_threads_make_one_table_whatever_the_interleaving():
    """Loading checks the scores table and the others in two threads: the batches of different tables of one
    stage may come in any order. The problem table (categories included) and the exclusions are the same for every interleaving that
    keeps each table's own order; the first error of a row is still the first its table's checks found."""
    import itertools

    import pandas as pd

    scores = [("scores", [2, 3], "score", "out_of_range", "too high"),
              ("scores", [3], "date", "bad_date", "not a date"),
              ("scores", [2], "", "duplicate", "exact duplicate", SET_ASIDE)]
    patients = [("patients", [4], "age", "not_a_number", "age is not a number"),
                ("patients", [4, 5], "patient_id", "repeated_id", "id on several rows")]
    frames, exclusions = [], []
    for order in set(itertools.permutations("sspp")):  # every interleaving of the two tables' batches
        p = Problems()
        p.source_index("patients.csv"), p.source_index("scores.csv")
        p.stage(1)  # (as each thread of loading names the stage of its checks)
        queues = {"s": iter(scores), "p": iter(patients)}
        for which in order:
            table, rows, column, reason, message, *kind = next(queues[which])
            p.add(table, np.full(len(rows), 1 if table == "scores" else 0), rows, column, reason, message,
                  position=np.array(rows) - 2, kind=kind[0] if kind else "error")
        frames.append(p.frame(kinds=("error", SET_ASIDE), internal=True))
        exclusions.append(p.exclusions())
    for f, e in zip(frames[1:], exclusions[1:]):
        pd.testing.assert_frame_equal(f, frames[0], check_categorical=True)
        pd.testing.assert_frame_equal(e, exclusions[0])
    assert list(frames[0]["reason"].cat.categories[:3]) == ["not_a_number", "repeated_id", "out_of_range"]
    assert list(frames[0]["table"].cat.categories) == ["patients", "scores"]  # the tables' order, then the checks'
    assert list(zip(exclusions[0]["table"], exclusions[0]["row"], exclusions[0]["reason"])) == [
        ("patients", 4, "not_a_number"), ("patients", 5, "repeated_id"), ("scores", 2, "out_of_range"),
        ("scores", 3, "out_of_range")]


def test_problems_of_no_stage_keep_the_order_they_were_added_in():
    """A caller that names no stage (reading; the REDCap, FHIR and visits importers) gets its problems in the
    order it added them, as before stages existed: the categories come in that order."""
    p = Problems()
    p.add("scores", "scores.csv", [3], "score", "out_of_range", "too high")
    p.add("patients", "patients.csv", [2], "age", "not_a_number", "age is not a number")
    f = p.frame()
    assert list(f["reason"].cat.categories) == ["out_of_range", "not_a_number"]
    assert list(f["table"]) == ["patients", "scores"]  # (the rows: by table, file and line)
    p.stage(1)
    p.add("sessions", "scores.csv", [4], "modality", "unknown_label", "not a modality")
    p.add("episodes", "scores.csv", [5], "onset_date", "bad_date", "not a date")
    assert list(p.frame()["reason"].cat.categories) == ["out_of_range", "not_a_number", "bad_date", "unknown_label"]
