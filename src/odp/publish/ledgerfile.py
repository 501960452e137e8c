"""The ledger read a column or a row group at a time, and the next ledger written row group by
row group, so that a run which changes a few rows of a large table never holds the table.

A +1 % run of a 10M-row dataset held the whole ledger from its read to its write (2.1 GB of
its 2.9 GB peak). Now the run reads the columns it needs whole (the key and row hashes: 16
bytes a row) and others one at a time (a DCAT extent, a completeness count), and the next
ledger is the last one's row groups streamed through: each row group without its replaced
rows, with the run's new and changed rows that sort into it (`Merged`).
"""

from __future__ import annotations

import bisect
import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

HASH = "_row_hash"  # per row of a ledger: the hash of its values (odp.publish.changes)
KEY_HASH = "_key_hash"  # … and of its key (`changes.key_index`), stored so no run hashes them

# The ledger's metadata: per column, how many of its rows have a value (see `filled`), so a run
# that carries every published row counts their completeness without reading a column (10M
# rows: 1.3 s).
PRESENT = b"odp_present"
# … and the sum of its row hashes (the content digest, see `changes.hash_sum`): a run compares
# the delta record with the ledger without reading the ledger's hash column.
HASH_SUM = b"odp_hash_sum"

# The ledger's metadata: a summary of some columns (the DCAT extents: first and last time,
# the points' corners, the districts), so that the next run, which only adds rows, summarises
# only those (10M rows: 0.75 s of reading six columns).
SUMMARY = b"odp_summary"

# Rows per row group of a ledger written here, and per slice of a table held in memory: a
# row group of the benchmark's 18 columns decodes to about 11 MB (a ledger written whole by
# pyarrow has row groups of 1M rows: 0.2 GB each). Streaming a 10M-row ledger through with
# 100,000 rows added held 0.11 GB more resident memory in groups of 65,536 rows, 0.22–0.24 GB
# in groups of 131,072 (Arrow's own peak 73 against 146 MB: the group read, the merge, the
# group regrouped and its encoding), in the same time; the file is 9 % larger.
BATCH_ROWS = 65_536


