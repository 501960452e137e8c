"""The georeference stage on the real reference layers: geometry checks and repair, points
quarantined with reasons, further layers (Wahlbezirke), lines/polygons, GeoJSON output."""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from odp.errors import ConfigError
from odp.georeference import covered_districts, georeference, spatial_extent, to_geojson
from odp.georeference.crs import transform
from odp.georeference.geometry import NULL_ISLAND, OUTSIDE, SWAPPED, parse_geometries, repair
from odp.spec import load_city, load_dataset
from tests.helpers import REPO

CITY = load_city(REPO)
SCHOOLS = load_dataset("schools-dresden", REPO)


def _with_rule(**rule) -> object:
    return dataclasses.replace(SCHOOLS, georeference=rule)


def _points(lon: list, lat: list) -> pd.DataFrame:
    n = len(lon)
    return pd.DataFrame({"school_id": range(1, n + 1), "building_no": [1] * n,
                         "name": [f"S{i}" for i in range(n)], "longitude": lon, "latitude": lat},
                        index=range(10, 10 + n))


def test_zero_swapped_and_far_away_points_are_rejected_with_their_reason():
    # Frauenkirche; the same swapped; (0, 0); Berlin; 1 km outside the boundary (kept: buffer
    # 2 km); no coordinates (kept, no district).
    table = _points([13.7416, 51.0519, 0.0, 13.4050, 13.5700, None],
                    [51.0519, 13.7416, 0.0, 52.5200, 51.0500, None])
    got = georeference(table, _with_rule(lon="longitude", lat="latitude"), CITY)
    assert list(got.rejected["rule"]) == [SWAPPED, NULL_ISLAND, OUTSIDE]
    assert list(got.rejected.index) == [11, 12, 13]
    assert "swapped" in got.rejected.loc[11, "reason"]
    assert "151.2 km outside Dresden" in got.rejected.loc[13, "reason"]
    assert list(got.table.index) == [10, 14, 15]
    assert got.table.loc[10, "stadtteil"] == "Innere Altstadt"
    assert pd.isna(got.table.loc[15, "stadtteil"]) and got.located == 2
    findings = got.findings(table, pd.Series([f"k{i}" for i in range(6)], index=table.index))
    assert list(findings["row"]) == [2, 3, 4] and list(findings["key"]) == ["k1", "k2", "k3"]


def test_outside_points_can_be_kept_when_the_dataset_says_so():
    got = georeference(_points([13.4050], [52.52]),
                       _with_rule(outside="keep"), CITY)
    assert got.rejected.empty and pd.isna(got.table["stadtteil"].iloc[0])


def test_projected_input_gets_wgs84_and_utm_columns_and_wahlbezirk():
    east, north = transform([13.7416], [51.0519], "EPSG:4326", "EPSG:31468")
    table = _points([None], [None]).assign(x=east, y=north)
    got = georeference(table, _with_rule(lon="x", lat="y", crs="EPSG:31468",
                                         layers=["wahlbezirke"]), CITY)
    row = got.table.iloc[0]
    assert row["longitude"] == pytest.approx(13.7416, abs=5e-5)  # DHDN Helmert: ~3 m
    assert row["stadtteil"] == "Innere Altstadt"
    assert len(row["wahlbezirk_nr"]) == 5 and row["wahlbezirk"]


def test_a_swapped_projected_pair_is_detected_too():
    east, north = transform([13.7416], [51.0519], "EPSG:4326", "EPSG:25833")
    got = georeference(_points([None], [None]).assign(x=north, y=east),
                       _with_rule(lon="x", lat="y", crs="EPSG:25833"), CITY)
    assert list(got.rejected["rule"]) == [SWAPPED]


