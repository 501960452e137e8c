"""dlt's load packages stay bounded: after a successful run the newest N loaded packages are
kept and the partial ones a killed run left are removed; a failed run prunes nothing, and
packages not yet loaded are never touched.

The extracts are real (dlt, the tabular source reading a file of the project: the first REAL
rows of the VVO stop list, one more each run). The partial packages are CONSTRUCTED in the
layout a killed dlt extract (`normalize/XXXXXXXX/new/LOAD_ID`) and normalise
(`load/new/LOAD_ID`) leave."""

from __future__ import annotations

import re

import pytest

from odp.extract import extract
from odp.run import RunReport
from odp.runs.packages import KEEP, keep_setting, pipeline_dir, prune_after_success
from odp.runs.record import record_run
from odp.spec import load_city, load_dataset
from tests.helpers import RECORDINGS, make_project

DATASET = "transit-stops-vvo"


def _rows(n: int) -> bytes:
    lines = (RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv").read_bytes().split(b"\n")
    return b"\n".join(lines[: n + 1]) + b"\n"


@pytest.fixture
def local(tmp_path, monkeypatch):
    """The VVO dataset reading data/stations.csv of an isolated project; its state."""
    root, names = make_project(tmp_path, [DATASET])
    definition = root / "pipelines" / f"{names[DATASET]}.toml"
    text, count = re.subn(r'(?m)^url = ".*"$', 'path = "data/stations.csv"',
                          definition.read_text())
    assert count == 1
    definition.write_text(text)
    (root / "data").mkdir()
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.delenv("ODP_KEEP_LOAD_PACKAGES", raising=False)
    dataset = load_dataset(names[DATASET], root)
    return {"root": root, "dataset": dataset, "state": tmp_path / "state",
            "city": load_city(root)}


def _run(local, rows: int) -> None:
    (local["root"] / "data" / "stations.csv").write_bytes(_rows(rows))
    assert extract(local["dataset"], local["state"]).staged == rows  # a grown file: appended


def _loaded(local) -> list[str]:
    folder = pipeline_dir(local["state"], local["dataset"].name) / "load" / "loaded"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_five_runs_leave_at_most_n_loaded_packages_the_newest(local):
    before, after = [], []
    for n in range(5):
        _run(local, 10 + n)
        before.append(len(_loaded(local)))
        newest = max(_loaded(local), key=float)
        prune_after_success(local["state"], local["dataset"].name, f"run-{n}", local["city"])
        after.append(len(_loaded(local)))
        assert newest in _loaded(local)
    assert KEEP == 3
    assert before == [1, 2, 3, 4, 4] and after == [1, 2, 3, 3, 3]


def _partial(local) -> dict[str, object]:
    """The folders a killed extract and a killed normalise leave, and a complete extracted
    package waiting to be normalised."""
    pipeline = pipeline_dir(local["state"], local["dataset"].name)
    killed_extract = pipeline / "normalize" / "a1b2c3d4" / "new" / "1796000000.1"
    killed_normalise = pipeline / "load" / "new" / "1796000000.2"
    waiting = pipeline / "normalize" / "extracted" / "1796000000.3"
    for folder in (killed_extract, killed_normalise, waiting):
        (folder / "new_jobs").mkdir(parents=True)
        (folder / "new_jobs" / "rows.parquet").write_bytes(b"x" * 1000)
    return {"extract": killed_extract.parent.parent, "normalise": killed_normalise,
            "waiting": waiting}


def _report(local, status: str) -> RunReport:
    return RunReport(run_id=f"run-{status}", dataset=local["dataset"].name, status=status,
                     exit_code=0 if status == "ok" else 3)


def test_a_successful_run_removes_partial_packages_and_keeps_waiting_ones(local):
    _run(local, 10)
    left = _partial(local)
    record_run(local["state"], local["city"], _report(local, "ok"))
    assert not left["extract"].exists() and not left["normalise"].exists()
    assert left["waiting"].is_dir()  # complete: the next run loads it


def test_a_failed_run_prunes_nothing(local):
    for n in range(5):
        _run(local, 10 + n)
    left = _partial(local)
    record_run(local["state"], local["city"], _report(local, "failed"))
    assert len(_loaded(local)) == 5 and left["extract"].exists() and left["normalise"].exists()
    record_run(local["state"], local["city"], _report(local, "unchanged"))
    assert len(_loaded(local)) == KEEP and not left["extract"].exists()


def test_how_many_to_keep_is_a_setting(local, monkeypatch):
    assert keep_setting(local["city"]) == KEEP
    monkeypatch.setenv("ODP_KEEP_LOAD_PACKAGES", "0")
    assert keep_setting(local["city"]) == 0
    monkeypatch.setenv("ODP_KEEP_LOAD_PACKAGES", "-1")
    with pytest.raises(Exception, match="a whole number"):
        keep_setting(local["city"])
