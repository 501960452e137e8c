"""A large delivery validated and georeferenced part by part (a stage pair of odp.run).

A first publish (or any run without a record to split the delivery against, odp.delta) read all
of staging's text at once: 10M rows of text and their typed copy, 5.5 GB at the validate stage.
Here staging is read `PART_ROWS` rows at a time; each part is validated, georeferenced and let
go, keeping its typed rows, its findings and the text of its rejected rows only.

This is done when the rules judge each row alone (no series rules, no completeness threshold,
no suite expectation over the whole delivery: odp.delta's own condition), so a row's verdict is
the one the whole validation gives. What a part cannot see sends the delivery to the whole
validation instead (`validated` gives None; a line in the log says why):
  * a primary key, as delivered or typed among the valid rows, in two parts (duplicates are
    judged together);
  * drift in a part, or values not of their type in numbers that make a column retyped over
    the whole delivery (the whole validation then reports it as always).
The gate judges the whole delivery from the parts' counts; the quarantine receives the
rejected rows once, numbered as rows of the whole delivery, as the whole validation numbers
them.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from odp import delta
from odp.heap import give_back
from odp.spec import City, Dataset

if TYPE_CHECKING:
    from threading import Thread

    import pyarrow as pa
    import pyarrow.parquet as pq

    from odp.extract import Extracted
    from odp.georeference import Georeferenced
    from odp.publish.ledgerfile import LedgerFile
    from odp.publish.sortedrows import SortedRows
    from odp.validate import QuarantineStore, ValidationResult

# Rows per part: a part's text, typed copy and the suite's frame take about 0.2 GB at 11
# columns. A 10M-row first run peaked at 1.01 GB (GiB) in the parts with 500,000 rows, at
# 0.92 GB with 300,000 (then the DataStore load beside the ledger's write is the peak) and
# took as long; 1M rows, alternating: 24.4-25.4 s and 0.84-0.90 GB with 500,000, 23.9-24.8 s
# and 0.78-0.79 GB with 300,000 (four parts, each paying the suite's fixed cost).
PART_ROWS = 300_000

log = logging.getLogger("odp.inparts")


class _Whole(Exception):
    """The delivery is validated whole (the message says why)."""


@dataclass(frozen=True)
class Parted:
    """What the whole validation and georeference give: the split (for the record), the
    located rows and the validation's result; and the seconds spent georeferencing."""

    part: delta.Split
    located: Georeferenced  # its table: as many rows as are valid, no values (see `rows`)
    result: ValidationResult  # … and so is its `valid`
    georeference_seconds: float
    rows: SortedRows  # the located rows on disk, in key order (the caller removes the file)


@dataclass
class _Parts:
    """The parts' results so far."""

    results: list[ValidationResult]
    located: list[Georeferenced]  # each part's counts and rejections (its rows: in `rows`)
    rows: LocatedRows  # the parts' located rows and their keys, on disk
    findings: list[pd.DataFrame]  # each part's findings, rows numbered in the delivery
    rejected_text: list[pd.DataFrame]  # each part's rejected rows as delivered (text)
    held: list[str]  # dlt ids of the staged rows not published
    seconds: float = 0.0  # georeferencing


def validated(dataset: Dataset, city: City, state: Path, extracted: Extracted,
              ledger: pa.Table | LedgerFile | None, run_id: str, store: QuarantineStore,
              importing: Thread | None = None) -> Parted | None:
    """The delivery validated and georeferenced in parts; None when it is validated whole
    (a small delivery, rules that need every row at once, a split against the record, or
    something a part cannot see). `importing`: great-expectations' import in the
    background, joined before the first part is georeferenced (see
    odp.validate.suite.import_in_background)."""
    if extracted.staged <= PART_ROWS:
        return None
    why = delta.unsplit(dataset, city, state, extracted, ledger)
    if not why:
        return None
    rows = LocatedRows(extracted.state / "staging" / f"{dataset.table_name}.located.parquet")
    try:
        parts = _each_part(dataset, city, extracted, run_id, rows, importing)
        _check_across(dataset, parts)
        return _joined(dataset, parts, why, run_id, store)
    except _Whole as whole:
        log.info("%s: validated whole, not in parts: %s", dataset.name, whole)
        return None
    except BaseException:
        rows.sorted_path.unlink(missing_ok=True)
        raise
    finally:
        rows.remove()


def _each_part(dataset: Dataset, city: City, extracted: Extracted, run_id: str,
               rows: LocatedRows, importing: Thread | None) -> _Parts:
    from odp.extract import staged_parts

    now = datetime.now(UTC)  # `$now` in the suite: one time for every part
    parts = _Parts([], [], rows, [], [], [])
    first_valid = 1
    for staged in staged_parts(dataset, extracted.state, PART_ROWS):
        _one_part(dataset, city, staged, run_id, now, first_valid, parts, importing)
        last = parts.located[-1]  # a georeference warning numbers the valid rows it was given
        first_valid += len(last.table) + len(last.rejected)
        del staged  # not held while the next part is read
        give_back()  # what the part's validation freed (3M rows: 0.1 GB less at the peak)
    return parts


