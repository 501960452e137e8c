"""Helpers shared by source types: raw text frames and UTC timestamps."""

from __future__ import annotations

import pandas as pd


def as_raw_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as nullable text, exactly as sent (numbers keep their repr)."""
    out = pd.DataFrame(index=df.index)
    for column in df.columns:
        values = df[column]
        text = values.astype("string")
        out[column] = text.where(values.notna(), pd.NA)
    return out


def utc_iso(values: pd.Series) -> pd.Series:
    """ISO 8601 timestamps with offset → UTC text `YYYY-MM-DDTHH:MM:SSZ`; unparseable stay as sent
    (validation rejects them with the reason)."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    text = parsed.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    return text.where(parsed.notna(), values.astype("string"))
