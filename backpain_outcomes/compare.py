"""Modality comparisons at a horizon: adjusted differences, responders, hazard ratios.

For each modality against a reference (default untreated):

* **difference**: ANCOVA on the measurement nearest ``at_day`` (within
  ``window`` days), adjusted for baseline score and chronicity (OLS,
  statsmodels); the classic analysis of a follow-up score (Vickers & Altman
  2001, BMJ 323:1123).
* **responders**: improvement by the MCID of Ostelo et al. 2008 (points and
  30%) at that measurement; Wilson CI per group and Newcombe's hybrid score
  interval for the difference; NNT = 1 / difference where the difference's
  CI excludes 0.
* **hazard_ratio**: Cox model for time to resolution adjusted likewise
  (:func:`~backpain_outcomes.seed_claims.cox_by_group`).

p-values are Holm-adjusted over all comparisons. Observational data give
adjusted associations, not causal effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from ._display import ResultMixin
from .resolution import DEFAULT_RULE, Resolution, time_to_resolution

__all__ = ["compare_modalities", "ModalityComparison"]


class ModalityComparison(ResultMixin):
    """Result of :func:`compare_modalities`; ``table`` has one row per modality."""

    def __init__(self, table, at_day, instrument, notes):
        self.table, self.at_day, self.instrument, self.notes = table, at_day, instrument, notes

    def _parts(self):
        cols = ["modality", "reference", "difference", "ci_low", "ci_high", "p_holm", "responder_rate",
                "hazard_ratio", "n"]
        return (f"Modalities vs reference, {self.instrument.upper()} at day {self.at_day:g}",
                ["adjusted associations (baseline, chronicity); Holm-adjusted p-values", *self.notes],
                {"Comparisons": self.table[cols]})

    def plot(self, ax=None):
        """Forest plot of the adjusted differences with 95% CI."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.5 * len(self.table) + 1.5))
        t = self.table.reset_index(drop=True)
        y = np.arange(len(t))[::-1]
        ax.errorbar(t["difference"], y, xerr=[t["difference"] - t["ci_low"], t["ci_high"] - t["difference"]],
                    fmt="o", color="black", capsize=3)
        ax.axvline(0, color="grey", ls="--")
        ax.set_yticks(y, t["modality"])
        ax.set_xlabel(f"adjusted difference in {self.instrument.upper()} at day {self.at_day:g} "
                      f"vs {t['reference'].iat[0]} (negative = better)")
        return ax


def _nearest(frame, at_day, window):
    f = frame.assign(dist=(frame["day"] - at_day).abs())
    f = f[f["dist"] <= window].sort_values(["episode_id", "dist", "day"])
    return f.groupby("episode_id", sort=False).head(1)


