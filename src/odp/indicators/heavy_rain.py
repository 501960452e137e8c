"""Heavy rain (Starkregen) from precipitation series: rolling sums on a regular UTC grid with
their completeness, the DWD warning level each time step reaches, and heavy-rain events.

Every number comes from the city file's `[indicators.heavy_rain]` (each with its source there).
Definitions:
  * grid — per station one step per input interval (10 min, 1 h) from its first value to the
    input's newest time (over all stations, so a station that stopped reporting shows up). A
    time without a row, or a row without a value (DWD -999), is a missing value, never 0.
  * window — the h-hour window ending at t holds the values of the intervals ending in
    (t − h, t] (MESS_DATUM is the end of its interval); h·60/step values are expected. Windows
    are in UTC: a day of the DST change is 24 hours like any other.
  * `sum_{h}h` — sum of the window's present values (null when none is present);
    `completeness_{h}h` — present / expected values.
  * `level` — the highest configured level (DWD Warnstufe) whose limit one of its windows
    exceeds (sum > limit; a sum of present values only grows with the missing ones, so an
    incomplete window that exceeds a limit reached that level at least); 0 when every window a
    level looks at is complete and none exceeds its lowest limit; null ("unbestimmt") otherwise:
    missing input is never classified as "no heavy rain".
  * `return_period` — only where `[indicators.heavy_rain.kostra]` names a KOSTRA-DWD table and
    the station's grid cell: the longest tabulated return period (years) whose design depth
    hN(D, T) of the cell one of the window sums reaches (sum ≥ hN, D = the window's duration:
    1 h = D60, 6 h = D360, …); 0 below every T of every window with a table, when every window
    is complete; null without a table or cell, or below it with values missing.
  * event — a maximal run of time steps lying in some window that exceeds a limit of the lowest
    level; it starts at the beginning of its first wet interval and ends at the end of its last
    wet interval; `total` sums its present values, `level` is the highest its windows reached.
Vectorised per station (numpy cumulative sums; no loop over rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.indicators.series import (
    DAY,
    MINUTE,
    Computed,
    ceil_to,
    merge,
    on_grid,
    spans_frame,
    station_arrays,
    utc_times,
)

__all__ = ["MINUTE", "Computed", "compute_events", "compute_windows", "parse_config"]

_WINDOW = re.compile(r"^([1-9][0-9]*)h$")


@dataclass(frozen=True)
class Level:
    level: int  # DWD Warnstufe (2 markant, 3 Unwetter, 4 extremes Unwetter)
    name: str
    limits: dict[int, float]  # window hours -> mm (= l/m²); reached when a sum is greater


@dataclass(frozen=True)
class Kostra:
    """A KOSTRA-DWD table: per grid cell and duration (hours) the design depths (mm) of the
    tabulated return periods (years), both ascending; and each station's grid cell."""

    cells: dict[str, str]  # station id -> INDEX_RC
    depths: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]  # (cell, hours) -> (T, hN)


@dataclass(frozen=True)
class HeavyRainConfig:
    sums: tuple[int, ...]  # hours of the published rolling sums
    levels: tuple[Level, ...]  # ascending by level
    none_name: str = "kein Starkregen"
    undetermined_name: str = "unbestimmt"
    kostra: Kostra | None = None

    @property
    def criteria(self) -> list[int]:
        """Hours of the windows the levels look at (e.g. 1 and 6)."""
        return sorted({h for lv in self.levels for h in lv.limits})

    @property
    def hours(self) -> list[int]:
        return sorted({*self.sums, *self.criteria, 1})

    @property
    def lowest(self) -> dict[int, float]:
        """Per criterion window the smallest limit of any level (what makes an event)."""
        return {h: min(lv.limits[h] for lv in self.levels if h in lv.limits)
                for h in self.criteria}


