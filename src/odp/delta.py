"""A full refresh validates and georeferences only the rows that are new or changed since the
last publish; the rows delivered exactly as then are carried over from the ledger.

After every complete publish the run records, beside the ledger, each published row's raw hash
(its staged text, as the source delivered it) and its primary-key hash
(`STATE/published/NAME/rows.arrow`), with the ledger's digest and the digest of the
definition, schema, suite and city (odp.unchanged.inputs_digest). The next delivery's rows whose
raw hash is recorded produce the same typed, georeferenced row as then: they are not validated
again, and their keys count as delivered (so they are not deleted). The others are validated.

Every row is validated as before whenever the split could change a verdict:
  * the dataset is incremental (its own candidates: the rows not yet published), or has
    time-series rules or completeness thresholds (they judge a whole series or batch), or its
    suite holds an expectation that is not row by row (table-level, aggregates, uniqueness
    other than the primary key's);
  * the record is missing, or does not match the ledger or the inputs (a run in between,
    changed rules), or a publish was interrupted (the ledger may be behind the portal);
  * a validated row's key is also a carried row's (e.g. "01" and "1" of an integer key).
Rows whose key (as text) is delivered more than once are always validated, all together.
The gate still judges the whole delivery: carried rows count as valid rows delivered.

A delivery that only added rows to staging (a file that grew: its new lines appended) is split
without reading the rows staged before: the record also holds staging's mark at the publish
(rows staged, the newest load id) and the dlt ids of the rows held back then (quarantined).
When the rows staged then were those published and those held back, staging still holds
exactly those rows and no added or held-back row repeats another earlier row's key, the
published rows are carried over from the record and only the added and the held-back rows are
read, hashed and validated: the same split as reading everything, at the cost of those rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from odp.extract import ROW_ID
from odp.spec import City, Dataset

if TYPE_CHECKING:
    import pyarrow as pa

    from odp.extract import Extracted
    from odp.publish.ledgerfile import LedgerFile
    from odp.publish.sortedrows import SortedRows

RAW, KEY = "raw", "key"
_DIGESTS = (b"odp_ledger", b"odp_inputs")
# How the raw hashes were computed: a record of another kind is not compared with (every row
# validated once, the record then rewritten).
_RAW_HASH, _RAW_HASH_KIND = b"odp_raw_hash", b"duckdb-hash"
# Staging at the publish: "ROWS:NEWEST_LOAD_ID" (where later rows begin, see staged_since),
# and the dlt ids of its rows held back then (quarantined: validated again with the added
# rows). With more held rows than _MAX_HELD no mark is kept (the next run reads everything).
_STAGED, _HELD = b"odp_staged", b"odp_held"
_MAX_HELD = 10_000
# Row-level expectations judge each row alone; the primary key's uniqueness is checked here.
_ROW_LEVEL = "expect_column_values_to_"
_UNIQUE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


@dataclass(frozen=True)
class Split:
    candidates: pd.DataFrame  # staged rows to validate (all of them when `why_all` is set)
    carried_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    carried_raw: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    # Raw hash of every staged row (staged index); validated in parts: a column of the rows
    # on disk (odp.publish.sortedrows), None here.
    raw: pd.Series | None = None
    why_all: str = ""  # why every row is validated (empty: only the candidates)
    added_only: bool = False  # the rows staged before were not read (only the added ones)
    reread: int = 0  # added_only: earlier rows read again, held back at the last publish
    held: tuple[str, ...] = ()  # dlt ids of the candidates not published (once validated)
    # Per ledger row: carried over this run (`located`; None: nothing carried).
    carried_rows: np.ndarray | None = field(default=None, repr=False)
    # Where `carried_raw` and `carried_keys` are in the record's file: every row the record
    # holds is carried (a grown file's run).
    carried_at: tuple[InFile, InFile] | None = None

    @property
    def carried(self) -> int:
        return len(self.carried_keys)

    def located(self, ledger_keys: pd.Index | None) -> Split:
        """The split with its carried rows' places in the ledger, found through the ledger
        keys' own hash table (pandas keeps it with the index: the collision check and the
        diff use the same one). A grown file's split that carries as many rows as the ledger
        holds carries every one of them (its keys are the record's, the record the ledger's):
        no lookup (10M rows: 1 s)."""
        from odp.publish.changes import rows_with

        if ledger_keys is None or not self.carried:
            return self
        if self.added_only and self.carried == len(ledger_keys):
            return replace(self, carried_rows=np.ones(len(ledger_keys), dtype=bool))
        return replace(self, carried_rows=rows_with(ledger_keys, self.carried_keys))

    def validated(self, published: pd.Index) -> Split:
        """The split without its candidates' text (once they are validated; `published`: the
        index of those that are published): what publishing and the record need is the keys
        and hashes, and the dlt ids of the staged rows held back (quarantined)."""
        back = self.candidates[~self.candidates.index.isin(published)]
        held = tuple(back[ROW_ID].astype(str)) if ROW_ID in back else ()
        return replace(self, candidates=self.candidates.iloc[0:0], held=held)


def rows_path(state: Path, name: str) -> Path:
    """Beside the dataset's files (`STATE/published/NAME.parquet` is its ledger): an Arrow
    file, read memory-mapped (see `_stored`)."""
    return state / "published" / name / "rows.arrow"


_EARLIER = "rows.parquet"  # the record as written before: read once, then replaced


def raw_hashes(staged: pd.DataFrame) -> pd.Series:
    """A 64-bit hash of each staged row's text (dlt's own columns left out): DuckDB's `hash`
    of the row's values, vectorised in C++ over the Arrow-backed text (1M rows: 0.16 s of
    CPU, against 0.65 s for pandas' hash, which builds a Python string per cell)."""
    import duckdb

    columns = [c for c in staged.columns if not c.startswith("_dlt_")]
    text = staged[columns].astype("string")
    if not columns or text.empty:
        return pd.Series(np.zeros(len(text), dtype=np.uint64), index=staged.index)
    values = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    with duckdb.connect() as con:
        con.register("staged_rows", text)
        hashed = con.sql(f"SELECT hash({values}) AS h FROM staged_rows").fetchnumpy()["h"]
    return pd.Series(np.asarray(hashed, dtype=np.uint64), index=staged.index)


