"""Fault harness: `odp run NAME` in a subprocess, killed at a named point (tests/faults/wrapper.py)
or at a random moment (a timer here), with CKAN behind a failing proxy or a failing source; then
the source changes, a plain run follows, and convergence is checked:

- the plain run exits 0 (never 6: no lock left blocking);
- the DataStore table equals that of a clean reference run of the same delivery into a second
  dataset (every schema column), with no duplicate keys;
- no `odp_stage_%` table is left in the DataStore database, no staged ledger beside the ledger;
- staging holds exactly the delivery's keys (source duplicates included), nothing twice;
- a reader polling `datastore_search` during the runs never saw an empty table or a row count
  no published version had (a half-applied update).

Deliveries are variants of the real VVO stop list (tests/recordings/transit_vvo), served by the
replay server through `override`; `constructed_register` builds a large one of the same shape.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, REPO, cli_env, make_project

REGISTER = "transit-stops-vvo"
SOURCE_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
              "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")
SOURCE_FILE = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"
KEY = "stop_id"
RAW_KEY = "Nummer"
KILL_ENV = "ODP_FAULT_KILL_AT"  # read only by tests/faults/wrapper.py
PG_RESTART = "pg.restart_mid_copy"  # not a kill: wrapper.py restarts PostgreSQL mid-COPY
PG_RESTARTED = "fault: PostgreSQL restarted mid-COPY"

# Named kill points (see wrapper.py); the fast suite picks a few, bench/faults.py runs them all.
NAMED_POINTS = [
    "dlt.extracted", "dlt.normalized", "dlt.inserted", "dlt.job_marked", "dlt.followup",
    "dlt.loaded", "validate.enter", "georeference.enter",
    "portal.before:package_create", "portal.after:package_create",
    "portal.before:resource_create", "portal.after:resource_create",
    "portal.before:datastore_create", "portal.after:datastore_create",
    "portal.before:resource_patch", "portal.after:resource_patch",
    "portal.before:package_patch", "portal.after:package_patch",
    "portal.before:datastore_upsert", "portal.after:datastore_upsert",
    "portal.after:datastore_delete",
    "copy.committed", "api.loaded", "ledger.before", "ledger.after",
]
# points only one DataStore path reaches
PATH_ONLY = {"copy.committed": "copy", "api.loaded": "api",
             "portal.before:datastore_upsert": "api", "portal.after:datastore_upsert": "api",
             "portal.after:datastore_delete": "api"}


# --------------------------------------------------------------------------- deliveries


def base_lines() -> tuple[str, list[str]]:
    header, *rows = SOURCE_FILE.read_text(encoding="utf-8").splitlines()
    return header, rows


def variant(k: int, lines: tuple[str, list[str]] | None = None, shrink: int = 0) -> bytes:
    """Delivery number k of the register: the real file with 4 rows left out (a window moving
    with k), 10 stop names changed and k + 2 stops added — so each version has its own row
    count, and an update applied halfway shows a count no version has. `shrink` more rows
    left out make a delivery that removes more rows than it adds."""
    header, rows = lines or base_lines()
    rows = list(rows)
    n = len(rows)
    start = 10 + (k * 4) % (n - 200)
    if shrink:
        del rows[start + 4 : start + 4 + shrink]
    plain = [i for i, line in enumerate(rows) if '"' not in line and line.count(";") == 8]
    first = 100 + (k * 10) % (len(plain) - 300)
    changed = set(plain[first:first + 10])
    out = []
    for i, line in enumerate(rows):
        if start <= i < start + 4:
            continue
        if i in changed:
            cells = line.split(";")
            cells[2] = f"{cells[2]} [{k}]"
            line = ";".join(cells)
        out.append(line)
    template = rows[0].split(";")
    for i in range(k + 2):
        cells = list(template)
        cells[0] = f"de:14612:{900000 + k * 100 + i}"
        cells[1] = f"Dresden Testhalt {k}-{i}"
        cells[2] = f"Testhalt {k}-{i}"
        out.append(";".join(cells))
    return ("\n".join([header, *out]) + "\n").encode("utf-8")


def constructed_register(rows: int, k: int = 0, shrink: int = 0) -> bytes:
    """CONSTRUCTED: a register of `rows` stops in the VVO file's exact shape (columns, `;`,
    decimal commas, fare-zone codes), built deterministically by cycling through the real rows
    with new ids, numbered names and coordinates shifted by a few metres. Delivery k changes
    the same way `variant` does (k-dependent rows left out, renamed, added)."""
    header, real = base_lines()
    cells = [line.split(";") for line in real if '"' not in line and line.count(";") == 8]
    out = []
    for i in range(rows):
        c = list(cells[i % len(cells)])
        c[0] = f"de:14612:{1_000_000 + i}"
        c[1] = f"{c[1]} #{i}"
        for j in (7, 8):
            if c[j]:
                value = float(c[j].replace(",", ".")) + ((i * 7919) % 1000) * 1e-6
                c[j] = f"{value:.6f}".replace(".", ",")
        out.append(";".join(c))
    return variant(k, (header, out), shrink)


def delivery_keys(body: bytes) -> list[str]:
    frame = pd.read_csv(io.BytesIO(body), sep=";", dtype=str, keep_default_na=False)
    return sorted(frame[RAW_KEY].str.strip())


# --------------------------------------------------------------------------- runs


@dataclass
class RunResult:
    rc: int
    killed: bool
    point: str
    seconds: float
    stdout: str
    stderr: str

    def tail(self, n: int = 400) -> str:
        return (self.stdout + self.stderr)[-n:]


@dataclass
class Reader:
    """Polls `datastore_search` (limit 0) of a table while runs go on: records each total."""
    url: str
    resource_id: str
    interval: float = 0.05
    totals: list[int] = field(default_factory=list)
    errors: int = 0
    slowest: float = 0.0  # seconds of the slowest answer (a reader waiting on a lock)
    token: str | None = None  # to read a private dataset's table

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        session = requests.Session()
        if self.token:
            session.headers["Authorization"] = self.token
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                answer = session.post(f"{self.url}/api/3/action/datastore_search",
                                      json={"resource_id": self.resource_id, "limit": 0},
                                      timeout=60).json()
                self.slowest = max(self.slowest, time.monotonic() - began)
                if answer.get("success"):
                    self.totals.append(int(answer["result"]["total"]))
                else:
                    self.errors += 1
            except (requests.RequestException, ValueError):
                self.errors += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def violations(self, allowed: set[int]) -> list[str]:
        seen = sorted(set(self.totals))
        bad = [t for t in seen if t == 0 or t not in allowed]
        return [f"reader saw {t} rows (published versions: {sorted(allowed)})" for t in bad]


def ckan_action(url: str, action: str, payload: dict[str, Any], token: str,
                wait: float = 180.0) -> dict[str, Any]:
    """A CKAN action called by the harness itself; a portal being restarted (by a parallel
    `odp portal start` after a configuration change) is waited for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return requests.post(f"{url}/api/3/action/{action}", json=payload, timeout=30,
                                 headers={"Authorization": token}).json()
        except (requests.ConnectionError, ValueError):  # refused, or a proxy's HTML page
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def datastore_db_url(portal_url: str) -> str:
    from odp_dev.portal.stack import datastore_write_url

    url = os.environ.get("ODP_DATASTORE_WRITE_URL") or datastore_write_url()
    if not url:
        raise RuntimeError("the DataStore database of the local portal is not known")
    return url


