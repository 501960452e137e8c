"""Point-in-polygon assignment to Stadtteil and Stadtbezirk.

Rows without usable coordinates keep null districts (they are counted, never given a made-up
location). A point on a shared border is assigned to the Stadtteil with the lowest code, so the
result never depends on file order. The Stadtbezirk is named by the first digit of the
Stadtteil's code (`[reference_layers.stadtbezirke]` in the city file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.georeference import crs as crs_
from odp.georeference.layers import LayerConfig, PolygonLayer
from odp.spec import City

WGS84 = crs_.WGS84
COLUMNS = ["stadtteil_nr", "stadtteil", "stadtbezirk"]


class DistrictIndex:
    """The city's Stadtteile (and the Stadtbezirk of each) in the city's projected CRS."""

    def __init__(self, city: City) -> None:
        import geopandas as gpd

        layer = city.stadtteile
        config = LayerConfig("stadtteile", layer.path, layer.code_field, layer.name_field,
                             "stadtteil_nr", "stadtteil")
        self.layer = PolygonLayer(config, city.crs)
        self.bezirke = city.stadtbezirk_names
        self.crs = city.crs
        self.polygons = gpd.GeoDataFrame(
            {"stadtteil_nr": self.layer.codes, "stadtteil": self.layer.names,
             "stadtbezirk": [self.bezirke.get(c[:1]) for c in self.layer.codes]},
            geometry=self.layer.geoms, crs=city.crs)

    def frame(self, hit: np.ndarray, index: pd.Index) -> pd.DataFrame:
        out = self.layer.frame(hit, index)
        bezirke = np.array([self.bezirke.get(c[:1]) for c in self.layer.codes] + [None],
                           dtype=object)
        out["stadtbezirk"] = pd.array(bezirke[hit], dtype="string")  # -1 → the appended None
        return out[COLUMNS]

    def assign(self, easting: pd.Series, northing: pd.Series) -> pd.DataFrame:
        """Districts for projected points (index-aligned; NaN points → nulls)."""
        x = easting.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        y = northing.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        return self.frame(self.layer.assign_xy(x, y), easting.index)

    def assign_geometries(self, geoms: Any, index: pd.Index,
                          mode: str = "representative_point") -> pd.DataFrame:
        return self.frame(self.layer.assign_geometries(geoms, mode), index)


_INDEXES: dict[Path, DistrictIndex] = {}


def district_index(city: City) -> DistrictIndex:
    """Loaded once per process and city (reading 64 polygons takes ~0.1 s)."""
    if city.path not in _INDEXES:
        _INDEXES[city.path] = DistrictIndex(city)
    return _INDEXES[city.path]


def transform(x: pd.Series, y: pd.Series, source: str, target: str) -> tuple[Any, Any]:
    return crs_.transform(x.to_numpy(dtype=float), y.to_numpy(dtype=float), source, target)