def compare_modalities(study, instrument: str = "nrs", at_day: float = 42, reference: str = "none",
                       adjust=("baseline", "chronicity"), origin: str = "onset", window: float = 14,
                       rule: Resolution | None = None, alpha: float = 0.05) -> ModalityComparison:
    """Compare every modality with ``reference`` at ``at_day``.

    Parameters
    ----------
    study : Study
    instrument : str
    at_day : float
        Horizon (days since ``origin``).
    reference : str
        Reference modality (``"none"`` = untreated).
    adjust : tuple
        Covariates: ``"baseline"``, ``"chronicity"``, ``"age"``.
    window : float
        Largest distance (days) between a measurement and the horizon.
    rule : Resolution, optional
        Rule for the hazard ratio (default NRS <= 1 on two visits for NRS,
        else the MCID rule of the instrument).

    Returns
    -------
    ModalityComparison with ``table``: ``modality``, ``reference``,
    ``difference``, ``ci_low``, ``ci_high``, ``p_value``, ``p_holm``,
    ``effect_size`` (difference / SD of the outcome), ``responders``,
    ``responder_rate``, ``responder_ci_low``, ``responder_ci_high``,
    ``responder_difference`` (+ Newcombe CI), ``nnt``, ``hazard_ratio``,
    ``hr_ci_low``, ``hr_ci_high``, ``n``.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> cmp = bpo.compare_modalities(bpo.load_study(bpo.example_path()))
    >>> "p_holm" in cmp.table
    True
    """
    from .instruments import MCID_ABSOLUTE, MCID_RELATIVE
    from .seed_claims import cox_by_group
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=False)
    near = _nearest(frame, at_day, window)
    if (near["modality"] == reference).sum() == 0:
        raise ValueError(f"no {reference!r} episodes measured near day {at_day:g}; groups: "
                         f"{', '.join(map(str, near['modality'].unique()))}")
    near = near.assign(modality=near["modality"].astype(str))
    levels = [reference] + sorted(m for m in near["modality"].unique() if m != reference)
    near["modality"] = pd.Categorical(near["modality"], categories=levels)
    terms = [f"C(modality, Treatment({reference!r}))"]
    if "baseline" in adjust:
        terms.append("baseline")
    if "chronicity" in adjust and near["chronicity"].astype(str).nunique() > 1:
        terms.append("C(chronicity)")
    if "age" in adjust and near["age"].notna().any():
        terms.append("age")
    # plain strings: categories absent near the horizon must not become empty design columns
    fit = smf.ols("score ~ " + " + ".join(terms), data=near.assign(chronicity=near["chronicity"].astype(str))).fit()
    ci = fit.conf_int(alpha)
    drop = near["baseline"] - near["score"]
    responder = (drop >= MCID_ABSOLUTE[instrument]) & (drop >= MCID_RELATIVE * near["baseline"])
    near = near.assign(responder=responder.to_numpy())
    ref = near[near["modality"] == reference]
    k_ref, n_ref = int(ref["responder"].sum()), len(ref)
    rule = rule or (DEFAULT_RULE if instrument == "nrs" else Resolution(instrument, mcid=True, sustained=2))
    hr, _, _ = cox_by_group(time_to_resolution(study, rule, origin=origin), study, rule, reference=reference)
    hr = hr.set_index("level") if len(hr) else hr
    sd = near["score"].std()
    rows = []
    for m in levels[1:]:
        name = f"C(modality, Treatment({reference!r}))[T.{m}]"
        g = near[near["modality"] == m]
        k, n = int(g["responder"].sum()), len(g)
        lo_r, hi_r = proportion_confint(k, n, alpha, method="wilson") if n else (np.nan, np.nan)
        if n and n_ref:
            d_lo, d_hi = confint_proportions_2indep(k, n, k_ref, n_ref, method="newcomb", alpha=alpha)
        else:
            d_lo = d_hi = np.nan
        rdiff = k / n - k_ref / n_ref if n and n_ref else np.nan
        rows.append({"modality": m, "reference": reference, "difference": fit.params.get(name, np.nan),
                     "ci_low": ci.loc[name, 0] if name in ci.index else np.nan,
                     "ci_high": ci.loc[name, 1] if name in ci.index else np.nan,
                     "p_value": fit.pvalues.get(name, np.nan), "effect_size": fit.params.get(name, np.nan) / sd,
                     "responders": k, "responder_rate": k / n if n else np.nan, "responder_ci_low": lo_r,
                     "responder_ci_high": hi_r, "responder_difference": rdiff, "responder_diff_ci_low": d_lo,
                     "responder_diff_ci_high": d_hi,
                     "nnt": 1 / rdiff if (d_lo > 0 or d_hi < 0) and rdiff else np.nan,
                     "hazard_ratio": hr.loc[m, "hazard_ratio"] if m in getattr(hr, "index", []) else np.nan,
                     "hr_ci_low": hr.loc[m, "hr_ci_low"] if m in getattr(hr, "index", []) else np.nan,
                     "hr_ci_high": hr.loc[m, "hr_ci_high"] if m in getattr(hr, "index", []) else np.nan,
                     "n": n, "n_reference": n_ref})
    table = pd.DataFrame(rows)
    ok = table["p_value"].notna()
    table["p_holm"] = np.nan
    if ok.any():
        table.loc[ok, "p_holm"] = multipletests(table.loc[ok, "p_value"], method="holm")[1]
    notes = [f"{len(near)} of {frame['episode_id'].nunique()} episodes had a measurement within {window:g} days "
             f"of day {at_day:g}; the others are not in the ANCOVA"]
    return ModalityComparison(table, at_day, instrument, notes)
