"""Heavy-rain indicators on the recorded DWD series (tests/recordings/dwd/README.md): the REAL
hourly excerpt of Berlin-Tempelhof (00433, 2020-10-30/31) and the Dresden 10-minute products
CONSTRUCTED in the real format. Series built here (a DST weekend, a heavy-rain day) are
CONSTRUCTED too, in the real 10-minute product format, and parsed by the real parser; they test
the heavy-rain levels on Dresden stations. The same cases on a REAL 10-minute product (05992
Rudersberg-Michelau: its flood of 2024-06-02, a -999 run, a 70-day outage, the DST night of
2023-10-29, a late value) are in test_indicators_heavy_rain_real.py."""

from __future__ import annotations

import tomllib
import zipfile

import numpy as np
import pandas as pd
import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.indicators.heavy_rain import (
    MINUTE,
    compute_events,
    compute_windows,
    parse_config,
)
from odp.publish.changes import HASH, row_hashes, write_ledger
from odp.sources.derived import run_order
from odp.sources.dwd_cdc import parse_product
from odp.spec import load_dataset
from tests.helpers import RECORDINGS, REPO, make_project

DWD = RECORDINGS / "dwd"
HOUR, TEN = 60 * MINUTE, 10 * MINUTE
WINDOWS, EVENTS = "heavy-rain-dresden-windows", "heavy-rain-dresden-events"
HEADER_10MIN = "STATIONS_ID;MESS_DATUM;  QN;RWS_DAU_10;RWS_10;RWS_IND_10;eor"


def config():
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return parse_config(tomllib.load(fh)["indicators"]["heavy_rain"], "dresden.toml")


def series_of(product: pd.DataFrame, field: str) -> pd.DataFrame:
    """A parsed produkt_*.txt → the indicator's input (station, UTC time, value)."""
    return pd.DataFrame({
        "station_id": product["STATIONS_ID"].astype("string"),
        "timestamp": pd.to_datetime(product["MESS_DATUM"], utc=True),
        "value": pd.to_numeric(product[field]).astype("Float64"),
    })


def tempelhof() -> pd.DataFrame:
    text = (DWD / "produkt_rr_stunde_00433_excerpt_20201030-31.txt").read_text("iso-8859-1")
    return series_of(parse_product(text, "00433"), "R1")


def dresden_10min(station: str, scenario: str = "first") -> str:
    with zipfile.ZipFile(DWD / f"10min_{station}_{scenario}.zip") as archive:
        name = next(n for n in archive.namelist() if n.startswith("produkt_"))
        return archive.read(name).decode("iso-8859-1")


def ten_minute_product(station: str, values: dict[str, float | None]) -> str:
    """A CONSTRUCTED produkt_zehn_min_rr file in the real format (padded fields, CRLF, eor,
    -999 for missing), MESS_DATUM yyyymmddHHMM UTC → RWS_10."""
    lines = [HEADER_10MIN]
    for stamp, value in values.items():
        missing = value is None
        dau = -999 if missing else (10 if value > 0 else 0)
        rws = "-999" if missing else f"{value:.2f}"
        ind = -999 if missing else int(value > 0)
        lines.append(f"{int(station):>11};{stamp};    3;{dau:>4};{rws:>7};{ind:>4};eor")
    return "\r\n".join(lines) + "\r\n"


# The CONSTRUCTED heavy-rain day: a burst at Dresden-Klotzsche on 2024-11-20 (10-minute values,
# mm, intervals ending at these UTC times), everything else that day between 08:00 and 20:00 dry.
BURST = {"202411201410": 1.5, "202411201420": 3.5, "202411201430": 6.0, "202411201440": 9.0,
         "202411201450": 7.0, "202411201500": 4.0, "202411201510": 2.0, "202411201520": 1.0}


def heavy_rain_product() -> str:
    """The constructed Klotzsche 10-minute product: the recorded (constructed) 01048 file of
    2024-11-20T00:00 … 2024-11-21T06:50, with 08:00–20:00 on the 20th dry except BURST."""
    product = parse_product(dresden_10min("01048"), "01048")
    values: dict[str, float | None] = {}
    for stamp, value in zip(product["MESS_DATUM"], product["RWS_10"], strict=True):
        key = pd.Timestamp(stamp).strftime("%Y%m%d%H%M")
        dry = "202411200800" <= key <= "202411202000"
        values[key] = BURST.get(key, 0.0) if dry else (None if pd.isna(value) else float(value))
    return ten_minute_product("01048", values)


