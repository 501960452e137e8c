"""Coordinate reference systems: which one the data says it uses, and transforms between them.

Accepted: every projected or two-dimensional geographic CRS pyproj knows by an EPSG code, in any
usual spelling (`EPSG:25833`, `urn:ogc:def:crs:EPSG::25833`,
`http://www.opengis.net/def/crs/EPSG/0/25833`, `25833`; CRS84 is EPSG:4326). The project lists
the usual ones of German cities (`LISTED`); another code is used when pyproj can transform it.
The CRS is read where the data says it (a GeoJSON `crs` member, a GML `srsName`) or declared
per dataset in `[georeference] crs`. Transforms are always x=east/lon, y=north/lat.

GML axis order (`gml_axis_order`): an `axisLabels` attribute wins; else a URN/URL `srsName`
means the EPSG axis order (latitude first for EPSG:4326, northing first for EPSG:3044, 31468,
3035; easting first for EPSG:25832/25833); else (`EPSG:25833`) x=east, y=north as written.
Projected coordinates are published rounded to millimetres (`PROJECTED_DECIMALS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

WGS84 = "EPSG:4326"
# A millimetre: more digits are float noise of the transform (5701472.482999999), fewer lose
# what a survey-grade register (house coordinates, ALKIS) states.
PROJECTED_DECIMALS = 3
# ~1 mm of latitude (1e-8° ≈ 1.1 mm); what the stage publishes for WGS84 lon/lat.
DEGREE_DECIMALS = 8
LISTED: dict[int, str] = {
    4326: "WGS84 lon/lat",
    4258: "ETRS89 lon/lat",
    25832: "ETRS89 / UTM zone 32N",
    25833: "ETRS89 / UTM zone 33N",
    31468: "DHDN / Gauß-Krüger zone 4",
    31469: "DHDN / Gauß-Krüger zone 5",
    3857: "WGS84 / Web Mercator",
}
ACCEPTED = LISTED  # the former name
_CRS84 = re.compile(
    r"(urn:ogc:def:crs:OGC:(1\.3)?:CRS84|opengis\.net/def/crs/OGC/1\.3/CRS84|^CRS:?84$)",
    re.IGNORECASE)
_EPSG = re.compile(
    r"^(?:EPSG:{1,2}|urn:ogc:def:crs:EPSG:[0-9.]*:|https?://www\.opengis\.net/def/crs/EPSG/[0-9.]+/"
    r"|https?://www\.opengis\.net/gml/srs/epsg\.xml#)(\d+)$",
    re.IGNORECASE,
)
# GML's URN and http forms mean the authority's axis order (GDAL and GeoServer read them so).
_AUTHORITY_ORDER = re.compile(r"^(urn:ogc:def:crs:EPSG|https?://www\.opengis\.net/def/crs/EPSG)",
                              re.IGNORECASE)
_NORTH_LABELS = {"n", "north", "northing", "lat", "latitude", "b", "phi"}
_EAST_LABELS = {"e", "east", "easting", "lon", "long", "longitude", "l", "lambda"}


class CrsError(ValueError):
    """A CRS the data names that cannot be read or is not accepted."""


def epsg_code(name: str | int) -> int:
    """EPSG code of a CRS name in any usual spelling; raises CrsError when pyproj does not know
    it or it is no projected or 2D geographic CRS."""
    text = str(name).strip()
    if _CRS84.search(text):
        return 4326
    if text.isdigit():
        code = int(text)
    elif match := _EPSG.match(text):
        code = int(match.group(1))
    else:
        raise CrsError(f"unknown CRS '{text}' (an EPSG code, e.g. {listed()})")
    if code not in LISTED:
        _check_known(code)
    return code


@lru_cache(maxsize=64)
def _check_known(code: int) -> None:
    info = crs_info(code)
    if not (info.is_projected or (info.is_geographic and len(info.axis_info) == 2)):
        raise CrsError(f"CRS EPSG:{code} ({info.name}) is a {info.type_name}: not accepted "
                       "(a projected or 2D geographic CRS is)")


@lru_cache(maxsize=64)
def crs_info(code: int) -> Any:
    """pyproj's CRS of an EPSG code (CrsError when it knows none)."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_epsg(code)
    except CRSError:
        raise CrsError(f"CRS EPSG:{code} is not known to pyproj (listed: {listed()})") from None


