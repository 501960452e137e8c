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
    found: list[pd.DataFrame] = []
    if rules.monotonic != "off" and past is not None:
        found.append(_monotonic(batch, past, rules))
    rows = pd.concat([past, batch], ignore_index=True) if past is not None else batch
    rows = rows.reset_index(drop=True)
    series = _series_ids(rows, list(rules.by))
    order = np.lexsort((_ns(rows[rules.time]), series))
    rows, series = rows.iloc[order].reset_index(drop=True), series[order]
    for item in rules.values:
        found.extend(_values(rows, series, item))
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


def _monotonic(batch: pd.DataFrame, past: pd.DataFrame, rules: SeriesRules) -> pd.DataFrame:
    by, time = list(rules.by), rules.time
    if by:
        last = past.groupby(by, sort=False)[time].max().rename("__last").reset_index()
        joined = batch.merge(last, on=by, how="left")
    else:
        joined = batch.assign(__last=past[time].max())
    has = joined["__last"].notna().to_numpy(dtype=bool)
    late = np.zeros(len(joined), dtype=bool)
    late[has] = _ns(joined[time][has]) <= _ns(joined["__last"][has])
    hit = joined[late]
    stamps = hit[time].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    lasts = hit["__last"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    reasons = (fnd.quoted(stamps) + " is not after the last published time of its series ("
               + lasts.astype("string") + ")")
    return fnd.frame(hit[_POS].to_numpy(dtype=np.int64), time, "series:monotonic",
                     rules.monotonic, stamps, reasons)


def _values(rows: pd.DataFrame, series: np.ndarray, item: ValueCheck) -> list[pd.DataFrame]:
    mask = rows[item.column].notna().to_numpy(dtype=bool)
    for column, wanted in item.when.items():
        mask &= (rows[column].astype("string") == wanted).fillna(False).to_numpy(dtype=bool)
    rows, series = rows[mask], series[mask]
    if rows.empty:
        return []
    new = rows[_POS].to_numpy() >= 0
    same = np.r_[False, series[1:] == series[:-1]]
    text = _shown(rows[item.column])
    out = []
    if item.max_jump is not None:
        values = rows[item.column].to_numpy(dtype=float, na_value=np.nan)
        change = np.abs(np.r_[np.nan, np.diff(values)])
        jump = same & new & (change > item.max_jump)
        previous = np.r_[np.nan, values[:-1]][jump]
        tail = [f" jumps by {_num(c)} from {_num(p)} (more than {_num(item.max_jump)})"
                for c, p in zip(change[jump], previous, strict=True)]
        reasons = fnd.quoted(text[jump]) + pd.array(tail, dtype="string")
        out.append(fnd.frame(rows[_POS].to_numpy()[jump], item.column, "series:jump",
                             item.severity, text[jump], reasons))
    if item.flat_count is not None:
        codes = pd.factorize(rows[item.column])[0]
        starts = ~(same & np.r_[False, codes[1:] == codes[:-1]])
        run = np.cumsum(starts)
        first = np.flatnonzero(starts)
        length = np.arange(len(rows)) - first[run - 1] + 1
        flat = new & (length >= item.flat_count)
        tail = [f" is the same value {n} times in a row (flat line, limit {item.flat_count})"
                for n in length[flat]]
        reasons = fnd.quoted(text[flat]) + pd.array(tail, dtype="string")
        out.append(fnd.frame(rows[_POS].to_numpy()[flat], item.column, "series:flat",
                             item.severity, text[flat], reasons))
    return out


def _shown(values: pd.Series) -> pd.Series:
    """Values as text for findings: numbers without a trailing '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        return values.map(_num, na_action="ignore").astype("string")
    return values.astype("string")


def _num(value: float) -> str:
    return f"{value:g}"
