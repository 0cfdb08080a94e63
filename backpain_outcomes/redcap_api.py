"""The REDCap API: export a project's records and data dictionary with PyCap, and load them as a study.

:func:`fetch_redcap` asks the project's API (through PyCap's
``redcap.Project``) for the flat raw export of the records and for the data
dictionary (``metadata``), then loads them with
:func:`~backpain_outcomes.redcap.load_redcap`. The API token is read from an
environment variable only, never from an argument, and never written into a
message, a note or a result.

PyCap is an optional dependency: ``pip install "backpain_outcomes[sources]"``.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from urllib.parse import urlsplit

import pandas as pd

from .checks import check_bool, check_choice
from .exceptions import ExcludedRowsWarning, MissingDependencyError, warn
from .reading import frame_part
from .redcap import load_redcap
from .study import NO_SESSIONS, Study

try:
    import redcap as pycap
    from requests import RequestException
except ImportError:  # pragma: no cover - the sources extra; the tests monkeypatch pycap to None
    pycap = None  # type: ignore[assignment]
    RequestException = OSError  # type: ignore[assignment,misc]

__all__ = ["fetch_redcap", "TOKEN_ENV"]

#: The environment variable read for the API token by default.
TOKEN_ENV = "REDCAP_API_TOKEN"
_TOKEN = re.compile(r"^[0-9A-Fa-f]{32}$")


def _token(token_env: str) -> str:
    """The token from the environment, checked for its form without ever repeating it."""
    if not isinstance(token_env, str) or not token_env:
        raise TypeError(f"token_env must be the name of an environment variable (str), got {token_env!r}")
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise ValueError(f"token_env: the environment variable {token_env} is not set; put the project's REDCap API "
                         f"token in it (export {token_env}=...), never in code or on the command line")
    if not _TOKEN.match(token):
        raise ValueError(f"token_env: the value of {token_env} is not a REDCap API token (32 hexadecimal "
                         f"characters; it has {len(token)} characters); the value is not shown")
    return token


def _check_url(url) -> str:
    """The API address, ending in ``/api/`` as PyCap requires."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is not None and (parts.query or parts.fragment or "@" in parts.netloc):
        shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"   # never echo what may be a secret
        raise ValueError(f"url: give the API address alone, without a query, a fragment or a user name and "
                         f"password (such as '{shown}'); the token goes in the environment variable only")
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or \
            not url.rstrip("/").endswith("/api"):
        raise ValueError(f"url: expected the address of a REDCap API, ending in /api/, such as "
                         f"'https://redcap.example.org/api/', got {url!r}")
    return url.rstrip("/") + "/"


def _scrub(text: object, token: str) -> str:
    """A server's message, short, without the token (a page may echo the request)."""
    out = re.sub(r"\s+", " ", str(text)).strip().replace(token, "[token]")
    return out if len(out) <= 300 else out[:300] + " ..."


