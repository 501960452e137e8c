"""Change detection against the ledger of the last publish."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.publish.changes import diff, read_ledger, write_ledger
from tests.helpers import LEDGER_COLUMNS as COLUMNS
from tests.helpers import LEDGER_KEY as KEY
from tests.helpers import ledger_table as _table


def test_first_run_is_all_new():
    changes = diff(_table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")]), None, KEY, COLUMNS,
                   True)
    assert len(changes.new) == 2 and changes.changed.empty and changes.deleted.empty


def _sorted_on_disk(rows, folder, parts):
    """`rows` written part by part as odp.inparts writes located rows, sorted on disk."""
    from odp.inparts import LocatedRows

    located = LocatedRows(folder / "t.located.parquet")
    first = 0
    for size in parts:
        part = rows.iloc[first:first + size]
        located.add(part, _raw(part.index))
        first += size
    on_disk = located.in_key_order(KEY, COLUMNS)
    assert not located.path.exists()  # the parts' file is gone once sorted
    return on_disk


def _raw(places):
    """Stand-ins for the rows' raw hashes: one of its own per place."""
    import numpy as np

    return np.asarray(places, dtype=np.uint64) * 7919 + 3


@pytest.mark.parametrize("policy", ["delete", "mark-deleted"])
def test_a_first_publish_sorted_on_disk_is_the_table_the_rows_give_in_memory(
        tmp_path, policy):
    """Rows validated in parts stay on disk for a first publish: sorted there by key, they
    give the published table, row hashes, key hashes and types that the rows in memory give,
    every row new; written as the ledger, the next run finds them unchanged."""
    import numpy as np

    from odp.publish.changes import first_publish

    rows = _table([(3, "c", "2024-01-03"), (1, "a", "2024-01-01"), (2, "b", None),
                   (5, None, "2024-01-05"), (4, "d", "2024-01-04")])
    rows.index = [10, 11, 12, 13, 14]  # places in staging
    on_disk = _sorted_on_disk(rows, tmp_path, [2, 0, 3])
    assert list(on_disk.places()) == [11, 12, 10, 14, 13]  # the rows' places, in key order
    assert np.array_equal(on_disk.raw_hashes(), _raw(on_disk.places()))  # … each its own
    frame = on_disk.frame()
    assert list(frame.index) == [11, 12, 10, 14, 13]
    pd.testing.assert_frame_equal(frame, rows.loc[frame.index])
    in_memory = diff(rows, None, KEY, COLUMNS, True, policy=policy)
    changes = first_publish(on_disk, KEY, policy)
    assert len(changes.new) == 5 and not changes.empty and changes.unchanged == 0
    assert changes.changed.empty and changes.deleted.empty
    assert list(changes.changed.columns) == list(in_memory.changed.columns)
    assert changes.columns == in_memory.columns
    pd.testing.assert_frame_equal(changes.frame, in_memory.frame)  # values, hashes, types
    assert changes.result.to_table().equals(in_memory.result)  # the ledger, key hashes too
    assert np.array_equal(on_disk.key_hashes(), in_memory.result.column("_key_hash"))
    write_ledger(tmp_path, "d", changes.result)
    on_disk.remove()
    assert not on_disk.path.exists()
    again = diff(rows, read_ledger(tmp_path, "d"), KEY, COLUMNS, True, policy=policy)
    assert again.empty and again.unchanged == 5


def test_rows_sorted_on_disk_in_many_buckets_are_in_key_order(tmp_path, monkeypatch):
    """Many parts, many buckets, rows in no order: the sorted file holds every row once, in
    key order, with each row's own values and place."""
    import numpy as np

    from odp.publish import sortedrows

    monkeypatch.setattr(sortedrows, "BATCH_ROWS", 16)
    monkeypatch.setattr(sortedrows, "MAX_BUCKETS", 4)  # 4 buckets of 256 rows
    ids = np.random.default_rng(7).permutation(1000)
    rows = _table([(int(i), f"n{i}", f"2024-01-{1 + i % 28:02d}") for i in ids])
    rows.index = np.arange(1000) * 3
    on_disk = _sorted_on_disk(rows, tmp_path, [100, 250, 1, 0, 649])
    frame = on_disk.frame()
    assert list(frame["id"]) == list(range(1000))
    assert np.array_equal(on_disk.raw_hashes(), _raw(frame.index))
    pd.testing.assert_frame_equal(frame, rows.loc[frame.index])
    import pyarrow.parquet as pq

    groups = pq.ParquetFile(on_disk.path).metadata
    assert {groups.row_group(g).num_rows for g in range(groups.num_row_groups - 1)} == {16}
    assert not list(tmp_path.glob("*.buckets"))  # the buckets are gone


