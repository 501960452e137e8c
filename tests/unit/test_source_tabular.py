"""The `tabular` source type on the REAL recorded files (tests/recordings/*/README.md), values
checked against cells read by hand from those files."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from odp.errors import SourceError
from odp.sources.settings import settings_of
from odp.sources.tabular import (
    Conventions,
    TableLayout,
    german_number,
    local_to_utc,
    read_table,
    shape,
)
from odp.sources.textfile import decode
from tests.helpers import RECORDINGS

STOPS = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"
AIR = RECORDINGS / "airquality_sachsen" / "joint_2018-12_Dresden-Nord.csv"
FORECAST = (RECORDINGS / "dresden_stats" /
            "einwohner-prognose_md9_open_data_stadtbezirk_mit_zugeordneten_ortschaften_-_gerundet.csv")
PARKING = RECORDINGS / "parking_dresden" / "parkapi_forecast_dresdenaltmarkt.csv"

STOPS_SOURCE = {"german_numbers": ["WGS84_X", "WGS84_Y"]}
AIR_SOURCE = {
    "delimiter": ",", "units_row": True, "units": {"NO2": "µg/m³", "TEMP": "GRADC"},
    "flag": {"column": "resolution", "from": "Zeit", "empty": "P1D", "present": "PT1H"},
    "timestamp": {"date": "Datum", "time": "Zeit", "timezone": "Etc/GMT-1",
                  "ambiguous": "reject", "empty_time": "midnight"},
}
PARKING_SOURCE = {
    "delimiter": ",", "header": False, "columns": ["local_time", "free_spaces"],
    "timestamp": {"column": "local_time", "timezone": "Europe/Berlin", "ambiguous": "dst"},
}


def _read(path: Path, source: dict, data: bytes | None = None) -> pd.DataFrame:
    where = path.name
    layout = settings_of(TableLayout, source)
    return shape(read_table(data if data is not None else path.read_bytes(), layout, where),
                 settings_of(Conventions, source), where)


def test_stops_decimal_commas_stripped_header_and_missing_ids():
    stops = _read(STOPS, STOPS_SOURCE)
    assert len(stops) == 4373
    # line 2: de:14612:1;Dresden Bahnhof Mitte;Bahnhof Mitte;Dresden;0100;;;13,723395;51,055642
    first = stops.iloc[0]
    assert first["Nummer"] == "de:14612:1" and first["Name mit Ort"] == "Dresden Bahnhof Mitte"
    assert (first["WGS84_X"], first["WGS84_Y"]) == ("13.723395", "51.055642")
    assert first["Tarifzone 1"] == "0100"  # header "Tarifzone 1 " stripped; leading zero kept
    assert pd.isna(first["Tarifzone 2"])  # empty cell → null, never ""
    # lines 1882 and 3603 have no stop number: null, the schema rejects them by name
    assert stops["Nummer"].isna().sum() == 2
    assert stops.loc[1880, "Name mit Ort"] == "Hainersdorf Einkaufspark"
    # broken quoting in the export is kept as sent (a warning expectation reports it)
    reick = stops[stops["Nummer"] == "de:14612:128"].iloc[0]
    assert reick["Name ohne Ort"] == ";hof Reick"


def test_air_quality_units_row_daily_rows_and_mez_to_utc():
    air = _read(AIR, AIR_SOURCE)
    assert len(air) == 726 - 2  # header and units row
    daily = air.iloc[0]  # 2018-12-01,,,,,,,,26.59,,23.74,,,,,,
    assert daily["resolution"] == "P1D" and daily["timestamp"] == "2018-11-30T23:00:00Z"
    assert (daily["PM10_HVS"], daily["PM2.5"]) == ("26.59", "23.74")
    assert pd.isna(daily["NO2"])
    hourly = air.iloc[1]  # 2018-12-01,01:00,1.5,1016,92.3,3,21,24,,22,,1.19,,1,0.0,2.5,128
    assert hourly["resolution"] == "PT1H" and hourly["timestamp"] == "2018-12-01T00:00:00Z"
    assert (hourly["NO2"], hourly["TEMP"], hourly["DRUCK"]) == ("21", "0.0", "1016")
    assert hourly["TEMP"] != "" and pd.isna(hourly["SO2"])  # 0.0 °C is a value, empty is null
    assert "Datum" not in air.columns and "Zeit" not in air.columns
    eighteen = air[air["timestamp"] == "2018-12-01T17:00:00Z"].iloc[0]  # 18:00,,1017,…
    assert pd.isna(eighteen["BEN"]) and eighteen["DRUCK"] == "1017"


def test_air_quality_a_changed_unit_stops_the_run():
    source = {**AIR_SOURCE, "units": {"TEMP": "K"}}
    with pytest.raises(SourceError, match=r"units row: column 'TEMP' is in 'GRADC', expected 'K'"):
        _read(AIR, source)


def test_parking_local_times_across_dst_to_utc_with_explicit_rules():
    parking = _read(PARKING, PARKING_SOURCE)
    assert len(parking) == 40986
    by_local = dict(zip(pd.read_csv(PARKING, header=None)[0], parking["timestamp"], strict=True))
    assert by_local["2015-11-01T00:45:00"] == "2015-10-31T23:45:00Z"  # CET +01:00
    assert by_local["2016-06-01T12:00:00"] == "2016-06-01T10:00:00Z"  # CEST +02:00
    # the repeated hour occurs once in this grid: read as summer time, as declared
    assert by_local["2016-10-30T02:00:00"] == "2016-10-30T00:00:00Z"
    assert by_local["2016-10-30T03:00:00"] == "2016-10-30T02:00:00Z"
    # the spring gap does not exist: passed on annotated, so validation rejects it by reason
    gap = by_local["2016-03-27T02:15:00"]
    assert gap == "2016-03-27T02:15:00 (does not exist in Europe/Berlin: the summer-time gap)"
    assert parking["timestamp"].str.contains("does not exist").sum() == 4
    assert parking.iloc[0]["free_spaces"] == "47"


def test_ambiguous_hour_in_file_order_and_single_occurrences():
    wall = pd.Series(pd.to_datetime(["2016-10-30T02:30", "2016-10-30T02:30", "2016-10-30T02:45",
                                     "2016-10-30T04:00"]))
    utc, reasons = local_to_utc(wall, "Europe/Berlin", "order", "reject")
    assert utc.iloc[0] == pd.Timestamp("2016-10-30T00:30Z")  # first: summer time
    assert utc.iloc[1] == pd.Timestamp("2016-10-30T01:30Z")  # second: standard time
    assert pd.isna(utc.iloc[2]) and "ambiguous" in reasons.iloc[2]  # once only: undecidable
    assert utc.iloc[3] == pd.Timestamp("2016-10-30T03:00Z") and pd.isna(reasons.iloc[3])
    standard, _ = local_to_utc(wall, "Europe/Berlin", "standard", "reject")
    assert standard.iloc[2] == pd.Timestamp("2016-10-30T01:45Z")


def test_population_forecast_and_the_same_table_from_xlsx(tmp_path):
    csv = _read(FORECAST, {"german_numbers": ["Anzahl"]})
    assert len(csv) == 160
    first = csv.iloc[0]  # 2025;StB 0 Altstadt;66474
    assert tuple(first) == ("2025", "StB 0 Altstadt", "66474")
    assert "StB 3 Klotzsche/nördliche Ortschaften" in set(csv.iloc[:, 1])
    # No real XLSX exists in the shared data: this workbook is WRITTEN HERE from the real CSV,
    # with numbers as numbers (as a statistics office's spreadsheet holds them).
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Prognose"
    raw = pd.read_csv(FORECAST, sep=";", dtype=str)
    sheet.append(list(raw.columns))
    for year, district, count in raw.itertuples(index=False):
        sheet.append([int(year), district, int(count)])
    buffer = io.BytesIO()
    book.save(buffer)
    xlsx = _read(tmp_path / "prognose.xlsx", {"format": "xlsx", "sheet": "Prognose",
                                              "german_numbers": ["Anzahl"]}, buffer.getvalue())
    pd.testing.assert_frame_equal(xlsx, csv)


def test_german_numbers():
    values = pd.Series(["1.234,5", "13,723395", "-0,5", "66474", "1.234.567", "1,2,3", None],
                       dtype="string")
    out = german_number(values)
    assert list(out[:6]) == ["1234.5", "13.723395", "-0.5", "66474", "1234567", "1,2,3"]
    assert pd.isna(out.iloc[6])


def test_encodings_are_detected_not_guessed():
    text = "Nummer;Name\nde:14612:3;Dresden Prager Straße\n"
    assert decode(b"\xef\xbb\xbf" + text.encode(), "auto", "f").encoding == "utf-8-sig"
    assert decode(text.encode(), "auto", "f").text == text
    latin = text.encode("iso-8859-1")
    with pytest.raises(SourceError, match=r"f: not UTF-8 \(byte 0xDF at offset 42\)"):
        decode(latin, "auto", "f")
    assert decode(latin, "iso-8859-1", "f").text == text
    with pytest.raises(SourceError, match="is UTF-8 with non-ASCII characters, not iso-8859-1"):
        decode(text.encode(), "iso-8859-1", "f")


def test_a_bom_file_reads_like_the_plain_one():
    plain = FORECAST.read_bytes()
    with_bom = _read(FORECAST, {}, b"\xef\xbb\xbf" + plain)
    assert list(with_bom.columns)[0] == "Jahr-Prognose"  # no BOM glued to the first name
    pd.testing.assert_frame_equal(with_bom, _read(FORECAST, {}))


def test_trailing_separators_are_dropped():
    data = b"A;B;\r\n1;2,5;\r\n3;;\r\n"
    table = _read(Path("t.csv"), {"german_numbers": ["B"]}, data)
    assert list(table.columns) == ["A", "B"]
    assert table["B"].iloc[0] == "2.5" and pd.isna(table["B"].iloc[1])


def test_a_row_with_extra_cells_names_file_and_line():
    lines = STOPS.read_bytes().split(b"\r\n")
    lines[4] += b";extra;cells"
    with pytest.raises(SourceError, match=r"vvo_haltestellen_2019.csv: line 5: 11 cells where "
                                          r"the first line has 9"):
        _read(STOPS, STOPS_SOURCE, b"\r\n".join(lines))


# --- through the replay server (production client: retries, one-line errors) -------------------

STOPS_URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/"
             "9a8732851291c67759d292e08868871fed094176/stations/stations.csv")


@pytest.fixture
def stops_dataset(tmp_path, monkeypatch):
    from odp.spec import load_dataset
    from tests.unit.source_env import source_env

    for env in source_env(tmp_path, monkeypatch, ["transit-stops-vvo"]):
        yield load_dataset(env["names"]["transit-stops-vvo"], env["root"]), env["server"]


def test_stops_over_http_5xx_then_success(stops_dataset):
    from odp.sources.tabular import read_all

    dataset, server = stops_dataset
    server.fail_next(STOPS_URL, [500, 503])
    table = read_all(dataset)
    assert len(table) == 4373 and table["longitude"].iloc[0] == "13.723395"
    assert len(server.requests) == 3


def test_stops_over_http_in_another_encoding_is_refused_by_name(stops_dataset):
    from odp.sources.tabular import read_all

    dataset, server = stops_dataset
    latin = STOPS.read_bytes().decode("utf-8").encode("iso-8859-1")
    server.override(STOPS_URL, 200, latin, "text/csv")
    with pytest.raises(SourceError) as caught:
        read_all(dataset)
    message = str(caught.value)
    assert message.startswith(f"{dataset.name}: {STOPS_URL}: not UTF-8 (byte 0xDF at offset ")
    assert "\n" not in message


@pytest.mark.parametrize("path", [STOPS, AIR, FORECAST, PARKING])
def test_arrows_csv_reader_gives_the_cells_pandas_parser_gives(path, monkeypatch):
    from odp.sources import tabular

    layout = TableLayout(delimiter=";" if path == STOPS else ",", header=path != PARKING,
                         columns=("local_time", "free_spaces") if path == PARKING else ())
    fast = read_table(path.read_bytes(), layout, "x")
    monkeypatch.setattr(tabular, "_arrow_rows", lambda *_args: None)  # pandas' parser alone
    pd.testing.assert_frame_equal(fast, read_table(path.read_bytes(), layout, "x"),
                                  check_dtype=False)


@pytest.mark.parametrize("text", [
    'a,b,c\n"x, with comma","line\nbreak","say ""hi"""\n,,\n\n1,2,3\r\n',
    "a,b\n1,2\n3\n",  # a short row: pandas' parser reads it (missing cells)
    "a,b\n1,2,3\n",  # an extra cell: the error names the line
    'a,b\n"open,2\n',  # a quoted cell left open
    "a,b,\n1,2,\n",  # a trailing separator
    "ä,ö\nü,ß\n",
])
def test_the_cells_and_errors_of_odd_csv_are_those_of_pandas_parser(text, monkeypatch):
    from odp.sources import tabular

    def read() -> pd.DataFrame | str:
        try:
            return read_table(text.encode(), TableLayout(delimiter=","), "x")
        except SourceError as exc:
            return str(exc)

    fast = read()
    monkeypatch.setattr(tabular, "_arrow_rows", lambda *_args: None)
    slow = read()
    if isinstance(slow, str):
        assert fast == slow
    else:
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False)


