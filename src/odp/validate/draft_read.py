"""Reading the file `odp draft` profiles, with the code a run reads it with.

The file comes from a path (relative to the working directory or to the project) or an http(s)
URL (through the sources' HTTP client, so `ODP_REPLAY_URL` serves recorded responses). Its kind
is found from its bytes: JSON (a list of records → `json_records`, flattened as that source
flattens it), XLSX (a zip → `tabular` with `format = "xlsx"`), else CSV → `tabular` with the
delimiter (`;`, `,`, tab or `|`, by csv.Sniffer over the first lines), the encoding (UTF-8, or
Windows-1252 when the bytes are not UTF-8) and, when every cell of the first line looks like a
value (numbers, dates) rather than a name, `header = false` with `columns` named `column_1` ….
A file that opens with title lines (a first line of one cell, as statistical offices' exports
do) gets `skip_rows` up to its table — the first of 3 lines in a row with every cell filled —
and `skip_footer = "auto"`; when that first line holds values, the names above it span several
lines (a GENESIS export) and the columns are named `column_1` … as well.
Then odp.sources.tabular.read_table / odp.sources.json_records.flatten read it, as a run will.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.validate.infer import infer_type

HEAD_LINES = 50  # lines csv.Sniffer looks at
DELIMITERS = ";,\t|"


@dataclass
class Sample:
    frame: pd.DataFrame  # every row, text cells as the source type delivers them (NA = empty)
    notes: list[str]  # how it was read
    source: dict[str, Any]  # the pipeline's [source] table (without rename)
    origin: str  # the path or URL given
    where: str = ""  # the file a run reads (path relative to the project, or the URL)
    warnings: list[str] = field(default_factory=list)


def read_sample(source: str, rows: int | None = None, timeout: float = 60
                ) -> tuple[pd.DataFrame, list[str]]:
    """Text columns of the first `rows` records (default: all) and notes on how they were read."""
    sample = read_source(source, None, timeout)
    frame = sample.frame if rows is None else sample.frame.head(rows)
    return frame.reset_index(drop=True), sample.notes


def read_source(source: str, root: Path | None, timeout: float = 60) -> Sample:
    data, location = _fetch(source, root, timeout)
    where = location.get("url") or location.get("path") or source
    if data[:2] == b"PK":
        return _tabular(data, {"type": "tabular", **location, "format": "xlsx"}, source, where,
                        ["XLSX, first sheet"])
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{"):
        return _json(data, location, source, where)
    return _csv(data, location, source, where)


def _fetch(source: str, root: Path | None, timeout: float) -> tuple[bytes, dict[str, str]]:
    if source.startswith(("http://", "https://")):
        from odp.sources.http import HttpSettings, SourceClient

        client = SourceClient("draft", HttpSettings.from_source({"timeout": timeout}))
        return client.get_bytes(source), {"url": source}
    path = Path(source).expanduser()
    if not path.is_file() and root is not None and (root / source).is_file():
        path = root / source
    if not path.is_file():
        raise ConfigError(f"{source}: file not found")
    path = path.resolve()
    shown = str(path)
    if root is not None and path.is_relative_to(root.resolve()):
        shown = str(path.relative_to(root.resolve()))  # a run reads it relative to the project
    return path.read_bytes(), {"path": shown}


def _json(data: bytes, location: dict[str, str], source: str, where: str) -> Sample:
    from odp.sources.complete import load_json
    from odp.sources.json_records import RecordShape, flatten

    records = load_json(data.decode("utf-8-sig", errors="strict"), where)
    if isinstance(records, dict):
        inner = next((k for k, v in records.items() if isinstance(v, list) and v
                      and isinstance(v[0], dict)), None)
        hint = f" (the records are under '{inner}')" if inner else ""
        raise SourceError(f"{source}: a JSON object{hint}: the json_records source reads a JSON "
                          "list of records; save the list itself as the file")
    frame = flatten(records, RecordShape(), where)
    table = {"type": "json_records", **location}
    return Sample(frame, ["JSON list of records (nested objects flattened with '.')"], table,
                  source, where)


def _csv(data: bytes, location: dict[str, str], source: str, where: str) -> Sample:
    from odp.sources.textfile import decode

    try:
        text, encoding, named = decode(data, "auto", where).text, "UTF-8", "auto"
    except SourceError:
        text, encoding, named = data.decode("cp1252", errors="replace"), "Windows-1252", \
            "windows-1252"
    head = "\n".join(text.splitlines()[:HEAD_LINES])
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = max(DELIMITERS, key=head.count)
    table: dict[str, Any] = {"type": "tabular", **location, "delimiter": delimiter,
                             "encoding": named}
    notes = [f"CSV, delimiter {delimiter!r}", f"encoding {encoding}"]
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    if (found := _preamble(text, delimiter)) is not None:
        table |= found
        first = next(csv.reader(io.StringIO(text.splitlines()[found["skip_rows"]]),
                                delimiter=delimiter), [])
        notes.append(f"{found['skip_rows']} title line(s) before the table (skip_rows), a "
                     "footer after it ends at a one-cell line (skip_footer = \"auto\")")
    if first and (_values_only(first) or (found is not None and _mostly_values(first))):
        table |= {"header": False, "columns": [f"column_{i}" for i in range(1, len(first) + 1)]}
        notes.append("no header line (the first line holds values): columns named column_1 …")
    else:
        notes += _header_notes(first)
    return _tabular(data, table, source, where, notes)


def _preamble(text: str, delimiter: str) -> dict[str, Any] | None:
    """`skip_rows` (and `skip_footer = "auto"`) when the file opens with a title line: a first
    line of one filled cell, the table starting at the first of HEADER_RUN lines in a row with
    every cell filled and the same number of cells (≥ 2), within PREAMBLE_LINES. None else."""
    from odp.sources.tabular import HEADER_RUN, PREAMBLE_LINES

    lines = text.splitlines()[:PREAMBLE_LINES + HEADER_RUN]
    cells = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]
    if not cells or sum(1 for c in cells[0] if c.strip()) != 1:
        return None
    full = [len(c) if len(c) >= 2 and all(v.strip() for v in c) else 0 for c in cells]
    for start in range(1, min(PREAMBLE_LINES, len(full) - HEADER_RUN + 1)):
        if full[start] and full[start:start + HEADER_RUN] == [full[start]] * HEADER_RUN:
            return {"skip_rows": start, "skip_footer": "auto"}
    return None


def _mostly_values(cells: list[str]) -> bool:
    """More than half of the filled cells are values (a data row with a text cell or two)."""
    present = [c.strip() for c in cells if c.strip()]
    values = sum(1 for c in present if infer_type(pd.Series([c])).type != "string")
    return values * 2 > len(present)


def _values_only(cells: list[str]) -> bool:
    present = [c.strip() for c in cells if c.strip()]
    return bool(present) and all(
        infer_type(pd.Series([c])).type != "string" for c in present)


def _header_notes(cells: list[str]) -> list[str]:
    notes = []
    trimmed = [c for c in cells if c and c != c.strip()]
    if trimmed:
        notes.append("header names trimmed: " + ", ".join(f"{c!r}" for c in trimmed))
    blank = sum(1 for c in cells if not c.strip())
    if blank:
        notes.append(f"{blank} column(s) without a name (a trailing delimiter): dropped when "
                     "empty")
    return notes


def _tabular(data: bytes, table: dict[str, Any], source: str, where: str,
             notes: list[str]) -> Sample:
    from odp.sources.settings import settings_of
    from odp.sources.tabular import TableLayout, read_table

    frame = read_table(data, settings_of(TableLayout, table), where)
    if not len(frame.columns):
        raise SourceError(f"{source}: no columns found")
    return Sample(frame.astype("string"), notes, table, source, where)
