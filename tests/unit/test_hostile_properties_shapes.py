"""Property tests (hypothesis) of the parsers that shape a decoded answer into rows, beside
tests/unit/test_hostile_properties.py (bytes → CSV, JSON, XML, DWD files): any JSON value given
as a GeoJSON page (ogcapi_features), a sensor.community live answer or a SensorThings page of
observations, and any bytes given as a sensor.community archive day or an XLSX workbook, give
rows or a one-line SourceError — never another exception. Each gets JSON-shaped values close to
what it expects (objects with its keys, wrong types inside) as well as arbitrary ones."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odp.errors import SourceError
from odp.sources.features import FeatureColumns, feature_table
from odp.sources.ogcapi import parse_page
from odp.sources.sensor_community import archive_frame, live_frame
from odp.sources.sensorthings import observations_frame
from odp.sources.tabular import TableLayout, read_table

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WHERE = "prop: answer"
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


def _keyed(keys: list[str]) -> st.SearchStrategy:
    """Objects with (some of) the keys a parser expects, any JSON as their values."""
    return st.fixed_dictionaries({}, optional={k: JSON for k in keys})


def _rows_or_one_line(parse, *args) -> None:
    try:
        found = parse(*args)
    except SourceError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(found, pd.DataFrame | tuple)


GEOMETRY = _keyed(["type", "coordinates"]) | JSON
FEATURE = st.fixed_dictionaries({}, optional={"type": st.just("Feature") | JSON, "id": JSON,
                                              "properties": JSON, "geometry": GEOMETRY})
PAGE = st.fixed_dictionaries({}, optional={"type": st.just("FeatureCollection") | JSON,
                                           "features": st.lists(FEATURE, max_size=4) | JSON})


@FAST
@given(PAGE | JSON)
def test_any_json_as_a_geojson_page_gives_features_or_a_one_line_source_error(payload):
    def parse(value):
        ids, props, geoms = parse_page(value, WHERE)
        return feature_table(ids, props, geoms, FeatureColumns(), WHERE)

    _rows_or_one_line(parse, payload)


SENSOR = _keyed(["sensor", "location", "timestamp", "sensordatavalues"])


@FAST
@given(st.lists(SENSOR, max_size=4) | JSON)
def test_any_json_as_a_sensor_community_answer_gives_rows_or_a_one_line_source_error(payload):
    _rows_or_one_line(live_frame, payload, {"P1": "pm10", "P2": "pm2_5"}, WHERE)


OBSERVATION = _keyed(["@iot.id", "phenomenonTime", "result", "resultTime"])


@FAST
@given(st.lists(OBSERVATION | JSON, max_size=4))
def test_any_json_as_sensorthings_observations_gives_rows_or_a_one_line_source_error(values):
    _rows_or_one_line(observations_frame, values, WHERE)


ARCHIVE_HEAD = b"sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2\n"


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_as_a_sensor_community_archive_day_give_rows_or_a_source_error(data, head):
    _rows_or_one_line(archive_frame, (ARCHIVE_HEAD if head else b"") + data,
                      {"P1": "pm10", "P2": "pm2_5"}, WHERE)


@FAST
@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_as_an_xlsx_workbook_give_rows_or_a_one_line_source_error(data, zipped):
    body = (b"PK\x03\x04" + data) if zipped else data
    _rows_or_one_line(read_table, body, TableLayout(format="xlsx"), WHERE)
