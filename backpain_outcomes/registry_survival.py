"""Time to resolution, cumulative resolution curves and the resolution claim of a partitioned study.

Registered on :func:`~backpain_outcomes.resolution.time_to_resolution`,
:func:`~backpain_outcomes.resolution.resolution_curve` and
:func:`~backpain_outcomes.claims.test_resolution_claim` for
:class:`~backpain_outcomes.registry_partitions.Partitions`: the same calls and the same result types
as for an in-memory study.

Each partition computes its episodes' event table in memory (episodes are never split across
partitions) and reduces it to per-day counts of entries, events and censorings of the episodes at
risk (:func:`~backpain_outcomes.survival.risk_counts`), per group or population and per definition
of resolved; the counts of the partitions are summed, and the Kaplan-Meier estimate, Greenwood's
variance, the log-log interval, the claim test and the sensitivity grid are computed from the sums
(:func:`~backpain_outcomes.survival.kaplan_meier_counts`,
:func:`~backpain_outcomes.verdicts.claim_at_counts`). The sums are exact integers, so the results
equal those of the whole study in memory. Per-episode tables that the results carry
(``TimeToResolution.table``, ``ResolutionCurve.events``, ``ClaimResult.events_table``) are the
partitions' tables put together: one row per episode (of the population, for the claim).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from .checks import (
    check_alpha,
    check_bool,
    check_by,
    check_choice,
    check_day,
    check_days,
    check_min_n,
    check_origin,
    check_proportion,
)
from .claims import SENSITIVITY_DAYS, ClaimResult, claim_result, test_resolution_claim
from .registry_partitions import Partitions
from .resolution import (
    DEFAULT_RULE,
    RELAPSE,
    ResolutionCurve,
    TimeToResolution,
    as_rule,
    curve_from_counts,
    curve_tables,
    event_notes,
    resolution_curve,
    time_to_resolution,
)
from .verdicts import (
    caveats_from_counts,
    claim_at_counts,
    event_counts,
    population_label,
    population_spec,
    select_population,
    sensitivity_populations,
    sensitivity_range,
    sensitivity_rules,
    sensitivity_table,
    untreated_notes_from_counts,
    wants_untreated,
)
from .vocabulary import UNKNOWN, UNTREATED

__all__ = ["combine_partials", "COUNT_COLUMNS"]

#: Per-day counts summed over partitions.
COUNT_COLUMNS = ["entries", "events", "censored"]
#: Per-group counts summed over partitions.
_GROUP_COLUMNS = ["rows", "resolved_at_entry", "single_visit"]


def _stack(pairs: list) -> pd.DataFrame:
    """One table of ``[(key, counts), ...]``: the per-day counts with their key."""
    sizes = [len(c) for _, c in pairs]
    cols = {c: np.concatenate([p[c].to_numpy() for _, p in pairs]) for c in ("day", *COUNT_COLUMNS)}
    return pd.DataFrame({"key": np.repeat(np.array([k for k, _ in pairs], dtype=object), sizes), **cols})


def _sum_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Counts of two partitions added: rows with the same key (and day) summed."""
    keys = [c for c in ("key", "day") if c in a.columns]
    return pd.concat([a, b], ignore_index=True).groupby(keys, as_index=False, sort=True).sum()


def combine_partials(a: dict, b: dict) -> dict:
    """Merge two partitions' partial results: count tables and numbers added, dicts of counts added,
    sets joined, lists (of per-episode tables) put together."""
    out = {}
    for name, value in a.items():
        other = b[name]
        if isinstance(value, pd.DataFrame):
            out[name] = _sum_frames(value, other)
        elif isinstance(value, Counter):
            out[name] = value + other
        elif isinstance(value, set):
            out[name] = value | other
        else:
            out[name] = value + other
    return out


def _counts_of(total: pd.DataFrame):
    """A function giving the per-day counts of one key (an empty table when no partition had it)."""
    groups = {k: g[["day", *COUNT_COLUMNS]].reset_index(drop=True) for k, g in total.groupby("key", sort=False)}
    empty = pd.DataFrame({"day": pd.Series(dtype=float), **{c: pd.Series(dtype=np.int64) for c in COUNT_COLUMNS}})
    return lambda key: groups.get(key, empty)