def all_windows(series: pd.DataFrame, step: int, cfg=None) -> pd.DataFrame:
    """Every window of every station (what a first run computes)."""
    ns = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(ns.max())
    changed = {s: [(int(ns[series.station_id == s].min()), end + 1)]
               for s in series.station_id.unique()}
    rows = compute_windows(series, step, changed, end, cfg or config()).rows
    return rows.set_index(["station_id", "timestamp"]).sort_index()


def at(frame: pd.DataFrame, station: str, stamp: str) -> pd.Series:
    return frame.loc[(station, pd.Timestamp(stamp))]


# --- sums, gaps, DST, outage, thresholds ----------------------------------------------------


def test_hourly_sums_of_the_real_tempelhof_excerpt_equal_the_values_added_by_hand():
    windows = all_windows(tempelhof(), HOUR)
    eight = at(windows, "00433", "2020-10-30T08:00Z")
    # 1 h ending 08:00 = R1 of 08:00 = 1.9
    # 6 h ending 08:00 = R1 of 03..08 = 0.3 + 0.4 + 0.6 + 0.3 + 1.2 + 1.9 = 4.7
    assert (eight.sum_1h, eight.sum_6h, eight.completeness_6h) == (1.9, 4.7, 1.0)
    # 24 h ending 2020-10-30T23:00 = the whole 30th:
    # 0.0+0.0+0.1+0.3+0.4+0.6+0.3+1.2+1.9+1.2+1.0+0.4+1.4+1.6+0.9+0.7+0.2+0.0+0.2+0.9+0.3+0+0+0
    # = 13.6
    day = at(windows, "00433", "2020-10-30T23:00Z")
    assert (day.sum_24h, day.completeness_24h) == (13.6, 1.0)
    # 72 h ending 2020-10-31T23:00 holds 2020-10-29T00 … 31T23: the 29th is not in the file
    # (24 of 72 values missing): 13.6 + (0.3+0.7+1.0+0.4+0.3+0.3+0.4+0.3+0.1) = 13.6 + 3.8 = 17.4,
    # completeness 48 / 72 = 0.6667
    last = at(windows, "00433", "2020-10-31T23:00Z")
    assert (last.sum_72h, last.completeness_72h) == (17.4, 0.6667)


def test_a_window_missing_values_is_undetermined_never_no_heavy_rain():
    windows = all_windows(tempelhof(), HOUR)
    # 6 h ending 2020-10-30T02:00: only 00, 01, 02 are in the file → 3 / 6 values
    early = at(windows, "00433", "2020-10-30T02:00Z")
    assert early.completeness_6h == 0.5 and pd.isna(early.level)
    assert early.level_name == "unbestimmt"
    # 6 h ending 05:00 = 00 … 05, complete, no limit exceeded → level 0
    complete = at(windows, "00433", "2020-10-30T05:00Z")
    assert (complete.completeness_6h, complete.level, complete.level_name) == (
        1.0, 0, "kein Starkregen")


def test_a_window_across_a_gap_sums_the_present_values_only():
    # 01051 (CONSTRUCTED product): "1051;202411201230;    3;-999;   -999;-999;eor"
    series = series_of(parse_product(dresden_10min("01051"), "01051"), "RWS_10")
    windows = all_windows(series, TEN)
    gap = at(windows, "01051", "2024-11-20T12:50Z")
    # 1 h ending 12:50 = 12:00 … 12:50 without 12:30: 0.35 + 0.37 + 0.38 + 0.40 + 0.40 = 1.90
    assert (gap.sum_1h, gap.completeness_1h) == (1.9, 0.8333)
    assert pd.isna(gap.level) and gap.level_name == "unbestimmt"
    # 1 h ending 13:30 no longer holds 12:30: 12:40 … 13:30 = 0.40·5 + 0.38 = 2.38, complete
    after = at(windows, "01051", "2024-11-20T13:30Z")
    assert (after.sum_1h, after.completeness_1h) == (2.38, 1.0)
    # the 6 h window still holds the gap: 35 of 36 values
    assert after.completeness_6h == 0.9722 and pd.isna(after.level)


