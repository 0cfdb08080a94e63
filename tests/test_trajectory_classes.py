"""The description of trajectory classes from sums that partitions add up: data windows (against
curves.data_window on the rows) and the misfit note (hand-computed bins)."""

import numpy as np
import pandas as pd
import pytest

from backpain_outcomes.curves import data_window
from backpain_outcomes.lcga import TimeBasis
from backpain_outcomes.trajectory_classes import class_misfit, member_summary, merge_member_summaries


def _rows(rng, n_episodes):
    n = rng.integers(2, 8, n_episodes)
    ep = np.repeat(np.arange(n_episodes), n)
    day = np.concatenate([np.sort(rng.choice(400, k, replace=False)) for k in n]).astype(float)
    return ep, day, rng.integers(0, 11, len(ep)).astype(float)


@pytest.mark.parametrize("min_n", [1, 3, 10, 40])
def test_merged_windows_and_days_equal_those_of_all_rows(min_n):
    rng = np.random.default_rng(min_n)
    ep, day, score = _rows(rng, 120)
    modal = rng.integers(0, 3, 120)
    whole = merge_member_summaries([member_summary(ep, day, score, modal, 3, min_n)], 3, min_n)
    cut = [0, 50, 51, 120]  # three parts, one of a single episode, each numbering its episodes from 0
    parts = []
    for a, b in zip(cut[:-1], cut[1:], strict=True):
        rows = (ep >= a) & (ep < b)
        parts.append(member_summary(ep[rows] - a, day[rows], score[rows], modal[a:b], 3, min_n))
    merged = merge_member_summaries(parts, 3, min_n)
    frame = pd.DataFrame({"episode_id": ep, "day": day, "score": score, "class": modal[ep]})
    for c in range(3):
        expected = data_window(frame[frame["class"] == c], min_n)  # curves.data_window on the rows themselves
        np.testing.assert_array_equal(whole["windows"][c], expected)
        np.testing.assert_array_equal(merged["windows"][c], expected)
        by_day = frame[frame["class"] == c].groupby("day")["score"].agg(["size", "sum"])
        for got in (whole, merged):
            assert got["days"][c]["day"].tolist() == by_day.index.tolist()
            assert got["days"][c]["n"].tolist() == by_day["size"].tolist()
            assert got["days"][c]["score_sum"].tolist() == by_day["sum"].tolist()
    assert merged["n"].tolist() == np.bincount(modal, minlength=3).tolist()


def test_an_empty_class_has_no_window():
    got = merge_member_summaries([member_summary([0, 0, 1, 1], [0.0, 9, 0, 9], [5.0] * 4, np.array([0, 0]), 2, 1)],
                                 2, 1)
    assert got["windows"][0] == (0.0, 9.0) and np.isnan(got["windows"][1]).all() and got["days"][1].empty


def _context(min_n):
    return {"basis": TimeBasis(np.array([0.0, 100.0]), "polynomial", degree=1), "min_n": min_n, "low": 0, "high": 10}


def test_misfit_bins_keep_a_day_together_and_give_mean_residuals():
    # 40 measurements, min_n 10: 4 bins; a day goes to bin floor(4 m / 40), m the measurements on earlier days.
    # Days 0 (12 rows), 10 (8), 20 (5), 40 (15): m = 0, 12, 20, 25 -> bins 0, 1, 2, 2. Flat curve at 5; the
    # scores' means are 5, 5, 9 (day 20) and 5: bin 2 holds days 20 and 40, mean residual (5 * 4 + 0) / 20 = 1.
    days = pd.DataFrame({"day": [0.0, 10, 20, 40], "n": [12, 8, 5, 15], "score_sum": [60.0, 40, 45, 75]})
    assert class_misfit(np.array([5.0, 0.0]), days, (0.0, 40.0), _context(10)) == ""  # 1 point: not above 10%
    days.loc[2, "score_sum"] = 5 * 10.0  # day 20 mean 10: bin 2 mean residual (5 * 5) / 20 = 1.25 points
    msg = class_misfit(np.array([5.0, 0.0]), days, (0.0, 40.0), _context(10))
    assert msg.startswith("its curve misses its episodes' mean score by 1.2 points around days 20-40;")
    # the window leaves day 40 out: 25 measurements, 2 bins (m = 0, 12, 20 -> 0, 0, 1); day 20 alone, 5 points
    msg = class_misfit(np.array([5.0, 0.0]), days, (0.0, 20.0), _context(10))
    assert "by 5 points around days 20-20" in msg
    assert class_misfit(np.array([5.0, 0.0]), days, (0.0, 10.0), _context(11)) == ""  # 20 < 2 min_n: no sentence
    assert class_misfit(np.array([5.0, 0.0]), days, (np.nan, np.nan), _context(1)) == ""
