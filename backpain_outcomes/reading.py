"""Reading: every file and sheet of a table, with the exact line of every row.

The first stage of loading. Every file, and every sheet of a workbook, becomes
one :class:`Part`: its rows as written (text for CSV files; the cell values for
workbooks, Parquet files and DataFrames), the line (sheet row) of each row, and
the rows that hold no data (``blank``) or do not have one field per header
column (``ragged``), so that later stages can account for every line.

Line numbers are physical: the header is line 1, a quoted cell that spans
three lines moves every later row down by two, a blank line counts. For
Parquet files and DataFrames the "line" is the one the row would have in a CSV
export with a header (position + 2). For SPSS (``.sav``, ``.zsav``) and Stata
(``.dta``) files, read with pyreadstat, it is the case number (position + 1),
and the value labels of the columns that hold categories
(:data:`LABELLED_COLUMNS`: modality or treatment, instrument, sex, arm,
therapist, clinic) replace their codes; numbers such as scores keep their
values. Text files: see :mod:`backpain_outcomes.delimited`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .delimited import Part, ReadError, read_text
from .text_columns import chunks_key, dictionary_codes, strip_text, text_key, tidy

__all__ = ["TABLES", "DATE_COLUMNS", "COLUMN_ALIASES", "VISIT_COLUMNS", "FILE_TYPES", "ITEM_COLUMN", "LABELLED_COLUMNS",
           "Part", "ReadError", "normalise_column", "column_keys", "table_of_file", "find_table_files", "read_part",
           "read_workbook", "read_statistics_file", "read_parquet", "frame_part", "strip_text", "text_key"]

#: table -> (required columns, optional columns)
TABLES = {
    "patients": (["patient_id"], ["age", "sex", "clinic_id"]),
    "episodes": (["episode_id", "patient_id", "onset_date"], ["arm"]),
    "sessions": (["patient_id", "session_date", "modality"], ["episode_id", "therapist_id", "duration_min"]),
    "scores": (["patient_id", "date", "instrument", "score"], ["episode_id"]),
}
#: The date column of each table that has one.
DATE_COLUMNS = {"episodes": "onset_date", "sessions": "session_date", "scores": "date"}
#: Accepted spellings of column names ("*": every table). Names are matched in lower case with
#: every run of other characters than letters and digits read as "_".
COLUMN_ALIASES = {
    "*": {"patientid": "patient_id", "patient": "patient_id", "pid": "patient_id",
          "episodeid": "episode_id", "episode": "episode_id"},
    "patients": {"gender": "sex", "clinic": "clinic_id", "clinicid": "clinic_id"},
    "episodes": {"onset": "onset_date", "onsetdate": "onset_date", "date_of_onset": "onset_date"},
    "sessions": {"date": "session_date", "sessiondate": "session_date", "visit_date": "session_date",
                 "treatment": "modality", "therapy": "modality", "therapist": "therapist_id",
                 "therapistid": "therapist_id", "duration": "duration_min", "minutes": "duration_min"},
    "scores": {"score_date": "date", "visit_date": "date", "session_date": "date",
               "measure": "instrument", "outcome": "instrument", "questionnaire": "instrument",
               "value": "score", "result": "score"},
    "visits": {"visit_date": "date", "visitdate": "date", "session_date": "date", "appointment_date": "date",
               "encounter_date": "date", "date_of_visit": "date", "visit": "date",
               "modality": "treatment", "therapy": "treatment", "intervention": "treatment",
               "treatment_type": "treatment", "therapist": "therapist_id", "therapistid": "therapist_id",
               "clinician": "therapist_id", "provider": "therapist_id", "duration": "duration_min",
               "minutes": "duration_min"},
}
#: Columns of a long visit export (:func:`backpain_outcomes.load_visits`), one row per visit.
VISIT_COLUMNS = ("patient_id", "date", "treatment", "episode_id", "therapist_id", "duration_min")
#: A unit or range written after a column name: "(0-10)", "[mm]", "(%)", "(min)".
_UNIT = re.compile(r"\s*[(\[]\s*(?:[0-9][0-9\s.,/%-]*(?:to\s*[0-9.]+)?|mm|cm|%|mins?|minutes|years?|yrs?|days?"
                   r"|points?|pts)\s*[)\]]\s*$", re.IGNORECASE)
#: Where a camelCase name is split into words: "VisitDate", "PatientID", "NPRSScore".
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: Item columns of questionnaires scored by the loader (odi_1..odi_10, rmdq_1..rmdq_24).
ITEM_COLUMN = re.compile(r"^(odi|rmdq)_?q?(\d{1,2})$")
#: File suffix -> reader.
FILE_TYPES = {".csv": "text", ".txt": "text", ".tsv": "text", ".parquet": "parquet", ".pq": "parquet",
              ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel", ".sav": "spss", ".zsav": "spss", ".dta": "stata",
              ".sas7bdat": "sas", ".xpt": "sas"}
#: Columns (canonical names) of SPSS and Stata files whose value labels replace their codes: categories only.
LABELLED_COLUMNS = {"patients": ("sex", "clinic_id"), "episodes": ("arm",), "sessions": ("modality", "therapist_id"),
                    "scores": ("instrument",), "visits": ("treatment", "therapist_id")}

def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def column_keys(name: object) -> list[str]:
    """Spellings of a column name to match, in order: as written; without a trailing unit; camelCase split.

    Each is lower case with ``_`` between words.

    Examples
    --------
    >>> column_keys("PainScore(0-10)")
    ['painscore_0_10', 'painscore', 'pain_score']
    >>> column_keys("Visit Date")
    ['visit_date']
    """
    text = str(name).replace("\ufeff", "").strip()
    bare = _UNIT.sub("", text)
    return list(dict.fromkeys((_key(text), _key(bare), _key(_CAMEL.sub("_", bare)))))


def normalise_column(name: object, table: str) -> str:
    """Canonical column name: lower case, ``_`` between words, aliases resolved ("Patient ID" -> "patient_id").

    When the name as written is not a column or an alias of ``table``, it is
    matched again without a trailing unit (``"Duration (min)"``) and with its
    camelCase words split (``"VisitDate"``, ``"PatientID"``); a name that
    matches nothing keeps its plain spelling.

    Examples
    --------
    >>> normalise_column("VisitDate", "sessions"), normalise_column("Visit Date", "scores")
    ('session_date', 'date')
    >>> normalise_column("Duration (min)", "sessions"), normalise_column("PatientID", "visits")
    ('duration_min', 'patient_id')
    """
    aliases = {**COLUMN_ALIASES["*"], **COLUMN_ALIASES.get(table, {})}
    required, optional = TABLES.get(table, (VISIT_COLUMNS if table == "visits" else (), ()))
    keys = column_keys(name)
    for key in keys:
        if key in aliases:
            return aliases[key]
        if key in required or key in optional:
            return key
    return keys[0]


def table_of_file(path: Path) -> str | None:
    """The table a file holds, from its name: ``scores.csv``, ``Scores_2024.xlsx`` -> ``"scores"``."""
    stem = path.stem.lower()
    for name in TABLES:
        if stem == name or (stem.startswith(name) and not stem[len(name)].isalnum()):
            return name
    return None


def find_table_files(directory: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Files of each table in a directory, and the data files that belong to no table.

    A file belongs to a table when its name is the table's name, alone or followed by
    a separator (``scores.csv``, ``scores_2024.csv``, ``Scores-part2.xlsx``); several
    files of one table are read together. Hidden files and office lock files
    (``.name``, ``~$name``) are not data and are skipped.
    """
    found: dict[str, list[Path]] = {}
    strays = []
    for f in sorted(directory.iterdir(), key=lambda p: p.name.lower()):
        if not f.is_file() or f.name.startswith((".", "~$")):
            continue
        name = table_of_file(f)
        if name is not None and f.suffix.lower() in FILE_TYPES:
            found.setdefault(name, []).append(f)
        elif f.suffix.lower() in FILE_TYPES and f.suffix.lower() != ".txt":
            strays.append(f)
    return found, strays


