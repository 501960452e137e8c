"""`odp draft NAME --from FILE_OR_URL`: profile a file and write a dataset that runs.

Writes the three files of a dataset so that `odp run NAME` publishes on its first try:

  pipelines/NAME.toml     the source (`tabular` for CSV, `json_records` for a JSON list of
                          records; `path` relative to the project, or `url`), the reading options
                          found (delimiter, encoding, header), a `rename` table from the file's
                          column names to readable ASCII snake_case (odp.validate.names: umlauts
                          transliterated, `Längengrad` → `laengengrad`, names the run keeps as
                          they are), `min_rows`/`max_rows` around the file's row count, the
                          georeferencing of coordinates it found (odp.validate.draft_geo: CRS
                          guessed from the value ranges, the reason beside it), and the time-zone
                          question of date-times without offset. Every guess says so in a comment.
  schemas/NAME.json       one field per column: type, format/decimalChar where needed, required
                          when no value is missing; the primary key: the fewest columns (at most
                          KEY_COLUMNS; ids, codes, dates and texts, never measured values) whose
                          values are unique and never missing over the **whole** file; when
                          there is none, a row hash (a derived `row_hash` field validation fills
                          from each row's values, odp.validate.keys) with a warning; the
                          georeference output columns when coordinates were found.
  expectations/NAME.json  the key unique (error); counts (whole numbers, none negative in the
                          file) never negative (error); per number column a band from the
                          observed min/max plus a margin (warning); date-times not in the future
                          when none is (error); a text column with few distinct values limited
                          to them (warning).

The file is read by the very code a run reads it with (odp.sources.tabular / json_records), so the
names, values and row count the draft sees are the run's. Nothing existing is overwritten without
`force`. The officer edits the files afterwards (titles, units, descriptions, bands).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.spec import ROW_HASH
from odp.validate.draft_geo import WGS84, Coordinates, locate
from odp.validate.draft_read import Sample, read_sample, read_source
from odp.validate.infer import Inferred, infer_type, present
from odp.validate.names import readable_names

__all__ = ["Column", "Draft", "Sample", "profile", "read_sample", "read_source", "write_draft"]

MAX_SET = 10  # at most this many distinct values make an in-set expectation
KEY_COLUMNS = 3  # primary-key candidates have at most this many columns
KEY_USABLE = 30  # beyond this many usable columns, only single columns and pairs are tried
_ID_WORDS = ("id", "nr", "nummer", "number", "no", "key", "schluessel", "code", "uuid", "lfd",
             "kennung", "kennziffer", "ags", "ars", "kz")
_TIME_WORDS = ("jahr", "year", "monat", "month", "quartal", "quarter", "woche", "week", "tag",
               "day", "datum", "date", "zeit", "time", "stunde", "hour", "timestamp")


@dataclass
class Column:
    source: str  # the name the source reads (the `rename` table's key)
    name: str  # the published name
    inferred: Inferred
    present: int
    rows: int
    unique: bool
    low: Any = None
    high: Any = None
    distinct: list[str] = field(default_factory=list)
    values: pd.Series | None = field(default=None, repr=False)  # numbers / date-times parsed

    @property
    def required(self) -> bool:
        return self.rows > 0 and self.present == self.rows

    @property
    def numeric(self) -> bool:
        return self.inferred.type in ("integer", "number")

    @property
    def count(self) -> bool:
        """Whole numbers, none negative, not an id or a time: a count."""
        return (self.inferred.type == "integer" and self.low is not None and self.low >= 0
                and not id_like(self.name) and not _time_like(self.name))


@dataclass
class Draft:
    name: str
    source: str
    columns: list[Column]
    keys: list[list[str]]  # primary-key candidates (published names), best first
    rows: int
    notes: list[str] = field(default_factory=list)
    geo: Coordinates | None = None
    derived: list[str] = field(default_factory=list)  # georeference output columns
    city: Any = None
    duplicates: int = 0  # rows repeating another row exactly
    sample: Sample | None = None

    @property
    def row_hash(self) -> bool:
        """No column combination of the file is unique: the key is a hash of the row."""
        return not self.keys and self.rows > 0

    @property
    def warnings(self) -> list[str]:
        if not self.row_hash:
            return []
        dupes = (f"; {self.duplicates} rows repeat another row exactly (the pipeline keeps the "
                 "first: [validate] dedupe = \"first\")" if self.duplicates else "")
        return [f"{self.name}: warning: no column (or combination of up to {KEY_COLUMNS}) of "
                f"the file is unique; the primary key is a row hash ('{ROW_HASH}', a hash of "
                "each row's values): identical rows are duplicates, rejected unless "
                f"[validate] dedupe = \"first\" or \"last\", and a changed row is a new key{dupes}"]

    @property
    def renames(self) -> dict[str, str]:
        return {c.source: c.name for c in self.columns}

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def schema(self, timezone: str) -> dict[str, Any]:
        from odp.validate.draft_files import schema

        return schema(self, timezone)

    def suite(self) -> dict[str, Any]:
        from odp.validate.draft_files import suite

        return suite(self)


# --- profiling ---------------------------------------------------------------------------------


def profile(frame: pd.DataFrame, name: str, source: str, city: Any = None,
            sample: Sample | None = None) -> Draft:
    """Profile every row of `frame` (the source's text table) for a draft of dataset `name`."""
    raws = [str(c) for c in frame.columns]
    first = readable_names(raws, taken=[ROW_HASH])
    columns = [_column(raw, first[raw], frame[raw]) for raw in raws]
    geo = locate({c.name: c.values for c in columns if c.numeric and c.values is not None},
                 city) if len(frame) else None
    derived = _rename_for_georeference(columns, geo, city, first)
    by_raw = {c.source: c.name for c in columns}
    keys = [[by_raw[r] for r in key] for key in _key_candidates(frame, columns)]
    duplicates = int(frame.duplicated().sum()) if not keys and len(frame) else 0
    return Draft(name, source, columns, keys, len(frame), geo=geo, derived=derived, city=city,
                 duplicates=duplicates, sample=sample,
                 notes=list(sample.notes) if sample else [])


def _column(raw: str, name: str, values: pd.Series) -> Column:
    inferred = infer_type(values)
    text = present(values)
    column = Column(raw, name, inferred, len(text), len(values),
                    unique=len(text) == len(values) and not text.duplicated().any())
    if column.numeric:
        normalised = text
        if inferred.options.get("groupChar"):
            normalised = normalised.str.replace(inferred.options["groupChar"], "", regex=False)
        if inferred.options.get("decimalChar"):
            normalised = normalised.str.replace(inferred.options["decimalChar"], ".", regex=False)
        numbers = pd.to_numeric(normalised, errors="coerce").reindex(values.index)
        column.values = numbers
        if numbers.notna().any():
            column.low, column.high = float(numbers.min()), float(numbers.max())
    elif inferred.type == "datetime":
        column.values = pd.to_datetime(text, format=inferred.options.get("format", "ISO8601"),
                                       errors="coerce", utc=not inferred.naive)
        if column.values.notna().any():
            column.low, column.high = column.values.min(), column.values.max()
    elif inferred.type == "string" and len(text) >= 20:
        distinct = text.unique()
        if len(distinct) <= MAX_SET and len(distinct) <= len(text) / 2:
            column.distinct = sorted(str(v) for v in distinct)
    return column


def _rename_for_georeference(columns: list[Column], geo: Coordinates | None, city: Any,
                             first: dict[str, str]) -> list[str]:
    """Give the coordinate columns the names the georeference stage reads and writes, keep every
    other column off the stage's output names; returns those output columns."""
    if geo is None:
        return []
    districts = [c for level in getattr(city, "districts", ()) for c in level.columns]
    outputs = ["longitude", "latitude", "easting", "northing", *districts]
    source = {name: raw for raw, name in first.items()}
    x, y = source[geo.x], source[geo.y]
    fixed = {x: "longitude", y: "latitude"} if geo.crs == WGS84 else (
        {x: "easting", y: "northing"} if geo.crs == getattr(city, "crs", None) else {})
    rest = readable_names([c.source for c in columns if c.source not in fixed],
                          taken=[*outputs, ROW_HASH])
    for c in columns:
        c.name = fixed.get(c.source) or rest[c.source]
    geo.x, geo.y = fixed.get(x) or rest[x], fixed.get(y) or rest[y]
    return [o for o in outputs if o not in fixed.values()]


# --- keys --------------------------------------------------------------------------------------


def _key_candidates(frame: pd.DataFrame, columns: list[Column]) -> list[list[str]]:
    """Smallest combinations of complete columns (ids, codes, times, texts; no measured values)
    whose values are unique over the whole frame; source names. Vectorised: each column is
    factorised once into integer codes, a combination's codes are combined arithmetically and
    counted with numpy."""
    if frame.empty:
        return []
    usable = sorted((c for c in columns if _key_material(c)), key=_key_rank)
    codes = {c.source: _codes(frame[c.source]) for c in usable}
    rows = len(frame)
    found: list[list[str]] = []
    names = [c.source for c in usable]
    for size in range(1, KEY_COLUMNS + 1):
        if size == KEY_COLUMNS and len(names) > KEY_USABLE:
            break  # bounded on wide files
        for combo in itertools.combinations(names, size):
            if any(set(k) <= set(combo) for k in found):
                continue  # a smaller key is contained in it
            if _unique([codes[n] for n in combo], rows):
                found.append(list(combo))
        if found:
            break
    return found


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values.astype("string").str.strip(), use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques)


