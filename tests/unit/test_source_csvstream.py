"""A local CSV file read in parts (odp.sources.csvstream) stages what reading it whole stages, on
the REAL recorded files; a file that does not read in parts is read whole, and its message is
the whole read's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from odp.errors import SourceError
from odp.sources import csvstream
from odp.sources.http import HttpSettings
from odp.sources.tabular import CONTENT, Tabular, read_delivery
from tests.unit.test_source_tabular import PARKING, PARKING_SOURCE, STOPS


@pytest.fixture
def stops(tmp_path, monkeypatch):
    """The VVO stops dataset of the demo project (its conventions: decimal commas, renames)."""
    from odp.spec import load_dataset
    from tests.unit.source_env import source_env

    for env in source_env(tmp_path, monkeypatch, ["transit-stops-vvo"]):
        yield load_dataset(env["names"]["transit-stops-vvo"], env["root"])


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of 16 kB from blocks of 4 kB: the recorded files (0.3–1 MB) give dozens of parts."""
    monkeypatch.setattr(csvstream, "BLOCK", 1 << 12)
    monkeypatch.setattr(csvstream, "PART", 1 << 14)


def _local(dataset, path: Path, **source):
    settings = {k: v for k, v in dataset.source.items() if k not in ("url", "path")}
    return replace(dataset, source={**settings, **source, "path": str(path)})


def _both(dataset, spool: Path):
    """The delivery read whole and read in parts, each with its validators."""
    plan, http = Tabular.of(dataset.source), HttpSettings.from_source(dataset.source)
    whole_seen: dict = {}
    parts_seen: dict = {}
    whole = read_delivery(dataset, whole_seen, plan, http, lambda: -1)
    parts = read_delivery(dataset, parts_seen, plan, http, lambda: -1, spool)
    return whole, whole_seen, parts, parts_seen


def _rows(delivery) -> pd.DataFrame:
    tables = list(delivery.spool.tables())
    assert len(tables) > 5  # read in many parts, not one
    return pa.concat_tables(tables).to_pandas(types_mapper=lambda _t: pd.StringDtype())


def test_a_local_csv_read_in_parts_gives_the_rows_and_the_record_of_the_whole_read(
        stops, tmp_path, small_parts):
    """The VVO stops (decimal commas converted, a header name with a trailing space, empty
    cells): the parts, put together, are the rows the whole read gives, with the same content
    digest, length and row count recorded for the next run; the spool goes when removed."""
    dataset = stops
    copy = tmp_path / "stops.csv"
    copy.write_bytes(STOPS.read_bytes())
    whole, whole_seen, parts, parts_seen = _both(_local(dataset, copy), tmp_path / "spool")
    assert parts is not None and parts.table is None and not parts.appended
    rows = _rows(parts)
    assert len(rows) == 4373 and rows["longitude"].iloc[0] == "13.723395"
    pd.testing.assert_frame_equal(rows, whole.table, check_dtype=False)
    assert parts_seen == whole_seen and parts_seen[CONTENT]["rows"] == 4373
    parts.spool.remove()
    assert not list((tmp_path / "spool").iterdir())


def test_a_file_without_header_and_with_local_times_reads_in_parts_as_whole(
        stops, tmp_path, small_parts):
    """Parking forecasts (REAL, no header, named `columns`, local times to UTC with the
    repeated hour read as summer time): the same rows in parts as whole."""
    dataset = stops
    copy = tmp_path / "parking.csv"
    copy.write_bytes(PARKING.read_bytes())
    parking = _local(dataset, copy, **PARKING_SOURCE)
    parking = replace(parking, source={k: v for k, v in parking.source.items()
                                       if k not in ("german_numbers", "rename", "drop")})
    whole, whole_seen, parts, parts_seen = _both(parking, tmp_path / "spool")
    rows = _rows(parts)
    assert list(rows.columns) == ["free_spaces", "timestamp"]
    assert rows["timestamp"].iloc[0] == "2015-10-31T23:45:00Z"
    pd.testing.assert_frame_equal(rows, whole.table, check_dtype=False)
    assert parts_seen == whole_seen


@pytest.mark.parametrize("fault, message", [
    (b"1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16\n", r"line 4000\b"),  # a ragged row
    (b"de:14612:9999;Dresden \xe4;x;Dresden;;;;13,7;51,0\n", "not UTF-8"),  # Latin-1 byte
])
def test_a_fault_deep_in_the_file_stops_the_run_with_the_whole_reads_message_and_no_spool(
        stops, tmp_path, small_parts, fault, message):
    """A ragged row, or a byte that is not UTF-8, in a part far after the first: nothing is
    handed on in parts — the file is read whole, which names the line or the byte, and the
    spool holds nothing."""
    dataset = stops
    header, *lines = STOPS.read_bytes().split(b"\n")
    copy = tmp_path / "stops.csv"
    copy.write_bytes(b"\n".join([header, *lines[:3998]]) + b"\n" + fault
                     + b"\n".join(lines[3998:]))
    local = _local(dataset, copy)
    plan, http = Tabular.of(local.source), HttpSettings.from_source(local.source)
    with pytest.raises(SourceError, match=message) as whole:
        read_delivery(local, {}, plan, http, lambda: -1)
    with pytest.raises(SourceError, match=message) as parts:
        read_delivery(local, {}, plan, http, lambda: -1, tmp_path / "spool")
    assert str(parts.value) == str(whole.value)
    assert not list((tmp_path / "spool").iterdir())


