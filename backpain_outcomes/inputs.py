"""The inputs of loading: which files, DataFrames or parts hold each table, and how problems name them.

The start of :func:`~backpain_outcomes.loading.load_study` (split out of :mod:`backpain_outcomes.loading`):
:func:`table_inputs` puts the tables given one by one before the files found in the directory (a data file
named after no table is a problem, never ignored), :func:`input_labels` names each input in problems, and
:func:`sheet_for` picks the sheet to read of a table's workbooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .problems import Problems
from .reading import Part, find_table_files

__all__ = ["table_inputs", "input_labels", "sheet_for"]


def _as_list(obj) -> list:
    return list(obj) if isinstance(obj, list | tuple) else [obj]


def table_inputs(path, given: dict, p: Problems) -> dict[str, list]:
    """Inputs of each table: explicit arguments first, then the files of ``path``."""
    given = {k: _as_list(v) for k, v in given.items() if v is not None}
    for name, objs in given.items():
        for obj in objs:
            if not isinstance(obj, pd.DataFrame | Part | str | os.PathLike):
                raise TypeError(f"{name} must be a file path or a DataFrame (or a list of them), got "
                                f"{type(obj).__name__}")
    if path is None:
        return given
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a directory or file path, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        found, strays = find_table_files(path)
        for name, files in found.items():
            given.setdefault(name, files)
        for f in strays:
            p.whole_file("", f.name, "unrecognised_file", "cannot tell which table this file holds: name it "
                         "patients, episodes, sessions or scores (scores.csv, scores_2024.xlsx, ...), or move it out "
                         "of the directory", "a file named after its table")
    elif path.is_file():
        given.setdefault("scores", [path])
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")
    return given


def sheet_for(sheet, name: str):
    """The sheet to read of table ``name``'s workbooks: ``sheet`` itself, or its entry for the table."""
    return sheet.get(name) if isinstance(sheet, dict) else sheet


def input_labels(given: dict) -> dict[int, str]:
    """How each input is named in problems: its file name, or its path when two inputs share a name."""
    objs = [(name, obj) for name, lst in given.items() for obj in lst]
    plain = {id(o): o.source if isinstance(o, Part) else f"<{n} DataFrame>" if isinstance(o, pd.DataFrame)
             else Path(o).name for n, o in objs}
    counts = pd.Series(list(plain.values()), dtype=object).value_counts()
    out = {}
    for i, (name, obj) in enumerate(objs):
        label = plain[id(obj)]
        if counts.get(label, 0) > 1 and not isinstance(obj, Part):  # a part keeps the name it was read under
            label = f"<{name} DataFrame {i + 1}>" if isinstance(obj, pd.DataFrame) else str(obj)
        out[id(obj)] = label
    return out
