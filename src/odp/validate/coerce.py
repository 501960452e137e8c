"""Raw text → typed columns, following the dataset's Table Schema (vectorised, no row loops).

Input: one column per source field, raw text as the source sent it (missing = NA), plus
passthrough columns starting with `_` (dlt's `_dlt_id`, ...), kept unchanged.

Rules (documented conversions, nothing else is altered):
  * the empty string "" is a missing value (Frictionless default `missingValues: [""]`);
  * string   → text kept exactly as sent (no stripping);
  * integer  → Int64; optional sign and digits only ("12.0" is not an integer);
  * number   → Float64; decimal point, optional exponent ("12.5", "-3", "1e3"); no German
               decimal comma, no NaN/INF;
  * boolean  → boolean; true/false/1/0, case-insensitive;
  * datetime → datetime64[ns, UTC]; ISO 8601 with offset ("…+01:00", "…Z"); a naive value is an
               error unless the field sets "odp:timezone" (local time → UTC; non-existent or
               ambiguous local times are errors);
  * date     → datetime.date objects; ISO 8601 "YYYY-MM-DD";
  * other types are kept as text.
  For non-string types surrounding whitespace is ignored and a whitespace-only value is missing.
Constraints: required, minimum, maximum, minLength, maxLength, pattern (full match on the text),
enum, unique. Rule names: `type:<type>`, `required`, `constraint:<name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from odp.errors import ConfigError, SourceError
from odp.spec import SchemaField, TableSchema
from odp.validate import findings as fnd

PASSTHROUGH_PREFIX = "_"
_INTEGER = r"[+-]?[0-9]{1,18}"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_OFFSET = r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TRUE = ("true", "1")
_FALSE = ("false", "0")


@dataclass(frozen=True)
class Coerced:
    """`frame`: typed source fields (NA where a value failed) + passthrough columns, same index
    as the input; `findings`: one row per failed value/constraint (see odp.validate.findings)."""

    frame: pd.DataFrame
    findings: pd.DataFrame

    @property
    def rejected(self) -> np.ndarray:
        """0-based positions of rows with a finding (coercion findings are all errors)."""
        return np.unique(self.findings["row"].to_numpy(dtype=np.int64) - 1)


# A failure class: mask over the column, and the phrase following the quoted value.
Failure = tuple[np.ndarray, str]


def coerce(df: pd.DataFrame, schema: TableSchema, dataset_name: str) -> Coerced:
    """Type every source field of `schema`; raise SourceError on schema drift."""
    fields = schema.source_fields
    check_drift(df, fields, dataset_name)
    typed: dict[str, pd.Series] = {}
    parts: list[pd.DataFrame] = []
    for f in fields:
        values, found = _coerce_field(df[f.name], f, _timezone(schema, f.name))
        typed[f.name] = values
        parts.extend(found)
    for column in df.columns:
        if str(column).startswith(PASSTHROUGH_PREFIX):
            typed[column] = df[column]
    frame = pd.DataFrame(typed, index=df.index)
    found = fnd.concat(parts).sort_values(["row", "field"], kind="stable", ignore_index=True)
    return Coerced(frame, found)


def check_drift(df: pd.DataFrame, fields: list[SchemaField], dataset_name: str) -> None:
    """Source columns (not `_…`) must be exactly the schema's source fields."""
    columns = [str(c) for c in df.columns if not str(c).startswith(PASSTHROUGH_PREFIX)]
    expected = [f.name for f in fields]
    missing = [c for c in expected if c not in columns]
    new = [c for c in columns if c not in expected]
    if not missing and not new:
        return
    parts = []
    if missing:
        parts.append(_plural("missing column", missing))
    if new:
        parts.append(_plural("new column", new))
    raise SourceError(f"{dataset_name}: schema drift: {'; '.join(parts)}")


def _plural(label: str, names: list[str]) -> str:
    quoted = ", ".join(f"'{n}'" for n in names)
    return f"{label}{'s' if len(names) > 1 else ''} {quoted}"