def test_a_header_with_a_trailing_separator_is_read_whole(stops, tmp_path,
                                                          small_parts):
    """A header ending in the delimiter (an unnamed column, empty throughout): the whole read
    drops it; the file is not read in parts."""
    dataset = stops
    copy = tmp_path / "stops.csv"
    copy.write_bytes(STOPS.read_bytes().replace(b"\r\n", b";\r\n"))
    whole, _, parts, _ = _both(_local(dataset, copy), tmp_path / "spool")
    assert parts is not None and parts.spool is None
    pd.testing.assert_frame_equal(parts.table, whole.table)
    assert len(whole.table) == 4373


def test_an_extract_stages_a_file_read_in_parts_and_leaves_no_spool(stops, tmp_path,
                                                                    small_parts):
    """Through dlt into staging: the staged rows are the whole read's, in its order; the spool
    a killed run left is gone, and so is this run's."""
    from odp.extract import extract, read_staging

    dataset = stops
    copy = tmp_path / "stops.csv"
    copy.write_bytes(STOPS.read_bytes())
    local = _local(dataset, copy)
    state = tmp_path / "state"
    left = state / "dlt" / f"odp_{local.table_name}" / csvstream.SPOOL
    left.mkdir(parents=True)
    (left / "delivery.arrow").write_bytes(b"a killed run's part")
    extracted = extract(local, state)
    assert extracted.new_rows == extracted.staged == 4373
    staged = read_staging(local, state)
    staged = staged[[c for c in staged.columns if not c.startswith("_dlt")]]
    plan, http = Tabular.of(local.source), HttpSettings.from_source(local.source)
    whole = read_delivery(local, {}, plan, http, lambda: -1)
    pd.testing.assert_frame_equal(staged.reset_index(drop=True), whole.table,
                                  check_dtype=False)
    assert not left.exists() or not list(left.iterdir())


@pytest.fixture
def stops_by_url(tmp_path, monkeypatch):
    """The VVO stops dataset, its file served by URL by the replay server (and the server)."""
    from odp.spec import load_dataset
    from tests.unit.source_env import source_env

    for env in source_env(tmp_path, monkeypatch, ["transit-stops-vvo"]):
        yield load_dataset(env["names"]["transit-stops-vvo"], env["root"]), env["server"]


def test_a_csv_by_url_is_downloaded_to_disk_and_read_in_parts_as_whole(
        stops_by_url, tmp_path, small_parts):
    """The stops by URL: written to disk as they arrive (not held, 785 MB at 10M rows) and
    read in parts, they give the rows, the validators and the record of the whole read; the
    download is removed, its bytes are counted, and the same file again is nothing new."""
    from odp.sources.http import take_downloaded
    from odp.sources.tabular import DOWNLOAD

    dataset, _server = stops_by_url
    spool = tmp_path / "spool"
    take_downloaded(dataset.name)
    whole, whole_seen, parts, parts_seen = _both(dataset, spool)
    assert take_downloaded(dataset.name) == 2 * STOPS.stat().st_size  # both bodies
    assert parts is not None and parts.table is None  # in parts
    pd.testing.assert_frame_equal(_rows(parts), whole.table, check_dtype=False)
    assert parts_seen == whole_seen and parts_seen[CONTENT]["rows"] == 4373
    assert not spool.with_name(DOWNLOAD).exists()
    parts.spool.remove()
    plan, http = Tabular.of(dataset.source), HttpSettings.from_source(dataset.source)
    assert read_delivery(dataset, parts_seen, plan, http, lambda: 4373, spool) is None
    assert not spool.with_name(DOWNLOAD).exists() and not list(spool.iterdir())


def test_lines_added_to_a_csv_by_url_are_all_that_is_read(stops_by_url, tmp_path, small_parts):
    """The stops by URL with one more line at the end: only that line is read and appended
    to staging, as for a local file that grew."""
    from tests.unit.test_source_tabular import STOPS_URL

    dataset, server = stops_by_url
    plan, http = Tabular.of(dataset.source), HttpSettings.from_source(dataset.source)
    seen: dict = {}
    first = read_delivery(dataset, seen, plan, http, lambda: -1, tmp_path / "spool")
    first.spool.remove()
    body = STOPS.read_bytes()
    server.override(STOPS_URL, 200, body + body.split(b"\r\n")[1] + b"\r\n", "text/csv")
    grown = read_delivery(dataset, seen, plan, http, lambda: 4373, tmp_path / "spool")
    assert grown is not None and grown.appended and len(grown.table) == 1
    assert seen[CONTENT]["rows"] == 4374 and seen[CONTENT]["bytes"] > len(body)


def test_an_html_page_instead_of_a_csv_by_url_is_refused_and_nothing_is_left(
        stops_by_url, tmp_path):
    """A maintenance page answered instead of the file: refused by name, as when the body is
    held, and no download is left on disk."""
    from odp.sources.tabular import DOWNLOAD
    from tests.unit.test_source_tabular import STOPS_URL

    dataset, server = stops_by_url
    server.override(STOPS_URL, 200, b"<!DOCTYPE html><html><body>Wartung</body></html>",
                    "text/html")
    plan, http = Tabular.of(dataset.source), HttpSettings.from_source(dataset.source)
    with pytest.raises(SourceError, match="HTML page instead of CSV"):
        read_delivery(dataset, {}, plan, http, lambda: -1, tmp_path / "spool")
    assert not (tmp_path / DOWNLOAD).exists()