def test_unchanged_after_a_parquet_round_trip(tmp_path):
    table = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")])
    write_ledger(tmp_path, "d", diff(table, None, KEY, COLUMNS, True).result)
    again = diff(table, read_ledger(tmp_path, "d"), KEY, COLUMNS, True)
    assert again.empty and again.unchanged == 2


def test_full_refresh_finds_new_changed_and_deleted():
    old = diff(_table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02"), (3, "c", "2024-01-03")]),
               None, KEY, COLUMNS, True).result
    changes = diff(_table([(1, "a", "2024-01-01"), (2, "B", "2024-01-02"), (4, "d", "2024-01-04")]),
                   old, KEY, COLUMNS, True)
    assert list(changes.new["id"]) == [4]
    assert list(changes.changed["id"]) == [2]
    assert list(changes.deleted["id"]) == [3]
    assert list(changes.frame["id"]) == [1, 2, 4]
    assert changes.frame.set_index("id").loc[2, "name"] == "B"


def test_incremental_keeps_rows_not_in_the_batch():
    old = diff(_table([(1, "a", "2024-01-01")]), None, KEY, COLUMNS, False).result
    changes = diff(_table([(2, "b", "2024-01-02")]), old, KEY, COLUMNS, False)
    assert changes.deleted.empty and list(changes.frame["id"]) == [1, 2]


def test_a_column_the_schema_gained_updates_every_row_without_failing(tmp_path):
    table = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")])
    write_ledger(tmp_path, "d", diff(table, None, KEY, COLUMNS, True).result)
    wider = table.assign(quality=["exact", None])  # e.g. a new derived column
    wider["quality"] = wider["quality"].astype("string")
    for policy in ("delete", "mark-deleted", "keep-history"):
        changes = diff(wider, read_ledger(tmp_path, "d"), KEY, COLUMNS + ["quality"], True,
                       policy)
        assert list(changes.changed["id"]) == [1, 2] and changes.new.empty, policy
        assert list(changes.frame["quality"].fillna("-")) == ["exact", "-"]


