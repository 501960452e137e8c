"""Extraction speed of the sensor source types on large recorded files (prints rows/s).

    uv run python bench/extract_sources.py

* sensor.community: the real 1.0 MB `data.json` (1,218 records, 2017) → `live_frame`.
* SensorThings: every Observations page of the real Toronto snapshot → `observations_frame`
  (repeated to get a stable figure: the snapshot's pages hold 100 observations each).
* DWD CDC: a generated 10-minute product file in the documented format (a decade for one
  station, ~525,000 rows, ~26 MB) → `parse_product` inside a zip → `read_archive`.
* PEGELONLINE: the 30-day DRESDEN series (2,885 points) through `measurements_of`' frame path.
Parsing is timed, not HTTP (the replay server would dominate).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from odp.sources.dwd_cdc import read_archive
from odp.sources.frames import as_raw_text, utc_iso
from odp.sources.sensor_community import VALUE_TYPES, live_frame
from odp.sources.sensorthings import observations_frame

REC = Path(__file__).resolve().parents[1] / "tests" / "recordings"


def timed(label: str, rows_per_call: int, call, repeat: int = 5) -> None:
    call()  # warm-up
    began = time.perf_counter()
    for _ in range(repeat):
        rows = call()
    seconds = (time.perf_counter() - began) / repeat
    assert rows == rows_per_call, (rows, rows_per_call)
    print(f"{label:<58} {rows:>9,} rows  {seconds * 1000:8.1f} ms  {rows / seconds:>12,.0f} rows/s")


def dwd_zip(rows: int) -> bytes:
    lines = ["STATIONS_ID;MESS_DATUM;  QN;RWS_DAU_10;RWS_10;RWS_IND_10;eor"]
    t = datetime(2014, 1, 1)
    for i in range(rows):
        rws = "-999" if i % 997 == 0 else f"{(i % 13) / 100:.2f}"
        lines.append(
            f"       1048;{t:%Y%m%d%H%M};    3;{i % 11:>4};{rws:>7};{int(i % 13 > 0):>4};eor"
        )
        t += timedelta(minutes=10)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "produkt_zehn_min_rr_20140101_20231231_01048.txt", "\r\n".join(lines) + "\r\n"
        )
    return buffer.getvalue()


def main() -> None:
    feed = json.loads(
        (REC / "sensor_community" / "madavi_data_json_2017-01-16T1426.json").read_text()
    )
    timed(
        "sensor.community data.json (real, 1.0 MB)",
        1218,
        lambda: len(live_frame(feed, VALUE_TYPES, "bench")),
        repeat=10,
    )

    snapshot = REC / "sensorthings" / "datastream_206051_observations_page1.json"
    page = json.loads(snapshot.read_text())["value"]
    big = page * 200  # 20,000 observations of the real page's shape
    timed(
        "SensorThings Observations (real Toronto page x200)",
        len(big),
        lambda: len(observations_frame(big, "bench")),
    )

    rows = 6 * 24 * 365 * 10
    content = dwd_zip(rows)
    print(f"(generated DWD 10-minute product: {len(content) / 1e6:.1f} MB zipped)")
    timed(
        "DWD 10-min product, generated decade (zip → rows)",
        rows,
        lambda: len(read_archive(content, "bench")[0]),
        repeat=2,
    )

    series = json.loads((REC / "pegelonline" / "measurements_2024-11-21.json").read_text())

    def pegel() -> int:
        raw = as_raw_text(pd.DataFrame.from_records(series, columns=["timestamp", "value"]))
        return len(pd.DataFrame({"timestamp": utc_iso(raw["timestamp"]), "w": raw["value"]}))

    timed("PEGELONLINE W series, 30 days (constructed)", len(series), pegel, repeat=10)


if __name__ == "__main__":
    main()
