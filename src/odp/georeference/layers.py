"""The city's reference layers, from `[reference_layers]` in the city file.

    [reference_layers.wahlbezirke]           # any polygon layer a dataset may ask for
                                             # (the district hierarchy: [districts], see
                                             #  odp.georeference.districts)
    path = "…"; code_field = "wb"; name_field = "wb_text"
    columns = ["wahlbezirk_nr", "wahlbezirk"]  # output columns (default NAME_nr, NAME)
    [reference_layers.city_boundary]         # the extent points are checked against
    path = "…"; buffer_m = 2000
    [reference_layers.addresses]             # the address register (CSV or OGC API Features)
    path = "…"  (or url = "…/collections/ID/items")

Points are assigned with `intersects` so a point on a shared border belongs to both polygons;
it is given the one with the lowest code, so the result never depends on file order.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.spec import City

ASSIGN_MODES = ("representative_point", "overlap")


@dataclass(frozen=True)
class LayerConfig:
    name: str
    path: Path
    code_field: str
    name_field: str
    code_column: str
    name_column: str


def city_layers(city: City) -> dict[str, dict[str, Any]]:
    """The raw `[reference_layers]` tables of the city file (read again when it changed)."""
    stat = city.path.stat()
    return _read_layers(city.path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_layers(path: Path, _mtime: int, _size: int) -> dict[str, dict[str, Any]]:
    with path.open("rb") as fh:
        layers = tomllib.load(fh).get("reference_layers", {})
    return {k: v for k, v in layers.items() if isinstance(v, dict)}


def project_root(city: City) -> Path:
    return city.path.parent.parent


def polygon_layer_config(city: City, name: str) -> LayerConfig:
    layers = city_layers(city)
    raw = layers.get(name)
    if not raw or "path" not in raw or "code_field" not in raw:
        known = ", ".join(k for k, v in layers.items() if "code_field" in v) or "none"
        raise ConfigError(f"{city.path}: no polygon layer '{name}' in [reference_layers] "
                          f"(known: {known})")
    columns = raw.get("columns", [f"{name}_nr", name])
    return LayerConfig(name, project_root(city) / raw["path"], raw["code_field"],
                       raw.get("name_field", raw["code_field"]), columns[0], columns[1])


class PolygonLayer:
    """Polygons in the city's CRS, sorted by code, prepared for fast point queries."""

    def __init__(self, config: LayerConfig, crs: str, extra: tuple[str, ...] = ()) -> None:
        """`extra`: further properties kept per polygon (e.g. a parent's code)."""
        import geopandas as gpd
        import shapely

        if not config.path.is_file():
            raise ConfigError(f"{config.path}: reference layer '{config.name}' not found")
        frame = gpd.read_file(config.path)
        for column in (config.code_field, config.name_field, *extra):
            if column not in frame.columns:
                raise ConfigError(f"{config.path}: no property '{column}' "
                                  f"(layer '{config.name}')")
        frame = frame[frame.geometry.notna()].to_crs(crs)
        frame = frame.assign(_code=frame[config.code_field].astype(str)).sort_values(
            "_code", kind="stable")
        self.config, self.crs = config, crs
        self.codes = frame["_code"].to_numpy(dtype=object)
        self.names = frame[config.name_field].astype(str).to_numpy(dtype=object)
        self.extra = {f: frame[f].to_numpy(dtype=object) for f in extra}
        self.geoms = shapely.make_valid(frame.geometry.to_numpy())
        shapely.prepare(self.geoms)
        self.bounds = shapely.bounds(self.geoms)

    def assign_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the polygon each point lies in (-1: none); border → lowest code."""
        import shapely

        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        hit = np.full(len(x), -1, dtype=np.int64)
        open_ = np.isfinite(x) & np.isfinite(y)
        for i, (x0, y0, x1, y1) in enumerate(self.bounds):
            rows = np.flatnonzero(open_ & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
            if rows.size:
                inside = rows[shapely.intersects_xy(self.geoms[i], x[rows], y[rows])]
                hit[inside] = i
                open_[inside] = False
        return hit

    def assign_geometries(self, geoms: Any, mode: str = "representative_point") -> np.ndarray:
        """Lines/polygons: by their representative point, or by the largest overlap share
        (length for lines, area for polygons; ties → lowest code)."""
        import shapely

        arr = np.asarray(geoms, dtype=object)
        if mode == "representative_point":
            points = shapely.point_on_surface(arr)
            return self.assign_xy(shapely.get_x(points), shapely.get_y(points))
        if mode != "overlap":
            raise ConfigError(f"assign_by '{mode}' unknown (use {', '.join(ASSIGN_MODES)})")
        tree = shapely.STRtree(self.geoms)
        pairs = tree.query(arr, predicate="intersects")
        hit = np.full(len(arr), -1, dtype=np.int64)
        best = np.zeros(len(arr))
        for g, p in sorted(zip(pairs[0], pairs[1], strict=True), key=lambda t: (t[0], t[1])):
            part = shapely.intersection(arr[g], self.geoms[p])
            dim = shapely.get_dimensions(arr[g])
            size = (shapely.area(part) if dim == 2 else shapely.length(part) if dim == 1
                    else 1.0)
            if size > best[g]:
                best[g], hit[g] = size, p
        return hit

    def frame(self, hit: np.ndarray, index: pd.Index) -> pd.DataFrame:
        codes = np.append(self.codes, None)[hit]  # -1 → the appended None
        names = np.append(self.names, None)[hit]
        return pd.DataFrame({self.config.code_column: pd.array(codes, dtype="string"),
                             self.config.name_column: pd.array(names, dtype="string")},
                            index=index)


_LAYERS: dict[tuple[Path, str], PolygonLayer] = {}


def polygon_layer(city: City, name: str) -> PolygonLayer:
    """Loaded once per process, city and layer."""
    key = (city.path, name)
    if key not in _LAYERS:
        _LAYERS[key] = PolygonLayer(polygon_layer_config(city, name), city.crs)
    return _LAYERS[key]