def _unique(parts: list[tuple[np.ndarray, int]], rows: int) -> bool:
    if math.prod(k for _, k in parts) < rows:
        return False  # too few distinct combinations to be unique
    combined, span = parts[0][0], parts[0][1]
    for codes, k in parts[1:]:
        if span * k >= 2**62:  # re-number before the product overflows
            combined, span = _codes(pd.Series(combined))[0], int(combined.max()) + 1
        combined, span = combined * k + codes, span * k
    return len(np.unique(combined)) == rows


def _key_material(c: Column) -> bool:
    if not c.required or c.inferred.type in ("number", "boolean"):
        return False
    if c.inferred.type == "integer":
        return id_like(c.name) or _time_like(c.name)  # not a count or a measured value
    return True


def _words(name: str) -> list[str]:
    return name.lower().split("_")


def id_like(name: str) -> bool:
    """Whether a column name reads as an identifier (…_id, Nr, Nummer, code, uuid …)."""
    words = _words(name)
    return any(w in _ID_WORDS or w.endswith(("id", "nr", "nummer")) for w in words)


def _time_like(name: str) -> bool:
    return any(w in _TIME_WORDS or w.startswith(_TIME_WORDS) for w in _words(name))


def _key_rank(c: Column) -> tuple[int, int]:
    type_rank = {"integer": 0, "datetime": 1, "date": 1, "string": 2}.get(c.inferred.type, 3)
    return (0 if id_like(c.name) else 1, type_rank)


# --- writing -----------------------------------------------------------------------------------


def write_draft(draft: Draft, root: Path, timezone: str, force: bool = False) -> list[Path]:
    """Write schemas/NAME.json, expectations/NAME.json and (with a sample read from a source)
    pipelines/NAME.toml; returns the paths written."""
    from odp.validate.draft_files import pipeline_toml

    files: list[tuple[Path, str]] = [
        (root / "schemas" / f"{draft.name}.json", _json(draft.schema(timezone))),
        (root / "expectations" / f"{draft.name}.json", _json(draft.suite())),
    ]
    if draft.sample is not None:
        files.insert(0, (root / "pipelines" / f"{draft.name}.toml",
                         pipeline_toml(draft, timezone, datetime.now(UTC))))
    existing = [p for p, _ in files if p.exists()]
    if existing and not force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise ConfigError(f"{draft.name}: {names} exists already (use --force to overwrite)")
    for path, content in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    for warning in draft.warnings:
        print(warning, file=sys.stderr)
    return [p for p, _ in files]


def _json(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, indent=2) + "\n"
