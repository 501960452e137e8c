"""Change detection against the ledger of what was last published successfully.

The ledger is the full published table (a Parquet file per dataset) with a hash per row. A run
compares its rows with it by primary key: new, changed, unchanged, and — for full-refresh
datasets — deleted. The ledger is replaced only after CKAN accepted every write, so a failed
publish is simply redone by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HASH = "_row_hash"


POLICIES = ("delete", "mark-deleted", "keep-history")
DELETED_AT = "deleted_at"  # mark-deleted: when the row disappeared from the source (UTC)


@dataclass(frozen=True)
class ChangeSet:
    new: pd.DataFrame
    changed: pd.DataFrame  # rows to overwrite (mark-deleted: also revived rows)
    deleted: pd.DataFrame  # key columns of rows gone from the source this run
    unchanged: int
    result: pd.DataFrame  # the published table after applying the changes (with HASH)
    policy: str = "delete"
    marked: pd.DataFrame | None = None  # mark-deleted: the gone rows, with DELETED_AT set
    previous: pd.DataFrame | None = None  # ledger rows of changed and deleted keys (history)

    @property
    def empty(self) -> bool:
        return self.new.empty and self.changed.empty and self.deleted.empty

    @property
    def columns(self) -> list[str]:
        """The published table's columns (the schema's, plus DELETED_AT for mark-deleted)."""
        return [c for c in self.result.columns if c != HASH]


def ledger_path(state: Path, name: str) -> Path:
    return state / "published" / f"{name}.parquet"


HASH_VERSION = b"2"  # 1 (no mark): timestamps hashed as text; 2: as integers (ns, UTC)
_VERSION_KEY = b"odp_hash_version"


def read_ledger(state: Path, name: str) -> pd.DataFrame | None:
    """The ledger; one written before timestamps were hashed as integers has its row hashes
    recomputed (the same values give the same hashes as this run's rows)."""
    import pyarrow.parquet as pq

    path = ledger_path(state, name)
    if not path.exists():
        return None
    stored = pq.read_table(path)
    ledger = stored.to_pandas()
    if (stored.schema.metadata or {}).get(_VERSION_KEY) != HASH_VERSION and HASH in ledger:
        hashed = [c for c in ledger.columns if c not in (HASH, DELETED_AT)]
        ledger[HASH] = row_hashes(ledger, hashed)
    return ledger


def write_ledger(state: Path, name: str, table: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = ledger_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           _VERSION_KEY: HASH_VERSION})
    pq.write_table(arrow, tmp)
    tmp.replace(path)  # atomic: the ledger is old or new, never half


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
    canonical = pd.DataFrame({c: _canonical(table[c]) for c in columns}, index=table.index)
    return pd.util.hash_pandas_object(canonical, index=False).astype("uint64")


def _key_part(column: pd.Series) -> pd.Series:
    return _canonical(column)


def key_index(table: pd.DataFrame, key: list[str]) -> pd.Index:
    """The primary key as one 64-bit hash per row (fast matching of 1M-row ledgers)."""
    parts = pd.DataFrame({k: _key_part(table[k]) for k in key}, index=table.index)
    return pd.Index(pd.util.hash_pandas_object(parts, index=False).to_numpy())


