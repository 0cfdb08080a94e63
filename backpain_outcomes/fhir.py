"""FHIR R4 sources: a Bundle or a Bulk Data NDJSON export as a study.

:func:`load_fhir` reads FHIR R4 resources, validates each one with the
maintained `fhir.resources <https://pypi.org/project/fhir.resources/>`_ models
(R4B, see :mod:`backpain_outcomes.fhir_read`), turns them into the package's
four tables and hands those to :func:`~backpain_outcomes.load_study`, so that
every check of the loader applies, and every problem names the resource it is
about: its file, its NDJSON line or Bundle entry number (``row``), and
``Type/id: json.path`` (``column``).

=========================  ==========================================================
resource                   becomes
=========================  ==========================================================
Patient                    a patient: ``id``; ``gender`` -> sex; ``birthDate`` -> age in
                           whole years at the onset of the first episode (else at the
                           first score or session)
Condition (low back pain)  an episode: ``id``, ``subject``, ``onsetDateTime`` (or
                           ``onsetPeriod.start``)
Observation (pain codes)   an NRS or VAS score: ``subject``, ``effective[x]``,
                           ``valueQuantity.value`` (or ``valueInteger``)
QuestionnaireResponse      an ODI or RMDQ score from its items (:func:`score_odi`,
                           :func:`score_rmdq`), ``authored``
Procedure, Encounter       a treatment session: ``code`` / ``type`` -> modality,
                           ``performed[x]`` / ``period.start``
=========================  ==========================================================

Every resource is used or excluded with its reason (``study.exclusions``);
resources of other types are counted in ``study.notes``.

Real exports
    A resource read twice (a Patient included in every page of a search, an
    NDJSON file given twice) is used once, the other copies ``duplicate``;
    of several versions of one ``Type/id`` the latest by ``meta.versionId``
    (else ``meta.lastUpdated``) is used, the others ``superseded``; copies that
    differ with nothing to order them are ``conflicting_versions`` errors,
    every one. A Bundle page with a ``next`` link, OperationOutcome errors and
    warnings (a truncated search), a missing Patient resource and a VAS
    without unit are said in ``study.notes``; a deletion in a history Bundle
    is set aside (``deleted``). References may name a version
    (``Patient/p1/_history/2``). A Patient merged into another (``link``
    ``replaced-by``) is set aside as ``replaced`` and its resources are the
    other patient's. Resources without an id in a transaction Bundle are named
    by their ``urn:uuid`` fullUrl; Bundles inside a list or a batch-response
    are read as their own sources; gzipped NDJSON (``.ndjson.gz``) is read;
    a value with a ``comparator`` (``<3``) is not a score. The day of a
    dateTime is the calendar day written, whatever its UTC offset
    (``2024-05-03T23:30:00-05:00`` is 2024-05-03), for scores, sessions and
    onsets alike (times in UTC are counted in the notes).
"""

from __future__ import annotations

import warnings
from collections import Counter

import pandas as pd

from .checks import check_bool, check_choice, check_int
from .exceptions import DataValidationError, ExcludedRowsWarning, warn
from .fhir_codes import ITEMS, LOW_BACK_PAIN_CODES, OBSERVATION_CODES
from .fhir_map import SET_ASIDE_REASONS, Mapper, Options
from .fhir_read import FHIR_VERSION, READ_TYPES, parse, read_resources, require_fhir_resources
from .fhir_versions import deduplicate, outcome_notes
from .loading import load_study
from .problems import CONSEQUENCE, ERROR, EXCLUSION_COLUMNS, PROBLEM_COLUMNS, SET_ASIDE, Problems
from .study import NO_SESSIONS, Study
from .vocabulary import instrument_name, normalise_modality

__all__ = ["load_fhir"]

_TABLES = ("patients", "episodes", "sessions", "scores")