# ----------------------------------------------------------------------------------------------- workbooks
def read_workbook(path: Path, source: str, sheet=None) -> list[Part]:
    """Every non-empty sheet of a workbook (or only ``sheet``, a name or 0-based position)."""
    import openpyxl

    if path.suffix.lower() == ".xls":
        raise ReadError("unknown_format", "old Excel 97-2003 workbook (.xls): save it as .xlsx or CSV",
                        ".xlsx, .csv or .parquet", value=".xls")
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise ReadError("unreadable", f"cannot read the workbook: {err}", "an .xlsx workbook") from None
    try:
        sheets = wb.worksheets
        if sheet is not None:
            names = [ws.title for ws in sheets]
            if isinstance(sheet, int) and not isinstance(sheet, bool) and 0 <= sheet < len(sheets):
                sheets = [sheets[sheet]]
            elif isinstance(sheet, str) and sheet in names:
                sheets = [sheets[names.index(sheet)]]
            else:
                raise ReadError("missing_sheet", f"no sheet {sheet!r} in the workbook; sheets: {', '.join(names)}",
                                "the name or 0-based position of a sheet", value=sheet)
        rows = [(ws.title, list(ws.iter_rows(values_only=True))) for ws in sheets]
    finally:
        wb.close()
    filled = [(title, r) for title, r in rows if any(_cell(v) is not None for row in r for v in row)]
    if not filled:
        raise ReadError("empty_file", "the workbook has no values", "a header row and rows")
    several = len(filled) > 1
    return [_sheet_part(r, f"{source}[{title}]" if several else source) for title, r in filled]


