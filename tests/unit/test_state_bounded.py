"""The state directory stays bounded and private: a rejected row held back run after run is
stored once and counted, the history, quarantine and logs are the operator's only (0600 files,
0700 folders), and `odp status` tells how big the state has grown."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
from pathlib import Path

import pandas as pd

from odp.operations.status import human_size, state_size
from odp.redact import private_dir, private_file
from odp.runs import history, logs
from odp.validate import QuarantineStore

DATASET = "transit-stops"


def _raw(stops: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(stops, columns=["stop_id", "latitude"], dtype="string")


def _findings(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    """(row, key, value) rejected for field latitude, rule type:number."""
    return pd.DataFrame([{"row": row, "key": key, "field": "latitude", "rule": "type:number",
                          "value": value, "reason": f"'{value}' is not a number"}
                         for row, key, value in rows])


def _held_back_run(store: QuarantineStore, run_id: str) -> None:
    """A full refresh whose batch holds the same bad row each time (and is held back)."""
    raw = _raw([("1", "51.05"), ("2", "abc"), ("3", "51.06")])
    store.add(DATASET, run_id, _findings([(2, "stop_id=2", "abc")]), raw)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- quarantine ------------------------------------------------------------------------------


def test_the_same_bad_row_in_five_held_back_runs_is_stored_once_and_seen_five_times(tmp_path):
    store = QuarantineStore(tmp_path)
    for n in range(1, 6):
        _held_back_run(store, f"run-{n}")
    stored = store.history(DATASET)
    assert len(stored) == 1
    assert stored[["run_id", "seen", "last_seen"]].values.tolist() == [["run-1", 5, "run-5"]]
    (listed,) = store.list(DATASET).to_dict("records")
    assert (listed["run_id"], listed["first_run"], listed["seen"]) == ("run-5", "run-1", 5)
    assert listed["key"] == "stop_id=2" and listed["row"] == 2
    assert json.loads(listed["raw"]) == {"stop_id": "2", "latitude": "abc"}
    assert store.open_keys(DATASET) == {"stop_id=2"}


def test_a_repeated_finding_is_released_as_before_and_a_new_failure_opens_a_new_record(tmp_path):
    store = QuarantineStore(tmp_path)
    for n in range(1, 6):
        _held_back_run(store, f"run-{n}")
    assert store.release(DATASET, ["stop_id=2"], "run-6") == 1
    assert store.list(DATASET).empty and store.open_keys(DATASET) == set()
    _held_back_run(store, "run-7")
    stored = store.history(DATASET).astype(object).where(lambda f: f.notna(), None)
    assert stored[["seen", "last_seen", "released_by"]].values.tolist() == [
        [5, "run-5", "run-6"], [1, "run-7", None]]
    assert store.list(DATASET)["run_id"].tolist() == ["run-7"]


def test_the_latest_value_and_row_of_a_repeated_finding_are_kept(tmp_path):
    store = QuarantineStore(tmp_path)
    store.add(DATASET, "run-1", _findings([(2, "stop_id=2", "abc")]),
              _raw([("1", "51.0"), ("2", "abc")]))
    store.add(DATASET, "run-2", _findings([(1, "stop_id=2", "x,y")]), _raw([("2", "x,y")]))
    (listed,) = store.list(DATASET).to_dict("records")
    assert (listed["value"], listed["row"], listed["seen"]) == ("x,y", 1, 2)
    assert json.loads(listed["raw"])["latitude"] == "x,y"


def test_a_key_repeated_within_one_batch_keeps_one_record_per_occurrence(tmp_path):
    store = QuarantineStore(tmp_path)
    raw = _raw([("7", "a"), ("8", "51.0"), ("7", "b")])
    for run in ("run-1", "run-2", "run-3"):
        store.add(DATASET, run, _findings([(1, "stop_id=7", "a"), (3, "stop_id=7", "b")]), raw)
    assert store.history(DATASET)["seen"].tolist() == [3, 3]
    assert store.list(DATASET)[["row", "value", "run_id"]].values.tolist() == [
        [1, "a", "run-3"], [3, "b", "run-3"]]


def test_an_older_quarantine_database_gets_the_new_columns(tmp_path):
    folder = tmp_path / "quarantine"
    folder.mkdir()
    with sqlite3.connect(folder / "quarantine.sqlite") as db:
        db.executescript("""
            CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL,
                dataset TEXT NOT NULL, run_id TEXT NOT NULL, row INTEGER, key TEXT NOT NULL,
                field TEXT NOT NULL, rule TEXT NOT NULL, value TEXT, reason TEXT NOT NULL,
                recorded_at TEXT NOT NULL, raw TEXT NOT NULL, released_at TEXT, released_by TEXT);
            INSERT INTO quarantine (batch, dataset, run_id, row, key, field, rule, value, reason,
                recorded_at, raw) VALUES (1, 'transit-stops', 'run-old', 2, 'stop_id=2',
                'latitude', 'type:number', 'abc', 'not a number', '2024-01-01T00:00:00Z', '{}');
        """)
    (folder / "quarantine.sqlite").chmod(0o644)
    store = QuarantineStore(tmp_path)
    assert _mode(folder / "quarantine.sqlite") == 0o600
    (old,) = store.list(DATASET).to_dict("records")
    assert (old["run_id"], old["seen"]) == ("run-old", 1)
    _held_back_run(store, "run-new")
    (listed,) = store.list(DATASET).to_dict("records")
    assert (listed["run_id"], listed["first_run"], listed["seen"]) == ("run-new", "run-old", 2)


# --- private files -----------------------------------------------------------------------------


def test_history_quarantine_and_logs_are_created_private(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    history.runs(state, DATASET)
    store = QuarantineStore(state)
    _held_back_run(store, "run-1")
    logs.configure(state, console=False)
    try:
        logs.log.info("hello")
    finally:
        for handler in list(logs.log.handlers):
            logs.log.removeHandler(handler)
            handler.close()
    assert _mode(state / "history.sqlite") == 0o600
    for companion in ("history.sqlite-wal", "history.sqlite-shm"):
        if (state / companion).exists():
            assert _mode(state / companion) == 0o600
    assert _mode(state / "quarantine") == 0o700
    assert _mode(state / "quarantine" / "quarantine.sqlite") == 0o600
    assert _mode(state / "logs") == 0o700
    assert _mode(state / "logs" / "odp.log") == 0o600


def test_a_rotated_log_file_is_private_too(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 200)
    logs.configure(tmp_path, console=False)
    try:
        for n in range(20):
            logs.log.info(f"line {n} " + "x" * 50)
    finally:
        for handler in list(logs.log.handlers):
            logs.log.removeHandler(handler)
            handler.close()
    files = sorted((tmp_path / "logs").iterdir())
    assert len(files) > 2 and all(_mode(p) == 0o600 for p in files)
    logging.getLogger("odp").handlers.clear()


def test_state_files_left_world_readable_by_an_older_version_are_narrowed(tmp_path):
    (tmp_path / "logs").mkdir(mode=0o755)
    (tmp_path / "logs").chmod(0o755)
    for name in ("odp.log", "odp.log.1"):
        (tmp_path / "logs" / name).write_text("{}\n")
        (tmp_path / "logs" / name).chmod(0o644)
    (tmp_path / "history.sqlite").touch(mode=0o644)
    (tmp_path / "history.sqlite").chmod(0o644)
    history.runs(tmp_path, DATASET)
    logs.configure(tmp_path, console=False)
    for handler in list(logs.log.handlers):
        logs.log.removeHandler(handler)
        handler.close()
    assert _mode(tmp_path / "history.sqlite") == 0o600
    assert _mode(tmp_path / "logs") == 0o700
    assert {_mode(p) for p in (tmp_path / "logs").iterdir()} == {0o600}


def test_private_helpers_create_missing_parents_and_keep_content(tmp_path):
    folder = private_dir(tmp_path / "a" / "b")
    assert _mode(folder) == 0o700
    path = folder / "f.txt"
    path.write_text("kept")
    path.chmod(0o664)
    assert private_file(path).read_text() == "kept" and _mode(path) == 0o600


# --- size ------------------------------------------------------------------------------------


def test_the_state_size_counts_every_file_below_it(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one").write_bytes(b"x" * 1500)
    (tmp_path / "a" / "b" / "two").write_bytes(b"y" * 500)
    assert state_size(tmp_path) == 2000
    assert human_size(2000) == "2.0 kB" and human_size(12) == "12 B"
    assert human_size(3_400_000) == "3.4 MB"
