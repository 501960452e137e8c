"""The whole chain — extract → validate → georeference → publish — against the real local CKAN,
with sources replayed from recorded responses. Each test works in its own copy of the project
configuration (unique dataset names), so tests never touch the demo's datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
import requests

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, session_org, use_project

pytestmark = pytest.mark.integration

ELBE = "elbe-water-level-dresden"
SCHOOLS = "schools-dresden"
MEASUREMENTS = (
    "https://www.pegelonline.wsv.de/webservices/rest-api/v2/stations/"
    "70272185-b2b3-4178-96b8-43bea330dcae/W/measurements.json"
)
SCHOOLS_URL = (
    "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/apps/web/src/data/"
    "schools.json"
)


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, portal, replay: ReplayServer, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [ELBE, SCHOOLS])
    use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
    yield {"root": root, "names": names, "replay": replay}


def _run(project: dict, name: str):
    root = project["root"]
    return run_dataset(project["names"][name], root, load_city(root))


def _datastore(ckan, package_name: str) -> tuple[dict, dict]:
    package = ckan.action.package_show(id=package_name)
    resource = next(r for r in package["resources"] if r.get("odp_role") == "table")
    return package, ckan.action.datastore_search(resource_id=resource["id"], limit=5)


def test_elbe_publishes_end_to_end_and_a_rerun_changes_nothing(project, ckan):
    first = _run(project, ELBE)
    assert first.status == "ok", first.error
    assert first.extracted == 2885 and first.quarantined == 0
    assert first.inserted == 2885
    name = project["names"][ELBE]
    package, search = _datastore(ckan, name)
    assert package["state"] == "active"
    assert package["organization"]["name"] == session_org("landeshauptstadt-dresden")
    assert package["license_id"] == "dl-de-zero-2.0"
    assert {t["name"] for t in package["tags"]} >= {"Wasserstand", "Elbe"}
    # The validation report's summary closes the description (without the run's time).
    assert "**Validierung**: 2.885 Zeilen geprüft" in package["notes"]
    extras = {e["key"]: e["value"] for e in package["extras"]}
    # Local times across the DST change end up as UTC: first 08:00+02:00, last 08:00+01:00.
    assert extras["temporal_start"] == "2024-10-21T06:00:00Z"
    assert extras["temporal_end"] == "2024-11-20T07:00:00Z"
    assert json.loads(extras["spatial"])["type"] == "Point"
    assert search["total"] == 2885
    types = {f["id"]: f["type"] for f in search["fields"]}
    assert types["timestamp"] == "timestamp" and types["water_level"] == "float8"
    row = search["records"][0]
    assert row["stadtbezirk"] == "Altstadt" and row["easting"] == pytest.approx(411609.46, abs=0.01)

    second = _run(project, ELBE)
    assert second.status == "unchanged", second.error
    assert second.extracted == 0 and second.write_calls == 0
    again = ckan.action.package_show(id=name)
    assert again["metadata_modified"] == package["metadata_modified"]


def test_elbe_incremental_fetches_only_newer_rows(project, ckan):
    replay = project["replay"]
    assert _run(project, ELBE).status == "ok"
    replay.scenario = "2024-11-21"
    replay.clear_requests()
    report = _run(project, ELBE)
    assert report.status == "ok", report.error
    assert report.extracted == 96 and report.inserted == 96 and report.updated == 0
    asked = [r.url for r in replay.requests if "measurements.json" in r.url]
    assert asked and "start=2024-11-20T07%3A00%3A00Z" in asked[0]
    _, search = _datastore(ckan, project["names"][ELBE])
    assert search["total"] == 2885 + 96


def test_schools_full_refresh_writes_only_changed_rows(project, ckan, tmp_path):
    first = _run(project, SCHOOLS)
    assert first.status == "ok", first.error
    published = first.inserted
    assert published == first.valid > 150
    assert _run(project, SCHOOLS).write_calls == 0

    # A new delivery: one school renamed, one school gone.
    records = json.loads((RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json")
                         .read_text(encoding="utf-8"))
    dresden = [r for r in records if r["buildings"][0]["community_key"] == "14612000"]
    renamed, removed = dresden[0], dresden[1]
    renamed["name"] = renamed["name"] + " (umbenannt)"
    records.remove(removed)
    body = json.dumps(records, ensure_ascii=False).encode()
    project["replay"].override(SCHOOLS_URL, 200, body, "application/json")
    report = _run(project, SCHOOLS)
    assert report.status == "ok", report.error
    assert report.updated == len(renamed["buildings"])
    assert report.deleted == len(removed["buildings"]) and report.inserted == 0
    _, search = _datastore(ckan, project["names"][SCHOOLS])
    assert search["total"] == published - len(removed["buildings"])
    hit = ckan.action.datastore_search(
        resource_id=search["resource_id"], filters={"school_id": renamed["id"]}
    )
    assert hit["records"][0]["name"].endswith("(umbenannt)")


def test_source_down_fails_clearly_and_changes_nothing(project, ckan):
    assert _run(project, ELBE).status == "ok"
    name = project["names"][ELBE]
    before = ckan.action.package_show(id=name)["metadata_modified"]
    project["replay"].scenario = "2024-11-21"
    project["replay"].fail_next(MEASUREMENTS, [503] * 5)
    report = _run(project, ELBE)
    assert report.status == "failed" and report.exit_code == 3
    assert "HTTP 503" in report.error and name in report.error and "\n" not in report.error
    assert ckan.action.package_show(id=name)["metadata_modified"] == before
    # The next run, with the source back, completes the work.
    assert _run(project, ELBE).inserted == 96


def test_source_5xx_then_success_is_retried(project):
    project["replay"].fail_next(MEASUREMENTS, [503, 502], retry_after=0)
    report = _run(project, ELBE)
    assert report.status == "ok", report.error
    statuses = [r.status for r in project["replay"].requests if "measurements" in r.url]
    assert statuses == [503, 502, 200]


def test_source_timeout_is_a_clear_error(project, monkeypatch):
    monkeypatch.setenv("ODP_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "1")
    project["replay"].delay_next(MEASUREMENTS, 3)
    report = _run(project, ELBE)
    assert report.exit_code == 3 and "timed out" in report.error


def test_malformed_json_is_a_one_line_error(project):
    project["replay"].override(MEASUREMENTS, 200, b'[{"timestamp": "2024-', "application/json")
    report = _run(project, ELBE)
    assert report.exit_code == 3
    assert "malformed JSON" in report.error and project["names"][ELBE] in report.error


def _series(values: list[object]) -> bytes:
    rows = [{"timestamp": f"2024-11-20T0{i}:00:00+01:00", "value": v} for i, v in enumerate(values)]
    return json.dumps(rows).encode()


def test_wrong_type_is_quarantined_and_valid_rows_publish(project, ckan, monkeypatch):
    # 1 bad row of 25 (4 %) stays under the 5 % threshold: the valid rows publish.
    rows = [{"timestamp": f"2024-11-19T{h:02d}:00:00+01:00", "value": 90.0 + h} for h in range(24)]
    rows.append({"timestamp": "2024-11-20T00:00:00+01:00", "value": "abc"})
    project["replay"].override(MEASUREMENTS, 200, json.dumps(rows).encode(), "application/json")
    report = _run(project, ELBE)
    assert report.status == "ok", report.error
    assert report.quarantined == 1 and report.inserted == 24
    assert any("water_level" in m and "abc" in m and project["names"][ELBE] in m
               for m in report.messages)
    _, search = _datastore(ckan, project["names"][ELBE])
    assert search["total"] == 24


def test_quarantine_share_over_threshold_holds_the_batch_back(project, ckan):
    rows = [{"timestamp": f"2024-11-19T{h:02d}:00:00+01:00", "value": 90.0} for h in range(10)]
    rows += [{"timestamp": "2024-11-19T10:00:00+01:00"}]  # the value field is missing
    project["replay"].override(MEASUREMENTS, 200, json.dumps(rows).encode(), "application/json")
    report = _run(project, ELBE)
    assert report.status == "held-back" and report.exit_code == 4
    assert report.quarantined == 1
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=project["names"][ELBE])


def test_ckan_down_then_next_run_completes(project, ckan, monkeypatch, portal):
    monkeypatch.setenv("ODP_CKAN_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    down = _run(project, SCHOOLS)
    assert down.status == "failed" and down.exit_code == 5
    assert "127.0.0.1:9" in down.error
    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    report = _run(project, SCHOOLS)
    assert report.status == "ok" and report.inserted > 150


def test_wrong_token_is_refused_and_never_printed(project, monkeypatch):
    secret = "not-a-real-token-1234567890abcdef"
    monkeypatch.setenv("CKAN_API_TOKEN", secret)
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "odp.cli", "run", project["names"][SCHOOLS]],
        capture_output=True, text=True, env=env, cwd=project["root"], timeout=300,
    )
    assert done.returncode == 5, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "token" in output and secret not in output
    state = Path(env["ODP_STATE_DIR"])  # run history, logs, reports: nowhere in the state
    written = [p for p in state.rglob("*") if p.is_file()]
    assert (state / "history.sqlite") in written
    assert not [p for p in written if secret.encode() in p.read_bytes()]


def test_cli_json_report(project):
    done = subprocess.run(
        [sys.executable, "-m", "odp.cli", "run", project["names"][SCHOOLS], "--json"],
        capture_output=True, text=True, cwd=project["root"], timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report["status"] == "ok" and report["inserted"] > 150
    # The CSV resource is downloadable and holds the same rows, timestamps aside.
    package = requests.get(report["url"].replace("/dataset/", "/api/3/action/package_show?id="),
                           timeout=30).json()["result"]
    csv_url = next(r["url"] for r in package["resources"] if r.get("odp_role") == "table")
    lines = requests.get(csv_url, timeout=30).text.strip().splitlines()
    assert len(lines) == report["inserted"] + 1
    assert lines[0].startswith("school_id,building_no,name")


def test_quarantined_rows_are_released_after_a_suite_fix(project, ckan):
    rows = [{"timestamp": f"2024-11-19T{q // 4:02d}:{q % 4 * 15:02d}:00+01:00", "value": 90.0}
            for q in range(30)]
    rows.append({"timestamp": "2024-11-19T23:00:00+01:00", "value": 1200.0})  # above 1000 cm
    project["replay"].override(MEASUREMENTS, 200, json.dumps(rows).encode(), "application/json")
    first = _run(project, ELBE)
    assert first.status == "ok" and first.quarantined == 1 and first.inserted == 30
    # Unchanged rules: the quarantined row is not validated again, nothing is written.
    again = _run(project, ELBE)
    assert again.validated == 0 and again.write_calls == 0
    # The officer widens the band in the suite: the row is validated again and published.
    name = project["names"][ELBE]
    suite_path = project["root"] / "expectations" / f"{name}.json"
    suite = json.loads(suite_path.read_text())
    suite["expectations"][0]["kwargs"]["max_value"] = 1500
    suite_path.write_text(json.dumps(suite))
    fixed = _run(project, ELBE)
    assert fixed.status == "ok" and fixed.validated == 1 and fixed.inserted == 1
    _, search = _datastore(ckan, name)
    assert search["total"] == 31
    from odp.validate import QuarantineStore

    assert QuarantineStore(Path(os.environ["ODP_STATE_DIR"])).list(name).empty


def test_failure_mid_publish_leaves_no_partial_dataset_and_next_run_completes(
    project, ckan, portal, monkeypatch
):
    from tests.integration.ckan_proxy import FailingProxy

    name = project["names"][SCHOOLS]
    with FailingProxy(portal.url) as proxy:
        proxy.fail["datastore_create"] = 99  # CKAN breaks after the dataset was created
        monkeypatch.setenv("ODP_CKAN_URL", proxy.url)
        broken = _run(project, SCHOOLS)
    assert broken.status == "failed" and broken.exit_code == 5
    assert "datastore_create" in broken.error and "HTTP 500" in broken.error
    assert "package_create" in proxy.calls
    # What exists is a draft: invisible to the public.
    assert ckan.action.package_show(id=name)["state"] == "draft"
    anonymous = requests.get(f"{portal.url}/api/3/action/package_show", params={"id": name},
                             timeout=30)
    assert anonymous.status_code in (403, 404)

    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    fixed = _run(project, SCHOOLS)
    assert fixed.status == "ok", fixed.error
    package, search = _datastore(ckan, name)
    assert package["state"] == "active"
    assert search["total"] == fixed.valid  # every row once: nothing lost, nothing doubled
    roles = [r.get("odp_role") for r in package["resources"]]
    assert roles.count("table") == 1 and len(roles) == len(set(roles))  # nothing doubled
