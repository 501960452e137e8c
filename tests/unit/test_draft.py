"""`odp draft`: readable names the run keeps, the drift list naming umlaut columns, coordinates
and their CRS, keys over the whole file, counts, row band and date formats — on real files
(tests/fixtures/draft/SOURCES.md, tests/fixtures/validate/SOURCES.md, tests/recordings/)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.spec import TableSchema, load_city, load_dataset
from odp.validate import coerce, load_suite, validate_batch
from odp.validate import drift as drift_check
from odp.validate.draft import profile, read_sample, read_source, write_draft
from odp.validate.draft_geo import guess_crs
from odp.validate.infer import infer_type
from odp.validate.names import readable_name, readable_names, run_name

REPO = Path(__file__).resolve().parents[2]
DRAFT = REPO / "tests" / "fixtures" / "draft"
VALIDATE = REPO / "tests" / "fixtures" / "validate"
VVO = VALIDATE / "vvo_haltestellen_2019.csv"
GEMEINDEN = VALIDATE / "sachsen_gemeindeverzeichnis_lds.csv"
SDS011 = VALIDATE / "2019-01-08_sds011_sensor_15092.csv"
BEWEGUNG = DRAFT / "einwohner_bevoelkerungsbewegung_2006-2007.csv"
DHT22 = DRAFT / "2017-08-30_dht22_sensor_5332.csv"
PARKING = REPO / "tests" / "recordings" / "parking_dresden" / "parkapi_forecast_dresdenaltmarkt.csv"
STATIONS = REPO / "tests" / "recordings" / "pegelonline" / "pegelonline_2014_stations.json"


@pytest.fixture(scope="module")
def city():
    return load_city(REPO)


def drafted(path: Path, city=None, name: str = "drafted"):
    sample = read_source(str(path), REPO)
    return profile(sample.frame, name, path.name, city, sample)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for folder in ("pipelines", "cities"):
        (root / folder).mkdir(parents=True)
    return root


# --- names -------------------------------------------------------------------------------------


def test_readable_names_spell_out_umlauts_and_are_names_the_run_keeps():
    cases = {"Längengrad": "laengengrad", "Straße": "strasse", "Ökologie": "oekologie",
             "Staatsangehörigkeit": "staatsangehoerigkeit", "Größe in m²": "groesse_in_m2",
             "Anzahl (gesamt)": "anzahl_gesamt", "1. Quartal": "col_1_quartal",
             "Tarifzone 1": "tarifzone_1", "WGS84_X": "wgs84_x", "water.shortname":
             "water_shortname", "Mélange": "melange", "durP1": "dur_p1", "Jahr-Prognose":
             "jahr_prognose"}
    assert {raw: readable_name(raw) for raw in cases} == cases
    assert all(run_name(name) == name for name in cases.values())
    # what the run would make of the raw names: why a rename table is needed
    assert [run_name(r) for r in ("Längengrad", "Straße", "Ökologie")] == \
        ["l_ngengrad", "stra_e", "_kologie"]
    assert readable_names(["Stadtteil", "stadtteil", "Stadt-Teil"], taken=["stadtteil"]) == \
        {"Stadtteil": "stadtteil_2", "stadtteil": "stadtteil_3", "Stadt-Teil": "stadt_teil"}


# --- the drift list ----------------------------------------------------------------------------


def staged_columns(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """The frame as a run stages it: loaded by dlt into DuckDB, read back."""
    import dlt
    import duckdb

    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True  # as odp.extract sets it
    pipeline = dlt.pipeline("drift_names", pipelines_dir=str(tmp_path / "dlt"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "s.duckdb")),
                            dataset_name="staging")
    pipeline.run(frame, table_name="t")
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        return con.execute("select * from staging.t").df()


def test_drift_lists_columns_whose_umlauts_the_run_rewrote_and_names_the_rename(tmp_path):
    raw = pd.read_csv(BEWEGUNG, sep=";", dtype=str).head(20)
    raw["Ökologie"] = "ja"  # a column whose first letter is an umlaut: staged as `_kologie`
    staged = staged_columns(raw, tmp_path)
    assert {"staatsangeh_rigkeit", "_kologie", "_dlt_id"} <= set(staged.columns)
    schema = TableSchema.from_dict({"fields": [
        {"name": str(c), "type": "string"} for c in raw.columns]}, Path("s.json"))
    found = drift_check.columns(staged, schema)
    assert found.missing == ["Jahr", "Quartal", "Einwohnerbewegung", "Staatsangehörigkeit",
                             "Geschlecht", "Anzahl Einwohner", "Ökologie"]
    assert "_kologie" in found.new and "staatsangeh_rigkeit" in found.new
    assert "_dlt_id" not in found.new and "_dlt_load_id" not in found.new
    assert ("Ökologie", "_kologie") in found.renamed
    text = found.describe()
    assert ("column 'Staatsangehörigkeit' arrives as 'staatsangeh_rigkeit' (the run's column "
            "naming): map it in [source] rename, e.g. \"Staatsangehörigkeit\" = "
            "\"staatsangehoerigkeit\"") in text
    assert "column 'Ökologie' arrives as '_kologie'" in text
    # the drafted names are staged unchanged: no drift
    names = readable_names(raw.columns)
    assert not drift_check.columns(staged_columns(raw.rename(columns=names), tmp_path / "b"),
                                   TableSchema.from_dict({"fields": [
                                       {"name": n, "type": "string"} for n in names.values()]},
                                       Path("s.json")))


# --- reading and profiling ---------------------------------------------------------------------


def test_draft_reads_like_the_run_trimmed_headers_trailing_delimiters_and_no_header(city):
    vvo = read_source(str(VVO), REPO)
    assert "CSV, delimiter ';'" in vvo.notes and any("'Tarifzone 1 '" in n for n in vvo.notes)
    assert vvo.source == {"type": "tabular", "path": "tests/fixtures/validate/"
                          "vvo_haltestellen_2019.csv", "delimiter": ";", "encoding": "auto"}
    gemeinden = drafted(GEMEINDEN, city)
    assert len(gemeinden.columns) == 22 and gemeinden.rows == 428  # trailing `;` dropped
    columns = {c.name: c for c in gemeinden.columns}
    assert columns["bearb_stand"].inferred.options == {"format": "%d.%m.%Y %H:%M:%S"}
    assert columns["plz"].inferred.type == "string"  # leading zeros: a code
    assert gemeinden.keys[0] == ["id"]
    parking = read_source(str(PARKING), REPO)
    assert parking.source["header"] is False and list(parking.frame.columns) == \
        ["column_1", "column_2"] and len(parking.frame) == 40_986


def test_the_key_is_found_over_the_whole_file_not_its_first_rows(tmp_path, city):
    lines = PARKING.read_text(encoding="utf-8").splitlines(keepends=True)
    file = tmp_path / "forecast.csv"  # the real file delivered with its first row again at the end
    file.write_text("".join([*lines, lines[0]]), encoding="utf-8")
    first_rows = read_source(str(file), None)
    assert profile(first_rows.frame.head(10_000), "p", "f").keys == [["column_1"]]
    draft = drafted(file, city)
    assert draft.rows == 40_987 and draft.keys == [] and draft.row_hash
    assert draft.duplicates == 1
    assert "no column (or combination of up to 3) of the file is unique" in draft.warnings[0]
    assert "dedupe = \"first\"" in draft.warnings[0]


def test_measured_counts_are_never_key_material_and_the_row_hash_is_stated(city):
    draft = drafted(BEWEGUNG, city)  # 5 dimensions: no 3 columns are unique
    assert draft.keys == [] and draft.row_hash and draft.duplicates == 0
    assert [c.name for c in draft.columns] == ["jahr", "quartal", "einwohnerbewegung",
                                               "staatsangehoerigkeit", "geschlecht",
                                               "anzahl_einwohner"]
    assert draft.schema("Europe/Berlin")["primaryKey"] == ["row_hash"]


def test_counts_are_never_negative_and_bands_come_from_the_whole_file(city):
    suite = drafted(BEWEGUNG, city).suite()["expectations"]
    count = [e for e in suite if e["kwargs"].get("column") == "anzahl_einwohner"]
    assert count[0]["kwargs"] == {"column": "anzahl_einwohner", "min_value": 0}
    assert count[0]["meta"]["severity"] == "error"
    assert count[1]["kwargs"] == {"column": "anzahl_einwohner", "min_value": 0,
                                  "max_value": 1086}  # 1 … 987, +10 % of the span, not < 0
    assert count[1]["meta"]["severity"] == "warning"
    year = [e for e in suite if e["kwargs"].get("column") == "jahr"]
    assert [e["kwargs"]["min_value"] for e in year] == [2005]  # a year is no count: a band


def test_pipeline_has_rename_row_band_and_the_warnings_reasons(tmp_path, city):
    draft = drafted(BEWEGUNG, city, "bewegung")
    root = project(tmp_path)
    write_draft(draft, root, "Europe/Berlin")
    text = (root / "pipelines" / "bewegung.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    assert table["source"]["rename"]["Staatsangehörigkeit"] == "staatsangehoerigkeit"
    assert table["source"]["path"].endswith("einwohner_bevoelkerungsbewegung_2006-2007.csv")
    assert (table["validate"]["min_rows"], table["validate"]["max_rows"]) == (64, 256)
    assert "the drafted file had 128 rows: fewer than half is a cut-off delivery" in text
    assert "georeference" not in table and table["extract"]["mode"] == "full-refresh"


# --- coordinates -------------------------------------------------------------------------------


def test_wgs84_coordinates_become_the_georeference_columns_and_regional_files_keep_outside(city):
    draft = drafted(VVO, city)
    assert draft.geo is not None and draft.geo.crs == "EPSG:4326"
    assert (draft.geo.x, draft.geo.y) == ("longitude", "latitude")
    assert draft.renames["WGS84_X"] == "longitude" and draft.renames["WGS84_Y"] == "latitude"
    assert draft.geo.outside_keep  # most VVO stops lie beyond Dresden
    assert any("of 4373 located rows lie outside Dresden" in n for n in draft.geo.notes)
    districts = [c for level in city.districts for c in level.columns]
    assert draft.derived == ["easting", "northing", *districts]
    fields = {f["name"]: f for f in draft.schema("Europe/Berlin")["fields"]}
    assert fields["easting"]["odp:derived"] == "georeference"
    assert "odp:derived" not in fields["longitude"]


def test_a_source_column_named_like_a_georeference_output_is_kept_apart(city):
    frame = pd.DataFrame({"Stadtteil": ["Altstadt"] * 3, "lat": ["51.05", "51.06", "51.07"],
                          "lon": ["13.73", "13.74", "13.75"]}, dtype="string")
    draft = profile(frame, "d", "d", city)
    assert draft.renames == {"Stadtteil": "stadtteil_2", "lat": "latitude", "lon": "longitude"}


def vvo_points(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    frame = read_source(str(VVO), None).frame.dropna(subset=["WGS84_X", "WGS84_Y"]).head(n)
    lon = frame["WGS84_X"].str.replace(",", ".").astype(float).to_numpy()
    lat = frame["WGS84_Y"].str.replace(",", ".").astype(float).to_numpy()
    return lon, lat


@pytest.mark.parametrize("crs", ["EPSG:25833", "EPSG:25832", "EPSG:31468", "EPSG:3857"])
def test_projected_crs_is_guessed_from_the_value_ranges(crs, city):
    from pyproj import Transformer

    lon, lat = vvo_points()  # real stop positions, projected by pyproj into `crs`
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    centre = (13.74, 51.05)
    found, reason = guess_crs(np.asarray(x), np.asarray(y), centre, "Dresden")
    assert found == crs, reason
    assert "guessed from the value ranges" in reason and "km from Dresden" in reason
    assert guess_crs(lon, lat, centre)[0] == "EPSG:4326"


def test_without_a_city_the_two_utm_zones_are_named_as_a_doubt():
    from pyproj import Transformer

    lon, lat = vvo_points()
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:25833", always_xy=True).transform(lon, lat)
    crs, reason = guess_crs(np.asarray(x), np.asarray(y), None)
    assert crs in ("EPSG:25833", "EPSG:25832") and "CHECK" in reason


def test_projected_coordinates_in_the_city_crs_become_easting_and_northing(city):
    from pyproj import Transformer

    lon, lat = vvo_points(50)
    x, y = Transformer.from_crs("EPSG:4326", city.crs, always_xy=True).transform(lon, lat)
    frame = pd.DataFrame({"Haltestelle": [f"h{i}" for i in range(50)],
                          "Rechtswert": [f"{v:.2f}" for v in x],
                          "Hochwert": [f"{v:.2f}" for v in y]}, dtype="string")
    draft = profile(frame, "d", "d", city)
    assert draft.geo is not None and draft.geo.crs == city.crs
    assert draft.renames["Rechtswert"] == "easting" and draft.renames["Hochwert"] == "northing"
    assert draft.derived[:2] == ["longitude", "latitude"]


def test_json_records_are_flattened_as_the_json_source_does(city):
    draft = drafted(STATIONS, city)
    assert draft.sample is not None and draft.sample.source["type"] == "json_records"
    assert draft.renames["water.shortname"] == "water_shortname"
    assert draft.keys[0] == ["uuid"] and draft.geo is not None and draft.geo.outside_keep
    assert any("15 rows without coordinates" in n for n in draft.geo.notes)


# --- dates and time zones ----------------------------------------------------------------------


@pytest.mark.parametrize(("values", "kind", "fmt"), [
    (["30.05.23", "01.12.99"], "date", "%d.%m.%y"),
    (["30-05-23", "1-12-99"], "date", "%d-%m-%y"),
    (["30.05.2023", "3.5.2024"], "date", "%d.%m.%Y"),
    (["30-05-2023", "01-12-1999"], "date", "%d-%m-%Y"),
    (["2023-05-30", "1999-12-01"], "date", None),
    (["30.05.2023 16:07:09", "01.12.1999 00:00:00"], "datetime", "%d.%m.%Y %H:%M:%S"),
    (["30.05.23 16:07", "01.12.99 7:05"], "datetime", "%d.%m.%y %H:%M"),
    (["2023-05-30T16:07:09", "2023-05-30 16:07"], "datetime", None),
])
def test_date_formats_are_recognised_and_the_schema_parses_them(values, kind, fmt):
    found = infer_type(pd.Series(values))
    assert (found.type, found.options.get("format")) == (kind, fmt)
    field = {"name": "d", "type": kind, **found.options}
    if found.naive:
        field["odp:timezone"] = "Europe/Berlin"
    schema = TableSchema.from_dict({"fields": [field]}, Path("s.json"))
    assert coerce(pd.DataFrame({"d": values}, dtype="string"), schema, "s").findings.empty


def test_impossible_days_are_not_taken_for_dates():
    assert infer_type(pd.Series(["31.02.2023", "01.01.2023"])).type == "string"


def test_the_time_zone_question_and_the_summer_time_values_are_stated(tmp_path, city):
    draft = drafted(PARKING, city, "parking")
    root = project(tmp_path)
    write_draft(draft, root, "Europe/Berlin")
    text = (root / "pipelines" / "parking.toml").read_text(encoding="utf-8")
    assert "# TIME ZONE: column_1 carry no UTC offset" in text
    assert 'set "odp:timezone": "UTC" in the schema instead' in text
    # 2016-03-27 02:00–02:45 do not exist, 2016-10-30 02:00–02:45 occur twice
    assert "column_1: 8 values do not exist or repeat at the summer-time change" in text
    schema = json.loads((root / "schemas" / "parking.json").read_text(encoding="utf-8"))
    assert schema["fields"][0]["odp:timezone"] == "Europe/Berlin"


# --- the files validate their own source -------------------------------------------------------


@pytest.mark.parametrize("path", [VVO, GEMEINDEN, SDS011, BEWEGUNG, DHT22, STATIONS],
                         ids=lambda p: p.stem)
def test_drafted_files_load_and_validate_the_whole_file_without_errors(path, tmp_path, city):
    root = project(tmp_path)
    draft = drafted(path, city, "drafted")
    written = write_draft(draft, root, city.timezone)
    assert [p.relative_to(root).as_posix() for p in written] == [
        "pipelines/drafted.toml", "schemas/drafted.json", "expectations/drafted.json"]
    with pytest.raises(ConfigError, match="exists already"):
        write_draft(draft, root, city.timezone)
    spec = load_dataset("drafted", root)
    assert load_suite(spec.suite_path, spec.schema).expectations
    frame = read_sample(str(path))[0].rename(columns=spec.source["rename"])
    result = validate_batch(frame.astype("string"), spec, "r1")
    errors = result.findings[result.findings["severity"] == "error"]
    assert errors.empty, errors.head().to_dict("records")
    assert not result.drift


def test_draft_command_writes_three_files_and_refuses_to_overwrite(tmp_path):
    root = project(tmp_path)
    env = {"ODP_PROJECT": str(root), "PATH": ""}
    cmd = [sys.executable, "-m", "odp.cli", "draft", "stops", "--from", str(VVO)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "primary-key candidates: name_mit_ort" in done.stdout
    assert "longitude (from 'WGS84_X'): number (decimal comma) required" in done.stdout
    assert all((root / d / f"stops.{ext}").is_file() for d, ext in (
        ("pipelines", "toml"), ("schemas", "json"), ("expectations", "json")))
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
    forced = subprocess.run([*cmd, "--force"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert forced.returncode == 0, forced.stderr
