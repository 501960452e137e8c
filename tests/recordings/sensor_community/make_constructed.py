"""Build the CONSTRUCTED sensor.community area-filter responses for Dresden (see README.md).

Deterministic: ``uv run python tests/recordings/sensor_community/make_constructed.py``.
Format as documented for ``https://data.sensor.community/airrohr/v1/filter/area=LAT,LON,KM``
(current schema: location with altitude/country/exact_location/indoor; timestamps
``YYYY-MM-DD HH:MM:SS`` in UTC; values as strings, some "nan" or empty). NOT measured values.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
URL = "https://data.sensor.community/airrohr/v1/filter/area=51.05,13.74,12"
# sensor id, type, location id, lat, lon
SENSORS = [
    (71001, "SDS011", 60001, "51.065", "13.754"),  # Äußere Neustadt
    (71002, "BME280", 60001, "51.065", "13.754"),
    (71003, "SDS011", 60002, "51.049", "13.738"),  # Innere Altstadt
    (71004, "DHT22", 60002, "51.049", "13.738"),
    (71005, "SDS011", 60003, "51.045", "13.780"),  # Striesen
    (71006, "SDS011", 60004, "51.030", "13.710"),  # Plauen
    (71007, "BME280", 60004, "51.030", "13.710"),
    (71008, "SDS011", 60005, "51.107", "13.660"),  # Radebeul: within 12 km, outside the city
]
VALUES = {
    "SDS011": lambda k: [("P1", f"{12.3 + k:.2f}"), ("P2", f"{7.1 + k / 2:.2f}")],
    "DHT22": lambda k: [("temperature", f"{4.2 + k / 10:.2f}"), ("humidity", f"{81.0 - k:.2f}")],
    "BME280": lambda k: [
        ("temperature", f"{3.9 + k / 10:.2f}"),
        ("humidity", f"{79.5 - k:.2f}"),
        ("pressure", f"{100412.5 + 10 * k:.2f}"),
    ],
}
SNAPSHOTS = {  # scenario (None = unscoped) -> timestamps (UTC)
    None: ["2024-11-21 06:55:03", "2024-11-21 06:57:33"],
    "2024-11-22": ["2024-11-21 06:57:33", "2024-11-22 06:56:10"],  # one repeated, one new
}


def records(stamps: list[str]) -> list[dict]:
    out, value_id = [], 900000
    for k, stamp in enumerate(stamps):
        for sensor_id, kind, location, lat, lon in SENSORS:
            values = VALUES[kind](k + sensor_id % 10)
            if sensor_id == 71003 and k == 1:
                values[1] = ("P2", "nan")  # a "nan" value
            if sensor_id == 71004 and k == 0:
                values[1] = ("humidity", "")  # an empty value
            items = []
            for value_type, value in values:
                value_id += 1
                items.append({"id": value_id, "value": value, "value_type": value_type})
            out.append(
                {
                    "id": 5000000 + value_id,
                    "sampling_rate": None,
                    "timestamp": stamp,
                    "location": {
                        "id": location,
                        "latitude": lat,
                        "longitude": lon,
                        "altitude": "120.0",
                        "country": "DE",
                        "exact_location": 0,
                        "indoor": 0,
                    },
                    "sensor": {
                        "id": sensor_id,
                        "pin": "1" if kind == "SDS011" else "11",
                        "sensor_type": {
                            "id": {"SDS011": 14, "DHT22": 9, "BME280": 17}[kind],
                            "name": kind,
                            "manufacturer": "various",
                        },
                    },
                    "sensordatavalues": items,
                }
            )
    return out


def main() -> None:
    manifest = []
    for scenario, stamps in SNAPSHOTS.items():
        name = f"area_dresden_{scenario or 'first'}.json"
        (HERE / name).write_text(json.dumps(records(stamps), separators=(",", ":")) + "\n")
        entry = {
            "request": {"method": "GET", "url": URL},
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "body_file": name,
            },
            "note": "CONSTRUCTED area-filter answer for Dresden (make_constructed.py)",
        }
        if scenario:
            entry["scenario"] = scenario
        manifest.append(entry)
    real = [
        (
            "https://www.madavi.de/sensor/feinstaub-map-sds/data.json",
            "madavi_data_json_2017-01-16T1426.json",
            "application/json",
            "REAL data.json snapshot 2017-01-16 (weberius/feinstaubwerte)",
        ),
        (
            "https://archive.sensor.community/2019-01-08/2019-01-08_sds011_sensor_15092.csv",
            "2019-01-08_sds011_sensor_15092.csv",
            "text/csv",
            "REAL archive CSV (watty62/abdn_air_quality)",
        ),
        (
            "https://archive.sensor.community/2017-08-30/2017-08-30_dht22_sensor_5332.csv",
            "2017-08-30_dht22_sensor_5332.csv",
            "text/csv",
            "REAL archive CSV (watty62/abdn_air_quality)",
        ),
    ]
    for url, body, content_type, note in real:
        manifest.append(
            {
                "request": {"method": "GET", "url": url},
                "response": {
                    "status": 200,
                    "headers": {"Content-Type": content_type},
                    "body_file": body,
                },
                "note": note,
            }
        )
    (HERE / "recordings.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
