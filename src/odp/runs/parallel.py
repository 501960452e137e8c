"""Many datasets at once: `odp run --all` / `--due` run independent datasets side by side.

A fixed number of worker processes (`--workers N`; odp.toml `[run] workers`; default one per
CPU core) each run one dataset at a time with the one run function, `odp.run.run_dataset`, so
each run takes its own dataset lock (odp.runs.locks) and writes its own history row. A
dataset that reads other datasets of the same invocation (`derived`, `situation`: their
`[source.inputs]`, see odp.sources.derived) starts only after each of those has finished —
successfully or not, as when they run one after the other; every other dataset starts as soon as
a worker is free, the longest chains first (each dataset's last run time in the history plus
that of the datasets waiting for it), so no worker is left alone with a long run at the end.

Processes, not threads: great-expectations keeps its data context in a process-wide singleton
(`project_manager`, set by every `gx.get_context`), so two validations in threads of one process
would see each other's context; pandas, GX and geopandas hold the GIL for much of validation
and georeferencing, so threads would not use the second core anyway. Workers are forked by
multiprocessing's fork server, which imports the run's libraries once (odp.runs.warm:
dlt, DuckDB, pandas, GX, geopandas; single-threaded, so forking it is safe) — every worker
starts with them, as a sequential run imports them once for all its datasets (spawned workers
paid ~3.5 s of CPU each again, which made a run of datasets with nothing new slower in
parallel). Each job carries the invocation's environment, working directory and umask (the
fork server keeps those of the moment it started). Workers are reused for further datasets; a
worker that dies (killed, out of memory) fails only the dataset it was running, and the next
dataset gets a new worker.

The parent only schedules and prints: each dataset's outcome arrives whole when it finishes, so
the output stays one block per dataset (never interleaved), in the order they finish; `--json`
lists the reports in run order as before. A worker's own stdout goes to stderr, so nothing
a library prints can reach the JSON document on stdout.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from odp.errors import ConfigError

# A task runs one dataset in a worker: task(name, step, *args) -> a picklable result, where
# step(text) reports the stage it is in. It must be a module-level function (pickled by name).
Task = Callable[..., Any]
STOP_SECONDS = 10.0  # an idle worker told to stop has this long before it is terminated
# Below this much expected run time per worker, another worker costs more than it saves: the
# fork server it needs imports the run's libraries first (odp.toml [run] seconds_per_worker,
# where the measurement is).
SECONDS_PER_WORKER = 4.0
WARM = "odp.runs.warm"  # what the fork server imports once for every worker


@dataclass(frozen=True)
class Finished:
    """One dataset's run as the worker saw it: its result (None when the worker failed or
    died: then `error` says why), and wall-clock start and end (time.time()) in the worker."""

    name: str
    result: Any
    error: str
    started: float
    finished: float
    pid: int


# --- settings -------------------------------------------------------------------------------


def worker_count(root: Path, requested: int | None, names: Sequence[str]) -> int:
    """How many datasets run at once: `--workers N`, else odp.toml's `[run] workers` (0 or no
    setting: one per CPU core) but no more than there is work for — one worker per
    `[run] seconds_per_worker` of expected run time (odp.runs.history: each dataset's
    last run; one never run counts as that much) —; never more than there are datasets."""
    explicit = requested is not None
    if requested is None:
        requested = int(run_setting(root, "workers", 0))
    if requested < 0:
        raise ConfigError(f"--workers {requested}: give 1 or more (0: one per CPU core)")
    workers = max(1, min(requested or os.cpu_count() or 1, len(names)))
    if explicit or workers == 1:
        return workers
    from odp.spec import state_dir

    per = run_setting(root, "seconds_per_worker", SECONDS_PER_WORKER)
    seconds = last_seconds(state_dir(root), names)
    expected = sum(seconds.get(name, per) for name in names)
    return max(1, min(workers, int(expected // per) if per else workers))


def run_setting(root: Path, key: str, default: float) -> float:
    """A number of odp.toml's `[run]` table (≥ 0), or `default` when not set."""
    path = root / "odp.toml"
    if not path.is_file():
        return default
    try:
        with path.open("rb") as fh:
            value = tomllib.load(fh).get("run", {}).get(key, default)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    kinds = int if key == "workers" else int | float
    if not isinstance(value, kinds) or isinstance(value, bool) or value < 0:
        what = "a whole number ≥ 0 (0: one per CPU core)" if key == "workers" else "a number ≥ 0"
        raise ConfigError(f"{path}: [run] {key}: give {what}, not {value!r}")
    return value