def _cell(v):
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _sheet_part(rows: list[tuple], source: str) -> Part:
    values = [[_cell(v) for v in row] for row in rows]
    nonblank = np.array([any(v is not None for v in row) for row in values], bool)
    first = int(np.argmax(nonblank))
    header = list(values[first])
    while header and header[-1] is None:
        header.pop()
    width = len(header)
    names = [("" if h is None else str(h)) for h in header]
    body = values[first + 1:]
    lines = np.arange(first + 2, len(values) + 1, dtype=np.int64)
    blank = ~nonblank[first + 1:]
    beyond = np.array([any(v is not None for v in row[width:]) for row in body], bool)
    ragged = ~blank & beyond
    keep = ~blank & ~ragged
    data = [row[:width] + [None] * (width - len(row)) for row, k in zip(body, keep) if k]
    df = pd.DataFrame(data, columns=range(width), dtype=object) if data else pd.DataFrame(columns=range(width),
                                                                                          dtype=object)
    df.columns = names
    fields = np.array([max(i + 1 for i, v in enumerate(row) if v is not None) for row, r in zip(body, ragged) if r],
                      dtype=np.int64)
    return Part(source, df, lines[keep], lines[blank], lines[ragged], fields, width, [])


# ----------------------------------------------------------------------------------------------- frames
def _other_text(dtype) -> bool:
    """Whether a column's dtype holds text another way than pandas' default ``str``: ``string`` (missing values
    ``pd.NA``, either storage) or Arrow text and text dictionaries (``pd.ArrowDtype``), which loading reads as
    ``str`` (a caller's DataFrame may come with any of them)."""
    if isinstance(dtype, pd.StringDtype):
        return dtype != pd.StringDtype("pyarrow", na_value=np.nan)
    if isinstance(dtype, pd.ArrowDtype):
        kind = dtype.pyarrow_dtype
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    return False


