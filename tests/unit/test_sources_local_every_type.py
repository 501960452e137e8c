"""Every source type that takes a URL also takes a local path (odp.sources.local; SensorThings:
a folder of saved answers). Each case runs a dataset once against the replay server and once on
copies of the same recordings laid out in the project as an officer would receive them; both
runs must stage the same rows, and the local run must send no request at all.

Recordings used (tests/recordings/*/README.md): REAL where the folder has a real answer for the
type (schools, VVO stops, LfULG CSVs, Wahlbezirke, Hamburg WFS, the 2017 data.json and an archive
CSV of sensor.community, the DWD station list with the real 00433 excerpt, Toronto's SensorThings
pages); PEGELONLINE's station record is real, its series and the Elbe series are CONSTRUCTED (no
real capture exists), as are the Dresden SensorThings pages (real LfULG values)."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from odp.errors import ConfigError, SourceError
from odp.extract import extract
from odp.sources import SOURCE_TYPES, make_resource
from odp.sources.sensorthings import SavedAnswers
from odp.spec import load_dataset
from tests.helpers import RECORDINGS, REPO
from tests.unit.source_env import source_env

PEGEL = "received/pegelonline"
DRESDEN_GAUGE = "70272185-b2b3-4178-96b8-43bea330dcae"
ELBE_GAUGES = {  # number: (uuid, series recorded for 2024-11-21)
    "501010": ("7cb7461b-3530-4c01-8978-7f676b8f71ed", "WQ"),
    "501040": ("85d686f1-55b2-4d36-8dba-3207b50901a7", "W"),
    "501060": (DRESDEN_GAUGE, "Q"),  # its W: ../pegelonline (the 30-day series)
    "501080": ("24440872-5bd2-4fb3-8554-907b49816c49", "W"),
    "501110": ("b04b739d-7ffa-41ee-9eb9-95cb1b4ef508", "WQ"),
}
DWD = "received/dwd/hourly/precipitation/recent"
MADAVI = "https://www.madavi.de/sensor/feinstaub-map-sds/data.json"
TORONTO = "received/toronto-bike-snapshot"
STA_DRESDEN = "received/sta-dresden"


@dataclass(frozen=True)
class Case:
    """A dataset run by URL (its `[source]` changed by `url`; `None` removes a key) and by files
    (`files`: recording → project path; `local` changes the URL run's `[source]`)."""

    dataset: str
    files: dict[str, str] | Callable[[], dict[str, str]]
    local: dict[str, Any]
    url: dict[str, Any] = field(default_factory=dict)
    scenario: str | None = None
    replace_source: bool = False  # `url` is the whole `[source]` table, not a change of it

    def layout(self) -> dict[str, str]:
        return self.files() if callable(self.files) else self.files


def _elbe_gauges() -> dict[str, str]:
    files = {"pegelonline_gauges/stations_elbe_timeseries.json": f"{PEGEL}/stations.json",
             "pegelonline/measurements_2024-11-21.json":
                 f"{PEGEL}/stations/{DRESDEN_GAUGE}/W/measurements.json"}
    for number, (uuid, series) in ELBE_GAUGES.items():
        for one in series:
            files[f"pegelonline_gauges/m_{number}_{one}_2024-11-21.json"] = (
                f"{PEGEL}/stations/{uuid}/{one}/measurements.json")
    return files


def _sta_dresden() -> dict[str, str]:
    """The Dresden FROST answers (4 pages per Datastream) in the saved-service layout."""
    base = "sensorthings_dresden"
    files = {f"{base}/things_lfulg.json": f"{STA_DRESDEN}/Things.json"}
    for thing in (1, 2):
        for part in ("locations", "datastreams"):
            files[f"{base}/thing_{thing}_{part}.json"] = (
                f"{STA_DRESDEN}/Things({thing})/{part.capitalize()}.json")
    for stream in range(1, 7):
        for page in range(1, 5):
            skip = "" if page == 1 else f".skip{(page - 1) * 100}"
            files[f"{base}/observations_ds{stream}_first_p{page}.json"] = (
                f"{STA_DRESDEN}/Datastreams({stream})/Observations{skip}.json")
    return files


CASES: dict[str, Case] = {
    "pegelonline": Case(
        "elbe-water-level-dresden", scenario="2024-11-20", local={"base_url": PEGEL},
        files={"pegelonline/station_dresden.json": f"{PEGEL}/stations/{DRESDEN_GAUGE}.json",
               "pegelonline/measurements_2024-11-20.json":
                   f"{PEGEL}/stations/{DRESDEN_GAUGE}/W/measurements.json"}),
    "pegelonline_gauges": Case(
        "elbe-gauges-saxony", scenario="2024-11-21", local={"base_url": PEGEL},
        files=_elbe_gauges),
    "json_records": Case(
        "schools-dresden", local={"url": None, "path": "received/schulen.json"},
        files={"schools/sachsen_schools_schuldatenbank.json": "received/schulen.json"}),
    "tabular": Case(
        "transit-stops-vvo", local={"url": None, "path": "received/haltestellen.csv"},
        files={"transit_vvo/vvo_haltestellen_2019.csv": "received/haltestellen.csv"}),
    "tabular files": Case(
        "air-quality-dresden",
        local={"files": [{"path": "received/luft/Dresden-Nord.csv",
                          "add": {"station": "Dresden-Nord"}},
                         {"path": "received/luft/Dresden-Bergstraße.csv",
                          "add": {"station": "Dresden-Bergstraße"}}]},
        files={"airquality_sachsen/joint_2018-12_Dresden-Nord.csv":
                   "received/luft/Dresden-Nord.csv",
               "airquality_sachsen/joint_2018-12_Dresden-Bergstrasse.csv":
                   "received/luft/Dresden-Bergstraße.csv"}),
    "ogcapi_features": Case(
        "wahlbezirke-dresden", local={"url": None, "path": "received/wahlbezirke.geojson"},
        files={"ogcapi_dresden/dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson":
                   "received/wahlbezirke.geojson"}),
    "wfs": Case(
        "stadtteile-dresden", replace_source=True,
        url={"type": "wfs", "url": "https://geodienste.hamburg.de/HH_WFS_GAGES",
             "stored_query_id": "findeStadtteil", "query": {"stadtteilname": "bar"},
             "srsname": "urn:ogc:def:crs:EPSG::25832", "geometry_property": "geographicExtent"},
        local={"url": None, "path": "received/stadtteile.xml"},
        files={"wfs/hamburg_HH_WFS_GAGES_getfeature_findeStadtteil_bar_2018.xml":
                   "received/stadtteile.xml"}),
    "sensor_community feed": Case(
        "air-sensors-dresden", url={"feed_url": MADAVI, "area": [50.652, 12.215, 1]},
        local={"feed_url": "received/data.json"},
        files={"sensor_community/madavi_data_json_2017-01-16T1426.json": "received/data.json"}),
    "sensor_community archive": Case(
        "air-sensors-dresden",
        url={"feed_url": None, "archive_sensors": [{"id": 15092, "type": "sds011"}],
             "archive_start": "2019-01-07", "archive_end": "2019-01-08"},  # no file on the 7th
        local={"archive_url": "received/archiv/{date}/{date}_{type}_sensor_{id}.csv"},
        files={"sensor_community/2019-01-08_sds011_sensor_15092.csv":
                   "received/archiv/2019-01-08/2019-01-08_sds011_sensor_15092.csv"}),
    "dwd_cdc": Case(
        "precipitation-dresden-hourly", url={"stations": ["00433"]},
        local={"base_url": "received/dwd"},
        files={"dwd/RR_Stundenwerte_Beschreibung_Stationen.txt":
                   f"{DWD}/RR_Stundenwerte_Beschreibung_Stationen.txt",
               "dwd/hourly_00433_excerpt.zip": f"{DWD}/stundenwerte_RR_00433_akt.zip"}),
    "sensorthings": Case(
        "bikeshare-toronto-sensorthings",
        local={"base_url": None, "things_filter": None, "path": TORONTO},
        files={"sensorthings/things_filtered_206047.json": f"{TORONTO}/Things.json",
               "sensorthings/location_206048.json": f"{TORONTO}/Things(206047)/Locations.json",
               "sensorthings/thing_206047_datastreams.json":
                   f"{TORONTO}/Things(206047)/Datastreams.json",
               "sensorthings/datastream_206051_observations_page1.json":
                   f"{TORONTO}/Datastreams(206051)/Observations.json",
               "sensorthings/datastream_206051_observations_page2.json":
                   f"{TORONTO}/Datastreams(206051)/Observations.skip100.json",
               "sensorthings/datastream_206050_observations.json":
                   f"{TORONTO}/Datastreams(206050)/Observations.json"}),
    "sensorthings paged": Case(
        "air-quality-dresden-sensorthings",
        local={"base_url": None, "things_filter": None, "path": STA_DRESDEN},
        files=_sta_dresden),
}
NOT_BY_URL = {"derived", "situation"}  # they read published datasets, never a URL


def _changed(source: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**source, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def _rows(table: pd.DataFrame) -> pd.DataFrame:
    """The staged rows without dlt's bookkeeping, in one order."""
    rows = table[[c for c in table.columns if not c.startswith("_dlt")]]
    rows = rows.astype("string").fillna("<null>")
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


@pytest.fixture
def run(tmp_path: Path, monkeypatch, request):
    case = CASES[request.param]
    for env in source_env(tmp_path, monkeypatch, [case.dataset], scenario=case.scenario):
        dataset = load_dataset(env["names"][case.dataset], env["root"])
        by_url = case.url if case.replace_source else _changed(dataset.source, case.url)
        yield {"case": case, "env": env, "root": env["root"],
               "by_url": replace(dataset, source=by_url),
               "by_file": replace(dataset, source=_changed(by_url, case.local))}


def test_every_source_type_that_takes_a_url_has_a_local_case():
    covered = {name.split()[0] for name in CASES}
    assert covered == set(SOURCE_TYPES) - NOT_BY_URL
    for name, case in CASES.items():  # each case is of the type it is named after
        definition = REPO / "pipelines" / f"{case.dataset}.toml"
        assert tomllib.loads(definition.read_text("utf-8"))["source"]["type"] == name.split()[0]


@pytest.mark.parametrize("run", list(CASES), indirect=True)
def test_a_source_read_from_local_copies_stages_the_rows_its_urls_give(run, tmp_path):
    case, server = run["case"], run["env"]["server"]
    by_url = _rows(extract(run["by_url"], tmp_path / "state-url").table)
    assert len(by_url) > 0 and server.requests
    for recording, target in case.layout().items():
        (run["root"] / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RECORDINGS / recording, run["root"] / target)
    server.clear_requests()
    by_file = _rows(extract(run["by_file"], tmp_path / "state-file").table)
    assert [r.url for r in server.requests] == []  # nothing went to a server
    pd.testing.assert_frame_equal(by_file, by_url)


@pytest.mark.parametrize("run", list(CASES), indirect=True)
def test_a_local_path_that_does_not_exist_is_one_line_naming_dataset_and_path(run, tmp_path):
    dataset = run["by_file"]
    with pytest.raises(SourceError) as raised:
        extract(dataset, tmp_path / "state")
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{dataset.name}: ")
    assert f"{run['root']}/received/" in message and "not found" in message


def test_a_saved_sensorthings_service_maps_every_link_into_its_folder(tmp_path):
    saved = SavedAnswers("air", tmp_path, "received/sta")
    root = "https://sta.dresden.example/FROST-Server/v1.1"
    assert saved.file_of(f"{tmp_path}/Things") == tmp_path / "Things.json"
    assert saved.file_of(f"{root}/Things(1)/Locations") == tmp_path / "Things(1)/Locations.json"
    page = f"{root}/Datastreams(4)/Observations?$orderby=phenomenonTime%20asc&$top=100&$skip=300"
    assert saved.file_of(page) == tmp_path / "Datastreams(4)/Observations.skip300.json"
    with pytest.raises(SourceError, match=r"^air: https://x\.example/Things: a link without a "
                                          r"version segment"):
        saved.file_of("https://x.example/Things")


@pytest.mark.parametrize("run", ["sensorthings paged"], indirect=True)
def test_a_saved_sensorthings_page_missing_is_named_and_a_filter_beside_path_refused(run, tmp_path):
    for recording, target in _sta_dresden().items():
        if not target.endswith("Datastreams(5)/Observations.skip200.json"):
            (run["root"] / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(RECORDINGS / recording, run["root"] / target)
    dataset = run["by_file"]
    with pytest.raises(SourceError, match=rf"^{dataset.name}: .*/received/sta-dresden/"
                                          r"Datastreams\(5\)/Observations\.skip200\.json: file "
                                          r"not found \(the saved answer for https://sta\.dresden"
                                          r"\.example/.*\$skip=200 below \[source\] path = "):
        extract(dataset, tmp_path / "state")
    filtered = replace(dataset, source={**dataset.source, "things_filter": "@iot.id eq 1"})
    with pytest.raises(ConfigError, match="things_filter is a server's query and is not applied"):
        make_resource(filtered)
