"""Codes, references, dates and questionnaire items of FHIR R4 resources, as the package reads them.

Codes read by default
    ====================================  =========================================================
    code                                  read as
    ====================================  =========================================================
    LOINC 72514-3                         ``nrs``: "Pain severity - 0-10 verbal numeric rating
                                          [Score] - Reported"
    LOINC 38214-3, SNOMED CT 273903006    ``vas``: "Pain severity [Score] Visual analog score",
                                          "Visual analog scale (assessment scale)", in mm (the
                                          Medizininformatik-Initiative ICU profile of the VAS
                                          requires UCUM ``mm``); a value in ``cm`` is multiplied
                                          by 10
    LOINC 38208-5                         "Pain severity - Reported" names no scale: ``vas`` when its
                                          unit is ``mm`` or ``cm``, else ``nrs`` (it is the 0-10 pain
                                          score of vital-sign panels, recorded as ``{score}``)
    SNOMED CT 279039007                   "Low back pain": a Condition that is an episode; also ICD-10
                                          M54.5 and ICD-10-CM M54.50, M54.51, M54.59
    ====================================  =========================================================

A code is matched as ``system|code`` (``http://loinc.org|72514-3``) or as the
bare code; arguments of :func:`~backpain_outcomes.fhir.load_fhir` add codes or
change what they mean.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from .instruments import score_odi, score_rmdq
from .vocabulary import normalise_instrument, normalise_modality

__all__ = ["LOINC", "SNOMED", "OBSERVATION_CODES", "LOW_BACK_PAIN_CODES", "coding_keys", "code_text",
           "observation_instrument", "patient_of", "day_of", "questionnaire_instrument", "questionnaire_items",
           "score_items", "modality_of", "ITEMS"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
#: ``system|code`` -> instrument ("pain_reported": the unit decides, see the module notes).
OBSERVATION_CODES = {f"{LOINC}|72514-3": "nrs", f"{LOINC}|38214-3": "vas", f"{SNOMED}|273903006": "vas",
                     f"{LOINC}|38208-5": "pain_reported"}
#: ``system|code`` of Conditions that open an episode of low back pain.
LOW_BACK_PAIN_CODES = (f"{SNOMED}|279039007", "http://hl7.org/fhir/sid/icd-10|M54.5",
                       "http://hl7.org/fhir/sid/icd-10-cm|M54.50", "http://hl7.org/fhir/sid/icd-10-cm|M54.51",
                       "http://hl7.org/fhir/sid/icd-10-cm|M54.59")
#: Items of each questionnaire.
ITEMS = {"odi": 10, "rmdq": 24}
_VAS_UNITS = {"mm": 1.0, "cm": 10.0}
_NO_UNIT = {None, "", "1", "{score}", "score", "{points}"}


def coding_keys(concept) -> list[str]:
    """``system|code`` and ``code`` of every coding of a CodeableConcept (parsed model), in order."""
    keys: list[str] = []
    for c in (getattr(concept, "coding", None) or []):
        if c.code is not None:
            keys += [f"{c.system}|{c.code}" if c.system else str(c.code), str(c.code)]
    return keys


def code_text(concept) -> str:
    """How a CodeableConcept reads: ``system|code 'display'`` of its first coding, or its text."""
    if concept is None:
        return ""
    for c in (concept.coding or []):
        return f"{c.system + '|' if c.system else ''}{c.code}" + (f" '{c.display}'" if c.display else "")
    return concept.text or ""


def _lookup(keys: list[str], table: dict):
    return next((table[k] for k in keys if k in table), None)


def observation_instrument(obs, codes: dict) -> tuple[str | None, float, str]:
    """(instrument or None, factor to the instrument's unit, unit) of a parsed Observation."""
    kind = _lookup(coding_keys(obs.code), codes)
    q = obs.valueQuantity
    unit = "" if q is None else str(q.code or q.unit or "")
    if kind is None:
        return None, 1.0, unit
    if kind == "pain_reported":
        kind = "vas" if unit in _VAS_UNITS else "nrs"
    factor = _VAS_UNITS.get(unit, 1.0) if kind == "vas" else 1.0
    return kind, factor, unit


def unit_ok(kind: str, unit: str) -> bool:
    """Whether a unit fits the instrument: mm or cm for the VAS, none (or a score unit) otherwise."""
    return (unit in _VAS_UNITS or unit in _NO_UNIT) if kind == "vas" else unit in _NO_UNIT


def patient_of(reference, full_urls: dict) -> tuple[str | None, str]:
    """(patient id, reason) of a Reference: ``Patient/123``, an absolute URL ending in ``Patient/123`` (either
    may name a version, ``Patient/123/_history/2``), or a ``urn:uuid:`` fullUrl of a Patient in the same
    Bundle. The reason is "" when it points at a patient."""
    ref = getattr(reference, "reference", None)
    if not ref:
        return None, "missing"
    base = re.sub(r"/_history/[^/]*$", "", ref)
    if ref in full_urls or base in full_urls:
        rtype, rid = full_urls.get(ref) or full_urls[base]
        return (rid, "") if rtype == "Patient" else (None, f"a {rtype}")
    parts = re.sub(r"/_history/[^/]*$", "", ref.rstrip("/")).split("/")  # a versioned reference
    if ref.startswith("#"):
        return None, f"a contained resource ({ref})"
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1], ""
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return None, f"a {parts[-2]}"
    return ref, ""  # unresolved (urn:uuid of a resource not in the Bundle): the loader reports an unknown patient


