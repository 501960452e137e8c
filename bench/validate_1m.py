"""Benchmark of validate_batch on 1M synthetic water-level rows (raw text, PEGELONLINE shape).

    uv run python bench/validate_1m.py [ROWS]

Prints wall time and rows/s of validate_batch as a whole (with the dataset's own `[validate]`
table: drift check, series rules continuing a published history; only max_rows lifted) and split
into coercion, the GX suite and the series rules, and the peak resident memory during
validation (Linux: VmHWM after resetting it via /proc/self/clear_refs; elsewhere the process
peak). The GX import is timed apart: a run pays it
once. Targets: 1M rows in < 5 s and < 1 GB.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from odp.spec import Dataset, TableSchema
from odp.validate import coerce, load_suite, run_suite, settings, validate_batch
from odp.validate.series import check as series_check

ROOT = Path(__file__).resolve().parents[1]
NAME = "elbe-water-level-dresden"
UUID = "70272185-b2b3-4178-96b8-43bea330dcae"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def dataset() -> Dataset:
    path = ROOT / "schemas" / f"{NAME}.json"
    schema = TableSchema.from_dict(json.loads(path.read_text(encoding="utf-8")), path)
    definition = tomllib.loads((ROOT / "pipelines" / f"{NAME}.toml").read_text(encoding="utf-8"))
    checks = definition["validate"] | {"max_rows": None}  # 1M rows in one batch, on purpose
    checks = {k: v for k, v in checks.items() if v is not None}
    return Dataset(
        NAME,
        NAME,
        "",
        "sensor",
        {},
        definition["extract"],
        checks,
        {},
        {},
        {},
        schema,
        ROOT / "expectations" / f"{NAME}.json",
        ROOT / "pipelines" / f"{NAME}.toml",
    )


def raw_rows(n: int, seed: int = 1) -> pd.DataFrame:
    """n measurements every 15 min, offsets +01:00, a smooth level with noise, ~0.1 % faults
    (text, range, missing)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("1996-01-01", periods=n, freq="15min", tz="Europe/Berlin")
    stamps = pd.Series(times.strftime("%Y-%m-%dT%H:%M:%S%z"), dtype="string")
    stamps = stamps.str.slice(0, 22) + ":" + stamps.str.slice(22)  # +0100 → +01:00
    step = np.arange(n)
    smooth = 300 + 200 * np.sin(step / (96 * 58)) + 20 * np.sin(step / 96)  # yearly/daily swing
    levels = pd.Series(np.round(smooth + rng.normal(0, 1, n), 1)).astype("string")
    faults = rng.choice(n, size=n // 1000, replace=False)
    levels.iloc[faults[0::3]] = "abc"
    levels.iloc[faults[1::3]] = "1200.0"
    levels.iloc[faults[2::3]] = pd.NA
    frame = pd.DataFrame(
        {
            "station_uuid": UUID,
            "station_name": "DRESDEN",
            "water": "ELBE",
            "timestamp": stamps,
            "water_level": levels,
            "longitude": "13.738831783620387",
            "latitude": "51.05445972641962",
            "_dlt_id": pd.Series(np.arange(n)).astype("string"),
        }
    )
    return frame.astype("string")


def rss_mb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (paid once per run, timed apart)

    gx_import = time.perf_counter() - t
    spec = dataset()
    batch = raw_rows(n)
    suite = load_suite(spec.suite_path, spec.schema)
    run_suite(batch.iloc[:0].pipe(coerce, spec.schema, NAME).frame, suite, NOW)  # warm GX up
    history = pd.DataFrame({  # the published day before the batch
        "station_uuid": UUID,
        "timestamp": pd.date_range(end="1995-12-31T23:45:00Z", periods=96, freq="15min"),
        "water_level": pd.array(np.full(96, 120.0), dtype="Float64"),
    })

    base = rss_mb("VmRSS")
    reset_peak()
    t, cpu = time.perf_counter(), time.process_time()
    result = validate_batch(batch, spec, "bench", None, now=NOW, history=history)
    total, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = rss_mb("VmHWM")

    t = time.perf_counter()
    coerced = coerce(batch, spec.schema, NAME)
    coercion = time.perf_counter() - t
    clean = coerced.frame.drop(index=coerced.frame.index[coerced.rejected])
    sources = [f.name for f in spec.schema.source_fields]
    t = time.perf_counter()
    run_suite(clean[sources], suite, NOW)
    gx = time.perf_counter() - t
    rules = settings(spec).series
    t = time.perf_counter()
    series_found = series_check(clean, rules, history) if rules else []
    series = time.perf_counter() - t

    print(f"rows                 {n:,}")
    print(f"rejected / warnings  {result.rejected_rows:,} / {result.warnings:,}")
    print(f"validate_batch       {total:.2f} s  ({n / total:,.0f} rows/s; CPU {cpu:.2f} s, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  coercion           {coercion:.2f} s")
    print(f"  GX suite           {gx:.2f} s")
    print(f"  series rules       {series:.2f} s  ({sum(len(f) for f in series_found):,} findings)")
    print(f"GX import (once)     {gx_import:.2f} s")
    print(
        f"memory               {base:,.0f} MB before, peak {peak:,.0f} MB "
        f"(+{peak - base:,.0f} MB during validation)"
    )


if __name__ == "__main__":
    main()
