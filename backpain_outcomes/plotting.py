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

from .checks import check_proportion
from .survival import kaplan_meier
from .vocabulary import label

__all__ = ["plot_resolution", "plot_time_to_resolution", "plot_claim", "plot_sensitivity", "plot_claim_report"]


def _ax(ax, figsize=(8, 5)):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _steps(ev: pd.DataFrame, alpha: float) -> pd.DataFrame:
    r = ev[ev["at_risk"].to_numpy(bool)]
    km = kaplan_meier(r["day"].to_numpy(float), r["resolved"].to_numpy(bool), r["entry"].to_numpy(float), alpha=alpha)
    return pd.DataFrame({"day": km["time"], "cumulative_resolution": 1 - km["survival"],
                         "ci_low": 1 - km["surv_high"], "ci_high": 1 - km["surv_low"]})


def _draw(ax, steps: pd.DataFrame, name: str, color=None):
    x = np.r_[0, steps["day"].to_numpy(float)]
    y = np.r_[0, steps["cumulative_resolution"].to_numpy(float)]
    line, = ax.step(x, y, where="post", label=name, color=color)
    lo = np.r_[0, steps["ci_low"].to_numpy(float)]
    hi = np.r_[0, steps["ci_high"].to_numpy(float)]
    lo, hi = np.where(np.isnan(lo), y, lo), np.where(np.isnan(hi), y, hi)
    ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
    return line


def _at_risk_rows(ax, rows, days):
    """Numbers at risk under the axis, one row per group, each number under its day (offsets in points)."""
    fig = ax.figure
    base = blended_transform_factory(ax.transData, ax.transAxes)
    left = ax.transAxes

    def below(trans, points):
        return offset_copy(trans, fig=fig, y=-points, units="points")
    ax.text(-0.01, 0, "Number at risk", transform=below(left, 34), fontsize=8, ha="right", va="top", weight="bold")
    for i, (name, color, counts) in enumerate(rows):
        pts = 46 + 11 * i
        ax.text(-0.01, 0, name, transform=below(left, pts), fontsize=7, ha="right", va="top", color=color)
        for d, n in zip(days, counts):
            ax.text(d, 0, str(n), transform=below(base, pts), fontsize=7, ha="center", va="top")
    height_pts = fig.get_figheight() * 72
    fig.subplots_adjust(bottom=min(0.6, (60 + 11 * len(rows)) / height_pts), left=0.2)


def _finish(ax, origin, alpha, rule, handles):
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.set_xlabel(label(origin).capitalize())
    ax.set_ylabel("Cumulative resolution (1 - Kaplan-Meier)")
    ax.set_title(f"Resolution: {rule!r}", fontsize=10)
    handles = handles + [Patch(color="grey", alpha=0.3, label=f"shaded: {1 - alpha:.0%} CI (log-log)")]
    ax.legend(handles=handles, fontsize=8, loc="lower right")


def _risk_counts(ev: pd.DataFrame, days) -> list[int]:
    r = ev[ev["at_risk"].to_numpy(bool)]
    return [int(((r["entry"] < d) & (r["day"] >= d)).sum()) for d in days]


def plot_resolution(curve, ax=None, claimed=None, at_risk_days=None):
    """Step curves per group with CI bands, numbers at risk under the axis and the ``day`` horizon marked."""
    if claimed is not None:
        check_proportion(claimed, "claimed")
    ax = _ax(ax)
    steps, ev, by = curve.steps, curve.events, list(curve.by)
    groups = [((), steps)] if not by else list(steps.groupby(by, sort=True))
    handles, rows = [], []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(label(v) for v in key) or "All episodes"
        line = _draw(ax, g, name)
        handles.append(line)
        sub = ev
        for col, val in zip(by, key):
            sub = sub[sub[col].astype(str) == str(val)]
        rows.append((name, line.get_color(), sub))
    for d in curve.day or []:
        ax.axvline(d, ls=":", color="grey", lw=1)
        ax.text(d, 0.98, f" day {d:g}", fontsize=7, va="top", color="grey")
    if claimed is not None:
        ax.axhline(claimed, ls="--", color="black", lw=1)
        ax.text(0.99, claimed, f"claimed {claimed:.0%}", transform=blended_transform_factory(ax.transAxes, ax.transData),
                va="bottom", ha="right", fontsize=8)
    _finish(ax, curve.origin, curve.alpha, curve.rule, handles)
    xmax = ax.get_xlim()[1]
    days = list(at_risk_days) if at_risk_days is not None else [t for t in ax.get_xticks() if 0 <= t <= xmax]
    _at_risk_rows(ax, [(n, c, _risk_counts(sub, days)) for n, c, sub in rows], days)
    return ax


