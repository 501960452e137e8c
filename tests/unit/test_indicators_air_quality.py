"""Air-quality indicators on the REAL LfULG files of December 2018 (tests/recordings/
airquality_sachsen/README.md: Dresden-Nord and Dresden-Bergstraße, hourly values stamped with the
end of their hour in MEZ, daily means of PM2.5 and PM10_HVS). Changes to them made here (a value
removed, days raised above a limit, a January day) are CONSTRUCTED and marked so."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.extract import extract
from odp.indicators.air_quality import compute_days, parse_config
from odp.publish.changes import row_hashes, write_ledger
from odp.spec import load_dataset
from tests.helpers import RECORDINGS, REPO, make_project

DAYS = "air-quality-dresden-days"
HOUR = 3600 * 10**9
FILES = {"Dresden-Nord": "Nord", "Dresden-Bergstraße": "Bergstrasse"}
COLUMNS = {"NO2": "no2", "O3": "o3", "PM10_TEOM": "pm10_teom", "PM2.5": "pm2_5"}


def config():
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return parse_config(tomllib.load(fh)["indicators"]["air_quality"], "dresden.toml")


def lfulg(station: str) -> pd.DataFrame:
    """A recorded file as air-quality-dresden publishes it: MEZ stamps to UTC, an empty `Zeit`
    a daily mean (P1D, stamped 00:00 MEZ), the rest hourly (PT1H)."""
    path = RECORDINGS / "airquality_sachsen" / f"joint_2018-12_Dresden-{FILES[station]}.csv"
    raw = pd.read_csv(path, skiprows=[1], dtype=str)
    stamp = pd.to_datetime(raw["Datum"] + " " + raw["Zeit"].fillna("00:00"))
    frame = pd.DataFrame({
        "station_id": pd.Series(station, index=raw.index, dtype="string"),
        "timestamp": stamp.dt.tz_localize("Etc/GMT-1").dt.tz_convert("UTC"),
        "resolution": pd.Series(np.where(raw["Zeit"].isna(), "P1D", "PT1H"), dtype="string"),
    })
    for source, column in COLUMNS.items():
        frame[column] = pd.to_numeric(raw[source]).astype("Float64")
    return frame


def both() -> pd.DataFrame:
    return pd.concat([lfulg(s) for s in FILES], ignore_index=True)


def everything(series: pd.DataFrame) -> pd.DataFrame:
    ns = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns[series.station_id == s].min()), end + 1)]
               for s in series.station_id.unique()}
    rows = compute_days(series, HOUR, changed, end, config()).rows
    return rows.set_index(["station_id", "pollutant", "date"]).sort_index()


def hour(series: pd.DataFrame, station: str, mez: str) -> pd.Series:
    """Rows of a station's hourly value stamped `mez` (local MEZ time as in the file)."""
    stamp = pd.Timestamp(mez).tz_localize("Etc/GMT-1").tz_convert("UTC")
    return ((series.station_id == station) & (series.timestamp == stamp)
            & (series.resolution == "PT1H"))


# --- daily means, 75 % rule, 8-hour means, index --------------------------------------------


def test_daily_means_at_dresden_nord_equal_the_hourly_values_added_by_hand():
    rows = everything(both())
    no2 = rows.loc[("Dresden-Nord", "no2", "2018-12-02")]
    # the 24 NO2 values stamped 2018-12-02 01:00 … 2018-12-03 00:00 MEZ:
    # 28+27+24+24+20+18+17+17+17+17+19+20+21+22+25+29+28+31+30+30+30+26+26+26 = 572;
    # 572 / 24 = 23.83 → 23.8; highest 31 → UBA class 3 (31 … 60: mäßig)
    assert (no2.hours, no2.valid, no2.daily_mean, no2.max_1h) == (24, True, 23.8, 31.0)
    assert (no2.index_band, no2.index_name) == (3, "mäßig")
    pm10 = rows.loc[("Dresden-Nord", "pm10", "2018-12-02")]
    # PM10_TEOM: 23+18+19+19+18+16+17+16+15+15+17+15+15+16+16+15+16+18+16+13+14+11+12+13 = 383;
    # 383 / 24 = 15.96 → 16.0 → class 2 (10 … 27: gut)
    assert (pm10.daily_mean, pm10.index_band, pm10.index_name) == (16.0, 2, "gut")


