"""Station values per district (Dresden: per Stadtteil): each district gets the value of the
station(s) whose area it lies in — the stations' Thiessen (Voronoi) polygons, clipped to the
city by intersecting them with its districts.

Rules (`rule` in the configuration table, e.g. `[indicators.heavy_rain_stadtteile]`):
  * `largest_share` — the station whose Thiessen polygon covers the largest share of the
    district (one station per district; ties → the lowest station id);
  * `area_weighted` — every station covering at least `min_share` of the district, weighted by
    its share: sums are the weighted mean of the stations with a value, completeness the
    weighted mean of all; the level is the highest any of them reached (an exceeded limit is
    known even where another station's values are missing), 0 only when all are 0, else null.
Stations are placed at their newest position in the input. Rows are the input's time steps (of
the configured input `resolution`); only the last `keep_days` days are kept (a situation
product: the stations' own datasets keep the history).

Which columns: `means` (weighted means), `weighted` (weighted sums of shares, e.g.
completeness), `level` / `level_name` (the highest level), `by` (further key columns: one row
per district, time and e.g. pollutant) and `first` (columns equal for all stations of a row,
e.g. the day's date, taken as they are). The defaults are those of the heavy-rain windows;
the air-quality days per Stadtteil name theirs in `[indicators.air_quality_stadtteile]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.indicators.series import DAY, Computed, ceil_to, merge, spans_frame

RULES = ("largest_share", "area_weighted")


@dataclass(frozen=True)
class Districts:
    codes: np.ndarray  # smallest level's codes (object)
    columns: pd.DataFrame  # per district its output columns (code, name, parents)
    geoms: np.ndarray  # shapely polygons in the city's CRS
    crs: str


@dataclass(frozen=True)
class AreaConfig:
    districts: Districts
    rule: str = "largest_share"
    min_share: float = 0.1
    resolution: str = "10min"
    keep_days: float = 7.0
    means: tuple[str, ...] = ("sum_1h", "sum_6h", "sum_24h", "sum_72h")
    weighted: tuple[str, ...] = ("completeness_1h", "completeness_6h", "completeness_24h",
                                 "completeness_72h")
    level: str = "level"
    level_name: str = "level_name"
    by: tuple[str, ...] = ()
    first: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The output's columns after the district's own (in this order)."""
        return ["timestamp", *self.by, *self.first, "stations", *self.means, *self.weighted,
                self.level, self.level_name]


def city_districts(root: Path) -> Districts:
    """The smallest districts of the project's city (its `[districts]`), in the city's CRS."""
    from odp.georeference.districts import DistrictIndex
    from odp.spec import load_city

    city = load_city(root)
    index = DistrictIndex(city)
    polygons = index.polygons.sort_values(index.unit_column, kind="stable")
    columns = pd.DataFrame(polygons[index.columns]).reset_index(drop=True)
    return Districts(columns[index.unit_column].to_numpy(dtype=object), columns,
                     polygons.geometry.to_numpy(), city.crs)


def parse_config(table: Mapping[str, Any], where: str) -> AreaConfig:
    """The configuration table (plus `_root`, the project the derived source runs in)."""
    rule = table.get("rule", "largest_share")
    if rule not in RULES:
        raise ConfigError(f"{where}: rule '{rule}' unknown (use {', '.join(RULES)})")
    share = table.get("min_share", 0.1)
    if not isinstance(share, int | float) or not 0 <= share < 1:
        raise ConfigError(f"{where}: min_share is a share of a district's area (0 … 1)")
    keep = table.get("keep_days", 7)
    if not isinstance(keep, int | float) or keep <= 0:
        raise ConfigError(f"{where}: keep_days must be a number of days above 0")
    if "_root" not in table:
        raise ConfigError(f"{where}: the project root is unknown (run through the derived source)")
    names = {key: _names(table, key, where) for key in ("means", "weighted", "by", "first")}
    return AreaConfig(
        districts=city_districts(Path(str(table["_root"]))), rule=str(rule),
        min_share=float(share), resolution=str(table.get("resolution", "10min")),
        keep_days=float(keep),
        means=names["means"] if "means" in table else AreaConfig.means,
        weighted=names["weighted"] if "weighted" in table else AreaConfig.weighted,
        level=_name(table, "level", where), level_name=_name(table, "level_name", where),
        by=names["by"], first=names["first"])


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    found = table.get(key, [])
    if not isinstance(found, list) or not all(isinstance(c, str) and c for c in found):
        raise ConfigError(f"{where}: {key} must be a list of column names")
    return tuple(found)


def _name(table: Mapping[str, Any], key: str, where: str) -> str:
    found = table.get(key, key)
    if not isinstance(found, str) or not found:
        raise ConfigError(f"{where}: {key} must name a column")
    return found


