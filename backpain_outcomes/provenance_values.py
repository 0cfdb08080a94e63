"""What a provenance record is made of (:mod:`backpain_outcomes.provenance`): the SHA-256 of files and of
tables (a canonical CSV serialisation), the list of input files with their sizes and hashes, and configuration
values as JSON types (a rule as its text, numbers as int or float, NaN and infinity as text)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from .rules import Resolution

__all__ = ["sha256_file", "sha256_frame", "plain_value", "plain_config", "input_records"]


def sha256_file(path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_frame(df: pd.DataFrame) -> str:
    """SHA-256 (hex) of a canonical CSV serialisation of ``df``.

    Columns in their order, no index, ``\\n`` line ends, UTF-8, floats with 17
    significant digits (round-trip), dates in ISO 8601, missing values empty.
    The same table gives the same hash whether it was read from a file or built
    in memory. Rows are hashed in their order: the hash identifies the table
    as analysed, and the tables of a study keep each row's file and line
    (``_source``, ``_row``), so the same rows in another order are other input.
    """
    h = hashlib.sha256()
    for start in range(0, max(len(df), 1), _CHUNK_ROWS):  # a large table is never held as one text
        text = df.iloc[start:start + _CHUNK_ROWS].to_csv(index=False, header=start == 0, lineterminator="\n",
                                                         float_format="%.17g", date_format="%Y-%m-%dT%H:%M:%S",
                                                         na_rep="")
        h.update(text.encode("utf-8"))
    return h.hexdigest()


_CHUNK_ROWS = 200_000


def plain_value(value):
    """A configuration value as JSON types (a rule as its text; numbers as int or float; paths as text)."""
    if isinstance(value, Resolution):
        return value.code
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            return str(value)  # "nan", "inf": JSON has no such number
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | range | np.ndarray | pd.Index):
        return [plain_value(v) for v in value]
    if isinstance(value, pd.Timestamp | dt.date):
        return value.isoformat()
    return str(value)


def plain_config(config: dict) -> dict:
    out = {str(k): plain_value(v) for k, v in config.items()}
    rule = config.get("rule")
    if isinstance(rule, Resolution):
        out["rule_description"] = repr(rule)
    return out


def input_records(files) -> list[dict]:
    out = []
    for f in sorted(dict.fromkeys(Path(p).resolve() for p in files)):  # by path: the order given does not matter
        if f.is_file():
            out.append({"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)})
    return out
