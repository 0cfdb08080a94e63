"""Recovery curves: exponential decay to a plateau, per group and per episode.

.. math:: y(t) = \\mathrm{plateau} + (b_0 - \\mathrm{plateau})\\, e^{-t/\\tau},
          \\qquad t_{1/2} = \\tau \\ln 2

fitted by least squares over every measurement (baseline included), on the
instrument's own scale (or 0-100 with ``scale="100"``). Costa et al. 2012
(CMAJ 184:E613) describe the natural course with this shape: a marked
improvement in the first 6 weeks that then slows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._display import ResultMixin
from .exceptions import ConvergenceWarning, SmallSampleWarning

__all__ = ["fit_recovery_curves", "RecoveryCurves", "exp_plateau", "profile_start"]

TAU_BOUNDS = (0.5, 5000.0)
_TAU_GRID = np.geomspace(1.0, 2000.0, 60)


def exp_plateau(t, b0, plateau, tau):
    """The recovery curve :math:`plateau + (b_0 - plateau) e^{-t/tau}`."""
    return plateau + (b0 - plateau) * np.exp(-np.asarray(t, float) / tau)


def profile_start(t, y, grid=_TAU_GRID):
    """Starting values by profiling: for each tau on a grid, (b0, plateau) by
    linear least squares; return the best ``(b0, plateau, tau)``."""
    best = (np.nan, np.nan, np.nan, np.inf)
    for tau in grid:
        e = np.exp(-t / tau)
        X = np.column_stack([e, 1 - e])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        sse = float(np.sum((y - X @ coef) ** 2))
        if sse < best[3]:
            best = (coef[0], coef[1], tau, sse)
    return best[:3]


def _jac(t, b0, plateau, tau):
    e = np.exp(-t / tau)
    return np.column_stack([e, 1 - e, (b0 - plateau) * e * t / tau**2])


def _fit_group(t, y, clusters, n_boot=0, rng=None, progress=None):
    start = profile_start(t, y)
    lo = [-np.inf, -np.inf, TAU_BOUNDS[0]]
    hi = [np.inf, np.inf, TAU_BOUNDS[1]]
    x0 = np.clip(start, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    res = optimize.least_squares(lambda p: exp_plateau(t, *p) - y, x0, jac=lambda p: _jac(t, *p),
                                 bounds=(lo, hi), method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    theta = res.x
    notes = []
    at_bound = np.isclose(theta[2], TAU_BOUNDS, rtol=1e-6).any()
    if at_bound:
        notes.append(f"tau hit its bound ({theta[2]:.3g} days): no visible decay within follow-up")
    if not res.success:
        notes.append(f"least squares did not converge: {res.message}")
    J = _jac(t, *theta)
    r = y - exp_plateau(t, *theta)
    bread = np.linalg.pinv(J.T @ J)
    codes, uniq = pd.factorize(clusters)
    G = len(uniq)
    scores = np.zeros((G, 3))
    np.add.at(scores, codes, J * r[:, None])
    meat = scores.T @ scores
    cov = bread @ meat @ bread * G / max(G - 1, 1)
    boot = None
    if n_boot:
        rng = rng or np.random.default_rng(0)
        idx_by = pd.Series(np.arange(len(t))).groupby(codes).apply(np.asarray).tolist()
        boot = []
        for _ in range(n_boot):
            pick = rng.integers(0, G, G)
            ii = np.concatenate([idx_by[k] for k in pick])
            try:
                rb = optimize.least_squares(lambda p, ii=ii: exp_plateau(t[ii], *p) - y[ii], theta, bounds=(lo, hi),
                                            method="trf")
                boot.append(rb.x)
            except ValueError:
                continue
            if progress is not None:
                progress.update(1)
        boot = np.array(boot)
        cov = np.cov(boot.T)
    return theta, cov, res, notes, boot, float(np.sqrt(np.sum(r**2) / max(len(y) - 3, 1)))


class RecoveryCurves(ResultMixin):
    """Fitted recovery curves per group.

    Attributes
    ----------
    params : DataFrame
        Per group: ``b0``, ``plateau``, ``tau_days``, ``half_life_days`` and
        their ``_ci_low``/``_ci_high``, ``n_episodes``, ``n_scores``,
        ``residual_sd``, ``converged``, ``note``.
    cov : dict
        Covariance of (b0, plateau, tau) per group.
    """

    def __init__(self, params, cov, by, instrument, origin, se, alpha, notes):
        self.params, self.cov, self.by, self.instrument = params, cov, by, instrument
        self.origin, self.se, self.alpha, self.notes = origin, se, alpha, notes

    def _parts(self):
        cols = [*self.by, "b0", "plateau", "tau_days", "half_life_days", "half_life_days_ci_low",
                "half_life_days_ci_high", "n_episodes", "n_scores", "converged"]
        return (f"Recovery curves ({self.instrument}, origin {self.origin}, {self.se} SE)",
                ["model: score = plateau + (b0 - plateau) * exp(-day / tau)", *self.notes],
                {"Parameters": self.params[[c for c in cols if c in self.params]]})

    def predict(self, days) -> pd.DataFrame:
        """Predicted mean score per group at ``days`` with delta-method CI."""
        days = np.asarray(days, float)
        z = stats.norm.ppf(1 - self.alpha / 2)
        rows = []
        for rec in self.params.itertuples(index=False):
            if not rec.converged and np.isnan(rec.b0):
                continue
            key = tuple(getattr(rec, b) for b in self.by)
            theta = np.array([rec.b0, rec.plateau, rec.tau_days])
            J = _jac(days, *theta)
            var = np.einsum("ij,jk,ik->i", J, self.cov[key], J)
            pred = exp_plateau(days, *theta)
            sd = np.sqrt(np.maximum(var, 0))
            rows.append(pd.DataFrame({**dict(zip(self.by, key)), "day": days, "predicted": pred,
                                      "ci_low": pred - z * sd, "ci_high": pred + z * sd}))
        return pd.concat(rows, ignore_index=True)

    def plot(self, ax=None, days=None, reference: str | None = "costa2012"):
        """Curves with CI bands per group; optional natural-course reference (NRS = pain/10)."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        days = np.linspace(0, 365, 200) if days is None else np.asarray(days, float)
        pred = self.predict(days)
        groups = [((), pred)] if not self.by else list(pred.groupby(self.by, sort=True))
        for key, g in groups:
            label = ", ".join(map(str, key if isinstance(key, tuple) else (key,)))
            line, = ax.plot(g["day"], g["predicted"], label=label)
            ax.fill_between(g["day"], g["ci_low"], g["ci_high"], alpha=0.15, color=line.get_color())
        if reference and self.instrument in ("nrs", "vas"):
            from .reference import reference_curves
            ref = reference_curves(reference)
            factor = 0.1 if self.instrument == "nrs" else 1.0
            for stratum, g in ref.groupby("stratum"):
                ax.plot(g["day"], g["mean_pain_0_100"] * factor, "k--" if stratum == "acute" else "k:",
                        marker="o", ms=3, lw=1, label=f"{reference} {stratum} (natural course)")
        ax.set_xlabel(f"days since {'onset' if self.origin == 'onset' else 'first contact'}")
        ax.set_ylabel(f"mean {self.instrument.upper()}")
        ax.legend(fontsize=7)
        return ax


