"""Heavy-rain windows on REAL DWD 10-minute precipitation: unchanged excerpts of the product file
of station 05992 Rudersberg-Michelau (Baden-Württemberg), tests/recordings/dwd/README.md. The
real parser (parse_product) reads them and the real window computation runs on them; every
expected number below is added up by hand from the rows quoted beside it.

The excerpts hold: a short burst on 2023-07-29 at the file's first row (windows still
incomplete), the night of the return to winter time 2023-10-28/29, and the flood of
2024-06-02 (Rudersberg) — a 1-h sum of 36.20 mm and a 6-h sum of 62.87 mm, then seven -999
values and 70 days without any row (station outage) until 2024-08-12.
"""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest

from odp.indicators.heavy_rain import MINUTE, compute_windows, parse_config
from odp.indicators.page import local_time
from odp.sources.dwd_cdc import parse_product
from tests.helpers import RECORDINGS, REPO

DWD = RECORDINGS / "dwd"
TEN = 10 * MINUTE
STATION = "05992"
BURST = "produkt_zehn_min_rr_05992_excerpt_20230729-30.txt"
DST = "produkt_zehn_min_rr_05992_excerpt_20231028-29.txt"
FLOOD = "produkt_zehn_min_rr_05992_excerpt_20240602-0812.txt"


def config():
    with (REPO / "cities" / "dresden.toml").open("rb") as fh:
        return parse_config(tomllib.load(fh)["indicators"]["heavy_rain"], "dresden.toml")


def real_series(name: str) -> pd.DataFrame:
    """A real excerpt through the real parser → the indicator's input (station, UTC, RWS_10)."""
    product = parse_product((DWD / name).read_text("iso-8859-1"), name)
    return pd.DataFrame({
        "station_id": product["STATIONS_ID"].astype("string"),
        "timestamp": pd.to_datetime(product["MESS_DATUM"], utc=True),
        "value": pd.to_numeric(product["RWS_10"]).astype("Float64"),
    })


def ns(stamp: str) -> int:
    return pd.Timestamp(stamp).value


def all_windows(series: pd.DataFrame) -> pd.DataFrame:
    """Every window of the station from its first value to its newest (a first run)."""
    stamps = series["timestamp"].dt.as_unit("ns").astype("int64")
    end = int(stamps.max())
    rows = compute_windows(series, TEN, {STATION: [(int(stamps.min()), end + 1)]}, end,
                           config()).rows
    return rows.set_index("timestamp").sort_index()


def at(frame: pd.DataFrame, stamp: str) -> pd.Series:
    return frame.loc[pd.Timestamp(stamp)]


@pytest.fixture(scope="module")
def flood() -> pd.DataFrame:
    return all_windows(real_series(FLOOD))


def test_the_real_excerpts_parse_as_utc_ten_minute_rows_with_minus_999_as_missing():
    series = real_series(FLOOD)
    # header + file lines 44363–44650: 2024-06-02T00:00 … 23:50 (144) and 2024-08-12 (144)
    assert len(series) == 288 and set(series.station_id) == {STATION}
    assert series.timestamp.iloc[0] == pd.Timestamp("2024-06-02T00:00Z")
    # "5992;202406022250;    3;-999;   -999;-999;eor" … 23:50: seven missing values
    missing = series[series.value.isna()].timestamp
    assert list(missing) == list(pd.date_range("2024-06-02T22:50Z", periods=7, freq="10min"))


def test_real_1h_and_6h_sums_of_the_flood_equal_the_values_added_by_hand(flood):
    peak = at(flood, "2024-06-02T21:10Z")
    # 1 h ending 21:10 = 20:20 … 21:10: 5.23 + 4.53 + 10.19 + 6.95 + 7.68 + 1.62 = 36.20
    assert (peak.sum_1h, peak.completeness_1h) == (36.2, 1.0)
    # 6 h ending 21:10 = 15:20 … 21:10; its non-zero values before 20:20:
    #   16:50 0.32, 17:50 0.61                                         =  0.93
    #   18:00 … 18:50: 0.94 + 1.27 + 1.37 + 2.52 + 2.07 + 1.15        =  9.32
    #   19:00 … 19:50: 1.34 + 1.02 + 0.87 + 3.62 + 5.20 + 2.85        = 14.90
    #   20:00, 20:10:  0.50 + 1.02                                     =  1.52
    # 0.93 + 9.32 + 14.90 + 1.52 = 26.67, + the 1 h above 36.20 = 62.87
    assert (peak.sum_6h, peak.completeness_6h) == (62.87, 1.0)
    # 1 h 36.20 > 25 (Unwetter), ≤ 40; 6 h 62.87 > 60: extremes Unwetter (level 4)
    assert (peak.level, peak.level_name) == (4, "extremes Unwetter")
    # 20:30: 1 h = 19:40 … 20:30 = 5.20 + 2.85 + 0.50 + 1.02 + 5.23 + 4.53 = 19.33
    # (> 15: markant); 6 h = 15:40 … 20:30 = 0.93 + 9.32 + 14.90 + 1.52 + 5.23 + 4.53 = 36.43
    # (> 35: Unwetter) → level 3
    half = at(flood, "2024-06-02T20:30Z")
    assert (half.sum_1h, half.sum_6h, half.level, half.level_name) == (
        19.33, 36.43, 3, "Unwetter")


