"""Trajectory subgroups: latent class growth models (LCGA) fitted by EM.

Each episode *i* belongs to one of *K* latent classes; given class *c* its
scores follow a class mean curve with Gaussian residuals:

.. math:: y_{ij} \\mid c \\sim N\\big(B(t_{ij})^\\top \\beta_c,\\ \\sigma_c^2\\big),
          \\qquad P(c) = \\pi_c

with *B* a cubic B-spline (default) or polynomial basis of time. This
is the model of R's ``lcmm::hlme`` without random effects (LCGA; Nagin 1999)
and of ``flexmix`` with grouped observations. Dunn, Jordan & Croft 2006 (Am J
Epidemiol 163:754) found four back-pain trajectories in primary care;
Kongsted et al. 2015 found 5 to 12 depending on the model, so the number of
classes is chosen from an **enumeration table**, never fixed.

The model is fitted by EM with several random starts
(:mod:`backpain_outcomes.lcga`: vectorised over episodes, iteration caps and
collapsing classes reported). Class curves are tabulated and drawn only over
the days where at least ``min_n`` of the class's episodes have data, clipped
to the score range, and labelled from their own shape ("Rapid recovery",
"Slow recovery", "Persistent high", ...; distinct within a fit;
:mod:`backpain_outcomes.trajectory_labels`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import style
from .checks import (
    check_by,
    check_choice,
    check_day,
    check_instrument,
    check_int,
    check_k,
    check_min_n,
    check_origin,
    check_positive,
)
from .dispatch import on_study
from .lcga import SufficientStats, TimeBasis, fit_k, sort_episodes
from .results import Result
from .trajectory_classes import EpisodeColumns, FrameRows, basis_notes, describe_classes, member_summary, merge_member_summaries
from .trajectory_labels import class_label, distinct_labels
from .vocabulary import INSTRUMENT_RANGES, instrument_label, label

__all__ = ["fit_trajectories", "TrajectoryResult", "adjusted_rand_index", "class_label", "distinct_labels",
           "trajectory_rows", "trajectory_notes", "check_trajectory_options", "fit_trajectories_frame",
           "enumeration_table", "check_enough_episodes", "check_scores_vary"]


def adjusted_rand_index(a, b) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985)."""
    ct = pd.crosstab(np.asarray(a), np.asarray(b)).to_numpy()
    comb = lambda x: x * (x - 1) / 2.0  # noqa: E731
    sum_ij = comb(ct).sum()
    sa, sb = comb(ct.sum(1)).sum(), comb(ct.sum(0)).sum()
    n = ct.sum()
    expected = sa * sb / comb(n)
    maximum = (sa + sb) / 2
    return float((sum_ij - expected) / (maximum - expected)) if maximum != expected else 1.0