def test_unknown_keys_and_crs_are_configuration_errors():
    with pytest.raises(ConfigError, match="unknown key 'lng'"):
        georeference(_points([13.74], [51.05]), _with_rule(lng="x"), CITY)
    with pytest.raises(ConfigError, match=r"\[georeference\] crs: CRS EPSG:4978 .*Geocentric"):
        georeference(_points([13.74], [51.05]), _with_rule(crs="EPSG:4978"), CITY)
    with pytest.raises(ConfigError, match="no polygon layer 'kitas'"):
        georeference(_points([13.74], [51.05]), _with_rule(layers=["kitas"]), CITY)


def test_invalid_polygon_is_made_valid_and_wound_counter_clockwise():
    bowtie = "POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))"  # self-intersecting
    clockwise = "POLYGON((0 0, 0 1, 1 1, 1 0, 0 0))"
    geoms, unreadable = parse_geometries(pd.Series([bowtie, clockwise, "", "POINT EMPTY",
                                                    "not a geometry"]))
    fixed, issues = repair(geoms)
    assert fixed.iloc[0].is_valid and fixed.iloc[0].area == pytest.approx(2.0)
    assert issues.iloc[0].startswith("invalid geometry made valid (Self-intersection")
    assert fixed.iloc[1].exterior.is_ccw and issues.iloc[1] == ""
    assert fixed.iloc[2] is None and fixed.iloc[3] is None
    assert issues.iloc[3] == "empty or null geometry"
    assert unreadable.iloc[4].startswith("unreadable geometry")


def _polygon_table() -> pd.DataFrame:
    # A square straddling Innere Altstadt (01) and Pirnaische Vorstadt (02), mostly in 02, and
    # a line along the Elbe; as GeoJSON text in EPSG:25833.
    east, north = transform([13.7440, 13.7520], [51.0480, 51.0500], "EPSG:4326", "EPSG:25833")
    square = shapely.box(east[0], north[0], east[1], north[1])
    return pd.DataFrame({"school_id": [1, 2], "building_no": [1, 1], "name": ["a", "b"],
                         "geometry": [shapely.to_geojson(square), None]})


def test_polygons_by_overlap_share_or_representative_point():
    table = _polygon_table()
    overlap = georeference(table, _with_rule(geometry="geometry", crs="EPSG:25833",
                                             assign_by="overlap"), CITY)
    point = georeference(table, _with_rule(geometry="geometry", crs="EPSG:25833"), CITY)
    assert overlap.table.loc[0, "stadtteil_nr"] in ("01", "02")
    share = gpd.GeoSeries([shapely.from_geojson(table.loc[0, "geometry"])], crs="EPSG:25833")
    from odp.georeference.districts import district_index

    polygons = district_index(CITY).polygons.set_index("stadtteil_nr").geometry
    areas = {c: share.intersection(polygons[c]).area.iloc[0] for c in ("01", "02")}
    assert overlap.table.loc[0, "stadtteil_nr"] == max(areas, key=areas.get)
    assert point.table.loc[0, "stadtteil_nr"] in ("01", "02")
    geometry = json.loads(overlap.table.loc[0, "geometry"])  # published in WGS84
    assert 13.7 < geometry["coordinates"][0][0][0] < 13.8
    assert pd.isna(overlap.table.loc[1, "stadtteil"])
    assert overlap.warnings == ["row 2: field 'geometry': empty or null geometry"]


def test_geojson_resource_opens_in_geopandas_with_extent_and_districts():
    table = _points([13.7416, 13.8694, None], [51.0519, 51.0085, None])
    got = georeference(table, _with_rule(crs="EPSG:4326"), CITY)
    data = to_geojson(got.table, SCHOOLS)
    frame = gpd.read_file(data)
    assert len(frame) == 3 and str(frame.crs) == "EPSG:4326"
    assert list(frame["stadtteil"][:2]) == ["Innere Altstadt", "Hosterwitz/Pillnitz"]
    assert frame.geometry.iloc[2] is None
    assert json.loads(data)["bbox"] == [13.7416, 51.0085, 13.8694, 51.0519]
    assert spatial_extent(got.table)["coordinates"][0][0] == [13.7416, 51.0085]
    assert covered_districts(got.table) == {
        "stadtteile": ["Hosterwitz/Pillnitz", "Innere Altstadt"],
        "stadtbezirke": ["Altstadt", "Loschwitz"]}


