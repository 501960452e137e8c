"""sensor.community (luftdaten.info) citizen sensors: the live API and the daily archive CSVs.

Live: a JSON list of records as sent by `/airrohr/v1/filter/area=LAT,LON,KM`, `data.json` or
`/static/v2/data.json` — each record a sensor at a timestamp (UTC, no offset) with
`sensordatavalues` [{"value_type": "P1", "value": "12.30"}, ...] (values are strings, some "nan"
or empty). Optional `area = [lat, lon, km]` filters a world-wide feed on our side.
Archive: `archive.sensor.community/{date}/{date}_{type}_sensor_{id}.csv`, `;`-separated, one file
per sensor and day (a missing day answers 404 and is skipped).

One row per sensor and timestamp; `value_types` maps sensor value types to columns (P1 = PM10,
P2 = PM2.5). Incremental per sensor (dlt state): older or already seen rows are dropped, archive
days already read are not asked again; rows merge on the primary key.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
import numpy as np
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.complete import csv_complete, csv_error
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.incremental import bucket, merged_resource, parse_utc
from odp.sources.local import is_local, local_path
from odp.spec import Dataset

VALUE_TYPES = {
    "P1": "pm10",
    "P2": "pm2_5",
    "temperature": "temperature",
    "humidity": "humidity",
    "pressure": "pressure",
}
ARCHIVE_URL = "https://archive.sensor.community/{date}/{date}_{type}_sensor_{id}.csv"
MISSING = {"", "nan", "NaN", "null", "None", "unknown"}
IDENTITY = ["sensor_id", "sensor_type", "location_id", "latitude", "longitude", "timestamp"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in MISSING else text


def live_frame(payload: Any, value_types: dict[str, str], where: str) -> pd.DataFrame:
    """Records of the live API → one row per sensor and timestamp (raw text)."""
    if not isinstance(payload, list):
        raise SourceError(f"{where}: expected a JSON list of sensor records")
    rows = []
    for i, record in enumerate(payload, start=1):
        try:
            sensor, location = record["sensor"], record.get("location") or {}
            row = {
                "sensor_id": _text(sensor["id"]),
                "sensor_type": _text((sensor.get("sensor_type") or {}).get("name")),
                "location_id": _text(location.get("id")),
                "latitude": _text(location.get("latitude")),
                "longitude": _text(location.get("longitude")),
                "timestamp": _text(record["timestamp"]),
            }
            for item in record.get("sensordatavalues") or []:
                column = value_types.get(item["value_type"])
                if column:
                    row[column] = _text(item.get("value"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise SourceError(
                f"{where}: record {i}: malformed sensor record (missing {exc})"
            ) from None
        rows.append(row)
    return _finish(pd.DataFrame(rows, columns=IDENTITY + list(value_types.values())))


def archive_frame(content: bytes, value_types: dict[str, str], where: str) -> pd.DataFrame:
    """One archive CSV (`sensor_id;sensor_type;location;lat;lon;timestamp;P1;...`)."""
    try:
        raw = pd.read_csv(
            io.BytesIO(content), sep=";", dtype="string", keep_default_na=False, encoding="utf-8"
        )
    except pd.errors.ParserError as exc:
        raise csv_error(exc, where) from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{where}: malformed CSV ({' '.join(str(exc).split())})") from None
    csv_complete(content, ";", '"', where)
    needed = {"sensor_id", "sensor_type", "location", "lat", "lon", "timestamp"}
    if missing := sorted(needed - set(raw.columns)):
        raise SourceError(f"{where}: malformed CSV: missing column(s) {', '.join(missing)}")
    frame = pd.DataFrame(
        {
            "sensor_id": raw["sensor_id"],
            "sensor_type": raw["sensor_type"],
            "location_id": raw["location"],
            "latitude": raw["lat"],
            "longitude": raw["lon"],
            "timestamp": raw["timestamp"],
        }
    )
    for value_type, column in value_types.items():
        frame[column] = raw.get(value_type, pd.NA)
    frame = frame.mask(frame.isin(MISSING))
    return _finish(frame)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC timestamps (the sources send UTC without offset), one row per sensor and time."""
    parsed = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    frame["timestamp"] = parsed.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(
        parsed.notna(), frame["timestamp"]
    )
    frame = frame.drop_duplicates(["sensor_id", "timestamp"], keep="last")
    return as_raw_text(frame.reset_index(drop=True))


def within(frame: pd.DataFrame, area: list[float]) -> pd.DataFrame:
    """Rows within `km` of (lat, lon) (haversine); rows without coordinates are dropped."""
    lat0, lon0, km = (float(v) for v in area)

    def radians(column: str) -> np.ndarray:
        values = pd.to_numeric(frame[column], errors="coerce")
        return np.radians(values.to_numpy(dtype=float, na_value=np.nan))

    lat, lon = radians("latitude"), radians("longitude")
    p1 = math.radians(lat0)
    a = (np.sin((lat - p1) / 2) ** 2
         + math.cos(p1) * np.cos(lat) * np.sin((lon - math.radians(lon0)) / 2) ** 2)
    distance = 2 * 6371.0 * np.arcsin(np.sqrt(a))
    return frame[np.nan_to_num(distance, nan=np.inf) <= km]


