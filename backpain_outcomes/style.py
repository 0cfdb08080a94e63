"""The look of every figure of the package, held once: colours, line styles, type sizes, CI bands, axis limits.

Colours
    The colour-blind-safe palette of Okabe & Ito (2008), *Color Universal
    Design (CUD): how to make figures and presentations that are friendly to
    colorblind people*, https://jfly.uni-koeln.de/color/ (the same nine
    colours as R's ``palette.colors(palette = "Okabe-Ito")``). Each treatment
    status has one fixed colour in every figure (:data:`MODALITY_COLOURS`):
    untreated episodes, the reference of most comparisons, are black;
    ``mixed``, ``other`` and ``unknown`` also differ by line style, so that
    the pale yellow and the grey stay distinguishable in print. Groups that
    are not modalities (trajectory classes, therapists, sexes, true rates of
    a power curve) take the palette in a fixed order by their position among
    the groups drawn (:func:`group_styles`), or by a stable hash of their
    name when drawn alone (:func:`colour`); the same group list always gives
    the same colours.

Survival figures
    At most :data:`MAX_BANDS` confidence bands are drawn on one panel; with
    more groups, the band of the reference group only is drawn and the legend
    says so (the intervals are in the result's table). The time axis ends
    where the data stop being informative (:func:`informative_limit`),
    following Pocock, Clayton & Altman (2002), *Lancet* 359:1686-1689: curtail
    the curves where few patients remain at risk.
"""

from __future__ import annotations

import zlib

import numpy as np
from matplotlib.transforms import blended_transform_factory

from .vocabulary import MIXED, UNKNOWN, UNTREATED

__all__ = ["OKABE_ITO", "MODALITY_COLOURS", "MODALITY_LINESTYLES", "FALLBACK_COLOURS", "LINESTYLES",
           "TITLE_SIZE", "LABEL_SIZE", "TICK_SIZE", "TEXT_SIZE", "CI_ALPHA", "MAX_BANDS", "MIN_AT_RISK",
           "AT_RISK_SHARE", "n_column", "colour", "linestyle", "group_styles", "ci_text", "new_axes", "owns_layout",
           "informative_limit", "legend"]

#: Okabe & Ito (2008) colour-universal-design palette, by the names of the paper.
OKABE_ITO: dict[str, str] = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
#: One colour per treatment status, the same in every figure.
MODALITY_COLOURS: dict[str, str] = {
    UNTREATED: OKABE_ITO["black"],
    "deep_tissue": OKABE_ITO["blue"],
    "trigger_point": OKABE_ITO["vermillion"],
    "swedish": OKABE_ITO["bluish_green"],
    "dry_needling": OKABE_ITO["reddish_purple"],
    "cupping": OKABE_ITO["orange"],
    "other": OKABE_ITO["sky_blue"],
    MIXED: OKABE_ITO["yellow"],
    UNKNOWN: OKABE_ITO["grey"],
}
#: Line style per treatment status: solid except the three catch-all statuses.
MODALITY_LINESTYLES: dict[str, str] = {**{m: "-" for m in MODALITY_COLOURS}, MIXED: "--", "other": "-.",
                                       UNKNOWN: ":"}
#: Colours of groups that are not modalities, in the order they are handed out.
FALLBACK_COLOURS: tuple[str, ...] = tuple(OKABE_ITO[k] for k in (
    "blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue", "black", "yellow"))
#: Line styles of the 1st, 2nd, ... round of :data:`FALLBACK_COLOURS` (more groups than colours).
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")

#: Type sizes in points (nothing printed on a figure is smaller than 8 points).
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, TEXT_SIZE = 10, 9, 8, 8
#: Opacity of confidence bands.
CI_ALPHA = 0.15
#: Largest number of confidence bands on one panel.
MAX_BANDS = 4
#: The time axis of a survival figure ends where fewer than this many episodes ...
MIN_AT_RISK = 10
#: ... or fewer than this share of the episodes ever at risk are still followed (the larger of the two).
AT_RISK_SHARE = 0.10


def _is_modality(group) -> bool:
    return isinstance(group, str) and group in MODALITY_COLOURS


def colour(group, levels=None) -> str:
    """Colour of ``group``: the fixed one of a modality code, else a palette colour.

    Parameters
    ----------
    group : object
        A modality code or any other group value (class number, therapist, sex).
    levels : sequence, optional
        Every group drawn in the figure; a non-modality group takes the
        palette colour of its position among the non-modality ``levels``.
        Without ``levels`` the colour comes from a stable hash (CRC-32) of
        the group's text, the same in every session.

    Examples
    --------
    >>> colour("untreated"), colour("cupping")
    ('#000000', '#E69F00')
    >>> colour(2, levels=[1, 2])
    '#D55E00'
    """
    return group_styles([group] if levels is None else levels, hashed=levels is None)[group][0]


