"""OGC WFS 2.0 GetFeature with GML 3.2 answers, paged with `count`/`startIndex`. Full refresh.

Parameters: see `wfs_features` (its `Args:`).

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
from dataclasses import dataclass, field
from typing import Any, Literal

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


@dataclass(frozen=True)
class GetFeature:
    """What a GetFeature request asks and how its answer is read (see `wfs_features`)."""

    typenames: str | None = None
    stored_query_id: str | None = None
    query: dict[str, str | int | float | bool] = field(default_factory=dict)
    srsname: str | None = None
    count: int = 1000
    output_format: str = "application/gml+xml; version=3.2"
    geometry_property: str | None = None

    def params(self, start: int) -> dict[str, Any]:
        """The query parameters of the page starting at feature `start` (0-based)."""
        params: dict[str, Any] = {"SERVICE": "WFS", "VERSION": "2.0.0",
                                  "REQUEST": "GetFeature", "OUTPUTFORMAT": self.output_format,
                                  "COUNT": self.count, "STARTINDEX": start}
        if self.stored_query_id:
            params["STOREDQUERY_ID"] = self.stored_query_id
            params.update(self.query)
        elif self.typenames:
            params["TYPENAMES"] = self.typenames
        else:
            raise ConfigError("[source] of a wfs dataset needs 'typenames' or 'stored_query_id'")
        if self.srsname:
            params["SRSNAME"] = self.srsname
        return params


def parse_page(body: bytes, request: GetFeature, where: str
               ) -> tuple[list[Any], list[dict[str, Any]], list[Any], str | None]:
    """One GetFeature answer → (ids, properties, geometries, next URL or None)."""
    root = parse_xml(body, where)  # DTDs, entities and network access off
    if _local(root.tag) == "ExceptionReport":
        texts = [" ".join((t.text or "").split()) for t in root.iter(f"{{{OWS}}}ExceptionText")]
        raise SourceError(f"{where}: the service reports an exception: {'; '.join(texts)}")
    if root.tag != f"{{{WFS}}}FeatureCollection":
        raise SourceError(f"{where}: not a WFS 2.0 FeatureCollection (<{_local(root.tag)}>)")
    wanted_srs = request.srsname
    wanted_geometry = request.geometry_property
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


def _decimals(srsname: str | None, body: bytes) -> int | None:
    """Decimals of the representative point: a millimetre (projected) or 1e-8° (degrees)."""
    try:
        srs = srsname or crs_.crs_of_gml(body)
        return crs_.decimals(srs) if srs else None
    except crs_.CrsError:
        return None


def read_features(dataset: Dataset, request: GetFeature | None = None,
                  columns: FeatureColumns | None = None, http: HttpSettings | None = None,
                  *, url: str | None = None, path: str | None = None,
                  max_pages: int = 10000) -> pd.DataFrame:
    """The features as a raw-text table; without `request`, `columns` and `http` (and `url` or
    `path`) they are taken from the dataset's `[source]` table."""
    if request is None:
        source = dataset.source
        request = settings_of(GetFeature, source)
        url, path = source.get("url"), source.get("path")
        max_pages = int(source.get("max_pages", max_pages))
    columns = columns or settings_of(FeatureColumns, dataset.source)
    if file := local_file(dataset.name, {"url": url, "path": path}, dataset.definition_path):
        return _read_file(f"{dataset.name}: {file}", file.read_bytes(), request, columns)
    client = SourceClient(dataset.name, http or HttpSettings.from_source(dataset.source))
    return _read_pages(client, str(url), request, columns, max_pages)


def _read_file(where: str, body: bytes, request: GetFeature,
               columns: FeatureColumns) -> pd.DataFrame:
    """A GetFeature answer saved as a file, read as one page."""
    ids, props, geoms, _ = parse_page(body, request, where)
    return feature_table(ids, props, geoms, columns, where, _decimals(request.srsname, body))


