"""CRS: read from the data (GeoJSON `crs`, GML `srsName`) in any form, any projected CRS pyproj
knows transformed, GML axis order stated and checked against the CRS's area, mm rounding."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import pytest

from odp.georeference.crs import (
    CrsError,
    crs_of_geojson,
    crs_of_gml,
    gml_axis_order,
    lat_lon_first,
    normalise,
    round_coordinates,
    settle_axis_order,
    transform,
)
from odp.georeference.geometry import read_features
from tests.helpers import REPO

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "georeference"
WAHLBEZIRKE = REPO / "reference" / "dresden" / "wahlbezirke_btw2021.geojson"
# Known points (WGS84): the PEGELONLINE gauge DRESDEN (station list) and the Frauenkirche.
PEGEL = (13.738831783620387, 51.05445972641962)
FRAUENKIRCHE = (13.7416, 51.0519)
DRESDEN = (13.57, 50.97, 13.97, 51.18)  # the city's extent in degrees


@pytest.mark.parametrize("name", [
    "EPSG:25833", "epsg:25833", "urn:ogc:def:crs:EPSG::25833", "urn:ogc:def:crs:EPSG:6.6:25833",
    "http://www.opengis.net/def/crs/EPSG/0/25833", "25833",
])
def test_every_usual_spelling_names_the_same_crs(name):
    assert normalise(name) == "EPSG:25833"


def test_crs84_is_wgs84_and_unusable_crs_are_refused_by_name():
    assert normalise("urn:ogc:def:crs:OGC:1.3:CRS84") == "EPSG:4326"
    assert normalise("http://www.opengis.net/def/crs/OGC/1.3/CRS84") == "EPSG:4326"
    with pytest.raises(CrsError, match=r"EPSG:4978 \(WGS 84\) is a Geocentric CRS: not accepted"):
        normalise("EPSG:4978")
    with pytest.raises(CrsError, match="EPSG:99999 is not known to pyproj"):
        normalise("urn:ogc:def:crs:EPSG::99999")
    with pytest.raises(CrsError, match="unknown CRS 'Lambert'"):
        normalise("Lambert")


@pytest.mark.parametrize("name", [
    "urn:ogc:def:crs:EPSG::3044", "http://www.opengis.net/def/crs/EPSG/0/3044", "EPSG:3044",
    "EPSG::3044", "urn:ogc:def:crs:EPSG:9.9.1:3044"])
def test_a_crs_the_project_does_not_list_is_accepted_in_every_form_when_pyproj_knows_it(name):
    # EPSG:3044 is ETRS89 / UTM 32N with northing first; EPSG:2056 the Swiss LV95
    assert normalise(name) == "EPSG:3044"
    east, north = transform([10.05], [53.59], "EPSG:4326", name)
    assert east[0] == pytest.approx(569_000, abs=1_000) and north[0] == pytest.approx(
        5_939_000, abs=1_000)
    assert normalise("http://www.opengis.net/def/crs/EPSG/0/2056") == "EPSG:2056"


def test_gml_axis_order_is_stated_with_the_rule_that_decided_it():
    urn_3044 = gml_axis_order("urn:ogc:def:crs:EPSG::3044")
    assert urn_3044.north_first and "EPSG axis order of EPSG:3044: N, E" in urn_3044.describe
    # EPSG:25832/25833 are easting first in every form: never swapped
    for name in ("urn:ogc:def:crs:EPSG::25833", "http://www.opengis.net/def/crs/EPSG/0/25832",
                 "EPSG:25833"):
        assert not gml_axis_order(name).north_first
    assert gml_axis_order("EPSG:25833").describe == (
        "EPSG:25833: axis order east, north (short form: x = east, y = north as written); kept")
    labelled = gml_axis_order("urn:ogc:def:crs:EPSG::25833", "N E")
    assert labelled.north_first and 'axisLabels "N E"' in labelled.describe
    # Gauß-Krüger's own labels: X is the northing
    assert gml_axis_order("urn:ogc:def:crs:EPSG::31468", "X Y").north_first
    assert not gml_axis_order("urn:ogc:def:crs:EPSG::31468", "Y X").north_first


def test_northing_first_positions_under_25833_are_recognised_by_the_crs_area():
    stated = gml_axis_order("EPSG:25833")  # a server writing northing first in the short form
    # the Frauenkirche (411,900 E / 5,656,600 N) written northing first
    settled = settle_axis_order(stated, [5_656_600.0, 5_657_000.0], [411_900.0, 412_000.0])
    assert settled.north_first and "only with the axes the other way round" in settled.reason
    assert not settle_axis_order(stated, [411_900.0], [5_656_600.0]).north_first
    # degrees cannot tell: 13.74/51.05 lie in the world either way, the stated order stays
    wgs = gml_axis_order("EPSG:4326")
    assert not settle_axis_order(wgs, [51.05], [13.74]).north_first


def test_projected_coordinates_are_rounded_to_a_millimetre():
    east, north = transform([13.7416], [51.0519], "EPSG:4326", "EPSG:25833")
    rounded = round_coordinates(north, "EPSG:25833")
    assert repr(float(rounded[0])) == repr(round(float(north[0]), 3))
    assert len(repr(float(rounded[0])).split(".")[1]) <= 3
    assert round_coordinates([5701472.482999999], "EPSG:25833")[0] == 5701472.483
    assert round_coordinates([13.741600000123], "EPSG:4326")[0] == 13.7416


def test_gml_axis_order_follows_the_srs_name_form():
    assert lat_lon_first("urn:ogc:def:crs:EPSG::4326")
    assert not lat_lon_first("EPSG:4326")
    assert not lat_lon_first("urn:ogc:def:crs:EPSG::25833")


def test_round_trip_25833_within_a_centimetre_on_known_points():
    for lon, lat in (PEGEL, FRAUENKIRCHE):
        east, north = transform([lon], [lat], "EPSG:4326", "EPSG:25833")
        back_lon, back_lat = transform(east, north, "EPSG:25833", "EPSG:4326")
        again_e, again_n = transform(back_lon, back_lat, "EPSG:4326", "EPSG:25833")
        assert abs(again_e[0] - east[0]) < 0.01 and abs(again_n[0] - north[0]) < 0.01
        # 1 cm at 51° N is ~1.4e-7° of longitude and ~9e-8° of latitude
        assert abs(back_lon[0] - lon) < 1.4e-7 and abs(back_lat[0] - lat) < 9e-8
    east, _ = transform([PEGEL[0]], [PEGEL[1]], "EPSG:4326", "EPSG:25833")
    assert east[0] == pytest.approx(411609.46, abs=0.05)


def test_web_mercator_matches_the_spherical_formula():
    lon, lat = FRAUENKIRCHE
    x, y = transform([lon], [lat], "EPSG:4326", "EPSG:3857")
    r = 6378137.0
    assert x[0] == pytest.approx(r * math.radians(lon), abs=0.01)
    assert y[0] == pytest.approx(r * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)),
                                 abs=0.01)


@pytest.mark.parametrize(("code", "meridian", "false_easting"),
                         [(31468, 12.0, 4_500_000.0), (31469, 15.0, 5_500_000.0)])
def test_gauss_krueger_known_point_on_the_central_meridian(code, meridian, false_easting):
    # A point with Rechtswert = the zone's false easting lies on its central meridian (DHDN);
    # in WGS84 it is off by the DHDN → ETRS89 datum shift only (about 100 m, never km).
    lon, lat = transform([false_easting], [5_657_000.0], f"EPSG:{code}", "EPSG:4326")
    assert abs(lon[0] - meridian) < 0.003 and 51.0 < lat[0] < 51.1
    east, north = transform(lon, lat, "EPSG:4326", f"EPSG:{code}")
    assert abs(east[0] - false_easting) < 0.01 and abs(north[0] - 5_657_000.0) < 0.01
    # One DHDN place (the Frauenkirche) written in zone 4 and in zone 5 lands on the same
    # ETRS89/UTM point: the datum transformation is chosen once for the city's area.
    lon, lat = FRAUENKIRCHE
    e4, n4 = transform([lon], [lat], "EPSG:4326", "EPSG:31468", DRESDEN)
    e5, n5 = transform(e4, n4, "EPSG:31468", "EPSG:31469", DRESDEN)
    assert e4[0] == pytest.approx(4_621_000, abs=2_000) and e5[0] == pytest.approx(5_411_000,
                                                                                   abs=2_000)
    utm4 = transform(e4, n4, "EPSG:31468", "EPSG:25833", DRESDEN)
    utm5 = transform(e5, n5, "EPSG:31469", "EPSG:25833", DRESDEN)
    assert abs(utm4[0][0] - utm5[0][0]) < 0.01 and abs(utm4[1][0] - utm5[1][0]) < 0.01
    # … within the stated accuracy of PROJ's DHDN → ETRS89 Helmert (3 m; no BETA2007 grid here)
    utm = transform([lon], [lat], "EPSG:4326", "EPSG:25833")
    assert math.dist((utm4[0][0], utm4[1][0]), (utm[0][0], utm[1][0])) < 3.0


def test_geojson_crs_member_is_read_from_the_real_dresden_ogc_api_response():
    data = WAHLBEZIRKE.read_bytes()
    assert crs_of_geojson(json.loads(data)) == "EPSG:4326"  # per-geometry `crs` member
    frame = read_features(data)
    assert len(frame) == 365 and str(frame.crs) == "EPSG:4326"
    assert frame.total_bounds[0] == pytest.approx(13.58, abs=0.02)


def test_geojson_in_25833_named_by_its_crs_member_ends_in_wgs84():
    east, north = transform([PEGEL[0]], [PEGEL[1]], "EPSG:4326", "EPSG:25833")
    doc = {"type": "FeatureCollection",
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25833"}},
           "features": [{"type": "Feature", "properties": {"name": "Pegel"},
                         "geometry": {"type": "Point", "coordinates": [east[0], north[0]]}}]}
    frame = read_features(json.dumps(doc).encode())
    assert frame.geometry.x[0] == pytest.approx(PEGEL[0], abs=1e-7)
    assert frame.geometry.y[0] == pytest.approx(PEGEL[1], abs=1e-7)


def test_gml_srs_name_is_read_from_a_real_wfs_response_in_25832():
    data = (FIXTURES / "hamburg_HH_WFS_GAGES_getfeature_findeStadtteil_bar_2018.xml").read_bytes()
    assert crs_of_gml(data) == "EPSG:25832"
    frame = read_features(data)
    # Barmbek-Nord's position 569569.732 5939046.574 lies in Hamburg (≈ 10.05° E, 53.59° N).
    barmbek = frame[frame["geographicIdentifier"] == "Barmbek-Nord"].geometry.iloc[0]
    assert barmbek.x == pytest.approx(10.05, abs=0.02) and barmbek.y == pytest.approx(53.59,
                                                                                     abs=0.02)


def _swapped_positions(data: bytes) -> bytes:
    """The same GML with every position written northing first."""
    def swap(match: re.Match) -> bytes:
        values = match.group(2).split()
        pairs = [values[i + 1] + b" " + values[i] for i in range(0, len(values), 2)]
        return match.group(1) + b" ".join(pairs) + match.group(3)
    return re.sub(rb"(<gml:pos(?:List)?>)([^<]+)(</gml:pos(?:List)?>)", swap, data)


def _barmbek(frame) -> tuple[float, float]:
    point = frame[frame["geographicIdentifier"] == "Barmbek-Nord"].geometry.iloc[0]
    return point.x, point.y


def test_real_hamburg_gml_written_northing_first_lands_where_the_original_does(caplog):
    data = (FIXTURES / "hamburg_HH_WFS_GAGES_getfeature_findeStadtteil_bar_2018.xml").read_bytes()
    original = _barmbek(read_features(data))
    # under EPSG:3044 (UTM 32N, northing first by EPSG) the axis order is the CRS's own …
    as_3044 = _swapped_positions(data).replace(b"EPSG::25832", b"EPSG::3044")
    assert _barmbek(read_features(as_3044)) == pytest.approx(original, abs=1e-9)
    # … and under EPSG:25832 written northing first (a server's mistake) the area decides
    caplog.set_level(logging.INFO, logger="odp.georeference")
    wrong = _swapped_positions(data)
    assert _barmbek(read_features(wrong)) == pytest.approx(original, abs=1e-9)
    assert "axis order north, east (the data: every position lies in the area of EPSG:25832 " \
           "only with the axes the other way round); swapped to east, north" in caplog.text
