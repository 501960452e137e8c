"""Return periods of heavy-rain windows from a KOSTRA-DWD table (`[indicators.heavy_rain.kostra]`).

Dresden's city file points at the REAL KOSTRA-DWD-2020 depths of the grid cells over the city
(reference/dresden/kostra-dwd-2020.csv, extracted from the DWD's tables, see SOURCES.md there):
its rows are checked against the DWD's own rows written out below, its grid against six
published INDEX_RC and the stations' coordinates, and the return periods of the constructed
heavy-rain day at Klotzsche (tests/unit/test_indicators_heavy_rain.py) against the real depths
of Klotzsche's cell by hand. The edge cases (0 below the 1-year depth, empty without a cell or
below the table with values missing, a wrong table) run on the CONSTRUCTED example table
tests/fixtures/kostra/kostra-dwd-2020-example.csv (one made-up grid cell 900001, durations 60
and 360 minutes) and CONSTRUCTED 10-minute series."""

from __future__ import annotations

import importlib.util
import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.indicators.heavy_rain import parse_config
from odp.sources.dwd_cdc import parse_product
from tests.helpers import RECORDINGS, REPO
from tests.unit.test_indicators_heavy_rain import (
    TEN,
    all_windows,
    heavy_rain_product,
    series_of,
)

TABLE = "tests/fixtures/kostra/kostra-dwd-2020-example.csv"
START = pd.Timestamp("2024-07-01T00:10Z")  # 4 days of 10-minute values: every window complete
RAIN = pd.date_range("2024-07-04T14:10Z", periods=6, freq="10min")  # 6 × 4.5 mm, 14:00–15:00


def city_table() -> dict:
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return tomllib.load(fh)["indicators"]["heavy_rain"]


def config(kostra: dict | None = None, root: str = str(REPO)):
    kostra = kostra or {"table": TABLE, "cells": {"01048": "900001", "01051": "900001"}}
    return parse_config({**city_table(), "kostra": kostra, "_root": root}, "dresden.toml")


def dresden():
    """The city file's own configuration: the real KOSTRA-DWD-2020 table."""
    return parse_config({**city_table(), "_root": str(REPO)}, "dresden.toml")


def station(name: str, rain: bool = False, missing: list[str] = ()) -> pd.DataFrame:
    times = pd.date_range(START, "2024-07-04T20:00Z", freq="10min")
    values = np.where(times.isin(RAIN), 4.5, 0.0) if rain else np.zeros(len(times))
    frame = pd.DataFrame({"station_id": name, "timestamp": times,
                          "value": pd.array(values, dtype="Float64")})
    frame.loc[frame["timestamp"].isin(pd.to_datetime(missing, utc=True)), "value"] = pd.NA
    return frame


@pytest.fixture(scope="module")
def rows():
    series = pd.concat([station("01048", rain=True), station("01050", rain=True),
                        station("01051", missing=["2024-07-04T19:30Z"])], ignore_index=True)
    return all_windows(series, TEN, config())


def at(rows: pd.DataFrame, name: str, stamp: str) -> pd.Series:
    return rows.loc[(name, pd.Timestamp(stamp))]


def test_a_window_sum_gets_the_longest_return_period_whose_kostra_depth_it_reaches(rows):
    # ending 15:00: 1 h = 6 × 4.5 = 27.0 mm ≥ hN(D60, 5 a) = 26.5, < hN(D60, 10 a) = 31.0 → 5 a;
    # 6 h = 27.0 ≥ hN(D360, 1 a) = 26.0, < 31.5 → 1 a; the longer of both: 5 years
    row = at(rows, "01048", "2024-07-04T15:00Z")
    assert (row["sum_1h"], row["sum_6h"], row["level_name"]) == (27.0, 27.0, "Unwetter")
    assert row["return_period"] == 5
    # ending 20:00: 1 h dry, 6 h (14:00, 20:00] still 27.0 ≥ 26.0 → 1 year from the 6 h window
    assert at(rows, "01048", "2024-07-04T20:00Z")["return_period"] == 1
    # ending 14:30: 1 h = 13.5 < 17.0, 6 h = 13.5 < 26.0, every window complete → 0
    assert at(rows, "01048", "2024-07-04T14:30Z")["return_period"] == 0


def test_a_station_without_a_grid_cell_has_no_return_period(rows):
    assert rows.loc["01050", "return_period"].isna().all()  # the same rain, no cell configured


def test_missing_values_below_the_table_leave_the_return_period_undetermined(rows):
    # 01051 is dry; 19:30 is missing: every window ending 19:30 … 20:00 lacks a value
    assert at(rows, "01051", "2024-07-04T19:20Z")["return_period"] == 0
    assert pd.isna(at(rows, "01051", "2024-07-04T19:30Z")["return_period"])


def test_without_a_kostra_table_the_windows_have_no_return_period():
    table = {k: v for k, v in city_table().items() if k != "kostra"}
    plain = parse_config(table, "dresden.toml")
    assert plain.kostra is None
    rows = all_windows(station("01048", rain=True), TEN, plain)
    assert rows["return_period"].isna().all() and rows["level"].max() == 3


