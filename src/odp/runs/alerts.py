"""Alerts on a failed run, a held-back publish and stale data — one per incident, and one
"recovered" message when it ends.

An incident is (dataset, kind) with kind `failed`, `held-back` or `stale`, kept in the history
database: while it is open, further failures of the same kind send nothing. A successful run
closes `failed` and `held-back`; fresh data closes `stale`. An alert that could not be delivered
is retried at the next check, never duplicated.

Channels come from the city file's `[alerts]`; secrets only from the environment (`*_env` keys):

    [alerts.webhook]                 # generic JSON, or Slack/Matrix-compatible {"text": ...}
    url_env = "ODP_ALERT_WEBHOOK_URL"
    format = "slack"                 # generic | slack | matrix
    token_env = ""                   # optional: sent as "Authorization: Bearer …"

    [alerts.email]
    host_env = "ODP_SMTP_HOST"       # or host = "mail.example.org"
    port = 587
    starttls = true
    user_env = "ODP_SMTP_USER"
    password_env = "ODP_SMTP_PASSWORD"
    from = "odp@example.org"
    to = ["opendata@example.org"]

A channel whose address (url / host) is empty is off.

Every message is redacted (odp.redact and the known secrets) when the incident is opened and
again when the alert is built, so an incident recorded before redaction existed is sent clean.
"""

from __future__ import annotations

import fcntl
import json
import os
import smtplib
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from odp.runs import history
from odp.runs.logs import log, redactor

RUN_KINDS = ("failed", "held-back")
TIMEOUT = 10


@dataclass(frozen=True)
class Event:
    kind: str  # failed | held-back | stale | recovered
    dataset: str
    incident: str  # the incident's kind (for `recovered`: which one ended)
    message: str
    run_id: str = ""
    city: str = ""

    @property
    def title(self) -> str:
        if self.kind == "recovered":
            return f"[odp {self.city}] RECOVERED {self.dataset} ({self.incident})"
        return f"[odp {self.city}] {self.kind.upper()} {self.dataset}"

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", redactor().redact(self.message or ""))

    def text(self) -> str:
        return f"{self.title}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "dataset": self.dataset, "incident": self.incident,
                "message": self.message, "run_id": self.run_id, "city": self.city,
                "text": self.text()}


def _setting(table: dict[str, Any], key: str, default: Any = None) -> Any:
    """`key` from the table, or from the environment variable named by `key_env`."""
    if env := table.get(f"{key}_env"):
        return os.environ.get(str(env), default)
    return table.get(key, default)


@dataclass
class Channels:
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    city: str = ""

    @classmethod
    def from_city(cls, city: Any) -> Channels:
        """Read `[alerts]` from the city file (odp.spec.City keeps its path)."""
        with Path(city.path).open("rb") as fh:
            raw = tomllib.load(fh).get("alerts", {})
        out = cls(city=getattr(city, "name", ""))
        for key, target in (("webhook", out.webhooks), ("email", out.emails)):
            tables = raw.get(key, [])
            for table in tables if isinstance(tables, list) else [tables]:
                address = _setting(table, "url" if key == "webhook" else "host")
                if address:
                    target.append(table)
                    redactor().add(_setting(table, "token"), _setting(table, "password"))
                    if key == "webhook":
                        redactor().add(str(address))  # a webhook URL is itself a secret
        return out

    @property
    def active(self) -> bool:
        return bool(self.webhooks or self.emails)

    def send(self, event: Event) -> bool:
        """Deliver to every channel; True when all succeeded (failures are logged)."""
        ok = True
        for table in self.webhooks:
            ok &= _deliver("webhook", event, lambda t=table: _post_webhook(t, event))
        for table in self.emails:
            ok &= _deliver("email", event, lambda t=table: _send_email(t, event))
        return ok


def _deliver(channel: str, event: Event, send: Any) -> bool:
    try:
        send()
    except Exception as exc:  # noqa: BLE001 — an alert must never break the run
        log.error(f"{event.dataset}: {channel} alert '{event.kind}' not delivered: {exc}",
                  extra={"dataset": event.dataset, "event": "alert-failed", "kind": event.kind})
        return False
    log.info(f"{event.dataset}: {channel} alert sent: {event.kind}",
             extra={"dataset": event.dataset, "event": "alert", "kind": event.kind})
    return True


def payload(fmt: str, event: Event) -> dict[str, Any]:
    """generic: the whole event; slack: {"text"} (Slack, Mattermost, Matrix hookshot);
    matrix: an m.room.message content (hookshot and the client API's m.text)."""
    if fmt == "slack":
        return {"text": event.text()}
    if fmt == "matrix":
        return {"msgtype": "m.text", "body": event.text(), "text": event.text()}
    return event.to_dict()


