"""WFS 2.0 source of the dataset stadtteile-dresden against the replay server: the CONSTRUCTED
GetFeature pages in EPSG:25833 made from the REAL 64 Stadtteile of
reference/dresden/stadtteile.geojson (tests/recordings/wfs/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from odp.errors import SourceError
from odp.sources.wfs import read_features
from odp.spec import load_dataset
from tests.helpers import REPO
from tests.unit.source_env import source_env

NAME = "stadtteile-dresden"
URL = "https://wfs.dresden.example/wfs"
REAL = REPO / "reference" / "dresden" / "stadtteile.geojson"


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    for env in source_env(tmp_path, monkeypatch, [NAME]):
        yield {"dataset": load_dataset(env["names"][NAME], env["root"]), "server": env["server"]}


def _real() -> list[dict]:
    return json.loads(REAL.read_text(encoding="utf-8"))["features"]


def _start_indexes(env) -> list[str]:
    return [r.url.split("STARTINDEX=")[1].split("&")[0] for r in env["server"].requests]


def test_three_pages_give_the_64_stadtteile_once_each(env):
    table = read_features(env["dataset"])
    assert len(table) == 64 and table["nummer"].is_unique and table["feature_id"].is_unique
    assert sorted(table["nummer"]) == sorted(f["properties"]["blocknr"] for f in _real())
    assert _start_indexes(env) == ["0", "25", "50"]  # the third page (14) is not full: stop
    assert all("COUNT=25" in r.url and "TYPENAMES=sg%3AStadtteile" in r.url
               for r in env["server"].requests)
    assert list(table.columns) == ["feature_id", "nummer", "name", "name_lang", "geometry_wkt",
                                   "easting", "northing"]


def test_values_read_by_hand_and_a_vertex_back_in_crs84(env):
    table = read_features(env["dataset"]).set_index("nummer")
    row = table.loc["13"]  # page 1, member 3: gml:id Stadtteile.13
    assert (row["feature_id"], row["name"]) == ("Stadtteile.13", "Innere Neustadt")
    assert row["name_lang"] == "Innere Neustadt mit Antonstadt-Süd"
    # the page's first posList pair: 412283.30 5657632.59 (easting, northing kept in order)
    assert row["geometry_wkt"].startswith("MULTIPOLYGON (((412283.3 5657632.59, "
                                          "412311.32 5657620.55, ")
    to_crs84 = Transformer.from_crs("EPSG:25833", "EPSG:4326", always_xy=True)
    lon, lat = to_crs84.transform(412283.30, 5657632.59)
    # the REAL file's first vertex of Innere Neustadt: [13.748202607895726, 51.06350749093168]
    distance = Geod(ellps="GRS80").inv(lon, lat, 13.748202607895726, 51.06350749093168)[2]
    assert distance < 0.01  # metres: 2 decimals in EPSG:25833
    point = shapely.Point(float(row["easting"]), float(row["northing"]))
    assert shapely.from_wkt(row["geometry_wkt"]).contains(point)


def test_every_geometry_is_its_real_stadtteil_within_a_centimetre(env):
    table = read_features(env["dataset"]).set_index("nummer")
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:25833", always_xy=True)
    for feature in _real():
        code = feature["properties"]["blocknr"]
        real = shapely.transform(shapely.geometry.shape(feature["geometry"]),
                                 lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        read = shapely.from_wkt(table.loc[code, "geometry_wkt"])
        assert read.equals_exact(real, 0.01), code
        assert table.loc[code, "name"] == feature["properties"]["name"]


def test_5xx_on_page_2_then_success_still_gives_64(env):
    read_features(env["dataset"])
    page_2 = env["server"].requests[1].url  # the client's own URL of STARTINDEX=25
    env["server"].clear_requests()
    env["server"].fail_next(page_2, [503])
    table = read_features(env["dataset"])
    assert len(table) == 64 and table["nummer"].is_unique
    assert _start_indexes(env) == ["0", "25", "25", "50"]
    assert [r.status for r in env["server"].requests] == [200, 503, 200, 200]


def test_malformed_page_2_is_a_source_error_naming_the_url(env):
    read_features(env["dataset"])
    page_2 = env["server"].requests[1].url
    cut = (REPO / "tests/recordings/wfs/stadtteile_25833_start25.xml").read_bytes()[:20000]
    env["server"].override(page_2, 200, cut, "application/gml+xml; version=3.2")
    with pytest.raises(SourceError) as caught:
        read_features(env["dataset"])
    message = str(caught.value)
    assert "\n" not in message
    assert f"{URL} (page 2): malformed XML at line" in message
