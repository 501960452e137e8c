"""The files published beside the DataStore table: CSV (the table resource), Parquet for
developers, GeoJSON where rows have coordinates, and the validation report when there is one.

Each file carries a content hash (resource extra `odp_hash`), so a run re-sends a file only when
its content changed. Files are uploaded to CKAN, or — `publish.resource_mode = "link"` — copied to
`publish.link_dir` (a folder a web server publishes as `publish.link_base_url`) and linked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from odp.errors import ConfigError
from odp.publish.changes import DELETED_AT, as_frame, column_names, frames
from odp.publish.formulas import neutralise
from odp.spec import Dataset

if TYPE_CHECKING:
    import pyarrow as pa

    from odp.publish.ledgerfile import Merged

TABLE_ROLE = "table"  # the CSV resource that backs the DataStore table
KINDS = ("csv", "parquet", "geojson", "report")
# Keys of a validation report that differ on every run without saying anything new.
VOLATILE_REPORT_KEYS = frozenset({"run_id", "generated", "generated_at", "created", "started",
                                  "finished", "seconds", "duration"})


@dataclass(frozen=True)
class ResourceFile:
    role: str  # resource extra `odp_role`: table | parquet | geojson | report
    path: Path
    name: str
    format: str
    mimetype: str
    description: str
    hash: str
    keep_published: bool = False  # a version already on the portal stays (nothing new to tell)
    estimated: int = 0  # bytes: not written, over the upload limit by the last file's size/row


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def _utc_text(column: pd.Series) -> pd.Series:
    return column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(table: pd.DataFrame, columns: list[str], path: Path) -> Path:
    """UTF-8 CSV of the published table, timestamps ISO 8601 UTC (`...Z`), booleans True/False,
    missing values empty. Written by DuckDB (1M rows: about 1.5 s instead of 9 s with pandas);
    a table DuckDB cannot read (objects of mixed kinds) by pandas, to the same format."""
    import duckdb

    out = neutralise(table[columns])  # text cells starting with = + - @ tab CR: a leading '
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _duckdb_csv(out, path)
    except (duckdb.Error, ValueError, TypeError):
        _pandas_csv(out, path)
    return path


def _duckdb_csv(out: pd.DataFrame, path: Path) -> None:
    import duckdb

    picks = []
    for name in out.columns:
        ident = '"' + str(name).replace('"', '""') + '"'
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            picks.append(f"strftime({ident}, '%Y-%m-%dT%H:%M:%SZ') AS {ident}")
        elif pd.api.types.is_bool_dtype(out[name]):  # as pandas writes them
            picks.append(f"CASE WHEN {ident} THEN 'True' WHEN NOT {ident} THEN 'False' END "
                         f"AS {ident}")
        else:
            picks.append(ident)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC already
        con.register("published", out)
        target = str(path).replace("'", "''")
        con.execute(f"COPY (SELECT {', '.join(picks)} FROM published) TO '{target}' "
                    "(HEADER, DELIMITER ',', QUOTE '\"', NEW_LINE '\n')")


def _pandas_csv(out: pd.DataFrame, path: Path) -> None:
    out = out.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = _utc_text(out[name])
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def write_parquet(table: Merged | pa.Table | pd.DataFrame, columns: list[str], path: Path) -> Path:
    """Typed columns (timestamps UTC) for developers: pandas/arrow/duckdb read it directly
    (pandas with the dtypes the rows were validated in: nullable integers, text, …)."""
    import pyarrow.parquet as pq

    from odp.publish.changes import pandas_typed, to_arrow
    from odp.publish.ledgerfile import Merged

    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(table, Merged):  # a merged ledger: written a row group at a time
        _parquet_in_groups(table.batches(columns), table.schema_of(columns), path)
        return path
    table = to_arrow(table[columns]) if isinstance(table, pd.DataFrame) else pandas_typed(
        table.select(columns))
    pq.write_table(table, path, compression="zstd")
    return path


def _parquet_in_groups(parts: Iterable[pa.Table], schema: pa.Schema, path: Path) -> None:
    """The parts as the row groups of one Parquet file, typed as pandas reads the rows."""
    import pyarrow.parquet as pq

    from odp.publish.changes import pandas_typed

    typed = pandas_typed(schema.empty_table()).schema
    with pq.ParquetWriter(path, typed, compression="zstd") as writer:
        for part in parts:
            writer.write_table(part.replace_schema_metadata(typed.metadata))


def geometry_columns(dataset: Dataset) -> tuple[str, str] | None:
    lon = dataset.georeference.get("lon", "longitude")
    lat = dataset.georeference.get("lat", "latitude")
    names = dataset.schema.names
    return (lon, lat) if lon in names and lat in names else None


def write_geojson(parts: Iterable[pd.DataFrame], columns: list[str], dataset: Dataset,
                  path: Path) -> Path:
    """An RFC 7946 FeatureCollection of the parts' rows (the georeference stage's writer:
    WGS84, every column a property, timestamps ISO 8601 UTC), written a part at a time;
    rows marked deleted (mark-deleted) are left out."""
    from odp.georeference import output

    path.parent.mkdir(parents=True, exist_ok=True)
    current = (part[part[DELETED_AT].isna()] if DELETED_AT in part else part for part in parts)
    with path.open("wb") as out:
        output.write_geojson((part[columns] for part in current), out, dataset)
    return path


def _with_deleted(table: Merged | pa.Table | pd.DataFrame, columns: list[str]) -> list[str]:
    """`columns`, and the mark of deleted rows when the table has one (to leave them out)."""
    extra = DELETED_AT in column_names(table) and DELETED_AT not in columns
    return [*columns, DELETED_AT] if extra else list(columns)


# Rows per part of a GeoJSON written from a table in memory (its features as dicts: ~1 kB a
# row while a part is encoded).
GEOJSON_ROWS = 50_000


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_REPORT_KEYS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def report_path(state: Path, name: str) -> Path:
    return state / "reports" / f"{name}.json"


def _report_hash(path: Path) -> tuple[str, bool]:
    """The report's hash without run ids and times, and whether it validated nothing (a run
    that found nothing new: the report already published stays)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return _digest(path.read_bytes()), False
    rows = content.get("rows") if isinstance(content, dict) else None
    idle = isinstance(rows, dict) and rows.get("validated") == 0
    return _digest(json.dumps(_strip_volatile(content), sort_keys=True).encode()), idle


