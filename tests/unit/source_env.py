"""Shared set-up of the source tests: a project copy and a replay server routing every source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project


def source_env(
    tmp_path: Path, monkeypatch, names: list[str], scenario: str | None = None
) -> Iterator[dict]:
    root, mapping = make_project(tmp_path, names)
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_HTTP_BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("ODP_HTTP_MAX_RETRY_DELAY", "0.2")
    with ReplayServer(RECORDINGS, scenario=scenario) as server:
        monkeypatch.setenv("ODP_REPLAY_URL", server.url)
        yield {"root": root, "names": mapping, "server": server, "state": tmp_path / "state"}
