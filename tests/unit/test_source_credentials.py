"""Credentials of HTTP sources (odp.sources.auth): a header, basic auth or a query parameter
read from the environment or a secrets file, sent to the source's origin only, never over
plain http:// to another machine, and never stored (validators are keyed by the URL's hash).

The protected recordings are CONSTRUCTED: the replay server answers 401 unless the request
carries the credential the manifest requires (odp_dev.replay `require`)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from odp.errors import ConfigError, SourceError
from odp.runs.logs import redactor
from odp.sources.auth import SourceAuth
from odp.sources.http import HttpSettings, SourceClient, cache_validators, url_key
from odp_dev.replay import ReplayServer

URL = "https://api.example.org/v1/stops.json"  # CONSTRUCTED: no such service
KEY = "k3y-Pl4nted-9f8e7d"
BODY = b'[{"stop_id": "1", "name": "Postplatz"}]'


def _recordings(tmp: Path, require: dict) -> Path:
    folder = tmp / "recordings" / "protected"
    folder.mkdir(parents=True)
    entry = {"request": {"url": URL, "require": require},
             "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                          "body": BODY.decode()},
             "note": "CONSTRUCTED protected recording (credentials test)"}
    (folder / "recordings.json").write_text(json.dumps([entry]))
    return folder.parent


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """serve(require) → a started replay server for URL, routed to by the client."""
    servers = []

    def start(require: dict) -> ReplayServer:
        server = ReplayServer(_recordings(tmp_path, require)).start()
        servers.append(server)
        monkeypatch.setenv("ODP_REPLAY_URL", server.url)
        monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "1")
        return server

    yield start
    for server in servers:
        server.stop()


def _client(auth: dict) -> SourceClient:
    return SourceClient("stops", HttpSettings.from_source({"auth": auth}))


def test_a_header_from_the_environment_is_sent_and_the_source_answers(serve, monkeypatch):
    server = serve({"headers": {"X-API-Key": KEY}})
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    assert _client({"header": "X-API-Key", "value_env": "ODP_TEST_KEY"}).get_bytes(URL) == BODY
    assert [r.status for r in server.requests] == [200]


def test_without_the_credential_the_protected_recording_answers_401(serve):
    serve({"headers": {"X-API-Key": KEY}})
    with pytest.raises(SourceError, match="answered HTTP 401"):
        SourceClient("stops", HttpSettings()).get_bytes(URL)


def test_a_missing_environment_variable_is_a_config_error_naming_it(serve, monkeypatch):
    serve({"headers": {"X-API-Key": KEY}})
    monkeypatch.delenv("ODP_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="ODP_TEST_KEY is not set"):
        _client({"header": "X-API-Key", "value_env": "ODP_TEST_KEY"}).get_bytes(URL)


def test_basic_auth_with_the_password_from_a_secrets_file(serve, tmp_path):
    token = base64.b64encode(f"opendata:{KEY}".encode()).decode()
    serve({"headers": {"Authorization": f"Basic {token}"}})
    secret = tmp_path / "password"
    secret.write_text(KEY + "\n")
    client = _client({"basic_user": "opendata", "basic_password_file": str(secret)})
    assert client.get_bytes(URL) == BODY


def test_a_query_token_goes_into_the_request_only_never_into_an_error(serve, monkeypatch):
    server = serve({"query": {"access_token": KEY}})
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    client = _client({"query_param": "access_token", "value_env": "ODP_TEST_KEY"})
    assert client.get_bytes(URL) == BODY
    assert f"access_token={KEY}" in server.requests[-1].url
    server.override("api.example.org", 500, b"{}")
    with pytest.raises(SourceError) as failed:
        client.get_bytes(URL)
    assert KEY not in str(failed.value) and URL in str(failed.value)


def test_every_credential_read_is_masked_by_the_log_redactor(serve, monkeypatch):
    serve({"headers": {"X-API-Key": KEY}})
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    _client({"header": "X-API-Key", "value_env": "ODP_TEST_KEY"}).get_bytes(URL)
    assert KEY not in redactor().redact(f"the source said: bad key {KEY}")


@pytest.mark.parametrize("table, message", [
    ({"header": "X-API-Key", "value": KEY}, "secrets are read from the environment or a file"),
    ({"basic_user": "u", "basic_password": KEY}, "secrets are read from the environment"),
    ({"header": "X-API-Key"}, "needs value_env or value_file"),
    ({"header": "X", "query_param": "t", "value_env": "E"}, "exactly one of"),
    ({"header": "X", "value_env": "E", "colour": "red"}, "unknown key 'colour'"),
])
def test_a_wrong_auth_table_is_refused_before_any_request(table, message):
    with pytest.raises(ConfigError, match=message):
        HttpSettings.from_source({"auth": table})


def test_credentials_never_travel_over_plain_http_to_another_machine(monkeypatch):
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    auth = SourceAuth.from_source({"auth": {"header": "X-API-Key", "value_env": "ODP_TEST_KEY"}})
    assert auth is not None
    with pytest.raises(ConfigError, match="https:// only"):
        auth.credentials("stops", "http://api.example.org/x")
    assert auth.credentials("stops", "http://127.0.0.1:8080/x").headers == {"X-API-Key": KEY}


def test_allow_http_sends_them_and_logs_a_warning(monkeypatch, odp_log):
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    auth = SourceAuth.from_source({"auth": {"header": "X-API-Key", "value_env": "ODP_TEST_KEY",
                                            "allow_http": True}})
    assert auth is not None
    assert auth.credentials("stops", "http://api.example.org/x").headers
    assert "plain http://" in odp_log.text and KEY not in odp_log.text


class _Recorder(BaseHTTPRequestHandler):
    """Redirects /start to `target`; records the headers and path of every request."""

    seen: list[tuple[str, dict[str, str]]]
    target = ""

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append((self.path, dict(self.headers.items())))
        if self.path.startswith("/start"):
            self.send_response(302)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _server(target: str = "") -> tuple[ThreadingHTTPServer, type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_a_redirect_to_another_origin_is_followed_without_the_credentials(monkeypatch):
    monkeypatch.delenv("ODP_REPLAY_URL", raising=False)
    monkeypatch.setenv("ODP_TEST_KEY", KEY)
    other, elsewhere = _server()
    first, origin = _server(f"http://127.0.0.1:{other.server_address[1]}/file?x=1")
    try:
        for auth in ({"header": "X-API-Key", "value_env": "ODP_TEST_KEY"},
                     {"query_param": "access_token", "value_env": "ODP_TEST_KEY"}):
            start = f"http://127.0.0.1:{first.server_address[1]}/start"
            assert _client(auth).get_bytes(start) == b"ok"
        assert [KEY in path + json.dumps(headers) for path, headers in origin.seen] == [True] * 2
        assert [KEY in path + json.dumps(headers) for path, headers in elsewhere.seen] == [
            False] * 2
    finally:
        first.shutdown()
        other.shutdown()


def test_validators_are_kept_under_the_urls_hash_so_no_url_is_in_the_state():
    state: dict = {}
    validators = cache_validators(state, "stops", {"url": URL})
    validators[f"{URL}?access_token={KEY}"] = {"etag": '"1"'}
    stored = json.dumps(state)
    assert "example.org" not in stored and KEY not in stored
    assert validators[f"{URL}?access_token={KEY}"] == {"etag": '"1"'}
    assert url_key(f"{URL}?access_token={KEY}") in state["http_validators"]["urls"]
