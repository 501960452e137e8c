"""Build Leipzig's reference layers from the real Ortsteile file (see SOURCES.md).

    uv run python reference/leipzig/build_reference.py path/to/leipzig-districts.json

The source (mrzmyr/leipzig-maps · public/data/leipzig-districts.json, blob cbf7a6be) holds the
63 Ortsteile with their official two-digit code (`key`, first digit = Stadtbezirk) and name
(`title`), but writes every position latitude first although it declares CRS84 (longitude
first). This script changes nothing but that: positions swapped to longitude, latitude and
rounded to 7 decimals (~1 cm), properties renamed to the city's `ot_nr` / `ortsteil`, written
compactly. The city boundary is the union of the Ortsteile, simplified to ~15 m.
Deterministic: a rerun writes the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DECIMALS = 7  # ~1 cm at 51° N: finer than the source's survey, smaller files
SIMPLIFY = 0.0002  # degrees (~15 m) for the boundary: it only decides "farther than buffer_m
                   # (2 km) outside the city", like Dresden's simplified boundary


def _swapped(ring: list[list[float]]) -> list[list[float]]:
    return [[round(lon, DECIMALS), round(lat, DECIMALS)] for lat, lon in ring]


def ortsteile(source: dict) -> dict:
    features = []
    for feature in sorted(source["features"], key=lambda f: f["properties"]["key"]):
        geometry = feature["geometry"]
        assert geometry["type"] == "Polygon", geometry["type"]
        features.append({
            "type": "Feature",
            "properties": {"ot_nr": feature["properties"]["key"],
                           "ortsteil": feature["properties"]["title"]},
            "geometry": {"type": "Polygon",
                         "coordinates": [_swapped(ring) for ring in geometry["coordinates"]]},
        })
    return {"type": "FeatureCollection", "name": "ortsteile_leipzig", "features": features}


def boundary(layer: dict) -> dict:
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    union = unary_union([shape(f["geometry"]).buffer(0) for f in layer["features"]])
    union = union.buffer(0.00001).buffer(-0.00001)  # close slivers between neighbours (~1 m)
    union = union.simplify(SIMPLIFY, preserve_topology=True)
    geometry = json.loads(json.dumps(mapping(union)))
    return {"type": "FeatureCollection", "name": "stadtgrenze_leipzig", "features": [
        {"type": "Feature", "properties": {"name": "Leipzig", "ags": "14713000"},
         "geometry": _rounded(geometry)}]}


def _rounded(value):
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main(source_path: str) -> None:
    source = json.loads(Path(source_path).read_text(encoding="utf-8"))
    layer = ortsteile(source)
    (HERE / "ortsteile.geojson").write_text(
        json.dumps(layer, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    (HERE / "city_boundary.geojson").write_text(
        json.dumps(boundary(layer), ensure_ascii=False, separators=(",", ":")) + "\n",
        encoding="utf-8")
    print(f"{len(layer['features'])} Ortsteile, boundary written")


if __name__ == "__main__":
    main(sys.argv[1])
