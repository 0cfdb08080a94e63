"""Longitudinal linear mixed model with the names statsmodels users know.

``fit_mixed_model(frame, "score ~ day * modality + baseline", re_formula="~ day",
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
result in plain words, never swallowed (anchors D2: statsmodels #6157, lme4 #783).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy

from ._display import ResultMixin
from .exceptions import ConvergenceWarning
from .lmm_fast import GroupStats, fit_lmm

__all__ = ["fit_mixed_model", "MixedModelResult", "conditional_cov_fe"]

TIME_UNIT = 30.0


class MixedModelResult(ResultMixin):
    """Result of :func:`fit_mixed_model` (per-day units).

    Attributes
    ----------
    fe_params, bse_fe : Series
        Fixed effects and their standard errors.
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
        Plain-language diagnostics (convergence, boundary, gradient).
    """

    def __init__(self, *, names, re_names, beta, cov_fe, cov_re, scale, llf, converged, blup, groups_index,
                 formula, re_formula, groups, time, notes, frame, design, engine, nobs, reml):
        self.fe_params = pd.Series(beta, index=names)
        self.cov_fe = pd.DataFrame(cov_fe, index=names, columns=names)
        self.bse_fe = pd.Series(np.sqrt(np.diag(cov_fe)), index=names)
        self.cov_re = pd.DataFrame(cov_re, index=re_names, columns=re_names)
        self.scale, self.llf, self.converged = float(scale), float(llf), bool(converged)
        self.random_effects = pd.DataFrame(blup, index=pd.Index(groups_index, name=groups), columns=re_names)
        self.formula, self.re_formula, self.groups, self.time = formula, re_formula, groups, time
        self.notes, self._frame, self._design, self.engine = notes, frame, design, engine
        self.nobs, self.n_groups, self.reml = int(nobs), len(self.random_effects), reml

    @property
    def tvalues(self) -> pd.Series:
        return self.fe_params / self.bse_fe

    def _parts(self):
        tab = pd.DataFrame({"term": self.fe_params.index, "estimate": self.fe_params.to_numpy(),
                            "se": self.bse_fe.to_numpy(), "z": self.tvalues.to_numpy()})
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
        X = patsy.dmatrix(self._design[0], frame, return_type="dataframe")
        pred = X.to_numpy() @ self.fe_params.to_numpy()
        if include_random_effects:
            Z = (patsy.dmatrix(self._design[1], frame, return_type="dataframe").to_numpy() if self._design[1]
                 else np.ones((len(frame), 1)))
            b = self.random_effects.reindex(frame[self.groups].to_numpy()).fillna(0.0).to_numpy()
            pred = pred + (Z * b).sum(1)
        return pred


def _linear_map(X_raw, X_s):
    """A with X_raw = X_s @ A (exact when the design is linear in time)."""
    A, *_ = np.linalg.lstsq(X_s, X_raw, rcond=None)
    err = np.abs(X_s @ A - X_raw).max() if X_raw.size else 0.0
    return A, err


def conditional_cov_fe(X, Z, groups, G, sigma2):
    r""":math:`(X^T V^{-1} X)^{-1}` with :math:`V_g = Z_g G Z_g^T + \sigma^2 I`, as lme4's ``vcov``.

    Vectorised over groups with the Woodbury identity
    :math:`V_g^{-1} = \sigma^{-2}[I - Z_g(\sigma^2 I + G Z_g^T Z_g)^{-1} G Z_g^T]`,
    valid for a singular ``G`` (boundary fits): no Python loop over groups.
    """
    s = GroupStats(X, Z, np.zeros(len(X)), groups)  # per-group Z'Z and Z'X, as the fast fitter uses
    M = sigma2 * np.eye(s.q)[None] + np.einsum("ij,gjk->gik", G, s.ZtZ)
    MinvG = np.linalg.solve(M, np.broadcast_to(G, (s.G, s.q, s.q)))
    corr = np.einsum("gqp,gqr,grs->ps", s.ZtX, MinvG, s.ZtX)
    info = (s.XtX - corr) / sigma2
    return np.linalg.inv(info)


def _statsmodels_fit(formula, scaled, groups, re_formula, reml, X_s, Z_s, notes):
    from statsmodels.regression.mixed_linear_model import MixedLM
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
    cov_re = np.asarray(fit.cov_re)
    re = pd.DataFrame(fit.random_effects).T
    return {"beta": np.asarray(fit.fe_params), "cov_re": cov_re,
            "cov_fe": conditional_cov_fe(X_s, Z_s, scaled[groups].to_numpy(), cov_re, fit.scale),
            "sigma2": float(fit.scale), "llf": float(fit.llf), "converged": bool(fit.converged),
            "blup": re.to_numpy(), "groups": re.index.to_numpy(), "re_names": list(fit.cov_re.columns),
            "newton_step_rel": np.nan, "at_boundary": [i for i in range(len(cov_re)) if cov_re[i, i] < 1e-10]}


def fit_mixed_model(data, formula: str = "score ~ day * modality + baseline", re_formula: str | None = "~ day",
                    groups: str = "episode_id", reml: bool = True, instrument: str = "nrs",
                    origin: str = "onset", time: str = "day", engine: str = "auto") -> MixedModelResult:
    """Fit a linear mixed model for repeated scores.

    Parameters
    ----------
    data : DataFrame or Study
        A long frame (e.g. ``study.analysis_frame("nrs")``); a Study is
        converted with ``analysis_frame(instrument, origin)`` (origin
        ``"onset"`` by default, as everywhere).
    formula : str
        Fixed effects (patsy), e.g. ``"score ~ day * modality + baseline"``.
    re_formula : str or None
        ``"~ day"`` (random intercept and slope) or ``"1"``/None (intercept).
    groups : str
    reml : bool
    time : str
        The time column that is rescaled for the optimiser.
    engine : {"auto", "fast", "statsmodels"}
        ``"auto"`` uses the fast exact fitter for up to two random effects.

    Returns
    -------
    MixedModelResult with ``fe_params``, ``bse_fe``, ``cov_re``, ``scale``,
    ``llf``, ``converged``, ``random_effects``, ``summary()``, ``predict()``.

    Notes
    -----
    Missing data: rows with a missing value in any model variable are
    dropped (listwise, as statsmodels and lme4 do); the count is in ``notes``.
    Estimates equal R lme4 and statsmodels MixedLM (tests/test_mixed.py).

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
    re_formula = None if re_formula in (None, "1", "~1", "~ 1") else re_formula
    needed = [c for c in data.columns if c in formula or (re_formula and c in re_formula) or c == groups]
    frame = data.dropna(subset=needed).reset_index(drop=True)
    notes = []
    if len(frame) < len(data):
        notes.append(f"{len(data) - len(frame)} row(s) with missing values were left out (listwise deletion)")
    scaled = frame.assign(**{time: frame[time] / TIME_UNIT})
    y_raw, X_raw = patsy.dmatrices(formula, frame, return_type="dataframe")
    y_s, X_s = patsy.dmatrices(formula, scaled, return_type="dataframe")
    A, err = _linear_map(X_raw.to_numpy(), X_s.to_numpy())
    if err > 1e-8:
        raise ValueError("the fixed-effects formula is not linear in time, so it cannot be rescaled exactly; "
                         "use a time column already in suitable units")
    A_inv = np.linalg.inv(A)
    if re_formula:
        Z_raw_m = patsy.dmatrix(re_formula, frame, return_type="dataframe")
        Z_raw, Z_s = Z_raw_m.to_numpy(), patsy.dmatrix(re_formula, scaled, return_type="dataframe").to_numpy()
        D, _ = _linear_map(Z_raw, Z_s)
        re_names = ["Group" if c == "Intercept" else c for c in Z_raw_m.columns]
    else:
        Z_raw = Z_s = np.ones((len(frame), 1))
        D, re_names = np.eye(1), ["Group"]
    use_fast = engine == "fast" or (engine == "auto" and Z_s.shape[1] <= 2)
    if engine == "fast" and Z_s.shape[1] > 2:
        raise ValueError("the fast engine handles at most two random effects per group; use engine='statsmodels'")
    if use_fast:
        est = fit_lmm(X_s.to_numpy(), Z_s, y_s.to_numpy()[:, 0], scaled[groups].to_numpy(), reml=reml)
        est["re_names"] = re_names
        if not est["converged"]:
            notes.append(f"the optimiser reported: {est['message']}")
        if est["newton_step_rel"] > 1e-3:
            notes.append(f"a Newton step from the optimum would still move a variance parameter by "
                         f"{100 * est['newton_step_rel']:.2g}% of its size: the likelihood is flat there and the "
                         "random-effect variances are not sharply determined")
        eng = "fast (exact profiled likelihood, vectorised)"
    else:
        est = _statsmodels_fit(formula, scaled, groups, re_formula, reml, X_s.to_numpy(), Z_s, notes)
        eng = "statsmodels MixedLM (structure not covered by the fast engine)" if engine == "auto" else "statsmodels"
    if not est["converged"]:
        notes.append("the model did not converge: estimates are unreliable; simplify the random effects "
                     "(re_formula='1') or check for groups with a single observation")
        warnings.warn(notes[-1], ConvergenceWarning, stacklevel=2)
    if est["at_boundary"]:
        notes.append("a random-effect variance is estimated at zero (boundary fit): that random effect is not "
                     "supported by the data")
    Dinv = np.linalg.inv(D)
    llf = est["llf"] - (np.log(abs(np.linalg.det(A))) if reml else 0.0)
    design = (X_raw.design_info, Z_raw_m.design_info if re_formula else None)
    return MixedModelResult(
        names=list(X_raw.columns), re_names=est["re_names"] if not use_fast else re_names,
        beta=A_inv @ est["beta"], cov_fe=A_inv @ est["cov_fe"] @ A_inv.T, cov_re=Dinv @ est["cov_re"] @ Dinv.T,
        scale=est["sigma2"], llf=llf, converged=est["converged"], blup=np.asarray(est["blup"]) @ Dinv.T,
        groups_index=est["groups"], formula=formula, re_formula=re_formula, groups=groups, time=time,
        notes=notes, frame=frame, design=design, engine=eng, nobs=len(frame), reml=reml)
