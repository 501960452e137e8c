"""The dataset stadtteile-dresden (WFS 2.0, GML 3.2, EPSG:25833) published end to end by `odp run`
into the real local CKAN, the WFS replayed in the demo's scenario from the CONSTRUCTED pages made
of the REAL 64 Stadtteile (tests/recordings/wfs/README.md); values checked against the files."""

from __future__ import annotations

import contextlib
import json
import urllib.request

import pytest
import shapely
import shapely.geometry

from odp.cli import DEMO_SCENARIO
from odp_dev.replay import ReplayServer
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import (
    RECORDINGS,
    REPO,
    all_rows,
    cli_env,
    cli_report,
    make_project,
    odp_cli,
)

pytestmark = pytest.mark.integration

NAME = "stadtteile-dresden"
REAL = REPO / "reference" / "dresden" / "stadtteile.geojson"
# cities/dresden.toml [reference_layers.stadtbezirke]: the first digit of the Stadtteil's code
BEZIRKE = {"0": "Altstadt", "1": "Neustadt", "2": "Pieschen", "3": "Klotzsche", "4": "Loschwitz",
           "5": "Blasewitz", "6": "Leuben", "7": "Prohlis", "8": "Plauen", "9": "Cotta"}


@pytest.fixture(scope="module")
def published(tmp_path_factory, portal, ckan):
    tmp = tmp_path_factory.mktemp("wfs_dresden")
    root, names = make_project(tmp, [NAME])
    with ReplayServer(RECORDINGS, scenario=DEMO_SCENARIO) as server:
        env = cli_env(root, tmp / "state", server.url, portal)
        first = odp_cli(env, "run", names[NAME], "--json")
        second = odp_cli(env, "run", names[NAME], "--json")
        asked = [r.url for r in server.requests]
    yield {"name": names[NAME], "first": first, "second": second, "asked": asked}
    with contextlib.suppress(Exception):  # a failed run may have created nothing
        ckan.action.dataset_purge(id=names[NAME])


def test_published_once_and_a_rerun_writes_nothing(published):
    first = cli_report(published["first"])
    assert first["status"] == "ok", first["error"]
    assert (first["extracted"], first["quarantined"], first["inserted"]) == (64, 0, 64)
    assert first["in_city"] == 64
    second = cli_report(published["second"])
    assert second["status"] == "unchanged" and second["write_calls"] == 0
    assert published["second"].returncode == 0
    # each run read the three pages of 25 (STARTINDEX 0, 25, 50) and stopped at the short one
    starts = [u.split("STARTINDEX=")[1].split("&")[0] for u in published["asked"]]
    assert starts == ["0", "25", "50"] * 2


def test_every_stadtteil_is_assigned_to_itself(published, ckan):
    rows = all_rows(ckan, published["name"])
    assert len(rows) == 64 and len({r["nummer"] for r in rows}) == 64
    for row in rows:  # overlap with the city's own layer: the largest share is the row itself
        assert (row["stadtteil_nr"], row["stadtteil"]) == (row["nummer"], row["name"])
        assert row["stadtbezirk"] == BEZIRKE[row["nummer"][0]]


def test_published_values_match_the_recorded_files(published, ckan):
    (row,) = [r for r in all_rows(ckan, published["name"]) if r["nummer"] == "13"]
    assert (row["feature_id"], row["name"]) == ("Stadtteile.13", "Innere Neustadt")
    assert row["name_lang"] == "Innere Neustadt mit Antonstadt-Süd"
    assert row["stadtbezirk"] == "Neustadt"
    # WKT in WGS84 now; the REAL polygon (CRS84) within ~1 cm (2 decimals in EPSG:25833)
    real = next(f for f in json.loads(REAL.read_text(encoding="utf-8"))["features"]
                if f["properties"]["blocknr"] == "13")
    assert real["geometry"]["coordinates"][0][0][0] == [13.748202607895726, 51.06350749093168]
    shape = shapely.from_wkt(row["geometry_wkt"])
    assert shape.normalize().equals_exact(
        shapely.geometry.shape(real["geometry"]).normalize(), 1.5e-7)
    # the point inside, in EPSG:25833 (as the source read it) and in WGS84
    assert 411000 < row["easting"] < 415000 and 5656000 < row["northing"] < 5660000
    assert shape.contains(shapely.Point(row["longitude"], row["latitude"]))


def test_geojson_resource_holds_the_64_polygons(published, ckan, portal):
    package = ckan.action.package_show(id=published["name"])
    assert package["title"] == "Statistische Stadtteile der Landeshauptstadt Dresden"
    geojson = next(r for r in package["resources"] if r.get("odp_role") == "geojson")
    request = urllib.request.Request(geojson["url"], headers={"Authorization": portal.token()})
    with urllib.request.urlopen(request, timeout=60) as answer:
        features = json.load(answer)["features"]
    assert len(features) == 64
    assert {f["geometry"]["type"] for f in features} == {"MultiPolygon"}
    (inner,) = [f for f in features if f["properties"]["nummer"] == "13"]
    assert inner["properties"]["stadtteil"] == "Innere Neustadt"


def test_dcat_has_no_violations_on_either_govdata_profile(published, portal):
    found = dataset_violations(portal.url, published["name"], portal.token())
    assert found == {p: [] for p in PROFILES}, found
