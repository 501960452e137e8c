"""Georeference: every row gets WGS84 lon/lat, the city's projected coordinates and the
districts it lies in (configured per dataset in `[georeference]`, reference layers per city).

    georeference(table, dataset, city) -> Georeferenced     # the run's stage
    to_geojson(table, dataset) -> bytes                      # RFC 7946 resource
    spatial_extent(table, dataset) -> GeoJSON bbox polygon   # CKAN `spatial`
    covered_districts(table) -> {"stadtteile": [...], "stadtbezirke": [...]}
"""

from odp.georeference.districts import DistrictIndex
from odp.georeference.output import covered_districts, spatial_extent, to_geojson
from odp.georeference.stage import Georeferenced, check_filled, georeference

__all__ = [
    "DistrictIndex",
    "Georeferenced",
    "check_filled",
    "covered_districts",
    "georeference",
    "spatial_extent",
    "to_geojson",
]
