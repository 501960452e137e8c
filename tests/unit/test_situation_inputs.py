"""The situation dataset's inputs as `pipelines/situation-dresden.toml` configures them, read
from CONSTRUCTED published tables (ledgers in the shape of heavy-rain-dresden-windows and
heavy-rain-dresden-stadtteile): a per-Stadtteil input plugs in by configuration and wins over
the nearest-station rule, an input not yet published is left out, none published is an error."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.errors import SourceError
from odp.sources.situation import situation_rows
from odp.spec import load_city, load_dataset
from tests.helpers import REPO
from tests.unit.test_situation_indicators import HOSTERWITZ, KLOTZSCHE, windows

SITUATION = "situation-dresden"


def publish(state, name: str, frame: pd.DataFrame) -> None:
    folder = state / "published"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / f"{name}.parquet", index=False)


def stadtteile(code: str, level: int, name: str) -> pd.DataFrame:
    return pd.DataFrame({
        "stadtteil_nr": [code], "stadtteil": [name], "resolution": ["10min"],
        "timestamp": pd.to_datetime(["2024-11-20T14:20Z"]), "stations": ["01048"],
        "sum_1h": [27.0], "level": pd.array([level], dtype="Int64"),
        "level_name": ["Unwetter"]})


def test_a_per_stadtteil_input_wins_over_the_nearest_station_and_others_keep_it(tmp_path):
    city, dataset = load_city(REPO), load_dataset(SITUATION, REPO)
    publish(tmp_path, "heavy-rain-dresden-windows", pd.concat([
        windows("01048", [0, 0, 0], KLOTZSCHE), windows("01050", [0, 2, 2], HOSTERWITZ)]))
    publish(tmp_path, "heavy-rain-dresden-stadtteile", stadtteile("31", 3, "Klotzsche"))
    rows = situation_rows(dataset, tmp_path, city)
    parts = rows[rows["feature"] == "stadtteil"].set_index("name")
    assert len(parts) == 64 and not parts.index.duplicated().any()
    klotzsche = parts.loc["Klotzsche"]
    assert (klotzsche["feature_id"], klotzsche["level"], klotzsche["value"]) == ("31", 3, 27.0)
    assert pd.isna(klotzsche["from_station"]) and "heavy-rain-dresden-stadtteile" in str(
        klotzsche["input"])
    assert 51.08 < klotzsche["latitude"] < 51.18  # a point inside Klotzsche, for the map
    pillnitz = parts.loc["Hosterwitz/Pillnitz"]
    assert (pillnitz["from_station"], pillnitz["level_name"]) == ("01050", "markant")
    assert set(rows.loc[rows["feature"] == "station", "feature_id"]) == {"01048", "01050"}
    assert "hochwasser" not in set(rows["topic"])  # flood-alarm-levels-saxony: not published


def test_no_input_published_is_a_source_error_naming_them(tmp_path):
    with pytest.raises(SourceError) as caught:
        situation_rows(load_dataset(SITUATION, REPO), tmp_path, load_city(REPO))
    assert str(caught.value).startswith(
        "situation-dresden: no input published yet (heavy-rain-dresden-windows, "
        "heavy-rain-dresden-stadtteile, flood-alarm-levels-saxony, air-quality-dresden-days, "
        "air-quality-dresden-stadtteile;")


# The stations' positions as the city file's [indicators.air_quality.stations] gives them (the
# air-quality days carry them into their published table).
NORD, BERGSTRASSE = (51.065433, 13.740879), (51.027512, 13.731374)


def air_days() -> pd.DataFrame:
    """CONSTRUCTED days: Dresden-Nord NO2 class 2 then 3 (mäßig), PM10 class 2 the day before
    and undetermined today (6 of 24 hours so far); Dresden-Bergstraße NO2 class 4 then 5 (sehr
    schlecht)."""
    rows = [("Dresden-Nord", "no2", "2024-11-18T23:00Z", 28.0, 2, "gut", NORD),
            ("Dresden-Nord", "no2", "2024-11-19T23:00Z", 41.0, 3, "mäßig", NORD),
            ("Dresden-Nord", "pm10", "2024-11-18T23:00Z", 20.0, 2, "gut", NORD),
            ("Dresden-Nord", "pm10", "2024-11-19T23:00Z", None, None, None, NORD),
            ("Dresden-Bergstraße", "no2", "2024-11-18T23:00Z", 70.0, 4, "schlecht", BERGSTRASSE),
            ("Dresden-Bergstraße", "no2", "2024-11-19T23:00Z", 95.0, 5, "sehr schlecht",
             BERGSTRASSE)]
    return pd.DataFrame({
        "station_id": [r[0] for r in rows], "resolution": "1h", "pollutant": [r[1] for r in rows],
        "timestamp": pd.to_datetime([r[2] for r in rows]),
        "daily_mean": pd.array([r[3] for r in rows], dtype="Float64"),
        "index_band": pd.array([r[4] for r in rows], dtype="Int64"),
        "index_name": pd.array([r[5] for r in rows], dtype="string"),
        "latitude": [r[6][0] for r in rows], "longitude": [r[6][1] for r in rows]})


@pytest.fixture
def air_situation(tmp_path):
    city, dataset = load_city(REPO), load_dataset(SITUATION, REPO)
    publish(tmp_path, "air-quality-dresden-days", air_days())
    rows = situation_rows(dataset, tmp_path, city)
    publish(tmp_path, SITUATION, rows)  # as the run publishes it: the page reads it back
    return city, dataset, rows


def test_the_situation_row_of_an_air_station_carries_its_index_class_per_pollutant(
        air_situation):
    *_, rows = air_situation
    air = rows[rows["feature"] == "air_station"].set_index(["feature_id", "parameter"])
    assert set(rows["topic"]) == {"luftqualitaet"}  # the other inputs: not published
    nord = air.loc[("Dresden-Nord", "no2")]
    assert (nord["value"], nord["unit"], nord["level"], nord["level_name"]) == (
        41.0, "µg/m³", 3, "mäßig")
    assert nord["timestamp"] == pd.Timestamp("2024-11-19T23:00Z") and nord["warning"] == False  # noqa: E712
    assert (nord["latitude"], nord["longitude"]) == NORD
    # PM10 today has neither mean nor class yet: the newest day with one is shown
    pm10 = air.loc[("Dresden-Nord", "pm10")]
    assert (pm10["timestamp"], pm10["level_name"]) == (pd.Timestamp("2024-11-18T23:00Z"), "gut")
    assert air.loc[("Dresden-Bergstraße", "no2"), "warning"] == True  # noqa: E712 (class 5)
    assert "air-quality-dresden-days" in str(nord["input"])


def test_the_page_marks_each_air_station_once_with_its_highest_class_and_class_5_warns(
        air_situation, tmp_path):
    from odp.indicators.warnings import build

    city, dataset, _ = air_situation
    built = build(dataset, tmp_path, city, "http://portal.example")
    markers = {m.split('data-id="', 1)[1].split('"', 1)[0]: m
               for m in built.page.split('<g class="marker" ')[1:]}
    assert set(markers) == {"Dresden-Nord", "Dresden-Bergstraße"}
    nord = markers["Dresden-Nord"]
    assert 'data-feature="air_station"' in nord and 'data-level="3"' in nord
    assert ">Dresden-Nord: mäßig (no2)</text>" in nord
    assert "<title>Dresden-Nord: no2 mäßig, pm10 gut</title>" in nord
    assert ">Dresden-Bergstraße: sehr schlecht (no2)</text>" in markers["Dresden-Bergstraße"]
    (warning,) = built.warnings  # Bergstraße entering class 5; Nord never reached it
    assert (warning.msg_type, warning.headline) == (
        "Alert", "Luftqualität: sehr schlecht an der Messstation Dresden-Bergstraße")
    assert warning.profile.cap["category"] == "Health" and warning.areas


def air_stadtteile(days: pd.DataFrame) -> pd.DataFrame:
    """air-quality-dresden-stadtteile as its indicator computes it from the days."""
    import tomllib

    from odp.indicators.areas import compute_districts, parse_config

    table = tomllib.loads((REPO / "cities" / "dresden.toml").read_text())["indicators"][
        "air_quality_stadtteile"]
    days = days.assign(date=days["timestamp"].dt.tz_convert("Etc/GMT-1").dt.strftime("%Y-%m-%d"),
                       max_1h=days["daily_mean"],
                       max_8h=pd.array([None] * len(days), dtype="Float64"))
    ns = days["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    rows = compute_districts(days, 3600 * 10**9, {s: [(int(ns.min()), end + 1)] for s in
                                                  days["station_id"].unique()}, end,
                             parse_config({**table, "_root": str(REPO)}, "city")).rows
    return rows.assign(resolution="1h")


def test_each_stadtteil_shows_the_air_quality_of_its_station_without_warning_twice(tmp_path):
    city, dataset = load_city(REPO), load_dataset(SITUATION, REPO)
    days = air_days()
    publish(tmp_path, "air-quality-dresden-days", days)
    publish(tmp_path, "air-quality-dresden-stadtteile", air_stadtteile(days))
    rows = situation_rows(dataset, tmp_path, city)
    parts = rows[rows["feature"] == "stadtteil"].set_index(["name", "parameter"])
    # NO2 in all 64 Stadtteile, PM10 only in Nord's 34 (Bergstraße has no PM10 day); pm2_5
    # and o3 are not in the constructed days
    assert len(parts) == 64 + 34 and set(parts["topic"]) == {"luftqualitaet"}
    plauen = parts.loc[("Plauen", "no2")]  # Bergstraße's Thiessen polygon
    assert (plauen["value"], plauen["level"], plauen["level_name"], plauen["warning"]) == (
        95.0, 5, "sehr schlecht", True)
    assert plauen["timestamp"] == pd.Timestamp("2024-11-19T23:00Z")
    assert "air-quality-dresden-stadtteile" in str(plauen["input"])
    klotzsche = parts.loc[("Klotzsche", "no2")]  # Nord's
    assert (klotzsche["level"], klotzsche["level_name"]) == (3, "mäßig")
    assert 51.08 < klotzsche["latitude"] < 51.18  # a point inside Klotzsche, for the map
    from odp.indicators.warnings import build

    publish(tmp_path, SITUATION, rows)
    built = build(dataset, tmp_path, city, "http://portal.example")
    assert len(built.warnings) == 1  # Bergstraße's class 5 only: no warning per Stadtteil
    assert 'data-topic="luftqualitaet" data-id="86">' in built.page  # Plauen in the table
