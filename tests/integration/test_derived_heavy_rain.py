"""Heavy-rain indicators end to end: `odp run` of the DWD precipitation datasets (replayed), then
of the derived datasets, into the real local CKAN; a second run changes nothing.

The 10-minute product of Dresden-Klotzsche (01048) is replaced by the CONSTRUCTED heavy-rain
day of tests/unit/test_indicators_heavy_rain.py (real 10-minute format, recorded series with a
burst of 34 mm on 2024-11-20 14:00–15:20 UTC), served in the scenario "heavy-rain"; every other
response is the recorded one (tests/recordings/dwd/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, all_rows, cli_env, cli_reports, make_project, odp_cli
from tests.integration.derived_runs import (
    add_ten_minute_archive,
    assert_no_dcat_violations,
    assert_unchanged_with_no_ckan_writes,
    read_renamed_inputs,
)
from tests.unit.test_indicators_heavy_rain import heavy_rain_product

pytestmark = pytest.mark.integration

TEN, HOURLY = "precipitation-dresden-10min", "precipitation-dresden-hourly"
WINDOWS, EVENTS = "heavy-rain-dresden-windows", "heavy-rain-dresden-events"


def recordings_with_heavy_rain(tmp: Path) -> Path:
    """The recordings, plus the constructed heavy-rain zip of 01048 in scenario `heavy-rain`."""
    folder = tmp / "recordings"
    shutil.copytree(RECORDINGS / "dwd", folder / "dwd")
    add_ten_minute_archive(folder, "01048", heavy_rain_product(), "heavy-rain",
                           "CONSTRUCTED heavy-rain day of 01048 "
                           "(tests/unit/test_indicators_heavy_rain.py)")
    return folder


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("heavy-rain")
    root, names = make_project(tmp, [TEN, HOURLY, WINDOWS, EVENTS])
    read_renamed_inputs(root, names, [WINDOWS, EVENTS], [TEN, HOURLY])
    with ReplayServer(recordings_with_heavy_rain(tmp), scenario="heavy-rain") as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        early = odp_cli(env, "run", names[EVENTS], "--json")  # before its inputs
        inputs = odp_cli(env, "run", names[TEN], names[HOURLY], "--json")
        derived = odp_cli(env, "run", names[WINDOWS], names[EVENTS], "--json")
        again = odp_cli(env, "run", names[TEN], names[HOURLY], names[WINDOWS], names[EVENTS],
                        "--json")
    return names, early, inputs, derived, again


def test_a_derived_dataset_run_before_its_inputs_fails_with_one_clear_line(runs):
    names, early, *_ = runs
    (report,) = cli_reports(early)
    assert report["status"] == "failed" and report["exit_code"] == 3
    assert report["error"] == (f"{names[EVENTS]}: input {names[TEN]} not yet published "
                               f"(run `odp run {names[TEN]}` first)")


def test_the_heavy_rain_event_is_published_with_the_hand_checked_total_and_level(runs, ckan):
    names, _, inputs, derived, _ = runs
    for done in (inputs, derived):
        assert done.returncode == 0, done.stdout + done.stderr
    (event,) = all_rows(ckan, names[EVENTS])
    # 1.5 + 3.5 + 6.0 + 9.0 + 7.0 + 4.0 + 2.0 + 1.0 = 34.0 mm, 14:00 … 15:20 UTC; the 1-hour
    # sum ending 15:10 is 3.5 + 6 + 9 + 7 + 4 + 2 = 31.5 > 25: Unwetter (DWD level 3)
    assert (event["station_id"], event["resolution"]) == ("01048", "10min")
    assert (event["start_time"][:19], event["end_time"][:19]) == ("2024-11-20T14:00:00",
                                                                  "2024-11-20T15:20:00")
    assert (event["total"], event["level"], event["level_name"]) == (34.0, 3, "Unwetter")
    assert (event["peak_10min"], event["peak_1h"], event["duration_min"]) == (9.0, 31.5, 80)
    assert event["stadtbezirk"] == "Klotzsche"
    assert event["input"].startswith(f"{names[TEN]} (run ")


def test_the_windows_cross_markant_then_unwetter(runs, ckan):
    names, *_ = runs
    rows = {(r["station_id"], r["resolution"], r["timestamp"][:19]): r
            for r in all_rows_of(ckan, names[WINDOWS])}
    markant = rows[("01048", "10min", "2024-11-20T14:40:00")]  # 1.5 + 3.5 + 6 + 9 = 20.0
    unwetter = rows[("01048", "10min", "2024-11-20T14:50:00")]  # 20.0 + 7.0 = 27.0
    assert (markant["sum_1h"], markant["level_name"]) == (20.0, "markant")
    assert (unwetter["sum_1h"], unwetter["level_name"]) == (27.0, "Unwetter")
    # return periods from the real KOSTRA-DWD-2020 depths of Klotzsche's cell 136196 (city
    # file): 20.0 ≥ hN(D60, 1 a) = 16.0 < 20.5 (2 a); 27.0 ≥ hN(D60, 5 a) = 26.9 < 32.2 (10 a)
    assert (markant["return_period"], unwetter["return_period"]) == (1, 5)
    gap = rows[("01051", "10min", "2024-11-20T12:30:00")]  # the recorded -999 of 01051
    assert gap["completeness_1h"] == pytest.approx(5 / 6, abs=1e-4)
    assert gap["level"] is None and gap["level_name"] == "unbestimmt"
    assert len(rows) == 3 * 186 + 3 * 55  # every 10-minute and hourly input time


def test_a_second_run_is_unchanged_with_no_ckan_writes(runs):
    *_, again = runs
    assert_unchanged_with_no_ckan_writes(again)


def test_dcat_of_both_heavy_rain_datasets_has_no_violations(runs, portal):
    names, *_ = runs
    assert_no_dcat_violations(portal, names[WINDOWS], names[EVENTS])


def all_rows_of(ckan, name: str) -> list[dict]:
    """Every row of a table of up to 32,000 rows (all_rows stops at 1,000)."""
    from tests.helpers import table_resource

    resource = table_resource(ckan, name)["id"]
    found = ckan.action.datastore_search(resource_id=resource, limit=32000)
    assert found["total"] == len(found["records"])
    return found["records"]
