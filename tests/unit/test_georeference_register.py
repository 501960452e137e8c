"""The address register from any layer with a field mapping: the real ParkAPI GeoJSON (one
address column), and the real Dresden register (reference/dresden/addresses.csv) written as a
CSV with German column names, a separate suffix and EPSG:25833 coordinates, and as a WFS 2.0 /
GML 3.2 answer — each geocodes as the original does. A mapping that does not match the layer
names the city file, the field and the columns the layer has."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.georeference.crs import transform
from odp.georeference.geocode import AddressRegister
from odp.georeference.register import read_register
from odp.spec import City
from tests.helpers import RECORDINGS, REPO

ADDRESSES = REPO / "reference" / "dresden" / "addresses.csv"
PARKAPI = RECORDINGS / "parking_dresden" / "ParkAPI_Dresden.geojson"
ORIGINAL = AddressRegister.from_csv(ADDRESSES)
ASKED = pd.DataFrame({"street": ["Am Lehmberg", "Borsbergstraße", "Aachener Str."],
                      "number": ["28a", "12 A", "10"]})


def _city(tmp_path: Path, addresses: str) -> City:
    text = (REPO / "cities" / "dresden.toml").read_text(encoding="utf-8")
    start = text.index("[reference_layers.addresses]")
    end = text.index("\n[", start + 10)
    path = tmp_path / "cities" / "test.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + addresses + text[end:], encoding="utf-8")
    return City.load(path, REPO)


def _german_csv(tmp_path: Path) -> Path:
    """The real register as a city's GIS export: strasse;hausnummer;zusatz;plz;rechtswert;hochwert
    (ETRS89/UTM 33N, decimal comma)."""
    frame = pd.read_csv(ADDRESSES, dtype=str, keep_default_na=False)
    parts = frame["housenumber"].str.extract(r"^(\d+)\s*([a-zA-Z]?)$")
    east, north = transform(frame["longitude"].astype(float), frame["latitude"].astype(float),
                            "EPSG:4326", "EPSG:25833")
    out = pd.DataFrame({"strasse": frame["street"], "hausnummer": parts[0].fillna(
        frame["housenumber"]), "zusatz": parts[1].fillna(""), "plz": frame["postcode"],
        "rechtswert": [f"{v:.3f}".replace(".", ",") for v in east],
        "hochwert": [f"{v:.3f}".replace(".", ",") for v in north]})
    path = tmp_path / "adressen.csv"
    out.to_csv(path, sep=";", index=False)
    return path


def _gml(tmp_path: Path) -> Path:
    """The real register as one WFS 2.0 GetFeature answer (GML 3.2, EPSG:25833, URN form)."""
    frame = pd.read_csv(ADDRESSES, dtype=str, keep_default_na=False)
    east, north = transform(frame["longitude"].astype(float), frame["latitude"].astype(float),
                            "EPSG:4326", "EPSG:25833")
    members = "".join(
        f'<wfs:member><ad:Adresse gml:id="A.{i}"><ad:str>{escape(r.street)}</ad:str>'
        f"<ad:hnr>{escape(r.housenumber)}</ad:hnr><ad:plz>{r.postcode}</ad:plz><ad:geom>"
        f'<gml:Point gml:id="P.{i}" srsName="urn:ogc:def:crs:EPSG::25833"><gml:pos>'
        f"{e:.3f} {n:.3f}</gml:pos></gml:Point></ad:geom></ad:Adresse></wfs:member>"
        for i, (r, e, n) in enumerate(zip(frame.itertuples(), east, north, strict=True)))
    path = tmp_path / "adressen.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><wfs:FeatureCollection '
        'xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" '
        f'xmlns:ad="urn:example:adressen" numberMatched="{len(frame)}" '
        f'numberReturned="{len(frame)}">{members}</wfs:FeatureCollection>', encoding="utf-8")
    return path


def _same_as_original(register: AddressRegister) -> None:
    want = ORIGINAL.geocode(ASKED["street"], ASKED["number"])
    got = register.geocode(ASKED["street"], ASKED["number"])
    assert list(got["geocode_quality"]) == ["exact", "normalised", "normalised"]
    assert len(register) == len(ORIGINAL)
    for column in ("longitude", "latitude"):  # mm in UTM: ≤ 1e-7°
        assert (got[column] - want[column]).abs().max() < 1e-7


def test_a_csv_with_german_columns_a_suffix_and_utm_coordinates(tmp_path):
    _german_csv(tmp_path)
    city = _city(tmp_path, '''[reference_layers.addresses]
path = "adressen.csv"
crs = "EPSG:25833"
[reference_layers.addresses.fields]
street = "strasse"
housenumber = "hausnummer"
suffix = "zusatz"
postcode = "plz"
longitude = "rechtswert"
latitude = "hochwert"
''')
    _same_as_original(read_register(city))


@pytest.mark.parametrize("how", ["path", "wfs"])
def test_a_gml_answer_in_25833_as_a_file_or_from_a_wfs(tmp_path, monkeypatch, how):
    _gml(tmp_path)
    monkeypatch.setenv("ODP_PROJECT", str(tmp_path))  # a local url is read from the project
    (tmp_path / "pipelines").mkdir()
    layer = ('path = "adressen.xml"' if how == "path" else
             'url = "adressen.xml"\nwfs = { typenames = "ad:Adresse", srsname = '
             '"urn:ogc:def:crs:EPSG::25833" }')
    city = _city(tmp_path, f'''[reference_layers.addresses]
{layer}
fields = {{ street = "str", housenumber = "hnr", postcode = "plz" }}
''')
    _same_as_original(read_register(city))


def test_the_real_parkapi_geojson_with_one_address_column(tmp_path):
    shutil.copy(PARKAPI, tmp_path / "parkapi.geojson")
    city = _city(tmp_path, '''[reference_layers.addresses]
path = "parkapi.geojson"
fields = { address = "address" }
''')
    register = read_register(city)
    got = register.geocode(pd.Series(["An der Frauenkirche 12 a", "Prager Straße 9"]))
    assert list(got["geocode_quality"]) == ["normalised", "normalised"]  # 9 lies in 8 - 10
    assert (got["longitude"].iloc[0], got["latitude"].iloc[0]) == (13.7439, 51.05165)
    assert (got["longitude"].iloc[1], got["latitude"].iloc[1]) == (13.73772, 51.04449)


def test_a_field_the_layer_does_not_have_is_named_with_the_columns_it_has(tmp_path):
    _german_csv(tmp_path)
    city = _city(tmp_path, '''[reference_layers.addresses]
path = "adressen.csv"
crs = "EPSG:25833"
[reference_layers.addresses.fields]
street = "strasse"
housenumber = "hnr"
longitude = "rechtswert"
latitude = "hochwert"
''')
    with pytest.raises(ConfigError, match=re.escape(
            "cities/test.toml: [reference_layers.addresses] fields.housenumber = \"hnr\": the "
            "register ") + r".*adressen\.csv" + re.escape(" has no column 'hnr' (columns: "
            "strasse, hausnummer, zusatz, plz, rechtswert, hochwert)")):
        read_register(city)


def test_a_layer_without_the_default_columns_says_which_field_is_missing(tmp_path):
    # Before: `unexpected error: KeyError: 'address'`
    _german_csv(tmp_path)
    city = _city(tmp_path, '[reference_layers.addresses]\npath = "adressen.csv"\n')
    with pytest.raises(ConfigError, match=re.escape(
            "[reference_layers.addresses] no fields.street, and no column 'street': the "
            "register ") + r".*adressen\.csv has no column 'street' \(columns: strasse, "):
        read_register(city)
    city = _city(tmp_path, '[reference_layers.addresses]\npath = "adressen.csv"\n'
                           'fields = { strasse = "strasse" }\n')
    with pytest.raises(ConfigError, match="fields: unknown register field 'strasse' "
                                          r"\(known: street, housenumber, suffix, postcode"):
        read_register(city)


LEIPZIG = City.load(REPO / "cities" / "leipzig.toml", REPO)
LEIPZIG_REGISTER = REPO / "reference" / "leipzig" / "buchgewerbe_1912_adressen_2018.csv"


def test_leipzigs_register_is_its_real_file_as_delivered_read_through_the_city_file():
    # A CSV of the city's Amt für Geoinformation (reference/leipzig/SOURCES.md): `;`, a trailing
    # `;`, German column names, ETRS89/UTM33N — mapped in cities/leipzig.toml, not converted.
    register = read_register(LEIPZIG)
    assert len(register) == 2169  # 2181 rows, 12 without a street
    found = register.geocode(pd.Series(["Georg-Schumann-Straße", "Georg-Schumann-Str."]),
                             pd.Series(["22", "22"]), pd.Series(["04155", ""]))
    assert list(found["geocode_quality"]) == ["exact", "normalised"]
    lon, lat = transform(pd.Series([317285.0339]), pd.Series([5693054.0215]), "EPSG:25833",
                         "EPSG:4326")  # the file's row 1
    assert abs(found["longitude"].iloc[0] - lon[0]) < 1e-7
    assert abs(found["latitude"].iloc[1] - lat[0]) < 1e-7
    # a street the register has, a number it has not: said, never guessed
    assert register.lookup("Georg-Schumann-Straße", "9999") == ("street-only", None)


def _text(column: pd.Series):
    return column.fillna("").astype(str).to_numpy()


def test_leipzigs_ortsteile_and_stadtbezirke_agree_with_the_citys_own_numbers():
    # Each register row carries the Ortsteil and Stadtbezirk the city's surveying office gave it
    # in 2018; the city file's Ortsteile (a derived GeoJSON) and its code-prefix hierarchy with
    # its names table must place the same points alike (differences: houses on a border line).
    from odp.georeference.districts import DistrictIndex

    rows = pd.read_csv(LEIPZIG_REGISTER, sep=";", dtype=str, keep_default_na=False)
    rows = rows[rows["OT_NR_2018"] != ""]
    got = DistrictIndex(LEIPZIG).assign(pd.to_numeric(rows["ETRS_UTM33N_X"]),
                                        pd.to_numeric(rows["ETRS_UTM33N_Y"]))
    same_ortsteil = _text(got["ortsteil_nr"]) == rows["OT_NR_2018"].str.zfill(2).to_numpy()
    assert same_ortsteil.mean() > 0.98, same_ortsteil.mean()  # measured 2149 of 2181
    assert (_text(got["ortsteil"]) == rows["OT_NAME_2018"].to_numpy())[same_ortsteil].all()
    same_bezirk = _text(got["stadtbezirk_nr"]) == rows["SBZ_NR_2018"].to_numpy()
    assert same_bezirk.mean() > 0.98
    names = _text(got["stadtbezirk"])[same_bezirk]
    assert (names == rows["SBZ_NAME_2018"].to_numpy()[same_bezirk]).all()
    assert len(set(names)) >= 8  # the book trade reached most of the city
