"""`odp ARGS` with one kill point armed — test scaffolding, kept out of the shipped engine.

    python -m tests.faults.wrapper run NAME [--json]

The environment variable ODP_FAULT_KILL_AT (read only here) names the point, optionally with
the occurrence: `ledger.after`, `portal.before:datastore_upsert#2`. This process then wraps the
engine's (or dlt's) function and sends itself SIGKILL at that moment, as `kill -9` or the OOM
killer would: no `finally`, no atexit, no flush. Before dying it writes one line
`fault: killed at POINT` to stderr (so the harness can tell a kill from a crash).

Points (`before`/`after` = around the call, `enter` = at the start):
  dlt.extracted         dlt's extract committed the load package (state saved with it)
  dlt.normalized        dlt's normalize finished the package
  dlt.inserted          DuckDB's INSERT of a load job committed; the job not yet marked done
  dlt.job_marked        the job's pending transition saved; not yet moved to completed
  dlt.followup          a follow-up SQL job (replace/merge from the staging dataset) committed
  dlt.loaded            every job done and the load recorded; the package not yet archived
  validate.enter        odp.validate.validate_batch
  georeference.enter    odp.georeference.georeference
  portal.before:ACTION  odp.publish.portal.Portal.call for CKAN action ACTION (or `*`)
  portal.after:ACTION   the same, after CKAN answered
  copy.committed        odp.publish.datastore.CopyLoader.load returned (its transaction committed)
  api.loaded            odp.publish.datastore.ApiLoader.load returned
  ledger.before         odp.publish.changes.commit_ledger
  ledger.after

Not a kill: `pg.restart_mid_copy` restarts the local portal's PostgreSQL (`pg_ctl stop -m fast`,
then start, as `odp portal` does) while odp's first COPY … FROM STDIN of the run streams rows —
after the first chunk went in, before the COPY ended. The run goes on and meets the broken
connection; stderr gets `fault: PostgreSQL restarted mid-COPY`.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

ENV = "ODP_FAULT_KILL_AT"
PARTS_ENV = "ODP_FAULT_PART_ROWS"  # (read only here) a delivery of more rows goes in parts
MARK = "fault: killed at "


def die(point: str) -> None:
    sys.stderr.write(f"{MARK}{point}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _resolve(target: str) -> tuple[Any, str]:
    """`pkg.module:Class.attr` or `pkg.module:function` → (owner, attribute name)."""
    module, _, path = target.partition(":")
    owner: Any = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


def _replace_everywhere(original: Any, replacement: Any) -> None:
    """Also rebind names that `from x import f` copied into already imported odp modules."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("odp") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)


def wrap(target: str, when: str, point: str, occurrence: int,
         only: Callable[..., bool] | None = None) -> None:
    owner, name = _resolve(target)
    original = getattr(owner, name)
    seen = {"n": 0}

    def hit(args: tuple, kwargs: dict) -> bool:
        if only is not None and not only(*args, **kwargs):
            return False
        seen["n"] += 1
        return seen["n"] == occurrence

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fire = hit(args, kwargs)
        if fire and when == "before":
            die(point)
        result = original(*args, **kwargs)
        if fire and when == "after":
            die(point)
        return result

    setattr(owner, name, wrapper)
    if isinstance(owner, type(sys)):
        _replace_everywhere(original, wrapper)


def _action_is(action: str) -> Callable[..., bool]:
    return lambda _self, called, *a, **k: action in ("*", called)


POINTS: dict[str, tuple[str, str]] = {
    "dlt.extracted": ("dlt.pipeline.pipeline:Pipeline.extract", "after"),
    "dlt.normalized": ("dlt.pipeline.pipeline:Pipeline.normalize", "after"),
    "dlt.inserted": ("dlt.destinations.impl.duckdb.duck:DuckDbCopyJob.run", "after"),
    "dlt.job_marked": ("dlt.common.storages.load_package:PackageStorage.complete_job", "before"),
    "dlt.followup": ("dlt.destinations.job_client_impl:SqlLoadJob.run", "after"),
    "dlt.loaded": ("dlt.common.storages.load_storage:LoadStorage.complete_load_package",
                   "before"),
    "pending.finished": ("odp.extract:finish_pending", "after"),
    "validate.enter": ("odp.validate:validate_batch", "before"),
    "georeference.enter": ("odp.georeference:georeference", "before"),
    "copy.committed": ("odp.publish.datastore:CopyLoader.load", "after"),
    "api.loaded": ("odp.publish.datastore:ApiLoader.load", "after"),
    "ledger.before": ("odp.publish.changes:commit_ledger", "before"),
    "ledger.after": ("odp.publish.changes:commit_ledger", "after"),
}


def restart_postgresql() -> None:
    """Stop and start the local portal's PostgreSQL, under the portal's own lock (so a parallel
    `odp portal start` neither races nor restarts it on its own)."""
    from odp_dev.portal import settings, stack

    layout = stack._Layout(stack.portal_home())
    postgres = stack._Postgres(layout, settings.ports().postgresql)
    with stack._locked(layout):
        postgres.stop()
        postgres.start(lambda _message: None)


def _restart_mid_copy() -> None:
    from odp.publish.datastore import CopyLoader

    original = CopyLoader._copy
    done = {"restarted": False}

    def chunks(data: Any) -> Any:
        if isinstance(data, bytes):
            data = [data[: len(data) // 2], data[len(data) // 2 :]]
        for i, chunk in enumerate(data):
            if i == 1 and not done["restarted"]:
                _restart_now(done)
            yield chunk
        if not done["restarted"]:  # a single chunk: the COPY has not ended yet
            _restart_now(done)

    @functools.wraps(original)
    def copy(cur: Any, table: str, columns: list[str], data: Any) -> None:
        original(cur, table, columns, chunks(data) if not done["restarted"] else data)

    CopyLoader._copy = staticmethod(copy)


def _restart_now(done: dict[str, bool]) -> None:
    done["restarted"] = True
    restart_postgresql()
    sys.stderr.write("fault: PostgreSQL restarted mid-COPY\n")
    sys.stderr.flush()


def arm(spec: str) -> None:
    if spec == "pg.restart_mid_copy":
        importlib.import_module("odp.run")
        _restart_mid_copy()
        return
    point, _, nth = spec.partition("#")
    occurrence = int(nth or 1)
    # the engine modules whose `from … import` names must be rebound are imported first
    for module in ("odp.run", "odp.publish.sync", "odp.publish.datastore", "odp.validate",
                   "odp.georeference"):
        importlib.import_module(module)
    if point.startswith(("portal.before:", "portal.after:")):
        head, _, action = point.partition(":")
        wrap("odp.publish.portal:Portal.call", head.split(".")[1], spec, occurrence,
             only=_action_is(action))
        return
    if point not in POINTS:
        raise SystemExit(f"{ENV}: unknown kill point {point!r} (known: {', '.join(POINTS)}, "
                         "portal.before:ACTION, portal.after:ACTION)")
    target, when = POINTS[point]
    wrap(target, when, spec, occurrence)


def main(argv: list[str]) -> int:
    spec = os.environ.get(ENV, "").strip()
    if spec:
        arm(spec)
    if rows := os.environ.get(PARTS_ENV, "").strip():  # validated in parts of this many rows
        importlib.import_module("odp.inparts").PART_ROWS = int(rows)
    from odp.cli import main as odp_main

    return odp_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