class FaultProject:
    """One isolated dataset (a copy of `dataset` under a unique name), its state, a replay
    server, and the way its runs load the DataStore (`copy` or `api`)."""

    def __init__(self, tmp: Path, portal: Any, *, dataset: str = REGISTER, load: str = "copy",
                 timeout: float = 900) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.root, names = make_project(tmp, [dataset])
        self.name = names[dataset]
        self.state = tmp / "state"
        self.portal, self.load, self.timeout = portal, load, timeout
        self.replay = ReplayServer(RECORDINGS).start()
        self.env = cli_env(self.root, self.state, self.replay.url, portal)
        self.env.update({"ODP_DATASTORE_LOAD": load, "ODP_HTTP_MAX_RETRY_DELAY": "1",
                         "PYTHONPATH": os.pathsep.join(
                             p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)})
        self.env.pop(KILL_ENV, None)
        self.db_url = datastore_db_url(portal.url)
        self.body: bytes | None = None
        self.rows = 0  # > 0: deliveries are constructed registers of this many rows

    def close(self) -> None:
        self.replay.stop()

    # -- the source

    def deliver(self, body: bytes) -> None:
        self.body = body
        self.replay.clear_faults()
        self.replay.override(SOURCE_URL, 200, body, "text/csv; charset=utf-8")

    # -- runs

    def run(self, kill: str | None = None, kill_after: float | None = None,
            ckan_url: str | None = None, extra_env: dict[str, str] | None = None) -> RunResult:
        """`odp run NAME --json` through the wrapper; `kill` arms a named point, `kill_after`
        sends SIGKILL from here after that many seconds (if the run still goes on)."""
        env = dict(self.env)
        if kill:
            env[KILL_ENV] = kill
        if ckan_url:
            env["ODP_CKAN_URL"] = ckan_url
            env["ODP_DATASTORE_WRITE_URL"] = self.db_url  # COPY still goes to the real DB
        env.update(extra_env or {})
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tests.faults.wrapper", "run", self.name,
                                 "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        timer = None
        if kill_after is not None:
            timer = threading.Timer(kill_after, lambda: _sigkill(proc))
            timer.start()
        try:
            out, err = proc.communicate(timeout=self.timeout)
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.monotonic() - began
        killed = proc.returncode == -signal.SIGKILL
        point = kill or (f"random@{kill_after:.2f}s" if kill_after is not None else "")
        return RunResult(proc.returncode, killed, point if killed else "", seconds, out, err)

    # -- what is published and staged

    def resource_id(self) -> str | None:
        answer = ckan_action(self.portal.url, "package_show", {"id": self.name},
                             self.portal.token())
        if not answer.get("success"):
            return None
        tables = [r for r in answer["result"]["resources"] if r.get("odp_role") == "table"]
        return tables[0]["id"] if tables and tables[0].get("datastore_active") else None

    def published(self) -> pd.DataFrame | None:
        """The DataStore table (schema columns, ordered by key), or None if there is none."""
        resource = self.resource_id()
        if resource is None:
            return None
        import psycopg

        columns = _schema_columns(self.root, self.name)
        names = ", ".join(f'"{c}"' for c in columns)
        with psycopg.connect(self.db_url) as conn, conn.cursor() as cur:
            cur.execute(f'SELECT {names} FROM "{resource}" ORDER BY "{KEY}"')
            rows = cur.fetchall()
        return pd.DataFrame(rows, columns=columns)

    def staged_keys(self) -> list[str]:
        import duckdb

        table = self.name.replace("-", "_")
        path = self.state / "staging" / f"{table}.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            return sorted(r[0] or "" for r in con.execute(f'SELECT "{KEY}" FROM staging."{table}"')
                          .fetchall())

    def leftover_stage_tables(self) -> list[str]:
        import psycopg

        with psycopg.connect(self.db_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'odp\\_stage%' "
                        "OR tablename IN ('odp_insert', 'odp_upsert', 'odp_delete')")
            return [r[0] for r in cur.fetchall()]

    def staged_ledger(self) -> bool:
        """Whether a ledger written beside the one in force is still there (not put in place)."""
        from odp.publish.changes import ledger_path

        return ledger_path(self.state, self.name).with_suffix(".tmp").exists()

    def lock_state(self) -> str:
        from odp.runs.locks import inspect

        return inspect(self.state, self.name).state


