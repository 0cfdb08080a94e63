"""How a linear mixed model is fitted: the fast exact engine, statsmodels' MixedLM, and lme4's covariance.

Both engines work on the rescaled design of
:func:`~backpain_outcomes.mixed_design.build_design` and return an
:class:`~backpain_outcomes.lmm_fast.LMMFit`; problems are appended to the
caller's ``notes`` in plain words. The covariance of the fixed effects is the
conditional :math:`\\sigma^2 (X^TV^{-1}X)^{-1}` of lme4's ``vcov``
(:func:`conditional_cov_fe`) for both engines.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .lmm_fast import GroupStats, LMMFit, fit_lmm, fit_lmm_stats
from .mixed_design import Design

__all__ = ["conditional_cov_fe", "fit_fast", "fit_fast_stats", "fit_statsmodels"]


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


def fit_statsmodels(design: Design, reml: bool, notes: list) -> LMMFit:
    """Fit ``design`` with statsmodels' MixedLM (any random-effects structure), on the rescaled time scale.

    Tries the optimisers lbfgs, powell and nm in turn until one converges
    without a convergence warning; every failure is appended to ``notes``.
    The covariance of the fixed effects is the conditional one of
    :func:`conditional_cov_fe` (as lme4), not statsmodels' joint one.

    Examples
    --------
    A balanced random-intercept design, where both engines give the least-squares line:

    >>> from backpain_outcomes.mixed_design import build_design
    >>> frame = pd.DataFrame({"score": [5.0, 4.1, 6.2, 3.0, 5.5, 4.4], "day": [0.0, 30.0] * 3, "g": [1, 1, 2, 2, 3, 3]})
    >>> design = build_design(frame, "score ~ day", None, "g", "day", 30.0, [])
    >>> bool(np.allclose(fit_statsmodels(design, True, []).beta, fit_fast(design, True, []).beta))
    True
    """
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


def fit_fast(design: Design, reml: bool, notes: list) -> LMMFit:
    """Fit ``design`` with the exact profiled (RE)ML of :func:`~backpain_outcomes.lmm_fast.fit_lmm`.

    On the rescaled time scale, for at most two random effects per group. An
    optimiser message and a flat likelihood at the optimum (a Newton step would
    still move a variance parameter by more than 0.1%) are appended to ``notes``.

    Examples
    --------
    >>> from backpain_outcomes.mixed_design import build_design
    >>> data = pd.DataFrame({"score": [5.0, 4.1, 6.2, 3.0, 5.5, 4.4], "day": [0.0, 30.0] * 3, "g": [1, 1, 2, 2, 3, 3]})
    >>> notes = []
    >>> fit = fit_fast(build_design(data, "score ~ day", None, "g", "day", 30.0, notes), True, notes)
    >>> fit.beta.round(3).tolist(), fit.converged, notes  # intercept, change per 30 days
    ([5.567, -1.733], True, [])
    """
    return _noted(fit_lmm(design.X_s, design.Z_s, design.y, design.scaled[design.groups], reml=reml), notes)


def fit_fast_stats(stats: GroupStats, reml: bool, notes: list) -> LMMFit:
    """:func:`fit_fast` from the sufficient statistics of the rescaled design (e.g. merged from partitions
    with :meth:`~backpain_outcomes.lmm_fast.GroupStats.merge`); the same optimiser and notes."""
    return _noted(fit_lmm_stats(stats, reml), notes)


def _noted(est: LMMFit, notes: list) -> LMMFit:
    """``est``, with its optimiser message and a flat likelihood at the optimum appended to ``notes``."""
    if not est.converged:
        notes.append(f"the optimiser reported: {est.message}")
    if est.newton_step_rel > 1e-3:
        notes.append(f"a Newton step from the optimum would still move a variance parameter by "
                     f"{100 * est.newton_step_rel:.2g}% of its size: the likelihood is flat there and the "
                     "random-effect variances are not sharply determined")
    return est
