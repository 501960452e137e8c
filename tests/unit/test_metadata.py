"""The package dict: DCAT-AP.de fields from the dataset definition, the city file and the data;
vocabulary values checked with one-line errors before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.publish import dcat
from odp.publish.metadata import package_dict, stored_hash
from odp.spec import load_city, load_dataset
from tests.helpers import make_project, session_org

ELBE, SCHOOLS = "elbe-water-level-dresden", "schools-dresden"
LICENSES = "http://dcat-ap.de/def/licenses/"
EU = "http://publications.europa.eu/resource/authority/"


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    return make_project(tmp_path, [ELBE, SCHOOLS])


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-10-21T06:00:00Z", "2024-11-20T07:00:00Z"]),
        "longitude": [13.7, 13.8], "latitude": [51.0, 51.1],
        "stadtbezirk": ["Altstadt", "Neustadt"],
    })  # fmt: skip


def _package(root: Path, name: str, table: pd.DataFrame | None = None) -> dict:
    return package_dict(load_dataset(name, root), load_city(root), _table() if table is None
                        else table)


def test_elbe_package_carries_the_dcat_ap_de_fields(project):
    root, names = project
    package = _package(root, names[ELBE])
    assert package["license_id"] == "dl-de-zero-2.0"
    assert package["license_uri"] == LICENSES + "dl-zero-de/2.0"
    assert package["license_attribution_by_text"].startswith("Wasserstraßen- und Schifffahrts")
    assert package["frequency"] == EU + "frequency/15MIN"
    assert package["theme"] == [EU + "data-theme/ENVI", EU + "data-theme/TRAN"]
    assert package["groups"] == [{"name": "umwelt"}, {"name": "verkehr"}]
    assert package["contributor_id"] == "http://dcat-ap.de/def/contributors/freistaatSachsen"
    assert package["political_geocoding_uri"] == [
        "http://dcat-ap.de/def/politicalGeocoding/regionalKey/146120000000"
    ]
    assert package["political_geocoding_level_uri"].endswith("/Level/municipality")
    assert package["language"] == [EU + "language/DEU"]
    assert package["contact"] == [{"name": "Landeshauptstadt Dresden, Open-Data-Team",
                                   "email": "opendata@dresden.de",
                                   "url": "https://opendata.dresden.de/"}]
    assert package["publisher"][0]["name"] == "Landeshauptstadt Dresden"
    assert package["publisher"][0]["type"] == "http://purl.org/adms/publishertype/LocalAuthority"
    assert package["originator"][0]["url"] == "https://www.pegelonline.wsv.de/"
    assert package["identifier"].endswith(f"/dataset/{names[ELBE]}")
    assert json.loads(package["table_schema"])["primaryKey"]
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras["temporal_start"] == "2024-10-21T06:00:00Z"
    assert extras["temporal_end"] == "2024-11-20T07:00:00Z"
    assert json.loads(extras["spatial_bbox"])["type"] == "Polygon"
    assert extras["spatial_text"] == "Dresden"


def test_schools_belong_to_their_amt(project):
    root, names = project
    package = _package(root, names[SCHOOLS], _table().drop(columns=["timestamp"]))
    assert package["owner_org"] == session_org("schulverwaltungsamt")
    assert package["publisher"][0]["name"] == "Landeshauptstadt Dresden, Schulverwaltungsamt"
    assert package["license_uri"] == LICENSES + "dl-by-de/2.0"  # the city's default licence
    assert package["frequency"] == EU + "frequency/WEEKLY"
    keys = {e["key"] for e in package["extras"]}
    assert "temporal_start" not in keys  # a register has no time column


def test_the_hash_follows_the_metadata(project):
    root, names = project
    first = _package(root, names[ELBE])
    assert stored_hash(first) == stored_hash(_package(root, names[ELBE]))
    definition = root / "pipelines" / f"{names[ELBE]}.toml"
    definition.write_text(definition.read_text().replace('"15MIN"', '"HOURLY"'))
    assert stored_hash(_package(root, names[ELBE])) != stored_hash(first)


@pytest.mark.parametrize(("line", "message"), [
    ('frequency = "15MIN"', "unknown EU frequency 'sometimes'"),
    ('themes = ["ENVI", "TRAN"]', "unknown EU data theme 'WATER'"),
    ('license_id = "dl-de-zero-2.0"', "licence 'dl-zero'"),
])  # fmt: skip
def test_unknown_vocabulary_values_are_one_line_config_errors(project, line, message):
    root, names = project
    definition = root / "pipelines" / f"{names[ELBE]}.toml"
    bad = {"frequency": 'frequency = "sometimes"', "themes": 'themes = ["WATER"]',
           "license_id": 'license_id = "dl-zero"'}[line.split(" ")[0]]
    definition.write_text(definition.read_text().replace(line, bad))
    with pytest.raises(ConfigError) as caught:
        _package(root, names[ELBE])
    text = str(caught.value)
    assert message in text and str(definition) in text and "\n" not in text


def test_unknown_organisation_names_the_known_ones(project):
    root, names = project
    definition = root / "pipelines" / f"{names[SCHOOLS]}.toml"
    own = session_org("schulverwaltungsamt")
    definition.write_text(definition.read_text().replace(f'"{own}"', '"stadtamt"'))
    with pytest.raises(ConfigError, match="'stadtamt' is not an organisation.*umweltamt"):
        _package(root, names[SCHOOLS])


def test_licence_aliases_and_iris_map_to_active_dcat_ap_de_licences():
    assert dcat.license_uri("dl-de-by-2.0", "x") == LICENSES + "dl-by-de/2.0"
    assert dcat.license_uri("CC-BY-4.0", "x") == LICENSES + "cc-by/4.0"
    assert dcat.license_uri(LICENSES + "odbl", "x") == LICENSES + "odbl"
    with pytest.raises(ConfigError, match="deprecated"):
        dcat.license_uri(LICENSES + "dl-by-de/2_0", "x")  # an older DCAT-AP.de IRI
    # Every alias points at an active licence of the DCAT-AP.de list.
    for alias in dcat.LICENSE_ALIASES:
        assert dcat.dcat_licenses()[dcat.license_uri(alias, "x")]["status"] == "active"


def test_the_covered_districts_extra_is_named_by_the_city_s_coarsest_level(project):
    import dataclasses

    root, names = project
    extras = {e["key"]: e["value"] for e in _package(root, names[ELBE])["extras"]}
    assert extras["stadtbezirke"] == "Altstadt, Neustadt"
    city = load_city(root)
    other = dataclasses.replace(city, districts=(
        city.districts[0], dataclasses.replace(city.districts[1], name="bezirke")))
    table = _table().assign(stadtbezirk=["Mitte", "Mitte"])
    package = package_dict(load_dataset(names[ELBE], root), other, table)
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras["bezirke"] == "Mitte" and "stadtbezirke" not in extras


def test_the_data_extras_of_a_published_arrow_table_are_those_of_its_rows(project, monkeypatch):
    """The run hands the published table over as Arrow (millions of rows are not converted
    to pandas for a time span and a box): the extras are the same as from the rows, with
    rows lacking a coordinate, a district twice and no rows at all."""
    import pyarrow as pa

    root, names = project
    rows = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-11-20T07:00:00Z", None, "2024-10-21T06:00:00Z",
                                     "2024-12-01T00:00:00Z"], utc=True),
        "longitude": pd.array([13.7, 13.95, None, 13.6], dtype="Float64"),
        "latitude": pd.array([51.0, None, 51.1, 51.05], dtype="Float64"),
        "stadtbezirk": pd.array(["Neustadt", "Altstadt", None, "Neustadt"], dtype="string"),
    })  # fmt: skip
    for frame in (rows, rows.iloc[0:0]):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        assert _package(root, names[ELBE], table) == _package(root, names[ELBE], frame)
    extras = {e["key"]: e["value"] for e in _package(root, names[ELBE], table=pa.Table.from_pandas(
        rows, preserve_index=False))["extras"]}
    assert extras["temporal_start"] == "2024-10-21T06:00:00Z"
    assert json.loads(extras["spatial"])["coordinates"][0][0] == [13.6, 51.0]  # 13.95: no lat

    # A merged ledger (a row group per row, a published row replaced, one added): the extras
    # of the rows it holds, computed a row group at a time.
    import numpy as np

    from odp.publish import ledgerfile

    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 1)
    keyed = rows.assign(id=pd.array(range(4), dtype="Int64"))
    base, added = (pa.Table.from_pandas(part, preserve_index=False)
                   for part in (keyed.iloc[:3], keyed.iloc[3:]))
    merged = ledgerfile.Merged(base, np.array([False, True, False]), added, ["id"])
    expected = keyed.drop(index=1).reset_index(drop=True)
    assert _package(root, names[ELBE], merged) == _package(root, names[ELBE], expected)
    assert "Altstadt" not in str(_package(root, names[ELBE], merged)["extras"])


def test_a_ledger_that_only_grew_takes_its_extents_from_the_last_ledger_and_the_added_rows(
        project, tmp_path, monkeypatch):
    """The extents computed for a ledger are written beside it: the next run that only adds
    rows reads only the added rows for them (the same extras as from every row); one that
    drops a published row reads the ledger again."""
    import numpy as np
    import pyarrow as pa

    from odp.publish import ledgerfile
    from odp.publish.changes import commit_ledger, read_ledger, stage_ledger

    root, names = project
    rows = pd.DataFrame({
        "id": pd.array(range(4), dtype="Int64"),
        "timestamp": pd.to_datetime(["2024-11-20T07:00:00Z", "2024-11-21T07:00:00Z",
                                     "2024-10-21T06:00:00Z", "2024-12-01T00:00:00Z"], utc=True),
        "longitude": pd.array([13.7, 13.95, 13.8, 13.6], dtype="Float64"),
        "latitude": pd.array([51.0, 51.2, 51.1, 51.05], dtype="Float64"),
        "stadtbezirk": pd.array(["Neustadt", "Altstadt", "Pieschen", "Neustadt"],
                                dtype="string"),
    })  # fmt: skip
    first = ledgerfile.Merged(pa.Table.from_pandas(rows.iloc[:2], preserve_index=False),
                              np.zeros(2, dtype=bool), None, ["id"])
    assert _package(root, names[ELBE], first) == _package(root, names[ELBE], rows.iloc[:2])
    commit_ledger(tmp_path, "d", stage_ledger(tmp_path, "d", first))
    ledger = read_ledger(tmp_path, "d")
    added = pa.Table.from_pandas(rows.iloc[2:], preserve_index=False)

    def unread(*_args, **_kwargs):
        raise AssertionError("the ledger's rows were read")

    with monkeypatch.context() as patched:
        patched.setattr(ledgerfile.LedgerFile, "_read", unread)
        grown = ledgerfile.Merged(ledger, np.zeros(2, dtype=bool), added, ["id"])
        assert _package(root, names[ELBE], grown) == _package(root, names[ELBE], rows)
    dropped = ledgerfile.Merged(ledger, np.array([False, True]), added, ["id"])
    assert _package(root, names[ELBE], dropped) == _package(
        root, names[ELBE], rows.drop(index=1))
    assert "Altstadt" not in str(_package(root, names[ELBE], dropped)["extras"])
