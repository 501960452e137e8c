"""Air-quality indicators end to end: `odp run` of air-quality-dresden (the REAL LfULG files of
December 2018, replayed), then of air-quality-dresden-days, into the real local CKAN; a second
run changes nothing; DCAT-AP.de of the dataset against GovData's SHACL profiles."""

from __future__ import annotations

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli
from tests.integration.derived_runs import (
    assert_no_dcat_violations,
    assert_unchanged_with_no_ckan_writes,
    published_rows,
    read_renamed_inputs,
)

pytestmark = pytest.mark.integration

AIR, DAYS = "air-quality-dresden", "air-quality-dresden-days"


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("air-quality")
    root, names = make_project(tmp, [AIR, DAYS])
    read_renamed_inputs(root, names, [DAYS], [AIR])
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        first = odp_cli(env, "run", names[DAYS], names[AIR], "--json")
        again = odp_cli(env, "run", names[AIR], names[DAYS], "--json")
    return names, first, again


def test_the_daily_values_are_published_with_the_hand_checked_mean_and_validity(runs, ckan):
    names, first, _ = runs
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(published_rows(ckan, names[DAYS])) == 2 * 4 * 30  # 2 stations, 4 pollutants, 30 days
    (no2,) = published_rows(ckan, names[DAYS], station_id="Dresden-Nord", pollutant="no2",
                   date="2018-12-02")
    # 572 / 24 = 23.8 (hand sum in tests/unit/test_indicators_air_quality.py), class 3
    assert (no2["daily_mean"], no2["hours"], no2["valid"], no2["index_name"]) == (
        23.8, 24, True, "mäßig")
    assert (no2["exceedances_ytd"], no2["exceedances_allowed"]) == (0, 18)
    assert no2["stadtbezirk"] == "Neustadt" and no2["station_code"] == "DESN061"
    (partial,) = published_rows(ckan, names[DAYS], station_id="Dresden-Bergstraße", pollutant="no2",
                       date="2018-12-13")
    # 11 of 24 hourly values recorded that day: no daily mean
    assert (partial["hours"], partial["valid"], partial["daily_mean"]) == (11, False, None)


def test_a_second_air_quality_run_is_unchanged_with_no_ckan_writes(runs):
    *_, again = runs
    assert_unchanged_with_no_ckan_writes(again)


def test_dcat_of_the_air_quality_days_has_no_violations(runs, portal):
    names, *_ = runs
    assert_no_dcat_violations(portal, names[DAYS])
