"""Alerts through a real local SMTP server (aiosmtpd) and a local webhook receiver
(http.server): one alert per incident, one "recovered" message; structured logs with secrets
redacted."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller

from odp.runs import alerts, history, logs
from odp.runs.record import record_run
from tests.helpers import REPO, WebhookReceiver

SECRET = "s3cr3t-webhook-token-0123456789"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        text = envelope.content.decode("utf-8", "replace")
        self.messages.append({"to": ",".join(envelope.rcpt_tos), "text": text})
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _city(tmp_path: Path, smtp_port: int, fmt: str) -> SimpleNamespace:
    text = (REPO / "cities" / "dresden.toml").read_text(encoding="utf-8")
    text = text.split("\n[alerts", 1)[0]  # the city's own alert settings are replaced here
    text += f"""
[alerts.webhook]
url_env = "TEST_ALERT_URL"
token_env = "TEST_ALERT_TOKEN"
format = "{fmt}"

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
from = "odp@example.org"
to = ["opendata@example.org"]
"""
    path = tmp_path / "city.toml"
    path.write_text(text, encoding="utf-8")
    return SimpleNamespace(path=path, name="Dresden")


def _report(status: str, n: int, error: str = "") -> SimpleNamespace:
    return SimpleNamespace(run_id=f"r{n}", dataset="elbe", started=f"2025-01-01T10:0{n}:00+00:00",
                           status=status, exit_code={"failed": 3, "held-back": 4}.get(status, 0),
                           error=error, seconds=1.0, url="", extracted=10, validated=10,
                           valid=10 if status == "ok" else 0, quarantined=0, georeferenced=10,
                           in_city=10, inserted=0, updated=0, deleted=0, write_calls=0)


def test_one_alert_per_incident_and_one_recovery(tmp_path, smtp, webhook, monkeypatch):
    inbox, port = smtp
    received, url = webhook.received, webhook.url
    monkeypatch.setenv("TEST_ALERT_URL", url)
    monkeypatch.setenv("TEST_ALERT_TOKEN", SECRET)
    city, state = _city(tmp_path, port, "slack"), tmp_path / "state"
    state.mkdir()
    logs.configure(state, console=False)

    for n in range(3):  # three failing runs: one incident
        record_run(state, city, _report("failed", n, "elbe: source answered HTTP 503"))
    assert len(received) == 1 and len(inbox.messages) == 1
    assert received[0] == {"text": "[odp Dresden] FAILED elbe: elbe: source answered "
                                   "HTTP 503"}
    assert webhook.authorizations[0] == f"Bearer {SECRET}"
    assert "Subject: [odp Dresden] FAILED elbe" in inbox.messages[0]["text"]
    assert inbox.messages[0]["to"] == "opendata@example.org"

    record_run(state, city, _report("ok", 3))
    record_run(state, city, _report("ok", 4))
    assert [r["text"].split(":")[0] for r in received] == [
        "[odp Dresden] FAILED elbe", "[odp Dresden] RECOVERED elbe (failed)"]
    assert len(inbox.messages) == 2 and "RECOVERED elbe" in inbox.messages[1]["text"]

    record_run(state, city, _report("held-back", 5, "elbe: 40 % of rows rejected"))
    assert received[-1]["text"].startswith("[odp Dresden] HELD-BACK elbe")
    assert alerts.open_incidents(state)[0]["kind"] == "held-back"
    # The history has each run with its status.
    assert [r["status"] for r in history.runs(state, "elbe")] == [
        "held-back", "ok", "ok", "failed", "failed", "failed"]
    # The log names every alert but never the secret.
    log_text = (state / "logs" / "odp.log").read_text()
    assert '"event": "alert"' in log_text and SECRET not in log_text and url not in log_text


def test_undelivered_alert_is_retried_not_duplicated(tmp_path, smtp, webhook, monkeypatch):
    inbox, port = smtp
    received, url = webhook.received, webhook.url
    monkeypatch.setenv("TEST_ALERT_URL", "http://127.0.0.1:9/down")  # nothing listens
    city, state = _city(tmp_path, port, "generic"), tmp_path / "state"
    state.mkdir()
    record_run(state, city, _report("failed", 0, "boom"))
    record_run(state, city, _report("failed", 1, "boom"))
    assert received == [] and len(inbox.messages) == 2  # mail went out, webhook pending
    monkeypatch.setenv("TEST_ALERT_URL", url)
    record_run(state, city, _report("failed", 2, "boom"))
    # Now delivered, once — and the mail channel is told again (retry goes to all channels).
    assert len(received) == 1 and received[0]["event"] == "failed"
    assert received[0]["dataset"] == "elbe" and received[0]["run_id"] == "r0"


def test_stale_incident_opens_once_and_recovers(tmp_path, smtp, webhook, monkeypatch):
    inbox, port = smtp
    received, url = webhook.received, webhook.url
    monkeypatch.setenv("TEST_ALERT_URL", url)
    city, state = _city(tmp_path, port, "matrix"), tmp_path / "state"
    state.mkdir()
    channels = alerts.Channels.from_city(city)
    for _ in range(2):
        alerts.note_freshness(state, "elbe", True, "last success 2 h ago, expected every 15 min")
        alerts.dispatch(state, channels)
    alerts.note_freshness(state, "elbe", False, "")
    alerts.dispatch(state, channels)
    kinds = [r["body"].split(" elbe")[0] for r in received]
    assert kinds == ["[odp Dresden] STALE", "[odp Dresden] RECOVERED"]
    assert received[0]["msgtype"] == "m.text"


def test_logs_are_json_lines_off_a_terminal_and_redact_secrets(tmp_path, monkeypatch):
    token = "ckan-token-" + "abcdef0123456789"  # a fake secret the logs must redact
    stream = io.StringIO()
    log = logs.configure(tmp_path, console=True, secrets=[token], stream=stream)
    log.info(f"calling CKAN with {token}", extra={"dataset": "elbe"})
    log.error("GET https://x/api?apikey=hunter22secret&q=1 failed: Authorization: Bearer abc.def")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["dataset"] == "elbe" and lines[0]["level"] == "info"
    everything = stream.getvalue() + (tmp_path / "logs" / "odp.log").read_text()
    for secret in (token, "hunter22secret", "abc.def"):
        assert secret not in everything
    assert "apikey=***" in everything


def test_human_lines_on_a_terminal(tmp_path):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    logs.configure(tmp_path, console=None, stream=stream).warning("elbe: stale")
    assert stream.getvalue().strip().endswith("warning: elbe: stale")
    assert not stream.getvalue().startswith("{")


def test_dispatchers_finishing_at_once_send_an_owed_alert_once(tmp_path, smtp, webhook,
                                                               monkeypatch):
    """Datasets of `odp run --all` finish in several worker processes at the same moment: each
    dispatches what is owed, and an incident is still sent once."""
    inbox, port = smtp
    received, url = webhook.received, webhook.url
    monkeypatch.setenv("TEST_ALERT_URL", url)
    city, state = _city(tmp_path, port, "generic"), tmp_path / "state"
    state.mkdir()
    alerts.note_run(state, _report("failed", 0, "elbe: source answered HTTP 503"))
    channels, start = alerts.Channels.from_city(city), threading.Barrier(4)

    def dispatch() -> None:
        start.wait()
        alerts.dispatch(state, channels)

    racers = [threading.Thread(target=dispatch) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(received) == 1 and len(inbox.messages) == 1
