"""What the portal will refuse, known before the first write.

Upload size: CKAN refuses a resource upload over `ckan.max_resource_size` MB (its default 10;
CKAN reads the upload in 1 MiB chunks and fails on the chunk after the limit, so a file of
exactly the limit passes). The city says the portal's limit in `[portal] max_resource_size_mb`.
A table CSV over it is not uploaded: its resource points at the DataStore's own dump, as CKAN
does for DataStore-only resources; other files over it are left out of the dataset.

Full text: CKAN's trigger (`populate_full_text_trigger`) fills `_full_text` with
`to_tsvector` of the row's values joined by spaces, and PostgreSQL refuses a tsvector over
1 MiB - 1 (`string is too long for tsvector`). A tsvector stores each distinct lexeme plus
2 bytes per position and 2 per entry, so a text of n bytes can give up to about 3n bytes:
a row whose text is at most `FULL_TEXT_SAFE_BYTES` never fails, a longer one may. Such a row
would fail its whole write on every run; `odp.publish.datastore` keeps it from blocking the
dataset (COPY path: a reduced full text; API path: see `ApiLoader`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from odp.spec import City

MB = 1 << 20
DEFAULT_MAX_RESOURCE_SIZE_MB = 10  # CKAN's default ckan.max_resource_size
TSVECTOR_MAX_BYTES = (1 << 20) - 1  # PostgreSQL's MAXSTRPOS
FULL_TEXT_SAFE_BYTES = TSVECTOR_MAX_BYTES // 3  # a row's text up to this never overflows
# Text kept in a reduced full text, in characters (≤ 4 bytes each, so ≤ FULL_TEXT_SAFE_BYTES).
FULL_TEXT_KEPT_CHARS = FULL_TEXT_SAFE_BYTES // 4
NON_TEXT_BYTES = 40  # an upper bound for a number, boolean or timestamp as text


def max_upload_bytes(city: City) -> int:
    """The largest file the portal accepts as a resource upload, in bytes."""
    value = city.portal.get("max_resource_size_mb", DEFAULT_MAX_RESOURCE_SIZE_MB)
    try:
        size = float(value)
    except (TypeError, ValueError):
        from odp.errors import ConfigError

        raise ConfigError(f"{city.path}: [portal] max_resource_size_mb must be a number of MB "
                          f"(got {value!r})") from None
    return int(size * MB)


def too_large(path: Path, limit: int) -> bool:
    return path.stat().st_size > limit


def text_bytes(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    """An upper bound of each row's text as CKAN's trigger joins it, in UTF-8 bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = pd.Series(0, index=table.index, dtype="int64")
    for name in columns:
        column = table[name]
        if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
            array = pa.array(column.astype("string"), type=pa.large_string(), from_pandas=True)
            lengths = pc.fill_null(pc.binary_length(array), 0).to_numpy(zero_copy_only=False)
            total += lengths + 1
        else:
            total += NON_TEXT_BYTES
    return total


def long_text_rows(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Rows whose text may be too long for CKAN's full-text column (a boolean mask)."""
    if table.empty:
        return pd.Series(False, index=table.index, dtype=bool)
    return text_bytes(table, columns) > FULL_TEXT_SAFE_BYTES