def _text_hashes(table):
    """Row hashes as ledgers before hash version 2 held them (timestamps formatted as text)."""
    import pandas as pd

    canonical = pd.DataFrame({
        c: (table[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z").astype("string")
            if pd.api.types.is_datetime64_any_dtype(table[c])
            else table[c].astype("Float64") if c == "id" else table[c].astype("string"))
        for c in COLUMNS})
    return pd.util.hash_pandas_object(canonical, index=False).astype("uint64")


def test_a_ledger_with_text_hashed_timestamps_is_migrated_and_finds_nothing_changed(tmp_path):
    table = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")])
    old = diff(table, None, KEY, COLUMNS, True).frame.copy()
    old["_row_hash"] = _text_hashes(old)
    path = tmp_path / "published" / "d.parquet"
    path.parent.mkdir()
    old.to_parquet(path, index=False)  # as written before: no hash version in the metadata
    again = diff(table, read_ledger(tmp_path, "d"), KEY, COLUMNS, True)
    assert again.empty and again.unchanged == 2
    write_ledger(tmp_path, "d", again.result)  # now marked: read as written
    assert read_ledger(tmp_path, "d")["_row_hash"].to_pylist() == again.frame["_row_hash"].tolist()


def test_a_timestamp_one_second_later_is_a_change_the_same_instant_elsewhere_is_not():
    import pandas as pd

    table = _table([(1, "a", "2024-01-01T10:00:00"), (2, "b", "2024-01-02T10:00:00")])
    old = diff(table, None, KEY, COLUMNS, True).result
    moved = table.copy()
    moved.loc[1, "when"] += pd.Timedelta(seconds=1)
    assert list(diff(moved, old, KEY, COLUMNS, True).changed["id"]) == [2]
    berlin = table.assign(when=table["when"].dt.tz_convert("Europe/Berlin").dt.as_unit("us"))
    assert diff(berlin, old, KEY, COLUMNS, True).empty


def test_rows_carried_over_by_key_are_neither_deleted_nor_rewritten(tmp_path):
    from odp.publish.changes import key_index

    old = diff(_table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02"), (3, "c", "2024-01-03")]),
               None, KEY, COLUMNS, True).result
    write_ledger(tmp_path, "d", old)  # read back: Arrow-backed, read-only arrays
    ledger = read_ledger(tmp_path, "d")
    published = ledger.to_pandas()
    carried = key_index(published[published["id"] == 1], KEY).to_numpy()
    changes = diff(_table([(2, "B", "2024-01-02"), (4, "d", "2024-01-04")]), ledger, KEY,
                   COLUMNS, True, carried=carried)
    assert list(changes.changed["id"]) == [2] and list(changes.new["id"]) == [4]
    assert list(changes.deleted["id"]) == [3] and changes.unchanged == 1
    assert list(changes.frame["id"]) == [1, 2, 4]


@pytest.mark.parametrize("group_rows", [2000, 1])  # one row group, or one per row
def test_rows_delivered_between_published_ones_end_in_key_order_and_leave_the_ledger_as_read(
        tmp_path, monkeypatch, group_rows):
    from odp.publish import ledgerfile
    from odp.publish.changes import key_index

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", group_rows)

    write_ledger(tmp_path, "d", diff(_table([(1, "a", "2024-01-01"), (3, "c", "2024-01-03"),
                                             (5, "e", "2024-01-05")]), None, KEY, COLUMNS,
                                     True).result)
    ledger = read_ledger(tmp_path, "d")
    before = ledger.to_pandas()
    carried = key_index(before[before["id"] != 3], KEY).to_numpy()  # 1 and 5 as published
    wider = _table([(2, "b", "2024-01-02"), (3, "C", "2024-01-03"), (4, "d", "2024-01-04"),
                    (6, "f", "2024-01-06")]).assign(quality="exact")
    for policy in ("delete", "mark-deleted", "keep-history"):
        changes = diff(wider, ledger, KEY, COLUMNS + ["quality"], True, policy, carried=carried)
        assert list(changes.new["id"]) == [2, 4, 6] and list(changes.changed["id"]) == [3]
        assert changes.unchanged == 2 and changes.deleted.empty, policy
        assert list(changes.frame["id"]) == [1, 2, 3, 4, 5, 6], policy
        assert list(changes.frame.index) == list(range(6)), policy
        assert list(changes.frame["name"]) == ["a", "b", "C", "d", "e", "f"], policy
        assert list(changes.previous["id"]) == [3], policy
    assert ledger.to_pandas().equals(before)
    nothing_new = diff(before.iloc[0:0][COLUMNS], ledger, KEY, COLUMNS, True,
                       carried=key_index(ledger, KEY).to_numpy())
    assert nothing_new.empty and nothing_new.frame[COLUMNS].equals(before[COLUMNS])


def test_a_run_reads_the_ledger_s_hashes_whole_and_its_rows_a_row_group_at_a_time(
        tmp_path, monkeypatch):
    """A run that adds a few rows to a large ledger must not hold the published table: the
    diff reads only the stored key and row hashes whole, the rows it replaces and the next
    ledger are read a row group at a time, and the next ledger is in key order."""
    from odp.publish import ledgerfile
    from odp.publish.changes import KEY_HASH, key_index, stage_ledger, stored_keys

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 100)
    even = _table([(i, f"n{i}", "2024-01-01") for i in range(0, 2000, 2)])
    write_ledger(tmp_path, "d", diff(even, None, KEY, COLUMNS, False).result)
    ledger = read_ledger(tmp_path, "d")
    reads: list[tuple[list[str], int | None]] = []
    original = ledgerfile.LedgerFile._read

    def spy(self, names, group=None, reader=None):
        reads.append((list(names), group))
        return original(self, names, group, reader)

    monkeypatch.setattr(ledgerfile.LedgerFile, "_read", spy)
    added = diff(_table([(7, "seven", "2024-01-02"), (1001, "x", "2024-01-03"),
                         (1003, "y", "2024-01-03"), (4, "four", "2024-01-01")]), ledger, KEY,
                 COLUMNS, True,
                 carried=stored_keys(ledger, KEY).to_numpy()[3:])
    staged = stage_ledger(tmp_path, "d", added.result)
    whole = {name for names, group in reads if group is None for name in names}
    assert whole <= {KEY_HASH}, whole  # the row hashes of the rows delivered: by row group
    assert {group for _, group in reads if group is not None} == set(range(10))
    assert list(added.new["id"]) == [7, 1001, 1003] and list(added.changed["id"]) == [4]
    assert list(added.deleted["id"]) == [0, 2] and list(added.previous["id"]) == [0, 2, 4]
    import pyarrow.parquet as pq

    written = pq.read_table(staged)
    ids = written.column("id").to_pylist()
    assert len(ids) == 1001 and ids == sorted(ids) and ids[:4] == [4, 6, 7, 8]
    assert written.column("name").to_pylist()[0] == "four"
    groups = pq.ParquetFile(staged).metadata  # of one size, whatever rows were added
    assert [groups.row_group(g).num_rows for g in range(groups.num_row_groups)] == [100] * 10 + [1]
    chunks = {groups.row_group(0).column(i).path_in_schema: groups.row_group(0).column(i)
              for i in range(groups.num_columns)}  # hashes stored as they are: none shrink
    assert {n: c.compression for n, c in chunks.items() if n.startswith("_")} == {
        "_row_hash": "UNCOMPRESSED", "_key_hash": "UNCOMPRESSED"}
    assert chunks["name"].compression == "SNAPPY"
    # The present counts written beside the rows are the written rows' own.
    from odp.publish.ledgerfile import LedgerFile, present_counts

    assert LedgerFile(staged).present == present_counts(written)
    assert LedgerFile(staged).present["id"] == 1001  # not the last ledger's 1000
    # … and so is the sum of the row hashes (the content digest), read without the column.
    import pyarrow.compute as pc

    from odp.publish.changes import hash_sum

    expected = int(pc.sum(written.column("_row_hash")).as_py()) % 2**64
    assert added.result.hash_sum() == expected
    monkeypatch.setattr(ledgerfile.LedgerFile, "_read", lambda *_: 1 / 0)
    assert hash_sum(LedgerFile(staged)) == expected
    # The key hashes stored beside the rows (no run hashes a large ledger's keys again) are
    # those of the rows they stand beside.
    assert stored_keys(written, KEY).equals(key_index(written, KEY))