class TrajectoryResult(Result):
    """Result of :func:`fit_trajectories` for one number of classes ``k``.

    Attributes
    ----------
    table, enumeration : DataFrame
        One row per fitted k: ``k``, ``loglik``, ``n_params``, ``bic``,
        ``aic``, ``sabic``, ``entropy`` (relative), ``smallest_class``
        (share), ``min_avepp`` (lowest mean posterior of a class among its
        members), ``n_iter``, ``converged``, ``note``.
    k, best_k : int
        The number of classes described, and the lowest BIC among converged
        fits whose smallest class holds at least ``smallest_class`` of the
        episodes.
    classes : DataFrame
        Per episode: ``episode_id``, ``class``, ``posterior`` (of the modal
        class) and ``p_class_<c>`` for every class.
    curves : DataFrame
        ``class``, ``label``, ``day``, ``mean``, ``ci_low``, ``ci_high``: each
        class's mean curve only over the days where at least ``min_n`` of its
        episodes have data, clipped to the score range.
    sizes : DataFrame
        ``class``, ``label``, ``share`` (mean posterior), ``n`` (modal),
        ``avepp``, ``sigma``, ``first_day``, ``last_day``.
    notes : list of str
    """

    def __init__(self, fits, enumeration, k, best_k, context, explanation, notes):
        if k not in fits:
            raise ValueError(f"k={k!r} was not fitted; fitted: {', '.join(map(str, sorted(fits)))}")
        self.fits, self.table, self.k, self.best_k = fits, enumeration, int(k), int(best_k)
        self._context, self.explanation = context, explanation
        self.instrument, self.origin, self.min_n = context["instrument"], context["origin"], context["min_n"]
        self.classes, self.curves, self.sizes, curve_notes = describe_classes(fits[k], context)
        self.notes = [explanation, *notes, *fits[k].notes, *curve_notes]
        self._freeze()

    @property
    def enumeration(self) -> pd.DataFrame:
        """The enumeration table (alias of ``table``)."""
        return self.table

    def select(self, k: int) -> TrajectoryResult:
        """A NEW result describing the k-class fit (this one is unchanged)."""
        k = check_int(k, "k", low=1)
        return TrajectoryResult(self.fits, self.table, k, self.best_k, self._context, self.explanation,
                                self._context["notes"])

    def crosstab(self, by: str = "modality") -> pd.DataFrame:
        """Modal class by a column of ``study.episodes`` (labels for reading; row percentages in
        ``attrs['percent']``)."""
        ep = self._context["episode_columns"]
        if ep is None:
            raise ValueError("crosstab needs the episodes of a Study; this result was fitted on a DataFrame")
        by = check_by(by, ep.columns)[0]
        if by == "episode_id":
            raise ValueError("by='episode_id' would give one row per episode; each episode's class is in "
                             "result.classes (crosstab a column of study.episodes such as 'modality')")
        lab = self.sizes.set_index("class")["label"]
        values = self.classes["episode_id"].map(ep(by)).map(label)
        tab = pd.crosstab(values.rename(label(by)), self.classes["class"].map(lambda x: f"{x}: {lab[x]}"))
        tab.attrs["percent"] = tab.div(tab.sum(axis=1), axis=0) * 100
        return tab

    def _parts(self):
        name = label(self.instrument) if self.instrument else "score"
        return (f"Latent class growth model ({name}, k = {self.k})", self.notes,
                {"Enumeration": self.table, "Classes": self.sizes})

    def plot(self, ax=None, n_spaghetti: int = 150, seed: int = 0):
        """Class mean curves with 95% CI (over each class's data) over a sample of individual episodes.

        Classes take the palette of :mod:`~backpain_outcomes.style` in class order; with more than
        ``style.MAX_BANDS`` classes the bands are left out (the legend says so).
        """
        n_spaghetti, seed = check_int(n_spaghetti, "n_spaghetti"), check_int(seed, "seed")
        ax = style.new_axes(ax, figsize=(8, 5))
        rng = np.random.default_rng(seed)
        eps = self.classes["episode_id"].to_numpy()
        pick = set(rng.choice(eps, size=min(n_spaghetti, len(eps)), replace=False))
        cls = self.classes.set_index("episode_id")["class"]
        styles = style.group_styles(sorted(self.curves["class"].unique()))
        bands = len(styles) <= style.MAX_BANDS
        rows = self._context["rows_of"](pick) if pick else pd.DataFrame({"episode_id": [], "day": [], "score": []})
        for eid, g in rows.groupby("episode_id"):
            ax.plot(g["day"], g["score"], color=styles.get(cls[eid], ("grey", "-"))[0], alpha=0.15, lw=0.7)
        share = self.sizes.set_index("class")["share"]
        for c, g in self.curves.groupby("class"):
            col, ls = styles[c]
            name = f"class {c}: {g['label'].iat[0]} ({share[c]:.0%} of {len(eps)} episodes)"
            ax.plot(g["day"], g["mean"], color=col, ls=ls, lw=2.5, label=name)
            if bands:
                ax.fill_between(g["day"], g["ci_low"], g["ci_high"], color=col, alpha=style.CI_ALPHA + 0.1)
        ax.set_xlabel(label(self.origin) if self.origin else "Day", fontsize=style.LABEL_SIZE)
        ax.set_ylabel(instrument_label(self.instrument) if self.instrument else "Score", fontsize=style.LABEL_SIZE)
        ax.set_ylim(self._context["low"], self._context["high"])
        ax.tick_params(labelsize=style.TICK_SIZE)
        ax.set_title("Trajectory classes: mean with 95% CI" + ("" if bands else " (bands not drawn: more than "
                                                                             f"{style.MAX_BANDS} classes)")
                     + "; thin lines: a sample of episodes", fontsize=style.TITLE_SIZE)
        style.legend(ax)
        return ax


