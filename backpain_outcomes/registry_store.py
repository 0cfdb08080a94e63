"""A study on disk as partitioned Parquet: write it, simulate it partition by partition, read one partition back.

Layout of a registry directory::

    registry.json                  format, partitions, every source (file or sheet) in reading order with its
                                   header, notes, blank and ragged lines, and the row offsets of each partition
    patients/part-00000.parquet    the rows of partition 0 as read (values as written), plus the columns
    episodes/part-00000.parquet    ``source_file`` and ``source_row`` (the row's file and its line there)
    sessions/part-00000.parquet
    scores/part-00000.parquet
    ...

**Episodes are never split across partitions.** Every row of every table is placed by its
``patient_id`` (required in all four tables): the patients are numbered in order of first
appearance (patients table first, then episodes, sessions and scores) and patient number *i*
goes to partition ``i // patients_per_partition``. An episode belongs to one patient, so all its
rows (its episodes row, its sessions and its scores) land in the partition of that patient.
Rows without a patient id go to partition 0, where loading reports them as it would in memory.

Each partition is loaded by :func:`~backpain_outcomes.loading.load_study` from
:class:`~backpain_outcomes.reading.Part` objects that carry the original file name and line of
every row, so its problem records name the same file and line as loading the whole study would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .checks import check_bool, check_int
from .dates import date_order
from .reading import TABLES, Part, find_table_files, normalise_column, read_part, table_of_file
from .simulate import simulate_study
from .study import Study

__all__ = ["write_partitioned", "simulate_partitioned", "read_registry", "partition_parts", "registry_dayfirst",
           "registry_rows", "REGISTRY_FILE", "SOURCE_FILE", "SOURCE_ROW"]

REGISTRY_FILE = "registry.json"
#: Columns added to every partition file: the row's original file (or sheet) and its line there.
SOURCE_FILE, SOURCE_ROW = "source_file", "source_row"
_FORMAT = "backpain_outcomes registry 1"
#: The date column of each table.
_DATES = {"episodes": "onset_date", "sessions": "session_date", "scores": "date"}


def _part_file(directory: Path, table: str, k: int) -> Path:
    return directory / table / f"part-{k:05d}.parquet"


def _prepare(directory, force) -> Path:
    """The output directory, empty; a registry written before is replaced only with ``force``."""
    out = Path(directory)
    check_bool(force, "force")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty; pass force=True to replace a registry written there")
        if not (out / REGISTRY_FILE).exists():
            raise FileExistsError(f"{out} holds files that are not a registry; refusing to replace them")
        for table in TABLES:
            if (out / table).is_dir():
                shutil.rmtree(out / table)
        (out / REGISTRY_FILE).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _inputs(study_or_path, sheet) -> dict[str, list[Part]]:
    """Every table's parts as read: from a Study's input files, a directory, a file, or a dict of DataFrames."""
    if isinstance(study_or_path, Study):
        if not study_or_path.input_files:
            raise TypeError("this Study was built from DataFrames, not files; pass the DataFrames as a dict "
                            "{'scores': ..., 'episodes': ...} (simulate_study(..., return_frames=True) gives them)")
        files: dict[str, list] = {}
        for f in study_or_path.input_files:
            files.setdefault(table_of_file(Path(f)) or "scores", []).append(Path(f))
    elif isinstance(study_or_path, dict):
        unknown = set(study_or_path) - set(TABLES)
        if unknown:
            raise ValueError(f"study_or_path: {sorted(unknown)} are not tables; use {', '.join(TABLES)}")
        files = {k: [v] for k, v in study_or_path.items() if v is not None}
    else:
        path = Path(study_or_path)
        if path.is_dir():
            files, strays = find_table_files(path)
            if strays:
                raise ValueError(f"cannot tell which table {strays[0].name} holds: name it patients, episodes, "
                                 "sessions or scores, or move it out of the directory")
        elif path.is_file():
            files = {"scores": [path]}
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    out: dict[str, list[Part]] = {}
    for table in TABLES:
        for obj in files.get(table, []):
            label = f"<{table} DataFrame>" if isinstance(obj, pd.DataFrame) else Path(obj).name
            out.setdefault(table, []).extend(read_part(obj, table, sheet, label))
    if "scores" not in out:
        raise FileNotFoundError("no scores table: the scores table is the only one that is required")
    return out


def _patient_keys(part: Part, table: str) -> np.ndarray:
    """The patient id of every data row of a part (stripped text; None when missing or without the column)."""
    cols = [c for c in part.data.columns if normalise_column(c, table) == "patient_id"]
    if not cols:
        return np.full(len(part.data), None, dtype=object)
    ids = part.data[cols[0]]
    return np.array([None if pd.isna(v) or str(v).strip() == "" else str(v).strip() for v in ids], dtype=object)


def _storable(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns with values of several kinds (Excel cells) as text, so that Parquet can hold them."""
    df = df.copy()
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            kinds = {type(v) for v in s.dropna()}
            if len(kinds) > 1 or (kinds and kinds != {str}):
                df[col] = s.map(lambda v: v if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
    return df


def _date_orders(parts: dict[str, list[Part]]) -> dict:
    """The order of day and month each table's dates prove as a whole (None: not proven), as load_study
    infers it for the whole study; a partition alone might prove less."""
    out = {}
    for table, col in _DATES.items():
        values = [p.data[c] for p in parts.get(table, []) for c in p.data.columns if normalise_column(c, table) == col]
        if values:
            out[table] = date_order(pd.concat(values, ignore_index=True)).dayfirst
    return out


def registry_dayfirst(meta: dict) -> tuple[bool | None, str | None]:
    """``dayfirst`` for loading every partition: the order the whole registry's dates prove, and a note."""
    proven = {v for v in meta.get("dayfirst", {}).values() if v is not None}
    if len(proven) != 1:
        return None, None
    first = proven.pop()
    return first, (f"dates of the form nn/nn/yyyy are read {'day' if first else 'month'} first in every partition, "
                   "the order the registry's dates prove as a whole")


def _source_record(table: str, part: Part, home: int) -> dict:
    return {"table": table, "source": part.source, "columns": [str(c) for c in part.data.columns],
            "header_fields": int(part.header_fields), "notes": list(part.notes), "home": int(home),
            "blank": part.blank.astype(int).tolist(), "ragged": part.ragged.astype(int).tolist(),
            "ragged_fields": part.ragged_fields.astype(int).tolist()}


def write_partitioned(study_or_path, directory, *, patients_per_partition: int = 50_000, force: bool = False,
                      sheet=None) -> Path:
    """Write a study as Parquet files partitioned by patient (the layout :func:`load_partitioned` reads).

    Parameters
    ----------
    study_or_path : Study, str, Path or dict of DataFrames
        A directory of table files (as for :func:`~backpain_outcomes.load_study`), a single scores file,
        a Study loaded from files (its ``input_files`` are read again, rows as written), or the input
        tables as DataFrames (``simulate_study(..., return_frames=True)``; rows numbered as in a CSV
        export, position + 2).
    directory : str or Path
        Where to write; must be empty, or hold a registry to replace with ``force=True``.
    patients_per_partition : int
        Patients per partition. All rows of a patient, hence all rows of each of their episodes, go
        to one partition (see the module notes).
    force : bool
        Replace a registry already in ``directory``.
    sheet :
        Sheet of workbooks, as in ``load_study``.

    Returns
    -------
    Path of the registry directory.
    """
    per = check_int(patients_per_partition, "patients_per_partition", low=1)
    parts = _inputs(study_or_path, sheet)
    order: dict[str, int] = {}
    keys = {}
    for table, plist in parts.items():
        for i, part in enumerate(plist):
            keys[table, i] = _patient_keys(part, table)
            for key in keys[table, i]:
                if key is not None and key not in order:
                    order[key] = len(order)
    n_parts = max(1, -(-len(order) // per))
    out = _prepare(directory, force)
    sources: list[dict] = []
    frames: dict[tuple[str, int], list[pd.DataFrame]] = {}
    for table, plist in parts.items():
        for i, part in enumerate(plist):
            where = np.array([order[k] // per if k is not None else 0 for k in keys[table, i]], dtype=np.int64)
            data = _storable(part.data).set_axis([str(c) for c in part.data.columns], axis=1)
            data[SOURCE_FILE], data[SOURCE_ROW] = part.source, part.lines.astype(np.int64)
            home = int(where.min()) if len(where) else 0
            sources.append(_source_record(table, part, home))
            for k, rows in pd.Series(np.arange(len(where))).groupby(where):
                frames.setdefault((table, int(k)), []).append(data.iloc[rows.to_numpy()])
    for (table, k), fs in frames.items():
        path = _part_file(out, table, k)
        path.parent.mkdir(exist_ok=True)
        pd.concat(fs, ignore_index=True).to_parquet(path, index=False)
    _write_meta(out, n_parts, sources, {}, per, _date_orders(parts))
    return out


def _write_meta(out: Path, n_parts: int, sources: list, offsets: dict, per: int, dayfirst=None) -> None:
    meta = {"format": _FORMAT, "n_partitions": n_parts, "patients_per_partition": per, "sources": sources,
            "row_offsets": offsets, "dayfirst": dayfirst or {}}
    tmp = out / (REGISTRY_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(out / REGISTRY_FILE)


def _simulate_one(out: str, k: int, size: int, first: int, width: int, seed: int, options: dict) -> dict:
    """Simulate partition ``k`` (patients ``first + 1``...) and write its tables; their numbers of rows."""
    _, _, frames = simulate_study(size, seed=seed, return_frames=True, **options)
    ids = {c: np.array([f"{c[0].upper()}{first + i + 1:0{width}d}" for i in range(size)], dtype=object)
           for c in ("patient_id", "episode_id")}
    rows = {}
    for table in TABLES:
        df = frames.pop(table)
        for col, new in ids.items():
            if col in df:
                df[col] = new[df[col].str[1:].astype(int).to_numpy() - 1]
        df[SOURCE_FILE] = f"{table} (simulated)"
        df[SOURCE_ROW] = np.arange(len(df), dtype=np.int64) + 2
        path = _part_file(Path(out), table, k)
        path.parent.mkdir(exist_ok=True)
        df.to_parquet(path, index=False)
        rows[table] = len(df)
    return rows


def simulate_partitioned(directory, n_patients: int, *, patients_per_partition: int = 50_000,
                         seed: int | None = None, force: bool = False, client=None, **options) -> Path:
    """Simulate a study of any size straight to a registry directory, one partition at a time.

    Each partition is an independent :func:`~backpain_outcomes.simulate_study` of its patients,
    seeded by its own child of ``numpy.random.SeedSequence(seed)`` (``spawn``), so the registry is
    reproducible and a process holds one partition at a time, never the study. Patient and episode
    ids run on over the partitions (``P0000001``...); rows are numbered as in one CSV export per
    table (each partition's lines are offset by the rows of the partitions before it).

    Parameters
    ----------
    directory : str or Path
    n_patients : int
        One episode per patient.
    patients_per_partition : int
    seed : int, optional
    force : bool
        Replace a registry already in ``directory``.
    client : distributed.Client, optional
        Simulate the partitions on this Dask cluster, in parallel (default: one after the other here).
    **options
        Passed to :func:`~backpain_outcomes.simulate_study` (``untreated_share``,
        ``untreated_resolved_by_42``, ``dropout_mean_days``, ...).

    Returns
    -------
    Path of the registry directory.
    """
    n = check_int(n_patients, "n_patients", low=1)
    per = check_int(patients_per_partition, "patients_per_partition", low=1)
    n_parts = -(-n // per)
    out = _prepare(directory, force)
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(seed).spawn(n_parts)]
    width = max(5, len(str(n)))
    jobs = [(str(out), k, min(per, n - k * per), k * per, width, seeds[k], options) for k in range(n_parts)]
    if client is None:
        rows = [_simulate_one(*job) for job in jobs]
    else:
        rows = client.gather([client.submit(_simulate_one, *job, pure=False) for job in jobs])
    offsets = {t: np.r_[0, np.cumsum([r[t] for r in rows])[:-1]].astype(int).tolist() for t in TABLES}
    sources = [{"table": t, "source": f"{t} (simulated)", "columns": list(_columns_of(out, t)), "header_fields": 0,
                "notes": [], "home": 0, "blank": [], "ragged": [], "ragged_fields": []} for t in TABLES]
    _write_meta(out, n_parts, sources, offsets, per)
    return out


def _columns_of(out: Path, table: str) -> list[str]:
    names = pq.read_schema(_part_file(out, table, 0)).names
    return [c for c in names if c not in (SOURCE_FILE, SOURCE_ROW)]


def read_registry(directory) -> dict:
    """The registry's description (``registry.json``); raises when ``directory`` holds no registry."""
    path = Path(directory) / REGISTRY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {REGISTRY_FILE}; write a registry with write_partitioned or "
                                "simulate_partitioned first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a registry of this version (format {meta.get('format')!r})")
    return meta


def registry_rows(directory, meta: dict, table: str) -> int:
    """Rows of ``table`` in the registry, from the Parquet files' metadata (nothing is read)."""
    files = [_part_file(Path(directory), table, k) for k in range(int(meta["n_partitions"]))]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.exists())


def partition_parts(directory, meta: dict, k: int) -> dict[str, list[Part]]:
    """The parts of partition ``k`` of each table, every row with its original file and line."""
    directory = Path(directory)
    out: dict[str, list[Part]] = {}
    cache: dict[str, pd.DataFrame | None] = {}
    for src in meta["sources"]:
        table = src["table"]
        if table not in cache:
            path = _part_file(directory, table, k)
            cache[table] = pd.read_parquet(path) if path.exists() else None
        data = cache[table]
        mine = data[data[SOURCE_FILE] == src["source"]] if data is not None else None
        home = src["home"] == k
        if (mine is None or not len(mine)) and not home:
            continue
        offset = meta["row_offsets"].get(table, [0] * (k + 1))[k] if meta["row_offsets"] else 0
        cols = src["columns"]
        rows = (mine if mine is not None else pd.DataFrame(columns=[*cols, SOURCE_ROW]))
        empty = np.zeros(0, np.int64)
        out.setdefault(table, []).append(Part(
            src["source"], rows[cols].reset_index(drop=True), rows[SOURCE_ROW].to_numpy(np.int64) + offset,
            np.asarray(src["blank"], np.int64) if home else empty, np.asarray(src["ragged"], np.int64) if home else empty,
            np.asarray(src["ragged_fields"], np.int64) if home else empty, src["header_fields"] or len(cols),
            list(src["notes"]) if home else []))
    return out
