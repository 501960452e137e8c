"""Change detection against the ledger of what was last published successfully.

The ledger is the full published table (a Parquet file per dataset) with a hash per row. A run
compares its rows with it by primary key: new, changed, unchanged, and — for full-refresh
datasets — deleted. The ledger is replaced only after CKAN accepted every write, so a failed
publish is simply redone by the next run.

The ledger is never held whole (`odp.publish.ledgerfile`): a run reads the key and row hashes
stored beside its rows and converts to pandas only the rows it touches (new, changed,
deleted); the next ledger is the last one streamed through a row group at a time, without
the replaced rows, with this run's rows between them in key order. 10M-row ledger, +1 %: the
read of the whole table (2.1 GB) gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from odp.publish.ledgerfile import (
    HASH,
    HASH_SUM,
    KEY_HASH,
    PRESENT,
    LedgerFile,
    Merged,
    TableLedger,
    table_hash_sum,
    with_key_hashes,
    write_table,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from odp.publish.sortedrows import SortedRows



POLICIES = ("delete", "mark-deleted", "keep-history")
DELETED_AT = "deleted_at"  # mark-deleted: when the row disappeared from the source (UTC)


@dataclass(frozen=True)
class ChangeSet:
    new: pd.DataFrame | Merged  # a first publish read from disk: the published table itself
    changed: pd.DataFrame  # rows to overwrite (mark-deleted: also revived rows)
    deleted: pd.DataFrame  # key columns of rows gone from the source this run
    unchanged: int
    # The published table after applying the changes (with HASH), in key order: the last
    # ledger merged with this run's rows a row group at a time, or — a first publish, every
    # row new — the rows' own frame, converted once, when the ledger is written.
    published: Merged | pd.DataFrame
    policy: str = "delete"
    marked: pd.DataFrame | None = None  # mark-deleted: the gone rows, with DELETED_AT set
    previous: pd.DataFrame | None = None  # ledger rows of changed and deleted keys (history)
    key_hashes: np.ndarray | None = field(default=None, repr=False)  # of a published frame

    @property
    def empty(self) -> bool:
        return len(self.new) == 0 and self.changed.empty and self.deleted.empty

    @property
    def columns(self) -> list[str]:
        """The published table's columns (the schema's, plus DELETED_AT for mark-deleted)."""
        return [c for c in column_names(self.published) if c not in (HASH, KEY_HASH)]

    @property
    def rows_before(self) -> int | None:
        """The rows of the table the changes were found against (the last ledger, or the
        DataStore table read back) when the published table is merged from it."""
        return self.published.base.num_rows if isinstance(self.published, Merged) else None

    @cached_property
    def result(self) -> Merged | pa.Table:
        """The published table with its key hashes (what the ledger stores)."""
        if not isinstance(self.published, pd.DataFrame):
            return self.published
        return with_key_hashes(to_arrow(self.published), self.key_hashes)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The published table as pandas (with HASH), typed as the validated rows (for a
        loader filling a new DataStore table with every row)."""
        if isinstance(self.published, pd.DataFrame):
            return self.published
        return as_frame(self.published, [*self.columns, HASH])


def column_names(table: pa.Table | pd.DataFrame | LedgerFile | Merged) -> list[str]:
    return list(table.columns) if isinstance(table, pd.DataFrame) else table.column_names


def ledger_path(state: Path, name: str) -> Path:
    return state / "published" / f"{name}.parquet"


HASH_VERSION = b"2"  # 1 (no mark): timestamps hashed as text; 2: as integers (ns, UTC)
_VERSION_KEY = b"odp_hash_version"


Ledger = LedgerFile | TableLedger  # a ledger on disk or in memory, read alike


def as_ledger(ledger: pa.Table | pd.DataFrame | Ledger) -> Ledger:
    """A ledger as the change detection reads it (a table in memory: a `TableLedger`)."""
    if isinstance(ledger, LedgerFile | TableLedger):
        return ledger
    return TableLedger(to_arrow(ledger) if isinstance(ledger, pd.DataFrame) else ledger)


