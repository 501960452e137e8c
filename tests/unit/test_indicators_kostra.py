"""Return periods of heavy-rain windows from a KOSTRA-DWD table (`[indicators.heavy_rain.kostra]`),
on the CONSTRUCTED example table tests/fixtures/kostra/kostra-dwd-2020-example.csv (one made-up
grid cell 900001, durations 60 and 360 minutes) and CONSTRUCTED 10-minute series: the longest
tabulated return period a 1 h or 6 h sum reaches, 0 below the 1-year depth, empty for a station
without a grid cell or below the table with values missing; a wrong table is a ConfigError."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.indicators.heavy_rain import parse_config
from tests.helpers import REPO
from tests.unit.test_indicators_heavy_rain import TEN, all_windows

TABLE = "tests/fixtures/kostra/kostra-dwd-2020-example.csv"
START = pd.Timestamp("2024-07-01T00:10Z")  # 4 days of 10-minute values: every window complete
RAIN = pd.date_range("2024-07-04T14:10Z", periods=6, freq="10min")  # 6 × 4.5 mm, 14:00–15:00


def config(kostra: dict | None = None, root: str = str(REPO)):
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        table = tomllib.load(fh)["indicators"]["heavy_rain"]
    kostra = kostra or {"table": TABLE, "cells": {"01048": "900001", "01051": "900001"}}
    return parse_config({**table, "kostra": kostra, "_root": root}, "dresden.toml")


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
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        plain = parse_config(tomllib.load(fh)["indicators"]["heavy_rain"], "dresden.toml")
    assert plain.kostra is None  # Dresden's city file configures none (no real table yet)
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
