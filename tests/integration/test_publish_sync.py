"""Publishing against the real local CKAN, over both DataStore load paths (action API and
PostgreSQL COPY): resources, deletion policies, a failed update, dry run, removed datasets."""

from __future__ import annotations

import json
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
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

SCHOOLS = "schools-dresden"
SCHOOLS_URL = (
    "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/apps/web/src/data/"
    "schools.json"
)


@pytest.fixture(params=["api", "copy"])
def load_path(request, monkeypatch, portal) -> str:
    monkeypatch.setenv("ODP_DATASTORE_LOAD", request.param)
    if request.param == "copy":  # named explicitly: the failure test talks to CKAN via a proxy
        from odp_dev.portal.stack import datastore_write_url

        monkeypatch.setenv("ODP_DATASTORE_WRITE_URL", datastore_write_url())
    return request.param


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [SCHOOLS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        yield {"root": root, "name": names[SCHOOLS], "replay": replay, "state": tmp_path / "state"}


def _run(project: dict, dry_run: bool = False):
    root = project["root"]
    return run_dataset(project["name"], root, load_city(root), dry_run=dry_run)


def _set_policy(project: dict, policy: str) -> None:
    path = project["root"] / "pipelines" / f"{project['name']}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[publish]\n", f'[publish]\ndeletion_policy = "{policy}"\n'),
                    encoding="utf-8")