def _one_part(dataset: Dataset, city: City, staged: pd.DataFrame, run_id: str,
              now: datetime, first_valid: int, parts: _Parts, importing: Thread | None
              ) -> None:
    from odp.georeference import check_filled, georeference
    from odp.publish.changes import key_index
    from odp.validate import validate_batch
    from odp.validate.cells import shortened
    from odp.validate.gate import as_delivered, with_located

    key = list(dataset.schema.primary_key)
    result = validate_batch(staged, dataset, run_id, None, now=now)
    if result.drift:
        raise _Whole(f"drift in rows {staged.index[0] + 1}…: {result.drift.describe()}")
    began = time.monotonic()
    if importing is not None:
        importing.join()
    located = georeference(result.valid, dataset, city, first_row=first_valid)
    if dataset.georeference:
        check_filled(located.table, dataset)  # a derived field no rule fills: ConfigError
    text = as_delivered(staged, result, dataset)
    result, _ = with_located(result, located, text, dataset)  # quarantined with the others
    parts.seconds += time.monotonic() - began

    findings = result.findings.copy()
    findings["row"] = findings["row"] + int(staged.index[0])  # numbered in the delivery
    errors = findings[(findings["severity"] == "error") & findings["row"].notna()]
    at = np.unique(errors["row"].to_numpy(dtype=np.int64) - 1)
    parts.results.append(replace(result, valid=_no_rows(result.valid), findings=findings))
    published = located.table
    raw = delta.raw_hashes(staged)
    # dlt's columns are not published (10M rows: 0.5 GB of ids); the held ones are kept below
    bookkeeping = [c for c in published.columns if str(c).startswith("_dlt_")]
    parts.rows.add(published.drop(columns=bookkeeping),
                   raw.loc[published.index].to_numpy(dtype=np.uint64))
    parts.located.append(replace(located, table=_no_rows(published)))
    parts.findings.append(findings)
    parts.rejected_text.append(shortened(text.loc[at], result.settings.max_cell_chars))
    # distinct per part; the stops without a number, in several parts, are no repeated key
    parts.rows.delivered_keys.add(pd.unique(delta.delivered_keys(dataset, staged, raw,
                                                                 complete_only=True)))
    parts.rows.valid_keys.add(key_index(published, key).to_numpy(dtype=np.uint64))
    if len(published) < len(staged) and "_dlt_id" in staged:
        back = staged.loc[~staged.index.isin(published.index), "_dlt_id"]
        parts.held.extend(back.astype(str))


def _no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """An empty frame of `frame`'s columns that holds none of its data (a slice of no rows, and
    its copy, keep an Arrow-backed column's buffers: 3M rows validated in parts, 0.3 GB)."""
    return pd.DataFrame({c: pd.array([], dtype=t) for c, t in frame.dtypes.items()})


def _repeated(hashes: Hashes) -> bool:
    """Whether a key hash is in two of the parts (each part's hashes distinct): sorted, a hash
    next to itself. (A hash table of 10M keys, `pd.Index.has_duplicates`: 0.35 GB more at the
    peak and 1.1 s; numpy's radix sort of 64-bit integers: 0.1 GB, 0.9 s.)"""
    every = hashes.read()
    every.sort(kind="stable")
    return bool((every[1:] == every[:-1]).any())


def _check_across(dataset: Dataset, parts: _Parts) -> None:
    """What one part cannot see: raises _Whole when the parts must be judged together."""
    from odp.validate.drift import MIN_RETYPED_VALUES

    if len(parts.results) < 2:
        return
    # Per part, the delivered keys are made distinct and the valid rows' keys are (the key
    # check rejects or leaves out a repeated one): a repeat is a key in two parts.
    for name, keys in (("as delivered", parts.rows.delivered_keys),
                       ("typed", parts.rows.valid_keys)):
        if _repeated(keys):
            raise _Whole(f"a primary key ({name}) is in two parts")
    share = parts.results[0].settings.retyped_share
    for field in dataset.schema.source_fields:
        failed = sum(r.type_failed.get(field.name, 0) for r in parts.results)
        present = sum(r.present.get(field.name, 0) for r in parts.results)
        if field.type != "string" and failed >= MIN_RETYPED_VALUES and failed >= share * present:
            raise _Whole(f"field '{field.name}': {failed} of {present} values not "
                         f"{field.type} (drift is judged over the whole delivery)")


