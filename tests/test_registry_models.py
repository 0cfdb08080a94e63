"""The model analyses of a partitioned study (mixed model, pooled recovery curves, trajectory classes) against
the same study in memory: the expected values are the in-memory results of the package on the same rows, which
tests/test_mixed.py, test_curves.py and test_trajectories.py check against lme4, statsmodels and scipy."""

import warnings

import numpy as np
import pandas as pd
import pytest

from backpain_outcomes import lmm_fast, registry_models  # noqa: F401 - registers the partitioned implementations
from backpain_outcomes.curves import RecoveryCurves, fit_recovery_curves
from backpain_outcomes.lmm_fast import GroupStats, fit_lmm, fit_lmm_stats
from backpain_outcomes.mixed import MixedModelResult, fit_mixed_model
from backpain_outcomes.registry import load_partitioned, write_partitioned
from backpain_outcomes.registry_partitions import SequentialPartitions
from backpain_outcomes.simulate import simulate_study
from backpain_outcomes.trajectories import TrajectoryResult, fit_trajectories

TOL = 1e-8  # issue 16: model estimates equal in memory to 1e-8


@pytest.fixture(scope="module")
def simulated():
    return simulate_study(300, seed=2, return_frames=True)  # every modality with follow-up: the default formula fits


@pytest.fixture(scope="module")
def study(simulated):
    return simulated[0]


@pytest.fixture(scope="module")
def parts(study):
    return SequentialPartitions.split(study, 3)


def _same_mixed(mem, part):
    assert type(part) is MixedModelResult
    assert list(part.fe_params.index) == list(mem.fe_params.index) and part.nobs == mem.nobs
    assert part.n_groups == mem.n_groups and part.notes == mem.notes
    for a, b in [(mem.fe_params, part.fe_params), (mem.bse_fe, part.bse_fe), (mem.cov_re, part.cov_re),
                 (mem.cov_fe, part.cov_fe), (mem.scale, part.scale), (mem.llf, part.llf),
                 (mem.random_effects, part.random_effects.loc[mem.random_effects.index])]:
        np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float), rtol=0, atol=TOL)


@pytest.mark.parametrize("kwargs", [
    {},  # random intercept and slope, REML, modality levels global across partitions
    {"re_formula": "1", "reml": False},
    {"formula": "score ~ day + baseline + sex + age", "reml": False},  # a text column; slope variance at 0
    {"formula": "score ~ day * modality + chronicity + baseline", "origin": "first_contact"},
])
def test_mixed_model_equals_in_memory(study, parts, kwargs):
    mem = fit_mixed_model(study, **kwargs)
    part = fit_mixed_model(parts, **kwargs)
    _same_mixed(mem, part)
    np.testing.assert_allclose(part.mean_curves()["predicted"], mem.mean_curves()["predicted"], rtol=0, atol=TOL)


def test_mixed_model_groups_spanning_partitions(study, parts):
    # both sexes have episodes in every partition: their statistics are added up by group, not concatenated
    kwargs = {"formula": "score ~ day + baseline", "re_formula": "1", "groups": "sex"}
    _same_mixed(fit_mixed_model(study, **kwargs), fit_mixed_model(parts, **kwargs))
    X = np.column_stack([np.ones(8), np.arange(8.0)])
    y, g = np.array([1.0, 3, 2, 5, 4, 6, 5, 8]), np.repeat([0, 1], 4)
    halves = [GroupStats(X[i::2], X[i::2, :1], y[i::2], g[i::2]).compact() for i in (0, 1)]
    merged = GroupStats.merge(halves)
    assert merged.G == 2 and merged.size.tolist() == [4, 4]
    np.testing.assert_allclose(fit_lmm_stats(merged).beta, fit_lmm(X, X[:, :1], y, g).beta, atol=1e-10)


def test_mixed_model_of_one_partition(study):
    # Partitions.reduce hands back the only result without combining it: it must still be merged
    kwargs = {"formula": "score ~ day + baseline"}
    _same_mixed(fit_mixed_model(study, **kwargs), fit_mixed_model(SequentialPartitions.split(study, 1), **kwargs))


def test_mixed_model_summed_in_blocks_of_groups(study, parts, monkeypatch):
    # the driver sums the deviance and its derivatives over blocks of groups (memory bounded at registry scale)
    whole = fit_mixed_model(study)
    monkeypatch.setattr(lmm_fast, "BLOCK_GROUPS", 37)
    _same_mixed(whole, fit_mixed_model(parts))
    _same_mixed(whole, fit_mixed_model(study))


def _buffer_bytes(frame: pd.DataFrame) -> int:
    """Bytes of the buffers a frame's columns keep alive (an Arrow slice keeps its whole parent buffer)."""
    total = 0
    for c in frame.columns:
        arr = frame[c].array
        if hasattr(arr, "_pa_array"):
            total += arr._pa_array.get_total_buffer_size()
        else:
            values = np.asarray(arr)
            total += values.base.nbytes if isinstance(values.base, np.ndarray) else values.nbytes
    return total


