"""Tests of the replay server (odp_dev.replay) and of the PEGELONLINE / schools recordings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from odp_dev.replay import ReplayServer, replay_url

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
PEGEL_DIR = RECORDINGS / "pegelonline"
BASE = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
UUID = "70272185-b2b3-4178-96b8-43bea330dcae"
MEASUREMENTS = f"{BASE}/stations/{UUID}/W/measurements.json"
SCHOOLS = (
    "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/"
    "apps/web/src/data/schools.json"
)
DST_END_UTC = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 03:00 CEST → 02:00 CET


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(RECORDINGS) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: ReplayServer) -> Iterator[None]:
    yield
    server.clear_faults()
    server.clear_requests()
    server.scenario = None


def get(server: ReplayServer, remote_url: str, **kwargs) -> requests.Response:
    return requests.get(server.url_for(remote_url), timeout=kwargs.pop("timeout", 10), **kwargs)


# --- URL mapping ---------------------------------------------------------------------------


def test_replay_url_keeps_host_path_and_query() -> None:
    got = replay_url(f"{BASE}/stations.json?ids=Pirna&x=1", "http://127.0.0.1:8765/")
    assert got == (
        "http://127.0.0.1:8765/www.pegelonline.wsv.de/webservices/rest-api/v2/"
        "stations.json?ids=Pirna&x=1"
    )
    assert replay_url("https://h.example/a", "http://s:1") == "http://s:1/h.example/a"
    with pytest.raises(ValueError):
        replay_url("/relative/path", "http://s:1")


def test_url_for_uses_running_port(server: ReplayServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert (
        server.url_for(f"{BASE}/x")
        == f"{server.url}/www.pegelonline.wsv.de/webservices/rest-api/v2/x"
    )


# --- VCR cassettes -------------------------------------------------------------------------


def test_vcr_cassette_served_with_real_status_headers_body(server: ReplayServer) -> None:
    cassette = yaml.safe_load((PEGEL_DIR / "vcr_2014_stations_json_ids_Pirna.yml").read_text())
    recorded = cassette["http_interactions"][0]["response"]
    resp = get(server, f"{BASE}/stations.json", params={"ids": "Pirna"})
    assert resp.status_code == 200
    assert resp.content == recorded["body"]["string"].encode()
    assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert resp.headers["ETag"] == recorded["headers"]["ETag"][0]
    assert resp.headers["Date"] == "Fri, 16 May 2014 19:32:56 GMT"
    assert resp.headers["Content-Length"] == "329"
    assert [s["shortname"] for s in resp.json()] == ["PIRNA"]


def test_vcr_nonexisting_station_is_200_empty_list(server: ReplayServer) -> None:
    resp = get(server, f"{BASE}/stations.json?ids=Nonexisting")
    assert resp.status_code == 200
    assert resp.text == "[]"


# --- query matching ------------------------------------------------------------------------


def test_query_matching_prefers_most_specific_entry(server: ReplayServer) -> None:
    plain = get(server, f"{BASE}/stations/{UUID}.json")
    with_ts = get(server, f"{BASE}/stations/{UUID}.json?includeTimeseries=true&foo=ignored")
    assert plain.status_code == with_ts.status_code == 200
    assert "timeseries" not in plain.json()
    assert with_ts.json()["timeseries"][0]["shortname"] == "W"
    # the real 2014 list answers stations.json without ids; ids=Pirna picks the cassette
    assert len(get(server, f"{BASE}/stations.json").json()) == 605
    assert len(get(server, f"{BASE}/stations.json?ids=Pirna").json()) == 1
    # cassette params must match exactly: another ids value is not served by a cassette
    assert len(get(server, f"{BASE}/stations.json?ids=Dresden").json()) == 605


def test_station_metadata_keeps_real_2014_record(server: ReplayServer) -> None:
    body = get(server, f"{BASE}/stations/{UUID}.json?includeTimeseries=true").json()
    assert (body["number"], body["km"], body["agency"]) == ("501060", 55.63, "WSA DRESDEN")
    assert (body["longitude"], body["latitude"]) == (13.738831783620387, 51.05445972641962)
    assert body["timeseries"][0]["gaugeZero"]["value"] == 102.68


# --- scenarios -----------------------------------------------------------------------------


def test_scenarios_switch_the_measurement_series(server: ReplayServer) -> None:
    server.scenario = "2024-11-20"
    day1 = get(server, f"{MEASUREMENTS}?start=P30D").json()
    server.scenario = "2024-11-21"
    day2 = get(server, f"{MEASUREMENTS}?start=2024-11-20T08:00:00%2B01:00").json()
    assert day1[-1]["timestamp"] == "2024-11-20T08:00:00+01:00"
    assert day2[-1]["timestamp"] == "2024-11-21T08:00:00+01:00"


def test_scenario_entries_hidden_without_active_scenario(server: ReplayServer) -> None:
    assert get(server, f"{MEASUREMENTS}?start=P30D").status_code == 404
    server.scenario = "2024-11-20"
    assert get(server, MEASUREMENTS).status_code == 404  # start is required by the manifest


# --- 404 -----------------------------------------------------------------------------------


def test_unknown_url_is_404_naming_the_url(server: ReplayServer, caplog) -> None:
    caplog.set_level("WARNING", logger="odp_dev.replay")
    resp = get(server, "https://unknown.example/nothing?a=1")
    assert resp.status_code == 404
    assert resp.json()["url"] == "https://unknown.example/nothing?a=1"
    assert "unknown.example/nothing" in caplog.text


# --- fault injection -----------------------------------------------------------------------


def test_fail_next_then_recording(server: ReplayServer) -> None:
    server.fail_next(f"{BASE}/stations.json", [503, 503], retry_after=7)
    first = get(server, f"{BASE}/stations.json?ids=Pirna")
    second = get(server, f"{BASE}/stations.json?ids=Pirna")
    third = get(server, f"{BASE}/stations.json?ids=Pirna")
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["Retry-After"] == second.headers["Retry-After"] == "7"
    assert "Retry-After" not in third.headers
    assert third.json()[0]["shortname"] == "PIRNA"


def test_fail_next_without_retry_after_and_other_prefix_untouched(server: ReplayServer) -> None:
    server.fail_next(f"{BASE}/stations/", [500])
    assert get(server, f"{BASE}/stations.json?ids=Pirna").status_code == 200
    resp = get(server, f"{BASE}/stations/{UUID}.json")
    assert resp.status_code == 500
    assert "Retry-After" not in resp.headers
    assert get(server, f"{BASE}/stations/{UUID}.json").status_code == 200


def test_delay_next_makes_client_time_out(server: ReplayServer) -> None:
    server.delay_next(f"{BASE}/stations.json", 1.5)
    with pytest.raises(requests.Timeout):
        get(server, f"{BASE}/stations.json?ids=Pirna", timeout=0.3)
    assert get(server, f"{BASE}/stations.json?ids=Pirna", timeout=5).status_code == 200


def test_override_returns_malformed_body_until_cleared(server: ReplayServer) -> None:
    server.override(f"{BASE}/stations.json", 200, b'[{"uuid": ', "application/json")
    for _ in range(2):
        resp = get(server, f"{BASE}/stations.json?ids=Pirna")
        assert resp.content == b'[{"uuid": '
        with pytest.raises(ValueError):
            resp.json()
    server.clear_faults()
    assert get(server, f"{BASE}/stations.json?ids=Pirna").json()[0]["shortname"] == "PIRNA"


# --- conditional requests ------------------------------------------------------------------


def test_if_none_match_with_the_recorded_etag_gets_304_without_body(server: ReplayServer) -> None:
    cassette = yaml.safe_load((PEGEL_DIR / "vcr_2014_stations_json_ids_Pirna.yml").read_text())
    etag = cassette["http_interactions"][0]["response"]["headers"]["ETag"][0]  # REAL
    url = f"{BASE}/stations.json?ids=Pirna"
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        resp = get(server, url, headers={"If-None-Match": sent})
        assert (resp.status_code, resp.content) == (304, b""), sent
        assert resp.headers["ETag"] == etag and "Content-Type" not in resp.headers
        assert resp.headers["Cache-Control"].startswith("no-transform")  # repeated from the 200
    changed = get(server, url, headers={"If-None-Match": '"c79461"'})
    assert changed.status_code == 200 and changed.json()[0]["shortname"] == "PIRNA"
    logged = server.requests
    assert [(r.status, r.if_none_match) for r in logged[-2:]] == [(304, "*"), (200, '"c79461"')]
    assert logged[-2].body_bytes == 0 and logged[-1].body_bytes == len(changed.content)


def test_if_modified_since_and_the_precedence_of_if_none_match(tmp_path: Path) -> None:
    stamp = "Thu, 21 Nov 2024 08:04:12 GMT"
    manifest = [
        {
            "request": {"url": "https://h.example/file.zip"},
            "response": {"headers": {"ETag": '"a-1"', "Last-Modified": stamp}, "body": "zip"},
        },
        {"request": {"url": "https://h.example/plain"}, "response": {"body": "no validators"}},
        {"request": {"url": "https://h.example/gone"}, "response": {"status": 404, "body": "x"}},
    ]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "recordings.json").write_text(json.dumps(manifest))
    with ReplayServer(tmp_path) as srv:

        def status(path: str, **headers: str) -> int:
            url = srv.url_for(f"https://h.example/{path}")
            return requests.get(url, headers=headers, timeout=5).status_code

        assert status("file.zip", **{"If-Modified-Since": stamp}) == 304
        assert status("file.zip", **{"If-Modified-Since": "Fri, 22 Nov 2024 00:00:00 GMT"}) == 304
        assert status("file.zip", **{"If-Modified-Since": "Wed, 20 Nov 2024 00:00:00 GMT"}) == 200
        assert status("file.zip", **{"If-Modified-Since": "yesterday"}) == 200  # unparseable
        both = {"If-None-Match": '"a-0"', "If-Modified-Since": stamp}
        assert status("file.zip", **both) == 200  # If-None-Match decides when sent
        assert status("file.zip") == 200
        assert status("plain", **{"If-None-Match": "*", "If-Modified-Since": stamp}) == 200
        assert status("gone", **{"If-None-Match": "*"}) == 404
        srv.fail_next("https://h.example/file.zip", [503])  # faults come before validators
        assert status("file.zip", **{"If-None-Match": '"a-1"'}) == 503
        head = requests.head(
            srv.url_for("https://h.example/file.zip"), headers={"If-None-Match": '"a-1"'}, timeout=5
        )
        assert head.status_code == 304


# --- request log ---------------------------------------------------------------------------


def test_requests_log(server: ReplayServer) -> None:
    get(server, f"{BASE}/stations.json?ids=Pirna")
    get(server, "https://unknown.example/x")
    logged = [(r.method, r.url, r.status) for r in server.requests]
    assert logged == [
        ("GET", "/www.pegelonline.wsv.de/webservices/rest-api/v2/stations.json?ids=Pirna", 200),
        ("GET", "/unknown.example/x", 404),
    ]


def test_schools_served_under_source_repo_url(server: ReplayServer) -> None:
    resp = get(server, SCHOOLS)
    assert resp.status_code == 200
    assert (
        resp.content
        == (RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json").read_bytes()
    )
    assert len(resp.json()) == 1421


# --- constructed measurement series --------------------------------------------------------


def _load(day: str) -> list[dict]:
    return json.loads((PEGEL_DIR / f"measurements_{day}.json").read_text(encoding="utf-8"))


def _check_series(points: list[dict], first: str, last: str) -> list[datetime]:
    times = [datetime.fromisoformat(p["timestamp"]) for p in points]
    utc = [t.astimezone(UTC) for t in times]
    assert points[0]["timestamp"] == first and points[-1]["timestamp"] == last
    assert all(b - a == timedelta(minutes=15) for a, b in zip(utc, utc[1:], strict=False))
    assert len(set(utc)) == len(utc)
    for t, u in zip(times, utc, strict=True):
        assert t.utcoffset() == timedelta(hours=2 if u < DST_END_UTC else 1), t
    values = [p["value"] for p in points]
    assert all(isinstance(v, float) and v == round(v) and 60 <= v <= 160 for v in values)
    assert max(abs(a - b) for a, b in zip(values, values[1:], strict=False)) <= 3  # smooth
    return utc


def test_constructed_series_is_consistent_across_dst_and_days() -> None:
    day1, day2 = _load("2024-11-20"), _load("2024-11-21")
    utc1 = _check_series(day1, "2024-10-21T08:00:00+02:00", "2024-11-20T08:00:00+01:00")
    utc2 = _check_series(day2, "2024-10-22T08:00:00+02:00", "2024-11-21T08:00:00+01:00")
    assert utc2[0] - utc1[0] == timedelta(hours=24)
    overlap = [p for p in day1 if datetime.fromisoformat(p["timestamp"]) >= utc2[0]]
    assert day2[: len(overlap)] == overlap
    assert len(day2) - len(overlap) == 96
    # local 02:00–02:45 on 2024-10-27 occurs twice: first CEST, then CET
    dst_hour = [p["timestamp"] for p in day1 if p["timestamp"].startswith("2024-10-27T02:")]
    assert dst_hour[0].endswith("+02:00") and dst_hour[-1].endswith("+01:00") and len(dst_hour) == 8


# --- matching rules on a minimal manifest, and the CLI -------------------------------------


def test_active_scenario_beats_unscoped_entry_then_most_params(tmp_path: Path) -> None:
    def entry(body: str, query: dict | None = None, scenario: str | None = None) -> dict:
        req = {"method": "GET", "url": "https://h.example/p", "query": query or {}}
        out = {"request": req, "response": {"status": 200, "body": body}}
        return {**out, "scenario": scenario} if scenario else out

    manifest = [
        entry("plain"),
        entry("two-params", {"a": "1", "b": "*"}),
        entry("scenario-any", scenario="s1"),
        entry("other-scenario", {"a": "1", "b": "2"}, scenario="s2"),
    ]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "recordings.json").write_text(json.dumps(manifest))
    with ReplayServer(tmp_path) as srv:

        def body(url: str) -> str:
            return requests.get(srv.url_for(url), timeout=5).text

        assert body("https://h.example/p?a=1&b=2") == "two-params"
        assert body("https://h.example/p?a=2&b=2") == "plain"
        srv.scenario = "s1"
        assert body("https://h.example/p?a=1&b=2") == "scenario-any"
        srv.scenario = "s2"
        assert body("https://h.example/p?a=1&b=2") == "other-scenario"
        assert body("https://h.example/p?a=1&b=9") == "two-params"


def test_cli_prints_url_and_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "odp_dev.replay", "--dir", str(RECORDINGS), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        resp = requests.get(replay_url(f"{BASE}/stations.json?ids=Nonexisting", url), timeout=5)
        assert (resp.status_code, resp.text) == (200, "[]")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a machine too busy to reap it in time: not the test
            proc.kill()
            proc.wait(timeout=30)
