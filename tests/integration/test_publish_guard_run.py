"""Bad deliveries that used to damage the public portal silently, against the real local CKAN:
swapped coordinates, another city's register and a cut file are held back with exit 4 and the
numbers; the published table stays exactly as it was. A genuine shrink is accepted explicitly
(`--accept-deletes`, recorded in the history), and a published row quarantined in a delivery
keeps its last good version instead of vanishing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from odp.cli import DEMO_SCENARIO
from odp.run import run_dataset
from odp.runs import history
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import (
    RECORDINGS,
    all_rows,
    cli_env,
    cli_report,
    make_project,
    odp_cli,
    table_resource,
    use_project,
)

pytestmark = pytest.mark.integration

PARKS = "car-parks-dresden"
PARKS_URL = ("https://raw.githubusercontent.com/offenesdresden/ParkAPI/"
             "696f06ace12e4449a5bf5db8a3e048870b89fff6/park_api/cities/Dresden.geojson")
PARKS_FILE = RECORDINGS / "parking_dresden" / "ParkAPI_Dresden.geojson"
STOPS = "transit-stops-vvo"
STOPS_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
             "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")
STOPS_FILE = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"


@pytest.fixture
def project(tmp_path: Path, portal, ckan, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [PARKS, STOPS])
    with ReplayServer(RECORDINGS, scenario=DEMO_SCENARIO) as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "names": names, "replay": replay, "state": tmp_path / "state",
               "city": load_city(root), "portal": portal}
    for name in names.values():
        with contextlib.suppress(Exception):
            ckan.action.dataset_purge(id=name)


def _deliver(project: dict, url: str, body: bytes, content_type: str) -> None:
    project["replay"].clear_faults()
    project["replay"].override(url, 200, body, content_type)


def _parks(transform) -> bytes:
    collection = json.loads(PARKS_FILE.read_text(encoding="utf-8"))
    for feature in collection["features"]:
        lon, lat = feature["geometry"]["coordinates"][:2]
        feature["geometry"]["coordinates"] = list(transform(lon, lat))
    return json.dumps(collection).encode()


def _snapshot(ckan, name: str) -> tuple[str, list[dict]]:
    package = ckan.action.package_show(id=name)
    rows = sorted(all_rows(ckan, name), key=lambda r: r["_id"])
    return package["metadata_modified"], rows


def test_swapped_coordinates_and_another_citys_register_are_held_back_and_nothing_is_deleted(
        project, ckan):
    name, root, city = project["names"][PARKS], project["root"], project["city"]
    good = run_dataset(name, root, city)
    assert (good.status, good.inserted) == ("ok", 60), good.error
    before = _snapshot(ckan, name)

    # Every coordinate pair arrived as (lat, lon): georeferencing rejects all 60 car parks.
    _deliver(project, PARKS_URL, _parks(lambda lon, lat: (lat, lon)), "application/geo+json")
    swapped = run_dataset(name, root, city)
    assert (swapped.status, swapped.exit_code) == ("held-back", 4), swapped.error
    assert swapped.quarantined == 61  # the city feature (its type) and 60 swapped points
    assert "0 rows left to publish of 61 delivered, expected 30 … 500" in swapped.error
    assert "61 of 61 rows rejected (100.0%, limit 5.0%)" in swapped.error
    assert any("swapped" in m for m in swapped.messages)
    assert swapped.deleted == 0 and swapped.write_calls == 0
    assert _snapshot(ckan, name) == before
    report = json.loads((project["state"] / "reports" / f"{name}.json").read_text())
    assert report["gate"]["decision"] == "held-back"
    assert any(r["source"] == "georeference" and r["failed"] == 60 for r in report["rules"])

    # The register of another city: every car park moved to Leipzig, outside the boundary.
    _deliver(project, PARKS_URL, _parks(lambda lon, lat: (lon - 1.366, lat + 0.29)),
             "application/geo+json")
    elsewhere = run_dataset(name, root, city)
    assert (elsewhere.status, elsewhere.exit_code) == ("held-back", 4), elsewhere.error
    assert "0 rows left to publish of 61 delivered" in elsewhere.error
    assert _snapshot(ckan, name) == before


def test_a_quarantined_published_row_keeps_its_last_good_version(project, ckan):
    name, root, city = project["names"][PARKS], project["root"], project["city"]
    assert run_dataset(name, root, city).status == "ok"
    before = {r["name"]: r for r in all_rows(ckan, name)}
    collection = json.loads(PARKS_FILE.read_text(encoding="utf-8"))
    (bad,) = [f for f in collection["features"] if f["properties"]["name"] == "Prohlis"]
    bad["properties"]["type"] = "Raumschiff"  # not a car park type: quarantined
    _deliver(project, PARKS_URL, json.dumps(collection).encode(), "application/geo+json")
    run = run_dataset(name, root, city)
    assert run.status == "ok" and run.exit_code == 0, run.error  # the new report is published
    assert (run.quarantined, run.kept_last_good) == (2, 1)
    assert (run.inserted, run.updated, run.deleted) == (0, 0, 0)
    assert any("1 published row(s) quarantined in this delivery keep their last published"
               in m for m in run.messages)
    after = {r["name"]: r for r in all_rows(ckan, name)}
    assert after == before  # Prohlis is still there, as it was


def test_a_file_cut_at_a_row_boundary_is_held_back_until_the_officer_accepts_the_deletes(
        project, ckan):
    name, root = project["names"][STOPS], project["root"]
    env = cli_env(root, project["state"], project["replay"].url, project["portal"])
    first = cli_report(odp_cli(env, "run", name, "--json"))
    assert first["status"] == "ok", first["error"]
    published = first["inserted"]
    assert published == 4371  # 4,373 stops in the file, one of them quarantined
    resource_id = table_resource(ckan, name)["id"]

    lines = STOPS_FILE.read_bytes().splitlines(keepends=True)
    cut = b"".join(lines[:2001])  # the header and 2,000 stops: cut at a row boundary
    _deliver(project, STOPS_URL, cut, "text/plain; charset=utf-8")
    done = odp_cli(env, "run", name, "--json")
    held = cli_report(done)
    assert done.returncode == 4 and held["status"] == "held-back"
    gone = published - (2000 - held["quarantined"])
    assert (f"would delete {gone} of 4371 published rows ({gone / 4371:.1%}, limit 10.0%); if "
            "the source really shrank, run again with --accept-deletes") in held["error"]
    total = ckan.action.datastore_search(resource_id=resource_id, limit=0)["total"]
    assert total == 4371

    accepted = odp_cli(env, "run", name, "--json", "--accept-deletes")
    report = cli_report(accepted)
    assert accepted.returncode == 0 and report["status"] == "ok", report["error"]
    assert (report["deleted"], report["accepted_deletes"]) == (gone, gone)
    remaining = 4371 - gone
    assert ckan.action.datastore_search(resource_id=resource_id, limit=0)["total"] == remaining
    (last, *_) = history.runs(project["state"], name)
    assert (last["status"], last["accepted_deletes"], last["deleted"]) == ("ok", gone, gone)

    # The acceptance was for that run only: the next cut is held back again.
    _deliver(project, STOPS_URL, b"".join(lines[:1001]), "text/plain; charset=utf-8")
    again = cli_report(odp_cli(env, "run", name, "--json"))
    assert again["status"] == "held-back"
    assert f"of {remaining} published rows" in again["error"], again["error"]
