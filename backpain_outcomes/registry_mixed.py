"""The linear mixed model of a partitioned study, from per-group sufficient statistics.

The profiled (RE)ML deviance of :mod:`backpain_outcomes.lmm_fast` depends on
the data only through the totals :math:`X^TX`, :math:`X^Ty`, :math:`y^Ty` and
the per-group :math:`Z_g^TZ_g`, :math:`Z_g^TX_g`, :math:`Z_g^Ty_g`. Every
partition holds whole patients, hence whole episodes (the usual groups), so
each one computes these for its own groups
(:meth:`~backpain_outcomes.lmm_fast.GroupStats.compact`); the driver
writes them, as they arrive, into arrays allocated once for all groups
(:class:`~backpain_outcomes.lmm_stats.StatsAccumulator`, which also adds up a
group that spans partitions, such as a clinic) and runs the
same optimiser and finishing code as :func:`~backpain_outcomes.mixed.fit_mixed_model`,
so the estimates are those of the in-memory fit and the result is the same
:class:`~backpain_outcomes.mixed.MixedModelResult`.

Two passes over the partitions (a third only for a time map that is not a column scaling), each returning small objects:

1. the columns of the analysis frame, whether onsets are known, factor
   levels (so that every partition builds the same design columns: levels
   are global, in the vocabulary's order) and a few rows per partition, from
   which every partition rebuilds the same patsy design;
2. the per-group statistics, the cross-products and column maxima that give
   the time-rescaling maps, and the model rows kept on the result (all of
   them up to :data:`FRAME_ROWS`, else the rows of a fixed subset of groups,
   said in a note: ``predict``, ``mean_curves`` and ``plot`` use them, the
   estimates never do).

Only the fast engine (at most two random effects per group) works from
statistics; formulas with stateful transforms (``center``, ``standardize``,
splines), whose values depend on all rows at once, are refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from .checks import check_bool, check_choice, check_instrument, check_origin
from .lmm_fast import GroupStats
from .lmm_stats import StatsAccumulator
from .mixed import ENGINES, TIME_UNIT, MixedModelResult, mixed_result
from .mixed_design import check_design_summary, check_formula, check_re_formula, formula_variables, model_columns
from .mixed_engines import fit_fast_stats
from .vocabulary import CHRONICITY_LEVELS, MODALITY_LEVELS

__all__ = ["fit_mixed_model_partitioned", "frame_or_reason", "raise_for_reasons", "FRAME_ROWS", "STATEFUL_TRANSFORMS"]

#: A partitioned fit keeps all its model rows on the result up to this many; beyond, a subset of groups.
FRAME_ROWS = 1_000_000
#: patsy transforms whose values depend on all rows at once: refused for a partitioned study.
STATEFUL_TRANSFORMS = frozenset({"center", "standardize", "scale", "bs", "cr", "cc", "te"})
#: Complete rows per partition in the template from which every partition rebuilds the same design.
TEMPLATE_ROWS = 50
_ORDER = {v: i for i, v in enumerate((*MODALITY_LEVELS, *CHRONICITY_LEVELS))}


# ------------------------------------------------------------------ per partition
def frame_or_reason(study, instrument: str, origin: str, include_baseline: bool = False, scale=None):
    """A partition's ``analysis_frame``, or why it has none: None (no scores of the instrument) or the
    number of its episodes with scores but no onset (``origin="onset"``); see :func:`raise_for_reasons`."""
    sc = study.scores[study.scores["instrument"] == instrument]
    if sc.empty:
        return None
    if origin == "onset":
        unknown = int(sc.loc[sc["days_since_onset"].isna(), "episode_id"].nunique())
        if unknown:
            return unknown
    return study.analysis_frame(instrument, origin=origin, include_baseline=include_baseline, scale=scale)


def raise_for_reasons(found: list, instrument: str, parts) -> list:
    """The partitions' results that are not reasons (:func:`frame_or_reason`); the in-memory error when
    onsets are missing (counted over all partitions) or no partition has scores of the instrument."""
    unknown = sum(i for i in found if isinstance(i, int) and not isinstance(i, bool))
    if unknown:
        raise ValueError(f"origin='onset' needs the onset date of every episode, but {unknown} "
                         "episode(s) have none (no episodes table or blank onset_date); "
                         "use origin='first_contact' instead")
    usable = [i for i in found if i is not None and not isinstance(i, int)]
    if not usable:
        raise ValueError(f"no {instrument} scores in this study; instruments present: "
                         f"{', '.join(parts.instruments) or 'none'}")
    return usable


def _frame(study, instrument, origin):
    return frame_or_reason(study, instrument, origin)


def _levels(study, instrument, origin, formula, re_formula, groups):
    """The frame's columns; with formulas patsy can read, the levels of the non-numeric model columns (of
    the complete rows for plain columns), row counts and a few complete rows. None without scores, the
    number of episodes without onset when they stop origin="onset"."""
    data = _frame(study, instrument, origin)
    if not isinstance(data, pd.DataFrame):
        return data
    out: dict = {"columns": list(data.columns)}
    try:
        needed = model_columns(data.columns, formula, re_formula, groups)
    except (patsy.PatsyError, TypeError, ValueError, AttributeError):  # the driver's checks say what is wrong
        return out
    frame = data.dropna(subset=needed)
    levels = {}
    for c in needed:
        if c == groups:
            continue
        if isinstance(data[c].dtype, pd.CategoricalDtype):
            levels[c] = list(data[c].cat.categories)
        elif not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]):
            levels[c] = list(pd.unique(frame[c].dropna()))
    # take() copies the rows: a slice (head) of Arrow strings keeps the partition's whole buffers alive
    # on the worker until every partition's result is gathered (50 MB a partition at 10^7 episodes)
    sample = frame.take(np.arange(min(TEMPLATE_ROWS, len(frame))))
    return {**out, "levels": levels, "n_rows": len(data), "n_complete": len(frame),
            "n_groups": int(frame[groups].nunique()) if groups in frame else 0, "sample": sample}


def _typed(frame, dtypes):
    """``frame`` with the global categories of its non-numeric columns."""
    return frame.assign(**{c: pd.Categorical(frame[c].astype(object), categories=cats)
                           for c, cats in dtypes.items() if c in frame})


def _designs(spec):
    """The patsy designs (response, fixed, random) every partition builds from the same template."""
    template = _typed(spec["template"], spec["dtypes"])
    y_m, X_m = patsy.dmatrices(spec["formula"], template)
    Z_m = patsy.dmatrix(spec["re_formula"], template) if spec["re_formula"] else None
    return y_m.design_info, X_m.design_info, (Z_m.design_info if Z_m is not None else None)


def _build(info, frame, name, formula):
    try:
        return np.asarray(patsy.build_design_matrices([info], frame, NA_action="raise")[0], float)
    except patsy.PatsyError as err:
        raise ValueError(f"{name}={formula!r} cannot be built the same way on every partition ({err.message}); "
                         "a partitioned study needs factor levels that are columns' categories (use a text column, "
                         "not C() of a number)") from None


def _map_summary(raw, scaled):
    """Column maxima of the per-day and rescaled matrices, the error of the column scaling they imply, and
    the cross-products for a least-squares map."""
    top, top_raw = np.abs(scaled).max(axis=0, initial=0.0), np.abs(raw).max(axis=0, initial=0.0)
    a = np.where(top > 0, top_raw / np.where(top > 0, top, 1.0), 1.0)
    err = float(np.abs(scaled * a - raw).max(initial=0.0))
    return {"top": top, "top_raw": top_raw, "err": err, "StS": scaled.T @ scaled, "StR": scaled.T @ raw}


def _statistics(study, instrument, origin, spec):
    """One partition's per-group statistics of the rescaled design, and what the driver checks and keeps."""
    data = _frame(study, instrument, origin)
    if not isinstance(data, pd.DataFrame):
        return None
    frame = _typed(data.dropna(subset=spec["needed"]).reset_index(drop=True), spec["dtypes"])
    if frame.empty:
        return None
    y_info, x_info, z_info = _designs(spec)
    time, groups = spec["time"], spec["groups"]
    scaled = frame.assign(**{time: frame[time] / TIME_UNIT})
    y = _build(y_info, frame, "formula", spec["formula"])[:, 0]
    X_raw, X_s = (_build(x_info, f, "formula", spec["formula"]) for f in (frame, scaled))
    if z_info is None:
        Z_raw = Z_s = np.ones((len(frame), 1))
    else:
        Z_raw, Z_s = (_build(z_info, f, "re_formula", spec["re_formula"]) for f in (frame, scaled))
    out = {"stats": GroupStats(X_s, Z_s, y, frame[groups]).compact(), "XtX_raw": X_raw.T @ X_raw,
           "y_min": float(y.min()), "y_max": float(y.max()), "n_dropped": len(data) - len(frame),
           "x_map": _map_summary(X_raw, X_s), "z_map": _map_summary(Z_raw, Z_s),
           "varying": int((frame.groupby(groups, sort=False)[time].nunique() >= 2).sum())}
    if spec["keep_every"] == 1:
        out["frame"] = frame
    elif spec["keep_every"] > 1:
        keep = pd.util.hash_pandas_object(frame[groups].astype(str), index=False).to_numpy() % spec["keep_every"] == 0
        out["frame"] = frame[keep]
    return out


