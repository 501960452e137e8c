"""Benchmark: the demo's datasets (every dataset of odp.toml's city, as `./scripts/demo` runs
them) one after the other and several at once, end to end into the local CKAN.

    nice -n 10 uv run python bench/parallel.py [--workers 2] [--repeat 1]

Each measurement is `odp run --all --workers N` as a subprocess (wall time, start-up and imports
included) on a fresh copy of the datasets (tests.helpers.make_project: unique names, this run's
own organisations and KPI cockpit) with a fresh state, sources replayed from tests/recordings
(scenario 2024-11-21, as `--replay always`): first the first run (everything new), then the same
command again (nothing new) — with 1 worker, with N and as `odp run --all` decides by itself
(odp.toml's [run]). Prints a table with the ratios to 1 worker; the copies and
their organisations are purged from the portal at the end. Needs the local CKAN (odp portal start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import helpers  # noqa: E402 — the project copies of the tests

SCENARIO = "2024-11-21"  # the demo's (odp.cli.DEMO_SCENARIO)


def demo_datasets() -> list[str]:
    from odp.spec import dataset_names

    return dataset_names(ROOT)


def run_all(env: dict[str, str], workers: int) -> tuple[float, int, list[dict]]:
    """`odp run --all --workers N --json` (N = 0: without --workers, odp.toml's [run]
    settings decide): wall seconds, exit code, the reports."""
    began = time.monotonic()
    flag = ["--workers", str(workers)] if workers else []
    done = subprocess.run([sys.executable, "-m", "odp.cli", "run", "--all", *flag, "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - began
    import json

    reports = json.loads(done.stdout) if done.stdout.strip() else []
    if done.returncode:
        failed = [f"{r['dataset']}: {r['error']}" for r in reports if r["exit_code"]]
        print(f"  workers {workers}: exit {done.returncode}: {failed or done.stderr[-500:]}",
              file=sys.stderr)
    return seconds, done.returncode, reports


def measure(portal: object, replay_url: str, workers: int, tmp: Path) -> dict[str, float]:
    """First run and nothing-new run of a fresh copy of the demo's datasets."""
    root, names = helpers.make_project(tmp / f"w{workers}-{time.monotonic_ns()}",
                                       demo_datasets())
    city = root / "cities" / "dresden.toml"  # the copy's KPI cockpit under the copy's tag
    tag = next(iter(names.values())).split("-", 1)[0]
    city.write_text(city.read_text().replace('dataset = "odp-kpi-cockpit"',
                                             f'dataset = "{tag}-kpi-cockpit"'))
    env = helpers.cli_env(root, root.parent / "state", replay_url, portal, fast_retries=False)
    load = os.getloadavg()[0]
    first, code, reports = run_all(env, workers)
    again, code2, second = run_all(env, workers)
    return {"first": first, "again": again, "load": (load + os.getloadavg()[0]) / 2,
            "busy": sum(r["seconds"] for r in reports),
            "busy_again": sum(r["seconds"] for r in second), "datasets": len(reports),
            "ok": sum(r["status"] in ("ok", "unchanged") for r in reports + second),
            "exit": max(code, code2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="the parallel run's workers")
    # Each round measures 1 worker, --workers N and the default (no --workers flag).
    parser.add_argument("--repeat", type=int, default=1, help="measurements of each (median)")
    args = parser.parse_args()

    from odp_dev.portal import stack
    from odp_dev.replay import ReplayServer

    portal = stack.start()
    import ckanapi

    ckan = ckanapi.RemoteCKAN(portal.url, apikey=portal.token())
    # 0: as `odp run --all` decides by itself (odp.toml [run]: workers, seconds_per_worker)
    results: dict[int, list[dict[str, float]]] = {1: [], args.workers: [], 0: []}
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                ReplayServer(helpers.RECORDINGS, scenario=SCENARIO) as replay:
            for round_ in range(args.repeat):  # alternating which goes first: shared load
                for workers in sorted(results, reverse=bool(round_ % 2), key=lambda w: w or 99):
                    results[workers].append(measure(portal, replay.url, workers, Path(tmp)))
                    print(f"  workers {workers}: {results[workers][-1]}", file=sys.stderr)
    finally:
        for org in helpers.session_organisations(ckan):
            helpers.purge_organisation(ckan, org)
    table(results, args.workers)
    return 0


def table(results: dict[int, list[dict[str, float]]], workers: int) -> None:
    def median(n: int, key: str) -> float:
        return statistics.median(r[key] for r in results[n])

    count = int(results[1][0]["datasets"])
    print(f"\n{count} datasets (odp run --all), wall seconds, median of {len(results[1])}\n")
    print(f"| run | 1 worker | {workers} workers | ratio | default (odp.toml) | ratio |")
    print("|---|---|---|---|---|---|")
    for key, label in (("first", "first run (everything new)"), ("again", "again (nothing new)")):
        one, many, auto = median(1, key), median(workers, key), median(0, key)
        print(f"| {label} | {one:.1f} s | {many:.1f} s | {one / many:.2f}× | {auto:.1f} s | "
              f"{one / auto:.2f}× |")
    rows = [("load", "load average (1 min) around the measurement", "{:.1f}"),
            ("busy", "sum of the datasets' own seconds, first run", "{:.1f} s"),
            ("busy_again", "sum of the datasets' own seconds, again", "{:.1f} s"),
            ("ok", f"runs ok or unchanged (of {2 * count})", "{:.0f}")]
    for key, label, fmt in rows:
        print(f"| {label} | {fmt.format(median(1, key))} | {fmt.format(median(workers, key))} "
              f"| | {fmt.format(median(0, key))} | |")


if __name__ == "__main__":
    sys.exit(main())