class LedgerFile:
    """A ledger's Parquet file, read lazily. `extra`: columns the schema gained since it was
    written (null in each of its rows); `keys`: its rows' key hashes when it stores none;
    `names`: the columns in the order a run publishes them (default: the file's)."""

    def __init__(self, path: Path, extra: dict[str, pa.DataType] | None = None,
                 keys: np.ndarray | None = None, names: list[str] | None = None,
                 handle: Any = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        # The open file, not the path: the ledger in force is replaced (renamed over) at the
        # end of a publish, and this run still reads the one it started with.
        self._handle = handle if handle is not None else pa.OSFile(str(path))
        self._file = pq.ParquetFile(self._handle)
        self.extra = dict(extra or {})
        self.keys = keys
        stored = self._file.schema_arrow
        self._stored = stored
        fields = [*stored, *(pa.field(n, t) for n, t in self.extra.items())]
        if keys is not None and KEY_HASH not in stored.names:
            fields.append(pa.field(KEY_HASH, pa.uint64()))
        by_name = {f.name: f for f in fields}
        order = names or [f.name for f in fields]
        self.schema = pa.schema([by_name[n] for n in order], metadata=stored.metadata)
        meta = self._file.metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])  # per group

    @property
    def num_rows(self) -> int:
        return int(self._file.metadata.num_rows)

    def __len__(self) -> int:
        return self.num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    @property
    def stored_names(self) -> list[str]:
        """The columns the file holds (not those this view adds)."""
        return list(self._stored.names)

    @property
    def stored_metadata(self) -> dict[bytes, bytes]:
        return dict(self._stored.metadata or {})

    def conformed(self, extra: dict[str, pa.DataType], keys: np.ndarray | None,
                  names: list[str]) -> LedgerFile:
        """The same file with the columns a run publishes (`names`, in order)."""
        return LedgerFile(self.path, {**self.extra, **extra},
                          keys if self.keys is None else self.keys, names, self._handle)

    def _read(self, names: list[str], group: int | None = None, reader: Any = None
              ) -> pa.Table:
        """Columns `names` of the whole file or of one row group, nulls for those it lacks.
        `reader`: a Parquet reader of the file's own (default: this view's)."""
        import pyarrow as pa

        reader = reader or self._file
        stored = [n for n in names if n in self._stored.names]
        if group is None:
            table = reader.read(columns=stored, use_pandas_metadata=False)
            first, rows = 0, self.num_rows
        else:
            table = reader.read_row_group(group, columns=stored, use_pandas_metadata=False)
            first = int(self._starts[group])
            rows = int(self._starts[group + 1]) - first  # also when no stored column is read
        columns = []
        for name in names:
            if name in self._stored.names:
                columns.append(table.column(name))
            elif name in self.extra:
                columns.append(pa.nulls(rows, self.extra[name]))
            else:  # the key hashes the file does not store
                assert self.keys is not None
                columns.append(pa.array(self.keys[first:first + rows], pa.uint64()))
        return pa.table(columns, schema=self.schema_of(names))

    def column(self, name: str) -> pa.ChunkedArray:
        return self._read([name]).column(0)

    __getitem__ = column

    def select(self, names: list[str]) -> pa.Table:
        return self._read(list(names))

    def batches(self, names: list[str] | None = None) -> Iterator[pa.Table]:
        """The rows a row group at a time (in the file's order: the key's), through a reader
        of their own: a first publish's rows are read by the DataStore load and the ledger's
        write at once, and a Parquet reader is not to be shared between threads ("ReadRangeCache
        did not find matching cache entry"; the open file's positioned reads are)."""
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(self._handle)
        for group in range(reader.num_row_groups):
            yield self._read(list(names or self.column_names), group, reader)

    def spread_groups(self, names: list[str], count: int) -> list[pa.Table] | None:
        """`count` whole row groups spread over the file, the first and the last among them
        (columns `names`); None when it has fewer than twice as many."""
        groups = len(self._starts) - 1
        if count < 1 or groups < 2 * count:
            return None
        picks = np.unique(np.linspace(0, groups - 1, count).round().astype(int))
        return [self._read(list(names), int(group)) for group in picks]

    def array(self, name: str) -> np.ndarray:
        """A stored column without nulls (the hashes) as one numpy array, filled a row group
        at a time: Arrow holds one row group at a time, not the column before numpy copies it
        (10M key hashes: about 0.3 GB more at the peak, the freed buffers kept by malloc)."""
        out = np.empty(self.num_rows, dtype=self.schema.field(name).type.to_pandas_dtype())
        for group in range(self._file.num_row_groups):
            first, end = self._starts[group], self._starts[group + 1]
            out[first:end] = self._file.read_row_group(group, columns=[name]).column(0).to_numpy()
        return out

    def values_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column `name` at positions `rows` (any order), read a row group at a time."""
        out = np.empty(len(rows), dtype=self.schema.field(name).type.to_pandas_dtype())
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        bounds = np.searchsorted(ordered, self._starts)
        for group in range(self._file.num_row_groups):
            lo, hi = bounds[group], bounds[group + 1]
            if hi > lo:
                values = self._read([name], group).column(0).to_numpy()
                out[order[lo:hi]] = values[ordered[lo:hi] - self._starts[group]]
        return out

    def filter(self, mask: pa.Array | np.ndarray, names: list[str] | None = None) -> pa.Table:
        """The rows at `mask` (few: changed, deleted), read a row group at a time."""
        names = list(names or self.column_names)
        mask = _as_mask(mask)
        if not mask.any():
            return self.schema.empty_table().select(names)
        return _rows_at(self.batches(names), mask, self.schema_of(names))

    def schema_of(self, names: list[str]) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([self.schema.field(n) for n in names], metadata=self.schema.metadata)

    def to_table(self) -> pa.Table:
        return self._read(self.column_names)

    def to_pandas(self, **options: Any) -> pd.DataFrame:
        return self.to_table().to_pandas(**options)

    @property
    def present(self) -> dict[str, int] | None:
        """Per column, the rows with a value, as written beside the rows (None: not known)."""
        import json

        stored = self._file.metadata.metadata or {}  # the file's, added after its rows
        return json.loads(stored[PRESENT]) if PRESENT in stored else None

    def hash_sum(self) -> int:
        """The sum of the row hashes modulo 2**64: as written beside the rows, else summed
        a row group at a time (a ledger written before the sum was)."""
        stored = (self._file.metadata.metadata or {}).get(HASH_SUM)
        if stored is not None:
            return int(stored)
        return sum(table_hash_sum(part) or 0 for part in self.batches([HASH])) % 2**64

    def summary(self, names: list[str]) -> pa.Table | None:
        """The summary of columns `names` written beside the rows (None: none of them)."""
        import base64
        import json

        import pyarrow as pa

        stored = (self._file.metadata.metadata or {}).get(SUMMARY)
        if stored is None:
            return None
        found = json.loads(stored)
        if found.get("names") != names:
            return None
        with pa.ipc.open_stream(base64.b64decode(found["table"])) as reader:
            return reader.read_all()

    @property
    def unchanged_on_disk(self) -> bool:
        """The file is what this view reads: nothing added, nothing reordered."""
        return not self.extra and self.column_names == self._stored.names


class TableLedger:
    """A ledger held in memory (the portal's table read back, a ledger of an earlier hash
    version rehashed, a test's table) read as a `LedgerFile` is, so that the change detection
    and the merge read either alike. Nothing is written beside its rows: no present counts,
    hash sum or summary; it is never the file on disk."""

    path = None
    present = None
    unchanged_on_disk = False

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def __len__(self) -> int:
        return self.num_rows

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    @property
    def column_names(self) -> list[str]:
        return list(self.table.column_names)

    stored_names = column_names

    @property
    def stored_metadata(self) -> dict[bytes, bytes]:
        return dict(self.table.schema.metadata or {})

    def conformed(self, extra: dict[str, pa.DataType], keys: np.ndarray | None,
                  names: list[str]) -> TableLedger:
        """The table with the columns a run publishes (see `LedgerFile.conformed`)."""
        import pyarrow as pa

        table = self.table
        for name, kind in extra.items():
            table = table.append_column(pa.field(name, kind), pa.nulls(table.num_rows, kind))
        if KEY_HASH not in table.column_names:
            table = with_key_hashes(table, keys)
        return TableLedger(table if table.column_names == names else table.select(names))

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)

    __getitem__ = column

    def select(self, names: list[str]) -> pa.Table:
        return self.table.select(list(names))

    def batches(self, names: list[str] | None = None) -> Iterator[pa.Table]:
        table = self.table.select(list(names or self.column_names))
        for first in range(0, table.num_rows, BATCH_ROWS):
            yield table.slice(first, BATCH_ROWS)

    def array(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy()

    def values_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        return self.array(name)[rows]

    def filter(self, mask: pa.Array | np.ndarray, names: list[str] | None = None) -> pa.Table:
        """The rows at `mask`: a filter, not a `take` (Arrow's take joins a column's chunks
        first: a 3M-row ledger, 0.37 GB for no row at all)."""
        import pyarrow as pa

        return self.select(list(names or self.column_names)).filter(pa.array(_as_mask(mask)))

    def schema_of(self, names: list[str]) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([self.schema.field(n) for n in names], metadata=self.schema.metadata)

    def to_table(self) -> pa.Table:
        return self.table

    def to_pandas(self, **options: Any) -> pd.DataFrame:
        return self.table.to_pandas(**options)

    def hash_sum(self) -> int:
        return table_hash_sum(self.table) or 0

    def summary(self, names: list[str]) -> None:
        return None


def with_key_hashes(table: pa.Table, keys: np.ndarray | None) -> pa.Table:
    """`table` with its rows' key hashes as the KEY_HASH column (None: as it is)."""
    import pyarrow as pa

    if keys is None:
        return table
    return table.append_column(KEY_HASH, pa.array(np.asarray(keys, dtype=np.uint64)))


def _as_mask(mask: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    import pyarrow as pa

    if isinstance(mask, pa.Array | pa.ChunkedArray):
        mask = mask.to_numpy(zero_copy_only=False)
    return np.asarray(mask, dtype=bool)


def _rows_at(parts: Iterator[pa.Table], mask: np.ndarray, schema: pa.Schema) -> pa.Table:
    """The rows of consecutive `parts` at `mask` (one flag per row of all parts)."""
    import pyarrow as pa

    kept, first = [], 0
    for part in parts:
        wanted = mask[first:first + part.num_rows]
        first += part.num_rows
        if wanted.any():
            kept.append(part.filter(pa.array(wanted)))
    return pa.concat_tables(kept) if kept else schema.empty_table()


def filled(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Per row: the value is present (neither null nor a float's NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    present = column.is_valid()
    if pa.types.is_floating(column.type):
        present = pc.and_(present, pc.invert(pc.fill_null(pc.is_nan(column), True)))
    return present


def present_counts(table: pa.Table) -> dict[str, int]:
    """Per column of `table`, the rows with a value."""
    import pyarrow.compute as pc

    return {name: int(pc.sum(filled(table.column(name))).as_py() or 0)
            for name in table.column_names}


def write_table(table: pa.Table, path: Path, metadata: dict[bytes, bytes]) -> None:
    """A ledger held in memory (a first publish's rows) written with `metadata` and its
    counts, in the row groups and with the compression of a merged one."""
    import pyarrow.parquet as pq

    pq.write_table(table.replace_schema_metadata(with_counts(metadata, table)), path,
                   row_group_size=BATCH_ROWS, compression=compression(table.schema.names),
                   use_dictionary=dictionary_columns(table.slice(0, BATCH_ROWS)))


def with_counts(metadata: dict[bytes, bytes], table: pa.Table) -> dict[bytes, bytes]:
    """`metadata` with the table's present counts and the sum of its row hashes."""
    import json

    total = table_hash_sum(table)
    return {**metadata, PRESENT: json.dumps(present_counts(table), sort_keys=True).encode(),
            **({HASH_SUM: str(total).encode()} if total is not None else {})}


def table_hash_sum(table: pa.Table) -> int | None:
    """The sum of the table's row hashes modulo 2**64 (None: it has none)."""
    import pyarrow.compute as pc

    if HASH not in table.column_names:
        return None
    return int(pc.sum(table.column(HASH)).as_py() or 0) % 2**64


def _comparable(table: pa.Table) -> list[pa.Array]:
    """The key columns as values Python compares as Arrow sorts them (instants as integers)."""
    import pyarrow as pa

    out = []
    for column in table.columns:
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = column.cast(pa.int64())
        out.append(column)
    return out


def _unified(base: LedgerFile | TableLedger, added: pa.Table) -> pa.Schema:
    """One schema for the ledger's rows and the added ones (see `same_types`); the
    ledger's values are read only for columns whose types conflict (a type changed)."""
    import pyarrow as pa

    try:
        schema = pa.unify_schemas([base.schema, added.schema], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        differing = [f.name for f in added.schema
                     if not base.schema.field(f.name).type.equals(f.type)]
        typed = same_types([base.select(differing), added.select(differing)])[0].schema
        schema = pa.schema([typed.field(f.name) if f.name in differing else f
                            for f in base.schema])
    return schema.with_metadata(base.schema.metadata or {})


class Merged:
    """The next ledger: the last one (a `LedgerFile`, or a table in memory) without its
    `dropped` rows, with the `added` rows between them in key order — computed a row group
    at a time whenever it is read: written as the next ledger (`write`), or a column of it."""

    def __init__(self, base: LedgerFile | TableLedger | pa.Table, dropped: np.ndarray,
                 added: pa.Table | None, key: list[str]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(base, pa.Table):
            base = TableLedger(base)
        self.base, self.dropped, self.key = base, dropped, key
        if added is not None and added.num_rows:
            self.schema = _unified(base, added)
            added = added.cast(self.schema)  # then sorted: a key's type may have changed
            added = added.take(pc.sort_indices(added.select(key),
                                               sort_keys=[(k, "ascending") for k in key]))
        else:
            added, self.schema = None, base.schema
        self.added = added
        self._sum: int | None = None
        self._summary: tuple[list[str], pa.Table] | None = None  # written with the ledger

    @property
    def num_rows(self) -> int:
        return (self.base.num_rows - int(self.dropped.sum())
                + (self.added.num_rows if self.added is not None else 0))

    def __len__(self) -> int:
        return self.num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def batches(self, names: list[str] | None = None) -> Iterator[pa.Table]:
        """The rows in key order, about a row group at a time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = list(names or self.column_names)
        read = list(dict.fromkeys([*names, *self.key]))
        added = self.added.select(read) if self.added is not None else None
        keys = _comparable(added.select(self.key)) if added is not None else []
        taken, first = 0, 0
        total = self.base.num_rows
        wanted = self.schema_of(read)
        for part in self.base.batches(read):
            if not part.schema.equals(wanted):  # e.g. a column's type changed: this run's
                part = part.cast(wanted)
            rows = part.num_rows
            keep = ~self.dropped[first:first + rows]
            first += rows
            upto = taken
            if added is not None:
                if first >= total:  # the last part takes every added row left
                    upto = added.num_rows
                elif rows:
                    last = tuple(c[0].as_py() for c in _comparable(
                        part.select(self.key).slice(rows - 1, 1)))
                    upto = bisect.bisect_right(range(added.num_rows), last, lo=taken,
                                               key=lambda i: tuple(c[i].as_py() for c in keys))
            kept = part if keep.all() else part.filter(pa.array(keep))
            if upto > taken:
                assert added is not None
                both = pa.concat_tables(same_types([kept, added.slice(taken, upto - taken)]))
                kept = both.take(pc.sort_indices(both.select(self.key),
                                                 sort_keys=[(k, "ascending") for k in self.key]))
                taken = upto
            if kept.num_rows:
                yield kept.select(names)
        if added is not None and taken < added.num_rows:  # an empty ledger
            yield added.slice(taken).select(names)

    def spread_groups(self, names: list[str], count: int) -> list[pa.Table] | None:
        """`count` of the rows' groups as `batches` gives them, spread over the table, read
        alone (see `LedgerFile.spread_groups`): only when they are a file's row groups as
        stored — nothing dropped or added, as in a first publish — else None."""
        if (self.added is not None or self.dropped.any()
                or not isinstance(self.base, LedgerFile)):
            return None
        return self.base.spread_groups(names, count)

    def parts(self, names: list[str]) -> Iterator[pa.Table]:
        """The rows in no particular order (for sums and extents): the base's kept rows a
        row group at a time, then the added rows — no merge."""
        import pyarrow as pa

        wanted, first = self.schema_of(names), 0
        for part in self.base.batches(names):
            keep = ~self.dropped[first:first + part.num_rows]
            first += part.num_rows
            part = part if keep.all() else part.filter(pa.array(keep))
            yield part if part.schema.equals(wanted) else part.cast(wanted)
        if self.added is not None:
            yield self.added.select(names)

    def summary(self, names: list[str], summarise: Callable[[pa.Table], pa.Table]
                ) -> pa.Table:
        """`summarise` of columns `names` of the whole table, for a `summarise` whose result
        over the parts' results is the table's (extents: minima and maxima, distinct values).
        When no published row was dropped, the summary written with the last ledger stands
        for its rows and only the added ones are read; the result is written with this
        ledger."""
        import pyarrow as pa

        stored = self.base.summary(names) if not self.dropped.any() else None
        if stored is not None:
            pieces = [stored] + ([summarise(self.added.select(names))]
                                 if self.added is not None else [])
        else:
            pieces = [summarise(part) for part in self.parts(names)]
        whole = (pa.concat_tables(pieces, promote_options="permissive") if pieces
                 else self.schema_of(names).empty_table())
        result = summarise(whole)
        self._summary = (list(names), result)
        return result

    def schema_of(self, names: list[str]) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([self.schema.field(n) for n in names])

    def select(self, names: list[str]) -> pa.Table:
        import pyarrow as pa

        parts = list(self.batches(list(names)))
        return pa.concat_tables(parts) if parts else self.schema_of(list(names)).empty_table()

    def column(self, name: str) -> pa.ChunkedArray:
        """A column in key order."""
        return self.select([name]).column(0)

    __getitem__ = column

    def to_table(self) -> pa.Table:
        return self.select(self.column_names)

    def to_pandas(self, **options: Any) -> pd.DataFrame:
        return self.to_table().to_pandas(**options)

    def filter(self, mask: pa.Array | np.ndarray) -> pa.Table:
        """The rows at `mask` in key order (e.g. a sample: every n-th row)."""
        return _rows_at(self.batches(), _as_mask(mask), self.schema)

    def hash_sum(self) -> int:
        """The sum of the row hashes modulo 2**64, without the merge (order is no matter)."""
        if self._sum is None:
            if not self.dropped.any():
                total = self.base.hash_sum()  # written beside the last ledger (a file's)
                parts = [self.added.select([HASH])] if self.added is not None else []
            else:
                total, parts = 0, self.parts([HASH])
            self._sum = (total + sum(table_hash_sum(part) or 0 for part in parts)) % 2**64
        return self._sum

    @property
    def untouched(self) -> bool:
        """The base file as it is on disk: nothing dropped, added or reshaped."""
        return (self.base.unchanged_on_disk and self.added is None
                and not self.dropped.any())

    def write(self, path: Path, metadata: dict[bytes, bytes]) -> None:
        """Write the rows, a row group at a time, as a Parquet file with `metadata` and the
        columns' present counts (`PRESENT`)."""
        import json

        import pyarrow.parquet as pq

        if self.untouched:
            assert self.base.path is not None
            stored = {k: v for k, v in self.base.stored_metadata.items()
                      if k not in (PRESENT, HASH_SUM)}
            if self.base.present is not None and stored == metadata:
                shutil.copyfile(self.base.path, path)
                return
        counts, total = dict.fromkeys(self.column_names, 0), 0
        schema = self.schema.with_metadata(metadata)
        groups = _regrouped(self.batches())
        first = next(groups, None)
        with pq.ParquetWriter(path, schema, compression=compression(schema.names),
                              use_dictionary=dictionary_columns(first)) as writer:
            for group in itertools.chain([] if first is None else [first], groups):
                writer.write_table(group.replace_schema_metadata(metadata),
                                   row_group_size=BATCH_ROWS)
                for name, count in present_counts(group).items():
                    counts[name] += count
                total += table_hash_sum(group) or 0
            summed = {HASH_SUM: str(total % 2**64)} if HASH in schema.names else {}
            writer.add_key_value_metadata({PRESENT: json.dumps(counts, sort_keys=True),
                                           **summed, **self._stored_summary()})

    def _stored_summary(self) -> dict[bytes, str]:
        """The summary computed for this ledger, as its metadata (`SUMMARY`)."""
        import base64
        import json

        import pyarrow as pa

        if self._summary is None:
            return {}
        names, table = self._summary
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        encoded = base64.b64encode(sink.getvalue().to_pybytes()).decode()
        return {SUMMARY: json.dumps({"names": names, "table": encoded})}


def _regrouped(parts: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The parts' rows as tables of BATCH_ROWS rows (the last: the rest), so that each run's
    ledger has row groups of one size — a row group with a few rows added would otherwise be
    written as two, and their number double at every run."""
    import pyarrow as pa

    pending: list[pa.Table] = []
    size = 0
    for part in parts:
        pending.append(part)
        size += part.num_rows
        while size >= BATCH_ROWS:
            rows = pa.concat_tables(pending)
            yield rows.slice(0, BATCH_ROWS)
            rest = rows.slice(BATCH_ROWS)
            pending, size = ([rest] if rest.num_rows else []), rest.num_rows
    if size:
        yield pa.concat_tables(pending)


def dictionary_columns(sample: pa.Table | None) -> list[str]:
    """The columns Parquet's dictionary encoding pays for in a file whose first row group is
    `sample`: at most half as many distinct values as rows, and never the hashes (distinct by
    design). Dictionary-encoding distinct values only costs: the dictionary holds every value
    and each row an index besides (10M-row ledger, the benchmark's sensor rows: written in
    2.5 s and 348 MB with every column encoded so, 1.8 s and 304 MB with all but the hashes and
    the timestamps)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if sample is None:
        return []

    def repeated(column: pa.ChunkedArray) -> bool:
        if pa.types.is_null(column.type):  # no values: nothing to encode
            return False
        try:
            return pc.count_distinct(column).as_py() <= sample.num_rows // 2
        except pa.ArrowNotImplementedError:  # a type Arrow cannot count: Parquet decides
            return True

    return [name for name in sample.column_names
            if name not in (HASH, KEY_HASH) and repeated(sample.column(name))]


def compression(names: list[str]) -> dict[str, str]:
    """Per column of a ledger: Parquet's default, but none for the hashes — random numbers
    no compressor shrinks (10M hashes: written in 0.27 s instead of 0.74 s, read in 0.26 s
    instead of 1.26 s, the same size)."""
    return {name: "none" if name in (HASH, KEY_HASH) else "snappy" for name in names}


def same_types(parts: list[pa.Table]) -> list[pa.Table]:
    """The tables with one schema (e.g. a column null in every published row so far and set
    in a new one; text as string or large_string). A column whose type changed (the Table
    Schema's type of a field) takes this run's type (the last part's) where every published
    value converts, else becomes text."""
    import pyarrow as pa

    try:
        schema = pa.unify_schemas([p.schema for p in parts], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        schema = _run_types(parts)
    return [p if p.schema.equals(schema) else p.cast(schema) for p in parts]


def _run_types(parts: list[pa.Table]) -> pa.Schema:
    """One schema for tables whose column types conflict: this run's (the last part's) type
    for each column every part converts to, text for the others."""
    import pyarrow as pa

    fields = []
    for kind in parts[-1].schema:
        try:
            for part in parts[:-1]:
                part.column(kind.name).cast(kind.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            kind = kind.with_type(pa.large_string())
        fields.append(kind)
    return pa.schema(fields, metadata=parts[0].schema.metadata)
