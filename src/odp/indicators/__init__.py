"""Indicators: datasets computed from the project's own published datasets.

An indicator is a pair of pure, vectorised functions the `derived` source type
(`odp.sources.derived`) calls with an input's published table; it never reads files or state
itself. The `derived` source decides which time ranges to recompute (only those new or
late-arriving input rows touch) and merges the result into staging.

An indicator module offers, per output (e.g. `heavy_rain_windows`):

    compute(series, step, changed, grid_end, config) -> Computed

`series`: the input's rows (station, UTC time, value, station attributes), `step`: the input's
regular time step, `changed`: per station the input intervals whose rows are new, changed or
gone, `grid_end`: the input's newest time, `config`: the indicator's configuration table of the
city file (`[indicators.NAME]`). `Computed.rows` is complete within `Computed.spans` (per station,
on the output's time column): rows of staging inside a span and not among `rows` are deleted.
"""

from __future__ import annotations

import importlib
from typing import Any

from odp.errors import ConfigError

# indicator -> ("module:compute function", configuration table in the city file's [indicators])
INDICATORS: dict[str, tuple[str, str]] = {
    "heavy_rain_windows": ("odp.indicators.heavy_rain:compute_windows", "heavy_rain"),
    "heavy_rain_events": ("odp.indicators.heavy_rain:compute_events", "heavy_rain"),
}


def indicator(name: str, where: str) -> tuple[Any, str]:
    """The compute function of an indicator and the name of its configuration table."""
    if name not in INDICATORS:
        known = ", ".join(sorted(INDICATORS))
        raise ConfigError(f"{where}: unknown indicator '{name}' (known: {known})")
    target, table = INDICATORS[name]
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function), table