def test_polygon_geojson_is_wound_per_rfc_7946():
    got = georeference(_polygon_table(), _with_rule(geometry="geometry", crs="EPSG:25833"), CITY)
    dataset = _with_rule(geometry="geometry")
    frame = gpd.read_file(to_geojson(got.table, dataset))
    assert frame.geometry.iloc[0].exterior.is_ccw


def test_geocoding_fills_rows_without_coordinates_from_the_register():
    table = _points([None, None, 13.7416], [None, None, 51.0519]).assign(
        street=["Struvestr. 11", "Nirgendwostraße 1", "Egal 1"])
    got = georeference(table, _with_rule(address={"street": "street"}, reverse=True), CITY)
    assert list(got.table["geocode_quality"]) == ["normalised", "none", "source"]
    assert got.table["stadtteil"].iloc[0] == "Seevorstadt-Ost/Großer Garten"
    assert pd.isna(got.table["longitude"].iloc[1])
    assert got.table["nearest_address"].iloc[0] == "Struvestraße 11"


def _real_wahlbezirke() -> pd.DataFrame:
    """The real OGC API answer (365 Wahlbezirke) shaped as the source delivers it: WKT."""
    path = REPO / "tests" / "recordings" / "ogcapi_dresden" / \
        "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson"
    raw = json.loads(path.read_text(encoding="utf-8"))
    shapes = [shapely.geometry.shape({k: v for k, v in f["geometry"].items() if k != "crs"})
              for f in raw["features"]]
    inside = [s.representative_point() for s in shapes]
    return pd.DataFrame({
        "feature_id": [f["id"] for f in raw["features"]],
        "wahlbezirk_nr": [f["properties"]["wb"] for f in raw["features"]],
        "wahlbezirk": [f["properties"]["wb_text"] for f in raw["features"]],
        "geometry_wkt": [s.wkt for s in shapes],
        "longitude": [p.x for p in inside], "latitude": [p.y for p in inside]})


def test_real_wahlbezirke_are_assigned_by_overlap_and_keep_their_polygons():
    wahlbezirke = load_dataset("wahlbezirke-dresden", REPO)
    table = _real_wahlbezirke()
    got = georeference(table, wahlbezirke, CITY).table
    assert len(got) == 365 and got["stadtteil"].notna().all()
    # The Wahlbezirk number starts with its Stadtteil's code (read from the layer's `wb`):
    # overlap gets nearly all right; a few Wahlbezirke straddle a Stadtteil border.
    agree = (got["wahlbezirk_nr"].str[:2] == got["stadtteil_nr"]).mean()
    assert agree > 0.95
    assert got["geometry_wkt"].str.match(r"^(MULTI)?POLYGON \(").all()  # still WKT, in WGS84
    # The GeoJSON resource carries the polygons, and the extent encloses them, not just points.
    frame = gpd.read_file(to_geojson(got, wahlbezirke))
    assert set(frame.geom_type) == {"Polygon", "MultiPolygon"}
    assert all(g.exterior.is_ccw for g in frame.geometry if g.geom_type == "Polygon")
    w, s, e, n = shapely.total_bounds([shapely.from_wkt(v) for v in table["geometry_wkt"]])
    ring = spatial_extent(got, wahlbezirke)["coordinates"][0]
    assert ring[0] == [round(w, 6), round(s, 6)] and ring[2] == [round(e, 6), round(n, 6)]
    assert (ring[0][0], ring[2][0]) != (round(got["longitude"].min(), 6),
                                        round(got["longitude"].max(), 6))


