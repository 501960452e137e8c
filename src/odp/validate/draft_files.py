"""The three files of a draft (odp.validate.draft): Table Schema, expectation suite, pipeline."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from odp.spec import ROW_HASH
from odp.validate.draft_geo import PROJECTED_NAMES

if TYPE_CHECKING:
    from odp.validate.draft import Column, Draft

MARGIN = 0.1  # of the observed span (or of the value itself when all values are equal)
MAX_QUARANTINE_SHARE = 0.05  # the project's default: more rejected rows hold the batch back
MIN_SHARE, MAX_FACTOR = 0.5, 2  # row band: half to twice the rows of the drafted file
_DERIVED_TITLES = {"longitude": ("Längengrad (WGS84)", "degree"),
                   "latitude": ("Breitengrad (WGS84)", "degree"),
                   "easting": ("Rechtswert", "m"), "northing": ("Hochwert", "m")}


# --- schemas/NAME.json -------------------------------------------------------------------------


def schema(draft: Draft, timezone: str) -> dict[str, Any]:
    fields = [_field(c, timezone) for c in draft.columns]
    fields += [_derived(name, draft) for name in draft.derived]
    if draft.row_hash:
        fields.append({"name": ROW_HASH, "type": "string", "title": "Zeilen-Hash",
                       "description": "Schlüssel aus den Werten der Zeile (keine eindeutige "
                                      "Spalte in der Quelle)",
                       "odp:derived": ROW_HASH})
    candidates = "; ".join(" + ".join(k) for k in draft.keys) or (
        f"none found, the key is a hash of each row's values ({ROW_HASH})"
        if draft.row_hash else "none found")
    out: dict[str, Any] = {
        "$comment": (
            f"Drafted by `odp draft` from {draft.source} ({draft.rows} rows, every row "
            "profiled). Check types, titles, units and constraints. Primary-key candidates "
            f"(unique over the whole file): {candidates}"
        ),
        "fields": fields,
    }
    if draft.keys:
        out["primaryKey"] = draft.keys[0]
    elif draft.row_hash:
        out["primaryKey"] = [ROW_HASH]
    return out


def _field(c: Column, timezone: str) -> dict[str, Any]:
    item: dict[str, Any] = {"name": c.name, "type": c.inferred.type, "title": c.source,
                            "description": ""}
    item.update(c.inferred.options)
    if c.inferred.naive:
        item["odp:timezone"] = timezone
    if c.required:
        item["constraints"] = {"required": True}
    return item


def _derived(name: str, draft: Draft) -> dict[str, Any]:
    title, unit = _DERIVED_TITLES.get(name, (name.replace("_", " ").title(), ""))
    kind = "number" if name in _DERIVED_TITLES else "string"
    crs = getattr(draft.city, "crs", "")
    if name in ("easting", "northing") and crs:
        title = f"{title} ({PROJECTED_NAMES.get(crs, crs)})"
    item = {"name": name, "type": kind, "title": title, "odp:derived": "georeference",
            "description": "filled by the georeference stage"}
    return item | ({"unit": unit} if unit else {})


# --- expectations/NAME.json --------------------------------------------------------------------


def suite(draft: Draft) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    if draft.keys:
        key = draft.keys[0]
        unique = (
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": key[0]}}
            if len(key) == 1
            else {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": key}}
        )
        items.append(unique | {"meta": {"severity": "error", "notes": "primary key"}})
    for c in draft.columns:
        items.extend(_expectations(c, draft))
    return {
        "name": draft.name,
        "expectations": items,
        "meta": {
            "dataset": draft.name,
            "notes": (
                f"Drafted by `odp draft` from {draft.source} ({draft.rows} rows). Bands come "
                "from the file with a margin and are warnings: make them errors where they are "
                "physical limits."
            ),
        },
    }


def _expectations(c: Column, draft: Draft) -> list[dict[str, Any]]:
    if c.numeric and c.low is not None:
        return _number_expectations(c, draft)
    if c.inferred.type == "datetime" and c.high is not None and c.high <= _now(c):
        return [{
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": c.name, "max_value": {"$now": "PT1H"}},
            "meta": {"severity": "error", "notes": "not in the future (none is in the file)"},
        }]
    if c.inferred.type == "string" and c.distinct and not c.unique:
        return [{
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": c.name, "value_set": c.distinct},
            "meta": {"severity": "warning", "notes": f"the {len(c.distinct)} values in the file"},
        }]
    return []


def _now(c: Column) -> Any:
    now = pd.Timestamp.now(tz="UTC")
    return now if c.high.tzinfo is not None else now.tz_localize(None)


def _number_expectations(c: Column, draft: Draft) -> list[dict[str, Any]]:
    from odp.validate.draft import id_like

    out = []
    if c.count:
        out.append({
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": c.name, "min_value": 0},
            "meta": {"severity": "error", "notes": "a count: never negative (whole numbers, "
                                                   "none below 0 in the file)"},
        })
    if id_like(c.name) or (draft.geo and c.name in (draft.geo.x, draft.geo.y)):
        return out  # ids have no band; coordinates are checked by georeferencing
    low, high = band(c.low, c.high, c.inferred.type == "integer")
    if c.low >= 0:
        low = max(low, 0)
    out.append({
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": c.name, "min_value": low, "max_value": high},
        "meta": {"severity": "warning",
                 "notes": f"observed {c.low:g} … {c.high:g} in the file, ±{MARGIN:.0%} margin"},
    })
    return out


def band(low: float, high: float, integer: bool) -> tuple[float, float]:
    span = high - low
    margin = MARGIN * (span if span else max(abs(low), 1.0))
    lo, hi = low - margin, high + margin
    if integer:
        return math.floor(lo), math.ceil(hi)
    digits = max(0, 2 - int(math.floor(math.log10(margin)))) if margin > 0 else 2
    return round(lo, digits), round(hi, digits)


# --- pipelines/NAME.toml -----------------------------------------------------------------------


def _str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return _str(str(value))


def _c(code: str, comment: str) -> str:
    """A TOML line with its comment in the comment column."""
    return f"{code:<30}# {comment}" if len(code) < 30 else f"{code}  # {comment}"


def pipeline_toml(draft: Draft, timezone: str, now: datetime) -> str:
    assert draft.sample is not None
    lines = [
        f"# Drafted by `odp draft` on {now:%Y-%m-%d} from {draft.source}: {draft.rows} rows, "
        f"{len(draft.columns)} columns.",
        "# Every guess is marked CHECK; edit titles and descriptions before publishing for real.",
        _c(f"title = {_str(draft.name)}", "CHECK: the title shown on the portal"),
        f"description = {_str('Drafted from ' + draft.source.rsplit('/', 1)[-1] + '.')}",
        'kind = "register"',
        "",
        *_source_lines(draft),
        "",
        "[extract]",
        _c('mode = "full-refresh"', "the whole file every run; only changed rows are written"),
        "",
        *_validate_lines(draft),
        *_georeference_lines(draft),
        *_time_lines(draft, timezone),
        "[schedule]",
        _c('cron = "0 5 * * 1"', "CHECK: Mondays 05:00 (how often does the file change?)"),
        "",
        "[publish]",
        _c("tags = []", "CHECK: a few words users search for"),
    ]
    if url := draft.sample.source.get("url"):
        lines.append(f"source_url = {_str(url)}")
    return "\n".join(lines) + "\n"


def _source_lines(draft: Draft) -> list[str]:
    assert draft.sample is not None
    table = draft.sample.source
    lines = ["[source]"]
    notes = {"delimiter": "found in the first lines",
             "encoding": "UTF-8 found (anything else stops the run)"
             if table.get("encoding") == "auto" else "the bytes are not UTF-8",
             "header": "the first line holds values, not names"
             if "skip_rows" not in table else "CHECK: the names above the table span several "
             "lines; the columns are numbered, name them in [source.rename]",
             "skip_rows": "CHECK: title lines before the table",
             "skip_footer": "the table ends at the first line of one cell (notes, a copyright)"}
    for key, value in table.items():
        line = f"{key} = {_value(value)}"
        lines.append(_c(line, notes[key]) if key in notes else line)
    lines += ["", "# The file's column names → readable ASCII snake_case, the names the run keeps "
              "(umlauts spelled out).", "[source.rename]"]
    lines += [f"{_str(c.source)} = {_str(c.name)}" for c in draft.columns]
    return lines


def _validate_lines(draft: Draft) -> list[str]:
    low = max(1, math.floor(draft.rows * MIN_SHARE))
    high = max(low, math.ceil(draft.rows * MAX_FACTOR))
    lines = [
        "[validate]",
        _c(f"max_quarantine_share = {MAX_QUARANTINE_SHARE}",
           "more rejected rows hold the batch back"),
        _c('drift = "fail"', "a renamed or retyped column holds the batch back"),
        _c(f"min_rows = {low}",
           f"the drafted file had {draft.rows} rows: fewer than half is a cut-off delivery"),
        _c(f"max_rows = {high}", "more than twice as many is another file or repeated rows"),
    ]
    if draft.row_hash and draft.duplicates:
        lines.append(_c('dedupe = "first"', f"{draft.duplicates} rows repeat another row "
                        "exactly: one of each is published"))
    return [*lines, ""]


def _georeference_lines(draft: Draft) -> list[str]:
    geo = draft.geo
    if geo is None:
        return []
    lines = ["# Coordinates found: " + "; ".join([geo.reason, *geo.notes]) + ".",
             "[georeference]", f"lon = {_str(geo.x)}", f"lat = {_str(geo.y)}",
             f"crs = {_str(geo.crs)}"]
    if geo.outside_keep:
        lines.append(_c('outside = "keep"', "a regional dataset: rows beyond the city keep "
                        "no district"))
    for rule, count in geo.predicted.items():
        lines.append(f"# every run rejects {count} rows: {rule}")
    return [*lines, ""]


def _time_lines(draft: Draft, timezone: str) -> list[str]:
    naive = [c for c in draft.columns if c.inferred.naive]
    formats = [f"{c.name}: {c.inferred.options.get('format', 'ISO 8601')}"
               for c in draft.columns if c.inferred.type in ("date", "datetime")]
    if not formats:
        return []
    lines = ["# Dates found: " + ", ".join(formats) + "."]
    if any("%y" in c.inferred.options.get("format", "") for c in draft.columns):
        lines.append("# Two-digit years: 69–99 are read as 1969–1999, 00–68 as 2000–2068.")
    if naive:
        names = ", ".join(c.name for c in naive)
        lines += [
            f"# TIME ZONE: {names} carry no UTC offset. The schema reads them as local time in "
            f"{timezone} (\"odp:timezone\");",
            "# if the source writes UTC (measuring networks often do), set \"odp:timezone\": "
            "\"UTC\" in the schema instead.",
        ]
        lines += _ambiguous(naive, timezone)
    return [*lines, ""]


def _ambiguous(naive: list[Column], timezone: str) -> list[str]:
    out = []
    for c in naive:
        if c.values is None:
            continue
        local = c.values.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        doubtful = int((c.values.notna() & local.isna()).sum())
        if doubtful:
            out.append(f"# {c.name}: {doubtful} values do not exist or repeat at the summer-time "
                       f"change in {timezone}: they are rejected")
    return out
