"""Figures of the clinic report, as embedded PNG images with alt text and a caption.

Only groups whose counts the report publishes are drawn (a curve of a small
group would show its size in its steps). Numbers at risk sit in a table
aligned under the curves, in the report's normal type. Colours, line styles
and type sizes come from :mod:`~backpain_outcomes.style`, so a modality has
the same colour here as in every ``plot()`` of the package.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from . import style
from .survival import kaplan_meier
from .vocabulary import instrument_label, label

__all__ = ["png", "resolution_figure", "recovery_figure", "trend_figure", "at_risk_days"]


def png(fig) -> str:
    """Base64 PNG of a matplotlib figure (closed afterwards)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def at_risk_days(day: float, last: float) -> list[float]:
    """Days at which numbers at risk are printed: the horizon, twice the horizon, 182 and 365 (within follow-up)."""
    days = sorted({float(day), 2.0 * day, 182.0, 365.0})
    return [d for d in days if d <= max(last, day)]


def resolution_figure(events: pd.DataFrame, groups: list, at_risk_text: dict, days: list, day: float,
                      origin: str, rule) -> dict:
    """Cumulative resolution (1 - Kaplan-Meier) per modality with the numbers at risk aligned below."""
    import matplotlib.pyplot as plt
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(8.2, 3.6 + 0.24 * len(groups)), sharex=True,
                                  gridspec_kw={"height_ratios": [3.4, 0.45 + 0.24 * len(groups)]}, layout="constrained")
    r = events[events["at_risk"]]
    xmax = max(days) if days else day
    styles = style.group_styles(groups)
    for g in groups:
        e = r[r["modality"] == g]
        km = kaplan_meier(e["day"], e["resolved"], e["entry"])
        x = np.r_[0, km["time"].to_numpy()]
        y = np.r_[0, 1 - km["survival"].to_numpy()]
        keep = x <= xmax
        colour, ls = styles[g]
        ax.step(x[keep], y[keep], where="post", color=colour, ls=ls, lw=1.6, label=label(g))
    ax.axvline(day, color="grey", ls=":", lw=1, gid="horizon")
    ax.text(day, 0.02, f" day {day:g}", va="bottom", fontsize=9, color="#444")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, xmax * 1.02)
    ax.set_ylabel("share resolved", fontsize=9)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.25)
    tab.set_ylim(-0.5, len(groups) - 0.5)
    tab.set_yticks(range(len(groups)), [label(g) for g in groups][::-1], fontsize=9)
    for i, g in enumerate(groups):
        for d in days:
            tab.text(d, len(groups) - 1 - i, at_risk_text.get((g, d), ""), ha="center", va="center", fontsize=9,
                     gid="at_risk")
    tab.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        tab.spines[side].set_visible(False)
    tab.set_xticks(days)
    tab.set_xlabel(f"{label(origin)} (numbers at risk above the axis)", fontsize=9)
    names = ", ".join(label(g) for g in groups)
    return {"name": "resolution", "data": png(fig),
            "alt": (f"Step chart of the share of episodes resolved against {label(origin)}, one line per modality "
                    f"({names}), with a dotted line at day {day:g} and the numbers of episodes still followed below."),
            "caption": (f"Share of episodes resolved ({rule!r}), 1 - Kaplan-Meier, counted from "
                        f"{'pain onset' if origin == 'onset' else 'first contact'}. Numbers at risk: episodes still "
                        "followed and not yet resolved on that day.")}


