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
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .checks import check_alpha, check_bool, check_choice, check_instrument, check_origin
from .curves import data_window, score_range
from .exceptions import ConvergenceWarning
from .lmm_fast import GroupStats, LMMFit, fit_lmm, singular_columns
from .results import Result
from .vocabulary import did_you_mean, instrument_label, label

__all__ = ["fit_mixed_model", "MixedModelResult", "conditional_cov_fe", "check_formula", "check_re_formula",
           "term_label", "TIME_UNIT"]

#: Time is fitted in units of this many days, then every estimate is put back per day.
TIME_UNIT = 30.0
ENGINES = ("auto", "fast", "statsmodels")
#: Fewer groups than this leave random-effect variances poorly determined (a note says so).
FEW_GROUPS = 5


# ------------------------------------------------------------------ formulas and design
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
        return patsy.dmatrices(formula, frame, return_type="dataframe")
    except patsy.PatsyError as err:
        raise ValueError(f"formula={formula!r} cannot be built from the data: {err.message}") from None


def _dmatrix(formula, frame):
    try:
        return patsy.dmatrix(formula, frame, return_type="dataframe")
    except patsy.PatsyError as err:
        raise ValueError(f"re_formula={formula!r} cannot be built from the data: {err.message}") from None


def _linear_map(X_raw, X_s):
    """A with X_raw = X_s @ A (exact when the design is linear in time)."""
    A, *_ = np.linalg.lstsq(X_s, X_raw, rcond=None)
    err = np.abs(X_s @ A - X_raw).max() if X_raw.size else 0.0
    return A, err


def build_design(data, formula, re_formula, groups, time, unit, notes) -> Design:
    """Complete rows, model matrices per day and per ``unit`` days, and the linear maps between them."""
    groups, time = _column(groups, data, "groups"), _column(time, data, "time", numeric=True)
    needed = [c for c in data.columns if c in _formula_names(patsy.ModelDesc.from_formula(formula))
              or (re_formula and c in _formula_names(patsy.ModelDesc.from_formula(re_formula))) or c == groups]
    frame = data.dropna(subset=needed).reset_index(drop=True)
    if len(frame) < len(data):
        notes.append(f"{len(data) - len(frame)} row(s) with missing values were left out (listwise deletion)")
    if frame.empty:
        raise ValueError(f"no complete rows: every row misses a value of {', '.join(needed)}")
    scaled = frame.assign(**{time: frame[time] / unit})
    y_raw, X_raw = _dmatrices(formula, frame)
    if y_raw.shape[1] != 1:
        raise ValueError(f"formula={formula!r}: the response must be one numeric column")
    _, X_s = _dmatrices(formula, scaled)
    A, err = _linear_map(X_raw.to_numpy(), X_s.to_numpy())
    if err > 1e-8:
        raise ValueError(f"formula={formula!r} is not linear in {time}, so it cannot be rescaled exactly; use a "
                         "time column already in suitable units")
    if re_formula:
        Z_raw_m = _dmatrix(re_formula, frame)
        Z_s = _dmatrix(re_formula, scaled).to_numpy()
        D, _ = _linear_map(Z_raw_m.to_numpy(), Z_s)
        re_names, z_info = ["Group" if c == "Intercept" else c for c in Z_raw_m.columns], Z_raw_m.design_info
    else:
        Z_s, D, re_names, z_info = np.ones((len(frame), 1)), np.eye(1), ["Group"], None
    return Design(formula, re_formula, groups, time, frame, scaled, list(X_raw.columns), re_names,
                  y_raw.to_numpy()[:, 0], X_raw.to_numpy(), X_s.to_numpy(), Z_s, A, D, (X_raw.design_info, z_info))


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
            first, last = data_window(g.rename(columns={self.groups: "episode_id", self.time: "day"}), min_n)
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
        import matplotlib.pyplot as plt
        check_choice(kind, "kind", ("curves", "effects"))
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        if kind == "effects" or self.time not in self._frame:
            t = self.table[self.table["term"] != "Intercept"].reset_index(drop=True)
            y = np.arange(len(t))[::-1]
            ax.errorbar(t["estimate"], y, xerr=[t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]],
                        fmt="o", color="black", capsize=3)
            ax.axvline(0, color="grey", ls="--")
            ax.set_yticks(y, [term_label(x) for x in t["term"]])
            ax.set_xlabel("fixed effect (per day for time terms) with 95% CI")
            return ax
        curves = self.mean_curves(by)
        groups = [((), curves)] if by not in curves else list(curves.groupby(by, sort=True))
        for key, g in groups:
            name = label(key[0] if isinstance(key, tuple) and key else key) if by in curves else "Mean"
            ax.plot(g[self.time], g["predicted"], label=name)
        ax.set_xlabel(label(self.origin) if self.origin and self.time == "day" else self.time)
        ax.set_ylabel(f"predicted mean {instrument_label(self.instrument)}" if self.instrument else "predicted mean")
        ax.legend(fontsize=8)
        return ax