def kinds(dataset: Dataset) -> list[str]:
    """`publish.resources` or the default: CSV, Parquet, GeoJSON for registers with
    coordinates (a sensor's one location repeated per reading is no map), the report."""
    configured = dataset.publish.get("resources")
    if configured is None:
        wanted = ["csv", "parquet", "report"]
        if dataset.kind == "register" and geometry_columns(dataset):
            wanted.insert(2, "geojson")
        return wanted
    unknown = [k for k in configured if k not in KINDS]
    if unknown or "csv" not in configured:
        raise ConfigError(f"{dataset.definition_path}: publish.resources must list 'csv' and "
                          f"only {', '.join(KINDS)} (got {', '.join(map(str, configured))})")
    return list(configured)


# A file is not written when the last one's bytes per row put this one beyond this multiple of
# the upload limit (it would not be uploaded; files near the limit are written and measured).
CLEARLY_OVER = 1.5
# A CSV never written before is estimated from every n-th row, this many (a table of at least
# twice as many rows): a 1M-row first publish wrote 100 MB only to find them over 10 MB.
SAMPLE_ROWS = 10_000
SIZES = "sizes.json"  # per folder: bytes per row of the CSV and Parquet files last written


def _table_digest(table: pa.Table | pd.DataFrame, columns: list[str]) -> str | None:
    """Rows, columns and the sum of the row hashes (the ledger's): changes with the content."""
    from odp.publish.changes import HASH, column_names, hash_sum

    if HASH not in column_names(table):
        return None
    return _digest(json.dumps([len(table), columns, hash_sum(table)]).encode())


