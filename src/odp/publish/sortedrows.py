"""A first publish's rows on the state disk, in key order, with their row and key hashes: the
parts' located rows (odp.inparts) sorted without being held, so that the publish stage reads
them a row group at a time as it reads a ledger (odp.publish.ledgerfile).

A 10M-row first run held its located rows as one frame from the end of the validate stage to
the end of the run (1.8 GB); the change detection, the DCAT metadata, the files, the DataStore
load and the first ledger each went over it. Now the rows are sorted on disk in two passes:
  1. the key columns are read (alone) and ordered; each part's rows are sent, in that order's
     buckets, to a file per bucket (Arrow IPC, not compressed);
  2. each bucket is read, put in order, hashed (`changes.row_hashes`, `changes.key_index`:
     the values a frame of the whole delivery would give) and written as row groups of the
     sorted file.
So at most a batch of rows and a bucket are held, besides the key columns and the order (10M
rows of a two-column key: about 0.3 GB while the order is computed).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from odp.publish.ledgerfile import BATCH_ROWS, HASH, KEY_HASH, LedgerFile, dictionary_columns

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

PLACE = "__odp_staged_row__"  # a row's place in staging (the validated frame's index label)
RAW = "__odp_raw_hash__"  # its raw hash as staged (odp.delta.raw_hashes: the delta's record)

# At most this many bucket files are open at once (well under a process's usual 1,024 open
# files); a bucket holds a multiple of BATCH_ROWS rows (10M rows: 77 buckets of 131,072).
MAX_BUCKETS = 256


@dataclass(frozen=True)
class SortedRows:
    """The sorted file: `names` (the published columns), HASH, KEY_HASH, PLACE and RAW."""

    path: Path
    num_rows: int
    names: tuple[str, ...]

    def __len__(self) -> int:
        return self.num_rows

    def ledger(self, extra: dict[str, pa.DataType] | None = None,
               before_hash: tuple[str, ...] = ()) -> LedgerFile:
        """The rows as a ledger file reads them: the published columns, `before_hash` (of
        `extra`, e.g. mark-deleted's DELETED_AT), HASH and KEY_HASH — without PLACE and RAW."""
        return LedgerFile(self.path, extra, names=[*self.names, *before_hash, HASH, KEY_HASH])

    def _column(self, name: str) -> np.ndarray:
        return LedgerFile(self.path).array(name)

    def places(self) -> pd.Index:
        """The rows' places in staging, in key order."""
        return pd.Index(self._column(PLACE))

    def key_hashes(self) -> np.ndarray:
        return self._column(KEY_HASH).astype(np.uint64, copy=False)

    def raw_hashes(self) -> np.ndarray:
        """The rows' raw hashes as staged, in key order."""
        return self._column(RAW).astype(np.uint64, copy=False)

    def key_frame(self, key: list[str]) -> pd.DataFrame:
        """The key columns, indexed by the rows' places."""
        from odp.publish.changes import as_frame

        frame = as_frame(LedgerFile(self.path).select(key))
        frame.index = self.places()
        return frame

    def empty(self) -> pd.DataFrame:
        """A frame of no rows with the published columns, typed as `frame`'s."""
        from odp.publish.changes import as_frame

        file = LedgerFile(self.path)
        return as_frame(file.schema_of(list(self.names)).empty_table())

    def frame(self) -> pd.DataFrame:
        """The published columns as one frame indexed by the rows' places (in key order):
        what the whole validation hands on, for a publish that compares with a ledger."""
        from odp.publish.changes import as_frame

        file = LedgerFile(self.path)
        columns = {name: as_frame(file.select([name]))[name].array for name in self.names}
        return pd.DataFrame(columns, index=self.places(), copy=False)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def sort_on_disk(source: Path, key: list[str], names: list[str], target: Path) -> SortedRows:
    """The rows of `source` (a Parquet file with `names`, PLACE and RAW, e.g. one row group a
    part) written to `target` in the order of their key's values (stable: `changes.key_order`),
    hashed, in row groups of BATCH_ROWS rows."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # Not pre-buffered: a reader's cache of pre-buffered ranges lasts as long as its batches
    # are read (10M rows: 0.3 GB more at the end of pass 1, all of it kept).
    file = pq.ParquetFile(str(source), pre_buffer=False)
    total = file.metadata.num_rows
    # per row of `source`: its place in key order (10M rows: 40 MB as 32-bit integers)
    rank = np.empty(total, dtype=np.int32 if total < 2**31 else np.int64)
    # Arrow's stable sort of the key columns as read, nulls last: the order
    # `changes.key_order` gives, without its pandas copy (10M rows of a two-column key: 0.2 GB
    # less at the peak).
    order = (pc.sort_indices(file.read(columns=key), sort_keys=[(k, "ascending") for k in key])
             .to_numpy() if key else np.arange(total))
    rank[order] = np.arange(total, dtype=rank.dtype)
    del order
    size = BATCH_ROWS * max(1, -(-total // (MAX_BUCKETS * BATCH_ROWS)))  # rows per bucket
    folder = target.with_name(target.name + ".buckets")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        buckets = _distribute(file, rank, size, folder)
        del rank
        _write_sorted(buckets, size, key, names, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return SortedRows(target, total, tuple(names))


def _distribute(file: pq.ParquetFile, rank: np.ndarray, size: int, folder: Path
                ) -> list[Path]:
    """Pass 1: each row group's rows, with their rank, appended to their bucket's file."""
    import pyarrow as pa

    count = -(-len(rank) // size) if len(rank) else 0
    paths = [folder / f"{b}.arrow" for b in range(count)]
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    sinks: dict[int, pa.OSFile] = {}
    first = 0
    try:
        # In batches, not a part (500,000 rows then) at a time: a part and its copy grouped
        # by bucket raised the peak by 0.3 GB, and the heap kept it.
        for batch in file.iter_batches(BATCH_ROWS):
            part = pa.Table.from_batches([batch])
            del batch
            ranks = rank[first:first + part.num_rows]
            first += part.num_rows
            part = part.append_column("__rank", pa.array(ranks))
            bucket = ranks // size
            order = np.argsort(bucket, kind="stable")
            part = part.take(order)
            bounds = np.searchsorted(bucket[order], np.arange(count + 1))
            for b in np.flatnonzero(np.diff(bounds)):
                if b not in writers:
                    sinks[b] = pa.OSFile(str(paths[b]), "wb")
                    writers[b] = pa.ipc.new_file(sinks[b], part.schema)
                writers[b].write_table(part.slice(bounds[b], bounds[b + 1] - bounds[b]))
            del part
    finally:
        for b, writer in writers.items():
            writer.close()
            sinks[b].close()
    return paths


def _write_sorted(buckets: list[Path], size: int, key: list[str], names: list[str],
                  target: Path) -> None:
    """Pass 2: each bucket in order, hashed, written as row groups of `target`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from odp.publish.changes import as_frame, key_index, row_hashes, to_arrow

    writer = None
    try:
        for number, path in enumerate(buckets):
            with pa.OSFile(str(path)) as source:  # read, not mapped: see csvstream's spool
                table = pa.ipc.open_file(source).read_all()
            ranks = table.column("__rank").to_numpy() - number * size
            order = np.empty(len(ranks), dtype=np.int64)
            order[ranks] = np.arange(len(ranks))
            table = table.take(order)
            frame = as_frame(table.select(names))
            frame[HASH] = row_hashes(frame, names).to_numpy()
            frame[KEY_HASH] = key_index(frame, key).to_numpy()
            out = (to_arrow(frame).append_column(PLACE, table.column(PLACE))
                   .append_column(RAW, table.column(RAW)))
            del table, frame
            if writer is None:
                writer = pq.ParquetWriter(str(target), out.schema, compression="none",
                                          use_dictionary=dictionary_columns(out))
            writer.write_table(out.cast(writer.schema), row_group_size=BATCH_ROWS)
            path.unlink()
        if writer is None:  # no rows
            raise ValueError("no rows to sort")
    finally:
        if writer is not None:
            writer.close()
