"""A run takes Arrow's memory from the C library's allocator (odp.run.arrow_memory): the
mimalloc pyarrow bundles cost a +1 % run of a 1M-row dataset a second of kernel time."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from odp.run import run_dataset
from odp.spec import load_city
from tests.helpers import REPO


@pytest.fixture
def pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    yield
    pa.set_memory_pool(before)


def _run_nothing(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "pipelines").mkdir()
    report = run_dataset("no-such-dataset", tmp_path, load_city(REPO), dry_run=True)
    assert report.status == "failed"  # it ends at once; what matters is what it set up


def test_a_run_allocates_arrow_memory_from_the_system_allocator(tmp_path, pool, monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    _run_nothing(tmp_path)
    assert pa.default_memory_pool().backend_name == "system"


def test_an_operators_choice_of_arrow_allocator_is_kept(tmp_path, pool, monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
    _run_nothing(tmp_path)
    assert pa.default_memory_pool().backend_name == "mimalloc"
