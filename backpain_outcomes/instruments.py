"""Patient-reported outcome instruments: scoring and MCID.

All four instruments are scored so that **higher is worse**.

==========  ===========  =====================================================
instrument  range        source
==========  ===========  =====================================================
``nrs``     0-10         numeric pain rating scale
``vas``     0-100 (mm)   visual analogue scale
``odi``     0-100 (%)    Oswestry Disability Index (Fairbank & Pynsent 2000)
``rmdq``    0-24         Roland-Morris Disability Questionnaire (Roland &
                         Morris 1983)
==========  ===========  =====================================================

Minimal clinically important change (MCID) per instrument follows the
international consensus of Ostelo et al. (2008), *Spine* 33(1):90-94: NRS 2
points, VAS 15 of 100, ODI 10 points, RMDQ 5 points, or a 30% improvement from
baseline for all of them.

The global rating of change (``grc``) is a rating of change, not a level: it
has no MCID and no 0-100 score (:func:`score_100` gives NaN for it) and is not
in :func:`mcid_table`; a rating of 1 or 2 (the two best categories) counts as
improved. See :mod:`backpain_outcomes.vocabulary` and
:mod:`backpain_outcomes.ordinal`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .vocabulary import INSTRUMENTS, MCID_ABSOLUTE, MCID_RELATIVE

__all__ = ["score_100", "score_odi", "score_rmdq", "mcid_table"]


def score_100(instrument: pd.Series, score: pd.Series) -> pd.Series:
    """Rescale each score to 0-100 (0 = best) using the instrument's range.

    Ratings of change (``grc``) are not levels and give NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> score_100(pd.Series(["nrs", "rmdq", "grc"]), pd.Series([5, 12, 2])).tolist()
    [50.0, 50.0, nan]
    """
    high = instrument.map({k: v[1] for k, v in INSTRUMENTS.items()}).astype(float)
    return pd.to_numeric(score, errors="coerce").astype(float) / high * 100.0


def score_odi(items: pd.DataFrame, max_missing: int = 1) -> pd.Series:
    """Score the Oswestry Disability Index from its 10 sections.

    .. math:: \\mathrm{ODI} = 100 \\times \\frac{\\sum_i s_i}{5 \\times n_{answered}}

    Each section is scored 0-5; every unanswered section reduces the
    denominator by 5 (Fairbank & Pynsent 2000, Spine 25:2940-52). With more
    than ``max_missing`` sections missing the questionnaire is not scored (NaN);
    the default of 1 follows the open-source awell-score implementation.

    Parameters
    ----------
    items : DataFrame
        Ten columns, one per section, values 0-5 or missing.
    max_missing : int
        Largest number of unanswered sections still scored.

    Returns
    -------
    Series of float, NaN where not scorable.

    Examples
    --------
    >>> import pandas as pd
    >>> score_odi(pd.DataFrame([[2, 1, 2, 1, 2, 1, 2, 1, 2, 2]])).round(1).tolist()
    [32.0]
    """
    x = items.apply(pd.to_numeric, errors="coerce").astype(float)
    if x.shape[1] != 10:
        raise ValueError(f"the Oswestry index has 10 sections; got {x.shape[1]} columns")
    bad = ((x < 0) | (x > 5) | (x.notna() & (x != np.floor(x)))).any(axis=1)
    answered = x.notna().sum(axis=1)
    out = 100.0 * x.sum(axis=1) / (5.0 * answered.where(answered > 0))
    return out.where((10 - answered <= max_missing) & ~bad)


_YES = {"1", "1.0", "yes", "y", "true", "t", "x"}
_NO = {"0", "0.0", "no", "n", "false", "f", "na", "n/a", "not applicable"}


def score_rmdq(items: pd.DataFrame, rescale: bool = False, max_missing: int = 0) -> pd.Series:
    """Score the 24-item Roland-Morris Disability Questionnaire.

    The score is the count of items endorsed ("yes"), 0-24 (Roland & Morris
    1983, Spine 8:141-4); "not applicable" counts as *no*. There is no
    standard for missing items: by default (``max_missing=0``) a questionnaire
    with any missing item is not scored. With ``rescale=True`` and up to
    ``max_missing`` items missing, the count is rescaled proportionally
    (``yes / answered * 24``), the option evaluated by Kent & Lauridsen.

    Examples
    --------
    >>> import pandas as pd
    >>> score_rmdq(pd.DataFrame([["yes"] * 6 + ["no"] * 18])).tolist()
    [6.0]
    """
    if items.shape[1] != 24:
        raise ValueError(f"the Roland-Morris questionnaire has 24 items; got {items.shape[1]} columns")
    text = items.astype(object).where(items.notna(), None).map(
        lambda v: None if v is None else str(v).strip().lower())
    yes = text.isin(_YES)
    no = text.isin(_NO)
    answered = (yes | no).sum(axis=1)
    invalid = (text.notna() & ~yes & ~no).any(axis=1)
    missing = 24 - answered
    count = yes.sum(axis=1).astype(float)
    if rescale:
        count = count / answered.where(answered > 0) * 24.0
    ok = (missing <= max_missing) & ~invalid
    if not rescale:
        ok &= missing == 0
    return count.where(ok)


def mcid_table() -> pd.DataFrame:
    """Minimal clinically important change per instrument (Ostelo et al. 2008).

    Returns
    -------
    DataFrame with ``instrument``, ``low``, ``high``, ``mcid_points``,
    ``mcid_relative`` and ``source``.
    """
    rows = [
        {"instrument": k, "low": lo, "high": hi, "mcid_points": MCID_ABSOLUTE[k],
         "mcid_relative": MCID_RELATIVE,
         "source": "Ostelo et al. 2008, Spine 33(1):90-94"}
        for k, (lo, hi, _label) in INSTRUMENTS.items()
    ]
    return pd.DataFrame(rows)