def _joined(dataset: Dataset, parts: _Parts, why: str, run_id: str,
            store: QuarantineStore) -> Parted:
    """The parts as one delivery; its rejected rows quarantined at once."""
    from odp.georeference import Georeferenced
    from odp.validate import findings as fnd

    results = parts.results
    findings = fnd.concat(parts.findings)
    total = sum(r.total for r in results)
    rejected = sum(r.rejected_rows for r in results)
    present = {f: sum(r.present.get(f, 0) for r in results) for f in results[0].present}
    gc.collect()  # the parts' frames some validation objects hold in reference cycles
    give_back()
    rows = parts.rows.in_key_order(list(dataset.schema.primary_key), dataset.schema.names)
    give_back()  # … and what the sort freed (3M rows: 0.4 GB)
    # As many rows as are valid, no columns: their values and places are in `rows` (their
    # places as labels here: 80 MB more to the end of a 10M-row run).
    table = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    located = Georeferenced(
        table, sum(p.located for p in parts.located), sum(p.in_city for p in parts.located),
        pd.concat([p.rejected for p in parts.located]),
        [w for p in parts.located for w in p.warnings])
    batch_errors = list(dict.fromkeys(e for r in results for e in r.batch_errors))
    result = replace(results[0], valid=table, findings=findings, rejected_rows=rejected,
                     warnings=int((findings["severity"] == "warning").sum()), total=total,
                     share_rejected=rejected / total if total else 0.0,
                     batch_errors=batch_errors, finished=results[-1].finished,
                     present=present, type_failed={})
    errors = findings[(findings["severity"] == "error") & findings["row"].notna()]
    if not errors.empty:
        text = pd.concat(parts.rejected_text)
        store.add(dataset.name, run_id, errors,
                  text.reset_index(drop=True),
                  text.index.get_indexer(errors["row"].to_numpy(dtype=np.int64) - 1))
    # The rows' raw hashes, for the record, are a column of `rows`.
    split = delta.Split(rows.empty(), why_all=why, held=tuple(parts.held))
    return Parted(split, located, result, parts.seconds, rows)


class Hashes:
    """64-bit hashes appended part by part to a file, read back at once when every part is
    in (10M rows: 80 MB an array; the parts' keys held in memory raised the validate stage's
    peak by 0.16 GB and what glibc kept of them stayed to the end of the run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)  # a killed run's

    def add(self, values: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as sink:
            values.astype(np.uint64, copy=False).tofile(sink)

    def read(self) -> np.ndarray:
        if not self.path.is_file():
            return np.empty(0, dtype=np.uint64)
        return np.fromfile(self.path, dtype=np.uint64)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class LocatedRows:
    """The parts' located rows on the state disk (a Parquet file, a row group a part, not
    compressed), sorted at the end into the key order a first publish writes
    (`odp.publish.sortedrows`); and, beside them, each part's primary keys as delivered and
    typed (for the check across parts). A part is let go once written, so the delivery's
    rows are never held together (10M rows kept in memory part by part: 4.9 GB at the end of
    the validate stage for 1.9 GB of rows; put together in key order: 1.8 GB to the end of the
    run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sorted_path = path.with_name(path.name.replace(".located.", ".sorted."))
        self.delivered_keys = Hashes(path.with_name(path.name + ".delivered-keys"))
        self.valid_keys = Hashes(path.with_name(path.name + ".valid-keys"))
        self._writer: pq.ParquetWriter | None = None

    def add(self, frame: pd.DataFrame, raw: np.ndarray) -> None:
        """A part's located rows (indexed by their places in staging) and their raw hashes
        (`delta.raw_hashes`, kept with each row for the delta's record)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from odp.publish.changes import to_arrow
        from odp.publish.ledgerfile import BATCH_ROWS, dictionary_columns
        from odp.publish.sortedrows import PLACE, RAW

        if frame.empty:
            return
        table = (to_arrow(frame)
                 .append_column(PLACE, pa.array(frame.index.to_numpy(dtype=np.int64)))
                 .append_column(RAW, pa.array(raw.astype(np.uint64, copy=False))))
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(str(self.path), table.schema, compression="none",
                                            use_dictionary=dictionary_columns(table))
        try:
            table = table.cast(self._writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise _Whole(f"a part's columns are not typed as the first part's: {exc}") from None
        # in row groups of a batch the sort reads (a part's 500k rows read at once: 0.1 GB)
        self._writer.write_table(table, row_group_size=BATCH_ROWS)

    def in_key_order(self, key: list[str], names: list[str]) -> SortedRows:
        """All rows written, columns `names`, in the order of their key's values (stable),
        with their row and key hashes and their places in staging, on disk."""
        from odp.publish.sortedrows import sort_on_disk

        if self._writer is None:
            raise _Whole("no rows")
        self._writer.close()
        self._writer = None
        try:
            return sort_on_disk(self.path, key, names, self.sorted_path)
        finally:
            self.path.unlink(missing_ok=True)

    def remove(self) -> None:
        """The parts' files (the sorted one is the caller's once handed on)."""
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)
        self.delivered_keys.remove()
        self.valid_keys.remove()