# ------------------------------------------------------------------ fitting
def conditional_cov_fe(X, Z, groups, G, sigma2):
    r""":math:`(X^T V^{-1} X)^{-1}` with :math:`V_g = Z_g G Z_g^T + \sigma^2 I`, as lme4's ``vcov``.

    Vectorised over groups with the Woodbury identity
    :math:`V_g^{-1} = \sigma^{-2}[I - Z_g(\sigma^2 I + G Z_g^T Z_g)^{-1} G Z_g^T]`,
    valid for a singular ``G`` (boundary fits): no Python loop over groups.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), np.arange(6.0)])
    >>> cov = conditional_cov_fe(X, np.ones((6, 1)), np.repeat([0, 1, 2], 2), np.array([[0.0]]), 1.0)
    >>> bool(np.allclose(cov, np.linalg.inv(X.T @ X)))
    True
    """
    s = GroupStats(X, Z, np.zeros(len(X)), groups)  # per-group Z'Z and Z'X, as the fast fitter uses
    M = sigma2 * np.eye(s.q)[None] + np.einsum("ij,gjk->gik", G, s.ZtZ)
    MinvG = np.linalg.solve(M, np.broadcast_to(G, (s.G, s.q, s.q)))
    corr = np.einsum("gqp,gqr,grs->ps", s.ZtX, MinvG, s.ZtX)
    info = (s.XtX - corr) / sigma2
    return np.linalg.pinv(info, hermitian=True)


