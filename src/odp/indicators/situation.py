"""The current situation: per station, gauge, air station and Stadtteil the latest value, its
level and its time, and the level crossings (entering and leaving a warning level) as events.

Pure functions over the published tables of indicator datasets. How each input is read is a
*profile* (`[source.profiles.NAME]` of the situation dataset, see `odp.sources.situation`), so a
further indicator dataset (a gauge, an air station, per-Stadtteil values) plugs in by
configuration:

    [source.profiles.heavy_rain]
    topic = "starkregen"         # the topic's code in the table (one per profile)
    title = "Starkregen"         # shown on the page, in warnings
    feature = "station"          # station | gauge | air_station | stadtteil
    id = "station_id"            # the input's columns: feature id, its name, time, value …
    name = "station_name"
    time = "timestamp"
    value = "sum_1h"
    parameter = "sum_1h"         # or parameter_column = "pollutant" (one row per value)
    unit = "mm"
    level = "level"
    level_name = "level_name"
    where = { resolution = "10min" }   # only rows with these values
    warn_from = 2                # a level >= 2 is a warning; entering/leaving one is an event
    stadtteile = "nearest"       # Stadtteil rows from the nearest station (Thiessen polygons)
    area = "nearest"             # a warning's Stadtteile: nearest | contains | all | [codes]
    warnings = true              # its crossings are warnings (false: shown, not warned twice)
    hysteresis = { readings = 3 }  # a warning is left only after 3 readings in a row below it

Rows of a `feature = "stadtteil"` input take the place of those a `stadtteile = "nearest"`
profile of the same topic and parameter makes (the nearest rule is the fallback until the
per-Stadtteil dataset is published).

A missing level (undetermined) never starts or ends a warning: the last known one holds.
With `hysteresis = { readings = N }` a warning state is entered at once but left only when N
readings in a row are below it (`odp.indicators.hysteresis`), so a value swinging around a
level warns once; the latest row's `warning` is that held state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.indicators.hysteresis import Hysteresis, held, parse_hysteresis

FEATURES = ("station", "gauge", "air_station", "stadtteil")
AREA_RULES = ("nearest", "contains", "all")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
              "Transport", "Infra", "CBRNE", "Other")
COLUMNS = ["topic", "feature", "feature_id", "parameter", "name", "timestamp", "value", "unit",
           "level", "level_name", "warning", "from_station", "latitude", "longitude", "input"]
EVENT_COLUMNS = ["profile", "topic", "feature", "feature_id", "parameter", "name", "timestamp",
                 "value", "level", "from_level", "to_level", "to_name", "direction", "latitude",
                 "longitude"]


@dataclass(frozen=True)
class Profile:
    """How one input dataset is read into the situation table (see the module docstring)."""

    name: str
    topic: str
    title: str
    feature: str
    id: str
    time: str
    level: str
    value: str | None = None
    level_name: str | None = None
    feature_name: str | None = None
    parameter: str = ""
    parameter_column: str | None = None
    unit: str = ""
    latitude: str = "latitude"
    longitude: str = "longitude"
    where: Mapping[str, Any] = field(default_factory=dict)
    warn_from: int = 1
    stadtteile: str | None = None  # "nearest": Stadtteil rows from this input's stations
    area: str | tuple[str, ...] = "nearest"
    cap: Mapping[str, Any] = field(default_factory=dict)
    warnings: bool = True
    hysteresis: Hysteresis = Hysteresis()

    @property
    def columns(self) -> list[str]:
        """The input columns this profile reads (those the input lacks are an error)."""
        wanted = [self.id, self.time, self.level, self.value, self.level_name,
                  self.feature_name, self.parameter_column, self.latitude, self.longitude,
                  *self.where]
        return [c for c in dict.fromkeys(wanted) if c]

    def severity(self, level: int) -> str:
        """The CAP severity of a warning level (`cap.severity`, keyed by level)."""
        table = {str(k): str(v) for k, v in dict(self.cap.get("severity", {})).items()}
        return table.get(str(level), "Unknown")


def _text(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {key}: a text is needed (got {value!r})")
    return value


def _optional(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where} {key}: a column name is needed (got {value!r})")
    return value


def _area(value: Any, where: str) -> str | tuple[str, ...]:
    if isinstance(value, str) and value in AREA_RULES:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} area: {' | '.join(AREA_RULES)} or a list of Stadtteil codes "
                      f"(got {value!r})")


def _cap(value: Any, where: str) -> dict[str, Any]:
    cap = dict(value or {})
    if cap.get("category", "Other") not in CATEGORIES:
        raise ConfigError(f"{where} cap.category: one of {', '.join(CATEGORIES)} "
                          f"(got {cap['category']!r})")
    bad = [v for v in dict(cap.get("severity", {})).values() if v not in SEVERITIES]
    if bad:
        raise ConfigError(f"{where} cap.severity: one of {', '.join(SEVERITIES)} "
                          f"(got {bad[0]!r})")
    return cap


KNOWN_KEYS = {"topic", "title", "feature", "id", "name", "time", "value", "parameter",
              "parameter_column", "unit", "level", "level_name", "latitude", "longitude", "where",
              "warn_from", "stadtteile", "area", "cap", "warnings", "hysteresis"}


def parse_profile(name: str, table: Mapping[str, Any], where: str) -> Profile:
    """A profile from its configuration table; ConfigError naming the key otherwise."""
    where = f"{where} [source.profiles.{name}]"
    if unknown := sorted(set(table) - KNOWN_KEYS):
        raise ConfigError(f"{where} unknown key '{unknown[0]}' (known: "
                          f"{', '.join(sorted(KNOWN_KEYS))})")
    feature = _text(table, "feature", where)
    if feature not in FEATURES:
        raise ConfigError(f"{where} feature: one of {', '.join(FEATURES)} (got {feature!r})")
    stadtteile = table.get("stadtteile")
    if stadtteile not in (None, "nearest"):
        raise ConfigError(f"{where} stadtteile: \"nearest\" or left out (got {stadtteile!r})")
    warn_from = table.get("warn_from", 1)
    if not isinstance(warn_from, int) or isinstance(warn_from, bool) or warn_from < 1:
        raise ConfigError(f"{where} warn_from: a level >= 1 is needed (got {warn_from!r})")
    if not isinstance(table.get("where", {}), dict):
        raise ConfigError(f"{where} where: a table of column = value is needed")
    if not isinstance(table.get("warnings", True), bool):
        raise ConfigError(f"{where} warnings: true or false (got {table['warnings']!r})")
    return Profile(
        name=name, topic=_text(table, "topic", where), title=_text(table, "title", where),
        feature=feature, id=_text(table, "id", where), time=_text(table, "time", where),
        level=_text(table, "level", where), value=_optional(table, "value", where),
        level_name=_optional(table, "level_name", where),
        feature_name=_optional(table, "name", where),
        parameter=str(table.get("parameter", table.get("value", ""))),
        parameter_column=_optional(table, "parameter_column", where),
        unit=str(table.get("unit", "")),
        latitude=_text(table, "latitude", where, "latitude"),
        longitude=_text(table, "longitude", where, "longitude"),
        where=dict(table.get("where", {})), warn_from=warn_from, stadtteile=stadtteile,
        area=_area(table.get("area", "contains" if feature == "stadtteil" else "nearest"),
                   where),
        cap=_cap(table.get("cap"), where),
        warnings=bool(table.get("warnings", True)),
        hysteresis=parse_hysteresis(table.get("hysteresis"), where, margin=False))  # fmt: skip


# --- the latest row per feature -------------------------------------------------------------


def selected(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The input's rows the profile reads (its `where` filter), sorted by feature and time."""
    keep = np.ones(len(frame), dtype=bool)
    for column, value in profile.where.items():
        keep &= (frame[column].astype("string") == str(value)).fillna(False).to_numpy(bool)
    rows = frame[keep]
    keys = [profile.id, *([profile.parameter_column] if profile.parameter_column else [])]
    return rows.sort_values([*keys, profile.time], kind="stable")


