"""Conditional GET: a run whose source files have not changed downloads nothing (304 Not Modified).

DWD CDC on its recordings (validators CONSTRUCTED, see tests/recordings/dwd/README.md); the
`tabular` source type on the REAL LfULG air-quality files served with validators constructed here.
"""

from __future__ import annotations

import json
import shutil

import pytest

from odp.errors import SourceError
from odp.extract import STAGING_SCHEMA, extract
from odp.sources.http import HttpSettings, SourceClient
from odp.spec import load_dataset
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project
from tests.unit.source_env import source_env

HOURLY = "precipitation-dresden-hourly"
DWD = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate"
BASE = f"{DWD}/hourly/precipitation/recent"
LIST = f"{BASE}/RR_Stundenwerte_Beschreibung_Stationen.txt"
ZIPS = [f"{BASE}/stundenwerte_RR_{s}_akt.zip" for s in ("01048", "01050", "01051")]


def _recorded(url: str, scenario: str | None = None) -> dict[str, str]:
    """The headers recordings.json gives `url` (the entry of `scenario`, else the unscoped one)."""
    entries = json.loads((RECORDINGS / "dwd" / "recordings.json").read_text())
    hits = [e for e in entries if e["request"]["url"] == url]
    scoped = [e for e in hits if e.get("scenario") == scenario] or hits
    return scoped[0]["response"]["headers"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "2")
    yield from source_env(tmp_path, monkeypatch, [HOURLY])


def _hourly(env):
    return load_dataset(env["names"][HOURLY], env["root"])


def _dwd(env) -> list:
    return [r for r in env["server"].requests if "opendata.dwd.de" in r.url]


# --- DWD CDC -----------------------------------------------------------------------------------


def test_second_run_same_scenario_sends_validators_gets_304_and_no_rows(env):
    ds = _hourly(env)
    assert extract(ds, env["state"]).new_rows == 165
    first = _dwd(env)
    assert [r.if_none_match for r in first] == [None] * 4  # first run: nothing to send
    env["server"].clear_requests()

    again = extract(ds, env["state"])
    served = _dwd(env)
    assert [r.status for r in served] == [304] * 4  # the station list and the three zips
    for request, url in zip(served, [LIST, *ZIPS], strict=True):
        assert request.if_none_match == _recorded(url)["ETag"]
        assert request.if_modified_since == _recorded(url)["Last-Modified"]
    assert sum(r.body_bytes for r in served) == 0
    assert again.new_rows == 0 and len(again.table) == 165  # staging as it was


def test_next_scenario_downloads_changed_zips_and_yields_new_rows(env):
    ds = _hourly(env)
    extract(ds, env["state"])
    extract(ds, env["state"])  # 304 throughout: the incremental state must stay as it is
    env["server"].scenario = "2024-11-22"
    env["server"].clear_requests()

    grown = extract(ds, env["state"])
    assert [r.status for r in _dwd(env)] == [304, 200, 200, 200]  # the list did not change
    assert [r.if_none_match for r in _dwd(env)[1:]] == [_recorded(u)["ETag"] for u in ZIPS]
    assert grown.new_rows == 3 * 24 and len(grown.table) == 3 * 79  # 2024-11-21T07 … 22T06
    new = grown.table[grown.table.timestamp > "2024-11-21T06:00:00Z"]
    # station names from the rows of the station list kept in state (the list was not sent)
    assert set(new.station_name) == {"Dresden-Klotzsche", "Dresden-Hosterwitz", "Dresden-Strehlen"}
    env["server"].clear_requests()

    assert extract(ds, env["state"]).new_rows == 0
    served = _dwd(env)
    assert [r.status for r in served] == [304] * 4
    assert [r.if_none_match for r in served[1:]] == [
        _recorded(u, "2024-11-22")["ETag"] for u in ZIPS
    ]  # the validators of the 200s replaced the first ones


def test_failed_run_keeps_no_validators(env):
    ds = _hourly(env)
    extract(ds, env["state"])
    env["server"].scenario = "2024-11-22"
    env["server"].fail_next(ZIPS[2], [500, 500])  # after 01048 and 01050 came with 200
    with pytest.raises(SourceError, match=r"01051_akt.zip answered HTTP 500 \(after 2 attempts"):
        extract(ds, env["state"])
    assert [r.status for r in _dwd(env)][-4:] == [200, 200, 500, 500]
    env["server"].clear_requests()

    retry = extract(ds, env["state"])
    served = _dwd(env)
    # the failed run's validators (and rows) were not kept: all three zips come again
    assert [r.status for r in served] == [304, 200, 200, 200]
    assert [r.if_none_match for r in served[1:]] == [_recorded(u)["ETag"] for u in ZIPS]
    assert retry.new_rows == 3 * 24


def test_first_run_that_failed_sends_no_validators_next_time(env):
    ds = _hourly(env)
    env["server"].fail_next(ZIPS[2], [503, 503])
    with pytest.raises(SourceError, match="HTTP 503"):
        extract(ds, env["state"])
    env["server"].clear_requests()
    assert extract(ds, env["state"]).new_rows == 165
    assert [(r.status, r.if_none_match) for r in _dwd(env)] == [(200, None)] * 4


def test_no_validators_sent_when_staging_holds_no_rows(env):
    ds = _hourly(env)
    extract(ds, env["state"])
    staging = env["state"] / "staging" / f"{ds.table_name}.duckdb"
    import duckdb

    with duckdb.connect(str(staging)) as con:  # e.g. an operator emptied staging
        con.execute(f'delete from {STAGING_SCHEMA}."{ds.table_name}"')
    env["server"].clear_requests()
    extract(ds, env["state"])
    assert [(r.status, r.if_none_match) for r in _dwd(env)] == [(200, None)] * 4


