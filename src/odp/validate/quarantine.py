"""Rejected rows, kept locally in SQLite at `STATE_DIR/quarantine/quarantine.sqlite` (the
folder 0700, the file 0600: it holds raw source rows).

A finding is stored once per (dataset, key, field, rule) while it stays open: a later batch
reporting it again updates that record — its latest batch, run (`last_seen`, `last_seen_at`),
row, value, reason and raw row — and counts the repeat (`seen`), so a full refresh held back
run after run does not add its whole batch again. (A key repeated within one batch — duplicate
rows — keeps one record per occurrence.) `list()` shows the open findings — for each key +
field + rule those of the latest batch that reported it, with that run as `run_id` — unless
released. A later run that validates the same key successfully releases it (`released_at`,
`released_by`); a release is kept as history, and the key failing again opens a new record.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from odp.publish.formulas import neutralise
from odp.redact import private_dir, private_file

COLUMNS = [
    "dataset",
    "run_id",
    "row",
    "key",
    "field",
    "rule",
    "value",
    "reason",
    "recorded_at",
    "raw",
]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch       INTEGER NOT NULL,          -- one number per add() call
    dataset     TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    row         INTEGER,                   -- 1-based position in the batch
    key         TEXT NOT NULL,             -- primary-key values, e.g. school_id=12|building_no=1
    field       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    value       TEXT,
    reason      TEXT NOT NULL,
    recorded_at TEXT NOT NULL,             -- UTC, ISO 8601
    raw         TEXT NOT NULL,             -- the whole raw row as JSON
    released_at TEXT,
    released_by TEXT,
    seen        INTEGER DEFAULT 1,         -- batches that reported it while open
    last_seen   TEXT,                      -- run id of the latest of them
    last_seen_at TEXT                      -- UTC, ISO 8601
);
CREATE INDEX IF NOT EXISTS quarantine_open ON quarantine (dataset, released_at, key);
"""
# Columns added after the first release: (name, declaration) — added to older databases.
ADDED_COLUMNS = (("seen", "INTEGER DEFAULT 1"), ("last_seen", "TEXT"), ("last_seen_at", "TEXT"))
COUNT_COLUMNS = ["seen", "first_run", "last_seen_at"]
_OPEN = """
WITH open AS (
    SELECT *, MAX(batch) OVER (PARTITION BY key, field, rule) AS latest
    FROM quarantine WHERE dataset = ? AND released_at IS NULL
)
SELECT {columns} FROM open WHERE batch = latest ORDER BY batch, row, field, rule
"""
# list(): the latest run that reported a finding is its run_id; the first one is first_run.
_LIST_COLUMNS = {"run_id": "COALESCE(last_seen, run_id) AS run_id",
                 "first_run": "run_id AS first_run",
                 "seen": "COALESCE(seen, 1) AS seen",
                 "last_seen_at": "COALESCE(last_seen_at, recorded_at) AS last_seen_at"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class QuarantineStore:
    def __init__(self, state_dir: Path) -> None:
        folder = private_dir(Path(state_dir) / "quarantine")
        self.path = folder / "quarantine.sqlite"
        with closing(self._connect()) as db:
            # WAL (kept in the file): parallel workers of `odp run --all` share this store, and
            # a worker storing a large held-back batch must not stop the others reading theirs
            db.execute("PRAGMA journal_mode=WAL")
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(quarantine)")}
            for name, declaration in ADDED_COLUMNS:
                if name not in present:
                    db.execute(f"ALTER TABLE quarantine ADD COLUMN {name} {declaration}")

    def _connect(self) -> sqlite3.Connection:
        # 0600 before SQLite opens it (its -journal then gets the same mode).
        return sqlite3.connect(private_file(self.path, "-journal", "-wal", "-shm"), timeout=30)

    def add(
        self, dataset: str, run_id: str, findings_df: pd.DataFrame, raw_rows_df: pd.DataFrame,
        raw_at: np.ndarray | None = None,
    ) -> int:
        """Record row findings (columns row, key, field, rule, value, reason); `row` is the
        1-based position in `raw_rows_df`, the raw batch — or, with `raw_at`, the row's number
        in the delivery and `raw_at` the place of each finding's row (those with a `row`) in
        `raw_rows_df` (the delivery's rejected rows alone). A finding still open from an
        earlier batch (same key, field and rule) is updated and its `seen` count raised
        instead of stored again. Returns the number of findings recorded (new and repeated)."""
        rows = findings_df[findings_df["row"].notna()]
        if rows.empty:
            return 0
        positions = rows["row"].to_numpy(dtype="int64") - 1 if raw_at is None else raw_at
        raw_json = _rows_as_json(raw_rows_df, positions)
        at = _now()
        records = sorted(
            ((int(r.row), r.key, r.field, r.rule, r.value, r.reason, raw)
             for r, raw in zip(rows.itertuples(index=False), raw_json, strict=True)),
            key=lambda record: record[0])
        with closing(self._connect()) as db, db:
            batch = db.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM quarantine").fetchone()[0]
            # Open records per (key, field, rule), latest batch first: the n-th finding of a
            # group in this batch repeats the n-th open one.
            open_ids: dict[tuple[str, str, str], builtins.list[int]] = defaultdict(list)
            for id_, key, field, rule in db.execute(
                    "SELECT id, key, field, rule FROM quarantine WHERE dataset = ? AND "
                    "released_at IS NULL ORDER BY batch DESC, row, id", (dataset,)):
                open_ids[(key, field, rule)].append(id_)
            taken: dict[tuple[str, str, str], int] = defaultdict(int)
            repeats, new = [], []
            for row, key, field, rule, value, reason, raw in records:
                group = (key, field, rule)
                n = taken[group]
                taken[group] += 1
                if n < len(open_ids.get(group, ())):
                    repeats.append((batch, row, value, reason, raw, run_id, at,
                                    open_ids[group][n]))
                else:
                    new.append((batch, dataset, run_id, row, key, field, rule, value, reason,
                                at, raw, run_id, at))
            db.executemany(
                "UPDATE quarantine SET batch = ?, row = ?, value = ?, reason = ?, raw = ?,"
                " seen = COALESCE(seen, 1) + 1, last_seen = ?, last_seen_at = ? WHERE id = ?",
                repeats)
            db.executemany(
                "INSERT INTO quarantine (batch, dataset, run_id, row, key, field, rule, value,"
                " reason, recorded_at, raw, seen, last_seen, last_seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                new,
            )
        return len(records)

    def list(self, dataset: str) -> pd.DataFrame:
        """Open findings: per key + field + rule those of the latest batch, unreleased; `run_id`
        is the latest run that reported the finding, `first_run` the first, `seen` how many
        batches did."""
        columns = ", ".join(_LIST_COLUMNS.get(c, c) for c in [*COLUMNS, *COUNT_COLUMNS])
        return self._query(_OPEN.format(columns=columns), (dataset,))

    def history(self, dataset: str) -> pd.DataFrame:
        """Every finding ever recorded (once per open stretch, with its `seen` count and
        `last_seen` run), released ones included."""
        columns = ", ".join([*COLUMNS, "seen", "last_seen", "last_seen_at", "released_at",
                             "released_by"])
        sql = f"SELECT {columns} FROM quarantine WHERE dataset = ? ORDER BY id"
        return self._query(sql, (dataset,))

    def open_keys(self, dataset: str) -> set[str]:
        sql = "SELECT DISTINCT key FROM quarantine WHERE dataset = ? AND released_at IS NULL"
        with closing(self._connect()) as db:
            return {k for (k,) in db.execute(sql, (dataset,))}

    def release(self, dataset: str, keys: Iterable[str], run_id: str = "") -> int:
        """Mark the open findings of `keys` released; returns the number of findings released.
        Only keys the quarantine holds open are touched, in one statement."""
        with closing(self._connect()) as db, db:
            held = {k for (k,) in db.execute(
                "SELECT DISTINCT key FROM quarantine WHERE dataset = ? AND released_at IS NULL",
                (dataset,))}
            wanted = sorted(held.intersection(keys)) if held else []
            if not wanted:
                return 0
            cursor = db.execute(
                "UPDATE quarantine SET released_at = ?, released_by = ? WHERE dataset = ?"
                " AND released_at IS NULL AND key IN (SELECT value FROM json_each(?))",
                (_now(), run_id, dataset, json.dumps(wanted)))
            return cursor.rowcount

    def export_csv(self, dataset: str, path: Path, history: bool = False) -> int:
        """Write the open findings (`history`: all, released ones too) to `path` (UTF-8 CSV,
        one row per finding with the whole raw row as JSON; text cells that a spreadsheet would
        run as a formula get a leading '); returns the number of rows."""
        frame = self.history(dataset) if history else self.list(dataset)
        frame = neutralise(frame)  # a spreadsheet file: formulas escaped (odp.publish.formulas)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, encoding="utf-8")
        return len(frame)

    def _query(self, sql: str, params: tuple[str, ...]) -> pd.DataFrame:
        with closing(self._connect()) as db:
            frame = pd.read_sql_query(sql, db, params=params)
        frame["row"] = frame["row"].astype("Int64")
        return frame


def _rows_as_json(raw: pd.DataFrame, positions: Iterable[int]) -> builtins.list[str]:
    """One JSON object per position (NA → null), in the order given."""
    picked = raw.iloc[list(positions)].reset_index(drop=True)
    if picked.empty:
        return []
    text = picked.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    return text.splitlines()
