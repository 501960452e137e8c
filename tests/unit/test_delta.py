"""Which datasets may validate only new and changed rows (odp.delta)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd

from odp.delta import _rules_allow
from odp.spec import load_dataset
from tests.helpers import REPO


def test_row_by_row_rules_of_a_full_refresh_allow_validating_only_changed_rows(tmp_path):
    stops = load_dataset("transit-stops-vvo", REPO)  # between, regex, unique on the key
    assert _rules_allow(stops) == ""
    suite = json.loads(stops.suite_path.read_text(encoding="utf-8"))
    for extra in ({"type": "expect_table_row_count_to_be_between",
                   "kwargs": {"min_value": 1000}},
                  {"type": "expect_column_mean_to_be_between",
                   "kwargs": {"column": "latitude", "min_value": 50, "max_value": 52}},
                  {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "name"}}):
        path = tmp_path / f"{extra['type']}.json"
        path.write_text(json.dumps({**suite, "expectations": [*suite["expectations"], extra]}))
        assert extra["type"] in _rules_allow(replace(stops, suite_path=path))


def test_incremental_and_series_datasets_validate_as_before():
    assert _rules_allow(load_dataset("elbe-water-level-dresden", REPO)) == "incremental"
    series = load_dataset("elbe-water-level-dresden", REPO)
    assert "series" in _rules_allow(replace(series, extract={**series.extract,
                                                              "mode": "full-refresh"}))


def test_a_rows_raw_hash_changes_with_any_cell_and_not_with_dlts_columns_or_the_index():
    """The raw hash decides which delivered rows are carried over unvalidated: any change of
    a cell's text — a value moved to the next column, an empty cell that was missing, text
    moved across the column boundary — must change it; dlt's own columns and the frame's
    index must not."""
    from odp.delta import raw_hashes

    rows = pd.DataFrame({"a": ["x", "x", None, "", "ab", "a", "x"],
                         "b": ["y", "y", "x", "x", "c", "bc", "z"],
                         "_dlt_id": ["1", "2", "3", "4", "5", "6", "7"]}, dtype="str")
    hashed = raw_hashes(rows)
    assert hashed.dtype == "uint64" and list(hashed.index) == list(rows.index)
    assert hashed[0] == hashed[1]  # the same text; only dlt's id differs
    assert hashed.iloc[2:].nunique() == 5  # missing ≠ empty, "ab|c" ≠ "a|bc", y ≠ z
    moved = raw_hashes(rows.set_axis(range(10, 17)))
    assert moved.tolist() == hashed.tolist() and list(moved.index) == list(range(10, 17))
    swapped = raw_hashes(pd.DataFrame({"a": ["y"], "b": ["x"]}, dtype="str"))
    assert swapped[0] != hashed[0]


def test_the_completeness_of_carried_rows_counts_their_values_in_the_ledger_and_no_others(
        tmp_path, monkeypatch):
    """Rows carried over are not validated, so the report's completeness takes their
    non-missing values from the ledger: only theirs, whether the key hashes are handed in
    (hashed once per run) or hashed here; when every published row is carried, from the
    counts written beside the ledger, without reading a column."""
    from odp.delta import Split, present_in
    from odp.publish.changes import key_index, to_arrow

    stops = load_dataset("transit-stops-vvo", REPO)
    published = pd.DataFrame({"stop_id": ["a", "b", "c", "d"], "name": ["A", None, "C", None],
                              "short_name": [None, None, "c", "d"]}, dtype="string")
    ledger = to_arrow(published)  # as the run reads it
    keys = key_index(ledger, ["stop_id"])
    part = Split(published.iloc[0:0], carried_keys=keys[[0, 1, 3]].to_numpy()).located(keys)
    counted = present_in(ledger, part, stops)
    assert counted["name"] == 1 and counted["short_name"] == 1  # of a, b and d only
    assert counted["stop_id"] == 3
    # A grown file's split carrying every published row: counted by Arrow, no lookup.
    grown = Split(published.iloc[0:0], carried_keys=keys.to_numpy()[::-1].copy(),
                  added_only=True).located(keys)
    assert grown.carried_rows.all()
    assert present_in(ledger, grown, stops) == {"stop_id": 4, "name": 2, "short_name": 2}
    assert present_in(ledger, Split(published), stops) == {}  # nothing carried

    from odp.publish.changes import read_ledger, write_ledger
    from odp.publish.ledgerfile import LedgerFile

    write_ledger(tmp_path, "stops", ledger)
    stored = read_ledger(tmp_path, "stops")
    assert present_in(stored, part, stops) == counted  # read from the file's columns
    monkeypatch.setattr(LedgerFile, "column", lambda *_: 1 / 0)
    assert present_in(stored, grown, stops) == {"stop_id": 4, "name": 2, "short_name": 2}


def test_a_validated_row_whose_typed_key_is_a_carried_rows_sends_the_delivery_to_validation():
    """Two texts of one typed key ('7' carried, '07' changed): the carried row's key is found
    among the ledger's, so the run validates everything; a key of the ledger not carried, or
    a new key, is no collision."""
    from odp.delta import Split, collides
    from odp.publish.changes import key_index, to_arrow

    published = pd.DataFrame({"stop_id": ["a", "b", "c", "d"]}, dtype="string")
    keys = key_index(to_arrow(published), ["stop_id"])
    part = Split(published.iloc[0:0], carried_keys=keys[[0, 1]].to_numpy()).located(keys)
    rows = {k: pd.DataFrame({"stop_id": [k]}, dtype="string") for k in "bcz"}
    assert collides(part, rows["b"], ["stop_id"], keys)
    assert not collides(part, rows["c"], ["stop_id"], keys)  # published, not carried
    assert not collides(part, rows["z"], ["stop_id"], keys)  # new
    assert not collides(Split(published), rows["b"], ["stop_id"], keys)  # nothing carried


def test_the_record_is_read_as_its_file_s_pages_and_an_earlier_parquet_record_once(tmp_path):
    """The record of the last publish (raw and key hash per row) is an Arrow file mapped into
    memory: its hashes are the file's pages, not a copy (a grown file's run touches them only
    to write the next record). A record written before, as Parquet, is read the same and
    replaced by the next record."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from odp import delta
    from odp.publish.changes import to_arrow
    from odp.spec import load_city

    stops = load_dataset("transit-stops-vvo", REPO)
    city = load_city(REPO)
    published = pd.DataFrame({"stop_id": ["a", "b", "c"], "name": ["A", "B", "C"]},
                             dtype="string")
    raw = pd.Series(np.array([11, 12, 13], dtype=np.uint64))
    ledger = to_arrow(published.assign(_row_hash=np.array([1, 2, 3], dtype=np.uint64)))
    staged = SimpleNamespace(newest_load=None, staged=3)
    delta.record(stops, city, tmp_path, delta.Split(published, raw=raw), published, ledger,
                 staged)
    path = delta.rows_path(tmp_path, stops.name)
    found = delta._record(stops, city, tmp_path, ledger)
    assert found is not None and found.raw.tolist() == [11, 12, 13] and len(found.keys) == 3
    assert not found.raw.flags.owndata and not found.raw.flags.writeable  # the file's pages

    earlier = path.with_name("rows.parquet")  # as an earlier version wrote it
    pq.write_table(pa.ipc.open_file(str(path)).read_all(), earlier)
    path.unlink()
    again = delta._record(stops, city, tmp_path, ledger)
    assert again is not None and again.raw.tolist() == [11, 12, 13]
    assert again.keys.tolist() == found.keys.tolist()
    delta.record(stops, city, tmp_path, delta.Split(published, raw=raw), published, ledger,
                 staged)
    assert path.is_file() and not earlier.exists()


