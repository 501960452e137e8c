"""Time-series plausibility per series (`[validate.series]`, see odp.validate.settings).

A series is the rows sharing the `by` columns (e.g. one gauge), ordered by `time`. For an
incremental dataset the last published rows of each series (the publish ledger) come first, so a
jump or a flat line is seen across runs even when a run brings one new measurement.

Rules (field = the checked column):
  * `series:monotonic` — a time not after the last published time of its series (data going
    back in time: a clock reset or a late delivery). Incremental datasets only.
  * `series:jump`      — |value − previous value of the series| > max_jump.
  * `series:flat`      — the same value for the flat_count-th time in a row (or more): a sensor
    that stopped measuring.
Vectorised: one sort of the batch (plus history), no loop over rows or series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from odp.validate import findings as fnd
from odp.validate.settings import SeriesRules, ValueCheck

_POS = "__position"  # 0-based batch position; -1 for history rows


def check(
    frame: pd.DataFrame, rules: SeriesRules, history: pd.DataFrame | None = None
) -> list[pd.DataFrame]:
    """Findings for the typed rows of `frame` (index = 0-based batch positions)."""
    needed = list(dict.fromkeys(rules.columns))
    batch = frame[needed].assign(**{_POS: frame.index.to_numpy(dtype=np.int64)})
    batch = batch[batch[rules.time].notna()]
    if batch.empty:
        return []
    past = _tail(history, rules, needed)
    rows = pd.concat([past, batch], ignore_index=True) if past is not None else batch
    rows = rows.reset_index(drop=True)
    series = _series_ids(rows, list(rules.by))
    times = _ns(rows[rules.time])
    found: list[pd.DataFrame] = []
    if rules.monotonic != "off" and past is not None:
        found.append(_monotonic(rows, series, times, rules))
    order = np.lexsort((times, series))
    positions, series = rows[_POS].to_numpy()[order], series[order]
    for item in rules.values:
        found.extend(_values(rows, order, positions, series, item))
    return [f for f in found if len(f)]


def _tail(
    history: pd.DataFrame | None, rules: SeriesRules, needed: list[str]
) -> pd.DataFrame | None:
    """The last rows of each series already published (enough for the longest flat line)."""
    if history is None or history.empty or any(c not in history.columns for c in needed):
        return None
    keep = max([c.flat_count or 1 for c in rules.values] + [1])
    past = history[needed]
    past = past.assign(**{rules.time: pd.to_datetime(past[rules.time], utc=True)})
    past = past.sort_values(rules.time, kind="stable")
    past = past.groupby(list(rules.by), sort=False).tail(keep) if rules.by else past.tail(keep)
    return past.assign(**{_POS: -1})


def _series_ids(rows: pd.DataFrame, by: list[str]) -> np.ndarray:
    if not by:
        return np.zeros(len(rows), dtype=np.int64)
    return rows.groupby(by, sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64)


def _ns(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]").array.asi8


def _monotonic(
    rows: pd.DataFrame, series: np.ndarray, times: np.ndarray, rules: SeriesRules
) -> pd.DataFrame:
    """Batch rows whose time is not after the latest published time of their series."""
    positions = rows[_POS].to_numpy()
    old = positions < 0
    last = np.full(series.max() + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, series[old], times[old])
    late = ~old & (times <= last[series]) & (last[series] != np.iinfo(np.int64).min)
    stamps = pd.Series(pd.to_datetime(times[late], utc=True)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    lasts = pd.Series(pd.to_datetime(last[series[late]], utc=True)).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    reasons = [f" is not after the last published time of its series ({t})" for t in lasts]
    stamps = stamps.astype("string")
    return fnd.frame(positions[late], rules.time, "series:monotonic", rules.monotonic, stamps,
                     fnd.quoted(stamps) + pd.array(reasons, dtype="string"))


def _values(
    rows: pd.DataFrame, order: np.ndarray, positions: np.ndarray, series: np.ndarray,
    item: ValueCheck,
) -> list[pd.DataFrame]:
    """Jumps and flat lines of one column; `order` sorts `rows` by series and time."""
    column = rows[item.column].iloc[order].reset_index(drop=True)
    mask = column.notna().to_numpy(dtype=bool)
    for name, wanted in item.when.items():
        selected = rows[name].iloc[order].astype("string") == wanted
        mask &= selected.fillna(False).to_numpy(dtype=bool)
    if not mask.all():
        column, positions, series = column[mask].reset_index(drop=True), positions[mask], \
            series[mask]
    if column.empty:
        return []
    new = positions >= 0
    same = np.r_[False, series[1:] == series[:-1]]
    out = []
    if item.max_jump is not None:
        values = column.to_numpy(dtype=float, na_value=np.nan)
        change = np.abs(np.r_[np.nan, np.diff(values)])
        jump = same & new & (change > item.max_jump)
        previous = np.r_[np.nan, values[:-1]][jump]
        tail = [f" jumps by {_num(c)} from {_num(p)} (more than {_num(item.max_jump)})"
                for c, p in zip(change[jump], previous, strict=True)]
        text = _shown(column[jump])
        reasons = fnd.quoted(text) + pd.array(tail, dtype="string")
        out.append(fnd.frame(positions[jump], item.column, "series:jump", item.severity, text,
                             reasons))
    if item.flat_count is not None:
        codes = pd.factorize(column)[0]
        starts = ~(same & np.r_[False, codes[1:] == codes[:-1]])
        run = np.cumsum(starts)
        first = np.flatnonzero(starts)
        length = np.arange(len(column)) - first[run - 1] + 1
        flat = new & (length >= item.flat_count)
        tail = [f" is the same value {n} times in a row (flat line, limit {item.flat_count})"
                for n in length[flat]]
        text = _shown(column[flat])
        reasons = fnd.quoted(text) + pd.array(tail, dtype="string")
        out.append(fnd.frame(positions[flat], item.column, "series:flat", item.severity, text,
                             reasons))
    return out


def _shown(values: pd.Series) -> pd.Series:
    """Values as text for findings: numbers without a trailing '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        return values.map(_num, na_action="ignore").astype("string")
    return values.astype("string")


def _num(value: float) -> str:
    return f"{value:g}"
