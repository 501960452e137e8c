"""Geometry checks and repair: reading features in their own CRS, invalid polygons made valid,
RFC 7946 winding order, empty geometries flagged, and points checked against the city's extent
((0, 0), swapped lat/lon, far outside the city) so they can be quarantined with a reason."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.georeference.crs import (
    WGS84,
    AxisOrder,
    CrsError,
    crs_of_geojson,
    crs_of_gml,
    normalise,
    settle_axis_order,
    transform,
)

log = logging.getLogger("odp.georeference")

# Rules of the findings a point check produces (all quarantine the row).
NULL_ISLAND = "georeference:null_island"
SWAPPED = "georeference:swapped_coordinates"
OUTSIDE = "georeference:outside_city"


def read_features(data: bytes, declared_crs: str | None = None) -> Any:
    """GeoJSON (also an OGC API Features items page) or GML → GeoDataFrame in WGS84.
    The CRS is the one the data names (`crs` member, `srsName`), else `declared_crs`, else
    WGS84 for GeoJSON (RFC 7946)."""
    import geopandas as gpd

    text = data.lstrip()
    if text.startswith(b"<"):
        from odp.sources.safexml import parse_xml

        parse_xml(data, "GML")  # a DOCTYPE, entities or external references: refused first
        frame = gpd.read_file(BytesIO(data), DOWNLOAD_SCHEMA="NO")  # GDAL fetches nothing
        crs = crs_of_gml(data) or declared_crs
        if crs is None and frame.crs is None:
            raise CrsError("GML without srsName and no declared CRS")
        if crs is not None:
            frame = frame.set_crs(normalise(crs), allow_override=True)
            frame = _axes_settled(frame, crs)
        return frame.to_crs(WGS84)
    obj = json.loads(data)
    crs = crs_of_geojson(obj) or (normalise(declared_crs) if declared_crs else WGS84)
    features = obj.get("features", [obj] if obj.get("type") == "Feature" else [])
    for feature in features:  # a per-geometry `crs` member is not part of the geometry
        if isinstance(feature.get("geometry"), dict):
            feature["geometry"].pop("crs", None)
    frame = gpd.GeoDataFrame.from_features(features, crs=crs)
    if "id" not in frame and all("id" in f for f in features):
        frame.insert(0, "id", [f["id"] for f in features])
    return frame.to_crs(WGS84)


def _axes_settled(frame: Any, srs_name: str) -> Any:
    """GDAL reads GML in the axis order its srsName states; a file whose positions lie in the
    CRS's area of use only the other way round (northing first under `EPSG:25833`) is swapped,
    and the log says so."""
    import shapely

    points = frame.geometry.dropna().representative_point()
    if points.empty:
        return frame
    order = AxisOrder(srs_name, False, "as GDAL read it")
    settled = settle_axis_order(order, points.x.to_numpy(), points.y.to_numpy())
    if not settled.north_first:
        return frame
    log.info("GML in %s: %s", srs_name, settled.describe)
    swapped = shapely.transform(frame.geometry.to_numpy(), lambda c: c[:, ::-1])
    return frame.set_geometry(gpd_series(swapped, frame))


def gpd_series(geoms: Any, frame: Any) -> Any:
    import geopandas as gpd

    return gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs)


def parse_geometries(values: pd.Series, crs: str = WGS84) -> tuple[Any, pd.Series]:
    """A column of GeoJSON (dicts or text) or WKT → GeoSeries in `crs`, plus a reason per
    row that could not be read (empty text where fine)."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import shape

    geoms: list[Any] = []
    issues: list[str] = []
    for value in values:
        geom, issue = None, ""
        try:
            if isinstance(value, dict):
                geom = shape({k: v for k, v in value.items() if k != "crs"})
            elif isinstance(value, str) and value.strip().startswith("{"):
                obj = json.loads(value)
                geom = shape({k: v for k, v in obj.items() if k != "crs"})
            elif isinstance(value, str) and value.strip():
                geom = shapely.from_wkt(value)
        except (ValueError, TypeError, KeyError, AttributeError,
                shapely.errors.GEOSException) as exc:
            issue = f"unreadable geometry: {str(exc)[:80]}"
        geoms.append(geom)
        issues.append(issue)
    return gpd.GeoSeries(geoms, index=values.index, crs=crs), pd.Series(issues, index=values.index)


