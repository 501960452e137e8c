"""Staging stays right when a run is killed (SIGKILL, a real subprocess) at the real moments inside
dlt's extract, normalize and load: the next plain run finishes what the killed one left, extracts
the current source in the same run, holds no record twice and keeps the incremental state.
The kill points are armed from outside the engine by tests/faults/wrapper.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from odp.extract import extract
from odp.spec import load_dataset
from odp_dev.replay import ReplayServer
from tests.faults.harness import (
    KEY,
    KILL_ENV,
    SOURCE_URL,
    FaultProject,
    Reference,
    delivery_keys,
    variant,
)
from tests.helpers import RECORDINGS, REPO, make_project
from tests.integration.conftest import ckan, portal  # noqa: F401 (fixtures)

ELBE = "elbe-water-level-dresden"
REGISTER = "transit-stops-vvo"


def _killed_run(env: dict[str, str], name: str, point: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "tests.faults.wrapper", "run", name],
                          env={**env, KILL_ENV: point}, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -9, done.stdout + done.stderr
    assert f"fault: killed at {point}" in done.stderr
    return done


@pytest.fixture
def offline(tmp_path: Path, monkeypatch) -> Iterator[dict]:
    """A project with the Elbe gauge and the stop register, sources on a replay server that
    answers the stop list with an ETag (so an unchanged list comes back 304)."""
    recordings = tmp_path / "recordings"
    (recordings / "stops").mkdir(parents=True)
    (recordings / "stops" / "stations.csv").write_bytes(variant(1))
    (recordings / "stops" / "recordings.json").write_text(json.dumps([{
        "request": {"method": "GET", "url": SOURCE_URL},
        "response": {"status": 200, "body_file": "stations.csv",
                     "headers": {"Content-Type": "text/plain; charset=utf-8",
                                 "ETag": '"stops-v1"'}}}]))
    (recordings / "pegelonline").symlink_to(RECORDINGS / "pegelonline")
    root, names = make_project(tmp_path, [ELBE, REGISTER])
    state = tmp_path / "state"
    with ReplayServer(recordings, scenario="2024-11-20") as server:
        env = {"ODP_PROJECT": str(root), "ODP_STATE_DIR": str(state),
               "ODP_REPLAY_URL": server.url, "ODP_HTTP_BACKOFF_FACTOR": "0.05"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        import os

        yield {"root": root, "names": names, "state": state, "server": server,
               "env": {**os.environ, **env}}


def test_a_series_killed_after_the_insert_committed_keeps_one_row_per_key_and_its_mark(
        offline):
    name = offline["names"][ELBE]
    _killed_run(offline["env"], name, "dlt.inserted")  # 2,885 measurements, job not marked
    offline["server"].scenario = "2024-11-21"  # 96 newer measurements
    offline["server"].clear_requests()
    dataset = load_dataset(name, offline["root"])
    after = extract(dataset, offline["state"])
    assert len(after.finished) == 1  # the killed run's package, loaded first
    assert after.new_rows == 96  # and the current source in the same run
    assert len(after.table) == 2885 + 96
    assert after.table["timestamp"].is_unique
    asked = [r.url for r in offline["server"].requests if "measurements" in r.url]
    # the mark committed with the killed run's package: only what is newer is asked for
    assert asked and "start=2024-11-20T07%3A00%3A00Z" in asked[0]


def test_a_register_killed_after_the_insert_committed_holds_each_record_once_when_unchanged(
        offline):
    name = offline["names"][REGISTER]
    _killed_run(offline["env"], name, "dlt.inserted")
    offline["server"].clear_requests()
    after = extract(load_dataset(name, offline["root"]), offline["state"])
    # the source answered 304 (its ETag came with the killed run's package): nothing new,
    # and the rows the re-executed load job inserted a second time were collapsed
    assert [r.status for r in offline["server"].requests] == [304]
    assert after.collapsed > 0
    staged = sorted(after.table[KEY].fillna(""))
    assert staged == delivery_keys(variant(1))  # its own duplicates (2 stops) kept
    assert after.table["_dlt_id"].is_unique


def test_copies_loaded_by_a_run_killed_before_it_collapsed_them_are_collapsed_by_the_next(
        offline):
    """The packages a killed run left are finished, then that run is killed too, before it
    looked for copies: the next run, with nothing pending, still collapses them."""
    name = offline["names"][REGISTER]
    _killed_run(offline["env"], name, "dlt.inserted")  # rows inserted, job not marked done
    _killed_run(offline["env"], name, "pending.finished")  # job run again: copies, unchecked
    after = extract(load_dataset(name, offline["root"]), offline["state"])
    assert not after.finished and after.collapsed > 0
    assert sorted(after.table[KEY].fillna("")) == delivery_keys(variant(1))
    assert after.table["_dlt_id"].is_unique


def test_staging_is_scanned_for_copies_only_after_packages_of_an_interrupted_run(
        offline, monkeypatch):
    import odp.extract

    looked: list[str] = []
    collapse = odp.extract.collapse_copies
    monkeypatch.setattr(odp.extract, "collapse_copies",
                        lambda pipeline, ds: looked.append(ds.name) or collapse(pipeline, ds))
    name = offline["names"][REGISTER]
    dataset = load_dataset(name, offline["root"])
    extract(dataset, offline["state"])
    offline["server"].override(SOURCE_URL, 200, variant(2), "text/csv")
    extract(dataset, offline["state"])
    assert looked == []  # two plain runs: no scan of staging
    offline["server"].clear_faults()
    offline["server"].override(SOURCE_URL, 200, variant(3), "text/csv")
    _killed_run(offline["env"], name, "dlt.inserted")
    after = extract(dataset, offline["state"])
    assert looked == [name] and len(after.finished) == 1
    extract(dataset, offline["state"])
    assert looked == [name]  # checked once: not again


@pytest.mark.parametrize("point", ["dlt.extracted", "dlt.normalized", "dlt.inserted",
                                   "dlt.job_marked", "dlt.followup", "dlt.loaded"])
def test_a_register_killed_inside_dlt_is_then_extracted_from_the_current_source(offline,
                                                                                point):
    name = offline["names"][REGISTER]
    dataset = load_dataset(name, offline["root"])
    extract(dataset, offline["state"])  # delivery 1 staged
    offline["server"].override(SOURCE_URL, 200, variant(2), "text/csv")
    _killed_run(offline["env"], name, point)  # delivery 2, killed
    offline["server"].clear_faults()
    offline["server"].override(SOURCE_URL, 200, variant(3), "text/csv")
    after = extract(dataset, offline["state"])
    assert sorted(after.table[KEY].fillna("")) == delivery_keys(variant(3))
    assert after.table["_dlt_id"].is_unique


def test_a_left_package_that_cannot_be_loaded_is_aborted_and_the_current_source_extracted(
        offline):
    name = offline["names"][REGISTER]
    dataset = load_dataset(name, offline["root"])
    extract(dataset, offline["state"])
    offline["server"].override(SOURCE_URL, 200, variant(2), "text/csv")
    _killed_run(offline["env"], name, "dlt.normalized")
    jobs = list((offline["state"] / "dlt").glob("*/load/normalized/*/new_jobs/*.parquet"))
    assert jobs
    for job in jobs:  # the left package's load job is broken: it can never load
        job.write_bytes(b"not parquet")
    offline["server"].clear_faults()
    offline["server"].override(SOURCE_URL, 200, variant(3), "text/csv")
    after = extract(dataset, offline["state"])
    assert len(after.aborted) == 1 and not after.finished
    assert sorted(after.table[KEY].fillna("")) == delivery_keys(variant(3))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, portal) -> Iterator[Reference]:  # noqa: F811
    ref = Reference(tmp_path_factory.mktemp("reference"), portal)
    yield ref
    ref.close()


@pytest.mark.integration
@pytest.mark.parametrize("point", ["dlt.inserted", "dlt.followup"])
def test_after_a_kill_in_dlts_load_the_next_run_publishes_the_current_source_not_the_previous(
        tmp_path, portal, reference, point):  # noqa: F811
    project = FaultProject(tmp_path, portal)
    try:
        project.deliver(variant(1))
        assert project.run().rc == 0
        project.deliver(variant(2))
        assert project.run(kill=point).killed
        project.deliver(variant(3))
        after = project.run()
        assert after.rc == 0, after.tail()
        published = project.published()
        expected = reference.table(variant(3))
        assert published is not None and published[KEY].is_unique
        assert published.equals(expected)
        assert project.staged_keys() == delivery_keys(variant(3))
    finally:
        project.close()


# --- lines added to a tabular file: only they go through dlt --------------------------------

ADDED = b"".join(f"de:14612:99{i:04d};Dresden Neuhalt {i};Neuhalt {i};Dresden;0100;;;13,7{i:04d};"
                 f"51,05{i:04d}\n".encode() for i in range(7))


def _deliver(offline: dict, body: bytes, kind: str) -> None:
    offline["server"].clear_faults()
    offline["server"].override(SOURCE_URL, 200, body, kind)


def _staged_rows(table) -> list[tuple]:  # noqa: ANN001
    return [tuple(r) for r in table.drop(columns=["_dlt_load_id", "_dlt_id"])
            .astype("string").fillna("").itertuples(index=False)]


def _full_read(dataset, body: bytes) -> list[tuple]:  # noqa: ANN001
    from odp.sources.tabular import Tabular, _parsed

    return _staged_rows(_parsed(dataset, Tabular.of(dataset.source), [(body, SOURCE_URL)])
                        .assign(_dlt_load_id="", _dlt_id=""))


def test_lines_added_to_a_register_are_staged_alone_and_staging_is_the_whole_file_in_order(
        offline):
    dataset = load_dataset(offline["names"][REGISTER], offline["root"])
    _deliver(offline, variant(1), "text/csv")
    first = extract(dataset, offline["state"])
    _deliver(offline, variant(1) + ADDED, "text/csv")
    added = extract(dataset, offline["state"])
    assert added.new_rows == 7 and added.staged == first.staged + 7
    assert _staged_rows(added.table) == _full_read(dataset, variant(1) + ADDED)
    # the first rows keep their load; only the added ones are of this load
    assert (added.table["_dlt_load_id"] == added.load_id).sum() == 7
    # an edit in the file (rows changed, removed, added): read and staged whole again
    _deliver(offline, variant(2), "text/csv")
    edited = extract(dataset, offline["state"])
    assert edited.new_rows == edited.staged == len(_full_read(dataset, variant(2)))
    assert _staged_rows(edited.table) == _full_read(dataset, variant(2))


def test_added_lines_after_staging_changed_behind_the_sources_back_read_the_file_whole(
        offline):
    dataset = load_dataset(offline["names"][REGISTER], offline["root"])
    _deliver(offline, variant(1), "text/csv")
    extract(dataset, offline["state"])
    import duckdb

    path = offline["state"] / "staging" / f"{dataset.table_name}.duckdb"
    with duckdb.connect(str(path)) as con:  # staging no longer holds what was read
        con.execute(f"DELETE FROM staging.{dataset.table_name} WHERE rowid < 3")
    _deliver(offline, variant(1) + ADDED, "text/csv")
    after = extract(dataset, offline["state"])
    assert after.new_rows == after.staged
    assert _staged_rows(after.table) == _full_read(dataset, variant(1) + ADDED)


@pytest.mark.parametrize("point", ["dlt.extracted", "dlt.inserted", "dlt.loaded"])
def test_a_run_killed_while_staging_added_lines_holds_each_record_once_afterwards(offline,
                                                                                 point):
    name = offline["names"][REGISTER]
    dataset = load_dataset(name, offline["root"])
    _deliver(offline, variant(1), "text/csv")
    extract(dataset, offline["state"])
    _deliver(offline, variant(1) + ADDED, "text/csv")
    _killed_run(offline["env"], name, point)
    after = extract(dataset, offline["state"])
    assert _staged_rows(after.table) == _full_read(dataset, variant(1) + ADDED)
    assert after.table["_dlt_id"].is_unique
    more = ADDED.replace(b":99", b":98")
    _deliver(offline, variant(1) + ADDED + more, "text/csv")
    again = extract(dataset, offline["state"])
    assert again.new_rows == 7
    assert _staged_rows(again.table) == _full_read(dataset, variant(1) + ADDED + more)
