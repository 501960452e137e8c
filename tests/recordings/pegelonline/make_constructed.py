"""Build the CONSTRUCTED PEGELONLINE recordings for gauge DRESDEN (see README.md beside this file).

Deterministic (no randomness): ``uv run python tests/recordings/pegelonline/make_constructed.py``
rewrites the output files byte-identically.

* ``station_dresden.json``: the real 2014 DRESDEN record, extracted unchanged from
  ``pegelonline_2014_stations.json`` (real ``/stations.json`` list).
* ``station_dresden_timeseries.json``: that record plus a CONSTRUCTED ``timeseries`` entry for W,
  as documented for ``/stations/{uuid}.json?includeTimeseries=true``.
* ``measurements_<day>.json``: CONSTRUCTED W series in the documented format of
  ``/stations/{uuid}/W/measurements.json``: ``[{"timestamp": "...+01:00", "value": 98.0}, ...]``,
  every 15 minutes in absolute time, local time Europe/Berlin with its UTC offset.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
UUID = "70272185-b2b3-4178-96b8-43bea330dcae"
BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(minutes=15)
# Scenario day → last timestamp (local). Each window starts 30 local days earlier at 08:00.
SCENARIOS = {
    "2024-11-20": datetime(2024, 11, 20, 8, 0, tzinfo=BERLIN),
    "2024-11-21": datetime(2024, 11, 21, 8, 0, tzinfo=BERLIN),
}
ORIGIN = datetime(2024, 10, 21, 6, 0, tzinfo=UTC)  # = 2024-10-21T08:00+02:00

# Documented W timeseries entry; gaugeZero value as given for DRESDEN, validFrom CONSTRUCTED.
W_TIMESERIES = {
    "shortname": "W",
    "longname": "WASSERSTAND ROHDATEN",
    "unit": "cm",
    "equidistance": 15,
    "gaugeZero": {"unit": "m. ü. NHN", "value": 102.68, "validFrom": "2019-11-01"},
}


def level_cm(t: datetime) -> float:
    """Smooth, plausible autumn water level of the Elbe at Dresden (cm), a function of time only.

    Base ~92 cm, slow rise of 0.25 cm/day, one small wave (+30 cm) peaking 2024-11-10, and a
    ±2 cm daily ripple. Rounded to whole cm like real PEGELONLINE values (98.0).
    """
    days = (t - ORIGIN).total_seconds() / 86400
    wave = 30.0 * math.exp(-(((days - 20.0) / 3.0) ** 2))
    ripple = 2.0 * math.sin(2 * math.pi * (days % 1.0))
    return float(round(92.0 + 0.25 * days + wave + ripple))


def series(end_local: datetime) -> list[dict[str, object]]:
    """Points from 30 local days before ``end_local`` (same wall time) to ``end_local``."""
    start_local = end_local.replace(tzinfo=None) - timedelta(days=30)
    t = start_local.replace(tzinfo=BERLIN).astimezone(UTC)
    end = end_local.astimezone(UTC)
    points = []
    while t <= end:
        stamp = t.astimezone(BERLIN).isoformat()  # e.g. 2024-11-20T07:45:00+01:00
        points.append({"timestamp": stamp, "value": level_cm(t)})
        t += STEP
    return points


def write_json(name: str, data: object, compact: bool) -> None:
    if compact:  # the measurements endpoint answers compact JSON
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    stations = json.loads((HERE / "pegelonline_2014_stations.json").read_text(encoding="utf-8"))
    (dresden,) = [s for s in stations if s["uuid"] == UUID]
    write_json("station_dresden.json", dresden, compact=False)
    write_json(
        "station_dresden_timeseries.json", {**dresden, "timeseries": [W_TIMESERIES]}, compact=False
    )
    for day, end in SCENARIOS.items():
        points = series(end)
        write_json(f"measurements_{day}.json", points, compact=True)
        print(
            f"measurements_{day}.json: {len(points)} points, "
            f"{points[0]['timestamp']} … {points[-1]['timestamp']}, "
            f"{min(p['value'] for p in points)}–{max(p['value'] for p in points)} cm"
        )


if __name__ == "__main__":
    main()