# --- the stations' areas -----------------------------------------------------------------------


def shares(x: np.ndarray, y: np.ndarray, districts: Districts) -> np.ndarray:
    """Share of each district's area (columns) in each station's Thiessen polygon (rows)."""
    import shapely

    if len(x) == 1:
        return np.ones((1, len(districts.geoms)))
    points = shapely.points(x, y)
    bounds = shapely.bounds(districts.geoms)
    frame = shapely.box(bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(),
                        bounds[:, 3].max()).buffer(1000.0)
    diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame)
    cells = np.asarray(shapely.get_parts(diagram))
    # voronoi_diagram returns its cells in no particular order: each station takes its cell
    owner = [int(np.flatnonzero(shapely.contains(cells, p))[0]) for p in points]
    cells = cells[owner]
    overlap = shapely.area(shapely.intersection(cells[:, None], districts.geoms[None, :]))
    return overlap / shapely.area(districts.geoms)[None, :]


def weights(stations: list[str], x: np.ndarray, y: np.ndarray, config: AreaConfig) -> pd.DataFrame:
    """district index, station, weight (summing to 1 per district) by the configured rule."""
    found = shares(x, y, config.districts)
    if config.rule == "largest_share":
        best = np.argmax(found, axis=0)  # ties: the first (stations are sorted)
        return pd.DataFrame({"district": np.arange(found.shape[1]),
                             "station": np.asarray(stations, dtype=object)[best],
                             "weight": 1.0})
    kept = np.where(found >= config.min_share, found, 0.0)
    kept[np.argmax(found, axis=0), np.arange(found.shape[1])] = found.max(axis=0)  # never none
    district, station = np.nonzero(kept.T)
    total = kept.sum(axis=0)
    return pd.DataFrame({"district": district, "station": np.asarray(stations)[station],
                         "weight": kept[station, district] / total[district]})


