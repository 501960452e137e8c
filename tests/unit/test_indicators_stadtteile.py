"""Heavy-rain indicators per Stadtteil: Thiessen polygons of the three DWD stations in Dresden
(positions from the recorded Metadaten_Geographie files, tests/recordings/dwd/README.md) clipped
to the 64 Stadtteile of reference/dresden/stadtteile.geojson; the station windows are those of
the recorded 10-minute products with the CONSTRUCTED heavy-rain day of
tests/unit/test_indicators_heavy_rain.py at Dresden-Klotzsche (01048)."""

from __future__ import annotations

import dataclasses
import functools
import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.extract import extract
from odp.indicators.areas import compute_current, compute_districts, parse_config
from odp.indicators.heavy_rain import compute_windows
from odp.indicators.heavy_rain import parse_config as heavy_rain_config
from odp.publish.changes import row_hashes, write_ledger
from odp.sources.dwd_cdc import parse_product
from odp.spec import load_dataset
from tests.helpers import REPO, make_project
from tests.unit.test_indicators_heavy_rain import dresden_10min, heavy_rain_product, series_of

NAME = "heavy-rain-dresden-stadtteile"
CURRENT = "heavy-rain-dresden-current"
TEN = 10 * 60 * 10**9
# Metadaten_Geographie_<id>.txt of the recorded zips: latitude, longitude
POSITIONS = {"01048": (51.1278, 13.7543), "01050": (51.0221, 13.8470),
             "01051": (51.0248, 13.7750)}


def city():
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return tomllib.load(fh)["indicators"]


@functools.cache
def _config():
    return parse_config({**city()["heavy_rain_stadtteile"], "_root": str(REPO)}, "city")


def config(**change):
    return dataclasses.replace(_config(), **change)


def windows() -> pd.DataFrame:
    return _windows().copy()


@functools.cache
def _windows() -> pd.DataFrame:
    """The published windows of the three stations (as heavy-rain-dresden-windows holds them)."""
    products = {"01048": heavy_rain_product(), "01050": dresden_10min("01050"),
                "01051": dresden_10min("01051")}
    series = pd.concat([series_of(parse_product(text, s), "RWS_10")
                        for s, text in products.items()], ignore_index=True)
    ns = series.timestamp.dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns[series.station_id == s].min()), end + 1)] for s in products}
    rows = compute_windows(series, TEN, changed, end, heavy_rain_config(
        city()["heavy_rain"], "city")).rows
    rows["resolution"] = "10min"
    rows["latitude"] = rows.station_id.map(lambda s: POSITIONS[s][0])
    rows["longitude"] = rows.station_id.map(lambda s: POSITIONS[s][1])
    return rows


def everything(rows: pd.DataFrame, cfg) -> pd.DataFrame:
    ns = rows.timestamp.dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns[rows.station_id == s].min()), end + 1)]
               for s in rows.station_id.unique()}
    found = compute_districts(rows, TEN, changed, end, cfg).rows
    return found.set_index(["stadtteil", "timestamp"]).sort_index()


def at(frame: pd.DataFrame, stadtteil: str, stamp: str) -> pd.Series:
    return frame.loc[(stadtteil, pd.Timestamp(stamp))]


def test_each_stadtteil_takes_the_station_whose_thiessen_polygon_covers_most_of_it():
    rows = everything(windows(), config())
    stations = rows.groupby(level="stadtteil")["stations"].first()
    assert len(stations) == 64  # every Stadtteil, one station each
    # the Stadtteile the stations stand in (Klotzsche 51.1278 N 13.7543 E, …) take them
    assert (stations["Flughafen/Industriegebiet Klotzsche"], stations["Hosterwitz/Pillnitz"],
            stations["Strehlen"]) == ("01048", "01050", "01051")
    # Gorbitz (west) lies nearer Strehlen (5 km) than Klotzsche (9 km) or Hosterwitz (11 km)
    assert stations["Gorbitz-Süd"] == "01051"
    assert stations.value_counts().to_dict() == {"01051": 38, "01048": 14, "01050": 12}


def test_the_heavy_rain_at_klotzsche_reaches_its_stadtteile_and_no_other():
    rows = everything(windows(), config())
    # 1 h ending 14:50 at 01048 = 1.5 + 3.5 + 6.0 + 9.0 + 7.0 = 27.0 > 25: Unwetter
    klotzsche = at(rows, "Klotzsche", "2024-11-20T14:50Z")
    assert (klotzsche.sum_1h, klotzsche.level, klotzsche.level_name) == (27.0, 3, "Unwetter")
    # Gorbitz-Süd takes 01051, whose 6-hour window still holds the recorded -999 of 12:30:
    # undetermined, never "kein Starkregen"; from 18:30 (12:30 out of it) none
    gorbitz = at(rows, "Gorbitz-Süd", "2024-11-20T14:50Z")
    assert (gorbitz.stations, gorbitz.level_name) == ("01051", "unbestimmt")
    assert at(rows, "Gorbitz-Süd", "2024-11-20T18:30Z").level_name == "kein Starkregen"
    unwetter = rows[rows.level == 3].index.get_level_values("stadtteil").unique()
    assert len(unwetter) == 14  # the 14 Stadtteile of 01048