def test_a_daily_mean_needs_18_of_24_hourly_values():
    series = both()
    rows = everything(series)
    # REAL: Bergstraße NO2 on 2018-12-14 has 18 values (09:00 … 14:00 MEZ missing):
    # 22+20+18+18+19+25+51+53+52+59+58+60+60+49+39+37+32+23 = 695; 695 / 18 = 38.6
    day = rows.loc[("Dresden-Bergstraße", "no2", "2018-12-14")]
    assert (day.hours, day.valid, day.daily_mean) == (18, True, 38.6)
    # CONSTRUCTED: the value of 23:00 MEZ removed too → 17 of 24: no daily mean, said so
    series.loc[hour(series, "Dresden-Bergstraße", "2018-12-14 23:00"), "no2"] = pd.NA
    day = everything(series).loc[("Dresden-Bergstraße", "no2", "2018-12-14")]
    assert (day.hours, day.valid) == (17, False) and pd.isna(day.daily_mean)
    assert day.max_1h == 60.0  # the highest hourly value is still known


def test_the_highest_8_hour_ozone_mean_is_the_one_added_by_hand():
    o3 = everything(both()).loc[("Dresden-Nord", "o3", "2018-12-02")]
    # 8-hour means ending in the day; the highest ends 12:00 MEZ (05:00 … 12:00):
    # (23 + 24 + 24 + 24 + 22 + 22 + 22 + 22) / 8 = 183 / 8 = 22.875 → 22.9
    assert o3.max_8h == 22.9 and o3.exceedances == 0
    assert (o3.hours_over_information, o3.hours_over_alert) == (0, 0)


def test_delivered_daily_means_are_taken_as_they_are():
    pm25 = everything(both()).loc[("Dresden-Nord", "pm2_5", "2018-12-01")]
    # the file's daily row "2018-12-01,,…,23.74,…": PM2.5 = 23.74 → 24 → class 3 (16 … 30)
    assert (pm25.daily_mean, pm25.valid, pm25.index_band) == (23.74, True, 3)
    assert pd.isna(pm25.hours) and pd.isna(pm25.exceedances_ytd)  # no counted limit


def test_a_day_without_any_value_is_a_row_that_is_not_valid():
    series = both()
    day = series.timestamp.between(pd.Timestamp("2018-12-10T00:00Z"),
                                   pd.Timestamp("2018-12-10T23:00Z"))
    cut = series[~(day & (series.station_id == "Dresden-Nord"))]  # CONSTRUCTED outage
    row = everything(cut).loc[("Dresden-Nord", "no2", "2018-12-10")]
    assert (row.hours, row.valid) == (0, False) and pd.isna(row.daily_mean)


# --- exceedances over the year ------------------------------------------------------------


def test_december_2018_had_no_pm10_exceedance_at_either_station():
    rows = everything(both())
    pm10 = rows.xs("pm10", level="pollutant")
    # highest valid daily mean of the month: 38.8 at Dresden-Nord on 2018-12-17 (≤ 50)
    assert pm10.daily_mean.max() == 38.8
    last = rows.loc[("Dresden-Nord", "pm10", "2018-12-30")]
    assert (last.exceedances_ytd, last.exceedances_allowed, last.exceedance_unit) == (0, 35, "d")


def test_exceedance_days_of_pm10_add_up_over_the_year():
    series = both()
    nord = series.station_id == "Dresden-Nord"
    for day in ("2018-12-03", "2018-12-05"):  # CONSTRUCTED: every hour of the day at 60
        inside = series.timestamp.between(pd.Timestamp(f"{day}T00:00Z"),
                                          pd.Timestamp(f"{day}T23:00Z"))
        series.loc[nord & inside & (series.resolution == "PT1H"), "pm10_teom"] = 60.0
    rows = everything(series).xs(("Dresden-Nord", "pm10"), level=["station_id", "pollutant"])
    assert rows.loc["2018-12-03", ["daily_mean", "exceedances", "exceedances_ytd"]].tolist() == [
        60.0, 1, 1]
    assert rows.loc["2018-12-04", "exceedances_ytd"] == 1
    assert rows.loc["2018-12-05", "exceedances_ytd"] == 2 and rows.loc["2018-12-30",
                                                                       "exceedances_ytd"] == 2


