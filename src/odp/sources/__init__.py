"""Source types. Each module turns a dataset's `[source]` table into a dlt resource that yields
pandas DataFrames of raw text columns (validation types them from the Table Schema).

A new source type: a module here with a factory `(Dataset) -> dlt resource`, registered below
(one line), a dataset definition using it, recordings and tests."""

from __future__ import annotations

import importlib
from typing import Any

from odp.errors import ConfigError
from odp.spec import Dataset

# source type -> "module:factory" (imported only when a dataset of that type runs)
SOURCE_TYPES: dict[str, str] = {
    "pegelonline": "odp.sources.pegelonline:pegelonline_measurements",
    "json_records": "odp.sources.json_records:json_records",
    "tabular": "odp.sources.tabular:tabular",
    "ogcapi_features": "odp.sources.ogcapi:ogcapi_features",
    "wfs": "odp.sources.wfs:wfs_features",
    "pegelonline_gauges": "odp.sources.pegelonline_gauges:pegelonline_gauges",
    "sensor_community": "odp.sources.sensor_community:sensor_community",
    "sensorthings": "odp.sources.sensorthings:sensorthings",
    "dwd_cdc": "odp.sources.dwd_cdc:dwd_cdc",
    "derived": "odp.sources.derived:derived",
}


def make_resource(dataset: Dataset) -> Any:
    """The dlt resource for a dataset, by its source type."""
    target = SOURCE_TYPES.get(dataset.source_type)
    if target is None:
        known = ", ".join(sorted(SOURCE_TYPES))
        raise ConfigError(
            f"{dataset.definition_path}: unknown source type '{dataset.source_type}' "
            f"(known: {known})"
        )
    module, factory = target.split(":")
    return getattr(importlib.import_module(module), factory)(dataset)
