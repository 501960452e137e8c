"""The dataset car-parks-dresden against the replay server: ParkAPI's REAL Dresden.geojson
(tests/recordings/parking_dresden/README.md) through the `ogcapi_features` source, validation
(the city feature rejected by its `type`) and the georeference stage on the city's layers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import shapely
import shapely.geometry
from pyproj import Transformer

from odp.georeference import georeference
from odp.sources.ogcapi import read_collection
from odp.spec import load_city, load_dataset
from odp.validate import gate_reasons, validate_batch
from tests.helpers import RECORDINGS, REPO
from tests.unit.source_env import source_env

NAME = "car-parks-dresden"
URL = ("https://raw.githubusercontent.com/offenesdresden/ParkAPI/"
       "696f06ace12e4449a5bf5db8a3e048870b89fff6/park_api/cities/Dresden.geojson")
REAL = RECORDINGS / "parking_dresden" / "ParkAPI_Dresden.geojson"
STADTTEILE = REPO / "reference" / "dresden" / "stadtteile.geojson"


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    for env in source_env(tmp_path, monkeypatch, [NAME]):
        yield {"dataset": load_dataset(env["names"][NAME], env["root"]),
               "city": load_city(env["root"]), "server": env["server"]}


def _stadtteil_of(lon: float, lat: float) -> str:
    """The number of the one Stadtteil of the city layer holding the point (CRS84)."""
    point = shapely.Point(lon, lat)
    features = json.loads(STADTTEILE.read_text(encoding="utf-8"))["features"]
    (code,) = [f["properties"]["blocknr"] for f in features
               if shapely.geometry.shape(f["geometry"]).contains(point)]
    return code


def _validated(env):
    raw = read_collection(env["dataset"])
    return raw, validate_batch(raw, env["dataset"], "test-run")


def test_one_request_gives_the_61_features_of_the_file(env):
    raw = read_collection(env["dataset"])
    assert len(raw) == 61
    assert raw["name"].is_unique  # the primary key: ParkAPI identifies a car park by its name
    assert raw["type"].value_counts().to_dict() == {
        "Parkplatz": 38, "Tiefgarage": 17, "Parkhaus": 5, "city": 1}
    asked = [r.url for r in env["server"].requests]
    assert len(asked) == 1 and URL.split("://")[1] in asked[0]


def test_hand_read_values_of_the_file(env):
    raw = read_collection(env["dataset"]).set_index("name")
    # feature 3: "Prohlis", "Langer Weg", Parkplatz, total 67, [13.79952, 50.99958]
    prohlis = raw.loc["Prohlis"]
    assert (prohlis["address"], prohlis["type"]) == ("Langer Weg", "Parkplatz")
    assert prohlis["capacity"] == "67"  # `total`, renamed, as sent (not "67.0")
    assert (float(prohlis["longitude"]), float(prohlis["latitude"])) == (13.79952, 50.99958)
    # feature 2: "Terrassenufer Bus" gives no total
    assert pd.isna(raw.loc["Terrassenufer Bus", "capacity"])
    assert raw.loc["Haus am Zwinger", "address"] == "Kleine Brüdergasse 3"


def test_validation_keeps_60_car_parks_and_rejects_the_city_by_its_type(env):
    raw, result = _validated(env)
    assert (result.total, len(result.valid), result.rejected_rows) == (61, 60, 1)
    assert "Dresden" not in set(result.valid["name"])
    errors = result.findings[result.findings["severity"] == "error"]
    (city,) = errors.itertuples()
    assert (city.row, city.field) == (1, "type")  # the first feature of the file
    assert "'city'" in city.reason and "Parkplatz" in city.reason
    assert "Dresden" in city.key
    assert gate_reasons(result, env["dataset"]) == []  # 1 of 61 is within max_quarantine_share
    # the properties not published are dropped by the definition (`drop`): no drift
    assert not result.drift.new and not ({"geometry", "aux", "url"} & set(raw.columns))
    prohlis = result.valid.set_index("name").loc["Prohlis"]
    assert prohlis["capacity"] == 67 and prohlis["type"] == "Parkplatz"


def test_a_second_non_car_park_type_would_also_be_rejected(env):
    raw = read_collection(env["dataset"])
    raw.loc[raw["name"] == "Prohlis", "type"] = "Parkplätze"
    result = validate_batch(raw, env["dataset"], "test-run")
    assert result.rejected_rows == 2
    assert set(result.findings.loc[result.findings["severity"] == "error", "field"]) == {"type"}


def test_georeference_puts_every_car_park_in_a_stadtteil(env):
    _, result = _validated(env)
    located = georeference(result.valid, env["dataset"], env["city"])
    table = located.table.set_index("name")
    assert len(table) == 60 and located.rejected.empty
    assert located.in_city == 60 and table["stadtteil_nr"].notna().all()
    assert set(table["geocode_quality"]) == {"source"}  # every one brought its coordinates
    prohlis = table.loc["Prohlis"]
    assert (prohlis["stadtteil_nr"], prohlis["stadtteil"], prohlis["stadtbezirk"]) == (
        "72", "Prohlis-Süd", "Prohlis")
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:25833", always_xy=True)
    east, north = to_utm.transform(13.79952, 50.99958)
    assert prohlis["easting"] == pytest.approx(east, abs=0.01)
    assert prohlis["northing"] == pytest.approx(north, abs=0.01)


def test_each_car_park_lies_in_the_stadtteil_the_city_layer_says(env):
    _, result = _validated(env)
    table = georeference(result.valid, env["dataset"], env["city"]).table.set_index("name")
    for feature in json.loads(REAL.read_text(encoding="utf-8"))["features"][1:]:
        lon, lat = feature["geometry"]["coordinates"]
        assert table.loc[feature["properties"]["name"], "stadtteil_nr"] == _stadtteil_of(lon, lat)


def test_a_car_park_without_coordinates_is_geocoded_from_its_street(env):
    _, result = _validated(env)
    table = result.valid.copy()
    gone = table["name"].isin(["Haus am Zwinger", "Prohlis"])
    table.loc[gone, ["longitude", "latitude"]] = pd.NA
    dataset = env["dataset"]
    assert dataset.georeference["address"] == {"street": "address"}
    got = georeference(table, dataset, env["city"]).table.set_index("name")
    # "Kleine Brüdergasse 3" is in the address register (reference/dresden/addresses.csv,
    # line 80: 13.7358400, 51.0514900, itself derived from this ParkAPI file)
    zwinger = got.loc["Haus am Zwinger"]
    assert zwinger["geocode_quality"] == "exact"
    assert (zwinger["longitude"], zwinger["latitude"]) == (13.73584, 51.05149)
    assert zwinger["stadtteil_nr"] == _stadtteil_of(13.73584, 51.05149)
    # "Langer Weg" (no house number) is not in the register: no coordinate is invented
    prohlis = got.loc["Prohlis"]
    assert prohlis["geocode_quality"] == "none"
    assert pd.isna(prohlis["longitude"]) and pd.isna(prohlis["stadtteil_nr"])
    assert set(got.drop(index=["Haus am Zwinger", "Prohlis"])["geocode_quality"]) == {"source"}

