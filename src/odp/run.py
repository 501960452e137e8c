"""One run of one dataset: spec → extract → validate → georeference → publish → record.

Each stage is a function from a batch (a DataFrame) to the next, so each can be tested alone and
any orchestrator (cron today) only calls `run_dataset`.
"""

from __future__ import annotations

import gc
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from odp import delta, unchanged
from odp.errors import GateError, LockedError, OdpError, classified
from odp.heap import give_back
from odp.runs.locks import dataset_lock  # noqa: F401 (odp.run.dataset_lock)
from odp.spec import City, Dataset, load_dataset, state_dir
from odp.validate import QuarantineStore, ValidationResult, quarantine_keys
from odp.validate.suite import import_in_background

if TYPE_CHECKING:  # the stages' modules load in the run, not at the CLI's start-up
    import pyarrow as pa

    from odp.extract import Extracted
    from odp.georeference import Georeferenced
    from odp.publish.changes import ChangeSet
    from odp.publish.guard import GuardSettings
    from odp.publish.ledgerfile import LedgerFile, TableLedger
    from odp.publish.sortedrows import SortedRows

Progress = Callable[[str], None]


@dataclass
class RunReport:
    run_id: str
    dataset: str
    status: str = "running"  # ok | unchanged | held-back | failed | locked
    started: str = ""
    seconds: float = 0.0
    extracted: int = 0  # rows the source delivered this run
    staged: int = 0  # rows staging holds after the run
    validated: int = 0  # rows validated this run
    valid: int = 0
    quarantined: int = 0
    warnings: int = 0
    georeferenced: int = 0
    in_city: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    write_calls: int = 0
    downloaded: int = 0  # body bytes received from the source this run (0 when all 304)
    accepted_deletes: int = 0  # rows deleted beyond max_delete_share, accepted by the officer
    kept_last_good: int = 0  # published rows quarantined this run that keep their last version
    url: str = ""
    error: str = ""
    exit_code: int = 0
    messages: list[str] = field(default_factory=list)
    plan: dict[str, object] = field(default_factory=dict)  # dry run: what publish would write
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (extract, …)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)


@contextmanager
def _stage(report: RunReport, say: Progress, name: str) -> Iterator[None]:
    """Announce a stage and add its seconds to the report."""
    say(name)
    began = time.monotonic()
    try:
        yield
    finally:
        spent = report.stages.get(name, 0.0) + time.monotonic() - began
        report.stages[name] = round(spent, 3)


def _candidates(dataset: Dataset, staged: pd.DataFrame, ledger: pa.Table | None,
                quarantined_keys: set[str]) -> pd.DataFrame:
    """Rows to validate this run: the whole register for a full refresh; for a time series the
    staged rows not yet published and not already quarantined (until the rules change)."""
    if dataset.full_refresh or ledger is None or staged.empty:
        return staged
    key = list(dataset.schema.primary_key)
    staged_keys = quarantine_keys(staged, key)
    published = set(quarantine_keys(_published_as_text(_key_columns(ledger, dataset), dataset),
                                    key))
    fresh = ~staged_keys.isin(published) & ~staged_keys.isin(quarantined_keys)
    return staged[fresh.to_numpy()]


def _key_columns(ledger: pa.Table, dataset: Dataset) -> pd.DataFrame:
    from odp.publish.changes import as_frame

    return as_frame(ledger, list(dataset.schema.primary_key))