def ledger_digest(ledger: pa.Table) -> str:
    """Rows and the sum of their row hashes: changes whenever the ledger's content does."""
    from odp.publish.changes import hash_sum

    return f"{len(ledger)}:{hash_sum(ledger)}"


def _rules_allow(dataset: Dataset) -> str:
    """Why this dataset's rules need every row (empty: they judge rows one by one)."""
    from odp.validate.settings import settings
    from odp.validate.suite import load_suite

    cfg = settings(dataset)
    if not dataset.full_refresh:
        return "incremental"
    if cfg.series is not None or cfg.completeness:
        return "time-series rules or completeness judge the whole delivery"
    key = set(dataset.schema.primary_key)
    for item in load_suite(dataset.suite_path, dataset.schema).expectations:
        rule, kwargs = item["type"], item.get("kwargs", {})
        if rule in _UNIQUE and set(kwargs.get("column_list", [kwargs.get("column")])) == key:
            continue  # the primary key's uniqueness: see _keys_repeat
        if not rule.startswith(_ROW_LEVEL) or rule in _UNIQUE:
            return f"the suite's {rule} judges the whole delivery"
    return ""


@dataclass(frozen=True)
class InFile:
    """Where an array of a record's hashes lies in its file (an offset in bytes)."""

    path: Path
    offset: int

    def read_into(self, out: np.ndarray) -> bool:
        """The array's first `len(out)` values read into `out` from the file — not through
        its mapping, whose pages would count as the process's memory once read (a grown
        file's record of 10M rows: 0.17 GB at the end of the run). False: not read."""
        try:
            with self.path.open("rb") as source:
                source.seek(self.offset)
                return source.readinto(memoryview(out).cast("B")) == out.nbytes
        except OSError:
            return False