def parse_config(table: Mapping[str, Any], where: str) -> HeavyRainConfig:
    """`[indicators.heavy_rain]` of the city file → HeavyRainConfig (checked)."""
    sums = table.get("sums", [1, 6, 24, 72])
    if not sums or not all(isinstance(h, int) and h > 0 for h in sums):
        raise ConfigError(f"{where}: sums must be a list of whole hours, e.g. [1, 6, 24, 72]")
    raw_levels = table.get("levels")
    if not isinstance(raw_levels, Mapping) or not raw_levels:
        raise ConfigError(f"{where}: [levels.NAME] tables with level and limits (\"1h\" = 15.0)")
    levels = []
    for key, item in raw_levels.items():
        if not isinstance(item, Mapping) or not isinstance(item.get("level"), int):
            raise ConfigError(f"{where}: levels.{key}: needs an integer 'level'")
        limits = {}
        for name, value in item.items():
            if match := _WINDOW.match(str(name)):
                if not isinstance(value, int | float) or value < 0:
                    raise ConfigError(f"{where}: levels.{key}.{name}: a limit in mm (≥ 0)")
                limits[int(match.group(1))] = float(value)
        if not limits:
            raise ConfigError(f"{where}: levels.{key}: no limit (e.g. 1h = 15.0)")
        levels.append(Level(int(item["level"]), str(item.get("name", key)), limits))
    levels.sort(key=lambda lv: lv.level)
    if levels[0].level <= 0 or len({lv.level for lv in levels}) != len(levels):
        raise ConfigError(f"{where}: levels must be distinct and above 0 (0 means none)")
    kostra = table.get("kostra")
    return HeavyRainConfig(tuple(sums), tuple(levels), str(table.get("none", "kein Starkregen")),
                           str(table.get("undetermined", "unbestimmt")),
                           None if kostra is None else parse_kostra(kostra, table.get("_root"),
                                                                    f"{where}.kostra"))


KOSTRA_COLUMNS = ("index_rc", "duration_min", "return_period_a", "depth_mm")


def parse_kostra(table: Any, root: Any, where: str) -> Kostra:
    """`[indicators.heavy_rain.kostra]`: `table` (a CSV file, relative to the project, columns
    index_rc, duration_min, return_period_a, depth_mm: one row per grid cell, duration and
    return period, as the DWD's per-duration KOSTRA-DWD-2020 tables give them) and `cells`
    (station id = INDEX_RC of its grid cell)."""
    from pathlib import Path

    if not isinstance(table, Mapping) or not isinstance(table.get("table"), str):
        raise ConfigError(f"{where}: table = \"FILE.csv\" and cells = {{ STATION = INDEX_RC }}")
    cells = table.get("cells")
    if not isinstance(cells, Mapping) or not cells:
        raise ConfigError(f"{where}.cells: each station's grid cell, e.g. \"01048\" = \"123456\"")
    path = Path(str(root or ".")) / table["table"]
    if not path.is_file():
        raise ConfigError(f"{where}.table: {path} not found")
    frame = pd.read_csv(path, dtype={"index_rc": "string"}, comment="#")
    if missing := [c for c in KOSTRA_COLUMNS if c not in frame]:
        raise ConfigError(f"{path.name}: no column {missing[0]} (needed: "
                          f"{', '.join(KOSTRA_COLUMNS)})")
    return Kostra({str(k): str(v) for k, v in cells.items()}, _depths(frame, path.name))


