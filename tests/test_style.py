"""The figure style held once: palette, fixed modality colours, fallback colours, the informative x-limit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from backpain_outcomes import style  # noqa: E402
from backpain_outcomes.vocabulary import MODALITY_LEVELS  # noqa: E402

# Okabe & Ito (2008), Color Universal Design, table of the eight colours in RGB (0-255); grey as in R's
# palette.colors("Okabe-Ito") ("gray60").
PAPER_RGB = {"black": (0, 0, 0), "orange": (230, 159, 0), "sky_blue": (86, 180, 233), "bluish_green": (0, 158, 115),
             "yellow": (240, 228, 66), "blue": (0, 114, 178), "vermillion": (213, 94, 0),
             "reddish_purple": (204, 121, 167), "grey": (153, 153, 153)}


def test_palette_is_okabe_ito():
    assert set(style.OKABE_ITO) == set(PAPER_RGB)
    for name, rgb in PAPER_RGB.items():
        assert tuple(round(c * 255) for c in to_rgb(style.OKABE_ITO[name])) == rgb, name


def test_every_treatment_status_has_its_own_fixed_colour():
    assert set(style.MODALITY_COLOURS) == set(MODALITY_LEVELS)
    styles = {(style.MODALITY_COLOURS[m], style.MODALITY_LINESTYLES[m]) for m in MODALITY_LEVELS}
    assert len(styles) == len(MODALITY_LEVELS)  # no two statuses look alike
    assert len(set(style.MODALITY_COLOURS.values())) == len(MODALITY_LEVELS)
    assert style.colour("untreated") == "#000000"  # the reference group is black
    # the colour does not depend on the other groups drawn, nor on their order
    for levels in (["cupping"], ["untreated", "cupping", "swedish"], ["swedish", "cupping", 1, "unknown"]):
        assert style.colour("cupping", levels=levels) == style.MODALITY_COLOURS["cupping"]
        assert style.group_styles(levels)["cupping"] == (style.MODALITY_COLOURS["cupping"], "-")


def test_other_groups_take_the_palette_in_order_then_line_styles():
    classes = list(range(1, 11))
    s = style.group_styles(classes)
    assert [s[c][0] for c in classes[:8]] == list(style.FALLBACK_COLOURS)
    assert {s[c][1] for c in classes[:8]} == {"-"}
    assert s[9] == (style.FALLBACK_COLOURS[0], "--") and s[10] == (style.FALLBACK_COLOURS[1], "--")
    assert style.group_styles(["female", "male"]) == style.group_styles(["female", "male"])  # deterministic
    mixed = style.group_styles(["cupping", "female", "male"])  # a modality does not use up a fallback colour
    assert mixed["female"][0] == style.FALLBACK_COLOURS[0]


def test_a_group_drawn_alone_gets_a_stable_hashed_colour():
    a = style.colour("T7")
    assert a in style.FALLBACK_COLOURS and style.colour("T7") == a
    assert style.linestyle("T7") in style.LINESTYLES
    assert style.linestyle("mixed") == "--" and style.linestyle("unknown") == ":"


def test_informative_limit_by_hand():
    # 20 episodes entering at day 0, leaving on days 1..20: on day t, 21 - t are at risk; 10 remain on day 11
    assert style.informative_limit([0] * 20, range(1, 21)) == 11.0
    # 200 episodes: 10% is 20, at risk on day t is 201 - t >= 20 up to day 181
    assert style.informative_limit([0] * 200, range(1, 201)) == 181.0
    # delayed entry: 15 enter on day 50 (at risk from day 51), 5 from day 0; exits 60..74 and 100..104
    entry = [50] * 15 + [0] * 5
    exit = list(range(60, 75)) + list(range(100, 105))
    # day 60: 20 at risk; day 69: 11 (15 - 9 + 5); day 70: 10; day 71: 9
    assert style.informative_limit(entry, exit) == 70.0
    # the horizon stays in view (1.1 x 42), even beyond the data
    assert style.informative_limit([0] * 20, range(1, 21), horizon=42) == pytest.approx(46.2)
    assert style.informative_limit([0] * 20, range(1, 21), horizon=[5, 8]) == 11.0
    assert style.informative_limit([], []) == 1.0
    assert style.informative_limit([np.nan, 0], [np.nan, 5], min_at_risk=1) == 5.0


def test_new_axes_owns_its_layout_and_leaves_a_callers_axes_alone():
    ax = style.new_axes(figsize=(4, 3))
    assert style.owns_layout(ax) and tuple(ax.figure.get_size_inches()) == (4, 3)
    fig, mine = plt.subplots()
    assert style.new_axes(mine) is mine and not style.owns_layout(mine)
    plt.close("all")


def test_n_column_and_ci_text():
    ax = style.new_axes()
    style.n_column(ax, [2, 1, 0], [40, np.nan, 7.0])
    texts = [t for t in ax.texts if t.get_gid() == "n_column"]
    assert [t.get_text() for t in texts] == ["40", "", "7", "n"]
    assert [t.get_position()[1] for t in texts[:3]] == [2, 1, 0]
    assert style.ci_text(0.05) == "95% CI" and style.ci_text(0.1) == "90% CI"
    assert style.legend(style.new_axes()) is None  # nothing labelled, no empty legend box
    plt.close("all")


def test_sizes_are_readable():
    assert min(style.TITLE_SIZE, style.LABEL_SIZE, style.TICK_SIZE, style.TEXT_SIZE) >= 8
    assert 0 < style.CI_ALPHA < 0.5 and style.MAX_BANDS == 4
