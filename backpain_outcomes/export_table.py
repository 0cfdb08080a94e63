"""Publication tables as text: every result's ``.table`` with labels, units, intervals and p-values formatted.

:func:`publication_table` turns a result (or any DataFrame with the
package's column conventions) into a table of text ready to print:

* codes become labels (``dry_needling`` -> "Dry needling";
  ``day:modality[T.cupping]`` -> "Day × Modality: Cupping");
* column headers become labels with units ("Difference, NRS points (95% CI)",
  "Half-life (days)");
* every interval is shown with its estimate: a pair ``X_ci_low``/``X_ci_high``
  (also ``X_ci_lower``/``X_ci_upper``, ``X_conf_low``/``X_conf_high``,
  ``X_lower``/``X_upper``, ``X_low``/``X_high``) belongs to the column ``X``
  (``hr_`` to ``hazard_ratio``, ``cc_`` to ``rate_complete_case``,
  ``responder_`` to ``responder_rate``, ``responder_diff_`` to
  ``responder_difference``); a bare ``ci_low``/``ci_high`` belongs to the
  table's main estimate (``estimate``, ``difference``,
  ``cumulative_resolution``, ``observed``, ``rate_weighted``, ``rate``).
  ``ci="combined"`` writes "0.27 (0.21 to 0.33)", ``ci="separate"`` a column
  "0.21 to 0.33" next to the estimate. A pair without an estimate
  (``sensitivity_low``/``sensitivity_high``, control limits
  ``lower``/``upper``) becomes one "low to high" column;
* p-values are shown with three decimals, below 0.001 as "<0.001".

The writers (Markdown, LaTeX, Word, CSV, each with its provenance) are in
:mod:`backpain_outcomes.export`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .checks import check_bool, check_choice, check_int
from .vocabulary import label

__all__ = ["publication_table", "interval_pairs", "term_label", "code_label", "format_number", "format_p",
           "CI_STYLES"]

CI_STYLES = ("combined", "separate")

_SUFFIX_PAIRS = (("ci_low", "ci_high"), ("ci_lower", "ci_upper"), ("conf_low", "conf_high"),
                 ("lower", "upper"), ("low", "high"))
_ESTIMATE_ALIASES = {"hr": "hazard_ratio", "or": "odds_ratio", "cc": "rate_complete_case",
                     "responder": "responder_rate", "responder_diff": "responder_difference"}
_MAIN_ESTIMATES = ("estimate", "difference", "cumulative_resolution", "observed", "rate_weighted", "rate")
_P_VALUE = re.compile(r"p|p_?value(_\w+)?|p_holm|p_adj\w*|p_(below|above)")
_WHOLE = re.compile(r"n|n_\w+|events(_\w+)?|responders|k|(\w+_)?day|window")
_CODED = ("modality", "reference", "group", "chronicity", "instrument", "population", "level")
_METADATA = ("rule", "origin", "alpha", "package_version", "reference", "instrument", "claimed", "day")
#: result type -> {column: (label, unit)} where a column means something else than in _HEADERS
_HEADERS_BY_RESULT = {"ResponderRate": {"difference": ("Weighted - complete-case rate", "")},
                      "WeightedComparison": {"rate": ("Rate, weighted", ""),
                                             "rate_reference": ("Reference rate, weighted", "")}}
_POINTS = {"nrs": "NRS points", "vas": "VAS mm", "odi": "ODI points", "rmdq": "RMDQ points"}
#: column -> (label, unit); "{points}" is the unit of the result's instrument
_HEADERS = {
    "estimate": ("Estimate", ""), "difference": ("Difference", "{points}"), "se": ("SE", ""), "z": ("z", ""),
    "p_value": ("P value", ""), "p_holm": ("P (Holm)", ""), "n": ("N", "episodes"),
    "n_reference": ("N, reference", "episodes"), "events": ("Events", ""), "hazard_ratio": ("Hazard ratio", ""),
    "effect_size": ("Effect size", "SMD"), "responders": ("Responders", ""), "responder_rate": ("Responder rate", ""),
    "responder_difference": ("Difference in responder rate", ""), "nnt": ("NNT", ""),
    "b0": ("Initial level", "{points}"), "plateau": ("Plateau", "{points}"), "tau_days": ("Time constant", "days"),
    "half_life_days": ("Half-life", "days"), "start_score": ("Start score", "{points}"),
    "n_episodes": ("Episodes", ""), "n_scores": ("Scores", ""), "first_day": ("First day", ""),
    "last_day": ("Last day", ""), "residual_sd": ("Residual SD", "{points}"), "day": ("Day", ""),
    "cumulative_resolution": ("Cumulative resolution", ""), "n_at_risk": ("At risk", ""),
    "n_events": ("Events", ""), "claimed": ("Claimed", ""), "sensitivity": ("Sensitivity range", ""),
    "term": ("Term", ""), "rd": ("Risk difference", ""), "rr": ("Risk ratio", ""), "e_value": ("E-value", ""),
    "e_value_ci": ("E-value of the CI limit", ""), "observed": ("Observed", ""), "expected": ("Expected", ""),
    "rate_weighted": ("Rate, weighted", ""), "rate_complete_case": ("Rate, complete cases", ""),
    "o_minus_e": ("Observed - expected", ""), "": ("Limits", ""), "age": ("Age", "years"),
    "odds_ratio": ("Odds ratio", ""), "loglik": ("Log-likelihood", ""), "n_params": ("Parameters", ""),
    "bic": ("BIC", ""), "aic": ("AIC", ""), "sabic": ("Sample-size adjusted BIC", ""), "mc_se": ("Monte Carlo SE", ""),
    "n_sim": ("Simulations", ""), "rate_crude": ("Rate, crude", ""),
    "rate_reference_crude": ("Reference rate, crude", ""), "rd_crude": ("Risk difference, crude", ""),
    "rr_crude": ("Risk ratio, crude", ""), "rate_reference": ("Reference rate", ""),
    "rd_se": ("SE of the risk difference", ""),
    "rate_dr": ("Rate, doubly robust", ""), "rate_reference_dr": ("Reference rate, doubly robust", ""),
    "rd_dr": ("Risk difference, doubly robust", ""), "rr_dr": ("Risk ratio, doubly robust", ""),
    "ess": ("Effective sample size", ""), "ess_reference": ("Effective sample size, reference", ""),
    "events_reference": ("Events, reference", ""), "max_abs_smd_before": ("Max |SMD| before weighting", ""),
    "max_abs_smd_after": ("Max |SMD| after weighting", ""),
}


# ---------------------------------------------------------------------------------------------- layout
def _estimate_of(prefix: str, columns: list[str], at: int) -> str | None:
    """The estimate column an interval ``prefix_low``/``prefix_high`` (at position ``at``) belongs to: the
    column ``prefix`` (or its alias); for a bare interval the nearest main estimate before it, else the
    first main estimate of the table; None when there is none."""
    if prefix:
        target = _ESTIMATE_ALIASES.get(prefix, prefix)
        return target if target in columns else None
    before = [c for c in columns[:at] if c in _MAIN_ESTIMATES]
    return before[-1] if before else next((c for c in _MAIN_ESTIMATES if c in columns), None)


def interval_pairs(columns) -> list[tuple[str | None, str, str, str]]:
    """``(estimate column or None, low column, high column, prefix)`` for every interval among ``columns``.

    Examples
    --------
    >>> interval_pairs(["modality", "difference", "ci_low", "ci_high", "hr_ci_low", "hr_ci_high", "hazard_ratio"])
    [('difference', 'ci_low', 'ci_high', ''), ('hazard_ratio', 'hr_ci_low', 'hr_ci_high', 'hr')]
    """
    columns = [str(c) for c in columns]
    out, used = [], set()
    for at, col in enumerate(columns):
        for low, high in _SUFFIX_PAIRS:
            if col in used or not (col == low or col.endswith("_" + low)):
                continue
            prefix = col[: -len(low)].rstrip("_")
            partner = f"{prefix}_{high}" if prefix else high
            if partner not in columns or partner in used:
                continue
            if not prefix and low == "lower":
                est = "estimate" if "estimate" in columns else None  # bare lower/upper: control limits
            else:
                est = _estimate_of(prefix, columns, at)
            if est in used:
                est = None
            out.append((est, col, partner, prefix))
            used.update({col, partner} | ({est} if est else set()))
    return out


def _points(instrument) -> str:
    return _POINTS.get(str(instrument), "points")


def _header(col: str, instrument=None, interval: str | None = None, kind: str = "") -> str:
    """Column header with unit; ``interval`` ("95% CI") is added for a combined estimate; ``kind`` is the
    result type (a few columns mean something else in one result)."""
    name, unit = _HEADERS_BY_RESULT.get(kind, {}).get(col) or _HEADERS.get(col) or ("", "")
    if not name:
        words = col.replace("_", " ").strip()
        name = (words[:1].upper() + words[1:]) if words else col
        name = re.sub(r"^N ", "N, ", name)
    unit = unit.format(points=_points(instrument))
    if interval:
        return f"{name}, {unit} ({interval})" if unit else f"{name} ({interval})"
    return f"{name} ({unit})" if unit else name


def term_label(term: object) -> str:
    """Human label of a model term (``day:modality[T.dry_needling]`` -> ``Day × Modality: Dry needling``).

    Examples
    --------
    >>> term_label("modality[T.deep_tissue]"), term_label("day:modality[T.cupping]"), term_label("Intercept")
    ('Modality: Deep tissue', 'Day × Modality: Cupping', 'Intercept')
    """
    parts = []
    for piece in str(term).split(":"):
        m = re.fullmatch(r"(?:C\()?(\w+)\)?\[T\.(.+)\]", piece)
        text = f"{label(m[1])}: {label(m[2])}" if m else label(piece)
        parts.append(text[:1].upper() + text[1:])
    return " × ".join(parts)


# ---------------------------------------------------------------------------------------------- numbers
def _decimals(size: float, digits: int) -> int:
    """``digits`` decimals, more for a small number so that it keeps two significant digits (at most
    ``digits + 4``): -0.0023 is never printed as -0.00."""
    if not math.isfinite(size) or size == 0:
        return digits
    return int(min(max(digits, 1 - math.floor(math.log10(abs(size)))), digits + 4))


def _missing(v) -> bool:
    return v is None or bool(pd.isna(v)) or (isinstance(v, float) and not math.isfinite(v))


def format_number(v, digits: int = 2, size: float | None = None) -> str:
    """A number with ``digits`` decimals (more below 0.1, see :func:`publication_table`); ``size`` sets
    the decimals instead of ``v`` itself (an interval uses its largest bound). "NA" when missing.

    Examples
    --------
    >>> format_number(0.2691), format_number(-0.002341), format_number(-0.000011, size=0.000764)
    ('0.27', '-0.0023', '-0.00001')
    >>> format_number(-0.0001, size=5.0)
    '0.00'
    """
    if _missing(v):
        return "NA"
    text = f"{float(v):.{_decimals(abs(float(v)) if size is None else size, digits)}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text  # never "-0.00"


def format_p(p) -> str:
    """A p-value as text: three decimals, "<0.001" below 0.001, "NA" when missing.

    Examples
    --------
    >>> format_p(0.0412), format_p(3e-8), format_p(float("nan"))
    ('0.041', '<0.001', 'NA')
    """
    if p is None or pd.isna(p):
        return "NA"
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def _column_text(s: pd.Series, digits: int, sizes=None) -> pd.Series:
    """One column as text (labels for coded columns, numbers with ``digits`` decimals or more, see
    :func:`format_number`; ``sizes`` per row set the decimals)."""
    name = str(s.name)
    if _P_VALUE.fullmatch(name):
        return s.map(format_p)
    if pd.api.types.is_bool_dtype(s):
        return s.map(lambda v: "NA" if pd.isna(v) else ("yes" if v else "no"))
    if pd.api.types.is_numeric_dtype(s):
        if pd.api.types.is_integer_dtype(s) or (_WHOLE.fullmatch(name) and _integral(s)):
            return s.map(lambda v: "NA" if _missing(v) else f"{float(v):.0f}")
        sizes = [None] * len(s) if sizes is None else list(sizes)
        return pd.Series([format_number(v, digits, z) for v, z in zip(s, sizes)], index=s.index, dtype=object)
    text = s.astype(object).map(lambda v: "" if _missing(v) else str(v))
    if name == "term":
        return text.map(term_label)
    if name in _CODED:
        return text.map(code_label)
    return text


def code_label(value: object) -> str:
    """The label of a vocabulary code; any other text unchanged (a clinic ``c_1`` stays ``c_1``).

    Examples
    --------
    >>> code_label("dry_needling"), code_label("c_1")
    ('Dry needling', 'c_1')
    """
    value = "" if value is None else str(value)
    text = label(value)
    return text if value and text != value.replace("_", " ") else value


def _integral(s: pd.Series) -> bool:
    v = pd.to_numeric(s, errors="coerce").to_numpy(float)
    v = v[np.isfinite(v)]
    return bool(np.all(v == np.round(v)))


# ---------------------------------------------------------------------------------------------- table
def _source(result_or_dataframe):
    """(table, title, notes, (instrument, result type), alpha) of a result or a DataFrame."""
    if isinstance(result_or_dataframe, pd.DataFrame):
        frame = result_or_dataframe
        return frame, str(frame.attrs.get("title", "")), list(frame.attrs.get("notes", [])), (None, ""), 0.05
    table = getattr(result_or_dataframe, "table", None)
    if not isinstance(table, pd.DataFrame):
        raise TypeError("publication_table takes a result (with a .table) or a DataFrame, got "
                        f"{type(result_or_dataframe).__name__}")
    parts = getattr(result_or_dataframe, "_parts", None)
    title = str(parts()[0]) if callable(parts) else type(result_or_dataframe).__name__
    alpha = getattr(result_or_dataframe, "alpha", 0.05)
    alpha = float(alpha) if isinstance(alpha, int | float) and 0 < alpha < 1 else 0.05
    return (table, title, list(getattr(result_or_dataframe, "notes", [])),
            (getattr(result_or_dataframe, "instrument", None), type(result_or_dataframe).__name__), alpha)


def _metadata_notes(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Columns that only repeat the analysis' settings (one value in every row) become a note."""
    if len(table) < 2:
        return table, []
    moved = [c for c in _METADATA if c in table.columns and table[c].astype(str).nunique() == 1]
    if not moved:
        return table, []
    text = "; ".join(f"{_header(c)}: {_column_text(table[c].iloc[:1], 2).iloc[0]}" for c in moved)
    return table.drop(columns=moved), [f"For every row: {text}."]