def inputs_among(names: Sequence[str], root: Path) -> dict[str, list[str]]:
    """For each dataset, those of its inputs that run in the same invocation."""
    from odp.sources.derived import inputs_of
    from odp.spec import load_dataset

    wanted = set(names)
    return {n: [i for i in inputs_of(load_dataset(n, root)) if i in wanted] for n in names}


def longest_first(names: Sequence[str], needs: Mapping[str, Sequence[str]],
                  seconds: Mapping[str, float]) -> list[str]:
    """`names` with the longest remaining chain first, so no worker is left with a long run
    at the end while the others idle: each dataset's last run time plus the longest chain of
    datasets waiting for it (its critical path). A dataset never run counts as the mean of the
    known times; ties keep the given order (run order)."""
    known = [seconds[n] for n in names if n in seconds]
    default = sum(known) / len(known) if known else 0.0
    waiting = {n: [m for m in names if n in needs.get(m, ())] for n in names}
    chain: dict[str, float] = {}

    def length(name: str, seen: frozenset[str]) -> float:
        if name not in chain:
            after = [length(m, seen | {name}) for m in waiting[name] if m not in seen]
            chain[name] = seconds.get(name, default) + max(after, default=0.0)
        return chain[name]

    return sorted(names, key=lambda n: -length(n, frozenset()))


def last_seconds(state: Path, names: Sequence[str]) -> dict[str, float]:
    """Each dataset's latest run time in the history (datasets never run are left out)."""
    from odp.runs import history

    found = {}
    for name in names:
        runs = [r for r in history.runs(state, name, limit=3) if r["seconds"]]
        if runs:
            found[name] = float(runs[0]["seconds"])
    return found


# --- the worker side ------------------------------------------------------------------------


def _serve(conn: Connection, task: Task) -> None:
    """A worker's loop: run the datasets it is given until told to stop (None) or the parent
    is gone. Ctrl-C on a terminal reaches the workers too: the run in hand still writes its
    history row (as failed, odp.run's bookkeeping) and the worker ends without a traceback;
    the parent says `interrupted`."""
    os.dup2(2, 1)  # stray prints of libraries go to stderr: stdout is the parent's (--json)
    with contextlib.suppress(KeyboardInterrupt):
        _loop(conn, task)


def _loop(conn: Connection, task: Task) -> None:
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        name, args, setting = job
        _adopt(setting)
        started = time.time()

        def step(text: str, name: str = name) -> None:
            conn.send(("step", name, text))

        try:
            result, error = task(name, step, *args), ""
        except Exception as exc:  # noqa: BLE001 — the run function's own bug: that dataset only
            result, error = None, f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}"
        conn.send(("done", Finished(name, result, error, started, time.time(), os.getpid())))


@dataclass(frozen=True)
class _Setting:
    """What a job runs in: the invocation's environment, working directory and umask."""

    env: dict[str, str]
    cwd: str
    umask: int

    @classmethod
    def now(cls) -> _Setting:
        mask = os.umask(0o077)
        os.umask(mask)
        return cls(dict(os.environ), os.getcwd(), mask)


