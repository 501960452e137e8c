"""The dataset car-parks-dresden published end to end by `odp run` into the real local CKAN,
ParkAPI's REAL Dresden.geojson replayed in the demo's scenario
(tests/recordings/parking_dresden/README.md); values checked against the file."""

from __future__ import annotations

import contextlib
import json
import urllib.request

import pytest

from odp.cli import DEMO_SCENARIO
from odp_dev.replay import ReplayServer
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import (
    RECORDINGS,
    all_rows,
    cli_env,
    cli_report,
    make_project,
    odp_cli,
)

pytestmark = pytest.mark.integration

NAME = "car-parks-dresden"
REAL = RECORDINGS / "parking_dresden" / "ParkAPI_Dresden.geojson"


@pytest.fixture(scope="module")
def published(tmp_path_factory, portal, ckan):
    tmp = tmp_path_factory.mktemp("car_parks_dresden")
    root, names = make_project(tmp, [NAME])
    with ReplayServer(RECORDINGS, scenario=DEMO_SCENARIO) as server:
        env = cli_env(root, tmp / "state", server.url, portal)
        first = odp_cli(env, "run", names[NAME], "--json")
        second = odp_cli(env, "run", names[NAME], "--json")
        asked = [r.url for r in server.requests]
    yield {"name": names[NAME], "first": first, "second": second, "asked": asked}
    with contextlib.suppress(Exception):  # a failed run may have created nothing
        ckan.action.dataset_purge(id=names[NAME])


def test_published_once_without_the_city_and_a_rerun_writes_nothing(published):
    first = cli_report(published["first"])
    assert first["status"] == "ok", first["error"]
    assert (first["extracted"], first["quarantined"], first["inserted"]) == (61, 1, 60)
    assert first["in_city"] == 60
    second = cli_report(published["second"])
    assert second["status"] == "unchanged" and second["write_calls"] == 0
    assert published["second"].returncode == 0
    assert len(published["asked"]) == 2  # one request per run: the file has no `next` link


def test_the_city_feature_is_rejected_by_its_type_in_the_run_output(published):
    # the run's messages (shown after its summary line) name the quarantined row and why
    (city,) = [m for m in cli_report(published["first"])["messages"] if "row 1 (" in m]
    assert "(name=Dresden): field 'type': 'city' is not one of Parkplatz" in city


def test_published_values_match_the_recorded_file(published, ckan):
    rows = all_rows(ckan, published["name"])
    features = json.loads(REAL.read_text(encoding="utf-8"))["features"]
    assert len(rows) == 60
    assert sorted(r["name"] for r in rows) == sorted(
        f["properties"]["name"] for f in features if f["properties"]["type"] != "city")
    (prohlis,) = [r for r in rows if r["name"] == "Prohlis"]
    # feature 3: "Langer Weg", Parkplatz, total 67, [13.79952, 50.99958]
    assert (prohlis["address"], prohlis["type"], prohlis["capacity"]) == (
        "Langer Weg", "Parkplatz", 67)
    assert (prohlis["longitude"], prohlis["latitude"]) == (13.79952, 50.99958)
    assert (prohlis["stadtteil_nr"], prohlis["stadtteil"], prohlis["stadtbezirk"]) == (
        "72", "Prohlis-Süd", "Prohlis")
    assert prohlis["geocode_quality"] == "source"
    (bus,) = [r for r in rows if r["name"] == "Terrassenufer Bus"]
    assert bus["capacity"] is None  # the file gives no total
    assert all(r["stadtteil_nr"] for r in rows)


def test_geojson_resource_holds_the_60_points(published, ckan, portal):
    package = ckan.action.package_show(id=published["name"])
    assert package["title"] == "Parkplätze und Parkhäuser in Dresden"
    geojson = next(r for r in package["resources"] if r.get("odp_role") == "geojson")
    request = urllib.request.Request(geojson["url"], headers={"Authorization": portal.token()})
    with urllib.request.urlopen(request, timeout=60) as answer:
        features = json.load(answer)["features"]
    assert len(features) == 60
    assert {f["geometry"]["type"] for f in features} == {"Point"}
    (prohlis,) = [f for f in features if f["properties"]["name"] == "Prohlis"]
    assert prohlis["geometry"]["coordinates"] == [13.79952, 50.99958]
    assert prohlis["properties"]["stadtteil"] == "Prohlis-Süd"


def test_dcat_has_no_violations_on_either_govdata_profile(published, portal):
    found = dataset_violations(portal.url, published["name"], portal.token())
    assert found == {p: [] for p in PROFILES}, found
