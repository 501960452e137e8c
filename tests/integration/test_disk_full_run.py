"""`odp run` with its state directory on a small filesystem that fills up (a tmpfs mounted for
the test: needs root, skipped otherwise): the run that cannot write exits 7 with one line naming
what could not be written; the portal keeps the last good version (every row as published
before); once there is space again the next run converges on the new delivery."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from odp_dev.replay import ReplayServer
from tests.corpus.make_corpus import VVO
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli
from tests.integration.test_hostile_corpus_run import STOPS, STOPS_URL, all_rows_paged

pytestmark = pytest.mark.integration

SIZE_MB = 256  # far more than a run of the VVO register writes to its state (measured: ~20 MB)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SIZE_MB, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    """A ballast file leaving `leave` bytes free on the filesystem."""
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    ballast = mount / "ballast"
    with ballast.open("wb") as fh:
        remaining = max(free - leave, 0)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            remaining -= fh.write(block[: min(len(block), remaining)])
    return ballast


def _names(ckan, name: str) -> dict[str, str]:
    return {r["stop_id"]: r["name"] for r in all_rows_paged(ckan, name)}


@pytest.mark.parametrize("leave", [0, 256 * 1024], ids=["no-byte-free", "256-KiB-free"])
def test_a_full_disk_exits_7_keeps_the_published_version_and_the_next_run_converges(
        small_disk, tmp_path, portal, ckan, leave):
    root, names = make_project(tmp_path, [STOPS])
    name, state = names[STOPS], small_disk / "state"
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, state, replay.url, portal)
        first = odp_cli(env, "run", name)
        assert first.returncode == 0, first.stdout + first.stderr
        published = _names(ckan, name)
        assert published["de:14612:4"] == "Dresden Altmarkt"

        renamed = VVO.replace(b"Dresden Altmarkt;Altmarkt", b"Dresden Altmarkt Neu;Altmarkt", 1)
        replay.override(STOPS_URL, 200, renamed, "text/csv")
        ballast = _fill(small_disk, leave)
        full = odp_cli(env, "run", name)
        out = full.stdout + full.stderr
        assert full.returncode == 7, out
        lines = [line for line in full.stdout.splitlines() if "disk full" in line]
        # what could not be written: the file, or the folder and the space left there
        assert lines and all(f"disk full writing {small_disk}/state/" in line
                             or f"disk full writing to {small_disk}/state" in line
                             for line in lines), out
        assert "free space" in lines[-1]
        assert "Traceback" not in out and "Logging error" not in out
        assert _names(ckan, name) == published  # the last good version stays

        ballast.unlink()
        again = odp_cli(env, "run", name)
        assert again.returncode == 0, again.stdout + again.stderr
    now = _names(ckan, name)
    assert now["de:14612:4"] == "Dresden Altmarkt Neu"
    assert {k: v for k, v in now.items() if k != "de:14612:4"} == \
        {k: v for k, v in published.items() if k != "de:14612:4"}
