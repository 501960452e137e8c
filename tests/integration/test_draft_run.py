"""`odp draft` then `odp run` on five real files of different shapes publishes each into the real
local CKAN with no edit in between (issue 16): a statistical CSV by URL (replayed), a regional
stop list with decimal-comma WGS84 coordinates, a table with umlauts in its header and no unique
column combination (row hash), a sensor archive with local-less time stamps far from the city,
and a JSON list of records with nested objects and missing coordinates."""

from __future__ import annotations

import shutil
import uuid

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, REPO, all_rows, cli_env, cli_reports, make_project, odp_cli

pytestmark = pytest.mark.integration

FORECAST_URL = ("https://raw.githubusercontent.com/kiliankoe/opendata-dresden/"
                "08924fe38246e02b425fa65426f893924c5d52c4/data/statistics/einwohner-prognose_md9_"
                "open_data_stadtbezirk_mit_zugeordneten_ortschaften_-_gerundet.csv")
FILES = {  # dataset -> (file copied into the project's data/ folder, or a URL; rows published)
    "forecast": (FORECAST_URL, 160),
    "stops": (REPO / "tests" / "fixtures" / "validate" / "vvo_haltestellen_2019.csv", 4373),
    "movements": (REPO / "tests" / "fixtures" / "draft" /
                  "einwohner_bevoelkerungsbewegung_2006-2007.csv", 128),
    "dht22": (REPO / "tests" / "fixtures" / "draft" / "2017-08-30_dht22_sensor_5332.csv", 304),
    "gauges": (RECORDINGS / "pegelonline" / "pegelonline_2014_stations.json", 605),
}


@pytest.fixture(scope="module")
def drafted_and_run(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("draft")
    root, _ = make_project(tmp, [])
    tag = "t" + uuid.uuid4().hex[:8]  # unique on the shared portal
    names = {key: f"{tag}-{key}" for key in FILES}
    (root / "data").mkdir()
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        drafts = {}
        for key, (source, _rows) in FILES.items():
            if not isinstance(source, str):
                shutil.copy(source, root / "data" / source.name)
                source = f"data/{source.name}"  # relative to the project
            drafts[key] = odp_cli(env, "draft", names[key], "--from", source)
        done = odp_cli(env, "run", *names.values(), "--json")
    return root, names, drafts, done


def test_every_draft_is_written_without_error(drafted_and_run):
    root, names, drafts, _ = drafted_and_run
    for key, done in drafts.items():
        assert done.returncode == 0, (key, done.stdout, done.stderr)
        assert (root / "pipelines" / f"{names[key]}.toml").is_file()
    assert "warning: no column (or combination of up to 3) of the file is unique" in \
        drafts["movements"].stderr
    assert 'path = "data/vvo_haltestellen_2019.csv"' in \
        (root / "pipelines" / f"{names['stops']}.toml").read_text(encoding="utf-8")


def test_the_first_run_publishes_every_drafted_dataset(drafted_and_run, ckan):
    _, names, _, done = drafted_and_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = {r["dataset"]: r for r in cli_reports(done)}
    for key, (_source, rows) in FILES.items():
        report = reports[names[key]]
        assert (report["status"], report["quarantined"], report["inserted"]) == \
            ("ok", 0, rows), (key, report)
        assert ckan.action.package_show(id=names[key])["state"] == "active"


def test_published_tables_carry_the_readable_names_and_the_georeference_columns(
        drafted_and_run, ckan):
    _, names, _, done = drafted_and_run
    assert done.returncode == 0, done.stderr[-3000:]
    movements = all_rows(ckan, names["movements"])[0]
    assert {"staatsangehoerigkeit", "anzahl_einwohner", "row_hash"} <= set(movements)
    forecast = all_rows(ckan, names["forecast"])
    assert {"jahr_prognose", "stadtbezirk_mit_zugeordneten_ortschaften", "anzahl"} <= \
        set(forecast[0])
    altstadt = [r for r in forecast if r["jahr_prognose"] == 2025
                and r["stadtbezirk_mit_zugeordneten_ortschaften"] == "StB 0 Altstadt"]
    assert [r["anzahl"] for r in altstadt] == [66474]  # read by hand from the recording
    gauges = all_rows(ckan, names["gauges"])
    dresden = next(r for r in gauges if r["shortname"] == "DRESDEN")
    assert dresden["water_shortname"] == "ELBE" and dresden["stadtteil"]  # in a Stadtteil
    assert dresden["easting"] == pytest.approx(412_000, abs=2_000)  # EPSG:25833, by the city