def frame_part(df: pd.DataFrame, source: str, first_line: int = 2, codes: dict | None = None) -> Part:
    """A DataFrame (or a Parquet file's) as a part: line = position + ``first_line`` (2: below a header), all-missing
    rows are blank. ``codes``: column -> ``(codes, uniques)``, ``pd.factorize`` of a text column of ``df`` (see
    :func:`read_parquet`); such a column is checked for white space on its distinct values only, and its codes
    are kept on the part when it needs no stripping."""
    df = df.copy(deep=False)  # copy on write: the columns replaced below never reach the caller's frame
    codes = dict(codes or {})
    for col in df.columns:
        s = df[col]
        if _other_text(s.dtype):  # (pandas' other text dtypes, as the one text dtype of loading)
            s = df[col] = s.astype("str")
        if s.dtype == object:
            df[col] = s.map(_cell)
        elif col in codes and tidy(codes[col][1]):
            continue  # every value is one of the distinct values, which need no stripping
        elif pd.api.types.is_string_dtype(s):
            codes.pop(col, None)
            df[col] = strip_text(s)
    lines = np.arange(first_line, len(df) + first_line, dtype=np.int64)
    blank = np.zeros(len(df), bool) if not len(df.columns) else df.iloc[:, 0].isna().to_numpy(bool)
    for i in range(1, len(df.columns)):  # a blank row has every value missing: the other columns of those rows
        if not blank.any():
            break
        blank = blank & df.iloc[:, i].isna().to_numpy(bool)
    if not blank.any():  # (no copy of the rows nor of their lines)
        part = Part(source, df.reset_index(drop=True), lines, lines[blank], header_fields=len(df.columns))
    else:  # a blank row has no value: its code is -1 in every column, and the codes of the others stay in order
        part = Part(source, df.loc[~blank].reset_index(drop=True), lines[~blank], lines[blank],
                    header_fields=len(df.columns))
        codes = {col: (c[~blank], u) for col, (c, u) in codes.items()}
    part.codes = {col: (text_key(part.data[col]), c, u) for col, (c, u) in codes.items()}
    return part


def read_parquet(path: Path, source: str) -> Part:
    """A Parquet file (or dataset directory) as a part (see :func:`frame_part`), with the codes of its text
    columns.

    The text columns are read as Arrow dictionaries, which the file usually stores them as, and decoded:
    the frame is the one ``pd.read_parquet`` gives, and the dictionary indices are the columns'
    ``pd.factorize`` codes when the dictionary's values are distinct and come in the order they first
    appear (as a writer that builds the dictionary row by row leaves them). Loading then hashes none of
    these columns to find their distinct values. Whatever this way cannot read (a time zone column,
    repeated column names, a dataset directory, a damaged file) is read by ``pd.read_parquet`` itself, whose
    error, if any, is the one reported.
    """
    try:
        found = _parquet_with_codes(path)
    except Exception:  # noqa: BLE001 - read again below by pd.read_parquet, which reports the error
        found = None
    if found is not None:
        df, decoded = found
        codes = {}
        for col in df.columns:  # the frame keeps the decoded columns as they are: their codes are found by key
            key = text_key(df[col])
            code = decoded.get(key) if key is not None else None
            if code is not None:
                codes[col] = code
        return frame_part(df, source, codes=codes)
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise ReadError("unreadable", f"cannot read the Parquet file: {err}", "a Parquet file") from None
    return frame_part(df, source)


def _parquet_with_codes(path: Path):
    """``(frame, codes by column key)`` of a Parquet file read with its text as dictionaries, or None when it
    has no text column, repeated names or a time zone column (see :func:`read_parquet`)."""
    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if not text or len(set(schema.names)) < len(schema.names) or any(
            pa.types.is_timestamp(f.type) and f.type.tz is not None for f in schema):
        return None
    with pq.ParquetFile(path, read_dictionary=text) as file:  # (a column in one chunk per row group)
        table = file.read(use_pandas_metadata=True)
    if not all(c.dictionary.equals(col.chunk(0).dictionary) for col in table.columns
               if pa.types.is_dictionary(col.type) for c in col.chunks):
        table = table.unify_dictionaries()  # (one dictionary for all the chunks of a column)
    decoded = {}
    for name in text:
        i = table.schema.get_field_index(name)
        col, kind = table.column(i), pa.large_string()  # (as pandas keeps text; it converts string)
        if not pa.types.is_dictionary(col.type):
            continue
        dictionary = (col.chunk(0).dictionary if col.num_chunks else pa.array([], kind)).cast(kind)
        values = pa.chunked_array([pc.take(dictionary, c.indices) for c in col.chunks], kind)
        table = table.set_column(i, table.schema.field(i).with_type(kind), values)
        decoded[chunks_key(values.chunks)] = dictionary_codes(col, dictionary)
    return table.to_pandas(), decoded


