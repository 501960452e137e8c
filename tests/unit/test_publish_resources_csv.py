"""The CSV resource: the format consumers rely on, whichever writer produced it."""

from __future__ import annotations

import pandas as pd

from odp.publish.resources import write_csv

EXPECTED = (
    'id,name,when,value,open,day\n'
    '1,"Prager Straße, Dresden",2024-03-31T01:00:00Z,12.5,True,2024-03-31\n'
    '2,"say ""hi""",2024-10-27T00:30:00Z,1e-05,False,2024-10-27\n'
    "3,'=SUM(A1),2024-10-27T01:30:00Z,,,\n"
    '4,"two\nlines",2024-12-31T23:00:00Z,3.0,True,2024-12-31\n'
    '5,,2025-01-01T00:00:00Z,-2.0,False,2025-01-01\n'
)


def _table() -> pd.DataFrame:
    berlin = pd.to_datetime(["2024-03-31T03:00:00+02:00", "2024-10-27T02:30:00+02:00",
                             "2024-10-27T02:30:00+01:00", "2025-01-01T00:00:00+01:00",
                             "2025-01-01T01:00:00+01:00"], utc=True)
    return pd.DataFrame({
        "id": pd.array([1, 2, 3, 4, 5], dtype="Int64"),
        "name": pd.array(["Prager Straße, Dresden", 'say "hi"', "=SUM(A1)", "two\r\nlines",
                          None], dtype="string"),
        "when": pd.Series(berlin).dt.as_unit("us"),
        "value": pd.array([12.5, 0.00001, None, 3.0, -2.0], dtype="Float64"),
        "open": pd.array([True, False, None, True, False], dtype="boolean"),
        "day": [pd.Timestamp(d).date() if d else None for d in
                ("2024-03-31", "2024-10-27", None, "2024-12-31", "2025-01-01")],
    })


def test_the_csv_has_utc_times_plain_numbers_and_quotes_only_where_needed(tmp_path):
    path = write_csv(_table(), ["id", "name", "when", "value", "open", "day"],
                     tmp_path / "t.csv")
    assert path.read_bytes().decode("utf-8") == EXPECTED


def test_a_column_of_mixed_objects_is_written_as_its_text(tmp_path):
    table = pd.DataFrame({"id": [1, 2, 3, 4], "x": pd.Series([1, "a", 2.5, None], dtype=object)})
    path = write_csv(table, ["id", "x"], tmp_path / "t.csv")
    assert path.read_text(encoding="utf-8") == "id,x\n1,1\n2,a\n3,2.5\n4,\n"


def test_a_file_clearly_over_the_upload_limit_is_not_written_again(tmp_path):
    from odp.publish.changes import diff
    from odp.publish.resources import build
    from odp.spec import load_dataset
    from tests.helpers import LEDGER_COLUMNS, LEDGER_KEY, REPO, ledger_table

    dataset = load_dataset("air-quality-dresden", REPO)  # a sensor table: CSV and Parquet
    rows = [(i, f"name {i}", "2024-01-01") for i in range(2000)]
    table = diff(ledger_table(rows), None, LEDGER_KEY, LEDGER_COLUMNS, True).result
    first = {f.role: f for f in build(dataset, table, LEDGER_COLUMNS, tmp_path, limit=1000)}
    assert first["table"].path.is_file() and first["table"].estimated == 0  # measured once

    again = {f.role: f for f in build(dataset, table, LEDGER_COLUMNS, tmp_path, limit=1000)}
    for role in ("table", "parquet"):
        assert not again[role].path.exists() and again[role].estimated > 1500
        assert again[role].hash == first[role].hash  # the same content, the same hash
    rows[7] = (7, "renamed", "2024-01-01")
    changed = diff(ledger_table(rows), None, LEDGER_KEY, LEDGER_COLUMNS, True).result
    moved = {f.role: f for f in build(dataset, changed, LEDGER_COLUMNS, tmp_path, limit=1000)}
    assert moved["table"].hash != first["table"].hash and not moved["table"].path.exists()

    roomy = {f.role: f for f in build(dataset, changed, LEDGER_COLUMNS, tmp_path, limit=10**7)}
    assert roomy["table"].path.is_file() and roomy["table"].hash == moved["table"].hash
    assert "renamed" in roomy["table"].path.read_text(encoding="utf-8")


