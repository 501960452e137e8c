"""Flood indicators on the recorded PEGELONLINE series of the gauge DRESDEN (tests/recordings/
pegelonline/README.md: the 30-day W series there is CONSTRUCTED by the project in the documented
format — no real capture of a measurement series exists — and replayed like a real one) and on
a flood wave CONSTRUCTED here (marked so) that crosses Alarmstufe 1 and 2 and falls back."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.extract import extract
from odp.indicators.flood import compute_crossings, compute_levels, parse_config
from odp.publish.changes import row_hashes, write_ledger
from odp.spec import load_dataset
from tests.helpers import RECORDINGS, REPO, make_project

LEVELS, CROSSINGS = "flood-alarm-levels-saxony", "flood-alarm-crossings-saxony"
QUARTER = 15 * 60 * 10**9
DRESDEN = "501060"


def config():
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return parse_config(tomllib.load(fh)["indicators"]["flood"], "dresden.toml")


def recorded_dresden() -> pd.DataFrame:
    """The recorded W series of DRESDEN (2024-10-21 … 2024-11-20, local times with offsets)."""
    points = json.loads((RECORDINGS / "pegelonline" / "measurements_2024-11-20.json").read_text())
    return pd.DataFrame({
        "station_id": DRESDEN,
        "timestamp": pd.to_datetime([p["timestamp"] for p in points], utc=True),
        "value": pd.array([p["value"] for p in points], dtype="Float64"),
    })


def wave(missing: range = range(0)) -> pd.DataFrame:
    """CONSTRUCTED flood wave at DRESDEN, every 15 min from 2024-09-14T00:00Z (step i): rising
    2.5 cm per step (10 cm/h) from 380 cm to 520 cm at i = 56 (14:00Z), then falling 10 cm/h
    to 380 cm at i = 112. Steps in `missing` are not delivered."""
    steps = [i for i in range(113) if i not in missing]
    level = [380 + 2.5 * i if i <= 56 else 520 - 2.5 * (i - 56) for i in steps]
    return pd.DataFrame({
        "station_id": DRESDEN,
        "timestamp": pd.Timestamp("2024-09-14T00:00Z") + pd.to_timedelta(steps, "min") * 15,
        "value": pd.array(level, dtype="Float64"),
    })


def everything(series: pd.DataFrame, compute=compute_levels) -> pd.DataFrame:
    """What a first run computes: every row of every gauge."""
    ns = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns[series.station_id == s].min()), end + 1)]
               for s in series.station_id.unique()}
    rows = compute(series, QUARTER, changed, end, config()).rows
    return rows.set_index("timestamp").sort_index()


def at(frame: pd.DataFrame, stamp: str) -> pd.Series:
    return frame.loc[pd.Timestamp(stamp)]


# --- levels and trends -------------------------------------------------------------------------


def test_trends_on_the_recorded_dresden_series_equal_the_values_read_by_hand():
    rows = everything(recorded_dresden())
    # W at 2024-11-10T10:30+01:00 = 129, 1 h before (09:30+01:00) = 128, 6 h before
    # (04:30+01:00) = 126: trend_1h = (129 − 128) / 1 = 1.0, trend_6h = (129 − 126) / 6 = 0.5
    row = at(rows, "2024-11-10T09:30Z")
    assert (row.water_level, row.trend_1h, row.trend_6h) == (129.0, 1.0, 0.5)
    # 129 cm is far below Alarmstufe 1 (400 cm): level 0; at 0.5 cm/h the 400 cm are 542 h
    # away, beyond the 48-hour horizon: no next level
    assert (row.alarm_level, row.alarm_name) == (0, "keine Alarmstufe")
    assert pd.isna(row.next_level) and pd.isna(row.next_level_at)
    # W at 2024-11-05T18:00+01:00 = 99, 17:00 = 100, 12:00 = 100: falling 1 cm/h and 1/6 cm/h
    falling = at(rows, "2024-11-05T17:00Z")
    assert (falling.trend_1h, falling.trend_6h) == (-1.0, -0.17)


def test_trends_over_the_dst_night_look_back_in_utc_hours():
    rows = everything(recorded_dresden())
    # 2024-10-27: 02:00–02:45 local came twice (+02:00, then +01:00); on the UTC grid that is
    # 00:00 … 01:45Z, 8 distinct rows, none doubled
    night = rows.loc["2024-10-27T00:00Z":"2024-10-27T01:45Z"]
    assert len(night) == 8 and night.index.is_unique
    # 6 h before 2024-10-27T08:00+01:00 (07:00Z) is 01:00Z = 02:00+01:00 (W 92), not 02:00 on
    # the local clock: (94 − 92) / 6 = 0.33
    assert at(rows, "2024-10-27T07:00Z").trend_6h == 0.33
    assert len(rows) == 2885  # every recorded time, one row each


def test_the_constructed_wave_reaches_each_level_at_its_richtwert():
    rows = everything(wave())
    # i = 7 (01:45Z): 380 + 17.5 = 397.5 < 400; i = 8 (02:00Z): 400 reaches Alarmstufe 1
    assert at(rows, "2024-09-14T01:45Z").alarm_level == 0
    assert (at(rows, "2024-09-14T02:00Z")[["water_level", "alarm_level", "alarm_name"]]
            .tolist() == [400.0, 1, "Alarmstufe 1"])
    assert at(rows, "2024-09-14T12:00Z").alarm_level == 2  # i = 48: 380 + 120 = 500


def test_the_time_of_the_next_level_extrapolates_the_six_hour_trend():
    rows = everything(wave())
    # i = 24 (06:00Z): W = 380 + 60 = 440 (level 1); 6 h before (i = 0) 380: trend
    # (440 − 380) / 6 = 10 cm/h; 500 cm are 60 cm away: 6 h → 12:00Z, Alarmstufe 2
    rising = at(rows, "2024-09-14T06:00Z")
    assert (rising.trend_6h, rising.next_level, rising.next_threshold) == (10.0, 2, 500.0)
    assert rising.next_level_at == pd.Timestamp("2024-09-14T12:00Z")
    # i = 80 (20:00Z): W = 520 − 60 = 460 (level 1), 6 h before (i = 56) 520: −10 cm/h; falling
    # to the Richtwert of level 1 (400 cm) takes 6 h → 2024-09-15T02:00Z, level 0 next
    falling = at(rows, "2024-09-14T20:00Z")
    assert (falling.trend_6h, falling.next_level, falling.next_threshold) == (-10.0, 0, 400.0)
    assert falling.next_level_at == pd.Timestamp("2024-09-15T02:00Z")
    # the first 6 h have no 6-hour trend: no next level either
    assert pd.isna(at(rows, "2024-09-14T05:45Z").next_level)


def test_a_missing_water_level_is_undetermined_never_no_alarm_level():
    rows = everything(wave(missing=range(6, 11)))  # 01:30 … 02:30Z not delivered
    hole = at(rows, "2024-09-14T02:00Z")
    assert pd.isna(hole.water_level) and pd.isna(hole.alarm_level)
    assert hole.alarm_name == "unbestimmt"
    # 1 h after the hole's first step (02:30Z) W is missing; at 03:00Z the value 1 h before
    # (02:00Z) is missing: no 1-hour trend
    assert pd.isna(at(rows, "2024-09-14T03:00Z").trend_1h)


# --- crossings --------------------------------------------------------------------------------


def test_the_constructed_wave_crosses_up_twice_and_down_twice_at_the_hand_checked_times():
    rows = everything(wave(), compute_crossings)
    # rising: at the first value reaching the Richtwert. Falling, with the city file's
    # hysteresis (margin 10 cm, 4 readings): below 500 − 10 = 490 from i = 69 (520 − 32.5 =
    # 487.5), the 4th such reading is i = 72 (480, 18:00Z); below 390 from i = 109 (387.5),
    # the 4th is i = 112 (380, 2024-09-15T04:00Z)
    assert rows[["from_level", "to_level", "direction", "threshold", "water_level",
                 "previous_water_level"]].values.tolist() == [
        [0, 1, "steigend", 400.0, 400.0, 397.5],  # i = 8: 02:00Z
        [1, 2, "steigend", 500.0, 500.0, 497.5],  # i = 48: 12:00Z
        [2, 1, "fallend", 500.0, 480.0, 482.5],   # i = 72: 520 − 40 at 18:00Z
        [1, 0, "fallend", 400.0, 380.0, 382.5],   # i = 112: 520 − 140 at 2024-09-15T04:00Z
    ]
    assert list(rows.index) == [pd.Timestamp(t) for t in (
        "2024-09-14T02:00Z", "2024-09-14T12:00Z", "2024-09-14T18:00Z", "2024-09-15T04:00Z")]
    assert list(rows.to_name) == ["Alarmstufe 1", "Alarmstufe 2", "Alarmstufe 1",
                                  "keine Alarmstufe"]


def test_a_crossing_inside_a_gap_is_reported_at_the_first_value_after_it():
    rows = everything(wave(missing=range(6, 11)), compute_crossings)  # 01:30 … 02:30Z missing
    first = rows.iloc[0]
    # last value before the gap: i = 5 (01:15Z) 392.5; first after it: i = 11 (02:45Z) 407.5
    assert rows.index[0] == pd.Timestamp("2024-09-14T02:45Z")
    assert first.previous_timestamp == pd.Timestamp("2024-09-14T01:15Z")
    assert (first.previous_water_level, first.water_level) == (392.5, 407.5)


def test_a_gauge_the_city_file_does_not_name_gets_no_rows():
    other = wave().assign(station_id="501040")  # PIRNA: no [indicators.flood.gauges.501040]
    assert everything(other).empty and everything(other, compute_crossings).empty


def test_recorded_dresden_has_no_crossing_at_all():
    assert everything(recorded_dresden(), compute_crossings).empty  # 91 … 129 cm


# --- configuration ----------------------------------------------------------------------------


def test_the_richtwerte_and_their_source_come_from_the_city_file():
    dresden = config().gauges[DRESDEN]
    assert dresden.thresholds == (400.0, 500.0, 600.0, 700.0)
    assert "Landeshochwasserzentrum" in dresden.source


@pytest.mark.parametrize(("change", "message"), [
    ({"levels": [500, 400]}, r"gauges\.501060\.levels must rise"),
    ({"source": ""}, r"gauges\.501060: say where the Richtwerte come from"),
    ({"levels": "4 m"}, r"gauges\.501060\.levels: the Richtwerte in cm"),
])
def test_a_gauge_without_rising_richtwerte_or_a_source_is_a_config_error(change, message):
    table = {"gauges": {DRESDEN: {"levels": [400, 500, 600, 700], "source": "LHWZ"} | change}}
    with pytest.raises(ConfigError, match=r"^city: " + message):
        parse_config(table, "city")


# --- the derived source: incremental runs over a published ledger --------------------------


def _ledger(series: pd.DataFrame) -> pd.DataFrame:
    """A published ledger of elbe-gauges-saxony as the publish stage writes it."""
    n = len(series)
    table = pd.DataFrame({
        "station_uuid": pd.Series("70272185-b2b3-4178-96b8-43bea330dcae", index=range(n),
                                  dtype="string"),
        "station_number": series.station_id.astype("string").to_numpy(),
        "station_name": pd.Series("DRESDEN", index=range(n), dtype="string"),
        "water": pd.Series("ELBE", index=range(n), dtype="string"),
        "km": pd.Series(55.63, index=range(n), dtype="Float64"),
        "timestamp": series.timestamp.dt.as_unit("ns").to_numpy(),
        "water_level": series.value.astype("Float64").to_numpy(),
        "latitude": pd.Series(51.054, index=range(n), dtype="Float64"),
        "longitude": pd.Series(13.739, index=range(n), dtype="Float64"),
    })
    table["timestamp"] = pd.to_datetime(table["timestamp"], utc=True)
    table["_row_hash"] = row_hashes(table, list(table.columns))
    return table


@pytest.fixture
def derived(tmp_path, monkeypatch):
    """A project with both flood datasets reading one gauge input `<tag>-gauges`."""
    root, names = make_project(tmp_path, [LEVELS, CROSSINGS])
    gauges = names[LEVELS].split("-")[0] + "-gauges"
    for name in names.values():
        path = root / "pipelines" / f"{name}.toml"
        path.write_text(path.read_text().replace("\nelbe-gauges-saxony =", f"\n{gauges} ="))
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))

    def run(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Extract; the rows staging holds, and those this run's load sent."""
        done = extract(load_dataset(names[name], root), state)
        return done.table, done.table[done.table["_dlt_load_id"] == done.load_id]

    return {"state": state, "gauges": gauges, "run": run}


