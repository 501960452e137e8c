"""`odp status` on an 80-column terminal: every dataset name whole, one line per dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from odp.operations.commands import _status_table
from odp.operations.status import DatasetStatus
from tests.helpers import REPO


def _row(name: str, lock: str = "free") -> DatasetStatus:
    now = datetime.now(UTC)
    return DatasetStatus(
        dataset=name, schedule="*/10 * * * *", last_run=(now - timedelta(minutes=19)).isoformat(),
        last_status="held-back", last_error="", last_success=None, age_seconds=19 * 60 + 5,
        expected_seconds=600, stale_after_seconds=1200, freshness="stale", open_quarantine=12,
        lock=lock, lock_holder={"pid": 4242} if lock != "free" else {},
        next_run=(now + timedelta(hours=13, minutes=10)).isoformat())


def _render(rows: list[DatasetStatus], width: int, wide: bool) -> list[str]:
    console = Console(width=width, record=True, highlight=False)
    console.print(_status_table(rows, wide=wide))
    return console.export_text().splitlines()


def test_narrow_status_shows_each_dataset_whole_on_one_line():
    names = sorted(p.stem for p in (REPO / "pipelines").glob("*.toml"))
    lines = _render([_row(n) for n in names], 80, wide=False)
    assert all(len(line) <= 80 for line in lines)
    for name in names:
        (line,) = [line for line in lines if line.split() and line.split()[0] == name]
        assert line.split()[1:] == ["held-back", "19", "min", "stale", "12", "13", "h"]
    assert "lock" not in lines[1]  # no lock held: no lock column


def test_a_held_lock_shows_its_pid():
    lines = _render([_row("schools-dresden", lock="held")], 80, wide=False)
    assert "lock" in lines[1] and "held (pid 4242)" in "\n".join(lines)
