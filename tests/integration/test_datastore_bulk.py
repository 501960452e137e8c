"""The COPY path's bulk load against the real local CKAN DataStore: the same `_full_text` CKAN's
trigger would compute, the same indexes and keys afterwards, and all-or-nothing on failure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest

from odp.errors import PublishError
from odp.publish import datastore
from odp.publish.portal import Portal
from odp.spec import load_city
from odp_dev.portal.stack import datastore_write_url
from tests.helpers import make_project, use_project

pytestmark = pytest.mark.integration

KEY = ["station_id", "timestamp"]
FIELDS = [
    {"id": "station_id", "type": "text"},
    {"id": "timestamp", "type": "timestamp"},
    {"id": "pm10", "type": "float8"},
    {"id": "count", "type": "int8"},
    {"id": "stadtteil", "type": "text"},
    {"id": "ok", "type": "bool"},
]
COLUMNS = [f["id"] for f in FIELDS]
# What CKAN's populate_full_text_trigger computes for a row, written as a query.
TRIGGER_FULL_TEXT = ("(SELECT to_tsvector(string_agg(value, ' ')) FROM "
                     "json_each_text(row_to_json(t.*)) WHERE key NOT LIKE '\\_%')")


class Secret(str):
    """The write URL holds the database password: keep it out of failure reports."""

    def __repr__(self) -> str:
        return "'postgresql://…'"


def readings(n: int, start: int = 0) -> pd.DataFrame:
    when = pd.date_range("2024-11-21T00:00:00Z", periods=n, freq="5min") + pd.Timedelta(
        minutes=5 * start)
    return pd.DataFrame({
        "station_id": [f"sensor-{i % 7}" for i in range(start, start + n)],
        "timestamp": when,
        "pm10": [None if i % 11 == 0 else round(i * 0.37, 2) for i in range(start, start + n)],
        "count": pd.array(range(start, start + n), dtype="Int64"),
        "stadtteil": ["Äußere Neustadt" if i % 2 else "Striesen-Süd" for i in range(n)],
        "ok": [i % 3 == 0 for i in range(n)],
    })


@pytest.fixture
def loader(tmp_path: Path, portal, monkeypatch):
    """(CopyLoader bulk-loading from 100 rows on, resource id, progress messages, Secret URL)"""
    root, _ = make_project(tmp_path, [])
    use_project(monkeypatch, root, tmp_path / "state", "http://127.0.0.1:9", portal)
    city = load_city(root)
    client = Portal(city)
    org = city.organization["name"]
    if client.show("organization_show", org) is None:
        client.call("organization_create", name=org, title=org)
    package = client.call("package_create", name=f"odp-test-bulk-{tmp_path.name[-8:].lower()}",
                          owner_org=org, private=True)
    resource = client.call("datastore_create", force=True, fields=FIELDS, primary_key=KEY,
                           indexes=KEY, resource={"package_id": package["id"], "name": "t"})
    messages: list[str] = []
    url = Secret(datastore_write_url())
    yield datastore.CopyLoader(client, str(url), messages.append, bulk_min_rows=100), \
        resource["resource_id"], messages, url
    client.call("dataset_purge", id=package["id"])


def _shape(url: Secret, rid: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(url) as conn:
        indexes = {row[0] for row in conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
            (f'"{rid}"',))}
        constraints = {row[0] for row in conn.execute(
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass", (f'"{rid}"',))}
        triggers = {row[0] for row in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            (f'"{rid}"',))}
    return indexes | constraints, triggers


def test_bulk_load_matches_ckans_trigger_and_keeps_indexes(loader):
    copy, rid, messages, url = loader
    shape_before = _shape(url, rid)
    rows = readings(500)
    empty = rows.iloc[0:0]
    copy.load(rid, rows, empty, empty[KEY], KEY)
    assert any("bulk COPY: 500" in m for m in messages), messages

    with psycopg.connect(url) as conn:
        total, differing, empty_ft = conn.execute(
            f'SELECT count(*), count(*) FILTER (WHERE _full_text IS DISTINCT FROM '
            f'{TRIGGER_FULL_TEXT}), count(*) FILTER (WHERE _full_text IS NULL) '
            f'FROM "{rid}" t').fetchone()
        ids = conn.execute(f'SELECT count(DISTINCT _id) FROM "{rid}"').fetchone()
    assert (total, differing, empty_ft) == (500, 0, 0)
    assert ids[0] == 500  # every row got its own _id from the table's sequence
    assert _shape(url, rid) == shape_before  # keys, CKAN's indexes and the trigger, as before

    hits = copy.portal.call("datastore_search", resource_id=rid, q="Striesen")
    assert hits["total"] == 250
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 500
    # A small addition to a filled table goes the plain way, trigger on, same full text.
    more = readings(20, start=500)
    copy.load(rid, more, empty, empty[KEY], KEY)
    assert any(m == "DataStore COPY: 20 new rows" for m in messages), messages
    with psycopg.connect(url) as conn:
        differing = conn.execute(f'SELECT count(*) FROM "{rid}" t WHERE _full_text IS DISTINCT '
                                 f'FROM {TRIGGER_FULL_TEXT}').fetchone()[0]
    assert differing == 0
    # CKAN's cached row count (datastore_search `total`) follows COPY loads too.
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 520


def test_failed_bulk_load_leaves_the_table_as_it_was(loader):
    copy, rid, _messages, url = loader
    shape_before = _shape(url, rid)
    rows = readings(300)
    broken = pd.concat([rows, rows.iloc[[5]]], ignore_index=True)  # a duplicate key
    empty = rows.iloc[0:0]
    with pytest.raises(PublishError, match=rid):
        copy.load(rid, broken, empty, empty[KEY], KEY)
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 0
    assert _shape(url, rid) == shape_before
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'odp_stage_%'")
        assert left.fetchone()[0] == 0  # no staging table survives the rollback
    copy.load(rid, rows, empty, empty[KEY], KEY)
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 300


def test_statistics_are_refreshed_after_a_large_share_and_left_to_autovacuum_after_a_small_one(
        loader):
    """ANALYZE after a bulk load and after a tenth of the table or more; an addition of a few
    percent to a large table is left to autovacuum (as it judges: a tenth changed)."""
    copy, rid, _messages, url = loader
    empty = readings(0)

    def known() -> float:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                                (f'"{rid}"',)).fetchone()[0]

    copy.load(rid, readings(120_000), empty, empty[KEY], KEY)
    analysed = known()
    assert abs(analysed - 120_000) < 1_200  # the bulk load analysed its table (an estimate)
    copy.load(rid, readings(11_000, start=120_000), empty, empty[KEY], KEY)
    assert known() == analysed  # 9 % more: the statistics are autovacuum's to refresh
    copy.load(rid, readings(15_000, start=131_000), empty, empty[KEY], KEY)
    assert abs(known() - 146_000) < 1_460  # 11 %: analysed with the write
    assert copy.portal.call("datastore_search", resource_id=rid, limit=0)["total"] == 146_000
