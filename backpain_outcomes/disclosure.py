"""Statistical disclosure control for clinic reports: small-cell suppression.

Counts from 1 to ``min_cell - 1`` are shown as ``"<min_cell"`` (primary
suppression; a zero discloses nothing about a person and stays visible); where a row or column would then have exactly one hidden cell,
the smallest visible cell of that line is hidden too (complementary
suppression), so a hidden value cannot be recovered by subtracting from a
published total. This follows the usual practice of health statistics
offices (e.g. NHS Digital's small-number rules).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["suppress_counts", "mask_small_numbers"]


def suppress_counts(counts: pd.DataFrame, min_cell: int = 5, totals: bool = True) -> pd.DataFrame:
    """Return a string table with small counts hidden.

    Parameters
    ----------
    counts : DataFrame of non-negative integers
    min_cell : int
        Counts from 1 to ``min_cell - 1`` are hidden.
    totals : bool
        Append a ``Total`` row and column (sums of the true counts, also
        hidden when small) and protect them with complementary suppression.
    """
    c = counts.fillna(0).astype(int)
    vals = c.to_numpy()
    hidden = (vals > 0) & (vals < min_cell)
    changed = True
    while changed:
        changed = False
        for axis in (0, 1):
            lines = hidden if axis == 1 else hidden.T
            v = vals if axis == 1 else vals.T
            for i in range(lines.shape[0]):
                row_h, row_v = lines[i], v[i]
                if row_h.sum() == 1 and len(row_h) > 1:
                    candidates = np.where(~row_h & (row_v > 0), row_v, np.iinfo(np.int64).max)
                    if candidates.min() == np.iinfo(np.int64).max:
                        continue
                    j = int(np.argmin(candidates))
                    row_h[j] = True
                    changed = True
    hide = f"<{min_cell}"
    out = pd.DataFrame(np.where(hidden, hide, vals.astype(str)), index=c.index, columns=c.columns)
    if totals:
        col_tot = c.sum(axis=1)
        out["Total"] = np.where((col_tot > 0) & (col_tot < min_cell), hide, col_tot.astype(str))
        if c.shape[0] > 1:
            row_tot = c.sum(axis=0)
            last = list(np.where((row_tot > 0) & (row_tot < min_cell), hide, row_tot.astype(str)))
            grand = int(c.to_numpy().sum())
            out.loc["Total"] = last + [hide if 0 < grand < min_cell else str(grand)]
    return out


_COUNT_WORDS = r"((?:\s+(?:untreated|treated|chronic|acute|subacute|resolved|of|the))*\s+(?:episodes?|resolutions?|patients?|sessions?))"


def mask_small_numbers(text: str, min_cell: int = 5) -> str:
    """Hide counts under ``min_cell`` in free text ("only 3 untreated episodes" -> "only <5 untreated episodes")."""
    def repl(m):
        return (f"<{min_cell}" if int(m.group(1)) < min_cell else m.group(1)) + m.group(2)
    def repl_of(m):
        small = [f"<{min_cell}" if int(g) < min_cell else g for g in (m.group(1), m.group(3))]
        return small[0] + m.group(2) + small[1] + m.group(4)
    text = re.sub(r"\b(\d+)(\s+of\s+)(\d+)" + _COUNT_WORDS, repl_of, text)
    return re.sub(r"(?<![<\d])\b(\d+)" + _COUNT_WORDS, repl, text)
