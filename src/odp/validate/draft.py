"""`odp draft NAME --from FILE_OR_URL`: profile a sample, write a first schema and suite.

Reads CSV (delimiter and encoding detected: `;` or `,` or tab, UTF-8 or Windows-1252; German
decimal commas and dd.mm.yyyy dates are recognised) or JSON (a list of records, or the first
list of records inside an object; nested objects are flattened with `_`). Every value is read as
text, as sources deliver it, and profiled (odp.validate.infer):

  schemas/NAME.json       one field per column: type, format/decimalChar where needed,
                          required when no sampled value is missing, the primary key (the first
                          candidate: the fewest columns whose values are unique and never missing;
                          when no combination of up to KEY_COLUMNS columns is unique, a row hash:
                          a derived `row_hash` field validation fills from each row's values,
                          see odp.validate.keys — with a warning on stderr)
  expectations/NAME.json  primary key unique (error); per number column (not ids) a band from
                          the observed min/max plus a margin (warning); date-times not in the
                          future (error); a column with few distinct values limited to them
                          (warning)

Nothing existing is overwritten without `force`. The officer edits both files afterwards
(titles, units, descriptions, which bands are errors).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.spec import ROW_HASH
from odp.validate.infer import Inferred, infer_type, present

SAMPLE_ROWS = 10_000
MARGIN = 0.1  # of the observed span (or of the value itself when all values are equal)
MAX_SET = 10  # at most this many distinct values make an in-set expectation
KEY_COLUMNS = 3  # primary-key candidates have at most this many columns
_ID_WORDS = ("id", "nr", "nummer", "number", "key", "schluessel", "schlüssel", "code", "uuid")


@dataclass
class Column:
    name: str
    inferred: Inferred
    present: int
    rows: int
    unique: bool
    low: Any = None
    high: Any = None
    distinct: list[str] = field(default_factory=list)

    @property
    def required(self) -> bool:
        return self.rows > 0 and self.present == self.rows


@dataclass
class Draft:
    name: str
    source: str
    columns: list[Column]
    keys: list[list[str]]  # primary-key candidates, best first
    rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def row_hash(self) -> bool:
        """No column combination of the sample is unique: the key is a hash of the row."""
        return not self.keys and self.rows > 0

    @property
    def warnings(self) -> list[str]:
        if not self.row_hash:
            return []
        return [f"{self.name}: warning: no column (or combination of up to {KEY_COLUMNS}) of "
                f"the sample is unique; the primary key is a row hash ('{ROW_HASH}', a hash of "
                "each row's values): identical rows are duplicates, rejected unless "
                "[validate] dedupe = \"first\" or \"last\", and a changed row is a new key"]

    def schema(self, timezone: str) -> dict[str, Any]:
        fields = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.name, "type": c.inferred.type, "title": c.name,
                                    "description": ""}
            item.update(c.inferred.options)
            if c.inferred.naive:
                item["odp:timezone"] = timezone
            if c.required:
                item["constraints"] = {"required": True}
            fields.append(item)
        if self.row_hash:
            fields.append({"name": ROW_HASH, "type": "string", "title": "Zeilen-Hash",
                           "description": "Schlüssel aus den Werten der Zeile (keine eindeutige "
                                          "Spalte in der Quelle)",
                           "odp:derived": ROW_HASH})
        candidates = "; ".join(" + ".join(k) for k in self.keys) or (
            f"none found, the key is a hash of each row's values ({ROW_HASH})"
            if self.row_hash else "none found")
        schema: dict[str, Any] = {
            "$comment": (
                f"Drafted by `odp draft` from {self.source} ({self.rows} rows sampled). Check "
                f"types, titles, units and constraints. Primary-key candidates: {candidates}"
            ),
            "fields": fields,
        }
        if self.keys:
            schema["primaryKey"] = self.keys[0]
        elif self.row_hash:
            schema["primaryKey"] = [ROW_HASH]
        return schema

    def suite(self) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        if self.keys:
            key = self.keys[0]
            unique = (
                {"type": "expect_column_values_to_be_unique", "kwargs": {"column": key[0]}}
                if len(key) == 1
                else {"type": "expect_compound_columns_to_be_unique",
                      "kwargs": {"column_list": key}}
            )
            items.append(unique | {"meta": {"severity": "error", "notes": "primary key"}})
        for c in self.columns:
            items.extend(_expectations(c, self.rows))
        return {
            "name": self.name,
            "expectations": items,
            "meta": {
                "dataset": self.name,
                "notes": (
                    f"Drafted by `odp draft` from {self.source} ({self.rows} rows sampled). Bands "
                    "come from the sample with a margin and are warnings: make them errors where "
                    "they are physical limits."
                ),
            },
        }


def _expectations(c: Column, rows: int) -> list[dict[str, Any]]:
    out = []
    if c.inferred.type in ("integer", "number") and c.low is not None and not _id_like(c.name):
        low, high = _band(c.low, c.high, c.inferred.type == "integer")
        out.append({
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": c.name, "min_value": low, "max_value": high},
            "meta": {"severity": "warning",
                     "notes": f"observed {_num(c.low)} … {_num(c.high)} in the sample, "
                              f"±{MARGIN:.0%} margin"},
        })
    elif c.inferred.type == "datetime":
        out.append({
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": c.name, "max_value": {"$now": "PT1H"}},
            "meta": {"severity": "error", "notes": "not in the future"},
        })
    elif c.inferred.type == "string" and c.distinct and not c.unique:
        out.append({
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": c.name, "value_set": c.distinct},
            "meta": {"severity": "warning",
                     "notes": f"the {len(c.distinct)} values seen in the sample"},
        })
    return out


def _band(low: float, high: float, integer: bool) -> tuple[float, float]:
    span = high - low
    margin = MARGIN * (span if span else max(abs(low), 1.0))
    lo, hi = low - margin, high + margin
    if integer:
        return math.floor(lo), math.ceil(hi)
    digits = max(0, 2 - int(math.floor(math.log10(margin)))) if margin > 0 else 2
    return round(lo, digits), round(hi, digits)


def _num(value: float) -> str:
    return f"{value:g}"


# --- reading a sample --------------------------------------------------------------------------


def read_sample(
    source: str, rows: int = SAMPLE_ROWS, timeout: float = 60
) -> tuple[pd.DataFrame, list[str]]:
    """Text columns of the first `rows` records of a file or URL, and notes on how it was read."""
    if source.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(source, timeout=timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SourceError(f"{source}: cannot download: {exc}") from None
        data, kind = response.content, response.headers.get("Content-Type", "")
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{source}: file not found")
        data, kind = path.read_bytes(), path.suffix.lower()
    text, encoding = _decode(data)
    if "json" in kind or text.lstrip()[:1] in ("[", "{"):
        frame, notes = _json_frame(text, source)
    else:
        frame, notes = _csv_frame(text, source)
    notes.insert(0, f"encoding {encoding}")
    return frame.head(rows).reset_index(drop=True), notes


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _csv_frame(text: str, source: str) -> tuple[pd.DataFrame, list[str]]:
    head = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=";,\t|").delimiter
    except csv.Error:
        delimiter = ";" if head.count(";") > head.count(",") else ","
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                        engine="python", on_bad_lines="skip")
    notes = [f"CSV, delimiter {delimiter!r}"]
    renamed = {c: str(c).strip() for c in frame.columns if str(c) != str(c).strip()}
    if renamed:
        notes.append("header names trimmed: " + ", ".join(f"{k!r}" for k in renamed))
        frame = frame.rename(columns=renamed)
    blank = [c for c in frame.columns
             if (not str(c) or str(c).startswith("Unnamed:")) and (frame[c] == "").all()]
    if blank:
        notes.append(f"{len(blank)} empty column(s) without a name dropped (trailing delimiter)")
        frame = frame.drop(columns=blank)
    if frame.empty and not len(frame.columns):
        raise SourceError(f"{source}: no columns found")
    return frame, notes


def _json_frame(text: str, source: str) -> tuple[pd.DataFrame, list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{source}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    notes = ["JSON list of records"]
    if isinstance(data, dict):
        key = next((k for k, v in data.items()
                    if isinstance(v, list) and v and isinstance(v[0], dict)), None)
        if key is None:
            raise SourceError(f"{source}: no list of records found in the JSON object")
        data = data[key]
        notes = [f"JSON records under '{key}'"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SourceError(f"{source}: expected a JSON list of records")
    frame = pd.json_normalize(data, sep="_")
    return frame.apply(lambda column: column.map(_as_text)).astype("string"), notes


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- profiling ---------------------------------------------------------------------------------


def profile(frame: pd.DataFrame, name: str, source: str) -> Draft:
    columns = [_column(str(c), frame[c]) for c in frame.columns]
    keys = _key_candidates(frame, columns)
    return Draft(name, source, columns, keys, len(frame))


def _column(name: str, values: pd.Series) -> Column:
    inferred = infer_type(values)
    text = present(values)
    column = Column(name, inferred, len(text), len(values),
                    unique=len(text) == len(values) and not text.duplicated().any())
    if inferred.type in ("integer", "number"):
        normalised = text
        if inferred.options.get("groupChar"):
            normalised = normalised.str.replace(inferred.options["groupChar"], "", regex=False)
        if inferred.options.get("decimalChar"):
            normalised = normalised.str.replace(inferred.options["decimalChar"], ".", regex=False)
        numbers = pd.to_numeric(normalised, errors="coerce").dropna()
        if len(numbers):
            column.low, column.high = float(numbers.min()), float(numbers.max())
    elif inferred.type == "string" and len(text) >= 20:
        distinct = text.unique()
        if len(distinct) <= MAX_SET and len(distinct) <= len(text) / 2:
            column.distinct = sorted(str(v) for v in distinct)
    return column


def _key_candidates(frame: pd.DataFrame, columns: list[Column]) -> list[list[str]]:
    """Smallest combinations of complete, non-number columns whose values are unique."""
    usable = [c for c in columns if c.required and c.inferred.type not in ("number", "boolean")]
    usable.sort(key=_key_rank)
    if frame.empty:
        return []
    found: list[list[str]] = []
    for size in range(1, KEY_COLUMNS + 1):
        for combo in itertools.combinations([c.name for c in usable], size):
            if any(set(k) <= set(combo) for k in found):
                continue  # a smaller key is contained in it
            if not frame.duplicated(subset=list(combo)).any():
                found.append(list(combo))
        if found:
            break
        if len(usable) > 30 and size >= 2:
            break  # keep pair/triple search bounded on wide files
    return found


def _id_like(name: str) -> bool:
    lowered = name.lower()
    return any(lowered == w or lowered.endswith(("_" + w, w)) for w in _ID_WORDS)


def _key_rank(c: Column) -> tuple[int, int]:
    type_rank = {"integer": 0, "datetime": 1, "date": 1, "string": 2}.get(c.inferred.type, 3)
    return (0 if _id_like(c.name) else 1, type_rank)


# --- writing -----------------------------------------------------------------------------------


def write_draft(draft: Draft, root: Path, timezone: str, force: bool = False) -> list[Path]:
    schema = root / "schemas" / f"{draft.name}.json"
    suite = root / "expectations" / f"{draft.name}.json"
    existing = [p for p in (schema, suite) if p.exists()]
    if existing and not force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise ConfigError(f"{draft.name}: {names} exists already (use --force to overwrite)")
    for path, content in ((schema, draft.schema(timezone)), (suite, draft.suite())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for warning in draft.warnings:
        print(warning, file=sys.stderr)
    return [schema, suite]