def _refused(url: str, what: str, answer: object, token: str) -> ConnectionError | None:
    """An answer that is an error or a web page instead of ``what``: one error naming the server, never the token."""
    text = answer if isinstance(answer, str) else None
    if isinstance(answer, dict) and "error" in answer:
        return ConnectionError(f"the REDCap API at {url} refused the export: {_scrub(answer['error'], token)}")
    if text is None:
        return None
    head = text.lstrip().lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<")):
        return ConnectionError(f"the REDCap API at {url} answered with an HTML page instead of the {what} (is the URL "
                               "the project's API address, and is the server reachable without a login page?)")
    if head.startswith("{"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = {"error": text}
        return ConnectionError(f"the REDCap API at {url} refused the export: "
                               f"{_scrub(body.get('error', body) if isinstance(body, dict) else body, token)}")
    if not head.strip():
        return ConnectionError(f"the REDCap API at {url} returned no records (the project has none, or the token's "
                               "user may not export them)")
    return None


def _export(project, url: str, token: str) -> tuple[str, list]:
    """The records (flat raw CSV) and the metadata (JSON) of the project; a refusal, a web page or a network failure
    is one error naming the server, never the token."""
    calls = {"records": lambda: project.export_records(format_type="csv", raw_or_label="raw",
                                                       raw_or_label_headers="raw", event_name="unique",
                                                       record_type="flat"),
             "metadata": lambda: project.export_metadata(format_type="json")}
    answers = {}
    for what, call in calls.items():
        try:
            answers[what] = call()
        except pycap.RedcapError as err:
            text = str(err)
            if text.startswith("Expecting value"):  # PyCap could not decode the JSON of the metadata it asked for
                text, what = "<html>", "metadata"
            refused = _refused(url, what, text, token)
            if refused is not None and "HTML page" in str(refused):
                raise refused from None
            raise ConnectionError(f"the REDCap API at {url} refused the export: {_scrub(text, token)}") from None
        except ValueError:  # the answer is not JSON (requests' JSONDecodeError): a web page
            raise ConnectionError(f"the REDCap API at {url} answered with an HTML page instead of the {what} (is the "
                                  "URL the project's API address?)") from None
        except RequestException as err:
            raise ConnectionError(f"the REDCap API at {url} could not be reached: {type(err).__name__}") from None
        refused = _refused(url, what, answers[what], token)
        if refused is not None:
            raise refused
    records, metadata = answers["records"], answers["metadata"]
    if not isinstance(metadata, list) or not isinstance(records, str):
        raise ConnectionError(f"the REDCap API at {url} answered with something other than records and metadata")
    return records, metadata


def fetch_redcap(url: str, mapping, *, token_env: str = TOKEN_ENV, errors: str = "raise",
                 dayfirst: bool | None = None, today=None, no_sessions: str = "unknown",
                 verify_ssl: bool = True) -> Study:
    """Export a REDCap project through its API and load it as a study.

    Parameters
    ----------
    url : str
        The project's API address, ``https://redcap.example.org/api/``.
    mapping : dict, str or Path
        As for :func:`~backpain_outcomes.redcap.load_redcap`.
    token_env : str
        The environment variable holding the API token (default
        ``REDCAP_API_TOKEN``). The token is never an argument, so that it
        stays out of notebooks, scripts and shell histories.
    errors, dayfirst, today, no_sessions :
        As for :func:`~backpain_outcomes.load_study`.
    verify_ssl : bool
        Check the server's certificate (default True).

    Returns
    -------
    Study
        As from :func:`~backpain_outcomes.redcap.load_redcap`. Rows are
        numbered as in a CSV export of the records (line 2 = the first
        record row); the records' source is ``REDCap API (host)``.

    Raises
    ------
    MissingDependencyError
        PyCap is not installed (``pip install "backpain_outcomes[sources]"``).
    ValueError
        The token's variable is unset or does not hold a token (named, the
        token never shown), or the URL is not an API address.
    ConnectionError
        The server refused the export (its message) or could not be reached.

    Examples
    --------
    >>> from backpain_outcomes.redcap_api import fetch_redcap
    >>> fetch_redcap("https://redcap.example.org/api/", {}, token_env="NO_SUCH_VARIABLE_SET")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: token_env: the environment variable NO_SUCH_VARIABLE_SET is not set; ...
    """
    if pycap is None:
        raise MissingDependencyError("fetch_redcap needs PyCap: pip install \"backpain_outcomes[sources]\" "
                                     "(or pip install pycap)")
    url = _check_url(url)
    check_bool(verify_ssl, "verify_ssl")
    check_choice(errors, "errors", ("raise", "exclude"))   # before the server is asked for anything
    check_choice(no_sessions, "no_sessions", NO_SESSIONS)
    if dayfirst is not None:
        check_bool(dayfirst, "dayfirst")
    token = _token(token_env)
    project = pycap.Project(url, token, verify_ssl=verify_ssl)
    records, metadata = _export(project, url, token)
    frame = pd.read_csv(io.StringIO(records), dtype=str, keep_default_na=False)
    part = frame_part(frame, f"REDCap API ({urlsplit(url).netloc})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcludedRowsWarning)
        study = load_redcap(part, metadata, mapping, errors=errors, dayfirst=dayfirst, today=today,
                            no_sessions=no_sessions)
    for w in caught:  # re-stated for the caller's line
        warn(w.message, w.category)
    study.notes.insert(0, f"records and data dictionary exported from the REDCap API at {url} (flat, raw); rows are "
                          "numbered as in a CSV export (line 2 = the first record row)")
    return study