def _column(frame: pd.DataFrame, name: str | None, default: Any = pd.NA) -> pd.Series:
    if name and name in frame:
        return frame[name].reset_index(drop=True)
    return pd.Series([default] * len(frame), dtype="object")


def latest(frame: pd.DataFrame, profile: Profile, lineage: str) -> pd.DataFrame:
    """One row per feature (and parameter): its newest row with a value or a level."""
    rows = selected(frame, profile)
    known = rows[profile.level].notna()
    if profile.value:
        known |= rows[profile.value].notna()
    rows = rows[known.to_numpy(bool)]
    keys = [profile.id, *([profile.parameter_column] if profile.parameter_column else [])]
    rows = rows.groupby(keys, sort=True, dropna=True).tail(1)
    level = pd.array(rows[profile.level].to_numpy(dtype=object, na_value=None), dtype="Int64")
    out = pd.DataFrame({
        "topic": profile.topic, "feature": profile.feature,
        "feature_id": rows[profile.id].astype("string").to_numpy(),
        "parameter": (_column(rows, profile.parameter_column).astype("string") if
                      profile.parameter_column else profile.parameter),
        "name": _column(rows, profile.feature_name).astype("string"),
        "timestamp": pd.to_datetime(rows[profile.time], utc=True).to_numpy(),
        "value": _column(rows, profile.value).astype("Float64"),
        "unit": profile.unit, "level": level,
        "level_name": _column(rows, profile.level_name).astype("string"),
        "warning": pd.array(np.asarray(level.fillna(0)) >= profile.warn_from, dtype="boolean"),
        "from_station": pd.NA,
        "latitude": _column(rows, profile.latitude).astype("Float64"),
        "longitude": _column(rows, profile.longitude).astype("Float64"),
        "input": lineage,
    })  # fmt: skip
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out.loc[out["level"].isna(), "warning"] = pd.NA
    if profile.hysteresis.readings > 1 and len(out):  # a warning not yet left is still one
        found = held_warnings(frame, profile)
        keys = list(zip(out["feature_id"].astype(str), *(
            [out["parameter"].astype(str)] if profile.parameter_column else []), strict=True))
        state = pd.array([found.get(k, pd.NA) for k in keys], dtype="boolean")
        known = out["level"].notna().to_numpy(bool)
        out.loc[known, "warning"] = state[known]
    return out[COLUMNS]


