"""`odp run NAME --dry-run` says what a run would do: the counts it would insert, update, delete
and quarantine, in the line a real run prints, while the portal stays as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ckanapi import NotFound

from odp.cli import _outcome
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


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [SCHOOLS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        yield {"root": root, "name": names[SCHOOLS], "replay": replay}


def _run(project: dict, dry_run: bool = False):
    return run_dataset(project["name"], project["root"], load_city(project["root"]),
                       dry_run=dry_run)


def _counts(report) -> tuple[int, int, int, int]:
    return report.inserted, report.updated, report.deleted, report.quarantined


def _one_renamed_one_gone(project: dict) -> None:
    records = json.loads((RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json")
                         .read_text(encoding="utf-8"))
    dresden = [r for r in records if r["buildings"][0]["community_key"] == "14612000"]
    dresden[0]["name"] += " (umbenannt)"
    records.remove(dresden[1])
    body = json.dumps(records, ensure_ascii=False).encode()
    project["replay"].override(SCHOOLS_URL, 200, body, "application/json")


def test_dry_run_counts_are_those_the_real_run_then_writes_and_unchanged_after_it(project, ckan):
    first = _run(project, dry_run=True)
    assert first.status == "dry-run", first.error
    assert first.inserted > 150 and first.write_calls == 0
    line = _outcome(first)
    assert line.startswith(f"{project['name']}: dry run, would write (nothing written) in ")
    assert f"inserted {first.inserted}, updated 0, deleted 0, CKAN writes 0" in line
    with pytest.raises(NotFound):
        ckan.action.package_show(id=project["name"])

    real = _run(project)
    assert real.status == "ok" and _counts(real) == _counts(first)

    _one_renamed_one_gone(project)
    again = _run(project, dry_run=True)
    assert again.status == "dry-run" and again.inserted == 0
    assert again.updated >= 1 and again.deleted >= 1
    before = ckan.action.package_show(id=project["name"])
    applied = _run(project)
    assert applied.status == "ok" and _counts(applied) == _counts(again)
    assert before["metadata_modified"] != ckan.action.package_show(
        id=project["name"])["metadata_modified"]


    nothing = _run(project, dry_run=True)  # published as delivered: nothing to write
    assert nothing.status == "unchanged" and _counts(nothing)[:3] == (0, 0, 0)
    assert f"{project['name']}: unchanged in " in _outcome(nothing)