def diff(
    rows: pd.DataFrame, ledger: pd.DataFrame | None, key: list[str], columns: list[str],
    full_refresh: bool, policy: str = "delete", now: pd.Timestamp | None = None,
    carried: np.ndarray | None = None, ledger_keys: pd.Index | None = None,
) -> ChangeSet:
    """`rows` are this run's publishable rows (all of them for a full refresh, except those
    `carried`: the key hashes (`key_index`) of rows delivered exactly as last published,
    which stay as the ledger holds them). `policy` says
    what happens to rows gone from the source: `delete` removes them; `mark-deleted` keeps
    them with DELETED_AT set (a row that comes back is revived); `keep-history` removes them
    and hands their last version (and that of changed rows) over as `previous`.
    `ledger_keys`: the ledger's `key_index` when the caller has it (else hashed here)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown deletion policy '{policy}' (one of {', '.join(POLICIES)})")
    marking = policy == "mark-deleted"
    rows = rows[columns]  # a new frame (copy-on-write): the caller's is never changed
    rows[HASH] = row_hashes(rows, columns)
    out = columns + ([DELETED_AT] if marking else []) + [HASH]
    if marking:
        rows.insert(len(columns), DELETED_AT, pd.Series(pd.NaT, index=rows.index,
                                                        dtype="datetime64[ns, UTC]"))
    if ledger is None or ledger.empty:
        empty = rows[key].iloc[0:0]
        # Every row is new: the sorted table is both what to insert and the result (one
        # copy of the table, not two).
        result = rows[out].sort_values(key, ignore_index=True)
        return ChangeSet(result, rows.iloc[0:0], empty, 0, result, policy,
                         rows.iloc[0:0], rows.iloc[0:0])
    if not isinstance(ledger.index, pd.RangeIndex) or ledger.index.start != 0:
        ledger = ledger.reset_index(drop=True)
    if any(c not in ledger for c in columns) or (marking and DELETED_AT not in ledger):
        ledger = ledger.copy(deep=False)  # columns added here stay out of the caller's frame
    for name in columns:  # a column the schema gained since the last publish: null before
        if name not in ledger:
            ledger[name] = pd.Series(index=ledger.index, dtype=rows[name].dtype)
    if marking and DELETED_AT not in ledger:
        ledger[DELETED_AT] = pd.Series(pd.NaT, index=ledger.index, dtype="datetime64[ns, UTC]")
    was_deleted = (ledger[DELETED_AT].notna().to_numpy() if marking
                   else np.zeros(len(ledger), dtype=bool))
    # Positions in the ledger, through one hash table of its keys (hashed once: the ledger may
    # hold millions of rows): no pass over the whole table but the masks below.
    if ledger_keys is None or len(ledger_keys) != len(ledger):
        ledger_keys = key_index(ledger, key)
    at = ledger_keys.get_indexer(key_index(rows, key))
    known = at >= 0
    at = at[known]
    same = ledger[HASH].to_numpy()[at] == rows[HASH].to_numpy()[known]
    if marking:
        same &= ~was_deleted[at]
    new = rows[~known]
    changed = rows[known][~same]
    replaced = _mask(len(ledger), at[~same])
    delivered = _mask(len(ledger), at)
    still = 0
    if carried is not None and len(carried):
        present = _mask(len(ledger), ledger_keys.get_indexer(carried))
        still = int((present & ~was_deleted).sum())
        delivered |= present
    gone = (~delivered & ~was_deleted) if full_refresh else np.zeros(len(ledger), dtype=bool)
    deleted = ledger.loc[gone, key]
    marked = rows.iloc[0:0]
    if marking and gone.any():
        marked = ledger.loc[gone, out].copy()
        marked[DELETED_AT] = now if now is not None else pd.Timestamp.now(tz="UTC")
    dropped = replaced | gone
    history = ledger.loc[dropped, columns + [HASH]]
    # The new published table: previous rows not replaced, plus this run's new and changed rows.
    kept = (ledger.loc[~dropped, out] if dropped.any() else
            ledger if list(ledger.columns) == out else ledger[out])  # not copied: see below
    result = _in_key_order(kept, [p for p in (changed, new, marked) if not p.empty], key,
                           rows[out].iloc[0:0])
    if marking:  # concat of all-NaT and set columns may give `object`: keep it a UTC timestamp
        result[DELETED_AT] = pd.to_datetime(result[DELETED_AT], utc=True)
        marked[DELETED_AT] = pd.to_datetime(marked[DELETED_AT], utc=True)
    return ChangeSet(new, changed, deleted, int(same.sum()) + still, result, policy, marked,
                     history)


def _mask(size: int, positions: np.ndarray) -> np.ndarray:
    """A boolean mask of `size` rows, set at `positions` (−1: not found, ignored)."""
    mask = np.zeros(size, dtype=bool)
    mask[positions[positions >= 0]] = True
    return mask


def _in_key_order(kept: pd.DataFrame, added: list[pd.DataFrame], key: list[str],
                  empty: pd.DataFrame) -> pd.DataFrame:
    """`kept` (the ledger's rows, in its key order) and the `added` rows as one new table
    sorted by the key. Only the key columns are sorted; the table is then assembled from
    stretches of consecutive rows (one pass over every column, no row-by-row reordering of
    the whole table) — reordered row by row only when the rows interleave too finely."""
    added = [p for p in added if not p.empty]
    if added:  # the few added rows in key order first: they then join kept ones in stretches
        added = [pd.concat(added, ignore_index=True).sort_values(key, kind="stable")]
    parts = [p for p in (kept, *added) if not p.empty]
    if not parts:
        return empty
    keys = pd.concat([p[key] for p in parts], ignore_index=True)
    order = keys.sort_values(key, kind="stable").index.to_numpy()
    bounds = np.cumsum([0] + [len(p) for p in parts])
    starts = np.flatnonzero(np.r_[True, (np.diff(order) != 1)
                                  | np.isin(order[1:], bounds[1:-1])])
    if len(starts) > _MAX_STRETCHES:
        return pd.concat(parts, ignore_index=True).take(order).reset_index(drop=True)
    lengths = np.diff(np.r_[starts, len(order)])
    part_of = np.searchsorted(bounds, order[starts], side="right") - 1
    pieces = [parts[p].iloc[first - bounds[p]:first - bounds[p] + n]
              for p, first, n in zip(part_of, order[starts], lengths, strict=True)]
    if len(pieces) == 1:  # never the caller's ledger nor a table the ChangeSet holds
        return pieces[0].copy().reset_index(drop=True)
    return pd.concat(pieces, ignore_index=True)


# More stretches than this (rows interleaving finely, e.g. every other key new) are reordered
# row by row: concatenating thousands of small slices costs more than one reordering pass.
_MAX_STRETCHES = 2000
