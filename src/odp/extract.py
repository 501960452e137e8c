"""Extract: run a dataset's dlt resource into its local staging database.

dlt keeps the incremental state (e.g. the last timestamp fetched) and merges re-delivered rows on
the primary key, so staging never holds duplicates. Staging is a per-dataset DuckDB file; the
publish stage compares it with what was last published, so a run that failed after extracting
loses nothing: the next run publishes what staging still holds.

A run killed anywhere inside dlt (extract, normalize, load) leaves staging consistent:
- A package a killed run left pending is finished first (its state — incremental marks,
  conditional-GET validators — is committed with it), then the current source is extracted and
  loaded in the same run: dlt's `run()` alone would load the old package and skip the source.
  A pending package that cannot be loaded is aborted (dlt restores the state it started from).
- Replaced tables are loaded `insert-from-staging`: rows go to dlt's staging dataset and one
  transaction swaps them into the table, so a kill leaves the old table or the new one. Merged
  tables are deduplicated on the primary key by dlt's merge.
- Every row carries `_dlt_load_id` and `_dlt_id`. A load job whose INSERT committed just before
  the kill is executed again by the next run (dlt had not yet marked it done); its rows then
  exist twice with the same `_dlt_id`. After a run that loaded packages an interrupted run
  left (and after every run until that check completed), such exact copies are collapsed to
  one (the newest load's), so staging never holds a record twice; rows the source itself
  delivered twice keep their own ids and are still reported by validation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from odp.errors import OdpError, SourceError, disk_full, error_chain, one_line
from odp.spec import Dataset

STAGING_SCHEMA = "staging"
REPLACE_STRATEGY = "insert-from-staging"
LOAD_ID, ROW_ID = "_dlt_load_id", "_dlt_id"
STAGING_MEMORY = "256MB"
TRACE_FILE = "trace.pickle"  # dlt.pipeline.trace.TRACE_FILE_NAME: removed after each extract

log = logging.getLogger("odp.extract")


@dataclass(frozen=True)
class Extracted:
    dataset: Dataset
    state: Path
    new_rows: int  # rows the source delivered in this run (before merging on the key)
    load_id: str | None
    finished: tuple[str, ...] = ()  # packages an interrupted run left, loaded before this one's
    aborted: tuple[str, ...] = ()  # packages that could not be loaded (their state rolled back)
    collapsed: int = 0  # copies of a record removed (a load job executed twice)
    staged: int = 0  # rows staging holds for the dataset
    newest_load: str | None = None  # the newest load id among them (with `staged`: a mark of
    # staging's content: dlt gives every loaded or merged row the id of its load)

    @property
    def table(self) -> pd.DataFrame:
        """Everything staging holds for the dataset (raw text + _dlt columns), read anew on
        each use: a run that finds nothing new never reads it, and only the caller holds it
        (the run drops it once validated: it is the run's largest frame)."""
        return read_staging(self.dataset, self.state)


def _configure_dlt() -> None:
    """Process-wide dlt settings of odp's pipelines (set before a pipeline is made)."""
    import dlt

    # DataFrames are normalised as Arrow/Parquet: give every row its load id and a unique id,
    # so a record re-inserted by a re-executed load job can be told from a source duplicate.
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
    # The staging dataset of insert-from-staging/merge is emptied after each load (disk).
    dlt.config["load.truncate_staging_dataset"] = True


def _pipeline(dataset: Dataset, state: Path):  # -> dlt.Pipeline
    import dlt

    _configure_dlt()
    staging = state / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    database = DuckDbCredentials(str(staging / f"{dataset.table_name}.duckdb"),
                                 global_config={"memory_limit": STAGING_MEMORY})
    return dlt.pipeline(
        pipeline_name=f"odp_{dataset.table_name}",
        pipelines_dir=str(state / "dlt"),
        destination=dlt.destinations.duckdb(database, replace_strategy=REPLACE_STRATEGY),
        dataset_name=STAGING_SCHEMA,
    )


def _unwrap(exc: BaseException) -> OdpError | None:
    """dlt wraps errors raised inside a resource; find ours for a clean one-line message."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OdpError):
            return current
        seen.add(id(current))
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
    return None


def _one_line(exc: Any, dataset: Dataset) -> OdpError:
    """A dlt step's failure as one line: our own error raised inside it, a full disk, or the
    step and the first line of dlt's message (the whole text goes to the log)."""
    folder = getattr(getattr(exc, "pipeline", None), "pipelines_dir", None)
    ours = _unwrap(exc) or disk_full(exc, f"{dataset.name}: extract",
                                     Path(folder) if folder else None)
    if ours is not None:
        return ours
    log.error("%s: extract failed in dlt step '%s': %s", dataset.name, exc.step, exc)
    root = list(error_chain(exc))[-1]
    first = next((line for line in str(root).splitlines() if line.strip()), "")
    cause = f"{type(root).__name__}: {first}" if first else type(root).__name__
    return SourceError(f"{dataset.name}: extract failed in step '{exc.step}': "
                       f"{one_line(cause, 200)} (details in the log)")


def finish_pending(pipeline: Any, dataset: Dataset) -> tuple[list[str], list[str]]:
    """Normalise and load the packages an interrupted run left behind, so that the current
    source is extracted afterwards (dlt's `run()` would load them and return without
    extracting). A package that fails to load is aborted: dlt deletes it and restores the
    pipeline state it was extracted from, so the next extract asks the source again.
    Returns (finished load ids, aborted load ids)."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    if not pipeline.has_pending_data:
        return [], []
    pending = sorted({*pipeline.list_extracted_load_packages(),
                      *pipeline.list_normalized_load_packages()})
    log.warning("%s: finishing %d load package(s) an interrupted run left: %s",
                dataset.name, len(pending), ", ".join(pending))
    try:
        if pipeline.list_extracted_load_packages():
            pipeline.normalize()
        while pipeline.list_normalized_load_packages():
            before = set(pipeline.list_normalized_load_packages())
            pipeline.load()
            if set(pipeline.list_normalized_load_packages()) == before:
                raise RuntimeError("dlt loaded none of the pending packages")
        return pending, []
    except (PipelineStepFailed, RuntimeError) as exc:
        log.warning("%s: pending load package(s) could not be finished (%s); aborting them",
                    dataset.name, str(exc).splitlines()[0][:200])
        left = sorted({*pipeline.list_extracted_load_packages(),
                       *pipeline.list_normalized_load_packages()})
        with contextlib.suppress(PipelineStepFailed):  # load() reports a done abort so
            pipeline.abort_packages()
        if pipeline.has_pending_data:
            raise SourceError(f"{dataset.name}: staging: pending dlt load packages could not be "
                              f"finished nor aborted ({', '.join(left)})") from None
        return sorted(set(pending) - set(left)), left


def copies_due(state: Path, dataset: Dataset) -> Path:
    """The marker that staging may hold copies of a record: written before the packages an
    interrupted run left are loaded (a load job of theirs may run a second time), removed once
    `collapse_copies` has looked. Only then is staging scanned for copies (a GROUP BY of the
    key over every staged row: 3M rows 0.56 s and 0.54 GB, every run's cost otherwise)."""
    return state / "staging" / f"{dataset.table_name}.copies-due"


def collapse_copies(pipeline: Any, dataset: Dataset) -> int:
    """Remove exact copies of a staged record (same values, same `_dlt_id`: one load job's
    rows inserted twice), keeping the newest load's; only when a primary key occurs twice.
    Returns the number of rows removed."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    table = dataset.table_name
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        try:
            columns = [row[0] for row in client.execute_sql(f"DESCRIBE {name}")]
        except DatabaseUndefinedRelation:
            return 0
        key = [c for c in dataset.schema.primary_key if c in columns]
        if not columns or len(key) != len(dataset.schema.primary_key):
            return 0

        def ident(column: str) -> str:
            return client.escape_column_name(column)

        keys = ", ".join(map(ident, key))
        twice = client.execute_sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {name} GROUP BY {keys} HAVING count(*) > 1)")
        if not twice or not twice[0][0]:
            return 0
        same = ", ".join(ident(c) for c in columns if c != LOAD_ID)
        newest = f"{ident(LOAD_ID)} DESC NULLS LAST" if LOAD_ID in columns else "1"
        copies = (f"SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY {same} "
                  f"ORDER BY {newest}) AS n FROM {name}) WHERE n > 1")
        found = client.execute_sql(f"SELECT count(*) FROM ({copies})")
        removed = int(found[0][0]) if found else 0
        if removed:
            client.execute_sql(f"DELETE FROM {name} WHERE rowid IN ({copies})")
            log.warning("%s: staging held %d copies of records loaded twice (a load job "
                        "re-executed after an interrupted run); collapsed to one each",
                        dataset.name, removed)
        return removed


def extract(dataset: Dataset, state: Path) -> Extracted:
    from dlt.pipeline.exceptions import PipelineStepFailed

    from odp.sources import make_resource

    pipeline = _pipeline(dataset, state)
    due = copies_due(state, dataset)
    try:
        if pipeline.has_pending_data:  # its load jobs may run a second time: copies
            due.touch()
        finished, aborted = finish_pending(pipeline, dataset)
        info = pipeline.run(make_resource(dataset))
    except PipelineStepFailed as exc:
        raise _one_line(exc, dataset) from None
    finally:  # dlt's pickled trace holds exception texts and resolved configuration
        (Path(pipeline.working_dir) / TRACE_FILE).unlink(missing_ok=True)
    load_id = info.loads_ids[0] if info and info.loads_ids else None
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace else None
    new_rows = normalized.row_counts.get(dataset.table_name, 0) if normalized else 0
    collapsed = collapse_copies(pipeline, dataset) if due.exists() else 0
    due.unlink(missing_ok=True)  # after the check: a run killed before it leaves it due
    staged, newest = staging_mark(pipeline, dataset)
    return Extracted(dataset, state, new_rows=new_rows, load_id=load_id,
                     finished=tuple(finished), aborted=tuple(aborted), collapsed=collapsed,
                     staged=staged, newest_load=newest)


def staging_mark(pipeline: Any, dataset: Dataset) -> tuple[int, str | None]:
    """How many rows staging holds for the dataset and the newest load id among them (None:
    no table, or rows without load ids)."""
    from dlt.destinations.exceptions import DatabaseException

    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(dataset.table_name)
        try:
            found = client.execute_sql(f"SELECT count(*), max({LOAD_ID}) FROM {name}")
        except DatabaseException:
            return 0, None
    return (int(found[0][0]), found[0][1]) if found else (0, None)


@contextlib.contextmanager
def _staging_table(dataset: Dataset, state: Path) -> Iterator[tuple[Any, str] | None]:
    """A read-only connection to the dataset's staging and its table's qualified name (None:
    nothing was ever staged)."""
    import duckdb

    path = state / "staging" / f"{dataset.table_name}.duckdb"
    if not path.exists():
        yield None
        return
    with duckdb.connect(str(path), read_only=True) as con:
        # no progress bar: a part read slowly would draw one into the run's output; the
        # blocks read stay in DuckDB's cache up to its limit (10M rows read in parts: 2 GB)
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{STAGING_MEMORY}'")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?",
            [STAGING_SCHEMA, dataset.table_name],
        ).fetchall()
        yield (con, f'{STAGING_SCHEMA}."{dataset.table_name}"') if exists and exists[0][0] \
            else None


def read_staging(dataset: Dataset, state: Path) -> pd.DataFrame:
    """All rows staging holds for the dataset (empty if nothing was ever extracted)."""
    with _staging_table(dataset, state) as found:
        if found is None:
            return pd.DataFrame()
        con, table = found
        # Through Arrow: the same frame as `.df()`, 1M rows of text in about a quarter of the
        # time (DuckDB's own conversion builds each string on its own).
        return con.sql(f"select * from {table}").to_arrow_table().to_pandas()


def staged_parts(dataset: Dataset, state: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Staging's rows `rows` at a time, in the order and the form `read_staging` gives them,
    each part indexed by its rows' places in the whole (0, 1, … on from the part before)."""
    import pyarrow as pa

    from odp.sources.csvstream import gathered

    with _staging_table(dataset, state) as found:
        if found is None:
            return
        con, table = found
        # Each block is read once: DuckDB's cache of the blocks read only grows (10M rows in
        # parts of 500k, 11 columns: 0.76 GB at the last part with 256 MB, 0.58 GB with 64 MB,
        # as fast). A scan holds a block a column and thread: room for wide tables.
        columns = len(con.execute(f"DESCRIBE {table}").fetchall())
        con.execute(f"SET memory_limit = '{64 + columns}MB'")

        def part(batches: list[pa.RecordBatch]) -> pd.DataFrame:
            # The part's own buffers: a text column kept from DuckDB's batches (a validated
            # row's text) kept all of its batch (500k rows: 0.1 GB a part).
            return pa.Table.from_batches(batches).combine_chunks().to_pandas()

        done = 0
        # DuckDB's batches hold a row group at most (122,880 rows): gathered to `rows`
        reader = con.sql(f"select * from {table}").to_arrow_reader(rows)
        for frame in gathered(reader, part, rows=rows):
            frame.index = pd.RangeIndex(done, done + len(frame))
            done += len(frame)
            yield frame
            del frame


@dataclass(frozen=True)
class Since:
    """Staging split at a load: the rows of that load and earlier ones, counted, and the rows
    loaded after it (a file that grew: the lines appended since) with the earlier rows named
    to be read again (held back at the last publish)."""

    earlier: int  # rows staged by the load or before it
    rows: pd.DataFrame  # the later rows and the named earlier ones, in staging's order
    held: int  # how many of `rows` are named earlier ones
    key_again: bool  # one of `rows` repeats the key (as text) of another earlier row


def staged_since(dataset: Dataset, state: Path, load_id: str,
                 held: tuple[str, ...] = ()) -> Since | None:
    """The rows staged after `load_id` and the earlier rows whose dlt ids are `held`, read
    alone — the other earlier rows only counted and their keys compared (as text, as
    delivered). Indexed by DuckDB's row id (the row's place in staging). None: nothing staged,
    rows without load or row ids, or a key column missing."""
    import pyarrow as pa

    with _staging_table(dataset, state) as found:
        if found is None:
            return None
        con, table = found
        columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
        key = list(dataset.schema.primary_key)
        if ({LOAD_ID, ROW_ID} - set(columns)) or not key or any(k not in columns for k in key):
            return None
        con.register("odp_held", pa.table({"id": pa.array(held, type=pa.string())}))
        load, row_id = _quoted(LOAD_ID), _quoted(ROW_ID)
        # Each part a filter DuckDB pushes into its scan (the load id: whole row groups
        # skipped), the named rows a join with their few ids: an OR of the two made DuckDB
        # read every staged row's columns (3M rows: 0.5 s and 0.37 GB for 30k added rows).
        named = f"{row_id} IN (SELECT id FROM odp_held)"
        read = [f"{load} > $1"] + ([f"{load} <= $1 AND {named}"] if held else [])
        kept = f"{load} <= $1" + (f" AND NOT {named}" if held else "")
        earlier = con.sql(f"select count(*) from {table} where {load} <= $1",
                          params=[load_id]).fetchall()[0][0]
        keys = ", ".join(f"CAST({_quoted(k)} AS VARCHAR) AS {_quoted(k)}" for k in key)
        same = " AND ".join(f"o.{_quoted(k)} IS NOT DISTINCT FROM n.{_quoted(k)}" for k in key)
        added = " UNION ALL ".join(f"select {keys} from {table} where {w}" for w in read)
        repeats = con.sql(
            f"select exists (select 1 from (select {keys} from {table} where {kept}) o "
            f"join ({added}) n on {same})", params=[load_id]).fetchall()[0][0]
        rows = con.sql(" UNION ALL ".join(f"select rowid as odp_rowid, * from {table} where {w}"
                                          for w in read) + " order by odp_rowid",
                       params=[load_id]).to_arrow_table().to_pandas()
        con.unregister("odp_held")
    rows = rows.set_index("odp_rowid").rename_axis(None)
    reread = int((rows[LOAD_ID] <= load_id).sum()) if len(rows) else 0
    return Since(int(earlier), rows, reread, bool(repeats))


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'