def _published_as_text(ledger: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Key columns of the ledger in the text form the source delivers (for matching)."""
    out = pd.DataFrame(index=ledger.index)
    for name in dataset.schema.primary_key:
        column = ledger[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            out[name] = column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            out[name] = column.astype("string")
    return out


def rules_changed(dataset: Dataset, state: Path) -> bool:
    """Whether the schema or suite changed since the last run (then quarantined rows get
    validated again, and those that pass now are released into the publish)."""
    schema = dataset.definition_path.parent.parent / "schemas" / f"{dataset.name}.json"
    digest = hashlib.sha256(schema.read_bytes() + dataset.suite_path.read_bytes()).hexdigest()
    path = state / "rules" / f"{dataset.name}.sha256"
    previous = path.read_text().strip() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest + "\n")
    return previous is not None and previous != digest


def arrow_memory() -> None:
    """Arrow's buffers (staging, the ledger, Parquet and CSV files) from the C library's
    allocator instead of the mimalloc pyarrow bundles, unless the operator chose one
    (ARROW_DEFAULT_MEMORY_POOL). Measured, 1M-row dataset, +1 % runs alternating on an idle
    2-core machine: 7.8–8.5 s and 0.84–0.86 GB against 8.8–9.8 s and 0.90–0.94 GB — mimalloc
    spent 2.8–4.2 s in the kernel against 1.4–1.8 s (fresh pages for every large table read);
    first runs: the same wall time, 12 % less CPU, 0.05–0.1 GB less at the peak."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def run_dataset(name: str, root: Path, city: City, progress: Progress | None = None,
                dry_run: bool = False, accept_deletes: bool = False) -> RunReport:
    """Run one dataset. `accept_deletes`: an officer accepts, for this run, that a full refresh
    deletes more than `max_delete_share` of the published rows (recorded in the history)."""
    arrow_memory()
    say = progress or (lambda _msg: None)
    state = state_dir(root)
    report = RunReport(run_id=new_run_id(), dataset=name,
                       started=datetime.now(UTC).isoformat(timespec="seconds"))
    began = time.monotonic()
    try:
        dataset = load_dataset(name, root)
        # e.g. a full disk (also when taking the lock): its own exit code, not "unexpected"
        with classified(name, state), dataset_lock(state, name, report.run_id):
            if not dry_run:
                from odp.runs import history

                history.begin(state, report)
            _run_stages(dataset, city, state, report, say, dry_run, accept_deletes)
    except OdpError as exc:
        report.status = ("held-back" if isinstance(exc, GateError)
                         else "locked" if isinstance(exc, LockedError) else "failed")
        report.error = str(exc)
        report.exit_code = exc.exit_code
    except Exception as exc:  # a bug: recorded with its traceback; other datasets still run
        from odp.runs.logs import ensure_file_log

        ensure_file_log(state).exception(f"{name}: unexpected error in run {report.run_id}")
        report.status, report.exit_code = "failed", 1
        report.error = (f"unexpected error: {type(exc).__name__}: {str(exc)[:200]} "
                        "(traceback in the log)")
    finally:
        report.seconds = round(time.monotonic() - began, 2)
        if not dry_run:
            from odp.runs.record import record_run

            record_run(state, city, report)  # SQLite history, log, incidents, alerts
    return report


def _run_stages(dataset: Dataset, city: City, state: Path, report: RunReport, say: Progress,
                dry_run: bool, accept_deletes: bool) -> None:
    from odp.publish.changes import read_ledger, stored_keys

    with _stage(report, say, "extract"):
        extracted = _extract(dataset, state, report)
    if not dry_run and _nothing_new(dataset, city, state, extracted, report):
        return  # report.status "unchanged", and why
    # great-expectations, beside the ledger's read and the split (joined before georeferencing)
    importing = import_in_background()

    with _stage(report, say, "validate"):
        store = QuarantineStore(state)
        ledger = read_ledger(state, dataset.name)
        # The ledger's key hashes (stored beside its rows): the split's lookup and the diff.
        last = _Last(ledger, None if ledger is None or not ledger.num_rows
                     else stored_keys(ledger, list(dataset.schema.primary_key)))
        held = set() if rules_changed(dataset, state) else store.open_keys(dataset.name)
    checked = _checked(dataset, city, state, extracted, (ledger, last.keys), held, store,
                       report, say, importing)
    try:
        _publish(dataset, city, state, extracted, checked, last, store, report, say,
                 (dry_run, accept_deletes))
    finally:
        if checked.on_disk is not None:
            checked.on_disk.remove()


@dataclass
class _Last:
    """The last publish as the run reads it: the ledger, and its key hashes until the diff
    is made (no later step looks a key up: let go then, 80 MB at 10M rows — a +1 % run's
    peak is the ledger's write beside the DataStore load, after the diff)."""

    ledger: LedgerFile | TableLedger | None
    keys: pd.Index | None


class _Checked(NamedTuple):
    """What the validate and georeference stages give the publish stage."""

    part: delta.Split
    located: Georeferenced
    result: ValidationResult
    on_disk: SortedRows | None = None  # validated in parts: the located rows, on disk


