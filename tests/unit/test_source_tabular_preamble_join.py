"""The tabular source reads files with a preamble and a footer (skip_rows, skip_footer, "auto")
and joins one file per pollutant on their time column (join): on real files — a GENESIS export
of the Statistische Ämter (5 title lines, 4 header lines, a 13-line footer with quoted
multi-line notes) and the LfULG's per-pollutant files of the station Leipzig-Mitte (a units row
under the header, hours newest first)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from odp.errors import ConfigError, SourceError
from odp.sources.settings import settings_of
from odp.sources.tabular import TableLayout, join_tables, read_all, read_table
from odp.spec import Dataset, TableSchema

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
GENESIS = RECORDINGS / "genesis" / "14341-01-02-5_00.csv"
LEIPZIG = RECORDINGS / "leipzig"
POLLUTANTS = ("NO2", "NO", "PM10_TEOM", "TEMP")
ELECTION = ["date", "ags", "district", "electorate", "turnout", "valid", "cdu", "spd", "gruene",
            "fdp", "linke", "other"]


def _genesis(**options) -> pd.DataFrame:
    return read_table(GENESIS.read_bytes(),
                      settings_of(TableLayout, {"header": False, "columns": ELECTION, **options}),
                      "14341-01-02-5_00.csv")


def test_skip_rows_and_skip_footer_leave_exactly_the_table_of_a_genesis_export():
    table = _genesis(skip_rows=9, skip_footer=13)
    assert len(table) == 39  # 3 elections × (Berlin + 12 Bezirke)
    assert table.iloc[0].tolist()[:5] == ["18.09.2016", "11000000", "Berlin, Stadt", "2485379",
                                          "66,9"]
    assert table.iloc[-1]["district"] == "Berlin-Reinickendorf"
    assert table["date"].str.fullmatch(r"\d\d\.\d\d\.\d{4}").all()


def test_skip_footer_auto_ends_the_table_at_the_first_single_cell_record():
    assert _genesis(skip_rows=9, skip_footer="auto").equals(_genesis(skip_rows=9, skip_footer=13))


def test_without_skip_footer_the_genesis_footer_is_not_read_as_rows():
    table = _genesis(skip_rows=9)
    assert (table["date"] == "__________").any()  # what skip_footer is for


def test_skip_rows_auto_finds_the_first_run_of_equal_lines_and_says_when_it_cannot():
    # GENESIS pads its title lines with ';' to the table's width: "auto" cannot tell them from
    # the header, takes the first title line, and the read stops (skip_rows = 9 is needed)
    with pytest.raises(SourceError, match="column 2 has values but no header"):
        read_table(GENESIS.read_bytes(), TableLayout(skip_rows="auto", skip_footer="auto"),
                   "g.csv")
    preamble = b"Luftmessstation Leipzig-Mitte\nExport vom 30.12.2018\n\n"
    table = read_table(preamble + (LEIPZIG / "lfulg_2018-12_Leipzig-Mitte_NO2.csv").read_bytes(),
                       TableLayout(delimiter=",", skip_rows="auto", units_row=True), "no2.csv")
    assert list(table.columns) == ["Datum Zeit", "Leipzig-Mitte NO2"]
    assert len(table) == 744  # 31 days × 24 hours
    lonely = b"Titel\n" * 60 + b"a;b\n1;2\n3;4\n"
    with pytest.raises(SourceError, match="no header in the first 50 lines"):
        read_table(lonely, TableLayout(skip_rows="auto"), "x.csv")


def test_skip_rows_must_be_a_count_or_auto():
    with pytest.raises(ConfigError, match="skip_rows.int: input should be a valid integer"):
        _genesis(skip_rows="9")
    with pytest.raises(ConfigError, match="skip_rows must be a whole number"):
        _genesis(skip_rows=-1)
    with pytest.raises(SourceError, match="nothing left of the file"):
        _genesis(skip_rows=9, skip_footer=200)


def _pollutant(name: str) -> tuple[pd.DataFrame, str]:
    where = f"Leipzig-Mitte,{name}.csv"
    return read_table((LEIPZIG / f"lfulg_2018-12_Leipzig-Mitte_{name}.csv").read_bytes(),
                      TableLayout(delimiter=",", units_row=True, join="Datum Zeit"), where), where


def test_one_file_per_pollutant_joins_into_one_row_per_hour():
    tables = [_pollutant(name) for name in POLLUTANTS]
    joined = join_tables(tables, "Datum Zeit")
    assert len(joined) == 744 and joined["Datum Zeit"].is_unique
    assert list(joined.columns) == ["Datum Zeit", *[f"Leipzig-Mitte {p}" for p in POLLUTANTS]]
    hour = joined.set_index("Datum Zeit").loc["01-12-18 01:00"]
    assert hour.tolist() == ["30", "32", "24", hour["Leipzig-Mitte TEMP"]]
    for table, _ in tables:  # every value lands in its own hour
        merged = joined.merge(table, on="Datum Zeit", suffixes=("", "_file"))
        column = table.columns[1]
        assert merged[column].fillna("").equals(merged[f"{column}_file"].fillna(""))


def test_a_time_missing_from_one_file_leaves_its_columns_empty():
    no2, where = _pollutant("NO2")
    temp, other = _pollutant("TEMP")
    joined = join_tables([(no2.iloc[10:], where), (temp, other)], "Datum Zeit")
    assert len(joined) == 744
    first = joined.set_index("Datum Zeit").loc[no2["Datum Zeit"].iloc[0]]
    assert pd.isna(first["Leipzig-Mitte NO2"])


def test_join_names_a_repeated_time_a_missing_join_column_and_a_column_in_two_files():
    no2, where = _pollutant("NO2")
    no, other = _pollutant("NO")
    twice = pd.concat([no2, no2.iloc[[5]]], ignore_index=True)
    with pytest.raises(SourceError, match=r"NO2.csv: '31-12-18 19:00' appears twice"):
        join_tables([(twice, where), (no, other)], "Datum Zeit")
    with pytest.raises(SourceError, match="no column 'Zeit' to join on"):
        join_tables([(no2, where), (no, other)], "Zeit")
    with pytest.raises(SourceError, match="column 'Leipzig-Mitte NO2' is also in"):
        join_tables([(no2, where), (no2.copy(), other)], "Datum Zeit")


def _dataset(files: list[str], **source) -> Dataset:
    schema = TableSchema.from_dict({"fields": [{"name": "x"}]}, Path("s.json"))
    return Dataset(
        name="air-quality-test", title="t", description="", kind="sensor",
        source={"type": "tabular", "delimiter": ",", "units_row": True, "join": "Datum Zeit",
                "files": [{"path": str(LEIPZIG / f)} for f in files], **source},
        extract={}, validate={}, georeference={}, publish={}, schedule={}, schema=schema,
        suite_path=Path("e.json"), definition_path=Path("pipelines/air-quality-test.toml"))


def test_read_all_joins_the_files_then_applies_timestamp_units_and_renames_once():
    files = [f"lfulg_2018-12_Leipzig-Mitte_{p}.csv" for p in POLLUTANTS]
    table = read_all(_dataset(
        files, units={"Leipzig-Mitte NO2": "µg/m³", "Leipzig-Mitte TEMP": "GRADC"},
        rename={"Leipzig-Mitte NO2": "no2", "Leipzig-Mitte TEMP": "temperature"},
        add={"station": "Leipzig-Mitte"},
        timestamp={"column": "Datum Zeit", "format": "%d-%m-%y %H:%M", "timezone": "Etc/GMT-1",
                   "ambiguous": "reject"}))
    assert table is not None and len(table) == 744
    row = table.set_index("timestamp").loc["2018-12-01T00:00:00Z"]  # 01:00 MEZ
    assert (row["no2"], row["station"]) == ("30", "Leipzig-Mitte")


def test_a_unit_no_file_holds_or_a_wrong_unit_stops_the_joined_read():
    files = [f"lfulg_2018-12_Leipzig-Mitte_{p}.csv" for p in ("NO2", "TEMP")]
    with pytest.raises(SourceError, match="no file has the column 'Leipzig-Mitte O3'"):
        read_all(_dataset(files, units={"Leipzig-Mitte O3": "µg/m³"}))
    with pytest.raises(SourceError, match="TEMP.csv: units row: column 'Leipzig-Mitte TEMP' is "
                                          "in 'GRADC', expected '°C'"):
        read_all(_dataset(files, units={"Leipzig-Mitte TEMP": "°C"}))
    with pytest.raises(ConfigError, match="'add' per file is not possible"):
        dataset = _dataset(files)
        dataset.source["files"][0]["add"] = {"station": "x"}
        read_all(dataset)
