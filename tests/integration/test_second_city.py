"""A second city by configuration alone: `odp run --city leipzig --all` publishes Leipzig's five
datasets (its Ortsteile as a layer, a PEGELONLINE gauge, a DWD station, an LfULG air-quality
station joined from one file per substance, the school register, geocoded against Leipzig's
address register where a row lacks coordinates) into the local CKAN under Leipzig's
organisations, with Leipzig's districts — from cities/leipzig.toml and files only."""

from __future__ import annotations

from pathlib import Path

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import (
    RECORDINGS,
    all_rows,
    cli_env,
    cli_reports,
    make_project,
    odp_cli,
    session_org,
)

pytestmark = pytest.mark.integration

LEIPZIG = ["ortsteile-leipzig", "saale-water-level-trotha", "precipitation-leipzig-hourly",
           "air-quality-leipzig", "schools-leipzig"]
BEZIRKE = {"Mitte", "Nordost", "Ost", "Südost", "Süd", "Südwest", "West", "Alt-West", "Nordwest",
           "Nord"}


def test_leipzig_publishes_its_five_datasets_with_its_own_districts(tmp_path: Path, portal, ckan):
    root, names = make_project(tmp_path, LEIPZIG)
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
        env = cli_env(root, tmp_path / "state", replay.url, portal)
        dresden = odp_cli(env, "list", "--json")  # the project's own city sees none of them
        assert dresden.returncode == 0 and dresden.stdout.strip() == "[]", dresden.stderr
        done = odp_cli(env, "run", "--city", "leipzig", "--all", "--json")
    reports = {r["dataset"]: r for r in cli_reports(done)}
    assert done.returncode == 0, [r["error"] for r in reports.values()]
    assert set(reports) == set(names.values())
    expected = {"ortsteile-leipzig": 63, "saale-water-level-trotha": 96,
                "precipitation-leipzig-hourly": 48, "air-quality-leipzig": 744,
                "schools-leipzig": 159}
    for name, count in expected.items():
        report = reports[names[name]]
        assert (report["status"], report["inserted"], report["quarantined"]) == ("ok", count, 0)

    layer = all_rows(ckan, names["ortsteile-leipzig"])
    assert all(r["ortsteil_nr"] == r["ot_nr"] and r["ortsteil"] == r["ortsteil_name"]
               for r in layer)  # each Ortsteil lands in itself: the city file's hierarchy
    assert {r["stadtbezirk"] for r in layer} == BEZIRKE
    assert {r["stadtbezirk_nr"] for r in layer if r["stadtbezirk"] == "Alt-West"} == {"7"}
    schools = all_rows(ckan, names["schools-leipzig"])
    assert all(r["ortsteil"] and r["stadtbezirk"] in BEZIRKE for r in schools)
    # geocoding against Leipzig's own register (cities/leipzig.toml) ran; every row had its own
    assert {r["geocode_quality"] for r in schools} == {"source"}
    gauge = all_rows(ckan, names["saale-water-level-trotha"])
    assert {r["ortsteil"] for r in gauge} == {None}  # Halle: outside Leipzig, kept, no district
    holzhausen = {r["ortsteil"] for r in all_rows(ckan, names["precipitation-leipzig-hourly"])}
    assert holzhausen == {"Holzhausen"}
    air = all_rows(ckan, names["air-quality-leipzig"])
    hour = next(r for r in air if r["timestamp"].startswith("2018-12-01T00:00:00"))
    assert (hour["no2"], hour["no"], hour["pm10_teom"]) == (30, 32, 24)  # three files, one row

    owners = {name: ckan.action.package_show(id=names[name])["organization"]["name"]
              for name in LEIPZIG}
    assert owners["schools-leipzig"] == session_org("stadt-leipzig")
    assert owners["air-quality-leipzig"] == session_org("amt-fuer-umweltschutz-leipzig")
