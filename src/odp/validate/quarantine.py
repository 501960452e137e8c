"""Rejected rows, kept locally in SQLite at `STATE_DIR/quarantine/quarantine.sqlite`.

Every finding ever added stays in the table (history); `list()` shows the open ones — for each
key + field + rule the findings of the latest batch that reported it, unless released. A later
run that validates the same key successfully releases it (`released_at`, `released_by`).
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

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
    released_by TEXT
);
CREATE INDEX IF NOT EXISTS quarantine_open ON quarantine (dataset, released_at, key);
"""
_OPEN = """
WITH open AS (
    SELECT *, MAX(batch) OVER (PARTITION BY key, field, rule) AS latest
    FROM quarantine WHERE dataset = ? AND released_at IS NULL
)
SELECT {columns} FROM open WHERE batch = latest ORDER BY batch, row, field, rule
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class QuarantineStore:
    def __init__(self, state_dir: Path) -> None:
        folder = Path(state_dir) / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "quarantine.sqlite"
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(
        self, dataset: str, run_id: str, findings_df: pd.DataFrame, raw_rows_df: pd.DataFrame
    ) -> int:
        """Record row findings (columns row, key, field, rule, value, reason); `row` is the
        1-based position in `raw_rows_df`, the raw batch. Returns the number recorded."""
        rows = findings_df[findings_df["row"].notna()]
        if rows.empty:
            return 0
        positions = rows["row"].to_numpy(dtype="int64") - 1
        raw_json = _rows_as_json(raw_rows_df, positions)
        at = _now()
        records = [
            (dataset, run_id, int(r.row), r.key, r.field, r.rule, r.value, r.reason, at, raw)
            for r, raw in zip(rows.itertuples(index=False), raw_json, strict=True)
        ]
        with closing(self._connect()) as db, db:
            batch = db.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM quarantine").fetchone()[0]
            db.executemany(
                "INSERT INTO quarantine (batch, dataset, run_id, row, key, field, rule, value,"
                " reason, recorded_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(batch, *record) for record in records],
            )
        return len(records)

    def list(self, dataset: str) -> pd.DataFrame:
        """Open findings: per key + field + rule those of the latest batch, unreleased."""
        return self._query(_OPEN.format(columns=", ".join(COLUMNS)), (dataset,))

    def history(self, dataset: str) -> pd.DataFrame:
        """Every finding ever recorded, released ones included."""
        columns = ", ".join([*COLUMNS, "released_at", "released_by"])
        sql = f"SELECT {columns} FROM quarantine WHERE dataset = ? ORDER BY id"
        return self._query(sql, (dataset,))

    def open_keys(self, dataset: str) -> set[str]:
        sql = "SELECT DISTINCT key FROM quarantine WHERE dataset = ? AND released_at IS NULL"
        with closing(self._connect()) as db:
            return {k for (k,) in db.execute(sql, (dataset,))}

    def release(self, dataset: str, keys: Iterable[str], run_id: str = "") -> int:
        """Mark the open findings of `keys` released; returns the number of findings released."""
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        at = _now()
        with closing(self._connect()) as db, db:
            cursor = db.executemany(
                "UPDATE quarantine SET released_at = ?, released_by = ?"
                " WHERE dataset = ? AND key = ? AND released_at IS NULL",
                [(at, run_id, dataset, key) for key in wanted],
            )
            return cursor.rowcount

    def export_csv(self, dataset: str, path: Path, history: bool = False) -> int:
        """Write the open findings (`history`: all, released ones too) to `path` (UTF-8 CSV,
        one row per finding with the whole raw row as JSON); returns the number of rows."""
        frame = self.history(dataset) if history else self.list(dataset)
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