def test_a_ledger_written_and_read_again_keeps_the_validated_dtypes(tmp_path):
    """The ledger, its readers' pandas (a derived dataset reads it) and a column the schema
    gained since the last publish all keep the rows' dtypes: nullable integers stay
    integers, text stays text."""
    import pandas as pd

    from odp.publish.changes import as_frame, ledger_path

    write_ledger(tmp_path, "d", diff(_table([(1, "a", "2024-01-01")]), None, KEY, COLUMNS,
                                     True).result)
    wider = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")]).assign(
        count=pd.array([None, 3], dtype="Int64"))
    changes = diff(wider, read_ledger(tmp_path, "d"), KEY, COLUMNS + ["count"], True)
    assert list(changes.changed["id"]) == [1] and list(changes.new["id"]) == [2]
    write_ledger(tmp_path, "d", changes.result)
    for frame in (as_frame(read_ledger(tmp_path, "d")),
                  pd.read_parquet(ledger_path(tmp_path, "d"))):
        assert str(frame["id"].dtype) == "Int64" and str(frame["count"].dtype) == "Int64"
        assert isinstance(frame["name"].dtype, pd.StringDtype)
        assert frame["count"].tolist() == [pd.NA, 3]


def test_a_column_empty_in_every_published_row_takes_the_type_of_its_first_value(tmp_path):
    """A date column no published row had a value in (Arrow: a column of type null) joins the
    run's first date without a cast error, and the published table keeps every row."""
    import datetime as dt

    import pandas as pd

    from odp.publish.changes import as_frame

    def rows(days: list[dt.date | None]) -> pd.DataFrame:
        table = _table([(i + 1, f"n{i}", "2024-01-01") for i in range(len(days))])
        return table.assign(day=pd.Series(days, dtype=object))

    columns = COLUMNS + ["day"]
    write_ledger(tmp_path, "d", diff(rows([None, None]), None, KEY, columns, True).result)
    ledger = read_ledger(tmp_path, "d")
    assert str(ledger.schema.field("day").type) == "null"
    changes = diff(rows([None, None, dt.date(2024, 5, 1)]), ledger, KEY, columns, True)
    assert list(changes.new["id"]) == [3] and changes.unchanged == 2
    write_ledger(tmp_path, "d", changes.result)
    published = as_frame(read_ledger(tmp_path, "d"))
    assert published["day"].tolist() == [None, None, dt.date(2024, 5, 1)]


