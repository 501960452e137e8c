"""Deletion policies in change detection, and the files published beside the DataStore."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from odp.publish.changes import DELETED_AT, diff
from odp.publish.datastore import copy_csv, csv_chunks
from tests.helpers import LEDGER_COLUMNS as COLUMNS
from tests.helpers import LEDGER_KEY as KEY
from tests.helpers import ledger_table as _table

NOW = pd.Timestamp("2024-11-21T05:00:00Z")




def _publish(rows, ledger=None, policy="mark-deleted"):
    return diff(_table(rows), ledger, KEY, COLUMNS, True, policy=policy, now=NOW)


def test_mark_deleted_keeps_gone_rows_and_revives_them():
    first = _publish([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")])
    assert DELETED_AT in first.columns and first.frame[DELETED_AT].isna().all()
    gone = _publish([(1, "a", "2024-01-01")], first.result)
    assert list(gone.deleted["id"]) == [2] and gone.new.empty and gone.changed.empty
    assert list(gone.marked["id"]) == [2] and (gone.marked[DELETED_AT] == NOW).all()
    assert list(gone.frame["id"]) == [1, 2]
    assert gone.frame.set_index("id").loc[2, DELETED_AT] == NOW
    # Still gone: nothing to do (it is not marked again).
    still = _publish([(1, "a", "2024-01-01")], gone.result)
    assert still.empty
    # Back at the source: revived as a change.
    back = _publish([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")], still.result)
    assert list(back.changed["id"]) == [2] and back.frame[DELETED_AT].isna().all()


def test_keep_history_hands_over_previous_versions():
    first = _publish([(1, "a", "2024-01-01"), (2, "b", "2024-01-02")], policy="keep-history")
    assert DELETED_AT not in first.columns
    later = _publish([(1, "A", "2024-01-01")], first.result, policy="keep-history")
    assert list(later.deleted["id"]) == [2] and list(later.changed["id"]) == [1]
    previous = later.previous.set_index("id")
    assert previous.loc[1, "name"] == "a" and previous.loc[2, "name"] == "b"
    assert list(later.frame["id"]) == [1]


def test_copy_csv_tells_null_from_empty_text_and_writes_utc():
    table = pd.DataFrame({
        "name": pd.array(["", None, 'a "quoted", text'], dtype="string"),
        "when": pd.to_datetime(["2024-03-31T01:30:00+01:00", None, "2024-10-27T02:30:00+02:00"],
                               utc=True),
        "value": [1.5, None, 3.0],
    })
    lines = copy_csv(table, ["name", "when", "value"]).decode().splitlines()
    assert lines[0].startswith('"","2024-03-31 00:30:00')  # empty text is quoted: not NULL
    assert lines[0].endswith('"1.5"')
    assert lines[1] == ",,"  # NULLs are unquoted empties
    assert lines[2].startswith('"a ""quoted"", text","2024-10-27 00:30:00')


def test_copy_csv_of_a_concatenated_frame_has_no_nul_bytes():
    rows = pd.DataFrame({"name": pd.array(["a", "b"], dtype="string"),
                         "n": pd.array([1, None], dtype="Int64")})
    rows["when"] = pd.Timestamp("2024-11-21T05:00:00Z")
    both = pd.concat([rows.iloc[0:0], rows], ignore_index=True)  # multi-chunk arrow columns
    data = copy_csv(both, ["name", "n", "when"])
    assert b"\x00" not in data and data.decode().splitlines()[1].startswith('"b",,')


def test_csv_chunks_are_the_same_bytes_as_one_copy_csv():
    table = pd.DataFrame({"name": pd.array([f"r{i}" if i % 4 else None for i in range(10)],
                                           dtype="string"),
                          "n": pd.array(range(10), dtype="Int64")})
    chunks = list(csv_chunks(table, ["name", "n"], rows=3))
    assert len(chunks) == 4  # 3 + 3 + 3 + 1 rows
    assert b"".join(chunks) == copy_csv(table, ["name", "n"])


def test_resource_files(tmp_path):
    from odp.publish.resources import write_csv, write_parquet

    table = pd.DataFrame({"id": [1, 2], "when": pd.to_datetime(["2024-01-01", "2024-01-02"],
                                                                utc=True)})
    csv = write_csv(table, ["id", "when"], tmp_path / "t.csv").read_text(encoding="utf-8")
    assert csv.splitlines() == ["id,when", "1,2024-01-01T00:00:00Z", "2,2024-01-02T00:00:00Z"]
    published = pa.Table.from_pandas(table.astype({"id": "Int64"}), preserve_index=False)
    path = write_parquet(published, ["id", "when"], tmp_path / "t.parquet")
    parquet = pq.read_table(path)
    assert str(parquet.schema.field("when").type).endswith("tz=UTC]")
    assert str(pd.read_parquet(path)["id"].dtype) == "Int64"  # a developer's pandas: as typed
    assert json.loads(json.dumps(parquet.to_pylist()[0], default=str))["id"] == 1
