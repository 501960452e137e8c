"""The run history database: a history written by an older release gains the new columns."""

from __future__ import annotations

import sqlite3

from odp.run import RunReport
from odp.runs import history


def test_an_older_history_gains_the_downloaded_column_and_keeps_its_runs(tmp_path):
    with sqlite3.connect(tmp_path / history.DB_NAME) as conn:  # the first release's table
        conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, dataset TEXT NOT NULL, "
                     "started TEXT NOT NULL, ended TEXT, status TEXT NOT NULL, exit_code "
                     "INTEGER, extracted INTEGER DEFAULT 0, validated INTEGER DEFAULT 0, valid "
                     "INTEGER DEFAULT 0, quarantined INTEGER DEFAULT 0, georeferenced INTEGER "
                     "DEFAULT 0, in_city INTEGER DEFAULT 0, published INTEGER DEFAULT 0, "
                     "inserted INTEGER DEFAULT 0, updated INTEGER DEFAULT 0, deleted INTEGER "
                     "DEFAULT 0, write_calls INTEGER DEFAULT 0, bytes INTEGER DEFAULT 0, seconds "
                     "REAL DEFAULT 0, pid INTEGER, url TEXT DEFAULT '', error TEXT DEFAULT '')")
        conn.execute("INSERT INTO runs (run_id, dataset, started, status) "
                     "VALUES ('old', 'd', '2026-11-01T00:00:00+00:00', 'ok')")
    report = RunReport(run_id="new", dataset="d", status="unchanged",
                       started="2026-11-23T00:00:00+00:00", downloaded=1234)
    history.begin(tmp_path, report)
    history.finish(tmp_path, report, nbytes=99)
    new, old = history.runs(tmp_path, "d")
    assert (new["run_id"], new["downloaded"], new["bytes"]) == ("new", 1234, 99)
    assert (old["run_id"], old["downloaded"]) == ("old", 0)