def test_rows_absent_from_the_input_are_missing_values_not_zeros():
    series = tempelhof()
    hours = series.timestamp.dt.strftime("%d%H")
    cut = series[~hours.isin(["3010", "3011", "3012"])]  # three hours never delivered
    windows = all_windows(cut, HOUR)
    # 6 h ending 2020-10-30T14:00 = 09 … 14 without 10, 11, 12: 1.2 + 1.6 + 0.9 = 3.7, 3 / 6
    row = at(windows, "00433", "2020-10-30T14:00Z")
    assert (row.sum_6h, row.completeness_6h) == (3.7, 0.5)
    hole = at(windows, "00433", "2020-10-30T11:00Z")
    assert pd.isna(hole.precipitation) and pd.isna(hole.sum_1h) and hole.completeness_1h == 0


def test_windows_over_a_dst_weekend_are_24_utc_hours_of_144_values():
    # CONSTRUCTED: Klotzsche 2024-10-26T00:10 … 2024-10-28T00:00 UTC (clocks went back on
    # 2024-10-27 at 03:00 CEST = 01:00 UTC: the local day had 25 hours). 0.10 mm per interval,
    # 0.50 mm in the six intervals ending 00:10 … 01:00 UTC (the local hour that was repeated).
    start = pd.Timestamp("2024-10-26T00:10Z")
    stamps = [start + pd.Timedelta(minutes=10 * i) for i in range(288)]
    values = {t.strftime("%Y%m%d%H%M"): 0.5 if pd.Timestamp("2024-10-27T00:10Z") <= t
              <= pd.Timestamp("2024-10-27T01:00Z") else 0.1 for t in stamps}
    windows = all_windows(series_of(parse_product(ten_minute_product("01048", values), "x"),
                                    "RWS_10"), TEN)
    # 1 h ending 01:00 UTC = 6 values · 0.50 = 3.00
    assert at(windows, "01048", "2024-10-27T01:00Z").sum_1h == 3.0
    # 24 h ending 2024-10-27T23:50 UTC = 144 intervals: 138 · 0.10 + 6 · 0.50 = 13.80 + 3.00
    day = at(windows, "01048", "2024-10-27T23:50Z")
    assert (day.sum_24h, day.completeness_24h) == (16.8, 1.0)
    # and 24 h ending 2024-10-28T00:00 (local midnight is 23:00 UTC: no local-day window)
    assert at(windows, "01048", "2024-10-28T00:00Z").sum_24h == 16.8


def test_a_station_outage_lowers_completeness_and_is_never_no_heavy_rain():
    series = pd.concat([series_of(parse_product(dresden_10min(s), s), "RWS_10")
                        for s in ("01048", "01050")], ignore_index=True)
    t = series.timestamp
    klotzsche = series.station_id == "01048"
    down = klotzsche & (((t >= "2024-11-20T08:00Z") & (t <= "2024-11-20T10:50Z"))
                        | (t > "2024-11-21T05:00Z"))  # out for 3 h, and since 05:00 on the 21st
    windows = all_windows(series[~down], TEN)
    during = at(windows, "01048", "2024-11-20T09:00Z")
    assert pd.isna(during.sum_1h) and during.completeness_1h == 0 and pd.isna(during.level)
    back = at(windows, "01048", "2024-11-20T12:00Z")  # 1 h complete again, 6 h: 18 of 36
    assert back.completeness_1h == 1.0 and back.completeness_6h == 0.5
    assert back.level_name == "unbestimmt"
    # the grid runs to the newest time of any station: Klotzsche's silence shows
    silent = at(windows, "01048", "2024-11-21T06:50Z")
    assert silent.completeness_1h == 0 and silent.level_name == "unbestimmt"
    assert at(windows, "01050", "2024-11-21T06:50Z").completeness_1h == 1.0
    no_rain = windows[windows.level == 0]
    assert (no_rain.completeness_1h == 1).all() and (no_rain.completeness_6h == 1).all()


def test_limits_are_exceeded_only_by_a_greater_sum():
    base = {f"20240601{h:02d}{m:02d}": 0.0 for h in range(0, 12) for m in range(0, 60, 10)}
    exactly = dict(base) | {f"2024060110{m:02d}": 2.5 for m in range(0, 60, 10)}  # 6 · 2.5 = 15
    above = dict(exactly) | {"202406011050": 2.51}  # 15.01
    for values, level in ((exactly, 0), (above, 2)):
        windows = all_windows(series_of(parse_product(ten_minute_product("01048", values), "x"),
                                        "RWS_10"), TEN)
        assert at(windows, "01048", "2024-06-01T10:50Z").level == level


