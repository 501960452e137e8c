"""Hysteresis of alarm levels: a water level swinging around a Richtwert enters the level once
and leaves it once. The swinging series at DRESDEN (Richtwert of Alarmstufe 1: 400 cm) is
CONSTRUCTED here (marked so), in the whole-centimetre readings PEGELONLINE delivers."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.indicators.flood import compute_crossings, compute_levels, parse_config
from odp.indicators.hysteresis import Hysteresis, held, held_levels, parse_hysteresis
from tests.helpers import REPO

QUARTER = 15 * 60 * 10**9
DRESDEN = "501060"
START = pd.Timestamp("2024-09-14T00:00Z")
# CONSTRUCTED: i = 0 … 17, every 15 minutes from START; around 400 cm from i = 2 to i = 11,
# then falling below 390 cm from i = 13 on
SWING = [390, 395, 401, 398, 402, 399, 403, 397, 404, 396, 400, 395, 392, 389, 388, 387, 386,
         385]


def table(hysteresis: dict | None) -> dict:
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        found = tomllib.load(fh)["indicators"]["flood"]
    found = {k: v for k, v in found.items() if k != "hysteresis"}
    return found | ({"hysteresis": hysteresis} if hysteresis is not None else {})


def swinging() -> pd.DataFrame:
    return pd.DataFrame({"station_id": DRESDEN,
                         "timestamp": START + pd.to_timedelta(range(len(SWING)), "min") * 15,
                         "value": pd.array(SWING, dtype="Float64")})


def run(compute, hysteresis: dict | None) -> pd.DataFrame:
    series = swinging()
    ns = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    rows = compute(series, QUARTER, {DRESDEN: [(int(ns.min()), end + 1)]}, end,
                   parse_config(table(hysteresis), "dresden.toml")).rows
    return rows.sort_values("timestamp").reset_index(drop=True)


def steps(rows: pd.DataFrame) -> list[int]:
    return [int((t - START) / pd.Timedelta("15min")) for t in rows["timestamp"]]


def test_without_hysteresis_the_swinging_water_level_crosses_ten_times():
    rows = run(compute_crossings, None)
    # raw levels 0 0 1 0 1 0 1 0 1 0 1 0 0 …: up at 2, 4, 6, 8, 10, down at 3, 5, 7, 9, 11
    assert steps(rows) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_with_the_city_files_hysteresis_the_swing_enters_once_and_leaves_once():
    rows = run(compute_crossings, {"margin": 10.0, "readings": 4})
    # enters at the first 401 (i = 2); leaves when 4 readings in a row are below 400 − 10:
    # 389 (i = 13), 388, 387, 386 (i = 16)
    assert steps(rows) == [2, 16]
    assert rows[["direction", "water_level", "threshold"]].values.tolist() == [
        ["steigend", 401.0, 400.0], ["fallend", 386.0, 400.0]]


def test_the_city_file_configures_the_hysteresis_it_documents():
    assert parse_config(table({"margin": 10.0, "readings": 4}), "x").hysteresis == \
        parse_config(tomllib.loads((REPO / "cities" / "dresden.toml").read_text())[
            "indicators"]["flood"], "dresden.toml").hysteresis == Hysteresis(10.0, 4)


@pytest.mark.parametrize(("hysteresis", "expected"), [
    ({"margin": 10.0}, [2, 13]),  # the first reading below 390: 389 at i = 13
    ({"readings": 4}, [2, 14]),  # 4 below 400 in a row: 395, 392, 389, 388 (i = 11 … 14)
    ({"readings": 3, "margin": 10.0}, [2, 15]),  # 389, 388, 387
])
def test_margin_and_readings_each_delay_only_the_leaving(hysteresis, expected):
    assert steps(run(compute_crossings, hysteresis)) == expected


def test_the_held_level_column_agrees_with_the_crossings_and_the_raw_level_does_not():
    rows = run(compute_levels, {"margin": 10.0, "readings": 4})
    assert rows["held_level"].tolist() == [0, 0] + [1] * 14 + [0, 0]
    assert rows["held_name"].iloc[5] == "Alarmstufe 1"
    assert rows["alarm_level"].tolist()[2:6] == [1, 0, 1, 0]  # the measured level flaps


def test_a_missing_water_level_has_no_held_level_and_the_state_carries_over_the_gap():
    series = swinging()
    series.loc[5, "value"] = pd.NA  # 399 not delivered
    ns = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    config = parse_config(table({"margin": 10.0, "readings": 4}), "x")
    rows = compute_levels(series, QUARTER, {DRESDEN: [(int(ns.min()), end + 1)]}, end,
                          config).rows.sort_values("timestamp")
    assert pd.isna(rows["held_level"].iloc[5]) and rows["held_name"].iloc[5] == "unbestimmt"
    assert rows["held_level"].iloc[6] == 1


def test_held_reads_levels_only_when_no_margin_is_given():
    # warning states of a rain series: 0 2 0 2 2 0 0 0 3 0 (readings = 3)
    state = np.array([0, 2, 0, 2, 2, 0, 0, 0, 3, 0])
    assert held(state, state, 3).tolist() == [0, 2, 2, 2, 2, 2, 2, 0, 3, 3]
    assert held(state, state, 1).tolist() == state.tolist()


def test_a_jump_over_two_levels_falls_to_the_level_still_held():
    # thresholds 400, 500; margin 10: 520 → 495 (still 2: above 490) → 450 → 450 → 450 → 380
    values = np.array([520.0, 495, 450, 450, 450, 380, 380, 380])
    hysteresis = Hysteresis(10.0, 3)
    assert held_levels(values, (400.0, 500.0), hysteresis).tolist() == [2, 2, 2, 2, 1, 1, 1, 0]


@pytest.mark.parametrize(("given", "message"), [
    ({"margin": -1}, r"hysteresis\.margin: a number >= 0"),
    ({"readings": 0}, r"hysteresis\.readings: a whole number >= 1"),
    ({"readings": 2.5}, r"hysteresis\.readings"),
    ({"hours": 1}, r"hysteresis: unknown key 'hours'"),
    ("10 cm", r"hysteresis: a table"),
])
def test_a_wrong_hysteresis_is_a_config_error_naming_the_key(given, message):
    with pytest.raises(ConfigError, match=r"^dresden\.toml " + message):
        parse_hysteresis(given, "dresden.toml")
