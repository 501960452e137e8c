"""A WFS that ignores STARTINDEX answers every page with the first one: the client stops at the
second page with a one-line SourceError naming it, instead of paging 10,000 times (~10 minutes,
found by the hostile corpus run end to end). The real paged answers still read whole."""

from __future__ import annotations

import pytest

from odp.errors import SourceError
from odp.sources.wfs import read_features
from odp.spec import load_dataset
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, REPO

WFS_URL = "https://wfs.dresden.example/wfs"


@pytest.fixture
def replay(monkeypatch):
    with ReplayServer(RECORDINGS) as server:
        monkeypatch.setenv("ODP_REPLAY_URL", server.url)
        yield server


def test_a_server_answering_every_page_with_the_first_stops_at_the_second_page(replay):
    first = (RECORDINGS / "wfs" / "stadtteile_25833_start0.xml").read_bytes()
    replay.override(WFS_URL, 200, first, "application/gml+xml")
    with pytest.raises(SourceError) as stopped:
        read_features(load_dataset("stadtteile-dresden", REPO))
    message = str(stopped.value)
    assert "(page 2): the page repeats features of earlier pages (25 ids" in message
    assert "the server does not page" in message and "\n" not in message
    assert len(replay.requests) == 2  # the first page and its repetition, no more


def test_the_recorded_pages_read_whole(replay):
    frame = read_features(load_dataset("stadtteile-dresden", REPO))
    assert len(frame) > 50 and frame.iloc[:, 0].is_unique
