"""Complete deliveries only: REAL recordings (tests/recordings/*/README.md) served faulty by the
replay server — cut with and without Content-Length, dripping, an HTML page with status 200 —
through the production client and the source types. Every fault is a one-line SourceError
naming the dataset and the URL; a CSV that merely lacks its final line end still passes."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.sources.http import HttpSettings, take_downloaded
from odp.sources.ogcapi import read_collection
from odp.sources.tabular import read_all
from odp.sources.wfs import read_features
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

STOPS = "transit-stops-vvo"
STOPS_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
             "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")
STOPS_FILE = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"
SCHOOLS = "schools-dresden"
SCHOOLS_URL = ("https://raw.githubusercontent.com/ADFC-Sachsen-Projekt-30/projekt30/main/apps/"
               "web/src/data/schools.json")
SCHOOLS_FILE = RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json"
CAR_PARKS = "car-parks-dresden"
CAR_PARKS_URL = ("https://raw.githubusercontent.com/offenesdresden/ParkAPI/"
                 "696f06ace12e4449a5bf5db8a3e048870b89fff6/park_api/cities/Dresden.geojson")
STADTTEILE = "stadtteile-dresden"
WFS_URL = "https://wfs.dresden.example/wfs"
DWD = "precipitation-dresden-hourly"
DWD_LIST = ("https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/"
            "hourly/precipitation/recent/RR_Stundenwerte_Beschreibung_Stationen.txt")
DWD_LIST_FILE = RECORDINGS / "dwd" / "RR_Stundenwerte_Beschreibung_Stationen.txt"


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ODP_HTTP_MAX_ATTEMPTS", "3")
    names = [STOPS, SCHOOLS, CAR_PARKS, STADTTEILE, DWD]
    for env in source_env(tmp_path, monkeypatch, names, scenario="2024-11-20"):
        env["load"] = lambda name, env=env: load_dataset(env["names"][name], env["root"])
        yield env


def _one_line_error(call, dataset, url: str) -> str:
    """The SourceError `call()` raises: one line, naming the dataset and the URL."""
    with pytest.raises(SourceError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{dataset.name}: {url}"), message
    return message


def _line_start(data: bytes, number: int) -> int:
    """Byte offset where 1-based line `number` begins."""
    offset = 0
    for _ in range(number - 1):
        offset = data.index(b"\n", offset) + 1
    return offset


# --- cut short ---------------------------------------------------------------------------------


def test_a_csv_cut_short_of_its_content_length_is_a_source_error_after_the_retries(env):
    stops, body = env["load"](STOPS), STOPS_FILE.read_bytes()
    env["server"].cut(STOPS_URL, 200_000)
    message = _one_line_error(lambda: read_all(stops), stops, STOPS_URL)
    assert message == (f"{stops.name}: {STOPS_URL} body cut short: 200000 of {len(body)} bytes "
                       "(3 attempts)")
    assert [r.body_bytes for r in env["server"].requests] == [200_000] * 3


def test_a_body_cut_once_is_read_again_and_the_whole_file_arrives(env):
    stops = env["load"](STOPS)
    take_downloaded(stops.name)
    env["server"].cut(STOPS_URL, 200_000, times=1)
    table = read_all(stops)
    assert len(table) == 4373 and table["latitude"].iloc[-1] == "51.378736"
    assert [r.body_bytes for r in env["server"].requests] == [200_000, STOPS_FILE.stat().st_size]
    assert take_downloaded(stops.name) == STOPS_FILE.stat().st_size  # only the whole body counts


def test_a_csv_cut_mid_line_without_content_length_is_a_source_error_naming_the_line(env):
    stops, body = env["load"](STOPS), STOPS_FILE.read_bytes()
    # line 2000 is "de:14612:…;Dresden …;…": cut after its first 15 bytes (two cells)
    env["server"].cut(STOPS_URL, _line_start(body, 2000) + 15, content_length=False)
    message = _one_line_error(lambda: extract(stops, env["state"]), stops, STOPS_URL)
    assert message.endswith(f"{STOPS_URL}: line 2000: the body ends mid-record (2 of 9 cells, "
                            "no line end): cut short")


def test_a_csv_cut_inside_a_quoted_cell_names_the_line(env):
    stops, body = env["load"](STOPS), STOPS_FILE.read_bytes()
    # line 111: de:14612:128;Dresden Betriebshof Reick;";hof Reick";… — cut inside the quotes
    cut = body.index(b'";hof Reick') + 5
    env["server"].cut(STOPS_URL, cut, content_length=False)
    message = _one_line_error(lambda: read_all(stops), stops, STOPS_URL)
    assert message.endswith(": line 111: a quoted cell is still open at the end of the body "
                            "(cut short)")


def test_a_csv_without_its_final_line_end_is_still_accepted(env):
    stops, body = env["load"](STOPS), STOPS_FILE.read_bytes()
    assert body.endswith(b"\r\n")
    env["server"].override(STOPS_URL, 200, body[:-2], "text/csv")
    table = read_all(stops)
    assert len(table) == 4373
    assert (table["longitude"].iloc[-1], table["latitude"].iloc[-1]) == ("14.464182", "51.378736")


def test_a_json_register_that_does_not_close_is_a_truncated_body(env):
    schools, body = env["load"](SCHOOLS), SCHOOLS_FILE.read_bytes()
    env["server"].cut(SCHOOLS_URL, len(body) // 2, content_length=False)
    message = _one_line_error(lambda: extract(schools, env["state"]), schools, SCHOOLS_URL)
    assert ": malformed JSON at line " in message
    assert message.endswith("the body is truncated "
                            f"({len(body[:len(body) // 2].decode('utf-8', 'ignore'))} characters;"
                            " it ends before the JSON closes)")


def test_a_geojson_cut_without_content_length_is_a_truncated_body(env):
    car_parks = env["load"](CAR_PARKS)
    env["server"].cut(CAR_PARKS_URL, -100, content_length=False)  # all but the last 100 bytes
    message = _one_line_error(lambda: read_collection(car_parks), car_parks, CAR_PARKS_URL)
    assert "(page 1): malformed JSON at line" in message and "the body is truncated" in message


def test_a_malformed_but_complete_json_says_where_and_is_not_called_truncated(env):
    schools, body = env["load"](SCHOOLS), SCHOOLS_FILE.read_bytes()
    broken = body.replace(b'"buildings"', b'"buildings" "', 1)
    env["server"].override(SCHOOLS_URL, 200, broken, "application/json")
    message = _one_line_error(lambda: extract(schools, env["state"]), schools, SCHOOLS_URL)
    assert ": malformed JSON at line " in message and "truncated" not in message


def test_a_wfs_page_cut_without_content_length_is_a_truncated_body(env):
    stadtteile = env["load"](STADTTEILE)
    env["server"].cut(WFS_URL, 30_000, content_length=False)
    message = _one_line_error(lambda: read_features(stadtteile), stadtteile, WFS_URL)
    assert "(page 1): malformed XML at line" in message
    assert message.endswith("the body is truncated (it ends before the document closes)")


def test_a_fixed_width_station_list_cut_mid_row_names_the_line(env):
    dwd, body = env["load"](DWD), DWD_LIST_FILE.read_bytes()
    env["server"].cut(DWD_LIST, _line_start(body, 500) + 120, content_length=False)
    message = _one_line_error(lambda: extract(dwd, env["state"]), dwd, DWD_LIST)
    assert message.endswith(f"{DWD_LIST}: line 500: the body ends mid-row (no line end): "
                            "cut short")


# --- too slow, too large -----------------------------------------------------------------------


def test_a_drip_beyond_the_deadline_stops_with_the_bytes_received(env, monkeypatch):
    monkeypatch.setenv("ODP_HTTP_DEADLINE", "1.5")
    stops = env["load"](STOPS)
    env["server"].drip(STOPS_URL, 1000, 0.25)  # never trips the read timeout (30 s)
    began = time.monotonic()
    message = _one_line_error(lambda: extract(stops, env["state"]), stops, STOPS_URL)
    assert time.monotonic() - began < 6
    assert " did not finish within 1.5 s (" in message and message.endswith(" bytes received)")
    received = int(message.rsplit("(", 1)[1].split()[0])
    assert 1000 <= received <= 8000
    assert len(env["server"].requests) == 1  # a deadline is not retried


def test_a_body_larger_than_max_bytes_stops_before_it_is_read(env, monkeypatch):
    monkeypatch.setenv("ODP_HTTP_MAX_BYTES", "100000")
    stops, size = env["load"](STOPS), STOPS_FILE.stat().st_size
    message = _one_line_error(lambda: read_all(stops), stops, STOPS_URL)
    assert message == (f"{stops.name}: {STOPS_URL} announces {size} bytes, more than max_bytes "
                       "(100000)")
    # without a Content-Length the cap stops the reading as soon as it is passed
    env["server"].cut(STOPS_URL, size, content_length=False)
    message = _one_line_error(lambda: read_all(stops), stops, STOPS_URL)
    assert message == f"{stops.name}: {STOPS_URL} sent more than max_bytes (100000 bytes); stopped"


def test_deadline_and_max_bytes_come_from_the_source_table_and_the_environment(monkeypatch):
    assert HttpSettings().deadline == 300 and HttpSettings().max_bytes == 512 * 1024 * 1024
    settings = HttpSettings.from_source({"deadline": 60, "max_bytes": 1_000_000})
    assert (settings.deadline, settings.max_bytes) == (60, 1_000_000)
    monkeypatch.setenv("ODP_HTTP_DEADLINE", "5")
    assert HttpSettings.from_source({"deadline": 60}).deadline == 5


# --- HTML instead of data ----------------------------------------------------------------------


def test_an_html_page_with_status_200_is_refused_instead_of_csv(env):
    stops = env["load"](STOPS)
    env["server"].html_page(STOPS_URL)
    message = _one_line_error(lambda: extract(stops, env["state"]), stops, STOPS_URL)
    assert message == f"{stops.name}: {STOPS_URL} answered an HTML page instead of CSV"
    # also when the server labels the page as CSV: the body gives it away
    env["server"].clear_faults()
    env["server"].override(STOPS_URL, 200, b"  <!DOCTYPE html><html><body>Fehler</body></html>",
                           "text/csv")
    message = _one_line_error(lambda: read_all(stops), stops, STOPS_URL)
    assert message.endswith("answered an HTML page instead of CSV")


def test_an_html_page_instead_of_json_or_xml_is_refused(env):
    schools, stadtteile = env["load"](SCHOOLS), env["load"](STADTTEILE)
    env["server"].html_page(SCHOOLS_URL)
    env["server"].html_page(WFS_URL)
    message = _one_line_error(lambda: extract(schools, env["state"]), schools, SCHOOLS_URL)
    assert message.endswith(" answered an HTML page instead of JSON")
    message = _one_line_error(lambda: read_features(stadtteile), stadtteile, WFS_URL)
    assert message.endswith(" answered an HTML page instead of XML")


def test_a_csv_merely_labelled_text_html_still_passes(env):
    stops = env["load"](STOPS)
    env["server"].override(STOPS_URL, 200, STOPS_FILE.read_bytes(), "text/html; charset=utf-8")
    assert len(read_all(stops)) == 4373


# --- the replay server's faults themselves -----------------------------------------------------


def _raw_get(env, url: str) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urlsplit(env["server"].url_for(url))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    try:
        return response, response.read()
    except http.client.IncompleteRead as exc:
        return response, exc.partial


def test_the_replay_server_cuts_a_recorded_body_with_and_without_content_length(env):
    body = STOPS_FILE.read_bytes()
    env["server"].cut(STOPS_URL, 1234, times=1)
    env["server"].cut(STOPS_URL, 999, content_length=False, times=1)
    response, got = _raw_get(env, STOPS_URL)
    assert response.getheader("Content-Length") == str(len(body)) and got == body[:1234]
    response, got = _raw_get(env, STOPS_URL)
    assert response.getheader("Content-Length") is None and got == body[:999]
    assert response.getheader("Connection") == "close"
    response, got = _raw_get(env, STOPS_URL)  # both used up: the recording again
    assert got == body


def test_the_replay_server_drips_and_serves_html_pages(env):
    body = SCHOOLS_FILE.read_bytes()
    env["server"].drip(SCHOOLS_URL, len(body) // 3 + 1, 0.2, times=1)
    began = time.monotonic()
    response, got = _raw_get(env, SCHOOLS_URL)
    assert got == body and 0.35 < time.monotonic() - began < 3  # three steps, two pauses
    env["server"].html_page(SCHOOLS_URL, times=1)
    response, got = _raw_get(env, SCHOOLS_URL)
    assert response.status == 200 and got.startswith(b"<!DOCTYPE html>")
    assert response.getheader("Content-Type").startswith("text/html")