# ------------------------------------------------------------------------------------------ arguments
def _codes(observation_codes) -> dict:
    out: dict[str, str | None] = dict(OBSERVATION_CODES)
    for code, inst in (observation_codes or {}).items():
        name = None if inst is None else instrument_name(inst, f"observation_codes[{code!r}]")
        if name not in (None, "nrs", "vas"):
            raise ValueError(f"observation_codes[{code!r}]: {inst!r} is not a score an Observation holds here; "
                             "choose nrs or vas (or None to stop reading a code)")
        out[str(code)] = name
    return {k: v for k, v in out.items() if v is not None}


def _questionnaires(questionnaires) -> dict:
    out = {}
    for key, inst in (questionnaires or {}).items():
        name = instrument_name(inst, f"questionnaires[{key!r}]")
        if name not in ITEMS:
            raise ValueError(f"questionnaires[{key!r}]: {inst!r} is not scored from items; choose odi or rmdq")
        out[str(key)] = name
    return out


def _options(observation_codes, questionnaires, condition_codes, modality_map, odi_max_missing, rmdq_rescale,
             rmdq_max_missing) -> Options:
    for name, value in (("observation_codes", observation_codes), ("questionnaires", questionnaires),
                        ("modality_map", modality_map)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    if isinstance(condition_codes, str):
        condition_codes = [condition_codes]
    if condition_codes is not None and (not isinstance(condition_codes, list | tuple | set | frozenset) or
                                        not all(isinstance(c, str) and c.strip() for c in condition_codes)):
        raise TypeError("condition_codes must be a code or a list of codes ('system|code' or the bare code, as "
                        f"text), got {type(condition_codes).__name__}: {condition_codes!r}"[:300])
    mapping = dict(modality_map or {})
    normalise_modality(pd.Series([], dtype=object), {k: v for k, v in mapping.items() if v is not None})
    return Options(_codes(observation_codes), _questionnaires(questionnaires),
                   (*LOW_BACK_PAIN_CODES, *map(str, condition_codes or ())), mapping,
                   check_int(odi_max_missing, "odi_max_missing"), check_bool(rmdq_rescale, "rmdq_rescale"),
                   check_int(rmdq_max_missing, "rmdq_max_missing"))


# ------------------------------------------------------------------------------------------ problems
def _relabel(frame: pd.DataFrame, where: dict) -> pd.DataFrame:
    """Problems of the loader's tables named by resource and JSON path (``Observation/obs-3: effectiveDateTime``)."""
    if not len(frame):
        return frame
    out = frame.copy()
    columns = []
    for table, source, row, column in zip(out["table"].astype(object), out["source"].astype(object),
                                          out["row"].astype(object), out["column"].astype(object)):
        hit = None if pd.isna(row) else where.get((str(table), str(source), int(row)))
        if hit is None:
            columns.append(column)
            continue
        label, paths = hit
        columns.append(f"{label}: {paths.get(column, column)}" if column else label)
    out["column"] = pd.Series(columns, index=out.index, dtype=object)
    return out


def _plain(frame: pd.DataFrame, columns: list) -> pd.DataFrame:
    out = frame[columns].astype({c: object for c in columns if c != "row"})
    out["row"] = out["row"].astype("Int64")
    return out.reset_index(drop=True)


def _merge(*frames: pd.DataFrame) -> pd.DataFrame:
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return frames[0]
    out = pd.concat(nonempty, ignore_index=True)
    return out.sort_values(["table", "source", "row"], kind="stable", na_position="first").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ load
def load_fhir(source, *, observation_codes: dict | None = None, questionnaires: dict | None = None,
              condition_codes=None, modality_map: dict | None = None, errors: str = "raise", today=None,
              no_sessions: str = "unknown", odi_max_missing: int = 1, rmdq_rescale: bool = False,
              rmdq_max_missing: int = 0) -> Study:
    """Load FHIR R4 resources (a Bundle, NDJSON, a Bulk Data export) as a study.

    Parameters
    ----------
    source : str, Path, dict or list
        A Bundle (or one resource) in a ``.json`` file, an ``.ndjson`` file
        (one resource per line), a directory of them (a Bulk Data export:
        ``Patient.ndjson``, ``Observation.ndjson``, ...), or parsed JSON: a
        Bundle dict or a list of resource dicts.
    observation_codes : dict, optional
        More Observation codes, ``{"http://loinc.org|72514-3": "nrs"}``
        (``system|code`` or the bare code -> ``nrs`` or ``vas``; ``None``
        stops reading a default code). Defaults: LOINC 72514-3 (NRS),
        38214-3 and SNOMED CT 273903006 (VAS, mm), 38208-5 (VAS when in mm or
        cm, else NRS); see :mod:`backpain_outcomes.fhir_codes`.
    questionnaires : dict, optional
        Questionnaire canonicals (or LOINC codes) of the ODI and RMDQ,
        ``{"http://example.org/Questionnaire/oswestry|2.1a": "odi"}``. Without
        one, a canonical whose last segment is named after the instrument
        (``.../Questionnaire/odi``, ``.../oswestry``, ``.../rmdq``,
        ``.../roland-morris``) is read as it.
    condition_codes : str or list, optional
        More codes (``system|code`` or bare) of Conditions that open an
        episode, besides SNOMED CT 279039007 and ICD-10 M54.5.
    modality_map : dict, optional
        Procedure and Encounter codes (``system|code`` or bare) or texts ->
        modality, ``{"http://snomed.info/sct|<code>": "cupping"}``; ``None``
        declares a code not a treatment session (set aside). Texts and
        displays are also read through the vocabulary (``Deep tissue
        massage``, ``Dry needling``).
    errors, today, no_sessions :
        As for :func:`~backpain_outcomes.load_study`.
    odi_max_missing, rmdq_rescale, rmdq_max_missing :
        Missing-item rules of :func:`score_odi` and :func:`score_rmdq`.

    Returns
    -------
    Study
        Rows keep their resource's file (``_source``) and row (NDJSON line or
        Bundle entry number); ``study.notes`` starts with what was read.

    Raises
    ------
    MissingDependencyError
        fhir.resources is not installed (``pip install 'backpain_outcomes[sources]'``).
    DataValidationError
        Every problem once, as ``file:row:Type/id: json.path: message``.

    Examples
    --------
    >>> from backpain_outcomes.fhir import load_fhir
    >>> resources = [
    ...     {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-06-15"},
    ...     {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
    ...      "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
    ...      "effectiveDateTime": "2024-03-01T09:30:00+01:00", "valueQuantity": {"value": 7}}]
    >>> study = load_fhir(resources, today="2025-01-01")
    >>> study.scores[["patient_id", "instrument", "score", "_row"]].values.tolist()
    [['p1', 'nrs', 7.0, 2]]
    >>> study.patients["age"].tolist()  # at the first score: no Condition gives an onset
    [43.0]
    """
    require_fhir_resources()
    options = _options(observation_codes, questionnaires, condition_codes, modality_map, odi_max_missing,
                       rmdq_rescale, rmdq_max_missing)
    check_choice(errors, "errors", ("raise", "exclude"))
    check_choice(no_sessions, "no_sessions", NO_SESSIONS)
    p = Problems()
    resources, notes, files = read_resources(source, p)
    mapper, other = _map(resources, p, options)
    notes = [_read_note(resources, mapper, other), *notes, *outcome_notes(resources), *mapper.notes()]
    named = sum(r.id_from_url for r in resources)
    if named:
        notes.append(f"{named} resource(s) without an id (a transaction Bundle) are named by their fullUrl "
                     "(urn:uuid:<uuid> gives the id <uuid>)")
    partial = mapper.fill_ages()
    if partial:
        notes.append(f"{partial} patient(s) have a birthDate without a day (a year or a month): their age is blank")
    parts = {t: mapper.parts(t) for t in _TABLES}
    if not parts["scores"]:
        raise DataValidationError(_plain(p.frame(kinds=(ERROR, CONSEQUENCE, SET_ASIDE)), PROBLEM_COLUMNS),
                                  header="no resource gives a score: no Observation of a pain code and no "
                                         "scorable QuestionnaireResponse of the ODI or RMDQ")
    study = _load(parts, p, mapper.where, errors, today, no_sessions)
    study.notes = notes + study.notes
    study.input_files.extend(files)
    return study


def _map(resources: list, p: Problems, options: Options) -> tuple[Mapper, Counter]:
    """Parse every resource of a type read here and map it; the others are counted."""
    other: Counter = Counter(r.rtype for r in resources if r.rtype not in READ_TYPES)
    every = [r for r in resources if r.rtype in READ_TYPES]
    mine = deduplicate(every, p)
    valid = {id(r): parse(r, p) for r in mine}
    known = {r.rid for r in every if r.rtype == "Patient" and r.rid is not None}
    lost = known - {r.rid for r in mine if r.rtype == "Patient" and valid[id(r)]}
    urls = {r.full_url: (r.rtype, r.rid) for r in resources if r.full_url}
    mapper = Mapper(p, options, urls, lost, known or None)
    mapper.merges([r for r in mine if r.rtype == "Patient" and valid[id(r)]])
    order = {"Patient": 0, "Condition": 1, "Encounter": 3}
    for r in sorted((r for r in mine if valid[id(r)]), key=lambda r: order.get(r.rtype, 2)):
        if r.rtype == "Encounter":
            mapper.encounter(r, mapper.procedure_encounters)
        else:
            getattr(mapper, {"QuestionnaireResponse": "questionnaire"}.get(r.rtype, r.rtype.lower()))(r)
    return mapper, other


def _read_note(resources: list, mapper: Mapper, other: Counter) -> str:
    counts = Counter(r.rtype for r in resources)
    used = ", ".join(f"{k} {n}" for k, n in sorted(mapper.counts.items()))
    tail = (f"; types not read by this loader: {', '.join(f'{k} {n}' for k, n in sorted(other.items()))}"
            if other else "")
    return (f"FHIR {FHIR_VERSION}: {len(resources)} resource(s) read ({', '.join(f'{k} {n}' for k, n in sorted(counts.items()))}); "
            f"rows made: {used or 'none'} (the loader's checks follow; see study.exclusions){tail}")


def _load(parts: dict, p: Problems, where: dict, errors: str, today, no_sessions: str) -> Study:
    """The loader on the mapped tables; its problems and the resources' own ones together."""
    mine = _plain(p.frame(kinds=(ERROR,)), PROBLEM_COLUMNS)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ExcludedRowsWarning)
            study = load_study(patients=parts["patients"] or None, episodes=parts["episodes"] or None,
                               sessions=parts["sessions"] or None, scores=parts["scores"], errors=errors,
                               today=today, no_sessions=no_sessions)
    except DataValidationError as err:
        theirs = _relabel(err.problems, where)
        raise DataValidationError(_merge(mine, _plain(theirs, list(theirs.columns))),
                                  header=err.header if not len(mine) else None) from None
    if errors == "raise" and len(mine):
        raise DataValidationError(mine)
    for w in caught:
        if not issubclass(w.category, ExcludedRowsWarning):
            warn(w.message, w.category)
    excluded = _plain(p.exclusions(), EXCLUSION_COLUMNS)
    for table, n in excluded["table"].value_counts().items():
        if table in _TABLES:
            study.rows_read[table] = study.rows_read.get(table, 0) + int(n)
    other = excluded.loc[~excluded["table"].isin(_TABLES), "reason"].value_counts()
    if len(other):  # not in study.flow(), which counts the four tables
        study.notes.append(f"{int(other.sum())} item(s) of the input are not resources of a table "
                           f"({', '.join(f'{k} {v}' for k, v in other.sort_index().items())}): they are in "
                           "study.exclusions as table fhir")
    study.exclusions = _merge(excluded, _plain(_relabel(study.exclusions, where), EXCLUSION_COLUMNS))
    study.blanked_values = _relabel(study.blanked_values, where)
    n_bad = int((~study.exclusions["reason"].isin([*SET_ASIDE_REASONS, "duplicate", "blank_row"])).sum())
    if n_bad:
        warn(f"{n_bad} invalid resource(s) or row(s) were excluded (see study.exclusions; reasons: "
                      f"{study.exclusions['reason'].value_counts().to_dict()})", ExcludedRowsWarning)
    return study
