"""Raw text → typed columns, following the dataset's Table Schema (vectorised, no row loops).

Input: one column per source field, raw text as the source sent it (missing = NA), plus
passthrough columns starting with `_` (dlt's `_dlt_id`, ...), kept unchanged.

Rules (documented conversions, nothing else is altered):
  * the empty string "" is a missing value (Frictionless default `missingValues: [""]`);
  * string   → text kept exactly as sent (no stripping);
  * integer  → Int64; optional sign and digits only ("12.0" is not an integer);
  * number   → Float64; decimal point, optional exponent ("12.5", "-3", "1e3"), no NaN/INF;
               Frictionless `decimalChar` (e.g. "," for "12,5") and `groupChar` (e.g. "." for
               "1.234,5") when the field sets them;
  * boolean  → boolean; true/false/1/0, case-insensitive;
  * datetime → datetime64[ns, UTC]; ISO 8601 with offset ("…+01:00", "…Z"); a naive value is an
               error unless the field sets "odp:timezone" (local time → UTC; non-existent or
               ambiguous local times are errors);
  * date     → datetime.date objects; ISO 8601 "YYYY-MM-DD";
  * date/datetime with a Frictionless `format` (strptime pattern, e.g. "%d.%m.%Y %H:%M") parse
               with that pattern instead of ISO 8601 (naive results as above);
  * other types are kept as text.
  For non-string types surrounding whitespace is ignored and a whitespace-only value is missing.
A source field missing from the batch counts as all-missing values (drift is reported by
odp.validate.drift, which decides whether the batch goes on).
Constraints: required, minimum, maximum, minLength, maxLength, pattern (full match on the text),
enum, unique. Rule names: `type:<type>`, `required`, `constraint:<name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from odp.errors import ConfigError
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
    as the input; `findings`: one row per failed value/constraint (see odp.validate.findings);
    per source field the number of present (non-missing) values and of type failures."""

    frame: pd.DataFrame
    findings: pd.DataFrame
    present: dict[str, int] = field(default_factory=dict)
    type_failed: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> np.ndarray:
        """0-based positions of rows with a finding (coercion findings are all errors)."""
        return np.unique(self.findings["row"].to_numpy(dtype=np.int64) - 1)


# A failure class: mask over the column, and the phrase following the quoted value.
Failure = tuple[np.ndarray, str]


def coerce(df: pd.DataFrame, schema: TableSchema, dataset_name: str) -> Coerced:
    """Type every source field of `schema` (a missing column: all values missing)."""
    typed: dict[str, pd.Series] = {}
    parts: list[pd.DataFrame] = []
    present: dict[str, int] = {}
    type_failed: dict[str, int] = {}
    for f in schema.source_fields:
        if f.name in df.columns:
            raw = df[f.name]
        else:
            raw = pd.Series(pd.NA, index=df.index, dtype="string")
        values, found, counts = _coerce_field(raw, f, _options(schema, f.name))
        typed[f.name] = values
        parts.extend(found)
        present[f.name], type_failed[f.name] = counts
    for column in df.columns:
        if str(column).startswith(PASSTHROUGH_PREFIX):
            typed[column] = df[column]
    frame = pd.DataFrame(typed, index=df.index)
    found = fnd.concat(parts).sort_values(["row", "field"], kind="stable", ignore_index=True)
    return Coerced(frame, found, present, type_failed)


def _options(schema: TableSchema, name: str) -> dict[str, Any]:
    """The field's raw Table Schema entry (format, decimalChar, odp:timezone …)."""
    for item in schema.raw.get("fields", []):
        if item.get("name") == name:
            return dict(item)
    return {}


# --- one field ---------------------------------------------------------------------------------


def _coerce_field(
    raw: pd.Series, f: SchemaField, opts: dict[str, Any]
) -> tuple[pd.Series, list[pd.DataFrame], tuple[int, int]]:
    text = raw.astype("string")
    text = text.mask(text == "")  # Frictionless missing value
    if f.type != "string":
        text = text.str.strip()
        text = text.mask(text == "")
    present = text.notna().to_numpy(dtype=bool)
    convert = _CONVERTERS.get(f.type, _as_text)
    typed, failures = convert(text, opts)
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
    out.extend(_constraints(raw, text, typed, ok, f, opts, convert))
    return _blank(typed, ok), out, (int(present.sum()), int(failed.sum()))


def _blank(typed: pd.Series, ok: np.ndarray) -> pd.Series:
    """Values that failed become missing (None in object columns, NA/NaT otherwise)."""
    return typed.where(ok, None) if typed.dtype == object else typed.mask(~ok)


def _found(
    positions: np.ndarray, field: str, rule: str, raw: pd.Series, phrase: str, missing: bool = False
) -> pd.DataFrame:
    values = raw.iloc[positions].astype("string")
    reasons: pd.Series | str = "value is missing" if missing else fnd.quoted(values) + f" {phrase}"
    return fnd.frame(positions, field, rule, "error", values, reasons)


