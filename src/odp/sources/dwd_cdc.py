"""DWD Climate Data Center (CDC): station observations, e.g. precipitation, hourly or 10-minute.

Per station one zip (`stundenwerte_RR_{id}_akt.zip`, `10minutenwerte_nieder_{id}_akt.zip` …)
holding `produkt_*.txt` (`;`-separated, fields padded with blanks, `eor` ends a row,
`MESS_DATUM` yyyymmddHH or yyyymmddHHMM in UTC, `-999` = missing) and
`Metadaten_Geographie_{id}.txt` (the station's location periods; the current one has an empty
`bis_datum`). The station list (`*Beschreibung_Stationen.txt`, ISO-8859-1, fixed width) gives
names and coordinates. `columns` maps product fields (R1, RS_IND, QN_8 …) to published columns.
Incremental per station (dlt state): rows up to the last extracted MESS_DATUM are dropped.
Conditional GET (DWD rewrites the files about once a day): a zip or station list that answers
304 Not Modified is not downloaded; an unchanged zip yields no rows, an unchanged station list
is read from the configured stations' rows kept in state.

Parameters: see `dwd_cdc` (its `Args:`); `max_unpacked_bytes` and `max_ratio` bound what a zip
may unpack to (odp.sources.archives: checked before anything is unpacked, and while it is).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, MutableMapping
from typing import Any, Literal

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.archives import ArchiveLimits, open_zip, read_member
from odp.sources.complete import csv_error, looks_like_html, records_complete
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient, cache_validators
from odp.sources.incremental import bucket, keep_newer, merged_resource
from odp.spec import Dataset

BASE_URL = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate"
PRODUCTS = {  # resolution -> (folder, archive by period, station list by period)
    "hourly": (
        "hourly/precipitation",
        {"recent": "stundenwerte_RR_{id}_akt.zip", "now": "stundenwerte_RR_{id}_now.zip"},
        {
            "recent": "RR_Stundenwerte_Beschreibung_Stationen.txt",
            "now": "RR_Stundenwerte_Beschreibung_Stationen.txt",
        },
    ),
    "10_minutes": (
        "10_minutes/precipitation",
        {
            "recent": "10minutenwerte_nieder_{id}_akt.zip",
            "now": "10minutenwerte_nieder_{id}_now.zip",
        },
        {
            "recent": "zehn_min_rr_Beschreibung_Stationen.txt",
            "now": "zehn_now_rr_Beschreibung_Stationen.txt",
        },
    ),
}
MISSING = -999
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def parse_station_list(content: bytes, where: str) -> dict[str, dict[str, str]]:
    """`*Beschreibung_Stationen.txt` (ISO-8859-1, fixed width, the header's dashes do not line up
    with the data) → {5-digit id: {name, lat, lon, height, state}}. A row: six numbers, the name
    (may contain blanks), the federal state (one word); newer lists add the column Abgabe."""
    lines = [line.rstrip("\r") for line in content.decode("iso-8859-1").split("\n")]
    if len(lines) < 2 or not lines[0].startswith("Stations_id") or "---" not in lines[1]:
        raise SourceError(f"{where}: malformed station list (no 'Stations_id' header and dashes)")
    _whole_last_row(content, lines, where)
    with_abgabe = "Abgabe" in lines[0]
    out = {}
    for number, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        if not tokens:
            continue
        if with_abgabe:
            tokens = tokens[:-1]
        if len(tokens) < 8 or not all(_NUMBER.match(t) for t in tokens[:6]):
            raise SourceError(f"{where}: line {number}: malformed station row")
        out[tokens[0].zfill(5)] = {
            "height": tokens[3],
            "lat": tokens[4],
            "lon": tokens[5],
            "name": " ".join(tokens[6:-1]),
            "state": tokens[-1],
        }
    return out


def _whole_last_row(content: bytes, lines: list[str], where: str) -> None:
    """The list is fixed width (rows padded with blanks): a last row without a line end that is
    shorter than the rows before it was cut mid-row."""
    if content.endswith(b"\n") or len(lines) < 4:
        return
    widths = {len(line) for line in lines[2:-1]}
    if len(widths) == 1 and len(lines[-1]) < widths.pop():
        raise SourceError(
            f"{where}: line {len(lines)}: the body ends mid-row (no line end): cut short"
        )


def _semicolon_table(text: str, where: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=";", dtype="string", skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise csv_error(exc, where) from None
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{where}: malformed table ({' '.join(str(exc).split())})") from None
    frame.columns = [c.strip() for c in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    return frame.drop(columns=[c for c in ("eor",) if c in frame.columns])


def parse_product(text: str, where: str) -> pd.DataFrame:
    """A `produkt_*.txt` → raw text columns; -999 → null; MESS_DATUM → UTC ISO 8601. A file cut
    mid-line (its last line without `eor`) is refused: the delivery is incomplete."""
    records_complete(text, ";", "eor", where)
    frame = _semicolon_table(text, where)
    for needed in ("STATIONS_ID", "MESS_DATUM"):
        if needed not in frame.columns:
            raise SourceError(f"{where}: malformed product file (no column {needed})")
    stamp = frame["MESS_DATUM"]
    longest = stamp.str.len().max()
    fmt = {10: "%Y%m%d%H", 12: "%Y%m%d%H%M"}.get(int(longest) if pd.notna(longest) else 0)
    parsed = pd.to_datetime(stamp, format=fmt, errors="coerce", utc=True) if fmt else None
    if parsed is None or parsed.isna().all():
        raise SourceError(f"{where}: malformed MESS_DATUM (expected yyyymmddHH[MM])")
    frame["MESS_DATUM"] = parsed.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(parsed.notna(), stamp)
    values = frame.drop(columns=["STATIONS_ID", "MESS_DATUM"])
    missing = values.apply(pd.to_numeric, errors="coerce").eq(MISSING)
    frame[values.columns] = values.mask(missing)
    frame["STATIONS_ID"] = frame["STATIONS_ID"].str.zfill(5)
    return frame


def current_location(text: str, where: str) -> dict[str, str]:
    """The location period without `bis_datum` (else the last) of Metadaten_Geographie."""
    table = _semicolon_table(text, where)
    if table.empty or "Geogr.Breite" not in table.columns:
        return {}
    open_ended = table[table["bis_datum"].fillna("") == ""] if "bis_datum" in table else table
    row = (open_ended if len(open_ended) else table).iloc[-1]
    return {
        "lat": row["Geogr.Breite"],
        "lon": row["Geogr.Laenge"],
        "height": row["Stationshoehe"],
        "name": row.get("Stationsname"),
    }


def read_archive(content: bytes, where: str, limits: ArchiveLimits | None = None
                 ) -> tuple[pd.DataFrame, dict[str, str]]:
    """The product table and the current location of one station zip, unpacked within
    `limits` (a zip bomb is refused before its content takes memory)."""
    limits = limits or ArchiveLimits()
    if looks_like_html(content):
        raise SourceError(f"{where}: not a zip archive (an HTML page instead)")
    archive = open_zip(content, limits, where)
    names = archive.namelist()
    product = next((n for n in names if n.startswith("produkt_")), None)
    if product is None:
        raise SourceError(f"{where}: no produkt_*.txt in the archive")
    text = read_member(archive, product, limits, where).decode("iso-8859-1")
    frame = parse_product(text, f"{where}: {product}")
    meta = next((n for n in names if n.startswith("Metadaten_Geographie")), None)
    location = (
        current_location(read_member(archive, meta, limits, where).decode("iso-8859-1"),
                         f"{where}: {meta}")
        if meta
        else {}
    )
    return frame, location


def listed_stations(
    client: SourceClient,
    url: str,
    stations: list[str],
    state: MutableMapping[str, Any],
    validators: MutableMapping[str, Any],
) -> dict[str, dict[str, str]]:
    """The station list, fetched conditionally: on 304 the configured stations' rows kept in
    `state` from its last download (downloaded again when one of them is not kept)."""
    kept = bucket(state, "listed")
    if not all(station in kept for station in stations):
        validators.pop(url, None)
    content = client.get_bytes_if_changed(url, validators, expect="the station list")
    if content is None:
        return kept
    known = parse_station_list(content, f"{client.dataset}: {url}")
    kept.clear()
    kept.update({station: known[station] for station in stations if station in known})
    return known


def dwd_cdc(dataset: Dataset, *, stations: list[str | int], columns: dict[str, str],
            resolution: Literal["hourly", "10_minutes"] = "hourly",
            period: Literal["recent", "now"] = "recent", base_url: str = BASE_URL,
            archive: str | None = None, station_list: str | None = None,
            http: HttpSettings) -> Any:
    """Precipitation of DWD stations as rows, incremental per station.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        stations: DWD station ids (e.g. "01048"; a number is padded to 5 digits).
        columns: product field (R1, RS_IND, QN_8 …) -> published column.
        resolution: "hourly" or "10_minutes".
        period: "recent" (about 500 days, updated daily) or "now" (today).
        base_url: the CDC observations root (…/observations_germany/climate).
        archive: the station zip's file name ({id} = 5-digit station id), default by product.
        station_list: the station list's file name, default by product.
        http: timeouts, retries, deadline and size cap of the requests.
    """
    folder, archives, lists = PRODUCTS[resolution]
    base = f"{base_url.rstrip('/')}/{folder}/{period}"
    archive_name = archive or archives[period]
    list_name = station_list or lists[period]
    ids = [str(s).zfill(5) for s in stations]
    mapping = dict(columns)
    if not ids or not mapping:
        raise ConfigError(f"{dataset.definition_path}: [source] needs 'stations' and 'columns'")
    client = SourceClient(dataset.name, http)
    limits = ArchiveLimits.from_source(dataset.source, f"{dataset.definition_path}: [source]")
    names = [f.name for f in dataset.schema.source_fields]

    @merged_resource(dataset)
    def observations() -> Iterator[pd.DataFrame]:
        state = dlt.current.resource_state()
        last = bucket(state, "last")
        validators = cache_validators(state, dataset.table_name, dataset.source)
        list_url = f"{base}/{list_name}"
        known = listed_stations(client, list_url, ids, state, validators)
        for station in ids:
            if station not in known:
                raise SourceError(f"{dataset.name}: {list_url}: station {station} not listed")
            url = f"{base}/{archive_name.format(id=station)}"
            content = client.get_bytes_if_changed(url, validators)
            if content is None:
                continue  # 304: unchanged since the last committed run, no rows from it
            frame, location = read_archive(content, f"{dataset.name}: {url}", limits)
            for field in mapping:
                if field not in frame.columns:
                    raise SourceError(f"{dataset.name}: {url}: product has no field {field}")
            listed = known[station]
            out = pd.DataFrame(
                {
                    "station_id": frame["STATIONS_ID"],
                    "timestamp": frame["MESS_DATUM"],
                    **{column: frame[field] for field, column in mapping.items()},
                }
            )
            out["station_name"] = listed["name"]
            out["latitude"] = location.get("lat") or listed["lat"]
            out["longitude"] = location.get("lon") or listed["lon"]
            out["station_height"] = location.get("height") or listed["height"]
            out, top = keep_newer(out, "timestamp", last.get(station))
            if top:
                last[station] = top
            if len(out):
                yield as_raw_text(out[[c for c in names if c in out.columns]])

    return observations
