"""The action-API load path when CKAN carries out an insert but its answer is lost (HTTP 500
after the commit — CKAN 2.12 does this when a background job fails after a parallel upsert):
the retry must not fail on the rows already there, nor load them twice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from odp.publish import datastore
from tests.integration.ckan_proxy import table_through_proxy

pytestmark = pytest.mark.integration

KEY = ["sensor", "timestamp"]
FIELDS = [{"id": "sensor", "type": "text"}, {"id": "timestamp", "type": "timestamp"},
          {"id": "pm10", "type": "float8"}]


def test_insert_whose_answer_was_lost_is_retried_as_upsert(tmp_path: Path, portal, monkeypatch):
    with table_through_proxy(tmp_path, portal, monkeypatch, "lost", FIELDS, KEY) as table:
        proxy, client, rid = table
        rows = pd.DataFrame({
            "sensor": [f"s{i % 3}" for i in range(300)],
            "timestamp": pd.date_range("2024-11-21", periods=300, freq="min", tz="UTC"),
            "pm10": [float(i) for i in range(300)]})
        loader = datastore.ApiLoader(client, batch_rows=100, atomic_rows=50, workers=1)
        proxy.lose_answer["datastore_upsert"] = 1  # the first batch: done, answer lost
        empty = rows.iloc[0:0]
        loader.load(rid, rows, empty, empty[KEY], KEY)
        assert proxy.calls.count("datastore_upsert") == 5  # 3 batches, 1 retry, 1 upsert
        found = client.call("datastore_search", resource_id=rid, limit=1000)
        assert found["total"] == 300
        assert sorted(r["pm10"] for r in found["records"]) == [float(i) for i in range(300)]
