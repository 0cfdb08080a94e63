"""Per-episode recovery curves (batched fit) against scipy's curve_fit, episode by episode."""

import warnings

import numpy as np
import pytest
from conftest import tiny_study
from scipy.optimize import curve_fit

import backpain_outcomes as bpo
from backpain_outcomes.episode_curves import EpisodeCurves, fit_episode_curves
from backpain_outcomes.recovery_model import TAU_BOUNDS, exp_plateau, identifiable_tau, profile_start


def test_episode_fits_equal_curve_fit_loop(example_study):
    ep = fit_episode_curves(example_study, origin="first_contact").table.set_index("episode_id")
    frame = example_study.analysis_frame("nrs", origin="first_contact", include_baseline=True)
    n_ref_conv, compared, flat_valley = 0, 0, 0
    for eid, g in frame.groupby("episode_id"):
        if len(g) < 4:
            assert not ep.loc[eid, "converged"] and "fewer than" in ep.loc[eid, "note"]
            continue
        x, y = g["day"].to_numpy(float), g["score"].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, _ = curve_fit(exp_plateau, x, y, p0=profile_start(x, y), method="trf", max_nfev=5000,
                             bounds=([-np.inf, -np.inf, TAU_BOUNDS[0]], [np.inf, np.inf, TAU_BOUNDS[1]]),
                             xtol=1e-12, ftol=1e-12, gtol=1e-12)
        # same definition of a usable fit for both: tau identified (off its bounds, not below first gap / 5)
        ref_conv = bool(identifiable_tau(np.array([p[2]]), x[None, :], np.ones((1, len(x)), bool), p[0], p[1])[0])
        n_ref_conv += ref_conv
        if ref_conv and ep.loc[eid, "converged"]:
            ours = ep.loc[eid, ["b0", "plateau", "tau_days"]].to_numpy(float)
            compared += 1
            if not np.allclose(ours, p, rtol=1e-4, atol=1e-4):
                # a flat valley (a nearly linear decline, tau in the thousands): curve_fit stops at a point that
                # moves with 1e-14 changes of its start; ours must then fit at least as well
                sse_ours, sse_ref = (np.sum((y - exp_plateau(x, *q)) ** 2) for q in (ours, p))
                assert sse_ours <= sse_ref * (1 + 1e-12) and p[2] > 1000
                flat_valley += 1
    assert ep["converged"].sum() >= n_ref_conv
    assert compared > 300 and flat_valley <= 2


def test_result_contract(example_study):
    res = fit_episode_curves(example_study)
    assert isinstance(res, EpisodeCurves) and isinstance(res, bpo.results.Result)
    t = res.table
    assert len(t) == example_study.episodes.shape[0] and t["episode_id"].is_unique
    bad = t[~t["converged"]]
    assert bad[["b0", "plateau", "tau_days", "half_life_days"]].isna().all().all()
    assert (bad["note"] != "").all()
    assert sum(int(n.split(" ")[0]) for n in res.notes) == len(bad)  # every non-fit is counted in the notes
    assert "Untreated" in res.summary()
    ax = res.plot()
    assert "Untreated" in [x.get_text() for x in ax.get_xticklabels()]
    with pytest.raises(AttributeError):
        res.notes = []


def test_origin_moves_b0_only(example_study):
    a = fit_episode_curves(example_study, origin="first_contact").table.set_index("episode_id")
    b = fit_episode_curves(example_study, origin="onset").table.set_index("episode_id")
    ok = a["converged"] & b["converged"]
    np.testing.assert_allclose(a.loc[ok, ["plateau", "tau_days"]], b.loc[ok, ["plateau", "tau_days"]], rtol=1e-8)
    np.testing.assert_allclose(a.loc[ok, "start_score"], b.loc[ok, "start_score"], rtol=1e-8)


