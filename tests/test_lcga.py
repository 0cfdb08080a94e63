"""The EM engine of latent class growth models: monotone log-likelihood, OLS for one class, R flexmix."""

from pathlib import Path

import numpy as np
import pandas as pd

import backpain_outcomes as bpo
from backpain_outcomes import lcga, registry_lcga

DATA = Path(__file__).parent / "data"


def test_loglik_never_decreases_and_seed_reproducible(example_study):
    a = bpo.fit_trajectories(example_study, k=[3], n_init=4, seed=5)
    path = a.fits[3].path
    assert np.all(np.diff(path) >= -1e-8 * np.abs(path[:-1]))
    b = bpo.fit_trajectories(example_study, k=[3], n_init=4, seed=5)
    pd.testing.assert_frame_equal(a.classes, b.classes)
    assert a.enumeration["loglik"].iat[0] == b.enumeration["loglik"].iat[0]


def test_one_class_is_ols_growth_curve():
    d = pd.read_csv(DATA / "trajectory_flexmix_check.csv").rename(columns={"u": "day"})
    tr = bpo.fit_trajectories(d, k=[1], time="polynomial")
    scale = d["day"].max()
    u = d["day"] / scale
    X = np.column_stack([np.ones(len(d)), u, u**2])
    beta = np.linalg.lstsq(X, d["score"], rcond=None)[0]
    resid = d["score"] - X @ beta
    s2 = resid @ resid / len(d)
    np.testing.assert_allclose(tr.fits[1].beta[:, 0], beta, rtol=1e-9)
    np.testing.assert_allclose(tr.fits[1].loglik, -0.5 * len(d) * (np.log(2 * np.pi * s2) + 1), rtol=1e-12)


def test_loglik_agrees_with_r_flexmix():
    # R flexmix 2.3: flexmix(score ~ u + I(u^2) | episode_id, k = k) on tests/data/trajectory_flexmix_check.csv,
    # best of 10 starts: logLik k=1 -11297.8794416, k=2 -9205.22146559, k=3 -8599.60050741 (df 4, 9, 14).
    # flexmix estimates sigma with RSS / (N - p); our ML estimate uses RSS / N, so our log-likelihood is the
    # maximum and lies at most ~5e-4 above flexmix's at the same solution.
    d = pd.read_csv(DATA / "trajectory_flexmix_check.csv")
    tr = bpo.fit_trajectories(d.rename(columns={"u": "day"}), k=range(1, 4), n_init=20, time="polynomial")
    r = np.array([-11297.8794416, -9205.22146559, -8599.60050741])
    ours = tr.enumeration["loglik"].to_numpy()
    assert np.all(ours >= r - 1e-6)
    np.testing.assert_allclose(ours, r, atol=1e-3)
    assert tr.enumeration["n_params"].tolist() == [4, 9, 14]


def test_in_memory_results_unchanged_by_the_partitioned_engine(example_study):
    # Expected: the package before issue 16's partitioned EM (commit dd3e3d1, run by hand on this example):
    # the random starts are drawn in the same sequence, so the fits are the same.
    tr = bpo.fit_trajectories(example_study, k=[1, 2, 3], n_init=4, seed=5)
    np.testing.assert_allclose(tr.table["loglik"], [-19685.577513624696, -16174.07919328074, -14889.389124808038],
                               rtol=1e-12)
    assert tr.table["n_iter"].tolist() == [2, 21, 20] and tr.best_k == 3
    np.testing.assert_allclose(tr.select(3).sizes["share"],
                               [0.16129150846771642, 0.5823702378540463, 0.25633825367823737], rtol=1e-10)
    poly = bpo.fit_trajectories(example_study, k=[2, 3], n_init=3, seed=11, time="polynomial", variance="common")
    np.testing.assert_allclose(poly.table["loglik"], [-16890.07713430751, -15753.9841061306], rtol=1e-12)
    assert poly.table["n_iter"].tolist() == [19, 23]


def test_exact_quantiles_are_numpys_bit_for_bit():
    rng = np.random.default_rng(0)
    probs = np.linspace(0, 1, 6)[1:-1]
    for n in (1, 2, 3, 7, 100, 1001):
        for x in (rng.integers(0, 30, n).astype(float), rng.exponential(50, n), np.round(rng.normal(0, 1, n), 1)):
            v, counts = np.unique(x, return_counts=True)
            assert np.array_equal(lcga.exact_quantiles(v, counts, probs), np.quantile(x, probs))
            thirds = [1 / 3, 2 / 3]
            assert np.array_equal(lcga.exact_quantiles(v / 7.3, counts, thirds), np.quantile(x / 7.3, thirds))
            for kind in ("spline", "polynomial"):
                a, b = lcga.TimeBasis(x, kind, n_knots=3), lcga.TimeBasis.from_counts(v, counts, kind, n_knots=3)
                assert a.scale == b.scale and np.array_equal(a(x), b(x))
                if kind == "spline":
                    assert np.array_equal(a.knots, b.knots)


