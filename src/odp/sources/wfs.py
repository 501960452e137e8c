"""OGC WFS 2.0 GetFeature with GML 3.2 answers, paged with `count`/`startIndex`. Full refresh.

Parameters (`[source]`, type = "wfs"):
  url               the service endpoint (…?SERVICE=WFS is added by the source)
  typenames         the feature type (e.g. "dog:Kreise"); or `stored_query_id` with its
                    parameters in `query = {name = value}`
  srsname           the CRS asked for, e.g. "urn:ogc:def:crs:EPSG::25833"; every geometry must
                    come back in it (another srsName stops the run)
  count             page size (default 1000); paging goes on with startIndex while a page is
                    full, or follows the collection's `next` attribute when the server sends one
  geometry_property the feature's property holding the geometry (default: the first holding one)
  max_pages         a safety stop (default 10000)
  id_column, rename, geometry_column, geometry_format, point_columns — see odp.sources.features

  path              instead of url: a GetFeature answer saved as a file (relative to the
                    project), read as one page — for files received by e-mail or on a share

GML: Point, LineString, Polygon (with holes), LinearRing, MultiPoint, MultiCurve,
MultiLineString, MultiSurface, MultiPolygon; `pos`/`posList`/`coordinates`; srsDimension 3 keeps
x and y. Any srsName pyproj knows (URN, URL or `EPSG:` form). Axis order
(odp.georeference.crs.gml_axis_order): `axisLabels` wins, a URN/URL srsName means the EPSG axis
order (latitude first for EPSG:4326/4258, northing first for EPSG:3044 or 31468; easting first
for EPSG:25832/25833), a short `EPSG:` form x = east; when every position lies in the CRS's area
of use only the other way round the axes are swapped and the log says so. Coordinates are
written x = east, y = north; projected ones rounded to a millimetre.
`numberReturned` is not trusted (some servers send 0 with features present): members are counted.
Answers are parsed with DTDs, entities and network access off (odp.sources.safexml).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.georeference import crs as crs_
from odp.sources.features import FeatureColumns, feature_table
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.local import local_file
from odp.sources.safexml import parse_xml
from odp.sources.settings import settings_of
from odp.spec import Dataset

GML = "http://www.opengis.net/gml/3.2"
WFS = "http://www.opengis.net/wfs/2.0"
OWS = "http://www.opengis.net/ows/1.1"
_GEOMETRIES = {"Point", "LineString", "Polygon", "LinearRing", "MultiPoint", "MultiCurve",
               "MultiLineString", "MultiSurface", "MultiPolygon", "Surface", "Curve"}
log = logging.getLogger("odp.sources.wfs")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_gml_geometry(element: ET.Element) -> bool:
    return element.tag.startswith(f"{{{GML}}}") and _local(element.tag) in _GEOMETRIES


def _coordinates(element: ET.Element, swap: bool, where: str) -> list[tuple[float, float]]:
    """The coordinates of a Point/LineString/LinearRing element."""
    dim = int(element.get("srsDimension") or 2)
    pos_list = element.find(f"{{{GML}}}posList")
    try:
        if pos_list is not None:
            dim = int(pos_list.get("srsDimension") or dim)
            values = [float(v) for v in (pos_list.text or "").split()]
        elif (legacy := element.find(f"{{{GML}}}coordinates")) is not None:
            values = [float(v) for pair in (legacy.text or "").split()
                      for v in pair.split(",")[:2]]
            dim = 2
        else:
            values = [float(v) for pos in element.iter(f"{{{GML}}}pos")
                      for v in (pos.text or "").split()[:dim]]
    except ValueError as exc:
        raise SourceError(f"{where}: malformed coordinates ({exc})") from None
    if not values or len(values) % dim:
        raise SourceError(f"{where}: {len(values)} coordinate values for dimension {dim}")
    points = [(values[i], values[i + 1]) for i in range(0, len(values), dim)]
    return [(y, x) for x, y in points] if swap else points


def to_shape(element: ET.Element, swap: bool, where: str) -> Any:
    """A GML 3.2 geometry element → a shapely geometry."""
    from shapely.geometry import (
        LineString,
        MultiLineString,
        MultiPoint,
        MultiPolygon,
        Point,
        Polygon,
    )

    kind = _local(element.tag)
    if kind == "Point":
        return Point(_coordinates(element, swap, where)[0])
    if kind in ("LineString", "Curve"):
        return LineString(_coordinates(element, swap, where))
    if kind in ("Polygon", "Surface"):
        rings = [
            _coordinates(ring, swap, where)
            for part in ("exterior", "interior")
            for holder in element.iter(f"{{{GML}}}{part}")
            for ring in holder.iter(f"{{{GML}}}LinearRing")
        ]
        if not rings:
            raise SourceError(f"{where}: a Polygon without an exterior ring")
        return Polygon(rings[0], rings[1:])
    if kind == "LinearRing":
        return Polygon(_coordinates(element, swap, where))
    members = [child for holder in element for child in holder if _is_gml_geometry(child)]
    shapes = [to_shape(m, swap, where) for m in members]
    if kind == "MultiPoint":
        return MultiPoint(shapes)
    if kind in ("MultiCurve", "MultiLineString"):
        return MultiLineString(shapes)
    polygons = [p for s in shapes for p in getattr(s, "geoms", [s])]
    return MultiPolygon(polygons)


def parse_page(body: bytes, source: dict[str, Any], where: str
               ) -> tuple[list[Any], list[dict[str, Any]], list[Any], str | None]:
    """One GetFeature answer → (ids, properties, geometries, next URL or None)."""
    root = parse_xml(body, where)  # DTDs, entities and network access off
    if _local(root.tag) == "ExceptionReport":
        texts = [" ".join((t.text or "").split()) for t in root.iter(f"{{{OWS}}}ExceptionText")]
        raise SourceError(f"{where}: the service reports an exception: {'; '.join(texts)}")
    if root.tag != f"{{{WFS}}}FeatureCollection":
        raise SourceError(f"{where}: not a WFS 2.0 FeatureCollection (<{_local(root.tag)}>)")
    wanted_srs = source.get("srsname")
    wanted_geometry = source.get("geometry_property")
    ids: list[Any] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    orders: dict[tuple[str, str], bool] = {}
    for n, member in enumerate(root.iter(f"{{{WFS}}}member"), start=1):
        feature = next(iter(member), None)
        if feature is None:
            raise SourceError(f"{where}: member {n} is empty")
        at = f"{where}: feature {n} ({feature.get(f'{{{GML}}}id')})"
        values: dict[str, Any] = {}
        geometry = None
        for prop in feature:
            name = _local(prop.tag)
            shapes = [e for e in prop.iter() if _is_gml_geometry(e)]
            if not shapes:
                text = " ".join(" ".join(prop.itertext()).split())
                values[name] = text if text else prop.get("{http://www.w3.org/1999/xlink}href")
                continue
            if geometry is not None or (wanted_geometry and name != wanted_geometry):
                continue
            element = shapes[0]
            srs = element.get("srsName") or root.get("srsName") or ""
            if wanted_srs and srs and srs != wanted_srs:
                raise SourceError(
                    f"{at}: field '{name}': geometry in {srs}, asked for {wanted_srs}"
                )
            swap = _north_first(element, root, srs, orders, f"{at}: field '{name}'")
            geometry = _rounded(to_shape(element, swap, f"{at}: field '{name}'"), srs)
        ids.append(feature.get(f"{{{GML}}}id"))
        props.append(values)
        geoms.append(geometry)
    return ids, props, geoms, root.get("next")


def _north_first(element: ET.Element, root: ET.Element, srs: str,
                 orders: dict[tuple[str, str], bool], where: str) -> bool:
    """Whether this geometry's coordinates are written north first: decided once per srsName
    and axisLabels of a page (by the first geometry's positions too), and logged."""
    labels = element.get("axisLabels") or root.get("axisLabels") or ""
    if (srs, labels) not in orders:
        if not srs:
            orders[(srs, labels)] = False
            return False
        try:
            order = crs_.gml_axis_order(srs, labels or None)
        except crs_.CrsError as exc:
            raise SourceError(f"{where}: srsName: {exc}") from None
        first = [p for e in element.iter() if _local(e.tag) in ("Point", "LinearRing", "LineString")
                 for p in _coordinates(e, False, where)][:50]
        order = crs_.settle_axis_order(order, [p[0] for p in first], [p[1] for p in first])
        log.info("%s: %s", where.split(": feature")[0], order.describe)
        orders[(srs, labels)] = order.north_first
    return orders[(srs, labels)]


def _rounded(geometry: Any, srs: str) -> Any:
    """Projected coordinates to a millimetre (no float noise such as 5701472.482999999)."""
    import numpy as np
    import shapely

    if not srs or not crs_.is_projected(srs):
        return geometry
    return shapely.transform(geometry, lambda c: np.round(c, crs_.PROJECTED_DECIMALS))


def _decimals(source: dict[str, Any], body: bytes) -> int | None:
    """Decimals of the representative point: a millimetre (projected) or 1e-8° (degrees)."""
    try:
        srs = source.get("srsname") or crs_.crs_of_gml(body)
        return crs_.decimals(srs) if srs else None
    except crs_.CrsError:
        return None


def _params(source: dict[str, Any], start: int) -> dict[str, Any]:
    params: dict[str, Any] = {"SERVICE": "WFS", "VERSION": "2.0.0", "REQUEST": "GetFeature",
                              "OUTPUTFORMAT": source.get("output_format",
                                                         "application/gml+xml; version=3.2"),
                              "COUNT": int(source.get("count", 1000)), "STARTINDEX": start}
    if stored := source.get("stored_query_id"):
        params["STOREDQUERY_ID"] = stored
        params.update(source.get("query", {}))
    elif typenames := source.get("typenames"):
        params["TYPENAMES"] = typenames
    else:
        raise ConfigError("[source] of a wfs dataset needs 'typenames' or 'stored_query_id'")
    if srs := source.get("srsname"):
        params["SRSNAME"] = srs
    return params


def read_features(dataset: Dataset) -> pd.DataFrame:
    source = dataset.source
    columns = settings_of(FeatureColumns, source)
    if file := local_file(dataset.name, source, dataset.definition_path):
        where = f"{dataset.name}: {file}"
        body = file.read_bytes()
        ids, props, geoms, _ = parse_page(body, source, where)
        return feature_table(ids, props, geoms, columns, where, _decimals(source, body))
    client = SourceClient(dataset.name, HttpSettings.from_source(source))
    url, count = source["url"], int(source.get("count", 1000))
    params: dict[str, Any] | None = _params(source, 0)
    ids: list[Any] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for page in range(1, int(source.get("max_pages", 10000)) + 1):
        where = f"{dataset.name}: {url} (page {page})"
        body = client.get(url, params, expect="XML").content
        page_ids, page_props, page_geoms, following = parse_page(body, source, where)
        ids += page_ids
        props += page_props
        geoms += page_geoms
        if following:
            url, params = following, None
        elif len(page_ids) >= count:
            params = _params(source, len(ids))
        else:
            return feature_table(ids, props, geoms, columns, f"{dataset.name}: {source['url']}",
                                 _decimals(source, body))
    raise SourceError(f"{dataset.name}: more than {source.get('max_pages', 10000)} pages")


def wfs_features(dataset: Dataset) -> Any:
    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def features() -> Iterator[pd.DataFrame]:
        yield read_features(dataset)

    return features
