"""District assignment and CRS transforms on the city's real reference layer."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.georeference.districts import district_index, transform
from odp.spec import load_city
from tests.helpers import REPO

CITY = load_city(REPO)
UTM = CITY.crs


def _assign(lon: list[float | None], lat: list[float | None]) -> pd.DataFrame:
    east, north = transform(pd.Series(lon, dtype=float), pd.Series(lat, dtype=float),
                            "EPSG:4326", UTM)
    return district_index(CITY).assign(pd.Series(east), pd.Series(north))


def test_known_places_land_in_their_stadtteil_and_stadtbezirk():
    # Frauenkirche (Innere Altstadt), Schloss Pillnitz (Hosterwitz/Pillnitz),
    # Dresden-Klotzsche airport terminal (Flughafen/Industriegebiet Klotzsche).
    got = _assign([13.7416, 13.8694, 13.7656], [51.0519, 51.0085, 51.1286])
    assert list(got["stadtteil"]) == [
        "Innere Altstadt", "Hosterwitz/Pillnitz", "Flughafen/Industriegebiet Klotzsche"]
    assert list(got["stadtbezirk"]) == ["Altstadt", "Loschwitz", "Klotzsche"]
    assert list(got["stadtteil_nr"]) == ["01", "43", "33"]


def test_outside_the_city_and_missing_coordinates_get_no_district():
    got = _assign([13.4050, None], [52.5200, None])  # Berlin; no coordinates
    assert got["stadtteil"].isna().all() and got["stadtbezirk"].isna().all()


def test_a_point_on_a_shared_border_is_assigned_to_the_lowest_code():
    # A vertex both Stadtteile share lies exactly on their border (in the layer's own CRS).
    polygons = district_index(CITY).polygons.set_index("stadtteil_nr").geometry
    def vertices(code: str) -> set[tuple[float, float]]:
        return {xy for part in getattr(polygons[code], "geoms", [polygons[code]])
                for xy in part.exterior.coords}
    shared = sorted(vertices("01") & vertices("02"))
    assert shared, "Innere Altstadt and Pirnaische Vorstadt share vertices"
    x, y = shared[0]
    got = district_index(CITY).assign(pd.Series([x]), pd.Series([y]))
    assert got.loc[0, "stadtteil_nr"] == "01"


def test_round_trip_25833_within_a_centimetre():
    lon, lat = pd.Series([13.738831783620387]), pd.Series([51.05445972641962])
    east, north = transform(lon, lat, "EPSG:4326", UTM)
    back_lon, back_lat = transform(pd.Series(east), pd.Series(north), UTM, "EPSG:4326")
    again_e, again_n = transform(pd.Series(back_lon), pd.Series(back_lat), "EPSG:4326", UTM)
    assert abs(again_e[0] - east[0]) < 0.01 and abs(again_n[0] - north[0]) < 0.01
    assert east[0] == pytest.approx(411609.46, abs=0.05)