def _positions(rows: pd.DataFrame, crs: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each station's newest position, in the city's CRS (stations sorted)."""
    from pyproj import Transformer

    newest = rows.dropna(subset=["latitude", "longitude"]).sort_values(
        ["station_id", "timestamp"]).groupby("station_id").tail(1)
    if newest.empty:
        raise ConfigError("no station of the input has a position (latitude, longitude)")
    to_city = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_city.transform(newest["longitude"].to_numpy(float),
                             newest["latitude"].to_numpy(float))
    return [str(s) for s in newest["station_id"]], np.asarray(x), np.asarray(y)


def _label(table: pd.DataFrame) -> pd.Series:
    """Per district the stations it takes its values from: "01048" or "01048 (62 %), …"."""
    table = table.sort_values(["district", "weight", "station"], ascending=[True, False, True])
    whole = table.groupby("district")["weight"].transform("size") == 1
    text = np.where(whole, table["station"].astype(str),
                    table["station"].astype(str) + " (" + (table["weight"] * 100).round().astype(
                        int).astype(str) + " %)")
    return pd.Series(text, index=table.index).groupby(table["district"]).agg(", ".join)


# --- the rows ----------------------------------------------------------------------------------


def _aggregate(joined: pd.DataFrame, config: AreaConfig) -> pd.DataFrame:
    """Weighted values per district and time step (and `by`)."""
    keys = ["district", "timestamp", *config.by]
    out = joined[keys].drop_duplicates().set_index(keys).sort_index()
    for column in config.first:
        out[column] = joined.groupby(keys)[column].first()
    for column in config.means:
        value = joined[column].astype(float)
        present = joined["weight"].where(value.notna(), 0.0)
        total = (joined["weight"] * value.fillna(0.0)).groupby([joined[k] for k in keys]).sum()
        weight = present.groupby([joined[k] for k in keys]).sum()
        out[column] = np.round((total / weight.replace(0.0, np.nan)), 2)
    for column in config.weighted:
        share = (joined["weight"] * joined[column].astype(float)).groupby(
            [joined[k] for k in keys]).sum(min_count=1)
        out[column] = np.round(share, 4)
    level = joined[config.level].astype(float)
    highest = level.groupby([joined[k] for k in keys]).max()
    unknown = level.isna().groupby([joined[k] for k in keys]).any()
    out[config.level] = highest.where((highest > 0) | ~unknown)
    known = joined.dropna(subset=[config.level]).drop_duplicates(config.level)
    names = dict(zip(known[config.level].astype(float), known[config.level_name].astype(str),
                     strict=True))
    missing = joined.loc[level.isna(), config.level_name].dropna()
    out[config.level_name] = out[config.level].map(names).fillna(
        str(missing.iloc[0]) if len(missing) else "unbestimmt")
    return out.reset_index()


def _spans(changed: Mapping[str, list[tuple[int, int]]], table: pd.DataFrame, step: int,
           cutoff: int) -> dict[int, list[tuple[int, int]]]:
    """Per district the input intervals of its stations that changed (on the time steps)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for station, intervals in changed.items():
        for district in table.loc[table["station"] == station, "district"]:
            out.setdefault(int(district), []).extend(
                (max(ceil_to(lo, step), cutoff), hi - 1) for lo, hi in intervals)
    return {d: [s for s in merge(v, 0) if s[0] <= s[1]] for d, v in out.items()}


def _district_rows(rows: pd.DataFrame, table: pd.DataFrame, frame: pd.DataFrame,
                   config: AreaConfig) -> pd.DataFrame:
    """Rows per district and time step within each district's [lo, hi] of `frame` (district
    index, lo, hi in ns), with the district's index in column `district`."""
    ns = rows["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
    joined = (rows.assign(_ns=ns.to_numpy()).merge(table, left_on="station_id",
                                                   right_on="station")
              .merge(frame, on="district"))
    joined = joined[(joined["_ns"] >= joined["lo"]) & (joined["_ns"] <= joined["hi"])]
    if joined.empty:
        return pd.DataFrame(columns=["district", *config.columns])
    out = _aggregate(joined.drop(columns=["lo", "hi"]), config)
    out["stations"] = out["district"].map(_label(table))
    out[config.level] = pd.array(out[config.level], dtype="Float64").astype("Int64")
    return out[["district", *config.columns]]


def _stations_and_weights(series: pd.DataFrame,
                          config: AreaConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = series[series["resolution"] == config.resolution]
    stations, x, y = _positions(rows, config.districts.crs)
    return rows, weights(stations, x, y, config)


def compute_districts(series: pd.DataFrame, step: int,
                      changed: Mapping[str, list[tuple[int, int]]], grid_end: int,
                      config: AreaConfig) -> Computed:
    """The district rows the changed station intervals touch, within the last keep_days days
    (older rows are dropped: a span from the epoch to the cutoff holds none)."""
    rows, table = _stations_and_weights(series, config)
    cutoff = grid_end - int(config.keep_days * DAY) + 1  # the last keep_days: (end − d, end]
    wanted = _spans(changed, table, step, cutoff)
    codes = config.districts.codes
    spans = [(str(codes[d]), 0, cutoff - 1) for d in range(len(codes))]
    spans += [(str(codes[d]), lo, hi) for d, found in wanted.items() for lo, hi in found]
    frame = pd.DataFrame([(d, lo, hi) for d, found in wanted.items() for lo, hi in found],
                         columns=["district", "lo", "hi"])
    out = _district_rows(rows, table, frame, config)
    named = config.districts.columns.iloc[out["district"].to_numpy()].reset_index(drop=True)
    result = pd.concat([named, out[config.columns].reset_index(drop=True)], axis=1)
    return Computed(result, spans_frame(spans))


# --- the current situation -----------------------------------------------------------------------

FAR = 2**62  # a span's end beyond any time


def compute_current(series: pd.DataFrame, step: int,
                    changed: Mapping[str, list[tuple[int, int]]], grid_end: int,
                    config: AreaConfig) -> Computed:
    """One row per district: its newest time step (the newest any of its stations has), with
    the district's polygon (WKT in the city's CRS) — replaced whenever a station of it changed.
    Columns `nummer`, `name` (the district's code and name) and `geometry_wkt`."""
    import shapely

    rows, table = _stations_and_weights(series, config)
    ns = rows["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
    newest = ns.groupby(rows["station_id"].astype(str)).max()
    touched = table[table["station"].isin([str(s) for s in changed])]
    latest = touched.assign(t=touched["station"].map(newest)).groupby("district")["t"].max()
    latest = latest.dropna().astype("int64")
    frame = pd.DataFrame({"district": latest.index, "lo": latest.to_numpy(),
                          "hi": latest.to_numpy()})
    codes = config.districts.codes
    spans = [(str(codes[d]), 0, FAR) for d in sorted(set(touched["district"]))]
    out = _district_rows(rows, table, frame, config).reset_index(drop=True)
    index = out["district"].to_numpy(dtype=int)
    columns = config.districts.columns
    result = pd.DataFrame({
        "nummer": pd.array(codes[index], dtype="string"),
        "name": pd.array(columns.iloc[index, 1].to_numpy(), dtype="string"),
        **{c: out[c] for c in config.columns},
        "geometry_wkt": shapely.to_wkt(config.districts.geoms[index], rounding_precision=1),
    })
    return Computed(result, spans_frame(spans))
