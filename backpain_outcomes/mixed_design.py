"""What a linear mixed model is fitted to: checked formulas, model matrices and the time rescaling map.

:func:`check_formula` and :func:`check_re_formula` accept a patsy formula
only when every variable it names is a column of the data.
:func:`build_design` drops incomplete rows (listwise, as statsmodels and lme4
do), builds the fixed- and random-effects matrices on the per-day scale and on
a rescaled time scale (``day / unit``), and records the exact linear maps
between them: ``X_raw = X_s @ A`` and ``Z_raw = Z_s @ D``. Estimates on the
rescaled scale are put back per day through these maps (``beta = A^-1
beta_s``). :func:`check_design` rejects data no mixed model can use and notes
data that leave it weakly determined.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from threadpoolctl import threadpool_limits

from .lmm_fast import singular_columns
from .vocabulary import did_you_mean

__all__ = ["Design", "build_design", "check_design", "check_design_summary", "check_formula", "check_re_formula",
           "model_columns", "formula_variables", "FEW_GROUPS"]

#: Rows per block when a design is checked block by block.
_BLOCK = 1 << 15
#: Fewer groups than this leave random-effect variances poorly determined (a note says so).
FEW_GROUPS = 5
#: Names a patsy formula may use besides columns of the data.
_FORMULA_NAMES = {"C", "I", "Q", "Treatment", "Sum", "Diff", "Helmert", "Poly", "np", "center", "standardize",
                  "scale", "bs", "cr", "cc", "te", "log", "exp", "sqrt", "abs"}


def _formula_names(desc) -> set[str]:
    names = set()
    for term in [*desc.lhs_termlist, *desc.rhs_termlist]:
        for factor in term.factors:
            try:
                tree = ast.parse(factor.code, mode="eval")
            except SyntaxError:
                continue
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def formula_variables(formula: str) -> set[str]:
    """Every name a patsy formula uses: columns, and functions such as ``C`` or ``center``.

    Examples
    --------
    >>> sorted(formula_variables("score ~ center(age) + C(visit)"))
    ['C', 'age', 'center', 'score', 'visit']
    """
    return _formula_names(patsy.ModelDesc.from_formula(formula))


def model_columns(columns, formula: str, re_formula: str | None, groups: str) -> list:
    """The columns of the data a model uses (a row missing one of them is left out), in the data's order."""
    used = formula_variables(formula) | (formula_variables(re_formula) if re_formula else set())
    return [c for c in columns if c in used or c == groups]


def check_re_formula(re_formula, columns, name: str = "re_formula") -> str | None:
    """A random-effects formula (``"~ day"``) whose variables are columns of the data; None, ``"1"`` and
    ``"~1"`` (an intercept only) give None.

    Examples
    --------
    >>> check_re_formula("1", ["day"]) is None, check_re_formula("~ day", ["day"])
    (True, '~ day')
    """
    if re_formula is None or (isinstance(re_formula, str) and re_formula.replace(" ", "") in ("1", "~1")):
        return None
    return check_formula(re_formula, columns, name, two_sided=False)


def check_formula(formula, columns, name: str = "formula", two_sided: bool = True) -> str:
    """A patsy formula whose variables are all columns of the data (ValueError naming ``name`` otherwise).

    ``two_sided=False`` for a formula without a response (random effects).

    Examples
    --------
    >>> check_formula("score ~ day", ["score", "day"])
    'score ~ day'
    >>> check_formula("score ~ dya", ["score", "day"])
    Traceback (most recent call last):
    ...
    ValueError: formula='score ~ dya' uses dya, not a column of the data (did you mean 'day'?); available columns: score, day
    """
    if not isinstance(formula, str):
        raise TypeError(f"{name} must be a formula string such as "
                        f"{'score ~ day + baseline' if two_sided else '~ day'}, got {formula!r}")
    if two_sided and "~" not in formula:
        raise ValueError(f"{name}={formula!r} needs a response and a tilde, e.g. 'score ~ day + baseline'")
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as err:
        raise ValueError(f"{name}={formula!r} is not a valid formula: {err.message}") from None
    if not two_sided and desc.lhs_termlist:
        raise ValueError(f"{name}={formula!r} must have no response, e.g. '~ day'")
    cols = [str(c) for c in columns]
    missing = sorted(n for n in _formula_names(desc) if n not in cols and n not in _FORMULA_NAMES)
    if missing:
        raise ValueError(f"{name}={formula!r} uses {', '.join(missing)}, not a column of the data"
                         f"{did_you_mean(missing[0], cols)}; available columns: {', '.join(cols)}")
    return formula


