"""A sample of the bad-input corpus (tests/corpus/make_corpus.py) through whole runs against the
real local CKAN, with what the portal holds afterwards: the REAL VVO stop register with formula
cells is published (the DataStore keeps `=1+2`, the CSV file carries `'=1+2`, the report warns),
the register cut at a row is held back (exit 4, the table as it was), and a 1 MB DWD zip that
unpacks to 1 GiB and a WFS answer with entity expansion stop the run with exit 3 before a
dataset is created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
import requests

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.corpus.bombs import GIB, zip_bomb
from tests.corpus.make_corpus import VVO, WFS
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli, table_resource, use_project

pytestmark = pytest.mark.integration

STOPS = "transit-stops-vvo"
STOPS_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
             "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")
DWD = "precipitation-dresden-hourly"
DWD_ZIP = ("https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/"
           "hourly/precipitation/recent/stundenwerte_RR_01050_akt.zip")
WFS_NAME = "stadtteile-dresden"
LAUGHS = (b'<!DOCTYPE wfs:FeatureCollection [<!ENTITY lol "lol"><!ENTITY lol2 '
          b'"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>')


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [STOPS, DWD, WFS_NAME])
    monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "1")
    with ReplayServer(RECORDINGS) as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "names": names, "replay": replay, "state": tmp_path / "state",
               "portal": portal, "city": load_city(root)}


def _missing(ckan: ckanapi.RemoteCKAN, name: str) -> bool:
    try:
        ckan.action.package_show(id=name)
    except ckanapi.NotFound:
        return True
    return False


def test_formulas_are_published_as_delivered_and_escaped_in_the_csv_and_a_cut_is_held_back(
        project, ckan):
    name, root, city, replay = project["names"][STOPS], project["root"], project["city"], \
        project["replay"]
    poisoned = VVO.replace(b"Dresden Altmarkt;Altmarkt", b"=1+2;@SUM(A1:A9)", 1)
    replay.override(STOPS_URL, 200, poisoned, "text/csv")
    report = run_dataset(name, root, city)
    assert (report.status, report.exit_code) == ("ok", 0), report.error
    row = next(r for r in all_rows_paged(ckan, name) if r["stop_id"] == "de:14612:4")
    assert (row["name"], row["short_name"]) == ("=1+2", "@SUM(A1:A9)")  # as delivered
    package = ckan.action.package_show(id=name)
    table = next(r for r in package["resources"] if r.get("odp_role") == "table")
    csv_text = requests.get(table["url"], timeout=30).content.decode("utf-8")
    assert "\nde:14612:4,'=1+2,'@SUM(A1:A9),Dresden," in csv_text
    saved = json.loads((project["state"] / "reports" / f"{name}.json").read_text())
    assert "formula" in json.dumps(saved)
    rows_before = len(all_rows_paged(ckan, name))

    # The register cut at a row boundary halfway: parses cleanly, but would delete half the
    # published stops — held back, the table stays.
    replay.clear_faults()
    replay.override(STOPS_URL, 200, VVO[: VVO.index(b"\n", len(VVO) // 2) + 1], "text/csv")
    env = cli_env(root, project["state"], replay.url, project["portal"])
    done = odp_cli(env, "run", name)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "delete" in (done.stdout + done.stderr)
    assert len(all_rows_paged(ckan, name)) == rows_before


def all_rows_paged(ckan: ckanapi.RemoteCKAN, name: str) -> list[dict]:
    """Every row of the table (the VVO register has 4,373), 1,000 at a time."""
    resource = table_resource(ckan, name)["id"]
    rows: list[dict] = []
    while True:
        page = ckan.action.datastore_search(resource_id=resource, limit=1000, offset=len(rows))
        rows += page["records"]
        if len(page["records"]) < 1000:
            return rows


def test_a_zip_bomb_and_entity_expansion_stop_the_run_before_anything_is_created(project, ckan):
    root, city, replay = project["root"], project["city"], project["replay"]
    replay.override(DWD_ZIP, 200, zip_bomb(GIB), "application/zip")
    dwd = project["names"][DWD]
    report = run_dataset(dwd, root, city)
    assert report.exit_code == 3 and "\n" not in report.error
    assert report.error.startswith(f"{dwd}: {DWD_ZIP}: produkt_")
    assert "unpacks to more than 134217728 bytes (max_unpacked_bytes" in report.error
    assert _missing(ckan, dwd)

    head = WFS[: WFS.index(b"?>") + 2]
    replay.override("https://wfs.dresden.example/wfs", 200, head + LAUGHS + WFS[len(head):],
                    "application/gml+xml")
    wfs = project["names"][WFS_NAME]
    env = cli_env(root, project["state"], replay.url, project["portal"])
    done = odp_cli(env, "run", wfs)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "XML with a DOCTYPE ('wfs:FeatureCollection', declaring the entities lol, lol2) is " \
        "refused" in done.stdout + done.stderr
    assert _missing(ckan, wfs)
