"""Georeference: every row gets WGS84 lon/lat, the city's projected coordinates and the
districts it lies in (configured per dataset in `[georeference]`, reference layers per city)."""

from odp.georeference.districts import DistrictIndex, georeference

__all__ = ["DistrictIndex", "georeference"]
