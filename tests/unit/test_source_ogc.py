"""OGC API Features and WFS 2.0 against the replay server: the REAL Dresden Wahlbezirke and
Hamburg WFS answers, CONSTRUCTED paged answers (tests/recordings/{ogcapi_dresden,wfs}/README.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import shapely

from odp.errors import SourceError
from odp.sources.ogcapi import parse_page, read_collection
from odp.sources.wfs import read_features
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

ITEMS = "https://kommisdd.dresden.de/net4/public/ogcapi/collections/L703/items"
REAL = RECORDINGS / "ogcapi_dresden" / "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson"
WAHLBEZIRKE = "wahlbezirke-dresden"


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    for env in source_env(tmp_path, monkeypatch, [WAHLBEZIRKE]):
        yield {"dataset": load_dataset(env["names"][WAHLBEZIRKE], env["root"]),
               "server": env["server"]}


def _with(dataset, **source):
    return replace(dataset, source={**dataset.source, **source})


def test_real_wahlbezirke_one_page_values_and_points_inside(env):
    table = read_collection(env["dataset"])
    assert len(table) == 365 and table["wahlbezirk_nr"].is_unique
    first = table.iloc[0]  # the first feature of the file: id 12, wb 04300
    assert (first["feature_id"], first["wahlbezirk_nr"]) == ("12", "04300")
    assert first["wahlbezirk"] == "Wilsdruffer Vorstadt (Maternistr.)"
    assert first["geometry_wkt"].startswith("POLYGON ((13.71914857394517 51.05045337374874, ")
    raw = json.loads(REAL.read_text(encoding="utf-8"))["features"]
    assert sum(t.startswith("MULTIPOLYGON") for t in table["geometry_wkt"]) == 3
    for row, feature in zip(table.itertuples(), raw, strict=True):
        polygon = shapely.geometry.shape(feature["geometry"])
        point = shapely.Point(float(row.longitude), float(row.latitude))
        assert polygon.contains(point), row.wahlbezirk_nr  # representative point lies inside
    asked = [r.url for r in env["server"].requests]
    assert len(asked) == 1 and "limit=1000" in asked[0]


def test_paging_follows_next_links_absolute_and_relative(env):
    env["server"].scenario = "paged"
    table = read_collection(_with(env["dataset"], limit=2))
    assert list(table["wahlbezirk_nr"]) == [f["properties"]["wb"] for f in
                                            json.loads(REAL.read_text())["features"][:5]]
    asked = [r.url for r in env["server"].requests]
    assert len(asked) == 3
    assert "offset=2" in asked[1] and "offset=4" in asked[2]


def test_fewer_features_than_number_matched_stops_the_run(env):
    env["server"].scenario = "paged"
    page = json.loads((RECORDINGS / "ogcapi_dresden" / "paged_offset_0.geojson").read_text())
    page["links"] = [link for link in page["links"] if link["rel"] != "next"]
    env["server"].override(ITEMS, 200, json.dumps(page).encode(), "application/geo+json")
    with pytest.raises(SourceError, match="read 2 features, the server matched 5"):
        read_collection(env["dataset"])


def test_5xx_then_success_retries(env):
    env["server"].fail_next(ITEMS, [503, 429], retry_after=1)
    assert len(read_collection(env["dataset"])) == 365
    assert len(env["server"].requests) == 3


def test_malformed_response_is_one_line_naming_the_url(env):
    body = REAL.read_bytes()[:5000]  # cut off mid-way
    env["server"].override(ITEMS, 200, body, "application/geo+json")
    with pytest.raises(SourceError) as caught:
        read_collection(env["dataset"])
    message = str(caught.value)
    assert "\n" not in message and f"{ITEMS}?limit=1000 (page 1): malformed JSON" in message


def test_malformed_geometry_names_the_feature(env):
    raw = json.loads(REAL.read_text(encoding="utf-8"))
    raw["features"][3]["geometry"]["coordinates"] = "broken"
    env["server"].override(ITEMS, 200, json.dumps(raw).encode(), "application/geo+json")
    with pytest.raises(SourceError, match=r"feature 4 \(id \d+\): field 'geometry': malformed"):
        read_collection(env["dataset"])


def test_crs_parameter_is_sent_and_a_different_answer_refused(env):
    crs = "http://www.opengis.net/def/crs/EPSG/0/25833"
    env["server"].override(ITEMS, 200, REAL.read_bytes(), "application/geo+json")
    # The override sends no Content-Crs header: accepted, and the request carried `crs`.
    read_collection(_with(env["dataset"], crs=crs))
    assert "crs=http" in env["server"].requests[-1].url


# --- WFS ---------------------------------------------------------------------------------------


def _wfs(env, **source):
    return replace(env["dataset"], source={"type": "wfs", **source})


def test_wfs_real_hamburg_stored_query_in_25832(env):
    dataset = _wfs(env, url="https://geodienste.hamburg.de/HH_WFS_GAGES",
                   stored_query_id="findeStadtteil", query={"stadtteilname": "bar"},
                   srsname="urn:ogc:def:crs:EPSG::25832", geometry_property="geographicExtent")
    table = read_features(dataset)
    # numberReturned="0" in the answer, yet 2 members: they are counted, not believed
    assert list(table["geographicIdentifier"]) == ["Barmbek-Nord", "Barmbek-Süd"]
    assert table["id"].iloc[0] == "HH_KRS_91435"
    assert table["geometry"].iloc[0] == (
        "POLYGON ((568356.869 5937678.721, 570782.596 5937678.721, 570782.596 5940414.428, "
        "568356.869 5940414.428, 568356.869 5937678.721))"
    )
    assert float(table["longitude"].iloc[0]) == pytest.approx(569569.73, abs=2000)
    asked = env["server"].requests[0].url
    assert "STOREDQUERY_ID=findeStadtteil" in asked and "STARTINDEX=0" in asked


def test_wfs_refuses_geometries_in_another_crs_than_asked(env):
    dataset = _wfs(env, url="https://geodienste.hamburg.de/HH_WFS_GAGES",
                   stored_query_id="findeStadtteil", query={"stadtteilname": "bar"},
                   srsname="urn:ogc:def:crs:EPSG::25833")
    with pytest.raises(SourceError, match=r"feature 1 \(HH_KRS_91435\): field "
                                          r"'geographicExtent': geometry in urn:ogc:def:crs:"
                                          r"EPSG::25832, asked for urn:ogc:def:crs:EPSG::25833"):
        read_features(dataset)


def test_wfs_pages_with_start_index_in_25833(env):
    dataset = _wfs(env, url="https://wfs.dresden.example/wfs", typenames="wb:Wahlbezirke",
                   srsname="urn:ogc:def:crs:EPSG::25833", count=2,
                   rename={"wb": "wahlbezirk_nr"})
    table = read_features(dataset)
    assert list(table["wahlbezirk_nr"]) == ["04300", "04400", "04500"]
    starts = [r.url.split("STARTINDEX=")[1].split("&")[0] for r in env["server"].requests]
    assert starts == ["0", "2"]
    # easting/northing order kept: the representative point lies in Dresden in UTM 33N
    assert 405000 < float(table["longitude"].iloc[0]) < 420000
    assert 5650000 < float(table["latitude"].iloc[0]) < 5665000


def test_wfs_malformed_xml_and_exception_report(env):
    url = "https://wfs.dresden.example/wfs"
    dataset = _wfs(env, url=url, typenames="wb:Wahlbezirke", count=2)
    env["server"].override(url, 200, b"<wfs:FeatureCollection><wfs:member>", "application/xml")
    with pytest.raises(SourceError, match=r"\(page 1\): malformed XML at line 1, column \d+"):
        read_features(dataset)
    env["server"].clear_faults()
    report = (b'<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception>'
              b"<ows:ExceptionText>Unknown type wb:X</ows:ExceptionText></ows:Exception>"
              b"</ows:ExceptionReport>")
    env["server"].override(url, 200, report, "application/xml")
    with pytest.raises(SourceError, match="the service reports an exception: Unknown type wb:X"):
        read_features(dataset)


@pytest.mark.parametrize("geometry", [True, 1, "POINT (1 2)", [13.7, 51.0]])
def test_a_geometry_that_is_not_an_object_is_one_line_naming_the_feature(geometry):
    page = {"features": [{"type": "Feature", "id": 7, "geometry": geometry, "properties": {}}]}
    with pytest.raises(SourceError, match=r"^page: feature 1 \(id 7\): field 'geometry': not a "
                                          r"GeoJSON geometry object$"):
        parse_page(page, "page")