def test_design_template_does_not_keep_the_partition_alive(study):
    # The 10^7 run: each worker held the first pass's results of all its partitions until the last one finished,
    # and a 50-row template cut with head() kept the whole partition's Arrow string buffers (about 50 MB each).
    from backpain_outcomes.registry_mixed import TEMPLATE_ROWS, _levels

    out = _levels(study, "nrs", "onset", "score ~ day * modality + baseline", "~ day", "episode_id")
    sample = out["sample"]
    assert len(sample) == TEMPLATE_ROWS and out["n_complete"] > 50 * TEMPLATE_ROWS
    whole = study.analysis_frame("nrs", origin="onset")
    # with head() instead of take() the template's columns held 195,803 bytes here, about twice this bound
    assert _buffer_bytes(sample) < 200 * TEMPLATE_ROWS * len(sample.columns)
    assert _buffer_bytes(whole) > 20 * _buffer_bytes(sample)


def test_mixed_model_refusals_name_the_argument(study, parts):
    with pytest.raises(ValueError, match="engine='statsmodels'"):
        fit_mixed_model(parts, engine="statsmodels")
    with pytest.raises(ValueError, match="center"):
        fit_mixed_model(parts, "score ~ day + center(age)")
    with pytest.raises(ValueError, match="dya"):  # the in-memory check of the formula
        fit_mixed_model(parts, "score ~ dya")
    with pytest.raises(ValueError) as mem_err:
        fit_mixed_model(study, instrument="vas")
    with pytest.raises(ValueError) as part_err:
        fit_mixed_model(parts, instrument="vas")
    assert str(part_err.value) == str(mem_err.value)


def _same_curves(mem, part):
    assert type(part) is RecoveryCurves and list(part.table.columns) == list(mem.table.columns)
    pd.testing.assert_frame_equal(part.table.select_dtypes(exclude="number"), mem.table.select_dtypes(exclude="number"))
    np.testing.assert_allclose(part.table.select_dtypes("number").to_numpy(float),
                               mem.table.select_dtypes("number").to_numpy(float), rtol=TOL, atol=TOL)
    assert list(part.cov) == list(mem.cov) and part.notes == mem.notes
    for key in mem.cov:
        np.testing.assert_allclose(part.cov[key], mem.cov[key], rtol=TOL, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"by": None}, {"by": "sex", "origin": "first_contact", "scale": "100"}])
def test_recovery_curves_equal_in_memory(study, parts, kwargs):
    with warnings.catch_warnings(record=True) as mem_warned:
        warnings.simplefilter("always")
        mem = fit_recovery_curves(study, progress=False, **kwargs)
    with warnings.catch_warnings(record=True) as part_warned:
        warnings.simplefilter("always")
        part = fit_recovery_curves(parts, progress=False, **kwargs)
    _same_curves(mem, part)
    assert [str(w.message) for w in part_warned] == [str(w.message) for w in mem_warned]


def test_recovery_curves_refuse_the_bootstrap(parts):
    with pytest.raises(ValueError, match="se='bootstrap'"):
        fit_recovery_curves(parts, se="bootstrap")


def test_trajectories_equal_in_memory(study, parts):
    kwargs = {"k": [1, 2, 3], "n_init": 4, "seed": 3, "day": 200, "min_n": 5}
    mem, part = fit_trajectories(study, **kwargs), fit_trajectories(parts, **kwargs)
    assert type(part) is TrajectoryResult and part.best_k == mem.best_k and part.notes == mem.notes
    num = mem.table.select_dtypes("number").columns
    np.testing.assert_allclose(part.table[num].to_numpy(float), mem.table[num].to_numpy(float), rtol=TOL, atol=TOL)
    for k in kwargs["k"]:
        a, b = mem.select(k), part.select(k)
        np.testing.assert_allclose(b.fits[k].beta, a.fits[k].beta, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(b.fits[k].sigma2, a.fits[k].sigma2, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(b.sizes["share"], a.sizes["share"], rtol=TOL, atol=TOL)
        pd.testing.assert_frame_equal(b.classes, a.classes, rtol=TOL, atol=TOL)
    pd.testing.assert_frame_equal(part.crosstab("modality"), mem.crosstab("modality"))


def test_on_a_two_worker_dask_cluster(simulated, tmp_path):
    """The three analyses of a registry written as Parquet and loaded on a local cluster of two workers."""
    distributed = pytest.importorskip("distributed")
    study, _, frames = simulated
    directory = write_partitioned(frames, tmp_path / "registry", patients_per_partition=100)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        with distributed.Client(cluster) as client:
            part = load_partitioned(directory, client=client)
            assert part.n_partitions == 3
            _same_mixed(fit_mixed_model(study), fit_mixed_model(part))
            _same_curves(fit_recovery_curves(study, progress=False), fit_recovery_curves(part, progress=False))
            kwargs = {"k": [1, 2], "n_init": 3}
            mem, traj = fit_trajectories(study, **kwargs), fit_trajectories(part, **kwargs)
            np.testing.assert_allclose(traj.table["loglik"], mem.table["loglik"], rtol=TOL)
            pd.testing.assert_frame_equal(traj.classes, mem.classes, rtol=TOL, atol=TOL)
    finally:
        cluster.close()
