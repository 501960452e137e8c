"""Each dataset of the sensor source types published end to end (`odp run`) into the real local
CKAN from recorded responses, with a value read by hand from the recordings."""

from __future__ import annotations

import pytest

from odp_dev.replay import ReplayServer
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli

pytestmark = pytest.mark.integration

Q_RIESA = 75.6  # read by hand: m_501110_Q_2024-11-22.json, last point (08:00+01:00)
DATASETS = {  # name -> (rows published, a filter, a column, its value read by hand)
    # scenario 2024-11-22: 97 points per series (the 30-day DRESDEN W would make this slow)
    "elbe-gauges-saxony": (
        485,
        {"station_name": "RIESA", "timestamp": "2024-11-22T07:00:00"},
        "discharge",
        Q_RIESA,
    ),
    "air-sensors-dresden": (
        16,
        {"sensor_id": 71007, "timestamp": "2024-11-21T06:55:03"},
        "pressure",
        100482.5,
    ),
    "bikeshare-toronto-sensorthings": (150, {"observation_id": 1595467}, "result", 23),
    "precipitation-dresden-hourly": (
        165,
        {"station_id": "01050", "timestamp": "2024-11-20T12:00:00"},
        "precipitation",
        1.8,
    ),
    "precipitation-dresden-10min": (
        558,
        {"station_id": "01050", "timestamp": "2024-11-20T12:00:00"},
        "precipitation_indicator",
        1,
    ),
}


@pytest.fixture(scope="module")
def published(portal, tmp_path_factory):
    """`odp run` of the five datasets (as cron or an officer would call it)."""
    tmp = tmp_path_factory.mktemp("sources")
    root, names = make_project(tmp, list(DATASETS))
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
        env = cli_env(root, tmp / "state", replay.url, portal, fast_retries=False)
        others = [n for key, n in names.items() if key != "elbe-gauges-saxony"]
        done = odp_cli(env, "run", *others)
        if done.returncode == 0:
            replay.scenario = "2024-11-22"
            done = odp_cli(env, "run", names["elbe-gauges-saxony"])
    return names, done


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_dataset_is_published_with_values_as_recorded(published, ckan, dataset):
    names, done = published
    assert done.returncode == 0, done.stdout + done.stderr
    rows, where, column, value = DATASETS[dataset]
    package = ckan.action.package_show(id=names[dataset])
    assert package["state"] == "active"
    resource = next(r for r in package["resources"] if r.get("odp_role") == "table")
    assert ckan.action.datastore_search(resource_id=resource["id"], limit=0)["total"] == rows
    hit = ckan.action.datastore_search(resource_id=resource["id"], filters=where)["records"]
    assert len(hit) == 1 and hit[0][column] == pytest.approx(value)


def test_dcat_of_every_dataset_has_no_violations(published, portal):
    names, done = published
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names.values():
        found = dataset_violations(portal.url, name, portal.token())
        assert found == {p: [] for p in PROFILES}, (name, found)