def test_thresholds_come_from_the_city_file():
    cfg = config()
    assert [(lv.level, lv.name, lv.limits) for lv in cfg.levels] == [
        (2, "markant", {1: 15.0, 6: 20.0}),
        (3, "Unwetter", {1: 25.0, 6: 35.0}),
        (4, "extremes Unwetter", {1: 40.0, 6: 60.0}),
    ]
    assert cfg.sums == (1, 6, 24, 72)


# --- the constructed heavy-rain day ---------------------------------------------------------


def test_the_constructed_heavy_rain_day_crosses_markant_then_unwetter():
    series = series_of(parse_product(heavy_rain_product(), "01048"), "RWS_10")
    windows = all_windows(series, TEN)
    # 1 h ending 14:40 = 1.5 + 3.5 + 6.0 + 9.0 = 20.0 > 15 → markant (6 h: 20.0, not > 20)
    assert at(windows, "01048", "2024-11-20T14:40Z")[["sum_1h", "level"]].tolist() == [20.0, 2]
    # 1 h ending 14:50 = 20.0 + 7.0 = 27.0 > 25 → Unwetter
    assert at(windows, "01048", "2024-11-20T14:50Z")[["sum_1h", "level"]].tolist() == [27.0, 3]
    # 1 h ending 15:10 = 3.5 + 6 + 9 + 7 + 4 + 2 = 31.5 (the highest), 6 h = 33.0
    peak = at(windows, "01048", "2024-11-20T15:10Z")
    assert (peak.sum_1h, peak.sum_6h, peak.level_name) == (31.5, 33.0, "Unwetter")


def test_the_heavy_rain_event_has_the_hand_checked_span_total_peak_and_level():
    series = series_of(parse_product(heavy_rain_product(), "01048"), "RWS_10")
    ns = series.timestamp.dt.as_unit("ns").astype("int64")
    found = compute_events(series, TEN, {"01048": [(int(ns.min()), int(ns.max()) + 1)]},
                           int(ns.max()), config()).rows
    assert len(found) == 1
    event = found.iloc[0]
    # starts with the interval ending 14:10 (14:00), ends with the one ending 15:20
    assert (event.start_time, event.end_time) == (pd.Timestamp("2024-11-20T14:00Z"),
                                                  pd.Timestamp("2024-11-20T15:20Z"))
    # total = 1.5 + 3.5 + 6.0 + 9.0 + 7.0 + 4.0 + 2.0 + 1.0 = 34.0 over 80 minutes
    assert (event.duration_min, event.total, event.completeness) == (80, 34.0, 1.0)
    assert (event.peak_10min, event.peak_1h, event.level, event.level_name) == (
        9.0, 31.5, 3, "Unwetter")


# --- the derived source: incremental runs over published ledgers -----------------------------


def _ledger(series: pd.DataFrame) -> pd.DataFrame:
    """A published ledger as the publish stage writes it (typed, with row hashes)."""
    table = pd.DataFrame({
        "station_id": series.station_id.astype("string"),
        "station_name": pd.Series("Berlin-Tempelhof", index=series.index, dtype="string"),
        "timestamp": series.timestamp.dt.as_unit("ns"),
        "precipitation": series.value.astype("Float64"),
        "latitude": pd.Series(52.4675, index=series.index, dtype="Float64"),
        "longitude": pd.Series(13.4021, index=series.index, dtype="Float64"),
        "station_height": pd.Series(48.0, index=series.index, dtype="Float64"),
    }).sort_values(["station_id", "timestamp"], ignore_index=True)
    table[HASH] = row_hashes(table, list(table.columns))
    return table


@pytest.fixture
def derived(tmp_path, monkeypatch):
    """A project with both heavy-rain datasets reading one hourly input `<tag>-rain`."""
    root, names = make_project(tmp_path, [WINDOWS, EVENTS])
    rain = names[WINDOWS].split("-")[0] + "-rain"
    for name in names.values():
        path = root / "pipelines" / f"{name}.toml"
        text = path.read_text()
        text = text.replace('precipitation-dresden-10min = "10min"\n', "")
        text = text.replace('precipitation-dresden-hourly = "1h"', f'{rain} = "1h"')
        path.write_text(text)
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))

    def run(name: str) -> pd.DataFrame:
        """Extract; the rows staging holds, and those this run's load sent."""
        done = extract(load_dataset(names[name], root), state)
        table = done.table
        return table, table[table["_dlt_load_id"] == done.load_id]

    return {"root": root, "state": state, "names": names, "rain": rain, "run": run}


