"""Every figure of the package, checked on its Axes: labels, legends, ranges, horizon, at-risk table, colours.

The example study (500 episodes) gives one result of every public type; each
``plot()`` is drawn once (Agg) and the checks below read the Axes, not the
pixels: the issue's "publication-grade figures" list turned into assertions.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402

import backpain_outcomes as bpo  # noqa: E402
from backpain_outcomes import report_figures, style  # noqa: E402
from backpain_outcomes.plotting import plot_resolution_panels  # noqa: E402
from backpain_outcomes.vocabulary import INSTRUMENT_RANGES, label  # noqa: E402

RULE = "nrs<=1 x2"
NRS = INSTRUMENT_RANGES["nrs"]
SHARE = (0.0, 1.0)


@pytest.fixture(scope="module")
def study():
    return bpo.load_study(bpo.example_path())


@pytest.fixture(scope="module")
def results(study):
    """name -> (result, plot keyword arguments, range of the y data or None, horizon day or None)."""
    claim = bpo.test_resolution_claim(study, day=42, rule=RULE, sensitivity=True)
    covs = ("age", "sex", "chronicity", "baseline")
    weighted = bpo.weighted_comparison(study, covariates=covs)
    return {
        "time_to_resolution": (bpo.time_to_resolution(study, RULE), {}, SHARE, None),
        "resolution_curve": (bpo.resolution_curve(study, RULE, by="modality", day=[42]), {}, SHARE, 42),
        "resolution_curve_2": (bpo.resolution_curve(study, RULE, by="chronicity", day=[42, 84]), {"claimed": 0.9},
                               SHARE, 84),
        "test_resolution_claim": (claim, {}, SHARE, 42),
        "sensitivity": (claim, {"method": "plot_sensitivity"}, None, None),
        "evaluate_seed_claims": (bpo.evaluate_seed_claims(study, rule=RULE), {}, None, None),
        "fit_recovery_curves": (bpo.fit_recovery_curves(study, by="modality", progress=False), {}, NRS, None),
        "fit_recovery_curves_odi": (bpo.fit_recovery_curves(study, instrument="odi", progress=False), {},
                                    INSTRUMENT_RANGES["odi"], None),
        "fit_episode_curves": (bpo.fit_episode_curves(study), {}, None, None),
        "fit_mixed_model": (bpo.fit_mixed_model(study, "score ~ day + baseline", re_formula="1"), {}, NRS, None),
        "fit_mixed_model_effects": (bpo.fit_mixed_model(study, "score ~ day + baseline", re_formula="1"),
                                    {"kind": "effects"}, None, None),
        "compare_modalities": (bpo.compare_modalities(study, day=42), {}, None, None),
        "fit_trajectories": (bpo.fit_trajectories(study, k=[1, 2], n_init=2), {"n_spaghetti": 30}, NRS, None),
        "benchmark_therapists": (bpo.benchmark_therapists(study), {}, None, None),
        "benchmark_clinic": (bpo.benchmark_clinic(study, clinic="C1"), {}, None, None),
        "claim_power": (bpo.claim_power([50, 100], 0.7, method="formula"), {}, SHARE, None),
        "claim_sample_size": (bpo.claim_sample_size(0.7, method="formula"), {}, SHARE, None),
        "weighted_comparison": (weighted, {}, None, None),
        "weighted_effects": (weighted, {"method": "plot_effects"}, None, None),
        "e_value": (bpo.e_value(1.8, 1.2, 2.6), {}, None, None),
        "responder_rate": (bpo.responder_rate(study, covariates=covs), {}, None, None),
        "fit_grc_model": (bpo.fit_grc_model(bpo.load_anderson1984(), by="x1", reference=1, adjust=["x2", "x3"],
                                            scale=6), {}, None, None),
        "table_one": (bpo.table_one(study), {}, None, None),
        "recurrence": (bpo.recurrence(bpo.simulate_recurrence(120, seed=5, recurrence_12m=0.3)[0], day=365), {},
                       SHARE, 365),
    }


@pytest.fixture(scope="module")
def report(study):
    return bpo.report_content(study, progress=False)


def _draw(res, kwargs):
    kwargs = dict(kwargs)
    ax = getattr(res, kwargs.pop("method", "plot"))(**kwargs)
    ax.figure.canvas.draw()
    return ax


def _texts(ax):
    """Every visible, non-empty text of the Axes: labels, ticks, title, legend, annotations."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    ticks = [t for t in ax.get_xticklabels() if x0 - 1e-9 <= t.get_position()[0] <= x1 + 1e-9]
    ticks += [t for t in ax.get_yticklabels() if y0 - 1e-9 <= t.get_position()[1] <= y1 + 1e-9]
    out = [ax.xaxis.label, ax.yaxis.label, ax.title, *ax.texts, *ticks]  # tick labels outside the view are not drawn
    if ax.get_legend() is not None:
        out += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def _horizon_lines(ax, day):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and np.allclose(ln.get_xdata(), day)]