def _read_pages(client: SourceClient, url: str, request: GetFeature, columns: FeatureColumns,
                max_pages: int) -> pd.DataFrame:
    """Every page: startIndex while a page is full, or the collection's `next` link."""
    first = url
    params: dict[str, Any] | None = request.params(0)
    ids: list[Any] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    seen: set[Any] = set()
    for page in range(1, max_pages + 1):
        where = f"{client.dataset}: {url} (page {page})"
        body = client.get(url, params, expect="XML").content
        page_ids, page_props, page_geoms, following = parse_page(body, request, where)
        named = {i for i in page_ids if i is not None}
        if named and named <= seen:  # a server ignoring STARTINDEX would be paged 10,000 times
            raise SourceError(f"{where}: the page repeats features of earlier pages "
                              f"({len(named)} ids, e.g. {sorted(map(str, named))[0]}): the "
                              "server does not page (STARTINDEX / next link ignored)")
        seen |= named
        ids += page_ids
        props += page_props
        geoms += page_geoms
        if following:
            url, params = following, None
        elif len(page_ids) >= request.count:
            params = request.params(len(ids))
        else:
            return feature_table(ids, props, geoms, columns, f"{client.dataset}: {first}",
                                 _decimals(request.srsname, body))
    raise SourceError(f"{client.dataset}: more than {max_pages} pages")


def wfs_features(dataset: Dataset, *, url: str | None = None, path: str | None = None,
                 typenames: str | None = None, stored_query_id: str | None = None,
                 query: dict[str, str | int | float | bool] | None = None,
                 srsname: str | None = None, count: int = 1000,
                 output_format: str = "application/gml+xml; version=3.2",
                 geometry_property: str | None = None, max_pages: int = 10000,
                 id_column: str = "id", rename: dict[str, str] | None = None,
                 geometry_column: str = "geometry",
                 geometry_format: Literal["wkt", "geojson"] = "wkt",
                 point_columns: tuple[str, str] = ("longitude", "latitude"),
                 drop: tuple[str, ...] = (), http: HttpSettings) -> Any:
    """A WFS feature type's features as rows, read whole every run.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        url: the service endpoint (SERVICE=WFS and the rest are added by the source).
        path: instead of `url`: a GetFeature answer saved as a file of the project, read as
            one page (files received by e-mail or on a share).
        typenames: the feature type (e.g. "dog:Kreise").
        stored_query_id: instead of `typenames`: a stored query, its parameters in `query`.
        query: the stored query's parameters (name = value).
        srsname: the CRS asked for, e.g. "urn:ogc:def:crs:EPSG::25833"; every geometry must
            come back in it (another srsName stops the run).
        count: page size; paging goes on with startIndex while a page is full, or follows the
            collection's `next` attribute when the server sends one.
        output_format: the OUTPUTFORMAT asked for (GML 3.2).
        geometry_property: the feature's property holding the geometry (default: the first
            holding one).
        max_pages: a safety stop for paging.
        id_column: the column of the feature id.
        rename: column -> new name.
        geometry_column: the column of the geometry as text.
        geometry_format: "wkt" or "geojson".
        point_columns: the two columns of a point inside each feature (x, y).
        drop: columns not published (names as delivered).
        http: timeouts, retries, deadline and size cap of the requests.
    """
    where = dataset.definition_path
    if not url and not path:
        raise ConfigError(f"{where}: [source] needs 'url' or 'path'")
    if url and not typenames and not stored_query_id:
        raise ConfigError(f"{where}: [source] of a wfs dataset needs 'typenames' or "
                          "'stored_query_id'")
    request = GetFeature(typenames, stored_query_id, dict(query or {}), srsname, count,
                         output_format, geometry_property)
    columns = FeatureColumns(id_column, geometry_column, geometry_format, tuple(point_columns),
                             dict(rename or {}), tuple(drop))

    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def features() -> Iterator[pd.DataFrame]:
        yield read_features(dataset, request, columns, http, url=url, path=path,
                            max_pages=max_pages)

    return features
