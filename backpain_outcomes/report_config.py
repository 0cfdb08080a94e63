"""What a clinic report covers: its one configuration (:class:`ReportConfig`), the checks of its arguments, and the
selection of its episodes (one clinic, a period of first visits) with the errors that name what was asked.

The selection works on an episodes table (:func:`select_episodes`), so it is the same for an in-memory
study and for the episodes gathered from a partitioned one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .checks import check_bool, check_day, check_instrument, check_min_n, check_origin
from .exceptions import DisclosureError
from .rules import Resolution, as_rule
from .vocabulary import MCID_ABSOLUTE, instrument_label

__all__ = ["ReportConfig", "check_period", "period_words", "check_config", "check_size", "in_selection",
           "select_episodes", "select_study"]


@dataclass(frozen=True)
class ReportConfig:
    """The one analysis configuration of a report.

    Attributes
    ----------
    rule : Resolution
    day : float
        Horizon in days since ``origin``.
    origin : {"onset", "first_contact"}
    instrument : str
    min_n : int
        Counts from 1 to ``min_n - 1`` are not published (disclosure threshold).
    clinic, period, title, show_therapists
        What the report covers and how it is labelled.
    window : float
        Largest distance (days) between the measurement used and ``day``.
    """

    rule: Resolution
    day: float
    origin: str
    instrument: str
    min_n: int
    clinic: str | None = None
    period: tuple | None = None
    title: str | None = None
    show_therapists: bool = False
    window: float = 14.0

    @property
    def horizon(self) -> str:
        """The horizon in words ("six weeks" for day 42)."""
        weeks = {42: "six weeks", 84: "twelve weeks", 28: "four weeks", 14: "two weeks"}
        return weeks.get(int(self.day), f"day {self.day:g}") if float(self.day).is_integer() else f"day {self.day:g}"

    @property
    def origin_text(self) -> str:
        return "pain onset" if self.origin == "onset" else "first contact"

    def lines(self) -> list[str]:
        """The configuration as printed in the report's header."""
        mcid = MCID_ABSOLUTE[self.instrument]
        return [f"Resolved: {self.rule!r} (rule '{self.rule.code}').",
                f"Days are counted from {self.origin_text}; the horizon is day {self.day:g} ({self.horizon}).",
                f"Outcome instrument: {instrument_label(self.instrument)}; improved = at least {mcid:g} points and "
                f"30% better than the first score, at the visit nearest day {self.day:g} (within {self.window:g} days).",
                f"Counts under {self.min_n} are not shown, nor any number that would reveal them."]


def _date(value, which: str, period):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        out = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"period: the {which} date {value!r} is not a date; give (start, end) as dates such as "
                         f"('2023-01-01', '2023-12-31'), None for an open end; got {period!r}") from err
    if pd.isna(out):
        return None
    return out.normalize()


def check_period(period) -> tuple | None:
    """``period`` as ``(start, end)`` Timestamps, either None for an open end; a ValueError naming ``period`` otherwise.

    Examples
    --------
    >>> check_period(("2021-01-01", None))
    (Timestamp('2021-01-01 00:00:00'), None)
    """
    if period is None:
        return None
    if isinstance(period, str | bytes) or not hasattr(period, "__len__") or len(period) != 2:
        raise ValueError(f"period must be (start, end) dates such as ('2023-01-01', '2023-12-31'), None for an "
                         f"open end, got {period!r}")
    lo, hi = _date(period[0], "start", period), _date(period[1], "end", period)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"period: the start {lo:%Y-%m-%d} is after the end {hi:%Y-%m-%d}; give (start, end) "
                         f"in that order, got {period!r}")
    return None if lo is None and hi is None else (lo, hi)


def period_words(period) -> str:
    """A checked period in words: "from 2021-01-01 to 2021-12-31", "from 2021-01-01 on", "up to 2021-12-31"."""
    lo, hi = period
    return (f"from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}" if lo is not None and hi is not None else
            f"from {lo:%Y-%m-%d} on" if lo is not None else f"up to {hi:%Y-%m-%d}")


def check_config(clinic, period, title, rule, day, origin, instrument, min_n, show_therapists, progress) -> ReportConfig:
    """The report's arguments checked (errors name the argument), as one :class:`ReportConfig`."""
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be text, got {title!r}")
    check_bool(progress, "progress")
    return ReportConfig(rule=as_rule(rule), day=check_day(day), origin=check_origin(origin),
                        instrument=check_instrument(instrument), min_n=check_min_n(min_n),
                        clinic=clinic, period=check_period(period), title=title,
                        show_therapists=check_bool(show_therapists, "show_therapists"))


def in_selection(episodes: pd.DataFrame, clinic=None, period=None) -> pd.Series:
    """Whether each episode is of ``clinic`` (when given) and first seen within the checked ``period``."""
    keep = pd.Series(True, index=episodes.index)
    if clinic is not None:
        keep &= episodes["clinic_id"] == clinic if "clinic_id" in episodes else False
    if period is not None:
        lo, hi = period
        first = pd.to_datetime(episodes["first_visit_date"]).dt.normalize()
        keep &= first.ge(lo) if lo is not None else True
        keep &= first.le(hi) if hi is not None else True
    return keep


def select_episodes(episodes: pd.DataFrame, clinic=None, period=None) -> pd.Series:
    """:func:`in_selection` of every episode; a ValueError naming ``clinic`` or ``period`` when none is selected.

    ``period`` is ``(start, end)`` (dates, both included); None for either end leaves it open.
    """
    period = check_period(period)
    ep = episodes
    if clinic is not None:
        present = sorted(map(str, ep["clinic_id"].dropna().unique())) if "clinic_id" in ep else []
        if not present:
            raise ValueError("clinic= was given but the study has no clinic_id in its patients table")
        if clinic not in present:
            raise ValueError(f"clinic={clinic!r}: no episodes for this clinic; clinics present: {', '.join(present)}")
    keep = in_selection(ep, clinic, period)
    if len(keep) and not keep.any():
        span = f"{ep['first_visit_date'].min():%Y-%m-%d} to {ep['first_visit_date'].max():%Y-%m-%d}"
        who = f"clinic {clinic}" if clinic is not None else "the study"
        raise ValueError(f"period: no episode of {who} was first seen {period_words(period)}; first visits in the "
                         f"data run from {span}")
    return keep


def select_study(study, clinic=None, period=None):
    """The episodes of one clinic and/or first seen within ``period`` (the study itself when that is all of them).

    ``period`` is ``(start, end)`` (dates, both included); None for either end leaves it open.
    """
    keep = select_episodes(study.episodes, clinic, period)
    if keep.all():
        return study
    return study.subset(study.episodes.loc[keep, "episode_id"])


def check_size(n: int, cfg: ReportConfig) -> None:
    """Refuse, before any analysis, a selection of ``n`` episodes whose every count would be under ``min_n``."""
    if n >= cfg.min_n:
        return
    who = f"clinic {cfg.clinic}" if cfg.clinic is not None else "the study"
    when = f" first seen {period_words(cfg.period)}" if cfg.period is not None else ""
    raise DisclosureError(
        f"{who} has {n} episode{'s' if n != 1 else ''}{when}, fewer than min_n={cfg.min_n}: a report would disclose "
        f"them. Report on more episodes (several clinics, a longer period), or lower min_n only if your data "
        "governance allows it.")