def _new_delivery(project: dict) -> tuple[dict, dict]:
    """The register again, with one school renamed and one gone."""
    records = json.loads((RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json")
                         .read_text(encoding="utf-8"))
    dresden = [r for r in records if r["buildings"][0]["community_key"] == "14612000"]
    renamed, removed = dresden[0], dresden[1]
    renamed["name"] += " (umbenannt)"
    records.remove(removed)
    body = json.dumps(records, ensure_ascii=False).encode()
    project["replay"].override(SCHOOLS_URL, 200, body, "application/json")
    return renamed, removed


def _resources(ckan, name: str) -> dict[str, dict]:
    package = ckan.action.package_show(id=name)
    return {r["odp_role"]: r for r in package["resources"] if r.get("odp_role")}


def _rows(ckan, resource_id: str, **filters) -> list[dict]:
    found = ckan.action.datastore_search(resource_id=resource_id, filters=filters, limit=1000)
    return found["records"]


def test_resources_typed_table_and_noop(project, ckan, load_path):
    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    resources = _resources(ckan, name)
    assert set(resources) == {"table", "parquet", "geojson", "report"}
    table = resources["table"]
    info = ckan.action.datastore_info(id=table["id"])
    assert info["meta"]["count"] == first.inserted > 150
    types = {f["id"]: f["type"] for f in info["fields"]}
    assert types["latitude"] == "float8" and types["building_no"] == "int8"
    # Full-text search works the same on both paths (CKAN's trigger stayed on during COPY).
    school = _rows(ckan, table["id"])[0]
    hits = ckan.action.datastore_search(resource_id=table["id"], q=school["name"].split()[0])
    assert hits["total"] >= 1
    geo = requests.get(resources["geojson"]["url"], timeout=30).json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == first.inserted
    assert resources["parquet"]["format"] == "Parquet"

    report = requests.get(resources["report"]["url"], timeout=30).json()
    assert report["dataset"] == project["name"] and report["rows"]["rejected"] >= 0

    # The same delivery again: the report differs only in run id and times — a no-op.
    before = ckan.action.package_show(id=name)["metadata_modified"]
    again = _run(project)
    assert again.status == "unchanged" and again.write_calls == 0
    assert ckan.action.package_show(id=name)["metadata_modified"] == before


def _published_then_delivered_again(project: dict, policy: str):
    """Publish the register under `policy`, then a delivery with one school renamed and one
    gone: (first run, second run, the renamed school, the removed one)."""
    _set_policy(project, policy)
    first = _run(project)
    assert first.status == "ok", first.error
    renamed, removed = _new_delivery(project)
    second = _run(project)
    assert second.status == "ok", second.error
    return first, second, renamed, removed


def test_a_second_delivery_keeps_ckans_cached_count_exact_without_counting_the_table(
        project, ckan, monkeypatch, portal):
    """The COPY path is told how many rows the table held (the ledger's), so it puts back
    CKAN's cached count that its dry-run upsert cleared instead of counting the table, and
    moves it by the rows written: `datastore_search`'s total stays exact."""
    import psycopg

    from odp.publish import datastore
    from odp_dev.portal.stack import datastore_write_url

    monkeypatch.setenv("ODP_DATASTORE_LOAD", "copy")
    monkeypatch.setenv("ODP_DATASTORE_WRITE_URL", datastore_write_url())
    first = _run(project)
    assert first.status == "ok", first.error
    told: list[int | None] = []
    load = datastore.CopyLoader.load

    def recorded(self, *args, **kwargs):
        told.append(kwargs.get("rows_before"))
        return load(self, *args, **kwargs)

    monkeypatch.setattr(datastore.CopyLoader, "load", recorded)
    _new_delivery(project)
    second = _run(project)
    assert second.status == "ok" and second.deleted > 0, second.error
    assert told == [first.inserted]
    table = _resources(ckan, project["name"])["table"]["id"]
    with psycopg.connect(datastore_write_url()) as conn:
        cached = conn.execute("SELECT (stats ->> 'rows')::bigint FROM _table_stats "
                              "WHERE resource_id = %s", (table,)).fetchone()[0]
        counted = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    assert cached == counted == first.inserted - second.deleted + second.inserted
    assert ckan.action.datastore_search(resource_id=table, limit=0)["total"] == counted


def test_mark_deleted_keeps_gone_rows_with_a_timestamp(project, ckan, load_path):
    first, second, renamed, removed = _published_then_delivered_again(project, "mark-deleted")
    assert second.deleted == len(removed["buildings"]) and second.updated == len(
        renamed["buildings"])
    table = _resources(ckan, project["name"])["table"]
    total = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
    assert total == first.inserted  # nothing removed from the table
    gone = _rows(ckan, table["id"], school_id=removed["id"])
    assert gone and all(r["deleted_at"] for r in gone)
    kept = _rows(ckan, table["id"], school_id=renamed["id"])
    assert kept[0]["deleted_at"] is None and kept[0]["name"].endswith("(umbenannt)")
    assert _run(project).write_calls == 0
    # The school is delivered again: it is revived.
    project["replay"].clear_faults()
    back = _run(project)
    assert back.status == "ok" and back.deleted == 0
    assert all(r["deleted_at"] is None for r in _rows(ckan, table["id"], school_id=removed["id"]))


def test_keep_history_moves_old_versions_to_a_history_resource(project, ckan, load_path):
    _, _, renamed, removed = _published_then_delivered_again(project, "keep-history")
    resources = _resources(ckan, project["name"])
    assert not _rows(ckan, resources["table"]["id"], school_id=removed["id"])
    history = resources["history"]["id"]
    old = _rows(ckan, history, school_id=removed["id"])
    assert {r["change"] for r in old} == {"deleted"} and len(old) == len(removed["buildings"])
    previous = _rows(ckan, history, school_id=renamed["id"])
    assert previous[0]["change"] == "changed" and not previous[0]["name"].endswith("(umbenannt)")
    assert _run(project).write_calls == 0


def test_update_failing_midway_leaves_old_or_new_and_next_run_completes(
    project, ckan, portal, monkeypatch, load_path
):
    from tests.integration.ckan_proxy import FailingProxy

    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    table = _resources(ckan, name)["table"]["id"]
    renamed, removed = _new_delivery(project)
    # API path: the DataStore write itself fails → the table stays the old one.
    # COPY path: the DataStore commit succeeded, the CSV upload fails → the table is the new one.
    failing = "datastore_upsert" if load_path == "api" else "resource_patch"
    with FailingProxy(portal.url) as proxy:
        proxy.fail[failing] = 99
        monkeypatch.setenv("ODP_CKAN_URL", proxy.url)
        broken = _run(project)
    assert broken.status == "failed" and failing in broken.error, broken.error
    rows = _rows(ckan, table, school_id=renamed["id"])
    names = {r["name"] for r in rows}
    total = ckan.action.datastore_search(resource_id=table, limit=0)["total"]
    new_total = first.inserted - len(removed["buildings"])
    if load_path == "api":
        assert not any(n.endswith("(umbenannt)") for n in names) and total == first.inserted
    else:
        assert all(n.endswith("(umbenannt)") for n in names) and total == new_total

    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    fixed = _run(project)
    assert fixed.status == "ok", fixed.error
    assert ckan.action.datastore_search(resource_id=table, limit=0)["total"] == new_total
    assert all(r["name"].endswith("(umbenannt)") for r in _rows(ckan, table,
                                                                   school_id=renamed["id"]))
    roles = [r.get("odp_role") for r in ckan.action.package_show(id=name)["resources"]]
    assert len(roles) == len(set(roles))
    assert _run(project).write_calls == 0


def _odp(project: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odp.cli", *args], capture_output=True,
                          text=True, cwd=project["root"], timeout=300)


def test_dry_run_shows_the_diff_and_writes_nothing(project, ckan):
    new = _odp(project, "publish", project["name"], "--dry-run", "--json")
    assert new.returncode == 0, new.stderr
    [plan] = json.loads(new.stdout)
    assert plan["exists"] is False and plan["rows"]["added"] > 150
    assert {r["action"] for r in plan["resources"]} == {"create"}
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=project["name"])

    assert _run(project).status == "ok"
    before = ckan.action.package_show(id=project["name"])
    renamed, removed = _new_delivery(project)
    done = _odp(project, "publish", project["name"], "--dry-run")
    assert done.returncode == 0, done.stderr
    assert (f"~{len(renamed['buildings'])} changed, -{len(removed['buildings'])} deleted"
            in done.stdout)
    assert "resource CSV (table): update" in done.stdout
    after = ckan.action.package_show(id=project["name"])
    assert after["metadata_modified"] == before["metadata_modified"]
    table = _resources(ckan, project["name"])["table"]["id"]
    assert _rows(ckan, table, school_id=removed["id"])  # still there


def test_removed_dataset_is_reported_then_made_private(project, ckan):
    assert _run(project).status == "ok"
    name = project["name"]
    assert _odp(project, "publish", "--check").returncode == 0
    (project["root"] / "pipelines" / f"{name}.toml").unlink()
    check = _odp(project, "publish", "--check", "--json")
    assert check.returncode == 2 and json.loads(check.stdout) == [
        {"dataset": name, "policy": "private"}]
    prune = _odp(project, "publish", "--prune")
    assert prune.returncode == 0, prune.stderr
    package = ckan.action.package_show(id=name)
    assert package["private"] is True
    assert any(e["key"] == "odp_retired_at" for e in package["extras"])
    assert _odp(project, "publish", "--check").returncode == 0
