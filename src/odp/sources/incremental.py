"""Incremental helpers shared by source types: keep only rows newer than what dlt state holds.

Timestamps are compared as instants (parsed UTC), stored in state as `YYYY-MM-DDTHH:MM:SSZ`
(or with milliseconds where the source has them)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import dlt
import pandas as pd

from odp.spec import Dataset

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def parse_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def keep_newer(
    frame: pd.DataFrame, column: str, last: str | None, fmt: str = STAMP
) -> tuple[pd.DataFrame, str | None]:
    """Rows of `frame` whose `column` lies after `last`, and the new high-water mark (or `last`
    when nothing newer came). Rows with an unparseable time are kept: validation rejects them."""
    parsed = parse_utc(frame[column])
    if last:
        old = (parsed <= pd.Timestamp(last)).fillna(False).to_numpy(dtype=bool)
        frame, parsed = frame[~old], parsed[~old]
    if parsed.notna().any():
        top = parsed.max()
        if not last or top > pd.Timestamp(last):
            return frame, top.strftime(fmt)
    return frame, last


def bucket(state: MutableMapping[str, Any], *path: str) -> dict[str, Any]:
    """A nested dict inside dlt resource state (created on first use)."""
    node = state
    for key in path:
        node = node.setdefault(key, {})
    return node  # type: ignore[return-value]


def merged_resource(dataset: Dataset) -> Any:
    """The dlt resource decorator of an incremental dataset: staged under the dataset's table
    name, re-delivered rows merged on the schema's primary key (never duplicated)."""
    return dlt.resource(
        name=dataset.table_name,
        write_disposition="merge",
        primary_key=list(dataset.schema.primary_key),
    )