def _sigkill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)


def _schema_columns(root: Path, name: str) -> list[str]:
    import json

    schema = json.loads((root / "schemas" / f"{name}.json").read_text())
    return [f["name"] for f in schema["fields"]]


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`env` as this process's environment for a while (an in-process run)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Reference:
    """Clean runs of the same deliveries into a second dataset (in this process: no start-up
    cost): the published table each delivery should give, cached by the delivery's hash."""

    def __init__(self, tmp: Path, portal: Any, dataset: str = REGISTER) -> None:
        self.project = FaultProject(tmp, portal, dataset=dataset, load="copy")
        self.tables: dict[str, pd.DataFrame] = {}

    def table(self, body: bytes) -> pd.DataFrame:
        digest = hashlib.sha256(body).hexdigest()
        if digest not in self.tables:
            from odp.run import run_dataset
            from odp.spec import load_city

            self.project.deliver(body)
            with environment(self.project.env):
                report = run_dataset(self.project.name, self.project.root,
                                     load_city(self.project.root))
            assert report.exit_code == 0, f"reference run failed: {report.error}"
            published = self.project.published()
            assert published is not None
            self.tables[digest] = published
        return self.tables[digest]

    def close(self) -> None:
        self.project.close()


# --------------------------------------------------------------------------- convergence


