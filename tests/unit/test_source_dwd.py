"""DWD CDC precipitation: real station lists and the real 00433 excerpt, constructed Dresden
products (see tests/recordings/dwd/README.md)."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.sources.dwd_cdc import parse_product, parse_station_list
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

HOURLY, TEN = "precipitation-dresden-hourly", "precipitation-dresden-10min"
BASE = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate"
HERE = RECORDINGS / "dwd"


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from source_env(tmp_path, monkeypatch, [HOURLY, TEN])


def _null(value) -> bool:
    return value is None or bool(pd.isna(value))


def test_real_station_lists_iso_8859_1_fixed_width():
    hourly = parse_station_list(
        (HERE / "RR_Stundenwerte_Beschreibung_Stationen.txt").read_bytes(), "x"
    )
    assert hourly["01048"] == {
        "height": "228",
        "lat": "51.1278",
        "lon": "13.7543",
        "name": "Dresden-Klotzsche",
        "state": "Sachsen",
    }
    assert hourly["06287"]["name"] == "Gräfendorf,Kr.Main-Spessart (Kläranlage)"  # fills the column
    ten = parse_station_list(
        (HERE / "zehn_min_rr_Beschreibung_Stationen_2019-05.txt").read_bytes(), "x"
    )
    assert ten["01050"]["name"] == "Dresden-Hosterwitz" and ten["01051"]["height"] == "120"


def test_real_hourly_excerpt_minus_999_is_null_and_time_is_utc():
    text = (HERE / "produkt_rr_stunde_00433_excerpt_20201030-31.txt").read_text("iso-8859-1")
    frame = parse_product(text, "x").set_index("MESS_DATUM")
    # by hand: "433;2020103002;    1;   0.1;   1;-999;eor"
    row = frame.loc["2020-10-30T02:00:00Z"]
    assert (row["STATIONS_ID"], row["QN_8"], row["R1"], row["RS_IND"]) == ("00433", "1", "0.1", "1")
    assert _null(row["WRTR"]) and frame["WRTR"].isna().all()
    assert len(frame) == 48 and frame.index[-1] == "2020-10-31T23:00:00Z"


def test_hourly_dataset_three_stations_with_metadata(env):
    table = extract(load_dataset(env["names"][HOURLY], env["root"]), env["state"]).table
    assert table.groupby("station_id").size().to_dict() == {"01048": 55, "01050": 55, "01051": 55}
    hosterwitz = table[table.station_id == "01050"].set_index("timestamp")
    missing = hosterwitz.loc["2024-11-20T03:00:00Z"]  # "-999;-999;-999" in the product file
    assert _null(missing["precipitation"]) and _null(missing["precipitation_indicator"])
    shower = hosterwitz.loc["2024-11-20T12:00:00Z"]  # "1050;2024112012;    3;   1.8;   1;   6;eor"
    assert (shower["precipitation"], shower["precipitation_form"], shower["quality"]) == (
        "1.8",
        "6",
        "3",
    )
    assert (shower["station_name"], shower["latitude"], shower["longitude"]) == (
        "Dresden-Hosterwitz",
        "51.0221",
        "13.8470",
    )
    assert shower["station_height"] == "112.00"  # from Metadaten_Geographie in the zip


def test_ten_minute_incremental_second_run_only_new_rows(env):
    ds = load_dataset(env["names"][TEN], env["root"])
    assert extract(ds, env["state"]).new_rows == 3 * 186
    assert extract(ds, env["state"]).new_rows == 0
    env["server"].scenario = "2024-11-22"
    again = extract(ds, env["state"])
    assert again.new_rows == 3 * 144 and len(again.table) == 3 * 330
    assert not again.table.duplicated(["station_id", "timestamp"]).any()


def test_5xx_then_success(env):
    env["server"].fail_next(
        f"{BASE}/hourly/precipitation/recent/stundenwerte_RR_01051_akt.zip", [500, 503]
    )
    assert extract(load_dataset(env["names"][HOURLY], env["root"]), env["state"]).new_rows == 165


def test_not_a_zip_and_a_product_without_mess_datum_are_named(env):
    url = f"{BASE}/hourly/precipitation/recent/stundenwerte_RR_01048_akt.zip"
    env["server"].override(url, 200, b"<html>Wartung</html>", "text/html")
    ds = load_dataset(env["names"][HOURLY], env["root"])
    with pytest.raises(SourceError, match=r"stundenwerte_RR_01048_akt.zip: not a zip archive"):
        extract(ds, env["state"])
    env["server"].clear_faults()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "produkt_rr_stunde_x_01048.txt", "STATIONS_ID;DATUM;R1;eor\r\n1048;1;0.0;eor\r\n"
        )
    env["server"].override(url, 200, buffer.getvalue(), "application/zip")
    with pytest.raises(SourceError, match=r"malformed product file \(no column MESS_DATUM\)"):
        extract(ds, env["state"])
