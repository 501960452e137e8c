"""Source types. Each module turns a dataset's `[source]` table into a dlt resource that yields
pandas DataFrames of raw text columns (validation types them from the Table Schema).

A new source type: a module here with a factory, registered below (one line), a dataset
definition using it, recordings and tests. The factory takes the dataset (its name, schema and
extract mode) and the source's settings as typed keyword parameters, documented under `Args:`
as dlt's verified sources do:

    def gauge(dataset: Dataset, *, station: str, initial_start: str = "P30D",
              http: HttpSettings) -> Any:

`make_resource` checks the `[source]` table against that signature: an unknown key, a missing
one or a value of the wrong type is a ConfigError naming the file and the key. The keys every
HTTP source shares (`timeout`, `deadline`, … and `auth`) arrive as one `http` parameter.
Structured settings are small frozen dataclasses (e.g. `FeatureColumns`, `TableLayout`); code
that holds a `[source]` table itself (tests, the draft reader) picks them with
`odp.sources.settings.settings_of`."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, get_type_hints

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
    "situation": "odp.sources.situation:situation",
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
    module, name = target.split(":")
    factory = getattr(importlib.import_module(module), name)
    return factory(dataset, **source_arguments(dataset, factory))


SHARED_KEYS = frozenset({"type", "auth", "timeout", "max_attempts", "backoff_factor",
                         "max_retry_delay", "deadline", "max_bytes",
                         "max_unpacked_bytes", "max_ratio"})  # the last two: archives.py


def source_arguments(dataset: Dataset, factory: Any) -> dict[str, Any]:
    """The `[source]` table as the factory's keyword arguments, each checked against its type."""
    import pydantic

    where = f"{dataset.definition_path}: [source]"
    refuse_userinfo(dataset.source, where)
    params = {n: p for n, p in inspect.signature(factory).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if not params:
        return {}
    given = {k: v for k, v in dataset.source.items() if k not in SHARED_KEYS}
    if unknown := sorted(set(given) - set(params)):
        known = ", ".join(sorted(set(params) - {"http"}))
        raise ConfigError(f"{where} unknown key '{unknown[0]}' (known: {known})")
    hints = get_type_hints(factory)
    args: dict[str, Any] = {}
    for name, param in params.items():
        if name == "http":
            from odp.sources.http import HttpSettings

            args[name] = HttpSettings.from_source(dataset.source)
        elif name in given:
            try:
                args[name] = pydantic.TypeAdapter(hints[name]).validate_python(given[name])
            except pydantic.ValidationError as exc:
                problem = exc.errors()[0]["msg"].lower()
                raise ConfigError(f"{where} {name}: {problem} (got {given[name]!r})") from None
        elif param.default is inspect.Parameter.empty:
            raise ConfigError(f"{where} needs '{name}'")
    return args


def refuse_userinfo(source: dict[str, Any], where: str) -> None:
    """ConfigError for any string of the `[source]` table (nested tables and lists too) that is
    a URL with userinfo (`scheme://user:password@host/…`): credentials belong in
    `[source.auth]`, read from the environment or a secrets file, never in the definition."""
    from odp import userinfo

    userinfo.refuse_userinfo(
        source, where, "say where they are in [source.auth] instead (basic_user / "
        "basic_password_env, a header or query_param with value_env or value_file)")
