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
    carried: np.ndarray | None = None,
) -> ChangeSet:
    """`rows` are this run's publishable rows (all of them for a full refresh, except those
    `carried`: the key hashes (`key_index`) of rows delivered exactly as last published,
    which stay as the ledger holds them). `policy` says
    what happens to rows gone from the source: `delete` removes them; `mark-deleted` keeps
    them with DELETED_AT set (a row that comes back is revived); `keep-history` removes them
    and hands their last version (and that of changed rows) over as `previous`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown deletion policy '{policy}' (one of {', '.join(POLICIES)})")
    marking = policy == "mark-deleted"
    rows = rows[columns].copy()
    rows[HASH] = row_hashes(rows, columns)
    out = columns + ([DELETED_AT] if marking else []) + [HASH]
    if marking:
        rows.insert(len(columns), DELETED_AT, pd.Series(pd.NaT, index=rows.index,
                                                        dtype="datetime64[ns, UTC]"))
    if ledger is None or ledger.empty:
        empty = rows[key].iloc[0:0]
        result = rows[out].sort_values(key, ignore_index=True)
        return ChangeSet(rows, rows.iloc[0:0], empty, 0, result, policy,
                         rows.iloc[0:0], rows.iloc[0:0])
    ledger = ledger.reset_index(drop=True)
    for name in columns:  # a column the schema gained since the last publish: null before
        if name not in ledger:
            ledger[name] = pd.Series(index=ledger.index, dtype=rows[name].dtype)
    if marking and DELETED_AT not in ledger:
        ledger[DELETED_AT] = pd.Series(pd.NaT, index=ledger.index, dtype="datetime64[ns, UTC]")
    was_deleted = ledger[DELETED_AT].notna() if marking else pd.Series(False, index=ledger.index)
    ledger_keys = key_index(ledger, key)  # hashed once: the ledger may hold millions of rows
    old = pd.Series(ledger[HASH].to_numpy(), index=ledger_keys)
    revivable = pd.Series(was_deleted.to_numpy(), index=old.index)
    keys = key_index(rows, key)
    known = keys.isin(old.index)
    previous = old.reindex(keys[known]).to_numpy()
    same = previous == rows.loc[known, HASH].to_numpy()
    if marking:
        same &= ~revivable.reindex(keys[known]).to_numpy(dtype=bool)
    new = rows[~known]
    changed = rows[known][~same]
    marked = rows.iloc[0:0]
    still = 0
    if carried is not None and len(carried):
        present = ledger_keys.isin(carried)
        still = int((present & ~was_deleted.to_numpy()).sum())
        keys = keys.append(pd.Index(ledger_keys[present]))
    if full_refresh:
        gone = ~ledger_keys.isin(keys) & ~was_deleted
        deleted = ledger.loc[gone, key]
        if marking:
            marked = ledger.loc[gone, out].copy()
            marked[DELETED_AT] = now if now is not None else pd.Timestamp.now(tz="UTC")
            kept = ledger[~gone]
        else:
            kept = ledger[~gone]
    else:
        gone = pd.Series(False, index=ledger.index)
        deleted = ledger[key].iloc[0:0]
        kept = ledger
    replaced = ledger_keys.isin(key_index(changed, key))
    history = ledger.loc[replaced | gone.to_numpy(), columns + [HASH]]
    # The new published table: previous rows not replaced, plus this run's new and changed rows.
    kept = kept[~replaced[~gone.to_numpy()]]
    parts = [p for p in (kept[out], changed, new, marked) if not p.empty]
    result = pd.concat(parts, ignore_index=True) if parts else rows[out].iloc[0:0]
    result = result.sort_values(key, ignore_index=True)
    if marking:  # concat of all-NaT and set columns may give `object`: keep it a UTC timestamp
        result[DELETED_AT] = pd.to_datetime(result[DELETED_AT], utc=True)
        marked[DELETED_AT] = pd.to_datetime(marked[DELETED_AT], utc=True)
    return ChangeSet(new, changed, deleted, int(same.sum()) + still, result, policy, marked,
                     history)
