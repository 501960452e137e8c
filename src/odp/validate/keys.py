"""Keys before writes: the Table Schema primary key of a batch, checked after coercion.

The DataStore refuses a table whose key repeats or is missing, so validation finds such rows
first, on the typed values (an integer key "01" and "1" are the same key, as in the DataStore):

  * a row whose key field is missing (null) — rule `primary_key`, rejected;
  * a key that occurs in more than one row — rule `primary_key`, field the key fields, reason
    "duplicate key (a=1|b=2) also in row(s) 5, 9" (the other rows, 1-based, the first
    ROWS_LISTED then "and N more"). `[validate] dedupe` decides:
      "reject" (default)  every row of the key is rejected (which one is right is unknown);
      "first" / "last"    the first / last row in delivery order is kept, the others are left
                          out with a warning (not rejected, not quarantined).
Only rows that coerced cleanly are compared (a row rejected by coercion is not published, and
its own finding says why). A suite expectation that the key columns are unique (severity error,
no row_condition) keeps reporting the duplicates the "reject" way under its own name; the key
check then adds no second finding. Rejections flow through the findings, the quarantine and
the gate (`max_quarantine_share` counts them).

A table without a natural key uses a **row hash** as its key: a field
`{"name": "row_hash", "type": "string", "odp:derived": "row_hash"}` and
`"primaryKey": ["row_hash"]` in `schemas/NAME.json` (`odp draft` writes this when no column
combination of the sample is unique). Validation fills it before the key check: 16 hex
characters of a 64-bit hash (pandas' `hash_pandas_object`, SipHash with a fixed key) of the
row's typed source values in schema order — the same for the same row in every run and in any
order of rows, so identical rows are duplicates (then `dedupe` decides) and a changed row is a
new key (the old one is deleted). Only for full-refresh datasets (incremental staging merges on
the key before validation computes it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from odp.validate import findings as fnd
from odp.validate.suite import Suite

RULE = "primary_key"
ROWS_LISTED = 5  # other rows named in a duplicate's reason
HASH_CHARS = 16
_UNIQUE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")
_MISSING_HASH = np.uint64(0x9E3779B97F4A7C15)  # a column's hash where its value is missing


@dataclass(frozen=True)
class KeyCheck:
    findings: pd.DataFrame  # rule primary_key: errors (rejected) and warnings (left out)
    left_out: np.ndarray  # 0-based positions dropped by dedupe "first"/"last"


# --- row hash ----------------------------------------------------------------------------------


def row_hash(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """16 hex characters per row from the typed values of `columns` (vectorised)."""
    parts = {name: _column_hash(frame[name]) for name in columns}
    combined = pd.util.hash_pandas_object(pd.DataFrame(parts, index=frame.index), index=False)
    hexed = combined.to_numpy(dtype=np.uint64).astype(">u8").tobytes().hex().encode()
    fixed = pa.FixedSizeBinaryArray.from_buffers(  # one buffer of 16-character slices
        pa.binary(HASH_CHARS), len(combined), [None, pa.py_buffer(hexed)])
    text = fixed.cast(pa.binary()).cast(pa.string()).to_pandas()
    return pd.Series(text, index=frame.index, dtype="string")


def _column_hash(values: pd.Series) -> np.ndarray:
    """The column's values as uint64 hashes; a missing value hashes to a fixed constant.
    Numbers hash by value (Int64 as int64, Float64 as float64, date-times as UTC nanoseconds),
    everything else by its text."""
    missing = values.isna().to_numpy(dtype=bool)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        plain = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view("i8")
    elif pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        plain = values.to_numpy(dtype="int64", na_value=0)
    elif pd.api.types.is_float_dtype(values.dtype):
        plain = values.to_numpy(dtype="float64", na_value=0.0)
    else:
        plain = values.astype("string").fillna("").to_numpy(dtype=object)
    hashed = pd.util.hash_array(plain, categorize=True)
    hashed[missing] = _MISSING_HASH
    return hashed


# --- the key check -----------------------------------------------------------------------------


def covered_by_suite(suite: Suite, key: list[str]) -> bool:
    """Whether the suite itself rejects rows whose `key` repeats (error, over all rows)."""
    for item in suite.expectations:
        kwargs = item.get("kwargs", {})
        columns = kwargs.get("column_list") or [kwargs.get("column")]
        severity = item.get("meta", {}).get("severity", "error")
        if (item.get("type") in _UNIQUE and severity == "error" and set(columns) == set(key)
                and "row_condition" not in kwargs):
            return True
    return False


KeyText = Callable[[np.ndarray], pd.Series]  # 0-based positions → `a=1|b=2` of each row


def check_keys(
    typed: pd.DataFrame,
    key: list[str],
    considered: np.ndarray,
    key_text: KeyText,
    dedupe: str = "reject",
    duplicates_reported: bool = False,
) -> KeyCheck:
    """Missing and repeated keys among the `considered` rows (a boolean mask) of `typed`;
    `key_text` gives the key as the quarantine writes it. With `duplicates_reported` (the suite
    rejects them already) "reject" adds no finding for repeated keys."""
    if not key:
        return KeyCheck(fnd.empty(), np.array([], dtype=np.int64))
    keys = typed[key].reset_index(drop=True)
    field = ",".join(key)
    incomplete = keys.isna().any(axis=1).to_numpy(dtype=bool) & considered
    parts = [_missing(np.flatnonzero(incomplete), keys, key_text, field)]
    compared = considered & ~incomplete
    repeated = keys.duplicated(keep=False).to_numpy(dtype=bool) & compared
    left_out = np.array([], dtype=np.int64)
    if repeated.any() and not (dedupe == "reject" and duplicates_reported):
        positions, others, kept = _groups(keys, np.flatnonzero(repeated), dedupe)
        text = key_text(positions).reset_index(drop=True)
        reasons = [_reason(k, o, kept_row) for k, o, kept_row in zip(text, others, kept,
                                                                        strict=True)]
        if dedupe == "reject":
            parts.append(fnd.frame(positions, field, RULE, "error", text,
                                   pd.Series(reasons, dtype="string")))
        else:
            dropped = kept != positions + 1
            left_out = positions[dropped]
            parts.append(fnd.frame(left_out, field, RULE, "warning", text[dropped],
                                   pd.Series(reasons, dtype="string")[dropped]))
    return KeyCheck(fnd.concat(parts), np.sort(left_out))


def _missing(positions: np.ndarray, keys: pd.DataFrame, key_text: KeyText,
             field: str) -> pd.DataFrame:
    if not len(positions):
        return fnd.empty()
    absent = keys.iloc[positions].isna().to_numpy(dtype=bool)
    names = [", ".join(f"'{c}'" for c, gone in zip(keys.columns, row, strict=True) if gone)
             for row in absent]
    reasons = pd.Series([f"key field {n} is missing" for n in names], dtype="string")
    return fnd.frame(positions, field, RULE, "error", key_text(positions).reset_index(drop=True),
                     reasons)


def _groups(keys: pd.DataFrame, repeated: np.ndarray, dedupe: str
            ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """For each repeated row (in delivery order): its position, the other rows of its key
    (1-based, "5, 9" — at most ROWS_LISTED, then "and N more") and the row dedupe keeps
    (1-based; 0 for "reject"). Python loops only over the repeated rows."""
    group = keys.iloc[repeated].groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    positions, others, kept = [], [], []
    for members in np.split(repeated[order], np.flatnonzero(np.diff(group[order])) + 1):
        head = [int(r) for r in members[: ROWS_LISTED + 1] + 1]
        more = len(members) - 1 - ROWS_LISTED
        keep = head[0] if dedupe == "first" else int(members[-1]) + 1 if dedupe == "last" else 0
        for position in members:
            listed = [r for r in head if r != position + 1][:ROWS_LISTED]
            text = ", ".join(map(str, listed)) + (f" and {more} more" if more > 0 else "")
            positions.append(position)
            others.append(text)
            kept.append(keep)
    at = np.argsort(positions, kind="stable")
    return (np.asarray(positions, dtype=np.int64)[at], [others[i] for i in at],
            np.asarray(kept, dtype=np.int64)[at])


def _reason(key_text: str, others: str, kept: int) -> str:
    reason = f"duplicate key ({key_text}) also in row(s) {others}"
    return f"{reason}; row {kept} kept" if kept else reason
