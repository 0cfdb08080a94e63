"""Checks of public arguments, at the boundary of every analysis.

Each check raises ``ValueError`` (or ``TypeError`` for a value of the wrong
kind) with a message that names the argument, repeats the value and lists the
valid choices, so that no numpy, pandas, scipy or statsmodels message ever
reaches a user for a bad argument.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from .vocabulary import did_you_mean, instrument_name, modality_name

__all__ = ["check_proportion", "check_alpha", "check_day", "check_days", "check_min_n", "check_choice",
           "check_by", "check_k", "check_instrument", "check_modality", "check_origin", "check_bool",
           "check_positive", "check_int", "ORIGINS"]

ORIGINS = ("onset", "first_contact")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_proportion(value, name: str = "claimed") -> float:
    """A proportion strictly between 0 and 1 (``claimed=90`` suggests 0.90).

    Examples
    --------
    >>> check_proportion(0.9)
    0.9
    """
    if not _is_number(value):
        raise TypeError(f"{name} must be a proportion between 0 and 1, got {value!r}")
    v = float(value)
    if not 0 < v < 1:
        hint = f"; did you mean {v / 100:g}?" if 1 < v < 100 else ""
        raise ValueError(f"{name} must be a proportion strictly between 0 and 1, got {value!r}{hint}")
    return v


def check_alpha(value, name: str = "alpha") -> float:
    """An error rate in (0, 1)."""
    return check_proportion(value, name)


def check_positive(value, name: str, allow_zero: bool = False) -> float:
    """A finite positive number."""
    if not _is_number(value) or not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        what = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {what} number, got {value!r}")
    return float(value)


def check_day(value, name: str = "day") -> float:
    """One horizon in days since the origin: a positive number ("6 weeks" is refused)."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be a number of days (e.g. {name}=42 for six weeks), got the text {value!r}")
    if isinstance(value, list | tuple | set | range | np.ndarray):
        raise TypeError(f"{name} takes one number of days here (e.g. {name}=42), got {type(value).__name__} {value!r}")
    if not _is_number(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of days (e.g. {name}=42), got {value!r}")
    return float(value)


def check_days(value, name: str = "day") -> list[float]:
    """One or several horizons: an int, a float or a list of them; returns a sorted list without repeats."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [check_day(value, name)]
    days = [check_day(v, name) for v in value]
    if not days:
        raise ValueError(f"{name} must hold at least one day, got an empty {type(value).__name__}")
    return sorted(set(days))


def check_int(value, name: str, low: int = 0) -> int:
    """An integer at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | float) or (
            isinstance(value, float) and not float(value).is_integer()):
        raise TypeError(f"{name} must be a whole number >= {low}, got {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def check_min_n(value, name: str = "min_n") -> int:
    """A minimum count: a whole number >= 1."""
    return check_int(value, name, low=1)


def check_k(value, name: str = "k") -> list[int]:
    """Numbers of latent classes: one int >= 1 or an iterable of them."""
    vals = [value] if isinstance(value, numbers.Integral | float) and not isinstance(value, bool) else value
    if isinstance(vals, str) or not isinstance(vals, Iterable):
        raise TypeError(f"{name} must be a whole number >= 1 or a list/range of them, got {value!r}")
    out = sorted({check_int(v, name, low=1) for v in vals})
    if not out:
        raise ValueError(f"{name} must hold at least one number of classes, got {value!r}")
    return out


def check_bool(value, name: str) -> bool:
    """True or False (numpy booleans accepted)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    """One of a fixed set of strings."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}"
                         f"{did_you_mean(value, choices)}")
    return value


def check_origin(value, name: str = "origin") -> str:
    """``"onset"`` or ``"first_contact"``."""
    return check_choice(value, name, ORIGINS)


def check_instrument(value, name: str = "instrument") -> str:
    """Any spelling the loader accepts ("NPRS", "Oswestry", ...) -> the canonical code."""
    return instrument_name(value, name)


def check_modality(value, name: str = "reference") -> str:
    """Any spelling of a modality or treatment status ("none" -> "untreated")."""
    return modality_name(value, name)


def check_by(by, columns, name: str = "by") -> list[str]:
    """Grouping column(s): None, a name or a list of names, each one of ``columns``."""
    if by is None:
        return []
    cols = [by] if isinstance(by, str) else list(by) if isinstance(by, Iterable) else None
    if cols is None or not all(isinstance(c, str) for c in cols):
        raise TypeError(f"{name} must be a column name or a list of column names, got {by!r}")
    available = [str(c) for c in columns]
    for c in cols:
        if c not in available:
            raise ValueError(f"{name}={c!r} is not a column of study.episodes; choose from "
                             f"{', '.join(available)}{did_you_mean(c, available)}")
    return cols
