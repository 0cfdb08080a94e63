"""Safe output: never onto an input, never half-written, never a formula in a spreadsheet.

* :func:`check_output` refuses an output path that is one of the inputs (or
  lies in an input directory, where the loader would read it next time), an
  existing file unless ``force``, and a suffix the writer cannot produce.
* :func:`atomic_path` gives a temporary path next to the output and moves
  it into place only when the writer succeeded: a failure leaves the old file
  untouched and no partial file behind.
* :func:`safe_csv` writes a CSV file atomically with formula injection
  neutralised (OWASP CSV injection guidance).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .exceptions import BackpainError

__all__ = ["OutputError", "neutralise_formulas", "safe_csv", "atomic_path", "final_path", "check_output",
           "check_directory"]

_LEADING = ("=", "+", "-", "@", "\t", "\r")


class OutputError(BackpainError, ValueError):
    """An output path that must not be written (an input, an existing file without ``force``, a wrong suffix)."""


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with ``= + - @`` (or tab/CR) with ``'``.

    Spreadsheets then show them as text instead of evaluating a formula.
    Numbers are left alone, so ``-1.5`` stays a number.

    Examples
    --------
    >>> import pandas as pd
    >>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", "ok"], "b": [-1.5, 2]}))["a"].tolist()
    ["'=1+1", 'ok']
    """
    out = df.copy()
    for col in out.columns:
        out[col] = _neutral(out[col])
    out.columns = [_quote(c) for c in out.columns]
    return out


def _quote(v):
    return "'" + v if isinstance(v, str) and v.startswith(_LEADING) else v


def _neutral(s: pd.Series) -> pd.Series:
    """One column with its formula-like texts quoted (vectorised; categories renamed once)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = [_quote(c) for c in s.cat.categories]
        if len(set(cats)) == len(cats):
            return s.cat.rename_categories(cats)
        s = s.astype(object)
    if s.dtype != object and not pd.api.types.is_string_dtype(s):
        return s
    mask = s.astype(object).str.startswith(_LEADING).fillna(False).astype(bool) if s.dtype == object else \
        s.str.startswith(_LEADING).fillna(False).astype(bool)
    if not mask.any():
        return s
    out = s.astype(object).copy()
    out[mask] = "'" + out[mask].astype(str)
    return out


_PARTIAL = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.partial(?P<suffix>\.[^.]*)?$")


def final_path(path) -> Path:
    """The path a temporary file of :func:`atomic_path` will be moved to (``path`` itself otherwise).

    Examples
    --------
    >>> final_path("out/.report.0123456789ab.partial.html").as_posix()
    'out/report.html'
    """
    path = Path(path)
    m = _PARTIAL.match(path.name)
    return path.with_name(m["name"] + (m["suffix"] or "")) if m else path


def _temporary(path: Path) -> Path:
    """A fresh temporary name next to the final file (never ``..x.partial.y.partial``, even when nested)."""
    final = final_path(path)
    return final.with_name(f".{final.stem}.{uuid.uuid4().hex[:12]}.partial{final.suffix}")


def _restate(err: OSError, final: Path) -> OSError:
    """The same kind of error, naming the user's output instead of a temporary file."""
    reason = err.strerror or str(err)
    advice = (f"; check that the directory {final.parent} exists and is writable"
              if isinstance(err, PermissionError | FileNotFoundError | IsADirectoryError | NotADirectoryError) else "")
    out = type(err)(f"cannot write {final}: {reason}{advice}")
    out.errno = err.errno
    return out


def _mentions(err: OSError, paths) -> bool:
    names = {str(p) for p in paths} | {p.name for p in paths}
    files = {Path(os.fsdecode(f)).name for f in (err.filename, err.filename2) if f is not None}
    return bool(files & names) or any(n in str(err) for n in names)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path in the directory of ``path``, with the same suffix, moved onto ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` is left as it was. An
    :class:`OSError` (a read-only directory, a full disk) names ``path``, never the temporary file.
    When ``path`` is itself a temporary path of an enclosing ``atomic_path``, errors name that
    enclosing output.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "table.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    final = final_path(path)
    tmp = _temporary(path)
    temporary = [tmp] if path == final else [tmp, path]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if not tmp.exists():
            raise OSError(f"{final} was not written (the writer produced no file)")
        os.replace(tmp, path)
    except OSError as err:
        if _mentions(err, temporary):
            raise _restate(err, final) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def safe_csv(df: pd.DataFrame, path, engine: str = "pandas", **kwargs) -> Path:
    """Write ``df`` to CSV with formula injection neutralised, atomically; returns the path.

    ``engine="arrow"`` writes large tables (millions of problems) several times
    faster, with every text quoted and every value written as text.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> out = safe_csv(pd.DataFrame({"a": ["=cmd"]}), pathlib.Path(tempfile.mkdtemp()) / "a.csv")
    >>> out.read_text().splitlines()
    ['a', "'=cmd"]
    """
    with atomic_path(path) as tmp:
        if engine == "arrow":
            safe = neutralise_formulas(df)
            text = {c: safe[c].map(lambda v: None if v is None or v != v else str(v)).astype("str")
                    if safe[c].dtype == object else safe[c] for c in safe.columns}
            pacsv.write_csv(pa.Table.from_pandas(pd.DataFrame(text), preserve_index=False), tmp)
        else:
            neutralise_formulas(df).to_csv(tmp, index=kwargs.pop("index", False), **kwargs)
    return Path(path)


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output(path, inputs=(), force: bool = False, suffixes=None, what: str = "output") -> Path:
    """Check that ``path`` may be written; raise :class:`OutputError` naming the reason otherwise.

    Parameters
    ----------
    path : str or Path
    inputs : iterable of Path
        Files and directories that were read: ``path`` may not be one of the
        files nor lie directly in one of the directories.
    force : bool
        Replace an existing file.
    suffixes : iterable of str, optional
        The suffixes the writer can produce (``.html``, ``.pdf``, ...).
    what : str
        How the output is named in messages: a command-line option (``"-o"``, ``"--csv"``, ...), whose
        messages advise ``--force``, or an argument (``"path"``), whose messages advise ``force=True``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_output(d / "r.docx", suffixes=(".html", ".pdf"), what="-o")
    Traceback (most recent call last):
    ...
    backpain_outcomes.safe_io.OutputError: -o: cannot write a .docx file; use .html or .pdf
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        kind = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise OutputError(f"{what}: cannot write {kind}; use {' or '.join(suffixes)}")
    for item in inputs:
        item = Path(item)
        if item.is_dir() and path.resolve().parent == item.resolve():
            raise OutputError(f"{what}: refusing to write {path} into the input directory {item} "
                              "(it would be read as part of the study); choose another directory")
        if not item.is_dir() and _same(path, item):
            raise OutputError(f"{what}: refusing to write {path}: it is one of the input files")
    if path.is_dir():
        raise OutputError(f"{what}: {path} is a directory; give a file name")
    if path.exists() and not force:
        hint = "--force" if what.startswith("-") else "force=True (--force on the command line)"
        raise OutputError(f"{what}: {path} exists; pass {hint} to replace it")
    return path


def check_directory(path, inputs=(), force: bool = False, names=(), what: str = "-o") -> Path:
    """Check an output directory and the files ``names`` to be written in it.

    A directory that is an input, or a file, is refused; each of ``names``
    that exists needs ``force``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what}: {path} is a file; give a directory")
    for item in inputs:
        if Path(item).is_dir() and _same(path, Path(item)):
            raise OutputError(f"{what}: refusing to write into {path}: it is the input directory")
    for name in names:
        check_output(path / name, inputs, force, what=what)
    return path
