"""Build the DWD CDC recordings for Dresden's precipitation stations (see README.md).

Deterministic: ``uv run python tests/recordings/dwd/make_constructed.py`` (fixed zip dates).
The station lists are REAL; the product files of 01048/01050/01051 are CONSTRUCTED in the
documented format (no real Dresden product file was available), modelled byte for byte on the
real hourly excerpt of station 00433 beside them (padded fields, CRLF, `eor`, -999).
The validators of every response (`ETag`, `Last-Modified`) are CONSTRUCTED (fixed times, the
ETag from the body's size and that time), so conditional requests can be replayed.
"""

from __future__ import annotations

import json
import math
import zipfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate"
STATIONS = {  # id -> (height, lat, lon, name) as in the REAL hourly station list
    "01048": (228, "51.1278", "13.7543", "Dresden-Klotzsche"),
    "01050": (112, "51.0221", "13.8470", "Dresden-Hosterwitz"),
    "01051": (120, "51.0248", "13.7750", "Dresden-Strehlen"),
}
START = datetime(2024, 11, 19, 0, 0, tzinfo=UTC)
ENDS = {
    None: datetime(2024, 11, 21, 6, 0, tzinfo=UTC),
    "2024-11-22": datetime(2024, 11, 22, 6, 0, tzinfo=UTC),
}
WRITTEN = {  # when DWD would have rewritten the recent files (Last-Modified), per scenario
    None: datetime(2024, 11, 21, 8, 4, 12, tzinfo=UTC),
    "2024-11-22": datetime(2024, 11, 22, 8, 3, 47, tzinfo=UTC),
}
LISTS_WRITTEN = datetime(2024, 11, 18, 9, 15, 30, tzinfo=UTC)  # the station lists (unchanged)


def rain_mm_per_hour(t: datetime, k: int) -> float:
    """Illustrative: dry, with two showers (2024-11-20 10–16 UTC and 2024-11-21 18–23 UTC)."""
    hours = (t - START).total_seconds() / 3600
    shower = max(0.0, math.sin(math.pi * (hours - 34) / 6)) if 34 <= hours <= 40 else 0.0
    late = max(0.0, math.sin(math.pi * (hours - 66) / 5)) if 66 <= hours <= 71 else 0.0
    return round((1.8 + 0.3 * k) * shower + 0.9 * late, 1)


def hourly(station: str, k: int, end: datetime) -> str:
    lines = ["STATIONS_ID;MESS_DATUM;QN_8;  R1;RS_IND;WRTR;eor"]
    t = START
    while t <= end:
        r1 = rain_mm_per_hour(t, k)
        missing = station == "01050" and t == datetime(2024, 11, 20, 3, tzinfo=UTC)
        r1_text = "-999" if missing else f"{r1:.1f}"
        ind = -999 if missing else int(r1 > 0)
        wrtr = 6 if r1 > 0 and not missing else -999
        lines.append(f"{int(station):>11};{t:%Y%m%d%H};    3;{r1_text:>6};{ind:>4};{wrtr:>4};eor")
        t += timedelta(hours=1)
    return "\r\n".join(lines) + "\r\n"


def ten_minutes(station: str, k: int, end: datetime) -> str:
    lines = ["STATIONS_ID;MESS_DATUM;  QN;RWS_DAU_10;RWS_10;RWS_IND_10;eor"]
    t = START + timedelta(days=1)
    while t <= end + timedelta(minutes=50):
        rws = round(rain_mm_per_hour(t, k) / 6, 2)
        missing = station == "01051" and t == datetime(2024, 11, 20, 12, 30, tzinfo=UTC)
        dau = -999 if missing else (10 if rws > 0 else 0)
        rws_text = "-999" if missing else f"{rws:.2f}"
        ind = -999 if missing else int(rws > 0)
        lines.append(f"{int(station):>11};{t:%Y%m%d%H%M};    3;{dau:>4};{rws_text:>7};{ind:>4};eor")
        t += timedelta(minutes=10)
    return "\r\n".join(lines) + "\r\n"


def geography(station: str) -> str:
    height, lat, lon, name = STATIONS[station]
    return (
        "Stations_id;Stationshoehe;Geogr.Breite;Geogr.Laenge;von_datum;bis_datum;Stationsname\r\n"
        f"{int(station):>6};{height:>8.2f};{lat:>8};{lon:>8};20060401;        ;{name}\r\n"
    )


