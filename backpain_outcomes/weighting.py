"""Inverse-probability-of-treatment weighting: propensity model, weights, balance, weighted and doubly robust means.

The numerical core of :func:`~backpain_outcomes.adjusted.weighted_comparison`,
on arrays (no Study):

* :func:`fit_propensity`: multinomial logistic regression of the treatment
  group on the covariates (statsmodels ``MNLogit``; a binary logit when
  there are two groups), the generalised propensity score of Imbens 2000
  (Biometrika 87:706-710).
* :func:`ipt_weights`: ``"ATE"`` weights :math:`1/e_{A_i}(X_i)` (the whole
  population) or ``"ATT"`` weights :math:`e_t(X_i)/e_{A_i}(X_i)` (the
  population that received modality *t*), optionally truncated at
  percentiles (Cole & Hernán 2008, Am J Epidemiol 168:656-664).
* :func:`balance_table`: standardised mean differences before and after
  weighting, with the unweighted pooled SD as denominator and 0.1 as the
  threshold of balance (Austin 2009, Stat Med 28:3083-3107; Austin & Stuart
  2015, Stat Med 34:3661-3679).
* :func:`ipw_means`: normalised (Hájek) weighted means per group with a
  sandwich covariance from the stacked estimating equations of the propensity
  model and the means, so the estimation of the propensity score is
  accounted for (Lunceford & Davidian 2004, Stat Med 23:2937-2960); clustered
  by patient when a patient has several episodes.
* :func:`aipw_means`: augmented IPW (doubly robust) means with per-group
  logistic outcome models (weakly penalised, a ridge of 0.1, so that they
  stay finite when a small group's outcome is separated by the covariates) (Robins, Rotnitzky & Zhao 1994; Bang & Robins 2005,
  Biometrics 61:962-973) and influence-function standard errors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

__all__ = ["PropensityFit", "fit_propensity", "ipt_weights", "balance_table", "ipw_means", "aipw_means",
           "ridge_logit", "ESTIMANDS", "SMD_THRESHOLD", "OUTCOME_RIDGE"]

ESTIMANDS = ("ATE", "ATT")
SMD_THRESHOLD = 0.1
#: ridge penalty of the doubly robust outcome models on each standardised coefficient (not the intercept)
OUTCOME_RIDGE = 0.1


def ridge_logit(X: np.ndarray, y: np.ndarray, ridge: float, maxiter: int = 100):
    """Logistic regression with a ridge penalty on every coefficient but the intercept (first column of ``X``).

    Newton-Raphson on :math:`\\ell(\\beta) - \\tfrac{\\lambda}{2} \\lVert \\beta_{-0} \\rVert^2`; the
    penalty keeps the estimate finite under separation. Returns ``(beta, penalised information, converged,
    iterations)``.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> beta, _, ok, _ = ridge_logit(X, np.array([0.0, 0.0, 1.0, 1.0]), 0.1)  # separated: finite with a ridge
    >>> ok, bool(np.isfinite(beta).all())
    (True, True)
    """
    pen = np.diag(np.r_[0.0, np.full(X.shape[1] - 1, ridge)])
    beta = np.zeros(X.shape[1])
    for it in range(maxiter):
        prob = 1 / (1 + np.exp(-np.clip(X @ beta, -35, 35)))
        info = (X * (prob * (1 - prob))[:, None]).T @ X + pen
        step = np.linalg.solve(info, X.T @ (y - prob) - pen @ beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            return beta, info, True, it + 1
    return beta, info, False, maxiter


@dataclass
class PropensityFit:
    """Fitted generalised propensity scores.

    ``probs`` is n x K (column k: probability of group k; group 0 is the
    reference of the multinomial model), ``params`` p x (K - 1).
    """

    probs: np.ndarray
    params: np.ndarray
    converged: bool
    notes: list = field(default_factory=list)


def fit_propensity(X: np.ndarray, group: np.ndarray, n_groups: int) -> PropensityFit:
    """Multinomial logistic regression of ``group`` (codes 0..K-1) on ``X`` (with an intercept column).

    Warnings of the optimiser are caught and returned in ``notes``; a fit
    that does not converge has ``converged=False``.
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            if n_groups == 2:
                res = sm.Logit(group.astype(float), X).fit(method="newton", maxiter=200, disp=False)
                p1 = np.asarray(res.predict(X), float)
                probs, params = np.column_stack([1 - p1, p1]), np.asarray(res.params, float).reshape(-1, 1)
            else:
                res = sm.MNLogit(group, X).fit(method="newton", maxiter=200, disp=False)
                probs, params = np.asarray(res.predict(X), float), np.asarray(res.params, float)
            converged = bool(res.mle_retvals.get("converged", False))
        except (np.linalg.LinAlgError, ValueError) as err:  # singular information matrix, separation
            notes.append(f"the propensity model could not be fitted ({type(err).__name__}: {err}); the groups are "
                         "separated by the covariates or a covariate is constant within the data")
            probs = np.full((len(group), n_groups), np.nan)
            params, converged = np.full((X.shape[1], n_groups - 1), np.nan), False
    for text in dict.fromkeys(str(w.message) for w in caught):
        notes.append(f"propensity model: {text}")
    if not converged and np.isfinite(probs).all():
        notes.append("the propensity model did not converge (Newton, 200 iterations); its weights may be extreme")
    if np.isfinite(probs).all() and (probs.min() < 1e-8):
        notes.append("some fitted propensities are practically 0 (quasi-separation): the covariates almost "
                     "determine the treatment group for some episodes")
    return PropensityFit(probs, params, converged, notes)


