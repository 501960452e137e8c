"""Administrative tabular files: CSV or XLSX, from a URL or a path, German conventions handled
explicitly and declared per dataset. Full refresh: every run reads the whole file(s); the
publish stage writes only what changed.

Parameters (`[source]`, type = "tabular"; the factory `tabular` takes them typed):
  url | path          one file; or `files = [{url|path, add = {column = value}}, …]` (same layout)
  format              "csv" | "xlsx" (default: from the file name; else csv); `sheet` for xlsx
  encoding            "auto" (default): BOM or valid UTF-8, else an error naming the byte;
                      or a named encoding such as "iso-8859-1" (see odp.sources.textfile)
  delimiter           default ";"; `quotechar` default '"'
  header              true (default): the first row names the columns (names are stripped of
                      surrounding spaces); false: `columns = [...]` names them
  skip_rows           lines before the header (a title, the station, a date: a preamble) that
                      are not part of the table: a number, or "auto" (CSV) — the header is the
                      first line of 3 lines in a row with the same number of cells (at least
                      2), found within the first 50 lines; the log names the lines skipped.
                      Title lines padded with delimiters to the table's width (GENESIS
                      exports) look like the header: give their number there
  skip_footer         lines after the table (notes, a copyright): a number of lines at the
                      end, or "auto" (CSV) — the table ends before the first record after the
                      header that has a single cell (e.g. "__________", "Stand: …")
  join                several `files` of one table, e.g. one file per pollutant: the files are
                      joined on this column (raw name, e.g. the time) into one row per value
                      of it (a full outer join: a time missing from one file leaves its
                      columns empty). Each other column comes from one file; a value repeated
                      in one file's join column stops the run, naming file and value. With
                      units_row, each file's units row is checked for the columns it holds
  units_row           true: the row under the header holds units; it is dropped, and checked
                      against `units = {column = "unit"}` (a different unit stops the run)
  drop                columns not published (raw names)
  rename              {raw name = published name}
  add                 {column = constant text} added to every row (per file in `files`)
  german_numbers      columns written with decimal comma and thousands dots: "1.234,5" →
                      "1234.5", "13,72" → "13.72"; a value of another shape stays as sent (the
                      Table Schema then rejects it with its reason)
  dates               {column = strptime format}, e.g. "%d.%m.%Y" → ISO "YYYY-MM-DD"
  [source.timestamp]  local time without offset → UTC text "…Z":
                      column = "…" (or date = "…" + time = "…"), format (strptime),
                      timezone (IANA, e.g. "Europe/Berlin"), target (output column),
                      ambiguous — the repeated hour at the end of summer time, stated explicitly:
                        "order"    a wall time occurring twice: first = summer time, second =
                                   standard time; occurring once: rejected
                        "dst" | "standard"   every ambiguous wall time gets that offset
                        "reject"   ambiguous values are rejected
                      nonexistent — wall times in the spring gap: "reject" (default) or
                        "shift_forward"
                      empty_time = "midnight": a row with a date but no time gets 00:00 local
                      A rejected value is passed on annotated ("2016-03-27T02:00:00 (does not
                      exist in Europe/Berlin: the summer-time gap)"), so validation quarantines
                      the row and the reason shows why.
  [source.flag]       column = "…", from = "…", empty = "…", present = "…": a column telling
                      rows whose `from` cell is empty apart (e.g. daily rows among hourly ones)

Files by URL are fetched conditionally (validators in dlt state, see odp.sources.http): when every
file answers 304 Not Modified nothing is downloaded and staging stays as it is; when one changed,
all are read again (a full refresh needs every file).

Empty cells are missing values (null), never 0. Every other value is passed on as text exactly as
sent; the Table Schema types it. A row with more cells than the header stops the run with the
file and line named; so does a file cut short (its last line without a line end and with fewer
cells, or a quoted cell left open: see odp.sources.complete). A server's HTML page instead of
the file is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import dlt
import numpy as np
import pandas as pd
import pydantic

from odp.errors import ConfigError, SourceError
from odp.sources import csvstream
from odp.sources.archives import ArchiveLimits, check_zip
from odp.sources.complete import csv_complete, csv_error
from odp.sources.frames import as_raw_text
from odp.sources.http import HttpSettings, SourceClient, cache_validators
from odp.sources.local import is_local, local_file, resolve
from odp.sources.settings import settings_of
from odp.sources.textfile import decode, read_bytes
from odp.spec import Dataset

log = logging.getLogger("odp.sources.tabular")

_GERMAN_THOUSANDS = r"[+-]?[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?"
_GERMAN_PLAIN = r"[+-]?[0-9]+(?:,[0-9]+)?"
AMBIGUOUS = ("order", "dst", "standard", "reject")
NONEXISTENT = ("reject", "shift_forward")
Cell = str | int | float | bool  # a constant cell value in the configuration (`add`)
Skip = Annotated[int, pydantic.Strict()] | Literal["auto"]  # a number of lines, or "auto"


@dataclass(frozen=True)
class TabularFile:
    """One file of the table: by `url` or `path`, with constant columns `add`."""

    url: str | None = None
    path: str | None = None
    add: dict[str, Cell] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.url or self.path or "")


@dataclass(frozen=True)
class TableLayout:
    """How one file's bytes become a table of text cells (see the module's parameters)."""

    format: str | None = None
    sheet: str | int | None = None
    encoding: str = "auto"
    delimiter: str = ";"
    quotechar: str = '"'
    header: bool = True
    columns: tuple[str, ...] = ()
    skip_rows: Skip = 0
    skip_footer: Skip = 0
    units_row: bool = False
    units: dict[str, str] = field(default_factory=dict)
    join: str | None = None
    limits: ArchiveLimits = ArchiveLimits()

    def format_of(self, name: str) -> str:
        """"csv" or "xlsx" as declared, else by the file's name."""
        return self.format or ("xlsx" if name.lower().endswith(".xlsx") else "csv")


