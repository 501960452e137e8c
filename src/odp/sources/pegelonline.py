"""PEGELONLINE (WSV) REST API v2: one gauge's measurements of one time series, incremental.

Requests: `/stations/{uuid}.json` (station metadata) and
`/stations/{uuid}/{timeseries}/measurements.json?start=...`. The first run asks for
`initial_start` (an ISO 8601 period like P30D, the API keeps ~31 days); later runs ask from the
last extracted timestamp kept in dlt state, so a re-run fetches only what is newer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pandas as pd

from odp.errors import SourceError
from odp.sources.frames import as_raw_text, utc_iso
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.incremental import keep_newer, merged_resource
from odp.spec import Dataset

DEFAULT_BASE_URL = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"


def _station(client: SourceClient, base: str, uuid: str) -> dict[str, Any]:
    url = f"{base}/stations/{uuid}.json"
    station = client.get_json(url)
    if not isinstance(station, dict) or "uuid" not in station:
        raise SourceError(f"{client.dataset}: {url}: malformed station record (no 'uuid')")
    return station


def _measurements(client: SourceClient, url: str, start: str) -> pd.DataFrame:
    payload = client.get_json(url, params={"start": start})
    if not isinstance(payload, list):
        raise SourceError(f"{client.dataset}: {url}: expected a JSON list of measurements")
    for i, item in enumerate(payload, start=1):
        if not isinstance(item, dict):
            raise SourceError(f"{client.dataset}: {url}: row {i}: expected an object")
    frame = pd.DataFrame.from_records(payload, columns=["timestamp", "value"])
    return as_raw_text(frame)


def pegelonline_measurements(dataset: Dataset) -> Any:
    source = dataset.source
    base = source.get("base_url", DEFAULT_BASE_URL).rstrip("/")
    uuid = source["station"]
    series = source.get("timeseries", "W")
    client = SourceClient(dataset.name, HttpSettings.from_source(source))

    @merged_resource(dataset)
    def measurements() -> Iterator[pd.DataFrame]:
        state = dlt.current.resource_state()
        start = state.get("last_timestamp") or source.get("initial_start", "P30D")
        station = _station(client, base, uuid)
        url = f"{base}/stations/{uuid}/{series}/measurements.json"
        raw = _measurements(client, url, start)
        frame = pd.DataFrame(
            {
                "station_uuid": station.get("uuid"),
                "station_name": station.get("shortname"),
                "water": (station.get("water") or {}).get("shortname"),
                "timestamp": utc_iso(raw["timestamp"]),
                "water_level": raw["value"],
                "longitude": station.get("longitude"),
                "latitude": station.get("latitude"),
            },
            index=raw.index,
        )
        # The API answers with timestamp >= start: drop what staging already holds.
        frame, last = keep_newer(as_raw_text(frame), "timestamp", state.get("last_timestamp"))
        if last:
            state["last_timestamp"] = last
        yield frame

    return measurements
