"""GML axis order in the WFS source, on the REAL Hamburg GetFeature answer (EPSG:25832): the
same positions written northing first — under the EPSG axis order of EPSG:3044, with
`axisLabels="N E"`, or by mistake under `EPSG:25832` — come out as the original easting and
northing, to the millimetre, and the log states the order applied."""

from __future__ import annotations

import logging
import re

import pytest

from odp.errors import SourceError
from odp.sources.wfs import GetFeature, parse_page
from tests.helpers import RECORDINGS

ANSWER = (RECORDINGS / "wfs" / "hamburg_HH_WFS_GAGES_getfeature_findeStadtteil_bar_2018.xml"
          ).read_bytes()
SOURCE = GetFeature(geometry_property="position")
BARMBEK_NORD = (569569.732, 5939046.574)  # the answer's gml:pos, easting first


def _northing_first(data: bytes) -> bytes:
    def swap(match: re.Match) -> bytes:
        values = match.group(2).split()
        pairs = [values[i + 1] + b" " + values[i] for i in range(0, len(values), 2)]
        return match.group(1) + b" ".join(pairs) + match.group(3)
    return re.sub(rb"(<gml:pos(?:List)?>)([^<]+)(</gml:pos(?:List)?>)", swap, data)


def _position(data: bytes) -> tuple[float, float]:
    _, _, geoms, _ = parse_page(data, SOURCE, "test")
    return geoms[0].x, geoms[0].y


def test_the_real_answer_in_25832_keeps_easting_first(caplog):
    caplog.set_level(logging.INFO, logger="odp.sources.wfs")
    assert _position(ANSWER) == BARMBEK_NORD
    assert ("urn:ogc:def:crs:EPSG::25832: axis order east, north (EPSG axis order of "
            "EPSG:25832: E, N); kept") in caplog.text


@pytest.mark.parametrize(("srs", "labels", "rule"), [
    ("urn:ogc:def:crs:EPSG::3044", "", "EPSG axis order of EPSG:3044: N, E"),
    ("http://www.opengis.net/def/crs/EPSG/0/3044", "", "EPSG axis order of EPSG:3044: N, E"),
    ("urn:ogc:def:crs:EPSG::25832", ' axisLabels="N E"', 'axisLabels "N E"'),
    ("EPSG:25832", "", "the data: every position lies in the area of EPSG:25832 only with the "
                       "axes the other way round"),
])
def test_northing_first_positions_come_out_as_easting_northing(caplog, srs, labels, rule):
    caplog.set_level(logging.INFO, logger="odp.sources.wfs")
    data = _northing_first(ANSWER).replace(b'srsName="urn:ogc:def:crs:EPSG::25832"',
                                           f'srsName="{srs}"{labels}'.encode())
    assert _position(data) == BARMBEK_NORD
    assert f"{srs}: axis order north, east ({rule}); swapped to east, north" in caplog.text


def test_an_srs_name_pyproj_does_not_know_is_named():
    data = ANSWER.replace(b"EPSG::25832", b"EPSG::99999")
    with pytest.raises(SourceError, match=r"feature 1 \(HH_KRS_91435\): field 'position': "
                                          r"srsName: CRS EPSG:99999 is not known to pyproj"):
        parse_page(data, SOURCE, "test")