def test_client_honours_validators_of_the_exact_url_only_and_a_200_replaces_them(env):
    client = SourceClient("x", HttpSettings())
    other = {"etag": _recorded(ZIPS[0])["ETag"]}
    validators = {ZIPS[0]: other}
    assert client.get_bytes_if_changed(ZIPS[1], validators)  # ZIPS[0]'s validators not sent
    assert env["server"].requests[-1].if_none_match is None
    assert validators[ZIPS[1]] == {
        "etag": _recorded(ZIPS[1])["ETag"],
        "last_modified": _recorded(ZIPS[1])["Last-Modified"],
    }
    assert client.get_bytes_if_changed(ZIPS[0], validators) is None  # 304: kept
    assert validators[ZIPS[0]] == other
    validators[ZIPS[0]] = {"etag": '"stale"'}
    assert client.get_bytes_if_changed(ZIPS[0], validators)  # other tag: 200, replaced
    assert validators[ZIPS[0]]["etag"] == _recorded(ZIPS[0])["ETag"]


# --- tabular by URL ----------------------------------------------------------------------------

AIR = "air-quality-dresden"
GH = "https://raw.githubusercontent.com/offenesdresden/Luftqualitaet-data"
NORD = f"{GH}/00be7ee8efd01954bbf73458ffdc11929ac68e0c/joint/2018/12/Dresden-Nord.csv"
BERG = f"{GH}/33af23a767377cb18847df7a2d6b1c3449e11039/joint/2018/12/Dresden-Bergstraße.csv"


@pytest.fixture
def air(tmp_path, monkeypatch):
    """The REAL files with CONSTRUCTED validators; scenario "rewritten": Nord has a new ETag."""
    folder = tmp_path / "recordings" / "air"
    folder.mkdir(parents=True)

    def entry(url: str, body: str, etag: str, scenario: str | None = None) -> dict:
        shutil.copy(RECORDINGS / "airquality_sachsen" / body, folder / body)
        headers = {"Content-Type": "text/plain; charset=utf-8", "ETag": etag}
        out = {"request": {"url": url}, "response": {"headers": headers, "body_file": body}}
        return {**out, "scenario": scenario} if scenario else out

    manifest = [
        entry(NORD, "joint_2018-12_Dresden-Nord.csv", '"nord-1"'),
        entry(BERG, "joint_2018-12_Dresden-Bergstrasse.csv", '"berg-1"'),
        entry(NORD, "joint_2018-12_Dresden-Nord.csv", '"nord-2"', "rewritten"),
    ]
    (folder / "recordings.json").write_text(json.dumps(manifest))
    root, names = make_project(tmp_path, [AIR])
    monkeypatch.setenv("ODP_PROJECT", str(root))
    with ReplayServer(tmp_path / "recordings") as server:
        monkeypatch.setenv("ODP_REPLAY_URL", server.url)
        yield {
            "ds": load_dataset(names[AIR], root),
            "server": server,
            "state": tmp_path / "st",
            "root": root,
            "definition": root / "pipelines" / f"{names[AIR]}.toml",
        }


def test_tabular_unchanged_files_download_nothing_and_staging_stays(air):
    first = extract(air["ds"], air["state"])
    rows = len(first.table)
    assert first.new_rows == rows > 0 and set(first.table.station) == {
        "Dresden-Nord",
        "Dresden-Bergstraße",
    }
    air["server"].clear_requests()

    again = extract(air["ds"], air["state"])
    served = air["server"].requests
    assert [(r.status, r.if_none_match) for r in served] == [(304, '"nord-1"'), (304, '"berg-1"')]
    assert sum(r.body_bytes for r in served) == 0
    # a "replace" table that receives nothing would be emptied by dlt: it must stay as it was
    assert again.new_rows == 0 and len(again.table) == rows


def test_tabular_one_changed_file_reads_every_file_again(air):
    rows = len(extract(air["ds"], air["state"]).table)
    air["server"].scenario = "rewritten"
    air["server"].clear_requests()

    changed = extract(air["ds"], air["state"])
    served = [(r.status, r.if_none_match) for r in air["server"].requests]
    # Nord changed; Bergstraße did not, but a full refresh needs it: downloaded again
    assert served == [(200, '"nord-1"'), (304, '"berg-1"'), (200, None)]
    # … and found the same bytes under the new ETag (same content hash): nothing parsed again,
    # staging keeps the rows it holds
    assert changed.new_rows == 0 and len(changed.table) == rows
    assert set(changed.table.station) == {"Dresden-Nord", "Dresden-Bergstraße"}
    air["server"].clear_requests()
    extract(air["ds"], air["state"])
    assert [r.status for r in air["server"].requests] == [304, 304]


def test_tabular_changed_source_configuration_reads_the_files_again(air):
    extract(air["ds"], air["state"])
    toml = air["definition"]
    toml.write_text(toml.read_text().replace('station = "Dresden-Nord"', 'station = "DD-Nord"'))
    air["server"].clear_requests()

    ds = load_dataset(air["ds"].name, air["root"])
    again = extract(ds, air["state"])
    assert [(r.status, r.if_none_match) for r in air["server"].requests] == [(200, None)] * 2
    assert set(again.table.station) == {"DD-Nord", "Dresden-Bergstraße"}
