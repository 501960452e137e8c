"""A bulk load into a PUBLISHED DataStore table (every key of the delivery new, so the table is
rebuilt) never shows readers an empty or half-built table and never makes them wait on it: the
new table is built beside the live one and swapped in at the commit (datastore.Rebuild).
A reader polls CKAN's datastore_search throughout, a second one reads the table in PostgreSQL
with a short lock timeout; against the real local CKAN."""

from __future__ import annotations

import threading
import time

import psycopg

from tests.faults.harness import Reader
from tests.integration.test_datastore_bulk import KEY, _shape, loader, readings  # noqa: F401

OLD, NEW = 50_000, 60_000


class LockProbe(threading.Thread):
    """`SELECT count(*)` on the table again and again with a 1 s lock timeout: counts the
    answers and the times it had to give up waiting for a lock."""

    def __init__(self, url: str, rid: str) -> None:
        super().__init__(daemon=True)
        self.url, self.rid = url, rid
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.timeouts = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '1s'")
            while not self.stop.is_set():
                try:
                    self.answers.append(conn.execute(
                        f'SELECT count(*) FROM "{self.rid}"').fetchone()[0])
                except psycopg.errors.LockNotAvailable:
                    self.timeouts += 1
                self.stop.wait(0.02)


def test_readers_see_the_old_table_until_the_rebuilt_one_is_swapped_in(loader, portal):  # noqa: F811
    copy, rid, messages, url = loader
    first = readings(OLD)
    empty = first.iloc[0:0]
    copy.load(rid, first, empty, empty[KEY], KEY)
    shape = _shape(url, rid)
    with psycopg.connect(url) as conn:
        ids_before = conn.execute(f'SELECT max(_id) FROM "{rid}"').fetchone()[0]

    second = readings(NEW, start=OLD)  # every key new, every old one gone: a rebuild
    probe = LockProbe(url, rid)
    with Reader(portal.url, rid, interval=0.02, token=portal.token()) as reader:
        probe.start()
        began = time.monotonic()
        copy.load(rid, second, empty, first[KEY], KEY)
        took = time.monotonic() - began
        time.sleep(0.3)
        probe.stop.set()
        probe.join(10)

    assert set(reader.totals) <= {OLD, NEW} and OLD in reader.totals, set(reader.totals)
    assert reader.totals[-1] == NEW
    assert set(probe.answers) <= {OLD, NEW} and probe.timeouts == 0, (
        set(probe.answers), probe.timeouts)
    assert len(probe.answers) > 5  # it really read while the table was rebuilt
    assert reader.slowest < max(1.0, took / 3), (reader.slowest, took)
    # Same table for CKAN: name, keys, indexes, trigger; _id goes on from the old sequence.
    assert _shape(url, rid) == shape
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == NEW
    assert copy.portal.call("datastore_search", resource_id=rid, q="Striesen")["total"] == NEW / 2
    with psycopg.connect(url) as conn:
        assert conn.execute(f'SELECT min(_id) FROM "{rid}"').fetchone()[0] > ids_before
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'odp_stage_%'")
        assert left.fetchone()[0] == 0
        grants = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = %s::regclass",
                              (f'"{rid}"',)).fetchone()[0]
    assert grants and "datastore_ro=r" in grants  # CKAN's read-only user still reads it
    assert any("into a copy of the table, swapped in" in m for m in messages), messages


def _cached_count(url: str, rid: str) -> str | None:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT stats ->> 'rows' FROM _table_stats WHERE resource_id = %s",
                             (rid,)).fetchone()
    return found[0] if found else None


def test_a_copy_load_sets_ckans_cached_row_count_in_its_own_transaction(loader):  # noqa: F811
    # Were the cached count only cleared, a reader counting while the load commits could
    # store the old count after it, and every reader would see that until the next write.
    copy, rid, _messages, url = loader
    rows = readings(300)
    empty = rows.iloc[0:0]
    copy.load(rid, rows, empty, empty[KEY], KEY)
    assert _cached_count(url, rid) == "300"
    copy.load(rid, readings(20, start=300), empty, rows[KEY].iloc[:5], KEY)
    assert _cached_count(url, rid) == "315"
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 315
