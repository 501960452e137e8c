"""The bad-input corpus (tests/corpus/make_corpus.py, over 100 files for every source type that
reads files or answers: tabular CSV and XLSX, json_records, ogcapi_features, sensor_community
live and archive, wfs, dwd_cdc zips and station list, pegelonline, pegelonline_gauges,
sensorthings), each through the source's own parser — JSON over HTTP through the real client
and the replay server — and, for the register sources, through validation, the gate and
georeferencing. Every case asserts its outcome: a one-line SourceError with its key words
(exit 3), a GateError (exit 4), the quarantine rule, the warning rule, or a clean parse.
`derived` reads only published tables, never a file from outside, and is not in the corpus.
A few of these files run end to end against the local CKAN in
tests/integration/test_hostile_corpus_run.py."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from odp.errors import GateError, OdpError, SourceError
from odp.sources import ogcapi, wfs
from odp.sources.complete import load_json
from odp.sources.dwd_cdc import parse_station_list, read_archive
from odp.sources.features import FeatureColumns, feature_table
from odp.sources.frames import utc_iso
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.json_records import RecordShape, flatten
from odp.sources.pegelonline import measurements_of
from odp.sources.pegelonline_gauges import station_list
from odp.sources.sensor_community import archive_frame, live_frame
from odp.sources.sensorthings import observations_frame, pages
from odp.sources.settings import settings_of
from odp.sources.tabular import Conventions, TableLayout, read_table, shape
from odp.validate import check_gate, validate_batch
from odp_dev.replay import ReplayServer
from tests.corpus.make_corpus import FAMILIES, Case, build
from tests.unit.test_validate import NOW, dataset

REPO = Path(__file__).resolve().parents[2]
VALUE_TYPES = {"P1": "pm10", "P2": "pm2_5"}
HTTP = "https://corpus.example"
VALIDATED = {"tabular": "transit-stops-vvo", "json_records": "schools-dresden"}
GAUGE = "elbe-water-level-dresden"  # validates the PEGELONLINE cases expected to quarantine


def _source(name: str) -> dict[str, Any]:
    return tomllib.loads((REPO / "pipelines" / f"{name}.toml").read_text())["source"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, bytes]]:
    folder = tmp_path_factory.mktemp("corpus")
    return {c.file: (c, (folder / c.file).read_bytes()) for c in build(folder)}


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(REPO / "tests" / "recordings") as server, pytest.MonkeyPatch.context() as env:
        env.setenv("ODP_REPLAY_URL", server.url)
        yield server


@pytest.fixture(scope="module")
def baseline() -> dict[str, int]:
    """Rows the REAL unmodified file already rejects, per validated kind (the VVO register has
    two stops with broken quoting): a case's own rejections come on top."""
    from tests.corpus.make_corpus import SCHOOLS, VVO

    found = {}
    for kind, data in (("tabular", VVO), ("json_records", SCHOOLS)):
        result = validate_batch(PARSERS[kind](data, kind), dataset(VALIDATED[kind]), "base",
                                now=NOW)
        found[kind] = result.rejected_rows
    return found


# --- one parser per kind -------------------------------------------------------------------


def _tabular(data: bytes, where: str) -> pd.DataFrame:
    source = _source("transit-stops-vvo")
    return shape(read_table(data, settings_of(TableLayout, source), where),
                 settings_of(Conventions, source), where)


def _features(payload: Any, where: str, source: dict[str, Any]) -> pd.DataFrame:
    ids, props, geoms = ogcapi.parse_page(payload, where)
    return feature_table(ids, props, geoms, settings_of(FeatureColumns, source), where)


def _wfs(data: bytes, where: str) -> pd.DataFrame:
    source = _source("stadtteile-dresden")
    ids, props, geoms, _ = wfs.parse_page(data, settings_of(wfs.GetFeature, source), where)
    return feature_table(ids, props, geoms, settings_of(FeatureColumns, source), where)


PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "tabular": _tabular,
    "tabular-xlsx": lambda data, where: read_table(data, TableLayout(format="xlsx"), where),
    "json_records": lambda data, where: flatten(
        load_json(data, where), settings_of(RecordShape, _source("schools-dresden")), where),
    "ogcapi_features": lambda data, where: _features(load_json(data, where), where,
                                                     _source("car-parks-dresden")),
    "sensor_community": lambda data, where: live_frame(load_json(data, where), VALUE_TYPES,
                                                       where),
    "sensor_community-archive": lambda data, where: archive_frame(data, VALUE_TYPES, where),
    "wfs": _wfs,
    "dwd_cdc": lambda data, where: read_archive(data, where)[0],
    "dwd_cdc-stations": lambda data, where: parse_station_list(data, where),
}


def _over_http(replay: ReplayServer, name: str, data: bytes) -> Any:
    """JSON answers through the real client: the body served for the source's URL."""
    client = SourceClient("corpus", HttpSettings(max_attempts=1))
    replay.clear_faults()
    kind = "text/html" if data.startswith(b"<!DOCTYPE html") else "application/json"
    replay.override(f"{HTTP}/", 200, data, kind)
    if name.startswith("pegelonline-"):
        return measurements_of(client, f"{HTTP}/stations/x/W/measurements.json", "P1D")
    if name.startswith("gauges-"):
        return station_list(client, HTTP, "ELBE", [])
    found = [observations_frame(values, f"corpus: {HTTP}/Observations")
             for values in pages(client, f"{HTTP}/Datastreams(1)/Observations", None)]
    return pd.concat(found)


def _parse(case: Case, data: bytes, replay: ReplayServer) -> Any:
    where = f"corpus: {case.file}"
    if case.kind == "http-json":
        return _over_http(replay, case.file.split("/")[-1], data)
    return PARSERS[case.kind](data, where)


# --- the outcomes --------------------------------------------------------------------------


def _one_line_with(error: OdpError, words: tuple[str, ...]) -> None:
    message = str(error)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)


def _validated(case: Case, frame: pd.DataFrame, tmp_path: Path) -> tuple[Any, Any]:
    if case.kind == "http-json":  # a gauge's measurements, as the pegelonline source shapes them
        ds = dataset(GAUGE)
        frame = pd.DataFrame({"station_uuid": "70272185-b2b3-4178-96b8-43bea330dcae",
                              "station_name": "DRESDEN", "water": "ELBE",
                              "timestamp": utc_iso(frame["timestamp"]),
                              "water_level": frame["value"], "longitude": "13.738",
                              "latitude": "51.054"}, index=frame.index)
        return validate_batch(frame, ds, "corpus", now=NOW + timedelta(days=2)), ds
    ds = dataset(VALIDATED[case.kind])
    return validate_batch(frame, ds, "corpus", now=NOW), ds


def _case_ids() -> list[str]:
    """The corpus's file names, known at collection time (the files are written once per run)."""
    return [f"{kind}/{name}" for kind, (family, _) in FAMILIES.items() for name, *_ in family()]


# Files whose expected outcome the code does not reach yet (file -> why): none at present.
KNOWN_GAPS: dict[str, str] = {}


@pytest.mark.parametrize("file", [
    pytest.param(f, marks=pytest.mark.xfail(reason=KNOWN_GAPS[f], strict=True))
    if f in KNOWN_GAPS else f for f in _case_ids()])
