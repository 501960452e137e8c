"""Build the PEGELONLINE recordings for the Elbe gauges in Saxony (see README.md beside this file).

Deterministic (no randomness):
``uv run python tests/recordings/pegelonline_gauges/make_constructed.py``
rewrites the output files byte-identically.

* ``stations_elbe_timeseries.json``: the REAL 2014 records of every ELBE station, unchanged (from
  ``../pegelonline/pegelonline_2014_stations.json``), each with a CONSTRUCTED ``timeseries`` list
  in the documented format of ``/stations.json?waters=ELBE&includeTimeseries=true``.
* ``m_<NAME>_<SERIES>_<scenario>.json``: CONSTRUCTED series in the documented format of
  ``/stations/{uuid}/{series}/measurements.json`` (local time Europe/Berlin with offset).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "pegelonline" / "pegelonline_2014_stations.json"
BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(minutes=15)
BASE = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
DRESDEN = "70272185-b2b3-4178-96b8-43bea330dcae"

# Saxon gauges: number -> (gauge zero m ü. NHN, base W cm, has Q). DRESDEN's gauge zero is the
# documented 102.68 m; the other gauge zeros are ILLUSTRATIVE (not checked against the live API).
SAXON = {
    "501010": (113.81, 110.0, True),  # SCHÖNA
    "501040": (107.42, 95.0, False),  # PIRNA
    "501060": (102.68, 92.0, True),  # DRESDEN
    "501080": (89.92, 105.0, False),  # MEISSEN
    "501110": (90.06, 120.0, True),  # RIESA
}
# scenario -> (first, last) local timestamps of the served window
WINDOWS = {
    "2024-11-21": (
        datetime(2024, 11, 20, 8, 15, tzinfo=BERLIN),
        datetime(2024, 11, 21, 8, 0, tzinfo=BERLIN),
    ),
    "2024-11-22": (
        datetime(2024, 11, 21, 8, 0, tzinfo=BERLIN),
        datetime(2024, 11, 22, 8, 0, tzinfo=BERLIN),
    ),
}
ORIGIN = datetime(2024, 10, 21, 6, 0, tzinfo=UTC)


def level_cm(base: float, t: datetime) -> float:
    days = (t - ORIGIN).total_seconds() / 86400
    return float(round(base + 0.25 * days + 2.0 * math.sin(2 * math.pi * (days % 1.0))))


def discharge(level: float) -> float:
    """A smooth illustrative rating curve (m³/s)."""
    return round(0.012 * level**1.8, 1)


def timeseries(gauge_zero: float, has_q: bool) -> list[dict]:
    zero = {"unit": "m. ü. NHN", "value": gauge_zero, "validFrom": "2019-11-01"}
    out = [
        {
            "shortname": "W",
            "longname": "WASSERSTAND ROHDATEN",
            "unit": "cm",
            "equidistance": 15,
            "gaugeZero": zero,
        }
    ]
    if has_q:
        out.append({"shortname": "Q", "longname": "ABFLUSS", "unit": "m³/s", "equidistance": 15})
    return out


def _dresden_level() -> object:
    """The level function of ../pegelonline/make_constructed.py (overlapping windows agree)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dresden", REAL.parent / "make_constructed.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.level_cm


def points(
    base: float, series: str, first: datetime, last: datetime, dresden: bool = False
) -> list[dict]:
    t, end, out = first.astimezone(UTC), last.astimezone(UTC), []
    level = _dresden_level() if dresden else (lambda t: level_cm(base, t))
    while t <= end:
        w = level(t)
        out.append(
            {
                "timestamp": t.astimezone(BERLIN).isoformat(),
                "value": w if series == "W" else discharge(w),
            }
        )
        t += STEP
    return out


def dump(name: str, data: object, compact: bool) -> None:
    text = (
        json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if compact
        else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    )
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    real = json.loads(REAL.read_text(encoding="utf-8"))
    elbe = [dict(s) for s in real if (s.get("water") or {}).get("shortname") == "ELBE"]
    for station in elbe:
        zero, _, has_q = SAXON.get(station["number"], (None, None, False))
        station["timeseries"] = timeseries(zero, has_q) if zero else timeseries(0.0, False)[:1]
        if not zero:
            del station["timeseries"][0]["gaugeZero"]
    dump("stations_elbe_timeseries.json", elbe, compact=False)
    manifest = [
        {
            "request": {
                "method": "GET",
                "url": f"{BASE}/stations.json",
                "query": {"waters": "ELBE", "includeTimeseries": "true"},
            },
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json;charset=UTF-8"},
                "body_file": "stations_elbe_timeseries.json",
            },
            "note": "REAL 2014 ELBE station records + CONSTRUCTED timeseries (documented format)",
        }
    ]
    by_number = {s["number"]: s for s in elbe}
    for number, (_, base, has_q) in SAXON.items():
        station = by_number[number]
        for series in ("W", "Q") if has_q else ("W",):
            for scenario, (first, last) in WINDOWS.items():
                if station["uuid"] == DRESDEN and series == "W" and scenario == "2024-11-21":
                    continue  # served by ../pegelonline (its 30-day DRESDEN W recording)
                name = f"m_{number}_{series}_{scenario}.json"
                dump(
                    name,
                    points(base, series, first, last, station["uuid"] == DRESDEN),
                    compact=True,
                )
                manifest.append(
                    {
                        "request": {
                            "method": "GET",
                            "query": {"start": "*"},
                            "url": f"{BASE}/stations/{station['uuid']}/{series}/measurements.json",
                        },
                        "response": {
                            "status": 200,
                            "headers": {"Content-Type": "application/json;charset=UTF-8"},
                            "body_file": name,
                        },
                        "scenario": scenario,
                        "note": f"CONSTRUCTED {series} series of {station['shortname']} "
                        f"(make_constructed.py)",
                    }
                )
    dump("recordings.json", manifest, compact=False)


if __name__ == "__main__":
    main()
