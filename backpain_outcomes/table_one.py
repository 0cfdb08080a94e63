"""Table 1: baseline characteristics of a study's episodes by group, as R's ``tableone`` gives.

Per group (and overall): episodes and patients; age, mean (SD); sex, n (%);
chronicity, n (%); the baseline score, mean (SD), or median [IQR] when its
distribution is skewed; days from onset to first contact, the day of the
baseline measurement and the number of treatment sessions, median [IQR];
clinic, n (%) when recorded. Percentages are of the episodes with the value
recorded; every variable states its missing count.

Standardised mean differences (SMD) follow Yang & Dalton (2012, SAS Global
Forum paper 335-2012), the definition of ``tableone``'s ``smd = TRUE``: for a
continuous variable :math:`|\\bar x_i - \\bar x_j| / \\sqrt{(s_i^2 + s_j^2)/2}`
(through :func:`backpain_outcomes.weighting.balance_table`); for a
categorical variable with level proportions :math:`p_i, p_j` (the first level
dropped), :math:`\\sqrt{(p_i - p_j)^T S^{-} (p_i - p_j)}` with
:math:`S = (S_i + S_j)/2`, :math:`S_i = \\mathrm{diag}(p_i) - p_i p_i^T` and
:math:`S^{-}` the Moore-Penrose inverse. With more than two groups
``tableone`` prints the mean of the pairwise SMDs; the table gives that mean
and the largest pairwise SMD. An SMD above 0.1 is commonly read as imbalance
(Austin 2009, Stat Med 28:3083-3107). Optional p-values: one-way ANOVA
(mean (SD) rows), Kruskal-Wallis (median [IQR] rows), Pearson's chi-square
(n (%) rows), as ``tableone``'s defaults.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from . import style
from .checks import check_bool, check_by, check_instrument, check_min_n, check_origin
from .results import Result
from .table_one_compare import categorical_smd, compare_groups, continuous_smd
from .table_one_format import OVERALL, display_value, wide_rows
from .vocabulary import CHRONICITY_LEVELS, MODALITY_LEVELS, UNKNOWN, label
from .weighting import SMD_THRESHOLD

__all__ = ["table_one", "TableOne", "categorical_smd", "continuous_smd", "SKEW_LIMIT", "MAX_GROUPS"]

#: a continuous variable whose pooled sample skewness exceeds this (in absolute value) is shown as median [IQR]
SKEW_LIMIT = 1.0
COLUMNS = ["variable", "level", "group", "statistic", "n", "missing", "count", "percent", "mean", "sd", "median",
           "q1", "q3"]
#: at most this many groups: pairwise SMDs over hundreds of levels (``by="patient_id"``) describe nothing
MAX_GROUPS = 20


def _variables(study, instrument: str, origin: str) -> tuple[pd.DataFrame, list[tuple[str, str, str]], list[str]]:
    """Per-episode values of every variable, their (name, kind, header) and notes on what is left out."""
    ep = study.episodes
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=True)
    first = frame[frame["visit"] == 1].set_index("episode_id")
    ids = ep["episode_id"]
    inst = label(instrument)
    chron = ep["chronicity"].astype(str)
    values = pd.DataFrame({
        "age": pd.to_numeric(ep["age"], errors="coerce"),
        "sex": ep["sex"].astype(object).where(ep["sex"].notna(), None),
        "chronicity": chron.where(chron != UNKNOWN, None).astype(object),
        "days_to_first_contact": (ep["first_visit_date"] - ep["onset_date"]).dt.days.astype(float),
        f"baseline_{instrument}": first["score"].reindex(ids).to_numpy(float),
        "baseline_day": first["day"].reindex(ids).to_numpy(float),
        "n_sessions": ep["n_sessions"].astype(float),
        "clinic_id": ep["clinic_id"].astype(object).where(ep["clinic_id"].notna(), None),
    }, index=ep.index)
    since = label(origin)
    spec = [("age", "continuous", "Age (years)"), ("sex", "categorical", "Sex"),
            ("chronicity", "categorical", "Chronicity"),
            ("days_to_first_contact", "skewed", "Days from onset to first contact"),
            (f"baseline_{instrument}", "continuous", f"Baseline {inst}"),
            ("baseline_day", "skewed", f"Day of the baseline {inst} ({since})"),
            ("n_sessions", "skewed", "Treatment sessions"), ("clinic_id", "categorical", "Clinic")]
    notes, kept = [], []
    day, delay = values["baseline_day"], values["days_to_first_contact"]
    if origin == "onset" and np.allclose(day.fillna(-1), delay.fillna(-1)) or origin != "onset" and (
            day.fillna(0) == 0).all():
        values["baseline_day"] = np.nan
        notes.append(f"every episode's baseline {inst} was measured at its first contact")
    for name, kind, head in spec:
        if name == "baseline_day" and values[name].isna().all():
            continue
        if values[name].notna().any():
            kept.append((name, kind, head))
        elif name != "clinic_id":
            notes.append(f"{head}: not recorded for any episode; not shown")
    return values, kept, notes


def _group_order(values: pd.Series, by: str) -> list[str]:
    present = [str(v) for v in pd.unique(values.dropna())]
    known = MODALITY_LEVELS if by == "modality" else CHRONICITY_LEVELS if by == "chronicity" else ()
    return [v for v in known if v in present] + sorted(v for v in present if v not in known)


def _summary_rows(name: str, kind: str, x: pd.Series, masks: dict) -> list[dict]:
    """Long rows of one variable (``kind``: n_pct, mean_sd or median_iqr) for every group and overall."""
    rows = []
    for group, m in masks.items():
        v = x[m]
        n, missing = int(v.notna().sum()), int(v.isna().sum())
        if kind == "n_pct":
            levels = sorted({str(u) for u in x.dropna()}, key=lambda u: (
                CHRONICITY_LEVELS.index(u) if name == "chronicity" and u in CHRONICITY_LEVELS else 99, u))
            counts = v.dropna().astype(str).value_counts()
            for lev in levels:
                c = int(counts.get(lev, 0))
                rows.append({"variable": name, "level": lev, "group": group, "statistic": "n_pct", "n": n,
                             "missing": missing, "count": c, "percent": 100 * c / n if n else np.nan})
        else:
            f = v.dropna().to_numpy(float)
            q = np.percentile(f, [25, 50, 75]) if n else [np.nan] * 3
            rows.append({"variable": name, "level": "", "group": group, "statistic": kind, "n": n,
                         "missing": missing, "mean": f.mean() if n else np.nan,
                         "sd": f.std(ddof=1) if n > 1 else np.nan, "median": q[1], "q1": q[0], "q3": q[2]})
    return rows


def _statistic(name: str, kind: str, x: pd.Series, nonnormal) -> str:
    """n_pct, mean_sd or median_iqr; a continuous variable is skewed when listed in ``nonnormal`` or, when
    ``nonnormal`` is None, when its pooled sample skewness exceeds :data:`SKEW_LIMIT` in absolute value."""
    if kind == "categorical":
        return "n_pct"
    if kind == "skewed":
        return "median_iqr"
    if nonnormal is not None:
        return "median_iqr" if name in nonnormal else "mean_sd"
    f = x.dropna().to_numpy(float)
    skew = stats.skew(f, bias=False) if len(f) > 2 and np.ptp(f) > 0 else 0.0
    return "median_iqr" if abs(skew) > SKEW_LIMIT else "mean_sd"


def _check_nonnormal(nonnormal, names: list[str]):
    if nonnormal is None:
        return None
    items = [nonnormal] if isinstance(nonnormal, str) else list(nonnormal)
    bad = [v for v in items if v not in names]
    if bad:
        raise ValueError(f"nonnormal: {', '.join(map(repr, bad))} not a continuous variable of the table; "
                         f"choose from {', '.join(names)}")
    return set(items)


def _check_group_column(study, by) -> str:
    """``by``: one categorical column of ``study.episodes`` with at most :data:`MAX_GROUPS` levels."""
    ep = study.episodes
    cols = check_by(by, ep.columns)
    if len(cols) != 1:
        raise ValueError(f"by must name one column of study.episodes, got {by!r}")

    def usable(col) -> bool:
        kind = ep[col].dtype
        numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
        return not numeric and not pd.api.types.is_datetime64_any_dtype(kind) and ep[col].nunique() <= MAX_GROUPS

    name = cols[0]
    if not usable(name):
        valid = ", ".join(str(c) for c in ep.columns if usable(c)) or "none"
        kind = "a numeric column" if pd.api.types.is_numeric_dtype(ep[name].dtype) else (
            "a date column" if pd.api.types.is_datetime64_any_dtype(ep[name].dtype) else "a column")
        raise ValueError(f"by={name!r} is {kind} with {ep[name].nunique()} levels; a Table 1 compares at most "
                         f"{MAX_GROUPS} groups of a categorical column; choose from {valid}")
    return name


def _variable_rows(spec, by, values, nonnormal, described, smd, test):
    """(long rows, comparisons, headers) of every variable but the grouping itself (which is the columns)."""
    rows, comps, heads = [], [], {"episodes": "Episodes", "patients": "Patients"}
    for name, kind, head in (item for item in spec if item[0] != by):  # the grouping itself is the columns
        stat = _statistic(name, kind, values[name], nonnormal)
        heads[name] = head
        rows += _summary_rows(name, stat, values[name], described)
        comps.append(compare_groups(name, stat, values[name], {g: m for g, m in described.items() if g != OVERALL},
                                    smd, test))
    return rows, comps, heads


def table_one(study, by: str = "modality", *, instrument: str = "nrs", origin: str = "onset", smd: bool = True,
              test: bool = False, nonnormal=None, min_n: int = 5) -> TableOne:
    """Baseline characteristics of the episodes by group (Table 1), with SMDs and optional p-values.

    Rows are episodes: a patient with several episodes counts once per episode, in the counts, the SMDs
    and the p-values (which then treat that patient's episodes as independent; a note says how many
    patients have more than one episode).

    Parameters
    ----------
    study : Study
    by : str
        One categorical column of ``study.episodes`` with at most :data:`MAX_GROUPS` levels:
        ``"modality"`` (default), ``"treatment_status"``, ``"chronicity"``, ``"sex"``, ``"clinic_id"``, ...
        Numeric and date columns (``age``, ``n_sessions``) and identifiers (``patient_id``) are refused.
    instrument : str
        The instrument of the baseline score (any accepted spelling).
    origin : {"onset", "first_contact"}
        Day 0 of the day of the baseline measurement.
    smd : bool
        Standardised mean differences (mean and largest of the pairwise ones, Yang & Dalton 2012).
    test : bool
        P-values across the groups (off by default: a Table 1 describes, it does not test).
    nonnormal : list of str, optional
        Continuous variables to show as median [IQR] (default: those whose absolute skewness exceeds 1).
    min_n : int
        Small-cell protection: a group (or Overall) with fewer than ``min_n`` episodes shows its episode and
        patient counts only; its characteristics are suppressed (no ages, sexes, ... of a single patient),
        and it takes no part in SMDs or p-values. Level counts within a described group are not suppressed.

    Returns
    -------
    TableOne

    References
    ----------
    Yang D, Dalton JE (2012). A unified approach to measuring the effect size between two groups using
    SAS. SAS Global Forum 2012, paper 335-2012. Yoshida K, Bartel A. tableone: Create 'Table 1' to
    describe baseline characteristics (R package).
    """
    by, instrument, origin = _check_group_column(study, by), check_instrument(instrument), check_origin(origin)
    smd, test, min_n = check_bool(smd, "smd"), check_bool(test, "test"), check_min_n(min_n)
    values, spec, notes = _variables(study, instrument, origin)
    nonnormal = _check_nonnormal(nonnormal, [n for n, k, _ in spec if k == "continuous"])
    ep = study.episodes
    group = ep[by].astype(object).map(lambda v: None if v is None or pd.isna(v) else str(v))
    order = _group_order(group, by)
    masks = {g: (group == g) for g in order}
    masks[OVERALL] = pd.Series(True, index=ep.index)
    if group.isna().any():
        notes.append(f"{int(group.isna().sum())} episode(s) without a {by} are counted in Overall only")
    rows = [{"variable": "episodes", "level": "", "group": g, "statistic": "n", "count": int(m.sum())}
            for g, m in masks.items()]
    rows += [{"variable": "patients", "level": "", "group": g, "statistic": "n",
              "count": int(ep.loc[m, "patient_id"].nunique())} for g, m in masks.items()]
    hidden = [g for g, m in masks.items() if int(m.sum()) < min_n]
    described = {g: m for g, m in masks.items() if g not in hidden}
    notes += _episode_notes(ep, hidden, masks, min_n)
    more, comps, heads = _variable_rows(spec, by, values, nonnormal, described, smd, test)
    rows += more
    if len(order) < 2:
        notes.append(f"only one {by} group: no SMD or p-value")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS).astype({"n": "Int64", "missing": "Int64", "count": "Int64"})
    comparisons = pd.DataFrame(comps, columns=["variable", "statistic", "smd", "smd_max", "n_pairs", "p_value",
                                               "test"])
    compared = [g for g in order if g not in hidden]
    return TableOne(table, comparisons, heads, by=by, instrument=instrument, origin=origin, groups=order,
                    smd=smd, test=test, min_n=min_n, suppressed=hidden,
                    notes=notes + _method_notes(comparisons, heads, compared, smd, test))


def _episode_notes(ep: pd.DataFrame, hidden: list, masks: dict, min_n: int) -> list[str]:
    """Notes on suppressed groups and on patients counted more than once (rows are episodes)."""
    notes = []
    if hidden:
        which = ", ".join(f"{'Overall' if g == OVERALL else g} ({int(masks[g].sum())})" for g in hidden)
        notes.append(f"fewer than min_n={min_n} episodes in {which}: characteristics suppressed (small-cell "
                     "protection); such a group takes no part in SMDs or p-values")
    per_patient = ep["patient_id"].value_counts()
    repeated = per_patient[per_patient > 1]
    if len(repeated):
        notes.append(f"rows are episodes: {len(repeated)} patient(s) have more than one episode "
                     f"({int(repeated.sum())} episodes in all), counted once per episode; SMDs and p-values treat "
                     "a patient's episodes as independent, which overstates the information")
    return notes


def _method_notes(comparisons: pd.DataFrame, headers: dict, groups: list, smd: bool, test: bool) -> list[str]:
    notes = ["Percentages are of the episodes with the value recorded; Missing counts the episodes without it"]
    skewed = [headers.get(v, v) for v in comparisons.loc[comparisons["statistic"] == "median_iqr", "variable"]]
    if smd and len(groups) >= 2:
        notes.append("SMD: mean of the pairwise standardised mean differences between the groups (as R tableone "
                     "prints them; Yang & Dalton 2012); Max SMD: the largest pairwise one; above "
                     f"{SMD_THRESHOLD:g} is commonly read as imbalance")
        big = [headers.get(v, v) for v in comparisons.loc[comparisons["smd_max"] > SMD_THRESHOLD, "variable"]]
        if big:
            notes.append(f"groups differ at baseline (max pairwise SMD > {SMD_THRESHOLD:g}) in: {', '.join(big)}; "
                         "comparisons of outcomes between them need adjustment")
    lost = [headers.get(v, v) for v in comparisons.loc[comparisons["smd"].isna(), "variable"]]
    if smd and lost and len(groups) >= 2:
        notes.append(f"SMD not estimable for {', '.join(lost)}: for some pair of groups a group has no value, a "
                     "single value, or both groups have no variation (n_pairs counts the estimable pairs)")
    if test and len(groups) >= 2:
        notes.append("P values: one-way ANOVA for mean (SD), Kruskal-Wallis for median [IQR], Pearson's "
                     "chi-square for n (%); descriptive, not adjusted for multiple testing")
    if skewed:
        notes.append(f"median [IQR] for {', '.join(skewed)} (counts, days, or |skewness| > {SKEW_LIMIT:g})")
    return notes


class TableOne(Result):
    """Result of :func:`table_one`.

    Attributes
    ----------
    table : DataFrame
        Long and tidy: ``variable``, ``level`` (categorical variables),
        ``group`` (a group or ``overall``), ``statistic`` (``n``, ``n_pct``,
        ``mean_sd``, ``median_iqr``), ``n`` (episodes with the value),
        ``missing``, ``count``, ``percent``, ``mean``, ``sd``, ``median``,
        ``q1``, ``q3``.
    comparisons : DataFrame
        Per variable: ``variable``, ``statistic``, ``smd`` (mean of the
        pairwise SMDs, as tableone prints), ``smd_max``, ``n_pairs``,
        ``p_value``, ``test``.
    formatted : DataFrame
        The printed Table 1 (text), as :meth:`publication_frame` gives it.
    by, instrument, origin : str
    groups : list of str
    min_n : int
    suppressed : list of str
        Groups (``overall`` included) with fewer than ``min_n`` episodes, whose characteristics are not shown.
    notes : list of str
    """

    def __init__(self, table, comparisons, headers, *, by, instrument, origin, groups, smd, test, notes, min_n=5,
                 suppressed=()):
        self.table, self.comparisons, self.headers = table, comparisons, dict(headers)
        self.min_n, self.suppressed = min_n, list(suppressed)
        self.by, self.instrument, self.origin, self.groups = by, instrument, origin, list(groups)
        self.show_smd, self.show_test = smd, test
        self.notes = list(notes)
        self.formatted = self.publication_frame()
        self._freeze()

    def publication_frame(self, digits: int = 2, labels: bool = True) -> pd.DataFrame:
        """The Table 1 as text: a row per statistic (and per level), a column per group, Overall, Missing,
        SMD (and P value); ``attrs`` holds the title and the notes."""
        t = self.table
        names = {g: display_value(g) if labels else g for g in [*self.groups, OVERALL]}
        names[OVERALL] = "Overall" if labels else OVERALL
        comp = self.comparisons.set_index("variable")
        total = int(t.loc[(t["variable"] == "episodes") & (t["group"] == OVERALL), "count"].iloc[0])
        out: list[dict] = []
        hidden = {names[g]: f"suppressed (n < {self.min_n})" for g in self.suppressed}
        for var, rows in t.groupby("variable", sort=False):
            start = len(out)
            out += wide_rows(var, rows, self.headers.get(var, var) if labels else var, names, digits, labels,
                              comp.loc[var] if var in comp.index else None, total)
            if var not in ("episodes", "patients"):
                out[start].update(hidden)
        frame = pd.DataFrame(out)
        keep = ["Characteristic", *names.values(), "Missing, n (%)"]
        keep += ["SMD", "Max SMD"] if self.show_smd and len(self.groups) >= 2 else []
        keep += ["P value"] if self.show_test and len(self.groups) >= 2 else []
        frame = frame.reindex(columns=keep).fillna("")
        frame.attrs = {"title": self._title(), "notes": list(self.notes)}
        return frame

    def _title(self) -> str:
        return f"Baseline characteristics by {label(self.by) if self.by != 'modality' else 'modality'}"

    def _parts(self):
        return self._title(), list(self.notes), {"Table 1": self.formatted}

    def plot(self, ax=None):
        """Love plot: the mean and the largest pairwise SMD of every variable, with the 0.1 line."""
        ax = style.new_axes(ax, figsize=(7, 0.4 * max(len(self.comparisons), 3) + 1.6))
        c = self.comparisons
        y = np.arange(len(c))
        ax.plot(c["smd"], y, "o", color="black", label="SMD (mean of pairs)")
        ax.plot(c["smd_max"], y, "s", mfc="none", color="grey", label="largest pairwise SMD")
        ax.axvline(SMD_THRESHOLD, color="grey", ls="--", lw=1, label=f"{SMD_THRESHOLD:g} (usual balance threshold)")
        ax.set_yticks(y, [self.headers.get(v, v) for v in c["variable"]], fontsize=style.TICK_SIZE)
        ax.invert_yaxis()
        ax.set_xlabel(f"Standardised mean difference\nbetween {self.by.replace('_', ' ')} groups (rows are episodes)",
                      fontsize=style.LABEL_SIZE)
        ax.set_ylabel("Baseline characteristic", fontsize=style.LABEL_SIZE)
        ax.tick_params(axis="x", labelsize=style.TICK_SIZE)
        style.legend(ax, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
        return ax


