"""The action-API load path applies an update as one transaction where CKAN allows it: new and
changed rows, and gone rows overwritten in place by new ones, in ONE `datastore_upsert` — so a
reader sees the old table or the new one, never a mix — and every written row's full text is
the row's own (CKAN's upsert would keep an overwritten row's old `_full_text`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from odp.errors import PublishError
from odp.publish import datastore
from odp.publish.portal import Portal
from tests.integration.ckan_proxy import FailingProxy, table_through_proxy

pytestmark = pytest.mark.integration

KEY = ["stop_id"]
FIELDS = [{"id": "stop_id", "type": "text"}, {"id": "name", "type": "text"},
          {"id": "zone", "type": "int8"}]


def stops(ids: list[int], renamed: dict[int, str] | None = None) -> pd.DataFrame:
    names = {i: f"Haltestelle{i}" for i in ids} | (renamed or {})
    return pd.DataFrame({"stop_id": [f"s{i}" for i in ids],
                         "name": [names[i] for i in ids],
                         "zone": pd.array([10 + i % 3 for i in ids], dtype="Int64")})


@pytest.fixture
def table(tmp_path: Path, portal, monkeypatch) -> Iterator[tuple[FailingProxy, Portal, str]]:
    """(proxy in front of CKAN, a Portal talking through it, a table of stops s0 … s9)"""
    with table_through_proxy(tmp_path, portal, monkeypatch, "apiupd", FIELDS, KEY) as table:
        proxy, client, rid = table
        first = stops(list(range(10)))
        datastore.ApiLoader(client, workers=1).load(rid, first, first.iloc[0:0],
                                                    first[KEY].iloc[0:0], KEY)
        yield table


def _rows(client: Portal, rid: str, q: str | None = None) -> dict[str, str]:
    extra = {"q": q} if q else {}
    found = client.call("datastore_search", resource_id=rid, limit=1000, **extra)
    return {r["stop_id"]: r["name"] for r in found["records"]}


def _update(client: Portal, rid: str, old: list[int], new: list[int],
            renamed: dict[int, str]) -> None:
    before, after = stops(old), stops(new, renamed)
    insert = after[~after["stop_id"].isin(before["stop_id"])]
    changed = after[after["stop_id"].isin(before["stop_id"]) & ~after["name"].isin(
        before["name"])]
    gone = before[~before["stop_id"].isin(after["stop_id"])][KEY]
    datastore.ApiLoader(client, workers=1).load(rid, insert, changed, gone, KEY)


def test_an_update_removing_no_more_rows_than_it_adds_is_one_request(table):
    proxy, client, rid = table
    # Only the first write request reaches CKAN: the update must be complete after it.
    proxy.fail_after.update({"datastore_upsert": 1, "datastore_delete": 0})
    new = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12]  # s6, s7 gone; s10, s11, s12 new
    with pytest.raises(PublishError):  # the full-text refresh after it is refused
        _update(client, rid, list(range(10)), new, {3: "Neumarkt"})
    proxy.fail.clear()
    proxy.fail_after.clear()
    assert _rows(client, rid) == {r.stop_id: r.name for r in stops(new, {3: "Neumarkt"})
                                  .itertuples()}
    assert "datastore_delete" not in proxy.calls


def test_rows_written_over_others_are_found_by_their_own_text(table):
    _, client, rid = table
    new = [0, 1, 2, 3, 4, 5, 8, 9, 10]  # s6, s7 gone; s10 takes one's place
    _update(client, rid, list(range(10)), new, {3: "Neumarkt"})
    assert _rows(client, rid, q="Neumarkt") == {"s3": "Neumarkt"}
    assert _rows(client, rid, q="Haltestelle3") == {}
    assert _rows(client, rid, q="Haltestelle10") == {"s10": "Haltestelle10"}
    assert _rows(client, rid, q="Haltestelle6") == {}
    assert _rows(client, rid, q="Haltestelle7") == {}
    assert _rows(client, rid) == {r.stop_id: r.name for r in stops(new, {3: "Neumarkt"})
                                  .itertuples()}
