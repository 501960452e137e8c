"""End to end: `odp run NAME` (a process, as cron starts it) on one dataset of N sensor rows
served as CSV through the tabular source (a local file), into the local CKAN.

For each row count: the first run, a run with nothing new (the same file) and a run with 1 %
new rows. Prints per run the wall time of the process, the run's own time and its stages
(extract / validate / georeference / publish, from the run report), the process's peak
resident memory and CKAN write calls, with ratios against the first run, then the growth from
one row count to the next. Beside each first run, on the same CSV file in the same run: CKAN's
own loader ckanext-xloader (where installed in the local portal's virtualenv:
`bench/datastore_load.py --install-xloader`) and a raw `COPY` of the file into a plain table of
text columns (the physical limit). Deletes the datasets and tables it created.

    nice -n 10 uv run python bench/end_to_end.py                    # 100k and 1M rows
    nice -n 10 uv run python bench/end_to_end.py --rows 1000000 3000000 10000000   # growth
Needs the local portal (`odp portal start`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "air-sensors-dresden"  # schema and suite of the citizen sensors (sensor.community)
SENSORS = 200  # readings of 200 sensors every 5 minutes
STEP = "5min"
STAGES = ("extract", "validate", "georeference", "publish")

PIPELINE = """title = "Benchmark: Bürgersensoren (synthetisch)"
description = "Synthetische Messwerte für bench/end_to_end.py."
kind = "sensor"

[source]
type = "tabular"
path = "{path}"
delimiter = ","

[extract]
mode = "full-refresh"

[validate]
max_quarantine_share = 0.05

[georeference]
lon = "longitude"
lat = "latitude"
crs = "EPSG:4326"
outside = "keep"

