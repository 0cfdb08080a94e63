"""Matplotlib figures of the result objects; each function returns the Axes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _ax(ax, figsize=(8, 5)):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_resolution(curve, ax=None, claimed=None, at_risk_days=(0, 42, 84, 182, 365)):
    """Step curves of cumulative resolution with log-log CI bands and numbers at risk."""
    ax = _ax(ax)
    tab = curve.table
    by = [c for c in tab.columns if c not in ("day", "cumulative_resolution", "ci_low", "ci_high", "n_at_risk",
                                               "n_events", "se")]
    groups = [((), tab)] if not by else list(tab.groupby(by, sort=True))
    risk_rows = []
    for key, g in groups:
        label = ", ".join(map(str, key if isinstance(key, tuple) else (key,))) or "all"
        x = np.r_[0, g["day"].to_numpy()]
        y = np.r_[0, g["cumulative_resolution"].to_numpy()]
        line, = ax.step(x, y, where="post", label=label)
        lo = np.r_[0, g["ci_low"].fillna(0).to_numpy()]
        hi = np.r_[0, g["ci_high"].fillna(0).to_numpy()]
        ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=line.get_color())
        ev = curve.events
        sub = ev[ev["at_risk"]]
        for col, val in zip(by, key if isinstance(key, tuple) else (key,)):
            sub = sub[sub[col] == val]
        risk_rows.append((label, [int(((sub["entry"] < d) & (sub["day"] >= d)).sum()) for d in at_risk_days]))
    if claimed is not None:
        ax.axhline(claimed, ls="--", color="black", lw=1)
        ax.text(ax.get_xlim()[1], claimed, f" claimed {claimed:.0%}", va="center", ha="left", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"days since {'onset' if curve.origin == 'onset' else 'first contact'}")
    ax.set_ylabel("cumulative resolution (1 - KM)")
    ax.set_title(f"Resolution: {curve.rule!r}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    text = "At risk (day " + ", ".join(map(str, at_risk_days)) + "):\n" + "\n".join(
        f"{lab}: {' '.join(map(str, n))}" for lab, n in risk_rows)
    ax.text(0.0, -0.18, text, transform=ax.transAxes, fontsize=7, va="top", family="monospace")
    return ax


def plot_sensitivity(claim, ax=None):
    """Heat map of the sensitivity table (default population): rule x origin x relapse by day."""
    ax = _ax(ax, figsize=(9, 6))
    s = claim.sensitivity
    s = s[s["population"] == claim.population]
    piv = s.pivot_table(index=["rule", "origin", "relapse"], columns="day", values="estimate")
    im = ax.imshow(piv.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(piv.shape[1]), [f"day {int(d)}" for d in piv.columns])
    ax.set_yticks(range(piv.shape[0]), [f"{r[:38]} | {o} | relapse {rl}" for r, o, rl in piv.index], fontsize=6)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            if not pd.isna(v):
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.6 else "black")
    ax.figure.colorbar(im, ax=ax, label="cumulative resolution")
    ax.set_title(f"Share resolved ({claim.population}); claim: {claim.claimed:.0%}", fontsize=10)
    return ax