def test_degenerate_episodes_say_why():
    study = tiny_study({
        "flat": [(d, 4) for d in (0, 7, 14, 28)],
        "one_day": [(0, 5), (0, 6), (0, 4), (0, 5)],
        "two_days": [(0, 7), (0, 7), (14, 3), (14, 3)],
        "few": [(0, 7), (14, 3)],
        "good": [(d, exp_plateau(d, 7, 2, 10)) for d in (0, 7, 14, 28, 56)],
    })
    t = fit_episode_curves(study, origin="first_contact").table.set_index("episode_id")
    assert t.loc["good", "converged"] and t.loc["good", "tau_days"] == pytest.approx(10, rel=1e-5)
    assert "flat" in t.loc["flat", "note"]
    assert "distinct days" in t.loc["one_day", "note"] and "distinct days" in t.loc["two_days", "note"]
    assert "fewer than 4 measurements" in t.loc["few", "note"]
    assert not t.drop(index="good")["converged"].any()


@pytest.mark.parametrize("kw, name", [
    ({"instrument": "pain"}, "instrument"), ({"origin": "start"}, "origin"), ({"min_n": 2}, "min_n"),
    ({"min_n": "4"}, "min_n"), ({"scale": "10"}, "scale"),
])
def test_invalid_arguments_name_themselves(example_study, kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        fit_episode_curves(example_study, **kw)
    with pytest.raises(TypeError, match="study"):
        fit_episode_curves(example_study.episodes)


def test_batched_fit_never_worse_than_tight_least_squares():
    # 120 noisy synthetic episodes of unequal length: where scipy's least_squares (trf, tolerances 1e-14,
    # started at the grid profile) finds an identified curve, ours is identified too and its sum of squares is
    # not higher
    from scipy.optimize import least_squares

    from backpain_outcomes.episode_curves import batched_exp_plateau_fit
    rng = np.random.default_rng(4)
    E, M = 120, 12
    k = rng.integers(4, M + 1, E)
    t = np.sort(rng.uniform(0, 200, (E, M)), axis=1)
    t[:, 0] = 0.0
    w = np.arange(M)[None] < k[:, None]
    truth = exp_plateau(t, rng.uniform(5, 9, (E, 1)), rng.uniform(0, 3, (E, 1)), rng.uniform(3, 80, (E, 1)))
    y = np.where(w, truth + rng.normal(0, 1, (E, M)), 0.0)
    theta, sse, conv, _ = batched_exp_plateau_fit(np.where(w, t, 0.0), y, w)
    for i in range(E):
        x, v = t[i, :k[i]], y[i, :k[i]]
        ref = least_squares(lambda p, x=x, v=v: exp_plateau(x, *p) - v, profile_start(x, v), method="trf",
                            bounds=([-np.inf, -np.inf, TAU_BOUNDS[0]], [np.inf, np.inf, TAU_BOUNDS[1]]),
                            xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if identifiable_tau(ref.x[2:], x[None], np.ones((1, k[i]), bool), ref.x[0], ref.x[1])[0]:
            assert conv[i]
            assert sse[i] <= 2 * ref.cost * (1 + 1e-9) + 1e-12
    assert conv.sum() > 80


def test_batched_fit_does_not_depend_on_where_the_padding_is():
    from backpain_outcomes.episode_curves import batched_exp_plateau_fit
    t = np.array([[0.0, 7, 14, 28, 56, 90]])
    y = np.array([[7.0, 5.2, 4.1, 3.3, 2.4, 2.2]])
    left = batched_exp_plateau_fit(t, y, np.ones((1, 6), bool))
    # the same measurements spread over a wider padded row (gaps between them) and fitted with another episode
    t2, y2, w2 = np.zeros((2, 9)), np.zeros((2, 9)), np.zeros((2, 9), bool)
    spots = [0, 2, 3, 5, 7, 8]
    t2[0, spots], y2[0, spots], w2[0, spots] = t[0], y[0], True
    t2[1, :4], y2[1, :4], w2[1, :4] = [0, 10, 20, 40], [6, 4, 3, 2.5], True
    spread = batched_exp_plateau_fit(t2, y2, w2)
    np.testing.assert_allclose(spread[0][0], left[0][0], rtol=1e-10)
    np.testing.assert_allclose(spread[1][0], left[1][0], rtol=1e-10, atol=1e-14)
