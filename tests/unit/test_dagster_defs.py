"""The Dagster definitions come from pipelines/*.toml and nothing else: one asset per dataset of
the served city, derived datasets depending on their inputs' assets, the validation gate as a
blocking asset check, `[schedule]` cron as a schedule in its time zone (an interval as a sensor),
`stale_after` (else two intervals) as the freshness policy. And the engine never loads Dagster.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg

from odp.dagster_defs import GATE, build_definitions
from odp.sources.derived import inputs_of
from odp.spec import dataset_names, load_dataset
from tests.helpers import REPO, make_project


def _policy_windows(asset: dg.AssetsDefinition) -> tuple[timedelta, timedelta | None]:
    policy = next(iter(asset.specs)).freshness_policy
    warn = policy.warn_window.to_timedelta() if policy.warn_window else None
    return policy.fail_window.to_timedelta(), warn


def test_every_dataset_of_the_city_is_an_asset_with_its_inputs_gate_and_schedule():
    defs = build_definitions(REPO)
    names = dataset_names(REPO)
    repository = defs.get_repository_def()
    cockpit = "odp-kpi-cockpit"  # the city file's [cockpit] dataset, downstream of all
    assert {key.path[0] for key in repository.assets_defs_by_key} == {*names, cockpit}
    assert set(defs.resolve_assets_def(cockpit).asset_deps[dg.AssetKey(cockpit)]) == {
        dg.AssetKey(name) for name in names}
    for name in names:
        asset = defs.resolve_assets_def(name)
        deps = asset.asset_deps[dg.AssetKey(name)]
        assert {key.path[0] for key in deps} == set(inputs_of(load_dataset(name, REPO)))
        (check,) = asset.check_specs
        assert (check.name, check.blocking) == (GATE, True)
    schedules = {s.name: s for s in repository.schedule_defs}
    windows = schedules["odp_heavy_rain_dresden_windows_schedule"]
    assert windows.cron_schedule == "5-59/10 * * * *"
    assert windows.execution_timezone == "Europe/Berlin"
    assert len(schedules) == len(names)  # every dataset of the city has a cron schedule
    assert _policy_windows(defs.resolve_assets_def("air-quality-dresden")) == (
        timedelta(hours=2), timedelta(hours=1))  # hourly: stale after two intervals


def test_stale_after_is_the_fail_window_and_an_interval_schedule_is_a_sensor(tmp_path: Path):
    root, names = make_project(tmp_path, ["schools-dresden", "air-quality-dresden"])
    schools = root / "pipelines" / f"{names['schools-dresden']}.toml"
    text = schools.read_text()
    start = text.index("[schedule]")
    end = text.index("\n[", start + 1)
    schools.write_text(text[:start] + '[schedule]\ninterval = "6h"\nstale_after = "2d"\n'
                       + text[end:])
    air = root / "pipelines" / f"{names['air-quality-dresden']}.toml"
    air.write_text(air.read_text().replace("[schedule]", '[schedule]\nstale_after = "3h"'))
    defs = build_definitions(root)
    assert _policy_windows(defs.resolve_assets_def(names["air-quality-dresden"])) == (
        timedelta(hours=3), timedelta(hours=1))
    assert _policy_windows(defs.resolve_assets_def(names["schools-dresden"])) == (
        timedelta(days=2), timedelta(hours=6))
    repository = defs.get_repository_def()
    (sensor,) = [s for s in repository.sensor_defs if s.name.startswith("odp_")]  # not automation
    assert sensor.minimum_interval_seconds == 6 * 3600
    assert sensor.job_name == "odp_" + names["schools-dresden"].replace("-", "_")
    assert [s.job_name for s in repository.schedule_defs] == [
        "odp_" + names["air-quality-dresden"].replace("-", "_")]


def test_the_engine_and_the_odp_command_never_import_dagster():
    code = ("import sys, odp.cli, odp.run, odp.runs.parallel; "
            "odp.cli.build_parser(); print('dagster' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