def test_a_derived_dataset_fails_clearly_while_its_input_is_not_published(derived):
    with pytest.raises(SourceError, match=f"input {derived['rain']} not yet published"):
        derived["run"](WINDOWS)


def test_a_late_value_is_sent_again_only_in_the_windows_that_hold_it(derived):
    series = tempelhof()
    noon = series.timestamp == pd.Timestamp("2020-10-30T12:00Z")
    first = series.assign(value=series.value.mask(noon))  # 12:00 not yet delivered (1.4 later)
    write_ledger(derived["state"], derived["rain"], _ledger(first))
    staged, sent = derived["run"](WINDOWS)
    assert len(staged) == len(sent) == 48
    before = staged.set_index("timestamp")
    assert pd.isna(before.loc["2020-10-30T12:00:00Z", "sum_1h"])  # no value: no sum

    write_ledger(derived["state"], derived["rain"], _ledger(series))  # the late 1.4 arrives
    staged, sent = derived["run"](WINDOWS)
    # Sent again: the windows ending 12:00 … 2020-10-31T23:00 (all hold 12:00 in their 72 h)
    # whose values changed: 36 rows; the 1-hour sum changed in one window only.
    assert sorted(sent.timestamp)[0] == "2020-10-30T12:00:00Z" and len(sent) == 36
    after = staged.set_index("timestamp")
    changed_1h = (after.sum_1h.fillna("-") != before.sum_1h.reindex(after.index).fillna("-"))
    assert list(after.index[changed_1h]) == ["2020-10-30T12:00:00Z"]
    assert after.loc["2020-10-30T12:00:00Z", "sum_1h"] == "1.4"
    # 6 h ending 14:00 = 09 … 14 = 1.2 + 1.0 + 0.4 + 1.4 + 1.6 + 0.9 = 6.5
    assert after.loc["2020-10-30T14:00:00Z", "sum_6h"] == "6.5"
    assert len(staged) == 48  # merged on the key, never duplicated

    staged, sent = derived["run"](WINDOWS)  # the ledger did not change: nothing read or sent
    assert sent.empty and len(staged) == 48


def test_a_new_value_at_one_station_adds_one_row_per_station_and_deletes_none(derived):
    series = tempelhof()
    other = series.assign(station_id="00434")
    both = pd.concat([series, other], ignore_index=True)
    write_ledger(derived["state"], derived["rain"], _ledger(both))
    staged, _ = derived["run"](WINDOWS)
    assert len(staged) == 96
    new = series.iloc[[-1]].assign(timestamp=pd.Timestamp("2020-11-01T00:00Z"), value=0.2)
    write_ledger(derived["state"], derived["rain"], _ledger(pd.concat([both, new])))
    staged, sent = derived["run"](WINDOWS)
    # the new hour at 00433, and 00434's grid reaching it without a value (not yet delivered)
    assert sorted(zip(sent.station_id, sent.timestamp, strict=True)) == [
        ("00433", "2020-11-01T00:00:00Z"), ("00434", "2020-11-01T00:00:00Z")]
    assert len(staged) == 98
    waiting = staged[(staged.station_id == "00434")].set_index("timestamp").iloc[-1]
    assert pd.isna(waiting.precipitation) and waiting.level_name == "unbestimmt"


def test_a_changed_threshold_in_the_city_file_reclassifies_at_the_next_run(derived):
    write_ledger(derived["state"], derived["rain"], _ledger(tempelhof()))
    derived["run"](WINDOWS)
    city = derived["root"] / "cities" / "dresden.toml"
    city.write_text(city.read_text().replace("1h = 15.0 ", "1h = 1.5  "))  # markant: > 1.5 mm
    staged, sent = derived["run"](WINDOWS)
    # R1 above 1.5 mm: 2020-10-30T08:00 (1.9) and 13:00 (1.6); their 1-hour windows only
    assert sorted(sent.timestamp) == ["2020-10-30T08:00:00Z", "2020-10-30T13:00:00Z"]
    assert set(sent.level_name) == {"markant"} and len(staged) == 48