def _timezone(schema: TableSchema, name: str) -> str:
    for item in schema.raw.get("fields", []):
        if item.get("name") == name:
            return str(item.get("odp:timezone", ""))
    return ""


# --- one field ---------------------------------------------------------------------------------


def _coerce_field(raw: pd.Series, f: SchemaField, tz: str) -> tuple[pd.Series, list[pd.DataFrame]]:
    text = raw.astype("string")
    text = text.mask(text == "")  # Frictionless missing value
    if f.type != "string":
        text = text.str.strip()
        text = text.mask(text == "")
    present = text.notna().to_numpy(dtype=bool)
    convert = _CONVERTERS.get(f.type, _as_text)
    typed, failures = convert(text, tz)
    positions = np.arange(len(text))
    out: list[pd.DataFrame] = []
    for mask, phrase in failures:
        bad = mask & present
        out.append(_found(positions[bad], f.name, f"type:{f.type}", raw, phrase))
    failed = np.zeros(len(text), dtype=bool)
    for mask, _ in failures:
        failed |= mask & present
    if f.required:
        out.append(_found(positions[~present], f.name, "required", raw, "", missing=True))
    ok = present & ~failed
    out.extend(_constraints(raw, text, typed, ok, f, tz, convert))
    return _blank(typed, ok), out


def _blank(typed: pd.Series, ok: np.ndarray) -> pd.Series:
    """Values that failed become missing (None in object columns, NA/NaT otherwise)."""
    return typed.where(ok, None) if typed.dtype == object else typed.mask(~ok)


def _found(
    positions: np.ndarray, field: str, rule: str, raw: pd.Series, phrase: str, missing: bool = False
) -> pd.DataFrame:
    values = raw.iloc[positions].astype("string")
    reasons: pd.Series | str = "value is missing" if missing else fnd.quoted(values) + f" {phrase}"
    return fnd.frame(positions, field, rule, "error", values, reasons)


