"""Many datasets at once (odp.runs.parallel): independent datasets run side by side in
worker processes, a dataset that reads others starts only after they finished, and a dataset
that fails — or whose worker process dies — fails alone. The tasks here stand in for
`run_dataset` so the timing is known; `tests/integration/test_parallel_run_all.py` runs real
datasets through `odp run --all --workers 2`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from odp.errors import ConfigError
from odp.run import RunReport
from odp.runs import history
from odp.runs.parallel import (
    Finished,
    last_seconds,
    longest_first,
    run_parallel,
    worker_count,
)


def sleeper(name: str, step, seconds: dict[str, float]) -> dict[str, object]:
    """A task: says its stage, sleeps its time, returns where it ran."""
    step("extract")
    time.sleep(seconds.get(name, 0.2))
    return {"name": name, "pid": os.getpid()}


def troubled(name: str, step, seconds: dict[str, float]) -> dict[str, object]:
    """A task: `bug` raises, `killed` dies as an out-of-memory kill would; others sleep."""
    if name == "bug":
        raise KeyError("geocode_quality")
    if name == "killed":
        os._exit(137)
    return sleeper(name, step, seconds)


def dies_when_idle(name: str, step, seconds: dict[str, float]) -> dict[str, object]:
    """A task: `a` ends well, and its worker process dies soon after, between two datasets."""
    if name == "a":
        threading.Timer(0.2, os._exit, (1,)).start()
    return sleeper(name, step, seconds)


def where(name: str, step, _seconds: dict[str, float]) -> tuple[str | None, str, int]:
    """A task: the environment variable ODP_TEST_MARK, the working directory and umask."""
    mask = os.umask(0)
    os.umask(mask)
    return os.environ.get("ODP_TEST_MARK"), os.getcwd(), mask


def overlap(a: Finished, b: Finished) -> bool:
    return a.started < b.finished and b.started < a.finished


def test_two_independent_datasets_run_at_the_same_time_in_two_worker_processes():
    done = run_parallel(["a", "b"], {}, 2, sleeper, ({"a": 1.0, "b": 1.0},))
    a, b = done["a"], done["b"]
    assert overlap(a, b), (a, b)
    assert a.result["pid"] != b.result["pid"] and os.getpid() not in (a.pid, b.pid)


def test_with_one_worker_datasets_run_one_after_the_other():
    done = run_parallel(["a", "b"], {}, 1, sleeper, ({"a": 0.3, "b": 0.3},))
    assert not overlap(done["a"], done["b"])
    assert done["a"].finished <= done["b"].started


def test_a_derived_dataset_starts_after_its_inputs_and_an_independent_one_does_not_wait():
    # `d` reads `a` and `b`; `c` reads nothing but comes after `d` in the run order.
    seconds = {"a": 0.3, "b": 1.5, "d": 0.2, "c": 0.3}
    steps: list[tuple[str, str]] = []
    order: list[str] = []
    done = run_parallel(["a", "b", "d", "c"], {"d": ["a", "b"]}, 2, sleeper, (seconds,),
                        on_step=lambda name, text: steps.append((name, text)),
                        on_done=lambda f: order.append(f.name))
    a, b, c, d = (done[n] for n in "abcd")
    assert d.started >= max(a.finished, b.finished)
    assert c.started < b.finished  # took the worker `a` left, while `d` still waited for `b`
    assert order == ["a", "c", "b", "d"]
    assert sorted(steps) == [(n, "extract") for n in "abcd"]


def test_a_failing_dataset_and_a_dead_worker_fail_alone_and_the_others_run():
    names = ["bug", "killed", "a", "b"]
    done = run_parallel(names, {}, 2, troubled, ({"a": 0.2, "b": 0.2},))
    assert set(done) == set(names)
    assert done["bug"].result is None
    assert done["bug"].error == "unexpected error: KeyError: 'geocode_quality'"
    assert done["killed"].result is None
    assert done["killed"].error == "the worker process running it died (exit code 137)"
    assert done["a"].result["name"] == "a" and done["b"].result["name"] == "b"
    assert done["a"].error == done["b"].error == ""


def test_a_worker_that_died_between_two_datasets_is_replaced():
    done = run_parallel(["a", "b", "c"], {"c": ["b"]}, 2, dies_when_idle,
                        ({"a": 0.1, "b": 1.0, "c": 0.1},))
    assert all(done[n].error == "" for n in "abc")
    assert done["c"].pid not in (done["a"].pid, done["b"].pid)  # a new worker took `a`'s place


def test_inputs_in_a_cycle_run_in_the_given_order_instead_of_waiting_for_ever():
    done = run_parallel(["x", "y"], {"x": ["y"], "y": ["x"]}, 2, sleeper, ({},))
    assert done["x"].finished <= done["y"].started


def test_the_worker_count_comes_from_the_flag_then_odp_toml_else_one_per_core(tmp_path: Path,
                                                                              monkeypatch):
    monkeypatch.setenv("ODP_STATE_DIR", str(tmp_path / "state"))
    many = [f"d{n}" for n in range(50)]  # never run: each counts as a long run
    assert worker_count(tmp_path, None, many) == (os.cpu_count() or 1)  # no odp.toml
    assert worker_count(tmp_path, 8, many[:3]) == 3  # never more workers than datasets
    (tmp_path / "odp.toml").write_text('city = "cities/x.toml"\n[run]\nworkers = 3\n')
    assert worker_count(tmp_path, None, many) == 3
    assert worker_count(tmp_path, 1, many) == 1
    (tmp_path / "odp.toml").write_text('[run]\nworkers = "many"\n')
    with pytest.raises(ConfigError, match=r"odp.toml: \[run\] workers: give a whole number"):
        worker_count(tmp_path, None, many)
    with pytest.raises(ConfigError, match="--workers -1"):
        worker_count(tmp_path, -1, many)


def test_no_more_workers_than_there_is_work_for_by_the_last_run_times(tmp_path: Path,
                                                                      monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    (tmp_path / "odp.toml").write_text('[run]\nworkers = 4\nseconds_per_worker = 30\n')
    names = [f"d{n}" for n in range(10)]
    for n, name in enumerate(names):  # ten runs of 2 s with nothing new: 20 s of work
        history.finish(state, RunReport(run_id=f"r{n}", dataset=name, status="unchanged",
                                        started="2026-01-01T00:00:00+00:00", seconds=2.0))
    assert worker_count(tmp_path, None, names) == 1
    assert worker_count(tmp_path, None, [*names, "new"]) == 1  # 20 + 30 s: still one
    assert worker_count(tmp_path, None, [*names, "new", "newer"]) == 2  # 80 s
    assert worker_count(tmp_path, 3, names) == 3  # --workers N is taken as asked


def test_the_longest_chains_start_first_by_the_last_run_times_in_the_history(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    for n, (name, seconds) in enumerate([("rain", 5.0), ("windows", 4.0), ("situation", 3.0),
                                         ("schools", 11.0), ("tiny", 1.0)]):
        history.finish(state, RunReport(run_id=f"r{n}", dataset=name, status="ok",
                                        started=f"2026-01-01T00:00:0{n}+00:00", seconds=seconds))
    names = ["tiny", "schools", "situation", "windows", "rain", "new"]
    seconds = last_seconds(state, names)
    assert seconds == {"rain": 5.0, "windows": 4.0, "situation": 3.0, "schools": 11.0,
                       "tiny": 1.0}  # `new` never ran
    needs = {"windows": ["rain"], "situation": ["windows"]}
    # rain's chain: 5 + 4 + 3 = 12; schools 11; windows 7; new: the mean, 4.8; situation 3
    assert longest_first(names, needs, seconds) == [
        "rain", "schools", "windows", "new", "situation", "tiny"]
    assert longest_first(["b", "a"], {}, {}) == ["b", "a"]  # no history: the run order


def test_workers_run_in_the_environment_folder_and_umask_of_each_invocation(tmp_path, monkeypatch):
    # The fork server keeps what it started with; each job carries the invocation's own.
    for mark, mask in (("one", 0o077), ("two", 0o022)):
        folder = tmp_path / mark
        folder.mkdir()
        monkeypatch.setenv("ODP_TEST_MARK", mark)
        monkeypatch.chdir(folder)
        previous = os.umask(mask)
        try:
            done = run_parallel(["a", "b"], {}, 2, where, ({},))
        finally:
            os.umask(previous)
        assert {done[n].result for n in "ab"} == {(mark, str(folder), mask)}
