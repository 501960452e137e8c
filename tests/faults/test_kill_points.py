"""The fast fault suite: `odp run` of the VVO stop register killed at a few named moments (and one
random one), with CKAN failing mid-publish and the source failing, on the COPY and the API path.
After each fault the source changes and a plain run must converge: the DataStore equals a clean
reference run of the same delivery, no duplicate keys, no stage tables, no lock left, staging =
the delivery, and a reader never saw an empty or half-applied table.
The long form (a 200k-row register, every named point, 50 random moments):
`uv run python bench/faults.py`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.faults.harness import (
    PG_RESTART,
    SOURCE_URL,
    FaultProject,
    Outcome,
    Reference,
    fault_cycle,
    variant,
)
from tests.integration.ckan_proxy import FailingProxy

pytestmark = pytest.mark.integration

_versions = itertools.count(1)


def _next_k() -> int:
    k = next(_versions) * 2  # the faulted delivery k, then k + 1: each cycle changes the source
    return k


@pytest.fixture(scope="module")
def reference(tmp_path_factory, portal) -> Iterator[Reference]:
    ref = Reference(tmp_path_factory.mktemp("reference"), portal)
    yield ref
    ref.close()


def _published_project(tmp_path_factory, portal, load: str) -> Iterator[FaultProject]:
    project = FaultProject(tmp_path_factory.mktemp(f"faults-{load}"), portal, load=load)
    project.deliver(variant(0))
    first = project.run()
    assert first.rc == 0, first.tail()
    yield project
    project.close()


@pytest.fixture(scope="module")
def copy_project(tmp_path_factory, portal) -> Iterator[FaultProject]:
    yield from _published_project(tmp_path_factory, portal, "copy")


@pytest.fixture(scope="module")
def api_project(tmp_path_factory, portal) -> Iterator[FaultProject]:
    yield from _published_project(tmp_path_factory, portal, "api")


def _assert_converged(outcome: Outcome, project: FaultProject) -> None:
    assert outcome.converged, f"{outcome.fault} ({outcome.path}): {outcome.reasons}"
    assert not outcome.reader, f"{outcome.fault} ({outcome.path}): {outcome.reader}"


@pytest.mark.parametrize("point", [
    "dlt.inserted",  # the INSERT committed, the job not yet marked done: re-executed next run
    "copy.committed",  # DataStore committed, the ledger not yet written
])
def test_a_run_killed_at_a_named_point_converges_on_the_copy_path(copy_project, reference,
                                                                  point):
    outcome = fault_cycle(copy_project, reference, _next_k(), point, kill=point)
    _assert_converged(outcome, copy_project)


@pytest.mark.parametrize("point", [
    "copy.committed",  # DataStore committed (its rows read from disk), the ledger not written
    "ledger.before",  # every portal write done, the first ledger staged, not put in place
])
def test_a_first_publish_in_parts_killed_before_its_ledger_converges(tmp_path_factory, portal,
                                                                     reference, point):
    """A first publish validated in parts of 500 rows, its rows sorted on disk and published
    from there, killed after the DataStore committed: the next run of the next delivery finds
    the publish interrupted, takes its changes against the DataStore table (the rows on disk
    read back as one frame) and converges."""
    from tests.faults.harness import converged
    from tests.faults.wrapper import PARTS_ENV

    project = FaultProject(tmp_path_factory.mktemp("faults-parts"), portal, load="copy")
    project.env[PARTS_ENV] = "500"
    k = _next_k()
    try:
        project.deliver(variant(k))
        faulted = project.run(kill=point)
        assert faulted.killed, faulted.tail()
        assert list(project.state.rglob("*.sorted.parquet"))  # published from disk, in parts
        project.deliver(variant(k + 1))
        after = project.run()
        assert not converged(project, after, reference.table(variant(k + 1)))
        assert "repair: the previous publish was interrupted" in after.stdout
        assert not list(project.state.rglob("*.sorted.parquet"))
    finally:
        project.close()


def test_a_run_killed_before_the_ledger_is_written_converges_on_the_api_path(api_project,
                                                                            reference):
    outcome = fault_cycle(api_project, reference, _next_k(), "ledger.before",
                          kill="ledger.before")
    _assert_converged(outcome, api_project)


def test_a_run_killed_after_the_api_update_leaves_no_half_applied_table(api_project,
                                                                       reference):
    # The update's first datastore_upsert holds it whole (new, changed and gone rows): killed
    # right after it, readers see the new version; the next run converges.
    point = "portal.after:datastore_upsert"
    outcome = fault_cycle(api_project, reference, _next_k(), point, kill=point)
    _assert_converged(outcome, api_project)


def test_postgresql_restarted_mid_copy_rolls_back_and_the_next_run_converges(copy_project,
                                                                            reference):
    outcome = fault_cycle(copy_project, reference, _next_k(), PG_RESTART, kill=PG_RESTART)
    assert outcome.fault_rc == 5  # the COPY's connection broke: a publish error
    _assert_converged(outcome, copy_project)


def test_ckan_failing_during_the_publish_leaves_a_state_the_next_run_completes(
        api_project, reference):
    with FailingProxy(api_project.portal.url) as proxy:
        outcome = fault_cycle(
            api_project, reference, _next_k(), "ckan 5xx on datastore_upsert",
            ckan_url=proxy.url, before=lambda: proxy.fail.update({"datastore_upsert": 99}))
    assert outcome.fault_rc == 5
    _assert_converged(outcome, api_project)


def test_a_source_answering_503_and_429_is_retried_and_the_runs_converge(copy_project,
                                                                         reference):
    def source_faults() -> None:
        copy_project.replay.fail_next(SOURCE_URL, [503, 503])
        copy_project.replay.fail_next(SOURCE_URL, [429], retry_after=1)

    outcome = fault_cycle(copy_project, reference, _next_k(), "source 503, 503, 429",
                          before=source_faults)
    assert outcome.fault_rc == 0  # retried within the run
    _assert_converged(outcome, copy_project)
