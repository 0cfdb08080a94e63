"""The registry path (Parquet partitioned by patient, analysed on a 2-worker Dask cluster) against the same
study in memory: the expected values are the in-memory results of the package itself on the same rows."""

import warnings

import numpy as np
import pandas as pd
import pytest

from backpain_outcomes.claims import test_resolution_claim as claim_test
from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning
from backpain_outcomes.loading import load_study
from backpain_outcomes.registry import load_partitioned, simulate_partitioned, write_partitioned
from backpain_outcomes.registry_partitions import SequentialPartitions
from backpain_outcomes.registry_store import SOURCE_ROW
from backpain_outcomes.resolution import resolution_curve, time_to_resolution
from backpain_outcomes.simulate import simulate_study, write_study

pytest.importorskip("distributed")

TODAY = "2030-01-01"


@pytest.fixture(scope="module")
def csv_study(tmp_path_factory):
    """A simulated study written as CSV files, with bad rows injected into three tables."""
    _, _, frames = simulate_study(200, seed=11, untreated_resolved_by_42=0.5, return_frames=True)
    frames = {k: v.copy() for k, v in frames.items()}
    sc = frames["scores"]
    sc.loc[sc.index[30], "score"] = 14  # NRS out of range (0-10)
    sc = pd.concat([sc, sc.iloc[[40]]], ignore_index=True)  # an exact duplicate, set aside
    frames["scores"] = sc
    frames["sessions"].loc[frames["sessions"].index[5], "modality"] = "reiki"  # not in the vocabulary
    frames["episodes"].loc[frames["episodes"].index[150], "onset_date"] = "2021-02-30"  # no such day
    root = tmp_path_factory.mktemp("registry")
    return write_study(frames, root / "csv"), root


@pytest.fixture(scope="module")
def registry(csv_study):
    src, root = csv_study
    return write_partitioned(src, root / "reg", patients_per_partition=50)


@pytest.fixture(scope="module")
def both(csv_study, registry, client):
    src, _ = csv_study
    with pytest.warns(ExcludedRowsWarning):
        mem = load_study(src, errors="exclude", today=TODAY)
    with pytest.warns(ExcludedRowsWarning):
        part = load_partitioned(registry, client=client, errors="exclude", today=TODAY)
    yield mem, part
    part.close()


def test_episodes_are_never_split_across_partitions(registry):
    where = {}
    for table in ("episodes", "sessions", "scores"):
        for f in sorted((registry / table).glob("part-*.parquet")):
            k = int(f.stem.split("-")[1])
            for e in pd.read_parquet(f, columns=["episode_id"])["episode_id"].dropna().unique():
                where.setdefault(e, set()).add(k)
    assert len(where) == 200
    assert all(len(ks) == 1 for ks in where.values())
    assert len(list((registry / "scores").glob("part-*.parquet"))) == 4  # 200 patients, 50 per partition


def test_problems_name_the_same_file_and_line_as_in_memory(csv_study, registry, client):
    src, _ = csv_study
    with pytest.raises(DataValidationError) as mem:
        load_study(src, today=TODAY)
    with pytest.raises(DataValidationError) as part:
        load_partitioned(registry, client=client, today=TODAY)
    a, b = (e.value.problems.astype(str) for e in (mem, part))
    pd.testing.assert_frame_equal(a, b)
    # the injected rows, at their lines in the CSV files (position + 2: below the header)
    assert b[["table", "row", "reason"]].values.tolist() == [
        ["episodes", "152", "bad_date"], ["scores", "32", "out_of_range"], ["sessions", "7", "unknown_modality"]]


def test_exclusions_and_flow_are_those_of_the_whole_study(both):
    mem, part = both
    pd.testing.assert_frame_equal(mem.exclusions.astype(str), part.exclusions.astype(str))
    assert set(part.exclusions["reason"]) >= {"duplicate"}
    pd.testing.assert_frame_equal(mem.flow(), part.flow())
    assert part.instruments == mem.instruments


