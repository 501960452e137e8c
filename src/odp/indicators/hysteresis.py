"""Hysteresis: a level (an alarm level, a warning state) must not flap when a value swings
around its threshold. A level is **entered** as soon as the value reaches it; it is **left**
only when the value has been below it by more than `margin` for `readings` consecutive
measurements (both conditions; `margin = 0` and `readings = 1` is no hysteresis).

    [indicators.flood.hysteresis]      # or a situation profile's hysteresis = { readings = 3 }
    margin = 10.0                      # a level is left only more than 10 cm below its Richtwert
    readings = 4                       # … for 4 consecutive measurements (1 h of 15-min values)

The held level follows the recurrence s_i = max(up_i, min(s_{i-1}, m_i)), where up_i is the
level the value reaches (thresholds as configured), m_i the highest level it reached over the
last `readings` measurements against the thresholds lowered by `margin` (the level it has not
clearly left). Rising is immediate (s_i ≥ up_i), falling needs m_i below the held level. The
state is carried across gaps (only measured values count as readings). Computed per run of
equal (up, m) pairs: the loop runs once per change of level or band, not per value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odp.errors import ConfigError


@dataclass(frozen=True)
class Hysteresis:
    margin: float = 0.0  # in the value's unit, below a level's threshold
    readings: int = 1  # consecutive measurements below (1: the first one below leaves)

    @property
    def active(self) -> bool:
        return self.margin > 0 or self.readings > 1


def parse_hysteresis(table: Any, where: str, margin: bool = True) -> Hysteresis:
    """A `hysteresis` table → Hysteresis (checked); absent → none. `margin = False`: the
    table may only hold `readings` (levels without the value's thresholds)."""
    if table is None:
        return Hysteresis()
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} hysteresis: a table with readings"
                          f"{' and margin' if margin else ''}")
    known = {"margin", "readings"} if margin else {"readings"}
    if unknown := sorted(set(table) - known):
        raise ConfigError(f"{where} hysteresis: unknown key '{unknown[0]}' (known: "
                          f"{', '.join(sorted(known))})")
    gap = table.get("margin", 0.0)
    if not isinstance(gap, int | float) or isinstance(gap, bool) or gap < 0:
        raise ConfigError(f"{where} hysteresis.margin: a number >= 0 in the value's unit "
                          f"(got {gap!r})")
    count = table.get("readings", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"{where} hysteresis.readings: a whole number >= 1 (got {count!r})")
    return Hysteresis(float(gap), int(count))


def rolling_max(values: np.ndarray, n: int) -> np.ndarray:
    """max(values[i − n + 1 … i]) (fewer at the start)."""
    if n <= 1 or not len(values):
        return values.copy()
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.r_[np.full(n - 1, values.min()), values]
    return sliding_window_view(padded, n).max(axis=1)


def held(up: np.ndarray, hold: np.ndarray, readings: int) -> np.ndarray:
    """The held level per measurement: up = the level reached, hold (≥ up) = the level not yet
    clearly left (thresholds lowered by the margin); see the module docstring."""
    if not len(up):
        return up.astype(np.int64)
    up = up.astype(np.int64)
    m = np.maximum(rolling_max(hold.astype(np.int64), readings), up)
    starts = np.flatnonzero(np.r_[True, (np.diff(up) != 0) | (np.diff(m) != 0)])
    out = np.empty(len(up), dtype=np.int64)
    state = int(up[0])
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(up)], strict=True):
        state = max(int(up[a]), min(state, int(m[a])))  # the same for the whole run
        out[a:b] = state
    return out


def held_levels(values: np.ndarray, thresholds: tuple[float, ...],
                hysteresis: Hysteresis) -> np.ndarray:
    """Levels of measured values (no NaN) against ascending thresholds (value ≥ threshold),
    held by the hysteresis."""
    edges = np.asarray(thresholds, dtype=float)
    up = np.searchsorted(edges, values, side="right")
    if not hysteresis.active:
        return up.astype(np.int64)
    hold = np.searchsorted(edges - hysteresis.margin, values, side="right")
    return held(up, hold, hysteresis.readings)