def read_ledger(state: Path, name: str) -> Ledger | None:
    """The ledger, read lazily (`LedgerFile`: a column or a row group at a time; pandas
    metadata gives each column back its dtype); one written before timestamps were hashed as
    integers is read whole and has its row hashes recomputed (the same values give the same
    hashes as this run's rows)."""
    path = ledger_path(state, name)
    if not path.exists():
        return None
    stored = LedgerFile(path)
    if stored.stored_metadata.get(_VERSION_KEY) != HASH_VERSION and (
            HASH in stored.column_names):
        ledger = as_frame(stored.to_table()).drop(columns=[KEY_HASH], errors="ignore")
        hashed = [c for c in ledger.columns if c not in (HASH, DELETED_AT)]
        ledger[HASH] = row_hashes(ledger, hashed)
        return TableLedger(to_arrow(ledger))
    return stored


def write_ledger(state: Path, name: str, table: Merged | pa.Table | pd.DataFrame) -> None:
    """Replace the ledger with `table` (a frame: converted, as a test or benchmark has it)."""
    commit_ledger(state, name, stage_ledger(state, name, table))


def stage_ledger(state: Path, name: str, table: Merged | pa.Table | pd.DataFrame) -> Path:
    """Write `table` as the next ledger, beside the ledger in force, and return its path:
    `commit_ledger` puts it in place (a publish stages it while it writes to the portal).
    A merged ledger is written a row group at a time."""
    if isinstance(table, pd.DataFrame):
        table = to_arrow(table)
    path = ledger_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    meta = {**(table.schema.metadata or {}), **_typed_metadata(table.schema),
            _VERSION_KEY: HASH_VERSION}
    for counted in (PRESENT, HASH_SUM):  # the last ledger's: this one's are counted as written
        meta.pop(counted, None)
    if isinstance(table, Merged):
        table.write(staged, meta)
    else:
        write_table(table, staged, meta)
    return staged


def commit_ledger(state: Path, name: str, staged: Path) -> None:
    """Put a staged ledger in place: atomic, the ledger is old or new, never half."""
    staged.replace(ledger_path(state, name))


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as Arrow, with the pandas metadata that types it back (Int64, string, …)."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _pandas_type(kind: pa.DataType) -> object:
    """The validated rows' pandas dtype of an Arrow type (None: Arrow's default)."""
    import pyarrow as pa

    if pa.types.is_integer(kind) and pa.types.is_signed_integer(kind):
        return pd.Int64Dtype()
    if pa.types.is_floating(kind):
        return pd.Float64Dtype()
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.StringDtype()
    return None


