"""Counts in sentences: a sentence from an analysis made safe to print next to a report's suppressed tables."""

from __future__ import annotations

import re

from .disclosure import PRIMARY, SECONDARY, DisclosureLedger

__all__ = ["redact_counts"]

_COUNT_NOUNS = r"(?:episodes?|episode\(s\)|patients?|patient\(s\)|resolutions?|resolution\(s\)|sessions?|measurements?|" \
               r"measurement\(s\)|responders?|rows?|row\(s\)|visits?|visit\(s\))"
_COUNT = re.compile(r"(?<!fewer than )(?<!at least )(?<!under )(?<![\w.<])"
                    r"(\d[\d,]*)(\s+(?:of\s+(?:the\s+)?\d[\d,]*\s+)?(?:[a-z]+\s+){0,3}?" + _COUNT_NOUNS + r")\b")


def redact_counts(text: str, ledger: DisclosureLedger) -> str:
    """Make a sentence from an analysis safe to print next to the ledger's tables.

    A count (a number followed, within three words, by episodes, patients,
    resolutions, sessions, measurements, responders, rows or visits)
    under ``min_n``, or equal to a count the ledger hides, becomes "a few" /
    "some"; ``"k of n episodes"`` is treated the same way for both numbers.

    Examples
    --------
    >>> led = DisclosureLedger(min_n=5)
    >>> redact_counts("only 3 untreated episodes at risk", led)
    'only fewer than 5 untreated episodes at risk'
    """
    hidden = {c.value for k, c in ledger.cells.items()
              if c.value > 0 and (ledger.status[k] in (PRIMARY, SECONDARY) or (not c.shown and ledger.sensitive(k)))}

    def word(num: str) -> str | None:
        v = int(num.replace(",", ""))
        if 0 < v < ledger.min_n:
            return f"fewer than {ledger.min_n}"
        if v in hidden:
            return "some"
        return None

    def repl(m):
        head, tail = m.group(1), m.group(2)
        if "consecutive" in tail:  # "on 2 consecutive visits" is a rule, not a count
            return m.group(0)
        inner = re.match(r"(\s+of\s+(?:the\s+)?)(\d[\d,]*)(.*)", tail, re.S)
        if inner:
            w2 = word(inner.group(2))
            tail = inner.group(1) + (w2 or inner.group(2)) + inner.group(3)
        w = word(head)
        return (w or head) + tail
    return _COUNT.sub(repl, text)
