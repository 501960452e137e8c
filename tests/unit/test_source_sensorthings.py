"""SensorThings API against the real Toronto snapshot (plus constructed pages, see README)."""

from __future__ import annotations

import json

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

NAME = "bikeshare-toronto-sensorthings"
BASE = "https://toronto-bike-snapshot.sensorup.com/v1.0"
HERE = RECORDINGS / "sensorthings"


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from source_env(tmp_path, monkeypatch, [NAME])


def _dataset(env):
    return load_dataset(env["names"][NAME], env["root"])


def test_things_datastreams_observations_with_next_link_paging(env):
    table = extract(_dataset(env), env["state"]).table
    assert table.groupby("datastream_id").size().to_dict() == {"206050": 30, "206051": 120}
    asked = [r.url for r in env["server"].requests]
    assert any("%24skip=100" in u or "$skip=100" in u for u in asked)  # followed @iot.nextLink
    assert not any("count" in u for u in asked)  # never $count
    # Read by hand from the real first page: observation 1595467 at 2017-02-16T21:55:12.233Z,
    # result "23"; Datastream 206051 counts docks ({TOT}); the Thing lies at -79.407224, 43.665876.
    row = table[table.observation_id == "1595467"].iloc[0]
    assert (row["phenomenon_time"], row["result"]) == ("2017-02-16T21:55:12.233Z", "23")
    assert (row["unit_symbol"], row["unit_name"]) == ("{TOT}", "dock count")
    assert (row["longitude"], row["latitude"]) == ("-79.407224", "43.665876")
    assert row["thing_name"] == "7061:Bloor St / Brunswick Ave"
    page = json.loads((HERE / "datastream_206051_observations_page1.json").read_text())
    assert set(page and [o["@iot.id"] for o in page["value"]]) <= set(
        map(int, table.observation_id)
    )


def test_second_run_filters_on_phenomenon_time_and_adds_only_newer(env):
    ds = _dataset(env)
    assert extract(ds, env["state"]).new_rows == 150
    server = env["server"]
    server.scenario = "2024-11-22"
    server.clear_requests()
    again = extract(ds, env["state"])
    assert again.new_rows == 4 and len(again.table) == 154
    asked = [r.url for r in server.requests if "Datastreams(206051)/Observations" in r.url]
    assert "phenomenonTime+gt+2017-02-16T21%3A55%3A12.233Z" in asked[0]


def test_5xx_then_success_on_a_page(env):
    env["server"].fail_next(f"{BASE}/Datastreams(206051)/Observations", [502])
    assert extract(_dataset(env), env["state"]).new_rows == 150


def test_malformed_collection_is_a_one_line_source_error(env):
    env["server"].override(f"{BASE}/Things(206047)/Datastreams", 200, b'{"values": []}')
    with pytest.raises(SourceError, match=r"Datastreams: malformed SensorThings collection"):
        extract(_dataset(env), env["state"])
