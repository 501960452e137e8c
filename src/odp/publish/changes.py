"""Change detection against the ledger of what was last published successfully.

The ledger is the full published table (a Parquet file per dataset) with a hash per row. A run
compares its rows with it by primary key: new, changed, unchanged, and — for full-refresh
datasets — deleted. The ledger is replaced only after CKAN accepted every write, so a failed
publish is simply redone by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HASH = "_row_hash"


@dataclass(frozen=True)
class ChangeSet:
    new: pd.DataFrame
    changed: pd.DataFrame
    deleted: pd.DataFrame  # key columns only
    unchanged: int
    result: pd.DataFrame  # the published table after applying the changes (with HASH)

    @property
    def empty(self) -> bool:
        return self.new.empty and self.changed.empty and self.deleted.empty


def ledger_path(state: Path, name: str) -> Path:
    return state / "published" / f"{name}.parquet"


def read_ledger(state: Path, name: str) -> pd.DataFrame | None:
    path = ledger_path(state, name)
    return pd.read_parquet(path) if path.exists() else None


def write_ledger(state: Path, name: str, table: pd.DataFrame) -> None:
    path = ledger_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)  # atomic: the ledger is old or new, never half


def _canonical(column: pd.Series) -> pd.Series:
    """Same value → same hash, whatever resolution or nullable dtype a Parquet round trip gives."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
        column
    ):
        return column.dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z").astype("string")
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("Float64")
    return column.astype("string")


def row_hashes(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    canonical = pd.DataFrame({c: _canonical(table[c]) for c in columns}, index=table.index)
    return pd.util.hash_pandas_object(canonical, index=False).astype("uint64")


def _key_index(table: pd.DataFrame, key: list[str]) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(table[key].astype("string"))


def diff(
    rows: pd.DataFrame, ledger: pd.DataFrame | None, key: list[str], columns: list[str],
    full_refresh: bool,
) -> ChangeSet:
    """`rows` are this run's publishable rows (all of them for a full refresh)."""
    rows = rows[columns].copy()
    rows[HASH] = row_hashes(rows, columns)
    if ledger is None or ledger.empty:
        return ChangeSet(rows, rows.iloc[0:0], rows[key].iloc[0:0], 0, rows.reset_index(drop=True))
    ledger = ledger.reset_index(drop=True)
    old = pd.Series(ledger[HASH].to_numpy(), index=_key_index(ledger, key))
    keys = _key_index(rows, key)
    known = keys.isin(old.index)
    previous = old.reindex(keys[known]).to_numpy()
    same = previous == rows.loc[known, HASH].to_numpy()
    new = rows[~known]
    changed = rows[known][~same]
    if full_refresh:
        gone = ~_key_index(ledger, key).isin(keys)
        deleted = ledger.loc[gone, key]
        kept = ledger[~gone]
    else:
        deleted = ledger[key].iloc[0:0]
        kept = ledger
    # The new published table: previous rows not replaced, plus this run's new and changed rows.
    replaced = _key_index(kept, key).isin(_key_index(changed, key))
    result = pd.concat([kept[~replaced][columns + [HASH]], changed, new], ignore_index=True)
    result = result.sort_values(key, ignore_index=True)
    return ChangeSet(new, changed, deleted, int(same.sum()), result)