def _statsmodels_fit(design: Design, reml, notes) -> LMMFit:
    from statsmodels.regression.mixed_linear_model import MixedLM
    scaled, groups = design.scaled, design.groups
    re_formula = design.re_formula
    model = MixedLM.from_formula(design.formula, scaled, groups=scaled[groups], re_formula=re_formula)
    fit = None
    for method in ("lbfgs", "powell", "nm"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = model.fit(reml=reml, method=method)
            except (np.linalg.LinAlgError, ValueError) as err:
                notes.append(f"statsmodels' optimiser {method} failed ({err}); trying another")
                continue
        msgs = [str(w.message) for w in caught]
        if fit.converged and not any("converge" in m.lower() for m in msgs):
            break
        notes.append(f"optimiser {method} did not converge cleanly ({'; '.join(msgs)[:200]}); trying another")
    if fit is None:
        raise ValueError("statsmodels could not fit this model with any optimiser (singular matrices); simplify "
                         "re_formula (e.g. re_formula='1') or use engine='fast'")
    cov_re = np.asarray(fit.cov_re)
    re = pd.DataFrame(fit.random_effects).T
    return LMMFit(beta=np.asarray(fit.fe_params), cov_re=cov_re,
                  cov_fe=conditional_cov_fe(design.X_s, design.Z_s, scaled[groups].to_numpy(), cov_re, fit.scale),
                  sigma2=float(fit.scale), llf=float(fit.llf), converged=bool(fit.converged), message="",
                  n_iter=0, newton_step_rel=np.nan, blup=re.to_numpy(), groups=re.index.to_numpy(),
                  re_names=list(fit.cov_re.columns),
                  at_boundary=[i for i in range(len(cov_re)) if cov_re[i, i] < 1e-10])


def _check_data(design: Design, notes):
    """Errors for data no mixed model can use; notes for data that leave it weakly determined."""
    f, g = design.frame, design.groups
    n_groups = f[g].nunique()
    if n_groups < 2:
        raise ValueError(f"a mixed model needs at least two groups, but the data hold {n_groups} value(s) of "
                         f"groups={g!r}; with one group use ordinary regression")
    sizes = f.groupby(g, sort=False).size()
    if (sizes < 2).all():
        raise ValueError(f"every group ({g}) has a single observation, so random effects cannot be told apart "
                         "from residual error; check groups= or use ordinary regression")
    bad = singular_columns(design.X_raw.T @ design.X_raw)
    if bad:
        cols = [design.names[i] for i in bad]
        raise ValueError(f"the fixed-effects design of formula={design.formula!r} is singular: "
                         f"{', '.join(cols)} are constant zero or linear combinations of each other (a level with "
                         "no observations, a covariate that never varies, or the same variable twice); simplify "
                         "the formula or drop empty levels")
    if n_groups < FEW_GROUPS:
        notes.append(f"only {n_groups} groups: random-effect variances are poorly determined with fewer than "
                     f"{FEW_GROUPS}")
    if design.Z_s.shape[1] > 1:
        varying = int((f.groupby(g, sort=False)[design.time].nunique() >= 2).sum())
        if varying < FEW_GROUPS:
            notes.append(f"only {varying} group(s) have two or more distinct values of {design.time}: too few to "
                         "estimate a random slope; consider re_formula='1'")


def _fast_fit(design: Design, reml, notes) -> LMMFit:
    est = fit_lmm(design.X_s, design.Z_s, design.y, design.scaled[design.groups].to_numpy(), reml=reml)
    if not est.converged:
        notes.append(f"the optimiser reported: {est.message}")
    if est.newton_step_rel > 1e-3:
        notes.append(f"a Newton step from the optimum would still move a variance parameter by "
                     f"{100 * est.newton_step_rel:.2g}% of its size: the likelihood is flat there and the "
                     "random-effect variances are not sharply determined")
    return est


def _prepare(study, instrument, origin):
    if hasattr(study, "analysis_frame"):
        return study.analysis_frame(instrument, origin=origin), True
    if isinstance(study, pd.DataFrame):
        return study, False
    raise TypeError(f"study must be a Study or a long DataFrame (e.g. study.analysis_frame('nrs')), "
                    f"got {type(study).__name__}")


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
    _check_data(design, notes)
    q = design.Z_s.shape[1]
    if engine == "fast" and q > 2:
        raise ValueError(f"engine='fast' handles at most two random effects per group, re_formula={re_formula!r} "
                         f"has {q}; use engine='statsmodels'")
    use_fast = engine == "fast" or (engine == "auto" and q <= 2)
    if use_fast:
        est = _fast_fit(design, reml, notes)
        eng, re_names = "fast (exact profiled likelihood, vectorised)", design.re_names
    else:
        est = _statsmodels_fit(design, reml, notes)
        eng = "statsmodels MixedLM (structure not covered by the fast engine)" if engine == "auto" else "statsmodels"
        re_names = est.re_names
    if not est.converged:
        notes.append("the model did not converge: estimates are unreliable; simplify the random effects "
                     "(re_formula='1') or check for groups with a single observation")
        warnings.warn(notes[-1], ConvergenceWarning, stacklevel=2)
    if est.at_boundary:
        notes.append("a random-effect variance is estimated at zero (boundary fit): that random effect is not "
                     "supported by the data")
    A_inv, Dinv = np.linalg.inv(design.A), np.linalg.inv(design.D)
    llf = est.llf - (np.log(abs(np.linalg.det(design.A))) if reml else 0.0)
    return MixedModelResult(
        names=design.names, re_names=re_names, beta=A_inv @ est.beta, cov_fe=A_inv @ est.cov_fe @ A_inv.T,
        cov_re=Dinv @ est.cov_re @ Dinv.T, scale=est.sigma2, llf=llf, converged=est.converged,
        blup=np.asarray(est.blup) @ Dinv.T, groups_index=est.groups, formula=formula, re_formula=re_formula,
        groups=groups, time=time, notes=notes, frame=design.frame, design=design.info, engine=eng,
        nobs=len(design.frame), reml=reml, instrument=instrument if from_study else None,
        origin=origin if from_study else None)