def test_a_window_across_the_real_minus_999_run_counts_only_the_present_values(flood):
    # 1 h ending 23:30 = 22:40 (0.00) and 22:50 … 23:30 (five -999): sum 0.00 of 1 value,
    # completeness 1 / 6 — missing values are not zeros (zeros would make it complete)
    row = at(flood, "2024-06-02T23:30Z")
    assert (row.sum_1h, row.completeness_1h) == (0.0, 0.1667)
    # 6 h ending 23:30 = 17:40 … 23:30, 31 of 36 present: 0.61 (17:50) + 62.11 (18:00 … 21:20:
    # 62.87 − 0.32 − 0.61 + 0.17) + 0.16 + 0.26 + 0.04 (22:10 … 22:30) = 63.18, 31 / 36 = 0.8611
    assert (row.sum_6h, row.completeness_6h) == (63.18, 0.8611)
    # an incomplete window already above 60 has reached extremes Unwetter at least
    assert (row.level, row.level_name) == (4, "extremes Unwetter")


def test_the_real_outage_is_undetermined_never_no_heavy_rain(flood):
    # no row from 2024-06-03T00:00 to 2024-08-11T23:50: 70 days = 10,080 intervals on the grid
    outage = flood.loc["2024-06-03T00:00Z":"2024-08-11T23:50Z"]
    assert len(outage) == 10080 and outage.precipitation.isna().all()
    deep = at(flood, "2024-07-01T12:00Z")
    assert pd.isna(deep.sum_1h) and pd.isna(deep.sum_6h) and deep.completeness_72h == 0
    assert pd.isna(deep.level) and deep.level_name == "unbestimmt"
    # back on 2024-08-12, dry: 00:00 alone is 1 of 6 (1 h) and 1 of 36 (6 h) values
    back = at(flood, "2024-08-12T00:00Z")
    assert (back.sum_1h, back.completeness_1h, back.completeness_6h) == (0.0, 0.1667, 0.0278)
    assert back.level_name == "unbestimmt"
    # 6 h ending 05:40 = 23:50 (absent) + 00:00 … 05:40: 35 / 36 → still undetermined;
    # 6 h ending 05:50 = 00:00 … 05:50, all 36 present and 0.00: the first "kein Starkregen"
    assert at(flood, "2024-08-12T05:40Z").level_name == "unbestimmt"
    dry = at(flood, "2024-08-12T05:50Z")
    assert (dry.sum_6h, dry.completeness_6h, dry.level, dry.level_name) == (
        0.0, 1.0, 0, "kein Starkregen")


def test_a_real_burst_at_the_files_first_row_is_markant_though_its_6h_window_is_short():
    windows = all_windows(real_series(BURST))  # file lines 1–154: 2023-07-29T22:30 …
    # 1 h ending 23:30 = 22:40, 22:50, 23:00 (0.00) + 3.74 + 9.49 + 2.51 = 15.74 > 15
    burst = at(windows, "2023-07-29T23:30Z")
    assert (burst.sum_1h, burst.completeness_1h) == (15.74, 1.0)
    # 6 h = 22:30 … 23:30: 7 of 36 values — incomplete, yet 15.74 in 1 h is markant already
    assert (burst.completeness_6h, burst.level, burst.level_name) == (0.1944, 2, "markant")
    # at 00:20 no window exceeds a limit: 1 h = 23:30 … 00:20 = 2.51 + 1.21 + 1.77 + 0.33
    # + 0.34 + 0.16 = 6.32; 6 h = 22:30 … 00:20 (12 / 36) = 3.74 + 9.49 + 6.32 = 19.55 ≤ 20;
    # the 6 h window lacks 24 values, so it is undetermined, not "kein Starkregen"
    after = at(windows, "2023-07-30T00:20Z")
    assert (after.sum_1h, after.sum_6h, after.completeness_6h) == (6.32, 19.55, 0.3333)
    assert pd.isna(after.level) and after.level_name == "unbestimmt"


