"""JSON registers: a list of records (from a URL or a file path), flattened with
`pandas.json_normalize`, optionally filtered. Full refresh: every run reads the whole register;
change detection happens at publish.

Parameters (`[source]`): `url` or `path`, `record_path`, `meta` (list), `rename` (table),
`filter` (column = value), `position_column` (1-based position within `record_path`, or
within `position_group`, a meta column, when one entity is split over several records).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.complete import load_json
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient
from odp.spec import Dataset, project_root


def _load(dataset: Dataset) -> tuple[Any, str]:
    source = dataset.source
    if url := source.get("url"):
        client = SourceClient(dataset.name, HttpSettings.from_source(source))
        return client.get_json(url), url
    if path := source.get("path"):
        file = Path(path) if Path(path).is_absolute() else project_root() / path
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SourceError(f"{dataset.name}: {file}: file not found") from None
        return load_json(text, f"{dataset.name}: {file}"), str(file)
    raise ConfigError(f"{dataset.definition_path}: [source] needs 'url' or 'path'")


def flatten(records: Any, source: dict[str, Any], where: str) -> pd.DataFrame:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SourceError(f"{where}: expected a JSON list of objects")
    if not records:
        return pd.DataFrame()  # no rows: the gate decides (0 rows, or may_be_empty)
    record_path = source.get("record_path")
    meta = source.get("meta", [])
    if record_path:
        for i, record in enumerate(records, start=1):
            if not isinstance(record.get(record_path, []), list):
                raise SourceError(f"{where}: record {i}: '{record_path}' is not a list")
        frame = pd.json_normalize(records, record_path=record_path, meta=meta, errors="ignore")
        if position := source.get("position_column"):
            # 1-based position of each nested item: within its record, or — with
            # `position_group` (a meta column) — across all records sharing that value.
            group = source.get("position_group")
            if group:
                frame[position] = frame.groupby(frame[group].astype("string")).cumcount() + 1
            else:
                counts = [len(r.get(record_path) or []) for r in records]
                frame[position] = [i for n in counts for i in range(1, n + 1)]
    else:
        frame = pd.json_normalize(records)
    frame = frame.rename(columns=source.get("rename", {}))
    frame = as_raw_text(frame)
    for column, wanted in source.get("filter", {}).items():
        if column not in frame.columns:
            raise SourceError(f"{where}: filter column '{column}' is missing")
        frame = frame[frame[column] == str(wanted)]
    return frame.reset_index(drop=True)


def json_records(dataset: Dataset) -> Any:
    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def records() -> Iterator[pd.DataFrame]:
        payload, where = _load(dataset)
        yield flatten(payload, dataset.source, f"{dataset.name}: {where}")

    return records
