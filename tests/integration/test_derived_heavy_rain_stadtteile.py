"""Heavy-rain indicators per Stadtteil end to end: `odp run` of the DWD 10-minute precipitation
(replayed, with the CONSTRUCTED heavy-rain day of Dresden-Klotzsche, see
tests/integration/test_derived_heavy_rain.py), of heavy-rain-dresden-windows and of
heavy-rain-dresden-stadtteile and heavy-rain-dresden-current (derived datasets of a derived one)
into the real local CKAN; a second run changes nothing; DCAT-AP.de against GovData's SHACL
profiles."""

from __future__ import annotations

import pytest
import requests

from odp_dev.replay import ReplayServer
from tests.helpers import cli_env, make_project, odp_cli, table_resource
from tests.integration.derived_runs import (
    assert_no_dcat_violations,
    assert_unchanged_with_no_ckan_writes,
    read_renamed_inputs,
)
from tests.integration.test_derived_heavy_rain import recordings_with_heavy_rain

pytestmark = pytest.mark.integration

TEN, WINDOWS = "precipitation-dresden-10min", "heavy-rain-dresden-windows"
STADTTEILE = "heavy-rain-dresden-stadtteile"
CURRENT = "heavy-rain-dresden-current"


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("heavy-rain-stadtteile")
    root, names = make_project(tmp, [TEN, WINDOWS, STADTTEILE, CURRENT])
    windows = root / "pipelines" / f"{names[WINDOWS]}.toml"
    windows.write_text(windows.read_text()  # the 10-minute input only
                       .replace('precipitation-dresden-hourly = "1h"\n', "")
                       .replace(f"\n{TEN} =", f"\n{names[TEN]} ="))
    read_renamed_inputs(root, names, [STADTTEILE, CURRENT], [WINDOWS])
    with ReplayServer(recordings_with_heavy_rain(tmp), scenario="heavy-rain") as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        first = odp_cli(env, "run", names[CURRENT], names[STADTTEILE], names[WINDOWS],
                        names[TEN], "--json")
        again = odp_cli(env, "run", names[TEN], names[WINDOWS], names[STADTTEILE],
                        names[CURRENT], "--json")
    return names, first, again


def _search(ckan, name: str, **filters) -> dict:
    return ckan.action.datastore_search(resource_id=table_resource(ckan, name)["id"],
                                        filters=filters, limit=1000)


def test_the_stadtteile_of_klotzsche_are_published_with_its_unwetter(runs, ckan):
    names, first, _ = runs
    assert first.returncode == 0, first.stdout + first.stderr
    # every 10-minute step of the recorded window (186) for each of the 64 Stadtteile
    assert _search(ckan, names[STADTTEILE])["total"] == 186 * 64
    found = _search(ckan, names[STADTTEILE], timestamp="2024-11-20T14:50:00", level=3)
    # 1 h ending 14:50 at 01048 = 1.5 + 3.5 + 6.0 + 9.0 + 7.0 = 27.0 > 25: Unwetter, in the 14
    # Stadtteile of its Thiessen polygon (Klotzsche, Hellerau/Wilschdorf, … Pieschen-Süd)
    rows = found["records"]
    assert len(rows) == 14 and {r["stations"] for r in rows} == {"01048"}
    assert {r["sum_1h"] for r in rows} == {27.0}
    assert {"Klotzsche", "Pieschen-Süd", "Weixdorf"} <= {r["stadtteil"] for r in rows}
    (gorbitz,) = _search(ckan, names[STADTTEILE], timestamp="2024-11-20T14:50:00",
                         stadtteil="Gorbitz-Süd")["records"]
    assert (gorbitz["stations"], gorbitz["level_name"], gorbitz["stadtbezirk"]) == (
        "01051", "unbestimmt", "Cotta")  # 01051's 6 h still hold its recorded -999


def test_the_current_situation_is_a_map_of_the_64_stadtteile_with_their_level(runs, ckan):
    names, *_ = runs
    assert _search(ckan, names[CURRENT])["total"] == 64
    package = ckan.action.package_show(id=names[CURRENT])
    (geojson,) = [r for r in package["resources"] if r.get("odp_role") == "geojson"]
    features = requests.get(geojson["url"], timeout=60).json()["features"]
    assert len(features) == 64
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}
    klotzsche = next(f for f in features if f["properties"]["name"] == "Klotzsche")
    # the newest step, 2024-11-21T06:50Z: the burst of the 20th is out of the 6-hour window
    # (level 0, both windows complete) but in the 24-hour sum
    properties = klotzsche["properties"]
    assert (properties["timestamp"][:16], properties["stations"]) == ("2024-11-21T06:50",
                                                                     "01048")
    assert properties["stadtteil"] == "Klotzsche" and properties["stadtbezirk"] == "Klotzsche"
    assert properties["sum_24h"] >= 34.0


def test_a_second_stadtteile_run_is_unchanged_with_no_ckan_writes(runs):
    *_, again = runs
    assert_unchanged_with_no_ckan_writes(again)


def test_dcat_of_both_stadtteile_datasets_has_no_violations(runs, portal):
    names, *_ = runs
    assert_no_dcat_violations(portal, names[STADTTEILE], names[CURRENT])
