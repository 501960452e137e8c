"""A publish always converges, against the real local CKAN (no mocks): a run killed after the
DataStore committed but before the ledger was written, lost local state, create answers lost
after CKAN committed, a CSV over the portal's upload limit, a text cell too long for CKAN's
full-text column — the next run leaves the portal exactly as the source says, and the run
after that writes nothing."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from odp.publish.changes import ledger_path
from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, table_resource, use_project
from tests.integration.ckan_proxy import FailingProxy

pytestmark = pytest.mark.integration

SCHOOLS = "schools-dresden"
SCHOOLS_URL = (
    "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/apps/web/src/data/"
    "schools.json"
)
RECORDS = RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json"


@pytest.fixture(params=["api", "copy"])
def load_path(request, monkeypatch, portal) -> str:
    monkeypatch.setenv("ODP_DATASTORE_LOAD", request.param)
    if request.param == "copy":  # named explicitly: some tests talk to CKAN via a proxy
        from odp_dev.portal.stack import datastore_write_url

        monkeypatch.setenv("ODP_DATASTORE_WRITE_URL", datastore_write_url())
    return request.param


@pytest.fixture
def project(tmp_path: Path, portal, ckan, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [SCHOOLS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        yield {"root": root, "name": names[SCHOOLS], "replay": replay,
               "state": tmp_path / "state", "portal": portal}
    with contextlib.suppress(Exception):
        ckan.action.dataset_purge(id=names[SCHOOLS])


def _run(project: dict):
    root = project["root"]
    return run_dataset(project["name"], root, load_city(root))


def _dresden() -> list[dict]:
    records = json.loads(RECORDS.read_text(encoding="utf-8"))
    return [r for r in records if r["buildings"][0]["community_key"] == "14612000"]


def _deliver(project: dict, records: list[dict]) -> None:
    """The register as the source delivers it next (the other cities' schools left out: the
    source filter drops them anyway)."""
    body = json.dumps(records, ensure_ascii=False).encode()
    project["replay"].clear_faults()  # the first matching override answers
    project["replay"].override(SCHOOLS_URL, 200, body, "application/json")


def _table_rows(ckan, name: str) -> list[dict]:
    """Every row of the table (without CKAN's _id), sorted by key, checked against `total`."""
    rid = table_resource(ckan, name)["id"]
    found = ckan.action.datastore_search(resource_id=rid, limit=5000, sort="_id")
    assert found["total"] == len(found["records"])
    rows = [{k: v for k, v in r.items() if k != "_id"} for r in found["records"]]
    return sorted(rows, key=lambda r: (r["school_id"], r["building_no"]))


def _long_text(megabytes: float) -> str:
    """Distinct words: a text whose tsvector is several times larger than 1 MB."""
    words, size, i = [], 0, 0
    while size < megabytes * 1_000_000:
        word = f"wort{i}x"
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words)


def test_copy_committed_ledger_not_written_and_source_changed_ends_with_the_new_source(
        project, ckan, load_path):
    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    original = _table_rows(ckan, name)
    ledger = ledger_path(project["state"], name)
    old_ledger = ledger.read_bytes()

    # Second delivery: one school renamed, one gone, one new — published completely …
    records = _dresden()
    renamed, removed, extra = records[0], records[1], json.loads(json.dumps(records[2]))
    changed = [r for r in records if r is not removed]
    changed[0] = {**renamed, "name": renamed["name"] + " (umbenannt)"}
    extra["id"] = 990001
    _deliver(project, [*changed, extra])
    second = _run(project)
    assert second.status == "ok" and second.inserted and second.deleted, second.error

    # … but as if killed right after the DataStore commit: the old ledger, the pending marker.
    ledger.write_bytes(old_ledger)
    ledger.with_suffix(".pending").write_text("2024-11-21T05:00:00+00:00\n")

    # Third delivery: the first one again. Against the stale ledger nothing would change (the
    # renamed school would stay renamed, the removed one missing, the new one a ghost).
    project["replay"].clear_faults()
    third = _run(project)
    assert third.status == "ok" and third.write_calls > 0, third.error
    assert any("repair" in m and "interrupted" in m for m in third.messages), third.messages
    assert (third.inserted, third.updated, third.deleted) == (
        len(removed["buildings"]), len(renamed["buildings"]), len(extra["buildings"]))
    assert _table_rows(ckan, name) == original  # every row, every value
    assert not ledger.with_suffix(".pending").exists()

    again = _run(project)
    assert again.status == "unchanged" and again.write_calls == 0, again.error


