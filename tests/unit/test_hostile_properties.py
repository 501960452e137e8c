"""Property tests (hypothesis) of every parser, of coercion and of the address normaliser:

* any bytes given to a parser give rows or a one-line SourceError — never another exception;
* what a writer produces (CSV, JSON, XML, the DWD fixed-width list and product files), the
  parser reads back unchanged; a document cut anywhere is refused, never half read;
* coercion types every value it accepts exactly, and names every other one in a finding;
* the street normaliser is idempotent and treats Straße / Str. / strasse alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from odp.errors import ConfigError, SourceError
from odp.georeference.geocode import normalise_number, normalise_street, split_address
from odp.sources.complete import load_json
from odp.sources.dwd_cdc import parse_product, parse_station_list
from odp.sources.safexml import parse_xml
from odp.sources.tabular import TableLayout, read_table
from odp.spec import TableSchema
from odp.validate.coerce import coerce

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WHERE = "prop: file"
# Text a register cell may hold: letters (German ones too), digits, punctuation, the separator,
# quotes and line breaks inside a cell.
CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                             include_characters=";\"\n "), max_size=20)


# --- CSV (tabular) -------------------------------------------------------------------------


@FAST
@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), CELL, CELL),
                min_size=1, max_size=15))
def test_a_csv_written_with_quoting_reads_back_cell_for_cell(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["id", "a", "b"])
    writer.writerows(rows)
    frame = read_table(buffer.getvalue().encode("utf-8"), TableLayout(), WHERE)
    assert list(frame.columns) == ["id", "a", "b"]
    got = frame.astype(object).where(frame.notna(), "").values.tolist()
    assert got == [list(r) for r in rows]


@FAST
@given(st.binary(max_size=400))
@example(b"\xff\xfe\x00")
@example(b'a;b\n"1;2\n')
def test_any_bytes_as_csv_give_rows_or_a_one_line_source_error(data):
    try:
        read_table(data, TableLayout(), WHERE)
    except (SourceError, ConfigError) as exc:
        assert "\n" not in str(exc) and str(exc).startswith(WHERE)


# --- JSON ----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20)


@FAST
@given(st.lists(JSON_VALUES, max_size=5) | st.dictionaries(st.text(max_size=5), JSON_VALUES,
                                                           max_size=5), st.data())
def test_json_reads_back_and_any_cut_of_a_document_is_truncated(value, data):
    text = json.dumps(value, ensure_ascii=False)
    assert load_json(text.encode("utf-8"), WHERE) == value
    cut = data.draw(st.integers(1, len(text) - 1)) if len(text) > 1 else None
    if cut is not None:
        try:
            load_json(text[:cut].encode("utf-8"), WHERE)
        except SourceError as exc:
            assert "truncated" in str(exc), (text[:cut], str(exc))
        else:
            raise AssertionError(f"a cut document was read: {text[:cut]!r}")


@FAST
@given(st.binary(max_size=300))
@example(b"[" * 50_000)
def test_any_bytes_as_json_give_a_value_or_a_one_line_source_error(data):
    try:
        load_json(data, WHERE)
    except SourceError as exc:
        assert "\n" not in str(exc)


# --- XML -----------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=15)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    element = ET.Element(draw(NAMES), {k: draw(XML_TEXT) for k in draw(st.sets(NAMES,
                                                                             max_size=2))})
    element.text = draw(XML_TEXT) or None
    if depth < 3:
        element.extend(draw(st.lists(elements(depth + 1), max_size=3)))
    return element


def _shape(e: ET.Element) -> tuple:
    return (e.tag, dict(e.attrib), e.text or "", [_shape(c) for c in e])


@FAST
@given(elements(), st.data())
def test_xml_reads_back_and_any_cut_is_truncated(root, data):
    body = ET.tostring(root, encoding="utf-8")
    assert _shape(parse_xml(body, WHERE)) == _shape(root)
    cut = data.draw(st.integers(1, len(body) - 1))
    try:
        parse_xml(body[:cut], WHERE)
    except SourceError as exc:
        assert "truncated" in str(exc) or "malformed XML" in str(exc), str(exc)
    else:
        raise AssertionError(f"a cut document was read: {body[:cut]!r}")


@FAST
@given(st.binary(max_size=300), NAMES)
def test_any_bytes_as_xml_give_an_element_or_a_one_line_source_error(data, entity):
    for body in (data, f'<!DOCTYPE r [<!ENTITY {entity} "x">]><r>&{entity};</r>'.encode()):
        try:
            parse_xml(body, WHERE)
        except SourceError as exc:
            assert "\n" not in str(exc)


# --- fixed width: the DWD station list and product file ------------------------------------

STATION = st.tuples(st.integers(1, 99999), st.integers(0, 3000),
                    st.floats(47, 55, allow_nan=False).map(lambda v: round(v, 4)),
                    st.floats(6, 15, allow_nan=False).map(lambda v: round(v, 4)),
                    st.lists(st.from_regex(r"[A-Za-zÄÖÜäöüß()\-.]{1,10}", fullmatch=True),
                             min_size=1, max_size=3).map(" ".join),
                    st.sampled_from(["Sachsen", "Bayern", "Nordrhein-Westfalen"]))


@FAST
@given(st.dictionaries(st.integers(1, 99999), STATION, min_size=1, max_size=8))
def test_a_fixed_width_station_list_reads_back(stations):
    lines = ["Stations_id von_datum bis_datum Stationshoehe geoBreite geoLaenge Stationsname "
             "Bundesland", "----------- --------- --------- ------------- --------- --------- "
             "----------------------------------------- ----------"]
    for number, (_, height, lat, lon, name, state) in stations.items():
        lines.append(f"{number:05d} 19950901 20241122 {height:14d} {lat:11.4f} {lon:9.4f} "
                     f"{name:<41} {state:<40}")
    text = "\r\n".join(lines) + "\r\n"
    found = parse_station_list(text.encode("iso-8859-1"), WHERE)
    assert set(found) == {f"{n:05d}" for n in stations}
    for number, (_, height, lat, lon, name, state) in stations.items():
        row = found[f"{number:05d}"]
        assert (row["name"], row["state"], float(row["lat"]), float(row["lon"]),
                int(row["height"])) == (name, state, lat, lon, height)


@FAST
@given(st.lists(st.tuples(st.integers(0, 23), st.one_of(st.just(-999),
                                                        st.integers(0, 500))),
                min_size=1, max_size=24, unique_by=lambda r: r[0]))
def test_a_dwd_product_reads_back_with_missing_values_as_null(rows):
    text = "STATIONS_ID;MESS_DATUM;QN_8;  R1;eor\r\n" + "".join(
        f"       1048;20241122{hour:02d};    3;{value / 10 if value != -999 else -999:6};eor\r\n"
        for hour, value in rows)
    frame = parse_product(text, WHERE)
    assert frame["STATIONS_ID"].tolist() == ["01048"] * len(rows)
    assert frame["MESS_DATUM"].tolist() == [f"2024-11-22T{h:02d}:00:00Z" for h, _ in rows]
    assert [None if pd.isna(v) else float(v) for v in frame["R1"]] == [
        None if v == -999 else v / 10 for _, v in rows]


@FAST
@given(st.binary(max_size=400))
def test_any_bytes_as_a_station_list_or_product_give_rows_or_a_source_error(data):
    for parse in (lambda: parse_station_list(data, WHERE),
                  lambda: parse_product(data.decode("iso-8859-1"), WHERE)):
        try:
            parse()
        except SourceError as exc:
            assert "\n" not in str(exc)


# --- coercion ------------------------------------------------------------------------------

SCHEMA = TableSchema.from_dict({"fields": [
    {"name": "i", "type": "integer"}, {"name": "n", "type": "number"},
    {"name": "b", "type": "boolean"}, {"name": "t", "type": "datetime"},
    {"name": "s", "type": "string"}]}, "prop.json")


@FAST
@given(st.lists(st.tuples(st.integers(-(10**18) + 1, 10**18 - 1),
                          st.floats(allow_nan=False, allow_infinity=False, width=64),
                          st.booleans(), st.datetimes(dt.datetime(1678, 1, 1),
                                                      dt.datetime(2262, 1, 1),
                                                      timezones=st.just(dt.UTC)),
                          st.text(max_size=10)), min_size=1, max_size=20),
       st.sampled_from(["", " ", "+"]))
def test_every_value_in_its_written_form_coerces_to_itself(rows, decoration):
    raw = pd.DataFrame({
        "i": [f"{decoration}{i}" if i >= 0 else str(i) for i, *_ in rows],
        "n": [repr(n) for _, n, *_ in rows],
        "b": [("TRUE" if b else "false") for _, _, b, *_ in rows],
        "t": [t.isoformat() for *_, t, _ in rows],
        "s": [s for *_, s in rows],
    }, dtype="string")
    result = coerce(raw, SCHEMA, "prop")
    typed = result.frame
    wrong = result.findings[result.findings["field"] != "s"]
    assert wrong.empty, wrong
    assert typed["i"].tolist() == [i for i, *_ in rows]
    assert typed["n"].tolist() == [n for _, n, *_ in rows]
    assert typed["b"].tolist() == [b for _, _, b, *_ in rows]
    assert [t.to_pydatetime() for t in typed["t"]] == [t for *_, t, _ in rows]
    assert typed["s"].fillna("").tolist() == [s for *_, s in rows]  # "" is missing


@FAST
@given(st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), timezones=st.just(dt.UTC)))
@example(dt.datetime(2263, 1, 1, tzinfo=dt.UTC))
def test_a_date_time_beyond_what_pandas_holds_is_a_finding_not_a_crash(when):
    raw = pd.DataFrame({"t": [when.isoformat(), "2024-11-20T12:00:00Z"]}, dtype="string")
    result = coerce(raw, SCHEMA, "prop")
    beyond = not pd.Timestamp.min.tz_localize("UTC") <= pd.Timestamp(when) <= \
        pd.Timestamp.max.tz_localize("UTC")
    reasons = result.findings.loc[result.findings["field"] == "t", "reason"].tolist()
    assert reasons == ([f"'{when.isoformat()}' is outside the years 1677 to 2262 (the "
                        "nanosecond range of pandas)"] if beyond else [])
    assert result.frame["t"].iloc[1] == pd.Timestamp("2024-11-20T12:00:00Z")


@FAST
@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_any_text_coerces_or_is_named_in_a_finding_never_raises(values):
    raw = pd.DataFrame({name: values for name in ("i", "n", "b", "t", "s")}, dtype="string")
    result = coerce(raw, SCHEMA, "prop")
    assert len(result.frame) == len(values)
    for name in ("i", "n", "b", "t"):
        failed = set(result.findings.loc[result.findings["field"] == name, "row"].astype(int))
        for row, value in enumerate(values, start=1):
            present = value.strip() != ""
            typed = result.frame[name].iloc[row - 1]
            assert (row in failed) == (present and pd.isna(typed)), (name, value)


# --- the address normaliser ----------------------------------------------------------------

STEM = st.from_regex(r"[A-ZÄÖÜ][a-zäöüß]{2,12}", fullmatch=True)


@FAST
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
def test_normalising_a_street_twice_changes_nothing(name):
    once = normalise_street(name)
    assert normalise_street(once) == once
    assert once == "" or once.isascii() and once.isalnum() and once == once.lower()


@FAST
@given(STEM)
def test_strasse_str_and_strasse_spelt_out_are_one_street(stem):
    forms = [f"{stem}straße", f"{stem}str.", f"{stem}strasse", f"{stem.upper()}STRASSE",
             f"{stem} Straße", f"{stem} Str."]
    assert len({normalise_street(f) for f in forms[:4]}) == 1
    assert len({normalise_street(f) for f in forms[4:]}) == 1


@FAST
@given(STEM, st.integers(1, 9999), st.sampled_from(["", "a", "B"]), st.sampled_from(["", " "]))
def test_an_address_splits_into_its_street_and_normalised_number(stem, number, suffix, gap):
    street = f"{stem}straße"
    assert split_address(f"{street} {number}{gap}{suffix}") == (street,
                                                                f"{number}{suffix.lower()}")
    assert normalise_number(f" {number}{gap}{suffix.upper()} ") == f"{number}{suffix.lower()}"
