"""The Dresden SensorThings dataset published end to end by `odp run` into the real local CKAN,
replayed from the CONSTRUCTED FROST-style pages whose values are the REAL LfULG hourly values
(tests/recordings/sensorthings_dresden/README.md); values checked against cells read by hand
from tests/recordings/airquality_sachsen/joint_2018-12_*.csv (MEZ = UTC+1)."""

from __future__ import annotations

import contextlib

import pytest

from odp_dev.replay import ReplayServer
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import (
    RECORDINGS,
    cli_env,
    cli_report,
    make_project,
    odp_cli,
    table_resource,
)

pytestmark = pytest.mark.integration

NAME = "air-quality-dresden-sensorthings"
FIRST_ROWS = 2131  # non-empty hourly NO2/O3/PM10_TEOM cells up to 2018-12-16 00:00 MEZ
LATER_ROWS = 2066  # the rest of December (the repeated last-seen observations are not added)


@pytest.fixture(scope="module")
def published(tmp_path_factory, portal, ckan):
    tmp = tmp_path_factory.mktemp("sensorthings_dresden")
    root, names = make_project(tmp, [NAME])
    name = names[NAME]
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as server:
        env = cli_env(root, tmp / "state", server.url, portal)
        first = cli_report(odp_cli(env, "run", name, "--json"))
        table = table_resource(ckan, name)
        first_total = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
        again = cli_report(odp_cli(env, "run", name, "--json"))
        server.scenario = "2024-11-22"
        later = cli_report(odp_cli(env, "run", name, "--json"))
    yield {"name": name, "table": table["id"], "first": first, "first_total": first_total,
           "again": again, "later": later}
    with contextlib.suppress(Exception):  # a failed run may have created nothing
        ckan.action.dataset_purge(id=name)


def _rows(ckan, published: dict, **filters) -> list[dict]:
    return ckan.action.datastore_search(resource_id=published["table"], filters=filters)["records"]


def test_first_run_publishes_and_the_same_scenario_again_writes_nothing(published):
    first, again = published["first"], published["again"]
    assert first["status"] == "ok", first["error"]
    assert first["inserted"] == FIRST_ROWS and first["quarantined"] == 0
    assert published["first_total"] == FIRST_ROWS
    assert again["status"] == "unchanged" and again["write_calls"] == 0


def test_published_value_equals_the_recorded_cell(published, ckan):
    # Dresden-Nord, 2018-12-01,01:00 (MEZ): NO2 21 µg/m³ → 2018-12-01T00:00Z
    (row,) = _rows(ckan, published, datastream_name="NO2 Dresden-Nord",
                   phenomenon_time="2018-12-01T00:00:00")
    assert (row["result"], row["unit_symbol"], row["thing_name"]) == (21, "µg/m³", "Dresden-Nord")
    # Dresden-Bergstraße, 2018-12-13,13:00 (MEZ): NO2 empty (no row, never 0), O3 15
    hour = "2018-12-13T12:00:00"
    assert _rows(ckan, published, datastream_name="NO2 Dresden-Bergstraße",
                 phenomenon_time=hour) == []
    (o3,) = _rows(ckan, published, datastream_name="O3 Dresden-Bergstraße", phenomenon_time=hour)
    assert o3["result"] == 15


def test_districts_come_from_the_city_layer(published, ckan):
    # checked with reference/dresden/stadtteile.geojson: the stations' positions (see the
    # recordings' README) lie in Innere Neustadt and Räcknitz/Zschertnitz
    (nord,) = _rows(ckan, published, datastream_name="NO2 Dresden-Nord",
                    phenomenon_time="2018-12-01T00:00:00")
    assert (nord["stadtteil"], nord["stadtbezirk"]) == ("Innere Neustadt", "Neustadt")
    (berg,) = _rows(ckan, published, datastream_name="O3 Dresden-Bergstraße",
                    phenomenon_time="2018-12-13T12:00:00")
    assert (berg["stadtteil"], berg["stadtbezirk"]) == ("Räcknitz/Zschertnitz", "Plauen")


def test_later_run_adds_only_the_newer_observations(published, ckan):
    later = published["later"]
    assert later["status"] == "ok", later["error"]
    assert later["inserted"] == LATER_ROWS and later["updated"] == 0
    total = ckan.action.datastore_search(resource_id=published["table"], limit=0)["total"]
    assert total == FIRST_ROWS + LATER_ROWS
    # Dresden-Nord, 2018-12-30,11:00 (MEZ), the last row of the file: NO2 12
    (last,) = _rows(ckan, published, datastream_name="NO2 Dresden-Nord",
                    phenomenon_time="2018-12-30T10:00:00")
    assert last["result"] == 12


def test_dcat_has_no_violations_on_either_govdata_profile(published, portal):
    found = dataset_violations(portal.url, published["name"], portal.token())
    assert found == {p: [] for p in PROFILES}, found