def ipt_weights(probs: np.ndarray, group: np.ndarray, estimand: str = "ATE", target: int | None = None,
                trim: float | None = None, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weights and the derivative factor of their logarithm, per episode.

    Returns ``(w, g)``: ``w`` the weights; ``g`` (n x (K - 1)) the factor
    with :math:`\\partial \\log w_i / \\partial \\beta_k = g_{ik} x_i`, zero for
    truncated weights. With ``trim`` the weights are truncated at the
    ``trim`` and ``1 - trim`` quantiles of the weights of the episodes in
    ``among`` (default: all). ATE: :math:`w = 1/e_{A}`, :math:`g_k = -(1\\{A=k\\} - e_k)`;
    ATT for group ``target`` t: :math:`w = e_t/e_A`, :math:`g_k = 1\\{t=k\\} - 1\\{A=k\\}`.

    Examples
    --------
    >>> probs = np.array([[0.5, 0.5], [0.8, 0.2], [0.25, 0.75]])
    >>> ipt_weights(probs, np.array([0, 1, 1]))[0].tolist()
    [2.0, 5.0, 1.3333333333333333]
    """
    n, k = probs.shape
    own = probs[np.arange(n), group]
    onehot = np.eye(k)[group][:, 1:]
    if estimand == "ATE":
        w, g = 1.0 / own, -(onehot - probs[:, 1:])
    else:
        w = probs[:, target] / own
        g = np.eye(k)[target][1:][None, :] - onehot
    if trim is not None:
        lo, hi = np.quantile(w if among is None else w[among], [trim, 1 - trim])
        cut = (w < lo) | (w > hi)
        w, g = np.clip(w, lo, hi), np.where(cut[:, None], 0.0, g)
    return w, g


def _smd(x, in_m, in_r, w):
    sd = np.sqrt((x[in_m].var(ddof=1) + x[in_r].var(ddof=1)) / 2) if in_m.sum() > 1 and in_r.sum() > 1 else np.nan
    before = x[in_m].mean() - x[in_r].mean()
    after = np.average(x[in_m], weights=w[in_m]) - np.average(x[in_r], weights=w[in_r])
    if not np.isfinite(sd) or sd == 0:
        return (0.0, 0.0) if abs(before) < 1e-12 and abs(after) < 1e-12 else (np.nan, np.nan)
    return before / sd, after / sd


def balance_table(Z: pd.DataFrame, group: np.ndarray, weights: dict, names: list, reference: int = 0) -> pd.DataFrame:
    """Standardised mean differences of every column of ``Z`` between each group and ``reference``.

    Parameters
    ----------
    Z : DataFrame
        Covariates, numeric columns and one 0/1 column per level of each
        categorical covariate.
    group : array of int
    weights : dict
        ``{group code: weights of every episode}`` used for the comparison of
        that group with the reference (the ATE weights for every group, or
        the ATT weights of each target group).
    names : list of str
        Group codes -> names.

    Returns
    -------
    DataFrame with ``modality``, ``reference``, ``covariate``,
    ``mean_modality``, ``mean_reference``, ``weighted_mean_modality``,
    ``weighted_mean_reference``, ``smd_before``, ``smd_after``, ``balanced``
    (``|smd_after| < 0.1``).

    Examples
    --------
    >>> Z = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> t = balance_table(Z, np.array([0, 0, 1, 1]), {1: np.ones(4)}, ["a", "b"])
    >>> round(t["smd_before"].item(), 4)  # (3.5 - 1.5) / sqrt((0.5 + 0.5) / 2)
    2.8284
    """
    rows = []
    in_r = group == reference
    for code, w in weights.items():
        in_m = group == code
        for col in Z.columns:
            x = Z[col].to_numpy(float)
            before, after = _smd(x, in_m, in_r, w)
            rows.append({"modality": names[code], "reference": names[reference], "covariate": col,
                         "mean_modality": x[in_m].mean(), "mean_reference": x[in_r].mean(),
                         "weighted_mean_modality": np.average(x[in_m], weights=w[in_m]),
                         "weighted_mean_reference": np.average(x[in_r], weights=w[in_r]),
                         "smd_before": before, "smd_after": after,
                         "balanced": bool(np.isfinite(after) and abs(after) < SMD_THRESHOLD)})
    return pd.DataFrame(rows)


def _cluster_sum(psi: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    if cluster is None:
        return psi
    codes = pd.factorize(cluster)[0]
    out = np.zeros((codes.max() + 1, psi.shape[1]))
    np.add.at(out, codes, psi)
    return out


def ipw_means(y: np.ndarray, group: np.ndarray, X: np.ndarray, probs: np.ndarray, w: np.ndarray, g: np.ndarray,
              groups: list[int], cluster: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hájek weighted means of ``y`` in ``groups`` and their sandwich covariance.

    The estimating equations stack the multinomial-logit score
    :math:`x_i (1\\{A_i=k\\} - e_k(x_i))` and
    :math:`1\\{A_i=a\\} w_i (y_i - \\mu_a)`; the covariance is
    :math:`A^{-1} B A^{-T}` with :math:`A` the derivative of the equations
    (through the weights' dependence on the propensity parameters) and
    :math:`B` the outer product of the (cluster-summed) equations.

    Returns
    -------
    (means, covariance) over ``groups``.
    """
    n, p = X.shape
    km1 = probs.shape[1] - 1
    onehot = np.eye(km1 + 1)[group][:, 1:]
    resid_ps = onehot - probs[:, 1:]
    score = (resid_ps[:, :, None] * X[:, None, :]).reshape(n, km1 * p)  # block k: x (1{A=k} - e_k)
    q, m = km1 * p, len(groups)
    mu = np.array([np.average(y[group == a], weights=w[group == a]) for a in groups])
    psi = np.zeros((n, q + m))
    psi[:, :q] = score
    bread = np.zeros((q + m, q + m))
    e = probs[:, 1:]
    d = (e[:, :, None] * (np.eye(km1)[None] - e[:, None, :]))  # diag(e) - e e^T
    bread[:q, :q] = np.einsum("ikl,ir,is->krls", d, X, X).reshape(q, q) / n
    for j, a in enumerate(groups):
        ina = (group == a).astype(float)
        r = ina * w * (y - mu[j])
        psi[:, q + j] = r
        bread[q + j, q + j] = (ina * w).sum() / n
        bread[q + j, :q] = -((r[:, None, None] * g[:, :, None] * X[:, None, :]).reshape(n, q)).sum(0) / n
    s = _cluster_sum(psi, cluster)
    meat = s.T @ s / n
    try:
        inv = np.linalg.inv(bread)
    except np.linalg.LinAlgError:
        return mu, np.full((m, m), np.nan)
    cov = inv @ meat @ inv.T / n
    return mu, cov[q:, q:]


def aipw_means(y: np.ndarray, group: np.ndarray, X: np.ndarray, w: np.ndarray, target_weight: np.ndarray,
               groups: list[int], cluster: np.ndarray | None = None, min_events: int = 5):
    """Doubly robust (augmented IPW) means with per-group logistic outcome models.

    :math:`\\hat\\mu_a = \\frac{\\sum_i \\pi_i \\hat m_a(x_i)}{\\sum_i \\pi_i} +
    \\frac{\\sum_{A_i=a} w_i (y_i - \\hat m_a(x_i))}{\\sum_{A_i=a} w_i}` with
    :math:`\\pi_i` the target population (1 for the ATE, :math:`1\\{A_i=t\\}`
    for the ATT) and the variance from the influence function (outcome and
    propensity models treated as known).

    Returns
    -------
    (means, covariance, notes as (group, text) pairs); NaN where an outcome
    model is not feasible (fewer than ``min_events`` outcomes or non-outcomes
    in the group, or a fit that fails or does not converge).
    """
    n = len(y)
    notes: list[tuple[int, str]] = []
    mu = np.full(len(groups), np.nan)
    infl = np.zeros((n, len(groups)))
    pibar = target_weight.mean()
    for j, a in enumerate(groups):
        ina = group == a
        ya = y[ina]
        if min(ya.sum(), (1 - ya).sum()) < min_events:
            notes.append((a, f"fewer than {min_events} outcomes or non-outcomes for its outcome model"))
            continue
        try:
            beta, _, ok, _ = ridge_logit(X[ina], ya, OUTCOME_RIDGE)
        except np.linalg.LinAlgError as err:
            notes.append((a, f"the outcome model failed ({err})"))
            continue
        if not ok:
            notes.append((a, "the outcome model did not converge"))
            continue
        pred = 1 / (1 + np.exp(-np.clip(X @ beta, -35, 35)))
        t1 = np.sum(target_weight * pred) / target_weight.sum()
        r = ina * w * (y - pred)
        wbar = (ina * w).mean()
        t2 = r.sum() / (ina * w).sum()
        mu[j] = t1 + t2
        infl[:, j] = target_weight * (pred - t1) / pibar + ina * w * (y - pred - t2) / wbar
    s = _cluster_sum(infl, cluster)
    cov = s.T @ s / n**2
    bad = ~np.isfinite(mu)
    cov[bad, :], cov[:, bad] = np.nan, np.nan
    return mu, cov, notes