class _Sizes:
    """Bytes per row of the files last written, to skip a file clearly over the limit."""

    def __init__(self, folder: Path, rows: int, limit: int | None, digest: str | None) -> None:
        self.path, self.rows, self.limit, self.digest = folder / SIZES, rows, limit, digest
        try:
            self.known: dict[str, float] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}

    def over(self, kind: str, sample: Any = None) -> int:
        """The estimated size when the file is clearly over the limit, else 0 (write it).
        `sample(path)`: writes a sample of the rows and returns how many, to estimate a
        file never written before (a first publish of a large table); the estimate is kept
        as the written files' sizes are (the sample of a 10M-row table read every row of it
        again at every run)."""
        per_row = self.known.get(kind)
        if not (self.limit and self.digest and self.rows):
            return 0
        if per_row is None and sample is not None and self.rows >= 2 * SAMPLE_ROWS:
            trial = self.path.with_name(f".sample-{kind}")
            try:
                rows = sample(trial)
                per_row = trial.stat().st_size / rows if rows else None
            finally:
                trial.unlink(missing_ok=True)
            if per_row:
                self.known[kind] = per_row
                self.path.write_text(json.dumps(self.known), encoding="utf-8")
        if not per_row:
            return 0
        estimate = int(per_row * self.rows)
        return estimate if estimate > CLEARLY_OVER * self.limit else 0

    def written(self, kind: str, path: Path) -> str:
        """Note the file's bytes per row; its hash when the table has no row hashes."""
        if self.rows:
            self.known[kind] = path.stat().st_size / self.rows
            self.path.write_text(json.dumps(self.known), encoding="utf-8")
        return "" if self.digest else _file_digest(path)


