"""Formula injection neutralised in files meant for spreadsheets (the CSV resource, and any XLSX
ever written), as OWASP recommends ("CSV Injection"): a text cell that begins with `=`, `+`, `-`,
`@`, a tab or a carriage return would be run as a formula by Excel or LibreOffice when an officer
opens the file (`=HYPERLINK(...)` sends data away, `=cmd|...` once ran programs), so it is
written with a leading single quote: `=1+2` → `'=1+2`, which spreadsheets show as text.

* Only text columns: numbers, booleans, dates and timestamps are written as they are, so a
  negative number in a numeric column stays `-3.5`. A text column's `-5` is escaped too (OWASP:
  the first character decides, and a text column may hold `-2+3`).
* A carriage return inside a text cell is written as a line feed: Python's CSV writer quotes a
  cell holding a line feed but not one holding a lone carriage return, which a spreadsheet takes
  as the end of the row — a way to start a new row with a formula. The line break stays.
* Only the files: the DataStore, the Parquet file (typed, for programs) and the GeoJSON keep the
  value as delivered. Validation lists each such cell as a warning (rule `formula`,
  odp.validate.cells), so the officer sees what was escaped and why.

Vectorised (Arrow's regex kernel over the column), no Python per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_STARTS = "^[=+\\-@\t\r]"
ESCAPE = "'"
_TEXT_KINDS = {"string", "empty", "mixed", "mixed-integer"}  # pandas' inferred kinds holding text


def is_text(column: pd.Series) -> bool:
    """Whether the column holds text (string dtype, or objects that are text)."""
    if isinstance(column.dtype, pd.StringDtype):
        return True
    if column.dtype != object:
        return False
    return pd.api.types.infer_dtype(column, skipna=True) in _TEXT_KINDS


def _arrow(column: pd.Series) -> pa.Array | None:
    """The column as an Arrow text array (None: objects of several kinds)."""
    try:
        return pa.array(column, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _masks(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: (begins with a formula trigger, holds a carriage return); missing and
    non-text cells: False."""
    text = _arrow(column)
    if text is None:  # the text values of a mixed column (rare: pandas' own loop)
        starts = column.str.contains(_STARTS, regex=True)
        returns = column.str.contains("\r", regex=False)
        return (starts.fillna(False).to_numpy(dtype=bool),
                returns.fillna(False).to_numpy(dtype=bool))
    starts = pc.match_substring_regex(text, _STARTS).fill_null(False)
    returns = pc.match_substring(text, "\r").fill_null(False)
    return starts.to_numpy(zero_copy_only=False), returns.to_numpy(zero_copy_only=False)


def starts_formula(column: pd.Series) -> np.ndarray:
    """Per cell: a text value beginning with a formula trigger (missing and non-text: False)."""
    return _masks(column)[0]


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that begins with a trigger prefixed by a single quote and
    carriage returns in text as line feeds (a copy; columns without such cells are left as
    they are)."""
    out = frame
    for name in frame.columns:
        column = frame[name]
        if not is_text(column):
            continue
        hits, returns = _masks(column)
        if not (hits.any() or returns.any()):
            continue
        if out is frame:
            out = frame.copy()
        text = column.astype("string")
        text = text.mask(returns, text.str.replace("\r\n", "\n").str.replace("\r", "\n"))
        out[name] = text.mask(hits, ESCAPE + text)
    return out