def compare(published: pd.DataFrame | None, expected: pd.DataFrame) -> list[str]:
    if published is None:
        return ["no DataStore table"]
    reasons = []
    twice = int(published[KEY].duplicated().sum())
    if twice:
        reasons.append(f"{twice} duplicate keys in the DataStore")
    have, want = set(published[KEY]), set(expected[KEY])
    if have - want:
        reasons.append(f"{len(have - want)} rows the source does not have")
    if want - have:
        reasons.append(f"{len(want - have)} rows of the source missing")
    if not reasons:
        a = published.set_index(KEY).sort_index()
        b = expected.set_index(KEY).sort_index()[a.columns]
        differs = ~((a == b) | (a.isna() & b.isna())).all(axis=1)
        if differs.any():
            reasons.append(f"{int(differs.sum())} rows differ from the source "
                           f"(first: {differs[differs].index[0]})")
    return reasons


def converged(project: FaultProject, run: RunResult, expected: pd.DataFrame) -> list[str]:
    """Why the state after `run` (a plain run after a fault) is not converged ([] if it is)."""
    reasons = []
    if run.rc == 6:
        reasons.append("locked: the run after the fault exited 6")
    elif run.rc != 0:
        reasons.append(f"the run after the fault exited {run.rc}: {run.tail(300)}")
    reasons += compare(project.published(), expected)
    if project.body is not None and project.staged_keys() != delivery_keys(project.body):
        reasons.append("staging differs from the delivery")
    if left := project.leftover_stage_tables():
        reasons.append(f"stage tables left in the DataStore DB: {', '.join(left[:3])}")
    if project.lock_state() == "held":
        reasons.append("the dataset lock is still held")
    if project.staged_ledger():
        reasons.append("a staged ledger was left beside the ledger in force")
    return reasons


@dataclass
class Outcome:
    fault: str
    path: str
    killed: bool
    fault_rc: int
    reasons: list[str]  # why the state did not converge ([] = converged)
    reader: list[str]  # what the reader saw that no published version had
    seconds: float

    @property
    def converged(self) -> bool:
        return not self.reasons

    @property
    def clean(self) -> bool:
        return not self.reasons and not self.reader


@contextlib.contextmanager
def reading(project: FaultProject) -> Iterator[Reader | None]:
    resource = project.resource_id()
    if resource is None:
        yield None
        return
    with Reader(project.portal.url, resource) as reader:
        yield reader


def fault_cycle(project: FaultProject, reference: Reference, k: int, fault: str,
                *, kill: str | None = None, kill_after: float | None = None,
                ckan_url: str | None = None, before: Any = None, shrink: int = 0) -> Outcome:
    """Deliver version k, run with the fault, deliver version k + 1, run plainly, check.
    `before()` (optional) sets up a proxy or source fault just before the faulted run;
    `shrink` rows fewer in version k make its update remove more rows than it adds."""
    rows = project.rows
    if rows:
        faulted_body = constructed_register(rows, k, shrink)
        next_body = constructed_register(rows, k + 1)
    else:
        faulted_body, next_body = variant(k, shrink=shrink), variant(k + 1)
    before_table = project.published()
    began = time.monotonic()
    with reading(project) as reader:
        project.deliver(faulted_body)
        if before is not None:
            before()
        faulted = project.run(kill=kill, kill_after=kill_after, ckan_url=ckan_url)
        # A run that failed (not killed) removes the ledger it staged beside the writes.
        staged_left = not faulted.killed and faulted.rc != 0 and project.staged_ledger()
        project.deliver(next_body)
        after = project.run()
    seconds = round(time.monotonic() - began, 1)
    expected = reference.table(next_body)
    reasons = converged(project, after, expected)
    if staged_left:
        reasons.append(f"the failed run (exit {faulted.rc}) left its staged ledger")
    if kill == PG_RESTART:
        if PG_RESTARTED not in faulted.stderr:
            reasons.append(f"PostgreSQL was not restarted (exit {faulted.rc}: "
                           f"{faulted.tail(200)})")
    elif kill and not faulted.killed:
        reasons.append(f"the kill point was not reached (exit {faulted.rc}: "
                       f"{faulted.tail(200)})")
    seen: list[str] = []
    if reader is not None:
        counts = {len(expected)} | ({len(before_table)} if before_table is not None else set())
        if reader.violations(counts):  # the faulted delivery may have been published too
            counts.add(len(reference.table(faulted_body)))
        seen = reader.violations(counts)
    return Outcome(fault, project.load, faulted.killed, faulted.rc, reasons, seen, seconds)
