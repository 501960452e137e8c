"""The geodata and administrative-file datasets published end to end by `odp run` into the real
local CKAN, sources replayed from the REAL recordings; published values checked against cells
read by hand from the recorded files."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest
import shapely
import shapely.geometry

from odp_dev.replay import ReplayServer
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import (
    RECORDINGS,
    chromium,
    cli_env,
    cli_reports,
    make_project,
    odp_cli,
    table_resource,
)

pytestmark = pytest.mark.integration

DATASETS = ["wahlbezirke-dresden", "transit-stops-vvo", "air-quality-dresden",
            "population-forecast-dresden", "parking-forecast-dresden-altmarkt"]


def _search(ckan, name: str, **filters) -> list[dict]:
    table = table_resource(ckan, name)
    return ckan.action.datastore_search(resource_id=table["id"], filters=filters)["records"]


@pytest.fixture(scope="module")
def published(tmp_path_factory, portal, ckan):
    tmp = tmp_path_factory.mktemp("admin_geo")
    root, names = make_project(tmp, DATASETS)
    with ReplayServer(RECORDINGS) as server:
        env = cli_env(root, tmp / "state", server.url, portal)
        first = odp_cli(env, "run", *names.values(), "--json")
        second = odp_cli(env, "run", *names.values(), "--json")
    yield {"names": names, "first": first, "second": second}
    for name in names.values():
        with contextlib.suppress(Exception):  # a failed run may have created nothing
            ckan.action.dataset_purge(id=name)


def _reports(done: subprocess.CompletedProcess) -> dict[str, dict]:
    return {r["dataset"].split("-", 1)[1]: r for r in cli_reports(done)}


def test_every_dataset_is_published_and_a_rerun_writes_nothing(published):
    first = _reports(published["first"])
    for name in DATASETS:
        assert first[name]["status"] == "ok", (name, first[name]["error"])
    assert first["wahlbezirke-dresden"]["inserted"] == 365
    assert first["transit-stops-vvo"]["quarantined"] == 2  # two stops without a number
    assert first["air-quality-dresden"]["inserted"] == 1448
    assert first["population-forecast-dresden"]["inserted"] == 160
    parking = first["parking-forecast-dresden-altmarkt"]
    assert parking["quarantined"] == 4 and parking["inserted"] == 40986 - 4  # the spring gap
    second = _reports(published["second"])
    for name in DATASETS:
        assert second[name]["status"] == "unchanged" and second[name]["write_calls"] == 0, name
    assert published["second"].returncode == 0


def test_published_values_match_the_recorded_files(published, ckan):
    names = published["names"]
    # wahlbezirke: feature id 12, wb 04300, a polygon in WGS84; its point lies in Dresden
    (wb,) = _search(ckan, names["wahlbezirke-dresden"], wahlbezirk_nr="04300")
    assert wb["wahlbezirk"] == "Wilsdruffer Vorstadt (Maternistr.)" and wb["feature_id"] == 12
    recorded = next(f for f in json.loads(
        (RECORDINGS / "ogcapi_dresden" / "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson")
        .read_text(encoding="utf-8"))["features"] if f["id"] == 12)
    assert recorded["geometry"]["coordinates"][0][0] == [13.71914857394517, 51.05045337374874]
    published_shape = shapely.from_wkt(wb["geometry_wkt"])  # WKT, WGS84, 8 decimals
    assert published_shape.normalize().equals_exact(
        shapely.geometry.shape({"type": "Polygon",
                                "coordinates": recorded["geometry"]["coordinates"]}).normalize(),
        1e-7)
    assert wb["stadtteil_nr"] == "04" and wb["stadtbezirk"] == "Altstadt"  # by overlap share
    # stops: de:14612:1;Dresden Bahnhof Mitte;…;13,723395;51,055642 (decimal commas)
    (stop,) = _search(ckan, names["transit-stops-vvo"], stop_id="de:14612:1")
    assert (stop["longitude"], stop["latitude"]) == (13.723395, 51.055642)
    assert stop["fare_zone_1"] == "0100" and stop["fare_zone_2"] is None
    # air quality, Dresden-Nord: 2018-12-01,01:00 (MEZ) → 00:00Z; NO2 21 µg/m³, 0.0 °C, SO2 empty
    rows = _search(ckan, names["air-quality-dresden"], station="Dresden-Nord",
                   timestamp="2018-12-01T00:00:00", resolution="PT1H")
    (hour,) = rows
    assert (hour["no2"], hour["temperature"], hour["pressure"]) == (21, 0.0, 1016)
    assert hour["so2"] is None and hour["pm10_hvs"] is None  # missing, never 0
    (day,) = _search(ckan, names["air-quality-dresden"], station="Dresden-Nord",
                     resolution="P1D", timestamp="2018-11-30T23:00:00")
    assert (day["pm10_hvs"], day["pm2_5"]) == (26.59, 23.74)
    # population: 2025;StB 0 Altstadt;66474
    (pop,) = _search(ckan, names["population-forecast-dresden"], year=2025,
                     stadtbezirk="StB 0 Altstadt")
    assert pop["population"] == 66474
    # parking: 2016-10-30T02:00:00 local (read as summer time, declared) → 00:00Z, 60 free
    (park,) = _search(ckan, names["parking-forecast-dresden-altmarkt"],
                      timestamp="2016-10-30T00:00:00")
    assert park["free_spaces"] == 60 and park["stadtteil"] is not None


def test_geojson_resources_open_in_ckans_map_preview(published, ckan, portal, tmp_path):
    """CKAN's own preview (ckanext-geoview's Leaflet view, created by default with the
    resource) draws every feature: the 365 Wahlbezirk polygons and one marker per stop."""
    names = published["names"]
    first = _reports(published["first"])
    for name, marker, expected in (
            ("wahlbezirke-dresden", 'class="leaflet-interactive"', 365),
            ("transit-stops-vvo", "leaflet-marker-icon", first["transit-stops-vvo"]["inserted"])):
        package = ckan.action.package_show(id=names[name])
        by_role = {r.get("odp_role"): r for r in package["resources"]}
        views = {v["view_type"]: v for v in ckan.action.resource_view_list(
            id=by_role["geojson"]["id"])}
        assert "geojson_view" in views, (name, list(views))
        assert "datatables_view" in {v["view_type"] for v in ckan.action.resource_view_list(
            id=by_role["table"]["id"])}
        url = (f"{portal.url}/dataset/{names[name]}/resource/{by_role['geojson']['id']}"
               f"/view/{views['geojson_view']['id']}")
        done = chromium("--dump-dom", "--virtual-time-budget=20000", url, tmp=tmp_path)
        assert "leaflet-container" in done.stdout, (name, done.stderr[-500:])
        assert done.stdout.count(marker) == expected, name


def test_dcat_of_every_dataset_has_no_violations(published, portal):
    for name in published["names"].values():
        found = dataset_violations(portal.url, name, portal.token())
        assert found == {p: [] for p in PROFILES}, (name, found)