def _long_frame(study, instrument, origin, day, notes):
    """(frame, study episodes or None, score range, instrument or None, origin or None); rows left out noted."""
    if hasattr(study, "analysis_frame"):
        frame = study.analysis_frame(instrument, origin=origin, include_baseline=True)
        episodes, (lo, hi), inst, orig = study.episodes, INSTRUMENT_RANGES[instrument], instrument, origin
    elif isinstance(study, pd.DataFrame):
        missing = [c for c in ("episode_id", "day", "score") if c not in study]
        if missing:
            raise ValueError(f"study: the DataFrame lacks the column(s) {', '.join(missing)}; it needs episode_id, "
                             f"day and score (columns present: {', '.join(map(str, study.columns))})")
        frame, episodes, inst, orig = study, None, None, None
        lo, hi = float(study["score"].min()), float(study["score"].max())
    else:
        raise TypeError(f"study must be a Study or a long DataFrame with episode_id, day and score, "
                        f"got {type(study).__name__}")
    frame, n_late, n_single = trajectory_rows(frame, day)
    notes.extend(trajectory_notes(n_late, n_single, day))
    return frame, episodes, lo, hi, inst, orig


def trajectory_rows(frame: pd.DataFrame, day) -> tuple[pd.DataFrame, int, int]:
    """The ``episode_id``, ``day``, ``score`` rows a trajectory model uses (complete, up to ``day``, episodes
    with two or more of them), the number of measurements after ``day`` and of single-measurement episodes
    left out."""
    frame = frame[["episode_id", "day", "score"]].dropna()
    n_late = 0
    if day is not None:
        late = frame["day"] > day
        n_late = int(late.sum())
        frame = frame[~late]
    few = frame.groupby("episode_id")["score"].transform("size") < 2
    return frame[~few], n_late, int(frame.loc[few, "episode_id"].nunique()) if few.any() else 0


def trajectory_notes(n_late: int, n_single: int, day) -> list[str]:
    """The notes on the rows :func:`trajectory_rows` left out."""
    notes = []
    if n_late:
        notes.append(f"{n_late} measurements after day {day:g} were left out (day={day:g}).")
    if n_single:
        notes.append(f"{n_single} episode(s) with a single measurement were left "
                     "out (a trajectory needs repeated measurements).")
    return notes


def _enumeration_row(K, fit, p, E, common):
    n_params = K * p + (1 if common else K) + (K - 1)
    ll, post = fit.loglik, fit.post
    ent = 1 - float(-(post * np.log(np.clip(post, 1e-300, 1))).sum() / (E * np.log(K))) if K > 1 else 1.0
    modal = post.argmax(1)
    avepp = [post[modal == c, c].mean() if (modal == c).any() else np.nan for c in range(K)]
    return {"k": K, "loglik": ll, "n_params": n_params, "bic": -2 * ll + n_params * np.log(E),
            "aic": -2 * ll + 2 * n_params, "sabic": -2 * ll + n_params * np.log((E + 2) / 24),
            "entropy": ent, "smallest_class": float(fit.pi.min()), "min_avepp": float(np.nanmin(avepp)),
            "n_iter": fit.n_iter, "converged": fit.converged, "note": "; ".join(fit.notes)}


def _choose_k(enum, smallest_class, E):
    """(best k, the sentence explaining it): the lowest BIC among converged fits with large enough classes."""
    ok = enum[enum["converged"] & (enum["smallest_class"] >= smallest_class)]
    pool = ok if len(ok) else enum
    best_k = int(pool.loc[pool["bic"].idxmin(), "k"])
    expl = (f"best k = {best_k}: the lowest BIC among the fits that converged and whose smallest class holds at "
            f"least {smallest_class:.0%} of the {E} episodes"
            + ("" if len(ok) else " (no fit met both conditions; lowest BIC overall)")
            + ". BIC, entropy and class sizes for every k are in `table`; pick another k with select(k).")
    return best_k, expl


#: The smallest ``tol`` of :func:`fit_trajectories` (changes below it are floating-point noise).
MIN_TOL = 1e-12


