"""REDCap data dictionaries: one row per field, naming its form (instrument), its type and its choices.

A REDCap project is described by its **data dictionary** (the CSV file
downloaded from *Project Setup > Data Dictionary*, or the ``metadata`` of the
API): one row per field, naming its form (instrument), its type and, for
radio buttons, drop-downs and checkboxes, its choices ``"1, Deep tissue | 2,
Swedish"``. :func:`read_dictionary` reads it under either set of headers;
:func:`parse_choices` splits choices written with or without spaces
(``"1,Deep tissue|2,Swedish"``), at the first comma of each, so labels may
hold commas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .reading import ReadError, read_part

__all__ = ["RedcapField", "RedcapDictionary", "read_dictionary", "parse_choices", "CHOICE_TYPES"]

#: Dictionary headers (letters and digits only, lower case) -> name used here; the file's and the API's headers.
_HEADERS = {"variablefieldname": "field_name", "fieldname": "field_name", "formname": "form_name",
            "fieldtype": "field_type", "fieldlabel": "field_label",
            "choicescalculationsorsliderlabels": "choices", "selectchoicesorcalculations": "choices",
            "textvalidationtypeorshowslidernumber": "validation"}
_REQUIRED = ("field_name", "form_name", "field_type")
#: Field types whose values are codes with labels.
CHOICE_TYPES = ("radio", "dropdown", "checkbox", "yesno", "truefalse")
_IMPLIED = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}


def _key(text: object) -> str:
    return re.sub(r"[^0-9a-z]+", "", str(text).lower())


def parse_choices(text: object) -> dict[str, str]:
    """Codes and labels of a choice field: ``"1, Deep tissue | 2, Swedish"`` -> ``{"1": "Deep tissue", ...}``.

    Each choice is split at its first comma, so labels may hold commas.

    Examples
    --------
    >>> parse_choices("0, None | 1, Mild, occasional | 2, Severe")
    {'0': 'None', '1': 'Mild, occasional', '2': 'Severe'}
    """
    if text is None or (isinstance(text, float) and text != text):
        return {}
    out = {}
    for item in str(text).split("|"):
        code, sep, lab = item.partition(",")
        if code.strip():
            out[code.strip()] = lab.strip() if sep else code.strip()
    return out


@dataclass(frozen=True)
class RedcapField:
    """One field of the data dictionary."""

    name: str
    form: str
    type: str
    label: str
    choices: dict
    validation: str

    @property
    def is_date(self) -> bool:
        """A date or date-time field (text validated as ``date_ymd``, ``datetime_dmy``, ...)."""
        return self.validation.startswith(("date", "datetime"))


@dataclass(frozen=True)
class RedcapDictionary:
    """A project's data dictionary: fields in order, their forms, the record id field."""

    fields: dict                 # name -> RedcapField, in dictionary order
    source: str

    @property
    def record_id(self) -> str:
        """The record id field: the first field of the dictionary."""
        return next(iter(self.fields))

    @property
    def forms(self) -> list[str]:
        """Form (instrument) names in dictionary order."""
        return list(dict.fromkeys(f.form for f in self.fields.values()))

    def form_of(self, text: object) -> str | None:
        """The form a repeat-instrument value names: its name (raw export) or its label (label export)."""
        k = _key(text)
        return next((f for f in self.forms if _key(f) == k), None)


def read_dictionary(dictionary) -> RedcapDictionary:
    """Read a REDCap data dictionary: a CSV file, a DataFrame, or the API's metadata (a list of dicts).

    The headers may be the file's (``Variable / Field Name``, ``Form Name``,
    ``Field Type``, ``Choices, Calculations, OR Slider Labels``, ...) or the
    API's (``field_name``, ``form_name``, ``select_choices_or_calculations``).
    Descriptive fields hold no data and are left out.

    Raises
    ------
    ValueError
        The dictionary cannot be read or lacks a required column.
    """
    if isinstance(dictionary, list):
        frame, source = pd.DataFrame(dictionary), "<REDCap metadata>"
    else:
        source = "<dictionary DataFrame>" if isinstance(dictionary, pd.DataFrame) else Path(dictionary).name
        try:
            frame = read_part(dictionary, "redcap_dictionary", None, source)[0].data
        except ReadError as err:
            raise ValueError(f"dictionary: {source}: {err.message}") from None
    names = {c: _HEADERS.get(_key(c)) for c in frame.columns}
    missing = [c for c in _REQUIRED if c not in names.values()]
    if missing:
        raise ValueError(f"dictionary: {source} is not a REDCap data dictionary: no column {', '.join(missing)} "
                         f"(headers found: {', '.join(map(repr, frame.columns))}; expected 'Variable / Field "
                         "Name', 'Form Name', 'Field Type', ... as downloaded from Project Setup)")
    frame = frame.rename(columns={c: n for c, n in names.items() if n}).astype(object)
    fields = {}
    for rec in frame.to_dict("records"):
        def text(col, rec=rec):
            v = rec.get(col)
            return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()
        name, kind = text("field_name"), text("field_type").lower()
        if not name or kind == "descriptive":
            continue
        choices = _IMPLIED.get(kind) or (parse_choices(text("choices")) if kind in CHOICE_TYPES else {})
        fields[name] = RedcapField(name, text("form_name"), kind, text("field_label"), choices,
                                   text("validation").lower())
    if not fields:
        raise ValueError(f"dictionary: {source} lists no field")
    return RedcapDictionary(fields, source)
