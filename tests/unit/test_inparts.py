"""A delivery validated and georeferenced in parts (odp.inparts) gives what the whole validation
gives — on the REAL VVO stops (4,373 rows: stops without a number, a key rule, coordinates
with decimal commas, districts) staged by a real extract — or is validated whole when a part
cannot see what it needs."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from odp import inparts
from odp.run import RunReport, _checked
from odp.spec import load_city, load_dataset
from odp.validate import QuarantineStore
from tests.unit.test_source_tabular import STOPS, STOPS_URL


@pytest.fixture
def staged(tmp_path, monkeypatch):
    """The stops dataset, its staging filled by an extract of the recorded file."""
    from odp.extract import extract
    from tests.unit.source_env import source_env

    for env in source_env(tmp_path, monkeypatch, ["transit-stops-vvo"]):
        dataset = load_dataset(env["names"]["transit-stops-vvo"], env["root"])
        yield dataset, load_city(env["root"]), env, extract


def _check(dataset, city, extracted, kept, rows: int, monkeypatch):
    """Validate and georeference with parts of `rows` rows, quarantining into the folder
    `kept`; the report, the quarantine."""
    monkeypatch.setattr(inparts, "PART_ROWS", rows)
    report = RunReport(run_id="run", dataset=dataset.name)
    store = QuarantineStore(kept)
    part, located, result, on_disk = _checked(dataset, city, extracted.state, extracted,
                                              (None, None), set(), store, report,
                                              lambda _msg: None)
    if on_disk is not None:  # in parts: the located rows are on disk, in key order
        assert len(on_disk) == len(located.table) == len(result.valid)
        located = replace(located, table=on_disk.frame())
        assert part.raw is None  # the published rows' raw hashes are on disk with them
        part = replace(part, raw=pd.Series(on_disk.raw_hashes(), index=on_disk.places()))
        on_disk.remove()
    else:
        part = replace(part, raw=part.raw.loc[located.table.index])
    with sqlite3.connect(kept / "quarantine" / "quarantine.sqlite") as db:
        held = db.execute("SELECT row, key, field, rule, value, reason, raw FROM quarantine "
                          "WHERE dataset = ? ORDER BY row, field, rule",
                          (dataset.name,)).fetchall()
    return part, located, result, report, held, on_disk is not None


def _published(located, dataset) -> pd.DataFrame:
    return located.table[dataset.schema.names].sort_index()  # in parts: in key order


def test_the_stops_validated_in_parts_give_the_rows_findings_and_quarantine_of_the_whole(
        staged, tmp_path, monkeypatch):
    """Parts of 500 rows (9 parts): the same published rows with the same values and staging
    places, the same findings numbered as rows of the whole delivery, the same counts for the
    gate and the report, the same rows quarantined with their delivered text, and the same
    published rows' raw hashes and held-back dlt ids for the record."""
    dataset, city, env, extract = staged
    extracted = extract(dataset, tmp_path / "state")
    assert extracted.staged == 4373
    runs = {rows: _check(dataset, city, extracted, tmp_path / str(rows), rows, monkeypatch)
            for rows in (10**9, 500)}
    whole, parts = runs[10**9], runs[500]
    assert parts[3].stages.keys() >= {"validate", "georeference"}
    assert parts[2].rejected_rows == whole[2].rejected_rows > 0  # stops without a number
    assert parts[5] and not whole[5]  # in parts: the located rows were sorted on disk
    pd.testing.assert_frame_equal(_published(parts[1], dataset), _published(whole[1], dataset))
    pd.testing.assert_frame_equal(parts[2].findings, whole[2].findings)
    for name in ("total", "rejected_rows", "warnings", "share_rejected", "present",
                 "batch_errors"):
        assert getattr(parts[2], name) == getattr(whole[2], name), name
    assert len(parts[2].valid) == len(whole[2].valid)
    assert parts[2].messages() == whole[2].messages()
    assert [r[:6] for r in parts[4]] == [r[:6] for r in whole[4]] and parts[4]
    assert [r[6] for r in parts[4]] == [r[6] for r in whole[4]]  # the delivered text
    assert (parts[3].validated, parts[3].georeferenced, parts[3].in_city) == (
        whole[3].validated, whole[3].georeferenced, whole[3].in_city)
    split_parts, split_whole = parts[0], whole[0]
    assert split_parts.why_all == split_whole.why_all != ""
    # the published rows' raw hashes (for the record), each at its place in staging
    pd.testing.assert_series_equal(split_parts.raw.sort_index(), split_whole.raw.sort_index(),
                                   check_index_type=False)
    assert sorted(split_parts.held) == sorted(split_whole.held) and split_parts.held
    assert len(split_parts.held) == parts[2].rejected_rows
    staging = tmp_path / "state" / "staging"
    assert not list(staging.glob("*.parquet*"))  # removed: the rows and the keys files


