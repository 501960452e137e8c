"""The publish gate against the real local CKAN: a good delivery of the school register is
published, then bad deliveries — a drifted column, an empty delivery, too many bad rows — are held
back with exit 4 and a reason, while the published version stays exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

SCHOOLS = "schools-dresden"
SCHOOLS_URL = (
    "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/apps/web/src/data/"
    "schools.json"
)
REGISTER = RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json"


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [SCHOOLS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        yield {"root": root, "name": names[SCHOOLS], "replay": replay,
               "state": tmp_path / "state"}


def _deliver(project: dict, records: list[dict]) -> None:
    body = json.dumps(records, ensure_ascii=False).encode()
    project["replay"].clear_faults()  # the first matching override answers
    project["replay"].override(SCHOOLS_URL, 200, body, "application/json")


def _published(ckan, name: str) -> tuple[str, int, list[dict]]:
    """metadata_modified, DataStore row count and rows (sorted) of the table resource."""
    package = ckan.action.package_show(id=name)
    table = next(r for r in package["resources"] if r.get("odp_role") == "table")
    found = ckan.action.datastore_search(resource_id=table["id"], limit=1000,
                                         sort="school_id, building_no")
    return package["metadata_modified"], found["total"], found["records"]


def test_bad_deliveries_are_held_back_and_the_published_version_stays(project, ckan):
    name, root = project["name"], project["root"]
    city = load_city(root)
    good = run_dataset(name, root, city)
    assert good.status == "ok", good.error
    before = _published(ckan, name)
    assert before[1] == good.inserted > 150
    report = json.loads((project["state"] / "reports" / f"{name}.json").read_text())
    assert report["gate"]["decision"] == "publish" and report["rows"]["validated"] == 163

    records = json.loads(REGISTER.read_text(encoding="utf-8"))

    # 1. A drifted column: the register renamed "postcode" to "plz". Through the CLI: exit 4.
    drifted = json.loads(json.dumps(records))
    for school in drifted:
        for building in school["buildings"]:
            building["plz"] = building.pop("postcode")
    _deliver(project, drifted)
    done = subprocess.run([sys.executable, "-m", "odp.cli", "run", name], capture_output=True,
                          text=True, cwd=root, env=dict(os.environ), timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [json.loads(line)["message"] if line.startswith("{") else line
             for line in (done.stdout + done.stderr).splitlines()]  # plain or JSON log lines
    assert any(f"{name}: batch held back: schema drift: missing column 'postcode'; new column "
               "'plz'" in line for line in lines), lines
    assert _published(ckan, name) == before

    # 2. An empty delivery: the register without a single Dresden school.
    _deliver(project, [s for s in records if s["buildings"][0]["community_key"] != "14612000"])
    empty = run_dataset(name, root, city)
    assert (empty.status, empty.exit_code) == ("held-back", 4)
    assert empty.error == f"{name}: batch held back: 0 rows, expected 100 … 1000"
    assert _published(ckan, name) == before

    # 3. Too many bad rows: 20 Dresden buildings with a Leipzig postcode (> 5 %).
    bad = json.loads(json.dumps(records))
    dresden = [b for s in bad for b in s["buildings"] if b["community_key"] == "14612000"]
    for building in dresden[:20]:
        building["postcode"] = "04109"
    _deliver(project, bad)
    many = run_dataset(name, root, city)
    assert (many.status, many.exit_code, many.quarantined) == ("held-back", 4, 20)
    assert "20 of 163 rows rejected (12.3%, limit 5.0%)" in many.error
    assert _published(ckan, name) == before
    held = json.loads((project["state"] / "reports" / f"{name}.json").read_text())
    assert held["gate"]["decision"] == "held-back" and held["run_id"] == many.run_id
    assert held["rules"][[r["rule"] for r in held["rules"]].index(
        "expect_column_values_to_match_regex")]["failed"] == 20

    # The register fixed at the source: the run publishes again, nothing changed in the table.
    _deliver(project, records)
    fixed = run_dataset(name, root, city)
    assert fixed.status in ("ok", "unchanged"), fixed.error
    assert (fixed.inserted, fixed.updated, fixed.deleted) == (0, 0, 0)
    assert _published(ckan, name)[1:] == before[1:]
