"""Build the CONSTRUCTED Dresden SensorThings service (see README.md): every page and the manifest.

Deterministic: ``uv run python tests/recordings/sensorthings_dresden/make_constructed.py``.
The VALUES are real: hourly NO2, O3 and PM10 (TEOM) of the LfULG stations Dresden-Nord and
Dresden-Bergstraße, read from the REAL files in ../airquality_sachsen/. The host is made up.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
CSV_DIR = HERE.parent / "airquality_sachsen"
BASE = "https://sta.dresden.example/FROST-Server/v1.1"  # NOT a real endpoint
JSON = {"Content-Type": "application/json; charset=utf-8"}
TOP = 100
ORDER = "phenomenonTime asc"
MEZ = timedelta(hours=1)  # the LfULG stamps are MEZ (UTC+01:00) all year, without offset
SPLIT = datetime(2018, 12, 16, tzinfo=UTC)  # first run: before; the later run: from here on
FIRST_HOUR = datetime(2018, 12, 1, tzinfo=UTC)
THINGS_FILTER = "properties/operator eq 'LfULG'"
SCENARIO_NEXT = "2024-11-22"

# Station -> (CSV file, station code, position). Codes: the UBA station list as used by
# fhem/uba (FHEM/60_uba.pm). Positions: the nearest VVO stop in the REAL recording
# ../transit_vvo/vvo_haltestellen_2019.csv (Bahnhof Neustadt; Mommsenstraße), see README.md.
STATIONS = {
    "Dresden-Nord": ("joint_2018-12_Dresden-Nord.csv", "DESN061", (13.740879, 51.065433)),
    "Dresden-Bergstraße": (
        "joint_2018-12_Dresden-Bergstrasse.csv",
        "DESN084",
        (13.731374, 51.027512),
    ),
}
# CSV column -> (ObservedProperty id, short name, long name, definition)
POLLUTANTS = {
    "NO2": (1, "NO2", "Stickstoffdioxid", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/8"),
    "O3": (2, "O3", "Ozon", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/7"),
    "PM10_TEOM": (3, "PM10", "Feinstaub PM10", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/5"),
}
UNIT = {
    "name": "Mikrogramm pro Kubikmeter",
    "symbol": "µg/m³",
    "definition": "http://qudt.org/vocab/unit/MicroGM-PER-M3",
}


def link(path: str) -> str:
    return f"{BASE}/{path}"


def dump(name: str, data: object, compact: bool = False) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) if compact else (
        json.dumps(data, ensure_ascii=False, indent=2)
    )
    (HERE / name).write_text(text + "\n", encoding="utf-8")
    return name


def hourly_values(file: str, column: str) -> list[tuple[datetime, int | float]]:
    """(UTC time, value) of every hourly row with a value; daily rows (empty Zeit), the units
    row and empty cells are skipped."""
    with (CSV_DIR / file).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[1:]  # [0] is the units row
    out = []
    for row in rows:
        text = row[column].strip()
        if not row["Zeit"] or not text:
            continue
        local = datetime.strptime(f"{row['Datum']} {row['Zeit']}", "%Y-%m-%d %H:%M")
        value: int | float = float(text) if "." in text else int(text)
        out.append(((local - MEZ).replace(tzinfo=UTC), value))
    return out


def stamp(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def observation(ds_id: int, time: datetime, value: int | float) -> dict:
    # ids as a server ingesting all six Datastreams hour by hour would assign them
    obs_id = 1 + int((time - FIRST_HOUR) / timedelta(hours=1)) * 6 + ds_id - 1
    return {
        "@iot.selfLink": link(f"Observations({obs_id})"),
        "@iot.id": obs_id,
        "phenomenonTime": stamp(time),
        "resultTime": None,
        "result": value,
        "Datastream@iot.navigationLink": link(f"Observations({obs_id})/Datastream"),
        "FeatureOfInterest@iot.navigationLink": link(f"Observations({obs_id})/FeatureOfInterest"),
    }


def thing(thing_id: int, name: str, code: str) -> dict:
    return {
        "@iot.selfLink": link(f"Things({thing_id})"),
        "@iot.id": thing_id,
        "name": name,
        "description": f"Luftmessstation {name} des sächsischen Luftmessnetzes",
        "properties": {"stationCode": code, "operator": "LfULG", "network": "Luftmessnetz Sachsen"},
        "Locations@iot.navigationLink": link(f"Things({thing_id})/Locations"),
        "HistoricalLocations@iot.navigationLink": link(f"Things({thing_id})/HistoricalLocations"),
        "Datastreams@iot.navigationLink": link(f"Things({thing_id})/Datastreams"),
        "MultiDatastreams@iot.navigationLink": link(f"Things({thing_id})/MultiDatastreams"),
        "TaskingCapabilities@iot.navigationLink": link(f"Things({thing_id})/TaskingCapabilities"),
    }


def location(loc_id: int, name: str, lon: float, lat: float) -> dict:
    return {
        "@iot.selfLink": link(f"Locations({loc_id})"),
        "@iot.id": loc_id,
        "name": f"Standort {name}",
        "description": f"Standort der Luftmessstation {name}",
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "Things@iot.navigationLink": link(f"Locations({loc_id})/Things"),
        "HistoricalLocations@iot.navigationLink": link(f"Locations({loc_id})/HistoricalLocations"),
    }


def datastream(ds_id: int, station: str, column: str, lon: float, lat: float) -> dict:
    _, short, long_name, _ = POLLUTANTS[column]
    return {
        "@iot.selfLink": link(f"Datastreams({ds_id})"),
        "@iot.id": ds_id,
        "name": f"{short} {station}",
        "description": f"{long_name} ({short}), Stundenmittelwerte, Luftmessstation {station}",
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        "unitOfMeasurement": UNIT,
        "observedArea": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"resultResolution": "PT1H"},
        "Thing@iot.navigationLink": link(f"Datastreams({ds_id})/Thing"),
        "Sensor@iot.navigationLink": link(f"Datastreams({ds_id})/Sensor"),
        "ObservedProperty@iot.navigationLink": link(f"Datastreams({ds_id})/ObservedProperty"),
        "Observations@iot.navigationLink": link(f"Datastreams({ds_id})/Observations"),
    }


def observed_property(column: str) -> dict:
    op_id, short, long_name, definition = POLLUTANTS[column]
    return {
        "@iot.selfLink": link(f"ObservedProperties({op_id})"),
        "@iot.id": op_id,
        "name": short,
        "definition": definition,
        "description": long_name,
        "Datastreams@iot.navigationLink": link(f"ObservedProperties({op_id})/Datastreams"),
    }


def service_root() -> dict:
    names = ["Datastreams", "MultiDatastreams", "FeaturesOfInterest", "HistoricalLocations",
             "Locations", "Observations", "ObservedProperties", "Sensors", "Things"]
    return {
        "value": [{"name": n, "url": link(n)} for n in names],
        "serverSettings": {
            "conformance": [
                "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
                "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
                "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
            ]
        },
    }


def entry(path: str, body: str, note: str, query: dict | None = None,
          scenario: str | None = None) -> dict:
    out: dict = {
        "request": {"method": "GET", "url": link(path)},
        "response": {"status": 200, "headers": JSON, "body_file": body},
        "note": note,
    }
    if query:
        out["request"]["query"] = query
    if scenario:
        out["scenario"] = scenario
    return out


def paged(ds_id: int, values: list[dict], tag: str, query: dict[str, str], note: str,
          scenario: str | None) -> list[dict]:
    """Pages of TOP observations, FROST style: the nextLink repeats the query plus `$skip`."""
    path = f"Datastreams({ds_id})/Observations"
    encoded = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    entries = []
    for number, start in enumerate(range(0, len(values), TOP), start=1):
        page: dict = {"value": values[start : start + TOP]}
        if start + TOP < len(values):
            page["@iot.nextLink"] = link(f"{path}?{encoded}&$skip={start + TOP}")
        body = dump(f"observations_ds{ds_id}_{tag}_p{number}.json", page, compact=True)
        match = {**query, **({"$skip": str(start)} if start else {})}
        count = len(page["value"])
        entries.append(entry(path, body, f"{note}, page {number} ({count})", match, scenario))
    return entries


def main() -> None:
    manifest = [entry("", dump("service_root.json", service_root()), "CONSTRUCTED service root")]
    things, locations, streams = [], [], []
    observation_entries: list[dict] = []
    ds_id = 0
    for thing_id, (station, (file, code, (lon, lat))) in enumerate(STATIONS.items(), start=1):
        things.append(thing(thing_id, station, code))
        loc_body = dump(f"thing_{thing_id}_locations.json",
                        {"value": [location(thing_id, station, lon, lat)]})
        locations.append(entry(f"Things({thing_id})/Locations", loc_body,
                               f"CONSTRUCTED Location of {station} (position: see README)"))
        station_streams = []
        for column in POLLUTANTS:
            ds_id += 1
            station_streams.append(datastream(ds_id, station, column, lon, lat))
            op_body = f"observed_property_{POLLUTANTS[column][1].lower()}.json"
            streams.append(entry(f"Datastreams({ds_id})/ObservedProperty", op_body,
                                 "CONSTRUCTED ObservedProperty (not asked by the source type)"))
            values = hourly_values(file, column)
            first = [observation(ds_id, t, v) for t, v in values if t < SPLIT]
            later = [observation(ds_id, t, v) for t, v in values if t >= SPLIT]
            real = f"values REAL from {file} column {column}"
            observation_entries += paged(
                ds_id, first, "first", {"$orderby": ORDER, "$top": str(TOP)},
                f"CONSTRUCTED first run, {real}", None)
            since = first[-1]["phenomenonTime"].replace("Z", ".000Z")  # as the source asks it
            observation_entries += paged(
                ds_id, first[-1:] + later, "next",
                {"$filter": f"phenomenonTime gt {since}", "$orderby": ORDER, "$top": str(TOP)},
                f"CONSTRUCTED later run (1 already seen + newer), {real}", SCENARIO_NEXT)
        body = dump(f"thing_{thing_id}_datastreams.json", {"value": station_streams})
        streams.append(entry(f"Things({thing_id})/Datastreams", body, "CONSTRUCTED"))
    for column in POLLUTANTS:
        dump(f"observed_property_{POLLUTANTS[column][1].lower()}.json", observed_property(column))
    things_body = dump("things_lfulg.json", {"value": things})
    manifest.append(entry("Things", things_body, "CONSTRUCTED: the two LfULG stations",
                          {"$filter": THINGS_FILTER, "$top": str(TOP)}))
    manifest += locations + streams + observation_entries
    dump("recordings.json", manifest)


if __name__ == "__main__":
    main()
