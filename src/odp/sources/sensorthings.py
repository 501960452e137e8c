"""OGC SensorThings API v1.x (e.g. FROST): Things → Locations, Datastreams → Observations.

Requests follow the entities' navigation links: `{base}/Things` (with `things_filter` as
`$filter`), each Thing's Locations and Datastreams, and each Datastream's Observations with
`$filter=phenomenonTime gt LAST` (dlt state, per Datastream), `$orderby=phenomenonTime asc` and
`$top`. Every collection is paged by following `@iot.nextLink` until it is absent. `$count` is
never asked (it times out on large FROST tables). One row per Observation with its Thing,
Datastream, unit of measurement and the Thing's location (WGS84).

Parameters: `base_url` (the service root, …/v1.1) or `path` (a folder of saved answers, below),
`things_filter`, `top` (page size, default 1000), `initial_start` (ISO 8601 instant: observations
before it are not asked on the first run), `max_pages` (per collection, a guard against endless
next links; default 10000).

A service saved as files (`path`): each answer lies at its path below the service root plus
`.json` — `Things.json`, `Things(1)/Locations.json`, `Things(1)/Datastreams.json`,
`Datastreams(1)/Observations.json` — the layout of a SensorThings snapshot such as the Toronto
one in eclipse-sensinact's test resources (`…/toronto-bike-snapshot.sensorup.com/v1.0/…`). The
absolute links inside the answers (`@iot.navigationLink`, `@iot.selfLink`, `@iot.nextLink`) are
read inside the folder by their part after the version segment (`/v1.0/`, `/v1.1/`); the page a
`@iot.nextLink` with `$skip=N` names is `<path>.skipN.json` (`Datastreams(1)/Observations.skip100
.json`). Query options are not applied to saved answers: `Things.json` is taken as the Things to
read (a `things_filter` beside `path` is a ConfigError), observations older than the last run's
are dropped by the source itself as for a server's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.complete import load_json
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.incremental import bucket, keep_newer, merged_resource
from odp.sources.local import resolve
from odp.spec import Dataset

STAMP_MS = "%Y-%m-%dT%H:%M:%S.%fZ"
VERSION_SEGMENT = re.compile(r"/v\d+\.\d+/")  # a service root ends in its version, e.g. /v1.1


class SavedAnswers:
    """A SensorThings service saved as files below a folder (see the module's docstring): reads
    the answer a request URL (the folder's own or one of the service's absolute links) names."""

    def __init__(self, dataset: str, folder: Path, given: str) -> None:
        self.dataset, self.folder, self.given = dataset, folder, given

    def file_of(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme.lower() in ("http", "https"):
            found = VERSION_SEGMENT.search(parts.path + "/")
            if not found:
                raise SourceError(f"{self.dataset}: {url}: a link without a version segment "
                                  f"(/v1.0/, /v1.1/) cannot be read from the folder {self.folder}")
            below = unquote(parts.path[found.end():]).strip("/")
        else:
            below = url.split("?", 1)[0].removeprefix(str(self.folder)).strip("/")
        skip = (parse_qs(parts.query).get("$skip") or ["0"])[0]
        return self.folder / (below + ("" if skip == "0" else f".skip{skip}") + ".json")

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """The saved answer for `url` (`params` are query options a folder does not apply)."""
        file = self.file_of(url)
        try:
            text = file.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise SourceError(f"{self.dataset}: {file}: file not found (the saved answer for "
                              f"{url} below [source] path = {self.given!r})") from None
        return load_json(text, f"{self.dataset}: {file}")


def pages(
    client: SourceClient | SavedAnswers, url: str, params: dict[str, Any] | None,
    max_pages: int = 10000,
) -> Iterator[list[dict[str, Any]]]:
    """The `value` list of every page of a collection, following `@iot.nextLink`."""
    for _ in range(max_pages):
        payload = client.get_json(url, params=params)
        if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
            raise SourceError(
                f"{client.dataset}: {url}: malformed SensorThings collection (no 'value' list)"
            )
        yield payload["value"]
        url, params = payload.get("@iot.nextLink"), None  # the link carries every parameter
        if not url:
            return
    raise SourceError(f"{client.dataset}: {url}: more than {max_pages} pages (endless nextLink?)")


def _link(entity: dict[str, Any], name: str, base: str) -> str:
    """The entity's navigation link `name`, else its selfLink (absolute, or below `base`) +
    `/name`."""
    if link := entity.get(f"{name}@iot.navigationLink"):
        return str(link)
    own = str(entity.get("@iot.selfLink", ""))
    if "://" in own:
        return f"{own}/{name}"
    return f"{base}/{own.removeprefix(base + '/')}/{name}"


def _reader(dataset: Dataset, base_url: str | None, path: str | None, things_filter: str | None,
            http: HttpSettings) -> tuple[SourceClient | SavedAnswers, str]:
    """The service's reader and root: a client of `base_url`, or the folder `path` names."""
    where = f"{dataset.definition_path}: [source]"
    if bool(base_url) == bool(path):
        raise ConfigError(f"{where} needs 'base_url' or 'path' (one of them)")
    if path is None:
        return SourceClient(dataset.name, http), str(base_url).rstrip("/")
    if things_filter:
        raise ConfigError(f"{where} things_filter is a server's query and is not applied to the "
                          f"saved answers of path = {path!r}: remove it (Things.json is read as "
                          "it is)")
    folder = resolve(path)
    return SavedAnswers(dataset.name, folder, path), str(folder)


def _position(locations: list[dict[str, Any]]) -> tuple[Any, Any]:
    """lon, lat of the first GeoJSON Point location (None, None otherwise)."""
    for location in locations:
        geometry = location.get("location") or {}
        geometry = geometry.get("geometry", geometry)  # a Feature or a bare geometry
        if geometry.get("type") == "Point" and len(geometry.get("coordinates") or []) >= 2:
            return geometry["coordinates"][0], geometry["coordinates"][1]
    return None, None


def observations_frame(values: list[dict[str, Any]], where: str) -> pd.DataFrame:
    rows = []
    for i, obs in enumerate(values, start=1):
        if not isinstance(obs, dict) or "phenomenonTime" not in obs or "@iot.id" not in obs:
            raise SourceError(f"{where}: observation {i}: malformed (no phenomenonTime/@iot.id)")
        time = str(obs["phenomenonTime"] or "").split("/")[0]  # an interval: its start
        rows.append((obs["@iot.id"], time, obs.get("result")))
    frame = pd.DataFrame(rows, columns=["observation_id", "phenomenon_time", "result"])
    parsed = pd.to_datetime(frame["phenomenon_time"], utc=True, errors="coerce", format="ISO8601")
    text = parsed.dt.strftime(STAMP_MS).str.replace(r"(\.\d{3})\d{3}Z$", r"\1Z", regex=True)
    frame["phenomenon_time"] = text.where(parsed.notna(), frame["phenomenon_time"])
    return frame


def sensorthings(dataset: Dataset, *, base_url: str | None = None, path: str | None = None,
                 things_filter: str | None = None, top: int = 1000,
                 initial_start: str | None = None, max_pages: int = 10000,
                 http: HttpSettings) -> Any:
    """Observations of every Datastream of the chosen Things, incremental per Datastream.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        base_url: the service root (…/v1.1).
        path: instead of `base_url`: a folder of the project holding the service's answers
            saved as files, one per request at its path below the service root plus `.json`
            (`Things.json`, `Things(1)/Datastreams.json`, `Datastreams(1)/Observations.json`;
            the page of a nextLink with `$skip=N`: `Observations.skipN.json`); the answers'
            absolute links are read inside the folder. Not with `things_filter`.
        things_filter: an OData `$filter` on Things (e.g. `properties/operator eq 'LfULG'`).
        top: page size (`$top`); further pages follow `@iot.nextLink`.
        initial_start: ISO 8601 instant: observations before it are not asked on the first run.
        max_pages: per collection, a guard against endless next links.
        http: timeouts, retries, deadline and size cap of the requests.
    """
    client, base = _reader(dataset, base_url, path, things_filter, http)
    columns = [f.name for f in dataset.schema.source_fields]

    @merged_resource(dataset)
    def observations() -> Iterator[pd.DataFrame]:
        last = bucket(dlt.current.resource_state(), "last")
        if isinstance(client, SavedAnswers) and not client.folder.is_dir():
            raise SourceError(f"{dataset.name}: {client.folder}: folder not found ([source] "
                              f"path = {path!r})")
        things_params = {"$top": top}
        if things_filter:
            things_params["$filter"] = things_filter
        for things in pages(client, f"{base}/Things", things_params, max_pages):
            for thing in things:
                yield from _thing(thing, last)

    def _thing(thing: dict[str, Any], last: dict[str, Any]) -> Iterator[pd.DataFrame]:
        if "@iot.id" not in thing:
            raise SourceError(f"{dataset.name}: {base}/Things: a Thing without '@iot.id'")
        locations = [
            v
            for page in pages(client, _link(thing, "Locations", base), None, max_pages)
            for v in page
        ]
        lon, lat = _position(locations)
        for streams in pages(client, _link(thing, "Datastreams", base), None, max_pages):
            for stream in streams:
                key = str(stream.get("@iot.id"))
                since = last.get(key) or initial_start
                params: dict[str, Any] = {"$orderby": "phenomenonTime asc", "$top": top}
                if since:
                    params["$filter"] = f"phenomenonTime gt {since}"
                url = _link(stream, "Observations", base)
                unit = stream.get("unitOfMeasurement") or {}
                for values in pages(client, url, params, max_pages):
                    frame, top_time = keep_newer(
                        observations_frame(values, f"{dataset.name}: {url}"),
                        "phenomenon_time",
                        since,
                        STAMP_MS,
                    )
                    top_time = top_time and top_time[:23] + "Z"  # milliseconds
                    if top_time and top_time != since and top_time > last.get(key, ""):
                        last[key] = top_time
                    if frame.empty:
                        continue
                    frame = frame.assign(
                        thing_id=thing["@iot.id"],
                        thing_name=thing.get("name"),
                        datastream_id=stream.get("@iot.id"),
                        datastream_name=stream.get("name"),
                        unit_symbol=unit.get("symbol"),
                        unit_name=unit.get("name"),
                        longitude=lon,
                        latitude=lat,
                    )
                    yield as_raw_text(frame[[c for c in columns if c in frame.columns]])

    return observations
