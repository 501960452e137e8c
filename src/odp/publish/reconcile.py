"""The published table as the portal holds it, in the ledger's typed form.

The ledger (`STATE/published/NAME.parquet`) is written after every write to the portal
succeeded, so it may be behind the portal: a run killed after the DataStore commit, or local
state lost. Then the next run diffs against the DataStore table itself — read by COPY or
through `datastore_search` — typed as the validated rows are typed (Table Schema → pandas), so
`changes.row_hashes` of an unchanged row agree with the source's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from odp.publish.changes import DELETED_AT, HASH, diff, row_hashes
from odp.spec import Dataset

# Table Schema type → (Arrow type the DataStore's text is cast to, pandas dtype).
_TYPES: dict[str, tuple[str, str | None]] = {
    "integer": ("int64", "Int64"),
    "number": ("float64", "Float64"),
    "boolean": ("bool", "boolean"),
    "datetime": ("timestamp", "datetime64[ns, UTC]"),
    "date": ("date32", None),  # datetime.date objects, as odp.validate.coerce gives them
}


def _typed(text: Any, kind: str) -> pd.Series:
    """A pyarrow text column (PostgreSQL's `::text` forms) as the validated frame types it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow, dtype = _TYPES.get(kind, ("string", "string"))
    if arrow == "string":
        return pd.Series(text.to_pandas(), dtype="string")
    if arrow == "timestamp":  # '2024-11-21 05:00:00' (COPY) or '…T05:00:00' (API): naive UTC
        values = pc.cast(text, pa.timestamp("us")).to_pandas()
        return pd.Series(values).dt.tz_localize("UTC").astype(dtype)
    if arrow == "date32":
        values = pc.cast(text, pa.date32()).to_pandas()
        return pd.Series(values, dtype=object).where(pd.notna(values), None)
    target = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}[arrow]
    return pd.Series(pc.cast(text, target).to_pandas(), dtype=dtype)


def column_kinds(dataset: Dataset, columns: list[str]) -> dict[str, str]:
    kinds = {}
    for name in columns:
        kinds[name] = "datetime" if name == DELETED_AT else dataset.schema.field(name).type
    return kinds


def ledger_from_table(text: Any, kinds: dict[str, str], names: list[str],
                      key: list[str]) -> pd.DataFrame:
    """The rows a loader read (`Loader.read`: a pyarrow table of text) as a ledger: each
    column typed by its Table Schema type (`kinds`), the row hash over the schema's `names`,
    sorted by the primary `key`."""
    frame = pd.DataFrame({name: _typed(text.column(name).combine_chunks(), kinds[name])
                          for name in text.column_names})
    for name in names:  # a column the table lacks (the schema gained it): null, as in diff
        if name not in frame:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype="object")
    frame[HASH] = row_hashes(frame, names)
    return frame.sort_values(key, ignore_index=True)


def differences(table: pd.DataFrame, ledger: pd.DataFrame | None, dataset: Dataset) -> int:
    """How many rows the local ledger and the portal's table disagree on."""
    if ledger is None:
        return len(table)
    names = dataset.schema.names
    found = diff(table, ledger, list(dataset.schema.primary_key), names, True)
    return len(found.new) + len(found.changed) + len(found.deleted)