def test_a_first_csv_clearly_over_the_upload_limit_is_estimated_from_a_sample_not_written(
        tmp_path, monkeypatch):
    """A first publish of a large table does not write a CSV the portal would refuse: every
    n-th row is written and measured, once (the next run estimates from the sample's size);
    a table within the limit is written whole."""
    from odp.publish import resources
    from odp.publish.changes import diff
    from odp.publish.resources import SAMPLE_ROWS, build
    from odp.spec import load_dataset
    from tests.helpers import LEDGER_COLUMNS, LEDGER_KEY, REPO, ledger_table

    dataset = load_dataset("air-quality-dresden", REPO)
    rows = [(i, f"name {i}", "2024-01-01") for i in range(3 * SAMPLE_ROWS)]
    changes = diff(ledger_table(rows), None, LEDGER_KEY, LEDGER_COLUMNS, True)
    whole = tmp_path / "whole.csv"
    write_csv(changes.frame, LEDGER_COLUMNS, whole)
    for table in (changes.published, changes.result):  # a first publish's frame, or Arrow
        state = tmp_path / type(table).__name__
        tight = {f.role: f for f in build(dataset, table, LEDGER_COLUMNS, state, limit=100_000)}
        assert not tight["table"].path.exists()
        assert abs(tight["table"].estimated - whole.stat().st_size) < 0.05 * whole.stat().st_size
        assert not list(state.rglob(".sample*"))  # the sample is gone
        with monkeypatch.context() as patched:  # the next run: no sample again
            patched.setattr(resources, "_sample", lambda *_: 1 / 0)
            again = {f.role: f for f in build(dataset, table, LEDGER_COLUMNS, state,
                                              limit=100_000)}
        assert again["table"].estimated == tight["table"].estimated
        roomy = {f.role: f for f in build(dataset, table, LEDGER_COLUMNS, state, limit=10**8)}
        assert roomy["table"].path.read_bytes() == whole.read_bytes()
        assert roomy["table"].hash == tight["table"].hash


def _schools(n: int) -> pd.DataFrame:
    """`n` rows of the schools register, typed as validated (every 5th without a location)."""
    lon = [None if i % 5 == 4 else 13.70 + i * 1e-5 for i in range(n)]
    return pd.DataFrame({
        "school_id": pd.array(range(n), dtype="Int64"),
        "building_no": pd.array([1] * n, dtype="Int64"),
        "name": pd.array([f"Schule {i}" for i in range(n)], dtype="string"),
        "longitude": pd.array(lon, dtype="Float64"),
        "latitude": pd.array([None if x is None else 51.05 for x in lon], dtype="Float64")})


def test_a_registers_geojson_is_written_a_part_at_a_time_or_not_at_all_over_the_limit(
        tmp_path, monkeypatch):
    """The GeoJSON of a register is the rows' `to_geojson`, whether the published table is a
    frame, Arrow or the merged ledger, written in parts (rows marked deleted left out); one
    clearly over the upload limit is estimated from a sample, once, and not written."""
    from odp.georeference import to_geojson
    from odp.publish import ledgerfile, resources
    from odp.publish.changes import DELETED_AT, diff, read_ledger, write_ledger
    from odp.publish.resources import SAMPLE_ROWS, build
    from odp.spec import load_dataset
    from tests.helpers import REPO

    dataset = load_dataset("schools-dresden", REPO)
    key, columns = ["school_id", "building_no"], list(_schools(1).columns)
    monkeypatch.setattr(resources, "GEOJSON_ROWS", 700)  # parts of a table in memory
    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 1000)  # the merged ledger's row groups
    rows = _schools(3 * SAMPLE_ROWS)
    first = diff(rows, None, key, columns, True)
    expected = to_geojson(rows, dataset)
    write_ledger(tmp_path / "led", "d", first.result)
    more = pd.concat([rows, _schools(3 * SAMPLE_ROWS + 5).iloc[-5:]], ignore_index=True)
    merged = diff(more, read_ledger(tmp_path / "led", "d"), key, columns, True).published
    for table, rows_in in ((first.published, rows), (first.result, rows), (merged, more)):
        state = tmp_path / type(table).__name__
        files = {f.role: f for f in build(dataset, table, columns, state, limit=10**9)}
        assert files["geojson"].path.read_bytes() == to_geojson(rows_in, dataset)
    assert len(expected) > 10**6  # 30,000 features

    never = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us, UTC]")
    marked = rows.assign(**{DELETED_AT: never})
    marked.loc[3, DELETED_AT] = pd.Timestamp("2024-05-01", tz="UTC")
    files = {f.role: f for f in build(dataset, marked, columns, tmp_path / "marked", 10**9)}
    assert files["geojson"].path.read_bytes() == to_geojson(rows.drop(index=3), dataset)

    state = tmp_path / "tight"
    tight = {f.role: f for f in build(dataset, first.result, columns, state, limit=100_000)}
    assert not tight["geojson"].path.exists() and not list(state.rglob(".sample*"))
    assert abs(tight["geojson"].estimated - len(expected)) < 0.05 * len(expected)
    with monkeypatch.context() as patched:  # the next run estimates from the sample's size
        patched.setattr(resources, "_sample", lambda *_: 1 / 0)
        again = {f.role: f for f in build(dataset, first.result, columns, state, 100_000)}
    assert again["geojson"].estimated == tight["geojson"].estimated


