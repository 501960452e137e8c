"""Rules on single cells of the raw batch, before and beside the Table Schema's types:

* `max_cell_chars` (error): a cell longer than `[validate] max_cell_chars` characters is no
  value but a broken or hostile file — a stray quote that swallowed the lines after it, a
  padded field — and is quarantined with its length. The finding and the quarantined row keep
  only the cell's first characters (`shortened`), so a giant cell does not fill the state.
* `nul_character` (error): a cell holding a NUL character (U+0000), which PostgreSQL's text
  type cannot store: the DataStore would refuse the whole write.
* `formula` (warning): a text cell beginning with `=`, `+`, `-`, `@`, tab or carriage return is
  written to the CSV file with a leading single quote (odp.publish.formulas); the DataStore
  keeps it as delivered. The report lists each one, so the officer knows why the file differs.

Both vectorised over Arrow arrays (no Python per row).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from odp.publish.formulas import starts_formula
from odp.spec import TableSchema
from odp.validate import findings as fnd

KEPT_CHARS = 200  # characters of an over-long cell kept in the finding and the quarantine


def _text(column: pd.Series) -> pa.Array:
    try:
        return pa.array(column, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects of several kinds: as text
        return pa.array(column.astype("string"), type=pa.large_string(), from_pandas=True)


def _lengths(column: pd.Series) -> np.ndarray:
    """Characters per cell (missing: 0)."""
    return pc.utf8_length(_text(column)).fill_null(0).to_numpy(zero_copy_only=False)


def _cut(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    return text.str.slice(0, KEPT_CHARS) + f"… ({KEPT_CHARS} characters kept)"


def long_cells(raw: pd.DataFrame, schema: TableSchema, limit: int) -> list[pd.DataFrame]:
    """One error finding per source cell longer than `limit` characters or holding a NUL."""
    out = []
    for f in schema.source_fields:
        if f.name not in raw.columns:
            continue
        lengths = _lengths(raw[f.name])
        positions = np.flatnonzero(lengths > limit)
        if len(positions):
            values = _cut(raw[f.name].iloc[positions])
            reasons = pd.Series([f"is {n} characters long, more than max_cell_chars ({limit})"
                                 for n in lengths[positions]], dtype="string")
            out.append(fnd.frame(positions, f.name, "max_cell_chars", "error", values,
                                 fnd.quoted(values).reset_index(drop=True) + " " + reasons))
        nul = np.flatnonzero(_holds_nul(raw[f.name]) & (lengths <= limit))
        if len(nul):
            values = raw[f.name].iloc[nul].astype("string").str.replace("\x00", "\\0")
            out.append(fnd.frame(nul, f.name, "nul_character", "error", values,
                                 fnd.quoted(values) + " holds a NUL character (U+0000), which "
                                 "PostgreSQL text cannot store"))
    return out


def _holds_nul(column: pd.Series) -> np.ndarray:
    found = pc.match_substring(_text(column), "\x00")
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def formula_cells(raw: pd.DataFrame, schema: TableSchema) -> list[pd.DataFrame]:
    """One warning per text-field cell a spreadsheet would run as a formula."""
    out = []
    for f in schema.source_fields:
        if f.type != "string" or f.name not in raw.columns:
            continue
        positions = np.flatnonzero(starts_formula(raw[f.name]))
        if not len(positions):
            continue
        values = raw[f.name].iloc[positions].astype("string")
        reasons = fnd.quoted(values) + (" would run as a spreadsheet formula: the CSV file "
                                        "writes it with a leading ' (the DataStore keeps it)")
        out.append(fnd.frame(positions, f.name, "formula", "warning", values, reasons))
    return out


def shortened(raw: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The raw batch with cells longer than `limit` cut to their first characters (for the
    quarantine); the batch itself when there are none."""
    out = raw
    for name in raw.columns:
        if str(name).startswith("_"):
            continue
        long = _lengths(raw[name]) > limit
        if long.any():
            if out is raw:
                out = raw.copy()
            column = raw[name].astype("string")
            out[name] = column.mask(long, _cut(column))
    return out


def positions(parts: list[pd.DataFrame]) -> np.ndarray:
    """0-based rows of the findings in `parts`."""
    rows = [p["row"].to_numpy(dtype=np.int64) - 1 for p in parts]
    return np.concatenate(rows) if rows else np.array([], dtype=np.int64)