# --- Stadtteile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """The city's smallest districts: code, name, a point inside (WGS84 and the city's
    projected CRS) and the polygon (the city's projected CRS)."""

    codes: np.ndarray
    names: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    geoms: np.ndarray
    crs: str


def units_of(city: Any) -> Units:
    """The city's smallest district level (Dresden: the Stadtteile)."""
    import shapely

    from odp.georeference.crs import WGS84, transform
    from odp.georeference.districts import district_index

    layer = district_index(city).layer
    points = shapely.point_on_surface(layer.geoms)
    x, y = shapely.get_x(points), shapely.get_y(points)
    lon, lat = transform(x, y, city.crs, WGS84)
    return Units(np.asarray(layer.codes, dtype=object), np.asarray(layer.names, dtype=object),
                 np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), x, y,
                 np.asarray(layer.geoms, dtype=object), city.crs)


def nearest_station(units: Units, stations: pd.DataFrame) -> np.ndarray:
    """Per unit the index (into `stations`) of the station nearest its inside point — the
    Thiessen (Voronoi) polygon the point lies in; -1 when no station has a position. Ties go
    to the first station (stations sorted by id)."""
    from odp.georeference.crs import WGS84, transform

    lon = stations["longitude"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    lat = stations["latitude"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    placed = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    if not len(placed):
        return np.full(len(units.codes), -1)
    sx, sy = transform(lon[placed], lat[placed], WGS84, units.crs)
    dx = units.x[:, None] - np.asarray(sx, dtype=float)[None, :]
    dy = units.y[:, None] - np.asarray(sy, dtype=float)[None, :]
    return placed[np.argmin(dx * dx + dy * dy, axis=1)]


def stadtteil_rows(stations: pd.DataFrame, units: Units) -> pd.DataFrame:
    """Per Stadtteil the row of its nearest station (same topic, parameter, time, value and
    level), at the Stadtteil's inside point; `from_station` names the station."""
    out = []
    for _, group in stations.groupby(["topic", "parameter"], sort=True):
        group = group.sort_values("feature_id", kind="stable").reset_index(drop=True)
        pick = nearest_station(units, group)
        found = pick >= 0
        rows = group.iloc[pick[found]].reset_index(drop=True)
        rows["from_station"] = rows["feature_id"].astype("string")
        rows["feature"] = "stadtteil"
        rows["feature_id"] = pd.array(units.codes[found], dtype="string")
        rows["name"] = pd.array(units.names[found], dtype="string")
        rows["longitude"] = pd.array(np.round(units.lon[found], 6), dtype="Float64")
        rows["latitude"] = pd.array(np.round(units.lat[found], 6), dtype="Float64")
        out.append(rows)
    return pd.concat(out, ignore_index=True)[COLUMNS] if out else empty()


KEY = ["topic", "feature", "feature_id", "parameter"]


def combined(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The parts as one table, one row per key: a Stadtteil input's row wins over the one the
    nearest station gave (`from_station` set), otherwise the first part's."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    rows = pd.concat(parts, ignore_index=True)
    fallback = rows["from_station"].notna().to_numpy(bool) & (
        rows["feature"] == "stadtteil").to_numpy(bool)
    order = np.argsort(fallback, kind="stable")  # real rows first, in the given order
    rows = rows.iloc[order].drop_duplicates(KEY, keep="first")
    return rows.sort_index(kind="stable").reset_index(drop=True)


def empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


def areas(profile: Profile, rows: pd.DataFrame, units: Units) -> dict[str, list[str]]:
    """Per feature id of a profile the Stadtteil codes its warnings are for."""
    ids = rows["feature_id"].astype("string").tolist()
    if profile.feature == "stadtteil":
        return {i: [i] for i in ids}
    if isinstance(profile.area, tuple):
        return {i: list(profile.area) for i in ids}
    if profile.area == "all":
        return {i: [str(c) for c in units.codes] for i in ids}
    if profile.area == "contains":
        return {i: _containing(units, lon, lat) for i, lon, lat in
                zip(ids, rows["longitude"], rows["latitude"], strict=True)}
    stations = rows.sort_values("feature_id", kind="stable").reset_index(drop=True)
    pick = nearest_station(units, stations)
    out: dict[str, list[str]] = {str(i): [] for i in stations["feature_id"]}
    for code, index in zip(units.codes, pick, strict=True):
        if index >= 0:
            out[str(stations["feature_id"].iloc[index])].append(str(code))
    return out


def _containing(units: Units, lon: Any, lat: Any) -> list[str]:
    import shapely

    from odp.georeference.crs import WGS84, transform

    if pd.isna(lon) or pd.isna(lat):
        return []
    x, y = transform(np.array([float(lon)]), np.array([float(lat)]), WGS84, units.crs)
    inside = shapely.intersects_xy(units.geoms, float(np.asarray(x)[0]), float(np.asarray(y)[0]))
    return [str(c) for c in units.codes[np.asarray(inside, dtype=bool)]]


# --- level crossings --------------------------------------------------------------------------


def _state(level: np.ndarray, warn_from: int) -> np.ndarray:
    """The warning state: the level where it is a warning, 0 below."""
    return np.where(level >= warn_from, level, 0)


def held_state(level: np.ndarray, profile: Profile) -> np.ndarray:
    """The warning state of a series of known levels, held by the profile's hysteresis."""
    state = _state(level, profile.warn_from)
    readings = profile.hysteresis.readings
    return held(state, state, readings) if readings > 1 else state


def held_warnings(frame: pd.DataFrame, profile: Profile) -> pd.Series:
    """Per feature (and parameter; index: those keys as text) whether its held warning state
    at its newest known level is a warning."""
    rows = selected(frame, profile)
    rows = rows[rows[profile.level].notna().to_numpy(bool)]
    keys = [profile.id, *([profile.parameter_column] if profile.parameter_column else [])]
    out = {}
    for key, group in rows.groupby(keys, sort=True):
        level = group[profile.level].to_numpy(dtype=float).astype(np.int64)
        out[tuple(str(k) for k in key)] = bool(held_state(level, profile)[-1] > 0)
    return pd.Series(out, dtype="boolean")


def crossings(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Entering and leaving a warning level, per feature (and parameter), in time order: the
    first row at a new warning state (levels below `warn_from` are one state, "no warning";
    rows without a level are skipped, so an undetermined level never ends a warning). A
    series that starts at a warning level enters it at its first row."""
    rows = selected(frame, profile)
    rows = rows[rows[profile.level].notna().to_numpy(bool)]
    keys = [profile.id, *([profile.parameter_column] if profile.parameter_column else [])]
    out = []
    for _, group in rows.groupby(keys, sort=True):
        level = group[profile.level].to_numpy(dtype=float).astype(np.int64)
        state = held_state(level, profile)
        before = np.r_[0, state[:-1]]
        at = np.flatnonzero(state != before)
        if len(at):
            out.append(_events(group.iloc[at], profile, before[at], state[at], level, at))
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})
    return pd.concat(out, ignore_index=True)


def _events(rows: pd.DataFrame, profile: Profile, before: np.ndarray, after: np.ndarray,
            level: np.ndarray, at: np.ndarray) -> pd.DataFrame:
    names = _column(rows, profile.level_name).astype("string")
    return pd.DataFrame({
        "profile": profile.name, "topic": profile.topic, "feature": profile.feature,
        "feature_id": rows[profile.id].astype("string").to_numpy(),
        "parameter": (rows[profile.parameter_column].astype("string").to_numpy() if
                      profile.parameter_column else profile.parameter),
        "name": _column(rows, profile.feature_name).astype("string").to_numpy(),
        "timestamp": pd.to_datetime(rows[profile.time], utc=True).to_numpy(),
        "value": _column(rows, profile.value).astype("Float64").to_numpy(),
        "level": level[at], "from_level": before, "to_level": after,
        "to_name": names.to_numpy(),
        "direction": np.where(after > before, "up", "down"),
        "latitude": _column(rows, profile.latitude).astype("Float64").to_numpy(),
        "longitude": _column(rows, profile.longitude).astype("Float64").to_numpy(),
    })  # fmt: skip


def msg_types(events: pd.DataFrame) -> list[str]:
    """CAP message type per event: entering a warning from none is an Alert, a change between
    warning levels an Update, the end of a warning a Cancel."""
    return ["Alert" if a == 0 else "Cancel" if b == 0 else "Update"
            for a, b in zip(events["from_level"], events["to_level"], strict=True)]


def previous_in_series(events: pd.DataFrame, keys: Sequence[str] = (
        "topic", "feature", "feature_id", "parameter")) -> list[int]:
    """Per event the index of the event before it in the same series (-1 for the first)."""
    out, last = [], {}
    for i, key in enumerate(zip(*(events[k] for k in keys), strict=True)):
        out.append(last.get(key, -1))
        last[key] = i
    return out
