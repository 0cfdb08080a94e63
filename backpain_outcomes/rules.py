"""Definitions of "resolved": the :class:`Resolution` rule and its string form.

A rule is written either as ``Resolution("nrs", max_score=1, sustained=2)`` or
as text, parsed by :func:`as_rule` (whitespace and case do not matter):

==========================  ===================================================
text                        meaning
==========================  ===================================================
``nrs<=1``                  NRS <= 1 at one visit (absolute threshold)
``nrs<=1 x2``               NRS <= 1 on 2 consecutive visits
``nrs<=1 for 14 days``      NRS <= 1 at every visit for 14 days (and a visit
                            at least 14 days after the first qualifying one)
``mcid``                    NRS improved by the MCID (2 points and 30%)
``odi mcid``, ``odi:mcid``  the ODI MCID (10 points and 30%)
``odi mcid(either)``        points *or* percent (also ``points``, ``percent``)
``odi-50%``                 ODI down 50% from baseline (relative drop)
``nrs-2``                   NRS down 2 points from baseline
``nrs<=1 & nrs-50%``        both criteria (``&`` joins criteria)
``... same day max``        combine same-day measurements by their maximum
                            (``mean`` is the default, also ``min``)
==========================  ===================================================

:attr:`Resolution.code` gives the text of a rule, which parses back to an
equal rule.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .checks import check_int, check_positive
from .vocabulary import INSTRUMENTS, MCID_ABSOLUTE, MCID_RELATIVE, instrument_name

__all__ = ["Resolution", "as_rule", "DEFAULT_RULE", "RULE_GRAMMAR", "MCID_MODES", "SAME_DAY"]

MCID_MODES = ("both", "either", "points", "percent")
#: How measurements of one instrument on one calendar day are combined into one visit.
SAME_DAY = ("mean", "min", "max")

RULE_GRAMMAR = (
    "rule text: 'nrs<=1' (absolute), 'nrs<=1 x2' (on 2 consecutive visits), 'nrs<=1 for 14 days' "
    "(sustained 14 days), 'mcid' / 'odi mcid' / 'odi:mcid' / 'odi mcid(either)' (Ostelo 2008 MCID), "
    "'odi-50%' (relative drop from baseline), 'nrs-2' (drop of 2 points), criteria joined with '&', "
    "optional 'same day max' (or min, mean) at the end; whitespace and case are free")

_NUM = r"\d+(?:\.\d+)?"
_INST = r"[a-z][a-z0-9_]*?"
_TAIL = re.compile(r"^(?P<crit>.+?)(?:x(?P<k>\d+))?(?:for(?P<days>\d+)days?)?"
                   r"(?:[,;]?same_?day[=:]?(?P<same>mean|min|max))?$")
_ABS = re.compile(rf"^(?P<inst>{_INST})<=(?P<v>{_NUM})$")
_REL = re.compile(rf"^(?P<inst>{_INST})-(?P<v>{_NUM})%$")
_DROP = re.compile(rf"^(?P<inst>{_INST})-(?P<v>{_NUM})$")
_MCID = re.compile(r"^(?:(?P<inst>[a-z][a-z0-9_]*?):?)?mcid(?:\((?P<mode>both|either|points|percent)\))?$")


def _text(x: float, scale: int = 1) -> str:
    """Shortest decimal text of ``x * scale`` that reads back to the same float (no binary rounding)."""
    return format((Decimal(repr(float(x))) * scale).normalize(), "f")


def _number(value, name: str, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Resolution:
    """A definition of "resolved" for one instrument.

    Parameters
    ----------
    instrument : str
        ``"nrs"``, ``"vas"``, ``"odi"``, ``"rmdq"`` or any accepted spelling
        (``"NPRS"``, ``"Oswestry"``, ...).
    max_score : float, optional
        Absolute rule: score <= ``max_score`` (e.g. NRS <= 1; Kamper et al.
        2010 found NRS 0 and RMDQ <= 2 best identify complete recovery).
    min_relative_drop : float, optional
        Relative rule, a proportion in (0, 1]: ``(baseline - score) / baseline
        >= min_relative_drop``. Undefined for a baseline of 0 (floor effect):
        such episodes are reported as not evaluable.
    min_drop : float, optional
        Absolute improvement from baseline in points.
    mcid : bool or {"both", "either", "points", "percent"}
        Minimal clinically important change of Ostelo et al. 2008 (Spine
        33:90-94): NRS 2, VAS 15, ODI 10, RMDQ 5 points and 30% from
        baseline. ``True`` means ``"both"`` (the points *and* 30%);
        ``"either"`` accepts one of the two.
    sustained : int
        Number of consecutive visits (distinct days) that must meet the rule.
    sustained_days : int, optional
        Time-based persistence: every visit within ``sustained_days`` days
        after the first qualifying one meets the rule, and there is a visit
        at least ``sustained_days`` days after it.
    same_day : {"mean", "min", "max"}
        How measurements of the instrument on one calendar day of an episode
        are combined into one visit.

    Several criteria given together must all be met.

    Examples
    --------
    >>> Resolution("nrs", max_score=1, sustained=2)
    NRS <= 1 on 2 consecutive visits
    >>> Resolution.parse("NPRS <= 1 x2") == Resolution("nrs", max_score=1, sustained=2)
    True
    >>> Resolution("odi", min_relative_drop=0.5).code
    'odi-50%'
    """

    instrument: str = "nrs"
    max_score: float | None = None
    min_relative_drop: float | None = None
    min_drop: float | None = None
    mcid: bool | str = False
    sustained: int = 1
    sustained_days: int | None = None
    same_day: str = "mean"

    def __post_init__(self):
        put = object.__setattr__
        put(self, "instrument", instrument_name(self.instrument, "instrument"))
        put(self, "max_score", _number(self.max_score, "max_score"))
        put(self, "min_drop", _number(self.min_drop, "min_drop"))
        rel = _number(self.min_relative_drop, "min_relative_drop")
        if rel is not None and not 0 < rel <= 1:
            hint = f"; did you mean {rel / 100:g}?" if 1 < rel <= 100 else ""
            raise ValueError(f"min_relative_drop must be a proportion in (0, 1], got {rel!r}{hint}")
        put(self, "min_relative_drop", rel)
        if self.min_drop is not None:
            check_positive(self.min_drop, "min_drop")
        mcid = self.mcid
        if mcid is True:
            mcid = "both"
        elif mcid is False or mcid is None:
            mcid = False
        elif mcid not in MCID_MODES:
            raise ValueError(f"mcid={mcid!r} is not valid; use True, False or one of {', '.join(map(repr, MCID_MODES))}")
        put(self, "mcid", mcid)
        put(self, "sustained", check_int(self.sustained, "sustained", low=1))
        if self.sustained_days is not None:
            put(self, "sustained_days", check_int(self.sustained_days, "sustained_days", low=1))
        if self.same_day not in SAME_DAY:
            raise ValueError(f"same_day={self.same_day!r} is not valid; choose one of {', '.join(map(repr, SAME_DAY))}")
        if self.max_score is None and rel is None and self.min_drop is None and not mcid:
            raise ValueError("a Resolution needs max_score=, min_relative_drop=, min_drop= or mcid=True")
        low, high = INSTRUMENTS[self.instrument][:2]
        if self.max_score is not None and not low <= self.max_score <= high:
            raise ValueError(f"max_score={self.max_score:g} is outside the {self.instrument.upper()} range "
                             f"{low:g}-{high:g}")

    @classmethod
    def parse(cls, text: str) -> Resolution:
        """The rule written as text (see the module docstring for the grammar).

        Raises
        ------
        ValueError
            Showing the grammar, when the text cannot be read.
        """
        if not isinstance(text, str):
            raise TypeError(f"rule must be a Resolution or its text (e.g. 'nrs<=1 x2'), got {text!r}")
        t = re.sub(r"\s+", "", text.lower())
        m = _TAIL.match(t)
        if not t or m is None:
            raise ValueError(f"cannot read rule {text!r}; {RULE_GRAMMAR}")
        fields: dict = {}
        for part in m["crit"].split("&"):
            inst, crit = _criterion(part, text)
            if "instrument" in fields and fields["instrument"] != inst:
                raise ValueError(f"rule {text!r} mixes instruments ({fields['instrument']}, {inst}); "
                                 "a rule uses one instrument")
            fields["instrument"] = inst
            for key, val in crit.items():
                if key in fields:
                    raise ValueError(f"rule {text!r} gives {key} twice; {RULE_GRAMMAR}")
                fields[key] = val
        if m["k"]:
            fields["sustained"] = int(m["k"])
        if m["days"]:
            fields["sustained_days"] = int(m["days"])
        if m["same"]:
            fields["same_day"] = m["same"]
        return cls(**fields)

    @property
    def code(self) -> str:
        """The text form of the rule; ``Resolution.parse(rule.code) == rule``."""
        inst = self.instrument
        parts = []
        if self.max_score is not None:
            parts.append(f"{inst}<={_text(self.max_score)}")
        if self.min_relative_drop is not None:
            parts.append(f"{inst}-{_text(self.min_relative_drop, 100)}%")
        if self.min_drop is not None:
            parts.append(f"{inst}-{_text(self.min_drop)}")
        if self.mcid:
            parts.append(f"{inst} mcid" + ("" if self.mcid == "both" else f"({self.mcid})"))
        out = " & ".join(parts)
        if self.sustained > 1:
            out += f" x{self.sustained}"
        if self.sustained_days is not None:
            out += f" for {self.sustained_days} days"
        if self.same_day != "mean":
            out += f" same day {self.same_day}"
        return out

    @property
    def mcid_mode(self) -> str | None:
        """``None`` without an MCID criterion, else one of ``both``, ``either``, ``points``, ``percent``."""
        return self.mcid or None

    @property
    def uses_baseline(self) -> bool:
        """Whether the rule compares a score with the episode's baseline."""
        return self.min_relative_drop is not None or self.min_drop is not None or bool(self.mcid)

    @property
    def needs_positive_baseline(self) -> bool:
        """Whether the rule uses a relative change, undefined for a baseline of 0."""
        return self.min_relative_drop is not None or self.mcid_mode in ("both", "percent")

    def __repr__(self) -> str:
        inst = self.instrument.upper()
        parts = []
        if self.max_score is not None:
            parts.append(f"{inst} <= {self.max_score:g}")
        if self.min_relative_drop is not None:
            parts.append(f"{inst} down {self.min_relative_drop:.0%} from baseline")
        if self.min_drop is not None:
            parts.append(f"{inst} down {self.min_drop:g} points from baseline")
        if self.mcid:
            pts = MCID_ABSOLUTE[self.instrument]
            joiner = {"both": " and ", "either": " or "}
            mode = self.mcid_mode
            if mode in joiner:
                txt = f"{pts:g} points{joiner[mode]}{MCID_RELATIVE:.0%}"
            else:
                txt = f"{pts:g} points" if mode == "points" else f"{MCID_RELATIVE:.0%}"
            parts.append(f"{inst} improved by the MCID ({txt}; Ostelo 2008)")
        k = self.sustained
        when = "at one visit" if k == 1 else f"on {k} consecutive visits"
        if self.sustained_days is not None:
            when = (f"for {self.sustained_days} days" if k == 1 else f"{when} and for {self.sustained_days} days")
        tail = "" if self.same_day == "mean" else f" (same-day measurements combined by their {self.same_day})"
        return " and ".join(parts) + " " + when + tail

    __str__ = __repr__

    def meets(self, score: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        """Boolean array: does each measurement meet the rule?"""
        score = np.asarray(score, float)
        baseline = np.asarray(baseline, float)
        ok = np.ones(score.shape, bool)
        drop = baseline - score
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(baseline > 0, drop / baseline, np.nan)
        if self.max_score is not None:
            ok &= score <= self.max_score
        if self.min_relative_drop is not None:
            ok &= rel >= self.min_relative_drop - 1e-12
        if self.min_drop is not None:
            ok &= drop >= self.min_drop - 1e-12
        if self.mcid:
            pts = drop >= MCID_ABSOLUTE[self.instrument] - 1e-12
            pct = rel >= MCID_RELATIVE - 1e-12
            ok &= {"both": pts & pct, "either": pts | pct, "points": pts, "percent": pct}[self.mcid_mode]
        return ok


def _criterion(part: str, text: str) -> tuple[str, dict]:
    """Instrument and Resolution fields of one criterion of a rule's text."""
    if m := _ABS.match(part):
        return instrument_name(m["inst"], "instrument"), {"max_score": float(m["v"])}
    if m := _REL.match(part):
        return instrument_name(m["inst"], "instrument"), {"min_relative_drop": float(Decimal(m["v"]) / 100)}
    if m := _DROP.match(part):
        return instrument_name(m["inst"], "instrument"), {"min_drop": float(m["v"])}
    if m := _MCID.match(part):
        inst = instrument_name(m["inst"], "instrument") if m["inst"] else "nrs"
        return inst, {"mcid": m["mode"] or "both"}
    raise ValueError(f"cannot read {part!r} in rule {text!r}; {RULE_GRAMMAR}")


def as_rule(rule, name: str = "rule") -> Resolution:
    """A :class:`Resolution` from a Resolution or its text.

    Examples
    --------
    >>> as_rule("odi:mcid")
    ODI improved by the MCID (10 points and 30%; Ostelo 2008) at one visit
    """
    if isinstance(rule, Resolution):
        return rule
    if isinstance(rule, str):
        try:
            return Resolution.parse(rule)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    raise TypeError(f"{name} must be a Resolution or its text (e.g. 'nrs<=1 x2'), got {type(rule).__name__} {rule!r}")


#: The default rule of the claim check: NRS <= 1 on two consecutive visits.
DEFAULT_RULE = Resolution("nrs", max_score=1, sustained=2)
