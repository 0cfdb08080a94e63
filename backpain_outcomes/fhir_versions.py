"""Several copies or versions of one FHIR resource, and the OperationOutcomes of a search.

Real exports hold the same resource more than once: a Patient included in
every page of a search, an NDJSON file given twice, or several versions of one
``Type/id`` (a history search, an export taken over an update).
:func:`deduplicate` keeps one of each: identical copies (``meta`` aside) are
``duplicate``; of versions, the latest by ``meta.versionId`` (else
``meta.lastUpdated``) is used and the others are ``superseded``; copies that
differ with nothing to order them are ``conflicting_versions`` errors, every
one of them, since which one is right is unknown.
"""

from __future__ import annotations

import datetime as dt

from .fhir_read import READ_TYPES, Resource, short
from .problems import ERROR, SET_ASIDE, Problems

__all__ = ["deduplicate", "outcome_notes"]


def outcome_notes(resources: list[Resource], shown: int = 5) -> list[str]:
    """A note for each error or warning of an OperationOutcome in the input (a searchset Bundle's outcome
    entry says when the server truncated or refused part of the search)."""
    out = []
    for r in resources:
        issues = r.raw.get("issue") if r.rtype == "OperationOutcome" else None
        for issue in issues if isinstance(issues, list) else []:
            if not isinstance(issue, dict) or issue.get("severity") not in ("fatal", "error", "warning"):
                continue
            details = issue.get("details")
            details = details if isinstance(details, dict) else {}
            text = issue.get("diagnostics") or details.get("text") or "no diagnostics"
            out.append(f"{r.source}:{r.row}: OperationOutcome {issue['severity']} ({issue.get('code')}): "
                       f"{short(str(text), 200)}")
    if len(out) > shown:
        out = out[:shown] + [f"... and {len(out) - shown} more OperationOutcome issue(s)"]
    return out


def _version_key(res: Resource):
    """(versionId as a number or text, lastUpdated as UTC) of a resource's ``meta``; None where absent."""
    meta = res.raw.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    version = meta.get("versionId")
    if version is not None:
        version = int(version) if str(version).isdigit() else str(version)
    updated = meta.get("lastUpdated")
    try:
        updated = dt.datetime.fromisoformat(str(updated).replace("Z", "+00:00")) if updated is not None else None
        if updated is not None and updated.tzinfo is None:
            updated = None
    except ValueError:
        updated = None
    return version, updated


def _latest(copies: list[Resource]) -> tuple[Resource | None, str]:
    """The latest of several versions of one resource and the element that orders them, else (None, "")."""
    keys = [_version_key(r) for r in copies]
    for k, path in ((0, "meta.versionId"), (1, "meta.lastUpdated")):
        values = [key[k] for key in keys]
        if all(v is not None for v in values) and len({type(v) for v in values}) == 1:
            best = max(values)
            if values.count(best) == 1:
                return copies[values.index(best)], path
    return None, ""


def _without_meta(raw: dict) -> dict:
    return {k: v for k, v in raw.items() if k != "meta"}


def deduplicate(resources: list[Resource], p: Problems) -> list[Resource]:
    """The resources with each ``Type/id`` once.

    Copies of one resource read more than once (the same page or NDJSON file twice, a Patient included in
    every page of a search) are ``duplicate`` (the first read is used); versions that ``meta.versionId``
    (else ``meta.lastUpdated``) orders are ``superseded`` but the latest; copies that differ and that
    nothing orders are ``conflicting_versions`` errors, every one of them (which one is right is unknown).
    """
    groups: dict[tuple[str, str], list[Resource]] = {}
    for r in resources:
        if r.rtype in READ_TYPES and r.rid is not None:
            groups.setdefault((r.rtype, r.rid), []).append(r)
    dropped: set[int] = set()
    for copies in (g for g in groups.values() if len(g) > 1):
        distinct: list[Resource] = []
        for r in copies:
            same = next((d for d in distinct if _without_meta(d.raw) == _without_meta(r.raw)), None)
            if same is None:
                distinct.append(r)
                continue
            dropped.add(id(r))
            p.add(r.table, r.source, [r.row], r.label, "duplicate", f"the same resource as {same.source}:"
                  f"{same.row} (read twice)", "each resource once", value=[None], kind=SET_ASIDE)
        if len(distinct) < 2:
            continue
        latest, path = _latest(distinct)
        for r in distinct:
            if latest is not None and r is not latest:
                p.add(r.table, r.source, [r.row], f"{r.label}: {path}", "superseded", "an older version of "
                      f"{r.label}; the version at {latest.source}:{latest.row} is used", "the latest version",
                      value=[str((r.raw.get("meta") or {}).get(path.removeprefix("meta.")))],
                      kind=SET_ASIDE)
            elif latest is None:
                others = ", ".join(f"{d.source}:{d.row}" for d in distinct if d is not r)
                p.add(r.table, r.source, [r.row], r.label, "conflicting_versions", f"{r.label} is also at {others}"
                      " with other content, and no meta.versionId or meta.lastUpdated says which is the latest",
                      "one version of each resource, or versions with meta.versionId", value=[None], kind=ERROR)
            if r is not latest:
                dropped.add(id(r))
    return [r for r in resources if id(r) not in dropped]
