"""One run per dataset at a time: an exclusive `flock` on `STATE/locks/NAME.lock`.

The lock file holds who has it (run id, pid, start) while a run holds it and is emptied when the
run ends cleanly. The kernel drops the `flock` of a killed process (kill -9, OOM, reboot), so
the next run always gets the lock; if it then finds the file still naming a run, that run died
holding it: the lock is *stale*, the next run takes it over (atomically: only one process wins
`flock`) and marks the dead run `killed` in the history.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.errors import LockedError


@dataclass(frozen=True)
class LockState:
    state: str  # free | held | stale
    holder: dict[str, Any]

    def describe(self) -> str:
        if self.state == "free":
            return "free"
        h = self.holder
        return f"{self.state}: run {h.get('run_id', '?')} pid {h.get('pid', '?')} " \
               f"since {h.get('started', '?')}"


def lock_path(state: Path, name: str) -> Path:
    return state / "locks" / f"{name}.lock"


def _read_holder(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {"note": text}
    except json.JSONDecodeError:
        return {}  # the older format (a timestamp, never cleared) names no run


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def inspect(state: Path, name: str) -> LockState:
    """The lock as `odp status` shows it, without touching it (a probe with flock could make a
    starting run fail): free, held by a live process, or stale (its holder died)."""
    path = lock_path(state, name)
    holder = _read_holder(path.read_text()) if path.is_file() else {}
    if not holder:
        return LockState("free", {})
    return LockState("held" if _alive(holder.get("pid")) else "stale", holder)


@contextmanager
def dataset_lock(state: Path, name: str, run_id: str = "") -> Iterator[dict[str, Any]]:
    """Hold the dataset's lock for a run; yields the stale holder taken over ({} if none).
    Raises LockedError (exit 6) when a live run holds it."""
    path = lock_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            h = _read_holder(fh.read())
            who = f"run {h.get('run_id', '?')} (pid {h.get('pid', '?')}, since " \
                  f"{h.get('started', '?')})"
            raise LockedError(f"{name}: another run holds the lock {path}: {who}") from None
        fh.seek(0)
        stale = _read_holder(fh.read())
        if stale:
            from odp.runs import history

            note = (f"killed: pid {stale.get('pid', '?')} died holding the lock; taken over by "
                    f"run {run_id or '?'}")
            if stale.get("run_id"):
                history.mark_killed(state, str(stale["run_id"]), note)
        fh.seek(0)
        fh.truncate()
        try:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            fh.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "started": started}) + "\n")
            fh.flush()
        except OSError as exc:  # e.g. a full disk: name the file (a flush does not)
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        try:
            yield stale
        finally:
            fh.seek(0)
            fh.truncate()  # a clean release: the next run finds an empty file
            fh.flush()