def _column(value, frame, name: str, numeric: bool = False) -> str:
    cols = [str(c) for c in frame.columns]
    if not isinstance(value, str) or value not in cols:
        raise ValueError(f"{name}={value!r} is not a column of the data; choose from {', '.join(cols)}"
                         f"{did_you_mean(value, cols)}")
    if numeric and not pd.api.types.is_numeric_dtype(frame[value]):
        raise ValueError(f"{name}={value!r} must be a numeric column (days), but it holds {frame[value].dtype}")
    return value


@dataclass(frozen=True)
class Design:
    """Model matrices on the per-day and the rescaled time scale, and the map between them."""

    formula: str
    re_formula: str | None
    groups: str
    time: str
    frame: pd.DataFrame
    scaled: pd.DataFrame
    names: list
    re_names: list
    y: np.ndarray
    X_raw: np.ndarray
    X_s: np.ndarray
    Z_s: np.ndarray
    A: np.ndarray
    D: np.ndarray
    info: tuple


def _dmatrices(formula, frame):
    try:
        return patsy.dmatrices(formula, frame)
    except patsy.PatsyError as err:
        raise ValueError(f"formula={formula!r} cannot be built from the data: {err.message}") from None


def _dmatrix(formula, frame):
    try:
        return patsy.dmatrix(formula, frame)
    except patsy.PatsyError as err:
        raise ValueError(f"re_formula={formula!r} cannot be built from the data: {err.message}") from None


def _rebuild(matrix, frame, formula, name):
    """``matrix``'s design (levels and transforms as found on the per-day data) on ``frame`` as an array;
    a fresh build where that design does not apply to ``frame``."""
    try:
        return np.asarray(patsy.build_design_matrices([matrix.design_info], frame)[0])
    except patsy.PatsyError:
        return np.asarray(_dmatrices(formula, frame)[1] if name == "formula" else _dmatrix(formula, frame))