def _as_text(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    return text, []


def _as_integer(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    ok = text.str.fullmatch(_INTEGER).fillna(False).to_numpy(dtype=bool)
    values = _cast(text.where(ok).str.removeprefix("+"), pa.int64(), pd.Int64Dtype())
    return values, [(~ok, "is not an integer")]


def _as_number(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    ok = text.str.fullmatch(_NUMBER).fillna(False).to_numpy(dtype=bool)
    values = _cast(text.where(ok), pa.float64(), pd.Float64Dtype())
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=0.0))  # "1e999" → inf
    return values.where(finite), [(~ok | ~finite, "is not a number")]


def _cast(text: pd.Series, to: pa.DataType, dtype: pd.api.extensions.ExtensionDtype) -> pd.Series:
    """Text already checked by a pattern → numbers, via Arrow (several times faster than
    pd.to_numeric on 1M rows)."""
    cast = pc.cast(pa.array(text, type=pa.large_string(), from_pandas=True), to)
    return pd.Series(dtype.__from_arrow__(cast), index=text.index)


def _as_boolean(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    lower = text.str.lower()
    true = lower.isin(_TRUE).to_numpy(dtype=bool)
    false = lower.isin(_FALSE).to_numpy(dtype=bool)
    values = pd.Series(true, index=text.index, dtype="boolean").where(true | false)
    return values, [(~(true | false), "is not a boolean (true/false/1/0)")]


def _as_datetime(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    values = pd.to_datetime(text.where(aware), utc=True, format="ISO8601", errors="coerce")
    values = values.astype("datetime64[ns, UTC]")
    naive = pd.to_datetime(text.where(~aware), format="ISO8601", errors="coerce")
    naive_ok = naive.notna().to_numpy()
    unparsed = (aware & values.isna().to_numpy()) | (~aware & ~naive_ok)
    failures: list[Failure] = [(unparsed, "is not an ISO 8601 date-time")]
    if tz:
        local = naive.astype("datetime64[ns]").dt.tz_localize(
            tz, ambiguous="NaT", nonexistent="NaT"
        )
        local = local.dt.tz_convert("UTC")
        values = values.where(aware, local)
        gap = ~aware & naive_ok & local.isna().to_numpy()
        failures.append((gap, f"does not exist or is ambiguous in {tz}"))
    else:
        failures.append((~aware & naive_ok, "has no UTC offset (naive date-time)"))
    return values, failures


def _as_date(text: pd.Series, tz: str) -> tuple[pd.Series, list[Failure]]:
    shaped = text.str.fullmatch(_DATE).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce")
    ok = parsed.notna().to_numpy()
    values = pd.Series(parsed.dt.date, index=text.index, dtype=object).where(ok, None)
    return values, [(~ok, "is not an ISO 8601 date (YYYY-MM-DD)")]


Converter = Callable[[pd.Series, str], tuple[pd.Series, list[Failure]]]
_CONVERTERS: dict[str, Converter] = {
    "string": _as_text,
    "integer": _as_integer,
    "number": _as_number,
    "boolean": _as_boolean,
    "datetime": _as_datetime,
    "date": _as_date,
}


# --- constraints -------------------------------------------------------------------------------


def _constraints(
    raw: pd.Series,
    text: pd.Series,
    typed: pd.Series,
    ok: np.ndarray,
    f: SchemaField,
    tz: str,
    convert: Converter,
) -> list[pd.DataFrame]:
    c = f.constraints
    positions = np.arange(len(text))
    checks: list[tuple[str, np.ndarray, str]] = []
    comparable = pd.to_datetime(typed) if f.type == "date" else typed
    if "minimum" in c:
        low = _typed_bound(c["minimum"], f, tz, convert)
        checks.append(("minimum", _mask(comparable < low), f"is below the minimum {c['minimum']}"))
    if "maximum" in c:
        high = _typed_bound(c["maximum"], f, tz, convert)
        checks.append(("maximum", _mask(comparable > high), f"is above the maximum {c['maximum']}"))
    if "minLength" in c:
        short = _mask(text.str.len() < int(c["minLength"]))
        checks.append(("minLength", short, f"is shorter than {c['minLength']} characters"))
    if "maxLength" in c:
        long = _mask(text.str.len() > int(c["maxLength"]))
        checks.append(("maxLength", long, f"is longer than {c['maxLength']} characters"))
    if "pattern" in c:
        matches = _mask(text.str.fullmatch(str(c["pattern"])))
        checks.append(("pattern", ~matches, f"does not match {c['pattern']}"))
    if "enum" in c:
        allowed, _ = convert(pd.Series([str(v) for v in c["enum"]], dtype="string"), tz)
        listed = ", ".join(str(v) for v in c["enum"])
        checks.append(("enum", ~_mask(typed.isin(allowed.dropna())), f"is not one of {listed}"))
    if c.get("unique"):
        dup = _mask(typed.where(ok).duplicated(keep=False) & pd.Series(ok, index=typed.index))
        checks.append(("unique", dup, "is not unique (occurs more than once)"))
    return [
        _found(positions[mask & ok], f.name, f"constraint:{name}", raw, phrase)
        for name, mask, phrase in checks
    ]


def _mask(values: Any) -> np.ndarray:
    """Boolean Series/array with NA → numpy bool (NA counts as False)."""
    return pd.Series(values).fillna(False).to_numpy(dtype=bool)


def _typed_bound(bound: Any, f: SchemaField, tz: str, convert: Converter) -> Any:
    typed, _ = convert(pd.Series([str(bound)], dtype="string"), tz)
    value = typed.iloc[0]
    if pd.isna(value):
        raise ConfigError(f"schema field '{f.name}': bound {bound!r} is not a valid {f.type}")
    return pd.Timestamp(value) if f.type == "date" else value