def only_new(frame: pd.DataFrame, last: dict[str, Any]) -> pd.DataFrame:
    """Drop rows at or before each sensor's last timestamp; advance the state."""
    if frame.empty:
        return frame
    parsed = parse_utc(frame["timestamp"])
    seen = frame["sensor_id"].map(lambda s: last.get(s)).astype("string")
    before = parse_utc(seen.fillna("1900-01-01T00:00:00Z"))
    keep = ~((parsed <= before).fillna(False)).to_numpy(dtype=bool)
    frame, parsed = frame[keep], parsed[keep]
    tops = parsed.groupby(frame["sensor_id"].to_numpy()).max()
    for sensor, top in tops.items():
        if pd.notna(top):
            last[str(sensor)] = top.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class ArchiveSensor:
    """One sensor of the daily archive: its number and type (e.g. 15092, sds011)."""

    id: int
    type: str


def sensor_community(dataset: Dataset, *, feed_url: str | None = None,
                     value_types: dict[str, str] | None = None,
                     area: tuple[float, float, float] | None = None,
                     archive_sensors: list[ArchiveSensor] | None = None,
                     archive_start: date | None = None, archive_end: date | None = None,
                     archive_url: str = ARCHIVE_URL, http: HttpSettings) -> Any:
    """Citizen sensors from the live feed and/or the daily archive, incremental per sensor.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        feed_url: the live API's filter URL (e.g. `/airrohr/v1/filter/area=51.05,13.74,12`).
        value_types: sensor value type -> column (default P1 -> pm10, P2 -> pm2_5, …).
        area: `[lat, lon, km]`: keep only sensors within km of the point (a world-wide feed).
        archive_sensors: sensors to backfill from the archive (`{ id = 15092, type = "sds011" }`).
        archive_start: the first archive day of the first run.
        archive_end: the last archive day (default yesterday, UTC).
        archive_url: the archive's file URL template ({date}, {type}, {id}).
        http: timeouts, retries, deadline and size cap of the requests.
    """
    types = dict(value_types or VALUE_TYPES)
    archive = list(archive_sensors or [])
    if not feed_url and not archive:
        raise ConfigError(
            f"{dataset.definition_path}: [source] needs 'feed_url' or 'archive_sensors'"
        )
    if archive and archive_start is None:
        raise ConfigError(f"{dataset.definition_path}: [source] needs 'archive_start' with "
                          "'archive_sensors'")
    client = SourceClient(dataset.name, http)
    columns = [c for c in dataset.schema.names if not dataset.schema.field(c).derived]

    def shaped(frame: pd.DataFrame) -> pd.DataFrame:
        for column in columns:
            if column not in frame:
                frame[column] = pd.NA
        return frame[columns]

    archive_days = Archive(client, dataset.name, archive_url, types, archive_start,
                           archive_end or datetime.now(UTC).date() - timedelta(days=1))

    @merged_resource(dataset)
    def sensors() -> Iterator[pd.DataFrame]:
        state = dlt.current.resource_state()
        last = bucket(state, "last")
        for sensor in archive:
            for frame in archive_days.frames(sensor, bucket(state, "archive_next"), last):
                yield shaped(frame)
        if feed_url:
            frame = live_frame(client.get_json(feed_url), types, f"{dataset.name}: {feed_url}")
            if area:
                frame = within(frame, list(area))
            frame = only_new(frame, last)
            if len(frame):
                yield shaped(frame)

    return sensors


@dataclass(frozen=True)
class Archive:
    """The daily archive files of sensors, from the first day not yet read to `end`."""

    client: SourceClient
    dataset: str
    url: str  # template with {date}, {type}, {id}
    types: dict[str, str]
    start: date | None
    end: date

    def frames(self, sensor: ArchiveSensor, next_day: dict[str, Any], last: dict[str, Any]
               ) -> Iterator[pd.DataFrame]:
        """The sensor's new rows per archive day; `next_day` records the days read."""
        key = f"{sensor.type}_{sensor.id}"
        folder = self.url.split("{")[0].rsplit("/", 1)[0] or "."  # the fixed part's folder
        if is_local(self.url) and not (root := local_path(folder)).is_dir():
            raise SourceError(f"{self.dataset}: {root}: folder not found ([source] archive_url "
                              f"= {self.url!r})")
        first = date.fromisoformat(next_day[key]) if key in next_day else self.start
        for day in _days(first, self.end):
            url = self.url.format(date=day.isoformat(), type=sensor.type, id=sensor.id)
            content = _get_if_exists(self.client, url)
            next_day[key] = (day + timedelta(days=1)).isoformat()
            if content is None:
                continue
            frame = only_new(archive_frame(content, self.types, f"{self.dataset}: {url}"), last)
            if len(frame):
                yield frame


def _get_if_exists(client: SourceClient, url: str) -> bytes | None:
    """The body, or None when the server (or the archive's local folder) has no such file."""
    if is_local(url) and not local_path(url).is_file():
        return None  # a day without a file, as the server's 404
    try:
        return client.get_bytes(url, expect="CSV")
    except SourceError as exc:
        if "answered HTTP 404 " in str(exc):
            return None
        raise
