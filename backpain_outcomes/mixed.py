"""Longitudinal linear mixed model with the names statsmodels users know.

``fit_mixed_model(study, "score ~ day * modality + baseline", re_formula="~ day",
groups="episode_id")`` fits a random-intercept (and slope) model by REML or ML.

Engines:

* ``"fast"`` (default when there are at most two random effects per group):
  the exact profiled (RE)ML of :mod:`backpain_outcomes.lmm_fast`, vectorised
  over groups (lme4's parametrisation), with lme4's conditional covariance of
  the fixed effects :math:`\\sigma^2 (X^TV^{-1}X)^{-1}`.
* ``"statsmodels"``: ``MixedLM`` (any ``re_formula``), with a note on the
  result; used automatically for structures the fast path does not cover.

Time in days (0-1000) makes the optimiser ill-conditioned (lme4 itself fails
to converge on raw days): the model is fitted with time in units of 30 days
and every estimate is transformed back exactly to per-day units (fixed effects
through the linear map between the two design matrices, random-effect
covariances through ``diag(1, 30)``). ``llf`` is reported on the per-day
scale; the ML log-likelihood does not depend on the scaling, the REML one
shifts by ``-log|det A|`` for the design map ``A``.

Convergence problems, boundary fits and large gradients are reported on the
result in plain words, never swallowed (statsmodels #6157, lme4 #783).

The formula checks, model matrices and rescaling maps are in
:mod:`backpain_outcomes.mixed_design`, the two engines in
:mod:`backpain_outcomes.mixed_engines`; this module holds the result and
:func:`fit_mixed_model`, which ties them together.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from . import style
from .checks import check_alpha, check_bool, check_choice, check_instrument, check_origin
from .curves import data_window, score_range
from .dispatch import on_study
from .exceptions import ConvergenceWarning, warn
from .mixed_design import build_design, check_design, check_formula, check_re_formula
from .mixed_engines import conditional_cov_fe, fit_fast, fit_statsmodels
from .results import Result
from .vocabulary import instrument_label, label

__all__ = ["fit_mixed_model", "MixedModelResult", "conditional_cov_fe", "check_formula", "check_re_formula",
           "term_label", "mixed_result", "TIME_UNIT", "ENGINES"]

#: Time is fitted in units of this many days, then every estimate is put back per day.
TIME_UNIT = 30.0
ENGINES = ("auto", "fast", "statsmodels")


# ------------------------------------------------------------------ result
_LEVEL = re.compile(r"(?:C\((\w+)[^\[]*\)|(\w+))\[T\.([^\]]+)\]")


def term_label(term: str) -> str:
    """Human label of a fixed-effect term: ``"day:modality[T.dry_needling]"`` -> ``"Day x Dry needling"``.

    Examples
    --------
    >>> term_label("day:modality[T.dry_needling]"), term_label("C(modality, Treatment('untreated'))[T.cupping]")
    ('Day x Dry needling', 'Cupping')
    """
    parts = []
    for part in term.split(":"):
        m = _LEVEL.fullmatch(part)
        text = label(m.group(3)) if m else label(part)
        parts.append(text[:1].upper() + text[1:])
    return " x ".join(parts)


class MixedModelResult(Result):
    """Result of :func:`fit_mixed_model` (per-day units).

    Attributes
    ----------
    table : DataFrame
        Tidy fixed effects: ``term``, ``estimate``, ``se``, ``z``,
        ``p_value``, ``ci_low``, ``ci_high`` (95%, normal approximation as
        statsmodels' MixedLM).
    fe_params, bse_fe, tvalues, pvalues : Series
        Fixed effects, standard errors, z statistics and p-values.
    cov_fe : DataFrame
    cov_re : DataFrame
        Covariance of the random effects.
    scale : float
        Residual variance.
    llf : float
        Log-likelihood (REML criterion when ``reml=True``) on the per-day scale.
    converged : bool
    random_effects : DataFrame
        BLUPs per group.
    engine : str
    notes : list of str
        Plain-language diagnostics (convergence, boundary, gradient, missing rows).
    """

    def __init__(self, *, names, re_names, beta, cov_fe, cov_re, scale, llf, converged, blup, groups_index,
                 formula, re_formula, groups, time, notes, frame, design, engine, nobs, reml, instrument, origin):
        self.fe_params = pd.Series(beta, index=names)
        self.cov_fe = pd.DataFrame(cov_fe, index=names, columns=names)
        with np.errstate(invalid="ignore"):
            self.bse_fe = pd.Series(np.sqrt(np.diag(cov_fe)), index=names)
        self.cov_re = pd.DataFrame(cov_re, index=re_names, columns=re_names)
        self.scale, self.llf, self.converged = float(scale), float(llf), bool(converged)
        self.random_effects = pd.DataFrame(blup, index=pd.Index(groups_index, name=groups), columns=re_names)
        self.formula, self.re_formula, self.groups, self.time = formula, re_formula, groups, time
        self.notes, self._frame, self._design, self.engine = list(notes), frame, design, engine
        self.nobs, self.n_groups, self.reml = int(nobs), len(self.random_effects), reml
        self.instrument, self.origin = instrument, origin
        ci = self.conf_int()
        self.table = pd.DataFrame({"term": names, "estimate": self.fe_params.to_numpy(),
                                   "se": self.bse_fe.to_numpy(), "z": self.tvalues.to_numpy(),
                                   "p_value": self.pvalues.to_numpy(), "ci_low": ci[0].to_numpy(),
                                   "ci_high": ci[1].to_numpy()})
        self._freeze()

    @property
    def tvalues(self) -> pd.Series:
        """z statistics of the fixed effects."""
        return self.fe_params / self.bse_fe

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the fixed effects (normal reference, as statsmodels' MixedLM)."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues.to_numpy())), index=self.fe_params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals of the fixed effects; columns 0 and 1 as in statsmodels.

        Examples
        --------
        >>> import backpain_outcomes as bpo
        >>> m = bpo.fit_mixed_model(bpo.load_study(bpo.example_path()), "score ~ day + baseline", re_formula="1")
        >>> ci = m.conf_int(0.1)
        >>> bool((ci[0] < m.fe_params).all() and (m.fe_params < ci[1]).all())
        True
        """
        z = stats.norm.ppf(1 - check_alpha(alpha) / 2)
        return pd.DataFrame({0: self.fe_params - z * self.bse_fe, 1: self.fe_params + z * self.bse_fe})

    def _parts(self):
        tab = self.table.assign(term=self.table["term"].map(term_label))
        cre = self.cov_re.reset_index().rename(columns={"index": "random effect"})
        lines = [f"{self.formula}; random: {self.re_formula or '1'} | {self.groups}; "
                 f"{'REML' if self.reml else 'ML'}; engine: {self.engine}",
                 f"{self.nobs} observations in {self.n_groups} groups; residual variance {self.scale:.4g}; "
                 f"log-likelihood {self.llf:.4f}; converged: {self.converged}", *self.notes]
        return "Linear mixed model (per-day units)", lines, {"Fixed effects": tab, "Random-effect covariance": cre}

    def predict(self, frame=None, include_random_effects: bool = True) -> np.ndarray:
        """Predictions; with ``include_random_effects`` the group BLUPs are added
        (groups not seen in the fit get the population prediction)."""
        frame = self._frame if frame is None else frame
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a DataFrame with the model's columns, got {type(frame).__name__}")
        check_bool(include_random_effects, "include_random_effects")
        try:
            X = patsy.dmatrix(self._design[0], frame, return_type="dataframe")
            pred = X.to_numpy() @ self.fe_params.to_numpy()
            if include_random_effects:
                Z = (patsy.dmatrix(self._design[1], frame, return_type="dataframe").to_numpy() if self._design[1]
                     else np.ones((len(frame), 1)))
                b = self.random_effects.reindex(frame[self.groups].to_numpy()).fillna(0.0).to_numpy()
                pred = pred + (Z * b).sum(1)
        except (patsy.PatsyError, KeyError) as err:
            raise ValueError(f"frame cannot be used for predictions ({err}); it needs the columns of "
                             f"{self.formula!r} and {self.groups!r}") from None
        return pred

    def mean_curves(self, by: str = "modality", min_n: int = 5, n_points: int = 100) -> pd.DataFrame:
        """Population-mean predictions over time per level of ``by``, within each level's data.

        Other covariates are held at their mean (numbers) or most frequent
        value; each level's curve runs over the days where at least ``min_n``
        of its groups have data, and is clipped to the instrument's range (the
        observed range of the response for a DataFrame).
        """
        f = self._frame
        levels = [((), f)] if by is None or by not in f else [
            ((lv,), g) for lv, g in f.groupby(by, observed=True, sort=True)]
        typical = {c: (f[c].mean() if pd.api.types.is_numeric_dtype(f[c]) and not isinstance(f[c].dtype,
                       pd.CategoricalDtype) else f[c].mode().iat[0]) for c in f.columns if c != self.time}
        response = patsy.ModelDesc.from_formula(self.formula).lhs_termlist[0].factors[0].code
        if self.instrument:
            lo, hi = score_range(self.instrument)
        elif response in f:
            lo, hi = float(f[response].min()), float(f[response].max())
        else:
            lo, hi = -np.inf, np.inf
        rows = []
        for key, g in levels:
            # only the two columns the window needs: a frame may hold "day" beside another time column ("week")
            first, last = data_window(g[[self.groups, self.time]].set_axis(["episode_id", "day"], axis=1), min_n)
            if not np.isfinite(first):
                continue
            new = pd.DataFrame({**typical, self.time: np.linspace(first, last, n_points)})
            if key:
                new[by] = pd.Categorical([key[0]] * n_points, categories=f[by].cat.categories) if isinstance(
                    f[by].dtype, pd.CategoricalDtype) else key[0]
            pred = np.clip(self.predict(new, include_random_effects=False), lo, hi)
            rows.append(pd.DataFrame({**({by: key[0]} if key else {}), self.time: new[self.time], "predicted": pred}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[self.time, "predicted"])

    def plot(self, ax=None, kind: str = "curves", by: str = "modality"):
        """``kind="curves"``: population-mean curves per level of ``by`` within each level's data;
        ``kind="effects"``: forest plot of the fixed effects (intercept left out) with 95% CIs."""
        check_choice(kind, "kind", ("curves", "effects"))
        ax = style.new_axes(ax, figsize=(8, 5))
        if kind == "effects" or self.time not in self._frame:
            t = self.table[self.table["term"] != "Intercept"].reset_index(drop=True)
            y = np.arange(len(t))[::-1]
            ax.errorbar(t["estimate"], y, xerr=[t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]],
                        fmt="o", color="black", capsize=3)
            ax.axvline(0, color="grey", ls="--", lw=1)
            ax.set_yticks(y, [term_label(x) for x in t["term"]], fontsize=style.TICK_SIZE)
            ax.set_xlabel(f"Fixed effect (per {self.time.replace('_', ' ')} for time terms), 95% CI; n = {self.nobs} measurements of "
                          f"{self.n_groups} {self.groups.replace('_id', '').replace('_', ' ')}s",
                          fontsize=style.LABEL_SIZE)
            ax.set_ylabel("Term", fontsize=style.LABEL_SIZE)
            return ax
        curves = self.mean_curves(by)
        groups = [((), curves)] if by not in curves else list(curves.groupby(by, sort=True))
        styles = style.group_styles([k[0] if isinstance(k, tuple) and k else k for k, _ in groups])
        for key, g in groups:
            key = key[0] if isinstance(key, tuple) and key else key
            name = label(key) if by in curves else "Mean"
            colour, ls = styles.get(key, (style.OKABE_ITO["blue"], "-")) if by in curves else (style.OKABE_ITO["blue"], "-")
            ax.plot(g[self.time], g["predicted"], label=name, color=colour, ls=ls, lw=1.6)
        ax.set_xlabel(label(self.origin) if self.origin and self.time == "day" else label(self.time),
                      fontsize=style.LABEL_SIZE)
        ax.set_ylabel(f"Predicted mean {instrument_label(self.instrument)}" if self.instrument else "Predicted mean",
                      fontsize=style.LABEL_SIZE)
        ax.tick_params(labelsize=style.TICK_SIZE)
        style.legend(ax)
        return ax


# ------------------------------------------------------------------ fitting
def _prepare(study, instrument, origin):
    if hasattr(study, "analysis_frame"):
        return study.analysis_frame(instrument, origin=origin), True
    if isinstance(study, pd.DataFrame):
        return study, False
    raise TypeError(f"study must be a Study or a long DataFrame (e.g. study.analysis_frame('nrs')), "
                    f"got {type(study).__name__}")


def _run_engine(design, engine, reml, notes):
    """(fit, engine description, random-effect names) from the engine ``engine`` asks for."""
    q = design.Z_s.shape[1]
    if engine == "fast" and q > 2:
        raise ValueError(f"engine='fast' handles at most two random effects per group, "
                         f"re_formula={design.re_formula!r} has {q}; use engine='statsmodels'")
    use_fast = engine == "fast" or (engine == "auto" and q <= 2)
    if use_fast:
        est = fit_fast(design, reml, notes)
        return est, "fast (exact profiled likelihood, vectorised)", design.re_names
    est = fit_statsmodels(design, reml, notes)
    eng = "statsmodels MixedLM (structure not covered by the fast engine)" if engine == "auto" else "statsmodels"
    return est, eng, est.re_names


def mixed_result(est, engine: str, re_names: list, A, D, notes: list, *, names, info, frame, nobs, formula,
                 re_formula, groups, time, reml, instrument, origin) -> MixedModelResult:
    """The :class:`MixedModelResult` of a fit ``est`` on the rescaled time scale, put back per day through the
    design maps ``A`` (fixed effects) and ``D`` (random effects), with notes (and a
    :class:`ConvergenceWarning`) on non-convergence and boundary fits."""
    if not est.converged:
        notes.append("the model did not converge: estimates are unreliable; simplify the random effects "
                     "(re_formula='1') or check for groups with a single observation")
        warn(notes[-1], ConvergenceWarning)
    if est.at_boundary:
        notes.append("a random-effect variance is estimated at zero (boundary fit): that random effect is not "
                     "supported by the data")
    A_inv, Dinv = np.linalg.inv(A), np.linalg.inv(D)
    llf = est.llf - (np.log(abs(np.linalg.det(A))) if reml else 0.0)
    return MixedModelResult(
        names=names, re_names=re_names, beta=A_inv @ est.beta, cov_fe=A_inv @ est.cov_fe @ A_inv.T,
        cov_re=Dinv @ est.cov_re @ Dinv.T, scale=est.sigma2, llf=llf, converged=est.converged,
        blup=np.asarray(est.blup) @ Dinv.T, groups_index=est.groups, formula=formula, re_formula=re_formula,
        groups=groups, time=time, notes=notes, frame=frame, design=info, engine=engine, nobs=nobs, reml=reml,
        instrument=instrument, origin=origin)


@on_study
def fit_mixed_model(study, formula: str = "score ~ day * modality + baseline", re_formula: str | None = "~ day",
                    groups: str = "episode_id", reml: bool = True, instrument: str = "nrs",
                    origin: str = "onset", time: str = "day", engine: str = "auto") -> MixedModelResult:
    """Fit a linear mixed model for repeated scores.

    Parameters
    ----------
    study : Study or DataFrame
        A Study (converted with ``study.analysis_frame(instrument, origin)``)
        or a long frame such as ``study.analysis_frame("nrs")``.
    formula : str
        Fixed effects (patsy), e.g. ``"score ~ day * modality + baseline"``.
    re_formula : str or None
        ``"~ day"`` (random intercept and slope) or ``"1"``/None (intercept).
    groups : str
        Column of the grouping factor.
    reml : bool
    instrument : str
        Any accepted spelling; used when ``study`` is a Study.
    origin : {"onset", "first_contact"}
        Day 0; used when ``study`` is a Study.
    time : str
        The time column that is rescaled for the optimiser.
    engine : {"auto", "fast", "statsmodels"}
        ``"auto"`` uses the fast exact fitter for up to two random effects.

    Returns
    -------
    MixedModelResult
        ``table`` (tidy fixed effects), ``fe_params``, ``bse_fe``, ``cov_re``,
        ``scale``, ``llf``, ``converged``, ``conf_int()``, ``pvalues``,
        ``random_effects``, ``predict()``, ``plot()``, ``notes``.

    Raises
    ------
    ValueError
        For a formula naming a column the data lack, a singular fixed-effects
        design, fewer than two groups, or groups of one observation each.

    Notes
    -----
    Missing data: rows with a missing value in any model variable are
    dropped (listwise, as statsmodels and lme4 do); the count is in ``notes``.
    Estimates equal R lme4 and statsmodels MixedLM (tests/test_mixed.py).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> m = bpo.fit_mixed_model(study, "score ~ day + baseline")
    >>> "day" in m.fe_params.index and list(m.table.columns[:3]) == ["term", "estimate", "se"]
    True
    """
    reml, engine = check_bool(reml, "reml"), check_choice(engine, "engine", ENGINES)
    instrument, origin = check_instrument(instrument), check_origin(origin)
    data, from_study = _prepare(study, instrument, origin)
    re_formula = check_re_formula(re_formula, data.columns)
    formula = check_formula(formula, data.columns, "formula", two_sided=True)
    notes: list[str] = []
    design = build_design(data, formula, re_formula, groups, time, TIME_UNIT, notes)
    check_design(design, notes)
    est, eng, re_names = _run_engine(design, engine, reml, notes)
    return mixed_result(est, eng, re_names, design.A, design.D, notes, names=design.names, info=design.info,
                        frame=design.frame, nobs=len(design.frame), formula=formula, re_formula=re_formula,
                        groups=groups, time=time, reml=reml, instrument=instrument if from_study else None,
                        origin=origin if from_study else None)
