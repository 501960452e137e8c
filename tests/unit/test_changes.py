"""Change detection against the ledger of the last publish."""

from __future__ import annotations

import pytest

from odp.publish.changes import diff, read_ledger, write_ledger
from tests.helpers import LEDGER_COLUMNS as COLUMNS
from tests.helpers import LEDGER_KEY as KEY
from tests.helpers import ledger_table as _table


def test_first_run_is_all_new():
    changes = diff(_table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")]), None, KEY, COLUMNS,
                   True)
    assert len(changes.new) == 2 and changes.changed.empty and changes.deleted.empty


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
    assert list(changes.result["id"]) == [1, 2, 4]
    assert changes.result.set_index("id").loc[2, "name"] == "B"


def test_incremental_keeps_rows_not_in_the_batch():
    old = diff(_table([(1, "a", "2024-01-01")]), None, KEY, COLUMNS, False).result
    changes = diff(_table([(2, "b", "2024-01-02")]), old, KEY, COLUMNS, False)
    assert changes.deleted.empty and list(changes.result["id"]) == [1, 2]


def test_a_column_the_schema_gained_updates_every_row_without_failing(tmp_path):
    table = _table([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")])
    write_ledger(tmp_path, "d", diff(table, None, KEY, COLUMNS, True).result)
    wider = table.assign(quality=["exact", None])  # e.g. a new derived column
    wider["quality"] = wider["quality"].astype("string")
    for policy in ("delete", "mark-deleted", "keep-history"):
        changes = diff(wider, read_ledger(tmp_path, "d"), KEY, COLUMNS + ["quality"], True,
                       policy)
        assert list(changes.changed["id"]) == [1, 2] and changes.new.empty, policy
        assert list(changes.result["quality"].fillna("-")) == ["exact", "-"]


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
    old = diff(table, None, KEY, COLUMNS, True).result
    old["_row_hash"] = _text_hashes(old)
    path = tmp_path / "published" / "d.parquet"
    path.parent.mkdir()
    old.to_parquet(path, index=False)  # as written before: no hash version in the metadata
    again = diff(table, read_ledger(tmp_path, "d"), KEY, COLUMNS, True)
    assert again.empty and again.unchanged == 2
    write_ledger(tmp_path, "d", again.result)  # now marked: read as written
    assert read_ledger(tmp_path, "d")["_row_hash"].tolist() == again.result["_row_hash"].tolist()


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
    carried = key_index(ledger[ledger["id"] == 1], KEY).to_numpy()
    changes = diff(_table([(2, "B", "2024-01-02"), (4, "d", "2024-01-04")]), ledger, KEY,
                   COLUMNS, True, carried=carried)
    assert list(changes.changed["id"]) == [2] and list(changes.new["id"]) == [4]
    assert list(changes.deleted["id"]) == [3] and changes.unchanged == 1
    assert list(changes.result["id"]) == [1, 2, 4]


@pytest.mark.parametrize("stretches", [2000, 1])  # assembled from stretches, or reordered
def test_rows_delivered_between_published_ones_end_in_key_order_and_leave_the_ledger_as_read(
        tmp_path, monkeypatch, stretches):
    from odp.publish import changes as module
    from odp.publish.changes import key_index

    monkeypatch.setattr(module, "_MAX_STRETCHES", stretches)

    write_ledger(tmp_path, "d", diff(_table([(1, "a", "2024-01-01"), (3, "c", "2024-01-03"),
                                             (5, "e", "2024-01-05")]), None, KEY, COLUMNS,
                                     True).result)
    ledger = read_ledger(tmp_path, "d")
    before = ledger.copy()
    carried = key_index(ledger[ledger["id"] != 3], KEY).to_numpy()  # 1 and 5 as published
    wider = _table([(2, "b", "2024-01-02"), (3, "C", "2024-01-03"), (4, "d", "2024-01-04"),
                    (6, "f", "2024-01-06")]).assign(quality="exact")
    for policy in ("delete", "mark-deleted", "keep-history"):
        changes = diff(wider, ledger, KEY, COLUMNS + ["quality"], True, policy, carried=carried)
        assert list(changes.new["id"]) == [2, 4, 6] and list(changes.changed["id"]) == [3]
        assert changes.unchanged == 2 and changes.deleted.empty, policy
        assert list(changes.result["id"]) == [1, 2, 3, 4, 5, 6], policy
        assert list(changes.result.index) == list(range(6)), policy
        assert list(changes.result["name"]) == ["a", "b", "C", "d", "e", "f"], policy
        assert list(changes.previous["id"]) == [3], policy
    assert list(ledger.columns) == list(before.columns) and ledger.equals(before)
    nothing_new = diff(ledger.iloc[0:0][COLUMNS], ledger, KEY, COLUMNS, True,
                       carried=key_index(ledger, KEY).to_numpy())
    assert nothing_new.empty and nothing_new.result[COLUMNS].equals(ledger[COLUMNS])
    assert nothing_new.result is not ledger