def test_mstep_from_sums_of_two_halves_is_the_least_squares_fit():
    # One class with weights 1: beta is OLS of all rows, sigma2 = RSS / N (ML), pi = 1; the sums of two disjoint
    # sets of episodes add up to the sums of all of them.
    rng = np.random.default_rng(3)
    day = np.tile([0.0, 7, 30, 90, 180], 40)
    y = 7 - 4 * day / 180 + rng.normal(0, 1, len(day))
    basis = lcga.TimeBasis(day, "polynomial", degree=2)
    B = basis(day)
    starts = np.arange(0, len(day), 5)
    whole = lcga.SufficientStats(B, y, starts, np.full(40, 5.0))
    halves = [lcga.SufficientStats(B[:100], y[:100], starts[:20], np.full(20, 5.0)),
              lcga.SufficientStats(B[100:], y[100:], starts[:20], np.full(20, 5.0))]
    sums = [registry_lcga.weighted_sums(s, np.ones((20, 1))) for s in halves]
    added = {k: sums[0][k] + sums[1][k] for k in sums[0]}
    for k, v in registry_lcga.weighted_sums(whole, np.ones((40, 1))).items():
        np.testing.assert_allclose(added[k], v, rtol=1e-13)
    beta, sigma2, pi = registry_lcga.mstep_from_sums(added, 40, False, 1e-9)
    ols = np.linalg.lstsq(B, y, rcond=None)[0]
    np.testing.assert_allclose(beta[:, 0], ols, rtol=1e-8)
    np.testing.assert_allclose(sigma2, [np.sum((y - B @ ols) ** 2) / len(y)], rtol=1e-10)
    assert pi.tolist() == [1.0]


def test_unidentified_coefficients_are_zero_not_rounding_noise():
    # Days 0, 10, 50, 100 only and a 7-column spline: B'B has rank 4. The coefficients must be the minimum-norm
    # least-squares solution (np.linalg.lstsq, an SVD of B itself), whatever the order of the sums: a plain
    # solve with the 1e-10 ridge put rounding noise / 1e-10 (about 1e-4 here) in the null space.
    rng = np.random.default_rng(8)
    day = np.tile([0.0, 0, 10, 10, 10, 50, 100], 30)
    y = 6 - 3 * day / 100 + rng.normal(0, 1, len(day))
    B = lcga.TimeBasis(day, "spline", n_knots=3)(day)
    assert np.linalg.matrix_rank(B) == 4 < B.shape[1]
    reference = np.linalg.lstsq(B, y, rcond=None)[0]
    for order in (np.arange(len(y)), rng.permutation(len(y)), rng.permutation(len(y))):
        A, rhs = (B[order].T @ B[order])[None], (B[order].T @ y[order])[None]
        np.testing.assert_allclose(lcga.solve_classes(A, rhs)[:, 0], reference, rtol=1e-9, atol=1e-9)
    pinv = lcga.pinv_psd(B.T @ B)
    np.testing.assert_allclose(pinv, np.linalg.pinv(B.T @ B, rcond=1e-10, hermitian=True), rtol=1e-8, atol=1e-12)


def test_residual_sums_of_squares_keep_their_digits_at_a_ceiling():
    # An episode at 100 but one 98 (ODI ceiling); the direct sum of squared residuals over its rows is the
    # reference. yy - 2 b'beta + beta'S beta subtracts numbers of 6e4: errors of 2e-12 to 8e-12 (measured), so
    # log-likelihoods of a class with a small variance were noise at 1e-11 relative and decided which of two
    # runs at the same optimum won, differently in memory and over partitions. Around the episode's mean
    # (TimeBasis.constant) the error is below 2e-14.
    day = np.array([0.0, 7, 14, 28, 56, 90])
    y = np.array([100.0, 100, 100, 98, 100, 100])
    for kind in ("polynomial", "spline"):
        basis = lcga.TimeBasis(day, kind, degree=2)
        B = basis(day)
        np.testing.assert_allclose(B @ basis.constant(), np.ones(len(day)), rtol=1e-14)
        for shift in (1e-4, 1e-6):
            beta = np.linalg.lstsq(B, y, rcond=None)[0][:, None] + shift * np.arange(B.shape[1])[:, None]
            direct = np.sum((y - B @ beta[:, 0]) ** 2)
            suff = lcga.SufficientStats(B, y, np.array([0]), np.array([6.0]), basis.constant())
            ssr, resid = suff.ssr(beta, grad=True)
            assert abs(suff.ssr(beta)[0, 0] - direct) < 1e-13 and ssr[0, 0] == suff.ssr(beta)[0, 0]
            np.testing.assert_allclose(resid[0, 0], B.T @ (y - B @ beta[:, 0]), atol=1e-11)