def normalise(name: str | int) -> str:
    """'urn:ogc:def:crs:EPSG::25833' → 'EPSG:25833'."""
    return f"EPSG:{epsg_code(name)}"


def listed() -> str:
    return ", ".join(f"EPSG:{code}" for code in LISTED)


accepted_list = listed  # the former name


def is_projected(name: str | int) -> bool:
    return bool(crs_info(epsg_code(name)).is_projected)


def decimals(name: str | int) -> int:
    """Decimals coordinates in this CRS are published with (mm)."""
    return PROJECTED_DECIMALS if is_projected(name) else DEGREE_DECIMALS


def round_coordinates(values: Any, name: str | int) -> np.ndarray:
    """Coordinates rounded to a millimetre (metres: 3 decimals, degrees: 8)."""
    return np.round(np.asarray(values, dtype=float), decimals(name))


@dataclass(frozen=True)
class AxisOrder:
    """How coordinates under a GML srsName are written, and whether they are swapped to x=east,
    y=north; `reason` says which rule decided (for the run's log)."""

    srs_name: str
    north_first: bool
    reason: str

    @property
    def describe(self) -> str:
        order = "north, east" if self.north_first else "east, north"
        done = "swapped to east, north" if self.north_first else "kept"
        return f"{self.srs_name}: axis order {order} ({self.reason}); {done}"


def gml_axis_order(srs_name: str, axis_labels: str | None = None) -> AxisOrder:
    """The axis order of coordinates written under `srs_name` (see the module text)."""
    code = epsg_code(srs_name)
    axes = crs_info(code).axis_info
    if axis_labels and len(labels := axis_labels.split()) >= 2:
        first = _direction(labels[0], axes)
        if first:
            return AxisOrder(srs_name, first == "north", f"axisLabels \"{axis_labels}\"")
    if _AUTHORITY_ORDER.match(srs_name.strip()):
        north = axes[0].direction.lower() == "north"
        return AxisOrder(srs_name, north, f"EPSG axis order of EPSG:{code}: "
                         f"{', '.join(a.abbrev for a in axes[:2])}")
    return AxisOrder(srs_name, False, "short form: x = east, y = north as written")


def _direction(label: str, axes: Any) -> str | None:
    """'north'/'east' of an axis label: the CRS's own abbreviation first (Gauß-Krüger's X points
    north), then the usual words."""
    low = label.lower()
    for axis in axes:
        if axis.abbrev.lower() == low and axis.direction.lower() in ("north", "east"):
            return str(axis.direction.lower())
    if low in _NORTH_LABELS:
        return "north"
    if low in _EAST_LABELS:
        return "east"
    return None


@lru_cache(maxsize=64)
def area_of_use(code: int) -> tuple[float, float, float, float] | None:
    """The CRS's area of use in its own units, x = east (None when pyproj has none)."""
    area = crs_info(code).area_of_use
    if area is None:
        return None
    if code == 4326 or not crs_info(code).is_projected:
        return area.west, area.south, area.east, area.north
    from pyproj import Transformer

    to_crs = Transformer.from_crs(WGS84, f"EPSG:{code}", always_xy=True)
    return tuple(float(v) for v in to_crs.transform_bounds(*area.bounds))  # type: ignore


def settle_axis_order(order: AxisOrder, first: Any, second: Any) -> AxisOrder:
    """The stated order, unless the coordinates (as written: first, second value of each
    position) lie outside the CRS's area of use that way and inside it the other way — a
    server that writes northing first under `EPSG:25833` is read right, and says so."""
    bounds = area_of_use(epsg_code(order.srs_name))
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if bounds is None or not ok.any():
        return order
    a, b = a[ok], b[ok]
    x, y = (b, a) if order.north_first else (a, b)
    if _inside(x, y, bounds).any() or not _inside(y, x, bounds).all():
        return order
    return AxisOrder(order.srs_name, not order.north_first,
                     f"the data: every position lies in the area of EPSG:"
                     f"{epsg_code(order.srs_name)} only with the axes the other way round")


def _inside(x: np.ndarray, y: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    west, south, east, north = bounds
    return (x >= west) & (x <= east) & (y >= south) & (y <= north)


def lat_lon_first(srs_name: str) -> bool:
    """Whether coordinates written under this GML srsName list latitude (northing) first."""
    return gml_axis_order(srs_name).north_first


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