def check_trajectory_options(k, time, degree, n_knots, n_init, seed, variance, max_iter, tol, short_iter, n_refine,
                             smallest_class, day, min_n):
    """The options of :func:`fit_trajectories` checked: ``(ks, degree, day, min_n)``."""
    ks = check_k(k)
    check_choice(time, "time", ("polynomial", "spline"))
    degree = check_int(degree, "degree", low=1)
    if degree > 3:
        raise ValueError(f"degree must be 1, 2 or 3, got {degree!r}")
    check_int(n_knots, "n_knots", low=0)
    check_int(n_init, "n_init", low=1)
    check_int(seed, "seed", low=0)
    check_choice(variance, "variance", ("class", "common"))
    check_int(max_iter, "max_iter", low=1)
    if check_positive(tol, "tol") < MIN_TOL:
        raise ValueError(f"tol must be at least {MIN_TOL:g}: a smaller relative change of the log-likelihood is "
                         f"rounding noise, so where EM stops would depend on the order of its sums; got {tol!r}")
    check_int(short_iter, "short_iter", low=1)
    check_int(n_refine, "n_refine", low=1)
    share = check_positive(smallest_class, "smallest_class", allow_zero=True)
    if share >= 1:
        raise ValueError(f"smallest_class must be a share below 1 (e.g. 0.05), got {smallest_class!r}")
    return ks, degree, (None if day is None else check_day(day, "day")), check_min_n(min_n)


def check_enough_episodes(E: int, ks) -> None:
    """The error when the largest k exceeds the ``E`` episodes with repeated measurements."""
    if E < max(ks):
        raise ValueError(f"k={max(ks)} classes need at least as many episodes with repeated measurements; "
                         f"there are {E}")


def check_scores_vary(low: float, high: float, inst) -> None:
    """The error when every score is the same (lowest ``low`` = highest ``high``)."""
    if high == low:
        raise ValueError(f"every {inst + ' ' if inst else ''}score is {low:g}: scores that do not vary have no "
                         "trajectories to find (the likelihood grows without bound as the class variance shrinks)")


@on_study
def fit_trajectories(study, instrument: str = "nrs", k=range(1, 6), time: str = "spline", degree: int = 2,
                     n_knots: int = 2, origin: str = "onset", n_init: int = 20, seed: int = 0,
                     variance: str = "class", max_iter: int = 1000, tol: float = 1e-9, short_iter: int = 30,
                     n_refine: int = 3, smallest_class: float = 0.05, day: float | None = None,
                     min_n: int = 10) -> TrajectoryResult:
    """Latent class growth model with class enumeration.

    Parameters
    ----------
    study : Study or DataFrame
        A Study, or a long frame with ``episode_id``, ``day``, ``score``.
    instrument : str
        Any accepted spelling; used with a Study.
    k : int or iterable of int
        Numbers of classes to fit.
    time : {"spline", "polynomial"}
        Class mean curves: cubic B-spline with ``n_knots`` interior knots at
        quantiles of time (default: it follows a fast early drop), or a
        polynomial of ``degree`` (1 to 3; a quadratic cannot follow a drop
        over the first weeks followed by a long plateau, and a note says so
        when a class curve misses its data).
    origin : {"onset", "first_contact"}
        Day 0. From onset, episodes first seen late enter late;
        ``"first_contact"`` aligns episodes at their first measurement, which
        suits clinic data.
    n_init : int
        Random starts per k (random partitions of episodes); each runs
        ``short_iter`` EM iterations, then the ``n_refine`` best run to
        convergence.
    seed : int
        Results are identical for the same seed.
    variance : {"class", "common"}
        Class-specific or common residual variance.
    max_iter, tol :
        EM stops when the relative change of the log-likelihood is below
        ``tol`` (at least 1e-12: smaller changes are rounding noise); hitting
        ``max_iter`` is reported as not converged.
    smallest_class : float
        ``best_k`` only considers fits whose smallest class has at least this share.
    day : float or None
        Follow-up horizon: measurements after this day are left out (counted in
        ``notes``); None keeps all. The time basis is scaled to ``day`` (or the
        last day).
    min_n : int
        A class's curve is tabulated and drawn only over the days where at
        least ``min_n`` of its episodes have data. Episodes with a single
        measurement are always left out (counted).

    Returns
    -------
    TrajectoryResult
        For ``best_k``; ``select(k)`` gives the result for another k.

    Notes
    -----
    Parameters: K x p curve coefficients, K (or 1) variances and K - 1
    weights. BIC = -2 LL + n_params log(n_episodes) (the subject count, as in
    lcmm); SABIC uses (n + 2) / 24. Relative entropy
    1 - sum(-p log p) / (n log K). CIs of class curves ignore classification
    uncertainty. Class labels come from each class's mean curve over its own
    data (see :func:`class_label`) and are made distinct.

    Examples
    --------
    >>> import backpain_outcomes as bpo
    >>> traj = bpo.fit_trajectories(bpo.load_study(bpo.example_path()), k=range(1, 4), n_init=5)
    >>> int(traj.best_k) in (1, 2, 3) and traj.select(1).k == 1
    True
    """
    instrument, origin = check_instrument(instrument), check_origin(origin)
    ks, degree, day, min_n = check_trajectory_options(k, time, degree, n_knots, n_init, seed, variance, max_iter,
                                                      tol, short_iter, n_refine, smallest_class, day, min_n)
    notes: list[str] = []
    frame, episodes_table, lo, hi, inst, orig = _long_frame(study, instrument, origin, day, notes)
    return fit_trajectories_frame(frame, episodes_table, (lo, hi), inst, orig, notes, ks, time, degree, n_knots,
                                  n_init, seed, variance, max_iter, tol, short_iter, n_refine, smallest_class, day,
                                  min_n)