# ----------------------------------------------------------------------------------------------- SPSS, Stata
def read_statistics_file(path: Path, source: str, table: str) -> Part:
    """An SPSS (``.sav``, ``.zsav``), Stata (``.dta``) or SAS (``.sas7bdat``, transport ``.xpt``) file as a part:
    line = case number; the value labels of the columns in :data:`LABELLED_COLUMNS` replace their codes (a code
    without a label stays as written). A SAS data set keeps its formats in a catalog: ``name.sas7bcat`` next to
    ``name.sas7bdat`` is read with it when present."""
    try:
        import pyreadstat
    except ImportError:
        raise ReadError("unknown_format", "reading SPSS, Stata and SAS files needs pyreadstat: pip install pyreadstat",
                        ".csv, .xlsx or .parquet, or install pyreadstat", value=path.suffix) from None
    kind = {"spss": "SPSS", "stata": "Stata", "sas": "SAS"}[FILE_TYPES[path.suffix.lower()]]
    suffix = path.suffix.lower()
    catalog = path.with_suffix(".sas7bcat")
    readers: dict[str, Any] = {".sav": pyreadstat.read_sav, ".zsav": pyreadstat.read_sav,
                               ".dta": pyreadstat.read_dta, ".xpt": pyreadstat.read_xport,
                               ".sas7bdat": pyreadstat.read_sas7bdat}
    options = {"catalog_file": str(catalog)} if suffix == ".sas7bdat" and catalog.is_file() else {}
    try:
        df, meta = readers[suffix](str(path), **options)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise ReadError("unreadable", f"cannot read the {kind} file: {err}", f"an {kind} file") from None
    labelled = []
    for col, labels in meta.variable_value_labels.items():
        if col in df and normalise_column(col, table) in LABELLED_COLUMNS.get(table, ()):
            codes = df[col]
            text = codes.map(lambda v, lab=labels: lab.get(v))  # 1.0 finds the label of 1
            df[col] = text.astype(object).where(text.notna(), codes.astype(object))
            labelled.append(col)
    part = frame_part(df, source, first_line=1)
    part.notes.append(f"{kind} file: rows are numbered by case" + (
        f"; value labels used for {', '.join(labelled)}" if labelled else ""))
    return part


def read_part(obj, table: str, sheet=None, source: str | None = None) -> list[Part]:
    """Read one input of ``table`` (a path or a DataFrame) into one part per file or sheet.

    ``source`` names the input in problems (default: the file name, or
    ``<table DataFrame>``). A :class:`Part` (rows already read, each with its
    line) is returned as it is. Raises :class:`ReadError` when the input
    cannot be read at all.
    """
    if isinstance(obj, Part):
        return [obj]
    if isinstance(obj, pd.DataFrame):
        return [frame_part(obj, source or f"<{table} DataFrame>")]
    path = Path(obj)
    source = source or path.name
    kind = FILE_TYPES.get(path.suffix.lower())
    if not path.exists():
        raise ReadError("missing_file", f"file not found: {path}")
    if kind is None:
        raise ReadError("unknown_format", "unknown file type", ", ".join(sorted(FILE_TYPES)), value=path.suffix)
    if kind == "text":
        return [read_text(path, source)]
    if kind == "excel":
        return read_workbook(path, source, sheet)
    if kind in ("spss", "stata", "sas"):
        return [read_statistics_file(path, source, table)]
    return [read_parquet(path, source)]
