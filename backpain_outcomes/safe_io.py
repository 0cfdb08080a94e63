"""Safe output helpers: CSV that spreadsheets cannot execute."""

from __future__ import annotations

import pandas as pd

__all__ = ["neutralise_formulas", "safe_csv"]

_LEADING = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with ``= + - @`` (or tab/CR) with ``'`` so that
    spreadsheets show them as text instead of evaluating a formula (OWASP CSV
    injection guidance). Numbers are left alone, so ``-1.5`` stays a number."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            out[col] = s.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_LEADING) else v)
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(_LEADING) else c for c in out.columns]
    return out


def safe_csv(df: pd.DataFrame, path, **kwargs) -> None:
    """Write ``df`` to CSV with formula injection neutralised."""
    neutralise_formulas(df).to_csv(path, index=kwargs.pop("index", False), **kwargs)
