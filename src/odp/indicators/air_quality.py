"""Air quality against the EU limit and threshold values (Directive 2008/50/EC): per station,
pollutant and day the daily mean with its data capture, the day's highest 1-hour and 8-hour
means, the exceedances of the day and of the year so far, the annual mean so far and the UBA
air-quality index band.

Every number comes from the city file's `[indicators.air_quality]` (each with its source there).
Definitions, per station and pollutant:
  * day — a calendar day in the configured time zone (the LfULG: MEZ, UTC+1 all year). An hourly
    value belongs to the day its hour lies in: stamped with the end of its hour (LfULG, UBA:
    01:00 … 24:00), the value stamped 00:00 is the previous day's last hour.
  * `hours` — hourly values present that day; `valid` — at least `min_hours` (18 of 24, 75 %);
    `daily_mean` — the mean of the day's values, only when valid (null otherwise: a day with 17
    values has no daily mean). A pollutant delivered as daily means (`daily = true`, e.g. the
    gravimetric PM2.5) takes the delivered value; `hours` is then empty.
  * `max_8h` — the highest 8-hour running mean ending in the day (each needs `min_8h` of its 8
    hours), only when at least `min_hours` of the day's 24 running means are valid.
  * exceedance, by the pollutant's counting rule (one per pollutant): `hourly_limit` counts
    hours above it (NO2: 200 µg/m³), `daily_limit` days whose valid daily mean is above it (PM10:
    50), `max8h_target` days whose max_8h is above it (O3: 120); `exceedances_ytd` sums them from
    1 January of the day's year, next to `exceedances_allowed`.
  * `hours_over_information`, `hours_over_alert` — hours above the O3 thresholds (180, 240).
  * `annual_mean_ytd` — the mean of every value of the year up to the end of the day
    (`values_ytd` of them); compare with `annual_limit` only over a full year.
  * `index_band` — the UBA air-quality index class (1 sehr gut … 5 sehr schlecht) of the day's
    highest 1-hour mean (NO2, O3) or of its daily mean (PM10, PM2.5), rounded to whole µg/m³.
A day without any value is a row too (hours 0, not valid): an outage shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.indicators.series import DAY, HOUR, Computed, on_grid, spans_frame

RULES = {"hourly_limit": "h", "daily_limit": "d", "max8h_target": "d"}
INDEX_NAMES = ("sehr gut", "gut", "mäßig", "schlecht", "sehr schlecht")


@dataclass(frozen=True)
class Pollutant:
    key: str  # the row's `pollutant` (the [pollutants.KEY] table)
    name: str
    column: str  # the input's column
    daily: bool = False  # the column holds delivered daily means (rows of the daily resolution)
    rule: str = ""  # hourly_limit | daily_limit | max8h_target | "" (no counted exceedance)
    limit: float | None = None
    allowed: int | None = None
    information: float | None = None
    alert: float | None = None
    annual_limit: float | None = None
    index: tuple[float, ...] = ()  # upper bounds of index classes 1 … 4 (µg/m³)
    index_of: str = "max_1h"  # max_1h | daily_mean


@dataclass(frozen=True)
class AirQualityConfig:
    pollutants: tuple[Pollutant, ...]
    stations: dict[str, dict[str, Any]]  # station -> code, latitude, longitude
    timezone: str = "Etc/GMT-1"
    hour_stamp: str = "end"  # end | start of the hour an hourly value is stamped with
    min_hours: int = 18
    min_8h: int = 6
    resolution_column: str = "resolution"
    hourly: str = "PT1H"
    daily: str = "P1D"
    index_names: tuple[str, ...] = INDEX_NAMES


def _number(item: Mapping[str, Any], key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}.{key}: a concentration in µg/m³ (≥ 0)")
    return float(value)


def _pollutant(key: str, item: Any, where: str) -> Pollutant:
    where = f"{where}: pollutants.{key}"
    if not isinstance(item, Mapping) or not isinstance(item.get("column"), str):
        raise ConfigError(f"{where}: needs the input's column (column = \"no2\")")
    rules = [r for r in RULES if r in item]
    if len(rules) > 1:
        raise ConfigError(f"{where}: one counting rule per pollutant ({', '.join(rules)} given; "
                          "configure a second pollutant key on the same column)")
    allowed = item.get("allowed")
    if rules and not (isinstance(allowed, int) and not isinstance(allowed, bool) and allowed >= 0):
        raise ConfigError(f"{where}: {rules[0]} needs allowed = the exceedances allowed a year")
    index = item.get("index", [])
    if index and (len(index) != 4 or any(b <= a for a, b in zip(index, index[1:], strict=False))):
        raise ConfigError(f"{where}.index: the rising upper bounds of index classes 1 to 4")
    if item.get("index_of", "max_1h") not in ("max_1h", "daily_mean"):
        raise ConfigError(f"{where}.index_of: max_1h or daily_mean")
    return Pollutant(
        key=key, name=str(item.get("name", key)), column=item["column"],
        daily=bool(item.get("daily", False)), rule=rules[0] if rules else "",
        limit=_number(item, rules[0], where) if rules else None,
        allowed=allowed if rules else None,
        information=_number(item, "information", where), alert=_number(item, "alert", where),
        annual_limit=_number(item, "annual_limit", where),
        index=tuple(float(v) for v in index), index_of=str(item.get("index_of", "max_1h")))


def parse_config(table: Mapping[str, Any], where: str) -> AirQualityConfig:
    """`[indicators.air_quality]` of the city file → AirQualityConfig (checked)."""
    pollutants = table.get("pollutants")
    if not isinstance(pollutants, Mapping) or not pollutants:
        raise ConfigError(f"{where}: [pollutants.KEY] tables with column and limit values")
    stamp = table.get("hour_stamp", "end")
    if stamp not in ("end", "start"):
        raise ConfigError(f"{where}: hour_stamp must be end or start")
    try:
        pd.Timestamp("2024-01-01").tz_localize(str(table.get("timezone", "Etc/GMT-1")))
    except Exception:  # noqa: BLE001 - any unknown zone name
        raise ConfigError(f"{where}: timezone '{table.get('timezone')}' is not a time zone "
                          "name (e.g. Etc/GMT-1 for MEZ all year)") from None
    stations = table.get("stations", {})
    if not isinstance(stations, Mapping):
        raise ConfigError(f"{where}: [stations.NAME] tables with code, latitude, longitude")
    return AirQualityConfig(
        pollutants=tuple(_pollutant(str(k), v, where) for k, v in pollutants.items()),
        stations={str(k): dict(v) for k, v in stations.items()},
        timezone=str(table.get("timezone", "Etc/GMT-1")), hour_stamp=stamp,
        min_hours=int(table.get("min_hours", 18)), min_8h=int(table.get("min_8h", 6)),
        resolution_column=str(table.get("resolution_column", "resolution")),
        hourly=str(table.get("hourly", "PT1H")), daily=str(table.get("daily", "P1D")),
        index_names=tuple(table.get("index_names", INDEX_NAMES)))


# --- days -----------------------------------------------------------------------------------------


def local_days(ns: np.ndarray, timezone: str) -> np.ndarray:
    """The local calendar day (days since 1970-01-01) of each UTC instant (ns)."""
    local = pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC").tz_convert(timezone).tz_localize(None)
    return local.asi8 // DAY


def day_starts(days: np.ndarray, timezone: str) -> pd.DatetimeIndex:
    """The UTC instant each local day begins."""
    return pd.DatetimeIndex((days * DAY).view("M8[ns]")).tz_localize(timezone).tz_convert("UTC")


def _years(days: np.ndarray) -> np.ndarray:
    return days.view("M8[D]").astype("M8[Y]").astype(np.int64) + 1970


def _year_start(year: int) -> int:
    return int(np.datetime64(f"{year}-01-01", "D").astype(np.int64))


def _ytd(values: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Running sums that restart on 1 January."""
    total = np.cumsum(values)
    first = np.r_[True, years[1:] != years[:-1]]
    before = np.where(first, total - values, np.nan)
    return total - pd.Series(before).ffill().to_numpy()


