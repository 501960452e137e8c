"""Indicators: datasets computed from the project's own published datasets.

An indicator is a pair of pure, vectorised functions the `derived` source type
(`odp.sources.derived`) calls with an input's published table; it never reads files or state
itself. The `derived` source decides which time ranges to recompute (only those new or
late-arriving input rows touch) and merges the result into staging.

An indicator (registered below) is a compute function and a configuration parser:

    compute(series, step, changed, grid_end, config) -> Computed
    parse(table, where) -> config

`series`: the input's rows (station, UTC time, value, station attributes), `step`: the input's
regular time step, `changed`: per station the input intervals whose rows are new, changed or
gone, `grid_end`: the input's newest time, `config`: the indicator's configuration table of the
city file (`[indicators.NAME]`). `Computed.rows` is complete within `Computed.spans` (per station,
on the output's time column): rows of staging inside a span and not among `rows` are deleted.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from odp.errors import ConfigError

# indicator -> (compute function, configuration parser, table of the city file's [indicators]
# [, "city": the parser gets the project root as `_root`, e.g. to read the city's districts])
INDICATORS: dict[str, tuple[str, ...]] = {
    "heavy_rain_windows": ("odp.indicators.heavy_rain:compute_windows",
                           "odp.indicators.heavy_rain:parse_config", "heavy_rain", "city"),
    "heavy_rain_events": ("odp.indicators.heavy_rain:compute_events",
                          "odp.indicators.heavy_rain:parse_config", "heavy_rain", "city"),
    "flood_levels": ("odp.indicators.flood:compute_levels", "odp.indicators.flood:parse_config",
                     "flood"),
    "flood_crossings": ("odp.indicators.flood:compute_crossings",
                        "odp.indicators.flood:parse_config", "flood"),
    "air_quality_days": ("odp.indicators.air_quality:compute_days",
                         "odp.indicators.air_quality:parse_config", "air_quality"),
    "heavy_rain_districts": ("odp.indicators.areas:compute_districts",
                             "odp.indicators.areas:parse_config", "heavy_rain_stadtteile",
                             "city"),
    "heavy_rain_districts_current": ("odp.indicators.areas:compute_current",
                                     "odp.indicators.areas:parse_config",
                                     "heavy_rain_stadtteile", "city"),
    "air_quality_districts": ("odp.indicators.areas:compute_districts",
                              "odp.indicators.areas:parse_config", "air_quality_stadtteile",
                              "city"),
}


@dataclass(frozen=True)
class Indicator:
    name: str
    compute: Any  # (series, step, changed, grid_end, config) -> Computed
    parse: Any  # (configuration table, where) -> the typed configuration
    table: str  # default configuration table: the city file's [indicators.TABLE]
    city: bool = False  # the parser needs the project (its city's districts): `_root`


def _load(target: str) -> Any:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def indicator(name: str, where: str) -> Indicator:
    """An indicator by name (imported only when a dataset of it runs)."""
    if name not in INDICATORS:
        known = ", ".join(sorted(INDICATORS))
        raise ConfigError(f"{where}: unknown indicator '{name}' (known: {known})")
    compute, parse, table, *flags = INDICATORS[name]
    return Indicator(name, _load(compute), _load(parse), table, "city" in flags)
