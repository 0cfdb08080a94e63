"""Longitudinal linear mixed model with the names statsmodels users know.

``fit_mixed_model(frame, "score ~ day * modality + baseline", re_formula="~ day",
groups="episode_id")`` fits a random-intercept (and slope) model by REML or
ML. Time in days (0-1000) makes the optimiser ill-conditioned (lme4 itself
fails to converge on raw days); the model is therefore fitted with time in
units of 30 days and every estimate is transformed back exactly to per-day
units: fixed effects through the linear map between the two design matrices,
random-effect covariances through ``diag(1, 30)``.

Engine: statsmodels ``MixedLM`` (lbfgs, then Powell/Nelder-Mead if it does
not converge). Convergence problems and boundary fits are reported on the
result in plain words, never swallowed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLM

from ._display import ResultMixin
from .exceptions import ConvergenceWarning

__all__ = ["fit_mixed_model", "MixedModelResult"]

TIME_UNIT = 30.0


class MixedModelResult(ResultMixin):
    """Result of :func:`fit_mixed_model` (per-day units).

    Attributes
    ----------
    fe_params, bse_fe : Series
        Fixed effects and their standard errors.
    cov_re : DataFrame
        Covariance of the random effects.
    scale : float
        Residual variance.
    llf : float
        Log-likelihood (REML criterion when ``reml=True``), unaffected by the
        time rescaling apart from the Jacobian constant reported in ``notes``.
    converged : bool
    random_effects : DataFrame
        BLUPs per group.
    notes : list of str
    """

    def __init__(self, fit, A_inv, D, formula, re_formula, groups, time, notes, frame, design, cov_fe):
        self._fit = fit
        self._design = design
        names = fit.model.exog_names
        fe = np.asarray(fit.fe_params)
        self.fe_params = pd.Series(A_inv @ fe, index=names)
        self.cov_fe = pd.DataFrame(A_inv @ cov_fe @ A_inv.T, index=names, columns=names)
        self.bse_fe = pd.Series(np.sqrt(np.diag(self.cov_fe)), index=names)
        re_names = list(fit.cov_re.columns)
        Dinv = np.linalg.inv(D)
        self.cov_re = pd.DataFrame(Dinv @ np.asarray(fit.cov_re) @ Dinv.T, index=re_names, columns=re_names)
        self.scale = float(fit.scale)
        self.llf = float(fit.llf)
        self.converged = bool(fit.converged)
        re = pd.DataFrame(fit.random_effects).T
        self.random_effects = pd.DataFrame(re.to_numpy() @ Dinv.T, index=re.index, columns=re_names)
        self.formula, self.re_formula, self.groups, self.time = formula, re_formula, groups, time
        self.notes = notes
        self.nobs = int(fit.nobs)
        self.n_groups = len(self.random_effects)
        self._frame = frame

    def _parts(self):
        tab = pd.DataFrame({"term": self.fe_params.index, "estimate": self.fe_params.to_numpy(),
                            "se": self.bse_fe.to_numpy()})
        tab["z"] = tab["estimate"] / tab["se"]
        cre = self.cov_re.reset_index().rename(columns={"index": "random effect"})
        lines = [f"{self.formula}; random: {self.re_formula} | {self.groups}",
                 f"{self.nobs} observations in {self.n_groups} groups; residual variance {self.scale:.4g}; "
                 f"log-likelihood {self.llf:.4f}; converged: {self.converged}", *self.notes]
        return "Linear mixed model (per-day units)", lines, {"Fixed effects": tab, "Random-effect covariance": cre}

    def predict(self, frame=None, include_random_effects: bool = True) -> np.ndarray:
        """Predictions; with ``include_random_effects`` the group BLUPs are added
        (groups not seen in the fit get the population prediction)."""
        frame = self._frame if frame is None else frame
        import patsy
        X = patsy.dmatrix(self._design[0], frame, return_type="dataframe")
        pred = X.to_numpy() @ self.fe_params.to_numpy()
        if include_random_effects:
            Z = patsy.dmatrix(self._design[1], frame, return_type="dataframe").to_numpy() if self.re_formula \
                else np.ones((len(frame), 1))
            b = self.random_effects.reindex(frame[self.groups].to_numpy()).fillna(0.0).to_numpy()
            pred = pred + (Z * b).sum(1)
        return pred


def _linear_map(X_raw, X_s):
    """A with X_raw = X_s @ A (exact when the design is linear in time)."""
    A, *_ = np.linalg.lstsq(X_s, X_raw, rcond=None)
    err = np.abs(X_s @ A - X_raw).max() if X_raw.size else 0.0
    return A, err


def fit_mixed_model(data, formula: str = "score ~ day * modality + baseline", re_formula: str | None = "~ day",
                    groups: str = "episode_id", reml: bool = True, instrument: str = "nrs",
                    origin: str = "first_contact", time: str = "day") -> MixedModelResult:
    """Fit a linear mixed model for repeated scores.

    Parameters
    ----------
    data : DataFrame or Study
        A long frame (e.g. ``study.analysis_frame("nrs")``); a Study is
        converted with ``analysis_frame(instrument, origin)``.
    formula : str
        Fixed effects (patsy), e.g. ``"score ~ day * modality + baseline"``.
    re_formula : str or None
        ``"~ day"`` (random intercept and slope) or ``"1"``/None (intercept).
    groups : str
    reml : bool
    time : str
        The time column that is rescaled for the optimiser.

    Returns
    -------
    MixedModelResult with ``fe_params``, ``bse_fe``, ``cov_re``, ``scale``,
    ``llf``, ``converged``, ``random_effects``, ``summary()``, ``predict()``.

    Notes
    -----
    Missing data: rows with a missing value in any model variable are
    dropped (listwise, as statsmodels and lme4 do); the count is in ``notes``.
    Per-day estimates equal those of a fit on raw days (tested against
    statsmodels on raw days and against R lme4).

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> study = bpo.load_study(bpo.example_path())
    >>> m = bpo.fit_mixed_model(study.analysis_frame("nrs", origin="first_contact"), "score ~ day + baseline")
    >>> "day" in m.fe_params.index
    True
    """
    if hasattr(data, "analysis_frame"):
        data = data.analysis_frame(instrument, origin=origin)
    import patsy
    re_formula = None if re_formula in (None, "1", "~1", "~ 1") else re_formula
    needed = [c for c in data.columns if c in formula or (re_formula and c in re_formula) or c == groups]
    frame = data.dropna(subset=needed).reset_index(drop=True)
    notes = []
    if len(frame) < len(data):
        notes.append(f"{len(data) - len(frame)} row(s) with missing values were left out (listwise deletion)")
    scaled = frame.assign(**{time: frame[time] / TIME_UNIT})
    y_raw, X_raw = patsy.dmatrices(formula, frame, return_type="dataframe")
    _, X_s = patsy.dmatrices(formula, scaled, return_type="dataframe")
    A, err = _linear_map(X_raw.to_numpy(), X_s.to_numpy())
    if err > 1e-8:
        raise ValueError("the fixed-effects formula is not linear in time, so it cannot be rescaled exactly; "
                         "use a time column already in suitable units")
    A_inv = np.linalg.inv(A)
    if re_formula:
        Z_raw = patsy.dmatrix(re_formula, frame, return_type="dataframe").to_numpy()
        Z_s = patsy.dmatrix(re_formula, scaled, return_type="dataframe").to_numpy()
        D, _ = _linear_map(Z_raw, Z_s)
    else:
        D = np.eye(1)
    model = MixedLM.from_formula(formula, scaled, groups=scaled[groups], re_formula=re_formula)
    fit = None
    for method in ("lbfgs", "powell", "nm"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = model.fit(reml=reml, method=method)
        msgs = [str(w.message) for w in caught]
        if fit.converged and not any("converge" in m.lower() for m in msgs):
            break
        notes.append(f"optimiser {method} did not converge cleanly ({'; '.join(msgs)[:200]}); trying another")
    if not fit.converged:
        notes.append("the model did not converge: estimates are unreliable; simplify the random effects "
                     "(re_formula='1') or check for groups with a single observation")
        warnings.warn(notes[-1], ConvergenceWarning, stacklevel=2)
    cov_re = np.asarray(fit.cov_re)
    if np.any(np.diag(cov_re) < 1e-8 * max(fit.scale, 1e-12)):
        notes.append("a random-effect variance is estimated at zero (boundary fit): that random effect is not "
                     "supported by the data")
    Z_s = Z_s if re_formula else np.ones((len(frame), 1))
    cov_fe = conditional_cov_fe(X_s.to_numpy(), Z_s, scaled[groups].to_numpy(), np.asarray(fit.cov_re), fit.scale)
    design = (X_raw.design_info, patsy.dmatrix(re_formula, frame).design_info if re_formula else None)
    return MixedModelResult(fit, A_inv, D, formula, re_formula, groups, time, notes, frame, design, cov_fe)


def conditional_cov_fe(X, Z, groups, G, sigma2):
    r""":math:`(X^T V^{-1} X)^{-1}` with :math:`V_g = Z_g G Z_g^T + \sigma^2 I`, as lme4's ``vcov``.

    Vectorised over groups with the Woodbury identity
    :math:`V_g^{-1} = \sigma^{-2}[I - Z_g(\sigma^2 I + G Z_g^T Z_g)^{-1} G Z_g^T]`,
    valid for a singular ``G`` (boundary fits): no Python loop over groups.
    """
    codes, uniq = pd.factorize(groups)
    n_g, p, q = len(uniq), X.shape[1], Z.shape[1]
    XtZ = np.zeros((n_g, p, q))
    ZtZ = np.zeros((n_g, q, q))
    np.add.at(XtZ, codes, X[:, :, None] * Z[:, None, :])
    np.add.at(ZtZ, codes, Z[:, :, None] * Z[:, None, :])
    M = sigma2 * np.eye(q)[None] + np.einsum("ij,gjk->gik", G, ZtZ)
    MinvG = np.linalg.solve(M, np.broadcast_to(G, (n_g, q, q)))
    corr = np.einsum("gpq,gqr,gsr->ps", XtZ, MinvG, XtZ)
    info = (X.T @ X - corr) / sigma2
    return np.linalg.inv(info)
