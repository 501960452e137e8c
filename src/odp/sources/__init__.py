"""Source types. Each module turns a dataset's `[source]` table into a dlt resource that yields
pandas DataFrames of raw text columns (validation types them from the Table Schema)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from odp.errors import ConfigError
from odp.spec import Dataset

SOURCE_TYPES = ("pegelonline", "json_records")


def make_resource(dataset: Dataset) -> Any:
    """The dlt resource for a dataset, by its source type (imported only when used)."""
    factory: Callable[[Dataset], Any]
    if dataset.source_type == "pegelonline":
        from odp.sources.pegelonline import pegelonline_measurements as factory
    elif dataset.source_type == "json_records":
        from odp.sources.json_records import json_records as factory
    else:
        known = ", ".join(SOURCE_TYPES)
        raise ConfigError(
            f"{dataset.definition_path}: unknown source type '{dataset.source_type}' "
            f"(known: {known})"
        )
    return factory(dataset)
