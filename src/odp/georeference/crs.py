"""Coordinate reference systems: which one the data says it uses, and transforms between them.

Accepted: WGS84 lon/lat (EPSG:4326, also written CRS84), ETRS89/UTM 32N and 33N (EPSG:25832,
25833), DHDN/Gauß-Krüger zones 4 and 5 (EPSG:31468, 31469) and Web Mercator (EPSG:3857).
The CRS is read where the data says it (a GeoJSON `crs` member, a GML `srsName`) or declared
per dataset in `[georeference] crs`. Transforms are always x=east/lon, y=north/lat.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

WGS84 = "EPSG:4326"
ACCEPTED: dict[int, str] = {
    4326: "WGS84 lon/lat",
    25832: "ETRS89 / UTM zone 32N",
    25833: "ETRS89 / UTM zone 33N",
    31468: "DHDN / Gauß-Krüger zone 4",
    31469: "DHDN / Gauß-Krüger zone 5",
    3857: "WGS84 / Web Mercator",
}
_CRS84 = re.compile(
    r"(urn:ogc:def:crs:OGC:(1\.3)?:CRS84|opengis\.net/def/crs/OGC/1\.3/CRS84|^CRS:?84$)",
    re.IGNORECASE)
_EPSG = re.compile(
    r"^(?:EPSG:{1,2}|urn:ogc:def:crs:EPSG:[0-9.]*:|https?://www\.opengis\.net/def/crs/EPSG/[0-9.]+/"
    r"|https?://www\.opengis\.net/gml/srs/epsg\.xml#)(\d+)$",
    re.IGNORECASE,
)
# GML's URN and http forms of a geographic CRS mean latitude first (GDAL does the same).
_AXIS_LAT_FIRST = re.compile(r"^(urn:ogc:def:crs:EPSG|https?://www\.opengis\.net/def/crs/EPSG)",
                             re.IGNORECASE)


class CrsError(ValueError):
    """A CRS the data names that cannot be read or is not accepted."""


def epsg_code(name: str | int) -> int:
    """EPSG code of a CRS name in any usual spelling; raises CrsError if not accepted."""
    text = str(name).strip()
    if _CRS84.search(text):
        code = 4326
    elif text.isdigit():
        code = int(text)
    elif match := _EPSG.match(text):
        code = int(match.group(1))
    else:
        raise CrsError(f"unknown CRS '{text}' (accepted: {accepted_list()})")
    if code not in ACCEPTED:
        raise CrsError(f"CRS EPSG:{code} is not accepted (accepted: {accepted_list()})")
    return code


def normalise(name: str | int) -> str:
    """'urn:ogc:def:crs:EPSG::25833' → 'EPSG:25833'."""
    return f"EPSG:{epsg_code(name)}"


def accepted_list() -> str:
    return ", ".join(f"EPSG:{code}" for code in ACCEPTED)


def lat_lon_first(srs_name: str) -> bool:
    """Whether coordinates written under this GML srsName list latitude first."""
    return epsg_code(srs_name) == 4326 and bool(_AXIS_LAT_FIRST.match(srs_name.strip()))


def crs_of_geojson(obj: dict[str, Any]) -> str | None:
    """The CRS a GeoJSON object names (2008 `crs` member on the collection, else on the first
    feature or geometry); None when it names none (RFC 7946: WGS84 lon/lat)."""
    candidates = [obj]
    for feature in obj.get("features", [])[:1]:
        candidates += [feature, feature.get("geometry") or {}]
    for item in candidates:
        member = item.get("crs") if isinstance(item, dict) else None
        if isinstance(member, dict):
            props = member.get("properties") or {}
            name = props.get("name") or (
                f"EPSG:{props['code']}" if member.get("type") == "EPSG" and "code" in props
                else None)
            if name:
                return normalise(name)
    return None


_SRS_NAME = re.compile(rb'srsName\s*=\s*["\']([^"\']+)["\']')


def crs_of_gml(data: bytes | str) -> str | None:
    """The CRS of the first `srsName` in a GML document (None when there is none)."""
    raw = data.encode() if isinstance(data, str) else data
    match = _SRS_NAME.search(raw)
    return normalise(match.group(1).decode()) if match else None


Area = tuple[float, float, float, float]  # west, south, east, north in degrees


@lru_cache(maxsize=32)
def _transformer(source: str, target: str, area: Area | None) -> Any:
    import warnings

    from pyproj import Transformer
    from pyproj.aoi import AreaOfInterest
    from pyproj.transformer import TransformerGroup

    if area is None:
        return Transformer.from_crs(source, target, always_xy=True)
    with warnings.catch_warnings():  # "best transformation not available": a grid is missing
        warnings.simplefilter("ignore", UserWarning)
        group = TransformerGroup(source, target, always_xy=True,
                                 area_of_interest=AreaOfInterest(*area))
    return group.transformers[0]  # the most accurate one available for the area


def transform(x: Any, y: Any, source: str, target: str, area: Area | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays (NaN stays NaN); x is east/lon, y north/lat.

    `area` (the city's extent in degrees) makes PROJ use one datum transformation for every
    point — the best one for that area (DHDN → ETRS89: "DHDN to ETRS89 (2)", ~3 m, or the
    BETA2007 grid when installed). Without it PROJ may pick per point, ~1 m apart."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if normalise(source) == normalise(target):
        return xs.copy(), ys.copy()
    tx, ty = _transformer(normalise(source), normalise(target), area).transform(xs, ys)
    return np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)