def _by_day(index: np.ndarray, values: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Count, sum and maximum of the present values per day index 0 … n − 1."""
    present = ~np.isnan(values)
    at, kept = index[present], values[present]
    peak = np.full(n, np.nan)
    np.fmax.at(peak, at, kept)
    return {"count": np.bincount(at, minlength=n), "sum": np.bincount(at, kept, minlength=n),
            "max": peak}


def _over(index: np.ndarray, values: np.ndarray, threshold: float | None, n: int) -> np.ndarray:
    if threshold is None:
        return np.full(n, np.nan)
    return np.bincount(index[np.nan_to_num(values, nan=-1.0) > threshold], minlength=n).astype(
        float)


def _max_8h(times: np.ndarray, values: np.ndarray, first_day: int, n: int,
            config: AirQualityConfig) -> np.ndarray:
    """Per day the highest valid 8-hour running mean ending in it (NaN unless min_hours of the
    day's 24 are valid)."""
    if not len(times):
        return np.full(n, np.nan)
    grid = on_grid(times, values, int(times[0]) - 7 * HOUR, int(times[-1]), HOUR)
    present = ~np.isnan(grid)
    sums = np.r_[0.0, np.cumsum(np.where(present, grid, 0.0))]
    counts = np.r_[0, np.cumsum(present)]
    ends = np.arange(8, len(grid) + 1)
    count = counts[ends] - counts[ends - 8]
    means = np.where(count >= config.min_8h, (sums[ends] - sums[ends - 8]) / np.maximum(count, 1),
                     np.nan)
    stamps = int(times[0]) + HOUR * np.arange(len(means), dtype=np.int64)
    index = _day_index(stamps, first_day, config)
    inside = (index >= 0) & (index < n)
    found = _by_day(index[inside], means[inside], n)
    return np.where(found["count"] >= config.min_hours, np.round(found["max"], 1), np.nan)


def _day_index(stamps: np.ndarray, first_day: int, config: AirQualityConfig) -> np.ndarray:
    shift = HOUR if config.hour_stamp == "end" else 0
    return local_days(stamps - shift, config.timezone) - first_day


def _hourly(times: np.ndarray, values: np.ndarray, first_day: int, n: int,
            pollutant: Pollutant, config: AirQualityConfig) -> dict[str, np.ndarray]:
    index = _day_index(times, first_day, config)
    inside = (index >= 0) & (index < n)
    index, values = index[inside], values[inside]
    found = _by_day(index, values, n)
    valid = found["count"] >= config.min_hours
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, np.round(found["sum"] / found["count"], 1), np.nan)
    return {"hours": found["count"].astype(float), "valid": valid, "daily_mean": mean,
            "max_1h": found["max"], "sum": found["sum"], "count": found["count"],
            "over_limit": _over(index, values, pollutant.limit if pollutant.rule ==
                                "hourly_limit" else None, n),
            "hours_over_information": _over(index, values, pollutant.information, n),
            "hours_over_alert": _over(index, values, pollutant.alert, n)}


def _daily(times: np.ndarray, values: np.ndarray, first_day: int, n: int,
           config: AirQualityConfig) -> dict[str, np.ndarray]:
    """Delivered daily means (stamped with the start of their day)."""
    index = local_days(times, config.timezone) - first_day
    inside = (index >= 0) & (index < n)
    found = _by_day(index[inside], values[inside], n)
    nothing = np.full(n, np.nan)
    return {"hours": nothing, "valid": found["count"] > 0, "daily_mean": found["max"],
            "max_1h": nothing, "sum": found["sum"], "count": found["count"],
            "over_limit": nothing, "hours_over_information": nothing,
            "hours_over_alert": nothing}


def _exceedances(part: dict[str, np.ndarray], pollutant: Pollutant) -> np.ndarray:
    """This day's exceedances by the pollutant's rule (hours or 0/1 day; NaN: no rule)."""
    if pollutant.rule == "hourly_limit":
        return part["over_limit"]
    if pollutant.rule == "daily_limit":
        return (np.nan_to_num(part["daily_mean"], nan=-1.0) > pollutant.limit).astype(float)
    if pollutant.rule == "max8h_target":
        return (np.nan_to_num(part["max_8h"], nan=-1.0) > pollutant.limit).astype(float)
    return np.full(len(part["valid"]), np.nan)


def _band(part: dict[str, np.ndarray], pollutant: Pollutant) -> np.ndarray:
    if not pollutant.index:
        return np.full(len(part["valid"]), np.nan)
    value = np.floor(part[pollutant.index_of] + 0.5)  # whole µg/m³, half up
    band = np.searchsorted(np.asarray(pollutant.index), np.nan_to_num(value), "left") + 1.0
    return np.where(np.isnan(value), np.nan, band)


def pollutant_days(times: np.ndarray, values: np.ndarray, first_day: int, last_day: int,
                   pollutant: Pollutant, config: AirQualityConfig) -> dict[str, np.ndarray]:
    """Every indicator of one station and pollutant for the local days first_day … last_day
    (first_day must be a 1 January or the station's first day: the year-to-date sums start
    there). `times` sorted UTC ns of the values (hourly, or daily for a daily pollutant)."""
    n = last_day - first_day + 1
    part = (_daily(times, values, first_day, n, config) if pollutant.daily
            else _hourly(times, values, first_day, n, pollutant, config))
    part["max_8h"] = (_max_8h(times, values, first_day, n, config)
                      if pollutant.rule == "max8h_target" and not pollutant.daily
                      else np.full(n, np.nan))
    days = first_day + np.arange(n)
    years = _years(days)
    part["day"] = days
    part["exceedances"] = _exceedances(part, pollutant)
    part["exceedances_ytd"] = _ytd(np.nan_to_num(part["exceedances"]), years)
    with np.errstate(invalid="ignore", divide="ignore"):
        part["annual_mean_ytd"] = np.round(_ytd(part["sum"], years) / _ytd(part["count"], years),
                                           1)
    part["values_ytd"] = _ytd(part["count"].astype(float), years)
    part["index_band"] = _band(part, pollutant)
    return part


# --- the indicator --------------------------------------------------------------------------------

COLUMNS = ["station_id", "pollutant", "timestamp", "date", "hours", "valid", "daily_mean",
           "max_1h", "max_8h", "hours_over_information", "hours_over_alert", "exceedances",
           "exceedances_ytd", "exceedances_allowed", "exceedance_unit", "annual_mean_ytd",
           "values_ytd", "annual_limit", "index_band", "index_name", "station_code", "latitude",
           "longitude"]
INTEGERS = ["hours", "exceedances", "exceedances_ytd", "values_ytd", "index_band"]


def _frame(part: dict[str, np.ndarray], station: str, pollutant: Pollutant,
           config: AirQualityConfig) -> pd.DataFrame:
    frame = pd.DataFrame({k: part[k] for k in (
        "hours", "daily_mean", "max_1h", "max_8h", "hours_over_information", "hours_over_alert",
        "exceedances", "exceedances_ytd", "annual_mean_ytd", "values_ytd", "index_band")})
    for column in INTEGERS:
        frame[column] = pd.array(frame[column], dtype="Float64").astype("Int64")
    if not pollutant.rule:
        frame["exceedances_ytd"] = pd.NA
    band = frame["index_band"]
    names = np.array([None, *config.index_names], dtype=object)
    frame["index_name"] = pd.array(names[band.fillna(0).astype(int)], dtype="string")
    frame.insert(0, "valid", part["valid"])
    frame.insert(0, "date", pd.Series(part["day"].view("M8[D]").astype("M8[ns]")).dt.strftime(
        "%Y-%m-%d"))
    frame.insert(0, "timestamp", day_starts(part["day"], config.timezone))
    frame.insert(0, "pollutant", pollutant.key)
    frame.insert(0, "station_id", station)
    info = config.stations.get(station, {})
    frame = frame.assign(
        exceedances_allowed=pd.array([pollutant.allowed] * len(frame), dtype="Int64"),
        exceedance_unit=RULES.get(pollutant.rule), annual_limit=pollutant.annual_limit,
        station_code=info.get("code"), latitude=info.get("latitude"),
        longitude=info.get("longitude"))
    return frame[COLUMNS]


def _pollutant_series(series: pd.DataFrame, pollutant: Pollutant,
                      config: AirQualityConfig) -> pd.DataFrame:
    for column in (pollutant.column, config.resolution_column):
        if column not in series:
            raise ConfigError(f"[indicators.air_quality] pollutants.{pollutant.key}: the input "
                              f"has no column '{column}' (list it in the dataset's [source] "
                              "value)")
    wanted = config.daily if pollutant.daily else config.hourly
    rows = series[series[config.resolution_column] == wanted]
    return rows[["station_id", "timestamp", pollutant.column]]


def _first_day(times: np.ndarray, pollutant: Pollutant, config: AirQualityConfig) -> int:
    """The local day of a station's first value of the pollutant."""
    if pollutant.daily:
        return int(local_days(times[:1], config.timezone)[0])
    return int(_day_index(times[:1], 0, config)[0])


def _affected(intervals: list[tuple[int, int]], config: AirQualityConfig) -> tuple[int, int]:
    """(first local day a change touches, last year it touches): a value changes its day and
    the 8-hour means ending up to 7 h later, and every later day's year-to-date sums."""
    lo = min(a for a, _ in intervals)
    hi = max(b for _, b in intervals)
    first = int(local_days(np.array([lo - HOUR]), config.timezone)[0])
    last = int(local_days(np.array([hi + 8 * HOUR]), config.timezone)[0])
    return first, int(_years(np.array([last]))[0])


def compute_days(series: pd.DataFrame, step: int, changed: Mapping[str, list[tuple[int, int]]],
                 grid_end: int, config: AirQualityConfig) -> Computed:
    """The days the changed input intervals touch, per station and pollutant, to the end of
    their years (year-to-date sums); days run to the input's newest time. Spans on timestamp."""
    last_day = int(local_days(np.array([grid_end - HOUR]), config.timezone)[0])
    parts, spans = [], []
    prepared = {p.key: _pollutant_series(series, p, config) for p in config.pollutants}
    for station, intervals in changed.items():
        first, last_year = _affected(intervals, config)
        end = _year_start(last_year + 1) - 1
        spans.append((station, int(day_starts(np.array([first]), config.timezone).asi8[0]),
                      int(day_starts(np.array([end]), config.timezone).asi8[0])))
        for pollutant in config.pollutants:
            frame = prepared[pollutant.key]
            rows = frame[frame["station_id"] == station].sort_values("timestamp")
            times = rows["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns").astype(
                "int64").to_numpy()
            if not len(times) or first > last_day:
                continue
            start = max(_year_start(int(_years(np.array([first]))[0])),
                        _first_day(times, pollutant, config))
            part = pollutant_days(times, rows[pollutant.column].to_numpy(
                dtype=float, na_value=np.nan), start, min(end, last_day), pollutant, config)
            found = _frame(part, station, pollutant, config)
            parts.append(found[part["day"] >= first])
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return Computed(rows, spans_frame(spans))