def test_a_local_file_with_the_bytes_of_the_last_run_is_not_read_into_memory(stops_dataset,
                                                                              tmp_path):
    """A local file read again: its digest is taken block by block, and when it is that of
    the last run nothing is read whole or parsed (a 16 MB file: at most two 1 MiB blocks of Python
    memory at the peak); one byte changed, and the file is read and parsed as usual."""
    import tracemalloc
    from dataclasses import replace

    from odp.sources.tabular import read_all

    dataset, _ = stops_dataset
    big = tmp_path / "stops.csv"
    header, *lines = STOPS.read_bytes().split(b"\n")
    big.write_bytes(b"\n".join([header] + [line for _ in range(40) for line in lines if line])
                    + b"\n")
    local = replace(dataset, source={**{k: v for k, v in dataset.source.items() if k != "url"},
                                     "path": str(big)})
    validators: dict = {}
    first = read_all(local, validators)
    assert first is not None and len(first) == 40 * 4373 and big.stat().st_size > 12e6
    tracemalloc.start()
    try:
        assert read_all(local, validators) is None  # the same bytes: nothing new
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4e6, peak  # two 1 MiB blocks at most
    data = bytearray(big.read_bytes())
    data[-3:-2] = b"7" if data[-3:-2] != b"7" else b"8"  # one byte of the last line
    big.write_bytes(bytes(data))
    assert len(read_all(local, validators)) == 40 * 4373


