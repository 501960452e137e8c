"""JSON registers: a list of records (from a URL or a file path), flattened with
`pandas.json_normalize`, optionally filtered. Full refresh: every run reads the whole register;
change detection happens at publish.

Parameters: see `json_records` (its `Args:`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.complete import load_json
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.local import local_file
from odp.spec import Dataset


@dataclass(frozen=True)
class RecordShape:
    """How a JSON list of records becomes rows (see `json_records` for each field)."""

    record_path: str | None = None
    meta: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    filter: dict[str, str | int | float | bool] = field(default_factory=dict)
    position_column: str | None = None
    position_group: str | None = None


def _load(dataset: Dataset, url: str | None, path: str | None,
          http: HttpSettings) -> tuple[Any, str]:
    if file := local_file(dataset.name, {"url": url, "path": path}, dataset.definition_path):
        # decoded by load_json, as an answer over HTTP
        return load_json(file.read_bytes(), f"{dataset.name}: {file}"), str(file)
    if url:
        return SourceClient(dataset.name, http).get_json(url), url
    raise ConfigError(f"{dataset.definition_path}: [source] needs 'url' or 'path'")


def flatten(records: Any, shape: RecordShape, where: str) -> pd.DataFrame:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SourceError(f"{where}: expected a JSON list of objects")
    if not records:
        return pd.DataFrame()  # no rows: the gate decides (0 rows, or may_be_empty)
    record_path = shape.record_path
    if record_path:
        for i, record in enumerate(records, start=1):
            if not isinstance(record.get(record_path, []), list):
                raise SourceError(f"{where}: record {i}: '{record_path}' is not a list")
        frame = pd.json_normalize(records, record_path=record_path, meta=list(shape.meta),
                                  errors="ignore")
        if position := shape.position_column:
            # 1-based position of each nested item: within its record, or — with
            # `position_group` (a meta column) — across all records sharing that value.
            group = shape.position_group
            if group:
                frame[position] = frame.groupby(frame[group].astype("string")).cumcount() + 1
            else:
                counts = [len(r.get(record_path) or []) for r in records]
                frame[position] = [i for n in counts for i in range(1, n + 1)]
    else:
        frame = pd.json_normalize(records)
    frame = frame.rename(columns=shape.rename)
    frame = as_raw_text(frame)
    for column, wanted in shape.filter.items():
        if column not in frame.columns:
            raise SourceError(f"{where}: filter column '{column}' is missing")
        frame = frame[frame[column] == str(wanted)]
    return frame.reset_index(drop=True)


def json_records(dataset: Dataset, *, url: str | None = None, path: str | None = None,
                 record_path: str | None = None, meta: tuple[str, ...] = (),
                 rename: dict[str, str] | None = None,
                 filter: dict[str, str | int | float | bool] | None = None,  # noqa: A002
                 position_column: str | None = None, position_group: str | None = None,
                 http: HttpSettings) -> Any:
    """A JSON register as rows, read whole every run.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        url: where the JSON list of records is fetched.
        path: a JSON file of the project instead of `url`.
        record_path: a list inside each record whose items become the rows (e.g. buildings).
        meta: record keys copied onto each item's row (with `record_path`).
        rename: column -> new name.
        filter: column = value: keep only rows with that value.
        position_column: a column numbering each item (1-based) within its record.
        position_group: a meta column: number items across all records sharing its value
            (one entity split over several records).
        http: timeouts, retries, deadline and size cap of the requests.
    """
    shape = RecordShape(record_path, tuple(meta), dict(rename or {}), dict(filter or {}),
                        position_column, position_group)

    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def records() -> Iterator[pd.DataFrame]:
        payload, where = _load(dataset, url, path, http)
        yield flatten(payload, shape, f"{dataset.name}: {where}")

    return records