def test_year_to_date_sums_restart_on_the_first_of_january():
    series = lfulg("Dresden-Nord")
    # CONSTRUCTED: 2019-01-01 01:00 … 24:00 MEZ with NO2 = 100, except two hours at 210
    stamps = pd.date_range("2019-01-01T00:00Z", periods=24, freq="h")
    new_year = pd.DataFrame({"station_id": "Dresden-Nord", "timestamp": stamps,
                             "resolution": "PT1H", "no2": [210.0, 210.0] + [100.0] * 22})
    rows = everything(pd.concat([series, new_year.astype(series.dtypes[new_year.columns])],
                                ignore_index=True))
    day = rows.loc[("Dresden-Nord", "no2", "2019-01-01")]
    # two hours above 200 µg/m³; December 2018 had none and is not carried over
    assert (day.exceedances, day.exceedances_ytd, day.exceedance_unit) == (2, 2, "h")
    # the annual mean so far holds 2019 only: (2 · 210 + 22 · 100) / 24 = 2620 / 24 = 109.2
    assert (day.annual_mean_ytd, day.values_ytd) == (109.2, 24)
    assert rows.loc[("Dresden-Nord", "no2", "2018-12-31")].valid == np.False_  # no values


def test_the_limit_values_and_their_sources_come_from_the_city_file():
    found = {p.key: (p.rule, p.limit, p.allowed, p.annual_limit) for p in config().pollutants}
    assert found == {"no2": ("hourly_limit", 200.0, 18, 40.0),
                     "pm10": ("daily_limit", 50.0, 35, 40.0),
                     "pm2_5": ("", None, None, 25.0),
                     "o3": ("max8h_target", 120.0, 25, None)}
    text = (REPO / "cities" / "dresden.toml").read_text()
    assert "2008/50/EC" in text and "berechnungsgrundlagen-luftqualitaetsindex" in text


@pytest.mark.parametrize(("change", "message"), [
    ({"daily_limit": 50.0, "hourly_limit": 200.0, "allowed": 3}, r"one counting rule"),
    ({"daily_limit": 50.0}, r"daily_limit needs allowed"),
    ({"index": [10, 5, 60, 100]}, r"index: the rising upper bounds"),
])
def test_an_unclear_pollutant_is_a_config_error_naming_it(change, message):
    table = {"pollutants": {"so2": {"column": "so2"} | change}}
    with pytest.raises(ConfigError, match=r"^city: pollutants\.so2.*" + message):
        parse_config(table, "city")


def test_an_unknown_time_zone_is_a_config_error():
    with pytest.raises(ConfigError, match=r"timezone 'MEZ' is not a time zone name"):
        parse_config({"timezone": "MEZ", "pollutants": {"o3": {"column": "o3"}}}, "city")


# --- the derived source: a late value ---------------------------------------------------------


def _ledger(series: pd.DataFrame) -> pd.DataFrame:
    """A published ledger of air-quality-dresden (typed, row hashes), sorted by its key."""
    table = series.rename(columns={"station_id": "station"}).sort_values(
        ["station", "timestamp", "resolution"], ignore_index=True)
    table["_row_hash"] = row_hashes(table, list(table.columns))
    return table


def test_a_late_hourly_value_resends_its_day_and_the_year_to_date_after_it(tmp_path,
                                                                            monkeypatch):
    root, names = make_project(tmp_path, [DAYS])
    source = names[DAYS].split("-")[0] + "-air"
    path = root / "pipelines" / f"{names[DAYS]}.toml"
    path.write_text(path.read_text().replace("\nair-quality-dresden =", f"\n{source} ="))
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    series = both()
    late = hour(series, "Dresden-Bergstraße", "2018-12-14 23:00")
    write_ledger(state, source, _ledger(series.assign(no2=series.no2.mask(late))))
    first = extract(load_dataset(names[DAYS], root), state)
    assert len(first.table) == 2 * 4 * 30  # 2 stations · 4 pollutants · 2018-12-01 … 12-30
    day = first.table.set_index(["station_id", "pollutant", "date"]).loc[
        ("Dresden-Bergstraße", "no2", "2018-12-14")]
    assert (day.hours, day.valid) == ("17", "False")

    write_ledger(state, source, _ledger(series))  # the value 32 of 23:00 MEZ arrives
    done = extract(load_dataset(names[DAYS], root), state)
    sent = done.table[done.table["_dlt_load_id"] == done.load_id]
    # Bergstraße NO2 only: the day itself (now 18 values, valid, 38.6) and every later day of
    # December (its annual mean so far and count change): 2018-12-14 … 12-30 = 17 rows
    assert set(zip(sent.station_id, sent.pollutant, strict=True)) == {("Dresden-Bergstraße",
                                                                       "no2")}
    assert sorted(sent.date) == [f"2018-12-{d}" for d in range(14, 31)]
    day = done.table.set_index(["station_id", "pollutant", "date"]).loc[
        ("Dresden-Bergstraße", "no2", "2018-12-14")]
    assert (day.hours, day.valid, day.daily_mean) == ("18", "True", "38.6")
    assert len(done.table) == 240
