"""Tests of the helpers on Arrow-backed text columns (backpain_outcomes.text_columns)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from backpain_outcomes.text_columns import same_text


def _chunked(parts, kind=None):
    kind = kind or pa.large_string()
    return pd.Series(pd.array(pa.chunked_array([pa.array(p, kind) for p in parts], kind), dtype="str"))


@pytest.mark.parametrize("a,b,expected", [
    (["p1", "p2", "p3"], ["p1", "p2", "p3"], True),
    (["p1", "p2", "p3"], ["p1", "p3", "p2"], False),  # the same ids in another order
    (["p1", "p2"], ["p1", "p2", "p3"], False),  # one more id
    (["p1", None, "p3"], ["p1", None, "p3"], True),  # missing in the same place
    (["p1", None, "p3"], ["p1", "p3", None], False),
    (["p1", "", "p3"], ["p1", None, "p3"], False),  # empty text is not missing
    (["P1"], ["p1"], False),  # case counts
    ([], [], True),
])
def test_same_text_compares_values_in_order(a, b, expected):
    assert same_text(pd.Series(a, dtype="str"), pd.Index(b, dtype="str")) is expected


def test_same_text_whatever_the_chunks_and_offsets_type():
    # values are compared, not their layout: chunks cut in different places, 32- and 64-bit offsets, a slice
    a = _chunked([["p1", "p2"], ["p3", None, "p5"]])
    b = _chunked([["p1"], ["p2", "p3", None], ["p5"]], pa.string())
    assert same_text(a, b) and same_text(b, a)
    c = pd.Series(["p0", "p1", "p2", "p3", None, "p5"], dtype="str").iloc[1:]
    assert same_text(a, c)
    assert not same_text(a, _chunked([["p1", "p2"], ["p3", None, "p6"]]))


def test_same_text_is_false_for_other_columns():
    # object columns and numbers are never taken for the same text (the callers then look ids up by hashing)
    ids = pd.Series(["p1", "p2"], dtype="str")
    assert not same_text(ids, pd.Series(["p1", "p2"], dtype=object))
    assert not same_text(pd.Series([1, 2]), pd.Series([1, 2]))
    assert not same_text(ids, ["p1", "p2"])


def _dictionary_column(indices, dictionary, cut=None):
    """A chunked dictionary column (chunks cut at ``cut``) as a Parquet file read with dictionaries gives it."""
    d = pa.array(dictionary, pa.large_string())
    idx = pa.array(indices, pa.int32())
    cuts = [0, *(cut or []), len(indices)]
    return pa.chunked_array([pa.DictionaryArray.from_arrays(idx.slice(a, b - a), d) for a, b in zip(cuts, cuts[1:])])


@pytest.mark.parametrize("indices,dictionary,expected", [
    ([0, 0, 1, 2, 2, 2], ["a", "b", "c"], True),  # sorted ids: counted up, dictionary increasing
    ([0, 1, 0, 2, 1], ["b", "a", "c"], True),  # first seen in order; dictionary not sorted
    ([1, 0, 2], ["a", "b", "c"], False),  # not numbered in the order first seen
    ([0, 0, 2, 2], ["a", "b", "c"], False),  # "b" unused (counted up by 2)
    ([0, 1, 1], ["a", "b", "c"], False),  # "c" unused at the end
    ([0, None, 1, None, 2], ["a", "b", "c"], True),  # missing values: code -1
    ([None, 0, 1], ["a", "b"], True),
    ([0, 1, 2], ["a", "b", "a"], False),  # a dictionary with a value twice
    ([0, 1, 2], ["a", "b", "b"], False),  # (not increasing at its end)
    ([], [], True),
    ([None, None], [], True),
])
def test_dictionary_codes_are_factorize_codes_or_none(indices, dictionary, expected):
    # the codes given must be exactly pd.factorize's of the decoded values, and None is given whenever they would
    # not be (a dictionary with a repeated value, an unused value, values not numbered as first seen); checked
    # with the column in one chunk and cut in three
    from backpain_outcomes.text_columns import dictionary_codes

    for cut in (None, [1, 3] if len(indices) > 3 else None):
        col = _dictionary_column(indices, dictionary, cut)
        found = dictionary_codes(col, pa.array(dictionary, pa.large_string()))
        assert (found is not None) is expected
        if found is not None:
            codes, uniques = pd.factorize(pd.Series([None if i is None else dictionary[i] for i in indices],
                                                    dtype="str"))
            assert found[0].tolist() == codes.tolist() and found[1].tolist() == list(uniques)


def test_dictionary_codes_agree_with_factorize_on_random_columns():
    # 400 random columns, half of them with rows sorted by value (the path without hashing), some with missing
    # values, unused or repeated dictionary entries, long enough to span several blocks of the check; fewer and
    # more than 128 values (8-bit codes or not)
    from backpain_outcomes.text_columns import dictionary_codes

    rng = np.random.default_rng(17)
    for trial in range(400):
        k = int(rng.integers(1, 40) if trial % 5 else rng.integers(120, 300))  # (below and above 128 values)
        words = [f"w{j:03d}" for j in rng.permutation(k)] if trial % 3 else [f"w{j:03d}" for j in range(k)]
        if trial % 7 == 0:
            words[-1] = words[0]  # a repeated entry
        n = int(rng.choice([5, 200, 70_000 + trial]))
        idx = rng.integers(0, k, n)
        if trial % 2:
            idx = np.sort(idx)
        valid = rng.random(n) > (0.1 if trial % 5 == 0 else 0.0)
        values = [words[i] if v else None for i, v in zip(idx, valid)]
        order = {w: j for j, w in enumerate(dict.fromkeys(w for w in values if w is not None))}
        dictionary = sorted(order, key=order.get) if trial % 4 else words
        where: dict = {}
        for j, w in enumerate(dictionary):
            where.setdefault(w, j)
        indices = [None if w is None else where[w] for w in values]
        col = _dictionary_column(indices, dictionary, [n // 3])
        found = dictionary_codes(col, pa.array(dictionary, pa.large_string()))
        codes, uniques = pd.factorize(pd.Series(values, dtype="str"))
        proper = len(set(dictionary)) == len(dictionary) and list(uniques) == list(dictionary)
        assert (found is not None) is proper
        if found is not None:
            assert np.array_equal(found[0], codes)
