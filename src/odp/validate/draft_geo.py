"""Coordinates in a drafted file: which columns, which CRS, and what georeferencing will make of
them (for `odp draft`, see odp.validate.draft).

Columns: a numeric pair named like longitude/latitude (`lon`, `lng`, `laenge`, `laengengrad`,
`wgs84_x` …/`lat`, `breite`, `breitengrad`, `wgs84_y` …) or easting/northing (`x`, `rechtswert`,
`rw`, `easting`, `ost` …/`y`, `hochwert`, `hw`, `northing`, `nord` …), words of the readable
name (odp.validate.names).

CRS, from the value ranges: values within ±180/±90 are WGS84 (EPSG:4326). Projected values are
read in each CRS of PROJECTED and turned into WGS84; the CRS whose median point lies nearest the
city wins (ETRS89/UTM 33N and 32N, DHDN/Gauss-Krüger zones 3–5, Web Mercator): the zone digit
of a Gauss-Krüger easting (4 500 000 = zone 4) and the range of Web Mercator put other CRSs far
away, and of the two UTM zones, only the city's puts the points near it. The reason is stated
beside `crs` in the pipeline.

With the CRS, every point of the file is checked as the run's georeference stage checks it
(odp.georeference.geometry.check_points): points at (0, 0) and swapped axes are rejected by
every run; points far outside the city are rejected unless `outside = "keep"`, which the draft
writes when more than OUTSIDE_SHARE of the points lie outside (a regional or foreign dataset,
not a few typing errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

WGS84 = "EPSG:4326"
PROJECTED = ("EPSG:25833", "EPSG:25832", "EPSG:31468", "EPSG:31469", "EPSG:31467",
             "EPSG:3857")
PROJECTED_NAMES = {"EPSG:25833": "ETRS89/UTM 33N", "EPSG:25832": "ETRS89/UTM 32N",
                   "EPSG:31467": "DHDN/Gauss-Krüger zone 3", "EPSG:31468":
                   "DHDN/Gauss-Krüger zone 4", "EPSG:31469": "DHDN/Gauss-Krüger zone 5",
                   "EPSG:3857": "Web Mercator"}
OUTSIDE_SHARE = 0.01  # more points than this outside the city: a regional dataset ("keep")
NEAR_KM = 100.0  # a projected guess whose median point lies farther from the city is doubtful

_LON = {"lon", "lng", "long", "longitude", "laenge", "laengengrad", "geo_laenge"}
_LAT = {"lat", "latitude", "breite", "breitengrad", "geo_breite"}
_EAST = {"x", "rechtswert", "rw", "easting", "ost", "east", "xkoordinate", "x_koordinate"}
_NORTH = {"y", "hochwert", "hw", "northing", "nord", "north", "ykoordinate", "y_koordinate"}


@dataclass
class Coordinates:
    x: str  # readable names of the two columns
    y: str
    crs: str
    reason: str
    outside_keep: bool = False
    predicted: dict[str, int] = field(default_factory=dict)  # rule -> rows rejected every run
    notes: list[str] = field(default_factory=list)


def _words(name: str) -> set[str]:
    parts = name.split("_")
    return {*parts, name, *("_".join(parts[i:i + 2]) for i in range(len(parts) - 1))}


def _role(name: str) -> str | None:
    words = _words(name)
    if words & _LON or ({"x"} <= words and "wgs84" in words):
        return "lon"
    if words & _LAT or ({"y"} <= words and "wgs84" in words):
        return "lat"
    if words & _EAST:
        return "east"
    if words & _NORTH:
        return "north"
    return None


def find_pair(numeric: dict[str, pd.Series]) -> tuple[str, str] | None:
    """The (x, y) columns among numeric ones (readable name → float values), by name."""
    roles: dict[str, str] = {}
    for name in numeric:
        role = _role(name)
        if role and role not in roles:
            roles[role] = name
    for x_role, y_role in (("lon", "lat"), ("east", "north")):
        if x_role in roles and y_role in roles:
            return roles[x_role], roles[y_role]
    return None


def _span(values: np.ndarray) -> str:
    return f"{np.nanmin(values):,.6g} … {np.nanmax(values):,.6g}"


def _to_wgs84(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    with np.errstate(invalid="ignore"):
        lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _km(lon: float, lat: float, centre: tuple[float, float]) -> float:
    """Great-circle distance (spherical, enough to tell 3 km from 400 km)."""
    lon1, lat1, lon2, lat2 = map(np.radians, (lon, lat, *centre))
    h = np.sin((lat2 - lat1) / 2) ** 2 \
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return float(6371.0 * 2 * np.arcsin(np.sqrt(h))) if np.isfinite(h) else float("inf")


def guess_crs(x: np.ndarray, y: np.ndarray, centre: tuple[float, float] | None,
              city: str = "the city") -> tuple[str, str]:
    """(CRS, reason) of coordinates from their ranges; `centre` = the city's (lon, lat)."""
    ok = np.isfinite(x) & np.isfinite(y) & ~((x == 0) & (y == 0))
    x, y = x[ok], y[ok]
    if not len(x):
        return WGS84, "no coordinates in the file: WGS84 assumed, CHECK"
    ranges = f"x {_span(x)}, y {_span(y)}"
    if np.nanmax(np.abs(x)) <= 180 and np.nanmax(np.abs(y)) <= 90:
        return WGS84, f"guessed from the value ranges ({ranges}: degrees)"
    median = float(np.median(x)), float(np.median(y))
    found = []
    for crs in PROJECTED:
        lon, lat = _to_wgs84(np.array([median[0]]), np.array([median[1]]), crs)
        if centre is not None:
            found.append((_km(lon[0], lat[0], centre), crs))
        elif 5.0 <= lon[0] <= 16.0 and 47.0 <= lat[0] <= 55.5:  # within Germany
            found.append((0.0, crs))
    if not found:
        return PROJECTED[0], f"CHECK: {ranges} fit none of {', '.join(PROJECTED)}"
    found.sort()
    km, crs = found[0]
    label = f"{crs} ({PROJECTED_NAMES[crs]})"
    if centre is None:
        others = [c for _, c in found[1:]]
        doubt = f"; CHECK, it also fits {', '.join(others)}" if others else ""
        return crs, f"guessed from the value ranges ({ranges}): {label}{doubt}"
    runner = f"; read as {found[1][1]} it would lie {found[1][0]:,.0f} km away" \
        if len(found) > 1 else ""
    doubt = " CHECK: that is far" if km > NEAR_KM else ""
    return crs, (f"guessed from the value ranges ({ranges}): read as {label} the median point "
                 f"lies {km:,.0f} km from {city}{runner}{doubt}")


