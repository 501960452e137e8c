"""The findings table shared by coercion, the suite and the quarantine: one row per problem."""

from __future__ import annotations

import numpy as np
import pandas as pd

# row: 1-based position in the batch (<NA> for batch-level findings); key: primary-key values.
COLUMNS = ["row", "key", "field", "rule", "severity", "value", "reason"]
VALUE_SHOWN = 80  # characters of a value quoted in a reason


def empty() -> pd.DataFrame:
    return frame(np.array([], dtype=np.int64), "", "", "error", pd.Series([], dtype="string"), "")


def frame(
    positions: np.ndarray,
    field: str,
    rule: str,
    severity: str,
    values: pd.Series,
    reasons: pd.Series | str,
) -> pd.DataFrame:
    """Findings for 0-based `positions` (values/reasons aligned with positions)."""
    n = len(positions)
    return pd.DataFrame(
        {
            "row": pd.array(positions + 1, dtype="Int64"),
            "key": pd.array([""] * n, dtype="string"),
            "field": pd.array([field] * n, dtype="string"),
            "rule": pd.array([rule] * n, dtype="string"),
            "severity": pd.array([severity] * n, dtype="string"),
            "value": pd.array(values.fillna("").to_numpy(dtype=object), dtype="string"),
            "reason": pd.array(
                [reasons] * n if isinstance(reasons, str) else reasons.to_numpy(dtype=object),
                dtype="string",
            ),
        }
    )


def quoted(values: pd.Series) -> pd.Series:
    """'value' for reasons, long values shortened."""
    text = values.fillna("").astype("string")
    long = text.str.len() > VALUE_SHOWN
    text = text.where(~long, text.str.slice(0, VALUE_SHOWN) + "…")
    return "'" + text + "'"


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    return pd.concat(parts, ignore_index=True)