def _depths(frame: pd.DataFrame, name: str) -> dict[tuple[str, int], tuple[np.ndarray,
                                                                            np.ndarray]]:
    out = {}
    for (cell, minutes), group in frame.groupby(["index_rc", "duration_min"], sort=True):
        if int(minutes) % 60:
            continue  # 5 … 45 minutes: shorter than any window here
        group = group.sort_values("return_period_a", kind="stable")
        depth = group["depth_mm"].to_numpy(dtype=float)
        wrong = np.flatnonzero(np.isnan(depth) | (np.r_[-np.inf, depth[:-1]] > depth))
        if len(wrong):
            row = int(group.index[wrong[0]]) + 1  # data rows, from 1 (header, comments apart)
            raise ConfigError(f"{name} data row {row}: depth_mm of cell {cell}, duration "
                              f"{minutes} min must be present and rise with return_period_a")
        out[(str(cell), int(minutes) // 60)] = (
            group["return_period_a"].to_numpy(dtype=float), depth)
    return out


def return_periods(station: str, sums: Mapping[int, np.ndarray], complete: np.ndarray,
                   config: HeavyRainConfig) -> np.ndarray:
    """Per window end the longest tabulated return period any window sum reaches (float: NaN =
    no table, or below it while values are missing)."""
    n = len(complete)
    kostra = config.kostra
    cell = kostra.cells.get(station) if kostra else None
    tables = {h: kostra.depths[(cell, h)] for h in sums
              if kostra and cell and (cell, h) in kostra.depths}
    if not tables:
        return np.full(n, np.nan)
    years = np.zeros(n)
    for h, (periods, depth) in tables.items():
        reached = np.searchsorted(depth, np.nan_to_num(sums[h], nan=-1.0), side="right")
        years = np.fmax(years, np.r_[0.0, periods][reached])
    return np.where((years == 0) & ~complete, np.nan, years)


# --- the grid and its windows -----------------------------------------------------------------


def _steps(hours: int, step: int) -> int:
    minutes = step // MINUTE
    if step % MINUTE or (hours * 60) % minutes:
        raise ConfigError(f"a window of {hours} h is not a whole number of {minutes}-minute steps")
    return hours * 60 // minutes




def _window(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums (rounded to 0.01 mm, NaN when nothing is present) and counts of present values of
    the windows of k steps ending at each position."""
    present = ~np.isnan(values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(present, values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(present)))
    hi = np.arange(1, len(values) + 1)
    lo = np.maximum(hi - k, 0)
    total = np.round(sums[hi] - sums[lo], 2)
    count = counts[hi] - counts[lo]
    return np.where(count > 0, total, np.nan), count


def _levels(sums: dict[int, np.ndarray], counts: dict[int, np.ndarray],
            steps: dict[int, int], config: HeavyRainConfig) -> np.ndarray:
    """Level per position (float: NaN = undetermined)."""
    n = len(next(iter(sums.values())))
    level = np.full(n, np.nan)
    for lv in config.levels:
        hit = np.zeros(n, dtype=bool)
        for h, limit in lv.limits.items():
            hit |= np.nan_to_num(sums[h], nan=-1.0) > limit
        level = np.where(hit, np.fmax(level, lv.level), level)
    complete = np.ones(n, dtype=bool)
    for h in config.criteria:
        complete &= counts[h] == steps[h]
    return np.where(np.isnan(level) & complete, 0.0, level)


def _level_names(level: np.ndarray, config: HeavyRainConfig) -> pd.Series:
    names = np.full(len(level), config.undetermined_name, dtype=object)
    names[level == 0] = config.none_name
    for lv in config.levels:
        names[level == lv.level] = lv.name
    return pd.Series(names, dtype="string")












# --- windows ------------------------------------------------------------------------------------


def window_columns(config: HeavyRainConfig) -> list[str]:
    return [c for h in config.sums for c in (f"sum_{h}h", f"completeness_{h}h")]


def windows(times: np.ndarray, values: np.ndarray, lo: int, hi: int, step: int,
            config: HeavyRainConfig) -> dict[str, np.ndarray]:
    """The windows ending at each grid time lo … hi of one station (arrays: `timestamp` in ns,
    `precipitation`, `sum_{h}h`, `count_{h}h`, `completeness_{h}h`, `level`)."""
    steps = {h: _steps(h, step) for h in config.hours}
    reach = (max(steps.values()) - 1) * step
    hi -= (hi - lo) % step
    grid = on_grid(times, values, lo - reach, hi, step)
    first = reach // step
    stamps = lo + step * np.arange((hi - lo) // step + 1, dtype=np.int64)  # exact (no floats)
    out: dict[str, np.ndarray] = {"timestamp": stamps,
                                  "precipitation": grid[first:]}
    sums, counts = {}, {}
    for h, k in steps.items():
        total, count = _window(grid, k)
        sums[h], counts[h] = total[first:], count[first:]
        out[f"sum_{h}h"], out[f"count_{h}h"] = sums[h], counts[h]
        out[f"completeness_{h}h"] = np.round(counts[h] / k, 4)
    out["level"] = _levels(sums, counts, steps, config)
    complete = np.ones(len(stamps), dtype=bool)
    for h in sums:
        complete &= counts[h] == steps[h]
    out["complete"] = complete
    return out


def compute_windows(series: pd.DataFrame, step: int, changed: Mapping[str, list[tuple[int, int]]],
                    grid_end: int, config: HeavyRainConfig) -> Computed:
    """The windows whose values the changed input intervals ([lo, hi) in ns, per station) touch:
    those ending from lo to hi − 1 + the longest window (clipped to the station's grid)."""
    stations = station_arrays(series)
    reach = (max(_steps(h, step) for h in config.hours) - 1) * step
    parts, spans = [], []
    for station, intervals in changed.items():
        times, values = stations.get(station, (np.empty(0, np.int64), np.empty(0)))
        merged = merge([(ceil_to(lo, step), hi - 1 + reach) for lo, hi in intervals], reach)
        for lo, hi in merged:
            spans.append((station, lo, hi))  # on the grid: a row before lo is not recomputed
            if not len(times):
                continue
            a, b = ceil_to(max(lo, int(times[0])), step), min(hi, grid_end)
            if a > b:
                continue
            part = windows(times, values, a, b, step, config)
            frame = pd.DataFrame({"timestamp": utc_times(part["timestamp"]),
                                  "precipitation": part["precipitation"]})
            for h in config.sums:
                frame[f"sum_{h}h"] = part[f"sum_{h}h"]
                frame[f"completeness_{h}h"] = part[f"completeness_{h}h"]
            frame["level"] = pd.array(part["level"], dtype="Float64").astype("Int64")
            frame["level_name"] = _level_names(part["level"], config).to_numpy()
            years = return_periods(station, {h: part[f"sum_{h}h"] for h in config.hours},
                                   part["complete"], config)
            frame["return_period"] = pd.array(years, dtype="Float64").astype("Int64")
            frame.insert(0, "station_id", station)
            parts.append(frame)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["station_id", "timestamp", "precipitation", *window_columns(config), "level",
                 "level_name", "return_period"])
    return Computed(rows, spans_frame(spans))


# --- events -------------------------------------------------------------------------------------


EVENT_COLUMNS = ["station_id", "start_time", "end_time", "duration_min", "total", "completeness",
                 "peak_10min", "peak_1h", "level", "level_name"]


def _coverage(times: np.ndarray, values: np.ndarray, lo: int, hi: int, step: int,
              config: HeavyRainConfig, grid_end: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Windows at lo … hi and whether each step lies in a window exceeding a lowest limit
    (windows ending up to the longest criterion window after hi are looked at)."""
    criteria = {h: _steps(h, step) for h in config.criteria}
    ahead = (max(criteria.values()) - 1) * step
    top = min(hi + ahead, max(grid_end, hi))
    part = windows(times, values, lo, top, step, config)
    n = (hi - lo) // step + 1
    covered = np.zeros(len(part["timestamp"]), dtype=bool)
    for h, k in criteria.items():
        flagged = np.nan_to_num(part[f"sum_{h}h"], nan=-1.0) > config.lowest[h]
        runs = np.concatenate(([0], np.cumsum(flagged)))
        start = np.arange(len(flagged))
        end = np.minimum(start + k, len(flagged))
        covered |= runs[end] - runs[start] > 0  # a flagged window ends in [i, i + k − 1]
    return {name: array[:n] for name, array in part.items()}, covered[:n]


def _grown(times: np.ndarray, values: np.ndarray, lo: int, hi: int, first: int, step: int,
           config: HeavyRainConfig, grid_end: int) -> tuple[int, int]:
    """Widen [lo, hi] (by whole days, doubling) until neither end lies inside an event, or the
    station's data ends there: the events in it are then whole."""
    grow = DAY
    for _ in range(64):
        _, covered = _coverage(times, values, lo, hi, step, config, grid_end)
        early, late = covered[0] and lo > first, covered[-1] and hi < grid_end
        if not early and not late:
            break
        lo = max(first, lo - grow) if early else lo
        hi = min(grid_end, hi + grow) if late else hi
        grow *= 2
    return lo, hi


def events_in(times: np.ndarray, values: np.ndarray, lo: int, hi: int, step: int,
              config: HeavyRainConfig, grid_end: int) -> pd.DataFrame:
    """The events of one station inside [lo, hi] (whose ends lie outside every event)."""
    part, covered = _coverage(times, values, lo, hi, step, config, grid_end)
    at = np.flatnonzero(covered)
    if not len(at):
        return pd.DataFrame(columns=EVENT_COLUMNS[1:])
    starts = np.concatenate(([0], np.flatnonzero(np.diff(at) > 1) + 1))
    rain = part["precipitation"]
    wet = np.nan_to_num(rain[at], nan=0.0) > 0
    first = np.minimum.reduceat(np.where(wet, at, len(rain)), starts)
    last = np.maximum.reduceat(np.where(wet, at, -1), starts)
    present = ~np.isnan(rain)
    sums = np.concatenate(([0.0], np.cumsum(np.where(present, rain, 0.0))))
    counts = np.concatenate(([0], np.cumsum(present)))
    stamp = part["timestamp"]
    begin, end = stamp[first] - step, stamp[last]
    level = np.fmax.reduceat(part["level"][at], starts)
    peak = np.fmax.reduceat(rain[at], starts)
    if step != 10 * MINUTE:  # a 10-minute peak is known from 10-minute values only
        peak = np.full(len(first), np.nan)
    out = pd.DataFrame({
        "start_time": utc_times(begin),
        "end_time": utc_times(end),
        "duration_min": pd.array((end - begin) // MINUTE, dtype="Int64"),
        "total": np.round(sums[last + 1] - sums[first], 2),
        "completeness": np.round((counts[last + 1] - counts[first]) / (last - first + 1), 4),
        "peak_10min": peak,
        "peak_1h": np.fmax.reduceat(part["sum_1h"][at], starts),
        "level": pd.array(level, dtype="Float64").astype("Int64"),
        "level_name": _level_names(level, config).to_numpy(),
    })
    return out


def compute_events(series: pd.DataFrame, step: int, changed: Mapping[str, list[tuple[int, int]]],
                   grid_end: int, config: HeavyRainConfig) -> Computed:
    """The events the changed input intervals ([lo, hi) in ns, per station) can touch: an input
    value changes the windows (and so the events) up to the longest criterion window around it;
    that range is widened until no event crosses its ends. Spans are on `start_time`."""
    stations = station_arrays(series)
    reach = max(_steps(h, step) for h in config.criteria) * step
    parts, spans = [], []
    for station, intervals in changed.items():
        times, values = stations.get(station, (np.empty(0, np.int64), np.empty(0)))
        wide = [(ceil_to(lo, step) - reach, hi - 1 + reach) for lo, hi in intervals]
        if not len(times):
            spans.extend((station, lo, hi) for lo, hi in merge(wide, reach))
            continue
        first = int(times[0])
        grown = []
        for lo, hi in merge(wide, reach):
            a, b = ceil_to(max(lo, first), step), min(hi - hi % step, grid_end)
            if a > b:
                spans.append((station, lo, hi))
                continue
            grown.append(_grown(times, values, a, b, first, step, config, grid_end))
            spans.append((station, min(lo, grown[-1][0] - step), max(hi, grown[-1][1])))
        for a, b in merge(grown, 0):
            found = events_in(times, values, a, b, step, config, grid_end)
            if len(found):
                found.insert(0, "station_id", station)
                parts.append(found)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=EVENT_COLUMNS)
    return Computed(rows, spans_frame(spans))
