"""Load synthetic sensor rows into the local CKAN DataStore four ways, side by side, in one run:

  baseline   naive ckanapi `datastore_upsert` (method upsert) in batches of 10k, one at a time
  api        the tuned action-API path (odp.publish.datastore.ApiLoader: `insert`, large
             batches encoded once, parallel requests)
  copy       the COPY path (odp.publish.datastore.CopyLoader), from the CSV file XLoader reads
             (pyarrow's reader): `datastore_create`, then the bulk load — COPY into a staging
             table, `_full_text` computed set-wise with the trigger's expression, rows inserted
             into a copy of the table without indexes, indexes re-created, swapped in — one
             transaction
  raw COPY   the limit: the same CSV bytes COPYed by psycopg (a) into a table CKAN created
             (its primary key and full-text trigger on: the DataStore's physical limit) and
             (b) into a plain table with the same columns and primary key (no trigger)
  xloader    CKAN's own loader, ckanext-xloader 2.x, on the same rows written as a CSV file:
             its `load_csv` (datastore_create, trigger off, indexes dropped, COPY, `_full_text`
             by UPDATE in chunks) + `calculate_record_count` + `create_column_indexes`, called
             in the local portal's CKAN virtualenv as its job calls them (without the download).
             It loads every column as text, without a key. `--install-xloader` installs it there
             for the benchmark only (not among the portal's plugins; the portal's own packages
             kept at their versions).

then an incremental run adding 1 % new rows on each path (change detection against the 1M-row
ledger included). Prints rows/s and ratios; deletes everything it created.

    uv run python bench/datastore_load.py                 # 1,000,000 rows (baseline ≈ 5 min)
    uv run python bench/datastore_load.py --rows 200000   # quicker
    uv run python bench/datastore_load.py --only raw copy xloader --install-xloader
Needs the local portal (`odp portal start`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
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
PATHS = ("raw", "copy", "xloader", "api", "baseline")
XLOADER = "ckanext-xloader==2.6.0"  # the version the README's figures were measured with
# Run in the portal's virtualenv: XLoader's job without the download (jobs.xloader_data_into_
# datastore calls these three for a CSV, in this order: create_column_indexes leaves its
# connection open, so an ANALYZE after it would wait for its lock), timed inside the process
# (CKAN's start-up excluded).
XLOADER_RUN = """
import json, logging, sys, time
from ckan.cli import load_config
from ckan.config.middleware import make_app
app = make_app(load_config(sys.argv[1]))
log = logging.getLogger("xloader-bench")
with getattr(app, "_wsgi_app", app).test_request_context():
    from ckanext.xloader import loader
    began = time.perf_counter()
    fields = loader.load_csv(sys.argv[3], resource_id=sys.argv[2], mimetype="text/csv",
                             logger=log)
    loaded = time.perf_counter()
    loader.calculate_record_count(resource_id=sys.argv[2], logger=log)
    loader.create_column_indexes(fields=fields, resource_id=sys.argv[2], logger=log)
    print(json.dumps({"load_csv": loaded - began, "total": time.perf_counter() - began}))