def recovery_figure(curves, groups: list, instrument: str, origin: str) -> dict | None:
    """Fitted mean recovery curves per modality with their 95% bands and the published natural course."""
    import matplotlib.pyplot as plt

    from .reference import reference_curves
    t = curves.table
    rows = t[t["converged"].astype(bool) & t["modality"].isin(groups) & np.isfinite(t["first_day"].astype(float))
             & np.isfinite(t["last_day"].astype(float))]
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.6, 4.0), layout="constrained")
    styles = style.group_styles(groups)
    many = len(rows) > style.MAX_BANDS
    for rec in rows.itertuples(index=False):
        days = np.linspace(rec.first_day, rec.last_day, 120)
        p = curves.predict(days)
        p = p[(p["modality"] == rec.modality) & p["in_data"]]
        colour, ls = styles[rec.modality]
        ax.plot(p["day"], p["predicted"], color=colour, ls=ls, lw=1.6, label=label(rec.modality))
        if not many or rec.modality == "untreated":
            ax.fill_between(p["day"], p["ci_low"], p["ci_high"], color=colour, alpha=style.CI_ALPHA, lw=0)
    drew_ref = instrument in ("nrs", "vas")
    if drew_ref:
        factor = 0.1 if instrument == "nrs" else 1.0
        for stratum, g in reference_curves("costa2012").groupby("stratum"):
            ax.plot(g["day"], g["mean_pain_0_100"] * factor, color="dimgrey", ls="--" if stratum == "acute" else ":",
                    marker="o", ms=3, lw=1, label=f"Natural course, {stratum} (Costa 2012)")
    ax.set_xlabel(label(origin))
    ax.set_ylabel(f"mean {instrument_label(instrument)}")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    return {"name": "recovery", "data": png(fig),
            "alt": (f"Line chart of the fitted mean {label(instrument)} against {label(origin)}, one curve per "
                    "modality" + (" (the untreated curve with a shaded 95% band)" if many else
                                  " with a shaded 95% band")
                    + (", and grey dashed and dotted lines for the published natural course of acute and persistent "
                       "back pain." if drew_ref else ".")),
            "caption": (f"Fitted recovery curves (mean {instrument_label(instrument)}) by modality with 95% bands"
                        + (f" (drawn for untreated episodes only: more than {style.MAX_BANDS} groups)" if many else "")
                        + ("; grey: natural course from onset (Menezes Costa et al. 2012)." if drew_ref else "."))}


def trend_figure(trend: pd.DataFrame, day: float) -> dict | None:
    """Share improved per quarter with its Wilson interval (quarters with published counts only)."""
    import matplotlib.pyplot as plt
    t = trend.dropna(subset=["rate"])
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.6, 3.0), layout="constrained")
    x = np.arange(len(t))
    rate = t["rate"].to_numpy(float)
    # a Wilson bound of 0 of n (or n of n) can miss the rate by a rounding error: never a negative error bar
    below = np.clip(rate - t["ci_low"].to_numpy(float), 0.0, None)
    above = np.clip(t["ci_high"].to_numpy(float) - rate, 0.0, None)
    ax.errorbar(x, rate, yerr=[below, above], fmt="o-", color=style.OKABE_ITO["blue"], capsize=3, lw=1.2)
    ax.set_xticks(x, t["quarter"], fontsize=8, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_ylabel(f"improved at day {day:g}", fontsize=9)
    ax.set_xlabel("quarter of first visit (95% Wilson intervals)", fontsize=9)
    ax.grid(alpha=0.25)
    return {"name": "trend", "data": png(fig),
            "alt": "Dot chart of the share of episodes improved by a clinically important amount per quarter of "
                   "first visit, with 95% intervals.",
            "caption": f"Share improved by a clinically important amount at day {day:g}, by quarter of first visit, "
                       "with 95% Wilson intervals (quarters with too few episodes are left out)."}


def funnel_figure(bench) -> dict | None:
    """The therapist funnel plot of a :class:`~backpain_outcomes.benchmarking.TherapistBenchmark`."""
    if bench.table.empty:
        return None
    ax = bench.plot()
    ax.figure.set_size_inches(7.6, 3.8)
    return {"name": "funnel", "data": png(ax.figure),
            "alt": (f"Funnel plot: each dot is a therapist, placed by number of episodes (across) and observed minus "
                    f"expected improvement (up), between dashed {bench.limit:.1%} control limits that narrow as the "
                    "caseload grows."),
            "caption": (f"Risk-adjusted improvement per therapist at day {bench.day:g} (observed minus expected, "
                        f"{instrument_label(bench.instrument)} points) with {bench.limit:.1%} control limits.")}