def locate(numeric: dict[str, pd.Series], city: Any) -> Coordinates | None:
    """The file's coordinates, their CRS and what the run's georeferencing will reject."""
    pair = find_pair(numeric)
    if pair is None:
        return None
    x = numeric[pair[0]].to_numpy(dtype=float, na_value=np.nan)
    y = numeric[pair[1]].to_numpy(dtype=float, na_value=np.nan)
    extent = _extent(city)
    centre = _centre(extent)
    crs, reason = guess_crs(x, y, centre, getattr(city, "name", "the city"))
    found = Coordinates(pair[0], pair[1], crs, reason)
    if extent is not None:
        _predict(found, x, y, extent)
    return found


def _extent(city: Any) -> Any:
    if city is None:
        return None
    from odp.errors import ConfigError
    from odp.georeference.stage import city_extent

    try:
        return city_extent(city)
    except ConfigError:
        return None


def _centre(extent: Any) -> tuple[float, float] | None:
    if extent is None:
        return None
    west, south, east, north = extent.bbox_wgs84
    return (west + east) / 2, (south + north) / 2


def _predict(found: Coordinates, x: np.ndarray, y: np.ndarray, extent: Any) -> None:
    from odp.georeference.crs import normalise
    from odp.georeference.geometry import OUTSIDE, check_points

    checked = check_points(x, y, normalise(found.crs), extent)
    rules = checked["rule"].to_numpy(dtype=object)
    located = int((np.isfinite(x) & np.isfinite(y)).sum())
    outside = int((rules == OUTSIDE).sum())
    found.outside_keep = located > 0 and outside > OUTSIDE_SHARE * located
    if outside:
        found.notes.append(f"{outside} of {located} located rows lie outside {extent.name} "
                           f"(beyond {extent.buffer_m / 1000:g} km)")
    for rule in sorted(set(rules) - {"", OUTSIDE if found.outside_keep else None}):
        found.predicted[str(rule)] = int((rules == rule).sum())
    missing = len(x) - located
    if missing:
        found.notes.append(f"{missing} rows without coordinates (they get no district)")