def test_area_weighted_values_are_the_share_weighted_mean_of_the_stations():
    rows = everything(windows(), config(rule="area_weighted"))
    row = at(rows, "Leipziger Vorstadt", "2024-11-20T14:50Z")
    # Leipziger Vorstadt: 58 % in the polygon of 01051, 42 % in that of 01048
    assert row.stations == "01051 (58 %), 01048 (42 %)"
    share = float(row.stations.split("(")[1].split(" ")[0]) / 100  # rounded: check loosely
    # 1 h ending 14:50: 01048 27.0; 01051 0.35 + 0.33 + 0.30 + 0.28 + 0.25 + 0.23 = 1.74
    # → 0.42 · 27.0 + 0.58 · 1.74 ≈ 11.34 + 1.01 = 12.35 (shares rounded in the label)
    assert row.sum_1h == pytest.approx((1 - share) * 27.0 + share * 1.74, abs=0.15)
    assert row.level == 3  # the highest level any of its stations reached


def test_area_weighted_level_is_undetermined_when_one_station_is_and_none_exceeds():
    rows = windows()
    gap = rows.timestamp == pd.Timestamp("2024-11-20T12:30Z")  # 01051's recorded -999 is here
    assert rows[gap & (rows.station_id == "01051")].level.isna().all()
    found = everything(rows, config(rule="area_weighted"))
    # Leipziger Vorstadt: 01048 complete and 0, 01051 undetermined → undetermined, not 0
    row = at(found, "Leipziger Vorstadt", "2024-11-20T12:30Z")
    assert pd.isna(row.level) and row.level_name == "unbestimmt"
    assert at(found, "Klotzsche", "2024-11-20T12:30Z").level == 0  # 01048 alone


def test_an_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^city: rule 'nearest' unknown"):
        parse_config({"rule": "nearest", "_root": str(REPO)}, "city")


def _ledger(rows: pd.DataFrame) -> pd.DataFrame:
    table = rows.assign(station_name="x", precipitation=np.nan).astype(
        {"station_id": "string", "resolution": "string", "level_name": "string"})
    table = table.sort_values(["station_id", "resolution", "timestamp"], ignore_index=True)
    table["_row_hash"] = row_hashes(table, list(table.columns))
    return table


def test_rows_older_than_keep_days_are_dropped_as_new_steps_arrive(tmp_path, monkeypatch):
    root, names = make_project(tmp_path, [NAME])
    source = names[NAME].split("-")[0] + "-windows"
    path = root / "pipelines" / f"{names[NAME]}.toml"
    path.write_text(path.read_text().replace("\nheavy-rain-dresden-windows =", f"\n{source} ="))
    city_file = root / "cities" / "dresden.toml"
    city_file.write_text(city_file.read_text().replace("keep_days = 7 ", "keep_days = 0.5"))
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    rows = windows()
    first = rows[rows.timestamp < pd.Timestamp("2024-11-21T06:50Z")]  # up to 06:40
    write_ledger(state, source, _ledger(first))
    done = extract(load_dataset(names[NAME], root), state)
    # 12 h back from 06:40: the steps after 2024-11-20T18:40 (72 of them) for 64 Stadtteile
    assert len(done.table) == 72 * 64
    assert min(done.table.timestamp) == "2024-11-20T18:50:00Z"
    write_ledger(state, source, _ledger(rows))  # 06:50 arrives at the three stations
    done = extract(load_dataset(names[NAME], root), state)
    sent = done.table[done.table["_dlt_load_id"] == done.load_id]
    assert set(sent.timestamp) == {"2024-11-21T06:50:00Z"} and len(sent) == 64
    assert len(done.table) == 72 * 64  # 18:50 aged out: deleted
    assert min(done.table.timestamp) == "2024-11-20T19:00:00Z"


# --- the current situation: one row per Stadtteil, with its polygon --------------------------


def test_the_current_situation_is_one_row_per_stadtteil_at_the_newest_step():
    rows = windows()
    ns = rows.timestamp.dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    found = compute_current(rows, TEN, {s: [(end, end + 1)] for s in POSITIONS}, end,
                            config()).rows.set_index("name")
    assert len(found) == 64 and found.index.is_unique
    assert set(found.timestamp) == {pd.Timestamp("2024-11-21T06:50Z")}  # the newest step
    # Klotzsche's 72 h at 06:50 still hold the constructed burst of 34.0 mm (14:00–15:20)
    klotzsche = found.loc["Klotzsche"]
    assert klotzsche.nummer == "31" and klotzsche.stations == "01048"
    assert klotzsche.sum_72h >= 34.0
    import shapely

    polygon = shapely.from_wkt(klotzsche.geometry_wkt)  # EPSG:25833, to 0.1 m
    districts = config().districts
    own = districts.geoms[list(districts.codes).index("31")]
    assert polygon.geom_type in {"Polygon", "MultiPolygon"}
    assert shapely.area(shapely.symmetric_difference(polygon, own)) < 1e-4 * own.area


def test_a_new_step_replaces_each_stadtteil_row_instead_of_adding_one(tmp_path, monkeypatch):
    root, names = make_project(tmp_path, [CURRENT])
    source = names[CURRENT].split("-")[0] + "-windows"
    path = root / "pipelines" / f"{names[CURRENT]}.toml"
    path.write_text(path.read_text().replace("\nheavy-rain-dresden-windows =", f"\n{source} ="))
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    rows = windows()
    write_ledger(state, source, _ledger(rows[rows.timestamp < pd.Timestamp("2024-11-21T06:50Z")]))
    done = extract(load_dataset(names[CURRENT], root), state)
    assert len(done.table) == 64 and set(done.table.timestamp) == {"2024-11-21T06:40:00Z"}
    write_ledger(state, source, _ledger(rows))  # 06:50 arrives
    done = extract(load_dataset(names[CURRENT], root), state)
    sent = done.table[done.table["_dlt_load_id"] == done.load_id]
    assert len(sent) == 64 and len(done.table) == 64  # replaced on the key, none added
    assert set(done.table.timestamp) == {"2024-11-21T06:50:00Z"}