def plot_time_to_resolution(ttr, ax=None):
    """Cumulative resolution of all episodes at risk, with its 95% CI and numbers at risk."""
    ax = _ax(ax)
    line = _draw(ax, _steps(ttr.table, 0.05), "All episodes")
    _finish(ax, ttr.origin, 0.05, ttr.rule, [line])
    days = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1]]
    _at_risk_rows(ax, [("All episodes", line.get_color(), _risk_counts(ttr.table, days))], days)
    return ax


def plot_claim(claim, ax=None):
    """The population's cumulative resolution, the claimed share (dashed) and the day of the claim (dotted)."""
    ax = _ax(ax)
    name = claim.population.capitalize() + " episodes"
    ev = claim.events_table
    line = _draw(ax, _steps(ev, claim.alpha), name) if ev["at_risk"].any() else ax.plot([], [], label=name)[0]
    claim_line = ax.axhline(claim.claimed, ls="--", color="black", lw=1, label=f"claimed {claim.claimed:.0%}")
    ax.axvline(claim.day, ls=":", color="grey", lw=1)
    ax.text(claim.day, 0.98, f" day {claim.day:g}", fontsize=7, va="top", color="grey")
    if np.isfinite(claim.estimate):
        lo = claim.estimate - (claim.ci_low if np.isfinite(claim.ci_low) else claim.estimate)
        hi = (claim.ci_high if np.isfinite(claim.ci_high) else claim.estimate) - claim.estimate
        ax.errorbar([claim.day], [claim.estimate], yerr=[[lo], [hi]], fmt="o", color=line.get_color(), capsize=4)
    _finish(ax, claim.origin, claim.alpha, claim.rule, [line, claim_line])
    days = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1]]
    _at_risk_rows(ax, [(name, line.get_color(), _risk_counts(ev, days))], days)
    ax.set_title(f"Claim: {claim.claimed:.0%} resolve by day {claim.day:g} ({claim.verdict_code})", fontsize=10)
    return ax


def plot_sensitivity(claim, ax=None):
    """Heat map of the sensitivity table (the claim's population): rule x origin x relapse by day."""
    ax = _ax(ax, figsize=(9, 6))
    s = claim.sensitivity
    if not len(s):
        ax.text(0.5, 0.5, "No sensitivity analyses (run with sensitivity=True)", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    s = s[s["population"] == claim.population]
    piv = s.pivot_table(index=["rule_code", "origin", "relapse"], columns="day", values="estimate", dropna=False)
    im = ax.imshow(piv.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(piv.shape[1]), [f"day {int(d)}" for d in piv.columns])
    ax.set_yticks(range(piv.shape[0]), [f"{r} | {label(o)} | relapse {rl}" for r, o, rl in piv.index], fontsize=6)
    ax.figure.subplots_adjust(left=0.3)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            ax.text(j, i, "not estimable" if pd.isna(v) else f"{v:.0%}", ha="center", va="center", fontsize=6,
                    color="white" if pd.isna(v) or v < 0.6 else "black")
    ax.figure.colorbar(im, ax=ax, label="cumulative resolution")
    ax.set_title(f"Share resolved ({claim.population}); claim: {claim.claimed:.0%}", fontsize=10)
    return ax


def plot_claim_report(report, ax=None):
    """Share resolved with its CI for each C1-C3 comparison that has one; 90% and 50% reference lines."""
    ax = _ax(ax, figsize=(8, 5))
    t = report.table[np.isfinite(report.table["estimate"].to_numpy(float))]
    y = np.arange(len(t))[::-1]
    est = t["estimate"].to_numpy(float)
    lo = np.where(np.isfinite(t["ci_low"]), t["ci_low"], est)
    hi = np.where(np.isfinite(t["ci_high"]), t["ci_high"], est)
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", capsize=3, color="C0")
    ax.set_yticks(y, [f"{c}: {comp}" for c, comp in zip(t["claim"], t["comparison"])], fontsize=7)
    for x, txt in ((0.9, "90% (C1)"), (0.5, "50% (C2)")):
        ax.axvline(x, ls="--", color="grey", lw=1)
        ax.text(x, 1.0, txt, transform=blended_transform_factory(ax.transData, ax.transAxes), fontsize=7,
                ha="center", va="bottom")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"Cumulative resolution by the day of the claim ({1 - report.c1.alpha if report.c1 else 0.95:.0%} CI)")
    ax.set_title(f"Seed claims: {report.rule!r}", fontsize=10)
    ax.figure.subplots_adjust(left=0.35)
    return ax