def test_a_column_whose_type_changed_joins_the_published_rows_without_a_failed_run():
    """The Table Schema changed a field's type: the rows delivered again carry the new type; a
    published row not delivered again keeps its value, in the new type where it converts,
    else as text."""
    import pandas as pd

    def rows(codes: list, dtype: str) -> pd.DataFrame:
        table = _table([(i + 1, f"n{i}", "2024-01-01") for i in range(len(codes))])
        return table.assign(code=pd.array(codes, dtype=dtype))

    columns = COLUMNS + ["code"]
    numbers = diff(rows([7, 8], "Int64"), None, KEY, columns, True).result
    again = diff(rows(["07", "08"], "string"), numbers, KEY, columns, True)
    assert again.frame["code"].tolist() == ["07", "08"] and len(again.changed) == 2
    part = diff(rows(["07"], "string"), numbers, KEY, columns, False)  # row 2 not delivered
    assert part.frame["code"].tolist() == ["07", "8"]
    words = diff(rows(["x", "9"], "string"), None, KEY, columns, True).result
    back = diff(rows([5], "Int64"), words, KEY, columns, False)  # "9" converts, "x" does not
    assert back.frame["code"].tolist() == ["5", "9"]


def test_a_few_keys_are_found_in_a_large_ledger_as_its_own_index_finds_them():
    """The run's few keys are looked up by probing the ledger's keys into a table of the few
    (not a table of the ledger's millions): the same rows, −1 for a key not published, a key
    given twice found twice, and the ledger's own index used when the keys are many."""
    import numpy as np
    import pandas as pd

    from odp.publish.changes import positions

    ledger = pd.Index(np.arange(1000, 0, -1, dtype=np.uint64) * 7)
    keys = np.array([7, 700, 5, 7000, 700], dtype=np.uint64)
    expected = [999, 900, -1, 0, 900]
    assert positions(ledger, keys).tolist() == expected
    assert positions(ledger, keys).tolist() == ledger.get_indexer(keys).tolist()
    many = ledger.to_numpy()[::-1].copy()
    assert positions(ledger, many).tolist() == list(range(999, -1, -1))


def test_a_ledger_nothing_changed_in_is_copied_as_it_is(tmp_path):
    """A publish that changed no row (e.g. only the metadata) writes the next ledger as a copy
    of the file: the same bytes, its counts kept."""
    from odp.publish.changes import ledger_path, stage_ledger

    table = _table([(i, f"n{i}", "2024-01-01") for i in range(50)])
    write_ledger(tmp_path, "d", diff(table, None, KEY, COLUMNS, True).result)
    ledger = read_ledger(tmp_path, "d")
    again = diff(table, ledger, KEY, COLUMNS, True)
    assert again.empty
    staged = stage_ledger(tmp_path, "d", again.result)
    assert staged.read_bytes() == ledger_path(tmp_path, "d").read_bytes()


def test_rows_whose_key_changed_type_join_the_published_ones_in_the_new_type_s_order(
        tmp_path, monkeypatch):
    """The key's type changed (text published, integers delivered, a published value that
    is no number): the published table keeps every row, as text, in the order of text —
    also when its rows are merged a row group (here: a row) at a time."""
    import pandas as pd

    from odp.publish import ledgerfile

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 1)
    words = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")]).assign(
        id=pd.array(["15", "x"], dtype="string"))
    write_ledger(tmp_path, "d", diff(words, None, KEY, COLUMNS, True).result)
    numbers = _table([(10, "c", "2024-01-03"), (20, "d", "2024-01-04"),
                      (100, "e", "2024-01-05")])
    changes = diff(numbers, read_ledger(tmp_path, "d"), KEY, COLUMNS, False)
    assert changes.frame["id"].tolist() == ["10", "100", "15", "20", "x"]


