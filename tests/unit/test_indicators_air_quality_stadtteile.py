"""Air quality per Stadtteil: the days of air-quality-dresden-days computed from the REAL LfULG
files of December 2018 (tests/unit/test_indicators_air_quality.py), the two stations at the
positions of the city file's [indicators.air_quality.stations], their Thiessen polygons clipped
to the 64 Stadtteile of reference/dresden/stadtteile.geojson. Changed values are CONSTRUCTED and
marked so."""

from __future__ import annotations

import functools
import tomllib

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.extract import extract
from odp.indicators.areas import compute_districts, parse_config
from odp.publish.changes import row_hashes, write_ledger
from odp.spec import load_dataset
from tests.helpers import REPO, make_project
from tests.unit.test_indicators_air_quality import both
from tests.unit.test_indicators_air_quality import everything as station_days

NAME = "air-quality-dresden-stadtteile"
HOUR = 3600 * 10**9
COLUMNS = ["station_id", "resolution", "pollutant", "timestamp", "date", "daily_mean", "max_1h",
           "max_8h", "index_band", "index_name", "latitude", "longitude"]


def indicators() -> dict:
    return tomllib.loads((REPO / "cities" / "dresden.toml").read_text())["indicators"]


@functools.cache
def _days() -> pd.DataFrame:
    """air-quality-dresden-days as it is published (with the stations' positions)."""
    days = station_days(both()).reset_index()
    where = indicators()["air_quality"]["stations"]
    days["latitude"] = days.station_id.map(lambda s: where[s]["latitude"]).astype("Float64")
    days["longitude"] = days.station_id.map(lambda s: where[s]["longitude"]).astype("Float64")
    days["resolution"] = "1h"
    days["date"] = days["date"].astype("string")
    return days[COLUMNS].astype({"station_id": "string", "resolution": "string",
                                 "pollutant": "string"})


@functools.cache
def config():
    return parse_config({**indicators()["air_quality_stadtteile"], "_root": str(REPO)}, "city")


@functools.cache
def _stadtteile() -> pd.DataFrame:
    days = _days()
    ns = days.timestamp.dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns.min()), end + 1)] for s in days.station_id.unique()}
    return compute_districts(days, HOUR, changed, end, config()).rows


def row(stadtteil: str, pollutant: str, date: str) -> pd.Series:
    rows = _stadtteile()
    (found,) = rows[(rows.stadtteil == stadtteil) & (rows.pollutant == pollutant)
                    & (rows.date == date)].itertuples(index=False)
    return pd.Series(found._asdict())


def test_every_stadtteil_gets_one_row_per_pollutant_and_day_from_one_station():
    rows = _stadtteile()
    assert len(rows) == 64 * 4 * 30  # 64 Stadtteile, 4 pollutants, the 30 recorded days
    per = rows.drop_duplicates("stadtteil_nr").set_index("stadtteil")["stations"]
    # the Thiessen line between the stations (51.065 N / 51.028 N) runs east–west through the
    # city: north of it Dresden-Nord, south of it Dresden-Bergstraße
    assert per.value_counts().to_dict() == {"Dresden-Nord": 34, "Dresden-Bergstraße": 30}
    assert per["Äußere Neustadt (Antonstadt)"] == "Dresden-Nord"  # the station's own
    assert per["Südvorstadt-Ost"] == "Dresden-Bergstraße"  # the station's own (Bergstraße)
    assert (per["Klotzsche"], per["Prohlis-Nord"]) == ("Dresden-Nord", "Dresden-Bergstraße")


def test_a_stadtteil_takes_its_stations_hand_checked_daily_mean_and_index_class():
    # Dresden-Nord, NO2, 2018-12-02: 572 / 24 = 23.8 µg/m³, class 3 "mäßig" (hand sum in
    # tests/unit/test_indicators_air_quality.py)
    found = row("Äußere Neustadt (Antonstadt)", "no2", "2018-12-02")
    assert (found.stations, found.daily_mean, found.index_band, found.index_name) == (
        "Dresden-Nord", 23.8, 3, "mäßig")
    assert found.timestamp == pd.Timestamp("2018-12-01T23:00Z")  # 00:00 MEZ


def test_a_day_the_station_has_no_valid_mean_for_has_none_in_its_stadtteile():
    # Dresden-Bergstraße, NO2, 2018-12-13: 11 of 24 hourly values — no daily mean
    station = _days()
    (mean,) = station[(station.station_id == "Dresden-Bergstraße") & (station.pollutant == "no2")
                      & (station.date == "2018-12-13")].daily_mean
    assert pd.isna(mean)
    assert pd.isna(row("Plauen", "no2", "2018-12-13").daily_mean)
    assert row("Pieschen-Süd", "no2", "2018-12-13").daily_mean > 0  # Nord's day is valid


def test_a_wrong_column_list_is_a_config_error_naming_the_key():
    table = {**indicators()["air_quality_stadtteile"], "_root": str(REPO), "by": "pollutant"}
    with pytest.raises(ConfigError, match=r"^city: by must be a list of column names"):
        parse_config(table, "city")


def _ledger(days: pd.DataFrame) -> pd.DataFrame:
    table = days.sort_values(["station_id", "resolution", "pollutant", "timestamp"],
                             ignore_index=True)
    table["_row_hash"] = row_hashes(table, list(table.columns))
    return table


def test_a_late_value_at_one_station_resends_only_its_stadtteile_of_that_day(tmp_path,
                                                                            monkeypatch):
    root, names = make_project(tmp_path, [NAME])
    source = names[NAME].split("-")[0] + "-days"
    path = root / "pipelines" / f"{names[NAME]}.toml"
    path.write_text(path.read_text().replace("\nair-quality-dresden-days =", f"\n{source} ="))
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    days = _days().copy()
    write_ledger(state, source, _ledger(days))
    done = extract(load_dataset(names[NAME], root), state)
    assert len(done.table) == 64 * 4 * 30
    # CONSTRUCTED: Bergstraße's PM10 mean of 2018-12-05 corrected upwards to 61.0 µg/m³
    changed = ((days.station_id == "Dresden-Bergstraße") & (days.pollutant == "pm10")
               & (days.date == "2018-12-05"))
    days.loc[changed, ["daily_mean", "index_band"]] = [61.0, 4]
    days.loc[changed, "index_name"] = "schlecht"
    write_ledger(state, source, _ledger(days))
    done = extract(load_dataset(names[NAME], root), state)
    sent = done.table[done.table["_dlt_load_id"] == done.load_id]
    assert len(sent) == 30  # the 30 Stadtteile of Bergstraße, that day, PM10 only
    assert set(sent.stations) == {"Dresden-Bergstraße"} and set(sent.daily_mean) == {"61"}
    assert set(sent.date) == {"2018-12-05"} and set(sent.index_name) == {"schlecht"}
    assert len(done.table) == 64 * 4 * 30
