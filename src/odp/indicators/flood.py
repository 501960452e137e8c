"""Flood (Hochwasser) at water-level gauges: alarm level, trend, when the next level would be
reached if the trend held, and the crossings of alarm levels.

Every number comes from the city file's `[indicators.flood]` (the Richtwerte of each gauge with
their source there). Definitions, per configured gauge on its regular UTC grid (PEGELONLINE:
15 minutes) from its first value to the input's newest time (over all gauges, so a gauge that
stopped reporting shows up); a time without a value is missing, never 0 cm:
  * `alarm_level` — the highest level whose Richtwert the water level W reaches (W ≥ Richtwert:
    "Alarmstufe 1 ab 4 m"); 0 below the first; null when W is missing.
  * `trend_{h}h` — (W(t) − W(t − h)) / h in cm/h; null when either value is missing.
  * `next_level`, `next_threshold`, `next_level_at` — with the configured trend (`forecast_trend`)
    rising: the level above and the time W would reach its Richtwert; falling: the level below
    and the time W would fall to the current level's Richtwert. Only within `horizon_hours`
    (a trend is not a forecast); otherwise null.
  * `held_level` — the alarm level with the configured hysteresis (`[indicators.flood.
    hysteresis]`, `odp.indicators.hysteresis`): entered when W reaches the Richtwert, left only
    when W has been more than `margin` below it for `readings` consecutive measurements; null
    when W is missing. Without a hysteresis it equals `alarm_level`.
  * crossing — a measured W whose held level differs from that of the gauge's previous
    measured W (a gap in between does not hide a crossing: it is reported at the first value
    after it). A water level swinging around a Richtwert crosses it once, not at every swing.
Vectorised per gauge (numpy; no loop over rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.indicators.hysteresis import Hysteresis, held_levels, parse_hysteresis
from odp.indicators.series import (
    EMPTY,
    HOUR,
    MINUTE,
    Computed,
    ceil_to,
    grid_stamps,
    merge,
    on_grid,
    spans_frame,
    station_arrays,
    utc_times,
)

NAT = np.iinfo(np.int64).min  # NaT as nanoseconds


@dataclass(frozen=True)
class Gauge:
    station: str  # the input's station value (PEGELONLINE number, e.g. 501060)
    name: str
    thresholds: tuple[float, ...]  # cm, Richtwert of level 1, 2, … (ascending)
    source: str


@dataclass(frozen=True)
class FloodConfig:
    gauges: dict[str, Gauge]
    trends: tuple[int, ...] = (1, 6)  # hours
    forecast_trend: int = 6  # hours of the trend next_level_at extrapolates
    horizon_hours: float = 48.0
    none_name: str = "keine Alarmstufe"
    undetermined_name: str = "unbestimmt"
    level_name: str = "Alarmstufe {level}"
    hysteresis: Hysteresis = Hysteresis()

    def name(self, level: float) -> str:
        if np.isnan(level):
            return self.undetermined_name
        return self.none_name if level == 0 else self.level_name.format(level=int(level))


def _gauge(station: str, item: Any, where: str) -> Gauge:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: gauges.{station}: a table with levels = [cm, …] and source")
    levels = item.get("levels")
    if not isinstance(levels, list) or not levels or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in levels):
        raise ConfigError(f"{where}: gauges.{station}.levels: the Richtwerte in cm, e.g. "
                          "[400, 500, 600, 700]")
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        raise ConfigError(f"{where}: gauges.{station}.levels must rise from level 1 upwards")
    if not str(item.get("source", "")).strip():
        raise ConfigError(f"{where}: gauges.{station}: say where the Richtwerte come from "
                          "(source = \"…\")")
    return Gauge(station, str(item.get("name", station)), tuple(float(v) for v in levels),
                 str(item["source"]))


def parse_config(table: Mapping[str, Any], where: str) -> FloodConfig:
    """`[indicators.flood]` of the city file → FloodConfig (checked)."""
    gauges = table.get("gauges")
    if not isinstance(gauges, Mapping) or not gauges:
        raise ConfigError(f"{where}: [gauges.NUMBER] tables with levels and source")
    trends = table.get("trends", [1, 6])
    if not isinstance(trends, list) or not trends or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in trends):
        raise ConfigError(f"{where}: trends must be a list of whole hours, e.g. [1, 6]")
    forecast = table.get("forecast_trend", max(trends))
    if forecast not in trends:
        raise ConfigError(f"{where}: forecast_trend = {forecast} is not one of trends {trends}")
    horizon = table.get("horizon_hours", 48)
    if not isinstance(horizon, int | float) or horizon <= 0:
        raise ConfigError(f"{where}: horizon_hours must be a number of hours above 0")
    return FloodConfig(
        gauges={str(k): _gauge(str(k), v, where) for k, v in gauges.items()},
        trends=tuple(sorted(trends)), forecast_trend=int(forecast),
        horizon_hours=float(horizon),
        none_name=str(table.get("none", "keine Alarmstufe")),
        undetermined_name=str(table.get("undetermined", "unbestimmt")),
        level_name=str(table.get("level_name", "Alarmstufe {level}")),
        hysteresis=parse_hysteresis(table.get("hysteresis"), where))


# --- levels and trends -------------------------------------------------------------------------


def _steps(hours: int, step: int) -> int:
    if (hours * HOUR) % step:
        raise ConfigError(f"a trend over {hours} h is not a whole number of "
                          f"{step // MINUTE}-minute steps")
    return hours * HOUR // step


def alarm_levels(water: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
    """Level per value (float: NaN where the value is missing): thresholds reached (W ≥ R)."""
    level = np.searchsorted(np.asarray(thresholds), np.nan_to_num(water, nan=-np.inf),
                            side="right").astype(float)
    return np.where(np.isnan(water), np.nan, level)


def _next(stamps: np.ndarray, water: np.ndarray, level: np.ndarray, trend: np.ndarray,
          gauge: Gauge, horizon: float) -> dict[str, np.ndarray]:
    """The level the trend leads to, its Richtwert and when W would reach it (NaN / NaT)."""
    thresholds = np.asarray(gauge.thresholds)
    top = len(thresholds)
    known = ~np.isnan(level)
    up = known & (np.nan_to_num(trend) > 0) & (np.nan_to_num(level, nan=top) < top)
    down = known & (np.nan_to_num(trend) < 0) & (np.nan_to_num(level) > 0)
    index = np.clip(np.nan_to_num(level).astype(int), 0, top)
    threshold = np.where(up, thresholds[np.minimum(index, top - 1)],
                         np.where(down, thresholds[np.maximum(index - 1, 0)], np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        hours = (threshold - water) / trend
    hours = np.where(up | down, np.maximum(hours, 0.0), np.nan)
    within = hours <= horizon
    at = stamps + np.round(np.nan_to_num(hours) * 60).astype(np.int64) * MINUTE
    return {"next_level": np.where(within, np.where(up, level + 1, level - 1), np.nan),
            "next_threshold": np.where(within, threshold, np.nan),
            "next_level_at": np.where(within, at, NAT)}


def held_series(times: np.ndarray, values: np.ndarray, gauge: Gauge,
                config: FloodConfig) -> tuple[np.ndarray, np.ndarray]:
    """(times, held alarm level) of a gauge's measured values (all of them: the held level
    depends on the whole past)."""
    present = ~np.isnan(values)
    return times[present], held_levels(values[present], gauge.thresholds, config.hysteresis)


def levels(times: np.ndarray, values: np.ndarray, lo: int, hi: int, step: int, gauge: Gauge,
           config: FloodConfig,
           held: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Water level, alarm level, held level, trends and the next level at each grid time
    lo … hi of one gauge (arrays; `timestamp` and `next_level_at` in ns, NaT as NAT). `held`:
    the gauge's `held_series` when computed already."""
    steps = {h: _steps(h, step) for h in config.trends}
    reach = max(steps.values()) * step
    hi -= (hi - lo) % step
    grid = on_grid(times, values, lo - reach, hi, step)
    first = reach // step
    water = grid[first:]
    stamps = grid_stamps(lo, hi, step)
    out: dict[str, np.ndarray] = {"timestamp": stamps, "water_level": water}
    for h, k in steps.items():
        out[f"trend_{h}h"] = np.round((water - grid[first - k:len(grid) - k]) / h, 2)
    out["alarm_level"] = alarm_levels(water, gauge.thresholds)
    measured, held = held if held is not None else held_series(times, values, gauge, config)
    out["held_level"] = on_grid(measured, held.astype(float), lo, hi, step)
    out.update(_next(stamps, water, out["alarm_level"], out[f"trend_{config.forecast_trend}h"],
                     gauge, config.horizon_hours))
    return out


