"""Validation rules beyond types: time-series plausibility, retyped drift and evolve, the gate's
batch checks (row band, completeness), ranges per sensor type, the report and its summary — on
real fixtures (tests/fixtures/validate/SOURCES.md) with injected faults."""

from __future__ import annotations

import io
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
from odp.spec import TableSchema
from odp.validate import QuarantineStore, check_gate, coerce, validate_batch
from odp.validate.report import load_report, report_path, summary_markdown
from odp.validate.settings import settings
from tests.unit.test_validate import (
    ELBE,
    NOW,
    SCHOOLS,
    SCHOOLS_FILE,
    UUID,
    dataset,
    elbe,
    hits,
    row_of,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "validate"
SDS011 = FIXTURES / "2019-01-08_sds011_sensor_15092.csv"


def published(levels: list[float], start: datetime) -> pd.DataFrame:
    """The publish ledger of earlier runs: typed rows, 15-minute steps."""
    times = [start + timedelta(minutes=15 * i) for i in range(len(levels))]
    return pd.DataFrame({
        "station_uuid": UUID,
        "timestamp": pd.to_datetime(times, utc=True),
        "water_level": pd.array(levels, dtype="Float64"),
    })


def at(start: datetime, count: int, offset: int = 0) -> list[str]:
    return [(start + timedelta(minutes=15 * (i + offset))).strftime("%Y-%m-%dT%H:%M:%SZ")
            for i in range(count)]


START = datetime(2024, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def schools() -> pd.DataFrame:
    """The real register's Dresden rows, raw, as the dataset's source builds them."""
    source = tomllib.loads((REPO / "pipelines" / f"{SCHOOLS}.toml").read_text())["source"]
    return flatten(json.loads(SCHOOLS_FILE.read_text(encoding="utf-8")),
                   settings_of(RecordShape, source), SCHOOLS)


# --- time series ---------------------------------------------------------------------------


def test_jump_and_flat_line_are_warnings_per_series_and_continue_the_published_rows():
    incremental = dataset(ELBE, series={
        "by": ["station_uuid"], "time": "timestamp", "monotonic": "warning",
        "values": [{"column": "water_level", "max_jump": 50, "flat_count": 3}],
    })
    history = published([98.0, 99.0, 100.0, 100.0], START)
    # Published so far: …, 100, 100. New: 100, 100 (3rd and 4th in a row: flat), then 170 (a
    # jump of 70 cm), then 120 (a jump back of 50: not more than 50).
    batch = elbe(["100", "100", "170", "120"], at(START, 4, offset=4))
    result = validate_batch(batch, incremental, "r1", now=NOW, history=history)
    assert hits(result) == {
        (1, "water_level", "series:flat", "warning"),
        (2, "water_level", "series:flat", "warning"),
        (3, "water_level", "series:jump", "warning"),
    }
    assert result.rejected_rows == 0 and len(result.valid) == 4  # warnings only: published
    reasons = result.findings.set_index("rule")["reason"]
    assert reasons["series:jump"] == "'170' jumps by 70 from 100 (more than 50)"
    assert reasons["series:flat"].iloc[0] == (
        "'100' is the same value 3 times in a row (flat line, limit 3)"
    )
    # Without the ledger the first rows of a batch have nothing to continue.
    alone = validate_batch(batch, incremental, "r1", now=NOW)
    assert hits(alone) == {(3, "water_level", "series:jump", "warning")}


def test_series_are_checked_apart_and_in_time_order():
    rules = dataset(ELBE, series={
        "by": ["station_uuid"], "time": "timestamp",
        "values": [{"column": "water_level", "max_jump": 50, "severity": "error"}],
    })
    other = "85d686f1-55b2-4d36-8dba-3207b50901a7"  # PIRNA
    batch = elbe(["100", "300", "102", "301"],
                 ["2024-11-20T06:15:00Z", "2024-11-20T06:00:00Z", "2024-11-20T06:00:00Z",
                  "2024-11-20T06:15:00Z"])
    batch.loc[[1, 3], "station_uuid"] = other  # two gauges, rows interleaved and unsorted
    result = validate_batch(batch, rules, "r1", now=NOW)
    assert hits(result) == set() and len(result.valid) == 4
    batch.loc[3, "water_level"] = "380"  # PIRNA 300 → 380: an error here, the row is rejected
    result = validate_batch(batch, rules, "r1", now=NOW)
    assert hits(result) == {(4, "water_level", "series:jump", "error")}
    assert result.rejected_rows == 1


def test_time_not_after_the_last_published_one_is_reported():
    history = published([98.0] * 3, START)  # up to 06:30
    batch = elbe(["98", "98", "98"], ["2024-11-20T06:30:00Z", "2024-11-20T06:15:00Z",
                                      "2024-11-20T06:45:00Z"])
    result = validate_batch(batch, dataset(ELBE), "r1", now=NOW, history=history)
    assert hits(result) == {(1, "timestamp", "series:monotonic", "warning"),
                            (2, "timestamp", "series:monotonic", "warning")}
    assert result.findings["reason"].iloc[0] == (
        "'2024-11-20T06:30:00Z' is not after the last published time of its series "
        "(2024-11-20T06:30:00Z)"
    )
    strict = dataset(ELBE, series={"by": ["station_uuid"], "time": "timestamp",
                                   "monotonic": "error"})
    assert validate_batch(batch, strict, "r1", now=NOW, history=history).rejected_rows == 2


def test_ranges_per_sensor_type_from_a_real_sds011_archive(tmp_path):
    """sensor.community's real SDS011 archive (PM10 = P1, PM2.5 = P2) in long form: one
    range per phenomenon with GX's row_condition, injected faults in each."""
    raw = pd.read_csv(SDS011, sep=";", dtype=str, keep_default_na=False)
    long = raw.melt(id_vars=["sensor_id", "timestamp"], value_vars=["P1", "P2"],
                    var_name="phenomenon", value_name="value")
    long["phenomenon"] = long["phenomenon"].map({"P1": "PM10", "P2": "PM2.5"})
    long["timestamp"] = long["timestamp"] + "Z"
    schema = {"fields": [
        {"name": "sensor_id", "type": "integer", "constraints": {"required": True}},
        {"name": "timestamp", "type": "datetime", "constraints": {"required": True}},
        {"name": "phenomenon", "type": "string", "constraints": {"enum": ["PM10", "PM2.5"]}},
        {"name": "value", "type": "number", "unit": "µg/m³"},
    ], "primaryKey": ["sensor_id", "timestamp", "phenomenon"]}
    between = "expect_column_values_to_be_between"
    suite = {"name": "pm", "expectations": [
        {"type": between, "kwargs": {"column": "value", "min_value": 0, "max_value": 1000,
                                     "row_condition": 'phenomenon=="PM10"',
                                     "condition_parser": "pandas"}},
        {"type": between, "kwargs": {"column": "value", "min_value": 0, "max_value": 500,
                                     "row_condition": 'phenomenon=="PM2.5"',
                                     "condition_parser": "pandas"}},
    ]}
    (tmp_path / "pm.json").write_text(json.dumps(suite))
    spec = dataset(ELBE, schema)
    spec = type(spec)(**{**spec.__dict__, "name": "pm", "suite_path": tmp_path / "pm.json",
                         "validate": {}, "extract": {"mode": "incremental"}})
    pm10 = long.index[long["phenomenon"] == "PM10"][[3, 4]]
    pm25 = long.index[long["phenomenon"] == "PM2.5"][5]
    long.loc[pm10, "value"] = ["1200", "800"]  # 800 is fine for PM10
    long.loc[pm25, "value"] = "800"  # but not for PM2.5
    result = validate_batch(long, spec, "r1", now=NOW)
    assert hits(result) == {(pm10[0] + 1, "value", between, "error"),
                            (pm25 + 1, "value", between, "error")}
    assert result.total == 2 * 494 and result.rejected_rows == 2
    reason = result.findings.loc[result.findings["row"] == pm25 + 1, "reason"].item()
    assert reason == """'800' is outside 0 … 500 (where phenomenon=="PM2.5")"""


# --- drift ---------------------------------------------------------------------------------


def test_retyped_column_decimal_comma_is_drift_by_name(schools):
    german = schools.assign(longitude=schools["longitude"].str.replace(".", ",", regex=False))
    result = validate_batch(german, dataset(SCHOOLS), "r1", now=NOW)
    [retyped] = result.drift.retyped
    assert (retyped.column, retyped.expected) == ("longitude", "number")
    assert retyped.observed == "number (decimal comma)" and retyped.failed == 163
    with pytest.raises(GateError) as caught:
        check_gate(result, dataset(SCHOOLS))
    assert ("schema drift: column 'longitude' retyped: schema number, batch number (decimal "
            "comma) (163 of 163 values fail)") in str(caught.value)
    # A few bad values are not drift: those rows are quarantined, the batch goes on.
    few = schools.copy()
    few.loc[[0, 1], "longitude"] = "n/a"
    assert not validate_batch(few, dataset(SCHOOLS), "r1", now=NOW).drift


def test_evolve_reports_new_columns_keeps_them_out_and_goes_on(schools, tmp_path):
    extra = schools.assign(fax="0351 123")
    evolving = dataset(SCHOOLS, drift="evolve")
    result = validate_batch(extra, evolving, "r1", now=NOW)
    assert result.drift.new == ["fax"] and not result.drift_blocks
    assert "fax" not in result.valid.columns and len(result.valid) == 163
    check_gate(result, evolving, tmp_path)
    report = load_report(tmp_path, SCHOOLS)
    assert report["drift"] == {"mode": "evolve", "new": ["fax"], "missing": [], "retyped": []}
    assert "Schemaabweichung (evolve): neu: fax." in summary_markdown(report)
    # A missing optional column is empty values; a missing required one rejects every row.
    gone = validate_batch(schools.drop(columns=["community_part"]), evolving, "r1", now=NOW)
    assert gone.drift.missing == ["community_part"] and gone.rejected_rows == 0
    with pytest.raises(GateError, match="field 'community_part' is 0.0% complete"):
        check_gate(gone, evolving)


# --- the gate ------------------------------------------------------------------------------


def test_row_band_and_settings_errors(schools, tmp_path):
    building = schools["building_no"].astype(int)
    doubled = pd.concat([schools.assign(building_no=(building + 10 * copy).astype(str))
                         for copy in range(7)], ignore_index=True)  # 1141 distinct keys
    result = validate_batch(doubled, dataset(SCHOOLS, max_quarantine_share=1.0), "r1", now=NOW)
    with pytest.raises(GateError, match=r"1141 rows, expected 100 … 1000"):
        check_gate(result, dataset(SCHOOLS, max_quarantine_share=1.0))
    for bad, message in [
        ({"drift": "ignore"}, "drift must be 'fail' or 'evolve'"),
        ({"min_rows": 10, "max_rows": 5}, "max_rows 5 is below min_rows 10"),
        ({"completeness": {"fax": 0.5}}, "'fax' is not a source field"),
        ({"series": {"time": "timestamp", "values": [{"column": "water_level",
                                                      "flat_count": 1}]}}, "flat_count"),
        ({"max_quarantine_share": 5}, "share between 0 and 1"),
        ({"max_quarantin_share": 0.1}, "unknown key 'max_quarantin_share'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            settings(dataset(ELBE, **bad))


def test_full_refresh_empty_delivery_is_held_back_by_default(schools):
    spec = dataset(SCHOOLS)
    spec = type(spec)(**{**spec.__dict__, "validate": {}})  # no min_rows configured
    assert settings(spec).min_rows == 1
    with pytest.raises(GateError, match="0 rows, expected at least 1"):
        check_gate(validate_batch(schools.iloc[:0], spec, "r1", now=NOW), spec)


# --- the report ----------------------------------------------------------------------------


def test_report_json_and_markdown_summary(schools, tmp_path):
    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "longitude"] = "abc"
    schools.loc[target % len(schools), "postcode"] = "04109"  # the next row
    store = QuarantineStore(tmp_path)
    result = validate_batch(schools, dataset(SCHOOLS), "run-7", store, now=NOW)
    check_gate(result, dataset(SCHOOLS), tmp_path)
    path = report_path(tmp_path, SCHOOLS)
    assert path == tmp_path / "reports" / f"{SCHOOLS}.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["run_id"] == "run-7" and report["dataset"] == SCHOOLS
    assert report["started"] <= report["finished"]
    assert report["rows"] == {"validated": 163, "valid": 161, "rejected": 2,
                              "warnings": 0, "share_rejected": round(2 / 163, 6),
                              "share_passed": round(161 / 163, 6)}
    assert report["gate"]["decision"] == "publish" and report["gate"]["reasons"] == []
    rules = {(r["rule"], r["field"]): r for r in report["rules"]}
    assert rules[("type:number", "longitude")]["failed"] == 1
    assert rules[("type:number", "longitude")]["pass_share"] == round(162 / 163, 6)
    assert rules[("expect_column_values_to_match_regex", "postcode")]["failed"] == 1
    assert rules[("required", "name")]["failed"] == 0 and rules[("required", "name")]["source"] \
        == "schema"
    assert report["fields"]["longitude"] == {"type": "number", "unit": "degree",
                                             "required": False, "present": 163,
                                             "completeness": 1.0, "errors": 1, "warnings": 0}
    summary = summary_markdown(report)
    lines = summary.splitlines()
    assert lines[0].startswith("**Validierung** (letzter Lauf ")
    assert "163 Zeilen geprüft, 98,8 % bestanden, 2 in Quarantäne, 0 Warnungen." in lines[0]
    assert "`type:number` longitude 99,4 %" in lines[1]
    assert len(lines) == 2

    # Held back: the decision and why are in the report and the summary.
    with pytest.raises(GateError):
        check_gate(validate_batch(schools.iloc[:5], dataset(SCHOOLS), "run-8", now=NOW),
                   dataset(SCHOOLS), tmp_path)
    held = load_report(tmp_path, SCHOOLS)
    assert held["gate"]["decision"] == "held-back" and held["run_id"] == "run-8"
    assert "3 rows left to publish of 5 delivered, expected 100 … 1000" in summary_markdown(held)


def test_an_empty_incremental_run_keeps_the_last_report(tmp_path):
    check_gate(validate_batch(elbe(["98.0"]), dataset(ELBE), "r1", now=NOW), dataset(ELBE),
               tmp_path)
    check_gate(validate_batch(elbe([]), dataset(ELBE), "r2", now=NOW), dataset(ELBE), tmp_path)
    assert load_report(tmp_path, ELBE)["run_id"] == "r1"


# --- coercion options the drafts use -------------------------------------------------------


def test_decimal_comma_and_german_date_formats():
    schema = TableSchema.from_dict({"fields": [
        {"name": "x", "type": "number", "decimalChar": ",", "groupChar": "."},
        {"name": "y", "type": "number", "decimalChar": ","},
        {"name": "day", "type": "date", "format": "%d.%m.%Y"},
        {"name": "at", "type": "datetime", "format": "%d.%m.%Y %H:%M:%S",
         "odp:timezone": "Europe/Berlin"},
    ]}, Path("s.json"))
    frame = pd.DataFrame({"x": ["13,723395", "1.234,5", "12.5", "-3"],
                          "y": ["1,5", "2", "12.5", ""],
                          "day": ["30.05.2023", "2023-05-30", "31.02.2023", ""],
                          "at": ["30.05.2023 16:07:09", "13.09.2022 14:50:50", "x", ""]},
                         dtype="string")
    coerced = coerce(frame, schema, "s")
    assert coerced.frame["x"].tolist() == [13.723395, 1234.5, 125.0, -3.0]  # "." groups
    assert coerced.frame["y"].tolist()[:2] == [1.5, 2.0]
    assert coerced.frame["at"].iloc[0] == pd.Timestamp("2023-05-30T14:07:09Z")
    assert coerced.findings[["row", "field"]].values.tolist() == [
        [2, "day"], [3, "at"], [3, "day"], [3, "y"]]  # "12.5" with a decimal comma: no
    assert "does not match the format %d.%m.%Y" in coerced.findings["reason"].iloc[0]


def test_quarantine_csv_download_via_the_command(tmp_path):
    state = tmp_path / "state"
    store = QuarantineStore(state)
    validate_batch(elbe(["abc", "98.0"]), dataset(ELBE), "run-1", store, now=NOW)
    out = tmp_path / "q.csv"
    env = {"ODP_STATE_DIR": str(state), "ODP_PROJECT": str(REPO), "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "odp.cli", "quarantine", ELBE, "--csv",
                           str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{ELBE}: 1 findings written to {out}" in done.stdout
    exported = pd.read_csv(io.StringIO(out.read_text(encoding="utf-8")), dtype=str)
    assert exported[["row", "field", "value"]].values.tolist() == [["1", "water_level", "abc"]]


def test_a_report_counts_the_rows_carried_over_unchanged_as_delivered_rows(schools):
    from dataclasses import replace

    from odp.validate.report import build_report

    target = row_of(schools, school_id="2040")[0]
    schools.loc[target - 1, "longitude"] = "abc"
    result = validate_batch(schools.iloc[:10], dataset(SCHOOLS), "run-9", now=NOW)
    rows = build_report(replace(result, carried=153), dataset(SCHOOLS), [])["rows"]
    assert rows == {"validated": 163, "valid": 162, "rejected": 1,
                    "warnings": 0, "share_rejected": round(1 / 163, 6),
                    "share_passed": round(162 / 163, 6)}
    rules = {(r["rule"], r["field"]): r for r in build_report(
        replace(result, carried=153), dataset(SCHOOLS), [])["rules"]}
    assert rules[("type:number", "longitude")]["pass_share"] == round(162 / 163, 6)
