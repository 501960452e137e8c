"""Validation stage (odp.validate): coercion, GX suites, quarantine, gate — on the real school
register (tests/fixtures) and PEGELONLINE-shaped water levels, with injected faults."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from odp.errors import ConfigError, GateError
from odp.sources.json_records import RecordShape, flatten
from odp.sources.settings import settings_of
from odp.spec import Dataset, TableSchema
from odp.validate import QuarantineStore, check_gate, coerce, load_suite, validate_batch
from odp.validate.suite import resolved

REPO = Path(__file__).resolve().parents[2]
SCHOOLS_FILE = REPO / "tests" / "recordings" / "schools" / "sachsen_schools_schuldatenbank.json"
ELBE = "elbe-water-level-dresden"
SCHOOLS = "schools-dresden"
UUID = "70272185-b2b3-4178-96b8-43bea330dcae"
NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)  # the run time for `$now` in the suite
BETWEEN = "expect_column_values_to_be_between"
UNIQUE = "expect_compound_columns_to_be_unique"


def dataset(name: str, schema: dict | None = None, **validate: object) -> Dataset:
    """The dataset as configured (schema, suite, `[validate]`), `validate` keys overridden."""
    path = REPO / "schemas" / f"{name}.json"
    raw = schema or json.loads(path.read_text(encoding="utf-8"))
    definition = tomllib.loads((REPO / "pipelines" / f"{name}.toml").read_text(encoding="utf-8"))
    return Dataset(
        name=name,
        title=name,
        description="",
        kind="",
        source={},
        extract=definition.get("extract", {}),
        validate=definition.get("validate", {}) | dict(validate),
        georeference={},
        publish={},
        schedule={},
        schema=TableSchema.from_dict(raw, path),
        suite_path=REPO / "expectations" / f"{name}.json",
        definition_path=REPO / "pipelines" / f"{name}.toml",
    )


# --- raw batches, built the way the sources build them -------------------------------------


@pytest.fixture(scope="module")
def school_records() -> list[dict]:
    path = SCHOOLS_FILE
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def schools(school_records: list[dict]) -> pd.DataFrame:
    """The raw batch exactly as the dataset's source (json_records) builds it."""
    source = tomllib.loads((REPO / "pipelines" / f"{SCHOOLS}.toml").read_text())["source"]
    return flatten(school_records, settings_of(RecordShape, source), SCHOOLS)


def elbe(levels: list[str | None], times: list[str] | None = None) -> pd.DataFrame:
    """A few PEGELONLINE measurements at the DRESDEN gauge, raw text, 15-minute steps."""
    start = datetime(2024, 11, 20, 7, 45, tzinfo=UTC)
    times = times or [
        (start + timedelta(minutes=15 * i)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        for i in range(len(levels))
    ]
    frame = pd.DataFrame(
        {
            "station_uuid": UUID,
            "station_name": "DRESDEN",
            "water": "ELBE",
            "timestamp": times,
            "water_level": levels,
            "longitude": "13.738831783620387",
            "latitude": "51.05445972641962",
            "_dlt_load_id": "1732100000.1",
            "_dlt_id": [f"id{i}" for i in range(len(levels))],
        }
    )
    return frame.astype("string")


def hits(result, severity: str | None = None) -> set[tuple]:
    """(row, field, rule, severity) of each row finding."""
    f = result.findings
    if severity:
        f = f[f["severity"] == severity]
    return {(int(r.row), r.field, r.rule, r.severity) for r in f.itertuples() if pd.notna(r.row)}


def row_of(frame: pd.DataFrame, **match: str) -> list[int]:
    mask = pd.Series(True, index=frame.index)
    for column, value in match.items():
        mask &= frame[column] == value
    return [int(i) + 1 for i in frame.index[mask.to_numpy()]]


# --- the real register ---------------------------------------------------------------------


def test_real_register_types_values_and_its_duplicate_key(schools, school_records):
    result = validate_batch(schools, dataset(SCHOOLS), "r1", now=NOW)
    # School 2490 is listed twice in the register, each time with one building: the source
    # numbers its buildings together (1, 2), so nothing in Dresden's 163 rows fails.
    twice = row_of(schools, school_id="2490")
    assert sorted(schools.loc[[r - 1 for r in twice], "building_no"]) == ["1", "2"]
    assert hits(result) == set()
    assert result.total == 163 and result.rejected_rows == 0 and result.warnings == 0
    assert result.batch_errors == []
    check_gate(result, dataset(SCHOOLS))

    valid = result.valid
    assert len(valid) == 163
    assert str(valid["school_id"].dtype) == "Int64" and str(valid["longitude"].dtype) == "Float64"
    assert str(valid["relocated"].dtype) == "boolean"
    known = next(r for r in school_records if r["id"] == 2040)
    row = valid[valid["school_id"] == 2040].iloc[0]
    assert row["name"] == known["name"] == "10. Grundschule Dresden"
    assert row["longitude"] == known["buildings"][0]["longitude"]  # exact, not approximately
    assert row["latitude"] == known["buildings"][0]["latitude"]
    assert row["postcode"] == "01069" and not row["relocated"]


def test_wrong_type_in_longitude_is_rejected_with_reason(schools):
    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "longitude"] = "abc"
    result = validate_batch(schools, dataset(SCHOOLS), "r1", now=NOW)
    found = result.findings[result.findings["row"] == target]
    assert found[["field", "rule", "value", "reason"]].values.tolist() == [
        ["longitude", "type:number", "abc", "'abc' is not a number"]
    ]
    assert found["key"].tolist() == ["school_id=2040|building_no=1"]
    assert (target - 1) not in result.valid.index and result.rejected_rows == 1
    assert any(
        m == f"schools-dresden: row {target} (school_id=2040|building_no=1): field 'longitude': "
        "'abc' is not a number"
        for m in result.messages()
    )