def repair(geoms: Any) -> tuple[Any, pd.Series]:
    """Invalid geometries made valid (`make_valid`), polygons wound as RFC 7946 asks (exterior
    counter-clockwise, holes clockwise); empty and null geometries flagged (set to None)."""
    import shapely

    values = geoms.values.copy() if hasattr(geoms, "values") else np.asarray(geoms)
    arr = np.asarray(values, dtype=object)
    issues = np.full(len(arr), "", dtype=object)
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    issues[missing] = "empty or null geometry"
    arr[missing] = None
    invalid = ~missing & ~shapely.is_valid(arr)
    if invalid.any():
        reasons = shapely.is_valid_reason(arr[invalid])
        issues[invalid] = [f"invalid geometry made valid ({r})" for r in reasons]
        arr[invalid] = shapely.make_valid(arr[invalid])
    arr[~missing] = shapely.orient_polygons(arr[~missing], exterior_cw=False)
    out = type(geoms)(arr, index=geoms.index, crs=geoms.crs) if hasattr(geoms, "crs") else arr
    return out, pd.Series(issues, index=getattr(geoms, "index", None), dtype="string")


@dataclass
class CityExtent:
    """The city boundary grown by `buffer_m`, in the city's projected CRS."""

    name: str
    crs: str
    buffer_m: float
    area: Any  # shapely geometry, prepared
    bbox_wgs84: tuple[float, float, float, float]  # west, south, east, north (degrees)

    @classmethod
    def load(cls, path: Path, name: str, crs: str, buffer_m: float) -> CityExtent:
        import geopandas as gpd
        import shapely

        if not path.is_file():
            raise ConfigError(f"{path}: city boundary file not found")
        frame = gpd.read_file(path)
        bbox = tuple(float(v) for v in frame.to_crs(WGS84).total_bounds)
        boundary = frame.to_crs(crs).union_all()
        area = boundary.buffer(buffer_m) if buffer_m else boundary
        shapely.prepare(area)
        return cls(name, crs, buffer_m, area, bbox)  # type: ignore[arg-type]

    def contains(self, east: np.ndarray, north: np.ndarray) -> np.ndarray:
        import shapely

        ok = np.isfinite(east) & np.isfinite(north)
        inside = np.zeros(len(east), dtype=bool)
        inside[ok] = shapely.intersects_xy(self.area, east[ok], north[ok])
        return inside

    def distance_km(self, east: np.ndarray, north: np.ndarray) -> np.ndarray:
        import shapely

        return shapely.distance(self.area, shapely.points(east, north)) / 1000.0


def check_points(x: np.ndarray, y: np.ndarray, source_crs: str, extent: CityExtent
                 ) -> pd.DataFrame:
    """Per point (source coordinates): `rule` and `reason` when it must be quarantined
    ((0, 0), swapped axes, outside the city's extent), else empty text; plus its easting and
    northing in the city's CRS. Missing coordinates are no finding (the row gets no district)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        east, north = transform(x, y, source_crs, extent.crs, extent.bbox_wgs84)
    present = np.isfinite(x) & np.isfinite(y)
    inside = extent.contains(east, north)
    rule = np.full(len(x), "", dtype=object)
    reason = np.full(len(x), "", dtype=object)
    zero = present & (x == 0) & (y == 0)
    rule[zero], reason[zero] = NULL_ISLAND, "coordinates (0, 0): a placeholder, not a location"
    rest = present & ~zero & ~inside
    if rest.any():
        with np.errstate(invalid="ignore"):
            se, sn = transform(y[rest], x[rest], source_crs, extent.crs, extent.bbox_wgs84)
        swapped = np.zeros(len(x), dtype=bool)
        swapped[rest] = extent.contains(se, sn)
        rule[swapped] = SWAPPED
        reason[swapped] = [
            f"x/y swapped: ({a:g}, {b:g}) lies in {extent.name} only as ({b:g}, {a:g})"
            for a, b in zip(x[swapped], y[swapped], strict=True)]
        far = rest & ~swapped
        km = np.full(len(x), np.nan)
        finite = far & np.isfinite(east) & np.isfinite(north)
        km[finite] = extent.distance_km(east[finite], north[finite]) + extent.buffer_m / 1000
        rule[far] = OUTSIDE
        reason[far] = [
            f"({a:g}, {b:g}) lies {d:.1f} km outside {extent.name} "
            f"(allowed: {extent.buffer_m:g} m)" if np.isfinite(d)
            else f"({a:g}, {b:g}) is no position in {source_crs}"
            for a, b, d in zip(x[far], y[far], km[far], strict=True)]
    return pd.DataFrame({"rule": rule, "reason": reason, "easting": east, "northing": north})