def test_the_real_night_of_the_dst_change_has_144_values_per_24_utc_hours():
    series = real_series(DST)  # header + file lines 12971–13258: 2023-10-28T00:00 … 29T23:50
    windows = all_windows(series)
    # clocks went back on 2023-10-29 at 03:00 CEST = 01:00 UTC: the local day had 25 hours
    # (150 intervals); the file and the windows are UTC: 144 rows on the 29th, none repeated
    day = windows.loc["2023-10-29T00:00Z":"2023-10-29T23:50Z"]
    assert len(day) == 144 and day.index.is_unique
    # 24 h ending 2023-10-29T23:50 = the UTC day: non-zero only 19:50 0.36 and 20:20 0.18
    # → 0.36 + 0.18 = 0.54, 144 / 144 values
    last = at(windows, "2023-10-29T23:50Z")
    assert (last.sum_24h, last.completeness_24h) == (0.54, 1.0)
    # local midnight 30.10. 00:00 CET = 2023-10-29T23:00Z: its 24 h window is still 24 UTC
    # hours (28T23:10Z … 29T23:00Z, 144 values), not the 25-hour local day
    midnight = at(windows, "2023-10-29T23:00Z")
    assert (midnight.sum_24h, midnight.completeness_24h) == (0.54, 1.0)
    # displayed in local time: the 1 h window ending 00:50Z at 02:50 CEST, the next one
    # (01:00Z) at 02:00 CET — the clock went back, the windows did not
    shown = {at: local_time(pd.Timestamp(at), "Europe/Berlin") for at in (
        "2023-10-29T00:50Z", "2023-10-29T01:00Z", "2023-10-29T01:50Z", "2023-10-29T23:00Z")}
    assert shown == {"2023-10-29T00:50Z": "29.10.2023 02:50 MESZ",
                     "2023-10-29T01:00Z": "29.10.2023 02:00 MEZ",
                     "2023-10-29T01:50Z": "29.10.2023 02:50 MEZ",  # the repeated hour, told apart
                     "2023-10-29T23:00Z": "30.10.2023 00:00 MEZ"}
    # 72 h ending 29T23:50 holds the 48 h of the excerpt: 288 / 432 = 0.6667
    assert last.completeness_72h == 0.6667 and (day.level == 0).all()


def test_a_real_late_value_changes_only_the_windows_that_hold_it():
    series = real_series(FLOOD)
    late = series.timestamp == pd.Timestamp("2024-06-02T20:40Z")  # 10.19 mm, delivered late
    before, after = all_windows(series[~late]), all_windows(series)
    columns = ["precipitation", "sum_1h", "sum_6h", "sum_24h", "sum_72h", "completeness_1h",
               "completeness_6h", "completeness_24h", "completeness_72h", "level"]
    differs = (before[columns].astype("Float64").fillna(-1)
               != after[columns].astype("Float64").fillna(-1)).any(axis=1)
    # the windows holding 20:40: those ending 20:40 … 20:40 + 72 h − 10 min (432 of 10,368)
    holding = pd.date_range("2024-06-02T20:40Z", periods=432, freq="10min")
    assert list(after.index[differs]) == list(holding)
    # the incremental run recomputes exactly those, with the values of a full run
    rerun = compute_windows(series, TEN, {STATION: [(ns("2024-06-02T20:40Z"),
                                                     ns("2024-06-02T20:50Z"))]},
                            ns("2024-08-12T23:50Z"), config()).rows.set_index("timestamp")
    assert list(rerun.index) == list(holding)
    pd.testing.assert_frame_equal(rerun[columns], after.loc[holding, columns],
                                  check_freq=False)
    # by hand: without 20:40 the 1 h ending 21:10 is 36.20 − 10.19 = 26.01 (5 / 6 values) and
    # the 6 h 62.87 − 10.19 = 52.68 > 35: Unwetter; with it extremes Unwetter (6 h > 60)
    early = at(before, "2024-06-02T21:10Z")
    assert (early.sum_1h, early.completeness_1h, early.sum_6h) == (26.01, 0.8333, 52.68)
    assert (early.level, at(after, "2024-06-02T21:10Z").level) == (3, 4)
