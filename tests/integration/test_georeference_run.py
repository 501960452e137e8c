"""A run of the school register with broken coordinates, against the real local CKAN: rows at
(0, 0), with swapped lat/lon or far outside Dresden land in the quarantine with their reason;
the rest is published with districts, and its GeoJSON opens in geopandas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from odp.georeference import covered_districts, to_geojson
from odp.run import run_dataset
from odp.spec import load_city, load_dataset
from odp.validate import QuarantineStore
from tests.helpers import RECORDINGS, make_project

pytestmark = pytest.mark.integration

SCHOOLS = "schools-dresden"


def _broken_register(folder: Path) -> tuple[Path, int]:
    """The REAL register with three Dresden buildings' coordinates broken (constructed here)."""
    schools = json.loads((RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json")
                         .read_text(encoding="utf-8"))
    dresden = [b for s in schools for b in s["buildings"] if b["community_key"] == "14612000"]
    first, second, third = dresden[:3]
    first["longitude"], first["latitude"] = first["latitude"], first["longitude"]  # swapped
    second["longitude"], second["latitude"] = 0.0, 0.0
    third["longitude"], third["latitude"] = 13.4050, 52.5200  # Berlin
    path = folder / "schools_broken.json"
    path.write_text(json.dumps(schools, ensure_ascii=False), encoding="utf-8")
    return path, len(dresden)


def test_broken_coordinates_are_quarantined_with_reasons_and_the_rest_published(
        tmp_path, portal, ckan, monkeypatch):
    root, names = make_project(tmp_path, [SCHOOLS])
    register, total = _broken_register(tmp_path)
    definition = root / "pipelines" / f"{names[SCHOOLS]}.toml"
    text = re.sub(r'^url = ".*"$', f'path = "{register}"', definition.read_text(), flags=re.M)
    definition.write_text(text)
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    monkeypatch.setenv("CKAN_API_TOKEN", portal.token())
    monkeypatch.setenv("ODP_PORTAL_HOME", str(portal.home))
    name = names[SCHOOLS]

    report = run_dataset(name, root, load_city(root))
    assert report.status == "ok", report.error
    assert report.quarantined == 3 and report.inserted == total - 3

    found = QuarantineStore(tmp_path / "state").list(name)
    assert sorted(found["rule"]) == ["georeference:null_island", "georeference:outside_city",
                                     "georeference:swapped_coordinates"]
    reasons = " | ".join(found["reason"])
    assert "lies 151.2 km outside Dresden" in reasons and "swapped" in reasons
    assert all(json.loads(raw)["longitude"] is not None for raw in found["raw"])

    package = ckan.action.package_show(id=name)
    resource = next(r for r in package["resources"] if r.get("odp_role") == "table")
    rows = ckan.action.datastore_search(resource_id=resource["id"], limit=1000)["records"]
    assert len(rows) == total - 3 and all(r["stadtbezirk"] for r in rows)

    table = pd.DataFrame(rows).drop(columns=["_id"])
    frame = gpd.read_file(to_geojson(table, load_dataset(name, root)))
    assert len(frame) == total - 3 and str(frame.crs) == "EPSG:4326"
    assert frame.geometry.within(frame.geometry.union_all().envelope.buffer(0.001)).all()
    assert len(covered_districts(table)["stadtbezirke"]) == 10
