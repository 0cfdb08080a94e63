"""fetch_redcap: PyCap's requests answered by responses recorded for the test project (tests/data/redcap/
api_records.csv for content=record, api_metadata.json for content=metadata); no network. The study must be the
one loaded from the same export as a file, and the token must never leave the request."""

import warnings

import pytest
import requests
from test_redcap import DATA, DICTIONARY, MAPPING, SCORES, SESSIONS, TODAY, _scores, _sessions

import backpain_outcomes.redcap_api as redcap_api
from backpain_outcomes.exceptions import ExcludedRowsWarning, MissingDependencyError
from backpain_outcomes.redcap import load_redcap
from backpain_outcomes.redcap_api import fetch_redcap

URL = "https://redcap.example.org/api/"
TOKEN = "0123456789ABCDEF0123456789ABCDEF"  # a made-up token of the right form (32 hexadecimal characters)
RECORDED = {"record": DATA / "api_records.csv", "metadata": DATA / "api_metadata.json"}


def _answer(body: bytes, status: int = 200) -> requests.Response:
    r = requests.Response()
    r.status_code, r.encoding, r._content = status, "utf-8", body
    return r


@pytest.fixture
def server(monkeypatch):
    """Replays the recorded responses for every POST PyCap makes; keeps the payloads it was sent."""
    calls = []

    def post(session, url, data=None, **kwargs):
        calls.append((url, dict(data)))
        return _answer(RECORDED[data["content"]].read_bytes())
    monkeypatch.setattr(requests.Session, "post", post)
    monkeypatch.setenv("REDCAP_API_TOKEN", TOKEN)
    return calls


def _fetch(**kw):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", ExcludedRowsWarning)
        return fetch_redcap(URL, MAPPING, today=TODAY, errors="exclude", **kw)


def test_the_fetched_study_is_the_one_loaded_from_the_export_file(server):
    study = _fetch()
    assert _sessions(study) == SESSIONS
    assert _scores(study) == SCORES
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", ExcludedRowsWarning)
        from_file = load_redcap(DATA / "records_raw.csv", DICTIONARY, MAPPING, today=TODAY, errors="exclude")
    assert study.exclusions[["row", "column", "reason"]].values.tolist() == \
        from_file.exclusions[["row", "column", "reason"]].values.tolist()
    assert study.exclusions["source"].tolist() == ["REDCap API (redcap.example.org) (pain_nrs)",
                                                   "REDCap API (redcap.example.org)"]
    assert study.notes[0].startswith("records and data dictionary exported from the REDCap API at "
                                     "https://redcap.example.org/api/")


def test_pycap_asks_for_the_flat_raw_export_and_the_metadata(server):
    _fetch()
    sent = {data["content"]: data for _, data in server}
    assert set(sent) == {"record", "metadata"} and all(url == URL for url, _ in server)
    rec = sent["record"]
    assert (rec["format"], rec["type"], rec["rawOrLabel"], rec["rawOrLabelHeaders"], rec["eventName"]) == (
        "csv", "flat", "raw", "raw", "unique")
    assert sent["metadata"]["format"] == "json"
    assert all(data["token"] == TOKEN for _, data in server)  # the token goes to the server, and only there


def test_the_token_comes_only_from_the_environment_and_is_never_shown(server, monkeypatch):
    study = _fetch()
    shown = " ".join([*study.notes, study.summary(), study.exclusions.to_string()])
    assert TOKEN not in shown
    monkeypatch.delenv("REDCAP_API_TOKEN")
    with pytest.raises(ValueError, match="the environment variable REDCAP_API_TOKEN is not set"):
        fetch_redcap(URL, MAPPING)
    monkeypatch.setenv("MY_TOKEN", "not-a-token-" + TOKEN)
    with pytest.raises(ValueError) as err:
        fetch_redcap(URL, MAPPING, token_env="MY_TOKEN")
    assert "MY_TOKEN is not a REDCap API token" in str(err.value) and TOKEN not in str(err.value)
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    with pytest.warns(ExcludedRowsWarning):
        assert len(fetch_redcap(URL, MAPPING, token_env="MY_TOKEN", today=TODAY, errors="exclude").scores) == 16
    assert server[-1][1]["token"] == TOKEN


def test_a_refusal_of_the_server_is_one_error_naming_the_server(monkeypatch):
    def post(session, url, data=None, **kwargs):
        return _answer(b'{"error": "You do not have permissions to use the API"}', 403)
    monkeypatch.setattr(requests.Session, "post", post)
    monkeypatch.setenv("REDCAP_API_TOKEN", TOKEN)
    with pytest.raises(ConnectionError, match="the REDCap API at https://redcap.example.org/api/ refused the export: "
                                              ".*do not have permissions") as err:
        fetch_redcap(URL, MAPPING)
    assert TOKEN not in str(err.value)


def test_arguments_and_the_missing_dependency_are_named(server, monkeypatch):
    with pytest.raises(ValueError, match="url: expected the address of a REDCap API, ending in /api/"):
        fetch_redcap("https://redcap.example.org/", MAPPING)
    monkeypatch.setattr(redcap_api, "pycap", None)
    with pytest.raises(MissingDependencyError, match=r"backpain_outcomes\[sources\]"):
        fetch_redcap(URL, MAPPING)