def test_a_local_file_of_another_length_than_recorded_is_changed_without_hashing(tmp_path):
    """A file that grew (or shrank) cannot be the last run's: its length alone says so, and
    the 785 MB of a 10M-row file are not hashed for it (they are hashed once, when read)."""
    from odp.sources.tabular import (
        CONTENT,
        Tabular,
        TabularFile,
        content_digest,
        unchanged_local_files,
    )

    path = tmp_path / "readings.csv"
    path.write_bytes(b"a,b\n1,2\n")
    plan = Tabular((TabularFile(None, str(path)),), TableLayout(), Conventions())
    # The digest recorded is that of the file as it is: only a recorded length tells them apart.
    digest = content_digest([(path.read_bytes(), str(path))])
    assert unchanged_local_files(plan, {CONTENT: {"sha256": digest}})
    assert unchanged_local_files(plan, {CONTENT: {"sha256": digest, "bytes": 8}})
    assert not unchanged_local_files(plan, {CONTENT: {"sha256": digest, "bytes": 6}})


def test_lines_added_to_a_local_file_are_read_without_holding_the_file(stops_dataset,
                                                                        tmp_path):
    """A local file that grew by a few lines: it is hashed block by block (the last
    delivery's bytes against the record, the whole file for the next run) and only the added
    lines are read — never the file into memory; the digest recorded is the whole file's, so
    the next run with the same bytes is unchanged. An edit before the added lines reads the
    file whole."""
    import tracemalloc
    from dataclasses import replace

    from odp.sources.http import HttpSettings
    from odp.sources.tabular import (
        CONTENT,
        Tabular,
        content_digest,
        read_delivery,
        unchanged_local_files,
    )

    dataset, _ = stops_dataset
    big = tmp_path / "stops.csv"
    header, *lines = STOPS.read_bytes().split(b"\n")
    lines = [line for line in lines if line]
    big.write_bytes(b"\n".join([header] + lines * 80) + b"\n")
    local = replace(dataset, source={**{k: v for k, v in dataset.source.items() if k != "url"},
                                     "path": str(big)})
    plan, http = Tabular.of(local.source), HttpSettings.from_source(local.source)
    validators: dict = {}
    first = read_delivery(local, validators, plan, http, lambda: -1)
    assert first is not None and not first.appended and len(first.table) == 80 * len(lines)
    assert big.stat().st_size > 24e6
    with big.open("ab") as file:
        file.write(b"\n".join(lines[:3]) + b"\n")
    tracemalloc.start()
    try:
        grown = read_delivery(local, validators, plan, http, lambda: len(first.table))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grown is not None and grown.appended and len(grown.table) == 3
    assert grown.table.equals(first.table.iloc[:3].reset_index(drop=True))
    assert peak < 12e6, peak  # two 4 MiB blocks at most, not the 25 MB file
    assert validators[CONTENT]["sha256"] == content_digest([(big.read_bytes(), str(big))])
    assert validators[CONTENT]["rows"] == 80 * len(lines) + 3
    assert unchanged_local_files(plan, validators)

    data = bytearray(big.read_bytes())  # an earlier line edited, and a line added
    data[len(header) + 2] ^= 1
    big.write_bytes(bytes(data) + lines[3] + b"\n")
    whole = read_delivery(local, validators, plan, http, lambda: 80 * len(lines) + 3)
    assert whole is not None and not whole.appended and len(whole.table) == 80 * len(lines) + 4


