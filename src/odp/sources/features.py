"""Features (id, properties, geometry) → a raw-text table, shared by the OGC API Features and
WFS source types.

Columns: `id_column` (default "id"), the properties (renamed by `rename`), the geometry as text
(`geometry_column`, default "geometry"; `geometry_format` "wkt" (default) or "geojson") in the
CRS the service delivered, and a representative point (`point_columns`, default
["longitude", "latitude"]): the point itself for points, else a point guaranteed to lie inside
the shape (shapely's `representative_point`), in the same CRS. The dataset's `[georeference]`
names that CRS (e.g. EPSG:4326 for OGC API's default CRS84, EPSG:25833 when requested).
Property values stay as sent (an integer stays "67", even where other features lack it).
`drop` lists columns not published (names as delivered, before `rename`; the geometry column
too); a dropped property absent from a delivery is fine — features' properties are sparse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from odp.errors import SourceError
from odp.sources.frames import as_raw_text


@dataclass(frozen=True)
class FeatureColumns:
    """The table's columns made from the features (the `[source]` keys of the same names)."""

    id_column: str = "id"
    geometry_column: str = "geometry"
    geometry_format: Literal["wkt", "geojson"] = "wkt"
    point_columns: tuple[str, str] = ("longitude", "latitude")
    rename: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


def feature_table(ids: list[Any], properties: list[dict[str, Any]], geometries: list[Any],
                  columns: FeatureColumns, where: str, decimals: int | None = None
                  ) -> pd.DataFrame:
    """`geometries`: shapely geometries or None (a feature without geometry); `decimals`
    rounds the representative point (3: a millimetre in a projected CRS)."""
    import shapely

    id_column, geometry_column = columns.id_column, columns.geometry_column
    lon_column, lat_column = columns.point_columns
    # Column by column as object: from_records would turn an integer property that some
    # features lack into float ("67.0").
    names = list(dict.fromkeys(k for p in properties for k in p))
    frame = pd.DataFrame({n: pd.Series([p.get(n) for p in properties], dtype=object)
                          for n in names}, index=range(len(properties)))
    for column in frame.columns:
        # Nested property values (objects, lists) are kept as JSON text.
        nested = frame[column].map(lambda v: isinstance(v, (dict, list)))
        if nested.any():
            frame[column] = frame[column].where(
                ~nested, frame[column].map(lambda v: json.dumps(v, ensure_ascii=False))
            )
    frame.insert(0, id_column, ids)
    shapes = pd.Series(geometries, dtype=object)
    present = shapes.notna().to_numpy()
    array = shapes.to_numpy()
    text: list[str | None] = [None] * len(array)
    lon: list[float | None] = [None] * len(array)
    lat: list[float | None] = [None] * len(array)
    if present.any():
        valid = array[present]
        if columns.geometry_format == "geojson":
            rendered = shapely.to_geojson(valid)
        else:
            rendered = shapely.to_wkt(valid, rounding_precision=-1)
        try:
            points = shapely.point_on_surface(valid)
        except shapely.errors.GEOSException as exc:
            raise SourceError(f"{where}: a geometry cannot be used ({exc})") from None
        positions = present.nonzero()[0]
        xs, ys = shapely.get_x(points), shapely.get_y(points)
        if decimals is not None:
            xs, ys = xs.round(decimals), ys.round(decimals)
        for i, pos in enumerate(positions):
            text[pos], lon[pos], lat[pos] = rendered[i], float(xs[i]), float(ys[i])
    frame[geometry_column] = text
    frame[lon_column] = pd.array(lon, dtype="Float64")
    frame[lat_column] = pd.array(lat, dtype="Float64")
    frame = frame.drop(columns=[c for c in columns.drop if c in frame.columns])
    frame = frame.rename(columns=columns.rename)
    return as_raw_text(frame)