@dataclass(frozen=True)
class _Record:
    raw: np.ndarray  # the raw hash of every row published (uint64)
    keys: np.ndarray  # … and its key hash
    staged: tuple[int, str] | None  # staging's rows and newest load id at that publish
    held: tuple[str, ...] = ()  # the dlt ids of the staged rows not published then
    at: tuple[InFile, InFile] | None = None  # where `raw` and `keys` are in the file


def _stored(path: Path) -> tuple[dict[bytes, bytes], pa.Table, int | None]:
    """The record's metadata and columns, and the address its file is mapped at. The Arrow
    file is memory-mapped: its hashes are the file's pages, read when a run touches them — a
    grown file's run, which carries every published row, reads them only from the file, to
    write the next record (10M rows: 0.75 s and 0.16 GB read before). A record of an earlier
    version (Parquet) is read whole (None)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return dict(table.schema.metadata or {}), table, None
    mapped = pa.memory_map(str(path))
    base = mapped.read_buffer(1).address  # the mapping's first byte
    mapped.seek(0)
    table = pa.ipc.open_file(mapped).read_all()
    return dict(table.schema.metadata or {}), table, base


def _hashes(table: pa.Table, name: str) -> np.ndarray:
    """A column of hashes as numpy: the file's own pages when it is one chunk (no copy)."""
    column = table.column(name)
    values = column.chunk(0) if column.num_chunks == 1 else column
    return values.to_numpy().astype(np.uint64, copy=False)


def _in_file(values: np.ndarray, path: Path, base: int | None) -> InFile | None:
    """Where `values` (the mapped file's pages, see `_stored`) lie in the file."""
    if base is None or values.flags.owndata:
        return None
    return InFile(path, values.ctypes.data - base)


def _record(dataset: Dataset, city: City, state: Path, ledger: pa.Table | None
            ) -> _Record | None:
    from odp.unchanged import inputs_digest

    path = rows_path(state, dataset.name)
    if not path.is_file():
        path = path.with_name(_EARLIER)
    pending = state / "published" / f"{dataset.name}.pending"
    if ledger is None or not path.is_file() or pending.exists():
        return None
    meta, stored, base = _stored(path)
    if (meta.get(_DIGESTS[0], b"").decode() != ledger_digest(ledger)
            or meta.get(_DIGESTS[1], b"").decode() != inputs_digest(dataset, city)
            or meta.get(_RAW_HASH) != _RAW_HASH_KIND):
        return None
    rows, _, newest = meta.get(_STAGED, b"").decode().partition(":")
    staged = (int(rows), newest) if rows.isdigit() and newest else None
    held = tuple(json.loads(meta.get(_HELD, b"[]")))
    raw, keys = _hashes(stored, RAW), _hashes(stored, KEY)
    at = (_in_file(raw, path, base), _in_file(keys, path, base))
    return _Record(raw, keys, staged, held, None if None in at else at)


def split(dataset: Dataset, city: City, state: Path, extracted: Extracted,
          ledger: pa.Table | None) -> Split:
    """The staged rows to validate, and the keys of those carried over unchanged."""
    why = _rules_allow(dataset)
    if why or not extracted.staged:  # the rules need every row, every run: nothing to record
        return Split(extracted.table, why_all=why or "nothing staged")
    record = _record(dataset, city, state, ledger)
    if record is not None and (added := _added_only(dataset, extracted, record)) is not None:
        return added
    staged = extracted.table
    raw = raw_hashes(staged)
    if record is None:
        return Split(staged, raw=raw, why_all=NO_RECORD)
    # One hash table of the recorded raw hashes: where each staged row's is (−1: not recorded).
    at = pd.Index(record.raw).get_indexer(raw.to_numpy())
    carried = (at >= 0) & ~_repeated_keys(dataset, staged, raw)
    keys = record.keys[at[carried]]
    return Split(staged[~carried], keys, raw.to_numpy()[carried], raw)


