"""Expectation suites: great-expectations 1.x suite JSON at `expectations/NAME.json`.

    {"name": "NAME",
     "expectations": [{"type": "expect_column_values_to_be_between",
                       "kwargs": {"column": "water_level", "min_value": 0, "max_value": 1000},
                       "meta": {"severity": "error", "notes": "..."}}, ...],
     "meta": {...}}

Conventions on top of GX:
  * `meta.severity`: "error" — the failing rows are rejected (quarantined), or for a table-level
    expectation the whole batch is held back; "warning" — reported only. Default: "error".
  * `{"$now": "<ISO 8601 duration>"}` as a kwarg value means "the time of the run (UTC) plus the
    duration", e.g. `"max_value": {"$now": "PT1H"}` (not more than one hour in the future);
    "-P1D" subtracts. Resolved by `load_suite` before GX sees the suite (GX's own `now()`
    parameter is naive local time and cannot be compared with UTC columns).
  * Row-level expectations (GX returns an `unexpected_index_list`): every unexpected row is a
    finding; `mostly` does not spare rows (use severity "warning" for soft checks). Expectations
    without row results (expect_table_*, column aggregates) are batch-level.
  * Columns named in kwargs must be source fields of the schema (derived fields do not exist yet).
  * Ranges per sensor type: GX's own `row_condition` (with `"condition_parser": "pandas"`), e.g.
    `"row_condition": "phenomenon==\"PM10\""` limits an expectation to the PM10 rows.

GX is imported inside `run_suite` only (importing it takes seconds; the CLI must start fast).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.spec import TableSchema, read_json

SEVERITIES = ("error", "warning")
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True)
class Suite:
    name: str
    expectations: list[dict[str, Any]]  # `$now` still unresolved
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class RowFinding:
    """Rows (0-based positions) an expectation found unexpected."""

    positions: np.ndarray
    columns: list[str]
    rule: str
    severity: str
    phrase: str  # follows the quoted value in the reason


@dataclass
class SuiteOutcome:
    rows: list[RowFinding] = field(default_factory=list)
    batch: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)


# --- loading -----------------------------------------------------------------------------------


def load_suite(path: Path, schema: TableSchema) -> Suite:
    raw = read_json(path)
    items = raw.get("expectations")
    if not isinstance(items, list):
        raise ConfigError(f"{path}: 'expectations' must be a list")
    known = {f.name for f in schema.source_fields}
    for i, item in enumerate(items, start=1):
        where = f"{path}: expectation {i}"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ConfigError(f"{where}: needs a 'type'")
        severity = item.get("meta", {}).get("severity", "error")
        if severity not in SEVERITIES:
            raise ConfigError(f"{where}: meta.severity must be 'error' or 'warning'")
        for column in _columns(item.get("kwargs", {})):
            if column not in known:
                raise ConfigError(f"{where}: column '{column}' is not a source field of the schema")
        _resolve(item.get("kwargs", {}), datetime.now(UTC), where)  # fail early on bad `$now`
    return Suite(str(raw.get("name", path.stem)), items, dict(raw.get("meta", {})), path)


def _columns(kwargs: dict[str, Any]) -> list[str]:
    names = [kwargs[k] for k in _COLUMN_KWARGS if k in kwargs]
    return names + list(kwargs.get("column_list", []))


def _resolve(value: Any, now: datetime, where: str) -> Any:
    """Replace `{"$now": "PT1H"}` by now + duration (recursively)."""
    if isinstance(value, dict):
        if set(value) == {"$now"}:
            return now + _duration(str(value["$now"]), where)
        return {k: _resolve(v, now, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, now, where) for v in value]
    return value


def _duration(text: str, where: str) -> timedelta:
    match = _DURATION.match(text)
    if not match or text.lstrip("+-") in ("P", "PT"):
        raise ConfigError(f"{where}: '$now' needs an ISO 8601 duration like PT1H, got '{text}'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )
    return -delta if match["sign"] == "-" else delta


def resolved(suite: Suite, now: datetime | None = None) -> list[dict[str, Any]]:
    """The expectations with `$now` replaced, ready for GX."""
    at = now or datetime.now(UTC)
    return [_resolve(item, at, str(suite.path)) for item in suite.expectations]


# --- running -----------------------------------------------------------------------------------


# One import of great-expectations at a time (see `import_gx`).
_IMPORTING_GX = threading.Lock()


def import_gx() -> None:
    """Import great-expectations with the cyclic garbage collector paused meanwhile: the
    import makes about 270,000 objects (modules, classes, schemas), and the collections they
    set off each walk all of them again. Measured after pandas, pyarrow and dlt: 2.0 → 1.4 s.
    Whatever the run's own code leaves in reference cycles meanwhile waits for the next
    collection. (Its objects are not frozen out of the collector's way for the rest of the
    run: `gc.freeze` freezes the run's objects alive at that moment too, and a reference
    cycle through one of them is then never collected — the frame a suite validated stayed.)"""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # One import at a time (the run's background import and the suite's own may meet): each
    # caller reads and restores the collector's state, and two interleaved would leave it off.
    with _IMPORTING_GX:
        if "great_expectations" in sys.modules:
            return
        collecting = gc.isenabled()
        gc.disable()
        try:
            import great_expectations  # noqa: F401
        finally:
            if collecting:
                gc.enable()


def import_in_background() -> threading.Thread:
    """Start importing great-expectations (2–5 s of Python imports, see `import_gx`) in a
    thread, for a run that will validate: the run reads its ledger and splits its delivery
    meanwhile — mostly Arrow and DuckDB, which leave the interpreter free — and `run_suite`'s
    own import then waits only for what is left (Python's import lock). A failed import is
    left for that import to report. The caller joins the thread before it imports a package
    the import may be importing too: two threads importing shapely at once saw it half
    initialised ("cannot import name 'BaseGeometry' from partially initialized module"), when
    a batch held back by drift went to georeferencing before the suite had waited for the
    import."""

    def load() -> None:
        with contextlib.suppress(Exception):
            import_gx()

    thread = threading.Thread(target=load, name="odp-import-gx", daemon=True)
    thread.start()
    return thread


def run_suite(frame: pd.DataFrame, suite: Suite, now: datetime | None = None) -> SuiteOutcome:
    """Run the suite on `frame` (typed; index = 0-based positions in the batch)."""
    items = resolved(suite, now)
    outcome = SuiteOutcome()
    table_level = any(item["type"].startswith("expect_table_") for item in items)
    if not items or (frame.empty and not table_level):
        # No rows and no table-level rule (e.g. an incremental run without new rows): nothing
        # to check, so skip GX's ~3 s start.
        return outcome
    for item, result in zip(items, _gx_results(frame, suite, items), strict=True):
        _collect(item, result, outcome)
    return outcome


def _gx_results(frame: pd.DataFrame, suite: Suite, items: list[dict[str, Any]]) -> list[Any]:
    import_gx()
    import great_expectations as gx  # slow import: only when a batch is validated
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    ids = [str(uuid.uuid4()) for _ in items]  # GX reorders results: match them by id
    tagged = [{**item, "id": id_} for item, id_ in zip(items, ids, strict=True)]
    try:
        gx_suite = gx.ExpectationSuite(name=suite.name, expectations=tagged, meta=suite.meta)
    except Exception as exc:  # GX raises several types for unknown expectations / bad kwargs
        raise ConfigError(f"{suite.path}: not a valid GX suite: {_one_line(exc)}") from None
    source = context.data_sources.add_pandas("odp")
    try:
        batch = (
            source
            .add_dataframe_asset("batch")
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": numpy_numbers(frame, items)})
        )
        result = batch.validate(gx_suite, result_format={"result_format": "COMPLETE"})
    finally:
        # GX keeps its last context for the process, and with it the batch's frame: dropped,
        # so the run does not hold a copy of every validated row (1M rows: 0.1–0.15 GB).
        context.data_sources.delete(source.name)
    by_id = {r.expectation_config.id: r for r in result.results}
    return [by_id[id_] for id_ in ids]


def numpy_numbers(frame: pd.DataFrame, items: list[dict[str, Any]]) -> pd.DataFrame:
    """`frame` with the nullable integer and number columns that range rules check as numpy
    columns (integers with a missing value as float64, missing = NaN), the rest shared.

    GX compares a column with a range in one vectorised step only for numpy ints and floats;
    for pandas' nullable Int64 and Float64 (the validated types) it calls a Python function per
    value (1M rows, six range rules: 5.2 s of a 1M-row run's 11 s validation). Both ways skip
    missing values; coercion makes no NaN or infinity, so NaN means exactly "missing"."""
    named = {c for item in items if item["type"] == "expect_column_values_to_be_between"
             for c in _columns(item.get("kwargs", {}))}
    plain = {}
    for column in named & set(frame.columns):
        values = frame[column]
        if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and \
                values.dtype.kind in "if":
            if values.dtype.kind == "i" and not values.hasnans:
                plain[column] = values.to_numpy("int64")
            else:
                plain[column] = values.to_numpy("float64", na_value=np.nan)
    return frame.assign(**plain) if plain else frame


def _collect(item: dict[str, Any], result: Any, outcome: SuiteOutcome) -> None:
    rule = item["type"]
    meta = item.get("meta", {})
    severity = meta.get("severity", "error")
    kwargs = item.get("kwargs", {})
    columns = _columns(kwargs)
    notes = f" — {meta['notes']}" if meta.get("notes") else ""
    if message := _exception(result):
        outcome.batch.append(("error", f"{rule} on {', '.join(columns)} could not run: {message}"))
        return
    details = result.result or {}
    if "unexpected_index_list" in details:
        positions = np.asarray(details["unexpected_index_list"] or [], dtype=np.int64)
        if len(positions):
            where = f" (where {kwargs['row_condition']})" if kwargs.get("row_condition") else ""
            phrase = _phrase(rule, kwargs) + where + notes
            outcome.rows.append(RowFinding(np.unique(positions), columns, rule, severity, phrase))
        return
    if not result.success:
        observed = details.get("observed_value")
        on = f" on {', '.join(columns)}" if columns else ""
        outcome.batch.append((severity, f"{rule}{on} failed (observed {observed}){notes}"))


def _exception(result: Any) -> str:
    info = result.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for entry in candidates:
        if entry.get("raised_exception"):
            return _one_line(entry.get("exception_message", "unknown error"))
    return ""


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())[:300]


def _phrase(rule: str, kwargs: dict[str, Any]) -> str:
    low, high = _shown(kwargs.get("min_value")), _shown(kwargs.get("max_value"))
    match rule:
        case "expect_column_values_to_be_between" if low is not None and high is not None:
            return f"is outside {low} … {high}"
        case "expect_column_values_to_be_between" if high is not None:
            return f"is after {high}" if _is_time(kwargs["max_value"]) else f"is above {high}"
        case "expect_column_values_to_be_between":
            return f"is before {low}" if _is_time(kwargs["min_value"]) else f"is below {low}"
        case "expect_column_values_to_not_be_null":
            return "is missing"
        case "expect_column_values_to_match_regex":
            return f"does not match {kwargs.get('regex')}"
        case "expect_column_values_to_be_in_set":
            return f"is not one of {', '.join(map(str, kwargs.get('value_set', [])))}"
        case "expect_column_values_to_not_be_in_set":
            return f"is one of {', '.join(map(str, kwargs.get('value_set', [])))}"
        case "expect_column_values_to_be_unique" | "expect_compound_columns_to_be_unique":
            return "is not unique in the batch"
        case "expect_select_column_values_to_be_unique_within_record":
            return "repeats a value within the row"
    return f"fails {rule}"


def _is_time(value: Any) -> bool:
    return isinstance(value, datetime)


def _shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value
