"""Errors and warnings raised by backpain_outcomes.

Modelled on ``lifelines.exceptions``: each class is specific, and the message
of every warning carries advice on what to do about it.
"""

from __future__ import annotations

import functools
import sys
import types
import warnings

import pandas as pd

__all__ = [
    "BackpainError",
    "DataValidationError",
    "ConvergenceError",
    "ConvergenceWarning",
    "SmallSampleWarning",
    "StatisticalWarning",
    "ExcludedRowsWarning",
    "MissingDependencyError",
    "DisclosureError",
    "warn",
]


class BackpainError(Exception):
    """Base class of every error raised on purpose by the package."""


class DataValidationError(BackpainError, ValueError):
    """Input data break the rules of the data dictionary (missing columns, bad values, unknown ids, ...).

    The message lists **every** problem found, one per line, as
    ``file:row:column: message (got VALUE, expected ...)``; ``problems`` holds
    them as a DataFrame with columns ``table``, ``source``, ``row``,
    ``column``, ``value``, ``reason``, ``message``, ``expected``.
    """

    #: Problems shown in the message (all of them are in ``problems``).
    SHOWN = 50

    def __init__(self, problems: pd.DataFrame, header: str | None = None):
        self.problems = problems.reset_index(drop=True)
        self.header = header  # None: the default "N problems found in the input data"
        n = len(self.problems)
        lines = format_problems(self.problems.head(self.SHOWN))
        if n > self.SHOWN:
            counts = self.problems["reason"].value_counts()
            lines.append(f"... and {n - self.SHOWN} more (all {n} are in .problems); by reason: "
                         + ", ".join(f"{reason} {k}" for reason, k in counts.items()))
        head = header or f"{n} problem{'s' if n != 1 else ''} found in the input data"
        advice = (
            "Fix the rows above, or load with errors='exclude' to keep the valid "
            "rows and list the others in study.exclusions."
        )
        super().__init__("\n".join([head + ":", *lines, advice]))


def format_problems(problems: pd.DataFrame) -> list[str]:
    """Render a problems table as ``file:row:column: message (got V, expected E)`` lines."""
    out = []
    for rec in problems.itertuples(index=False):
        loc = str(rec.source) + ("" if pd.isna(rec.row) else f":{int(rec.row)}") + (f":{rec.column}" if rec.column else "")
        tail = []
        if rec.value is not None and not (isinstance(rec.value, float) and pd.isna(rec.value)):
            tail.append(f"got {rec.value!r}")
        if rec.expected:
            tail.append(f"expected {rec.expected}")
        suffix = f" ({', '.join(tail)})" if tail else ""
        out.append(f"{loc}: {rec.message}{suffix}")
    return out


class ConvergenceError(BackpainError, ValueError):
    """An optimiser failed in a way that leaves no usable estimate."""


class MissingDependencyError(BackpainError, RuntimeError):
    """An optional external program (for example Chromium for PDF) is missing."""


class DisclosureError(BackpainError, ValueError):
    """A report would disclose a count under ``min_n`` whatever is hidden (too few episodes selected).

    The message names the selection and what to change: a larger selection (more clinics, a
    longer period) or, where the data governance allows it, a lower ``min_n``.
    """


class StatisticalWarning(RuntimeWarning):
    """An assumption of the method is doubtful for these data; read the advice."""


class ConvergenceWarning(StatisticalWarning):
    """An optimiser stopped without meeting its convergence criterion.

    The estimates are reported but should not be trusted before the advice in
    the message is followed (rescale time, simplify the random effects, ...).
    """


class SmallSampleWarning(StatisticalWarning):
    """Too few episodes or events for the asymptotic approximation used."""


class ExcludedRowsWarning(UserWarning):
    """Rows were moved to ``study.exclusions`` when loading with errors='exclude'."""


def warn(message: str | Warning, category: type[Warning]) -> None:
    """Emit a warning attributed to the user's line of code.

    The line shown is that of the first caller outside this package (and outside
    :mod:`functools`, whose single-dispatch wrapper stands between a user and the
    analyses that accept partitioned studies), however deep inside the package
    the warning arises; a fixed ``stacklevel`` would point into the package when
    one more layer is added.
    """
    package = __name__.partition(".")[0]
    frame: types.FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and (frame.f_globals.get("__name__", "").partition(".")[0] == package
                                 or frame.f_code.co_filename == functools.__file__):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