def test_a_kostra_table_whose_depths_fall_with_the_return_period_is_a_config_error(tmp_path):
    bad = tmp_path / "kostra.csv"
    bad.write_text("index_rc,duration_min,return_period_a,depth_mm\n"
                   "1,60,1,17.0\n1,60,2,16.0\n")
    with pytest.raises(ConfigError) as caught:
        config({"table": "kostra.csv", "cells": {"01048": "1"}}, str(tmp_path))
    assert str(caught.value) == ("kostra.csv data row 2: depth_mm of cell 1, duration 60 min "
                                 "must be present and rise with return_period_a")
    with pytest.raises(ConfigError, match=r"dresden.toml.kostra.table: .*missing.csv not found"):
        config({"table": "missing.csv", "cells": {"01048": "1"}})
    with pytest.raises(ConfigError, match="kostra.cells: each station's grid cell"):
        config({"table": TABLE})


# --- the real KOSTRA-DWD-2020 table of Dresden ---------------------------------------------------

PERIODS = [1, 2, 3, 5, 10, 20, 30, 50, 100]
# The DWD's own rows (StatRR_KOSTRA-DWD-2020_D<D>.csv: INDEX_RC;HN_001A;…;HN_100A, decimal comma)
DWD_ROWS = {
    ("136196", 1): "136196;16,0;20,5;23,3;26,9;32,2;37,6;41,1;45,8;52,4",  # D00060, Klotzsche
    ("136196", 6): "136196;25,8;33,0;37,4;43,3;51,7;60,4;66,1;73,6;84,3",  # D00360
    ("136196", 24): "136196;36,8;47,0;53,4;61,7;73,8;86,2;94,3;105,0;120,2",  # D01440
    ("138197", 6): "138197;25,4;32,7;37,2;43,2;51,8;60,6;66,4;74,0;84,9",  # D00360, Strehlen
}


def build_kostra():
    path = REPO / "reference" / "dresden" / "build_kostra.py"
    spec = importlib.util.spec_from_file_location("build_kostra", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dresdens_city_file_configures_the_real_kostra_dwd_2020_depths_of_each_stations_cell():
    kostra = dresden().kostra
    assert kostra.cells == {"01048": "136196", "01050": "138198", "01051": "138197"}
    for (cell, hours), row in DWD_ROWS.items():
        periods, depths = kostra.depths[(cell, hours)]
        assert periods.tolist() == PERIODS
        assert depths.tolist() == [float(v.replace(",", ".")) for v in row.split(";")[1:]]
    # every station's cell has the four durations of the windows (1, 6, 24, 72 h)
    assert {(c, h) for c in kostra.cells.values() for h in (1, 6, 24, 72)} <= set(kostra.depths)
    assert len({cell for cell, _ in kostra.depths}) == 23  # every cell touching the city


def test_the_grid_puts_six_published_places_and_the_three_stations_in_their_cells():
    index_rc = build_kostra().index_rc
    # INDEX_RC that kostra2020 (dimfalk/kostra2020, README and tests) found by intersecting the
    # DWD's GIS grid: Aachen, (6.19, 50.46), Düsseldorf 40477, Freiburg, Essen
    published = {(6.104606, 50.768626): "143089", (6.19, 50.46): "150090",
                 (6.785413, 51.23875): "133099", (7.8494, 47.99609): "206112",
                 (7.020153, 51.44617): "129102"}
    assert {p: index_rc(*p) for p in published} == published
    # the stations' coordinates in the recorded DWD station list
    text = (RECORDINGS / "dwd" / "RR_Stundenwerte_Beschreibung_Stationen.txt").read_text(
        "iso-8859-1")
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("01048", "01050", "01051"):
            found[fields[0]] = index_rc(float(fields[5]), float(fields[4]))
    assert found == dresden().kostra.cells


def test_the_constructed_burst_at_klotzsche_gets_its_return_period_from_the_real_depths():
    series = series_of(parse_product(heavy_rain_product(), "01048"), "RWS_10")
    rows = all_windows(series, TEN, dresden())
    # cell 136196: hN(D60) 16.0 (1 a) 20.5 (2 a) 23.3 (3 a) 26.9 (5 a) 32.2 (10 a);
    # hN(D360) 25.8 (1 a) 33.0 (2 a) 37.4 (3 a); hN(D1440) 36.8 (1 a); hN(D4320) 48.6 (1 a)
    expected = {
        "14:40": 1,  # 1 h = 1.5 + 3.5 + 6.0 + 9.0 = 20.0 ≥ 16.0, < 20.5
        "14:50": 5,  # 1 h = 20.0 + 7.0 = 27.0 ≥ 26.9, < 32.2
        "15:10": 5,  # 1 h = 31.5 < 32.2 (5 a); 6 h = 33.0 ≥ 33.0 (2 a): the longer, 5 a
        "15:30": 2,  # 1 h = 9 + 7 + 4 + 2 + 1 = 23.0 ≥ 20.5, < 23.3; 6 h = 34.0 ≥ 33.0 → 2 a
        "20:10": 1,  # 1 h = 0; 6 h = 34.0 − 1.5 = 32.5 ≥ 25.8, < 33.0
    }
    got = {t: at(rows, "01048", f"2024-11-20T{t}Z")["return_period"] for t in expected}
    assert got == expected
    # 20:40: 6 h = 14.0 < 25.8, 24 h = 34.0 < 36.8 and the level is 0, but the 72-h window
    # holds 125 of its 432 values (the series begins with the interval ending 2024-11-20T00:00):
    # a lower bound below 48.6 says nothing, so the return period is undetermined, not 0
    late = at(rows, "01048", "2024-11-20T20:40Z")
    assert (late["level"], late["completeness_72h"]) == (0, 0.2894)
    assert pd.isna(late["return_period"])