def test_ledger_missing_with_a_live_table_never_leaves_readers_an_empty_table(
        project, ckan, load_path):
    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    rid = table_resource(ckan, name)["id"]
    ledger_path(project["state"], name).unlink()  # local state lost

    records = _dresden()
    removed = records[1]
    _deliver(project, [r for r in records if r is not removed])
    seen: list[object] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                seen.append(ckan.action.datastore_search(resource_id=rid, limit=0)["total"])
            except Exception as exc:  # noqa: BLE001 — every answer is recorded
                seen.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.02)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        second = _run(project)
    finally:
        done.set()
        reader.join(timeout=30)
    assert second.status == "ok", second.error
    assert any("repair" in m and "no local ledger" in m for m in second.messages)
    assert second.inserted == 0 and second.deleted == len(removed["buildings"])
    assert len(seen) > 10
    assert all(isinstance(t, int) and t > 0 for t in seen), [t for t in seen
                                                             if not isinstance(t, int) or t == 0]
    assert set(seen) <= {first.inserted, first.inserted - len(removed["buildings"])}
    assert table_resource(ckan, name)["id"] == rid  # the same table, never rebuilt
    total = ckan.action.datastore_search(resource_id=rid, limit=0)["total"]
    assert total == first.inserted - len(removed["buildings"])
    assert _run(project).write_calls == 0


def test_lost_create_answers_leave_one_package_and_one_table_resource(
        project, ckan, portal, monkeypatch, load_path):
    name = project["name"]
    with FailingProxy(portal.url) as proxy:
        monkeypatch.setenv("ODP_CKAN_URL", proxy.url)
        # CKAN carries each of these out, but its answer is lost (HTTP 500 after the commit).
        proxy.lose_answer.update({"package_create": 1, "resource_create": 2})
        first = _run(project)
        assert first.status == "ok", first.error
        assert proxy.calls.count("package_create") == 1  # found, not sent again
        assert proxy.calls.count("resource_create") == 4  # table, Parquet, GeoJSON, report

        # keep-history creates its history table with the resource: that answer lost too.
        path = project["root"] / "pipelines" / f"{name}.toml"
        path.write_text(path.read_text(encoding="utf-8").replace(
            "[publish]\n", '[publish]\ndeletion_policy = "keep-history"\n'), encoding="utf-8")
        records = _dresden()
        _deliver(project, records[1:])
        proxy.lose_answer["datastore_create"] = 1
        second = _run(project)
        assert second.status == "ok", second.error
        assert _run(project).write_calls == 0  # (the metadata holds the portal's address)
    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    assert len(ckan.action.package_search(q=f"name:{name}", include_private=True,
                                          include_drafts=True)["results"]) == 1
    package = ckan.action.package_show(id=name)
    assert package["state"] == "active"
    roles = [r.get("odp_role") for r in package["resources"]]
    assert sorted(roles) == ["geojson", "history", "parquet", "report", "table"], roles
    history = next(r for r in package["resources"] if r["odp_role"] == "history")
    old = ckan.action.datastore_search(resource_id=history["id"], limit=0)["total"]
    assert old == len(records[0]["buildings"])


def _set_upload_limit(project: dict, megabytes: float) -> None:
    city = project["root"] / "cities" / "dresden.toml"
    text = "\n".join(line for line in city.read_text(encoding="utf-8").splitlines()
                     if not line.startswith("max_resource_size_mb"))
    city.write_text(text.replace("[portal]\n", f"[portal]\nmax_resource_size_mb = {megabytes}\n"),
                    encoding="utf-8")