def _event_partial(ev: pd.DataFrame) -> dict:
    """What the notes of an event table need: measurements combined, episodes not at risk by status."""
    return {"n_combined": int(ev["n_combined"].sum()), "n_episodes_combined": int((ev["n_combined"] > 0).sum()),
            "gone": Counter(ev.loc[~ev["at_risk"], "censored_reason"].value_counts().to_dict())}


def _notes(rule, total: dict) -> list[str]:
    gone = pd.Series(total["gone"], dtype=np.int64).sort_values(ascending=False, kind="stable")
    return event_notes(rule, total["n_combined"], total["n_episodes_combined"], gone)


def _concat(frames: list) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ time to resolution
def _ttr_partition(study, rule, origin, relapse) -> dict:
    table = time_to_resolution(study, rule, origin=origin, relapse=relapse).table
    return {**_event_partial(table), "events": [table]}


@time_to_resolution.register
def _time_to_resolution_partitioned(study: Partitions, rule=DEFAULT_RULE, origin: str = "onset",
                                    relapse: str = "ignore") -> TimeToResolution:
    rule, origin = as_rule(rule), check_origin(origin)
    check_choice(relapse, "relapse", RELAPSE)
    total = study.reduce(_ttr_partition, combine_partials, rule, origin, relapse)
    return TimeToResolution(_concat(total["events"]), rule, origin, relapse, _notes(rule, total))


# ------------------------------------------------------------------------------------------------ curves
def _curve_partition(study, rule, origin, relapse, by_cols) -> dict:
    ev = time_to_resolution(study, rule, origin=origin, relapse=relapse).table
    extra = [c for c in by_cols if c not in ev]
    if extra:
        ep = study.episodes.set_index("episode_id")
        for c in extra:
            ev[c] = ep[c].reindex(ev["episode_id"]).astype(str).to_numpy()
    key = pd.Series([json.dumps(list(v)) for v in ev[by_cols].astype(str).itertuples(index=False)],
                    index=ev.index, dtype=object)  # one text key per group of the by columns
    counts, groups = [], []
    for k, g in ev.groupby(key, sort=False):
        counts.append((k, event_counts(g)))
        reasons = g["censored_reason"]
        groups.append({"key": k, "rows": len(g), "resolved_at_entry": int((reasons == "resolved at entry").sum()),
                       "single_visit": int((reasons == "single visit").sum())})
    return {**_event_partial(ev), "counts": _stack(counts),
            "groups": pd.DataFrame(groups, columns=["key", *_GROUP_COLUMNS]), "events": [ev]}


@resolution_curve.register
def _resolution_curve_partitioned(study: Partitions, rule=DEFAULT_RULE, by=None, origin: str = "onset", day=None,
                                  alpha: float = 0.05, min_n: int = 10, relapse: str = "ignore") -> ResolutionCurve:
    rule = as_rule(rule)
    by_cols = check_by(by, study.episode_columns)
    origin = check_origin(origin)
    days = None if day is None else check_days(day)
    alpha, min_n = check_alpha(alpha), check_min_n(min_n)
    check_choice(relapse, "relapse", RELAPSE)
    total = study.reduce(_curve_partition, combine_partials, rule, origin, relapse, by_cols)
    counts_of = _counts_of(total["counts"])
    groups = total["groups"].assign(label=lambda g: g["key"].map(lambda k: tuple(json.loads(k)))).sort_values("label")
    parts = [(row.label, curve_from_counts(counts_of(row.key), days, alpha, row.resolved_at_entry, row.single_visit))
             for row in groups.itertuples(index=False)]
    table, steps, medians, notes = curve_tables(parts, by_cols, _notes(rule, total), min_n)
    return ResolutionCurve(table, steps, medians, _concat(total["events"]), rule, by_cols, origin, days, alpha,
                           notes)