def _map_error(study, instrument, origin, spec, A, D):
    """Largest error of the least-squares maps ``X_raw = X_s A`` and ``Z_raw = Z_s D`` on one partition."""
    data = _frame(study, instrument, origin)
    if not isinstance(data, pd.DataFrame):
        return 0.0
    frame = _typed(data.dropna(subset=spec["needed"]).reset_index(drop=True), spec["dtypes"])
    if frame.empty:
        return 0.0
    _, x_info, _ = _designs(spec)
    scaled = frame.assign(**{spec["time"]: frame[spec["time"]] / TIME_UNIT})
    X_raw, X_s = (_build(x_info, f, "formula", spec["formula"]) for f in (frame, scaled))
    return float(np.abs(X_s @ A - X_raw).max(initial=0.0))


# ------------------------------------------------------------------ driver
def _merged_statistics(parts, instrument, origin, spec):
    """The partitions' :func:`_statistics`: the per-group statistics merged as the results arrive
    (:meth:`Partitions.reduce` in partition order, into arrays allocated once for the groups counted by
    the first pass: :class:`~backpain_outcomes.lmm_stats.StatsAccumulator`), and the rest of each result
    (a few p x p matrices, column maxima and the rows kept for the result)."""
    acc, rest, taken = StatsAccumulator(spec["n_groups"]), [], object()

    def take(result):
        if result is not None:
            acc.add(result.pop("stats"))
            rest.append(result)

    def combine(total, value):
        if total is not taken:  # the first partition's result (reduce starts from it)
            take(total)
        take(value)
        return taken

    last = parts.reduce(_statistics, combine, instrument, origin, spec)
    if last is not taken:  # a single partition
        take(last)
    return acc.stats(), rest