def test_every_plot_has_labels_human_legends_and_stays_in_range(results, report):
    items = {**results, "report_content": (report, {}, None, None)}
    public = {type(r) for r, *_ in items.values()}
    exported = {obj for obj in vars(bpo).values() if isinstance(obj, type) and issubclass(obj, bpo.Result)}
    assert public >= exported - {bpo.Result}, "a public result type has no figure check"
    for name, (res, kwargs, yrange, horizon) in items.items():
        ax = _draw(res, kwargs)
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), name
        if ax.get_legend() is not None:
            for t in ax.get_legend().get_texts():
                assert "_" not in t.get_text(), (name, t.get_text())
        for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            assert "_" not in t.get_text(), (name, t.get_text())
        if yrange is not None:
            lo, hi = yrange
            for line in ax.get_lines():
                y = np.asarray(line.get_ydata(), float)
                y = y[np.isfinite(y)]
                assert y.size == 0 or (y.min() >= lo - 1e-9 and y.max() <= hi + 1e-9), (name, line.get_label())
        if horizon is not None:
            assert _horizon_lines(ax, horizon), f"{name}: no vertical line at day {horizon}"
        fig_box = ax.figure.bbox
        renderer = ax.figure.canvas.get_renderer()
        for t in _texts(ax):
            assert t.get_fontsize() >= 8, (name, t.get_text(), t.get_fontsize())
            box = t.get_window_extent(renderer)
            assert (box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1 and box.y0 >= fig_box.y0 - 1
                    and box.y1 <= fig_box.y1 + 1), f"{name}: {t.get_text()!r} is cut off"
        heads = [t for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text().strip()]
        for head in heads:  # the title and the axis labels overlap no other text
            hb = head.get_window_extent(renderer)
            for t in _texts(ax):
                if t is not head and t.get_window_extent(renderer).overlaps(hb):
                    raise AssertionError(f"{name}: {head.get_text()!r} overlaps {t.get_text()!r}")
        plt.close("all")


@pytest.mark.parametrize("name", ["time_to_resolution", "resolution_curve", "resolution_curve_2",
                                  "test_resolution_claim"])
def test_at_risk_table_is_aligned_with_the_day_ticks(results, name):
    res, kwargs, _, _ = results[name]
    ax = _draw(res, kwargs)
    lo, hi = ax.get_xlim()
    ticks = sorted(t for t in ax.get_xticks() if lo <= t <= hi)
    numbers = [t for t in ax.texts if t.get_gid() == "at_risk"]
    labels = [t.get_text() for t in ax.texts]
    assert "Number at risk" in labels
    n_rows = len(res.steps.groupby(list(res.by))) if hasattr(res, "steps") and res.by else 1
    assert len(numbers) == n_rows * len(ticks)
    assert sorted({t.get_position()[0] for t in numbers}) == pytest.approx(ticks)
    renderer = ax.figure.canvas.get_renderer()
    for t in numbers:  # the printed number sits under its tick (centre within half a pixel)
        box = t.get_window_extent(renderer)
        tick_px = ax.transData.transform((t.get_position()[0], 0))[0]
        assert abs((box.x0 + box.x1) / 2 - tick_px) < 0.5
        assert box.y1 < ax.get_window_extent(renderer).y0  # below the panel
    plt.close("all")


