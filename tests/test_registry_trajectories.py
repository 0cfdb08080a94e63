"""Trajectory classes of a partitioned study (EM on per-partition sums, registry_lcga) against the same study in
memory: the expected values are the in-memory results of the package on the same rows (tests/test_lcga.py and
test_trajectories.py check those against R flexmix, least squares and simulated classes). Issue 16: estimates
equal to 1e-8, identical classes, sizes, labels and notes."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study

from backpain_outcomes import registry_models  # noqa: F401 - registers the partitioned implementations
from backpain_outcomes.lcga import TimeBasis
from backpain_outcomes.registry import load_partitioned, write_partitioned
from backpain_outcomes.registry_partitions import HeldStates, SequentialPartitions
from backpain_outcomes.simulate import simulate_study
from backpain_outcomes.trajectories import TrajectoryResult, fit_trajectories

TOL = 1e-8


@pytest.fixture(scope="module")
def simulated():
    return simulate_study(240, seed=4, return_frames=True)


@pytest.fixture(scope="module")
def study(simulated):
    return simulated[0]


@pytest.fixture(scope="module")
def sequential(study):
    return SequentialPartitions.split(study, 3)


@pytest.fixture(scope="module")
def on_dask(simulated, tmp_path_factory, client):
    directory = write_partitioned(simulated[2], tmp_path_factory.mktemp("traj") / "reg", patients_per_partition=70)
    with load_partitioned(directory, client=client) as part:
        assert part.n_partitions == 4
        yield part


def _same(mem, part):
    assert type(part) is TrajectoryResult
    assert part.best_k == mem.best_k and part.k == mem.k and part.notes == mem.notes
    num = mem.table.select_dtypes("number").columns
    np.testing.assert_allclose(part.table[num].to_numpy(float), mem.table[num].to_numpy(float), rtol=TOL, atol=TOL)
    assert part.table.drop(columns=num).equals(mem.table.drop(columns=num))  # converged, note
    for k in mem.table["k"]:
        a, b = mem.select(k), part.select(k)
        for x, y in [(a.fits[k].beta, b.fits[k].beta), (a.fits[k].sigma2, b.fits[k].sigma2),
                     (a.fits[k].pi, b.fits[k].pi), (a.fits[k].post, b.fits[k].post)]:
            np.testing.assert_allclose(y, x, rtol=TOL, atol=TOL)
        pd.testing.assert_frame_equal(b.classes, a.classes, rtol=TOL, atol=TOL)
        pd.testing.assert_frame_equal(b.sizes, a.sizes, rtol=TOL, atol=TOL)
        pd.testing.assert_frame_equal(b.curves, a.curves, rtol=TOL, atol=TOL)
        assert b.notes == a.notes


CASES = [
    {"k": [1, 2, 3], "n_init": 3, "seed": 0, "day": 365, "origin": "first_contact"},  # spline, class variances
    {"k": [2, 3], "n_init": 3, "seed": 7, "time": "polynomial", "variance": "common", "min_n": 25},
    {"k": [1, 2], "n_init": 2, "seed": 3, "day": 120, "time": "spline", "n_knots": 3, "variance": "common"},
    {"k": [3], "n_init": 2, "seed": 11, "time": "polynomial", "degree": 1, "min_n": 40, "short_iter": 5},
]


@pytest.mark.parametrize("kwargs", CASES)
def test_sequential_partitions_equal_in_memory(study, sequential, kwargs):
    _same(fit_trajectories(study, **kwargs), fit_trajectories(sequential, **kwargs))


def test_notes_of_classes_cut_short_and_rigid_curves_are_those_in_memory(study, sequential):
    kwargs = {"k": [4], "n_init": 3, "seed": 1, "time": "polynomial", "min_n": 30, "origin": "first_contact"}
    mem = fit_trajectories(study, **kwargs)
    assert any("its curve stops there" in n for n in mem.notes)  # a class whose curve is cut short
    assert any("too rigid" in n for n in mem.notes)
    _same(mem, fit_trajectories(sequential, **kwargs))


@pytest.mark.parametrize("kwargs", [CASES[0], CASES[1]])
def test_on_a_two_worker_dask_cluster_equal_in_memory(study, on_dask, kwargs):
    part = fit_trajectories(on_dask, **kwargs)
    _same(fit_trajectories(study, **kwargs), part)


def test_plot_and_crosstab_read_the_partitions(study, on_dask):
    kwargs = {"k": [2], "n_init": 2, "seed": 2}
    mem, part = fit_trajectories(study, **kwargs), fit_trajectories(on_dask, **kwargs)
    pd.testing.assert_frame_equal(part.crosstab("modality"), mem.crosstab("modality"))
    pd.testing.assert_frame_equal(part.crosstab("modality").attrs["percent"], mem.crosstab("modality").attrs["percent"])
    lines = [[(line.get_xdata().tolist(), line.get_ydata().tolist(), line.get_color()) for line in r.plot(
        n_spaghetti=30, seed=4).get_lines()] for r in (mem, part)]
    assert len(lines[0]) == 30 + 2 and lines[1][:30] == lines[0][:30]  # the same episodes' rows, same colours
    np.testing.assert_allclose([y for _, ys, _ in lines[1][30:] for y in ys],
                               [y for _, ys, _ in lines[0][30:] for y in ys], rtol=TOL)
    for bad in ("modaltiy", "episode_id"):  # episode_id: KeyError 'episode_id' before, in memory too
        with pytest.raises(ValueError, match=bad) as err:
            part.crosstab(bad)
        with pytest.raises(ValueError) as mem_err:
            mem.crosstab(bad)
        assert str(err.value) == str(mem_err.value)


@pytest.mark.parametrize("kw", [
    {"instrument": "pain"}, {"instrument": "rmdq"}, {"k": 0}, {"k": [1, 500]}, {"time": "fourier"}, {"degree": 4},
    {"n_knots": -1}, {"origin": "start"}, {"n_init": 0}, {"seed": 1.5}, {"variance": "pooled"}, {"max_iter": 0},
    {"tol": 0}, {"tol": 1e-16}, {"short_iter": 0}, {"n_refine": 0}, {"smallest_class": 5}, {"day": -3}, {"min_n": 0},
])
def test_bad_arguments_give_the_in_memory_errors(study, sequential, kw):
    with pytest.raises((ValueError, TypeError)) as mem:
        fit_trajectories(study, **kw)
    with pytest.raises(mem.type, match=None) as part:
        fit_trajectories(sequential, **kw)
    assert str(part.value) == str(mem.value)


@pytest.mark.parametrize("scores", [[(0, 5), (7, 5), (30, 5)], [(0, 5)]])
def test_constant_scores_and_single_measurements_give_the_in_memory_errors(scores):
    tiny = tiny_study({f"e{i}": scores for i in range(6)})
    with pytest.raises(ValueError) as mem:
        fit_trajectories(tiny, k=[1, 2])
    with pytest.raises(ValueError) as part:
        fit_trajectories(SequentialPartitions.split(tiny, 2), k=[1, 2])
    assert str(part.value) == str(mem.value) and ("vary" in str(mem.value) or "there are 0" in str(mem.value))


def test_max_iter_warns_as_in_memory(study, sequential):
    kwargs = {"k": [2], "n_init": 2, "max_iter": 3}
    with warnings.catch_warnings(record=True) as mem_w:
        warnings.simplefilter("always")
        mem = fit_trajectories(study, **kwargs)
    with warnings.catch_warnings(record=True) as part_w:
        warnings.simplefilter("always")
        part = fit_trajectories(sequential, **kwargs)
    assert [str(w.message) for w in part_w] == [str(w.message) for w in mem_w] != []
    _same(mem, part)


def test_held_states_stay_on_the_workers(on_dask, sequential):
    for parts in (on_dask, sequential):
        held = parts.hold(lambda s: len(s.episodes))
        n = held.map(lambda n_ep, x: n_ep * x, 2)
        assert n == [2 * len(e) for e in parts.map(lambda s: s.episodes)]
        assert held.map(lambda n_ep, e, x: n_ep + e + x, 1, each=list(range(parts.n_partitions))) == [
            m // 2 + k + 1 for k, m in enumerate(n)]
        held.release()
        assert held.states == []
    held = [p.hold(lambda s: len(s.episodes)) for p in (on_dask, sequential)]
    assert type(held[0]).__name__ == "HeldFutures" and type(held[1]) is HeldStates
    for h in held:
        h.release()


def test_a_basis_sent_to_a_worker_process_still_works():
    # Dask's serialisation may give the knots back as an unaligned buffer, which scipy's B-spline refuses
    protocol = pytest.importorskip("distributed.protocol")
    day = np.arange(0.0, 400.0)
    basis = TimeBasis.from_counts(day, np.ones(400, int), "spline")
    sent = protocol.deserialize(*protocol.serialize(basis))
    np.testing.assert_array_equal(sent(day), basis(day))


def test_days_that_do_not_identify_the_spline_give_the_in_memory_curves():
    # 4 distinct days (ties straddling the knot quantiles) for a 7-coefficient spline: the curves between the
    # measured days came from rounding noise (1e-4 apart in memory and over partitions); now minimum-norm, equal.
    rng = np.random.default_rng(1)
    tie = {f"e{i:03d}": [(d, float(np.clip(round(6 - 0.05 * d * (i % 2) + rng.normal(0, 1)), 0, 10)))
                         for d in (0, 0, 10, 10, 10, 10, 50, 50, 100)] for i in range(30)}
    tiny = tiny_study(tie)
    kwargs = {"k": [1, 2], "n_init": 3, "n_knots": 3}
    mem = fit_trajectories(tiny, **kwargs)
    assert any(n.startswith("the 4 distinct days identify only 4 of the 7 coefficients") for n in mem.notes)
    _same(mem, fit_trajectories(SequentialPartitions.split(tiny, 3), **kwargs))


def test_no_class_with_min_n_episodes_and_a_whole_float_seed(study, sequential):
    # min_n above the number of episodes: no curve is drawn (was "No objects to concatenate" in both fits);
    # seed=3.0 passes check_int, so it must seed as 3 (numpy's SeedSequence refused the float).
    kwargs = {"k": [1, 2], "n_init": 2, "min_n": 10_000, "seed": 3.0}
    mem = fit_trajectories(study, **kwargs)
    assert mem.curves.empty and list(mem.curves.columns) == ["class", "label", "day", "mean", "ci_low", "ci_high"]
    assert sum("its curve is not drawn" in n for n in mem.notes) == mem.k
    _same(mem, fit_trajectories(sequential, **kwargs))
    _same(fit_trajectories(study, **{**kwargs, "seed": 3}), mem)


def test_a_pickled_result_keeps_its_tables_and_says_why_plot_and_crosstab_cannot_read(study, on_dask):
    kwargs = {"k": [1, 2], "n_init": 2, "seed": 5}
    part = fit_trajectories(on_dask, **kwargs)
    unpickled = pickle.loads(pickle.dumps(part))  # TypeError: cannot pickle '_asyncio.Task' (the Dask client) before
    _same(fit_trajectories(study, **kwargs), unpickled)
    assert len(unpickled.plot(n_spaghetti=0).get_lines()) == len(part.sizes)  # the curves need no rows
    for call in (unpickled.plot, unpickled.crosstab):
        with pytest.raises(ValueError, match=r"unpickled.*fit again on load_partitioned\('.*reg'\)"):
            call()
    pd.testing.assert_frame_equal(part.crosstab(), fit_trajectories(study, **kwargs).crosstab())
    for same_link in (copy.copy(part), copy.deepcopy(part)):  # copies keep the registry
        pd.testing.assert_frame_equal(same_link.crosstab(), part.crosstab())


def test_a_closed_registry_gives_a_clear_error_not_a_dask_traceback(simulated, tmp_path):
    # load_partitioned without a client closes its own client on close(); a client of threads stands in for
    # it here (worker processes take 15 s to start on this machine): ClosedClientError before
    distributed = pytest.importorskip("distributed")
    directory = write_partitioned(simulated[2], tmp_path / "reg", patients_per_partition=120)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = distributed.Client(cluster)
    with load_partitioned(directory, client=client) as registry:
        result = fit_trajectories(registry, k=[2], n_init=1)
        client.close()
        cluster.close()
    for call, what in [(result.plot, "plot"), (result.crosstab, "crosstab")]:
        with pytest.raises(ValueError, match=rf"^{what} reads .* is closed .*: call {what} before closing the "
                                             r"registry, or fit again on load_partitioned\("):
            call()
    assert len(result.plot(n_spaghetti=0).get_lines()) == 2
    with pytest.raises(ValueError, match=r"fit_trajectories needs an open registry.*load_partitioned\("):
        fit_trajectories(registry, k=[2])


def test_a_class_at_the_ceiling_gives_the_in_memory_fit():
    # Half the episodes at ODI 100 with a rare 98: the class's residual sums were differences of numbers 10^5
    # times larger (sigma2 1.5e-10 apart, 9 EM iterations over partitions vs 8 in memory at 4000 episodes).
    rng = np.random.default_rng(5)
    rows = {f"h{i:04d}": [(d, 100.0 if rng.random() > 0.0005 else 98.0) if i % 2 else
                          (d, float(np.clip(round(60 - 0.4 * d + rng.normal(0, 8)), 0, 100)))
                          for d in (0, 7, 14, 28, 56, 90)] for i in range(4000)}
    tiny = tiny_study(rows, instrument="odi")
    kwargs = {"instrument": "odi", "k": [2, 3], "n_init": 2, "time": "polynomial"}
    mem = fit_trajectories(tiny, **kwargs)
    _same(mem, fit_trajectories(SequentialPartitions.split(tiny, 5), **kwargs))


def test_an_episode_in_two_partitions_is_an_error_not_two_episodes(study, monkeypatch):
    # Partitions that are not of whole patients (or an id shared by two patients' episodes) counted the
    # episode twice: E, BIC and the classes table (one row per copy) were wrong without a word. (In-memory
    # partitions refuse such studies themselves; the check of the fit is for partitions built otherwise.)
    from backpain_outcomes import registry_partitions

    ids = study.episodes["episode_id"].to_numpy()
    monkeypatch.setattr(registry_partitions, "check_whole_patients", lambda studies: None)
    parts = SequentialPartitions([study.subset(ids[:150]), study.subset(ids[140:])])
    with pytest.raises(ValueError, match=r"^10 episode id\(s\) have measurements in more than one partition"):
        fit_trajectories(parts, k=[1, 2], n_init=1)