def linestyle(group, levels=None) -> str:
    """Line style of ``group`` (see :func:`colour` for ``levels``)."""
    return group_styles([group] if levels is None else levels, hashed=levels is None)[group][1]


def group_styles(levels, hashed: bool = False) -> dict:
    """``{group: (colour, line style)}`` for the groups of one figure.

    Modality codes get :data:`MODALITY_COLOURS`; the other groups the
    :data:`FALLBACK_COLOURS` in the order given (or by CRC-32 of their text
    when ``hashed``), with the next :data:`LINESTYLES` once the colours are
    used up.
    """
    out, i = {}, 0
    for g in dict.fromkeys(levels):
        if _is_modality(g):
            out[g] = (MODALITY_COLOURS[g], MODALITY_LINESTYLES[g])
            continue
        k = zlib.crc32(str(g).encode("utf-8")) % len(FALLBACK_COLOURS) if hashed else i
        out[g] = (FALLBACK_COLOURS[k % len(FALLBACK_COLOURS)], LINESTYLES[(k // len(FALLBACK_COLOURS)) % 4])
        i += 1
    return out


def ci_text(alpha: float) -> str:
    """``"95% CI"`` for ``alpha=0.05``."""
    return f"{1 - alpha:.0%} CI"


def new_axes(ax=None, figsize=(8, 5)):
    """``ax``, or the Axes of a new figure with constrained layout (labels are never cut off)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # here, not at the top: importing the package selects no backend (cli sets Agg)
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def owns_layout(ax) -> bool:
    """Whether the figure of ``ax`` has a layout engine (set by :func:`new_axes`); else the caller's layout rules."""
    return ax.figure.get_layout_engine() is not None


def legend(ax, **kwargs):
    """The legend in the package's type size (no legend when nothing is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    handles = kwargs.pop("handles", handles)
    if not handles:
        return None
    return ax.legend(handles=handles, fontsize=kwargs.pop("fontsize", TEXT_SIZE), **kwargs)


def informative_limit(entry, exit, horizon=None, min_at_risk: int = MIN_AT_RISK,
                      share: float = AT_RISK_SHARE) -> float:
    """Right end of a survival figure's time axis: the last day with enough episodes still at risk.

    An episode is at risk on day ``t`` when ``entry < t <= exit``. The limit
    is the last event or censoring day on which at least
    ``max(min_at_risk, share * n)`` episodes are at risk (``n`` episodes in
    all); beyond it a single resolution moves the curve by a tenth or more
    and the band is wide (Pocock, Clayton & Altman 2002 curtail plots where
    10-20% remain). The limit is never before ``1.1 * horizon`` (the day of a
    claim stays in view) and never after the last day of follow-up.

    Parameters
    ----------
    entry, exit : array-like
        Day of entry and day of the event or censoring of each episode.
    horizon : float or sequence of float, optional
        Day(s) that must be visible.
    min_at_risk : int
    share : float

    Examples
    --------
    >>> informative_limit([0] * 20, list(range(1, 21)))  # 10 at risk up to day 11
    11.0
    """
    entry, exit = np.asarray(entry, float), np.asarray(exit, float)
    ok = np.isfinite(entry) & np.isfinite(exit)
    entry, exit = np.sort(entry[ok]), np.sort(exit[ok])
    hz = np.atleast_1d(np.asarray([] if horizon is None else horizon, float))
    floor = 1.1 * float(hz.max()) if hz.size else 0.0
    if not exit.size:
        return max(floor, 1.0)
    need = max(min_at_risk, share * exit.size)
    days = np.unique(exit)
    at_risk = np.searchsorted(entry, days, side="left") - np.searchsorted(exit, days, side="left")
    enough = days[at_risk >= need]
    limit = float(enough.max()) if enough.size else float(days.min())
    return max(min(max(limit, floor), float(exit.max())), floor if floor else 1.0)


def n_column(ax, y, counts, header: str = "n") -> None:
    """Counts right of a forest plot's panel, one per row at the rows' ``y`` (data units), with a header."""
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for yi, n in zip(y, counts):
        ax.text(1.02, yi, "" if n is None or n != n else f"{n:.0f}", transform=trans, ha="left", va="center",
                fontsize=TICK_SIZE, gid="n_column")
    ax.text(1.02, 1.0, header, transform=ax.transAxes, ha="left", va="bottom", fontsize=TICK_SIZE, weight="bold",
            gid="n_column")