def _global_order(values):
    """Levels in the vocabulary's order (modalities, chronicity), others sorted after them."""
    return sorted(set(values), key=lambda v: (_ORDER.get(v, len(_ORDER)), str(v)))


def _linear_map(parts, key):
    """The global map between the per-day and rescaled matrices (as :mod:`mixed_design` finds it on all rows):
    a column scaling when every partition agrees with it to 1e-8, else least squares; and its error bound
    (None when a further pass must measure it)."""
    maps = [p[key] for p in parts]
    top = np.max([m["top"] for m in maps], axis=0)
    top_raw = np.max([m["top_raw"] for m in maps], axis=0)
    a = np.where(top > 0, top_raw / np.where(top > 0, top, 1.0), 1.0)
    local = [np.where(m["top"] > 0, m["top_raw"] / np.where(m["top"] > 0, m["top"], 1.0), 1.0) for m in maps]
    bound = max(float(np.max(m["top"] * np.abs(a - la), initial=0.0)) + m["err"] for m, la in zip(maps, local))
    if bound <= 1e-8:
        return np.diag(a), bound
    A, *_ = np.linalg.lstsq(sum(m["StS"] for m in maps), sum(m["StR"] for m in maps), rcond=None)
    return A, None


def _spec(parts, instrument, origin, formula, re_formula, groups, time):
    """Checked formulas and what every partition needs to build the same design: (spec, notes, totals)."""
    found = parts.map(_levels, instrument, origin, formula, re_formula if isinstance(re_formula, str) else None,
                      groups)
    info = raise_for_reasons(found, instrument, parts)
    columns = info[0]["columns"]
    re_formula = check_re_formula(re_formula, columns)
    formula = check_formula(formula, columns, "formula", two_sided=True)
    for name, f in (("formula", formula), ("re_formula", re_formula)):
        stateful = sorted(formula_variables(f) & STATEFUL_TRANSFORMS) if f else []
        if stateful:
            raise ValueError(f"{name}={f!r} uses {', '.join(stateful)}, whose values depend on all rows at once; "
                             "a partitioned study cannot fit it: compute the variable in the data instead")
    for name, value in (("groups", groups), ("time", time)):
        if not isinstance(value, str) or value not in columns:
            raise ValueError(f"{name}={value!r} is not a column of the data; choose from {', '.join(columns)}")
    needed = model_columns(columns, formula, re_formula, groups)
    found_levels: dict[str, list] = {}
    for i in info:
        for c, lv in i["levels"].items():
            found_levels.setdefault(c, []).extend(lv)
    dtypes = {c: _global_order(lv) for c, lv in found_levels.items()}
    template = pd.concat([i["sample"] for i in info], ignore_index=True)
    n_rows, n_complete = sum(i["n_rows"] for i in info), sum(i["n_complete"] for i in info)
    if n_complete == 0:
        raise ValueError(f"no complete rows: every row misses a value of {', '.join(needed)}")
    keep_every = 1 if n_complete <= FRAME_ROWS else int(np.ceil(n_complete / FRAME_ROWS))
    spec = {"formula": formula, "re_formula": re_formula, "groups": groups, "time": time, "needed": needed,
            "dtypes": dtypes, "template": template, "keep_every": keep_every,
            "n_groups": sum(i.get("n_groups", 0) for i in info)}
    try:
        _designs(spec)
    except patsy.PatsyError as err:
        raise ValueError(f"formula={formula!r} cannot be built from the data: {err.message}") from None
    return spec, n_rows, n_complete