def test_at_risk_days_become_the_ticks(results):
    curve = results["resolution_curve"][0]
    ax = curve.plot(at_risk_days=[0, 42, 84, 182])
    ax.figure.canvas.draw()
    numbers = [t for t in ax.texts if t.get_gid() == "at_risk"]
    assert list(ax.get_xticks()) == [0, 42, 84, 182]
    assert sorted({t.get_position()[0] for t in numbers}) == [0, 42, 84, 182]
    # counts by hand from the event table: entered before the day and not yet resolved or censored
    ev = curve.events[curve.events["at_risk"] & (curve.events["modality"] == "untreated")]
    expected = [str(int(((ev["entry"] < d) & (ev["day"] >= d)).sum())) for d in (0, 42, 84, 182)]
    def height(t):
        return t.get_transform().transform(t.get_position())[1]
    untreated = next(t for t in ax.texts if t.get_text() == "Untreated")
    row = sorted((t for t in numbers if abs(height(t) - height(untreated)) < 0.5), key=lambda t: t.get_position()[0])
    assert [t.get_text() for t in row] == expected
    plt.close("all")


def test_survival_x_axis_ends_where_enough_episodes_remain(results):
    curve = results["resolution_curve"][0]
    ax = _draw(curve, {})
    right = ax.get_xlim()[1]
    ev = curve.events[curve.events["at_risk"]]
    at_risk = int(((ev["entry"] < right) & (ev["day"] >= right)).sum())
    # the rule of style.informative_limit: at least max(10, 10% of the episodes) still followed
    assert at_risk >= max(style.MIN_AT_RISK, style.AT_RISK_SHARE * len(ev))
    assert right < ev["day"].max()  # the sparse tail of follow-up is cut
    plt.close("all")


def test_at_most_four_bands_per_survival_panel_and_the_legend_says_so(results):
    curve = results["resolution_curve"][0]
    n_groups = curve.events["modality"].nunique()
    assert n_groups > style.MAX_BANDS  # six modalities in the example study
    ax = _draw(curve, {})
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) <= style.MAX_BANDS
    assert any("more than 4 groups" in t.get_text() for t in ax.get_legend().get_texts())
    few = _draw(results["resolution_curve_2"][0], {"claimed": 0.9})
    n_chron = results["resolution_curve_2"][0].steps["chronicity"].nunique()
    assert len([c for c in few.collections if isinstance(c, PolyCollection)]) == n_chron  # one band per group
    assert any("95% CI" in t.get_text() for t in few.get_legend().get_texts())
    plt.close("all")


def test_forest_plots_state_n_and_the_ci_level(results):
    for name in ("compare_modalities", "weighted_effects", "responder_rate", "benchmark_clinic"):
        res, kwargs, _, _ = results[name]
        ax = _draw(res, kwargs)
        n_texts = [t.get_text() for t in ax.texts if t.get_gid() == "n_column"]
        col = "n" if "n" in res.table else None
        assert n_texts[-1] == "n" and len(n_texts) - 1 == len(ax.get_yticks()), name
        t = res.table if name != "compare_modalities" else res.table[res.table["difference"].notna()]
        assert sorted(n_texts[:-1]) == sorted(f"{n:.0f}" for n in t[col]), name
        words = " ".join([ax.get_xlabel(), *(x.get_text() for x in ax.get_legend().get_texts())]
                         if ax.get_legend() else [ax.get_xlabel()])
        assert "CI" in words, name
        plt.close("all")


def test_heatmap_labels_are_readable(results):
    claim = results["sensitivity"][0]
    ax = _draw(claim, {"method": "plot_sensitivity"})
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == len(claim.sensitivity[claim.sensitivity["population"] == claim.population]
                            .drop_duplicates(["rule_code", "origin", "relapse"]))
    assert all(t.get_fontsize() >= 8 for t in ax.get_yticklabels())
    assert all("days since" in r for r in rows)  # origin in words, not its code
    plt.close("all")