def _adopt(setting: _Setting) -> None:
    if dict(os.environ) != setting.env:
        os.environ.clear()
        os.environ.update(setting.env)
    os.chdir(setting.cwd)
    os.umask(setting.umask)


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process (fork server context)
    conn: Connection
    name: str = ""  # the dataset it runs now, "" when idle
    given: float = 0.0

    @classmethod
    def start(cls, ctx: Any, task: Task) -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, task), daemon=True,
                              name="odp-run-worker")
        process.start()
        child.close()  # the parent's copy: the worker's death then reads as EOF
        return cls(process, parent)

    def give(self, name: str, args: tuple[Any, ...], setting: _Setting) -> None:
        self.name, self.given = name, time.time()
        self.conn.send((name, args, setting))

    def died(self) -> Finished:
        self.process.join(timeout=STOP_SECONDS)
        code = self.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return Finished(self.name, None, f"the worker process running it died ({how})",
                        self.given, time.time(), self.process.pid or 0)

    def stop(self) -> None:
        if self.name:  # still running a dataset (an interrupted invocation)
            self.process.terminate()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


# --- the scheduler --------------------------------------------------------------------------


def _ready(pending: list[str], needs: Mapping[str, Sequence[str]], done: Mapping[str, Any],
           running: int, slots: int) -> list[str]:
    """The pending datasets to start now, in their order: those whose inputs all finished,
    as many as there are free slots. Inputs in a cycle would wait for ever: when nothing runs
    and nothing is ready, the first pending dataset goes (as run_order keeps a cycle as
    given)."""
    ready = [n for n in pending if all(i in done for i in needs.get(n, ()))]
    if not ready and not running and pending:
        ready = pending[:1]
    return ready[:max(0, slots)]


class _Scheduler:
    def __init__(self, workers: int, task: Task, args: tuple[Any, ...],
                 on_step: Callable[[str, str], None] | None,
                 on_done: Callable[[Finished], None] | None, preload: Sequence[str]) -> None:
        self.size, self.task, self.args = workers, task, args
        self.on_step, self.on_done = on_step, on_done
        self.ctx = multiprocessing.get_context("forkserver")
        if preload:  # takes effect when this process starts its fork server (once)
            self.ctx.set_forkserver_preload(list(preload))
        self.setting = _Setting.now()
        self.busy: dict[Connection, _Worker] = {}
        self.idle: list[_Worker] = []
        self.done: dict[str, Finished] = {}

    def run(self, names: Sequence[str], needs: Mapping[str, Sequence[str]]
            ) -> dict[str, Finished]:
        pending = list(dict.fromkeys(names))
        try:
            while pending or self.busy:
                for name in _ready(pending, needs, self.done, len(self.busy),
                                   self.size - len(self.busy)):
                    pending.remove(name)
                    self._give(name)
                for conn in wait(list(self.busy)):
                    self._receive(self.busy[conn])  # type: ignore[index]
        finally:
            for worker in [*self.idle, *self.busy.values()]:
                worker.stop()
        return self.done

    def _give(self, name: str) -> None:
        """Hand the dataset to an idle worker (one that died while idle is replaced)."""
        worker = self.idle.pop(0) if self.idle else _Worker.start(self.ctx, self.task)
        try:
            worker.give(name, self.args, self.setting)
        except OSError:  # its pipe is gone: the process died between two datasets
            worker.name = ""
            worker.stop()
            worker = _Worker.start(self.ctx, self.task)
            worker.give(name, self.args, self.setting)
        self.busy[worker.conn] = worker

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):  # the worker died: its dataset failed, the others go on
            self.busy.pop(worker.conn)
            self._finish(worker.died())
            worker.name = ""
            worker.stop()
            return
        if message[0] == "step":
            if self.on_step is not None:
                self.on_step(message[1], message[2])
            return
        self.busy.pop(worker.conn)
        worker.name = ""
        self.idle.append(worker)
        self._finish(message[1])

    def _finish(self, finished: Finished) -> None:
        self.done[finished.name] = finished
        if self.on_done is not None:
            self.on_done(finished)