LEVEL_COLUMNS = ["station_id", "timestamp", "water_level", "alarm_level", "alarm_name",
                 "held_level", "held_name", "next_level", "next_threshold", "next_level_at"]


def _integers(values: np.ndarray) -> pd.array:
    return pd.array(values, dtype="Float64").astype("Int64")


def _level_frame(part: dict[str, np.ndarray], station: str, config: FloodConfig) -> pd.DataFrame:
    frame = pd.DataFrame({"station_id": station, "timestamp": utc_times(part["timestamp"]),
                          "water_level": part["water_level"],
                          "alarm_level": _integers(part["alarm_level"]),
                          "alarm_name": _names(part["alarm_level"], config),
                          "held_level": _integers(part["held_level"]),
                          "held_name": _names(part["held_level"], config)})
    for h in config.trends:
        frame[f"trend_{h}h"] = part[f"trend_{h}h"]
    frame["next_level"] = _integers(part["next_level"])
    frame["next_threshold"] = part["next_threshold"]
    frame["next_level_at"] = pd.to_datetime(part["next_level_at"].view("M8[ns]"), utc=True)
    return frame


def _names(level: np.ndarray, config: FloodConfig) -> np.ndarray:
    """Level names, one per distinct level (not per row)."""
    names = np.full(len(level), config.undetermined_name, dtype=object)
    for value in np.unique(level[~np.isnan(level)]):
        names[level == value] = config.name(value)
    return names