def _publish(dataset: Dataset, city: City, state: Path, extracted: Extracted,
             checked: _Checked, last: _Last, store: QuarantineStore, report: RunReport,
             say: Progress, options: tuple[bool, bool]) -> None:
    """The gate and the publish stage. `last`: the ledger and its key hashes; `options`:
    dry run, and whether the officer accepts deletions beyond the guard's share."""
    from odp.publish.guard import guard_settings
    from odp.publish.sync import Sync
    from odp.validate import check_gate, gate_reasons

    part, located, result, on_disk = checked
    ledger = last.ledger
    dry_run, accept_deletes = options
    report.validated, report.valid = result.total, len(result.valid) + result.carried
    report.quarantined, report.warnings = result.rejected_rows, result.warnings
    report.messages = result.messages() + report.messages

    # The gate sees every rejected row: it runs after the last stage that can reject rows.
    keep = None if dry_run else state  # where the gate writes reports/NAME.json
    if gate_reasons(result, dataset):
        check_gate(result, dataset, keep)  # raises GateError: the last good version stays
    with _stage(report, say, "publish"):
        sync = Sync(dataset, city, state, progress=say)
        guard = guard_settings(dataset, city)
        # Rows validated in parts stay on disk for a first publish; compared with a ledger,
        # they are one frame, as the whole validation gives them.
        validated: pd.DataFrame | SortedRows = located.table if on_disk is None else on_disk
        rows = validated
        if on_disk is not None and ledger is not None and ledger.num_rows:
            rows = on_disk.frame()
        if guard.quarantined_rows == "keep-published":
            rows = _keep_last_good(dataset, rows, result, ledger, report)
        changes = sync.diff(rows, ledger, part.carried_keys, last.keys,  # deletion policy
                            part.carried_rows)
        last.keys = None
        check_gate(result, dataset, keep,
                   _publish_reasons(dataset, len(rows) + part.carried, changes, guard,
                                    accept_deletes, report))

        published = sync.run(changes, dry_run=dry_run)
        give_back()  # what the portal's writes and the ledger's, in two threads, freed
        report.plan = published.plan if dry_run else {}
        _release(dataset, store, validated, report.run_id)
        if not dry_run:  # what the next run compares with (odp.unchanged, odp.delta)
            delta.record(dataset, city, state, part, validated, changes.result, extracted)
            unchanged.record(dataset, city, state, extracted, sync.portal)
    report.url = published.url
    report.inserted, report.updated = published.rows_inserted, published.rows_updated
    report.deleted, report.write_calls = published.rows_deleted, published.write_calls
    report.messages += [f"{dataset.name}: {note}" for note in published.notes]
    would_write = dry_run and published.plan.get("would_write")  # counts: what it would do
    report.status = "dry-run" if would_write else "ok" if published.changed else "unchanged"


def _checked(dataset: Dataset, city: City, state: Path, extracted: Extracted,
             published: tuple[pa.Table | None, pd.Index | None], held: set[str],
             store: QuarantineStore, report: RunReport, say: Progress,
             importing: Thread | None = None) -> _Checked:
    """The validate and georeference stages: a large delivery part by part (odp.inparts),
    else whole — for a full refresh only its new and changed rows (odp.delta), the others
    carried over. `importing`: great-expectations' import in the background, joined before
    georeferencing imports its own packages."""
    from odp import inparts

    with _stage(report, say, "validate"):
        parted = inparts.validated(dataset, city, state, extracted, published[0],
                                   report.run_id, store, importing)
        if parted is None:
            part, batch, result = _validate(dataset, city, state, extracted, published, held,
                                            store, report)
    if parted is not None:  # georeferenced part by part: its time is the stage's
        spent = parted.georeference_seconds
        report.stages["validate"] = round(report.stages["validate"] - spent, 3)
        report.stages["georeference"] = round(spent, 3)
        _report_located(dataset, parted.located, report)
        return _Checked(parted.part, parted.located, parted.result, parted.rows)
    with _stage(report, say, "georeference"):
        if importing is not None:
            importing.join()
        located, result = _georeference(dataset, city, batch, result, store, report)
    # The delivered text is the run's largest frame and no later stage reads it.
    del batch
    return _Checked(part.validated(located.table.index), located, result)


