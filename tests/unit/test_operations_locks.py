"""Locks across real processes: an overlapping run is refused, a lock left by a run killed with
SIGKILL is detected, taken over, and its history row marked `killed`; `odp status` shows it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from odp.cli import main
from odp.errors import LockedError
from odp.runs import history, locks
from tests.helpers import make_project

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from types import SimpleNamespace
    from odp.runs import history, locks
    state, name = Path(sys.argv[1]), sys.argv[2]
    report = SimpleNamespace(run_id="run-held", dataset=name, started=history.now_iso())
    with locks.dataset_lock(state, name, "run-held"):
        history.begin(state, report)
        print("locked", flush=True)
        time.sleep(60)
""")


def _hold(state: Path, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state), name],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def project(tmp_path, monkeypatch):
    root, names = make_project(tmp_path, ["elbe-water-level-dresden"])
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    return SimpleNamespace(root=root, state=state, name=names["elbe-water-level-dresden"])


def test_an_overlapping_run_is_refused_with_exit_6(project, capsys):
    proc = _hold(project.state, project.name)
    try:
        with (pytest.raises(LockedError, match="run-held") as err,
              locks.dataset_lock(project.state, project.name, "run-2")):
            pass
        assert err.value.exit_code == 6
        # The real command, in another process, is refused too and says by whom.
        done = subprocess.run([sys.executable, "-m", "odp.cli", "run", project.name],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 6, done.stderr
        assert "another run holds the lock" in done.stdout + done.stderr
        assert locks.inspect(project.state, project.name).state == "held"
        assert main(["status", project.name, "--json"]) == 0
        [row] = json.loads(capsys.readouterr().out)
        assert row["lock"] == "held" and row["lock_holder"]["pid"] == proc.pid
        # The refused run is in the history as `locked`, and changed nothing else.
        statuses = [r["status"] for r in history.runs(project.state, project.name)]
        assert statuses == ["locked", "running"]
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_runs_stale_lock_is_taken_over(project, capsys):
    proc = _hold(project.state, project.name)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert locks.inspect(project.state, project.name).state == "stale"
    assert main(["status", project.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["lock"] == "stale"

    with locks.dataset_lock(project.state, project.name, "run-next") as stale:
        assert stale["run_id"] == "run-held" and stale["pid"] == proc.pid
        holder = json.loads(locks.lock_path(project.state, project.name).read_text())
        assert holder["run_id"] == "run-next" and holder["pid"] == os.getpid()
    [killed] = history.runs(project.state, project.name)
    assert killed["status"] == "killed" and f"pid {proc.pid} died" in killed["error"]
    # Released cleanly: the next one finds the lock free, nothing stale.
    assert locks.inspect(project.state, project.name).state == "free"
    with locks.dataset_lock(project.state, project.name, "run-3") as stale:
        assert stale == {}


def test_only_one_of_two_racing_takeovers_wins(project):
    proc = _hold(project.state, project.name)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with locks.dataset_lock(project.state, project.name, "first"):
        time.sleep(0.01)
        with (pytest.raises(LockedError, match="first"),
              locks.dataset_lock(project.state, project.name, "second")):
            pass
