"""A city's district hierarchy and projected CRS come from its city file (`[districts]`,
`[city] crs`): Dresden's code-prefix Stadtbezirke are one instance; the same real Stadtteile
find their Stadtbezirk by containment or by a parent-code field too, a third level stacks on
top, and a bad city file names the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.georeference import covered_districts
from odp.georeference.districts import DistrictIndex, district_index, transform
from odp.spec import City, load_city
from tests.helpers import REPO

DRESDEN = load_city(REPO)
STADTTEILE = REPO / "reference" / "dresden" / "stadtteile.geojson"
# Frauenkirche (Innere Altstadt), Schloss Pillnitz (Hosterwitz/Pillnitz), the airport terminal
# (Flughafen/Industriegebiet Klotzsche), Albertplatz (Äußere Neustadt)
PLACES = ([13.7416, 13.8694, 13.7656, 13.7467], [51.0519, 51.0085, 51.1286, 51.0630])
BEZIRKE = ["Altstadt", "Loschwitz", "Klotzsche", "Neustadt"]
# The Stadtbezirke north of the Elbe (Neustädter Seite); the others lie south of it.
NORTH = {"1", "2", "3", "4"}


def _city(tmp_path: Path, districts: str, crs: str = "EPSG:25833") -> City:
    text = (REPO / "cities" / "dresden.toml").read_text(encoding="utf-8")
    text = re.sub(r'^crs = "EPSG:25833"', f'crs = "{crs}"', text, flags=re.M)
    start = text.index("[districts]")
    end = text.index("# Further polygon layers")
    path = tmp_path / "cities" / "test.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + districts + "\n" + text[end:], encoding="utf-8")
    return City.load(path, REPO)


def _assign(city: City) -> pd.DataFrame:
    east, north = transform(pd.Series(PLACES[0]), pd.Series(PLACES[1]), "EPSG:4326", city.crs)
    return DistrictIndex(city).assign(pd.Series(east), pd.Series(north))


@pytest.fixture(scope="module")
def bezirke_file(tmp_path_factory) -> Path:
    """The ten Stadtbezirke as polygons: the real Stadtteile dissolved by their first digit,
    with the side of the Elbe each lies on as a parent-code field."""
    frame = gpd.read_file(STADTTEILE)
    frame["sbz"] = frame["blocknr"].str[:1]
    merged = frame.dissolve(by="sbz", as_index=False)[["sbz", "geometry"]]
    merged["name"] = [dict(DRESDEN.districts[1].names)[c] for c in merged["sbz"]]
    merged["seite"] = ["N" if c in NORTH else "A" for c in merged["sbz"]]
    path = tmp_path_factory.mktemp("layers") / "stadtbezirke.geojson"
    merged.to_file(path, driver="GeoJSON")
    return path


def test_dresdens_city_file_describes_its_two_levels_and_its_crs():
    assert DRESDEN.crs == "EPSG:25833"
    assert [level.name for level in DRESDEN.districts] == ["stadtteile", "stadtbezirke"]
    assert DRESDEN.districts[0].parent_by == "code_prefix"
    got = _assign(DRESDEN)
    assert list(got.columns) == ["stadtteil_nr", "stadtteil", "stadtbezirk"]
    assert list(got["stadtbezirk"]) == BEZIRKE
    assert covered_districts(got, DRESDEN) == {
        "stadtteile": sorted(got["stadtteil"]), "stadtbezirke": sorted(BEZIRKE)}


def test_parents_by_containment_match_the_code_prefix_for_all_64_stadtteile(tmp_path,
                                                                           bezirke_file):
    city = _city(tmp_path, f'''[districts]
levels = ["stadtteile", "stadtbezirke"]
[districts.stadtteile]
path = "{STADTTEILE}"
code_field = "blocknr"
columns = ["stadtteil_nr", "stadtteil"]
parent_by = "containment"
[districts.stadtbezirke]
path = "{bezirke_file}"
code_field = "sbz"
columns = ["stadtbezirk_nr", "stadtbezirk"]
''')
    by_containment = DistrictIndex(city).polygons
    by_prefix = district_index(DRESDEN).polygons
    assert len(by_containment) == 64
    assert list(by_containment["stadtbezirk"]) == list(by_prefix["stadtbezirk"])
    assert list(by_containment["stadtbezirk_nr"]) == [c[:1] for c in by_prefix["stadtteil_nr"]]
    assert list(_assign(city)["stadtbezirk"]) == BEZIRKE


def test_a_parent_code_field_and_a_third_level_stack_up(tmp_path, bezirke_file):
    layer = gpd.read_file(STADTTEILE)
    layer["bezirk"] = layer["blocknr"].str[:1]  # the Stadtbezirk's code as a field of its own
    stadtteile = tmp_path / "stadtteile.geojson"
    layer.to_file(stadtteile, driver="GeoJSON")
    city = _city(tmp_path, f'''[districts]
levels = ["stadtteile", "stadtbezirke", "elbseiten"]
[districts.stadtteile]
path = "{stadtteile}"
code_field = "blocknr"
columns = ["stadtteil_nr", "stadtteil"]
parent_by = "parent_field"
parent_field = "bezirk"
[districts.stadtbezirke]
path = "{bezirke_file}"
code_field = "sbz"
columns = ["", "stadtbezirk"]
parent_by = "parent_field"
parent_field = "seite"
[districts.elbseiten]
columns = ["elbseite_code", "elbseite"]
names = {{ A = "Altstädter Seite", N = "Neustädter Seite" }}
''', crs="EPSG:31469")  # DHDN / Gauß-Krüger zone 5: another projected CRS, by configuration
    got = _assign(city)
    assert city.crs == "EPSG:31469"
    assert list(got.columns) == ["stadtteil_nr", "stadtteil", "stadtbezirk", "elbseite_code",
                                 "elbseite"]
    assert list(got["stadtbezirk"]) == BEZIRKE
    # Pillnitz (Stadtbezirk Loschwitz) lies on the right bank, like Klotzsche and the Neustadt
    assert list(got["elbseite"]) == ["Altstädter Seite", "Neustädter Seite",
                                     "Neustädter Seite", "Neustädter Seite"]
    assert list(got["elbseite_code"]) == ["A", "N", "N", "N"]
    outside = DistrictIndex(city).assign(pd.Series([float("nan")]), pd.Series([float("nan")]))
    assert outside.isna().all(axis=None)


@pytest.mark.parametrize(("districts", "message"), [
    ('[districts]\nlevels = ["stadtteile"]\n[districts.stadtteile]\ncode_field = "blocknr"\n',
     r"\[districts.stadtteile\]: missing required key 'path'"),
    (f'[districts]\nlevels = ["stadtteile", "bezirke"]\n[districts.stadtteile]\npath = '
     f'"{STADTTEILE}"\nparent_by = "prefix"\n[districts.bezirke]\n',
     r"\[districts.stadtteile\] parent_by: 'prefix' is not one of code_prefix, parent_field, "
     r"containment"),
    (f'[districts]\nlevels = ["stadtteile", "bezirke"]\n[districts.stadtteile]\npath = '
     f'"{STADTTEILE}"\nparent_by = "code_prefix"\n[districts.bezirke]\n',
     r"\[districts.stadtteile\] prefix_length: a whole number > 0 is needed"),
    (f'[districts]\nlevels = ["stadtteile", "bezirke"]\n[districts.stadtteile]\npath = '
     f'"{STADTTEILE}"\n',
     r"\[districts.bezirke\]: missing \(every name in \[districts\] levels needs a table\)"),
    (f'[districts]\nlevels = ["stadtteile"]\n[districts.stadtteile]\npath = "{STADTTEILE}"\n'
     'code_feld = "blocknr"\n',
     r"\[districts.stadtteile\] unknown key 'code_feld'"),
    ('[reference_layers.stadtteile]\npath = "x"\n', r"missing required key 'districts'"),
])
def test_a_bad_district_table_names_the_city_file_and_the_key(tmp_path, districts, message):
    with pytest.raises(ConfigError, match=r"cities/test\.toml: " + message):
        _city(tmp_path, districts)


def test_a_city_crs_must_be_projected_and_known(tmp_path):
    dresden = (REPO / "cities" / "dresden.toml").read_text(encoding="utf-8")
    section = dresden[dresden.index("[districts]"):dresden.index("# Further polygon layers")]
    with pytest.raises(ConfigError, match=r"cities/test\.toml: \[city\] crs: EPSG:4326 is not "
                                          r"projected"):
        _city(tmp_path, section, crs="EPSG:4326")
    with pytest.raises(ConfigError, match=r"\[city\] crs: CRS EPSG:99999 is not known"):
        _city(tmp_path, section, crs="EPSG:99999")


def test_a_code_prefix_naming_no_unit_above_is_a_configuration_error(tmp_path):
    city = _city(tmp_path, f'''[districts]
levels = ["stadtteile", "stadtbezirke"]
[districts.stadtteile]
path = "{STADTTEILE}"
code_field = "blocknr"
parent_by = "code_prefix"
prefix_length = 2
[districts.stadtbezirke]
names = {{ 0 = "Altstadt" }}
''')
    with pytest.raises(ConfigError, match=r"\[districts.stadtteile\] prefix_length: code prefix "
                                          r"'01' names no unit of the level above"):
        DistrictIndex(city)
