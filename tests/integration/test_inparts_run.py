"""A first publish validated in parts (odp.inparts) puts on the real local CKAN what a whole
validation puts there: the REAL VVO stops (4,373 rows, stops without a number quarantined,
districts assigned) published twice under two names, once in parts of 500 rows (the rows
sorted on disk and published from there, odp.publish.sortedrows) and once whole; the next
run of the one published in parts finds nothing new."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from odp import inparts
from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

STOPS = "transit-stops-vvo"


def _published(ckan, name: str) -> list[dict]:
    package = ckan.action.package_show(id=name)
    table = next(r for r in package["resources"] if r.get("odp_role") == "table")
    found = ckan.action.datastore_search(resource_id=table["id"], limit=10_000, sort="stop_id")
    return [{k: v for k, v in row.items() if k != "_id"} for row in found["records"]]


def _described(ckan, name: str) -> tuple[dict, dict]:
    """The package's extras and each resource's content hash, by role (the dataset's name
    written as NAME)."""
    package = ckan.action.package_show(id=name)
    extras = {e["key"]: e["value"].replace(name, "NAME") for e in package.get("extras", [])}
    return extras, {r["odp_role"]: r.get("odp_hash") for r in package["resources"]}


def _record(state, name: str) -> tuple[list[tuple[int, int]], str, int]:
    """The delta's record: (raw hash, key hash) per published row, sorted; staging's rows at
    the publish and how many of them were held back (their dlt ids differ from run to run)."""
    import json

    import pyarrow as pa

    from odp import delta

    with pa.memory_map(str(delta.rows_path(state, name))) as source:
        table = pa.ipc.open_file(source).read_all()
    pairs = sorted(zip(table.column(delta.RAW).to_pylist(), table.column(delta.KEY).to_pylist(),
                       strict=True))
    meta = table.schema.metadata or {}
    return pairs, meta[b"odp_staged"].split(b":")[0].decode(), len(json.loads(meta[b"odp_held"]))


def test_a_first_publish_in_parts_puts_on_the_portal_what_a_whole_one_does(
        tmp_path, portal, ckan, monkeypatch):
    from odp.publish import sync

    reports, names, from_disk = {}, {}, []
    real = sync.first_publish  # counted: the rows published from disk, not as one frame
    monkeypatch.setattr(sync, "first_publish", lambda *a, **k: from_disk.append(1) or real(*a, **k))
    with ReplayServer(RECORDINGS) as replay:
        for how, rows in (("parts", 500), ("whole", 10**9)):
            root, named = make_project(tmp_path / how, [STOPS])
            use_project(monkeypatch, root, tmp_path / how / "state", replay.url, portal,
                        fast_retries=True)
            monkeypatch.setattr(inparts, "PART_ROWS", rows)
            names[how] = named[STOPS]
            reports[how] = run_dataset(names[how], root, load_city(root))
            assert len(from_disk) == 1, how  # in parts: published from disk; whole: not
            if how == "parts":
                again = run_dataset(names[how], root, load_city(root))
    parts, whole = reports["parts"], reports["whole"]
    assert parts.status == whole.status == "ok", (parts.error, whole.error)
    assert parts.stages.keys() >= {"validate", "georeference", "publish"}
    for count in ("validated", "valid", "quarantined", "georeferenced", "in_city", "inserted"):
        assert getattr(parts, count) == getattr(whole, count), count
    assert parts.quarantined > 0 and parts.inserted == parts.valid == 4373 - parts.quarantined
    assert [m.replace(names["parts"], "NAME") for m in parts.messages if "row" in m] == [
        m.replace(names["whole"], "NAME") for m in whole.messages if "row" in m]
    assert _published(ckan, names["parts"]) == _published(ckan, names["whole"])
    (extras, files), (whole_extras, whole_files) = (_described(ckan, names[how])
                                                    for how in ("parts", "whole"))
    files.pop("report"), whole_files.pop("report")  # it names the dataset
    assert files == whole_files and files.keys() >= {"table", "parquet"}  # the same content
    assert not {k: (v, whole_extras.get(k)) for k, v in extras.items()  # the same DCAT
                if whole_extras.get(k) != v and k != "odp_metadata_hash"}  # extents, counts, …
    assert extras.keys() == whole_extras.keys()
    ledgers = [pq.read_table(tmp_path / how / "state" / "published" / f"{names[how]}.parquet")
               for how in ("parts", "whole")]
    assert ledgers[0].equals(ledgers[1])  # the same rows, hashes and key hashes, in order
    # The record the next run splits its delivery against (odp.delta): each published row's
    # raw hash as staged and its key hash, kept on disk with the rows in parts.
    records = [_record(tmp_path / how / "state", names[how]) for how in ("parts", "whole")]
    assert records[0] == records[1] and len(records[0][0]) == parts.inserted
    assert not list((tmp_path / "parts" / "state").rglob("*.sorted.parquet"))  # removed
    assert again.status == "unchanged", again.messages