def test_a_utf8_csv_is_read_by_arrow_from_its_bytes_without_a_decoded_copy():
    """A UTF-8 CSV file (the common case) is parsed by Arrow straight from its bytes: Python
    holds neither the file decoded as text nor that text encoded again (a 25 MB file: less
    than half its size in Python memory at the peak — through the decoded text, 94 MB; the
    cells are Arrow's); the cells are those the decoding path gives (taken for a file with a
    byte-order mark); a byte that is not UTF-8 is still named."""
    import tracemalloc

    from odp.sources.tabular import read_table

    header, *lines = STOPS.read_bytes().split(b"\n")
    lines = [line for line in lines if line]
    data = b"\n".join([header] + lines * 80) + b"\n"
    layout = TableLayout(delimiter=";")
    tracemalloc.start()
    try:
        fast = read_table(data, layout, "stops.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(fast) == 80 * len(lines) and len(data) > 24e6
    assert peak < len(data) / 2, peak
    part = data[:200_000].rsplit(b"\n", 1)[0] + b"\n"
    decoded = read_table(b"\xef\xbb\xbf" + part, layout, "stops.csv")
    pd.testing.assert_frame_equal(read_table(part, layout, "stops.csv"), decoded)
    with pytest.raises(SourceError, match="not UTF-8"):
        read_table(data[:1000] + b"\xff" + data[1000:2000], layout, "stops.csv")