def unsplit(dataset: Dataset, city: City, state: Path, extracted: Extracted,
            ledger: pa.Table | LedgerFile | None) -> str:
    """Why every staged row is validated although the rules judge each row alone (no record
    of the last publish to split the delivery against); empty: the delivery is split, or the
    rules need every row at once (see `split`)."""
    if _rules_allow(dataset) or not extracted.staged:
        return ""
    return "" if _record(dataset, city, state, ledger) is not None else NO_RECORD


NO_RECORD = "no record of the last publish to compare with"


def everything(staged: pd.DataFrame, why: str) -> Split:
    """Every staged row validated (`why`), their raw hashes kept for the record."""
    return Split(staged, raw=raw_hashes(staged), why_all=why)


def _added_only(dataset: Dataset, extracted: Extracted, record: _Record) -> Split | None:
    """The split of a delivery that only added rows to what was published (see the module's
    docstring), reading only the added rows; None when it does not apply."""
    from odp.extract import staged_since

    if (record.staged is None or extracted.collapsed
            or len(record.raw) + len(record.held) != record.staged[0]):
        return None  # no mark, or staging then held rows neither published nor held back
    since = staged_since(dataset, extracted.state, record.staged[1], record.held)
    if (since is None or since.earlier != record.staged[0] or since.key_again
            or since.held != len(record.held)):
        return None
    raw = raw_hashes(since.rows)
    if dataset.schema.row_hash and np.isin(raw.to_numpy(), record.raw).any():
        return None  # a derived key: an added row delivered again is a repeated key
    return Split(since.rows, record.keys, record.raw, raw, added_only=True,
                 reread=since.held, carried_at=record.at)


def present_in(ledger: pa.Table | LedgerFile | None, split_: Split, dataset: Dataset
               ) -> dict[str, int]:
    """Per source field, the carried rows' non-missing values (from the ledger, as published),
    so the report's completeness counts the whole delivery (`split_` located in the ledger).
    When every published row is carried: the counts the ledger was written with."""
    import pyarrow.compute as pc

    from odp.publish.changes import as_ledger
    from odp.publish.ledgerfile import filled

    carried = split_.carried_rows
    if ledger is None or carried is None:
        return {}
    ledger = as_ledger(ledger)
    names = [f.name for f in dataset.schema.source_fields if f.name in ledger.column_names]
    if carried.all():
        stored = ledger.present  # as the ledger's file was written (in memory: None)
        if stored is not None and all(name in stored for name in names):
            return {name: int(stored[name]) for name in names}
        return {name: int(pc.sum(filled(ledger.column(name))).as_py() or 0) for name in names}
    return {name: int((filled(ledger.column(name)).to_numpy(zero_copy_only=False)
                       & carried).sum()) for name in names}


def _repeated_keys(dataset: Dataset, staged: pd.DataFrame, raw: pd.Series) -> np.ndarray:
    """Per staged row: its primary key (as text) is delivered more than once (such rows are
    validated together, so the duplicate is found)."""
    return pd.Series(delivered_keys(dataset, staged, raw)).duplicated(keep=False).to_numpy()


def delivered_keys(dataset: Dataset, staged: pd.DataFrame, raw: pd.Series,
                   complete_only: bool = False) -> np.ndarray:
    """Per staged row, a hash of its primary key as delivered (text); a derived key, or a key
    column not staged: the row's raw hash (`raw`, see `raw_hashes`). `complete_only`: only of
    the rows with every key field delivered (a row without one is never a duplicate: the key
    check compares complete keys only)."""
    key = list(dataset.schema.primary_key)
    if dataset.schema.row_hash or any(k not in staged for k in key):
        return raw.to_numpy(dtype=np.uint64)
    keys = staged[key]
    if complete_only:
        keys = keys[keys.notna().all(axis=1)]
    return pd.util.hash_pandas_object(keys.astype("string"), index=False).to_numpy(
        dtype=np.uint64)


