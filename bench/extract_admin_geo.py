"""Rows per second extracted by the geodata and administrative-file source types on the largest
recorded files (parse + German conventions + DST rules → raw-text DataFrame; no staging, no
network). Prints one line per file; not a test.

    uv run python bench/extract_admin_geo.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from odp.sources.features import FeatureColumns, feature_table
from odp.sources.ogcapi import parse_page
from odp.sources.settings import settings_of
from odp.sources.tabular import Conventions, TableLayout, read_table, shape
from odp.sources.wfs import GetFeature
from odp.sources.wfs import parse_page as parse_gml

REC = Path(__file__).resolve().parents[1] / "tests" / "recordings"
BERLIN = {"timezone": "Europe/Berlin", "ambiguous": "dst", "column": "local_time"}
CASES = {
    "tabular: parking forecast (CSV, local time → UTC)": (
        REC / "parking_dresden" / "parkapi_forecast_dresdenaltmarkt.csv",
        {"delimiter": ",", "header": False, "columns": ["local_time", "free_spaces"],
         "timestamp": BERLIN}),
    "tabular: VVO stops (CSV, decimal commas)": (
        REC / "transit_vvo" / "vvo_haltestellen_2019.csv",
        {"german_numbers": ["WGS84_X", "WGS84_Y"]}),
    "tabular: air quality Dresden-Nord (CSV, units row, MEZ)": (
        REC / "airquality_sachsen" / "joint_2018-12_Dresden-Nord.csv",
        {"delimiter": ",", "units_row": True,
         "timestamp": {"date": "Datum", "time": "Zeit", "timezone": "Etc/GMT-1",
                       "ambiguous": "reject", "empty_time": "midnight"}}),
}


def best_of(runs: int, work) -> tuple[int, float]:
    best = float("inf")
    rows = 0
    for _ in range(runs):
        began = time.perf_counter()
        rows = work()
        best = min(best, time.perf_counter() - began)
    return rows, best


def main() -> None:
    for label, (path, source) in CASES.items():
        data = path.read_bytes()
        rows, seconds = best_of(
            5, lambda d=data, s=source: len(shape(
                read_table(d, settings_of(TableLayout, s), "b"), settings_of(Conventions, s), "b"))
        )
        print(f"{label}: {rows:,} rows in {seconds:.3f} s = {rows / seconds:,.0f} rows/s")
    geojson = REC / "ogcapi_dresden" / "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson"
    payload = json.loads(geojson.read_text(encoding="utf-8"))
    rows, seconds = best_of(
        3, lambda: len(feature_table(*parse_page(payload, "b"), FeatureColumns(), "b")))
    print(f"ogcapi_features: Wahlbezirke (365 polygons, 3.3 MB GeoJSON → WKT + point): "
          f"{rows:,} rows in {seconds:.3f} s = {rows / seconds:,.0f} rows/s")
    gml = (REC / "wfs" / "wahlbezirke_25833_start0.xml").read_bytes()
    many = gml.replace(b"</wfs:FeatureCollection>", b"")
    members = many[many.index(b"<wfs:member>"):]
    big = many[:many.index(b"<wfs:member>")] + members * 1000 + b"</wfs:FeatureCollection>\n"

    def gml_rows() -> int:
        ids, props, geoms, _ = parse_gml(big, GetFeature(), "b")
        return len(feature_table(ids, props, geoms, FeatureColumns(), "b"))

    rows, seconds = best_of(3, gml_rows)
    print(f"wfs: GML 3.2 page of {rows:,} polygons (constructed page repeated): "
          f"{rows:,} rows in {seconds:.3f} s = {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
