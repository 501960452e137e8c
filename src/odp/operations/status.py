"""Per dataset: last run, last success, freshness against the schedule's expected interval,
open quarantine, lock — what `odp status` shows and what staleness alerts (check_freshness)
and the cockpit use.
The last error is shown redacted (a row written before redaction existed included); the state
directory's size is reported alongside (`state_size`).
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.operations.schedule import Schedule, dataset_schedule
from odp.redact import redact_text
from odp.runs import history, locks


@dataclass
class DatasetStatus:
    dataset: str
    schedule: str
    last_run: str | None  # start, ISO UTC
    last_status: str | None
    last_error: str
    last_success: str | None
    age_seconds: float | None  # since the last successful run ended
    expected_seconds: float | None  # the schedule's interval around now
    stale_after_seconds: float | None
    freshness: str  # fresh | stale | never | manual
    open_quarantine: int  # rows (keys) with open findings
    lock: str  # free | held | stale
    lock_holder: dict[str, Any]
    next_run: str | None
    state_bytes: int | None = None  # the whole state directory (set by `odp status`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def healthy(self) -> bool:
        return self.freshness != "stale" and self.last_status in (None, *history.SUCCESS)


def freshness(schedule: Schedule, last_success_end: datetime | None, now: datetime
              ) -> tuple[str, float | None, float | None, float | None]:
    """(label, age, expected, limit) in seconds."""
    expected = schedule.expected_interval(now)
    limit = schedule.stale_limit(now)
    age = (now - last_success_end).total_seconds() if last_success_end else None
    if not schedule.defined:
        label = "manual"
    elif age is None:
        label = "never"
    else:
        label = "stale" if limit is not None and age > limit.total_seconds() else "fresh"
    return (label, age, expected.total_seconds() if expected else None,
            limit.total_seconds() if limit else None)


def _quarantine_rows(state: Path, name: str) -> int:
    from odp.validate import QuarantineStore

    table = QuarantineStore(state).list(name)
    return int(table["key"].nunique()) if not table.empty else 0


def dataset_status(root: Path, state: Path, city: Any, name: str,
                   now: datetime | None = None) -> DatasetStatus:
    from odp.spec import load_dataset

    now = now or datetime.now(UTC)
    schedule = dataset_schedule(load_dataset(name, root), city.timezone)
    summary = history.summary(state, name)
    last, good = summary.last_run, summary.last_success
    good_end = history.parse_time((good or {}).get("ended") or (good or {}).get("started"))
    label, age, expected, limit = freshness(schedule, good_end, now)
    lock = locks.inspect(state, name)
    upcoming = schedule.next_runs(now, 1, summary.last_attempt_started)
    return DatasetStatus(
        dataset=name, schedule=schedule.describe(),
        last_run=(last or {}).get("started"), last_status=(last or {}).get("status"),
        last_error=redact_text((last or {}).get("error") or ""),
        last_success=(good or {}).get("started"), age_seconds=age, expected_seconds=expected,
        stale_after_seconds=limit, freshness=label,
        open_quarantine=_quarantine_rows(state, name), lock=lock.state,
        lock_holder=lock.holder,
        next_run=upcoming[0].isoformat(timespec="seconds") if upcoming else None,
    )


def all_status(root: Path, state: Path, city: Any, now: datetime | None = None
               ) -> list[DatasetStatus]:
    from odp.spec import dataset_names

    return [dataset_status(root, state, city, n, now) for n in dataset_names(root)]


def due_datasets(root: Path, state: Path, city: Any, now: datetime | None = None) -> list[str]:
    """Datasets whose schedule says they should run now (none ran since their latest slot)."""
    from odp.spec import dataset_names, load_dataset

    now = now or datetime.now(UTC)
    due = []
    for name in dataset_names(root):
        schedule = dataset_schedule(load_dataset(name, root), city.timezone)
        if schedule.is_due(now, history.summary(state, name).last_attempt_started):
            due.append(name)
    return due


def state_size(state: Path) -> int:
    """Bytes of every file under the state directory (symbolic links not followed)."""
    total = 0
    for folder, _dirs, files in os.walk(state):
        for name in files:
            with suppress(OSError):  # removed while walking (a run in progress)
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def human_size(nbytes: int) -> str:
    """1.2 MB, 340 kB, 12 B (decimal units, as `odp run` prints downloads)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} B"


def human_age(seconds: float | None, whole: bool = False) -> str:
    """1.5 h, 19 min, 6 d; `whole` units only (for narrow tables): 2 h."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            if whole:
                return f"{round(seconds / size)} {unit}"
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"


def check_freshness(root: Path, state: Path, city: Any) -> list[Any]:
    """Open or close `stale` incidents for every dataset and send what is owed."""
    from odp.runs import alerts
    from odp.runs.logs import ensure_file_log

    log = ensure_file_log(state)
    for st in all_status(root, state, city):
        if st.freshness in ("stale", "fresh"):
            message = (f"last success {human_age(st.age_seconds)} ago, expected every "
                       f"{human_age(st.expected_seconds)} ({st.schedule})")
            alerts.note_freshness(state, st.dataset, st.freshness == "stale", message)
    try:
        return alerts.dispatch(state, alerts.Channels.from_city(city))
    except Exception as exc:  # noqa: BLE001
        log.error(f"alerts failed: {exc}", extra={"event": "alert-failed"})
        return []