@dataclass(frozen=True)
class TimestampRule:
    """`[source.timestamp]`: local time without offset → UTC text (see the module's text)."""

    column: str | None = None
    date: str | None = None
    time: str | None = None
    format: str | None = None
    timezone: str | None = None
    ambiguous: str | None = None
    nonexistent: str = "reject"
    empty_time: Literal["midnight"] | None = None
    target: str = "timestamp"
    keep: bool = False


@dataclass(frozen=True)
class FlagRule:
    """`[source.flag]`: `column` is `empty` where the `from` cell is empty, else `present`."""

    column: str
    origin: Annotated[str, pydantic.Field(alias="from")]
    empty: str
    present: str


@dataclass(frozen=True)
class Conventions:
    """The dataset's declared conventions applied to each table (see the module's text)."""

    flag: FlagRule | None = None
    timestamp: TimestampRule | None = None
    german_numbers: tuple[str, ...] = ()
    dates: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    add: dict[str, Cell] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tabular:
    """The files, how each is read and the conventions applied."""

    files: tuple[TabularFile, ...]
    layout: TableLayout = TableLayout()
    conventions: Conventions = Conventions()

    @classmethod
    def of(cls, source: Mapping[str, Any]) -> Tabular:
        """From a whole `[source]` table (the `tabular` factory takes the keys typed)."""
        files = source.get("files") or [{k: source[k] for k in ("url", "path") if k in source}]
        layout = settings_of(TableLayout, source)
        limits = ArchiveLimits.from_source(dict(source))
        return cls(tuple(settings_of(TabularFile, f) for f in files),
                   _with_limits(layout, limits), settings_of(Conventions, source))


def _with_limits(layout: TableLayout, limits: ArchiveLimits) -> TableLayout:
    import dataclasses

    return dataclasses.replace(layout, limits=limits)


# --- reading -----------------------------------------------------------------------------------


def read_table(data: bytes, layout: TableLayout, where: str) -> pd.DataFrame:
    """The file as a DataFrame of text cells (header applied, units row checked and dropped,
    trailing empty columns removed); missing cells are NA."""
    fmt = layout.format_of(where)
    if fmt == "xlsx":
        check_zip(data, layout.limits, where)  # an XLSX is a zip
        rows = _xlsx_rows(data, layout.sheet, where)
        rows = _sheet_part(rows, layout, where)
    elif fmt == "csv":
        rows = _csv_rows(data, layout, where)
    else:
        raise ConfigError(f"{where}: format must be 'csv' or 'xlsx', not '{fmt}'")
    return _framed(rows, layout, where)


def _sheet_part(rows: pd.DataFrame, layout: TableLayout, where: str) -> pd.DataFrame:
    """A sheet's rows without the preamble and the footer (numbers of non-empty rows)."""
    skip, footer = layout.skip_rows, layout.skip_footer
    if "auto" in (skip, footer):
        raise ConfigError(f"{where}: skip_rows/skip_footer = \"auto\" reads CSV files; give the "
                          "number of rows for a sheet")
    end = len(rows) - _count(footer, "skip_footer", where)
    part = rows.iloc[_count(skip, "skip_rows", where):end]
    if part.empty:
        raise SourceError(f"{where}: nothing left of the sheet after skip_rows = {skip} and "
                          f"skip_footer = {footer}")
    return part


