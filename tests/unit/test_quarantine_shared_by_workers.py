"""Parallel workers share one quarantine store: a worker writing a large batch (holding the
database's write lock) does not stop another worker reading its own dataset's open findings."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pandas as pd

from odp.validate.quarantine import QuarantineStore


def _findings(key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    findings = pd.DataFrame({"row": [1], "key": [key], "field": ["x"], "rule": ["type"],
                             "value": ["?"], "reason": ["not a number"]})
    return findings, pd.DataFrame({"x": ["?"]})


def test_a_worker_reads_its_findings_while_another_holds_the_write_lock(tmp_path) -> None:
    store = QuarantineStore(tmp_path)
    store.add("a", "run-1", *_findings("k1"))
    with closing(sqlite3.connect(store.path, timeout=0.1)) as writer:
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer.execute("BEGIN EXCLUSIVE")  # a worker in the middle of storing its batch
        writer.execute("UPDATE quarantine SET seen = seen + 1")
        began = time.monotonic()
        assert QuarantineStore(tmp_path).open_keys("a") == {"k1"}
        assert time.monotonic() - began < 5  # not the 30 s busy timeout
        writer.rollback()