def _linear_map(X_raw, X_s):
    """A with X_raw = X_s @ A (exact when the design is linear in time).

    A column-by-column scaling when that reproduces ``X_raw`` to 1e-8 (the
    usual case: time columns divided by the unit), least squares otherwise.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        if X_raw.size:
            blocks = range(0, len(X_s), _BLOCK)  # in row blocks: no temporaries the size of the design
            top = np.max([np.abs(X_s[i:i + _BLOCK]).max(axis=0) for i in blocks], axis=0)
            top_raw = np.max([np.abs(X_raw[i:i + _BLOCK]).max(axis=0) for i in blocks], axis=0)
            a = np.where(top > 0, top_raw / np.where(top > 0, top, 1.0), 1.0)
            err = max(np.abs(X_s[i:i + _BLOCK] * a - X_raw[i:i + _BLOCK]).max() for i in blocks)
            if err <= 1e-8:
                return np.diag(a), err
        A, *_ = np.linalg.lstsq(X_s, X_raw, rcond=None)
        err = np.abs(X_s @ A - X_raw).max() if X_raw.size else 0.0
    return A, err


def build_design(data, formula, re_formula, groups, time, unit, notes) -> Design:
    """Complete rows, model matrices per day and per ``unit`` days, and the linear maps between them."""
    groups, time = _column(groups, data, "groups"), _column(time, data, "time", numeric=True)
    needed = model_columns(data.columns, formula, re_formula, groups)
    frame = data.dropna(subset=needed).reset_index(drop=True)
    if len(frame) < len(data):
        notes.append(f"{len(data) - len(frame)} row(s) with missing values were left out (listwise deletion)")
    if frame.empty:
        raise ValueError(f"no complete rows: every row misses a value of {', '.join(needed)}")
    scaled = frame.assign(**{time: frame[time] / unit})
    y_raw, X_m = _dmatrices(formula, frame)
    if y_raw.shape[1] != 1:
        raise ValueError(f"formula={formula!r}: the response must be one numeric column")
    X_raw = np.asarray(X_m)
    X_s = _rebuild(X_m, scaled, formula, "formula")
    A, err = _linear_map(X_raw, X_s)
    if err > 1e-8:
        raise ValueError(f"formula={formula!r} is not linear in {time}, so it cannot be rescaled exactly; use a "
                         "time column already in suitable units")
    if re_formula:
        Z_raw_m = _dmatrix(re_formula, frame)
        Z_s = _rebuild(Z_raw_m, scaled, re_formula, "re_formula")
        D, _ = _linear_map(np.asarray(Z_raw_m), Z_s)
        re_names = ["Group" if c == "Intercept" else c for c in Z_raw_m.design_info.column_names]
        z_info = Z_raw_m.design_info
    else:
        Z_s, D, re_names, z_info = np.ones((len(frame), 1)), np.eye(1), ["Group"], None
    return Design(formula, re_formula, groups, time, frame, scaled, list(X_m.design_info.column_names), re_names,
                  np.asarray(y_raw)[:, 0], X_raw, X_s, Z_s, A, D, (X_m.design_info, z_info))


def check_design(design: Design, notes: list) -> None:
    """Errors for data no mixed model can use; notes for data that leave it weakly determined.

    ValueError for an outcome that does not vary, fewer than two groups,
    groups of one observation each or a singular fixed-effects design; a sentence appended to ``notes`` for fewer
    than :data:`FEW_GROUPS` groups, or too few groups with two or more times
    to estimate a random slope.

    Examples
    --------
    >>> data = pd.DataFrame({"score": [5.0, 4.0, 6.0, 3.0], "day": [0.0, 30.0, 0.0, 30.0], "g": [1, 1, 2, 2]})
    >>> notes = []
    >>> check_design(build_design(data, "score ~ day", None, "g", "day", 30.0, notes), notes)
    >>> notes
    ['only 2 groups: random-effect variances are poorly determined with fewer than 5']
    """
    f, g = design.frame, design.groups
    sizes = f.groupby(g, sort=False).size()
    varying = (int((f.groupby(g, sort=False)[design.time].nunique() >= 2).sum()) if design.Z_s.shape[1] > 1
               else None)
    y = np.asarray(design.y, float)
    y_range = (len(y), float(y.min()), float(y.max())) if len(y) else (0, np.nan, np.nan)
    check_design_summary(design.formula, g, design.time, len(sizes), y_range, bool((sizes < 2).all()),
                         design.X_raw.T @ design.X_raw, design.names, varying, notes)


def check_design_summary(formula: str, groups: str, time: str, n_groups: int, y_range: tuple, single: bool, XtX,
                         names: list, varying: int | None, notes: list) -> None:
    """:func:`check_design` from a summary of the data: the number of groups, ``(n, smallest, largest)``
    of the outcome, whether every group has a single observation, the cross-product ``X'X`` of the
    per-day design and its column names, and the number of groups with two or more distinct times (None
    without a random slope). The same errors and notes as :func:`check_design`."""
    g = groups
    if n_groups < 2:
        raise ValueError(f"a mixed model needs at least two groups, but the data hold {n_groups} value(s) of "
                         f"groups={g!r}; with one group use ordinary regression")
    n_y, y_min, y_max = y_range
    if n_y and y_min == y_max:
        raise ValueError(f"the outcome of formula={formula!r} does not vary (every one of the {n_y} values "
                         f"is {y_min:g}): there is nothing for a model to explain, so no estimate or standard error "
                         "is meaningful")
    if single:
        raise ValueError(f"every group ({g}) has a single observation, so random effects cannot be told apart "
                         "from residual error; check groups= or use ordinary regression")
    bad = singular_columns(XtX)
    if bad:
        cols = [names[i] for i in bad]
        raise ValueError(f"the fixed-effects design of formula={formula!r} is singular: "
                         f"{', '.join(cols)} are constant zero or linear combinations of each other (a level with "
                         "no observations, a covariate that never varies, or the same variable twice); simplify "
                         "the formula or drop empty levels")
    if n_groups < FEW_GROUPS:
        notes.append(f"only {n_groups} groups: random-effect variances are poorly determined with fewer than "
                     f"{FEW_GROUPS}")
    if varying is not None and varying < FEW_GROUPS:
        notes.append(f"only {varying} group(s) have two or more distinct values of {time}: too few to "
                     "estimate a random slope; consider re_formula='1'")