def collides(split_: Split, validated: pd.DataFrame, key: list[str],
             ledger_keys: pd.Index | None) -> bool:
    """Whether a validated row's typed key is also a carried row's (then validate all):
    looked up in the ledger's keys (the carried rows are rows of the ledger)."""
    from odp.publish.changes import key_index, positions

    if split_.carried_rows is None or ledger_keys is None or validated.empty:
        return False
    at = positions(ledger_keys, key_index(validated, key).to_numpy())
    return bool(split_.carried_rows[at[at >= 0]].any())


def _at(raw: pd.Series, labels: pd.Index) -> np.ndarray:
    """The raw hashes of the rows `labels` names: by position when the labels are staging's
    places 0, 1, … (everything staged was read: no hash table of 10M labels, 0.5 GB)."""
    index = raw.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return raw.to_numpy(dtype=np.uint64)[labels.to_numpy()]
    return raw.reindex(labels).to_numpy(dtype=np.uint64)


def _joined(first: np.ndarray, then: np.ndarray, at: InFile | None) -> np.ndarray:
    """`first` and `then` as one array, mapped by the next run as it is (written as a batch
    each, the next run read them together twice, copied: 0.2 GB more through the run).
    Either alone is not copied (a first publish of 10M rows carries nothing: 0.16 GB less
    at the end of the run); `first` is read from its file `at` (see `InFile.read_into`)."""
    if not len(first):
        return then
    if not len(then):
        return first
    out = np.empty(len(first) + len(then), dtype=np.uint64)
    if at is None or not at.read_into(out[:len(first)]):
        out[:len(first)] = first
    out[len(first):] = then
    return out


def record(dataset: Dataset, city: City, state: Path, split_: Split,
           published: pd.DataFrame | SortedRows, ledger: pa.Table, extracted: Extracted
           ) -> None:
    """After a complete publish: raw and key hash of every published row of this delivery
    (`published`: the rows validated this run, staged index, or on disk; plus the carried
    ones), and
    staging's mark (where the next run's added rows begin)."""
    import pyarrow as pa

    from odp.publish.changes import key_index
    from odp.unchanged import inputs_digest

    path = rows_path(state, dataset.name)
    path.with_name(_EARLIER).unlink(missing_ok=True)
    on_disk = not isinstance(published, pd.DataFrame)
    if not dataset.full_refresh or (split_.raw is None and not on_disk):
        path.unlink(missing_ok=True)  # rules that need every row: nothing to compare with
        return
    if isinstance(published, pd.DataFrame):
        fresh_raw = _at(split_.raw, published.index)
        fresh_keys = key_index(published, list(dataset.schema.primary_key)).to_numpy(
            dtype=np.uint64)
    else:  # rows on disk (validated in parts), hashed as they were sorted
        fresh_raw, fresh_keys = published.raw_hashes(), published.key_hashes()
    raw_at, keys_at = split_.carried_at or (None, None)
    table = pa.table({RAW: _joined(split_.carried_raw, fresh_raw, raw_at),
                      KEY: _joined(split_.carried_keys, fresh_keys, keys_at)})
    meta = {_DIGESTS[0]: ledger_digest(ledger), _DIGESTS[1]: inputs_digest(dataset, city),
            _RAW_HASH: _RAW_HASH_KIND}
    if extracted.newest_load and len(split_.held) <= _MAX_HELD:
        meta |= {_STAGED: f"{extracted.staged}:{extracted.newest_load}",
                 _HELD: json.dumps(split_.held)}
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)  # one batch, uncompressed: mapped as it is by the next run
    tmp.replace(path)
