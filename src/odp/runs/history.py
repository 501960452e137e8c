"""Run history in a local SQLite database (`STATE/history.sqlite`): one row per run, written
when the run starts (status `running`) and completed when it ends. A run killed in between
keeps `running` until its stale lock is taken over, which marks it `killed`.

Also holds the alert incidents (see odp.runs.alerts), so one file answers "what ran,
what failed, who was told".
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.redact import private_file

DB_NAME = "history.sqlite"
SUCCESS = ("ok", "unchanged")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    started TEXT NOT NULL,          -- ISO 8601 UTC
    ended TEXT,
    status TEXT NOT NULL,  -- running | ok | unchanged | held-back | failed | locked | killed
    exit_code INTEGER,
    extracted INTEGER DEFAULT 0,
    validated INTEGER DEFAULT 0,
    valid INTEGER DEFAULT 0,
    quarantined INTEGER DEFAULT 0,
    georeferenced INTEGER DEFAULT 0,
    in_city INTEGER DEFAULT 0,
    published INTEGER DEFAULT 0,    -- rows written to CKAN: inserted + updated + deleted
    inserted INTEGER DEFAULT 0,
    updated INTEGER DEFAULT 0,
    deleted INTEGER DEFAULT 0,
    write_calls INTEGER DEFAULT 0,
    bytes INTEGER DEFAULT 0,        -- size of the staged table after the run
    downloaded INTEGER DEFAULT 0,   -- body bytes received from the source during the run
    accepted_deletes INTEGER DEFAULT 0,  -- deletions beyond max_delete_share, --accept-deletes
    kept_last_good INTEGER DEFAULT 0,    -- quarantined rows that kept their published version
    seconds REAL DEFAULT 0,
    pid INTEGER,
    url TEXT DEFAULT '',
    error TEXT DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_dataset ON runs (dataset, started);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    kind TEXT NOT NULL,             -- failed | held-back | stale
    opened TEXT NOT NULL,
    closed TEXT,
    run_id TEXT DEFAULT '',
    message TEXT DEFAULT '',
    notified INTEGER DEFAULT 0,     -- the opening alert went out
    recovery_notified INTEGER DEFAULT 0
);
CREATE INDEX IF NOT EXISTS open_incidents ON incidents (dataset, kind, closed);
"""

COUNTS = ("extracted", "validated", "valid", "quarantined", "georeferenced", "in_city",
          "inserted", "updated", "deleted", "write_calls", "downloaded", "accepted_deletes",
          "kept_last_good")
# Columns added after the first release: (name, declaration) — added to older databases.
ADDED_COLUMNS = (("downloaded", "INTEGER DEFAULT 0"), ("accepted_deletes", "INTEGER DEFAULT 0"),
                 ("kept_last_good", "INTEGER DEFAULT 0"))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@contextmanager
def connect(state: Path) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit-per-block mode; WAL so `odp status` never blocks a run. The
    file is the operator's only (0600; SQLite gives its -wal and -shm the same mode)."""
    conn = sqlite3.connect(private_file(state / DB_NAME, "-wal", "-shm"), timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        for name, declaration in ADDED_COLUMNS:
            if name not in present:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")
        with conn:
            yield conn
    finally:
        conn.close()


def begin(state: Path, report: Any) -> None:
    """The run started (it holds the dataset's lock)."""
    with connect(state) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO runs (run_id, dataset, started, status, pid) "
            "VALUES (?, ?, ?, 'running', ?)",
            (report.run_id, report.dataset, report.started, os.getpid()),
        )


def finish(state: Path, report: Any, nbytes: int = 0) -> None:
    """The run ended: its counts, status and error (one line)."""
    values = {name: int(getattr(report, name, 0) or 0) for name in COUNTS}
    values["published"] = values["inserted"] + values["updated"] + values["deleted"]
    row = {
        "run_id": report.run_id, "dataset": report.dataset, "started": report.started,
        "ended": now_iso(), "status": report.status, "exit_code": report.exit_code,
        "bytes": nbytes, "seconds": report.seconds, "pid": os.getpid(), "url": report.url,
        "error": report.error, **values,
    }
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with connect(state) as conn:
        conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})",
                     tuple(row.values()))


def mark_killed(state: Path, run_id: str, note: str) -> None:
    with connect(state) as conn:
        conn.execute(
            "UPDATE runs SET status = 'killed', ended = ?, exit_code = 1, error = ? "
            "WHERE run_id = ? AND status = 'running'",
            (now_iso(), note, run_id),
        )


def runs(state: Path, dataset: str, limit: int = 20) -> list[dict[str, Any]]:
    """The dataset's runs, newest first."""
    with connect(state) as conn:
        rows = conn.execute(
            "SELECT * FROM runs WHERE dataset = ? ORDER BY started DESC, rowid DESC LIMIT ?",
            (dataset, limit),
        ).fetchall()
    return [dict(r) for r in rows]


def runs_since(state: Path, since: datetime) -> list[dict[str, Any]]:
    """Every run started at or after `since`, oldest first."""
    with connect(state) as conn:
        rows = conn.execute("SELECT * FROM runs WHERE started >= ? ORDER BY started",
                            (since.astimezone(UTC).isoformat(timespec="seconds"),)).fetchall()
    return [dict(r) for r in rows]


@dataclass
class Summary:
    """What `odp status` shows of one dataset's history."""

    last_run: dict[str, Any] | None
    last_success: dict[str, Any] | None
    last_attempt_started: datetime | None  # the last run that really ran (not `locked`)


def summary(state: Path, dataset: str) -> Summary:
    with connect(state) as conn:
        last = conn.execute(
            "SELECT * FROM runs WHERE dataset = ? ORDER BY started DESC, rowid DESC LIMIT 1",
            (dataset,)).fetchone()
        good = conn.execute(
            "SELECT * FROM runs WHERE dataset = ? AND status IN ('ok', 'unchanged') "
            "ORDER BY started DESC, rowid DESC LIMIT 1", (dataset,)).fetchone()
        attempt = conn.execute(
            "SELECT MAX(started) FROM runs WHERE dataset = ? AND status != 'locked'",
            (dataset,)).fetchone()[0]
    return Summary(dict(last) if last else None, dict(good) if good else None,
                   parse_time(attempt))