def test_a_ledger_without_stored_key_hashes_or_a_new_column_reads_them_by_row_group(tmp_path,
                                                                                    monkeypatch):
    """A ledger written before key hashes and the sum of its row hashes were stored, read by
    a run whose schema gained a column: its sum is summed from its rows, each row group gives
    the key hashes of its own rows and the new column empty — also a row group of which only
    those are read."""
    import pyarrow.parquet as pq

    from odp.publish import ledgerfile
    from odp.publish.changes import KEY_HASH, key_index, ledger_path, stored_keys

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 2)
    table = _table([(i, f"n{i}", "2024-01-01") for i in range(5)])
    write_ledger(tmp_path, "d", diff(table, None, KEY, COLUMNS, True).result)
    path = ledger_path(tmp_path, "d")
    earlier = pq.read_table(path).drop_columns([KEY_HASH])  # nor the sum of its row hashes
    earlier = earlier.replace_schema_metadata({k: v for k, v in earlier.schema.metadata.items()
                                               if k != ledgerfile.HASH_SUM})
    pq.write_table(earlier, path, row_group_size=2)
    ledger = read_ledger(tmp_path, "d")
    import pyarrow.compute as pc

    from odp.publish.changes import hash_sum

    assert hash_sum(ledger) == int(pc.sum(earlier.column("_row_hash")).as_py())
    keys = stored_keys(ledger, KEY)
    assert keys.equals(key_index(table, KEY))
    import pyarrow as pa

    view = ledger.conformed({"quality": pa.string()}, keys.to_numpy(),
                            [*COLUMNS, "quality", KEY_HASH])
    parts = list(view.batches([KEY_HASH, "quality"]))
    assert [p.num_rows for p in parts] == [2, 2, 1]
    assert [k for p in parts for k in p.column(KEY_HASH).to_pylist()] == keys.tolist()
    assert all(v is None for p in parts for v in p.column("quality").to_pylist())


def test_rows_hashed_a_slice_at_a_time_have_the_hashes_of_one_pass(monkeypatch):
    """A first publish of millions of rows hashes them a slice at a time (their canonical
    copy is a slice's): the same hash for every row as hashing them at once, missing values
    and the row labels included."""
    from odp.publish import changes

    rows = _table([(i, f"name {i % 7}", f"2024-01-{1 + i % 28:02d}") for i in range(50)])
    rows.loc[3, "name"] = None
    rows.index = rows.index + 100
    whole = changes.row_hashes(rows, COLUMNS)
    monkeypatch.setattr(changes, "_HASH_ROWS", 7)
    sliced = changes.row_hashes(rows, COLUMNS)
    assert sliced.equals(whole) and list(sliced.index) == list(rows.index)
    assert whole.nunique() == 50


def test_a_ledger_file_is_read_by_two_threads_at_once(tmp_path):
    """A first publish's rows on disk are read by the DataStore load and the ledger's write
    at once: each reading has a Parquet reader of its own (one shared reader failed a 10M-row
    run: "ReadRangeCache did not find matching cache entry")."""
    import threading

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from odp.publish.ledgerfile import LedgerFile

    rows = 400_000
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": np.arange(rows), "b": pa.array([f"x{i}" for i in range(rows)])}),
                   path, row_group_size=2_000)
    file, read, failed = LedgerFile(path), [], []

    def read_all() -> None:
        try:
            for _ in range(3):
                read.append(sum(part.num_rows for part in file.batches()))
        except Exception as exc:  # noqa: BLE001 (reported below)
            failed.append(repr(exc))

    threads = [threading.Thread(target=read_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed and read == [rows] * 6


def test_a_ledger_dictionary_encodes_only_columns_of_repeated_values(tmp_path, monkeypatch):
    """Written first or merged, a ledger keeps Parquet's dictionary for a column of few values
    (a district's name) and stores distinct values — ids, each row's time, the hashes — plain:
    a dictionary of distinct values only adds an index to every row."""
    import pyarrow.parquet as pq

    from odp.publish import ledgerfile
    from odp.publish.changes import ledger_path, stage_ledger, stored_keys

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 100)

    def encoded(path):
        group = pq.ParquetFile(path).metadata.row_group(0)
        return {group.column(i).path_in_schema: "RLE_DICTIONARY" in group.column(i).encodings
                for i in range(group.num_columns)}

    rows = [(i, ["Altstadt", "Neustadt"][i % 2], f"2024-01-01 00:{i // 60:02}:{i % 60:02}")
            for i in range(0, 400, 2)]
    write_ledger(tmp_path, "d", diff(_table(rows), None, KEY, COLUMNS, False).result)
    first = encoded(ledger_path(tmp_path, "d"))
    assert first == {"id": False, "name": True, "when": False, "_row_hash": False,
                     "_key_hash": False}, first
    ledger = read_ledger(tmp_path, "d")
    merged = diff(_table([(1, "Altstadt", "2024-01-02")]), ledger, KEY, COLUMNS, True,
                  carried=stored_keys(ledger, KEY).to_numpy())
    assert encoded(stage_ledger(tmp_path, "d", merged.result)) == first
