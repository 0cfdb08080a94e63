"""The domain vocabulary: modalities, treatment status, chronicity, instruments, MCIDs, labels.

Every module of the package (loading, simulation, analyses, report) takes its
names from here, so that a treatment group, an instrument or a cut-off means
the same thing everywhere.

Treatment status
    An episode's ``modality`` is its primary treatment (the modality of more
    than half of its sessions), ``mixed`` when no modality has a majority,
    ``untreated`` when it is *known* that the episode was not treated, and
    ``unknown`` when treatment was not recorded. ``none``, "no treatment",
    "natural course" and "control" are accepted as input spellings of
    ``untreated``; the package itself only writes ``untreated``.

Chronicity
    Time from pain onset to first contact: ``acute`` under 6 weeks (42 days),
    ``subacute`` 6 to 12 weeks, ``chronic`` 12 weeks (84 days) or more,
    ``unknown`` without an onset date.

Instruments (higher is worse for all four)

==========  ===========  =====================================================
instrument  range        name
==========  ===========  =====================================================
``nrs``     0-10         numeric pain rating scale
``vas``     0-100 (mm)   visual analogue scale for pain
``odi``     0-100 (%)    Oswestry Disability Index (Fairbank & Pynsent 2000)
``rmdq``    0-24         Roland-Morris Disability Questionnaire (Roland &
                         Morris 1983)
==========  ===========  =====================================================

Minimal clinically important change (MCID) follows the international
consensus of Ostelo et al. (2008), *Spine* 33(1):90-94: NRS 2 points, VAS 15
of 100, ODI 10 points, RMDQ 5 points, or a 30% improvement from baseline.

Ratings of change
    ``grc``, the global rating of change (also written GROC, PGIC, GPE), is
    not a level of pain or disability but the patient's own rating of how
    much they changed, on one ordered scale of 5 to 7 categories. It is
    coded like the Patient Global Impression of Change: **1 = the best
    category** ("very much better", "completely recovered"), higher is worse,
    up to 7 on a 7-point scale (1 very much better, 2 much better, 3 a little
    better, 4 no change, 5 a little worse, 6 much worse, 7 very much worse;
    :data:`GRC_LABELS`). A rating of 1 or 2, the two best categories, counts
    as *improved* (:data:`GRC_IMPROVED`), the dichotomy discussed by Kamper,
    Maher & Mackay (2009), *J Man Manip Ther* 17(3):163-170. Scales coded the
    other way (``-3`` to ``+3``, or 7 = best) must be recoded before loading:
    a negative rating is refused as out of range, a reversed 1-7 coding
    cannot be told from the data. Ratings of change are in
    :data:`RATINGS_OF_CHANGE`, never in :data:`INSTRUMENTS`: they have no
    baseline, no MCID and no 0-100 score, and the analyses of levels refuse
    them (:func:`instrument_name`); :mod:`backpain_outcomes.ordinal` analyses
    them.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

import numpy as np
import pandas as pd

__all__ = [
    "UNTREATED", "UNKNOWN", "MIXED", "TREATED_MODALITIES", "MODALITIES", "MODALITY_LEVELS", "CHRONICITY_LEVELS",
    "ACUTE_DAYS", "CHRONIC_DAYS", "INSTRUMENTS", "INSTRUMENT_RANGES", "MCID_ABSOLUTE", "MCID_RELATIVE",
    "INSTRUMENT_ALIASES", "MODALITY_ALIASES", "UNTREATED_ALIASES", "RATINGS_OF_CHANGE", "GRC_LABELS", "GRC_IMPROVED",
    "label", "instrument_label",
    "instrument_name", "modality_name", "normalise_instrument", "normalise_modality", "did_you_mean",
    "chronicity_from_days",
]

#: Treatment status of an episode known to be untreated.
UNTREATED = "untreated"
#: Treatment status of an episode whose treatment was not recorded.
UNKNOWN = "unknown"
#: Primary modality of an episode where no modality has more than half of the sessions.
MIXED = "mixed"
#: The five named remedial-massage modalities.
TREATED_MODALITIES = ("deep_tissue", "trigger_point", "swedish", "dry_needling", "cupping")
#: Modalities a session may record.
MODALITIES = (*TREATED_MODALITIES, "other")
#: Levels of an episode's ``modality``, the reference level (``untreated``) first.
MODALITY_LEVELS = (UNTREATED, *MODALITIES, MIXED, UNKNOWN)

#: Chronicity cut-offs in days from onset to first contact (6 and 12 weeks).
ACUTE_DAYS, CHRONIC_DAYS = 42, 84
CHRONICITY_LEVELS = ("acute", "subacute", "chronic", "unknown")

#: instrument -> (low, high)
INSTRUMENT_RANGES: dict[str, tuple[float, float]] = {
    "nrs": (0.0, 10.0), "vas": (0.0, 100.0), "odi": (0.0, 100.0), "rmdq": (0.0, 24.0)}
#: instrument -> (low, high, label); kept for code that wants all three.
INSTRUMENTS: dict[str, tuple[float, float, str]] = {
    "nrs": (0.0, 10.0, "Pain NRS (0-10)"),
    "vas": (0.0, 100.0, "Pain VAS (0-100 mm)"),
    "odi": (0.0, 100.0, "Oswestry Disability Index (0-100%)"),
    "rmdq": (0.0, 24.0, "Roland-Morris Disability Questionnaire (0-24)"),
}
#: Ratings of change: instrument -> (low, high, label). Coded 1 = best; never levels (see the module notes).
RATINGS_OF_CHANGE: dict[str, tuple[float, float, str]] = {
    "grc": (1.0, 7.0, "Global rating of change (1 = very much better, 7 = very much worse)"),
}
#: Category labels of the global rating of change by number of points, the best first.
GRC_LABELS: dict[int, tuple[str, ...]] = {
    7: ("very much better", "much better", "a little better", "no change", "a little worse", "much worse",
        "very much worse"),
    5: ("much better", "a little better", "no change", "a little worse", "much worse"),
}
#: Ratings up to this one (the two best categories) count as improved (Kamper, Maher & Mackay 2009).
GRC_IMPROVED = 2
#: Ostelo et al. 2008 (Spine 33:90-94) minimal important change, absolute points.
MCID_ABSOLUTE = {"nrs": 2.0, "vas": 15.0, "odi": 10.0, "rmdq": 5.0}
#: Ostelo et al. 2008: 30% improvement from baseline for every instrument.
MCID_RELATIVE = 0.30

INSTRUMENT_ALIASES: dict[str, list[str]] = {
    "nrs": ["nrs", "nprs", "pain nrs", "numeric rating scale", "numeric pain rating scale",
            "pain numeric rating scale", "nrs pain", "pain intensity nrs", "nrs 0-10", "nrs11", "pain score",
            "pain (0-10)", "painscore"],
    "vas": ["vas", "vas (mm)", "vas mm", "visual analogue scale", "visual analog scale",
            "pain vas", "vas pain", "vas 0-100"],
    "odi": ["odi", "oswestry", "oswestry disability index", "oswestry index",
            "oswestry low back pain disability questionnaire", "odi (%)", "odi %"],
    "rmdq": ["rmdq", "rdq", "rmq", "roland-morris", "roland morris",
             "roland-morris disability questionnaire", "roland morris disability questionnaire",
             "rmdq-24", "rdq-24"],
    "grc": ["grc", "groc", "global rating of change", "global rating of change scale", "global rating",
            "pgic", "patient global impression of change", "global impression of change", "gpe",
            "global perceived effect"],
}
UNTREATED_ALIASES = ["untreated", "none", "no treatment", "no_treatment", "not treated", "natural course",
                     "natural_course", "no therapy", "wait list", "waitlist"]
MODALITY_ALIASES: dict[str, list[str]] = {
    "deep_tissue": ["deep tissue", "deep tissue massage", "deep-tissue massage", "dtm",
                    "structural massage", "deep tissue therapy"],
    "trigger_point": ["trigger point", "trigger point therapy", "trigger-point therapy",
                      "trigger point massage", "trigger point release", "myofascial trigger point therapy"],
    "swedish": ["swedish", "swedish massage", "relaxation massage", "classic massage",
                "classical massage"],
    "dry_needling": ["dry needling", "dry-needling", "needling", "dn", "intramuscular dry needling"],
    "cupping": ["cupping", "cupping therapy", "dry cupping", "wet cupping", "myofascial cupping"],
    "other": ["other"],
    UNTREATED: UNTREATED_ALIASES,
}

_LABELS = {
    "deep_tissue": "Deep tissue", "trigger_point": "Trigger point", "swedish": "Swedish",
    "dry_needling": "Dry needling", "cupping": "Cupping", "other": "Other modality",
    UNTREATED: "Untreated", MIXED: "Mixed modalities", UNKNOWN: "Treatment unknown",
    "acute": "Acute (< 6 weeks)", "subacute": "Subacute (6-12 weeks)", "chronic": "Chronic (>= 12 weeks)",
    "nrs": "Pain NRS", "vas": "Pain VAS", "odi": "Oswestry (ODI)", "rmdq": "Roland-Morris (RMDQ)",
    "grc": "Global rating of change",
    "onset": "days since onset", "first_contact": "days since first contact",
}


def label(code: object) -> str:
    """Human-readable label of a vocabulary code ("dry_needling" -> "Dry needling").

    Codes outside the vocabulary are returned as text with underscores as spaces.

    Examples
    --------
    >>> label("dry_needling"), label("untreated"), label("chronic")
    ('Dry needling', 'Untreated', 'Chronic (>= 12 weeks)')
    """
    text = str(code)
    return _LABELS.get(text, text.replace("_", " "))


def instrument_label(instrument: str) -> str:
    """Label with range, e.g. ``"Pain NRS (0-10)"``."""
    return {**INSTRUMENTS, **RATINGS_OF_CHANGE}[instrument][2]


def _key(text: object) -> str:
    """Matching key: Unicode compatibility form (full-width "ＳＷＥＤＩＳＨ" is "SWEDISH"), lower case,
    only letters and digits (spaces, punctuation and zero-width characters dropped)."""
    return re.sub(r"[^0-9a-z]", "", unicodedata.normalize("NFKC", str(text)).lower())


def _alias_index(aliases: dict[str, list[str]]) -> dict[str, str]:
    index = {}
    for canonical, names in aliases.items():
        for name in [canonical, *names]:
            index[_key(name)] = canonical
    return index


_INSTRUMENT_INDEX = _alias_index(INSTRUMENT_ALIASES)
_MODALITY_INDEX = _alias_index(MODALITY_ALIASES)


def did_you_mean(value: object, choices) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(value).lower(), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _name(value, index, canonical, argument, what) -> str:
    if isinstance(value, str):
        hit = index.get(_key(value))
        if hit is not None:
            return hit
    raise ValueError(f"{argument}={value!r} is not a known {what}; choose one of {', '.join(canonical)} "
                     f"(common spellings are accepted){did_you_mean(value, canonical)}")


def instrument_name(value: object, argument: str = "instrument", ratings: bool = False) -> str:
    """Canonical instrument code for any accepted spelling ("NPRS" -> "nrs").

    ``ratings=True`` also accepts the ratings of change (``"PGIC"`` ->
    ``"grc"``); otherwise a rating of change is refused with a pointer to the
    analysis that takes it, since the analyses of levels (baselines, MCID,
    resolution rules, curves) have no meaning for it.

    Raises
    ------
    ValueError
        Naming ``argument``, the value and the choices.

    Examples
    --------
    >>> instrument_name("NPRS"), instrument_name("Oswestry"), instrument_name("RDQ")
    ('nrs', 'odi', 'rmdq')
    >>> instrument_name("Global rating of change", ratings=True)
    'grc'
    """
    choices = [*INSTRUMENTS, *RATINGS_OF_CHANGE] if ratings else list(INSTRUMENTS)
    code = _name(value, _INSTRUMENT_INDEX, choices, argument, "instrument")
    if code in RATINGS_OF_CHANGE and not ratings:
        raise ValueError(f"{argument}={value!r} is a rating of change ({code}), not a level of pain or disability: "
                         "analyse it with backpain_outcomes.ordinal.fit_grc_model; the levels are "
                         f"{', '.join(INSTRUMENTS)}")
    return code


def modality_name(value: object, argument: str = "modality") -> str:
    """Canonical modality or treatment-status code for any accepted spelling.

    ``"none"``, ``"no treatment"`` and ``"natural course"`` give ``"untreated"``;
    ``"mixed"`` and ``"unknown"`` are accepted as they are.

    Examples
    --------
    >>> modality_name("Deep Tissue Massage"), modality_name("none")
    ('deep_tissue', 'untreated')
    """
    if isinstance(value, str) and _key(value) in (MIXED, UNKNOWN):
        return _key(value)
    return _name(value, _MODALITY_INDEX, list(MODALITY_LEVELS), argument, "modality or treatment status")


def _check_map(user_map: dict | None, index: dict[str, str], canonical, argument: str) -> dict[str, str]:
    """Validate a user's label map; targets are matched like any label (case, spacing, aliases)."""
    if user_map is None:
        return {}
    if not isinstance(user_map, dict):
        raise TypeError(f"{argument} must be a dict of raw label -> vocabulary name, got {type(user_map).__name__}")
    out = {}
    for raw, target in user_map.items():
        hit = index.get(_key(target)) if isinstance(target, str) else None
        if hit is None:
            raise ValueError(f"{argument}: target {target!r} (for {raw!r}) is not in the vocabulary; choose one of "
                             f"{', '.join(canonical)}{did_you_mean(target, canonical)}")
        out[_key(raw)] = hit
    return out