[publish]
tags = ["Benchmark"]
"""


def readings(start: int, count: int, seed: int = 11) -> pd.DataFrame:
    """Readings number start … start + count − 1 (sensor-major within each time step)."""
    rng = np.random.default_rng(seed + start)
    number = np.arange(start, start + count)
    sensor = number % SENSORS
    step = number // SENSORS
    times = pd.Timestamp("2024-01-01T00:00:00Z") + pd.to_timedelta(step * 5, unit="min")
    lon = 13.60 + (sensor % 20) * 0.015  # a grid of points over Dresden
    lat = 50.98 + (sensor // 20) * 0.012
    return pd.DataFrame({
        "sensor_id": 1000 + sensor,
        "sensor_type": np.where(sensor % 2 == 0, "SDS011", "BME280"),
        "location_id": 500 + sensor,
        "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pm10": np.round(rng.gamma(2.0, 8.0, count), 1),
        "pm2_5": np.round(rng.gamma(2.0, 4.0, count), 1),
        "temperature": np.round(rng.normal(10, 8, count), 1),
        "humidity": np.round(rng.uniform(20, 99, count), 1),
        "pressure": np.round(rng.normal(100500, 900, count), 0),
        "latitude": np.round(lat, 5),
        "longitude": np.round(lon, 5),
    })


def write_csv(frame: pd.DataFrame, path: Path, append: bool = False) -> None:
    frame.to_csv(path, index=False, mode="a" if append else "w", header=not append,
                 lineterminator="\n")


def make_project(tmp: Path, rows: int) -> tuple[Path, str, Path]:
    name = f"bench-e2e-{uuid.uuid4().hex[:6]}-{rows // 1000}k"
    root = tmp / "project"
    for folder in ("pipelines", "schemas", "expectations"):
        (root / folder).mkdir(parents=True)
    shutil.copytree(ROOT / "cities", root / "cities")
    (root / "reference").symlink_to(ROOT / "reference")
    shutil.copy(ROOT / "odp.toml", root / "odp.toml")
    csv = tmp / "readings.csv"
    (root / "pipelines" / f"{name}.toml").write_text(PIPELINE.format(path=csv),
                                                     encoding="utf-8")
    shutil.copy(ROOT / "schemas" / f"{TEMPLATE}.json", root / "schemas" / f"{name}.json")
    suite = json.loads((ROOT / "expectations" / f"{TEMPLATE}.json").read_text("utf-8"))
    suite["name"] = suite["meta"]["dataset"] = name
    (root / "expectations" / f"{name}.json").write_text(json.dumps(suite, indent=1), "utf-8")
    return root, name, csv


@dataclass
class Outcome:
    label: str
    wall: float  # the process, start to exit
    report: dict
    peak_mb: float
    cpu: float = 0.0  # user + system seconds of the process (less sensitive to a busy machine)

    def stage(self, name: str) -> float:
        return float(self.report.get("stages", {}).get(name, 0.0))


def run(env: dict[str, str], name: str, label: str) -> Outcome:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "odp.cli", "run", name, "--json"], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - began
    reports = json.loads(done.stdout or "[]")
    if not reports:
        raise SystemExit(f"{label}: no report\n{done.stderr[-2000:]}")
    report = reports[0]
    if report["status"] in ("failed", "held-back"):
        raise SystemExit(f"{label}: {report['status']}: {report['error']}")
    peak, cpu = _children_usage()
    return Outcome(label, wall, report, peak, cpu)


def _children_usage() -> tuple[float, float]:
    """Peak resident memory (MB) and CPU seconds of the children reaped so far (RUSAGE_CHILDREN:
    each run is measured inside a fresh helper process, see `measured`)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def measured(env: dict[str, str], name: str, label: str) -> Outcome:
    """One run inside a fresh helper process, so that its peak memory is its own (the
    environment, token included, is inherited: never on a command line)."""
    code = ("import json, os, sys; sys.path.insert(0, {!r}); from end_to_end import run;"
            "o = run(dict(os.environ), sys.argv[1], sys.argv[2]);"
            "print(json.dumps(o.__dict__))").format(str(ROOT / "bench"))
    done = subprocess.run([sys.executable, "-c", code, name, label], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return Outcome(**json.loads(done.stdout.strip().splitlines()[-1]))


def peers(csv: Path, rows: int) -> list[Outcome]:
    """XLoader's load (datastore_load.Bench.xloader: load_csv, record count, indexes) and a
    raw COPY of `csv` — the file the first run read — as Outcomes labelled `ROWS xloader` and
    `ROWS raw COPY` (their seconds in `wall`, nothing else measured)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import datastore_load

    load = datastore_load.Bench(rows, rows, 20_000, None)
    load.csv = csv
    out = []
    load.setup()
    try:
        load.xloader(rows)
        out += [Outcome(f"{rows:,} xloader", s, {}, 0.0) for label, _, s in load.results
                if label == "xloader"]
        out.append(Outcome(f"{rows:,} raw COPY", raw_copy(load.write_url, csv), {}, 0.0))
    finally:
        load.cleanup()
    return out


def raw_copy(write_url: str, csv: Path) -> float:
    """Seconds to COPY the CSV file's bytes into a new plain table of text columns (no key,
    no trigger, no index); the table is dropped afterwards."""
    import psycopg

    header = csv.open(encoding="utf-8").readline().strip().split(",")
    table = f"odp_bench_raw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(write_url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} ({', '.join(f'{c} text' for c in header)})")
        conn.commit()
        try:
            began = time.perf_counter()
            with cur.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                    csv.open("rb") as file:
                while block := file.read(1 << 20):
                    copy.write(block)
            conn.commit()
            return time.perf_counter() - began
        finally:
            cur.execute(f"DROP TABLE {table}")
            conn.commit()


def bench_rows(rows: int, portal, with_peers: bool = True) -> list[Outcome]:  # noqa: ANN001
    tmp = Path(tempfile.mkdtemp(prefix="odp-e2e-"))
    root, name, csv = make_project(tmp, rows)
    env = {**os.environ, "ODP_PROJECT": str(root), "ODP_STATE_DIR": str(tmp / "state"),
           "ODP_CKAN_URL": portal.url, "CKAN_API_TOKEN": portal.token(),
           "ODP_PORTAL_HOME": str(portal.home)}
    try:
        write_csv(readings(0, rows), csv)
        out = [measured(env, name, f"{rows:,} first")]
        if with_peers:
            out += peers(csv, rows)
        out.append(measured(env, name, f"{rows:,} no-op"))
        write_csv(readings(rows, rows // 100), csv, append=True)
        out.append(measured(env, name, f"{rows:,} +1 %"))
        return out
    finally:
        _purge(portal, name)
        shutil.rmtree(tmp, ignore_errors=True)


def _purge(portal, name: str) -> None:  # noqa: ANN001
    import ckanapi

    ckan = ckanapi.RemoteCKAN(portal.url, apikey=portal.token())
    with contextlib.suppress(ckanapi.NotFound):
        ckan.action.dataset_purge(id=name)


def table(outcomes: list[Outcome]) -> None:
    print(f"{'run':<16} {'process':>8} {'cpu':>7} {'run':>7} {'ratio':>6}  "
          f"{'extract / validate / georef / publish':<38} {'peak':>8} {'writes':>6}  status")
    first = None
    for o in outcomes:
        if o.label.endswith(("xloader", "raw COPY")):  # a peer on the first run's CSV file
            if first:
                print(f"{o.label:<16} {o.wall:7.2f}s   the same CSV file: odp's first run took "
                      f"{first.wall / o.wall:.2f}× this (process), its publish stage "
                      f"{first.stage('publish') / o.wall:.2f}× (2× faster = 0.50×)")
            continue
        if o.label.endswith("first"):
            first = o
        ratio = f"{o.wall / first.wall:.1%}" if first and o is not first else ""
        stages = " / ".join(f"{o.stage(s):.2f}" for s in STAGES)
        print(f"{o.label:<16} {o.wall:7.2f}s {o.cpu:6.2f}s {o.report['seconds']:6.2f}s {ratio:>6}  "
              f"{stages:<38} {o.peak_mb / 1024:6.2f}GB {o.report['write_calls']:>6}  "
              f"{o.report['status']}")
        why = [m for m in o.report.get("messages", []) if "unchanged" in m or "only" in m]
        for line in why[:2]:
            print(f"{'':<16} {line}")


def growth(outcomes: list[Outcome]) -> None:
    """Per kind of run, how time and memory grow with the row count: a growth factor of 1.0
    per step is linear (10× the rows in 10× the time)."""
    kinds = ("first", "no-op", "+1 %", "xloader", "raw COPY")
    by_kind = {k: [o for o in outcomes if o.label.endswith(k)] for k in kinds}
    if len(by_kind["first"]) < 2:
        return
    print("\ngrowth against the previous row count (time ratio ÷ row ratio; 1.00 = linear)")
    print(f"{'run':<16} {'rows ×':>7} {'process':>8} {'cpu':>7} {'run':>7} {'peak':>7}")
    for kind in kinds:
        runs = by_kind[kind]
        for before, after in zip(runs, runs[1:], strict=False):
            rows = _rows(after) / _rows(before)

            def factor(a: float, b: float, n: float = rows) -> str:
                return f"{a / b / n:.2f}" if b else "–"

            print(f"{after.label:<16} {rows:6.1f}× {factor(after.wall, before.wall):>8} "
                  f"{factor(after.cpu, before.cpu):>7} "
                  f"{factor(after.report.get('seconds', 0), before.report.get('seconds', 0)):>7} "
                  f"{factor(after.peak_mb, before.peak_mb):>7}")


def _rows(outcome: Outcome) -> int:
    return int(outcome.label.split()[0].replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-peers", action="store_true",
                        help="without XLoader and the raw COPY beside each first run")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(process = wall time of `odp run`, cpu = its CPU seconds, run = the run's own time)")
    from odp_dev.portal import stack

    portal = stack.start()
    outcomes: list[Outcome] = []
    for rows in args.rows:
        done = bench_rows(rows, portal, with_peers=not args.no_peers)
        for o in done:
            print(f"{o.label}: {o.wall:.2f} s", flush=True)
        outcomes += done
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    table(outcomes)
    growth(outcomes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
