"""Helpers every indicator shares: station series as numpy arrays, a regular UTC grid, spans of
recomputation and the `Computed` result the `derived` source merges into staging."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MINUTE = 60 * 10**9  # ns
HOUR = 60 * MINUTE
DAY = 1440 * MINUTE
EMPTY = (np.empty(0, np.int64), np.empty(0))


@dataclass(frozen=True)
class Computed:
    """`rows` are complete within `spans` (station_id, lo, hi: inclusive UTC bounds on the
    output's time column): rows staged there that are not among them are gone."""

    rows: pd.DataFrame
    spans: pd.DataFrame


def on_grid(times: np.ndarray, values: np.ndarray, lo: int, hi: int, step: int) -> np.ndarray:
    """The station's values on the grid lo, lo+step … hi (ns); NaN where nothing was delivered.
    Times off the grid (not a multiple of the step) are ignored."""
    out = np.full((hi - lo) // step + 1, np.nan)
    a, b = np.searchsorted(times, lo, "left"), np.searchsorted(times, hi, "right")
    offset = times[a:b] - lo
    aligned = offset % step == 0
    out[offset[aligned] // step] = values[a:b][aligned]
    return out


def merge(spans: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Inclusive intervals merged when they overlap or lie within `gap` of each other."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def ceil_to(t: int, step: int) -> int:
    """The first multiple of `step` at or after t."""
    return -((-t) // step) * step


def station_arrays(series: pd.DataFrame,
                   column: str = "value") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """station -> (sorted UTC times in ns, values of `column` with NaN for missing)."""
    times = series["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    values = series[column].to_numpy(dtype=float, na_value=np.nan)
    out = {}
    for station, at in series.groupby("station_id", sort=False).indices.items():
        order = np.argsort(times[at], kind="stable")
        out[str(station)] = (times[at][order], values[at][order])
    return out


def utc_times(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


def spans_frame(spans: list[tuple[str, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(spans, columns=["station_id", "lo", "hi"])
    frame["lo"] = pd.to_datetime(frame["lo"].astype("int64"), unit="ns", utc=True)
    frame["hi"] = pd.to_datetime(frame["hi"].astype("int64"), unit="ns", utc=True)
    return frame.astype({"station_id": "string"})


def grid_stamps(lo: int, hi: int, step: int) -> np.ndarray:
    """lo, lo+step … hi in ns (exact integers, no floats)."""
    return lo + step * np.arange((hi - lo) // step + 1, dtype=np.int64)