def test_claim_with_sensitivity_equals_in_memory(both):
    mem, part = both
    opts = {"claimed": 0.5, "day": 42, "origin": "first_contact", "sensitivity_days": (14, 84)}
    a, b = claim_test(mem, **opts), claim_test(part, **opts)
    assert type(a) is type(b)
    pd.testing.assert_frame_equal(a.table, b.table, rtol=1e-10, atol=1e-10)
    pd.testing.assert_frame_equal(a.sensitivity, b.sensitivity, rtol=1e-10, atol=1e-10)
    assert a.notes == b.notes and a.excluded == b.excluded
    assert a.relapses == pytest.approx(b.relapses, nan_ok=True)
    pd.testing.assert_frame_equal(a.events_table.reset_index(drop=True), b.events_table)


@pytest.mark.parametrize("by", [None, "modality", ["chronicity", "clinic_id"]])
def test_resolution_curve_equals_in_memory(both, by):
    mem, part = both
    with warnings.catch_warnings(record=True):  # small groups warn in both; the notes are compared below
        warnings.simplefilter("always")
        a = resolution_curve(mem, by=by, day=[14, 42, 182])
        b = resolution_curve(part, by=by, day=[14, 42, 182])
    for name in ("table", "steps", "medians"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), rtol=1e-10, atol=1e-10)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.notes == b.notes


def test_time_to_resolution_equals_in_memory(both):
    mem, part = both
    a, b = time_to_resolution(mem, "nrs<=2"), time_to_resolution(part, "nrs<=2")
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.notes == b.notes


def test_simulated_registry_is_reproducible_with_distinct_ids(tmp_path, client):
    opts = {"patients_per_partition": 12, "seed": 4, "untreated_resolved_by_42": 0.5}
    one, two = simulate_partitioned(tmp_path / "a", 30, **opts), simulate_partitioned(tmp_path / "b", 30, **opts)
    ids = pd.concat([pd.read_parquet(f) for f in sorted((one / "episodes").glob("*.parquet"))])
    assert ids["episode_id"].is_unique and len(ids) == 30  # 3 partitions: 12 + 12 + 6
    for f in sorted((one / "scores").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(two / "scores" / f.name))
    with load_partitioned(one, client=client) as part:
        rows = np.concatenate([pd.read_parquet(f)[SOURCE_ROW].to_numpy()
                               for f in sorted((one / "scores").glob("*.parquet"))])
        assert part.n_partitions == 3 and part.rows_read["scores"] == len(rows)
        assert part.flow().set_index("stage").loc["episodes", "n"] == 30
    with pytest.raises(FileExistsError):
        simulate_partitioned(tmp_path / "a", 30, **opts)


def test_sequential_partitions_split_whole_patients():
    study, _ = simulate_study(60, seed=2)
    parts = SequentialPartitions.split(study, 3)
    assert parts.n_partitions == 3
    assert sum(parts.map(lambda s: len(s.episodes))) == 60
    pd.testing.assert_frame_equal(parts.flow(), study.flow())
    a, b = claim_test(study, sensitivity=False, min_n=1), claim_test(parts, sensitivity=False, min_n=1)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_sequential_partitions_refuse_a_patient_or_an_episode_in_two_studies():
    """A patient in two partitions would be counted in each (its episodes twice in the claim's denominator), and
    so would an episode id used in two studies: refused by name."""
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p1", "p2"],
                             "onset_date": ["2024-01-01", "2024-06-01", "2024-01-01"]})
    scores = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p1", "p2"],
                           "date": ["2024-01-05", "2024-06-05", "2024-01-05"], "instrument": "nrs", "score": 5})
    study = load_study(episodes=episodes, scores=scores, today=TODAY)
    with pytest.raises(ValueError, match=r"^studies: 1 patient\(s\) are in more than one partition \('p1'\); "):
        SequentialPartitions([study.subset(["e1"]), study.subset(["e2", "e3"])])
    other = load_study(episodes=episodes.assign(patient_id="p9").iloc[:1], scores=scores.assign(patient_id="p9").iloc[:1],
                       today=TODAY)  # another patient's episode under the id e1
    with pytest.raises(ValueError, match=r"^studies: 1 episode\(s\) are in more than one partition \('e1'\)"):
        SequentialPartitions([study.subset(["e1"]), other])
    parts = SequentialPartitions([study.subset(["e1", "e2"]), study.subset(["e3"])])  # whole patients
    assert parts.map(lambda s: len(s.episodes)) == [2, 1]
    big, _ = simulate_study(60, seed=2)
    ids = big.episodes["episode_id"].to_numpy()
    with pytest.raises(ValueError, match=r"^studies: 3 patient\(s\) are in more than one partition"):
        SequentialPartitions([big.subset(ids[:30]), big.subset(ids[27:])])