def test_csv_over_the_upload_limit_links_the_datastore_dump(project, ckan, load_path):
    _set_upload_limit(project, 0.02)  # 20 KB: the CSV and the GeoJSON are larger
    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    assert any("upload limit" in m and "dump" in m for m in first.messages), first.messages
    assert any("GeoJSON" in m and "left out" in m for m in first.messages), first.messages
    package = ckan.action.package_show(id=name)
    roles = {r.get("odp_role"): r for r in package["resources"]}
    assert "geojson" not in roles and package["state"] == "active"
    table = roles["table"]
    assert table["url"] == f"{project['portal'].url}/datastore/dump/{table['id']}"
    assert table["url_type"] in ("", None)
    total = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
    assert total == first.inserted > 150
    dump = requests.get(table["url"], timeout=60)
    assert dump.status_code == 200 and len(dump.text.strip().splitlines()) == total + 1
    assert _run(project).write_calls == 0

    # A change: the DataStore gets it, the table resource still links the dump.
    records = _dresden()
    _deliver(project, records[1:])
    second = _run(project)
    assert second.status == "ok" and second.deleted == len(records[0]["buildings"])
    table = next(r for r in ckan.action.package_show(id=name)["resources"]
                 if r.get("odp_role") == "table")
    assert table["url"].endswith(f"/datastore/dump/{table['id']}")
    assert _run(project).write_calls == 0


def test_a_text_cell_too_long_for_ckans_full_text_index_never_blocks_the_dataset(
        project, ckan, load_path):
    # 0.9 MB of distinct words: under validation's max_cell_chars (1,000,000), but a tsvector
    # of them is over PostgreSQL's 1 MB.
    records = _dresden()
    records[0] = {**records[0], "name": _long_text(0.9)}
    _deliver(project, records)
    first = _run(project)
    assert first.status == "ok", first.error
    name = project["name"]
    rid = table_resource(ckan, name)["id"]
    long_id = records[0]["id"]
    found = ckan.action.datastore_search(resource_id=rid, filters={"school_id": long_id})
    if load_path == "copy":  # stored whole, left out of the full-text search
        assert found["records"] and all(len(r["name"]) == len(records[0]["name"])
                                        for r in found["records"])
        assert any("full-text" in m and "stored whole" in m for m in first.messages)
    else:  # the action API cannot store it: held back and named, everything else is there
        assert not found["records"]
        assert any("not in the DataStore table" in m and str(long_id) in m
                   for m in first.messages), first.messages
    others = ckan.action.datastore_search(resource_id=rid, limit=0)["total"]
    assert others >= first.inserted - (0 if load_path == "copy" else len(
        records[0]["buildings"]))
    again = _run(project)
    assert again.status == "unchanged" and again.write_calls == 0, again.error

    # A changed row with such a cell (the upsert path), next to an ordinary change.
    records[2] = {**records[2], "name": _long_text(0.9) + " zwei"}
    records[3] = {**records[3], "name": records[3]["name"] + " (umbenannt)"}
    _deliver(project, records)
    second = _run(project)
    assert second.status == "ok", second.error
    renamed = ckan.action.datastore_search(resource_id=rid, filters={"school_id": records[3]["id"]})
    assert all(r["name"].endswith("(umbenannt)") for r in renamed["records"])
    changed = ckan.action.datastore_search(resource_id=rid, filters={"school_id": records[2]["id"]})
    if load_path == "copy":
        assert all(r["name"].endswith(" zwei") for r in changed["records"])
        hits = ckan.action.datastore_search(resource_id=rid, q=records[3]["name"].split()[0])
        assert hits["total"] >= 1  # the full-text search still works
    else:
        assert not changed["records"]  # its old version is gone: the table never shows it stale
    assert _run(project).write_calls == 0
