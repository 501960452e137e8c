"""Builds the CONSTRUCTED WFS 2.0 / GML 3.2 pages in EPSG:25833 from REAL polygons transformed
from CRS84 with pyproj (2 decimals): three Wahlbezirke (tests/recordings/ogcapi_dresden) and the
64 Stadtteile (reference/dresden/stadtteile.geojson). Deterministic: rerun to reproduce the files
byte-identically. See README.md."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

from pyproj import Transformer

HERE = Path(__file__).parent
REAL = HERE.parent / "ogcapi_dresden" / "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson"
STADTTEILE = HERE.parents[2] / "reference" / "dresden" / "stadtteile.geojson"
SRS = "urn:ogc:def:crs:EPSG::25833"
PAGE = 2
STADTTEILE_PAGE = 25
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
    'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:wb="urn:example:wahlbezirke" '
    'timeStamp="2024-10-15T18:18:06Z" numberMatched="{matched}" numberReturned="{returned}">\n'
)

STADTTEILE_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
    'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:sg="urn:example:stadtgliederung" '
    'timeStamp="2024-11-21T05:00:00Z" numberMatched="{matched}" numberReturned="{returned}">\n'
)


def ring(coords: list[list[float]], to_utm: Transformer) -> str:
    xs, ys = to_utm.transform([c[0] for c in coords], [c[1] for c in coords])
    return " ".join(f"{x:.2f} {y:.2f}" for x, y in zip(xs, ys, strict=True))


def member(feature: dict, to_utm: Transformer) -> str:
    rings = feature["geometry"]["coordinates"]
    fid = f"Wahlbezirke.{feature['id']}"
    interiors = "".join(
        f"<gml:interior><gml:LinearRing><gml:posList>{ring(r, to_utm)}</gml:posList>"
        "</gml:LinearRing></gml:interior>" for r in rings[1:]
    )
    return (
        f'<wfs:member>\n<wb:Wahlbezirke gml:id="{fid}">\n'
        f"<wb:wb>{escape(feature['properties']['wb'])}</wb:wb>\n"
        f"<wb:wb_text>{escape(feature['properties']['wb_text'])}</wb:wb_text>\n"
        f'<wb:geom><gml:Polygon gml:id="{fid}.geom" srsName="{SRS}" srsDimension="2">'
        f"<gml:exterior><gml:LinearRing><gml:posList>{ring(rings[0], to_utm)}</gml:posList>"
        f"</gml:LinearRing></gml:exterior>{interiors}</gml:Polygon></wb:geom>\n"
        "</wb:Wahlbezirke>\n</wfs:member>\n"
    )


def polygon(rings: list[list[list[float]]], gid: str, to_utm: Transformer) -> str:
    interiors = "".join(
        f"<gml:interior><gml:LinearRing><gml:posList>{ring(r, to_utm)}</gml:posList>"
        "</gml:LinearRing></gml:interior>" for r in rings[1:]
    )
    return (
        f'<gml:Polygon gml:id="{gid}"><gml:exterior><gml:LinearRing><gml:posList>'
        f"{ring(rings[0], to_utm)}</gml:posList></gml:LinearRing></gml:exterior>{interiors}"
        "</gml:Polygon>"
    )


def stadtteil(feature: dict, to_utm: Transformer) -> str:
    """One Stadtteil: its real code, name and long name; the MultiPolygon as a MultiSurface.
    Left out: `bez` (equal to `name` in all 64) and `pgsystemro` (an internal row number)."""
    props = feature["properties"]
    fid = f"Stadtteile.{props['blocknr']}"
    members = "".join(
        f"<gml:surfaceMember>{polygon(rings, f'{fid}.geom.{n}', to_utm)}</gml:surfaceMember>"
        for n, rings in enumerate(feature["geometry"]["coordinates"], start=1)
    )
    return (
        f'<wfs:member>\n<sg:Stadtteile gml:id="{fid}">\n'
        f"<sg:blocknr>{escape(props['blocknr'])}</sg:blocknr>\n"
        f"<sg:name>{escape(props['name'])}</sg:name>\n"
        f"<sg:bez_lang>{escape(props['bez_lang'])}</sg:bez_lang>\n"
        f'<sg:geom><gml:MultiSurface gml:id="{fid}.geom" srsName="{SRS}" srsDimension="2">'
        f"{members}</gml:MultiSurface></sg:geom>\n"
        "</sg:Stadtteile>\n</wfs:member>\n"
    )


def write_stadtteile(to_utm: Transformer) -> None:
    """The 64 Stadtteile in file order, pages of STADTTEILE_PAGE (STARTINDEX 0, 25, 50)."""
    features = json.loads(STADTTEILE.read_text(encoding="utf-8"))["features"]
    for start in range(0, len(features), STADTTEILE_PAGE):
        page = features[start:start + STADTTEILE_PAGE]
        body = STADTTEILE_HEAD.format(matched=len(features), returned=len(page))
        body += "".join(stadtteil(f, to_utm) for f in page) + "</wfs:FeatureCollection>\n"
        (HERE / f"stadtteile_25833_start{start}.xml").write_text(body, encoding="utf-8")


def main() -> None:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:25833", always_xy=True)
    write_stadtteile(to_utm)
    real = json.loads(REAL.read_text(encoding="utf-8"))
    features = [f for f in real["features"] if f["geometry"]["type"] == "Polygon"][:3]
    for start in range(0, len(features), PAGE):
        page = features[start:start + PAGE]
        body = HEAD.format(matched=len(features), returned=len(page))
        body += "".join(member(f, to_utm) for f in page) + "</wfs:FeatureCollection>\n"
        (HERE / f"wahlbezirke_25833_start{start}.xml").write_text(body, encoding="utf-8")


if __name__ == "__main__":
    main()