def _line_colour(ax, name):
    return next(to_hex(ln.get_color()) for ln in ax.get_lines() if ln.get_label() == name)


def test_a_modality_has_one_colour_in_every_figure(results, report, monkeypatch):
    cupping, untreated = style.colour("cupping"), style.colour("untreated")
    surv = _draw(results["resolution_curve"][0], {})
    curves = _draw(results["fit_recovery_curves"][0], {})
    mixed = _draw(results["fit_mixed_model"][0], {})
    for ax in (surv, curves, mixed):
        assert _line_colour(ax, label("cupping")) == to_hex(cupping)
        assert _line_colour(ax, label("untreated")) == to_hex(untreated)
    forest = _draw(results["compare_modalities"][0], {})
    names = [t.get_text() for t in forest.get_yticklabels()]
    ys = forest.get_yticks()
    marker = {round(float(ln.get_ydata()[0]), 6): to_hex(ln.get_color()) for ln in forest.get_lines()
              if len(ln.get_ydata()) == 1}
    assert marker[round(float(ys[names.index("Cupping")]), 6)] == to_hex(cupping)
    boxes = _draw(results["fit_episode_curves"][0], {})
    faces = [to_hex(p.get_facecolor(), keep_alpha=False) for p in boxes.patches if isinstance(p, PathPatch)]
    order = [t.get_text() for t in boxes.get_xticklabels()]
    assert faces[order.index("Cupping")] == to_hex(cupping)
    plt.close("all")
    drawn = []
    monkeypatch.setattr(report_figures, "png", lambda fig: drawn.append(fig) or "")
    ev = results["resolution_curve"][0].events
    report_figures.resolution_figure(ev, ["untreated", "cupping"], {}, [42, 84], 42, "onset", RULE)
    report_figures.recovery_figure(results["fit_recovery_curves"][0], ["untreated", "cupping"], "nrs", "onset")
    for fig in drawn:
        ax = fig.axes[0]
        assert _line_colour(ax, "Cupping") == to_hex(cupping)
        assert _line_colour(ax, "Untreated") == to_hex(untreated)
    assert _horizon_lines(drawn[0].axes[0], 42)
    plt.close("all")


def test_plot_on_a_callers_axes_keeps_its_figure(results):
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 5))
    assert results["resolution_curve"][0].plot(ax=a) is a
    assert results["compare_modalities"][0].plot(ax=b) is b
    assert fig.get_layout_engine() is None  # the caller's layout is left alone (room made by subplots_adjust)
    plt.close(fig)


def test_small_multiples_keep_every_band_beside_the_reference(results):
    curve = results["resolution_curve"][0]
    groups = sorted(curve.steps["modality"].unique())
    axes = plot_resolution_panels(curve)
    assert len(axes) == len(groups) - 1  # every modality but the reference gets a panel
    axes[0].figure.canvas.draw()
    for ax, mod in zip(axes, [g for g in groups if g != "untreated"]):
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
        assert _line_colour(ax, label(mod)) == to_hex(style.colour(mod))
        assert _line_colour(ax, "Untreated") == to_hex(style.colour("untreated"))
        assert _horizon_lines(ax, 42)
        lo, hi = ax.get_xlim()
        ticks = sorted(t for t in ax.get_xticks() if lo <= t <= hi)
        numbers = [t for t in ax.texts if t.get_gid() == "at_risk"]
        assert len(numbers) == 2 * len(ticks)
        assert sorted({t.get_position()[0] for t in numbers}) == pytest.approx(ticks)
    with pytest.raises(ValueError, match="reference='swedish_massage'"):
        plot_resolution_panels(curve, reference="swedish_massage")
    plt.close("all")


def test_heatmap_without_sensitivity_analyses_says_so(study):
    claim = bpo.test_resolution_claim(study, day=42, rule=RULE, sensitivity=False)
    ax = claim.plot_sensitivity()
    assert [t.get_text() for t in ax.texts] == ["No sensitivity analyses (run with sensitivity=True)"]
    plt.close("all")
