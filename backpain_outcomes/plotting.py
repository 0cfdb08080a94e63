"""Matplotlib figures of the resolution and claim results; each function returns the Axes.

Curves are step functions of the cumulative resolution (1 - Kaplan-Meier)
with shaded log-log confidence bands whose level is stated on the figure;
numbers at risk are printed under the axis, aligned with the day ticks (as
lifelines' ``add_at_risk_counts``); groups carry human labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory, offset_copy

from . import style
from .checks import check_int, check_proportion
from .survival import kaplan_meier
from .vocabulary import label

__all__ = ["plot_resolution", "plot_resolution_panels", "plot_time_to_resolution", "plot_claim", "plot_sensitivity", "plot_claim_report"]


def _steps(ev: pd.DataFrame, alpha: float) -> pd.DataFrame:
    r = ev[ev["at_risk"].to_numpy(bool)]
    km = kaplan_meier(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float), alpha=alpha)
    return pd.DataFrame({"day": km["time"], "cumulative_resolution": 1 - km["survival"],
                         "ci_low": 1 - km["surv_high"], "ci_high": 1 - km["surv_low"]})


def _draw(ax, steps: pd.DataFrame, name: str, color=None, ls="-", band=True):
    x = np.r_[0, steps["day"].to_numpy(float)]
    y = np.r_[0, steps["cumulative_resolution"].to_numpy(float)]
    line, = ax.step(x, y, where="post", label=name, color=color, ls=ls, lw=1.6)
    if band:
        lo = np.r_[0, steps["ci_low"].to_numpy(float)]
        hi = np.r_[0, steps["ci_high"].to_numpy(float)]
        lo, hi = np.where(np.isnan(lo), y, lo), np.where(np.isnan(hi), y, hi)
        ax.fill_between(x, lo, hi, step="post", alpha=style.CI_ALPHA, color=line.get_color(), linewidth=0)
    return line


def _at_risk_rows(ax, rows, days):
    """Numbers at risk under the axis, one row per group, each number under its day (offsets in points)."""
    fig = ax.figure
    base = blended_transform_factory(ax.transData, ax.transAxes)
    left = ax.transAxes
    size = style.TEXT_SIZE

    def below(trans, points, left_pts=0.0):
        return offset_copy(trans, fig=fig, x=-left_pts, y=-points, units="points")
    ax.text(0, 0, "Number at risk", transform=below(left, 34, 14), fontsize=size, ha="right", va="top", weight="bold")
    for i, (name, color, counts) in enumerate(rows):
        pts = 47 + 12 * i
        ax.text(0, 0, name, transform=below(left, pts, 14), fontsize=size, ha="right", va="top", color=color)
        for d, n in zip(days, counts):
            ax.text(d, 0, str(n), transform=below(base, pts), fontsize=size, ha="center", va="top", gid="at_risk")
    if not style.owns_layout(ax):  # a caller's figure without a layout engine: make room by hand
        height_pts = fig.get_figheight() * 72
        fig.subplots_adjust(bottom=min(0.6, (62 + 12 * len(rows)) / height_pts), left=0.2)


def _horizon(ax, day):
    ax.axvline(day, ls=":", color="grey", lw=1, gid="horizon")
    ax.text(day, 0.98, f" day {day:g}", fontsize=style.TEXT_SIZE, va="top", color="dimgrey")


def _finish(ax, origin, alpha, rule, handles, xmax, band_note=""):
    ax.set_ylim(0, 1)
    ax.set_xlim(0, xmax)
    ax.set_xlabel(label(origin).capitalize(), fontsize=style.LABEL_SIZE)
    ax.set_ylabel("Cumulative resolution (1 - Kaplan-Meier)", fontsize=style.LABEL_SIZE)
    ax.tick_params(labelsize=style.TICK_SIZE)
    ax.set_title(f"Resolution: {rule!r}", fontsize=style.TITLE_SIZE)
    shade = f"shaded: {style.ci_text(alpha)} (log-log){band_note}"
    handles = handles + [Patch(color="grey", alpha=0.3, label=shade)]
    style.legend(ax, handles=handles, loc="lower right")


def _risk_counts(ev: pd.DataFrame, days) -> list[int]:
    r = ev[ev["at_risk"].to_numpy(bool)]
    return [int(((r["entry"] < d) & (r["day"] >= d)).sum()) for d in days]


def _xmax(ev: pd.DataFrame, horizons) -> float:
    r = ev[ev["at_risk"].to_numpy(bool)]
    return style.informative_limit(r["entry"], r["day"], horizon=[h for h in horizons if h is not None])


def _tick_days(ax, at_risk_days) -> list:
    """Days of the at-risk table: ``at_risk_days`` (made the x ticks) or the x ticks within the axis."""
    if at_risk_days is not None:
        days = [float(d) for d in at_risk_days]
        ax.set_xticks(days)
        return days
    lo, hi = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if lo <= t <= hi]


def _band_groups(names, reference="untreated"):
    """Groups whose CI band is drawn: all up to MAX_BANDS, else the reference only (with a legend note)."""
    if len(names) <= style.MAX_BANDS:
        return set(names), ""
    keep = {k for k in names if k == (reference,)}
    shown = f" of {label(reference)} only" if keep else " not drawn"
    return keep, (f";\nbands{shown} (more than {style.MAX_BANDS} groups;\n"
                  "every band in the table and in small multiples)")


def plot_resolution(curve, ax=None, claimed=None, at_risk_days=None):
    """Step curves per group with CI bands, numbers at risk under the axis and the ``day`` horizon marked.

    One colour per modality (:mod:`~backpain_outcomes.style`); with more than
    ``style.MAX_BANDS`` groups only the untreated group's band is drawn. The
    time axis ends where the data stop being informative
    (:func:`~backpain_outcomes.style.informative_limit`).
    """
    if claimed is not None:
        check_proportion(claimed, "claimed")
    steps, ev, by = curve.steps, curve.events, list(curve.by)
    groups = [((), steps)] if not by else list(steps.groupby(by, sort=True))
    keys = [key if isinstance(key, tuple) else (key,) for key, _ in groups]
    ax = style.new_axes(ax, figsize=(8, 5 + 0.17 * len(groups)))
    styles = style.group_styles([k[0] if len(k) == 1 else k for k in keys])
    banded, band_note = _band_groups(keys)
    handles, rows = [], []
    for key, (_, g) in zip(keys, groups):
        name = ", ".join(label(v) for v in key) or "All episodes"
        colour, ls = styles.get(key[0] if len(key) == 1 else key, (None, "-")) if key else (None, "-")
        line = _draw(ax, g, name, colour, ls, band=key in banded or not key)
        handles.append(line)
        sub = ev
        for col, val in zip(by, key):
            sub = sub[sub[col].astype(str) == str(val)]
        rows.append((name, line.get_color(), sub))
    for d in curve.day or []:
        _horizon(ax, d)
    if claimed is not None:
        ax.axhline(claimed, ls="--", color="black", lw=1)
        ax.text(0.99, claimed, f"claimed {claimed:.0%}", transform=blended_transform_factory(ax.transAxes, ax.transData),
                va="bottom", ha="right", fontsize=style.TEXT_SIZE)
    xmax = _xmax(ev, [*(curve.day or []), *(list(at_risk_days) if at_risk_days is not None else [])])
    _finish(ax, curve.origin, curve.alpha, curve.rule, handles, xmax, band_note)
    days = _tick_days(ax, at_risk_days)
    _at_risk_rows(ax, [(n, c, _risk_counts(sub, days)) for n, c, sub in rows], days)
    return ax


def _curve_groups(curve):
    """[(key tuple, name, steps, events)] of a resolution curve, in the order of its table."""
    steps, ev, by = curve.steps, curve.events, list(curve.by)
    groups = [((), steps)] if not by else list(steps.groupby(by, sort=True))
    out = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        sub = ev
        for col, val in zip(by, key):
            sub = sub[sub[col].astype(str) == str(val)]
        out.append((key, ", ".join(label(v) for v in key) or "All episodes", g, sub))
    return out


def plot_resolution_panels(curve, reference: str | None = "untreated", ncols: int = 3):
    """Small multiples of a resolution curve: one panel per group, each with the reference group, both banded.

    The answer to more groups than ``style.MAX_BANDS``: every group keeps its
    confidence band, drawn next to the reference (``None``: no reference).
    Each panel has the horizon(s), the same informative time axis and its
    numbers at risk aligned under the day ticks.

    Returns
    -------
    numpy.ndarray of Axes
        One per group (unused grid cells are removed).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> curve = bpo.resolution_curve(bpo.load_study(bpo.example_path()), "nrs<=1 x2", by="modality", day=[42])
    >>> len(plot_resolution_panels(curve))  # five modalities, each beside untreated
    5
    """
    import matplotlib.pyplot as plt  # lazily, as everywhere in the package: importing it selects no backend
    ncols = check_int(ncols, "ncols", low=1)
    groups = _curve_groups(curve)
    ref = next((g for g in groups if g[0] == (reference,)), None)
    if reference is not None and ref is None:
        present = ", ".join(repr(k[0]) for k, *_ in groups if len(k) == 1)
        raise ValueError(f"reference={reference!r} is not a group of the curve; groups: {present or 'none'}")
    panels = [g for g in groups if g is not ref] or groups
    nrows = -(-len(panels) // ncols)
    ncols = min(ncols, len(panels))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.2 * nrows), squeeze=False, sharey=True,
                             layout="constrained")
    xmax = _xmax(curve.events, list(curve.day or []))
    styles = style.group_styles([k[0] if len(k) == 1 else k for k, *_ in groups])
    for ax, (key, name, steps, sub) in zip(axes.flat, panels):
        shown = [(key, name, steps, sub)] + ([ref] if ref is not None else [])
        handles = []
        for k, n, st, _ in shown:
            colour, ls = styles.get(k[0] if len(k) == 1 else k, (None, "-")) if k else (None, "-")
            handles.append(_draw(ax, st, n, colour, ls))
        for d in curve.day or []:
            _horizon(ax, d)
        _finish(ax, curve.origin, curve.alpha, curve.rule, handles, xmax)
        ax.set_title(name if ref is None else f"{name} and {ref[1]}", fontsize=style.TITLE_SIZE)
        days = _tick_days(ax, None)
        _at_risk_rows(ax, [(n, h.get_color(), _risk_counts(e, days)) for (_, n, _, e), h in zip(shown, handles)], days)
    for ax in axes.flat[len(panels):]:
        ax.remove()
    fig.suptitle(f"Resolution: {curve.rule!r}", fontsize=style.TITLE_SIZE + 1)
    return axes.ravel()[:len(panels)]


def plot_time_to_resolution(ttr, ax=None):
    """Cumulative resolution of all episodes at risk, with its 95% CI and numbers at risk."""
    ax = style.new_axes(ax)
    line = _draw(ax, _steps(ttr.table, 0.05), "All episodes", style.OKABE_ITO["blue"])
    _finish(ax, ttr.origin, 0.05, ttr.rule, [line], _xmax(ttr.table, []))
    days = _tick_days(ax, None)
    _at_risk_rows(ax, [("All episodes", line.get_color(), _risk_counts(ttr.table, days))], days)
    return ax


def plot_claim(claim, ax=None):
    """The population's cumulative resolution, the claimed share (dashed) and the day of the claim (dotted)."""
    ax = style.new_axes(ax)
    name = claim.population.capitalize() + " episodes"
    ev = claim.events_table
    colour = style.colour(claim.population)
    line = (_draw(ax, _steps(ev, claim.alpha), name, colour) if ev["at_risk"].any()
            else ax.plot([], [], label=name, color=colour)[0])
    claim_line = ax.axhline(claim.claimed, ls="--", color="black", lw=1, label=f"claimed {claim.claimed:.0%}")
    _horizon(ax, claim.day)
    if np.isfinite(claim.estimate):
        lo = claim.estimate - (claim.ci_low if np.isfinite(claim.ci_low) else claim.estimate)
        hi = (claim.ci_high if np.isfinite(claim.ci_high) else claim.estimate) - claim.estimate
        ax.errorbar([claim.day], [claim.estimate], yerr=[[lo], [hi]], fmt="o", color=line.get_color(), capsize=4)
    _finish(ax, claim.origin, claim.alpha, claim.rule, [line, claim_line], _xmax(ev, [claim.day]))
    days = _tick_days(ax, None)
    _at_risk_rows(ax, [(name, line.get_color(), _risk_counts(ev, days))], days)
    ax.set_title(f"Claim: {claim.claimed:.0%} resolve by day {claim.day:g} ({claim.verdict_code})",
                 fontsize=style.TITLE_SIZE)
    return ax