def publication_table(result_or_dataframe, *, digits: int = 2, ci: str = "combined", labels: bool = True,
                      columns=None) -> pd.DataFrame:
    """A result's table as text, ready to print: labels, units, intervals and p-values formatted.

    Parameters
    ----------
    result_or_dataframe : Result or DataFrame
        A result of the package, or a DataFrame following its column
        conventions (see the module notes); a DataFrame's ``attrs`` may hold
        ``title`` and ``notes``.
    digits : int
        Decimals of estimates (more where the smallest value would show as 0,
        so that -0.003 is never printed as -0.00).
    ci : {"combined", "separate"}
        "0.27 (0.21 to 0.33)" in one column, or the interval "0.21 to 0.33"
        in its own column after the estimate.
    labels : bool
        Human labels for codes and headers (False keeps the column names and
        codes, formatting only the numbers).
    columns : list of str, optional
        Columns of the table to keep, in this order (an interval follows its
        estimate).

    Returns
    -------
    DataFrame of text, with ``attrs["title"]`` and ``attrs["notes"]`` (the
    result's notes, and the settings shared by every row).
    """
    digits = check_int(digits, "digits", low=0)
    ci = check_choice(ci, "ci", CI_STYLES)
    labels = check_bool(labels, "labels")
    hook = getattr(result_or_dataframe, "publication_frame", None)
    if callable(hook):
        return _own_layout(result_or_dataframe, hook(digits=digits, labels=labels), ci, columns)
    table, title, notes, context, alpha = _source(result_or_dataframe)
    if columns is not None:
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"columns: {', '.join(map(repr, missing))} not in the table; choose from "
                             f"{', '.join(map(str, table.columns))}")
        keep = set(columns) | {c for e, lo, hi, _ in interval_pairs(table.columns) if e in columns for c in (lo, hi)}
        table = table[[c for c in table.columns if c in keep]]
    table, extra = _metadata_notes(table.reset_index(drop=True))
    level = f"{round(100 * (1 - alpha), 1):g}% CI"
    out = _assemble(table, digits, ci, labels, context, level)
    out.attrs = {"title": title, "notes": [*notes, *extra]}
    return out