def as_frame(table: pa.Table | pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Columns of a ledger (all: None) as pandas, typed as the validated rows are (nullable
    integers, floats, booleans and text; timestamps UTC), whatever metadata the table has."""
    if isinstance(table, pd.DataFrame):
        return table if columns is None else table[columns]
    table = table if columns is None else table.select(columns)
    return table.to_pandas(types_mapper=_pandas_type)


def frames(table: pd.DataFrame | pa.Table | Merged, rows: int,
           columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Columns `columns` (all: None) of the table's rows as frames of `rows` rows, or — a
    merged ledger, read from disk — of a row group."""
    if isinstance(table, Merged):
        for part in table.batches(columns):
            yield as_frame(part)
        return
    for start in range(0, len(table), rows):
        part = (table.iloc[start:start + rows] if isinstance(table, pd.DataFrame)
                else table.slice(start, rows))
        yield as_frame(part, columns)


def pandas_typed(table: pa.Table) -> pa.Table:
    """`table` with pandas metadata that matches its columns, so a reader's pandas (e.g. a
    developer's `read_parquet`) gets the validated rows' dtypes back."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          **_typed_metadata(table.schema)})


def _typed_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The pandas metadata of a table with `schema`, typed as the validated rows are."""
    meta = to_arrow(as_frame(schema.empty_table())).schema.metadata or {}
    return {b"pandas": meta[b"pandas"]}


def hash_sum(table: pa.Table | pd.DataFrame | Ledger | Merged) -> int:
    """The sum of the row hashes modulo 2**64 (Arrow's sum over the chunks, no copy: 10M
    rows 5 ms instead of 0.18 s), the content part of a table's digest."""

    if isinstance(table, pd.DataFrame):
        return int(hashes(table).sum(dtype=np.uint64))
    if isinstance(table, LedgerFile | TableLedger | Merged):  # a file's: written beside it
        return table.hash_sum()
    return table_hash_sum(table) or 0


def hashes_at(ledger: Ledger, rows: np.ndarray) -> np.ndarray:
    """The ledger's row hashes at `rows` (positions): from a ledger file a row group at a
    time, not its whole column (10M rows: 0.16 GB)."""
    return ledger.values_at(HASH, rows).astype(np.uint64, copy=False)


def hashes(ledger: pa.Table | pd.DataFrame) -> np.ndarray:
    """The ledger's row hashes (uint64)."""
    column = ledger[HASH] if isinstance(ledger, pd.DataFrame) else ledger.column(HASH)
    return column.to_numpy().astype(np.uint64, copy=False)


def _instants(column: pd.Series) -> pd.Series:
    """Timestamps as integer nanoseconds since the epoch, UTC (NaT: the smallest int64), so
    the same instant gives the same number whatever its resolution or time zone."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    values = column.to_numpy(dtype="datetime64[ns]").view("int64").copy()  # may be read-only
    return pd.Series(values, index=column.index)


def _canonical(column: pd.Series) -> pd.Series:
    """Same value → same hash, whatever resolution or nullable dtype a Parquet round trip gives."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
        column
    ):
        return _instants(column)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("Float64")
    return column.astype("string")