def _sample(table: Merged | pa.Table | pd.DataFrame, names: list[str],
            write: Callable[[pd.DataFrame, Path], Any], path: Path) -> int:
    """Every n-th row of `table` (about SAMPLE_ROWS), columns `names`, written by `write` as
    its resource is; how many."""
    import numpy as np
    import pyarrow as pa

    every = np.zeros(len(table), dtype=bool)
    every[::max(1, len(table) // SAMPLE_ROWS)] = True
    rows = table[every] if isinstance(table, pd.DataFrame) else table.filter(pa.array(every))
    write(as_frame(rows, names), path)
    return int(every.sum())


# Row groups a Parquet file never written is estimated from (see `_parquet_sample`).
SAMPLE_GROUPS = 3


def _parquet_sample(table: Merged | pa.Table | pd.DataFrame, names: list[str], path: Path
                    ) -> int:
    """A few whole row groups of the rows, spread over them, written as their Parquet file
    is; how many rows (0: none to sample). Parquet encodes and compresses each row group
    alone — its dictionaries too —, so whole groups give the file's bytes per row, where every
    n-th row (the CSV's sample) breaks up the runs and repeats the file's encodings feed on.
    Only rows read from a file as stored are sampled (a first publish's, see
    `Merged.spread_groups`): a table in memory is written, and measured, at once."""
    from odp.publish.ledgerfile import Merged

    groups = table.spread_groups(names, SAMPLE_GROUPS) if isinstance(table, Merged) else None
    if not groups:
        return 0
    _parquet_in_groups(groups, table.schema_of(names), path)
    return sum(group.num_rows for group in groups)


def _geojson_file(dataset: Dataset, table: Merged | pa.Table | pd.DataFrame,
                  columns: list[str], sizes: _Sizes, path: Path, base: str) -> ResourceFile:
    """The GeoJSON of the located rows: written a part at a time, or — clearly over the
    upload limit, estimated as the CSV is — left unwritten. Its hash is the file's."""
    meta = {"role": "geojson", "name": f"{base} (GeoJSON)", "format": "GeoJSON",
            "mimetype": "application/geo+json",
            "description": "Die verorteten Zeilen als GeoJSON (RFC 7946, WGS84)."}
    names = _with_deleted(table, columns)

    def sample(trial: Path) -> int:
        return _sample(table, names, lambda rows, p: write_geojson([rows], columns, dataset, p),
                       trial)

    if estimate := sizes.over("geojson", sample):
        path.unlink(missing_ok=True)
        return ResourceFile(**meta, path=path, hash="", estimated=estimate)
    write_geojson(frames(table, GEOJSON_ROWS, names), columns, dataset, path)
    return ResourceFile(**meta, path=path,
                        hash=sizes.written("geojson", path) or _file_digest(path))


def _file_digest(path: Path) -> str:
    """`_digest` of a file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()[:24]


def _table_file(kind: str, write: Any, sizes: _Sizes, path: Path, digest: str | None,
                sample: Any = None, **meta: str) -> ResourceFile:
    """The CSV or Parquet file: written, or — clearly over the upload limit — left unwritten
    (an older file removed). Its hash is the table's content (the same whether the file was
    written or not), else the file's bytes. `sample`: see `_Sizes.over`."""
    if estimate := sizes.over(kind, sample):
        path.unlink(missing_ok=True)
        return ResourceFile(**meta, path=path, hash=f"rows-{digest}", estimated=estimate)
    write(path)
    hashed = sizes.written(kind, path)
    return ResourceFile(**meta, path=path, hash=f"rows-{digest}" if digest else hashed)


def build(dataset: Dataset, table: pa.Table | pd.DataFrame, columns: list[str], state: Path,
          limit: int | None = None) -> list[ResourceFile]:
    """Write this run's files under `state/published/` and return them with their hashes.
    `table`: the published table (`ChangeSet.published`: Arrow converted to pandas only for
    a file written from pandas).
    `limit`: the portal's upload limit (upload mode): a CSV or Parquet file clearly over it
    is not written at all — it would not be uploaded (see odp.publish.sync)."""
    folder = state / "published" / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    digest = _table_digest(table, columns)
    sizes = _Sizes(folder, len(table), limit, digest)
    title = dataset.publish.get("resource_title", dataset.title)
    base = title.removesuffix(" (CSV)")
    files: list[ResourceFile] = []
    for kind in kinds(dataset):
        if kind == "csv":
            files.append(_table_file(
                "csv", lambda p: write_csv(as_frame(table, columns), columns, p), sizes,
                folder / f"{dataset.name}.csv", digest,
                lambda p: _sample(table, columns, lambda rows, q: write_csv(rows, columns, q), p),
                role=TABLE_ROLE, name=title,
                format="CSV", mimetype="text/csv",
                description="Die vollständige Tabelle als CSV (UTF-8, Zeitpunkte in UTC nach "
                            "ISO 8601)."))
        elif kind == "parquet":
            files.append(_table_file(
                "parquet", lambda p: write_parquet(table, columns, p), sizes,
                folder / f"{dataset.name}.parquet", digest,
                lambda p: _parquet_sample(table, columns, p), role="parquet",
                name=f"{base} (Parquet)", format="Parquet",
                mimetype="application/vnd.apache.parquet",
                description="Die vollständige Tabelle als Apache Parquet (typisiert)."))
        elif kind == "geojson" and geometry_columns(dataset):
            files.append(_geojson_file(dataset, table, columns, sizes,
                                       folder / f"{dataset.name}.geojson", base))
        elif kind == "report" and (source := report_path(state, dataset.name)).is_file():
            path = folder / f"{dataset.name}-validation.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
            digest, idle = _report_hash(path)
            files.append(ResourceFile("report", path, f"{base}: Validierungsbericht", "JSON",
                                      "application/json",
                                      "Ergebnis der Prüfung des letzten Laufs (Regeln, "
                                      "abgewiesene Zeilen).", digest, keep_published=idle))
    return files


def link_url(dataset: Dataset, file: ResourceFile) -> str | None:
    """Link mode: copy the file into `publish.link_dir` and return its public URL."""
    if dataset.publish.get("resource_mode", "upload") != "link":
        return None
    base, folder = dataset.publish.get("link_base_url"), dataset.publish.get("link_dir")
    if not base or not folder:
        raise ConfigError(f"{dataset.definition_path}: resource_mode = \"link\" needs "
                          "publish.link_base_url and publish.link_dir")
    target = Path(folder) / dataset.name / file.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file beside the target, then a rename: the web server serves the old file
    # or the new one, never a half-copied one.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(file.path, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return f"{base.rstrip('/')}/{dataset.name}/{file.path.name}"