def day_of(value) -> tuple[str | None, str]:
    """(ISO day, problem) of a FHIR date/dateTime as parsed: the calendar day written (a UTC offset does not
    move it); a partial date (``2024-03``) is not a day."""
    if value is None:
        return None, "missing"
    if isinstance(value, dt.datetime | dt.date):
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat(), ""
    return None, f"{value} is not precise to the day"


# ------------------------------------------------------------------------------------------ questionnaires
def questionnaire_instrument(qr, questionnaires: dict) -> tuple[str | None, str]:
    """(instrument or None, the canonical) of a QuestionnaireResponse: ``questionnaires`` keys are canonical
    URLs (a ``|version`` is ignored) or LOINC codes (``http://loinc.org/q/<code>`` canonicals); without a
    declared key, the last segment of the canonical named after an instrument (``.../Questionnaire/oswestry``,
    ``.../rmdq``)."""
    canonical = str(qr.questionnaire or "")
    base = canonical.split("|")[0]
    last = base.rstrip("/").split("/")[-1] if base else ""
    for key in (canonical, base, last, f"{LOINC}|{last}"):
        if key and key in questionnaires:
            return questionnaires[key], canonical
    found = normalise_instrument(pd.Series([last], dtype=object)).iat[0] if last else None
    return (found if found in ITEMS else None), canonical


def _answers(items, prefix: str):
    """(linkId, path, answer) of every answered item, nested groups included."""
    for i, item in enumerate(items or []):
        path = f"{prefix}item[{i}]"
        for j, ans in enumerate(item.answer or []):
            yield item.linkId, f"{path}.answer[{j}]", ans
            yield from _answers(ans.item, f"{path}.answer[{j}].")
        yield from _answers(item.item, f"{path}.")


_VALUE_FIELDS = ("valueInteger", "valueDecimal", "valueBoolean", "valueCoding", "valueString")


def _answer_value(ans) -> tuple[object, str]:
    for name in _VALUE_FIELDS:
        v = getattr(ans, name, None)
        if v is None:
            continue
        if name == "valueCoding":
            ordinal = next((e.valueDecimal for e in (v.extension or []) if e.url and
                            e.url.endswith(("ordinalValue", "itemWeight")) and e.valueDecimal is not None), None)
            return (float(ordinal) if ordinal is not None else v.code if v.code is not None else v.display), \
                f".{name}"
        if name == "valueBoolean":
            return ("yes" if v else "no"), f".{name}"
        return (float(v) if name == "valueDecimal" else v), f".{name}"
    return None, ""


