"""Benchmark: heavy-rain indicators over 10 years of 10-minute values at 3 stations (≈1.6M rows);
with `--only flood` / `--only air` the flood indicators over 10 years of 15-minute water levels
at 2 gauges (≈700k rows) / the air-quality days over 10 years of hourly values at 2 stations.

    uv run python bench/indicators.py [--years 10] [--stations 3] [--validate] [--only …]

The input is generated deterministically (seeded: showers, a few heavy bursts, 0.5 % missing
values) and written as a published ledger; the derived datasets heavy-rain-dresden-windows and
-events run through the real `derived` source (dlt → DuckDB staging) in a throw-away project:
  1. from scratch: the windows (pure computation), then the source with dlt;
  2. one new 10-minute value arrives: the incremental source run (ledger check, day hashes, the
     recomputed windows, comparison with staging, dlt merge) — goal < 1 s —, and the change
     detection publishing then does over the whole table (odp.publish.changes.diff);
  3. `--validate`: what the engine's validation of the whole staged table costs per run
     (the datasets are full-refresh, see README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
INPUT = "bench-rain-10min"
DATASETS = ("heavy-rain-dresden-windows", "heavy-rain-dresden-events")


def rain(years: int, stations: int) -> pd.DataFrame:
    """Deterministic 10-minute precipitation (mm) as a published ledger (typed, row hashes)."""
    from odp.publish.changes import HASH, row_hashes

    rng = np.random.default_rng(14)
    stamps = pd.date_range("2015-01-01T00:10Z", periods=years * 52_560, freq="10min", unit="ns")
    parts = []
    for k in range(stations):
        n = len(stamps)
        wet = rng.random(n) < 0.07
        values = np.where(wet, rng.gamma(0.6, 0.35, n), 0.0).round(2)
        for start in rng.integers(0, n - 12, 4):  # a few heavy bursts (events)
            values[start:start + 8] = [1.5, 3.5, 6.0, 9.0, 7.0, 4.0, 2.0, 1.0]
        values = pd.array(values, dtype="Float64")
        values[rng.random(n) < 0.005] = pd.NA  # -999: missing
        parts.append(pd.DataFrame({
            "station_id": pd.Series(f"{1048 + k:05d}", index=range(n), dtype="string"),
            "station_name": pd.Series(f"Station {k}", index=range(n), dtype="string"),
            "timestamp": stamps, "precipitation": values,
            "latitude": pd.Series(51.05 + 0.01 * k, index=range(n), dtype="Float64"),
            "longitude": pd.Series(13.74 + 0.01 * k, index=range(n), dtype="Float64"),
            "station_height": pd.Series(120.0, index=range(n), dtype="Float64"),
        }))
    table = pd.concat(parts, ignore_index=True)
    table[HASH] = row_hashes(table, [c for c in table.columns])
    return table


HEAVY_RAIN_INPUTS = {'precipitation-dresden-10min = "10min"': f'{INPUT} = "10min"',
                     'precipitation-dresden-hourly = "1h"\n': ""}


def project(tmp: Path, names: tuple[str, ...] = DATASETS,
            inputs: dict[str, str] | None = None) -> Path:
    """A throw-away project: the city and the named derived datasets reading INPUT."""
    root = tmp / "project"
    for folder in ("pipelines", "schemas", "expectations"):
        (root / folder).mkdir(parents=True)
    shutil.copytree(ROOT / "cities", root / "cities")
    (root / "reference").symlink_to(ROOT / "reference")
    shutil.copy(ROOT / "odp.toml", root / "odp.toml")
    for name in names:
        text = (ROOT / "pipelines" / f"{name}.toml").read_text()
        for old, new in (inputs or HEAVY_RAIN_INPUTS).items():
            text = text.replace(old, new)
        (root / "pipelines" / f"{name}.toml").write_text(text)
        for folder in ("schemas", "expectations"):
            shutil.copy(ROOT / folder / f"{name}.json", root / folder / f"{name}.json")
    return root


def timed(label: str, call, *args):
    began = time.perf_counter()
    result = call(*args)
    print(f"  {label:<58} {time.perf_counter() - began:7.2f} s")
    return result


def phases(label: str, dataset, state: Path) -> pd.DataFrame:
    """One incremental extract, timed by phase: the derived source (dlt's extract step runs
    it), dlt normalize + load (merge into DuckDB), and reading staging back (the engine reads
    the whole staged table of a full-refresh dataset)."""
    from odp.extract import _pipeline, read_staging
    from odp.sources import make_resource

    pipeline = _pipeline(dataset, state)
    began = time.perf_counter()
    pipeline.extract(make_resource(dataset))
    source = time.perf_counter()
    pipeline.normalize()
    info = pipeline.last_trace.last_normalize_info
    pipeline.load()
    loaded = time.perf_counter()
    table = read_staging(dataset, state)
    read = time.perf_counter()
    rows = info.row_counts.get(dataset.table_name, 0) if info else 0
    print(f"  {label}: source {source - began:.2f} s (goal < 1 s) + dlt normalize/load "
          f"{loaded - source:.2f} s = {loaded - began:.2f} s; {rows} row(s) sent; "
          f"reading staging back {read - loaded:.2f} s ({len(table):,} rows)")
    return table


def water(years: int, gauges: int) -> pd.DataFrame:
    """Deterministic 15-minute water levels (cm) of elbe-gauges-saxony's configured gauges as a
    published ledger: a slow seasonal curve, one flood wave a year crossing Alarmstufe 1–3."""
    from odp.publish.changes import HASH, row_hashes

    stamps = pd.date_range("2015-01-01T00:00Z", periods=years * 35_064, freq="15min", unit="ns")
    n = len(stamps)
    phase = np.arange(n) / 35_064 * 2 * np.pi
    wave = np.exp(-(((np.arange(n) % 35_064) - 8_000) / 300.0) ** 2) * 480  # a flood each spring
    parts = []
    for k, number in enumerate(("501060", "501010")[:gauges]):
        level = np.round(200 + 60 * np.sin(phase + k) + wave)
        parts.append(pd.DataFrame({
            "station_number": pd.Series(number, index=range(n), dtype="string"),
            "station_name": pd.Series(f"GAUGE {k}", index=range(n), dtype="string"),
            "water": pd.Series("ELBE", index=range(n), dtype="string"),
            "km": pd.Series(55.63, index=range(n), dtype="Float64"),
            "timestamp": stamps, "water_level": pd.array(level, dtype="Float64"),
            "latitude": pd.Series(51.054, index=range(n), dtype="Float64"),
            "longitude": pd.Series(13.739, index=range(n), dtype="Float64"),
        }))
    table = pd.concat(parts, ignore_index=True)
    table[HASH] = row_hashes(table, list(table.columns))
    return table


def air(years: int, stations: int) -> pd.DataFrame:
    """Deterministic hourly NO2, PM10, O3 and daily PM2.5 as air-quality-dresden publishes them."""
    from odp.publish.changes import HASH, row_hashes

    rng = np.random.default_rng(14)
    hours = pd.date_range("2015-01-01T00:00Z", periods=years * 8_766, freq="h", unit="ns")
    parts = []
    for name in ("Dresden-Nord", "Dresden-Bergstraße")[:stations]:
        n = len(hours)
        values = {c: pd.array(rng.gamma(2.0, scale, n).round(), dtype="Float64")
                  for c, scale in (("no2", 15.0), ("pm10_teom", 10.0), ("o3", 20.0))}
        for column in values.values():
            column[rng.random(n) < 0.03] = pd.NA  # 3 % missing hours
        parts.append(pd.DataFrame({"station": name, "timestamp": hours, "resolution": "PT1H",
                                   **values, "pm2_5": pd.array([pd.NA] * n, dtype="Float64")}))
    table = pd.concat(parts, ignore_index=True).astype({"station": "string",
                                                        "resolution": "string"})
    table[HASH] = row_hashes(table, list(table.columns))
    return table.sort_values(["station", "timestamp", "resolution"], ignore_index=True)


def other(kind: str, years: int) -> None:
    """Flood or air-quality datasets: from scratch, then one new value (derived source + dlt)."""
    from odp.extract import extract
    from odp.publish.changes import HASH, row_hashes, write_ledger
    from odp.spec import load_dataset

    names, source, make, key = {
        "flood": (("flood-alarm-levels-saxony", "flood-alarm-crossings-saxony"),
                  "elbe-gauges-saxony", lambda: water(years, 2), "station_number"),
        "air": (("air-quality-dresden-days",), "air-quality-dresden", lambda: air(years, 2),
                "station"),
    }[kind]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root, state = project(tmp, names, {f'{source} = "': f'{INPUT} = "'}), tmp / "state"
        os.environ["ODP_PROJECT"], os.environ["ODP_STATE_DIR"] = str(root), str(state)
        ledger = make()
        print(f"input: {len(ledger):,} rows ({years} years, {kind})")
        write_ledger(state, INPUT, ledger)
        datasets = [load_dataset(name, root) for name in names]
        print("from scratch")
        for dataset in datasets:
            done = timed(f"{dataset.name}: derived source + dlt into staging", extract,
                         dataset, state)
            print(f"    {done.new_rows:,} rows staged")
        print("one new value arrives")
        last = ledger.iloc[[-1]].copy()
        last["timestamp"] = last["timestamp"] + (pd.Timedelta("15min") if kind == "flood"
                                                 else pd.Timedelta("1h"))
        grown = pd.concat([ledger, last], ignore_index=True)
        grown[HASH] = row_hashes(grown, [c for c in grown.columns if c != HASH])
        write_ledger(state, INPUT, grown.sort_values([key, "timestamp"], ignore_index=True))
        for dataset in datasets:
            phases(dataset.name, dataset, state)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--validate", action="store_true", help="time validating the table")
    parser.add_argument("--only", choices=["heavy-rain", "flood", "air"], default="heavy-rain")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    if args.only != "heavy-rain":
        other(args.only, args.years)
        return
    from odp.extract import extract
    from odp.indicators.heavy_rain import compute_windows, parse_config
    from odp.publish.changes import diff, write_ledger
    from odp.sources.derived import indicator_config
    from odp.spec import load_dataset

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root, state = project(tmp), tmp / "state"
        os.environ["ODP_PROJECT"], os.environ["ODP_STATE_DIR"] = str(root), str(state)
        ledger = rain(args.years, args.stations)
        print(f"input: {len(ledger):,} rows ({args.years} years × {args.stations} stations, "
              "10 minutes)")
        write_ledger(state, INPUT, ledger)
        windows, events = (load_dataset(name, root) for name in DATASETS)
        cfg = parse_config(indicator_config(windows, "heavy_rain"), "city")

        print("from scratch")
        series = ledger[["station_id", "timestamp"]].assign(value=ledger["precipitation"])
        ns = series["timestamp"].astype("int64")
        end = int(ns.max())
        everything = {s: [(int(ns.min()), end + 1)] for s in series.station_id.unique()}
        computed = timed("windows computed (1/6/24/72 h, completeness, level)",
                         compute_windows, series, 600 * 10**9, everything, end, cfg)
        done = timed("windows dataset: derived source + dlt into staging", extract, windows,
                     state)
        print(f"    {len(computed.rows):,} windows, {done.new_rows:,} rows staged")
        found = timed("events dataset: derived source + dlt into staging", extract, events,
                      state)
        print(f"    {found.new_rows:,} events")

        print("one new 10-minute value arrives")
        last = ledger[ledger.station_id == ledger.station_id.iloc[0]].iloc[[-1]].copy()
        last["timestamp"] = last["timestamp"] + pd.Timedelta("10min")
        last["precipitation"] = pd.array([0.4], dtype="Float64")
        grown = pd.concat([ledger, last], ignore_index=True)
        from odp.publish.changes import HASH, row_hashes

        grown[HASH] = row_hashes(grown, [c for c in grown.columns if c != HASH])
        write_ledger(state, INPUT, grown.sort_values(["station_id", "timestamp"],
                                                     ignore_index=True))
        before = done.table
        table = phases("windows", windows, state)
        phases("events", events, state)
        print("nothing new (the ledger is unchanged)")
        phases("windows", windows, state)

        columns = [f.name for f in windows.schema.source_fields]
        published = before[columns].assign(**{HASH: row_hashes(before, columns)})
        changes = timed("publish: change detection over the whole table (diff)", diff,
                        table[columns], published, list(windows.schema.primary_key),
                        columns, True)
        print(f"    new {len(changes.new)}, changed {len(changes.changed)}, "
              f"unchanged {changes.unchanged:,}")
        if args.validate:
            from odp.validate import validate_batch

            result = timed("validate the whole staged table (full-refresh run)",
                           validate_batch, table, windows, "bench")
            print(f"    {len(result.valid):,} valid")


if __name__ == "__main__":
    main()