def test_a_first_parquet_clearly_over_the_upload_limit_is_estimated_from_whole_row_groups(
        tmp_path, monkeypatch):
    """A first publish's rows read from disk (in key order, a row group at a time) do not make
    a Parquet file the portal would refuse: three of their row groups, spread over them, are
    written and measured, once — Parquet encodes each group alone, so whole groups give the
    file's bytes per row —; rows merged with a ledger's are written and measured instead."""
    import numpy as np

    from odp.publish import ledgerfile, resources
    from odp.publish.changes import diff, read_ledger, write_ledger
    from odp.publish.ledgerfile import Merged
    from odp.publish.resources import SAMPLE_ROWS, build
    from odp.spec import load_dataset
    from tests.helpers import REPO

    dataset = load_dataset("schools-dresden", REPO)
    key, columns = ["school_id", "building_no"], list(_schools(1).columns)
    monkeypatch.setattr(ledgerfile, "BATCH_ROWS", 1000)  # 30 row groups
    rows = _schools(3 * SAMPLE_ROWS)
    write_ledger(tmp_path / "sorted", "d", diff(rows, None, key, columns, True).result)
    on_disk = read_ledger(tmp_path / "sorted", "d")
    first = Merged(on_disk, np.zeros(len(rows), dtype=bool), None, key)  # as first_publish
    whole = {f.role: f for f in build(dataset, first, columns, tmp_path / "roomy", 10**9)}
    size = whole["parquet"].path.stat().st_size
    assert size > 100_000

    state = tmp_path / "tight"
    tight = {f.role: f for f in build(dataset, first, columns, state, limit=size // 2)}
    assert not tight["parquet"].path.exists() and not list(state.rglob(".sample*"))
    # within 10 % (the sample's own footer weighs on 3,000 rows; 1.03x at 1M and 10M rows)
    assert abs(tight["parquet"].estimated - size) < 0.10 * size
    assert tight["parquet"].hash == whole["parquet"].hash  # the table's content, either way
    with monkeypatch.context() as patched:  # the next run estimates from the sample's size
        patched.setattr(resources, "_parquet_sample", lambda *_: 1 / 0)
        again = {f.role: f for f in build(dataset, first, columns, state, limit=size // 2)}
    assert again["parquet"].estimated == tight["parquet"].estimated

    more = pd.concat([rows, _schools(3 * SAMPLE_ROWS + 5).iloc[-5:]], ignore_index=True)
    merged = diff(more, on_disk, key, columns, True).published  # rows added: no sample
    assert merged.spread_groups(columns, resources.SAMPLE_GROUPS) is None
    other = tmp_path / "merged"
    files = {f.role: f for f in build(dataset, merged, columns, other, limit=size // 2)}
    assert files["parquet"].path.stat().st_size > size  # written (over: left out by sync)
    assert pd.read_parquet(files["parquet"].path)["school_id"].tolist() == list(range(len(more)))
