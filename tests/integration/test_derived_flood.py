"""Flood indicators end to end: `odp run` of elbe-gauges-saxony (replayed, scenario 2024-11-22),
then of the derived flood datasets, into the real local CKAN; a second run changes nothing.

The W series of DRESDEN (501060) in that scenario is replaced by a CONSTRUCTED flood wave in the
documented PEGELONLINE format (15-minute steps, local time with offset): from 380 cm at
2024-11-21T08:00+01:00 (step i = 0) rising 2.5 cm per step to 520 cm (i = 56), then falling
2.5 cm per step to 420 cm (i = 96). Every other response is the recorded one
(tests/recordings/pegelonline_gauges/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, all_rows, cli_env, make_project, odp_cli
from tests.integration.derived_runs import (
    assert_no_dcat_violations,
    assert_unchanged_with_no_ckan_writes,
    read_renamed_inputs,
)

pytestmark = pytest.mark.integration

GAUGES = "elbe-gauges-saxony"
LEVELS, CROSSINGS = "flood-alarm-levels-saxony", "flood-alarm-crossings-saxony"
START = pd.Timestamp("2024-11-21T08:00+01:00")


def flood_wave() -> list[dict]:
    """The CONSTRUCTED DRESDEN W series (97 points, the recorded window of 2024-11-22)."""
    points = []
    for i in range(97):
        stamp = (START + pd.Timedelta(minutes=15 * i)).isoformat()
        points.append({"timestamp": stamp, "value": 380 + 2.5 * i if i <= 56
                       else 520 - 2.5 * (i - 56)})
    return points


def recordings_with_flood(tmp: Path) -> Path:
    folder = tmp / "recordings"
    shutil.copytree(RECORDINGS / "pegelonline_gauges", folder / "pegelonline_gauges")
    body = folder / "pegelonline_gauges" / "m_501060_W_2024-11-22.json"
    body.write_text(json.dumps(flood_wave(), separators=(",", ":")))
    return folder


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flood")
    root, names = make_project(tmp, [GAUGES, LEVELS, CROSSINGS])
    read_renamed_inputs(root, names, [LEVELS, CROSSINGS], [GAUGES])
    with ReplayServer(recordings_with_flood(tmp), scenario="2024-11-22") as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        first = odp_cli(env, "run", names[LEVELS], names[CROSSINGS], names[GAUGES], "--json")
        again = odp_cli(env, "run", names[GAUGES], names[LEVELS], names[CROSSINGS], "--json")
    return names, first, again


def test_the_crossings_of_the_wave_are_published_at_the_hand_checked_times(runs, ckan):
    names, first, _ = runs
    assert first.returncode == 0, first.stdout + first.stderr
    rows = sorted(all_rows(ckan, names[CROSSINGS]), key=lambda r: r["timestamp"])
    # i = 0 is 08:00+01:00 = 07:00Z. i = 8 (+2 h, 09:00Z): 380 + 20 = 400, up to 1; i = 48
    # (+12 h, 19:00Z): 500, up to 2; down to 1 with the city file's hysteresis (10 cm, 4
    # readings): below 490 from i = 69 (487.5), the 4th reading below is i = 72 (+18 h,
    # 2024-11-22T01:00Z): 520 − 40 = 480 (without it: i = 65, 497.5); at the end 420 cm: no
    # further crossing
    assert [(r["timestamp"][:16], r["from_level"], r["to_level"], r["water_level"])
            for r in rows] == [("2024-11-21T09:00", 0, 1, 400.0),
                               ("2024-11-21T19:00", 1, 2, 500.0),
                               ("2024-11-22T01:00", 2, 1, 480.0)]
    assert {(r["station_id"], r["station_name"]) for r in rows} == {("501060", "DRESDEN")}
    assert all(r["stadtteil"] for r in rows)  # the gauge lies in the city


def test_levels_trends_and_next_level_are_published_per_configured_gauge(runs, ckan):
    names, *_ = runs
    from tests.helpers import table_resource

    resource = table_resource(ckan, names[LEVELS])["id"]
    found = ckan.action.datastore_search(resource_id=resource, limit=1000)
    # DRESDEN and SCHÖNA are configured (97 steps each); PIRNA, MEISSEN, RIESA are not
    assert found["total"] == 2 * 97
    rows = {(r["station_id"], r["timestamp"][:16]): r for r in found["records"]}
    # i = 24 (13:00Z): 380 + 60 = 440; 6 h before 380: (440 − 380) / 6 = 10 cm/h; 500 cm in 6 h
    row = rows[("501060", "2024-11-21T13:00")]
    assert (row["water_level"], row["alarm_level"], row["trend_6h"]) == (440.0, 1, 10.0)
    assert (row["next_level"], row["next_level_at"][:16]) == (2, "2024-11-21T19:00")
    # i = 66 (23:30Z): 495 cm, under the Richtwert of 2 but within its 10-cm margin: the
    # measured level is 1, the held level (which crossings and warnings follow) still 2
    swing = rows[("501060", "2024-11-21T23:30")]
    assert (swing["water_level"], swing["alarm_level"], swing["held_level"],
            swing["held_name"]) == (495.0, 1, 2, "Alarmstufe 2")
    schoena = rows[("501010", "2024-11-22T07:00")]  # recorded: far below 400 cm, outside Dresden
    assert (schoena["alarm_level"], schoena["alarm_name"], schoena["stadtteil"]) == (
        0, "keine Alarmstufe", None)


def test_a_second_flood_run_is_unchanged_with_no_ckan_writes(runs):
    *_, again = runs
    assert_unchanged_with_no_ckan_writes(again)


def test_dcat_of_both_flood_datasets_has_no_violations(runs, portal):
    names, *_ = runs
    assert_no_dcat_violations(portal, names[LEVELS], names[CROSSINGS])
