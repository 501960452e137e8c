"""Search on the local portal is Apache Solr with CKAN's own schema (`odp_dev.portal.solr`).

CKAN's schema stems its `text` fields (title, notes, tags, the catch-all `text`) with Solr's
*English* Snowball stemmer, then folds accents: there "Schule" did not find "Schulen" nor
"Haltestelle" "Haltestellen" (English has no "-en" plural). The portal is German, so its copy of
the schema changes that one filter to Snowball's German2 stemmer (`odp_dev.portal.solr.
german_stemming`); everything else stays CKAN's. Measured here: singular and plural find each
other ("Schule"/"Schulen", "Wasserstand"/"Wasserstände", "Parkhaus"/"Parkhäuser"), and German2
reads "ss" and "ß", "ae" and "ä" alike ("Strasse" finds "Straße").

Spatial search (ckanext-spatial, `solr-bbox`): `ext_bbox` finds the datasets whose `spatial`
extent, as the publisher computes it from the rows, intersects the box.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pandas as pd
import pytest
import requests
import shapely
from shapely.geometry import shape

from odp.georeference.output import spatial_extent
from odp_dev.portal import settings, solr, stack

pytestmark = pytest.mark.integration

STADTTEILE = Path(__file__).resolve().parents[2] / "reference" / "dresden" / "stadtteile.geojson"


def _name(prefix: str) -> str:
    return f"test-{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def organization(ckan: ckanapi.RemoteCKAN) -> Iterator[dict]:
    org = ckan.action.organization_create(name=_name("solr"))
    yield org
    for pkg in ckan.action.package_search(fq=f"owner_org:{org['id']}", rows=1000)["results"]:
        ckan.action.dataset_purge(id=pkg["id"])
    ckan.action.organization_purge(id=org["id"])


def _solr_select(**params: str) -> dict:
    resp = requests.get(
        f"{solr.core_url(settings.ports().solr)}/select", params={**params, "wt": "json"},
        timeout=10,
    )  # fmt: skip
    resp.raise_for_status()
    return resp.json()["response"]


def _search(ckan: ckanapi.RemoteCKAN, org: dict, **params: str) -> list[str]:
    found = ckan.action.package_search(fq=f"owner_org:{org['id']}", rows=100, **params)
    return sorted(pkg["name"] for pkg in found["results"])


def test_solr_is_apache_solr_with_ckans_schema(portal: stack.PortalInfo) -> None:
    url = solr.core_url(settings.ports().solr)
    schema = requests.get(f"{url}/schema?wt=schema.xml", timeout=10)
    assert schema.ok
    assert '<schema name="ckan-2.12"' in schema.text
    system = requests.get(f"{url}/admin/system?wt=json", timeout=10).json()
    assert system["lucene"]["solr-spec-version"].startswith("9.")
    assert url.startswith("http://127.0.0.1:")


def test_a_new_dataset_is_in_solr_at_once(
    ckan: ckanapi.RemoteCKAN, organization: dict
) -> None:
    name = _name("ds")
    ckan.action.package_create(name=name, title="Pegelstände", owner_org=organization["id"])
    docs = _solr_select(q=f'name:"{name}"', fl="name,title,site_id")
    assert docs["numFound"] == 1
    assert docs["docs"][0]["title"] == "Pegelstände"
    ckan.action.dataset_purge(id=name)
    assert _solr_select(q=f'name:"{name}"')["numFound"] == 0


def test_the_schema_stems_german_in_index_and_query(portal: stack.PortalInfo) -> None:
    url = solr.core_url(settings.ports().solr)
    schema = requests.get(f"{url}/schema/fieldtypes/text?wt=json", timeout=10).json()
    analyzers = schema["fieldType"]
    for kind in ("indexAnalyzer", "queryAnalyzer"):
        stemmers = [f for f in analyzers[kind]["filters"]
                    if f["class"] == "solr.SnowballPorterFilterFactory"]
        assert [f["language"] for f in stemmers] == ["German2"], kind


@pytest.mark.parametrize(("title", "query"), [
    ("Schule in Dresden", "Schulen"),
    ("Schulen in Dresden", "Schule"),
    ("Haltestellen im VVO", "Haltestelle"),
    ("Wasserstände der Elbe", "Wasserstand"),
    ("Parkhäuser in Dresden", "Parkhaus"),
    ("Lärm an der Straße", "Strasse"),
])
def test_a_german_word_finds_its_other_forms_in_solr_and_through_package_search(
    ckan: ckanapi.RemoteCKAN, organization: dict, title: str, query: str
) -> None:
    name = _name("de")
    ckan.action.package_create(name=name, title=title, owner_org=organization["id"])
    direct = _solr_select(q=f"text:{query}", fq=f"owner_org:{organization['id']}", fl="name")
    assert [doc["name"] for doc in direct["docs"]] == [name]
    assert _search(ckan, organization, q=query) == [name]


def test_a_different_word_with_the_same_beginning_is_not_found(
    ckan: ckanapi.RemoteCKAN, organization: dict
) -> None:
    ckan.action.package_create(name=_name("schulden"), title="Schulden der Stadt",
                               owner_org=organization["id"])
    assert _search(ckan, organization, q="Schule") == []


def _stadtteile() -> dict[str, shapely.Geometry]:
    features = json.loads(STADTTEILE.read_text())["features"]
    return {f["properties"]["name"]: shape(f["geometry"]) for f in features}


def _rows_inside(area: shapely.Geometry, count: int = 5) -> pd.DataFrame:
    """`count` points inside `area` (rows with longitude/latitude, as the publisher gets them)."""
    west, south, east, north = area.bounds
    points = [area.representative_point()]
    steps = 20
    for i in range(1, steps):
        for j in range(1, steps):
            point = shapely.Point(
                west + (east - west) * i / steps, south + (north - south) * j / steps
            )
            if len(points) < count and area.contains(point):
                points.append(point)
    return pd.DataFrame({"longitude": [p.x for p in points], "latitude": [p.y for p in points]})


def _create_with_rows(
    ckan: ckanapi.RemoteCKAN, org: dict, prefix: str, rows: pd.DataFrame
) -> str:
    name = _name(prefix)
    extent = spatial_extent(rows)  # the publisher's `spatial` extra
    assert extent is not None
    ckan.action.package_create(
        name=name, owner_org=org["id"],
        extras=[{"key": "spatial", "value": json.dumps(extent, separators=(",", ":"))}],
    )  # fmt: skip
    return name


def test_a_box_around_one_stadtteil_finds_the_dataset_with_rows_there_only(
    ckan: ckanapi.RemoteCKAN, organization: dict
) -> None:
    areas = _stadtteile()
    altstadt, klotzsche = areas["Innere Altstadt"], areas["Klotzsche"]
    assert not shapely.box(*altstadt.bounds).intersects(shapely.box(*klotzsche.bounds))
    in_altstadt = _create_with_rows(ckan, organization, "altstadt", _rows_inside(altstadt))
    _create_with_rows(ckan, organization, "klotzsche", _rows_inside(klotzsche))

    box = ",".join(f"{v:.6f}" for v in altstadt.bounds)  # minx,miny,maxx,maxy
    assert _search(ckan, organization, ext_bbox=box) == [in_altstadt]

    indexed = _solr_select(q=f'name:"{in_altstadt}"', fl="minx,miny,maxx,maxy")["docs"][0]
    west, south, east, north = altstadt.bounds
    assert west <= indexed["minx"] <= indexed["maxx"] <= east
    assert south <= indexed["miny"] <= indexed["maxy"] <= north