def test_each_corpus_file_gives_its_expected_outcome(file, corpus, replay, baseline, tmp_path):
    case, data = corpus[file]
    if case.expect == "source":
        with pytest.raises(SourceError) as caught:
            _parse(case, data, replay)
        _one_line_with(caught.value, case.words)
        return
    parsed = _parse(case, data, replay)
    if case.kind not in VALIDATED and case.expect != "quarantine":
        assert case.expect == "ok", case
        if case.words:
            assert len(parsed) == int(case.words[0])
        return
    result, ds = _validated(case, parsed, tmp_path)
    rules = set(result.findings["rule"])
    before = baseline.get(case.kind, 0)
    if case.expect == "gate":
        with pytest.raises(GateError) as caught:
            check_gate(result, ds, tmp_path)
        _one_line_with(caught.value, case.words)
    elif case.expect == "quarantine":
        assert case.words[0] in rules and result.rejected_rows > before, rules
        check_gate(result, ds, tmp_path)  # one bad row: the rest is published
    elif case.expect == "warning":
        assert case.words[0] in rules and result.rejected_rows == before, rules
    elif case.expect == "georeference":
        from odp.georeference.stage import georeference
        from odp.spec import load_city, load_dataset

        located = georeference(result.valid, load_dataset(ds.name, REPO), load_city(REPO))
        assert case.words[0] in set(located.rejected["rule"]), located.rejected
    else:
        # (a file cut at a row may have lost some of the baseline's bad rows)
        assert case.expect == "ok" and result.rejected_rows <= before, result.messages()
        check_gate(result, ds, tmp_path)


def test_the_corpus_has_over_100_files_covering_every_file_reading_source_type(corpus):
    kinds = {case.kind for case, _ in corpus.values()}
    assert len(corpus) >= 100
    assert kinds == {*PARSERS, "http-json"}
    expected = {case.expect for case, _ in corpus.values()}
    assert expected == {"source", "gate", "quarantine", "warning", "georeference", "ok"}


# --- JSON over HTTP and from a file: one parser ------------------------------------------------

SAME_BODIES = {
    "nan": b'[{"v": NaN, "w": 1.5}]',
    "infinities": b'[{"v": Infinity, "w": -Infinity}]',
    "1e400": b'[{"v": 1e400, "w": -1e400}]',
    "long integer": b'[{"v": ' + b"9" * 5000 + b"}]",
    "utf-16 with bom": '[{"v": "Straße"}]'.encode("utf-16"),
    "utf-8 with bom": b'\xef\xbb\xbf[{"v": "Stra\xc3\x9fe"}]',
}


@pytest.mark.parametrize("body", SAME_BODIES.values(), ids=SAME_BODIES.keys())
def test_json_over_http_is_parsed_exactly_as_the_same_json_from_a_file(body, replay, tmp_path):
    client = SourceClient("corpus", HttpSettings(max_attempts=1))
    replay.clear_faults()
    replay.override(f"{HTTP}/", 200, body, "application/json")
    (tmp_path / "x.json").write_bytes(body)
    from_file = load_json((tmp_path / "x.json").read_bytes(), "corpus: x.json")
    over_http = client.get_json(f"{HTTP}/x.json")
    assert over_http == from_file
    # what JSON cannot hold as a finite number stays the text sent (validation rejects it)
    assert all(not isinstance(v, float) or abs(v) < float("inf") for v in over_http[0].values())


def test_json_not_json_at_all_over_http_is_one_line_naming_dataset_and_url(replay):
    client = SourceClient("schools-dresden", HttpSettings(max_attempts=1))
    replay.clear_faults()
    replay.override(f"{HTTP}/", 200, b"Wartungsarbeiten bis 14 Uhr", "application/json")
    with pytest.raises(SourceError) as caught:
        client.get_json(f"{HTTP}/schools.json")
    assert str(caught.value) == (f"schools-dresden: {HTTP}/schools.json: malformed JSON at line "
                                 "1, column 1: Expecting value")


def test_json_in_the_charset_the_server_declares_is_read_and_without_one_must_be_utf8(replay):
    client = SourceClient("corpus", HttpSettings(max_attempts=1))
    replay.clear_faults()
    latin1 = '[{"v": "Straße"}]'.encode("iso-8859-1")
    replay.override(f"{HTTP}/", 200, latin1, "application/json; charset=ISO-8859-1")
    assert client.get_json(f"{HTTP}/x.json") == [{"v": "Straße"}]
    replay.clear_faults()
    replay.override(f"{HTTP}/", 200, latin1, "application/json")
    with pytest.raises(SourceError, match=r"^corpus: .*/x.json: not UTF-8 JSON \(byte offset 12"):
        client.get_json(f"{HTTP}/x.json")
