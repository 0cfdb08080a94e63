"""Public datasets shipped with the package, loaded as studies through the loader.

Anderson (1984)
    101 patients with back pain whose progress was rated three weeks after
    treatment on six ordered categories, from *worse* to *complete relief*,
    with three prognostic variables recorded at presentation: ``x1`` length
    of the previous attack, ``x2`` pain change, ``x3`` lordosis (integer
    codes as distributed). Source: Anderson, J. A. (1984) Regression and
    ordered categorical variables. *JRSS B* 46(1):1-30; distributed as
    ``backPain`` in the R package gnm (GPL). The progress rating is a global
    rating of change: it loads as the instrument ``grc`` on the 6-point
    scale :data:`ANDERSON_SCALE` (1 = complete relief ... 6 = worse).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import DataValidationError
from .loading import load_study
from .problems import Problems
from .reading import Part, read_part
from .study import Study

__all__ = ["ANDERSON_SCALE", "ANDERSON_DATE", "anderson1984_path", "load_anderson1984"]

#: Anderson's progress categories as a global rating of change, the best (rating 1) first.
ANDERSON_SCALE = ("complete relief", "marked improvement", "moderate improvement", "slight improvement", "same",
                  "worse")
#: The data hold no dates: every rating carries this placeholder date.
ANDERSON_DATE = "1984-01-01"
_FILE = "anderson1984_backpain.csv"
_PAIN = {"complete.relief": 1, "marked.improvement": 2, "moderate.improvement": 3, "slight.improvement": 4,
         "same": 5, "worse": 6}
_COLUMNS = ("id", "x1", "x2", "x3", "pain", "pain_code")


def anderson1984_path() -> Path:
    """The shipped CSV file of Anderson (1984): ``id``, ``x1``-``x3``, ``pain`` (text) and ``pain_code``
    (1 = worse ... 6 = complete relief, as distributed).

    Examples
    --------
    >>> anderson1984_path().name
    'anderson1984_backpain.csv'
    """
    packaged = Path(str(resources.files("backpain_outcomes"))) / "data" / _FILE
    return packaged if packaged.is_file() else Path(__file__).resolve().parents[1] / "data" / _FILE


def _inconsistent(part: Part) -> None:
    """Refuse rows whose ``pain`` is not one of the six categories or disagrees with ``pain_code`` (each named
    by its line)."""
    d = part.data
    code = pd.to_numeric(d["pain_code"], errors="coerce").to_numpy(float)
    text = d["pain"].map(lambda v: _PAIN.get(str(v).strip().lower())).to_numpy(float)
    unknown = np.isnan(text)
    differ = ~unknown & ~np.isnan(code) & (7 - code != text)
    if unknown.any() or differ.any():
        p = Problems()
        value = d["pain"].to_numpy(object)
        p.add("scores", part.source, part.lines[unknown], "pain", "unknown_category", "not one of Anderson's six "
              "progress categories", ", ".join(_PAIN), value=value[unknown])
        p.add("scores", part.source, part.lines[differ], "pain", "inconsistent", "pain and pain_code disagree",
              "pain_code 1 (worse) to 6 (complete relief), as pain says", value=value[differ])
        raise DataValidationError(p.frame())


def load_anderson1984(path=None) -> Study:
    """Anderson's (1984) back-pain progress ratings as a study of global ratings of change.

    Every row of the file is one patient (``patient_id`` = ``id``; the
    patients table keeps ``x1``, ``x2``, ``x3``) with one ``grc`` rating,
    ``7 - pain_code``: 1 complete relief, 2 marked improvement, 3 moderate
    improvement, 4 slight improvement, 5 same, 6 worse
    (:data:`ANDERSON_SCALE`), so that the two best categories (improved)
    are marked improvement or complete relief. Problems name the file's
    lines.

    The data hold no dates and no treatments: every rating carries the
    placeholder date :data:`ANDERSON_DATE` (days mean nothing in this
    study) and treatment is unknown, as ``study.notes`` says. Analyse the
    ratings with :func:`backpain_outcomes.ordinal.fit_grc_model` and
    ``scale=ANDERSON_SCALE``.

    Parameters
    ----------
    path : str or Path, optional
        Another copy of the file (default: the one shipped).

    Returns
    -------
    Study

    Examples
    --------
    >>> study = load_anderson1984()
    >>> len(study.episodes), int((study.scores["score"] <= 2).sum())  # marked improvement or complete relief
    (101, 44)
    """
    path = Path(path) if path is not None else anderson1984_path()
    parts = read_part(path, "scores")
    for part in parts:
        missing = [c for c in _COLUMNS if c not in part.data]
        if missing:
            raise DataValidationError(_missing(part, missing), header="the input cannot be read")
        _inconsistent(part)
    patients = [Part(p.source, p.data[["id", "x1", "x2", "x3"]].rename(columns={"id": "patient_id"}).apply(
        lambda s: pd.to_numeric(s, errors="coerce") if s.name != "patient_id" else s), p.lines,
        header_fields=p.header_fields) for p in parts]
    code = [pd.to_numeric(p.data["pain_code"], errors="coerce") for p in parts]
    scores = [Part(p.source, pd.DataFrame({"patient_id": p.data["id"], "date": ANDERSON_DATE, "instrument": "grc",
                                           "score": (7 - c).astype(object).where(c.notna(), p.data["pain_code"])}),
                   p.lines, p.blank, p.ragged, p.ragged_fields, p.header_fields, list(p.notes))
              for p, c in zip(parts, code)]
    study = load_study(patients=patients, scores=scores, today=pd.Timestamp.today())
    study.notes.insert(0, f"Anderson (1984), {path.name}: progress three weeks after treatment as a global rating "
                          "of change, 1 = complete relief ... 6 = worse (scale=ANDERSON_SCALE); the data hold no "
                          f"dates (every rating is dated {ANDERSON_DATE}, a placeholder) and no treatments.")
    study.input_files.append(path.resolve())
    return study


def _missing(part: Part, missing: list) -> pd.DataFrame:
    p = Problems()
    p.whole_file("scores", part.source, "missing_column", f"missing column(s) {', '.join(missing)} of Anderson's "
                 f"data; columns found: {', '.join(map(str, part.data.columns))}", ", ".join(_COLUMNS))
    return p.frame()
