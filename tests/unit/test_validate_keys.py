"""Keys before writes (odp.validate.keys): missing and repeated primary keys found after
coercion, `[validate] dedupe`, the row-hash key and `odp draft` writing it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from odp.errors import ConfigError, GateError
from odp.spec import Dataset, load_dataset
from odp.validate import QuarantineStore, check_gate, validate_batch
from odp.validate.draft import read_sample
from odp.validate.keys import row_hash
from odp.validate.settings import settings
from tests.unit.test_validate import ELBE, NOW, UNIQUE, dataset, elbe, hits

PLACES = [
    {"name": "id", "type": "integer", "constraints": {"required": True}},
    {"name": "name", "type": "string"},
]


def project(root: Path, name: str = "places", fields: list[dict] | None = None,
            key: list[str] | None = None, validate: str = "", extract: str = "",
            suite: list[dict] | None = None) -> Dataset:
    """A dataset defined by its three files under `root` (a suite without a uniqueness
    expectation unless given: the key check alone guards the key)."""
    for folder in ("pipelines", "cities", "schemas", "expectations"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / f"{name}.toml").write_text(
        f'title = "{name}"\n{extract}\n[source]\ntype = "csv"\n\n[validate]\n{validate}\n',
        encoding="utf-8")
    schema = {"fields": fields or PLACES, "primaryKey": key or ["id"]}
    (root / "schemas" / f"{name}.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / "expectations" / f"{name}.json").write_text(
        json.dumps({"name": name, "expectations": suite or []}), encoding="utf-8")
    return load_dataset(name, root)


def places(ids: list[str], names: list[str] | None = None) -> pd.DataFrame:
    names = names or [f"place {i}" for i in range(1, len(ids) + 1)]
    return pd.DataFrame({"id": ids, "name": names}, dtype="string")


def key_findings(result) -> list[tuple[int, str, str, str]]:
    f = result.findings[result.findings["rule"] == "primary_key"]
    return [(int(r.row), r.severity, r.key, r.reason) for r in f.itertuples()]


# --- repeated and missing keys -------------------------------------------------------------


def test_duplicate_keys_are_quarantined_with_the_other_rows_numbers(tmp_path):
    spec = project(tmp_path)
    store = QuarantineStore(tmp_path / "state")
    batch = places(["1", "2", "1", "3", "1", "4", "5"])
    result = validate_batch(batch, spec, "run-1", store)
    assert key_findings(result) == [
        (1, "error", "id=1", "duplicate key (id=1) also in row(s) 3, 5"),
        (3, "error", "id=1", "duplicate key (id=1) also in row(s) 1, 5"),
        (5, "error", "id=1", "duplicate key (id=1) also in row(s) 1, 3"),
    ]
    assert result.rejected_rows == 3 and result.valid["id"].tolist() == [2, 3, 4, 5]
    listed = store.list("places")
    assert listed[["row", "field", "rule"]].values.tolist() == [
        [1, "id", "primary_key"], [3, "id", "primary_key"], [5, "id", "primary_key"]]
    assert json.loads(listed["raw"].iloc[0]) == {"id": "1", "name": "place 1"}


def test_gate_holds_the_batch_back_when_duplicate_keys_exceed_the_quarantine_share(tmp_path):
    batch = places([str(i) for i in range(1, 21)] + ["7"])  # 2 of 21 rows: 9.5 %
    strict = project(tmp_path / "strict")  # max_quarantine_share 0.05 (default)
    with pytest.raises(GateError, match=r"2 of 21 rows rejected .*duplicate key \(id=7\)"):
        check_gate(validate_batch(batch, strict, "r1"), strict)
    lenient = project(tmp_path / "lenient", validate="max_quarantine_share = 0.2")
    result = validate_batch(batch, lenient, "r1")
    check_gate(result, lenient)
    assert len(result.valid) == 19


def test_a_long_list_of_other_rows_is_capped(tmp_path):
    result = validate_batch(places(["9"] * 8), project(tmp_path), "r1")
    reasons = result.findings["reason"].tolist()
    assert reasons[0] == "duplicate key (id=9) also in row(s) 2, 3, 4, 5, 6 and 2 more"
    assert reasons[7] == "duplicate key (id=9) also in row(s) 1, 2, 3, 4, 5 and 2 more"


@pytest.mark.parametrize(("mode", "kept", "dropped"), [("first", 1, [3, 4]),
                                                       ("last", 4, [1, 3])])
def test_dedupe_keeps_the_first_or_last_row_and_warns_about_the_others(tmp_path, mode, kept,
                                                                        dropped):
    spec = project(tmp_path, validate=f'dedupe = "{mode}"')
    store = QuarantineStore(tmp_path / "state")
    batch = places(["1", "2", "1", "1"], ["a", "b", "c", "d"])
    batch.index = [10, 11, 12, 13]  # labels as staging gives them
    result = validate_batch(batch, spec, "r1", store)
    assert result.valid["name"].tolist() == (["a", "b"] if mode == "first" else ["b", "d"])
    assert result.valid.index.tolist() == ([10, 11] if mode == "first" else [11, 13])
    assert [(row, severity) for row, severity, _, _ in key_findings(result)] == [
        (row, "warning") for row in dropped]
    assert key_findings(result)[0][3].endswith(f"; row {kept} kept")
    assert result.rejected_rows == 0 and result.warnings == 2
    assert store.list("places").empty  # left out, not quarantined
    check_gate(result, spec)


def test_integer_keys_01_and_1_collide_as_in_the_datastore(tmp_path):
    result = validate_batch(places(["01", "1", " 2", "+3"]), project(tmp_path), "r1")
    assert key_findings(result) == [
        (1, "error", "id=01", "duplicate key (id=01) also in row(s) 2"),
        (2, "error", "id=1", "duplicate key (id=1) also in row(s) 1"),
    ]
    assert result.valid["id"].tolist() == [2, 3]


def test_a_missing_key_field_is_rejected(tmp_path):
    fields = [{"name": "school_id", "type": "integer", "constraints": {"required": True}},
              {"name": "building_no", "type": "integer"}, {"name": "name", "type": "string"}]
    spec = project(tmp_path, fields=fields, key=["school_id", "building_no"])
    batch = pd.DataFrame({"school_id": ["1", "1", "2", ""], "building_no": ["1", "", "1", "1"],
                          "name": ["a", "b", "c", "d"]}, dtype="string")
    result = validate_batch(batch, spec, "r1")
    assert key_findings(result) == [
        (2, "error", "school_id=1|building_no=", "key field 'building_no' is missing")]
    # A missing required field is coercion's finding; the key check adds no second one.
    assert hits(result) == {(2, "school_id,building_no", "primary_key", "error"),
                            (4, "school_id", "required", "error")}
    assert result.valid["name"].tolist() == ["a", "c"]


def test_a_suite_expectation_on_the_key_reports_duplicates_once_under_its_own_name():
    times = ["2024-11-20T07:45:00Z", "2024-11-20T08:45:00+01:00", "2024-11-20T08:00:00Z"]
    result = validate_batch(elbe(["98.0", "99.0", "97.0"], times), dataset(ELBE), "r1", now=NOW)
    # The same instant written two ways is the same key (typed values, as in the DataStore).
    assert hits(result) == {(1, "station_uuid,timestamp", UNIQUE, "error"),
                            (2, "station_uuid,timestamp", UNIQUE, "error")}
    deduped = validate_batch(elbe(["98.0", "99.0", "97.0"], times),
                             dataset(ELBE, dedupe="last"), "r1", now=NOW)
    assert hits(deduped) == {(1, "station_uuid,timestamp", "primary_key", "warning")}
    assert deduped.valid["water_level"].tolist() == [99.0, 97.0]


# --- row-hash key --------------------------------------------------------------------------

READINGS = [
    {"name": "station", "type": "string", "constraints": {"required": True}},
    {"name": "day", "type": "date"},
    {"name": "value", "type": "number"},
    {"name": "row_hash", "type": "string", "odp:derived": "row_hash"},
]


PINNED = "b98aba8c57a1c1f2"  # the first reading's row hash


def readings() -> pd.DataFrame:
    return pd.DataFrame({"station": ["Nord", "Nord", "Süd", "Süd", "Nord"],
                         "day": ["2024-11-20", "2024-11-20", "2024-11-20", "", "2024-11-21"],
                         "value": ["1.5", "2.5", "1.5", "7", "1.5"]}, dtype="string")


def test_row_hash_key_is_stable_across_validations_and_row_order(tmp_path):
    spec = project(tmp_path, "readings", READINGS, ["row_hash"])
    first = validate_batch(readings(), spec, "r1")
    assert first.findings.empty and first.valid["row_hash"].str.fullmatch("[0-9a-f]{16}").all()
    assert first.valid["row_hash"].nunique() == 5
    again = validate_batch(readings(), spec, "r2")
    assert again.valid["row_hash"].tolist() == first.valid["row_hash"].tolist()
    order = [4, 2, 0, 3, 1]
    shuffled = validate_batch(readings().iloc[order], spec, "r3")
    by_row = dict(zip(shuffled.valid.index, shuffled.valid["row_hash"], strict=True))
    assert [by_row[i] for i in range(5)] == first.valid["row_hash"].tolist()
    # Typed values: "1.50" is the number 1.5, so the row is the same row.
    written_otherwise = readings().assign(value=["1.50", "2.5", "1.5", "7.0", "1.5"])
    assert validate_batch(written_otherwise, spec, "r4").valid["row_hash"].tolist() == \
        first.valid["row_hash"].tolist()
    # The hash is pinned: a library upgrade that changed it would re-key every published row.
    assert first.valid["row_hash"].iloc[0] == PINNED



def test_identical_rows_under_a_row_hash_key_are_duplicates(tmp_path):
    batch = pd.concat([readings(), readings().iloc[[1]]], ignore_index=True)
    spec = project(tmp_path / "a", "readings", READINGS, ["row_hash"])
    store = QuarantineStore(tmp_path / "state")
    result = validate_batch(batch, spec, "r1", store)
    assert [(row, severity) for row, severity, _, _ in key_findings(result)] == [
        (2, "error"), (6, "error")]
    digest = result.findings["key"].iloc[0]
    assert digest.startswith("row_hash=") and result.findings["key"].iloc[1] == digest
    assert json.loads(store.list("readings")["raw"].iloc[0])["row_hash"] == digest[9:]
    deduped = project(tmp_path / "b", "readings", READINGS, ["row_hash"],
                      validate='dedupe = "first"')
    result = validate_batch(batch, deduped, "r1")
    assert len(result.valid) == 5 and result.rejected_rows == 0 and result.warnings == 1


def test_row_hash_is_vectorised_over_typed_columns():
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"),
                          "t": pd.to_datetime(["2024-01-01T00:00Z", None, "2024-01-01T00:00Z"],
                                              utc=True),
                          "s": pd.array(["x", "y", None], dtype="string")})
    hashed = row_hash(frame, ["n", "t", "s"])
    assert hashed.nunique() == 3 and hashed.str.len().eq(16).all()
    assert row_hash(frame, ["t"]).iloc[0] == row_hash(frame, ["t"]).iloc[2]
    assert (row_hash(frame, ["n", "s"]) != row_hash(frame, ["s", "n"])).all()  # schema order


def test_row_hash_key_needs_a_full_refresh_dataset_and_a_field(tmp_path):
    with pytest.raises(ConfigError, match="row-hash key .* needs a full-refresh dataset"):
        project(tmp_path / "a", "readings", READINGS, ["row_hash"],
                extract='[extract]\nmode = "incremental"')
    with pytest.raises(ConfigError, match='a row-hash key is a field: add .*"odp:derived"'):
        project(tmp_path / "b", "readings", READINGS[:3], ["odp:row_hash"])


# --- odp draft -----------------------------------------------------------------------------

MEASUREMENTS = "Messstelle;Datum;Wert\n" + "".join(
    f"{station};{day:02d}.11.2024;{value}\n"
    for day in range(1, 11) for station in ("Nord", "Süd") for value in ("1,5", f"{day},25"))


def test_draft_without_a_unique_column_writes_a_row_hash_key_that_validates(tmp_path):
    root = tmp_path / "project"
    for folder in ("pipelines", "cities"):
        (root / folder).mkdir(parents=True)
    source = tmp_path / "messwerte.csv"
    source.write_text(MEASUREMENTS, encoding="utf-8")
    env = {"ODP_PROJECT": str(root), "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "odp.cli", "draft", "messwerte", "--from",
                           str(source)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "primary-key candidates: none" in done.stdout
    assert "warning: no column (or combination of up to 3) of the file is unique" in \
        done.stderr and "row hash" in done.stderr
    schema = json.loads((root / "schemas" / "messwerte.json").read_text(encoding="utf-8"))
    assert schema["primaryKey"] == ["row_hash"]
    assert schema["fields"][-1] == {
        "name": "row_hash", "type": "string", "title": "Zeilen-Hash",
        "description": "Schlüssel aus den Werten der Zeile (keine eindeutige Spalte in der "
                       "Quelle)", "odp:derived": "row_hash"}
    spec = load_dataset("messwerte", root)  # the pipeline the draft wrote
    frame = read_sample(str(source))[0].rename(columns=spec.source["rename"])
    result = validate_batch(frame.astype("string"), spec, "r1")
    assert result.findings.empty and len(result.valid) == 40
    assert result.valid["row_hash"].nunique() == 40
    check_gate(result, spec)


# --- settings ------------------------------------------------------------------------------


def test_bad_dedupe_or_may_be_empty_names_file_and_key(tmp_path):
    spec = project(tmp_path, validate='dedupe = "newest"')
    definition = tmp_path / "pipelines" / "places.toml"
    with pytest.raises(ConfigError) as caught:
        settings(spec)
    assert str(caught.value) == (f"{definition}: [validate] dedupe: must be 'reject', 'first' "
                                 "or 'last', got 'newest'")
    with pytest.raises(ConfigError, match=r"places.toml: \[validate\] dedupe"):
        validate_batch(places(["1"]), spec, "r1")
    spec = project(tmp_path, validate='may_be_empty = "yes"')
    with pytest.raises(ConfigError, match=r"places.toml: \[validate\] may_be_empty: must be "
                                          r"true or false"):
        settings(spec)
    spec = project(tmp_path, validate='dedupe = "last"\nmay_be_empty = true')
    assert (settings(spec).dedupe, settings(spec).may_be_empty) == ("last", True)
    assert (settings(project(tmp_path)).dedupe, settings(project(tmp_path)).may_be_empty) == (
        "reject", False)



def test_rows_georeferencing_rejects_under_a_row_hash_key_are_quarantined_by_their_hash(
        tmp_path):
    import dataclasses

    from odp.run import RunReport, _georeference
    from odp.spec import load_city
    from tests.helpers import REPO

    fields = [{"name": "name", "type": "string"}, {"name": "longitude", "type": "number"},
              {"name": "latitude", "type": "number"},
              {"name": "row_hash", "type": "string", "odp:derived": "row_hash"}]
    spec = dataclasses.replace(project(tmp_path, "trees", fields, ["row_hash"]),
                               georeference={"lon": "longitude", "lat": "latitude"})
    batch = pd.DataFrame({"name": ["Frauenkirche", "swapped"], "longitude": ["13.7416", "51.0519"],
                          "latitude": ["51.0519", "13.7416"]}, dtype="string")
    store = QuarantineStore(tmp_path / "state")
    result = validate_batch(batch, spec, "r1", store)
    report = RunReport(run_id="r1", dataset="trees")
    located, result = _georeference(spec, load_city(REPO), batch, result, store, report)
    assert len(located.table) == 1 and result.rejected_rows == 1
    held = store.list("trees")
    assert held["key"].tolist() == [f"row_hash={result.findings['key'].iloc[0][9:]}"]
    assert held["key"].iloc[0].startswith("row_hash=") and len(held["key"].iloc[0]) == 25