def test_schools_suite_rules_postcode_community_and_warning_band(schools):
    a, b, c = 1, 2, 3
    schools.loc[a - 1, "postcode"] = "04109"  # Leipzig: valid for the schema, not for Dresden
    schools.loc[b - 1, "community_key"] = "14628060"
    schools.loc[c - 1, "longitude"] = "12.9"  # a warning only: published
    result = validate_batch(schools, dataset(SCHOOLS), "r1", now=NOW)
    assert hits(result) == {
        (a, "postcode", "expect_column_values_to_match_regex", "error"),
        (b, "community_key", "expect_column_values_to_be_in_set", "error"),
        (c, "longitude", BETWEEN, "warning"),
    }
    assert result.warnings == 1 and (c - 1) in result.valid.index
    assert (a - 1) not in result.valid.index and (b - 1) not in result.valid.index


def test_missing_required_value(schools):
    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "name"] = pd.NA
    schools.loc[target, "street"] = ""  # the empty string is a missing value too
    result = validate_batch(schools, dataset(SCHOOLS), "r1", now=NOW)
    found = result.findings[result.findings["row"].isin([target, target + 1])]
    assert found[["row", "field", "rule", "reason"]].values.tolist() == [
        [target, "name", "required", "value is missing"],
        [target + 1, "street", "required", "value is missing"],
    ]


def test_injected_duplicate_school_key(schools):
    copy = schools.iloc[[0]].copy()
    copy["street"] = "Andere Straße 1"
    batch = pd.concat([schools, copy], ignore_index=True)
    result = validate_batch(batch, dataset(SCHOOLS), "r1", now=NOW)
    key = f"school_id={schools.loc[0, 'school_id']}|building_no={schools.loc[0, 'building_no']}"
    dup = result.findings[result.findings["key"] == key]
    assert dup["row"].tolist() == [1, len(batch)] and set(dup["rule"]) == {UNIQUE}


# --- water levels --------------------------------------------------------------------------