def fit_trajectories_frame(frame, episodes_table, score_range, inst, orig, notes, ks, time, degree, n_knots, n_init,
                           seed, variance, max_iter, tol, short_iter, n_refine, smallest_class, day,
                           min_n) -> TrajectoryResult:
    """:func:`fit_trajectories` of the rows :func:`trajectory_rows` keeps (``episode_id``, ``day``,
    ``score``), with checked options; ``episodes_table`` (or None) serves ``crosstab``, ``score_range`` the
    curves' clipping, ``notes`` the sentences so far. Rows are sorted by episode and day first, so the
    order in which they come does not change the result."""
    lo, hi = score_range
    frame, eps, starts, n_i = sort_episodes(frame)
    E = len(eps)
    check_enough_episodes(E, ks)
    basis = TimeBasis(frame["day"].to_numpy(float), time, degree, n_knots, scale=day)
    notes.extend(basis_notes(basis, np.unique(frame["day"].to_numpy(float))))
    B = basis(frame["day"].to_numpy(float))
    y = frame["score"].to_numpy(float)
    if len(y):
        check_scores_vary(y.min(), y.max(), inst)
    suff = SufficientStats(B, y, starts, n_i, basis.constant())
    opts = {"n_init": n_init, "short_iter": short_iter, "max_iter": max_iter, "tol": tol, "n_refine": n_refine,
            "common": variance == "common", "var_floor": 1e-6 * max(np.var(y), 1e-12)}
    rng = np.random.default_rng(int(seed))  # a whole float (3.0) is accepted as a seed
    fits = {K: fit_k(K, suff, E, rng, opts) for K in ks}
    for K, fit in fits.items():
        fit.weighted_S = np.stack([np.einsum("e,epq->pq", fit.post[:, c], suff.S) for c in range(K)])
        fit.members = merge_member_summaries([member_summary(frame["_ep"].to_numpy(), frame["day"], frame["score"],
                                                             fit.post.argmax(1), K, min_n)], K, min_n)
    context = {"basis": basis, "episodes": eps, "rows_of": FrameRows(frame),
               "episode_columns": None if episodes_table is None else EpisodeColumns(episodes_table),
               "instrument": inst, "origin": orig, "min_n": min_n, "low": lo, "high": hi,
               "last_day": float(frame["day"].max()), "notes": notes}
    return enumeration_table(fits, ks, B.shape[1], E, variance, smallest_class, context)


def enumeration_table(fits, ks, p, E, variance, smallest_class, context) -> TrajectoryResult:
    """The :class:`TrajectoryResult` of the fits (each with ``post``, ``members`` and ``weighted_S``): the
    enumeration table and the choice of k, for ``p`` coefficients per class and ``E`` episodes."""
    enum = pd.DataFrame([_enumeration_row(K, fits[K], p, E, variance == "common") for K in ks])
    best_k, expl = _choose_k(enum, smallest_class, E)
    return TrajectoryResult(fits, enum, best_k, best_k, context, expl, context["notes"])