def test_late_values_are_sent_again_only_in_the_rows_whose_trends_hold_them(derived):
    write_ledger(derived["state"], derived["gauges"], _ledger(wave(missing=range(6, 11))))
    staged, sent = derived["run"](LEVELS)
    assert len(staged) == len(sent) == 113  # every step of the grid, the hole included
    write_ledger(derived["state"], derived["gauges"], _ledger(wave()))  # 01:30 … 02:30Z arrive
    staged, sent = derived["run"](LEVELS)
    # changed: the 5 late steps i = 6 … 10, the 1-hour trends that look back at them
    # (i = 11 … 14) and the 6-hour trends (and next levels) that do (i = 30 … 34): 14 rows
    steps = sorted((pd.Timestamp(t) - pd.Timestamp("2024-09-14T00:00Z")) // pd.Timedelta("15min")
                   for t in sent.timestamp)
    assert steps == [*range(6, 15), *range(30, 35)]
    assert len(staged) == 113
    row = staged.set_index("timestamp").loc["2024-09-14T02:00:00Z"]
    assert (row.water_level, row.alarm_level, row.station_name) == ("400", "1", "DRESDEN")


def test_a_crossing_a_late_value_moves_is_replaced_in_staging(derived):
    write_ledger(derived["state"], derived["gauges"], _ledger(wave(missing=range(6, 11))))
    staged, _ = derived["run"](CROSSINGS)
    assert sorted(staged.timestamp)[0] == "2024-09-14T02:45:00Z"  # after the gap
    write_ledger(derived["state"], derived["gauges"], _ledger(wave()))
    staged, sent = derived["run"](CROSSINGS)
    # the late values put the crossing of 400 cm at 02:00Z (i = 8); the one at 02:45Z is gone
    assert sorted(staged.timestamp) == ["2024-09-14T02:00:00Z", "2024-09-14T12:00:00Z",
                                        "2024-09-14T18:00:00Z", "2024-09-15T04:00:00Z"]
    assert list(sent.timestamp) == ["2024-09-14T02:00:00Z"]
    assert np.array_equal(staged.station_id.unique(), [DRESDEN])