def test_water_level_bands_and_passthrough_columns():
    batch = elbe(["98.0", "1200", "25", "-3", "940", "abc"])
    result = validate_batch(batch, dataset(ELBE), "r1", now=NOW)
    assert hits(result) == {
        (2, "water_level", BETWEEN, "error"),
        (2, "water_level", BETWEEN, "warning"),
        (3, "water_level", BETWEEN, "warning"),
        (4, "water_level", BETWEEN, "error"),
        (4, "water_level", BETWEEN, "warning"),
        (5, "water_level", BETWEEN, "warning"),
        (6, "water_level", "type:number", "error"),
        # series rules run on the rows still valid (98, 25, 940): two steps over 50 cm
        (3, "water_level", "series:jump", "warning"),
        (5, "water_level", "series:jump", "warning"),
    }
    assert result.rejected_rows == 3 and result.warnings == 6
    assert result.valid["water_level"].tolist() == [98.0, 25.0, 940.0]
    assert result.valid["_dlt_id"].tolist() == ["id0", "id2", "id4"]
    assert str(result.valid["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert result.valid["timestamp"].iloc[0] == pd.Timestamp("2024-11-20T07:45:00Z")
    reason = result.findings.query("row == 2 and severity == 'error'")["reason"].item()
    assert reason.startswith("'1200' is outside 0 … 1000")


def test_the_suite_does_not_keep_the_rows_it_validated_alive():
    """GX keeps its last context for the process: the frame it validated must not stay with
    it (a run would hold a copy of every validated row to its end)."""
    import gc
    import weakref

    from odp.validate.suite import run_suite

    batch = elbe(["98.0", "25", "940"])
    typed = batch.assign(water_level=pd.to_numeric(batch["water_level"]),
                         timestamp=pd.to_datetime(batch["timestamp"], utc=True))
    suite = load_suite(dataset(ELBE).suite_path, dataset(ELBE).schema)
    seen = weakref.ref(typed)
    outcome = run_suite(typed, suite, now=NOW)
    del typed
    gc.collect()
    assert seen() is None
    assert [f.positions.tolist() for f in outcome.rows] == [[1, 2]]  # it ran: 25, 940 warned


def test_range_rules_get_numpy_numbers_and_find_the_same_rows(monkeypatch):
    """GX checks a range value by value in Python for pandas' nullable numbers (1M rows: 5 s):
    the suite hands it numpy columns instead, and it finds the same rows, missing values
    skipped, an integer column with a gap as floats, a column no range rule names untouched."""
    import numpy as np

    from odp.validate import suite as suite_module
    from odp.validate.suite import Suite, numpy_numbers, run_suite

    frame = pd.DataFrame({
        "level": pd.array([5, None, 2_000, -1, 7], dtype="Int64"),
        "count": pd.array([1, 2, 3, 40, 5], dtype="Int64"),
        "share": pd.array([0.5, 1e4, None, 3.0, 100.0], dtype="Float64"),
        "code": pd.array([1, None, 3, 4, 5], dtype="Int64"),
    })
    rules = [{"type": "expect_column_values_to_be_between",
              "kwargs": {"column": c, "min_value": 0, "max_value": high}}
             for c, high in (("level", 1000), ("count", 10), ("share", 100))]
    rules.append({"type": "expect_column_values_to_be_in_set",
                  "kwargs": {"column": "code", "value_set": [1, 3, 4]}})
    plain = numpy_numbers(frame, rules)
    assert [str(plain[c].dtype) for c in plain] == ["float64", "int64", "float64", "Int64"]
    assert str(frame["level"].dtype) == "Int64"  # the run's frame is not changed
    assert np.isnan(plain["level"][1]) and plain["count"].tolist() == [1, 2, 3, 40, 5]

    suite = Suite("ranges", rules)
    found = [(f.columns, f.positions.tolist()) for f in run_suite(frame, suite, NOW).rows]
    assert found == [(["level"], [2, 3]), (["count"], [3]), (["share"], [1]), (["code"], [4])]
    monkeypatch.setattr(suite_module, "numpy_numbers", lambda frame, _items: frame)
    assert [(f.columns, f.positions.tolist()) for f in run_suite(frame, suite, NOW).rows] == found


def test_offsets_are_converted_to_utc_and_naive_times_rejected():
    batch = elbe(
        ["98.0"] * 3, ["2024-11-20T07:45:00+01:00", "2024-11-20T06:50:00Z", "2024-11-20T07:55:00"]
    )
    result = validate_batch(batch, dataset(ELBE), "r1", now=NOW)
    assert result.valid["timestamp"].tolist() == [
        pd.Timestamp("2024-11-20T06:45:00Z"),
        pd.Timestamp("2024-11-20T06:50:00Z"),
    ]
    assert hits(result) == {(3, "timestamp", "type:datetime", "error")}
    assert "has no UTC offset" in result.findings["reason"].item()


def test_field_timezone_localises_naive_times():
    raw = json.loads((REPO / "schemas" / f"{ELBE}.json").read_text(encoding="utf-8"))
    for field in raw["fields"]:
        if field["name"] == "timestamp":
            field["odp:timezone"] = "Europe/Berlin"
    times = ["2024-11-20T07:45:00", "2024-10-27T02:30:00", "2024-07-01T12:00:00+00:00"]
    coerced = coerce(elbe(["1", "2", "3"], times), dataset(ELBE, raw).schema, ELBE)
    assert coerced.frame["timestamp"].iloc[0] == pd.Timestamp("2024-11-20T06:45:00Z")
    assert coerced.frame["timestamp"].iloc[2] == pd.Timestamp("2024-07-01T12:00:00Z")
    # 02:30 on the night summer time ends happens twice: ambiguous, so rejected.
    assert coerced.findings[["row", "rule"]].values.tolist() == [[2, "type:datetime"]]
    assert "ambiguous in Europe/Berlin" in coerced.findings["reason"].item()


def test_future_timestamp_more_than_an_hour_ahead_is_rejected():
    times = [(NOW + timedelta(minutes=m)).isoformat() for m in (-15, 30, 61, 24 * 60)]
    result = validate_batch(elbe(["98.0"] * 4, times), dataset(ELBE), "r1", now=NOW)
    assert hits(result) == {(3, "timestamp", BETWEEN, "error"), (4, "timestamp", BETWEEN, "error")}
    assert "is after 2024-11-20T13:00:00Z" in result.findings["reason"].iloc[0]


def test_duplicate_measurement_rejects_both_rows():
    times = ["2024-11-20T07:45:00Z", "2024-11-20T08:00:00Z", "2024-11-20T07:45:00Z"]
    result = validate_batch(elbe(["98.0", "99.0", "97.0"], times), dataset(ELBE), "r1", now=NOW)
    assert hits(result) == {
        (1, "station_uuid,timestamp", UNIQUE, "error"),
        (3, "station_uuid,timestamp", UNIQUE, "error"),
    }
    assert result.valid["water_level"].tolist() == [99.0]


# --- drift, empty batches, gate ------------------------------------------------------------


def test_schema_drift_renamed_and_extra_columns_hold_the_batch_back(schools, tmp_path):
    store = QuarantineStore(tmp_path)
    renamed = schools.rename(columns={"postcode": "plz"})
    result = validate_batch(renamed, dataset(SCHOOLS), "r1", store)
    assert (result.drift.missing, result.drift.new) == (["postcode"], ["plz"])
    assert result.drift_blocks and result.valid.empty and store.list(SCHOOLS).empty
    with pytest.raises(GateError) as caught:
        check_gate(result, dataset(SCHOOLS))
    assert str(caught.value) == (
        "schools-dresden: batch held back: schema drift: missing column 'postcode'; "
        'new column \'plz\' (drift = "fail")'
    )
    extra = schools.assign(fax="0351 123", _dlt_id="x")  # `_…` columns are not drift
    with pytest.raises(GateError, match=r"schema drift: new column 'fax' \(drift"):
        check_gate(validate_batch(extra, dataset(SCHOOLS), "r1"), dataset(SCHOOLS))
    # Staging keeps a column the source stopped sending, empty: a required one is missing.
    emptied = schools.assign(postcode=pd.NA, plz=schools["postcode"])
    assert validate_batch(emptied, dataset(SCHOOLS), "r1").drift.missing == ["postcode"]
    assert not validate_batch(schools.assign(community_part=pd.NA), dataset(SCHOOLS), "r1").drift
    gone = schools.drop(columns=["latitude", "longitude"])
    with pytest.raises(GateError, match="missing columns 'longitude', 'latitude' "):
        check_gate(validate_batch(gone, dataset(SCHOOLS), "r1"), dataset(SCHOOLS))


def test_empty_water_level_batch_passes():
    result = validate_batch(elbe([]), dataset(ELBE), "r1", now=NOW)
    assert (result.total, result.rejected_rows, result.share_rejected) == (0, 0, 0.0)
    assert result.findings.empty and result.valid.empty and result.batch_errors == []
    assert str(result.valid["water_level"].dtype) == "Float64"
    check_gate(result, dataset(ELBE))


def test_empty_register_fails_the_batch_not_rows(schools):
    result = validate_batch(schools.iloc[:0], dataset(SCHOOLS), "r1", now=NOW)
    assert result.rejected_rows == 0 and result.batch_errors == []
    with pytest.raises(GateError, match=r"^schools-dresden: batch held back: 0 rows, expected "
                                        r"100 … 1000$"):
        check_gate(result, dataset(SCHOOLS))


def test_gate_holds_back_at_the_threshold():
    at_limit = validate_batch(elbe(["98.0"] * 19 + ["abc"]), dataset(ELBE), "r1", now=NOW)
    assert at_limit.share_rejected == 0.05
    with pytest.raises(GateError) as caught:
        check_gate(at_limit, dataset(ELBE))
    message = str(caught.value)
    assert message.startswith("elbe-water-level-dresden: batch held back: 1 of 20 rows rejected")
    assert "'abc' is not a number" in message and "\n" not in message

    under = validate_batch(elbe(["98.0"] * 20 + ["abc"]), dataset(ELBE), "r1", now=NOW)
    check_gate(under, dataset(ELBE))  # 4.8 % < 5 %
    check_gate(at_limit, dataset(ELBE, max_quarantine_share=0.10))  # the dataset's own limit


def test_messages_are_capped_for_display():
    # every value is text: with drift = "evolve" that is reported and rejected row by row
    result = validate_batch(elbe(["x"] * 30), dataset(ELBE, drift="evolve"), "r1", now=NOW)
    assert [r.column for r in result.drift.retyped] == ["water_level"]
    lines = result.messages(limit=5)
    assert len(lines) == 6 and lines[-1].endswith(
        "… and 25 more findings (full list in the quarantine)"
    )
    assert len(result.messages(limit=None)) == 30


# --- quarantine ----------------------------------------------------------------------------


def test_quarantine_keeps_rows_with_reasons_and_releases_them(tmp_path):
    store = QuarantineStore(tmp_path)
    times = ["2024-11-20T07:45:00Z", "2024-11-20T08:00:00Z", "2024-11-20T08:00:00Z"]
    first = elbe(["abc", "98.0", "99.0"], times)
    validate_batch(first, dataset(ELBE), "run-1", store, now=NOW)
    listed = store.list(ELBE)
    assert listed[["run_id", "row", "field", "rule"]].values.tolist() == [
        ["run-1", 1, "water_level", "type:number"],
        ["run-1", 2, "station_uuid,timestamp", UNIQUE],
        ["run-1", 3, "station_uuid,timestamp", UNIQUE],  # same key+rule: both rows kept
    ]
    bad_key = f"station_uuid={UUID}|timestamp=2024-11-20T07:45:00Z"
    assert listed["key"].iloc[0] == bad_key and listed["reason"].iloc[0] == "'abc' is not a number"
    raw = json.loads(listed["raw"].iloc[0])
    assert raw["water_level"] == "abc" and raw["_dlt_id"] == "id0" and raw["water"] == "ELBE"

    # The same bad value again: list() shows the latest run's finding, stored once, seen twice.
    validate_batch(elbe(["abc"], times[:1]), dataset(ELBE), "run-2", store, now=NOW)
    latest = store.list(ELBE)
    assert latest[latest["key"] == bad_key][["run_id", "first_run", "seen"]].values.tolist() \
        == [["run-2", "run-1", 2]]
    assert len(store.history(ELBE)) == 3

    # Fixed at the source: the run releases the key after publishing it.
    fixed = validate_batch(elbe(["98.5"], times[:1]), dataset(ELBE), "run-3", store, now=NOW)
    assert fixed.rejected_rows == 0
    assert store.release(ELBE, [bad_key], "run-3") == 1
    assert bad_key not in set(store.list(ELBE)["key"]) and len(store.list(ELBE)) == 2
    history = store.history(ELBE)
    assert history[history["key"] == bad_key]["released_by"].tolist() == ["run-3"]
    assert store.open_keys(ELBE) == {f"station_uuid={UUID}|timestamp=2024-11-20T08:00:00Z"}

    out = tmp_path / "export" / "q.csv"
    assert store.export_csv(ELBE, out) == 2
    exported = pd.read_csv(out, dtype=str)
    assert exported["rule"].tolist() == [UNIQUE, UNIQUE] and "raw" in exported.columns
    assert store.list(SCHOOLS).empty  # per dataset


# --- coercion rules and suite loading ------------------------------------------------------


def test_coercion_rules_on_a_custom_schema():
    raw = {
        "fields": [
            {"name": "n", "type": "integer", "constraints": {"minimum": 1, "unique": True}},
            {"name": "x", "type": "number", "constraints": {"maximum": 100, "enum": [1, 2.5, 200]}},
            {"name": "flag", "type": "boolean"},
            {"name": "day", "type": "date", "constraints": {"minimum": "2020-01-01"}},
            {"name": "code", "type": "string", "constraints": {"pattern": "[A-Z]{2}"}},
        ]
    }
    schema = TableSchema.from_dict(raw, Path("custom.json"))
    frame = pd.DataFrame(
        {
            "n": ["1", "12.0", "0", "1", " 7 "],
            "x": ["2.5", "12,5", "1e3", "200", "1"],
            "flag": ["TRUE", "0", "yes", "False", pd.NA],
            "day": ["2024-02-29", "2024-02-30", "2019-12-31", "2024-01-01", ""],
            "code": ["DD", "dd", "DDX", " DD", pd.NA],
        }
    ).astype("string")
    coerced = coerce(frame, schema, "custom")
    assert coerced.findings[["row", "field", "rule"]].values.tolist() == [
        [1, "n", "constraint:unique"],
        [2, "code", "constraint:pattern"],
        [2, "day", "type:date"],  # 30 February
        [2, "n", "type:integer"],
        [2, "x", "type:number"],  # no German decimal comma here
        [3, "code", "constraint:pattern"],
        [3, "day", "constraint:minimum"],
        [3, "flag", "type:boolean"],
        [3, "n", "constraint:minimum"],
        [3, "x", "constraint:maximum"],
        [3, "x", "constraint:enum"],
        [4, "code", "constraint:pattern"],  # strings are kept exactly: " DD"
        [4, "n", "constraint:unique"],
        [4, "x", "constraint:maximum"],
    ]
    typed = coerced.frame
    assert typed["n"].tolist()[4] == 7 and typed["flag"].tolist()[:2] == [True, False]
    assert typed["x"].tolist()[2] == 1000.0 and typed["day"].iloc[0].isoformat() == "2024-02-29"
    assert pd.isna(typed["day"].iloc[1]) and pd.isna(typed["flag"].iloc[4])


def test_suite_now_is_resolved_and_bad_suites_are_config_errors(tmp_path):
    schema = dataset(ELBE).schema
    suite = load_suite(REPO / "expectations" / f"{ELBE}.json", schema)
    future = [e for e in resolved(suite, NOW) if e["kwargs"].get("column") == "timestamp"]
    assert future[0]["kwargs"]["max_value"] == NOW + timedelta(hours=1)
    assert load_suite(REPO / "expectations" / f"{SCHOOLS}.json", dataset(SCHOOLS).schema)

    def bad(expectation: dict) -> Path:
        path = tmp_path / "suite.json"
        path.write_text(json.dumps({"name": "s", "expectations": [expectation]}))
        return path

    column = {"type": BETWEEN, "kwargs": {"column": "easting", "min_value": 0}}
    with pytest.raises(ConfigError, match="column 'easting' is not a source field"):
        load_suite(bad(column), schema)
    severity = {"type": BETWEEN, "kwargs": {"column": "water_level"}, "meta": {"severity": "x"}}
    with pytest.raises(ConfigError, match="severity must be"):
        load_suite(bad(severity), schema)
    now = {"type": BETWEEN, "kwargs": {"column": "timestamp", "max_value": {"$now": "1h"}}}
    with pytest.raises(ConfigError, match="ISO 8601 duration"):
        load_suite(bad(now), schema)


def test_great_expectations_is_not_imported_with_the_package():
    code = "import sys, odp.validate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_great_expectations_is_imported_with_the_collector_paused_and_then_as_it_was():
    """The import makes ~270,000 objects: the cyclic collector is paused meanwhile (2.0 →
    1.4 s), then left as it was — on, or off when the caller had turned it off — also when
    the import fails."""
    code = """
import gc, sys
from odp.validate import suite
seen = []
class Watch:  # records whether the collector runs while the package is found
    def find_spec(self, name, path=None, target=None):
        if name == "great_expectations":
            seen.append(gc.isenabled())
            if "fail" in sys.argv:
                raise ImportError("no great-expectations here")
        return None
sys.meta_path.insert(0, Watch())
if "off" in sys.argv:
    gc.disable()
try:
    suite.import_gx()
except ImportError as exc:
    print("failed:", exc)
print(seen, gc.isenabled(), "great_expectations" in sys.modules)
"""

    def after(*args: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, check=True, cwd=REPO)
        return done.stdout.strip().splitlines()

    assert after()[-1] == "[False] True True"
    assert after("off")[-1] == "[False] False True"
    assert after("fail") == ["failed: no great-expectations here", "[False] True False"]