def test_a_study_loaded_from_files_and_its_frames_are_written_alike(csv_study, registry, tmp_path):
    src, _ = csv_study
    with pytest.warns(ExcludedRowsWarning):
        study = load_study(src, errors="exclude", today=TODAY)
    again = write_partitioned(study, tmp_path / "again", patients_per_partition=50)  # its input files, read again
    for f in sorted((registry / "scores").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(again / "scores" / f.name))
    frames = {t: pd.read_csv(src / f"{t}.csv", dtype=str, keep_default_na=False) for t in ("episodes", "scores")}
    out = write_partitioned(frames, tmp_path / "frames", patients_per_partition=100)
    rows = pd.read_parquet(out / "scores" / "part-00000.parquet")[SOURCE_ROW]
    assert rows.iloc[0] == 2 and rows.is_monotonic_increasing  # a DataFrame's rows as in a CSV export
    with pytest.raises(FileExistsError):
        write_partitioned(frames, tmp_path / "frames")
    assert write_partitioned(frames, tmp_path / "frames", force=True) == out


def _episode_ids(study):
    return list(study.episodes["episode_id"])


def _slow_first(study, first_id):
    import time

    ids = sorted(study.episodes["episode_id"])
    if first_id in ids:
        time.sleep(0.5)  # this partition ends last
    return ids


def test_map_returns_results_in_partition_order_as_they_end(tmp_path, client):
    """map takes each result as its task ends (so workers do not hold them all); the list is still in partition
    order when the first partition ends last."""
    reg = simulate_partitioned(tmp_path / "reg", 60, patients_per_partition=10, seed=4)
    with load_partitioned(reg, client=client, today=TODAY, persist=False) as part:
        first = part.map(_episode_ids)[0][0]
        mapped = part.map(_slow_first, first)
    assert [ids[0] for ids in mapped] == sorted(ids[0] for ids in mapped)  # ids are numbered by partition
    assert mapped[0][0] == first and sum(len(ids) for ids in mapped) == 60


def test_reduce_folds_in_partition_order_with_a_bounded_number_of_tasks(tmp_path, client):
    """reduce submits at most IN_FLIGHT tasks per worker thread and the next as each result is taken; the fold is
    still in partition order: the concatenated episode ids equal map's, partition by partition (12 partitions,
    more than the 4 tasks in flight on the 2-thread cluster, and persist=False so every task loads again)."""
    from backpain_outcomes import registry

    reg = simulate_partitioned(tmp_path / "reg", 120, patients_per_partition=10, seed=3)
    with load_partitioned(reg, client=client, today=TODAY, persist=False) as part:
        assert part.n_partitions == 12 > registry.IN_FLIGHT * sum(client.nthreads().values())
        mapped = part.map(_episode_ids)
        folded = part.reduce(_episode_ids, lambda a, b: a + b)
    assert folded == [e for ids in mapped for e in ids]
    assert len(set(folded)) == len(folded) == 120


def test_a_closed_registry_analyses_nothing_and_says_so(tmp_path, client):
    """After close() (or the with block), an analysis is a ValueError naming the registry and what to do, whether
    the registry started its own cluster or was given a client (which it leaves running): not Dask's
    ClosedClientError, and not a silent reload of the partitions."""
    reg = simulate_partitioned(tmp_path / "reg", 40, patients_per_partition=20, seed=5)
    with load_partitioned(reg, client=client, today=TODAY) as part:
        assert not part.closed
        expected = claim_test(part).table
    assert part.closed and client.status == "running"
    for run in (lambda: claim_test(part), lambda: part.map(_episode_ids),
                lambda: part.reduce(_episode_ids, lambda a, b: a + b)):
        with pytest.raises(ValueError, match=r"registry .*reg is closed .*load_partitioned\("):
            run()
    with load_partitioned(reg, client=client, today=TODAY) as again:  # loading again works
        pd.testing.assert_frame_equal(claim_test(again).table, expected)
