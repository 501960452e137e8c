"""The bad-input corpus: hostile and broken files for every source type, each with the outcome
the engine must give. Most are made from the REAL recordings in tests/recordings (cut, re-encoded,
prefixed, poisoned); the rest are constructed (XML bombs, zip bombs, invalid JSON).

    uv run python -m tests.corpus.make_corpus OUT   # writes the files and OUT/cases.json

A case: the file, the parser it goes through (`kind`, see tests/unit/test_hostile_corpus.py),
and the expected outcome:
  source      a one-line SourceError holding every word of `words` (exit 3)
  gate        parsed, then held back by validation: GateError holding `words` (exit 4)
  quarantine  parsed; validation rejects rows with the rule `words[0]`
  warning     parsed; validation warns with the rule `words[0]`, nothing rejected
  georeference  parsed and validated; georeferencing rejects rows with the rule `words[0]`
  ok          parsed; `words` (if any) are the rows expected, as text
"""

from __future__ import annotations

import codecs
import io
import json
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.corpus.bombs import GIB, MIB, stored_zip, zip_bomb

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
VVO = (RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv").read_bytes()
SCHOOLS = (RECORDINGS / "schools" / "sachsen_schools_schuldatenbank.json").read_bytes()
PARKING = (RECORDINGS / "parking_dresden" / "ParkAPI_Dresden.geojson").read_bytes()
WFS = (RECORDINGS / "wfs" / "stadtteile_25833_start0.xml").read_bytes()
DWD = (RECORDINGS / "dwd" / "hourly_01048_2024-11-22.zip").read_bytes()
STATIONS = (RECORDINGS / "dwd" / "RR_Stundenwerte_Beschreibung_Stationen.txt").read_bytes()
SDS011 = (RECORDINGS / "sensor_community" / "2019-01-08_sds011_sensor_15092.csv").read_bytes()
LIVE = (RECORDINGS / "sensor_community" / "area_dresden_first.json").read_bytes()
THINGS = (RECORDINGS / "sensorthings" / "datastream_206050_observations.json").read_bytes()
GAUGE = (RECORDINGS / "pegelonline" / "measurements_2024-11-20.json").read_bytes()
GAUGES = (RECORDINGS / "pegelonline_gauges" / "stations_elbe_timeseries.json").read_bytes()


@dataclass(frozen=True)
class Case:
    file: str
    kind: str
    expect: str
    words: tuple[str, ...] = ()
    origin: str = "constructed"  # or the recording it was made from


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _cut_mid_line(data: bytes, share: float = 0.5) -> bytes:
    at = data.index(b"\n", int(len(data) * share))
    return data[: at + 12]


def _cut_at_row(data: bytes, share: float = 0.5) -> bytes:
    return data[: data.index(b"\n", int(len(data) * share)) + 1]


def _row_with(data: bytes, row: int, old: bytes, new: bytes) -> bytes:
    lines = _lines(data)
    assert old in lines[row], (row, old)
    lines[row] = lines[row].replace(old, new, 1)
    return b"".join(lines)


# --- CSV: the tabular source (the VVO stop register) -----------------------------------------


def tabular_csv() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    first = _lines(VVO)[1]
    yield "empty.csv", b"", "source", ("the file is empty",)
    yield "blank-lines.csv", b"\n\n\n", "source", ("the file is empty",)
    yield "header-only.csv", _lines(VVO)[0], "gate", ("0 rows",)
    yield "header-only-no-newline.csv", _lines(VVO)[0].rstrip(b"\n"), "gate", ("0 rows",)
    yield "cut-mid-line.csv", _cut_mid_line(VVO), "source", ("the body ends mid-record",
                                                             "cut short")
    yield "cut-in-quoted-cell.csv", VVO[:2000] + b'\nde:x;"open quote;', "source", (
        "a quoted cell is still open",)
    yield "cut-at-row.csv", _cut_at_row(VVO), "ok", ()
    yield "latin1-undeclared.csv", VVO.decode("utf-8").encode("iso-8859-1"), "source", (
        "not UTF-8", "byte 0xDF", 'encoding = "iso-8859-1"')
    yield "cp1252-undeclared.csv", VVO.decode("utf-8").encode("cp1252"), "source", ("not UTF-8",)
    yield "utf8-bom.csv", codecs.BOM_UTF8 + VVO, "ok", ()
    yield "utf16-bom.csv", VVO.decode("utf-8").encode("utf-16"), "ok", ()
    yield "utf16-bom-cut.csv", VVO.decode("utf-8").encode("utf-16")[:1001], "source", (
        "not utf-16", "cut short")
    yield "bom-then-latin1.csv", codecs.BOM_UTF8 + VVO.decode().encode("latin-1"), "source", (
        "byte-order mark", "is not UTF-8")
    yield "nul-bytes.csv", VVO[:3000] + b"\x00\x00\x00" + VVO[3000:], "quarantine", (
        "nul_character",)
    yield "binary-garbage.csv", bytes(range(256)) * 40, "source", ("not UTF-8",)
    yield "preamble-title.csv", b"Haltestellen VVO Stand 2019\n" + VVO, "source", (
        "line 2: 9 cells where the first line has 1",)
    yield "preamble-blank-and-title.csv", b";;;\nExport vom 01.01.2019;;;\n" + VVO, "source", (
        "line 3: 9 cells where the first line has 4",)
    yield "extra-cell.csv", _row_with(VVO, 5, b"\r\n", b";surplus\r\n"), "source", (
        "line 6: 10 cells where the first line has 9",)
    lines = _lines(VVO)
    yield "new-column.csv", b"".join([lines[0].replace(b"\r\n", b";Bemerkung\r\n")] + [
        line.replace(b"\r\n", b";x\r\n") for line in lines[1:]]), "gate", ("schema drift",
                                                                          "Bemerkung")
    yield "duplicate-header.csv", VVO.replace(b"Name ohne Ort", b"Name mit Ort", 1), "source", (
        "duplicate column names",)
    yield "missing-column.csv", b"\n".join(
        b";".join(line.split(b";")[:8]) for line in VVO.split(b"\n")), "source", (
        "no column 'WGS84_Y' (german_numbers)",)
    yield "renamed-column.csv", VVO.replace(b"WGS84_Y", b"LAT", 1), "source", (
        "no column 'WGS84_Y'",)
    yield "semicolon-vs-comma.csv", VVO.replace(b";", b","), "source", ("no column 'WGS84_X'",)
    yield "html-page.csv", b"<!DOCTYPE html><html><body>Wartung</body></html>\n", "source", (
        "no column 'WGS84_X'",)
    yield "duplicate-row.csv", VVO + first, "quarantine", ("expect_column_values_to_be_unique",)
    yield "duplicate-key-other-name.csv", VVO + first.replace(b"Bahnhof Mitte", b"Hbf", 1), \
        "quarantine", ("expect_column_values_to_be_unique",)
    yield "giant-cell.csv", _row_with(VVO, 3, b"Altmarkt;Dresden", b"Altmarkt" + b"x" * 1_200_000
                                      + b";Dresden"), "quarantine", ("max_cell_chars",)
    for i, formula in enumerate([b"=1+2", b'=HYPERLINK(""http://x.example"")', b"@SUM(A1:A9)",
                                 b"+1+2", b"-2+3", b"\tTab", b"=cmd|' /C calc'!A0"], start=1):
        quoted = b'"' + formula + b'"' if b'"' in formula else formula
        yield f"formula-{i}.csv", _row_with(VVO, i, b";Dresden;", b";" + quoted + b";"), \
            "warning", ("formula",)
    # The VVO suite bounds the coordinates to the region: validation quarantines these before
    # georeferencing would (the school register, without such bounds, shows the latter).
    yield "swapped-lat-lon.csv", _row_with(VVO, 1, b"13,723395;51,055642",
                                            b"51,055642;13,723395"), "quarantine", (
        "expect_column_values_to_be_between",)
    yield "null-island.csv", _row_with(VVO, 1, b"13,723395;51,055642", b"0;0"), \
        "quarantine", ("expect_column_values_to_be_between",)
    yield "number-as-text.csv", _row_with(VVO, 1, b"13,723395", b"dreizehn"), "quarantine", (
        "type:number",)
    yield "nan-coordinate.csv", _row_with(VVO, 1, b"13,723395", b"NaN"), "quarantine", (
        "type:number",)
    yield "infinite-coordinate.csv", _row_with(VVO, 1, b"13,723395", b"1e400"), "quarantine", (
        "type:number",)
    yield "missing-key.csv", _row_with(VVO, 1, b"de:14612:1;", b";"), "quarantine", (
        "required",)
    yield "crlf-line-ends.csv", VVO.replace(b"\n", b"\r\n"), "ok", ()
    yield "cr-only-line-ends.csv", VVO.replace(b"\n", b"\r"), "ok", ()
    yield "many-columns.csv", b";".join(b"c%d" % i for i in range(1000)) + b"\n" + b";" * 999 \
        + b"\n", "source", ("no column 'WGS84_X'",)


# --- XLSX: the tabular source with format = "xlsx" -------------------------------------------


def _workbook(sheet_xml: bytes) -> bytes:
    buffer = io.BytesIO()
    parts = {
        "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.'
        b'org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
        b'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
        b'application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
        b'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
        b'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        b'spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats'
        b'.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
        b'formats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"'
        b'/></Relationships>',
        "xl/workbook.xml": b'<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.'
        b'org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets>'
        b'</workbook>',
        "xl/_rels/workbook.xml.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        b'schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="'
        b'worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        for name, data in parts.items():
            book.writestr(name, data)
    return buffer.getvalue()


def _sheet(cells: str, head: str = "") -> bytes:
    return (f'<?xml version="1.0"?>{head}<worksheet xmlns="http://schemas.openxmlformats.org/'
            f'spreadsheetml/2006/main"><sheetData>{cells}</sheetData></worksheet>').encode()


def _row(n: int, *values: str) -> str:
    cells = "".join(f'<c r="{chr(65 + i)}{n}" t="inlineStr"><is><t>{v}</t></is></c>'
                    for i, v in enumerate(values))
    return f'<row r="{n}">{cells}</row>'


def tabular_xlsx() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    good = _row(1, "id", "name") + _row(2, "1", "Altmarkt")
    laughs = ('<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
    yield "good.xlsx", _workbook(_sheet(good)), "ok", ("1",)
    yield "bomb-sheet.xlsx", zip_bomb(GIB, name="xl/worksheets/sheet1.xml"), "source", (
        "xl/worksheets/sheet1.xml", "max_unpacked_bytes", "zip bomb")
    yield "bomb-ratio.xlsx", zip_bomb(64 * MIB, name="xl/sharedStrings.xml"), "source", (
        "compression ratio", "max_ratio 100")
    yield "not-a-zip.xlsx", VVO, "source", ("not a zip archive",)
    yield "cut.xlsx", _workbook(_sheet(good))[:-200], "source", ("not a zip archive, or cut "
                                                                "short",)
    yield "empty.xlsx", b"", "source", ("not a zip archive",)
    yield "entities-in-sheet.xlsx", _workbook(_sheet(good.replace("Altmarkt", "&c;"), laughs)), \
        "source", ("not a readable XLSX file",)
    yield "empty-sheet.xlsx", _workbook(_sheet("")), "source", ("the sheet is empty",)
    yield "formula-cell.xlsx", _workbook(_sheet(_row(1, "id", "name") + _row(2, "1", "=1+2"))), \
        "ok", ("1",)


# --- JSON: json_records (the school register), ogcapi_features, sensor.community live -------


def _schools_with(change: Callable[[list], None]) -> bytes:
    records = json.loads(SCHOOLS)
    change(records)
    return json.dumps(records, ensure_ascii=False).encode()


def _dresden(records: list) -> list:
    return [r for r in records if any(b.get("community_key") == "14612000"
                                      for b in r.get("buildings", []))]


def json_records() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    def first_building(records: list) -> dict:
        return next(b for r in records for b in r.get("buildings", [])
                    if b.get("community_key") == "14612000")

    def set_first(field: str, value: object) -> Callable[[list], None]:
        return lambda records: first_building(records).__setitem__(field, value)

    yield "empty.json", b"", "source", ("the body is empty",)
    yield "whitespace.json", b"  \n ", "source", ("the body is empty",)
    yield "cut-mid-record.json", SCHOOLS[: len(SCHOOLS) // 2], "source", ("truncated",)
    yield "cut-in-string.json", SCHOOLS[: SCHOOLS.index(b'"name"', 5000) + 9], "source", (
        "truncated",)
    yield "trailing-comma.json", b'[{"id": 1,}]', "source", ("malformed JSON at line 1",)
    yield "single-quotes.json", b"[{'id': 1}]", "source", ("malformed JSON",)
    yield "object-not-list.json", b'{"schools": []}', "source", ("expected a JSON list",)
    yield "list-of-numbers.json", b"[1, 2, 3]", "source", ("expected a JSON list of objects",)
    yield "empty-list.json", b"[]", "gate", ("0 rows", "expected 100 … 1000")
    yield "nested-bomb.json", b"[" * 100_000 + b"]" * 100_000, "source", ("nested deeper",)
    yield "latin1.json", SCHOOLS.replace(b'"name":"', b'"name":"Stra\xdfe ', 1), "source", (
        "not UTF-8 JSON",)
    # RFC 8259 lets a parser accept a byte order mark: UTF-16 and UTF-8 with BOM are read by it
    yield "utf16.json", SCHOOLS.decode().encode("utf-16"), "ok", ()
    yield "utf8-bom.json", codecs.BOM_UTF8 + SCHOOLS, "ok", ()
    yield "html-page.json", b"<html><body>502 Bad Gateway</body></html>", "source", (
        "malformed JSON",)
    yield "buildings-not-list.json", _schools_with(
        lambda r: _dresden(r)[0].__setitem__("buildings", {"x": 1})), "source", (
        "'buildings' is not a list",)
    # The register numbers a school's buildings across its records (position_group): a school
    # listed twice gets more buildings, never a repeated key.
    yield "duplicate-school.json", _schools_with(lambda r: r.append(_dresden(r)[0])), "ok", ()
    yield "swapped-axes.json", _schools_with(lambda r: first_building(r).update(
        longitude=first_building(r)["latitude"], latitude=first_building(r)["longitude"])), \
        "georeference", ("georeference:swapped_coordinates",)
    yield "null-island.json", _schools_with(lambda r: first_building(r).update(
        longitude=0, latitude=0)), "georeference", ("georeference:null_island",)
    yield "giant-name.json", _schools_with(
        lambda r: _dresden(r)[0].__setitem__("name", "S" * 1_100_000)), "quarantine", (
        "max_cell_chars",)
    yield "formula-name.json", _schools_with(
        lambda r: _dresden(r)[0].__setitem__("name", "=HYPERLINK(\"http://x\")")), "warning", (
        "formula",)
    # NaN, Infinity and 1e400 (no JSON number, or none a float holds) are kept as the text sent:
    # validation quarantines the row, naming the field — as the text "NaN" in a CSV
    # (tabular/nan-*.csv), over HTTP as from a file.
    yield "nan-longitude.json", _schools_with(set_first("longitude", float("nan"))), \
        "quarantine", ("type:number",)
    yield "infinity-latitude.json", _schools_with(set_first("latitude", float("-inf"))), \
        "quarantine", ("type:number",)
    yield "huge-number.json", _schools_with(set_first("longitude", 1e308 * 10)), "quarantine", (
        "type:number",)
    yield "long-integer.json", _schools_with(set_first("postcode", 10**30)), "quarantine", (
        "constraint:pattern",)
    yield "string-coordinates.json", _schools_with(set_first("longitude", "dreizehn")), \
        "quarantine", ("type:number",)
    yield "null-everything.json", _schools_with(
        lambda r: first_building(r).update(dict.fromkeys(first_building(r)))), "ok", ()
    yield "duplicate-member-names.json", SCHOOLS.replace(b'"id":', b'"id": "ignored", "id":', 1), \
        "ok", ()


def ogcapi_features() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    page = json.loads(PARKING)

    def changed(change: Callable[[dict], None]) -> bytes:
        copy = json.loads(PARKING)
        change(copy)
        return json.dumps(copy).encode()

    def geometry(value: object) -> Callable[[dict], None]:
        return lambda p: p["features"][1].__setitem__("geometry", value)

    yield "empty.geojson", b"", "source", ("the body is empty",)
    yield "cut.geojson", PARKING[: len(PARKING) // 2], "source", ("truncated",)
    yield "no-features.geojson", b'{"type": "FeatureCollection"}', "source", (
        "not a GeoJSON FeatureCollection",)
    yield "features-not-list.geojson", b'{"type": "FeatureCollection", "features": {}}', \
        "source", ("no 'features' list",)
    yield "feature-not-feature.geojson", changed(
        lambda p: p["features"].__setitem__(1, [1, 2])), "source", ("feature 2: not a GeoJSON "
                                                                   "Feature",)
    yield "geometry-unknown-type.geojson", changed(geometry({"type": "Blob", "coordinates": []})), \
        "source", ("feature 2", "field 'geometry'", "malformed Blob")
    yield "geometry-string-coordinates.geojson", changed(
        geometry({"type": "Point", "coordinates": ["a", "b"]})), "source", ("field 'geometry'",)
    yield "geometry-empty-coordinates.geojson", changed(  # an empty geometry: none
        geometry({"type": "Point", "coordinates": []})), "ok", ()
    yield "properties-not-object.geojson", changed(
        lambda p: p["features"][1].__setitem__("properties", [1])), "source", (
        "'properties' is not an object",)
    yield "empty-collection.geojson", b'{"type": "FeatureCollection", "features": []}', "ok", ()
    yield "null-geometry.geojson", changed(geometry(None)), "ok", ()
    yield "swapped-axes.geojson", changed(lambda p: p["features"][1]["geometry"].__setitem__(
        "coordinates", p["features"][1]["geometry"]["coordinates"][::-1])), "ok", ()
    yield "formula-name.geojson", changed(lambda p: p["features"][1]["properties"].__setitem__(
        "name", "@SUM(1,2)")), "ok", ()
    yield "nested-bomb.geojson", b'{"type": "FeatureCollection", "features": ' + b"[" * 50_000 \
        + b"]" * 50_000 + b"}", "source", ("nested deeper",)
    assert page["features"]


def sensor_community_live() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    yield "live-empty.json", b"", "source", ("the body is empty",)
    yield "live-cut.json", LIVE[: len(LIVE) // 2], "source", ("truncated",)
    yield "live-object.json", b'{"sensor": 1}', "source", ("expected a JSON list of sensor "
                                                           "records",)
    yield "live-record-without-sensor.json", b'[{"timestamp": "2024-11-22 10:00:00"}]', "source", (
        "record 1: malformed sensor record",)
    yield "live-sensor-not-object.json", b'[{"sensor": 5, "timestamp": "x"}]', "source", (
        "record 1: malformed sensor record",)
    yield "live-empty-list.json", b"[]", "ok", ()


# --- CSV of sensor.community's archive --------------------------------------------------------


def sensor_community_archive() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    yield "archive-empty.csv", b"", "source", ("malformed CSV",)
    yield "archive-header-only.csv", _lines(SDS011)[0], "ok", ()
    yield "archive-cut-mid-line.csv", _cut_mid_line(SDS011), "source", ("the body ends "
                                                                        "mid-record",)
    yield "archive-latin1.csv", SDS011 + "Straße;".encode("latin-1"), "source", ("malformed CSV",)
    yield "archive-missing-columns.csv", SDS011.replace(b"timestamp", b"zeit", 1), "source", (
        "missing column(s) timestamp",)
    yield "archive-extra-cell.csv", _row_with(SDS011, 3, b"\n", b";x;y\n"), "source", ("line 4",)
    yield "archive-preamble.csv", b"# sensor.community archive\n" + SDS011, "source", (
        "missing column(s)",)


# --- XML: WFS ----------------------------------------------------------------------------------


def wfs() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    head = WFS[: WFS.index(b"?>") + 2] if WFS.startswith(b"<?xml") else b""
    body = WFS[len(head):]
    laughs = (b'<!DOCTYPE wfs:FeatureCollection [<!ENTITY lol "lol"><!ENTITY lol2 '
              b'"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;'
              b'&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
    yield "billion-laughs.xml", head + laughs + body, "source", ("DOCTYPE", "declaring the "
                                                                 "entities lol, lol2, lol3",
                                                                 "refused")
    yield "quadratic-blowup.xml", head + b'<!DOCTYPE r [<!ENTITY a "' + b"a" * 100_000 + b'">]>' \
        + body, "source", ("DOCTYPE", "entities a")
    yield "xxe-file.xml", head + b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + body, \
        "source", ("DOCTYPE", "entities x")
    yield "xxe-url.xml", head + b'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>' \
        + body, "source", ("entities x",)
    parameter = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
    yield "xxe-parameter.xml", head + parameter + body, "source", ("entities p",)
    yield "external-dtd.xml", head + b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd">' + body, \
        "source", ("DOCTYPE ('r')",)
    yield "doctype-only.xml", head + b"<!DOCTYPE wfs:FeatureCollection>" + body, "source", (
        "DOCTYPE",)
    yield "empty.xml", b"", "source", ("truncated",)
    yield "cut.xml", WFS[: len(WFS) // 2], "source", ("truncated",)
    yield "cut-in-tag.xml", WFS[: WFS.index(b"<gml:posList", 1000) + 5], "source", ("truncated",)
    yield "mismatched-tag.xml", WFS.replace(b"</wfs:member>", b"</wfs:membr>", 1), "source", (
        "malformed XML at line",)
    yield "not-wfs.xml", b'<?xml version="1.0"?><rss><channel/></rss>', "source", (
        "not a WFS 2.0 FeatureCollection (<rss>)",)
    report = (b'<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception>'
              b"<ows:ExceptionText>Too many features</ows:ExceptionText></ows:Exception>"
              b"</ows:ExceptionReport>")
    yield "exception-report.xml", report, "source", ("the service reports an exception: Too "
                                                     "many features",)
    yield "html-page.xml", b"<html><body>Wartung</body></html>", "source", (
        "not a WFS 2.0 FeatureCollection (<html>)",)
    yield "bad-coordinates.xml", _poslist(WFS, b"x y "), "source", ("malformed coordinates",)
    yield "odd-coordinate-count.xml", _poslist(WFS, b"1.0 "), "source", ("coordinate values for "
                                                                    "dimension 2",)
    yield "latin1-declared.xml", WFS.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"', 1),\
        "ok", ()
    yield "utf16.xml", WFS.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)\
        .encode("utf-16"), "ok", ()


def _poslist(data: bytes, prefix: bytes) -> bytes:
    """The first posList with `prefix` before its coordinates."""
    start = data.index(b"<gml:posList")
    close = data.index(b">", start) + 1
    return data[:close] + prefix + data[close:]


# --- DWD: zips, products, the station list ----------------------------------------------------


def _dwd_with(product: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(DWD))
    name = next(n for n in source.namelist() if n.startswith("produkt_"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(name, product)
        for other in source.namelist():
            if other != name:
                out.writestr(other, source.read(other))
    return buffer.getvalue()


def dwd_cdc() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    source = zipfile.ZipFile(io.BytesIO(DWD))
    name = next(n for n in source.namelist() if n.startswith("produkt_"))
    product = source.read(name)
    yield "bomb-1gib.zip", zip_bomb(GIB), "source", ("unpacks to more than 134217728 bytes",
                                                     "max_unpacked_bytes", "zip bomb")
    yield "bomb-ratio.zip", zip_bomb(100 * MIB), "source", ("compression ratio", "max_ratio")
    yield "bomb-lying-header.zip", zip_bomb(64 * MIB, declared=10_000), "source", (
        "corrupt member",)
    yield "bzip2-member.zip", stored_zip(name, product, method=12), "source", (
        "compression method 12",)
    yield "not-a-zip.zip", product, "source", ("not a zip archive",)
    yield "html-page.zip", b"<!DOCTYPE html><html>Wartung</html>", "source", (
        "an HTML page instead",)
    yield "cut.zip", DWD[: len(DWD) // 2], "source", ("not a zip archive, or cut short",)
    yield "empty.zip", b"", "source", ("not a zip archive",)
    yield "no-product.zip", stored_zip("Metadaten_Geographie_01048.txt", b"x"), "source", (
        "no produkt_*.txt",)
    yield "product-empty.zip", _dwd_with(b""), "source", ("malformed table",)
    yield "product-header-only.zip", _dwd_with(_lines(product)[0]), "source", (
        "malformed MESS_DATUM",)
    yield "product-empty-mess-datum.zip", _dwd_with(
        _lines(product)[0] + b"      1048;          ;    3;   0.0;   0;-999;eor\r\n"), "source", (
        "malformed MESS_DATUM",)
    yield "product-cut-mid-line.zip", _dwd_with(_cut_mid_line(product)), "source", (
        "produkt_rr_stunde_20241119_20241122_01048.txt line 42 is cut (1 of 6 fields): the "
        "delivery is incomplete",)
    yield "product-extra-cell.zip", _dwd_with(_row_with(product, 2, b"eor", b"eor;x;y")), \
        "source", ("line 3",)
    yield "product-no-station-column.zip", _dwd_with(product.replace(b"STATIONS_ID", b"STATION",
                                                                      1)), "source", (
        "no column STATIONS_ID",)
    yield "product-formula.zip", _dwd_with(_row_with(product, 2, b"   0.0", b"=1+2")), "ok", ()


def dwd_station_list() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    yield "stations-empty.txt", b"", "source", ("malformed station list",)
    yield "stations-header-only.txt", b"".join(_lines(STATIONS)[:2]), "ok", ()
    yield "stations-cut-mid-row.txt", STATIONS[: STATIONS.index(b"\n", 20_000) + 30], "source", (
        "ends mid-row", "cut short")
    yield "stations-no-dashes.txt", b"".join(_lines(STATIONS)[:1] + _lines(STATIONS)[2:]), \
        "source", ("malformed station list",)
    yield "stations-bad-row.txt", b"".join(_lines(STATIONS)[:2]) + (
        b"00001 19370101 19860630 abc 8.0 47.8 Aach Bayern\n"), "source", (
        "line 3: malformed station row",)
    yield "stations-utf8.txt", STATIONS.decode("iso-8859-1").encode("utf-8"), "ok", ()


# --- JSON over HTTP: PEGELONLINE, SensorThings (through the real client and replay server) ----


def _measurements(nan_at: int | None = None) -> bytes:
    rows = [f'{{"timestamp": "2024-11-21T{8 + (15 * i) // 60:02d}:{(15 * i) % 60:02d}:00+01:00", '
            f'"value": {"NaN" if i == nan_at else 100.0}}}' for i in range(1, 41)]
    return ("[" + ", ".join(rows) + "]").encode()


def http_json() -> Iterator[tuple[str, bytes, str, tuple[str, ...]]]:
    yield "pegelonline-empty.json", b"", "source", ("the body is empty",)
    yield "pegelonline-cut.json", GAUGE[: len(GAUGE) // 3], "source", ("truncated",)
    yield "pegelonline-object.json", b'{"timestamp": "x"}', "source", ("expected a JSON list of "
                                                                       "measurements",)
    yield "pegelonline-row-not-object.json", b"[1]", "source", ("row 1: expected an object",)
    yield "pegelonline-html.json", b"<!DOCTYPE html><html>Wartung</html>", "source", (
        "answered an HTML page instead of JSON",)
    yield "pegelonline-nested-bomb.json", b"[" * 100_000 + b"]" * 100_000, "source", (
        "nested deeper",)
    # 40 measurements after the last recorded one (2024-11-21T08:00+01:00), the 20th NaN: that
    # row is quarantined (type:number), the other 39 are published; the same 40 without NaN as
    # UTF-16 with BOM are read as 40 rows
    yield "pegelonline-nan.json", _measurements(nan_at=20), "quarantine", ("type:number",)
    yield "pegelonline-utf16.json", _measurements().decode().encode("utf-16"), "ok", ("40",)
    yield "gauges-cut.json", GAUGES[: len(GAUGES) // 2], "source", ("truncated",)
    yield "gauges-object.json", b"{}", "source", ("stations.json",)
    yield "sensorthings-empty.json", b"", "source", ("the body is empty",)
    yield "sensorthings-cut.json", THINGS[: len(THINGS) // 2], "source", ("truncated",)
    yield "sensorthings-no-value.json", b'{"values": []}', "source", ("no 'value' list",)
    yield "sensorthings-observation-without-time.json", b'{"value": [{"@iot.id": 1}]}', "source",\
        ("observation 1: malformed",)


FAMILIES: dict[str, tuple[Callable[[], Iterator[tuple[str, bytes, str, tuple[str, ...]]]],
                          str]] = {
    "tabular": (tabular_csv, "transit_vvo/vvo_haltestellen_2019.csv"),
    "tabular-xlsx": (tabular_xlsx, ""),
    "json_records": (json_records, "schools/sachsen_schools_schuldatenbank.json"),
    "ogcapi_features": (ogcapi_features, "parking_dresden/ParkAPI_Dresden.geojson"),
    "sensor_community": (sensor_community_live, "sensor_community/area_dresden_first.json"),
    "sensor_community-archive": (sensor_community_archive,
                                 "sensor_community/2019-01-08_sds011_sensor_15092.csv"),
    "wfs": (wfs, "wfs/stadtteile_25833_start0.xml"),
    "dwd_cdc": (dwd_cdc, "dwd/hourly_01048_2024-11-22.zip"),
    "dwd_cdc-stations": (dwd_station_list, "dwd/RR_Stundenwerte_Beschreibung_Stationen.txt"),
    "http-json": (http_json, "pegelonline, pegelonline_gauges, sensorthings recordings"),
}


def build(folder: Path) -> list[Case]:
    """Write every corpus file into `folder/KIND/` and return the cases."""
    cases = []
    for kind, (family, origin) in FAMILIES.items():
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for name, data, expect, words in family():
            (folder / kind / name).write_bytes(data)
            cases.append(Case(f"{kind}/{name}", kind, expect, words, origin or "constructed"))
    return cases


def main(argv: list[str]) -> None:
    folder = Path(argv[0] if argv else "corpus-out")
    cases = build(folder)
    (folder / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    print(f"{len(cases)} files in {folder}")


if __name__ == "__main__":
    main(sys.argv[1:])