def compute_levels(series: pd.DataFrame, step: int, changed: Mapping[str, list[tuple[int, int]]],
                   grid_end: int, config: FloodConfig) -> Computed:
    """The rows whose values the changed input intervals ([lo, hi) in ns, per gauge) touch:
    those at lo … hi − 1 + the longest trend; with a hysteresis to the input's end (a changed
    value can change the held level of every later row). Gauges not configured get no rows
    (their span removes rows staged before they were taken out of the configuration)."""
    stations = station_arrays(series)
    reach = max(_steps(h, step) for h in config.trends) * step
    parts, spans = [], []
    for station, intervals in changed.items():
        gauge = config.gauges.get(station)
        times, values = stations.get(station, EMPTY)
        held = held_series(times, values, gauge, config) if gauge is not None else None
        wanted = [(ceil_to(lo, step), max(hi - 1 + reach, grid_end) if config.hysteresis.active
                   else hi - 1 + reach) for lo, hi in intervals]
        for lo, hi in merge(wanted, reach):
            spans.append((station, lo, hi))
            if gauge is None or not len(times):
                continue
            a, b = ceil_to(max(lo, int(times[0])), step), min(hi, grid_end)
            if a <= b:
                parts.append(_level_frame(levels(times, values, a, b, step, gauge, config,
                                                 held), station, config))
    columns = [*LEVEL_COLUMNS, *(f"trend_{h}h" for h in config.trends)]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return Computed(rows, spans_frame(spans))


# --- crossings ---------------------------------------------------------------------------------

CROSSING_COLUMNS = ["station_id", "timestamp", "previous_timestamp", "water_level",
                    "previous_water_level", "from_level", "to_level", "direction",
                    "from_name", "to_name", "threshold"]


def crossings(times: np.ndarray, values: np.ndarray, gauge: Gauge,
              config: FloodConfig) -> pd.DataFrame:
    """Every crossing of a held alarm level in a gauge's measured values (sorted times)."""
    present = ~np.isnan(values)
    t, w = times[present], values[present]
    level = held_levels(w, gauge.thresholds, config.hysteresis).astype(float)
    at = np.flatnonzero(np.diff(level) != 0) + 1
    before, after = level[at - 1], level[at]
    rising = after > before
    thresholds = np.asarray(gauge.thresholds)
    # the Richtwert crossed last: rising, that of the level reached; falling, that of the level
    # left (a jump over several levels names the nearest one to the new value)
    crossed = np.where(rising, thresholds[np.maximum(after.astype(int) - 1, 0)],
                       thresholds[np.minimum(after.astype(int), len(thresholds) - 1)])
    return pd.DataFrame({
        "timestamp": utc_times(t[at]), "previous_timestamp": utc_times(t[at - 1]),
        "water_level": w[at], "previous_water_level": w[at - 1],
        "from_level": _integers(before), "to_level": _integers(after),
        "direction": np.where(rising, "steigend", "fallend"),
        "from_name": _names(before, config), "to_name": _names(after, config),
        "threshold": crossed,
    })


def compute_crossings(series: pd.DataFrame, step: int,
                      changed: Mapping[str, list[tuple[int, int]]], grid_end: int,
                      config: FloodConfig) -> Computed:
    """The crossings the changed input intervals can touch: a crossing at t depends on the
    values at t and at the gauge's previous measurement, so a change in [lo, hi) touches the
    crossings from lo to the first measurement at or after hi — with a hysteresis to the
    input's end (the held level after a change depends on it). Spans are on `timestamp`."""
    stations = station_arrays(series)
    parts, spans = [], []
    for station, intervals in changed.items():
        gauge = config.gauges.get(station)
        times, values = stations.get(station, EMPTY)
        measured = times[~np.isnan(values)]
        wanted = []
        for lo, hi in intervals:
            j = np.searchsorted(measured, hi, "left")
            end = int(measured[j]) if j < len(measured) else max(hi - 1, grid_end)
            if config.hysteresis.active:
                end = max(end, hi - 1, grid_end)
            wanted.append((lo, end))
        wanted = merge(wanted, 0)
        spans.extend((station, lo, hi) for lo, hi in wanted)
        if gauge is None or not len(measured):
            continue
        found = crossings(times, values, gauge, config)
        stamp = found["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
        keep = np.zeros(len(found), dtype=bool)
        for lo, hi in wanted:
            keep |= (stamp >= lo) & (stamp <= hi)
        if keep.any():
            parts.append(found[keep].assign(station_id=station))
    rows = (pd.concat(parts, ignore_index=True)[CROSSING_COLUMNS] if parts
            else pd.DataFrame(columns=CROSSING_COLUMNS))
    return Computed(rows, spans_frame(spans))