def test_each_row_names_the_input_version_it_was_computed_from(derived):
    write_ledger(derived["state"], derived["rain"], _ledger(tempelhof()))
    staged, _ = derived["run"](WINDOWS)
    assert staged["input"].str.fullmatch(
        rf"{derived['rain']} \(published \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)").all()
    assert (staged["resolution"] == "1h").all()
    assert set(staged["station_name"]) == {"Berlin-Tempelhof"}


def test_an_event_that_grows_into_the_next_one_replaces_both(derived):
    # CONSTRUCTED hourly series: two heavy showers 9 hours apart, each its own event; then
    # late values fill the dry hours between them with rain, and they become one event.
    stamps = pd.date_range("2024-07-01T00:00Z", "2024-07-02T12:00Z", freq="h")
    rain = pd.Series(0.0, index=stamps)
    rain["2024-07-01T06:00Z"] = 18.0  # markant (> 15 in 1 h)
    rain["2024-07-01T16:00Z"] = 26.0  # Unwetter (> 25 in 1 h)
    series = pd.DataFrame({"station_id": "01048", "timestamp": stamps,
                           "value": rain.to_numpy()}).astype({"value": "Float64"})
    write_ledger(derived["state"], derived["rain"], _ledger(series))
    staged, _ = derived["run"](EVENTS)
    assert list(staged.sort_values("start_time").total) == ["18", "26"]
    late = rain.copy()
    late["2024-07-01T10:00Z":"2024-07-01T12:00Z"] = 8.0  # 24 mm in 3 h: a 6-h window > 20
    write_ledger(derived["state"], derived["rain"], _ledger(series.assign(value=late.to_numpy())))
    staged, sent = derived["run"](EVENTS)
    # one event 05:00 … 16:00: 18 + 3 · 8 + 26 = 68 mm, level 3 (the 26 mm hour)
    assert staged[["start_time", "end_time", "total", "level"]].values.tolist() == [
        ["2024-07-01T05:00:00Z", "2024-07-01T16:00:00Z", "68", "3"]]
    assert len(sent) == 1  # the grown event; the second one was deleted from staging


def test_an_input_off_its_declared_time_step_fails_clearly(derived):
    series = series_of(parse_product(dresden_10min("01051"), "01051"), "RWS_10")
    write_ledger(derived["state"], derived["rain"], _ledger(series))  # 10-minute values, "1h"
    with pytest.raises(SourceError, match=r"155 of 186 times are not on its 1h UTC grid"):
        derived["run"](WINDOWS)


def test_run_order_puts_inputs_before_the_datasets_derived_from_them():
    names = ["heavy-rain-dresden-events", "heavy-rain-dresden-windows", "schools-dresden",
             "precipitation-dresden-10min", "precipitation-dresden-hourly"]
    assert run_order(names, REPO) == ["schools-dresden", "precipitation-dresden-10min",
                                      "precipitation-dresden-hourly", "heavy-rain-dresden-events",
                                      "heavy-rain-dresden-windows"]


def test_run_order_puts_the_situation_after_every_indicator_it_reads():
    names = ["situation-dresden", "heavy-rain-dresden-stadtteile", "heavy-rain-dresden-windows"]
    assert run_order(names, REPO)[-1] == "situation-dresden"
    assert run_order(["situation-dresden", "heavy-rain-dresden-windows"], REPO) == [
        "heavy-rain-dresden-windows", "situation-dresden"]


def test_no_python_loop_runs_per_row_so_a_year_of_10_minute_values_is_quick():
    # 3 stations × 1 year of 10-minute values (157,680 rows), computed from scratch
    stamps = pd.date_range("2023-01-01T00:10Z", periods=52_560, freq="10min")
    rng = np.random.default_rng(7)
    series = pd.concat([pd.DataFrame({"station_id": s, "timestamp": stamps,
                                      "value": rng.gamma(0.1, 1.0, len(stamps)).round(2)})
                        for s in ("01048", "01050", "01051")], ignore_index=True)
    import time

    began = time.perf_counter()
    rows = all_windows(series.astype({"value": "Float64"}), TEN)
    assert len(rows) == 157_680 and time.perf_counter() - began < 5