def plot_sensitivity(claim, ax=None):
    """Heat map of the sensitivity table (the claim's population): rule x origin x relapse by day."""
    s = claim.sensitivity
    if not len(s):
        ax = style.new_axes(ax, figsize=(6, 2))
        ax.text(0.5, 0.5, "No sensitivity analyses (run with sensitivity=True)", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    s = s[s["population"] == claim.population]
    piv = s.pivot_table(index=["rule_code", "origin", "relapse"], columns="day", values="estimate", dropna=False)
    ax = style.new_axes(ax, figsize=(9.5, 1.6 + 0.22 * max(len(piv), 4)))
    im = ax.imshow(piv.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(piv.shape[1]), [f"day {int(d)}" for d in piv.columns], fontsize=style.TICK_SIZE)
    ax.set_yticks(range(piv.shape[0]), [f"{r} | {label(o).lower()} | relapse: {rl}" for r, o, rl in piv.index],
                  fontsize=style.TICK_SIZE)
    ax.set_xlabel("Day since the origin of the row", fontsize=style.LABEL_SIZE)
    ax.set_ylabel("Rule | origin | relapse handling", fontsize=style.LABEL_SIZE)
    if not style.owns_layout(ax):
        ax.figure.subplots_adjust(left=0.35)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            ax.text(j, i, "not estimable" if pd.isna(v) else f"{v:.0%}", ha="center", va="center",
                    fontsize=style.TEXT_SIZE, color="white" if pd.isna(v) or v < 0.6 else "black")
    ax.figure.colorbar(im, ax=ax, label="cumulative resolution")
    ax.set_title(f"Share resolved ({claim.population}); claim: {claim.claimed:.0%}", fontsize=style.TITLE_SIZE)
    return ax


def plot_claim_report(report, ax=None):
    """Share resolved with its CI and n for each C1-C3 comparison that has one; 90% and 50% reference lines."""
    t = report.table[np.isfinite(report.table["estimate"].to_numpy(float))]
    ax = style.new_axes(ax, figsize=(8, 1.6 + 0.38 * max(len(t), 3)))
    y = np.arange(len(t))[::-1]
    est = t["estimate"].to_numpy(float)
    lo = np.where(np.isfinite(t["ci_low"]), t["ci_low"], est)
    hi = np.where(np.isfinite(t["ci_high"]), t["ci_high"], est)
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", capsize=3, color=style.OKABE_ITO["blue"])
    n = t["n"] if "n" in t else pd.Series([np.nan] * len(t), index=t.index)
    names = [f"{c}: {comp}" + (f" (n = {int(k)})" if pd.notna(k) else "")
             for c, comp, k in zip(t["claim"], t["comparison"], n)]
    ax.set_yticks(y, names, fontsize=style.TICK_SIZE)
    for x, txt in ((0.9, "90% (C1)"), (0.5, "50% (C2)")):
        ax.axvline(x, ls="--", color="grey", lw=1)
        ax.text(x, 1.0, txt, transform=blended_transform_factory(ax.transData, ax.transAxes),
                fontsize=style.TEXT_SIZE, ha="center", va="bottom")
    ax.set_xlim(0, 1)
    level = style.ci_text(report.c1.alpha if report.c1 else 0.05)
    ax.set_xlabel(f"Cumulative resolution by the day of the claim ({level})", fontsize=style.LABEL_SIZE)
    ax.set_ylabel("Claim: comparison", fontsize=style.LABEL_SIZE)
    ax.set_title(f"Seed claims: {report.rule!r}", fontsize=style.TITLE_SIZE, pad=14)
    if not style.owns_layout(ax):
        ax.figure.subplots_adjust(left=0.35)
    return ax