def _csv_rows(data: bytes, layout: TableLayout, where: str) -> pd.DataFrame:
    delimiter, quotechar = layout.delimiter, layout.quotechar
    plain = _plain_utf8(data, layout)
    if plain:  # read by Arrow from the bytes: no decoded copy, none encoded again
        rows = _arrow_rows(data, delimiter, quotechar)
        if rows is not None:
            log.info("%s: encoding utf-8", where)
            csv_complete(data, delimiter, quotechar, where)
            return rows
    decoded = decode(data, layout.encoding, where)  # names a byte that is not UTF-8
    log.info("%s: encoding %s", where, decoded.encoding)
    text = table_text(decoded.text, layout, where)
    rows = None if plain else _arrow_rows(text, delimiter, quotechar)
    if rows is not None:
        csv_complete(text, delimiter, quotechar, where)
        return rows
    try:
        rows = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            quotechar=quotechar,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise SourceError(f"{where}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise csv_error(exc, where) from None
    csv_complete(text, delimiter, quotechar, where)
    return rows


def _plain_utf8(data: bytes, layout: TableLayout) -> bool:
    """Whether a CSV file is read by Arrow straight from its bytes (Arrow checks the UTF-8):
    UTF-8 expected, no byte-order mark, preamble or footer. 10M rows, 785 MB: the decoded
    text and its copy encoded again for Arrow were 1.6 GB and about a second."""
    return ((layout.encoding or "auto").lower() in ("auto", "utf-8", "utf8")
            and not layout.skip_rows and not layout.skip_footer
            and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")))


def _arrow_rows(text: str | bytes, delimiter: str, quotechar: str) -> pd.DataFrame | None:
    """The CSV's cells as text columns parsed by Arrow (1M rows: about 1 s instead of 10 s
    through pandas' parser and its object columns), or None when Arrow cannot read the file
    as a regular table (ragged rows, an open quote, no cells): then pandas reads it and names
    the line at fault. Both give the same cells: empty ones as "", line breaks inside quoted
    cells kept, doubled quotes as one."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if len(delimiter) != 1 or len(quotechar) != 1 or not text or text.isspace():
        return None
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    first = data[:data.find(b"\n") + 1 or len(data)]
    text_types = {f"f{i}": pa.string() for i in range(first.count(delimiter.encode()) + 1)}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=quotechar,
                                             newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types=text_types,
                                                 strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not all(pa.types.is_string(t) for t in table.schema.types):
        return None  # the first record spans lines: a column typed by inference
    return table.to_pandas(types_mapper=lambda _type: pd.StringDtype())


PREAMBLE_LINES = 50  # skip_rows = "auto" looks for the header within the first 50 lines
HEADER_RUN = 3  # … as the first of 3 lines in a row with the same number of cells


def table_text(text: str, layout: TableLayout, where: str) -> str:
    """The lines of a CSV file that hold the table: the preamble (`skip_rows`) and the footer
    (`skip_footer`) cut off."""
    skip, footer = layout.skip_rows, layout.skip_footer
    if not skip and not footer:
        return text
    lines = text.splitlines(keepends=True)
    dialect = {"delimiter": layout.delimiter, "quotechar": layout.quotechar}
    start = _header_line(lines, dialect, where) if skip == "auto" else _count(skip, "skip_rows",
                                                                               where)
    if start:
        log.info("%s: %d preamble line(s) skipped, the first: %r", where, start,
                 lines[0].strip()[:80])
    body = lines[start:]
    while body and not body[-1].strip():
        body.pop()  # blank lines at the end are not footer lines
    end = (_footer_start(body, dialect) if footer == "auto"
           else len(body) - _count(footer, "skip_footer", where))
    if end <= 0:
        raise SourceError(f"{where}: nothing left of the file after skip_rows = {skip!r} and "
                          f"skip_footer = {footer!r}")
    if end < len(body):
        log.info("%s: %d footer line(s) dropped, the first: %r", where, len(body) - end,
                 body[end].strip()[:80])
    return "".join(body[:end])


def _count(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key} must be a whole number ≥ 0 or \"auto\", not {value!r}")
    return value


def _cells(line: str, dialect: dict[str, str]) -> int:
    """The number of cells of one line (0 for a blank line)."""
    if not line.strip():
        return 0
    return len(next(csv.reader([line], **dialect), []))


def _header_line(lines: list[str], dialect: dict[str, str], where: str) -> int:
    """The index of the header: the first of HEADER_RUN non-blank lines in a row with the same
    number of cells (at least 2) within the first PREAMBLE_LINES lines."""
    counted = [(i, _cells(line, dialect)) for i, line in
               enumerate(lines[:PREAMBLE_LINES + HEADER_RUN])]
    filled = [(i, n) for i, n in counted if n]
    for k in range(len(filled) - HEADER_RUN + 1):
        index, cells = filled[k]
        if cells >= 2 and all(n == cells for _, n in filled[k:k + HEADER_RUN]):
            if index >= PREAMBLE_LINES:
                break
            return index
    raise SourceError(f"{where}: skip_rows = \"auto\" found no header in the first "
                      f"{PREAMBLE_LINES} lines ({HEADER_RUN} lines in a row with the same number "
                      "of cells); set skip_rows = N, the number of lines before the header")


def _footer_start(body: list[str], dialect: dict[str, str]) -> int:
    """The index of the first footer line: the start of the first record after the header
    that has a single non-empty cell (quoted cells may span lines)."""
    reader = csv.reader(body, **dialect)
    start = 0
    for number, record in enumerate(reader):
        if number and len(record) == 1 and record[0].strip():
            return start
        start = reader.line_num
    return len(body)


def _xlsx_rows(data: bytes, sheet: Any, where: str) -> pd.DataFrame:
    import openpyxl  # only for XLSX datasets

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException
        raise SourceError(f"{where}: not a readable XLSX file ({type(exc).__name__})") from None
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif isinstance(sheet, int):
            ws = book.worksheets[sheet]
        else:
            ws = book[sheet]
    except (IndexError, KeyError):
        raise SourceError(f"{where}: no sheet {sheet!r} (sheets: {book.sheetnames})") from None
    rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    book.close()
    rows = [r for r in rows if any(v != "" for v in r)]
    if not rows:
        raise SourceError(f"{where}: the sheet is empty")
    return pd.DataFrame(rows, dtype=object)


def _cell_text(value: Any) -> str:
    """An XLSX cell as the text a CSV export would hold (numbers with a decimal point)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _framed(rows: pd.DataFrame, layout: TableLayout, where: str) -> pd.DataFrame:
    if not all(isinstance(dtype, pd.StringDtype) for dtype in rows.dtypes):
        rows = rows.astype(object)  # text columns (Arrow's CSV reader) stay as they are
    rows.columns = range(rows.shape[1])
    if layout.header:
        names = [str(v).strip() for v in rows.iloc[0]]
        body = rows.iloc[1:]
    else:
        names = list(layout.columns)
        if len(names) != rows.shape[1]:
            raise ConfigError(
                f"{where}: 'columns' names {len(names)} columns, the file has {rows.shape[1]}"
            )
        body = rows
    # Trailing separators: unnamed columns that are empty throughout are dropped.
    keep = [i for i, n in enumerate(names) if n or (body.iloc[:, i] != "").any()]
    unnamed = [i + 1 for i in keep if not names[i]]
    if unnamed:
        raise SourceError(f"{where}: column {unnamed[0]} has values but no header")
    if len(set(names[i] for i in keep)) != len(keep):
        raise SourceError(f"{where}: duplicate column names in the header")
    body = body.iloc[:, keep]
    body.columns = [names[i] for i in keep]
    if layout.units_row:
        if body.empty:
            raise SourceError(f"{where}: no units row under the header")
        expected = layout.units
        if layout.join:  # each file of a join holds some of the columns
            expected = {c: u for c, u in expected.items() if c in body.columns}
        _check_units(body.iloc[0], expected, where)
        body = body.iloc[1:]
    body = body.reset_index(drop=True)
    return body.mask(body == "")  # empty cell = missing value


def _check_units(units: pd.Series, expected: dict[str, str], where: str) -> None:
    for column, unit in expected.items():
        if column not in units.index:
            raise SourceError(f"{where}: units row: no column '{column}'")
        if str(units[column]).strip() != unit:
            raise SourceError(
                f"{where}: units row: column '{column}' is in '{units[column]}', expected '{unit}'"
            )


# --- German conventions ------------------------------------------------------------------------


def german_number(values: pd.Series) -> pd.Series:
    """'1.234,5' → '1234.5', '13,72' → '13.72'; other shapes stay as sent."""
    text = values.astype("string").str.strip()
    thousands = text.str.fullmatch(_GERMAN_THOUSANDS).fillna(False)
    plain = text.str.fullmatch(_GERMAN_PLAIN).fillna(False)
    converted = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return values.astype("string").where(~(thousands | plain), converted)


def german_date(values: pd.Series, fmt: str) -> pd.Series:
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    text = parsed.dt.strftime("%Y-%m-%d").astype("string")
    return text.where(parsed.notna(), values.astype("string"))


def local_to_utc(naive: pd.Series, tz: str, ambiguous: str, nonexistent: str
                 ) -> tuple[pd.Series, pd.Series]:
    """Naive local date-times (datetime64; NaT = unparseable) → (UTC date-times, reasons): NaT and
    a reason where a value was rejected under the declared rules."""
    if ambiguous not in AMBIGUOUS:
        raise ConfigError(f"ambiguous must be one of {', '.join(AMBIGUOUS)}, not '{ambiguous}'")
    if nonexistent not in NONEXISTENT:
        raise ConfigError(
            f"nonexistent must be one of {', '.join(NONEXISTENT)}, not '{nonexistent}'"
        )
    wall = naive.astype("datetime64[ns]")
    in_gap = wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna() & (
        wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").notna()
    )
    doubtful = wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna()
    doubtful &= wall.notna()
    if ambiguous == "order":
        # In file order: the first occurrence of a repeated wall time is summer time, the
        # second standard time; one occurring only once cannot be placed and is rejected.
        flags: Any = ~wall.duplicated(keep="first").to_numpy()
        undecided = doubtful & ~wall.duplicated(keep=False)
    elif ambiguous in ("dst", "standard"):
        flags = np.full(len(wall), ambiguous == "dst")
        undecided = pd.Series(False, index=wall.index)
    else:
        flags = "NaT"
        undecided = doubtful
    gap = "shift_forward" if nonexistent == "shift_forward" else "NaT"
    local = wall.dt.tz_localize(tz, ambiguous=flags, nonexistent=gap).mask(undecided)
    reasons = pd.Series(pd.NA, index=wall.index, dtype="string")
    reasons = reasons.mask(undecided, f"is ambiguous in {tz}: the repeated hour")
    if nonexistent == "reject":
        reasons = reasons.mask(in_gap, f"does not exist in {tz}: the summer-time gap")
    return local.dt.tz_convert("UTC"), reasons


def _timestamp(frame: pd.DataFrame, rule: TimestampRule, where: str) -> pd.DataFrame:
    tz, ambiguous = rule.timezone, rule.ambiguous
    if not tz or not ambiguous:
        raise ConfigError(
            f"{where}: [source.timestamp] needs 'timezone' and 'ambiguous' "
            f"({' | '.join(AMBIGUOUS)}): how the repeated hour in autumn is read"
        )
    if rule.column is not None:
        used = [rule.column]
    elif rule.date is not None and rule.time is not None:
        used = [rule.date, rule.time]
    else:
        raise ConfigError(f"{where}: [source.timestamp] needs 'column', or 'date' and 'time'")
    for column in used:
        if column not in frame.columns:
            raise SourceError(f"{where}: no column '{column}' for the timestamp")
    if rule.column is not None:
        raw = frame[rule.column].astype("string")
        fmt = rule.format or "%Y-%m-%dT%H:%M:%S"
    else:
        date, time = frame[used[0]].astype("string"), frame[used[1]].astype("string")
        if rule.empty_time == "midnight":
            time = time.fillna("00:00")
        raw = date + " " + time
        fmt = rule.format or "%Y-%m-%d %H:%M"
    naive = pd.to_datetime(raw, format=fmt, errors="coerce")
    utc, reasons = local_to_utc(naive, tz, ambiguous, rule.nonexistent)
    text = utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    rejected = reasons.notna()
    text = text.where(~rejected, raw + " (" + reasons + ")")
    text = text.where(naive.notna() | rejected, raw)  # unparseable: as sent
    out = frame.drop(columns=[] if rule.keep else used)
    out[rule.target] = text
    return out


# --- the source type ---------------------------------------------------------------------------


def shape(frame: pd.DataFrame, conventions: Conventions, where: str,
          add: Mapping[str, Cell] | None = None) -> pd.DataFrame:
    """Apply the dataset's declared conventions to one file's text table."""
    out = frame.copy()
    if flag := conventions.flag:
        origin = out[flag.origin]
        out[flag.column] = np.where(origin.isna(), flag.empty, flag.present)
    if rule := conventions.timestamp:
        out = _timestamp(out, rule, where)
    for column in conventions.german_numbers:
        if column not in out.columns:
            raise SourceError(f"{where}: no column '{column}' (german_numbers)")
        out[column] = german_number(out[column])
    for column, fmt in conventions.dates.items():
        if column not in out.columns:
            raise SourceError(f"{where}: no column '{column}' (dates)")
        out[column] = german_date(out[column], fmt)
    missing = [c for c in conventions.drop if c not in out.columns]
    if missing:
        raise SourceError(f"{where}: no column '{missing[0]}' (drop)")
    out = out.drop(columns=list(conventions.drop))
    for column, value in {**conventions.add, **(add or {})}.items():
        out[column] = str(value)
    out = out.rename(columns=conventions.rename)
    return as_raw_text(out)


def fetch_all(dataset: Dataset, plan: Tabular, http: HttpSettings,
              validators: MutableMapping[str, Any] | None = None
              ) -> list[tuple[bytes, str]] | None:
    """Every file's bytes and name; with `validators`, files by URL are fetched conditionally:
    None when all files came by URL and none changed. When some did, the unchanged ones are
    downloaded again (a full refresh needs them all)."""
    def kind(file: TabularFile) -> str:
        return plan.layout.format_of(file.name).upper()

    if validators is None or not all(file.url for file in plan.files):
        return [read_bytes(dataset.name, file.url, file.path, http, kind(file))
                for file in plan.files]
    client = SourceClient(dataset.name, http)
    urls = [str(file.url) for file in plan.files]
    kinds = {str(file.url): kind(file) for file in plan.files}
    fetched = [client.get_bytes_if_changed(url, validators, kinds[url]) for url in urls]
    if all(data is None for data in fetched):
        return None
    for i, url in enumerate(urls):
        if fetched[i] is None:
            validators.pop(url, None)
            fetched[i] = client.get_bytes_if_changed(url, validators, kinds[url])
    return [(data or b"", url) for data, url in zip(fetched, urls, strict=True)]


CONTENT = "#content"  # in the validators: the SHA-256 of the files as last read (and, for one
# file, its length and the rows read from it: what an appended delivery is checked against)


def _file_header(where: str, size: int) -> bytes:
    """What the content digest takes before each file's bytes (its name and length): one
    format for the digest of bytes in memory and of a file read block by block."""
    return f"{where}\n{size}\n".encode()


def content_digest(files: list[tuple[bytes, str]], upto: int | None = None) -> str:
    """SHA-256 of the files (names, lengths, bytes); `upto`: of each file's first bytes."""
    digest = hashlib.sha256()
    for data, where in files:
        part = memoryview(data)[:upto]
        digest.update(_file_header(where, len(part)))
        digest.update(part)
    return digest.hexdigest()


def unchanged_local_files(plan: Tabular, validators: MutableMapping[str, Any]) -> bool:
    """Whether every file is a local `path` whose bytes are those of the last run, read in
    blocks (the digest `content_digest` gives): a run with nothing new neither holds the file
    in memory (10M rows: 1.1 GB) nor parses it. False when a file is not local or is missing
    (it is then read as usual, which names what is wrong)."""
    last = validators.get(CONTENT) or {}
    recorded = last.get("sha256")
    if not recorded or not all(file.path and not file.url for file in plan.files):
        return False
    if len(plan.files) == 1 and isinstance(last.get("bytes"), int):  # a grown file: no hash
        try:
            if resolve(str(plan.files[0].path)).stat().st_size != last["bytes"]:
                return False
        except OSError:
            return False
    digest = hashlib.sha256()
    for file in plan.files:
        found = resolve(str(file.path))
        try:
            with found.open("rb") as stream:
                digest.update(_file_header(str(found), os.fstat(stream.fileno()).st_size))
                while block := stream.read(1 << 20):
                    digest.update(block)
        except OSError:
            return False
    return digest.hexdigest() == recorded


def same_content(files: list[tuple[bytes, str]], validators: MutableMapping[str, Any],
                 digest: str | None = None) -> bool:
    """Whether the files are byte for byte those of the last run (a local file, or a server
    without validators that sent the same body): then nothing is parsed and staging stays.
    Records the new digest otherwise (kept when the run's extract commits). `digest`: the
    files' `content_digest`, when already computed."""
    digest = digest or content_digest(files)
    if (validators.get(CONTENT) or {}).get("sha256") == digest:
        return True
    validators[CONTENT] = {"sha256": digest}
    return False


def read_all(dataset: Dataset, validators: MutableMapping[str, Any] | None = None,
             plan: Tabular | None = None, http: HttpSettings | None = None
             ) -> pd.DataFrame | None:
    """The dataset's rows from all its files; None when no file changed (see fetch_all).
    Without `plan` and `http` they are taken from the dataset's `[source]` table."""
    plan = plan or Tabular.of(dataset.source)
    http = http or HttpSettings.from_source(dataset.source)
    if validators is not None and unchanged_local_files(plan, validators):
        return None
    files = fetch_all(dataset, plan, http, validators)
    if files is None or (validators is not None and same_content(files, validators)):
        return None
    return _parsed(dataset, plan, files)


def _parsed(dataset: Dataset, plan: Tabular, files: list[tuple[bytes, str]]) -> pd.DataFrame:
    if plan.layout.join:
        return _joined(dataset, plan, plan.layout.join, files)
    frames = []
    for file, (data, where) in zip(plan.files, files, strict=True):
        where = f"{dataset.name}: {where}"
        frames.append(shape(read_table(data, plan.layout, where), plan.conventions, where,
                            file.add))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


@dataclass(frozen=True)
class Delivery:
    """What the tabular resource stages: every row, or only those appended to the last file;
    or every row of a file read in parts, waiting in a spool (`table` is then None)."""

    table: pd.DataFrame | None
    appended: bool = False
    spool: csvstream.Spool | None = None


def read_delivery(dataset: Dataset, validators: MutableMapping[str, Any], plan: Tabular,
                  http: HttpSettings, staged: Callable[[], int], spool: Path | None = None
                  ) -> Delivery | None:
    """Like read_all; but when the one file is the last one with lines added at its end (its
    first bytes have the recorded digest and length, ending a line) and staging holds exactly
    the rows read then (`staged()`), only the added lines are parsed and staged: appended to
    staging, not replacing it — the same rows in the same order as a full read would stage.
    Anything else (an edit, a deletion, a new header, several files, rules that read the whole
    table) is read and staged whole. A local file that grew is not held in memory: it is
    hashed block by block and only its added bytes are read (`_grown_local_file`). Any other
    local CSV file is read in parts into the folder `spool` (`_spooled_local_file`). One CSV
    file by URL is downloaded beside the folder `spool` (conditionally) and read as a local
    file is: only its added lines, or in parts (a 10M-row CSV held as bytes: 785 MB before its
    parse)."""
    if unchanged_local_files(plan, validators):
        return None
    last = dict(validators.get(CONTENT) or {})
    file = plan.files[0]
    if (spool is not None and _appendable(plan) and file.url is not None
            and not is_local(str(file.url))):
        into = spool.with_name(DOWNLOAD)
        client = SourceClient(dataset.name, http)
        try:
            if not client.download_if_changed(str(file.url), validators, into,
                                              plan.layout.format_of(file.name).upper()):
                return None  # 304 Not Modified
            return _delivered_file(dataset, plan, (into, str(file.url)), last, staged, spool,
                                   validators)
        finally:
            into.unlink(missing_ok=True)
    if (local := _grown_local_file(dataset, plan, last, staged)) is not None:
        return _appended_delivery(local, last, validators)
    if spool is not None and (parts := _spooled_local_file(dataset, plan, spool)) is not None:
        return _spooled_delivery(parts, last, validators)
    files = fetch_all(dataset, plan, http, validators)
    if files is None:
        return None
    return _whole_delivery(dataset, plan, files, last, staged, validators)


DOWNLOAD = "odp-download"  # beside the spool folder: a CSV file by URL, while it is read


def _delivered_file(dataset: Dataset, plan: Tabular, file: tuple[Path, str],
                    last: Mapping[str, Any], staged: Callable[[], int], spool: Path,
                    validators: MutableMapping[str, Any]) -> Delivery | None:
    """The delivery of one CSV file on disk (`file`: its path and the name the digest takes,
    its URL): its added lines, or its rows in parts, or — neither applies — read whole."""
    found, name = file
    if (grown := _grown_file(dataset, plan, found, name, last, staged)) is not None:
        return _appended_delivery(grown, last, validators)
    if (parts := _spooled_file(dataset, plan, found, name, spool)) is not None:
        return _spooled_delivery(parts, last, validators)
    return _whole_delivery(dataset, plan, [(found.read_bytes(), name)], last, staged,
                           validators)


def _appended_delivery(grown: _Grown, last: Mapping[str, Any],
                       validators: MutableMapping[str, Any]) -> Delivery:
    validators[CONTENT] = {"sha256": grown.digest, "bytes": grown.size,
                           "rows": int(last["rows"]) + len(grown.table)}
    return Delivery(grown.table, appended=True)


def _spooled_delivery(parts: _Spooled, last: Mapping[str, Any],
                      validators: MutableMapping[str, Any]) -> Delivery | None:
    if parts.digest == last.get("sha256"):  # changed back since it was hashed, the same body
        parts.spool.remove()
        return None
    validators[CONTENT] = {"sha256": parts.digest, "bytes": parts.size,
                           "rows": parts.spool.rows}
    return Delivery(None, spool=parts.spool)


def _whole_delivery(dataset: Dataset, plan: Tabular, files: list[tuple[bytes, str]],
                    last: Mapping[str, Any], staged: Callable[[], int],
                    validators: MutableMapping[str, Any]) -> Delivery | None:
    """The files held as bytes: only an appended part of one file, else read whole."""
    with ThreadPoolExecutor(1) as pool:
        # The files' digest (recorded for the next run) is computed beside the appended
        # check's digest of the last delivery's bytes: hashlib leaves the interpreter free
        # (10M rows, 785 MB: 0.75 s each). A file of another length cannot be the same.
        digest = pool.submit(content_digest, files)
        grown = len(files) == 1 and last.get("bytes") not in (None, len(files[0][0]))
        table = _appended(dataset, plan, files, last, staged) if grown else None
        if same_content(files, validators, digest.result()):
            return None
    rows = table if table is not None else _parsed(dataset, plan, files)
    if len(files) == 1:
        before = int(last["rows"]) if table is not None else 0
        validators[CONTENT] = {**validators[CONTENT], "bytes": len(files[0][0]),
                               "rows": before + len(rows)}
    return Delivery(rows, appended=table is not None)


def staged_count(table: str) -> int:
    """Rows staging holds in `table` (-1: none, or unreadable); call from inside a resource."""
    from dlt.destinations.exceptions import DatabaseException

    try:
        with dlt.current.pipeline().sql_client() as client:
            name = client.make_qualified_table_name(table)
            found = client.execute_sql(f"SELECT count(*) FROM {name}")
    except DatabaseException:
        return -1
    return int(found[0][0]) if found else -1


def _appendable(plan: Tabular) -> bool:
    """Whether rows read from a file's added lines are those a full read gives for them: one
    CSV file without preamble, footer, units row or join, and no rule that looks across rows
    (ambiguous = "order" reads repeated wall times in file order)."""
    layout, rule = plan.layout, plan.conventions.timestamp
    return (len(plan.files) == 1 and layout.format_of(plan.files[0].name) == "csv"
            and layout.skip_rows == 0 and layout.skip_footer == 0 and not layout.units_row
            and not layout.join and (rule is None or rule.ambiguous != "order"))


def _appended(dataset: Dataset, plan: Tabular, files: list[tuple[bytes, str]],
              last: Mapping[str, Any], staged: Callable[[], int]) -> pd.DataFrame | None:
    """The rows of the lines added to the end of the last file, or None (read it whole)."""
    if not _appendable(plan) or dataset.schema.row_hash:
        return None  # a derived key: staging has no key column to collapse a re-run load on
    data, name = files[0]
    size, rows = last.get("bytes"), last.get("rows")
    if not isinstance(size, int) or not isinstance(rows, int) or not 0 < size < len(data):
        return None
    header = _header(data, plan, size)
    if (header is None or data[size - 1:size] != b"\n"
            or content_digest([(data, name)], size) != last.get("sha256")
            or staged() != rows):
        return None
    return _added_rows(dataset, plan, name, header, data[size:], rows)


def _header(start: bytes, plan: Tabular, size: int) -> bytes | None:
    """The header line an appended part is read with (b"": the file has none); None when
    the file's start rules out reading its added lines alone (UTF-16, a header spanning
    lines or beyond the last delivery)."""
    header = start[:start.find(b"\n") + 1] if plan.layout.header else b""
    if (start.startswith((b"\xff\xfe", b"\xfe\xff"))
            or (plan.layout.header and not 0 < len(header) <= size)
            or plan.layout.quotechar.encode() in header):
        return None
    return header


def _added_rows(dataset: Dataset, plan: Tabular, name: str, header: bytes, added: bytes,
                rows: int) -> pd.DataFrame | None:
    """The rows of a file's `added` lines, read with its `header`; None when they do not
    read alone (then the whole file is read, so that a message names the file's own line)."""
    where = f"{dataset.name}: {name}"
    try:
        table = shape(read_table(header + added, plan.layout, where), plan.conventions,
                      where, plan.files[0].add)
    except SourceError:
        return None
    if table.empty or any(k not in table.columns for k in dataset.schema.primary_key):
        return None
    log.info("%s: %d rows appended to the %d of the last delivery: only they are staged",
             where, len(table), rows)
    return table


@dataclass(frozen=True)
class _Grown:
    table: pd.DataFrame  # the rows of the added lines
    digest: str  # the whole file's content digest
    size: int  # … of this many bytes


# A local file is hashed in blocks of this size (two digests side by side, each in its own
# thread: hashlib leaves the interpreter free for blocks of more than 2 KB).
_BLOCK = 4 << 20


def _grown_local_file(dataset: Dataset, plan: Tabular, last: Mapping[str, Any],
                      staged: Callable[[], int]) -> _Grown | None:
    """A local file with lines added at its end (see `read_delivery`), read without holding
    it: one pass in blocks computes the digest of its first bytes (the last delivery's,
    checked against the record) beside that of the whole file (recorded for the next run),
    then only the added bytes are read. 10M rows, 785 MB: the file was read into memory and
    its peak was 1.2 GB. None: not such a file (read it as usual)."""
    file = plan.files[0]
    if file.url or not file.path:
        return None
    found = local_file(dataset.name, {"path": str(file.path)})
    return None if found is None else _grown_file(dataset, plan, found, str(found), last, staged)


def _grown_file(dataset: Dataset, plan: Tabular, found: Path, name: str,
                last: Mapping[str, Any], staged: Callable[[], int]) -> _Grown | None:
    """`_grown_local_file` of the file `found` (a local file, or one downloaded), named
    `name` in the content digest (its path, or its URL)."""
    size, rows = last.get("bytes"), last.get("rows")
    if (not _appendable(plan) or dataset.schema.row_hash
            or not isinstance(size, int) or not isinstance(rows, int)
            or not 0 < size < (total := found.stat().st_size)):
        return None
    prefix = hashlib.sha256(_file_header(name, size))
    whole = hashlib.sha256(_file_header(name, total))
    with found.open("rb") as stream, ThreadPoolExecutor(1) as pool:
        header = _header(stream.read(min(size, 1 << 16)), plan, size)
        if header is None:
            return None
        stream.seek(0)
        done, ends_line = 0, False
        while done < total and (block := stream.read(min(_BLOCK, total - done))):
            beside = pool.submit(whole.update, block)
            if done < size:
                prefix.update(memoryview(block)[:size - done])
                if size <= done + len(block):
                    ends_line = block[size - 1 - done:size - done] == b"\n"
            done += len(block)
            beside.result()
        if (done != total or not ends_line or prefix.hexdigest() != last.get("sha256")
                or staged() != rows):
            return None
        stream.seek(size)
        added = stream.read(total - size)
    table = _added_rows(dataset, plan, name, header, added, rows)
    return None if table is None else _Grown(table, whole.hexdigest(), total)


@dataclass(frozen=True)
class _Spooled:
    spool: csvstream.Spool  # the rows, in parts on disk
    digest: str  # the file's content digest
    size: int  # … of this many bytes


def _spooled_local_file(dataset: Dataset, plan: Tabular, folder: Path) -> _Spooled | None:
    """One local CSV file (UTF-8, a header of named columns or `columns`, no preamble, footer,
    units row or rule that reads across rows) read in parts into a spool in `folder`, hashed as
    it is read: a first delivery or a rewritten file is never held whole (see
    odp.sources.csvstream). None: not such a file, or one Arrow does not read in parts — it is
    then read whole, which names what is wrong. (A last line cut short fails Arrow's parse: a
    row with fewer cells.)"""
    file = plan.files[0]
    if not _appendable(plan) or file.url or not file.path:
        return None
    found = local_file(dataset.name, {"path": str(file.path)})
    return None if found is None else _spooled_file(dataset, plan, found, str(found), folder)


def _spooled_file(dataset: Dataset, plan: Tabular, found: Path, name: str, folder: Path
                  ) -> _Spooled | None:
    """`_spooled_local_file` of the file `found` (a local file, or one downloaded), named
    `name` in messages and the content digest (its path, or its URL)."""
    import pyarrow as pa

    layout = plan.layout
    if not _appendable(plan):
        return None
    where = f"{dataset.name}: {name}"
    with found.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        start = stream.read(1 << 16)
        stream.seek(0)
        if not _plain_utf8(start, layout) or b"\n" not in start:
            return None
        digest = hashlib.sha256(_file_header(name, size))
        cells = csvstream.cells(csvstream.Hashed(stream, digest, size),
                                start[:start.find(b"\n") + 1], layout.delimiter,
                                layout.quotechar)
        named = csvstream.with_header(cells, None if layout.header else list(layout.columns),
                                      lambda part: _shaped_part(part, plan, where))
        try:
            spool = csvstream.spool(named, folder)
        except (csvstream.NotStreamable, pa.ArrowInvalid) as exc:
            log.info("%s: read whole, not in parts: %s", where, str(exc).splitlines()[0][:200])
            return None
    log.info("%s: %d rows read in parts", where, spool.rows)
    return _Spooled(spool, digest.hexdigest(), size)


def _shaped_part(part: Any, plan: Tabular, where: str) -> Any:
    """A part of a file's cells (an Arrow table of text) with the dataset's conventions."""
    import pyarrow as pa

    add = plan.files[0].add
    if plan.conventions == Conventions() and not add:
        return part  # text as sent, empty cells null: what shape() would give
    frame = part.to_pandas(types_mapper=lambda _type: pd.StringDtype())
    return pa.Table.from_pandas(shape(frame, plan.conventions, where, add), preserve_index=False)


def _joined(dataset: Dataset, plan: Tabular, key: str,
            files: list[tuple[bytes, str]]) -> pd.DataFrame:
    """The files joined on the `join` column, then shaped once as one table."""
    if any(file.add for file in plan.files):
        raise ConfigError(f"{dataset.definition_path}: [source] join: 'add' per file is not "
                          "possible (a row comes from several files); use [source] add")
    tables = [(read_table(data, plan.layout, f"{dataset.name}: {where}"),
               f"{dataset.name}: {where}") for data, where in files]
    table = join_tables(tables, key)
    units = plan.layout.units if plan.layout.units_row else {}
    if missing := [c for c in units if c not in table.columns]:
        raise SourceError(f"{dataset.name}: units: no file has the column '{missing[0]}'")
    return shape(table, plan.conventions, f"{dataset.name}: {len(files)} files joined on '{key}'")


def join_tables(tables: list[tuple[pd.DataFrame, str]], key: str) -> pd.DataFrame:
    """Full outer join of text tables on `key`: one row per key value. Each other column comes
    from one table; a key value repeated or missing within a table is an error naming it."""
    joined: pd.DataFrame | None = None
    origin: dict[str, str] = {}
    for table, where in tables:
        if key not in table.columns:
            raise SourceError(f"{where}: no column '{key}' to join on (join; columns: "
                              f"{', '.join(map(str, table.columns))})")
        keys = table[key]
        if keys.isna().any():
            raise SourceError(f"{where}: row {int(keys.isna().to_numpy().argmax()) + 1} has no "
                              f"value in the join column '{key}'")
        if keys.duplicated().any():
            raise SourceError(f"{where}: '{keys[keys.duplicated()].iloc[0]}' appears twice in "
                              f"the join column '{key}'")
        for column in table.columns.drop(key):
            if column in origin:
                raise SourceError(f"{where}: column '{column}' is also in {origin[column]} (join: "
                                  "each column comes from one file)")
            origin[column] = where
        joined = table if joined is None else joined.merge(table, on=key, how="outer")
    assert joined is not None
    return joined.reset_index(drop=True)


def tabular(dataset: Dataset, *, url: str | None = None, path: str | None = None,
            files: list[TabularFile] | None = None, format: str | None = None,  # noqa: A002
            sheet: str | int | None = None, encoding: str = "auto", delimiter: str = ";",
            quotechar: str = '"', header: bool = True, columns: tuple[str, ...] = (),
            skip_rows: Skip = 0, skip_footer: Skip = 0, join: str | None = None,
            units_row: bool = False, units: dict[str, str] | None = None,
            drop: tuple[str, ...] = (), rename: dict[str, str] | None = None,
            add: dict[str, Cell] | None = None, german_numbers: tuple[str, ...] = (),
            dates: dict[str, str] | None = None, timestamp: TimestampRule | None = None,
            flag: FlagRule | None = None, http: HttpSettings) -> Any:
    """A CSV or XLSX table (one file or several) as rows, read again when a file changed.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        url: the file's URL.
        path: a file of the project instead of `url`.
        files: several files of one layout (`{url|path, add = {column = value}}`).
        format: "csv" or "xlsx" (default: from the file name; else csv).
        sheet: the XLSX sheet (name or 0-based number; default the first).
        encoding: "auto" (BOM or valid UTF-8) or a named encoding such as "iso-8859-1".
        delimiter: the CSV cell delimiter.
        quotechar: the CSV quote character.
        header: whether the first row names the columns (else `columns` names them).
        columns: the column names of a file without header.
        skip_rows: lines before the header: a number, or "auto" (CSV).
        skip_footer: lines after the table: a number, or "auto" (CSV).
        join: several `files` of one table joined on this column (a full outer join).
        units_row: the row under the header holds units (checked against `units`, dropped).
        units: column -> the unit its units-row cell must name.
        drop: columns not published (raw names).
        rename: raw name -> published name.
        add: column -> a constant added to every row.
        german_numbers: columns with decimal comma and thousands dots.
        dates: column -> strptime format of a date, written as ISO "YYYY-MM-DD".
        timestamp: `[source.timestamp]`: local time without offset -> UTC text.
        flag: `[source.flag]`: a column telling rows whose `from` cell is empty apart.
        http: timeouts, retries, deadline and size cap of the requests.
    """
    where = dataset.definition_path
    if url and path:
        raise ConfigError(f"{where}: [source] has both 'url' and 'path' ({url!r}, {path!r}): "
                          "keep one")
    layout = TableLayout(format, sheet, encoding, delimiter, quotechar, header, tuple(columns),
                         skip_rows, skip_footer, units_row, dict(units or {}), join,
                         ArchiveLimits.from_source(dataset.source, f"{where}: [source]"))
    conventions = Conventions(flag, timestamp, tuple(german_numbers), dict(dates or {}),
                              tuple(drop), dict(add or {}), dict(rename or {}))
    plan = Tabular(tuple(files or [TabularFile(url, path)]), layout, conventions)

    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def rows() -> Iterator[Any]:
        # Source state: dlt resets a "replace" resource's own state at every run.
        state = dlt.current.source_state()
        validators = cache_validators(state, dataset.table_name, dataset.source)
        spool = Path(dlt.current.pipeline().working_dir) / csvstream.SPOOL
        delivery = read_delivery(dataset, validators, plan, http,
                                 lambda: staged_count(dataset.table_name), spool)
        if delivery is None:
            # Unchanged: dlt truncates a "replace" table that receives nothing, so this run's
            # disposition is "skip" and staging keeps the rows of the last download.
            yield dlt.mark.with_hints([], dlt.mark.make_hints(write_disposition="skip"))
        elif delivery.spool is not None:  # a file read in parts: staged part by part
            try:
                yield from delivery.spool.tables()
            finally:
                delivery.spool.remove()
        elif delivery.appended:  # lines added to the file: staged after the rows it holds
            yield dlt.mark.with_hints(delivery.table,
                                      dlt.mark.make_hints(write_disposition="append"))
        else:
            yield delivery.table

    return rows