def _validate(dataset: Dataset, city: City, state: Path, extracted: Extracted,
              published: tuple[pa.Table | None, pd.Index | None], held: set[str],
              store: QuarantineStore, report: RunReport
              ) -> tuple[delta.Split, pd.DataFrame, ValidationResult]:
    """Validate the rows this run must: for a full refresh the new and changed ones (all of
    them when a rule needs the whole delivery, see odp.delta). `published`: the ledger and
    its key hashes."""
    from odp.validate import validate_batch

    ledger, ledger_keys = published
    history = _series_history(dataset, ledger)

    part = delta.split(dataset, city, state, extracted, ledger).located(ledger_keys)
    batch = _candidates(dataset, part.candidates, ledger, held)
    if not part.carried:
        return part, batch, validate_batch(batch, dataset, report.run_id, store, history=history)
    result = validate_batch(batch, dataset, report.run_id, None, history=history)
    if delta.collides(part, result.valid, list(dataset.schema.primary_key), ledger_keys):
        staged = extracted.table
        part = delta.everything(staged, "a key was delivered twice")
        batch = _candidates(dataset, staged, ledger, held)
        return part, batch, validate_batch(batch, dataset, report.run_id, store, history=history)
    if not result.drift_blocks:  # quarantined as validate_batch does with a store
        errors = result.findings[(result.findings["severity"] == "error")
                                 & result.findings["row"].notna()]
        store.add(dataset.name, report.run_id, errors, batch.reset_index(drop=True))
    delivered = result.total + part.carried
    again = f" and the {part.reread} held back before" if part.reread else ""
    unread = (f" (staging's earlier rows not read: only the "
              f"{len(part.candidates) - part.reread} added{again})" if part.added_only else "")
    report.messages.append(
        f"{dataset.name}: {part.carried} of {part.carried + len(part.candidates)} delivered "
        f"rows are as last published{unread}: validated and georeferenced only the "
        f"{len(batch)} new or changed")
    present = delta.present_in(ledger, part, dataset)  # carried rows' values
    return part, batch, replace(result, carried=part.carried,
                                share_rejected=result.rejected_rows / delivered,
                                present={f: result.present.get(f, 0) + present.get(f, 0)
                                         for f in {*result.present, *present}})


def _series_history(dataset: Dataset, ledger: pa.Table | None) -> pd.DataFrame | None:
    """The published rows' columns an incremental dataset's series rules continue (None: no
    such rules, or a full refresh, whose delivery is the whole series)."""
    from odp.publish.changes import as_frame
    from odp.validate.settings import settings

    series = settings(dataset).series
    if dataset.full_refresh or series is None or ledger is None:
        return None
    return as_frame(ledger, [c for c in dict.fromkeys(series.columns) if c in ledger.column_names])


def _release(dataset: Dataset, store: QuarantineStore, published: pd.DataFrame | SortedRows,
             run_id: str) -> None:
    """Rows validated and published this run close their keys' quarantine entries (the keys
    are spelled out only when the quarantine holds any of the dataset's; rows on disk: their
    key columns are read)."""
    if not len(published) or not store.open_keys(dataset.name):
        return
    key = list(dataset.schema.primary_key)
    if not isinstance(published, pd.DataFrame):
        published = published.key_frame(key)
    store.release(dataset.name, quarantine_keys(_published_as_text(published, dataset), key),
                  run_id)


def _nothing_new(dataset: Dataset, city: City, state: Path, extracted: Extracted,
                 report: RunReport) -> bool:
    """Whether the run can end after extracting (see odp.unchanged); then the report says
    why. Otherwise the mark of the last publish is dropped until this run publishes, and a
    run the source gave nothing new says what it catches up on (e.g. rows a dry run staged)."""
    verdict = unchanged.judge(dataset, city, state, extracted)
    if not verdict.unchanged:
        unchanged.forget(state, dataset.name)
        if not extracted.new_rows:
            report.messages.append(f"{dataset.name}: the source delivered nothing new, but "
                                   f"every stage runs: {verdict.why}")
        return False
    report.status = "unchanged"
    report.url = f"{city.portal_url}/dataset/{dataset.name}"  # as a publishing run names it
    report.messages.append(f"{dataset.name}: unchanged: {verdict.why}")
    return True


