"""SensorThings API: the CONSTRUCTED Dresden service (FROST style) whose values are the REAL LfULG
hourly values of December 2018 (tests/recordings/sensorthings_dresden/README.md). Expected values
were read by hand from ../recordings/airquality_sachsen/joint_2018-12_*.csv (MEZ = UTC+1)."""

from __future__ import annotations

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.spec import load_dataset
from odp.validate import validate_batch
from tests.unit.source_env import source_env

NAME = "air-quality-dresden-sensorthings"
BASE = "https://sta.dresden.example/FROST-Server/v1.1"
# Non-empty hourly cells of NO2, O3, PM10_TEOM per station, counted in the CSVs: up to
# 2018-12-16 00:00 MEZ (= 2018-12-15T23:00Z) and after it.
FIRST = {"1": 360, "2": 360, "3": 360, "4": 341, "5": 354, "6": 356}
LATER = {"1": 347, "2": 346, "3": 347, "4": 347, "5": 340, "6": 339}


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from source_env(tmp_path, monkeypatch, [NAME])


def _dataset(env):
    return load_dataset(env["names"][NAME], env["root"])


def _row(table, stream: str, time: str):
    return table[(table.datastream_name == stream) & (table.phenomenon_time == time)]


def test_first_run_reads_every_observation_of_both_stations(env):
    table = extract(_dataset(env), env["state"]).table
    assert table.groupby("datastream_id").size().to_dict() == FIRST
    assert table.phenomenon_time.min() == "2018-12-01T00:00:00.000Z"
    assert table.phenomenon_time.max() == "2018-12-15T23:00:00.000Z"
    # Dresden-Nord, 2018-12-01,01:00 (MEZ): NO2 21 → 2018-12-01T00:00Z
    (row,) = _row(table, "NO2 Dresden-Nord", "2018-12-01T00:00:00.000Z").itertuples()
    assert (row.result, row.unit_symbol, row.thing_name) == ("21", "µg/m³", "Dresden-Nord")
    assert (row.longitude, row.latitude) == ("13.740879", "51.065433")
    # 2018-12-16,00:00 (MEZ) is the last hour of the first run: NO2 19
    (last,) = _row(table, "NO2 Dresden-Nord", "2018-12-15T23:00:00.000Z").itertuples()
    assert last.result == "19"


def test_empty_csv_cells_never_become_observations(env):
    table = extract(_dataset(env), env["state"]).table
    # Dresden-Bergstraße, 2018-12-13,13:00 (MEZ): NO2 and PM10_TEOM empty, O3 15
    hour = "2018-12-13T12:00:00.000Z"
    assert _row(table, "NO2 Dresden-Bergstraße", hour).empty
    assert _row(table, "PM10 Dresden-Bergstraße", hour).empty
    assert _row(table, "O3 Dresden-Bergstraße", hour).result.tolist() == ["15"]
    assert not table.result.isna().any()


def test_paging_follows_every_next_link_and_never_asks_count(env):
    extract(_dataset(env), env["state"])
    asked = [r.url for r in env["server"].requests]
    assert all(r.status == 200 for r in env["server"].requests)
    pages = [u for u in asked if "Datastreams(4)/Observations" in u]
    # 341 observations at $top=100: the first page, then the nextLinks ($skip 100, 200, 300)
    assert len(pages) == 4 and "skip" not in pages[0]
    assert [u.split("$skip=")[1] for u in pages[1:]] == ["100", "200", "300"]
    assert not any("count" in u for u in asked)


def test_second_run_adds_only_newer_observations(env):
    ds = _dataset(env)
    assert extract(ds, env["state"]).new_rows == sum(FIRST.values())
    server = env["server"]
    server.scenario = "2024-11-22"
    server.clear_requests()
    again = extract(ds, env["state"])
    # each Datastream's first page repeats the last seen observation: it is not added again
    assert again.new_rows == sum(LATER.values())
    assert again.table.groupby("datastream_id").size().to_dict() == {
        k: FIRST[k] + LATER[k] for k in FIRST
    }
    assert not again.table.duplicated(["datastream_id", "phenomenon_time"]).any()
    asked = [r.url for r in server.requests if "Datastreams(1)/Observations" in r.url]
    assert "phenomenonTime+gt+2018-12-15T23%3A00%3A00.000Z" in asked[0]
    # 2018-12-16,01:00 (MEZ) NO2 16, 2018-12-30,11:00 (MEZ) NO2 12 at Dresden-Nord
    assert _row(again.table, "NO2 Dresden-Nord", "2018-12-16T00:00:00.000Z").result.item() == "16"
    assert _row(again.table, "NO2 Dresden-Nord", "2018-12-30T10:00:00.000Z").result.item() == "12"


def test_5xx_then_success_on_a_next_link_page(env):
    page3 = f"{BASE}/Datastreams(2)/Observations?$orderby=phenomenonTime%20asc&$top=100&$skip=200"
    env["server"].fail_next(page3, [503, 502])
    assert extract(_dataset(env), env["state"]).new_rows == sum(FIRST.values())
    statuses = [r.status for r in env["server"].requests if page3.endswith(r.url.split("v1.1")[1])]
    assert statuses == [503, 502, 200]


def test_malformed_observation_page_is_a_one_line_source_error(env):
    env["server"].override(f"{BASE}/Datastreams(5)/Observations", 200, b'{"value": [{"x": 1}]}')
    where = r"Datastreams\(5\)/Observations: observation 1: malformed"
    with pytest.raises(SourceError, match=where):
        extract(_dataset(env), env["state"])


def test_ranges_per_pollutant_reject_only_that_pollutants_outliers(env):
    ds = _dataset(env)
    table = extract(ds, env["state"]).table.reset_index(drop=True)
    first = {n: table.index[table.datastream_name == n][0]
             for n in ("NO2 Dresden-Nord", "O3 Dresden-Nord", "PM10 Dresden-Bergstraße")}
    table.loc[list(first.values()), "result"] = ["1200", "190", "1001"]
    result = validate_batch(table, ds, "r1")
    assert result.rejected_rows == 2  # NO2 1200 and PM10 1001 (analyser range 0 … 1000)
    findings = result.findings
    o3 = findings[findings["row"] == first["O3 Dresden-Nord"] + 1]
    assert o3["severity"].tolist() == ["warning"]  # O3 190: above 180, reported only