def test_schools_without_coordinates_are_geocoded_as_configured():
    records = json.loads((REPO / "tests" / "recordings" / "schools" /
                          "sachsen_schools_schuldatenbank.json").read_text(encoding="utf-8"))
    dresden = [r["buildings"][0] for r in records
               if r["buildings"][0]["community_key"] == "14612000"][:3]
    table = _points([None, dresden[1]["longitude"], None], [None, dresden[1]["latitude"], None])
    table["street"] = [dresden[0]["street"], dresden[1]["street"], "Gibtsnichtweg 99"]
    table["postcode"] = [dresden[0]["postcode"], dresden[1]["postcode"], "01067"]
    got = georeference(table, SCHOOLS, CITY).table  # the dataset's own [georeference] rule
    assert list(got["geocode_quality"]) == ["exact", "source", "none"]
    assert abs(got["longitude"].iloc[0] - dresden[0]["longitude"]) < 1e-6
    assert got["stadtteil"].iloc[0] == "Seevorstadt-Ost/Großer Garten"  # Struvestraße 11
    assert pd.isna(got["longitude"].iloc[2]) and pd.isna(got["stadtteil"].iloc[2])
    assert "geocode_quality" in SCHOOLS.schema.names


def test_projected_output_columns_are_rounded_to_a_millimetre():
    lon, lat = [13.7416, 13.738831783620387], [51.0519, 51.05445972641962]
    got = georeference(_points(lon, lat), _with_rule(lon="longitude", lat="latitude",
                                                     crs="EPSG:4326"), CITY).table
    east, north = transform(lon, lat, "EPSG:4326", "EPSG:25833")
    for column, exact in (("easting", east), ("northing", north)):
        values = got[column].to_numpy(float)
        assert (values == values.round(3)).all()  # no 5701472.482999999
        assert abs(values - exact).max() <= 0.0005 + 1e-9
    assert got["easting"].iloc[1] == pytest.approx(411609.46, abs=0.001)



def test_a_schema_field_georeferencing_is_to_fill_but_does_not_is_a_config_error(tmp_path):
    from odp.run import RunReport, _georeference
    from odp.validate import QuarantineStore, validate_batch

    # The schools' schema asks for geocode_quality; without `address` nothing fills it.
    rule = {k: v for k, v in SCHOOLS.georeference.items() if k != "address"}
    spec = _with_rule(**rule)
    batch = _points([13.7416], [51.0519]).astype("string")
    result = validate_batch(batch, spec, "r1")
    with pytest.raises(ConfigError, match=r"schools-dresden\.toml: the schema's field "
                                          r"'geocode_quality' is odp:derived \"georeference\", "
                                          r"but \[georeference\] fills no such column \(it fills: "
                                          r".*easting, northing"):
        _georeference(spec, CITY, batch, result, QuarantineStore(tmp_path),
                      RunReport(run_id="r1", dataset=spec.name))


@pytest.mark.parametrize("rows", [1, 7, 100, 1000])
def test_a_geojson_written_part_by_part_is_the_whole_tables_byte_for_byte(rows):
    """A large register's GeoJSON is written a part at a time (its features never all held):
    the real 365 Wahlbezirke (polygons) and points with gaps give the bytes of the whole
    table's `to_geojson`, bounding box included, however the rows are cut."""
    import io

    from odp.georeference.output import write_geojson

    wahlbezirke = load_dataset("wahlbezirke-dresden", REPO)
    polygons = georeference(_real_wahlbezirke(), wahlbezirke, CITY).table
    points = _points([13.7416, None, 13.8694, 13.70], [51.0519, None, 51.0085, 51.03])
    for table, dataset in ((polygons, wahlbezirke), (points, SCHOOLS)):
        written = io.BytesIO()
        write_geojson((table.iloc[i:i + rows] for i in range(0, len(table), rows)), written,
                      dataset)
        assert written.getvalue() == to_geojson(table, dataset)
    assert json.loads(to_geojson(points, SCHOOLS))["bbox"] == [13.7, 51.0085, 13.8694, 51.0519]
    empty = io.BytesIO()
    write_geojson([points.iloc[0:0]], empty, SCHOOLS)
    assert json.loads(empty.getvalue()) == {"type": "FeatureCollection", "features": []}
