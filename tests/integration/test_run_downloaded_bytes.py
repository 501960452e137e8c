"""A run records how many bytes it downloaded: a DWD dataset's second run, with nothing new at
DWD, downloads nothing (every file answers 304) and says so in its report and the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from odp.run import run_dataset
from odp.runs import history
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

HOURLY = "precipitation-dresden-hourly"


def test_second_run_without_news_downloads_nothing(tmp_path: Path, portal, ckan, monkeypatch):
    root, names = make_project(tmp_path, [HOURLY])
    name = names[HOURLY]
    try:
        with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
            use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
            city = load_city(root)
            first = run_dataset(name, root, city)
            served = sum(r.body_bytes for r in replay.requests)
            replay.clear_requests()
            second = run_dataset(name, root, city)
            statuses = {r.status for r in replay.requests}
        assert first.status == "ok" and first.downloaded == served > 0
        assert second.status == "unchanged" and second.downloaded == 0 and statuses == {304}
        latest, earlier = history.runs(tmp_path / "state", name)[:2]
        assert (earlier["downloaded"], latest["downloaded"]) == (served, 0)
    finally:
        ckan.action.dataset_purge(id=name)
