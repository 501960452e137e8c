"""Source types against the replay server: the production client, recorded responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.json_records import RecordShape, flatten
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

STATION = "https://www.pegelonline.wsv.de/webservices/rest-api/v2/stations/70272185-b2b3-4178-96b8-43bea330dcae"


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    names = ["elbe-water-level-dresden", "schools-dresden"]
    yield from source_env(tmp_path, monkeypatch, names, scenario="2024-11-20")


def test_pegelonline_converts_local_times_to_utc_across_dst(env):
    ds = load_dataset(env["names"]["elbe-water-level-dresden"], env["root"])
    table = extract(ds, env["state"]).table.sort_values("timestamp")
    raw = json.loads((RECORDINGS / "pegelonline" / "measurements_2024-11-20.json").read_text())
    assert len(table) == len(raw) == 2885
    # 2024-10-27 02:30+02:00 and 02:30+01:00 are different instants, one hour apart.
    stamps = set(table["timestamp"])
    assert {"2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"} <= stamps
    assert table["timestamp"].is_unique
    first = table.iloc[0]
    assert first["timestamp"] == "2024-10-21T06:00:00Z"
    assert first["water_level"] == str(raw[0]["value"])
    assert first["station_name"] == "DRESDEN" and first["water"] == "ELBE"


def test_pegelonline_rerun_asks_from_last_timestamp_and_never_duplicates(env):
    ds = load_dataset(env["names"]["elbe-water-level-dresden"], env["root"])
    assert extract(ds, env["state"]).new_rows == 2885
    env["server"].clear_requests()
    again = extract(ds, env["state"])
    assert again.new_rows == 0 and len(again.table) == 2885
    asked = [r.url for r in env["server"].requests if "measurements" in r.url]
    assert asked == [asked[0]] and "start=2024-11-20T07%3A00%3A00Z" in asked[0]
    env["server"].scenario = "2024-11-21"
    newer = extract(ds, env["state"])
    assert newer.new_rows == 96 and len(newer.table) == 2885 + 96


def test_retry_honours_retry_after_then_succeeds(env):
    client = SourceClient("x", HttpSettings(timeout=5, max_attempts=3, backoff_factor=0.01))
    env["server"].fail_next(STATION + ".json", [429], retry_after=1)
    station = client.get_json(STATION + ".json")
    assert station["shortname"] == "DRESDEN"
    statuses = [r.status for r in env["server"].requests]
    assert statuses == [429, 200]


def test_http_error_after_retries_names_dataset_and_url(env):
    client = SourceClient("my-dataset", HttpSettings(timeout=5, max_attempts=2, backoff_factor=0))
    env["server"].fail_next(STATION + ".json", [500, 500])
    with pytest.raises(SourceError, match=r"my-dataset: .*stations/.*\.json answered HTTP 500"):
        client.get_json(STATION + ".json")


def test_unknown_station_record_is_malformed(env):
    env["server"].override(STATION + ".json", 200, b"[]", "application/json")
    ds = load_dataset(env["names"]["elbe-water-level-dresden"], env["root"])
    with pytest.raises(SourceError, match="malformed station record"):
        extract(ds, env["state"])


def test_json_records_flattens_one_row_per_building(env):
    ds = load_dataset(env["names"]["schools-dresden"], env["root"])
    table = extract(ds, env["state"]).table
    records = json.loads((RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json")
                         .read_text(encoding="utf-8"))
    buildings = [b for r in records for b in r["buildings"] if b["community_key"] == "14612000"]
    assert len(table) == len(buildings)
    assert set(table["community_key"]) == {"14612000"}
    multi = next(r for r in records if len(r["buildings"]) > 1
                 and r["buildings"][1]["community_key"] == "14612000")
    rows = table[table["school_id"] == str(multi["id"])].sort_values("building_no")
    assert list(rows["building_no"]) == [str(i + 1) for i in range(len(rows))]
    assert rows.iloc[1]["street"] == multi["buildings"][1]["street"]


def test_json_records_rejects_a_non_list():
    with pytest.raises(SourceError, match="expected a JSON list of objects"):
        flatten({"schools": []}, RecordShape(), "file.json")


def _with_source(name: str, **change) -> object:
    import dataclasses

    from tests.helpers import REPO

    spec = load_dataset(name, REPO)
    return dataclasses.replace(spec, source={**spec.source, **change})


@pytest.mark.parametrize("change, message", [
    ({"stationn": "x"}, r"\[source\] unknown key 'stationn' \(known: base_url, initial_start, "
                        r"station, timeseries\)"),
    ({"timeseries": 7}, r"\[source\] timeseries: input should be a valid string \(got 7\)"),
    ({"initial_start": ["P30D"]}, r"\[source\] initial_start: input should be a valid string"),
])
def test_a_source_table_that_does_not_fit_its_type_s_parameters_names_file_and_key(change,
                                                                                   message):
    from odp.errors import ConfigError
    from odp.sources import make_resource

    with pytest.raises(ConfigError, match=r"elbe-water-level-dresden\.toml: " + message):
        make_resource(_with_source("elbe-water-level-dresden", **change))


def test_a_source_without_a_required_parameter_says_which_and_shared_keys_reach_http():
    from odp.errors import ConfigError
    from odp.sources import make_resource, source_arguments
    from odp.sources.pegelonline import pegelonline_measurements

    spec = _with_source("elbe-water-level-dresden")
    spec.source.pop("station")
    with pytest.raises(ConfigError, match=r"\[source\] needs 'station'"):
        make_resource(spec)
    args = source_arguments(_with_source("elbe-water-level-dresden", timeout=7, deadline=9),
                            pegelonline_measurements)
    assert args["http"].timeout == 7 and args["http"].deadline == 9
    assert args["station"] == "70272185-b2b3-4178-96b8-43bea330dcae"
    assert set(args) == {"station", "timeseries", "initial_start", "base_url", "http"}
