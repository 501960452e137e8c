"""The current situation's pure parts on CONSTRUCTED indicator rows (the shape of the published
heavy-rain windows, flood levels and air-quality days): the latest row per place, the level
crossings, the Stadtteile from the nearest station, and configuration errors naming the key."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.indicators.situation import (
    areas,
    crossings,
    latest,
    msg_types,
    parse_profile,
    previous_in_series,
    stadtteil_rows,
    units_of,
)
from odp.spec import load_city
from tests.helpers import REPO

RAIN = {"topic": "starkregen", "title": "Starkregen", "feature": "station", "id": "station_id",
        "name": "station_name", "time": "timestamp", "value": "sum_1h", "unit": "mm",
        "level": "level", "level_name": "level_name", "where": {"resolution": "10min"},
        "warn_from": 2, "stadtteile": "nearest",
        "cap": {"category": "Met", "event": "Starkregen",
                "severity": {"2": "Moderate", "3": "Severe", "4": "Extreme"}}}
# The DWD stations' positions in the real station list (tests/recordings/dwd/RR_Stundenwerte_…).
KLOTZSCHE = (51.1278, 13.7543)
HOSTERWITZ = (51.0221, 13.8470)
NAMES = {0: "kein Starkregen", 2: "markant", 3: "Unwetter"}


def windows(station: str, levels: list[int | None], where: tuple[float, float],
            resolution: str = "10min", start: str = "2024-11-20T14:00Z") -> pd.DataFrame:
    times = pd.date_range(start, periods=len(levels), freq="10min")
    return pd.DataFrame({
        "station_id": station, "station_name": f"Station {station}", "resolution": resolution,
        "timestamp": times, "sum_1h": [float(i) for i in range(len(levels))],
        "level": pd.array(levels, dtype="Int64"),
        "level_name": [NAMES.get(x, "unbestimmt") if x is not None else "unbestimmt"
                       for x in levels],
        "latitude": where[0], "longitude": where[1],
    })


@pytest.fixture(scope="module")
def units():
    return units_of(load_city(REPO))


def test_latest_takes_each_stations_newest_row_of_the_selected_resolution():
    profile = parse_profile("heavy_rain", RAIN, "situation.toml")
    frame = pd.concat([windows("01048", [0, 2, 3], KLOTZSCHE),
                       windows("01048", [0, 0, 0, 0], KLOTZSCHE, "1h"),  # newer, but hourly
                       windows("01050", [0, None], HOSTERWITZ)], ignore_index=True)
    frame.loc[5, "sum_1h"] = None  # the hourly rows do not count anyway
    rows = latest(frame, profile, "windows (run 1)").set_index("feature_id")
    assert list(rows.index) == ["01048", "01050"]
    assert rows.loc["01048", "timestamp"] == pd.Timestamp("2024-11-20T14:20Z")
    assert (rows.loc["01048", "level"], rows.loc["01048", "level_name"]) == (3, "Unwetter")
    assert rows.loc["01048", "warning"] == True  # noqa: E712 (a pandas boolean)
    # 01050's newest row has a value but no level: undetermined, never "no warning"
    assert pd.isna(rows.loc["01050", "level"]) and pd.isna(rows.loc["01050", "warning"])
    assert rows.loc["01050", "value"] == 1.0 and rows.loc["01050", "input"] == "windows (run 1)"


def test_a_parameter_column_gives_one_row_per_pollutant():
    profile = parse_profile("air", {
        "topic": "luft", "title": "Luftqualität", "feature": "air_station", "id": "station_id",
        "time": "timestamp", "value": "daily_mean", "parameter_column": "pollutant",
        "level": "index_band", "level_name": "index_name", "warn_from": 5}, "situation.toml")
    frame = pd.DataFrame({
        "station_id": ["Nord", "Nord", "Nord"], "pollutant": ["no2", "no2", "pm10"],
        "timestamp": pd.to_datetime(["2024-11-19", "2024-11-20", "2024-11-20"], utc=True),
        "daily_mean": [30.0, 35.0, 20.0], "index_band": pd.array([2, 3, 2], dtype="Int64"),
        "index_name": ["gut", "mäßig", "gut"], "latitude": 51.06, "longitude": 13.74})
    rows = latest(frame, profile, "").set_index("parameter")
    assert list(rows.index) == ["no2", "pm10"]
    assert (rows.loc["no2", "value"], rows.loc["no2", "level_name"]) == (35.0, "mäßig")


def test_crossings_enter_change_and_leave_and_an_undetermined_level_ends_nothing():
    profile = parse_profile("heavy_rain", RAIN, "situation.toml")
    frame = windows("01048", [0, 0, 2, 3, 3, None, 2, 0, 0], KLOTZSCHE)
    events = crossings(frame, profile)
    stamps = [t.strftime("%H:%M") for t in events["timestamp"]]
    # rows at 14:00 … 15:20; levels 0 0 2 3 3 ? 2 0 0
    assert stamps == ["14:20", "14:30", "15:00", "15:10"]
    assert list(zip(events["from_level"], events["to_level"], strict=True)) == [
        (0, 2), (2, 3), (3, 2), (2, 0)]
    assert list(events["to_name"]) == ["markant", "Unwetter", "markant", "kein Starkregen"]
    assert msg_types(events) == ["Alert", "Update", "Update", "Cancel"]
    assert previous_in_series(events) == [-1, 0, 1, 2]


def test_levels_below_warn_from_are_one_state_so_they_make_no_crossing():
    flood = parse_profile("flood", {
        "topic": "hochwasser", "title": "Hochwasser", "feature": "gauge", "id": "station_id",
        "time": "timestamp", "value": "water_level", "level": "alarm_level", "warn_from": 2,
        "area": "all"}, "situation.toml")
    frame = pd.DataFrame({"station_id": "501060", "timestamp": pd.date_range(
        "2024-09-16", periods=5, freq="15min", tz="UTC"), "water_level": 1.0,
        "alarm_level": pd.array([0, 1, 1, 2, 1], dtype="Int64")})
    events = crossings(frame, flood)
    assert list(zip(events["from_level"], events["to_level"], strict=True)) == [(0, 2), (2, 0)]


def test_each_stadtteil_gets_the_nearest_station_and_warnings_go_to_those_stadtteile(units):
    profile = parse_profile("heavy_rain", RAIN, "situation.toml")
    frame = pd.concat([windows("01048", [3], KLOTZSCHE), windows("01050", [2], HOSTERWITZ)])
    stations = latest(frame, profile, "")
    parts = stadtteil_rows(stations, units).set_index("name")
    assert len(parts) == len(units.codes) == 64
    assert parts.loc["Klotzsche", "from_station"] == "01048"
    assert parts.loc["Klotzsche", "level_name"] == "Unwetter"
    assert parts.loc["Hosterwitz/Pillnitz", "from_station"] == "01050"
    assert parts.loc["Hosterwitz/Pillnitz", "level_name"] == "markant"
    assert (parts["feature"] == "stadtteil").all()
    where = areas(profile, stations, units)
    names = dict(zip(units.codes, units.names, strict=True))
    assert "Klotzsche" in {names[c] for c in where["01048"]}
    assert "Hosterwitz/Pillnitz" in {names[c] for c in where["01050"]}
    assert sorted(where["01048"] + where["01050"]) == sorted(str(c) for c in units.codes)


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": "red"}, "[source.profiles.heavy_rain] unknown key 'colour'"),
    ({"feature": "lake"}, "[source.profiles.heavy_rain] feature: one of station, gauge"),
    ({"warn_from": 0}, "[source.profiles.heavy_rain] warn_from: a level >= 1 is needed"),
    ({"cap": {"severity": {"2": "Bad"}}}, "[source.profiles.heavy_rain] cap.severity: one of"),
    ({"area": "everywhere"}, "[source.profiles.heavy_rain] area: nearest | contains | all"),
])
def test_a_wrong_profile_is_a_config_error_naming_the_key(change, message):
    with pytest.raises(ConfigError) as caught:
        parse_profile("heavy_rain", {**RAIN, **change}, "pipelines/situation-dresden.toml:")
    assert message in str(caught.value)


def test_a_one_hour_sum_swinging_around_markant_warns_once_with_the_hysteresis():
    # CONSTRUCTED levels of a 1-h sum swinging around 15 mm: 0 2 0 2 0 0 2 0 0 0 at 14:00 …
    # 15:30 (10-minute steps). Without hysteresis: Alert, Cancel, Alert, Cancel, Alert, Cancel;
    # with readings = 3 the warning ends only at the 3rd step in a row below markant: 15:30
    levels = [0, 2, 0, 2, 0, 0, 2, 0, 0, 0]
    frame = windows("01048", levels, KLOTZSCHE)
    raw = crossings(frame, parse_profile("heavy_rain", RAIN, "situation.toml"))
    assert [t.strftime("%H:%M") for t in raw["timestamp"]] == [
        "14:10", "14:20", "14:30", "14:40", "15:00", "15:10"]
    held = parse_profile("heavy_rain", RAIN | {"hysteresis": {"readings": 3}}, "situation.toml")
    events = crossings(frame, held)
    assert [t.strftime("%H:%M") for t in events["timestamp"]] == ["14:10", "15:30"]
    assert msg_types(events) == ["Alert", "Cancel"]
    # the latest row before the end: level 0 at 15:20 (2 steps below), still a warning
    row = latest(frame.iloc[:9], held, "").iloc[0]
    assert (row["level"], row["warning"]) == (0, True)
    assert latest(frame, held, "").iloc[0]["warning"] == False  # noqa: E712 (pandas boolean)


def test_a_situation_hysteresis_has_no_margin_it_has_no_thresholds_for():
    with pytest.raises(ConfigError, match=r"hysteresis: unknown key 'margin'"):
        parse_profile("heavy_rain", RAIN | {"hysteresis": {"margin": 2.0}}, "situation.toml")
