"""PEGELONLINE (WSV) REST API v2: several gauges — all gauges of a water, or a list of stations —
with several time series (W water level, Q discharge …) and station metadata incl. gauge zero.

Requests: `/stations.json?waters=WATER&includeTimeseries=true` (or `?ids=A,B` without a water)
for the station list with each series' unit and gaugeZero, then per station and series
`/stations/{uuid}/{series}/measurements.json?start=...`. One row per gauge and timestamp, one
column per series (`[source.timeseries]`: series shortname → column). Incremental per gauge: the
next run asks from the gauge's last complete timestamp (dlt state), re-delivered rows merge on
the primary key. The unit each series reports must equal its column's unit in the Table Schema.

Parameters: `water` and/or `stations` (numbers, UUIDs or shortnames; with `water` a filter),
`timeseries` (table), `initial_start` (ISO 8601 period, default P30D), `base_url`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.frames import as_raw_text, utc_iso
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.incremental import bucket, keep_newer, merged_resource
from odp.sources.pegelonline import DEFAULT_BASE_URL, measurements_of
from odp.spec import Dataset

STATION_COLUMNS = (
    "station_uuid",
    "station_number",
    "station_name",
    "water",
    "km",
    "agency",
    "longitude",
    "latitude",
    "gauge_zero",
    "gauge_zero_valid_from",
)
_UNIT_ALIASES = {"m3/s": "m³/s", "m^3/s": "m³/s", "qm/s": "m³/s"}


def _unit(text: str) -> str:
    text = (text or "").strip()
    return _UNIT_ALIASES.get(text, text)


def station_list(
    client: SourceClient, base: str, water: str | None, stations: list[str]
) -> list[dict[str, Any]]:
    url = f"{base}/stations.json"
    params = {"includeTimeseries": "true"}
    if water:
        params["waters"] = water
    else:
        params["ids"] = ",".join(stations)
    payload = client.get_json(url, params=params)
    if not isinstance(payload, list):
        raise SourceError(f"{client.dataset}: {url}: expected a JSON list of stations")
    for i, item in enumerate(payload, start=1):
        if not isinstance(item, dict) or not item.get("uuid"):
            raise SourceError(f"{client.dataset}: {url}: station {i}: malformed (no 'uuid')")
    if not stations:
        return payload
    wanted = {s.upper() for s in stations}
    chosen = [
        s
        for s in payload
        if {str(s.get("number", "")), s["uuid"].upper(), str(s.get("shortname", "")).upper()}
        & wanted
    ]
    found = {
        str(v).upper() for s in chosen for v in (s.get("number"), s["uuid"], s.get("shortname"))
    }
    if missing := sorted(wanted - found):
        raise SourceError(f"{client.dataset}: {url}: station(s) {', '.join(missing)} not found")
    return chosen


def _station_row(station: dict[str, Any], gauge_zero: dict[str, Any]) -> dict[str, Any]:
    return {
        "station_uuid": station["uuid"],
        "station_number": station.get("number"),
        "station_name": station.get("shortname"),
        "water": (station.get("water") or {}).get("shortname"),
        "km": station.get("km"),
        "agency": station.get("agency"),
        "longitude": station.get("longitude"),
        "latitude": station.get("latitude"),
        "gauge_zero": gauge_zero.get("value"),
        "gauge_zero_valid_from": gauge_zero.get("validFrom"),
    }


def pegelonline_gauges(dataset: Dataset, *, water: str | None = None,
                       stations: list[str] | None = None,
                       timeseries: dict[str, str] | None = None, initial_start: str = "P30D",
                       base_url: str = DEFAULT_BASE_URL, http: HttpSettings) -> Any:
    """Several gauges' series, one row per gauge and timestamp, incremental per gauge.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        water: all gauges of this water (e.g. ELBE); with `stations` a filter.
        stations: gauge numbers, UUIDs or shortnames.
        timeseries: series shortname -> column of the schema (default W -> water_level).
        initial_start: how far back the first run asks (ISO 8601 period).
        base_url: the REST API v2 root.
        http: timeouts, retries, deadline and size cap of the requests.
    """
    base = base_url.rstrip("/")
    wanted = [str(s) for s in stations or []]
    columns = dict(timeseries or {"W": "water_level"})
    if not water and not wanted:
        raise ConfigError(f"{dataset.definition_path}: [source] needs 'water' or 'stations'")
    for column in columns.values():
        if column not in dataset.schema.names:
            raise ConfigError(f"{dataset.definition_path}: timeseries column '{column}' "
                              "is not a field of the schema")
    client = SourceClient(dataset.name, http)

    @merged_resource(dataset)
    def gauges() -> Iterator[pd.DataFrame]:
        state = dlt.current.resource_state()
        for station in station_list(client, base, water, wanted):
            last = bucket(state, "last", station["uuid"])
            since = min(last.values()) if last else None  # the gauge's last complete time
            parts, gauge_zero = [], {}
            for series, column in columns.items():
                part = _series(client, dataset, f"{base}/stations/{station['uuid']}", station,
                               (series, column), last, (since, initial_start))
                if part is not None:
                    parts.append(part[0])
                    gauge_zero = gauge_zero or part[1]
            if parts:
                yield _station_frame(dataset, station, parts, columns, gauge_zero)

    return gauges


def _series(client: SourceClient, dataset: Dataset, station_url: str, station: dict[str, Any],
            series_column: tuple[str, str], last: dict[str, Any],
            since_or_initial: tuple[str | None, str]
            ) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """One series of a gauge since the gauge's last complete timestamp (or the initial period),
    indexed by timestamp, and the series' gauge zero; None when the gauge does not measure it
    (e.g. no discharge). `last` records the series' newest timestamp."""
    series, column = series_column
    since, initial_start = since_or_initial
    offered = {t.get("shortname"): t for t in station.get("timeseries") or []}
    meta = offered.get(series)
    if meta is None:
        return None
    expected = _unit(dataset.schema.field(column).unit)
    if expected and _unit(meta.get("unit", "")) != expected:
        name = station.get("shortname", station["uuid"])
        raise SourceError(f"{dataset.name}: station {name}: series {series} comes in "
                          f"'{meta.get('unit')}', the schema's {column} is in '{expected}'")
    url = f"{station_url}/{series}/measurements.json"
    raw = measurements_of(client, url, since or initial_start)
    raw = pd.DataFrame({"timestamp": utc_iso(raw["timestamp"]), column: raw["value"]})
    raw, top = keep_newer(raw, "timestamp", since)
    if top:
        last[series] = top
    return raw.set_index("timestamp"), meta.get("gaugeZero") or {}


def _station_frame(dataset: Dataset, station: dict[str, Any], parts: list[pd.DataFrame],
                   columns: dict[str, str], gauge_zero: dict[str, Any]) -> pd.DataFrame:
    wide = pd.concat(parts, axis=1).reset_index()
    for column in columns.values():
        if column not in wide:
            wide[column] = pd.NA
    info = _station_row(station, gauge_zero)
    for key in STATION_COLUMNS:
        wide[key] = info[key]
    wanted = [c for c in dataset.schema.names if c in wide.columns]
    return as_raw_text(wide[wanted])