def _post_webhook(table: dict[str, Any], event: Event) -> None:
    body = json.dumps(payload(str(table.get("format", "generic")), event)).encode()
    request = urllib.request.Request(str(_setting(table, "url")), data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "odp-alerts"})
    if token := _setting(table, "token"):
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        response.read()


def _send_email(table: dict[str, Any], event: Event) -> None:
    to = table.get("to", [])
    message = EmailMessage()
    message["Subject"] = event.title
    message["From"] = str(_setting(table, "from", "odp@localhost"))
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    message.set_content(f"{event.text()}\n\nrun: {event.run_id or '-'}\n"
                        f"see: odp status; odp history {event.dataset}\n")
    host = str(_setting(table, "host"))
    port = int(_setting(table, "port", 25))
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
        if table.get("starttls", port == 587):
            smtp.starttls()
        user, password = _setting(table, "user"), _setting(table, "password")
        if user and password:
            smtp.login(str(user), str(password))
        smtp.send_message(message)


# --- incidents ------------------------------------------------------------------------------


def _open(conn: Any, dataset: str, kind: str, run_id: str, message: str) -> None:
    message = redactor().redact(message or "")
    exists = conn.execute("SELECT 1 FROM incidents WHERE dataset = ? AND kind = ? AND closed "
                          "IS NULL", (dataset, kind)).fetchone()
    if not exists:
        conn.execute("INSERT INTO incidents (dataset, kind, opened, run_id, message) VALUES "
                     "(?, ?, ?, ?, ?)", (dataset, kind, history.now_iso(), run_id, message))


def _close(conn: Any, dataset: str, kinds: tuple[str, ...]) -> None:
    marks = ", ".join("?" for _ in kinds)
    conn.execute(f"UPDATE incidents SET closed = ? WHERE dataset = ? AND closed IS NULL AND "
                 f"kind IN ({marks})", (history.now_iso(), dataset, *kinds))


def note_run(state: Path, report: Any) -> None:
    """Open or close incidents after a run (a run skipped for a held lock changes nothing)."""
    with history.connect(state) as conn:
        if report.status in RUN_KINDS:
            _open(conn, report.dataset, report.status, report.run_id, report.error)
        elif report.status in history.SUCCESS:
            _close(conn, report.dataset, RUN_KINDS)


def note_freshness(state: Path, dataset: str, stale: bool, message: str) -> None:
    with history.connect(state) as conn:
        if stale:
            _open(conn, dataset, "stale", "", message)
        else:
            _close(conn, dataset, ("stale",))


def open_incidents(state: Path) -> list[dict[str, Any]]:
    with history.connect(state) as conn:
        rows = conn.execute("SELECT * FROM incidents WHERE closed IS NULL ORDER BY id").fetchall()
    return [{**dict(r), "message": redactor().redact(r["message"] or "")} for r in rows]


@contextmanager
def _one_dispatcher(state: Path) -> Iterator[None]:
    """Datasets of one `odp run --all` finish in several processes at once: one dispatcher at
    a time (an exclusive flock on STATE/locks/alerts.lock), so no two read the same incident as
    owed and both send it."""
    path = state / "locks" / "alerts.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
        yield


def dispatch(state: Path, channels: Channels) -> list[Event]:
    """Send what is owed: the opening alert of each new incident and one recovery message per
    closed one. Returns the events delivered."""
    with _one_dispatcher(state):
        return _dispatch(state, channels)


def _dispatch(state: Path, channels: Channels) -> list[Event]:
    sent: list[Event] = []
    with history.connect(state) as conn:
        pending = conn.execute(
            "SELECT * FROM incidents WHERE (notified = 0 AND closed IS NULL) OR "
            "(notified = 1 AND closed IS NOT NULL AND recovery_notified = 0) ORDER BY id"
        ).fetchall()
        # An incident that opened and closed before anyone was told needs no message at all.
        conn.execute("UPDATE incidents SET notified = 1, recovery_notified = 1 "
                     "WHERE notified = 0 AND closed IS NOT NULL")
    for row in pending:
        if row["closed"] is None:
            event = Event(row["kind"], row["dataset"], row["kind"], row["message"],
                          row["run_id"], channels.city)
            column = "notified"
        else:
            event = Event("recovered", row["dataset"], row["kind"],
                          f"{row['kind']} since {row['opened']} ended at {row['closed']}",
                          row["run_id"], channels.city)
            column = "recovery_notified"
        if not channels.active or channels.send(event):
            with history.connect(state) as conn:
                conn.execute(f"UPDATE incidents SET {column} = 1 WHERE id = ?", (row["id"],))
            if channels.active:
                sent.append(event)
    return sent