def fit_recovery_curves(study, by="modality", instrument: str = "nrs", origin: str = "onset",
                        scale: str | None = None, se: str = "cluster", n_boot: int = 200, seed: int = 0,
                        alpha: float = 0.05, min_episodes: int = 5, min_scores: int = 10,
                        progress: bool = True) -> RecoveryCurves:
    """Fit ``score = plateau + (b0 - plateau) * exp(-day / tau)`` per group.

    Parameters
    ----------
    study : Study
    by : str, list of str or None
        ``"modality"``, ``"chronicity"``, ``["modality", "chronicity"]``.
    instrument : str
    origin : {"onset", "first_contact"}
    scale : {None, "100"}
        ``"100"`` fits ``score_100``.
    se : {"cluster", "bootstrap"}
        Standard errors that respect repeated measures: episode-clustered
        sandwich (default) or an episode bootstrap of ``n_boot`` resamples
        (with a tqdm progress bar).
    min_episodes, min_scores : int
        Smaller groups are reported with a warning and not fitted.

    Returns
    -------
    RecoveryCurves

    Notes
    -----
    Starting values come from profiling tau over a log grid with (b0,
    plateau) solved linearly, so the fit does not depend on a user guess.
    Every measurement of the group's episodes is used, baseline included.
    CIs for tau and the half-life are symmetric on the log scale.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> curves = bpo.fit_recovery_curves(bpo.load_study(bpo.example_path()), origin="first_contact")
    >>> {"b0", "plateau", "tau_days", "half_life_days"} <= set(curves.params.columns)
    True
    """
    if se not in ("cluster", "bootstrap"):
        raise ValueError("se must be 'cluster' or 'bootstrap'")
    frame = study.analysis_frame(instrument, origin=origin, include_baseline=True, scale=scale)
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    groups = [((), frame)] if not by_cols else [
        (k if isinstance(k, tuple) else (k,), g) for k, g in frame.groupby(by_cols, observed=True, sort=True)]
    z = stats.norm.ppf(1 - alpha / 2)
    rows, covs, notes = [], {}, []
    bar = None
    if se == "bootstrap" and progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_boot * len(groups), desc="episode bootstrap", leave=False)
    rng = np.random.default_rng(seed)
    for key, g in groups:
        label = dict(zip(by_cols, key))
        n_ep, n_sc = g["episode_id"].nunique(), len(g)
        row = {**label, "n_episodes": n_ep, "n_scores": n_sc}
        name = ", ".join(f"{k}={v}" for k, v in label.items()) or "all"
        if n_ep < min_episodes or n_sc < min_scores:
            msg = f"{name}: only {n_ep} episodes / {n_sc} scores; not fitted"
            notes.append(msg)
            warnings.warn(msg, SmallSampleWarning, stacklevel=2)
            rows.append({**row, "b0": np.nan, "plateau": np.nan, "tau_days": np.nan, "half_life_days": np.nan,
                         "converged": False, "note": msg})
            continue
        theta, cov, res, gnotes, _, rsd = _fit_group(g["day"].to_numpy(float), g["score"].to_numpy(float),
                                                     g["episode_id"].to_numpy(), n_boot if se == "bootstrap" else 0,
                                                     rng, bar)
        covs[key] = cov
        sd = np.sqrt(np.maximum(np.diag(cov), 0))
        log_sd = sd[2] / theta[2]
        row.update({"b0": theta[0], "b0_ci_low": theta[0] - z * sd[0], "b0_ci_high": theta[0] + z * sd[0],
                    "plateau": theta[1], "plateau_ci_low": theta[1] - z * sd[1], "plateau_ci_high": theta[1] + z * sd[1],
                    "tau_days": theta[2], "tau_days_ci_low": theta[2] * np.exp(-z * log_sd),
                    "tau_days_ci_high": theta[2] * np.exp(z * log_sd)})
        for suffix in ("", "_ci_low", "_ci_high"):
            row[f"half_life_days{suffix}"] = row[f"tau_days{suffix}"] * np.log(2)
        row.update({"residual_sd": rsd, "converged": bool(res.success) and not gnotes, "note": "; ".join(gnotes),
                    "n_iterations": int(res.nfev)})
        for n in gnotes:
            notes.append(f"{name}: {n}")
            warnings.warn(f"{name}: {n}", ConvergenceWarning, stacklevel=2)
        rows.append(row)
    if bar is not None:
        bar.close()
    params = pd.DataFrame(rows)
    order = [*by_cols, "b0", "b0_ci_low", "b0_ci_high", "plateau", "plateau_ci_low", "plateau_ci_high", "tau_days",
             "tau_days_ci_low", "tau_days_ci_high", "half_life_days", "half_life_days_ci_low", "half_life_days_ci_high",
             "n_episodes", "n_scores", "residual_sd", "converged", "n_iterations", "note"]
    params = params.reindex(columns=order)
    return RecoveryCurves(params, covs, by_cols, instrument, origin, se, alpha, notes)
