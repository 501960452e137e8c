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


def measurements_of(client: SourceClient, url: str, start: str) -> pd.DataFrame:
    """One series' measurements since `start` (an ISO 8601 time or period) as raw text."""
    payload = client.get_json(url, params={"start": start})
    if not isinstance(payload, list):
        raise SourceError(f"{client.dataset}: {url}: expected a JSON list of measurements")
    for i, item in enumerate(payload, start=1):
        if not isinstance(item, dict):
            raise SourceError(f"{client.dataset}: {url}: row {i}: expected an object")
    frame = pd.DataFrame.from_records(payload, columns=["timestamp", "value"])
    return as_raw_text(frame)


def pegelonline_measurements(dataset: Dataset, *, station: str, timeseries: str = "W",
                             initial_start: str = "P30D", base_url: str = DEFAULT_BASE_URL,
                             http: HttpSettings) -> Any:
    """One gauge's series as rows of water levels, incremental by timestamp.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        station: the gauge's PEGELONLINE UUID (e.g. DRESDEN's 70272185-…).
        timeseries: the series shortname (W = water level).
        initial_start: how far back the first run asks (ISO 8601 period; the API keeps about
            31 days).
        base_url: the REST API v2 root.
        http: timeouts, retries, deadline and size cap of the requests.
    """
    base = base_url.rstrip("/")
    client = SourceClient(dataset.name, http)

    @merged_resource(dataset)
    def measurements() -> Iterator[pd.DataFrame]:
        state = dlt.current.resource_state()
        start = state.get("last_timestamp") or initial_start
        gauge = _station(client, base, station)
        url = f"{base}/stations/{station}/{timeseries}/measurements.json"
        raw = measurements_of(client, url, start)
        frame = pd.DataFrame(
            {
                "station_uuid": gauge.get("uuid"),
                "station_name": gauge.get("shortname"),
                "water": (gauge.get("water") or {}).get("shortname"),
                "timestamp": utc_iso(raw["timestamp"]),
                "water_level": raw["value"],
                "longitude": gauge.get("longitude"),
                "latitude": gauge.get("latitude"),
            },
            index=raw.index,
        )
        # The API answers with timestamp >= start: drop what staging already holds.
        frame, last = keep_newer(as_raw_text(frame), "timestamp", state.get("last_timestamp"))
        if last:
            state["last_timestamp"] = last
        yield frame

    return measurements