def row_hashes(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One 64-bit hash of each row's values, a slice of rows at a time: the canonical copy
    of every column is a slice's (a first publish of 10M rows hashed at once: 1.3 GB)."""
    out = np.empty(len(table), dtype=np.uint64)
    for first in range(0, len(table), _HASH_ROWS):
        part = table.iloc[first:first + _HASH_ROWS]
        canonical = pd.DataFrame({c: _canonical(part[c]) for c in columns}, index=part.index)
        out[first:first + len(part)] = pd.util.hash_pandas_object(canonical, index=False)
    return pd.Series(out, index=table.index)


_HASH_ROWS = 1 << 20  # rows hashed at once (a canonical copy of 1M rows: 0.1 GB at 15 columns)


def _key_part(column: pd.Series) -> pd.Series:
    return _canonical(column)


def stored_keys(ledger: pa.Table | Ledger, key: list[str]) -> pd.Index:
    """The ledger's `key_index`: as stored beside each row (a ledger written before they
    were stored: hashed here)."""
    ledger = as_ledger(ledger)
    if KEY_HASH in ledger.stored_names:
        return pd.Index(ledger.array(KEY_HASH).astype(np.uint64, copy=False))
    return key_index(ledger, key)


def key_index(table: pd.DataFrame | pa.Table, key: list[str]) -> pd.Index:
    """The primary key as one 64-bit hash per row (fast matching of 1M-row ledgers)."""
    table = as_frame(table, key)
    parts = pd.DataFrame({k: _key_part(table[k]) for k in key}, index=table.index)
    return pd.Index(pd.util.hash_pandas_object(parts, index=False).to_numpy())


def diff(
    rows: pd.DataFrame, ledger: pa.Table | pd.DataFrame | None, key: list[str],
    columns: list[str], full_refresh: bool, policy: str = "delete",
    now: pd.Timestamp | None = None, carried: np.ndarray | None = None,
    ledger_keys: pd.Index | None = None, carried_rows: np.ndarray | None = None,
) -> ChangeSet:
    """`rows` are this run's publishable rows (all of them for a full refresh, except those
    `carried`: the key hashes (`key_index`) of rows delivered exactly as last published,
    which stay as the ledger holds them). `policy` says
    what happens to rows gone from the source: `delete` removes them; `mark-deleted` keeps
    them with DELETED_AT set (a row that comes back is revived); `keep-history` removes them
    and hands their last version (and that of changed rows) over as `previous`.
    `ledger_keys`: the ledger's `key_index` when the caller has it (else read or hashed
    here); `carried_rows`: per ledger row, whether it is carried (else looked up here)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown deletion policy '{policy}' (one of {', '.join(POLICIES)})")
    marking = policy == "mark-deleted"
    rows = rows[columns]  # a new frame (copy-on-write): the caller's is never changed
    rows[HASH] = row_hashes(rows, columns)
    out = columns + ([DELETED_AT] if marking else []) + [HASH]
    if marking:
        rows.insert(len(columns), DELETED_AT, pd.Series(pd.NaT, index=rows.index,
                                                        dtype="datetime64[ns, UTC]"))
    if ledger is not None:  # e.g. the portal's table, read back (reconcile)
        ledger = as_ledger(ledger)
    row_keys = key_index(rows, key).to_numpy()
    if ledger is None or not ledger.num_rows:
        empty = rows[key].iloc[0:0]
        # Every row is new: the sorted table is both what to insert and the result; rows
        # already in key order (a delivery validated in parts, odp.inparts) are not copied.
        order = key_order(rows, key)
        ordered = bool(np.all(order[1:] > order[:-1]))
        result = (rows[out] if ordered else rows[out].take(order)).reset_index(drop=True)
        return ChangeSet(result, rows.iloc[0:0], empty, 0, result, policy, rows.iloc[0:0],
                         rows.iloc[0:0], key_hashes=row_keys if ordered else row_keys[order])
    # Positions in the ledger, through one hash table of its keys (stored beside its rows:
    # the ledger may hold millions): no pass over the whole table but the masks below.
    if ledger_keys is None or len(ledger_keys) != ledger.num_rows:
        ledger_keys = stored_keys(ledger, key)
    ledger = _conform(ledger, rows, out, ledger_keys)
    size = ledger.num_rows
    was_deleted = (ledger.column(DELETED_AT).is_valid().to_numpy(zero_copy_only=False)
                   if marking else np.zeros(size, dtype=bool))
    at = positions(ledger_keys, row_keys)
    known = at >= 0
    at = at[known]
    same = hashes_at(ledger, at) == rows[HASH].to_numpy()[known]
    if marking:
        same &= ~was_deleted[at]
    new = rows[~known]
    changed = rows[known][~same]
    replaced = _mask(size, at[~same])
    delivered = _mask(size, at)
    still = 0
    if carried is not None and len(carried):
        present = (carried_rows if carried_rows is not None and len(carried_rows) == size
                   else rows_with(ledger_keys, carried))
        still = int((present & ~was_deleted).sum())
        delivered |= present
    gone = (~delivered & ~was_deleted) if full_refresh else np.zeros(size, dtype=bool)
    deleted = _taken(ledger, gone, key)
    marked = rows.iloc[0:0]
    if marking and gone.any():
        marked = _taken(ledger, gone, out)
        marked[DELETED_AT] = pd.to_datetime(now if now is not None else pd.Timestamp.now(
            tz="UTC"), utc=True)
    dropped = replaced | gone
    history = _taken(ledger, dropped, columns + [HASH])
    # The new published table: the ledger's rows not replaced (their buffers, not copied),
    # with this run's new and changed rows between them in key order.
    added = [(p, k) for p, k in ((changed, row_keys[known][~same]), (new, row_keys[~known]),
                                 (marked, ledger_keys.to_numpy()[gone] if len(marked) else None))
             if not p.empty]
    result = _in_key_order(ledger, dropped, added, key)
    return ChangeSet(new, changed, deleted, int(same.sum()) + still, result, policy, marked,
                     history)


def first_publish(rows: SortedRows, key: list[str], policy: str = "delete") -> ChangeSet:
    """`diff` of rows on disk (`odp.publish.sortedrows`: in key order, hashed) against no
    ledger: every row is new, and the published table is the file itself, read a row group at
    a time — by the files, the metadata, the DataStore load and the ledger's write."""
    import pyarrow as pa

    if policy not in POLICIES:
        raise ValueError(f"unknown deletion policy '{policy}' (one of {', '.join(POLICIES)})")
    marking = policy == "mark-deleted"
    extra = {DELETED_AT: pa.timestamp("ns", tz="UTC")} if marking else None
    base = rows.ledger(extra, (DELETED_AT,) if marking else ())
    published = Merged(base, np.zeros(len(rows), dtype=bool), None, key)
    none = as_frame(base.schema_of([c for c in base.column_names if c != KEY_HASH])
                    .empty_table())
    return ChangeSet(published, none, none[key], 0, published, policy, none, none)


def key_order(rows: pd.DataFrame, key: list[str]) -> np.ndarray:
    """The positions of `rows` in the order of their key's values (stable)."""
    return rows[key].reset_index(drop=True).sort_values(key, kind="stable").index.to_numpy()


def _conform(ledger: Ledger, rows: pd.DataFrame, out: list[str], keys: pd.Index) -> Ledger:
    """The ledger's columns as this run publishes them (`out`, in order, and the key hashes
    `keys`); a column the schema gained since the last publish is null in the rows
    published before."""
    import pyarrow as pa

    missing = [c for c in out if c not in ledger.column_names]
    types = to_arrow(rows[missing].iloc[0:0]).schema if missing else pa.schema([])
    stored = None if KEY_HASH in ledger.column_names else keys.to_numpy()
    return ledger.conformed({n: types.field(n).type for n in missing}, stored,
                            [*out, KEY_HASH])


def _taken(ledger: Ledger, mask: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The ledger's rows at `mask` (few: changed, deleted) as pandas: from a ledger file a
    row group at a time."""
    return as_frame(ledger.filter(mask, columns))


def rows_with(ledger_keys: pd.Index, keys: np.ndarray) -> np.ndarray:
    """Per ledger row (`ledger_keys`: the ledger's key hashes): whether its key is one of
    `keys`."""
    return _mask(len(ledger_keys), positions(ledger_keys, keys))


def positions(ledger_keys: pd.Index, keys: np.ndarray) -> np.ndarray:
    """Per key of `keys`: its row in the ledger (−1: not there). The hash table is built of
    the fewer keys and the others are looked up in it: a run's 100k keys against a 10M-row
    ledger build 100k entries, not 10M (0.9 s and about 0.3 GB)."""
    keys = np.asarray(keys, dtype=np.uint64)
    if len(keys) >= len(ledger_keys):
        return ledger_keys.get_indexer(keys)
    few = pd.Index(keys)
    if not few.is_unique:  # a key twice: each copy at its key's row
        unique, inverse = np.unique(keys, return_inverse=True)
        return positions(ledger_keys, unique)[inverse]
    at = np.full(len(keys), -1, dtype=np.intp)
    everything = ledger_keys.to_numpy()
    for first in range(0, len(everything), _PROBE_ROWS):  # a slice at a time: no 10M result
        found = few.get_indexer(everything[first:first + _PROBE_ROWS])
        rows = np.flatnonzero(found >= 0)
        at[found[rows]] = rows + first
    return at


_PROBE_ROWS = 1 << 20  # ledger keys looked up at once (8 MB of positions)


def _mask(size: int, positions: np.ndarray) -> np.ndarray:
    """A boolean mask of `size` rows, set at `positions` (−1: not found, ignored)."""
    mask = np.zeros(size, dtype=bool)
    mask[positions[positions >= 0]] = True
    return mask


def _in_key_order(ledger: Ledger, dropped: np.ndarray,
                  added: list[tuple[pd.DataFrame, np.ndarray]], key: list[str]) -> Merged:
    """The ledger (in key order) without its `dropped` rows, and the `added` rows (with their
    key hashes), as one table in key order: the added rows are merged into the ledger's a row
    group at a time whenever the table is read (`odp.publish.ledgerfile.Merged`)."""
    more = None
    if added:
        more = with_key_hashes(to_arrow(pd.concat([p for p, _ in added], ignore_index=True)),
                               np.concatenate([k for _, k in added]))
    return Merged(ledger, dropped, more, key)
