"""Local files instead of URLs (odp.sources.local): a WFS answer saved as a file, and an API
source whose base URL is a folder of files, read through the production client."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from odp.errors import ConfigError, SourceError
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.local import is_local
from odp.sources.pegelonline import _station, measurements_of
from odp.sources.wfs import read_features
from odp.spec import load_dataset
from tests.helpers import RECORDINGS, make_project

HAMBURG = RECORDINGS / "wfs" / "hamburg_HH_WFS_GAGES_getfeature_findeStadtteil_bar_2018.xml"
DRESDEN_GAUGE = "70272185-b2b3-4178-96b8-43bea330dcae"


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> dict:
    root, names = make_project(tmp_path, ["stadtteile-dresden"])
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.delenv("ODP_REPLAY_URL", raising=False)  # nothing may go to a server
    return {"root": root, "dataset": load_dataset(names["stadtteile-dresden"], root)}


def test_a_wfs_answer_saved_as_a_file_reads_like_the_service(project):
    (project["root"] / "received").mkdir()
    shutil.copy(HAMBURG, project["root"] / "received" / "stadtteile.xml")
    dataset = replace(project["dataset"], source={
        "type": "wfs", "path": "received/stadtteile.xml", "geometry_property": "position",
        "point_columns": ["easting", "northing"]})
    table = read_features(dataset)
    assert list(table["geographicIdentifier"]) == ["Barmbek-Nord", "Barmbek-Süd"]
    # the real file's position 569569.732 5939046.574 (EPSG:25832), easting first, in mm
    assert (table["easting"].iloc[0], table["northing"].iloc[0]) == ("569569.732",
                                                                      "5939046.574")


def test_a_missing_file_and_a_path_beside_a_url_are_named(project):
    dataset = replace(project["dataset"], source={"type": "wfs", "path": "received/none.xml"})
    with pytest.raises(SourceError, match=r"received/none\.xml: file not found \(\[source\] "
                                          r"path = 'received/none\.xml'\)"):
        read_features(dataset)
    both = replace(project["dataset"], source={"type": "wfs", "path": "a.xml",
                                               "url": "https://example.org/wfs"})
    with pytest.raises(ConfigError, match="has both 'url' and 'path'"):
        read_features(both)


def test_every_single_file_source_names_a_missing_file_and_refuses_a_path_beside_a_url(project):
    """JSON records and OGC API features read `path` through the same helper as WFS and the
    tabular source: a relative path is the project's, a missing file is named with the
    setting, and `path` together with `url` is a ConfigError."""
    from odp.sources.json_records import json_records
    from odp.sources.ogcapi import read_collection

    def records(dataset, **where):  # noqa: ANN001, ANN003 — the dlt resource, run
        from dlt.extract.exceptions import ResourceExtractionError

        try:
            return list(json_records(dataset, http=HttpSettings(), **where))
        except ResourceExtractionError as exc:  # dlt wraps what the resource raised
            raise exc.__cause__ from None

    def features(dataset, **where):  # noqa: ANN001, ANN003
        return read_collection(replace(dataset, source={"type": "ogcapi_features", **where}),
                               http=HttpSettings())

    (project["root"] / "received").mkdir()
    (project["root"] / "received" / "r.json").write_text('[{"id": "1", "name": "Elbe"}]')
    (project["root"] / "received" / "f.json").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "id": "a", '
        '"properties": {"name": "Elbe"}, "geometry": {"type": "Point", '
        '"coordinates": [13.74, 51.05]}}]}')
    dataset = project["dataset"]
    assert records(dataset, path="received/r.json")[0]["name"].tolist() == ["Elbe"]
    assert features(dataset, path="received/f.json")["name"].tolist() == ["Elbe"]
    for read in (records, features):
        with pytest.raises(SourceError, match=r"received/none\.json: file not found \(\[source\] "
                                              r"path = 'received/none\.json'\)"):
            read(dataset, path="received/none.json")
        with pytest.raises(ConfigError, match="has both 'url' and 'path'"):
            read(dataset, path="received/r.json", url="https://example.org/x")


def test_an_api_base_url_may_be_a_folder_of_the_project(project):
    # The PEGELONLINE layout below a folder: stations/UUID.json and stations/UUID/W/…
    folder = project["root"] / "received" / "pegelonline"
    (folder / "stations" / DRESDEN_GAUGE / "W").mkdir(parents=True)
    shutil.copy(RECORDINGS / "pegelonline" / "station_dresden.json",
                folder / "stations" / f"{DRESDEN_GAUGE}.json")
    shutil.copy(RECORDINGS / "pegelonline" / "measurements_2024-11-20.json",
                folder / "stations" / DRESDEN_GAUGE / "W" / "measurements.json")
    client = SourceClient("gauge", HttpSettings())
    base = "received/pegelonline"
    assert _station(client, base, DRESDEN_GAUGE)["shortname"] == "DRESDEN"
    rows = measurements_of(client, f"{base}/stations/{DRESDEN_GAUGE}/W/measurements.json",
                           "P30D")
    assert rows.iloc[0].tolist() == ["2024-10-21T08:00:00+02:00", "92.0"]
    with pytest.raises(SourceError, match=r"gauge: .*received/pegelonline/stations/x\.json: "
                                          "file not found"):
        _station(client, base, "x")


def test_only_http_and_https_urls_go_to_the_network():
    assert not is_local("https://www.pegelonline.wsv.de/webservices/rest-api/v2")
    assert not is_local("http://127.0.0.1:5050/x")
    assert is_local("received/pegelonline") and is_local("/srv/share/file.csv")
    assert is_local("file:///srv/share/file.csv") and is_local("C:/Daten/file.csv")