"""
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
        self.tmp = Path(tempfile.mkdtemp(prefix="odp-bench-ds-"))
        self.csv = self.tmp / "readings.csv"

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

    def write_csv(self, table: pd.DataFrame) -> None:
        """The rows as a CSV file with a header (the file XLoader and the copy path read)."""
        from pyarrow import csv

        out = table.assign(timestamp=table["timestamp"].dt.tz_localize(None))
        import pyarrow as pa

        csv.write_csv(pa.Table.from_pandas(out, preserve_index=False), str(self.csv))

    def read_csv(self) -> pd.DataFrame:
        """The CSV file typed as the table's columns (pyarrow's reader, no per-row Python)."""
        import pyarrow as pa
        from pyarrow import csv

        types = {"station_id": pa.string(), "stadtteil": pa.string(),
                 "timestamp": pa.timestamp("us")}
        frame = csv.read_csv(self.csv, convert_options=csv.ConvertOptions(
            column_types=types)).to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
        return frame.assign(timestamp=frame["timestamp"].dt.tz_localize("UTC"))

    def copy(self, table: pd.DataFrame, more: pd.DataFrame) -> None:
        loader = datastore.CopyLoader(self.portal, self.write_url)
        empty = table.iloc[0:0]
        holder: dict[str, str] = {}

        def run() -> None:
            rows = self.read_csv()
            holder["rid"] = self.resource("copy")  # datastore_create is part of the path
            loader.load(holder["rid"], rows, empty, empty[KEY], KEY)

        self.timed("copy: CSV + datastore_create + COPY", len(table), run)
        self._incremental("copy", loader, holder["rid"], table, more)

    def xloader(self, rows: int) -> None:
        """XLoader's load of the same CSV into a resource of its own, in the portal's venv."""
        home = Path(os.environ.get("ODP_PORTAL_HOME", ROOT / ".local" / "portal"))
        python, ini = home / "venv" / "bin" / "python", home / "ckan.ini"
        found = subprocess.run([str(python), "-c", "import ckanext.xloader.loader"],
                               capture_output=True)
        if found.returncode:
            print(f"  xloader: not installed in {home / 'venv'} (--install-xloader) — skipped")
            return
        resource = self.portal.call("resource_create", package_id=self.package["id"],
                                    name="xloader", url="http://localhost/readings.csv",
                                    format="CSV")
        done = subprocess.run([str(python), "-c", XLOADER_RUN, str(ini), resource["id"],
                               str(self.csv)], capture_output=True, text=True, cwd=home,
                              env={**os.environ, "CKAN_INI": str(ini)})
        if done.returncode:
            sys.exit(f"xloader failed: {done.stderr[-3000:]}")
        seconds = json.loads(done.stdout.strip().splitlines()[-1])["total"]
        self.results.append(("xloader", rows, seconds))
        print(f"  {'xloader: load_csv + indexes + ANALYZE':<34} {rows:>9,} rows {seconds:8.1f} s "
              f"{rows / seconds:>10,.0f} rows/s", flush=True)
        assert self.count(resource["id"]) == rows, "xloader: wrong row count"

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
        import shutil

        import psycopg

        shutil.rmtree(self.tmp, ignore_errors=True)

        with psycopg.connect(self.write_url) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.raw_table}")
        if self.package:
            self.portal.call("dataset_purge", id=self.package["id"])  # also drops its tables

    def report(self) -> None:
        full = {label.split(":")[0]: s for label, _, s in self.results
                if "incremental" not in label}
        inc = {label.split(":")[0]: s for label, _, s in self.results if "incremental" in label}
        names = {"raw COPY (psycopg, plain table)": "raw COPY, plain table (no trigger)",
                 "raw COPY (psycopg, DataStore table)": "raw COPY, DataStore table (trigger)",
                 "copy": "odp COPY path (bulk load)", "xloader": "ckanext-xloader",
                 "api": "odp action API (tuned)", "baseline": "ckanapi upsert (naive)"}
        copy = full.get("copy")
        print(f"\n{'first load of ' + format(self.rows, ',') + ' rows':<40} {'s':>7} "
              f"{'rows/s':>9}  odp COPY path is …× faster")
        for key, label in names.items():
            if key in full:
                ratio = f"{full[key] / copy:6.2f}×" if copy else ""
                print(f"{label:<40} {full[key]:7.1f} {self.rows / full[key]:>9,.0f}  {ratio}")
        for path in ("api", "copy"):
            if path in inc:
                share = inc[path] / full[path] * 100
                print(f"{path}: incremental +1 % / full load {share:5.1f} %  (target ≤ 5 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows for the naive baseline (default: --rows)")
    parser.add_argument("--batch", type=int, default=20_000, help="tuned API batch size")
    parser.add_argument("--workers", type=int, default=None,
                        help="tuned API parallel requests (default: the portal's limit)")
    parser.add_argument("--only", nargs="+", choices=PATHS, default=list(PATHS),
                        help="the paths to run (default: all)")
    parser.add_argument("--install-xloader", action="store_true",
                        help=f"install {XLOADER} into the local portal's virtualenv first")
    args = parser.parse_args()
    if args.install_xloader:
        install_xloader()
    bench = Bench(args.rows, args.baseline_rows or args.rows, args.batch, args.workers)
    table = sensor_rows(args.rows)
    more = sensor_rows(max(1, args.rows // 100), start=args.rows)
    print(f"{args.rows:,} synthetic sensor rows ({len(COLUMNS)} columns), baseline on "
          f"{bench.baseline_rows:,}; CKAN {bench.portal.check()} at {bench.city.portal_url}, "
          f"{os.cpu_count()} CPUs")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    bench.setup()
    try:
        bench.write_csv(table)
        steps = {"raw": lambda: bench.raw_copy(table), "copy": lambda: bench.copy(table, more),
                 "xloader": lambda: bench.xloader(len(table)),
                 "api": lambda: bench.api(table, more),
                 "baseline": lambda: bench.baseline(table.iloc[: bench.baseline_rows])}
        for path in PATHS:
            if path in args.only:
                steps[path]()
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        bench.report()
    finally:
        bench.cleanup()


def install_xloader() -> None:
    """ckanext-xloader into the local portal's virtualenv, for this benchmark only: not added
    to the portal's plugins, and the packages CKAN runs on kept at their versions (XLoader
    2.6 asks for newer certifi/idna/urllib3 than CKAN's, which its loader does not need)."""
    home = Path(os.environ.get("ODP_PORTAL_HOME", ROOT / ".local" / "portal"))
    python = str(home / "venv" / "bin" / "python")
    frozen = subprocess.run(["uv", "pip", "freeze", "--python", python], capture_output=True,
                            text=True, check=True).stdout
    pins = home / "xloader-bench-constraints.txt"
    pins.write_text("\n".join(line for line in frozen.splitlines()
                              if "==" in line and "@" not in line) + "\n")
    try:
        subprocess.run(["uv", "pip", "install", "--python", python, "-c", str(pins),
                        "tabulator==1.53.5", "Unidecode==1.4.0", "chardet==7.6.0"], check=True)
        subprocess.run(["uv", "pip", "install", "--python", python, "--no-deps", XLOADER],
                       check=True)
    finally:
        pins.unlink()


if __name__ == "__main__":
    main()