def questionnaire_items(qr, instrument: str) -> tuple[dict[int, tuple[object, str]], list[tuple[str, str, str]]]:
    """Answers by item number (the trailing number of the linkId: ``odi-3``, ``q3``, ``3``) with their JSON
    paths, and problems ``(path, value, message)`` (an item number out of range or answered twice)."""
    n = ITEMS[instrument]
    found: dict[int, tuple[object, str]] = {}
    problems = []
    for link, path, ans in _answers(qr.item, ""):
        m = re.search(r"(\d+)$", str(link or ""))
        if m is None:
            continue  # a total or a note: not an item
        k = int(m[1])
        value, field = _answer_value(ans)
        if not 1 <= k <= n:
            problems.append((f"{path}", str(link), f"linkId {link!r} is not an item of the {instrument} "
                             f"(items 1-{n})"))
        elif k in found:
            problems.append((f"{path}", str(link), f"item {k} is answered twice"))
        else:
            found[k] = (value, path + field)
    return found, problems


def score_items(instrument: str, found: dict, odi_max_missing: int, rmdq_rescale: bool,
                rmdq_max_missing: int) -> tuple[float, list[tuple[str, str, str, str]]]:
    """The score (NaN when not scorable) with :func:`score_odi` / :func:`score_rmdq`, and problems
    ``(path, value, message, expected)``: items outside their range, too many unanswered."""
    n = ITEMS[instrument]
    values = [found.get(k, (None, ""))[0] for k in range(1, n + 1)]
    row = pd.DataFrame([values], columns=range(1, n + 1), dtype=object)
    problems = []
    if instrument == "odi":
        num = pd.to_numeric(row.iloc[0], errors="coerce").to_numpy(float)
        for k, (v, path) in sorted(found.items()):
            x = num[k - 1]
            if v is not None and (np.isnan(x) or x < 0 or x > 5 or x != np.floor(x)):
                problems.append((path, str(v), f"Oswestry section {k} is not scored 0-5", "a whole number 0-5"))
        score = float(score_odi(row, max_missing=odi_max_missing).iat[0]) if not problems else np.nan
        missing = n - int(np.isfinite(num).sum())
        if not problems and np.isnan(score):
            problems.append(("item", f"{n - missing} of {n} answered", f"{missing} Oswestry sections unanswered",
                             f"at most {odi_max_missing} unanswered"))
        return score, problems
    score = float(score_rmdq(row, rescale=rmdq_rescale, max_missing=rmdq_max_missing).iat[0])
    if np.isnan(score):
        answered = sum(v is not None for v in values)
        bad = [(k, v) for k, v in enumerate(values, 1) if v is not None and not _yes_no(v, n)]
        for k, v in bad:
            problems.append((found[k][1], str(v), f"Roland-Morris item {k} is not a yes/no answer", "yes or no"))
        if not bad:
            problems.append(("item", f"{answered} of {n} answered", f"{n - answered} Roland-Morris items unanswered",
                             "all 24 answered" if not rmdq_rescale else f"at most {rmdq_max_missing} unanswered"))
    return score, problems


def _yes_no(value, n: int) -> bool:
    """Whether :func:`score_rmdq` reads a value as a yes or a no."""
    return not np.isnan(score_rmdq(pd.DataFrame([[value] * n], dtype=object)).iat[0])


def modality_of(keys: list[str], texts: list[str], modality_map: dict) -> tuple[str | None, bool]:
    """(modality, declared not a session) of a treatment's codes and texts: ``modality_map`` (code, ``system|code``
    or text -> modality, or None for "not a treatment session") first, then the vocabulary's spellings of the
    texts (``Deep tissue massage``, ``Dry needling``, ``Cupping therapy``)."""
    declared = {str(k).strip().lower(): v for k, v in modality_map.items()}
    for k in keys + texts:
        if k.strip().lower() in declared:
            hit = declared[k.strip().lower()]
            return (None, True) if hit is None else (normalise_modality(pd.Series([hit], dtype=object)).iat[0], False)
    user = {k: v for k, v in modality_map.items() if v is not None}
    hits = normalise_modality(pd.Series(keys + texts, dtype=object), user).dropna()
    return (hits.iat[0] if len(hits) else None), False
