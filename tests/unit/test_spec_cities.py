"""One project holds the datasets of two cities: a definition with `city = "leipzig"` belongs to
cities/leipzig.toml, one without to the project's own city (odp.toml's, Dresden); a run serves
one city (`odp --city NAME`, `odp run --city NAME`, ODP_CITY) and only its datasets."""

from __future__ import annotations

import json

import pytest

from odp.cli import main
from odp.errors import ConfigError
from odp.spec import dataset_names, load_city, load_dataset, project_root

LEIPZIG = ["air-quality-leipzig", "ortsteile-leipzig", "precipitation-leipzig-hourly",
           "saale-water-level-trotha", "schools-leipzig"]


@pytest.fixture
def root(monkeypatch):
    monkeypatch.delenv("ODP_PROJECT", raising=False)
    monkeypatch.setenv("ODP_CITY", "")  # restored (unset) after the test; "" = odp.toml's city
    return project_root()


def test_each_city_lists_only_its_own_datasets(root, monkeypatch):
    dresden = dataset_names(root)
    assert "schools-dresden" in dresden and not set(LEIPZIG) & set(dresden)
    monkeypatch.setenv("ODP_CITY", "leipzig")
    assert dataset_names(root) == LEIPZIG
    assert load_city(root).slug == "leipzig"


def test_a_dataset_of_another_city_is_refused_with_the_flag_that_serves_it(root):
    with pytest.raises(ConfigError, match=r"belongs to the city 'leipzig', not to 'dresden'.*"
                                          r"--city leipzig"):
        load_dataset("schools-leipzig", root)


def test_the_city_flag_serves_that_city_in_every_command(root, capsys):
    assert main(["--city", "leipzig", "list", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == LEIPZIG
    assert main(["list", "--json"]) == 0  # ODP_CITY stays set for the process: still Leipzig
    capsys.readouterr()


def test_leipzig_describes_its_own_district_hierarchy_in_its_city_file(root, monkeypatch):
    monkeypatch.setenv("ODP_CITY", "leipzig")
    city = load_city(root)
    ortsteile, bezirke = city.districts
    assert (ortsteile.code_column, bezirke.name_column) == ("ortsteil_nr", "stadtbezirk")
    assert bezirke.names["7"] == "Alt-West" and city.crs == "EPSG:25833"
