"""Air quality per Stadtteil end to end: `odp run` of air-quality-dresden (the REAL LfULG files
of December 2018, replayed), of air-quality-dresden-days, of air-quality-dresden-stadtteile (a
derived dataset of a derived one) and of situation-dresden into the real local CKAN; a second
run changes nothing; DCAT-AP.de of the new dataset against GovData's SHACL profiles."""

from __future__ import annotations

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import (
    RECORDINGS,
    all_rows,
    cli_env,
    cli_reports,
    make_project,
    odp_cli,
    table_resource,
)
from tests.integration.derived_runs import (
    assert_no_dcat_violations,
    assert_unchanged_with_no_ckan_writes,
    published_rows,
    read_renamed_inputs,
)

pytestmark = pytest.mark.integration

AIR, DAYS = "air-quality-dresden", "air-quality-dresden-days"
STADTTEILE, SITUATION = "air-quality-dresden-stadtteile", "situation-dresden"


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("air-quality-stadtteile")
    root, names = make_project(tmp, [AIR, DAYS, STADTTEILE, SITUATION])
    read_renamed_inputs(root, names, [DAYS, STADTTEILE, SITUATION], [AIR, DAYS, STADTTEILE])
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        env.update({"ODP_ALERT_WEBHOOK_URL": "", "ODP_SMTP_HOST": ""})
        first = odp_cli(env, "run", names[SITUATION], names[STADTTEILE], names[DAYS], names[AIR],
                        "--json")
        again = odp_cli(env, "run", names[AIR], names[DAYS], names[STADTTEILE], "--json")
    return names, first, again


def test_each_stadtteil_is_published_with_its_stations_hand_checked_day(runs, ckan):
    names, first, _ = runs
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r["status"] for r in cli_reports(first)] == ["ok"] * 4  # inputs first
    found = ckan.action.datastore_search(resource_id=table_resource(ckan, names[STADTTEILE])[
        "id"], limit=0)
    assert found["total"] == 64 * 4 * 30  # Stadtteile, pollutants, recorded days
    (neustadt,) = published_rows(ckan, names[STADTTEILE], stadtteil="Äußere Neustadt (Antonstadt)",
                        pollutant="no2", date="2018-12-02")
    # Dresden-Nord's NO2 of 2018-12-02: 572 / 24 = 23.8, class 3 (tests/unit/
    # test_indicators_air_quality.py adds the hours up by hand)
    assert (neustadt["stations"], neustadt["daily_mean"], neustadt["index_band"],
            neustadt["index_name"]) == ("Dresden-Nord", 23.8, 3, "mäßig")
    (plauen,) = published_rows(ckan, names[STADTTEILE], stadtteil="Plauen", pollutant="no2",
                      date="2018-12-13")
    # Dresden-Bergstraße had 11 of 24 NO2 hours that day: no daily mean in its Stadtteile
    assert (plauen["stations"], plauen["daily_mean"]) == ("Dresden-Bergstraße", None)
    assert names[DAYS] in neustadt["input"]  # lineage: the input dataset and its run


def test_the_situation_shows_every_stadtteil_with_its_air_quality(runs, ckan):
    names, *_ = runs
    rows = [r for r in all_rows(ckan, names[SITUATION]) if r["topic"] == "luftqualitaet"]
    parts = {(r["feature_id"], r["parameter"]): r for r in rows if r["feature"] == "stadtteil"}
    assert len({k[0] for k in parts}) == 64  # every Stadtteil
    plauen = parts[("86", "no2")]  # the newest day: 2018-12-30 (00:00 MEZ = 12-29T23:00Z)
    assert plauen["timestamp"][:16] == "2018-12-29T23:00"
    assert plauen["name"] == "Plauen" and names[STADTTEILE] in plauen["input"]
    assert {r["feature"] for r in rows} == {"air_station", "stadtteil"}


def test_a_second_air_quality_stadtteile_run_is_unchanged_with_no_ckan_writes(runs):
    *_, again = runs
    assert_unchanged_with_no_ckan_writes(again)


def test_dcat_of_the_air_quality_per_stadtteil_has_no_violations(runs, portal):
    names, *_ = runs
    assert_no_dcat_violations(portal, names[STADTTEILE])