def _own_layout(result, out: pd.DataFrame, ci: str, columns) -> pd.DataFrame:
    """A result's own printed table (``publication_frame``) with ``columns`` applied (names as printed);
    ``ci="separate"`` is refused, since such a table has no interval columns to separate."""
    kind = type(result).__name__
    if ci != "combined":
        raise ValueError(f"ci: {kind} prints its own table without interval columns; ci={ci!r} does not apply")
    attrs = {"title": out.attrs.get("title", ""), "notes": list(out.attrs.get("notes", []))}
    if columns is not None:
        missing = [c for c in columns if c not in out.columns]
        if missing:
            raise ValueError(f"columns: {', '.join(map(repr, missing))} not in the {kind} table; choose from "
                             f"{', '.join(map(str, out.columns))}")
        out = out[list(columns)]
    out.attrs = attrs
    return out


def _assemble(table: pd.DataFrame, digits: int, ci: str, labels: bool, context: tuple, level: str) -> pd.DataFrame:
    """The text columns in the table's order, each interval merged into (or placed after) its estimate."""

    def head(col: str, interval: str | None = None) -> str:
        return _header(col, context[0], interval, context[1])

    pairs = interval_pairs(table.columns)
    by_est = {e: (lo, hi) for e, lo, hi, _ in pairs if e}
    lone = {lo: (lo, hi, p) for e, lo, hi, p in pairs if not e}
    skip = {c for _, lo, hi, _ in pairs for c in (lo, hi)}
    cols: dict[str, pd.Series] = {}
    for col in map(str, table.columns):
        if col in by_est:
            lo, hi = by_est[col]
            span_kind = level if re.search(r"(ci|conf)_\w+$", lo) else "range"
            size = table[[col, lo, hi]].apply(pd.to_numeric, errors="coerce").abs().max(axis=1)
            est, low, high = (_column_text(table[c], digits, size) for c in (col, lo, hi))
            span = (low + " to " + high).where((low != "NA") | (high != "NA"), "NA")
            if ci == "combined":
                text = est.where(span == "NA", est + " (" + span + ")").where(est != "NA", "NA")
                cols[head(col, span_kind) if labels else f"{col} ({span_kind})"] = text
            else:
                name = head(col) if labels else col
                cols[name] = est
                cols[f"{name.split(' (')[0]}, {span_kind}"] = span
        elif col in lone:
            lo, hi, prefix = lone[col]
            size = table[[lo, hi]].apply(pd.to_numeric, errors="coerce").abs().max(axis=1)
            span = _column_text(table[lo], digits, size) + " to " + _column_text(table[hi], digits, size)
            cols[head(prefix) if labels else f"{lo} to {hi}"] = span
        elif col not in skip:
            text = _column_text(table[col], digits)
            if not labels and col in _CODED + ("term",):
                text = table[col].astype(object).map(lambda v: "" if pd.isna(v) else str(v))
            cols[head(col) if labels else col] = text
    return pd.DataFrame(cols, index=range(len(table)))
