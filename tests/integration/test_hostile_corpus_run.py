"""The bad-input corpus (tests/corpus/make_corpus.py) through whole runs against the real local
CKAN, with what the portal holds afterwards.

Two scenarios in detail: the REAL VVO stop register with formula cells is published (the
DataStore keeps `=1+2`, the CSV file carries `'=1+2`, the report warns), the register cut at a
row is held back (exit 4, the table as it was); a 1 MB DWD zip that unpacks to 1 GiB and a WFS
answer with entity expansion stop the run with exit 3 before a dataset is created.

Then corpus files one by one (`test_a_corpus_file_through_a_whole_run`), each served by the
replay server in place of the real answer to the dataset that reads it, after that dataset was
published once from its real recording: a file the parser refuses ends the run with exit 3 and
its one-line error, a file validation holds back with exit 4, and the portal holds exactly what
it held before (package, table, row count); a file that is published changes the table by what
the run reports (rows before + inserted - deleted), with its quarantined rows or warnings
reported. By default one file of each kind and expected outcome (a stratified sample, see
`SAMPLE`: 23 files, ~150 s with the two scenarios above); ODP_CORPUS_E2E=all runs every file
whose kind a shipped dataset reads (142 of the 160, ~260 s; timings measured under load on 2
shared cores, noisy). XLSX files and the
sensor.community archive (16 files) and two WFS pages are checked through their parser only."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
import requests

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.corpus.bombs import GIB, zip_bomb
from tests.corpus.make_corpus import VVO, WFS, Case
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


# --- every corpus file (or a stratified sample) through a whole run ----------------------------

# corpus kind -> (dataset reading it, the URL (prefix) the file answers, content type)
PEGEL = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
TARGETS: dict[str, tuple[str, str, str]] = {
    "tabular": (STOPS, STOPS_URL, "text/csv"),
    "json_records": ("schools-dresden", "https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/"
                     "projekt30/main/apps/web/src/data/schools.json", "application/json"),
    "ogcapi_features": ("car-parks-dresden", "https://raw.githubusercontent.com/offenesdresden/"
                        "ParkAPI/696f06ace12e4449a5bf5db8a3e048870b89fff6/park_api/cities/"
                        "Dresden.geojson", "application/geo+json"),
    "wfs": (WFS_NAME, "https://wfs.dresden.example/wfs", "application/gml+xml"),
    "dwd_cdc": (DWD, DWD_ZIP, "application/zip"),
    "dwd_cdc-stations": (DWD, DWD_ZIP.rsplit("/", 1)[0]
                         + "/RR_Stundenwerte_Beschreibung_Stationen.txt", "text/plain"),
    "sensor_community": ("air-sensors-dresden",
                         "https://data.sensor.community/airrohr/v1/filter/area=51.05,13.74,12",
                         "application/json"),
    "http-json/pegelonline": ("elbe-water-level-dresden", f"{PEGEL}/stations/"
                              "70272185-b2b3-4178-96b8-43bea330dcae/W/measurements.json",
                              "application/json"),
    "http-json/gauges": ("elbe-gauges-saxony", f"{PEGEL}/stations.json", "application/json"),
    "http-json/sensorthings": ("bikeshare-toronto-sensorthings",
                               "https://toronto-bike-snapshot.sensorup.com/v1.0/Datastreams(",
                               "application/json"),
}
# Kinds no shipped dataset reads as the corpus has them (their files are checked through the
# parser only, tests/unit/test_hostile_corpus.py): no dataset reads XLSX, and the
# sensor.community archive is read only when a definition lists archive_sensors.
NOT_END_TO_END = {"tabular-xlsx", "sensor_community-archive"}
# Files of a reached kind run through the parser only (file -> why).
PARSER_ONLY = {
    "wfs/latin1-declared.xml": "the override answers every page with this first page: the run "
                               "stops at page 2, which repeats it (test_wfs_repeated_page.py)",
    "wfs/utf16.xml": "as wfs/latin1-declared.xml",
}
# Files whose whole run rightly ends otherwise than their parser alone (file -> expected
# outcome and words): the HTTP client recognises an HTML page before any parser; a station list
# without rows lacks the dataset's stations. (JSON over HTTP is parsed as from a file: a Latin-1
# body without a declared charset is "not UTF-8 JSON" on both paths.)
END_TO_END = {
    "tabular/html-page.csv": ("source", ("answered an HTML page instead of CSV",)),
    "json_records/html-page.json": ("source", ("answered an HTML page instead of JSON",)),
    "wfs/html-page.xml": ("source", ("answered an HTML page instead of XML",)),
    "dwd_cdc-stations/stations-header-only.txt": ("source", ("station 01048 not listed",)),
}
# Files whose whole run does not give the parser's outcome yet (file -> what happens): none.
KNOWN_GAPS: dict[str, str] = {}


def _target(case: Case) -> tuple[str, str, str]:
    if case.kind == "http-json":
        return TARGETS[f"http-json/{case.file.split('/')[-1].split('-')[0]}"]
    return TARGETS[case.kind]


def _cases() -> list[Case]:
    from tests.corpus.make_corpus import FAMILIES

    cases = [Case(f"{kind}/{name}", kind, expect, tuple(words))
             for kind, (family, _) in FAMILIES.items() if kind not in NOT_END_TO_END
             for name, _, expect, words in family() if f"{kind}/{name}" not in PARSER_ONLY]
    return [Case(c.file, c.kind, *END_TO_END[c.file]) if c.file in END_TO_END else c
            for c in cases]


def _sample(cases: list[Case]) -> list[Case]:
    """The first file of each (kind, expected outcome) — and of each http-json dataset."""
    seen: set[tuple[str, str]] = set()
    chosen = []
    for case in cases:
        stratum = (_target(case)[0], case.expect)
        if stratum not in seen:
            seen.add(stratum)
            chosen.append(case)
    return chosen


ALL_CASES = _cases()
SAMPLE = ALL_CASES if os.environ.get("ODP_CORPUS_E2E") == "all" else _sample(ALL_CASES)


@pytest.fixture(scope="module")
def corpus_project(tmp_path_factory, portal) -> Iterator[dict]:
    """One project with every dataset the corpus reaches; each published once (lazily) from
    its real recording before its first corpus file."""
    from tests.corpus.make_corpus import build

    tmp = tmp_path_factory.mktemp("corpus-run")
    files = {c.file: (tmp / "files" / c.file).read_bytes() for c in build(tmp / "files")
             if c.kind not in NOT_END_TO_END}
    datasets = sorted({t[0] for t in TARGETS.values()})
    root, names = make_project(tmp, datasets)
    # the day whose recordings every gauge dataset has (the others have no scenario)
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay, \
            pytest.MonkeyPatch.context() as env:
        env.setenv("ODP_HTTP_MAX_ATTEMPTS", "1")
        use_project(env, root, tmp / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "names": names, "replay": replay, "files": files,
               "city": load_city(root), "published": set()}


def _holds(ckan: ckanapi.RemoteCKAN, name: str) -> dict:
    """What the portal holds of a dataset: its metadata stamp, resources and table rows."""
    package = ckan.action.package_show(id=name)
    table = next(r for r in package["resources"] if r.get("odp_role") == "table")
    total = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
    return {"modified": package["metadata_modified"], "rows": total,
            "resources": sorted((r["id"], r.get("last_modified")) for r in package["resources"])}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(reason=KNOWN_GAPS[c.file], strict=True))
    if c.file in KNOWN_GAPS else c for c in SAMPLE], ids=[c.file for c in SAMPLE])
def test_a_corpus_file_through_a_whole_run(case, corpus_project, ckan):
    project = corpus_project
    dataset, url, content_type = _target(case)
    name, replay = project["names"][dataset], project["replay"]
    replay.clear_faults()
    if name not in project["published"]:
        first = run_dataset(name, project["root"], project["city"])
        assert first.exit_code == 0, first.error
        project["published"].add(name)
    before = _holds(ckan, name)
    replay.override(url, 200, project["files"][case.file], content_type)
    report = run_dataset(name, project["root"], project["city"])
    replay.clear_faults()
    after = _holds(ckan, name)
    assert "\n" not in report.error
    if case.expect == "source":
        assert (report.exit_code, report.status) == (3, "failed"), report.error
        assert all(word in report.error for word in case.words), (case.words, report.error)
    if report.exit_code:
        # refused or held back (a file cut short is held back by the deletion guard): the
        # portal holds exactly what it held
        assert report.exit_code in (3, 4) and (case.expect == "source" or report.exit_code == 4)
        assert after == before, report.error
        return
    assert case.expect != "source"
    if case.expect == "unchanged":
        assert report.status == "unchanged" and after == before, report.to_dict()
    assert after["rows"] == before["rows"] + report.inserted - report.deleted, report.to_dict()
    if case.expect == "quarantine":
        assert report.quarantined > 0 or report.kept_last_good > 0, report.to_dict()
    if case.expect == "warning":
        assert report.warnings > 0, report.to_dict()
