"""Build Leipzig's recordings and `recordings.json` (see README.md beside this file).

Deterministic: ``uv run python tests/recordings/leipzig/make_constructed.py`` rewrites every
file byte-identically (fixed zip dates, values a function of time only).

* REAL, served unchanged: the LfULG files of Leipzig-Mitte (one per substance) and the 2014
  PEGELONLINE record of the Saale gauge TROTHA UP, extracted unchanged from the real 2014
  `/stations.json` list in ``../pegelonline/``.
* CONSTRUCTED in the documented formats (no real recording exists, see README.md): the W series
  of TROTHA UP and the DWD hourly precipitation product of station 02928 Leipzig-Holzhausen.
"""

from __future__ import annotations

import json
import math
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
PEGELONLINE = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
TROTHA = "33193e2b-1203-4681-a23d-f87b9fab4b60"  # TROTHA UP, Saale-km 89.15 (Halle), 570810
DWD = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate"
HOLZHAUSEN = ("02928", 138, "51.3151", "12.4462", "Leipzig-Holzhausen")  # as the REAL list
LFULG = ("https://raw.githubusercontent.com/offenesdresden/Luftqualitaet-data/"
         "4bae7df907ce483d631ff244b7a5e6912fb7e44d/raw/2018/12/Leipzig-Mitte,{}.csv")
SUBSTANCES = ("NO2", "NO", "PM10_TEOM", "TEMP")
BERLIN = ZoneInfo("Europe/Berlin")
END = datetime(2024, 11, 21, 8, 0, tzinfo=BERLIN)  # the scenario day of the other recordings
JSON = {"Content-Type": "application/json;charset=UTF-8"}


def trotha_station() -> dict:
    stations = json.loads((HERE.parent / "pegelonline" / "pegelonline_2014_stations.json")
                          .read_text(encoding="utf-8"))
    return next(s for s in stations if s["uuid"] == TROTHA)


def saale_level_cm(t: datetime) -> float:
    """Illustrative autumn level of the Saale at Halle-Trotha (cm): ~190 cm, a slow 6-cm wave
    over the day. Whole cm like real PEGELONLINE values."""
    hours = (t - END).total_seconds() / 3600
    return float(round(190.0 + 6.0 * math.sin(2 * math.pi * hours / 24)))


def trotha_series() -> list[dict]:
    """24 h of 15-minute values up to END, local time with offset (documented format)."""
    points, t = [], END - timedelta(hours=24) + timedelta(minutes=15)
    while t <= END:
        points.append({"timestamp": t.isoformat(), "value": saale_level_cm(t)})
        t += timedelta(minutes=15)
    return points


def holzhausen_hourly() -> str:
    """48 hours 2024-11-19T07 … 2024-11-21T06 UTC, one shower (illustrative), one hour -999."""
    lines, t = ["STATIONS_ID;MESS_DATUM;QN_8;  R1;RS_IND;WRTR;eor"], datetime(2024, 11, 19, 7,
                                                                             tzinfo=UTC)
    for hour in range(48):
        rain = round(max(0.0, 2.4 * math.sin(math.pi * (hour - 20) / 7)), 1) if 20 <= hour <= 27 \
            else 0.0
        missing = hour == 40
        r1 = "-999" if missing else f"{rain:.1f}"
        ind = -999 if missing else int(rain > 0)
        wrtr = 6 if rain > 0 else -999
        lines.append(f"{2928:>11};{t:%Y%m%d%H};    3;{r1:>6};{ind:>4};{wrtr:>4};eor")
        t += timedelta(hours=1)
    return "\r\n".join(lines) + "\r\n"


def holzhausen_geography() -> str:
    station, height, lat, lon, name = HOLZHAUSEN
    return ("Stations_id;Stationshoehe;Geogr.Breite;Geogr.Laenge;von_datum;bis_datum;"
            f"Stationsname\r\n{int(station):>6};{height:>8.2f};{lat:>8};{lon:>8};19970407;"
            f"        ;{name}\r\n")


def write_zip(name: str, members: dict[str, str]) -> None:
    with zipfile.ZipFile(HERE / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            info = zipfile.ZipInfo(member, date_time=(2024, 11, 21, 8, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("iso-8859-1"))


def entry(url: str, body_file: str, content_type: dict, note: str,
          query: dict | None = None) -> dict:
    request: dict = {"method": "GET", "url": url}
    if query:
        request["query"] = query
    return {"request": request, "response": {"status": 200, "headers": content_type,
                                             "body_file": body_file}, "note": note}


def main() -> None:
    (HERE / "station_trotha.json").write_text(
        json.dumps(trotha_station(), ensure_ascii=False), encoding="utf-8")
    (HERE / "measurements_trotha_2024-11-21.json").write_text(
        json.dumps(trotha_series(), separators=(",", ":")), encoding="utf-8")
    write_zip("hourly_02928.zip", {
        "produkt_rr_stunde_20241119_20241121_02928.txt": holzhausen_hourly(),
        "Metadaten_Geographie_02928.txt": holzhausen_geography()})
    manifest = [
        entry(LFULG.format(s), f"lfulg_2018-12_Leipzig-Mitte_{s}.csv",
              {"Content-Type": "text/plain; charset=utf-8"},
              f"REAL LfULG file of Leipzig-Mitte, {s} (offenesdresden/Luftqualitaet-data)")
        for s in SUBSTANCES
    ] + [
        entry(f"{PEGELONLINE}/stations/{TROTHA}.json", "station_trotha.json", JSON,
              "REAL 2014 record of TROTHA UP, extracted unchanged from the 2014 list"),
        entry(f"{PEGELONLINE}/stations/{TROTHA}/W/measurements.json",
              "measurements_trotha_2024-11-21.json", JSON,
              "CONSTRUCTED W series (documented format), 24 h to 2024-11-21T08:00+01:00",
              query={"start": "*"}),
        entry(f"{DWD}/hourly/precipitation/recent/stundenwerte_RR_02928_akt.zip",
              "hourly_02928.zip", {"Content-Type": "application/zip"},
              "CONSTRUCTED hourly product of 02928 Leipzig-Holzhausen (documented format)"),
    ]
    (HERE / "recordings.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False)
                                          + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
