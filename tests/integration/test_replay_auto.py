"""`odp run --replay auto` replays exactly the sources whose host is unreachable — one named by
`url`, one listed in `files` — and leaves a reachable remote source and a local file alone.

Four copies of the VVO stop list (the first 50 REAL rows): two on hosts that never resolve
(`.invalid`), recorded for the replay server (CONSTRUCTED recordings of REAL rows); one served
live by a server of this test (not recorded: replayed, it would answer 404); one a file of the
project. A dry run, so the portal is only read."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import RECORDINGS, REPO, cli_reports, make_project

pytestmark = pytest.mark.integration

DATASET = "transit-stops-vvo"
ROWS = 50
REMOTE = "https://vvo.invalid/stations.csv"
LISTED = "https://files.invalid/vvo/stations.csv"


def _body() -> bytes:
    lines = (RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv").read_bytes().split(b"\n")
    return b"\n".join(lines[: ROWS + 1]) + b"\n"


class _Live(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).requests.append(self.path)
        body = _body()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _recordings(root: Path) -> None:
    """The project's tests/recordings: REMOTE and LISTED only."""
    folder = root / "tests" / "recordings"
    folder.unlink()  # make_project links the repository's recordings
    (folder / "vvo").mkdir(parents=True)
    (folder / "vvo" / "stations.csv").write_bytes(_body())
    entries = [{"request": {"url": url},
                "response": {"status": 200, "headers": {"Content-Type": "text/plain"},
                             "body_file": "stations.csv"},
                "note": "CONSTRUCTED: REAL first 50 rows of the VVO list"}
               for url in (REMOTE, LISTED)]
    (folder / "vvo" / "recordings.json").write_text(json.dumps(entries))


def _variant(root: Path, base: str, suffix: str, source: str) -> str:
    """A copy of dataset `base` named `base-suffix` whose source line is `source`."""
    name = f"{base}-{suffix}"
    for folder, ext in (("schemas", "json"), ("expectations", "json")):
        shutil.copy(root / folder / f"{base}.{ext}", root / folder / f"{name}.{ext}")
    text = (root / "pipelines" / f"{base}.toml").read_text()
    text, count = re.subn(r'(?m)^url = ".*"$', source, text)
    assert count == 1
    (root / "pipelines" / f"{name}.toml").write_text(text)
    return name


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory, portal):
    tmp = tmp_path_factory.mktemp("replay-auto")
    root, names = make_project(tmp, [DATASET])
    base = names[DATASET]
    _recordings(root)
    (root / "data").mkdir()
    (root / "data" / "stations.csv").write_bytes(_body())
    live = ThreadingHTTPServer(("127.0.0.1", 0), type("Live", (_Live,), {"requests": []}))
    threading.Thread(target=live.serve_forever, daemon=True).start()
    port = live.server_address[1]
    datasets = {
        "remote": _variant(root, base, "remote", f'url = "{REMOTE}"'),
        "listed": _variant(root, base, "listed", f'files = [{{url = "{LISTED}"}}]'),
        "live": _variant(root, base, "live", f'url = "http://127.0.0.1:{port}/stations.csv"'),
        "local": _variant(root, base, "local", 'path = "data/stations.csv"'),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODP_REPLAY")}
    env |= {"ODP_PROJECT": str(root), "ODP_STATE_DIR": str(tmp / "state"),
            "ODP_CKAN_URL": portal.url, "CKAN_API_TOKEN": portal.token(),
            "ODP_PORTAL_HOME": str(portal.home)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "odp.cli", "run", *datasets.values(), "--replay", "auto",
             "--dry-run", "--json"], env=env, cwd=REPO, capture_output=True, text=True,
            timeout=600)
    finally:
        live.shutdown()
    reports = {r["dataset"]: r for r in cli_reports(done)}
    return {"done": done, "reports": {k: reports[v] for k, v in datasets.items()},
            "live": live.RequestHandlerClass.requests}


def test_only_the_unreachable_hosts_are_named_and_replayed(auto_run):
    err = auto_run["done"].stderr
    assert "sources unreachable (files.invalid:443, vvo.invalid:443)" in err, err
    assert "serving RECORDED responses for files.invalid:443, vvo.invalid:443" in err


@pytest.mark.parametrize("which", ["remote", "listed", "live", "local"])
def test_every_source_delivers_its_rows(auto_run, which):
    report = auto_run["reports"][which]
    assert report["status"] != "failed", report["error"]
    assert report["extracted"] == ROWS


def test_the_reachable_source_was_asked_live(auto_run):
    assert auto_run["live"] == ["/stations.csv"]