def _normalise(values: pd.Series, index: dict[str, str], user: dict[str, str]) -> pd.Series:
    """Map raw labels onto a vocabulary; unknown labels become None."""
    lookup = {**index, **user}
    codes, uniq = pd.factorize(values)  # normalise each distinct label once
    mapped = np.array([lookup.get(_key(u)) for u in uniq] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def normalise_instrument(values: pd.Series, user_map: dict | None = None) -> pd.Series:
    """Map instrument labels ("NPRS", "Oswestry", "RDQ", "VAS (mm)", "PGIC", ...) onto
    ``nrs``/``vas``/``odi``/``rmdq`` and the rating of change ``grc``; matching ignores case, spaces,
    hyphens, underscores and brackets. Unknown labels become missing (the loader reports them).
    ``user_map`` targets must themselves be instruments (any accepted spelling)."""
    user = _check_map(user_map, _INSTRUMENT_INDEX, [*INSTRUMENTS, *RATINGS_OF_CHANGE], "instrument_map")
    return _normalise(values, _INSTRUMENT_INDEX, user)


def normalise_modality(values: pd.Series, user_map: dict | None = None) -> pd.Series:
    """Map modality labels ("Deep Tissue Massage", "trigger-point therapy", "No treatment", ...)
    onto :data:`MODALITIES` or ``untreated``; unknown labels become missing.
    ``user_map`` targets must themselves be in the vocabulary (any accepted spelling)."""
    user = _check_map(user_map, _MODALITY_INDEX, [*MODALITIES, UNTREATED], "modality_map")
    return _normalise(values, _MODALITY_INDEX, user)


def chronicity_from_days(days: pd.Series) -> pd.Series:
    """Chronicity from days between onset and first contact (categorical over
    :data:`CHRONICITY_LEVELS`; ``unknown`` where the delay is missing)."""
    d = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    levels = list(CHRONICITY_LEVELS)
    with np.errstate(invalid="ignore"):  # (a missing delay is none of the three: unknown)
        codes = np.select([d < ACUTE_DAYS, d < CHRONIC_DAYS, d >= CHRONIC_DAYS],
                          [levels.index("acute"), levels.index("subacute"), levels.index("chronic")],
                          levels.index("unknown")).astype(np.int8)
    return pd.Series(pd.Categorical.from_codes(codes, categories=levels), index=days.index)
