"""Complete deliveries only, as a whole run against the real local CKAN: the REAL VVO stop register
(tests/recordings/transit_vvo/README.md) is published, then delivered cut short — without a
Content-Length (the close looks like the end: the parser sees the record cut mid-line) and with
one (the client sees the missing bytes) — and as an HTML page with status 200. Each run exits 3
with a one-line error naming the dataset and URL; the published table stays exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli, table_resource, use_project

pytestmark = pytest.mark.integration

STOPS = "transit-stops-vvo"
STOPS_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
             "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")
BODY = (RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv").read_bytes()


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [STOPS])
    monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "2")
    with ReplayServer(RECORDINGS) as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "name": names[STOPS], "replay": replay, "state": tmp_path / "state",
               "portal": portal}


def _published(ckan, name: str) -> tuple[str, int, str]:
    """metadata_modified, DataStore row count and the table resource's hash."""
    package = ckan.action.package_show(id=name)
    table = table_resource(ckan, name)
    found = ckan.action.datastore_search(resource_id=table["id"], limit=0)
    return package["metadata_modified"], found["total"], table.get("hash", "")


def _one_line_naming(error: str, name: str) -> None:
    assert "\n" not in error and error.startswith(f"{name}: {STOPS_URL}"), error


def test_a_cut_body_exits_3_and_the_published_table_stays_as_it_was(project, ckan):
    name, root, replay = project["name"], project["root"], project["replay"]
    city = load_city(root)
    good = run_dataset(name, root, city)
    assert good.status == "ok", good.error
    before = _published(ckan, name)
    assert before[1] == good.inserted == 4371  # two stops without a number are quarantined

    # Cut mid-line two thirds in, no Content-Length: a third of the register would be missing.
    cut = BODY.index(b"\n", len(BODY) * 2 // 3) + 20
    line = BODY[:cut].count(b"\n") + 1
    replay.cut(STOPS_URL, cut, content_length=False)
    report = run_dataset(name, root, city)
    assert (report.status, report.exit_code) == ("failed", 3)
    _one_line_naming(report.error, name)
    assert f": line {line}: the body ends mid-record" in report.error
    assert _published(ckan, name) == before

    # Cut with Content-Length, through the CLI as cron runs it: exit 3 after the retries.
    replay.clear_faults()
    replay.clear_requests()
    replay.cut(STOPS_URL, 100_000)
    env = cli_env(root, project["state"], replay.url, project["portal"])
    env["ODP_HTTP_MAX_ATTEMPTS"] = "2"
    done = odp_cli(env, "run", name)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"body cut short: 100000 of {len(BODY)} bytes (2 attempts)" in done.stdout + done.stderr
    assert [r.body_bytes for r in replay.requests] == [100_000, 100_000]
    assert _published(ckan, name) == before

    # An HTML maintenance page with status 200.
    replay.clear_faults()
    replay.html_page(STOPS_URL)
    report = run_dataset(name, root, city)
    assert report.exit_code == 3
    assert report.error == f"{name}: {STOPS_URL} answered an HTML page instead of CSV"
    assert _published(ckan, name) == before

    # The whole file again: the run succeeds and nothing changed.
    replay.clear_faults()
    again = run_dataset(name, root, city)
    assert again.exit_code == 0 and not again.error, again.error
    assert _published(ckan, name) == before