def fit_mixed_model_partitioned(parts, formula: str = "score ~ day * modality + baseline",
                                re_formula: str | None = "~ day", groups: str = "episode_id", reml: bool = True,
                                instrument: str = "nrs", origin: str = "onset", time: str = "day",
                                engine: str = "auto") -> MixedModelResult:
    """:func:`~backpain_outcomes.mixed.fit_mixed_model` of a partitioned study (anything with
    ``.map(fn, *args) -> list`` over in-memory Study partitions), from merged per-group statistics.

    The same arguments and the same result; ``engine="statsmodels"`` and more than two random effects per
    group are refused (they need all rows in memory).
    """
    reml, engine = check_bool(reml, "reml"), check_choice(engine, "engine", ENGINES)
    instrument, origin = check_instrument(instrument), check_origin(origin)
    if engine == "statsmodels":
        raise ValueError("engine='statsmodels' needs every row in memory; a partitioned study is fitted from "
                         "per-group statistics with engine='fast' (or 'auto')")
    spec, n_rows, n_complete = _spec(parts, instrument, origin, formula, re_formula, groups, time)
    formula, re_formula = spec["formula"], spec["re_formula"]
    y_info, x_info, z_info = _designs(spec)
    q = len(z_info.column_names) if z_info is not None else 1
    if q > 2:
        raise ValueError(f"re_formula={re_formula!r} has {q} random effects per group; a partitioned study is "
                         "fitted with the fast engine, which handles at most two")
    notes: list[str] = []
    if n_complete < n_rows:
        notes.append(f"{n_rows - n_complete} row(s) with missing values were left out (listwise deletion)")
    stats, parts_out = _merged_statistics(parts, instrument, origin, spec)
    names = list(x_info.column_names)
    check_design_summary(formula, groups, time, stats.G, (n_complete, min(p["y_min"] for p in parts_out),
                                                          max(p["y_max"] for p in parts_out)),
                         bool((stats.size < 2).all()), sum(p["XtX_raw"] for p in parts_out), names,
                         sum(p["varying"] for p in parts_out) if q > 1 else None, notes)
    A, err = _linear_map(parts_out, "x_map")
    D, _ = _linear_map(parts_out, "z_map")
    if err is None:
        err = max(parts.map(_map_error, instrument, origin, spec, A, D))
    if err > 1e-8:
        raise ValueError(f"formula={formula!r} is not linear in {time}, so it cannot be rescaled exactly; use a "
                         "time column already in suitable units")
    n_groups = stats.G
    est = fit_fast_stats(stats, reml, notes)
    del stats  # the per-group statistics (most of the driver's memory) are not needed by the result
    frame = pd.concat([p["frame"] for p in parts_out], ignore_index=True)
    if spec["keep_every"] > 1:
        notes.append(f"the result keeps the rows of {frame[groups].nunique()} of {n_groups} groups ({len(frame)} of "
                     f"{n_complete} rows, a fixed subset) for predict(), mean_curves() and plot(); the estimates "
                     "use every row")
    re_names = (["Group" if c == "Intercept" else c for c in z_info.column_names] if z_info is not None
                else ["Group"])
    return mixed_result(est, "fast (exact profiled likelihood, vectorised; per-group statistics of "
                        f"{parts.n_partitions} partitions)", re_names, A, D, notes, names=names,
                        info=(x_info, z_info), frame=frame, nobs=n_complete, formula=formula, re_formula=re_formula,
                        groups=groups, time=time, reml=reml, instrument=instrument, origin=origin)