def _extract(dataset: Dataset, state: Path, report: RunReport) -> Extracted:
    from odp.extract import extract
    from odp.sources.http import take_downloaded

    take_downloaded(dataset.name)  # whatever an earlier, failed call left
    try:
        extracted = extract(dataset, state)
    finally:
        report.downloaded = take_downloaded(dataset.name)
    report.extracted, report.staged = extracted.new_rows, extracted.staged
    # dlt's load leaves its buffers in reference cycles: freed now, before the ledger is read,
    # not whenever the collector next runs (3M-row dataset, +1 %: 0.25 GB less at the peak).
    # A load of no rows leaves nothing worth a full collection, which walks every object
    # (0.23 s of a 0.5 s run with nothing new once great-expectations is imported: `odp run
    # --all` in one process, dataset after dataset).
    if extracted.new_rows:
        gc.collect()
    return extracted


def _georeference(dataset: Dataset, city: City, batch: pd.DataFrame, result: ValidationResult,
                  store: QuarantineStore, report: RunReport
                  ) -> tuple[Georeferenced, ValidationResult]:
    """Georeference the valid rows; rows it rejects ((0, 0), swapped axes, far outside the
    city) are quarantined and handed to the result, numbered as rows of the delivered batch."""
    from odp.georeference import check_filled, georeference
    from odp.validate.gate import as_delivered, with_located

    located = georeference(result.valid, dataset, city)
    if dataset.georeference:
        check_filled(located.table, dataset)  # a derived field no rule fills: ConfigError
    _report_located(dataset, located, report)
    text = as_delivered(batch, result, dataset)
    result, findings = with_located(result, located, text, dataset)
    if findings is not None:
        store.add(dataset.name, report.run_id, findings, text.reset_index(drop=True))
    return located, result


def _report_located(dataset: Dataset, located: Georeferenced, report: RunReport) -> None:
    report.georeferenced, report.in_city = located.located, located.in_city
    report.messages += [f"{dataset.name}: warning: {w}" for w in located.warnings]


def _keep_last_good(dataset: Dataset, rows: pd.DataFrame, result: ValidationResult,
                    ledger: pa.Table | None, report: RunReport) -> pd.DataFrame:
    """A full refresh: published rows quarantined in this delivery keep their last good
    version instead of vanishing from the public table."""
    import pyarrow as pa

    from odp.publish.changes import as_frame

    if (not dataset.full_refresh or ledger is None or not ledger.num_rows
            or not result.rejected_rows):
        return rows
    errors = result.findings[(result.findings["severity"] == "error")
                             & result.findings["row"].notna()]
    rejected = set(errors["key"].dropna().astype(str))
    key = list(dataset.schema.primary_key)
    ledger_keys = quarantine_keys(_published_as_text(_key_columns(ledger, dataset), dataset), key)
    valid_keys = set(quarantine_keys(_published_as_text(rows, dataset), key)) if len(
        rows) else set()
    wanted = (ledger_keys.isin(rejected) & ~ledger_keys.isin(valid_keys)).to_numpy()
    kept = as_frame(ledger.filter(pa.array(wanted)))  # a filter: see changes._taken
    if kept.empty:
        return rows
    report.kept_last_good = len(kept)
    report.messages.append(f"{dataset.name}: {len(kept)} published row(s) quarantined in this "
                           "delivery keep their last published version")
    columns = [c for c in rows.columns if c in kept.columns]
    return pd.concat([rows, kept[columns].astype(rows[columns].dtypes.to_dict())],
                     ignore_index=True)


def _publish_reasons(dataset: Dataset, rows: int, changes: ChangeSet,
                     guard: GuardSettings, accept: bool, report: RunReport) -> list[str]:
    """Publishing's side of the gate: never empty a published table, never delete more than
    `max_delete_share` of it without the officer's explicit acceptance."""
    from odp.publish.guard import deletion_reasons, empty_reasons
    from odp.validate.settings import settings

    if not dataset.full_refresh:
        return []
    # The current rows of the version the diff was taken against (the ledger, or the
    # portal's own table after an interrupted run).
    published = changes.unchanged + len(changes.changed) + len(changes.deleted)
    reasons = empty_reasons(rows, published, settings(dataset).may_be_empty)
    guarded = deletion_reasons(changes, published, guard, accept=False)
    if guarded and accept:
        report.accepted_deletes = len(changes.deleted)
        report.messages.append(f"{dataset.name}: accepted: {len(changes.deleted)} of {published}"
                               " published rows deleted (--accept-deletes)")
        guarded = []
    return reasons + guarded