def run_parallel(names: Sequence[str], needs: Mapping[str, Sequence[str]], workers: int,
                 task: Task, args: tuple[Any, ...] = (),
                 on_step: Callable[[str, str], None] | None = None,
                 on_done: Callable[[Finished], None] | None = None,
                 preload: Sequence[str] = ()) -> dict[str, Finished]:
    """Run `task(name, step, *args)` for each name in `workers` worker processes, a name only
    after every name it `needs` has finished. `on_step(name, text)` hears each stage,
    `on_done(finished)` each dataset as it finishes (in the parent, one at a time).
    `preload`: modules the fork server imports once for all workers. Returns every name's
    Finished."""
    return _Scheduler(workers, task, args, on_step, on_done, preload).run(names, needs)


# --- datasets -------------------------------------------------------------------------------


@functools.cache
def served_city(root: str) -> Any:
    """The served city, loaded once per process running datasets for a scheduler (a worker
    here, a Dagster step), and that process's logging: the state's log file only, with the
    city's API token among the secrets redacted."""
    from odp.runs.logs import start_logging
    from odp.spec import load_city

    city = load_city(Path(root))
    start_logging(Path(root), city, console=False)
    return city


def run_one(name: str, step: Callable[[str], None], root: str, dry_run: bool,
            accept_deletes: bool) -> Any:
    """A worker's task: the one run function for one dataset."""
    from odp.run import run_dataset

    return run_dataset(name, Path(root), served_city(root), step, dry_run=dry_run,
                       accept_deletes=accept_deletes)


def report_of(finished: Finished, state: Path) -> Any:
    """The dataset's RunReport; for a worker that failed or died, a failed one (exit 1) naming
    why, with the run id its lock file names when the dead worker held the lock."""
    from odp.run import RunReport, new_run_id
    from odp.runs.locks import inspect

    if finished.result is not None:
        return finished.result
    holder = inspect(state, finished.name).holder
    run_id = str(holder["run_id"]) if holder.get("pid") == finished.pid and holder.get(
        "run_id") else new_run_id()
    note = " (its lock is taken over by the next run)" if holder.get("pid") == finished.pid else ""
    return RunReport(run_id=run_id, dataset=finished.name, status="failed", exit_code=1,
                     seconds=round(finished.finished - finished.started, 2),
                     error=f"{finished.error}{note}")


class _Board:
    """On a terminal: one status line naming the datasets running and their stage."""

    def __init__(self, console: Any) -> None:
        self.status = console.status("starting workers") if console is not None else None
        self.stages: dict[str, str] = {}

    def step(self, name: str, text: str) -> None:
        self.stages[name] = text
        self._show()

    def done(self, name: str) -> None:
        self.stages.pop(name, None)
        self._show()

    def _show(self) -> None:
        if self.status is not None:
            self.status.update(" · ".join(f"[bold]{n}[/bold]: {s}"
                                          for n, s in self.stages.items()) or "…")


def run_datasets(names: Sequence[str], root: Path, workers: int, show: Callable[[Any], None],
                 console: Any = None, dry_run: bool = False, accept_deletes: bool = False
                 ) -> list[Any]:
    """Run the datasets `workers` at a time, derived ones after their inputs, the longest
    chains (by the history's last run times) first; `show(report)` prints each one's outcome
    when it finishes. Returns the reports in the order of `names`."""
    from odp.spec import state_dir

    state = state_dir(root)
    board = _Board(console)
    reports: dict[str, Any] = {}

    def done(finished: Finished) -> None:
        board.done(finished.name)
        reports[finished.name] = report_of(finished, state)
        show(reports[finished.name])

    if board.status is not None:
        board.status.start()
    try:
        needs = inputs_among(names, root)
        run_parallel(longest_first(names, needs, last_seconds(state, names)), needs, workers,
                     run_one, (str(root), dry_run, accept_deletes), board.step, done, [WARM])
    finally:
        if board.status is not None:
            board.status.stop()
    return [reports[n] for n in names]
