"""What georeferencing gives the publisher: an RFC 7946 GeoJSON resource, the dataset's
spatial extent and the districts it covers (for the CKAN metadata)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from odp.spec import City, Dataset

COORDINATE_DECIMALS = 7  # ~1 cm; RFC 7946 §11.2 advises not to publish more


def _geometry_column(table: pd.DataFrame, dataset: Dataset | None) -> str | None:
    column = (dataset.georeference.get("geometry") if dataset else None) or None
    return column if column and column in table.columns else None


def _geometries(table: pd.DataFrame, dataset: Dataset | None) -> list[dict[str, Any] | None]:
    """Per row its WGS84 geometry as a GeoJSON dict (None without a location)."""
    if column := _geometry_column(table, dataset):
        out: list[dict[str, Any] | None] = []
        for value in table[column]:
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                out.append(None)
            else:
                out.append(_rounded(value))
        return out
    if "longitude" not in table or "latitude" not in table:
        return [None] * len(table)
    lon = pd.to_numeric(table["longitude"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(table["latitude"], errors="coerce").to_numpy(dtype=float)
    return [
        {"type": "Point", "coordinates": [round(float(x), COORDINATE_DECIMALS),
                                          round(float(y), COORDINATE_DECIMALS)]}
        if np.isfinite(x) and np.isfinite(y) else None
        for x, y in zip(lon, lat, strict=True)
    ]


def _shape(value: dict[str, Any] | str) -> Any:
    """A geometry from GeoJSON (dict or text) or WKT text."""
    import shapely
    from shapely.geometry import shape

    if isinstance(value, str):
        return shapely.from_geojson(value) if value.lstrip().startswith("{") else \
            shapely.from_wkt(value)
    return shape(value)


def _rounded(geometry: dict[str, Any] | str) -> dict[str, Any]:
    import shapely
    from shapely.geometry import mapping

    geom = shapely.orient_polygons(_shape(geometry), exterior_cw=False)  # RFC 7946 §3.1.6
    geom = shapely.transform(geom, lambda c: np.round(c, COORDINATE_DECIMALS))
    return json.loads(json.dumps(mapping(geom)))  # tuples → lists


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts.tzinfo else ts.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_geojson(table: pd.DataFrame, dataset: Dataset | None = None) -> bytes:
    """An RFC 7946 FeatureCollection (UTF-8): one Feature per row, WGS84 lon/lat, every other
    column a property (in the schema's order); rows without a location get a null geometry."""
    out = io.BytesIO()
    write_geojson([table], out, dataset)
    return out.getvalue()


def write_geojson(parts: Iterable[pd.DataFrame], out: BinaryIO,
                  dataset: Dataset | None = None) -> None:
    """`to_geojson` of the parts' rows, one after the other, written a part at a time: a
    large register's features are never all held (as dicts, about 1 kB a row), and the bytes
    are those of the whole table's `to_geojson`."""
    out.write(b'{"type":"FeatureCollection","features":[')
    first, bounds = True, []
    for part in parts:
        if features := _features(part, dataset):
            text = json.dumps(features, ensure_ascii=False, separators=(",", ":"))
            out.write(("" if first else ",").encode() + text[1:-1].encode("utf-8"))
            first = False
        if found := _bounds(part, dataset):
            bounds.append(found)
    out.write(b"]")
    if bounds:  # the parts' bounds rounded alike: their extremes are the whole's
        west, south, east, north = zip(*bounds, strict=True)
        bbox = [min(west), min(south), max(east), max(north)]
        out.write(b',"bbox":' + json.dumps(bbox, separators=(",", ":")).encode())
    out.write(b"}")


def _features(table: pd.DataFrame, dataset: Dataset | None) -> list[dict[str, Any]]:
    geometry_column = _geometry_column(table, dataset)
    columns = [c for c in (dataset.schema.names if dataset else table.columns)
               if c in table.columns and c != geometry_column]
    geometries = _geometries(table, dataset)
    features = []
    key = list(dataset.schema.primary_key) if dataset else []
    for geom, row in zip(geometries, table[columns].itertuples(index=False), strict=True):
        properties = {c: _plain(v) for c, v in zip(columns, row, strict=True)}
        feature: dict[str, Any] = {"type": "Feature", "geometry": geom,
                                   "properties": properties}
        if len(key) == 1:
            feature["id"] = properties.get(key[0])
        features.append(feature)
    return features


def _bounds(table: pd.DataFrame, dataset: Dataset | None) -> tuple[float, ...] | None:
    """(west, south, east, north) of the rows' geometries — or of their points — vectorised."""
    import shapely

    if column := _geometry_column(table, dataset):
        values = table[column].dropna()
        if values.empty:
            return None
        text = values.astype(str)
        json_like = text.str.lstrip().str.startswith("{").to_numpy(dtype=bool)
        geoms = np.empty(len(text), dtype=object)
        geoms[json_like] = shapely.from_geojson(text[json_like].to_numpy(), on_invalid="ignore")
        geoms[~json_like] = shapely.from_wkt(text[~json_like].to_numpy(), on_invalid="ignore")
        bounds = shapely.total_bounds(geoms)
    elif "longitude" in table and "latitude" in table:
        lon = pd.to_numeric(table["longitude"], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(table["latitude"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any():
            return None
        bounds = np.array([lon[ok].min(), lat[ok].min(), lon[ok].max(), lat[ok].max()])
    else:
        return None
    if not np.isfinite(bounds).all():
        return None
    return tuple(round(float(v), 6) for v in bounds)


def spatial_extent(table: pd.DataFrame, dataset: Dataset | None = None
                   ) -> dict[str, Any] | None:
    """The bounding box of the rows' locations as a GeoJSON Polygon (a Point when all rows
    share one location; None without locations) — CKAN's `spatial` extra. For a dataset with a
    geometry column (lines, polygons) the box encloses the whole geometries."""
    bbox = _bounds(table, dataset)
    if bbox is None:
        return None
    w, s, e, n = bbox
    if w == e and s == n:
        return {"type": "Point", "coordinates": [w, s]}
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def covered_districts(table: pd.DataFrame, city: City | None = None) -> dict[str, list[str]]:
    """The districts the rows lie in per level of the city's hierarchy (sorted, each once; by
    name, or by code where a level publishes no name). Without a city: Dresden's columns,
    {"stadtteile": [...], "stadtbezirke": [...]}."""
    levels = [("stadtteile", "stadtteil"), ("stadtbezirke", "stadtbezirk")]
    if city is not None:
        levels = [(level.name, level.name_column or level.code_column)
                  for level in city.districts]
    out: dict[str, list[str]] = {}
    for key, column in levels:
        if column in table:
            out[key] = sorted(str(v) for v in table[column].dropna().unique())
        else:
            out[key] = []
    return out
