"""A DataStore table gone from the portal (deleted by hand) while the ledger remains: the next
run, whose delivery also changed a row, builds the table anew with every published row — the
changed one with its new values, none deleted — on the REAL local CKAN, with the REAL VVO stops."""

from __future__ import annotations

import pytest

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project
from tests.unit.test_source_tabular import STOPS, STOPS_URL

pytestmark = pytest.mark.integration


def _table(ckan, name: str) -> dict:
    package = ckan.action.package_show(id=name)
    return next(r for r in package["resources"] if r.get("odp_role") == "table")


def test_a_table_deleted_on_the_portal_is_built_anew_with_every_published_row(
        tmp_path, portal, ckan, monkeypatch):
    root, named = make_project(tmp_path, ["transit-stops-vvo"])
    name = named["transit-stops-vvo"]
    with ReplayServer(RECORDINGS) as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal,
                    fast_retries=True)
        first = run_dataset(name, root, load_city(root))
        assert first.status == "ok", first.error
        ckan.action.datastore_delete(resource_id=_table(ckan, name)["id"], force=True)
        assert not _table(ckan, name).get("datastore_active")
        lines = STOPS.read_bytes().split(b"\r\n")
        cells = lines[1].split(b";")
        cells[1] = cells[1] + b" (neu)"
        lines[1] = b";".join(cells)
        replay.override(STOPS_URL, 200, b"\r\n".join(lines), "text/csv")
        again = run_dataset(name, root, load_city(root))
    assert again.status == "ok", again.error
    table = _table(ckan, name)
    found = ckan.action.datastore_search(resource_id=table["id"], limit=10_000)
    assert found["total"] == first.inserted == first.valid  # every published row, none lost
    stop = cells[0].decode().strip('"')
    renamed = [r for r in found["records"] if r["stop_id"] == stop]
    assert len(renamed) == 1 and renamed[0]["name"].endswith("(neu)"), renamed
