"""Load synthetic sensor rows into the local CKAN DataStore four ways, side by side, in one run:

  baseline   naive ckanapi `datastore_upsert` (method upsert) in batches of 10k, one at a time
  api        the tuned action-API path (odp.publish.datastore.ApiLoader: `insert`, large
             batches encoded once, parallel requests)
  copy       the COPY path (odp.publish.datastore.CopyLoader: `datastore_create`, then the bulk
             load — indexes dropped, COPY into a staging table, `_full_text` computed set-wise
             with the trigger's expression, rows inserted, indexes re-created — one transaction)
  raw COPY   the limit: the same CSV bytes COPYed by psycopg (a) into a table CKAN created
             (its primary key and full-text trigger on: the DataStore's physical limit) and
             (b) into a plain table with the same columns and primary key (no trigger)

then an incremental run adding 1 % new rows on each path (change detection against the 1M-row
ledger included). Prints rows/s and ratios; deletes everything it created.

    uv run python bench/datastore_load.py                 # 1,000,000 rows (baseline ≈ 5 min)
    uv run python bench/datastore_load.py --rows 200000   # quicker
Needs the local portal (`odp portal start`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from odp.publish import datastore  # noqa: E402
from odp.publish.changes import diff  # noqa: E402
from odp.publish.portal import Portal  # noqa: E402
from odp.spec import load_city  # noqa: E402

KEY = ["station_id", "timestamp"]
FIELDS = [
    {"id": "station_id", "type": "text", "info": {"label": "Sensor"}},
    {"id": "timestamp", "type": "timestamp", "info": {"label": "Zeitpunkt (UTC)"}},
    {"id": "pm10", "type": "float8", "info": {"label": "PM10", "notes": "(Einheit: µg/m³)"}},
    {"id": "pm2_5", "type": "float8", "info": {"label": "PM2,5", "notes": "(Einheit: µg/m³)"}},
    {"id": "temperature", "type": "float8", "info": {"label": "Temperatur", "notes": "°C"}},
    {"id": "humidity", "type": "float8", "info": {"label": "Luftfeuchte", "notes": "%"}},
    {"id": "longitude", "type": "float8", "info": {"label": "Längengrad (WGS84)"}},
    {"id": "latitude", "type": "float8", "info": {"label": "Breitengrad (WGS84)"}},
    {"id": "stadtteil", "type": "text", "info": {"label": "Stadtteil"}},
]
COLUMNS = [f["id"] for f in FIELDS]
STADTTEILE = ["Altstadt", "Neustadt", "Pieschen", "Klotzsche", "Loschwitz", "Blasewitz",
              "Leuben", "Prohlis", "Plauen", "Cotta"]


def sensor_rows(n: int, start: int = 0, seed: int = 7) -> pd.DataFrame:
    """n readings of 200 sensors every 5 minutes, from reading number `start` on."""
    rng = np.random.default_rng(seed + start)
    i = np.arange(start, start + n)
    sensors = 200
    station = i % sensors
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    return pd.DataFrame({
        "station_id": pd.array([f"sc-{s:05d}" for s in station], dtype="string"),
        "timestamp": t0 + pd.to_timedelta((i // sensors) * 300, unit="s"),
        "pm10": rng.gamma(2.0, 8.0, n).round(1),
        "pm2_5": rng.gamma(2.0, 4.0, n).round(1),
        "temperature": rng.normal(10, 8, n).round(1),
        "humidity": rng.uniform(20, 100, n).round(1),
        "longitude": (13.6 + (station % 20) * 0.02).round(6),
        "latitude": (50.98 + (station // 20) * 0.015).round(6),
        "stadtteil": pd.array([STADTTEILE[s % 10] for s in station], dtype="string"),
    })


class Bench:
    def __init__(self, rows: int, baseline_rows: int, batch: int, workers: int | None) -> None:
        os.environ.setdefault("ODP_PROJECT", str(ROOT))
        self.city = load_city(ROOT)
        self.portal = Portal(self.city)
        self.write_url = datastore.write_url(self.city)
        if not self.write_url:
            sys.exit("no DataStore write URL (ODP_DATASTORE_WRITE_URL or the local portal)")
        self.rows, self.baseline_rows, self.batch = rows, baseline_rows, batch
        self.workers = workers or self.portal.parallel_limit
        self.tag = secrets.token_hex(3)
        self.package: dict | None = None
        self.raw_table = f"odp_bench_raw_{self.tag}"
        self.results: list[tuple[str, int, float]] = []

    def setup(self) -> None:
        org = self.city.organization["name"]
        if self.portal.show("organization_show", org) is None:
            self.portal.call("organization_create", name=org, title=org)
        self.package = self.portal.call(
            "package_create", name=f"odp-bench-datastore-{self.tag}", owner_org=org,
            title="DataStore load benchmark (temporary)", private=True)

    def resource(self, label: str) -> str:
        created = self.portal.call("datastore_create", force=True, fields=FIELDS,
                                   primary_key=KEY, indexes=KEY,
                                   resource={"package_id": self.package["id"], "name": label})
        return created["resource_id"]

    def count(self, resource_id: str) -> int:
        found = self.portal.call("datastore_search", resource_id=resource_id, limit=0)
        return int(found["total"])

    def timed(self, label: str, n: int, fn) -> float:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        fn()
        seconds = time.perf_counter() - began
        self.results.append((label, n, seconds))
        print(f"  {label:<34} {n:>9,} rows {seconds:8.1f} s {n / seconds:>10,.0f} rows/s",
              flush=True)
        return seconds

    def baseline(self, table: pd.DataFrame) -> None:
        from ckanapi import RemoteCKAN

        ckan = RemoteCKAN(self.city.portal_url, apikey=self.city.api_token())
        rid = self.resource("baseline")
        records = json.loads(datastore.records_json(table, COLUMNS))

        def run() -> None:
            for start in range(0, len(records), 10_000):
                ckan.action.datastore_upsert(resource_id=rid, records=records[start:start + 10_000],
                                             method="upsert", force=True)

        self.timed("baseline: ckanapi upsert, 10k", len(records), run)
        assert self.count(rid) == len(records)

    def api(self, table: pd.DataFrame, more: pd.DataFrame) -> None:
        loader = datastore.ApiLoader(self.portal, batch_rows=self.batch, workers=self.workers)
        rid = self.resource("api")
        empty = table.iloc[0:0]
        self.timed(f"api: insert {self.batch // 1000}k × {self.workers} parallel", len(table),
                   lambda: loader.load(rid, table, empty, empty[KEY], KEY))
        self._incremental("api", loader, rid, table, more)

    def copy(self, table: pd.DataFrame, more: pd.DataFrame) -> None:
        loader = datastore.CopyLoader(self.portal, self.write_url)
        empty = table.iloc[0:0]
        holder: dict[str, str] = {}

        def run() -> None:
            holder["rid"] = self.resource("copy")  # datastore_create is part of the path
            loader.load(holder["rid"], table, empty, empty[KEY], KEY)

        self.timed("copy: datastore_create + COPY", len(table), run)
        self._incremental("copy", loader, holder["rid"], table, more)

    def _incremental(self, label: str, loader, rid: str, table: pd.DataFrame,
                     more: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
        ledger = diff(table, None, KEY, COLUMNS, False).result

        def run() -> None:
            changes = diff(more, ledger, KEY, COLUMNS, False)  # change detection, 1M ledger
            loader.load(rid, changes.new, changes.changed, changes.deleted, KEY)

        self.timed(f"{label}: incremental +1 %", len(more), run)
        assert self.count(rid) == len(table) + len(more), f"{label}: wrong row count"

    def raw_copy(self, table: pd.DataFrame) -> None:
        import psycopg

        cols = ", ".join(f'"{f["id"]}" {f["type"]}' for f in FIELDS)
        with psycopg.connect(self.write_url) as conn:
            conn.execute(f'CREATE TABLE {self.raw_table} ({cols}, PRIMARY KEY ("station_id", '
                         f'"timestamp"))')
        def run() -> None:
            data = datastore.copy_csv(table, COLUMNS)
            with psycopg.connect(self.write_url) as conn, conn.cursor() as cur:
                datastore.CopyLoader._copy(cur, self.raw_table, COLUMNS, data)

        self.timed("raw COPY (psycopg, plain table)", len(table), run)
        rid = self.resource("raw")

        def into_datastore() -> None:
            data = datastore.copy_csv(table, COLUMNS)
            with psycopg.connect(self.write_url) as conn, conn.cursor() as cur:
                datastore.CopyLoader._copy(cur, f'"{rid}"', COLUMNS, data)

        self.timed("raw COPY (psycopg, DataStore table)", len(table), into_datastore)

    def cleanup(self) -> None:
        import psycopg

        with psycopg.connect(self.write_url) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.raw_table}")
        if self.package:
            self.portal.call("dataset_purge", id=self.package["id"])  # also drops its tables

    def report(self) -> None:
        by = {label.split(":")[0]: n / s for label, n, s in self.results
              if "incremental" not in label}
        raw_ds, raw_plain = by["raw COPY (psycopg, DataStore table)"], by[
            "raw COPY (psycopg, plain table)"]
        full = {label.split(":")[0]: s for label, _, s in self.results
                if "incremental" not in label}
        inc = {label.split(":")[0]: s for label, _, s in self.results if "incremental" in label}
        print("\nrows/s ratios")
        print(f"  tuned api / baseline  {by['api'] / by['baseline']:6.2f}×  (target ≥ 2)")
        print(f"  copy path / baseline  {by['copy'] / by['baseline']:6.2f}×  (target ≥ 20)")
        print(f"  raw COPY into the DataStore table / copy path  {raw_ds / by['copy']:6.2f}×  "
              "(target ≤ 1.5)")
        print(f"  raw COPY into a plain table / copy path        {raw_plain / by['copy']:6.2f}×  "
              "(CKAN's full-text trigger is the difference)")
        for path in ("api", "copy"):
            share = inc[path] / full[path] * 100
            print(f"  {path}: incremental +1 % / full load {share:5.1f} %  (target ≤ 5 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows for the naive baseline (default: --rows)")
    parser.add_argument("--batch", type=int, default=20_000, help="tuned API batch size")
    parser.add_argument("--workers", type=int, default=None,
                        help="tuned API parallel requests (default: the portal's limit)")
    args = parser.parse_args()
    bench = Bench(args.rows, args.baseline_rows or args.rows, args.batch, args.workers)
    table = sensor_rows(args.rows)
    more = sensor_rows(max(1, args.rows // 100), start=args.rows)
    print(f"{args.rows:,} synthetic sensor rows ({len(COLUMNS)} columns), baseline on "
          f"{bench.baseline_rows:,}; CKAN {bench.portal.check()} at {bench.city.portal_url}, "
          f"{os.cpu_count()} CPUs")
    bench.setup()
    try:
        bench.raw_copy(table)
        bench.copy(table, more)
        bench.api(table, more)
        bench.baseline(table.iloc[: bench.baseline_rows])
        bench.report()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