def test_a_key_in_two_parts_is_validated_whole_and_its_duplicates_found(
        staged, tmp_path, monkeypatch):
    """A stop delivered twice, once in the first part and once in the last: a part alone
    would publish both; the delivery is validated whole, which rejects the repeated key."""
    dataset, city, env, extract = staged
    lines = STOPS.read_bytes().split(b"\r\n")
    twice = lines[:-1] + [lines[1], b""]  # the first stop again at the end
    env["server"].override(STOPS_URL, 200, b"\r\n".join(twice), "text/csv")
    extracted = extract(dataset, tmp_path / "state")
    assert extracted.staged == 4374
    part, located, result, report, held, _ = _check(dataset, city, extracted, tmp_path, 500,
                                                 monkeypatch)
    first = result.findings[result.findings["key"].astype("string").str.contains(
        "de:14612:1", regex=False).fillna(False)]
    assert {1, 4374} <= set(first["row"].dropna().astype(int))  # both rows, found together
    assert "de:14612:1" not in set(located.table["stop_id"].astype(str))
    assert np.isin([1, 4374], [r[0] for r in held]).all()


def test_a_column_retyped_over_the_whole_delivery_but_in_no_part_is_judged_whole(
        staged, tmp_path, monkeypatch):
    """Three latitudes that are not numbers, one in each of three parts: no part holds the
    three values a column needs to be called retyped, the whole delivery does (with a
    `retyped_share` this low): it is validated whole, and the drift holds the batch back."""
    dataset, city, env, extract = staged
    lines = STOPS.read_bytes().split(b"\r\n")
    for n in (100, 1600, 3100):
        lines[n] = lines[n].rsplit(b";", 1)[0] + b";north"
    env["server"].override(STOPS_URL, 200, b"\r\n".join(lines), "text/csv")
    strict = replace(dataset, validate={**dataset.validate, "retyped_share": 0.0005})
    extracted = extract(strict, tmp_path / "state")
    part, located, result, report, held, _ = _check(strict, city, extracted, tmp_path, 500,
                                                 monkeypatch)
    assert [r.column for r in result.drift.retyped] == ["latitude"] and result.drift_blocks
    assert not held  # a batch held back by drift quarantines nothing
    from odp.validate import gate_reasons

    assert any("latitude" in reason for reason in gate_reasons(result, strict))


def test_a_parts_empty_frames_hold_none_of_its_rows():
    """What a part keeps of its typed rows once they are on disk — an empty frame of their
    columns — holds none of their buffers: a slice of no rows of an Arrow-backed text column
    (and its copy) held the whole column (3M rows validated in parts: 0.3 GB kept)."""
    import gc

    import pyarrow as pa

    frame = pd.DataFrame({"text": pd.array([f"row {i}" for i in range(200_000)],
                                           dtype="string[pyarrow]"),
                          "number": pd.array(range(200_000), dtype="Int64")})
    gc.collect()  # earlier tests' garbage: not counted
    before = pa.total_allocated_bytes()
    sliced = frame.iloc[0:0].copy()
    empty = inparts._no_rows(frame)
    del frame
    gc.collect()
    assert pa.total_allocated_bytes() >= before - 10_000  # the slice still holds the text
    del sliced
    gc.collect()
    assert pa.total_allocated_bytes() < before - 1_000_000  # now it is gone
    assert empty.empty and list(empty.columns) == ["text", "number"]
    assert str(empty["text"].dtype) == "string" and str(empty["number"].dtype) == "Int64"


def test_a_part_typed_unlike_the_first_sends_the_delivery_to_the_whole_validation(tmp_path):
    """The parts' rows share one file: a part whose column cannot take the first part's type
    is not written half — the delivery is validated whole instead."""
    rows = inparts.LocatedRows(tmp_path / "located.parquet")
    rows.add(pd.DataFrame({"id": pd.array([1, 2], dtype="Int64")}), np.array([7, 8]))
    with pytest.raises(inparts._Whole, match="typed"):
        rows.add(pd.DataFrame({"id": pd.array(["x"], dtype="string")}, index=[2]),
                 np.array([9]))
    rows.remove()
    assert not (tmp_path / "located.parquet").exists()


def test_georeferencing_waits_for_the_background_import_whole_and_in_parts(
        staged, tmp_path, monkeypatch):
    """Georeferencing imports shapely and geopandas; great-expectations' import in the
    background may be importing them too, and two threads importing shapely at once saw it
    half initialised (an ImportError that failed the run). Whole and in parts, the stage
    waits for the background import first: it has ended when the stages return."""
    import threading
    import time

    dataset, city, env, extract = staged
    extracted = extract(dataset, tmp_path / "state")
    for rows in (10**9, 500):
        importing = threading.Thread(target=time.sleep, args=(5,), daemon=True)
        importing.start()
        monkeypatch.setattr(inparts, "PART_ROWS", rows)
        _checked(dataset, city, extracted.state, extracted, (None, None), set(),
                 QuarantineStore(tmp_path / str(rows)), RunReport(run_id="r", dataset="d"),
                 lambda _msg: None, importing)
        assert not importing.is_alive(), rows
