"""Natural-course reference curves of back pain from published meta-analyses.

* Menezes Costa et al. 2012, CMAJ 184(11):E613-24: 33 inception cohorts,
  pain 0-100 from onset; acute 52, 23, 12, 6 and persistent 51, 33, 26, 23 at
  weeks 0, 6, 26, 52 (variance-weighted means with 95% CI).
* Wallwork et al. 2024, CMAJ, doi:10.1503/cmaj.230542: acute 56, 26, 22, 21;
  subacute 63, 29, 29, 31; persistent 56, 48, 43, 40 at weeks 0, 6, 26, 52,
  from study entry (means taken from a secondary report of the paper).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .checks import check_choice

__all__ = ["reference_curves"]


def reference_curves(source: str | None = None) -> pd.DataFrame:
    """Published natural-course mean pain (0-100) by week.

    Parameters
    ----------
    source : {"costa2012", "wallwork2024"}, optional
        One source; default both.

    Returns
    -------
    DataFrame with ``source``, ``stratum``, ``week``, ``day``,
    ``mean_pain_0_100``, ``mean_nrs`` (= /10), ``ci_low``, ``ci_high``,
    ``time_origin`` and ``citation``.

    Examples
    --------
    >>> ref = reference_curves("costa2012")
    >>> ref.loc[(ref.stratum == "acute") & (ref.week == 6), "mean_pain_0_100"].item()
    23
    """
    path = resources.files("backpain_outcomes") / "data" / "reference_curves.csv"
    with path.open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    df["day"] = df["week"] * 7
    df["mean_nrs"] = df["mean_pain_0_100"] / 10.0
    if source is not None:
        check_choice(source, "source", sorted(set(df["source"])))
        df = df[df["source"] == source].reset_index(drop=True)
    return df