# ------------------------------------------------------------------------------------------------ the claim
def _claim_partition(study, rule, origin, relapse, spec, configs, pops) -> dict:
    """Per-day counts of the population (and of every sensitivity analysis) and what the notes need."""
    ev = time_to_resolution(study, rule, origin=origin, relapse=relapse).table
    undo = ev if relapse == "undo" else time_to_resolution(study, rule, origin=origin, relapse="undo").table
    sub = select_population(ev, spec)
    at = sub[sub["at_risk"].to_numpy(bool)]
    resolved = sub[sub["resolved"].to_numpy(bool)]
    frames = [("main", event_counts(sub)), ("undo", event_counts(select_population(undo, spec)))]
    for i, (r, o, rel) in enumerate(configs):
        e = ev if (r, o, rel) == (rule, origin, relapse) else undo if (r, o, rel) == (rule, origin, "undo") else \
            time_to_resolution(study, r, origin=o, relapse=rel).table
        frames += [(f"{i}/{j}", event_counts(select_population(e, pop))) for j, pop in enumerate(pops)]
    status = ev["treatment_status"].astype(str)
    return {**_event_partial(ev), "counts": _stack(frames),
            "untreated": int((status == UNTREATED).sum()), "unknown": int((status == UNKNOWN).sum()),
            "modalities": set(ev["modality"].astype(str)), "n_population": len(sub),
            "baseline_sum": float(at["baseline"].sum()), "n_at_risk": len(at), "resolved": len(resolved),
            "relapsed": int(resolved["relapsed"].sum()),
            "excluded": Counter(sub.loc[~sub["at_risk"].to_numpy(bool), "censored_reason"].value_counts().to_dict()),
            "events": [sub]}


def _check_population(total: dict, spec) -> list[str]:
    """As the in-memory test: refuse an empty population, or untreated episodes that cannot be known."""
    notes = (untreated_notes_from_counts(total["untreated"], total["unknown"], total["modalities"])
             if wants_untreated(spec) else [])
    if total["n_population"] == 0:
        present = ", ".join(sorted(total["modalities"]))
        raise ValueError(f"no episodes in population={population_label(spec)!r} have measurements; groups present: "
                         f"{present}. Pass population=... to test another population.")
    return notes


@test_resolution_claim.register
def _test_resolution_claim_partitioned(study: Partitions, claimed: float = 0.90, day: float = 42, rule=DEFAULT_RULE,
                                       population="untreated", origin: str = "onset", alpha: float = 0.05,
                                       relapse: str = "ignore", sensitivity: bool = True,
                                       sensitivity_days=SENSITIVITY_DAYS, min_n: int = 20) -> ClaimResult:
    claimed, day, rule, origin = check_proportion(claimed, "claimed"), check_day(day), as_rule(rule), check_origin(origin)
    alpha, relapse = check_alpha(alpha), check_choice(relapse, "relapse", RELAPSE)
    sensitivity, sens_days, min_n = check_bool(sensitivity, "sensitivity"), check_days(sensitivity_days,
                                                                                    "sensitivity_days"), check_min_n(min_n)
    spec = population_spec(population)
    origins = ["onset", "first_contact"] if study.onset_known else ["first_contact"]
    rules = [rule] + [r for r in sensitivity_rules(study.instruments) if r != rule]
    configs = [(r, o, rel) for r in rules for o in origins for rel in ("ignore", "undo")] if sensitivity else []
    pops = sensitivity_populations(spec)
    total = study.reduce(_claim_partition, combine_partials, rule, origin, relapse, spec, configs, pops)
    status_notes = _check_population(total, spec)
    counts_of = _counts_of(total["counts"])
    who = population_label(spec)
    res = claim_at_counts(counts_of("main"), claimed, day, alpha)
    sens, rng, context = pd.DataFrame(), (np.nan, np.nan), ""
    if sensitivity:
        counts = {(*configs[i], j): counts_of(f"{i}/{j}") for i in range(len(configs)) for j in range(len(pops))}
        sens = sensitivity_table(counts, claimed, alpha, pops, origins, rules, sorted({*sens_days, day}), min_n)
        lo, hi, _, context = sensitivity_range(sens, who, day)
        rng = (lo, hi)
    mean_base = total["baseline_sum"] / total["n_at_risk"] if total["n_at_risk"] else np.nan
    notes = [*status_notes, *caveats_from_counts(counts_of("main"), mean_base, rule, origin, day, res, spec),
             *_notes(rule, total)]
    relapses = {"resolved": total["resolved"], "relapsed": total["relapsed"],
                "relapse_share": total["relapsed"] / total["resolved"] if total["resolved"] else np.nan,
                "estimate_if_relapse_undoes": claim_at_counts(counts_of("undo"), claimed, day, alpha)["estimate"]}
    return claim_result(res, claimed=claimed, day=day, rule=rule, who=who, origin=origin, alpha=alpha, min_n=min_n,
                        notes=notes, relapses=relapses, excluded=dict(total["excluded"]),
                        sensitivity=(sens, rng, context), events_table=_concat(total["events"]))