def test_a_record_that_carried_rows_is_one_batch_the_next_run_maps_as_it_is(tmp_path):
    """A run that carried rows writes the carried hashes and its own as one batch, in that
    order: the next run reads it as the file's pages, not a copy. A record of no carried rows
    is the validated rows' hashes alone."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa

    from odp import delta
    from odp.publish.changes import key_index, to_arrow
    from odp.spec import load_city

    stops = load_dataset("transit-stops-vvo", REPO)
    city = load_city(REPO)
    fresh = pd.DataFrame({"stop_id": ["d"], "name": ["D"]}, dtype="string", index=[3])
    ledger = to_arrow(fresh.assign(_row_hash=np.array([4], dtype=np.uint64)))
    carried = np.array([11, 12, 13], dtype=np.uint64), np.array([21, 22, 23], dtype=np.uint64)
    split = delta.Split(fresh, carried_keys=carried[1], carried_raw=carried[0],
                        raw=pd.Series(np.array([0, 0, 0, 14], dtype=np.uint64)))
    staged = SimpleNamespace(newest_load=None, staged=4)
    delta.record(stops, city, tmp_path, split, fresh, ledger, staged)
    path = delta.rows_path(tmp_path, stops.name)
    assert pa.ipc.open_file(str(path)).num_record_batches == 1
    found = delta._record(stops, city, tmp_path, ledger)
    assert found is not None and found.raw.tolist() == [11, 12, 13, 14]
    assert found.keys.tolist() == [21, 22, 23, *key_index(fresh, ["stop_id"]).tolist()]
    assert not found.raw.flags.owndata and not found.raw.flags.writeable  # the file's pages
    delta.record(stops, city, tmp_path, delta.Split(fresh, raw=split.raw), fresh, ledger,
                 staged)
    assert delta._record(stops, city, tmp_path, ledger).raw.tolist() == [14]


def test_a_grown_files_record_takes_the_carried_hashes_from_the_records_file(tmp_path):
    """A run that carried every recorded row writes the next record with the carried hashes
    read from the record's file, not through its mapping (whose pages would count as the
    run's memory): the record read back names where its hashes are, and the next record
    holds the file's hashes, then the run's own."""
    from types import SimpleNamespace

    import numpy as np

    from odp import delta
    from odp.publish.changes import key_index, to_arrow
    from odp.spec import load_city

    stops = load_dataset("transit-stops-vvo", REPO)
    city = load_city(REPO)
    first = pd.DataFrame({"stop_id": ["a", "b", "c"], "name": ["A", "B", "C"]},
                         dtype="string")
    ledger = to_arrow(first.assign(_row_hash=np.array([1, 2, 3], dtype=np.uint64)))
    staged = SimpleNamespace(newest_load=None, staged=3)
    delta.record(stops, city, tmp_path, delta.Split(first, raw=pd.Series(
        np.array([11, 12, 13], dtype=np.uint64))), first, ledger, staged)
    found = delta._record(stops, city, tmp_path, ledger)
    assert found is not None and found.at is not None
    for values, at in zip((found.raw, found.keys), found.at, strict=True):
        out = np.empty(len(values), dtype=np.uint64)
        assert at.read_into(out) and out.tolist() == values.tolist()

    added = pd.DataFrame({"stop_id": ["d"], "name": ["D"]}, dtype="string", index=[3])
    zeros = np.zeros(3, dtype=np.uint64)  # stand-ins: the values must come from the file
    split = delta.Split(added, carried_keys=zeros, carried_raw=zeros, carried_at=found.at,
                        raw=pd.Series(np.array([0, 0, 0, 14], dtype=np.uint64)))
    delta.record(stops, city, tmp_path, split, added, ledger, staged)
    again = delta._record(stops, city, tmp_path, ledger)
    assert again.raw.tolist() == [11, 12, 13, 14]
    assert again.keys.tolist() == [*found.keys.tolist(), *key_index(added, ["stop_id"]).tolist()]
