"""Point-in-polygon assignment to the city's district hierarchy (`[districts]` in the city file).

Rows are assigned to the smallest level's polygons (Dresden: the Stadtteile); every further
level is the parent of the one before it, found as the city file says (odp.spec.DistrictLevel):
by code prefix (Dresden: the first digit of a Stadtteil's code is its Stadtbezirk), by a
parent-code field of the lower level's file, or by spatial containment (the parent polygon
holding the largest share of the unit). Rows without usable coordinates keep null districts
(they are counted, never given a made-up location). A point on a shared border is assigned to
the unit with the lowest code, so the result never depends on file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.georeference import crs as crs_
from odp.georeference.layers import LayerConfig, PolygonLayer
from odp.spec import City, DistrictLevel

WGS84 = crs_.WGS84


def _layer(level: DistrictLevel, crs: str, extra: tuple[str, ...] = ()) -> PolygonLayer:
    assert level.path is not None
    config = LayerConfig(level.name, level.path, level.code_field, level.name_field,
                         level.code_column or f"_{level.name}_code",
                         level.name_column or f"_{level.name}_name")
    return PolygonLayer(config, crs, extra)


class DistrictIndex:
    """The city's smallest districts (polygons in the city's projected CRS) and, per unit, the
    code and name of each higher level."""

    def __init__(self, city: City) -> None:
        import geopandas as gpd

        self.city, self.crs, self.levels = city, city.crs, city.districts
        base = self.levels[0]
        fields = (base.parent_field,) if base.parent_by == "parent_field" else ()
        self.layer = _layer(base, city.crs, fields)
        # per level: the code and the name of each base unit (None: no parent found)
        codes = self.layer.codes.astype(object)
        names = self.layer.names.astype(object)
        self.unit_codes: list[np.ndarray] = [codes]
        self.unit_names: list[np.ndarray] = [names]
        child_layer: PolygonLayer | None = self.layer
        for child, parent in zip(self.levels, self.levels[1:], strict=False):
            parent_layer = _layer(parent, city.crs, _parent_fields(parent)) if parent.path \
                else None
            present = sorted({c for c in codes if c is not None})
            mapping = _parent_codes(child, present, child_layer, parent, parent_layer, city)
            codes = np.array([mapping.get(c) if c is not None else None for c in codes],
                             dtype=object)
            lookup = dict(parent.names)
            if parent_layer is not None:
                lookup = {**dict(zip(parent_layer.codes, parent_layer.names, strict=True)),
                          **lookup}
            self.unit_codes.append(codes)
            self.unit_names.append(np.array([lookup.get(c) if c is not None else None
                                             for c in codes], dtype=object))
            child_layer = parent_layer
        self.polygons = gpd.GeoDataFrame(self._columns(np.arange(len(codes)), None),
                                         geometry=self.layer.geoms, crs=city.crs)

    @property
    def columns(self) -> list[str]:
        """The output columns, smallest level first (Dresden: stadtteil_nr, stadtteil,
        stadtbezirk)."""
        return [c for level in self.levels for c in level.columns]

    @property
    def unit_column(self) -> str:
        """The column telling whether a row lies in a district (the smallest level's code)."""
        return self.levels[0].code_column or self.levels[0].name_column

    def _columns(self, hit: np.ndarray, index: pd.Index | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for level, codes, names in zip(self.levels, self.unit_codes, self.unit_names,
                                       strict=True):
            for column, values in ((level.code_column, codes), (level.name_column, names)):
                if column:
                    picked = np.append(values, None)[hit]  # -1 → the appended None
                    out[column] = pd.array(picked, dtype="string")
        return out

    def frame(self, hit: np.ndarray, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(self._columns(hit, index), index=index)[self.columns]

    def assign(self, easting: pd.Series, northing: pd.Series) -> pd.DataFrame:
        """Districts for projected points (index-aligned; NaN points → nulls)."""
        x = easting.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        y = northing.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        return self.frame(self.layer.assign_xy(x, y), easting.index)

    def assign_geometries(self, geoms: Any, index: pd.Index,
                          mode: str = "representative_point") -> pd.DataFrame:
        return self.frame(self.layer.assign_geometries(geoms, mode), index)


def _parent_fields(level: DistrictLevel) -> tuple[str, ...]:
    return (level.parent_field,) if level.parent_by == "parent_field" else ()


def _parent_codes(child: DistrictLevel, child_codes: list[str],
                  child_layer: PolygonLayer | None, parent: DistrictLevel,
                  parent_layer: PolygonLayer | None, city: City) -> dict[str, str | None]:
    """child code → parent code, as `child.parent_by` says."""
    where = f"{city.path}: [districts.{child.name}]"
    if child.parent_by == "code_prefix":
        known = set(parent.names) | set(parent_layer.codes if parent_layer else [])
        return _by_prefix(child, child_codes, known, where)
    if child_layer is None:  # checked when the city file is read
        raise ConfigError(f"{where}: parent_by = \"{child.parent_by}\" needs its own 'path'")
    if child.parent_by == "parent_field":
        values = child_layer.extra[child.parent_field]
        return {c: (None if v is None else str(v))
                for c, v in zip(child_layer.codes, values, strict=True)}
    assert parent_layer is not None
    hit = parent_layer.assign_geometries(child_layer.geoms, "overlap")
    parents = np.append(parent_layer.codes, None)[hit]
    return dict(zip(child_layer.codes, parents, strict=True))


def _by_prefix(child: DistrictLevel, codes: list[str], known: set[str], where: str
               ) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {c: c[:child.prefix_length] for c in codes}
    unknown = sorted({p for p in mapping.values() if known and p not in known})
    if unknown:
        raise ConfigError(f"{where} prefix_length: code prefix '{unknown[0]}' names no unit of "
                          f"the level above (known: {', '.join(sorted(known))})")
    return mapping


_INDEXES: dict[Path, DistrictIndex] = {}


def district_index(city: City) -> DistrictIndex:
    """Loaded once per process and city (reading 64 polygons takes ~0.1 s)."""
    if city.path not in _INDEXES:
        _INDEXES[city.path] = DistrictIndex(city)
    return _INDEXES[city.path]


def transform(x: pd.Series, y: pd.Series, source: str, target: str) -> tuple[Any, Any]:
    return crs_.transform(x.to_numpy(dtype=float), y.to_numpy(dtype=float), source, target)