def headers(content_type: str, body_file: str, written: datetime) -> dict[str, str]:
    """Response headers with CONSTRUCTED validators: Last-Modified = `written`, ETag as Apache
    httpd forms it ("size-mtime", hex, mtime in microseconds): a rewritten file gets new ones."""
    size = (HERE / body_file).stat().st_size
    return {
        "Content-Type": content_type,
        "ETag": f'"{size:x}-{int(written.timestamp()) * 1_000_000:x}"',
        "Last-Modified": format_datetime(written, usegmt=True),
    }


def write_zip(name: str, members: dict[str, str]) -> None:
    with zipfile.ZipFile(HERE / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            info = zipfile.ZipInfo(member, date_time=(2024, 11, 21, 8, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("iso-8859-1"))


def main() -> None:
    manifest = [
        {
            "request": {
                "method": "GET",
                "url": f"{BASE}/hourly/precipitation/recent/"
                "RR_Stundenwerte_Beschreibung_Stationen.txt",
            },
            "response": {
                "status": 200,
                "headers": headers(
                    "text/plain", "RR_Stundenwerte_Beschreibung_Stationen.txt", LISTS_WRITTEN
                ),
                "body_file": "RR_Stundenwerte_Beschreibung_Stationen.txt",
            },
            "note": "REAL hourly station list (lenamueller/radar-gauge-adjustment)",
        },
        {
            "request": {
                "method": "GET",
                "url": f"{BASE}/10_minutes/precipitation/recent/"
                "zehn_min_rr_Beschreibung_Stationen.txt",
            },
            "response": {
                "status": 200,
                "headers": headers(
                    "text/plain", "zehn_min_rr_Beschreibung_Stationen_2019-05.txt", LISTS_WRITTEN
                ),
                "body_file": "zehn_min_rr_Beschreibung_Stationen_2019-05.txt",
            },
            "note": "REAL 10-minute station list of 2019-05 "
            "(brry/rdwd; taken from the historical folder)",
        },
    ]
    for scenario, end in ENDS.items():
        tag = scenario or "first"
        for k, station in enumerate(STATIONS):
            last = end.strftime("%Y%m%d")
            for kind, folder, archive, product, text in (
                (
                    "hourly",
                    "hourly/precipitation/recent",
                    f"stundenwerte_RR_{station}_akt.zip",
                    f"produkt_rr_stunde_20241119_{last}_{station}.txt",
                    hourly(station, k, end),
                ),
                (
                    "10min",
                    "10_minutes/precipitation/recent",
                    f"10minutenwerte_nieder_{station}_akt.zip",
                    f"produkt_zehn_min_rr_20241120_{last}_{station}.txt",
                    ten_minutes(station, k, end),
                ),
            ):
                body = f"{kind}_{station}_{tag}.zip"
                write_zip(
                    body, {product: text, f"Metadaten_Geographie_{station}.txt": geography(station)}
                )
                entry = {
                    "request": {"method": "GET", "url": f"{BASE}/{folder}/{archive}"},
                    "response": {
                        "status": 200,
                        "headers": headers("application/zip", body, WRITTEN[scenario]),
                        "body_file": body,
                    },
                    "note": f"CONSTRUCTED {kind} product of {station} (make_constructed.py)",
                }
                if scenario:
                    entry["scenario"] = scenario
                manifest.append(entry)
    write_zip(
        "hourly_00433_excerpt.zip",
        {
            "produkt_rr_stunde_20201030_20201031_00433.txt": (
                HERE / "produkt_rr_stunde_00433_excerpt_20201030-31.txt"
            ).read_text("iso-8859-1"),
            "Metadaten_Geographie_00433.txt": (HERE / "Metadaten_Geographie_00433.txt").read_text(
                "iso-8859-1"
            ),
        },
    )
    manifest.append(
        {
            "request": {
                "method": "GET",
                "url": f"{BASE}/hourly/precipitation/recent/stundenwerte_RR_00433_akt.zip",
            },
            "response": {
                "status": 200,
                "headers": headers(
                    "application/zip", "hourly_00433_excerpt.zip", WRITTEN[None]
                ),
                "body_file": "hourly_00433_excerpt.zip",
            },
            "note": "REAL product excerpt + metadata of 00433 in a CONSTRUCTED zip",
        }
    )
    (HERE / "recordings.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