def _as_text(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    return text, []


def _as_integer(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    ok = text.str.fullmatch(_INTEGER).fillna(False).to_numpy(dtype=bool)
    values = _cast(text.where(ok).str.removeprefix("+"), pa.int64(), pd.Int64Dtype())
    return values, [(~ok, "is not an integer")]


def _as_number(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    decimal, group = str(opts.get("decimalChar", ".")), str(opts.get("groupChar", ""))
    foreign = np.zeros(len(text), dtype=bool)
    if group:
        text = text.str.replace(group, "", regex=False)
    if decimal != ".":
        foreign = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
        text = text.str.replace(decimal, ".", regex=False)
    ok = text.str.fullmatch(_NUMBER).fillna(False).to_numpy(dtype=bool) & ~foreign
    values = _cast(text.where(ok), pa.float64(), pd.Float64Dtype())
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=0.0))  # "1e999" → inf
    return values.where(finite), [(~ok | ~finite, "is not a number")]


def _cast(text: pd.Series, to: pa.DataType, dtype: pd.api.extensions.ExtensionDtype) -> pd.Series:
    """Text already checked by a pattern → numbers, via Arrow (several times faster than
    pd.to_numeric on 1M rows)."""
    cast = pc.cast(pa.array(text, type=pa.large_string(), from_pandas=True), to)
    return pd.Series(dtype.__from_arrow__(cast), index=text.index)


def _as_boolean(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    lower = text.str.lower()
    true = lower.isin(_TRUE).to_numpy(dtype=bool)
    false = lower.isin(_FALSE).to_numpy(dtype=bool)
    values = pd.Series(true, index=text.index, dtype="boolean").where(true | false)
    return values, [(~(true | false), "is not a boolean (true/false/1/0)")]


def _as_datetime(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    tz = str(opts.get("odp:timezone", ""))
    pattern = _format(opts)
    if pattern:  # with %z every value carries an offset, without none does
        aware = np.full(len(text), "%z" in pattern, dtype=bool)
    else:
        aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    values, beyond = _nanoseconds(pd.to_datetime(
        text.where(aware), utc=True, format=pattern or "ISO8601", errors="coerce"))
    naive, naive_beyond = _nanoseconds(
        pd.to_datetime(text.where(~aware), format=pattern or "ISO8601", errors="coerce"))
    beyond = beyond | naive_beyond
    naive_ok = naive.notna().to_numpy()
    unparsed = ((aware & values.isna().to_numpy()) | (~aware & ~naive_ok)) & ~beyond
    expected = f"does not match the format {pattern}" if pattern else "is not an ISO 8601 date-time"
    failures: list[Failure] = [(unparsed, expected), (beyond, _BEYOND)]
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


_BEYOND = "is outside the years 1677 to 2262 (the nanosecond range of pandas)"


def _nanoseconds(parsed: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parsed date-times in nanoseconds; those outside that range (year 2263, 0001 …) → NaT,
    and their mask (pandas keeps such a column in seconds, and a cast to ns would raise)."""
    utc = getattr(parsed.dt, "tz", None) is not None
    low, high = pd.Timestamp.min, pd.Timestamp.max
    if utc:
        low, high = low.tz_localize("UTC"), high.tz_localize("UTC")
    beyond = (parsed.notna() & ((parsed < low) | (parsed > high))).to_numpy(dtype=bool)
    return parsed.mask(beyond).astype("datetime64[ns, UTC]" if utc else "datetime64[ns]"), beyond


def _as_date(text: pd.Series, opts: dict[str, Any]) -> tuple[pd.Series, list[Failure]]:
    pattern = _format(opts)
    shaped = np.ones(len(text), dtype=bool)
    if not pattern:
        shaped = text.str.fullmatch(_DATE).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text.where(shaped), format=pattern or "%Y-%m-%d", errors="coerce")
    ok = parsed.notna().to_numpy()
    values = pd.Series(parsed.dt.date, index=text.index, dtype=object).where(ok, None)
    iso = "is not an ISO 8601 date (YYYY-MM-DD)"
    expected = f"does not match the format {pattern}" if pattern else iso
    return values, [(~ok, expected)]


def _format(opts: dict[str, Any]) -> str:
    """A strptime `format` of the field; Frictionless' "default"/"any" mean ISO 8601."""
    pattern = str(opts.get("format", "default"))
    return "" if pattern in ("default", "any", "") else pattern


Converter = Callable[[pd.Series, dict[str, Any]], tuple[pd.Series, list[Failure]]]
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
    opts: dict[str, Any],
    convert: Converter,
) -> list[pd.DataFrame]:
    c = f.constraints
    positions = np.arange(len(text))
    checks: list[tuple[str, np.ndarray, str]] = []
    comparable = pd.to_datetime(typed) if f.type == "date" else typed
    if "minimum" in c:
        low = _typed_bound(c["minimum"], f, opts, convert)
        checks.append(("minimum", _mask(comparable < low), f"is below the minimum {c['minimum']}"))
    if "maximum" in c:
        high = _typed_bound(c["maximum"], f, opts, convert)
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
        allowed, _ = convert(pd.Series([str(v) for v in c["enum"]], dtype="string"), _plain(opts))
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


def _plain(opts: dict[str, Any]) -> dict[str, Any]:
    """Bounds and enums in the schema are written in the standard form (ISO 8601, point)."""
    return {"odp:timezone": opts.get("odp:timezone", "")}


def _typed_bound(bound: Any, f: SchemaField, opts: dict[str, Any], convert: Converter) -> Any:
    typed, _ = convert(pd.Series([str(bound)], dtype="string"), _plain(opts))
    value = typed.iloc[0]
    if pd.isna(value):
        raise ConfigError(f"schema field '{f.name}': bound {bound!r} is not a valid {f.type}")
    return pd.Timestamp(value) if f.type == "date" else value
