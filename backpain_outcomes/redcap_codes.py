"""REDCap missing-data codes and form status: values that say "no value", and forms saved as Incomplete.

A REDCap project may mark a value as missing with a code (*Missing Data
Codes*: REDCap's own ``UNK``, ``NA``, ``ASKU``, ... or the project's, such as
``-999``). :func:`blank_codes` reads every mapped field's codes as blank before
anything else sees them, so that a code never loads as a score: REDCap's
standard codes always in numbers and dates (where they cannot be a value),
and the codes the mapping declares (``missing_codes``) in every mapped field,
except where a code is also one of the field's choices. A session or score
whose date, treatment or score is a code is excluded with reason
``missing_value`` and the code as its value (:func:`coded_rows`): the project
recorded that there is no value, which is not an error of the export.

Each instrument has a status column (``<form>_complete``: 0 Incomplete,
1 Unverified, 2 Complete; ``Complete?`` in the label export). REDCap sets it
to Incomplete unless the person entering data changes it, so the values of
incomplete forms are used as entered; :func:`incomplete_note` says how many
used rows come from such forms, with their lines.

An export resaved by a spreadsheet may write a date-time field as
``04/03/2024 10:30`` or a date as a serial day number:
:func:`prepare_date_fields` drops the time of day and reads serials as dates
in every mapped date field (see :func:`~backpain_outcomes.visits_prepare.prepare_dates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .problems import EXCLUSION_COLUMNS
from .redcap_export import RedcapExport
from .redcap_mapping import STANDARD_MISSING_CODES, RedcapDictionary, RedcapMapping
from .visits_prepare import prepare_dates

__all__ = ["Coded", "blank_codes", "coded_rows", "items_coded", "incomplete_note", "form_status",
           "prepare_date_fields"]


@dataclass
class Coded:
    """Cells of the export that held a missing-data code: field -> (mask of rows, the codes as written)."""

    cells: dict
    labels: dict     # code -> label, for messages

    def mask(self, field: str | None, n: int) -> np.ndarray:
        """Rows where ``field`` held a code (all False for a field without any)."""
        return self.cells[field][0] if field in self.cells else np.zeros(n, bool)


def _numeric_fields(m: RedcapMapping) -> set:
    out = {m.sessions.get("date"), m.sessions.get("duration"), m.onset, m.patients.get("age")}
    for s in m.scores:
        out |= {s.date, s.value, *s.items}
    return out - {None}


def blank_codes(ex: RedcapExport, dic: RedcapDictionary, m: RedcapMapping) -> tuple[RedcapExport, Coded, list[str]]:
    """The export with the missing-data codes of its mapped fields set blank, which cells held one, and a note."""
    numeric = _numeric_fields(m)
    declared = {**{lab: c for c, lab in m.missing_codes.items()}, **{c: c for c in m.missing_codes}}
    standard = {c: c for c in STANDARD_MISSING_CODES}
    data, cells, counts = ex.data, {}, []
    for _, f in m.fields():
        if f in cells or f in (dic.record_id, m.patient):
            continue
        choices = dic.fields[f].choices
        known = {**(standard if f in numeric else {}), **declared}
        known = {k: c for k, c in known.items() if k not in choices and k.lower() not in
                 {str(v).lower() for v in choices.values()}}
        if not known:
            continue
        col = data[f]
        mask = _code_mask(col, known)
        if mask.any():
            written = np.asarray(col.astype(object).to_numpy(), dtype=object)
            found = sorted({known[_text(v)] for v in written[mask]})
            cells[f] = (mask, written)
            counts.append(f"{ex.header[f]} {int(mask.sum())} ({', '.join(found)})")
    if not cells:
        return ex, Coded({}, {}), []
    data = data.copy()
    for f, (mask, _) in cells.items():
        data[f] = data[f].astype(object).mask(mask, None)
    note = (f"{ex.part.source}: {sum(int(c[0].sum()) for c in cells.values())} value(s) are missing-data codes, read "
            f"as blank (a session or score without its value is excluded as missing_value): {'; '.join(counts)}")
    labels = {**{c: c for c in STANDARD_MISSING_CODES}, **m.missing_codes}
    return RedcapExport(ex.part, data, ex.header, ex.labels), Coded(cells, labels), [note]


def _code_mask(col: pd.Series, known: dict) -> np.ndarray:
    """Cells holding one of the codes (or labels) in ``known``: compared as text, numbers as numbers."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        nums = [float(k) for k in known if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", k)]
        return col.isin(nums).to_numpy(dtype=bool) if nums else np.zeros(len(col), bool)
    if col.dtype == object:   # mixed cells (a DataFrame): each distinct value compared once, as REDCap writes it
        codes, uniq = pd.factorize(col)
        return np.append(np.array([_text(u) in known for u in uniq], bool), False)[codes]
    return col.isin(list(known)).to_numpy(dtype=bool)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def coded_rows(ex: RedcapExport, coded: Coded, take: np.ndarray, table: str, source: str,
               fields: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of ``take`` whose value of one of ``fields`` (date, treatment, score) was a code, as exclusions naming
    the first such field; and ``take`` without them."""
    n = len(ex.data)
    hit = np.zeros(n, bool)
    column = np.full(n, None, dtype=object)
    value = np.full(n, None, dtype=object)
    for f in fields:
        new = take & coded.mask(f, n) & ~hit
        if new.any():
            column[new] = ex.header[f]
            value[new] = coded.cells[f][1][new]
            hit |= new
    if not hit.any():
        return take, pd.DataFrame({c: [] for c in EXCLUSION_COLUMNS})
    codes = [_text(v) for v in value[hit]]
    frame = pd.DataFrame({
        "table": table, "source": source, "row": ex.part.lines[hit], "column": column[hit], "value": codes,
        "reason": "missing_value",
        "message": [f"{c!r} is a missing-data code ({coded.labels.get(c, c)}): no value recorded" for c in codes]})
    return take & ~hit, frame


def items_coded(ex: RedcapExport, coded: Coded, take: np.ndarray, items: tuple) -> np.ndarray:
    """Rows of ``take`` with no item answered and at least one item coded."""
    n = len(ex.data)
    any_coded = np.any([coded.mask(f, n) for f in items], axis=0)
    return take & any_coded & ex.data[list(items)].isna().all(axis=1).to_numpy()


def form_status(ex: RedcapExport, dic: RedcapDictionary, form: str) -> pd.Series | None:
    """The status column of ``form`` (``<form>_complete``, or in the label export the ``Complete?`` column that
    follows the form's last field), or None."""
    if f"{form}_complete" in ex.data:
        return ex.data[f"{form}_complete"]
    cols = list(ex.data.columns)
    own = [k for k, c in enumerate(cols) if c in dic.fields and dic.fields[c].form == form]
    if ex.labels and own and own[-1] + 1 < len(cols) and re.match(r"^complete\?(\.\d+)?$",
                                                                  str(cols[own[-1] + 1]).strip().lower()):
        return ex.data.iloc[:, own[-1] + 1]
    return None


def incomplete_note(ex: RedcapExport, dic: RedcapDictionary, used: dict) -> list[str]:
    """How many session and score rows come from forms saved as Incomplete (status 0), with their lines."""
    parts, total = [], 0
    for form, rows in used.items():
        status = form_status(ex, dic, form)
        if status is None:
            continue
        zero = status.eq(0) if pd.api.types.is_numeric_dtype(status) else status.isin(
            ["0", "Incomplete", "incomplete", "INCOMPLETE", 0, 0.0])
        bad = rows & zero.fillna(False).to_numpy(dtype=bool)
        if bad.any():
            total += int(bad.sum())
            lines = ex.part.lines[bad]
            shown = ", ".join(str(int(v)) for v in lines[:8]) + (", ..." if len(lines) > 8 else "")
            parts.append(f"{form} line{'s' if len(lines) > 1 else ''} {shown}")
    if not total:
        return []
    return [f"{ex.part.source}: {total} session or score row(s) come from forms marked Incomplete (status 0): {'; '.join(parts)}; "
            "they are used as entered (REDCap leaves a form Incomplete unless its status is changed)"]


def prepare_date_fields(ex: RedcapExport, m: RedcapMapping) -> tuple[RedcapExport, list[str]]:
    """Every mapped date field without times of day, serial day numbers as dates; and notes saying so."""
    dates = list(dict.fromkeys(f for f in (m.sessions.get("date"), m.onset, *(s.date for s in m.scores)) if f))
    data, notes = ex.data, []
    for f in dates:
        values, said = prepare_dates(data[f], ex.part.lines, f"{ex.part.source}: {ex.header[f]!r}")
        if said:
            data = data.copy() if data is ex.data else data
            data[f] = values
            notes += said
    return (RedcapExport(ex.part, data, ex.header, ex.labels) if notes else ex), notes