def test_a_late_value_that_changes_the_held_level_resends_every_later_row_it_changes(derived):
    # CONSTRUCTED: 390 cm, 401 cm at i = 1 (Alarmstufe 1), then 395 cm (inside the hysteresis
    # band: above 400 − 10) for 60 steps (15 h), then 380 cm for 4 steps (i = 62 … 65)
    values = [390.0, 401.0] + [395.0] * 60 + [380.0] * 4
    series = pd.DataFrame({"station_id": DRESDEN,
                           "timestamp": pd.Timestamp("2024-09-14T00:00Z")
                           + pd.to_timedelta(range(len(values)), "min") * 15,
                           "value": pd.array(values, dtype="Float64")})
    write_ledger(derived["state"], derived["gauges"], _ledger(series.drop(index=1)))
    staged, _ = derived["run"](LEVELS)
    assert set(staged.held_level.dropna()) == {"0"}  # 401 cm not yet delivered
    write_ledger(derived["state"], derived["gauges"], _ledger(series))  # it arrives late
    staged, sent = derived["run"](LEVELS)
    held = staged.sort_values("timestamp").held_level.tolist()
    # held from i = 1 until the 4th reading below 390 cm (i = 65): 15 h later, far beyond the
    # 6-hour trend that a late value otherwise touches
    assert held == ["0"] + ["1"] * 64 + ["0"]
    assert len(sent) == 64  # i = 1 … 64: only the rows whose values changed
