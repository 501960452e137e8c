"""PEGELONLINE gauges of a water (W and Q, gauge zero) against recorded responses."""

from __future__ import annotations

import json

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

NAME = "elbe-gauges-saxony"
BASE = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
RIESA = "b04b739d-7ffa-41ee-9eb9-95cb1b4ef508"
HERE = RECORDINGS / "pegelonline_gauges"


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from source_env(tmp_path, monkeypatch, [NAME], scenario="2024-11-21")


def _dataset(env):
    return load_dataset(env["names"][NAME], env["root"])


def test_all_saxon_gauges_with_w_q_and_gauge_zero(env):
    table = extract(_dataset(env), env["state"]).table
    counts = table.groupby("station_name").size().to_dict()
    assert counts == {"DRESDEN": 2885, "MEISSEN": 96, "PIRNA": 96, "RIESA": 96, "SCHÖNA": 96}
    assert "MÜHLBERG" not in counts  # on the Elbe, but not configured (Brandenburg)
    # Values read by hand from the recordings (local +01:00 → UTC).
    w = json.loads((HERE / "m_501110_W_2024-11-21.json").read_text())
    q = json.loads((HERE / "m_501110_Q_2024-11-21.json").read_text())
    assert w[-1] == {"timestamp": "2024-11-21T08:00:00+01:00", "value": 128.0}
    row = table[(table.station_uuid == RIESA) & (table.timestamp == "2024-11-21T07:00:00Z")]
    assert q[-1] == {"timestamp": "2024-11-21T08:00:00+01:00", "value": 74.5}
    assert row.iloc[0]["water_level"] == "128.0" and row.iloc[0]["discharge"] == "74.5"
    assert row.iloc[0]["gauge_zero"] == "90.06" and row.iloc[0]["km"] == "108.4"
    # Pirna measures no discharge: null, never 0.
    pirna = table[table.station_name == "PIRNA"]
    assert pirna["discharge"].isna().all() and pirna["water_level"].notna().all()
    dresden = table[table.station_name == "DRESDEN"]
    assert set(dresden["gauge_zero"]) == {"102.68"}


def test_second_run_asks_from_the_last_timestamp_and_adds_only_new_rows(env):
    ds = _dataset(env)
    assert extract(ds, env["state"]).new_rows == 2885 + 4 * 96
    server = env["server"]
    server.scenario = "2024-11-22"
    server.clear_requests()
    newer = extract(ds, env["state"])
    assert newer.new_rows == 5 * 96 and len(newer.table) == 2885 + 4 * 96 + 5 * 96
    asked = [r.url for r in server.requests if "measurements" in r.url]
    assert len(asked) == 8 and all("start=2024-11-21T07%3A00%3A00Z" in u for u in asked)
    assert not newer.table.duplicated(["station_uuid", "timestamp"]).any()


def test_retries_a_5xx_then_succeeds(env):
    url = f"{BASE}/stations/{RIESA}/Q/measurements.json"
    env["server"].fail_next(url, [503, 502])
    assert extract(_dataset(env), env["state"]).new_rows == 2885 + 4 * 96
    statuses = [r.status for r in env["server"].requests if f"{RIESA}/Q" in r.url]
    assert statuses == [503, 502, 200]


def test_malformed_measurements_name_dataset_and_url(env):
    env["server"].override(f"{BASE}/stations/{RIESA}/W/measurements.json", 200, b'{"oops"')
    with pytest.raises(SourceError, match=r"elbe-gauges-saxony: .*RIESA|malformed JSON") as err:
        extract(_dataset(env), env["state"])
    assert "\n" not in str(err.value) and RIESA in str(err.value)


def test_a_unit_other_than_the_schema_is_refused(env):
    stations = json.loads((HERE / "stations_elbe_timeseries.json").read_text())
    for station in stations:
        for series in station["timeseries"]:
            if series["shortname"] == "W":
                series["unit"] = "m"
    env["server"].override(f"{BASE}/stations.json", 200, json.dumps(stations).encode())
    with pytest.raises(SourceError, match=r"series W comes in 'm', .* water_level is in 'cm'"):
        extract(_dataset(env), env["state"])
