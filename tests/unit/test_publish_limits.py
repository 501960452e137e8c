"""What the portal would refuse, known before a write (upload size, text too long for CKAN's
full-text column), and the DataStore table read back into the ledger's typed form."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from odp.errors import ConfigError
from odp.publish import limits
from odp.publish.changes import DELETED_AT, HASH, diff, row_hashes
from odp.publish.datastore import _as_text
from odp.publish.reconcile import ledger_from_table
from odp.publish.resources import ResourceFile, link_url
from odp.spec import load_city, load_dataset
from tests.helpers import make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root, _ = make_project(tmp_path, [])
    monkeypatch.delenv("ODP_CKAN_URL", raising=False)
    return root


def _set_limit(root: Path, line: str) -> None:
    city = root / "cities" / "dresden.toml"
    text = city.read_text(encoding="utf-8")
    text = "\n".join(row for row in text.splitlines() if "max_resource_size_mb" not in row)
    city.write_text(text.replace("[portal]\n", f"[portal]\n{line}\n"), encoding="utf-8")


def test_the_upload_limit_is_ckans_default_unless_the_city_sets_it(project):
    _set_limit(project, "")
    assert limits.max_upload_bytes(load_city(project)) == 10 * 1024 * 1024
    _set_limit(project, "max_resource_size_mb = 0.5")
    assert limits.max_upload_bytes(load_city(project)) == 512 * 1024
    _set_limit(project, 'max_resource_size_mb = "ten"')
    with pytest.raises(ConfigError, match="max_resource_size_mb"):
        limits.max_upload_bytes(load_city(project))


def test_rows_whose_text_may_overflow_a_tsvector_are_found_before_the_write():
    table = pd.DataFrame({
        "id": pd.array([1, 2, 3], dtype="Int64"),
        "name": pd.array(["kurz", "ä" * (limits.FULL_TEXT_SAFE_BYTES // 2 + 1), None],
                         dtype="string"),
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
    })
    long = limits.long_text_rows(table, list(table.columns))
    assert list(long) == [False, True, False]  # 2 bytes per "ä": over the safe size
    assert limits.long_text_rows(table.iloc[0:0], list(table.columns)).empty
    # Three times the safe size always fits a tsvector (lexeme + position + entry bytes).
    assert 3 * limits.FULL_TEXT_SAFE_BYTES <= limits.TSVECTOR_MAX_BYTES
    assert 4 * limits.FULL_TEXT_KEPT_CHARS <= limits.FULL_TEXT_SAFE_BYTES


def _validated() -> pd.DataFrame:
    """A frame typed as odp.validate.coerce types it."""
    return pd.DataFrame({
        "id": pd.array([2, 1, 3], dtype="Int64"),
        "name": pd.array(["Zweite", "", None], dtype="string"),
        "value": pd.array([0.1 + 0.2, None, -1e-7], dtype="Float64"),
        "ok": pd.array([True, None, False], dtype="boolean"),
        "when": pd.to_datetime(["2024-11-21T05:00:00Z", "2024-11-21T05:00:00.250000Z", None],
                               utc=True, format="ISO8601").astype("datetime64[ns, UTC]"),
        "day": pd.Series([dt.date(2024, 1, 2), None, dt.date(1999, 12, 31)], dtype=object),
    })


KINDS = {"id": "integer", "name": "string", "value": "number", "ok": "boolean",
         "when": "datetime", "day": "date", DELETED_AT: "datetime"}


def _as_postgres_text(frame: pd.DataFrame) -> pa.Table:
    """Each value as PostgreSQL's `::text` writes it (what CopyLoader.read returns)."""
    def text(value) -> str | None:
        if value is None or value is pd.NA or value is pd.NaT or (
                isinstance(value, float) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.tz_convert("UTC").tz_localize(None).isoformat(sep=" ")
        return _as_text(value.item() if hasattr(value, "item") else value)

    return pa.table({c: pa.array([text(v) for v in frame[c].astype(object)],
                                 type=pa.large_string()) for c in frame.columns})


def test_a_table_read_back_hashes_like_the_validated_rows():
    rows = _validated()
    names = list(rows.columns)
    ledger = ledger_from_table(_as_postgres_text(rows), KINDS, names, ["id"])
    assert list(ledger["id"]) == [1, 2, 3]
    expected = rows.sort_values("id", ignore_index=True)
    assert list(ledger[HASH]) == list(row_hashes(expected, names))
    assert ledger.loc[0, "name"] == "" and pd.isna(ledger.loc[2, "name"])  # "" is not NULL
    # So the diff of the same rows against the table read back finds nothing to write.
    assert diff(rows, ledger, ["id"], names, True).empty


def test_a_column_the_table_lacks_reads_as_null_and_the_diff_fills_it():
    rows = _validated()
    names = list(rows.columns)
    ledger = ledger_from_table(_as_postgres_text(rows.drop(columns=["day"])), KINDS, names,
                               ["id"])
    changes = diff(rows, ledger, ["id"], names, True)
    # Row 1 has no day: unchanged; rows 2 and 3 gain theirs.
    assert sorted(changes.changed["id"]) == [2, 3] and changes.new.empty


def test_link_mode_replaces_the_linked_file_atomically(tmp_path: Path):
    root, names = make_project(tmp_path, ["schools-dresden"])
    name = names["schools-dresden"]
    dataset = load_dataset(name, root)
    folder = tmp_path / "www"
    dataset.publish.update(resource_mode="link", link_dir=str(folder),
                           link_base_url="https://data.example/files")
    source = tmp_path / f"{name}.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    file = ResourceFile("table", source, "t", "CSV", "text/csv", "", "h")
    assert link_url(dataset, file) == f"https://data.example/files/{name}/{name}.csv"
    target = folder / name / f"{name}.csv"
    before = os.stat(target).st_ino
    source.write_text("a\n2\n", encoding="utf-8")
    link_url(dataset, file)
    assert target.read_text(encoding="utf-8") == "a\n2\n"
    assert os.stat(target).st_ino != before  # a new file renamed over the old one
    assert [p.name for p in target.parent.iterdir()] == [f"{name}.csv"]  # no partial left
