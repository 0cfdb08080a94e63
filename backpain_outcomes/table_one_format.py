"""The printed Table 1 (:meth:`~backpain_outcomes.table_one.TableOne.publication_frame`): groups and levels as
displayed (the label of a vocabulary code, a code of the loader capitalised, any other value as written),
numbers as text, and the wide row(s) of one variable: counts, mean (SD), median [IQR] or n (%) per group with
its missing count, SMDs and p-value."""

from __future__ import annotations

import pandas as pd

from .export_table import code_label

__all__ = ["OVERALL", "display_value", "wide_rows"]

#: the group of all episodes
OVERALL = "overall"
#: codes the loader writes (sex is normalised to these) shown capitalised like the vocabulary's labels
_LOADER_CODES = ("female", "male")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def display_value(value: object) -> str:
    """A group or level as printed: the label of a vocabulary code ("dry_needling" -> "Dry needling"), a code
    the loader writes capitalised ("female" -> "Female"), any other value as written (clinic "c_1")."""
    text = code_label(value)
    if text != str(value):
        return _capital(text)
    return _capital(text) if text in _LOADER_CODES else text


def _fmt(v, digits: int) -> str:
    return "NA" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"


def wide_rows(var, rows, head, names, digits, labels, comp, total) -> list[dict]:
    """The printed row(s) of one variable."""
    stat = rows["statistic"].iloc[0]
    by_group = {g: r for g, r in rows.groupby("group", sort=False)}
    first = {"Characteristic": head}
    if stat == "n":
        return [{**first, "Characteristic": f"{head}, n",
                 **{names[g]: str(int(r["count"].iloc[0])) for g, r in by_group.items()}}]
    missing = int(rows.loc[rows["group"] == OVERALL, "missing"].iloc[0])
    first["Missing, n (%)"] = f"{missing} ({100 * missing / total:.1f})" if total else str(missing)
    if comp is not None:
        first["SMD"], first["Max SMD"] = _fmt(comp["smd"], 3), _fmt(comp["smd_max"], 3)
        first["P value"] = "NA" if pd.isna(comp["p_value"]) else (
            "<0.001" if comp["p_value"] < 0.001 else f"{comp['p_value']:.3f}")
    if stat == "mean_sd":
        first["Characteristic"] = f"{head}, mean (SD)"
        return [{**first, **{names[g]: f"{_fmt(r['mean'].iloc[0], digits)} ({_fmt(r['sd'].iloc[0], digits)})"
                             for g, r in by_group.items()}}]
    if stat == "median_iqr":
        first["Characteristic"] = f"{head}, median [IQR]"
        return [{**first, **{names[g]: f"{_fmt(r['median'].iloc[0], digits)} [{_fmt(r['q1'].iloc[0], digits)}, "
                                       f"{_fmt(r['q3'].iloc[0], digits)}]" for g, r in by_group.items()}}]
    out = [{**first, "Characteristic": f"{head}, n (%)"}]
    for level, lev_rows in rows.groupby("level", sort=False):
        text = display_value(level) if labels else level
        cells = {names[g]: f"{int(r['count'])} ({_fmt(r['percent'], 1)})" for _, r in lev_rows.iterrows()
                 for g in [r["group"]]}
        out.append({"Characteristic": "    " + text, **cells})
    return out
