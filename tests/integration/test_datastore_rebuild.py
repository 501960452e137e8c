"""A bulk load into a PUBLISHED DataStore table (every key of the delivery new, so the table is
rebuilt) never shows readers an empty or half-built table and never makes them wait on it: the
new table is built beside the live one and swapped in at the commit (datastore.Rebuild).
A reader polls CKAN's datastore_search throughout, a second one reads the table in PostgreSQL
with a short lock timeout; against the real local CKAN."""

from __future__ import annotations

import threading
import time

import pandas as pd
import psycopg
import pytest

from odp.errors import PublishError
from odp.publish import datastore
from tests.faults.harness import Reader
from tests.integration.test_datastore_bulk import COLUMNS, FIELDS, KEY, _shape, loader, readings  # noqa: F401

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


COLUMN_DEFINITIONS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attcollation, a.attnotnull, "
    "pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum), a.attstorage, "
    "a.attstattarget FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
    "AND d.adnum = a.attnum WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum")


def test_a_rebuilt_table_keeps_every_column_definition_a_city_may_have_set(loader):  # noqa: F811
    """The rebuilt table is made by `CREATE TABLE … AS`: each definition the live table had —
    CKAN's own (the `_id` default, the data dictionary's comments, NOT NULL of the key) and
    what a city's database administrator may add (a check, a column's storage, statistics
    target, a NOT NULL, the table's comment) — is on the table swapped in."""
    copy, rid, messages, url = loader
    table = f'"{rid}"'
    copy.portal.call("datastore_create", resource_id=rid, force=True, fields=[
        {**f, "info": {"label": f["id"].upper(), "notes": f"about {f['id']}"}} for f in FIELDS])
    with psycopg.connect(url) as conn:
        conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT count_not_negative CHECK (count >= 0)")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN stadtteil SET STORAGE MAIN, "
                     "ALTER COLUMN pm10 SET STATISTICS 500, ALTER COLUMN ok SET NOT NULL")
        conn.execute(f"COMMENT ON TABLE {table} IS 'readings'")
    rows = readings(300)
    empty = rows.iloc[0:0]
    with psycopg.connect(url) as conn:
        before = conn.execute(COLUMN_DEFINITIONS, (table,)).fetchall()
        checks_before = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM "
                                     "pg_constraint WHERE conrelid = %s::regclass AND "
                                     "contype = 'c'", (table,)).fetchall()
    shape = _shape(url, rid)
    copy.load(rid, rows, empty, empty[KEY], KEY)
    assert any("into a copy of the table, swapped in" in m for m in messages), messages
    with psycopg.connect(url) as conn:
        assert conn.execute(COLUMN_DEFINITIONS, (table,)).fetchall() == before
        assert conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = %s::regclass AND contype = 'c'",
                            (table,)).fetchall() == checks_before == [
            ("count_not_negative", "CHECK ((count >= 0))")]
        assert conn.execute("SELECT obj_description(%s::regclass, 'pg_class')",
                            (table,)).fetchone()[0] == "readings"
        ids = conn.execute(f"SELECT min(_id), max(_id), count(DISTINCT _id) FROM {table}"
                           ).fetchone()
    assert _shape(url, rid) == shape
    assert ids[2] == 300 and ids[1] - ids[0] == 299  # _id from the table's own sequence
    info = copy.portal.call("datastore_info", id=rid)
    assert {f["id"]: f.get("info", {}).get("notes") for f in info["fields"]} == {
        c: f"about {c}" for c in COLUMNS}
    # the check travelled with the table: a negative count is refused after the swap
    with pytest.raises(PublishError, match="count_not_negative"):
        bad = readings(1, start=1000).assign(count=pd.array([-1], dtype="Int64"))
        copy.load(rid, bad, empty, empty[KEY], KEY)


def test_the_cached_row_count_moves_by_the_rows_a_load_added_or_removed(loader):  # noqa: F811
    """A load into a large table must not count it again at its end (10M rows: a count in
    every +1 % run): CKAN's cached count moves by the rows inserted, the upserted keys that
    were new and the rows deleted — exact after each load. A rebuilt table, or an entry
    CKAN's own write cleared meanwhile, is counted."""
    copy, rid, _messages, url = loader
    rows = readings(300)
    empty = rows.iloc[0:0]
    copy.load(rid, rows, empty, empty[KEY], KEY)  # rebuilt: counted
    assert _cached_count(url, rid) == "300"
    changed = rows.iloc[:3].assign(pm10=1.0)
    new_by_upsert = readings(2, start=400)
    copy.load(rid, readings(20, start=300), pd.concat([changed, new_by_upsert]),
              rows[KEY].iloc[10:15], KEY)
    assert _cached_count(url, rid) == str(300 + 20 + 2 - 5)
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 317

    with psycopg.connect(url) as conn, conn.cursor() as cur:  # a marker: a count says 317
        cur.execute("UPDATE _table_stats SET stats = '{\"rows\": 1000}' WHERE resource_id = %s",
                    (rid,))
        datastore.set_row_count(cur, rid, -4)
        assert cur.execute("SELECT stats ->> 'rows' FROM _table_stats WHERE resource_id = %s",
                           (rid,)).fetchone()[0] == "996"
        datastore.set_row_count(cur, rid, None)  # rebuilt
        assert cur.execute("SELECT stats ->> 'rows' FROM _table_stats WHERE resource_id = %s",
                           (rid,)).fetchone()[0] == "317"
        cur.execute("DELETE FROM _table_stats WHERE resource_id = %s", (rid,))
        datastore.set_row_count(cur, rid, 5)  # cleared meanwhile
        assert cur.execute("SELECT stats ->> 'rows' FROM _table_stats WHERE resource_id = %s",
                           (rid,)).fetchone()[0] == "317"


def test_a_load_that_knows_the_tables_rows_puts_back_ckans_count_instead_of_counting(loader):  # noqa: F811
    """CKAN's dry-run upsert that asks for the token's right clears the cached count. A load
    told the rows the table held (the ledger's) puts back the count the entry held just
    before, when the two agree, instead of counting the table again (10M rows: 0.5–1.4 s of
    every +1 % run); an entry that disagrees with the ledger is counted."""
    copy, rid, _messages, url = loader
    rows = readings(300)
    empty = rows.iloc[0:0]
    copy.load(rid, rows, empty, empty[KEY], KEY)
    with psycopg.connect(url) as conn:  # a marker: only the entry says 1000, a count 300
        conn.execute("UPDATE _table_stats SET stats = '{\"rows\": 1000}' WHERE resource_id = %s",
                     (rid,))
    copy.load(rid, readings(20, start=300), empty, empty[KEY], KEY, rows_before=1000)
    assert _cached_count(url, rid) == "1020"  # put back and moved by the 20: not counted
    copy.load(rid, readings(20, start=320), empty, empty[KEY], KEY, rows_before=320)
    assert _cached_count(url, rid) == "340"  # 1020 is not the ledger's 320: counted
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 340
