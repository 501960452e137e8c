"""Build kostra-dwd-2020.csv, the KOSTRA-DWD-2020 design depths of the grid cells over Dresden,
from the DWD's per-duration tables (see SOURCES.md):

    uv run python reference/dresden/build_kostra.py StatRR_KOSTRA-DWD-2020_D00060.csv.zip …
    uv run python reference/dresden/build_kostra.py --cell LON LAT   # INDEX_RC of a place

Each argument is one DWD table (`StatRR_KOSTRA-DWD-2020_D<minutes>.csv`, or its `.csv.zip` as
the DWD publishes it under KOSTRA_DWD_2020/tab/): `;`-separated, decimal comma, one row per grid
cell (`INDEX_RC`, `HN_001A` … `HN_100A` in mm, `RN_…` in l/(s·ha), `UC_…` in %), -99.9 outside
the data area. Kept: the `HN_` depths of every cell whose 5 km square touches the city boundary
(city_boundary.geojson), in the layout `[indicators.heavy_rain.kostra]` reads.

The grid: 300 × 300 cells of 5 km in ETRS89-LAEA (EPSG:3035), INDEX_RC = row · 1000 + column,
row 0 at the north edge y = 3 800 000 m, column 0 at the west edge x = 3 600 000 m. These two
edges are not in the tables; they were derived from, and reproduce, the INDEX_RC the
kostra2020 R package (dimfalk/kostra2020, README and tests) gives for six places by
intersecting the DWD's own GIS grid: 143089, 150090, 133099, 206112, 129102, 129103.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape

HERE = Path(__file__).parent
OUT = HERE / "kostra-dwd-2020.csv"
WEST, NORTH, CELL = 3_600_000.0, 3_800_000.0, 5_000.0  # EPSG:3035 metres (see above)
PERIODS = (1, 2, 3, 5, 10, 20, 30, 50, 100)  # years: the table's HN_001A … HN_100A
HEADER = """\
# KOSTRA-DWD-2020 (Deutscher Wetterdienst): design precipitation depths hN (mm) of the grid
# cells over Dresden, per duration D (minutes) and return period T (years). REAL values, copied
# from the DWD tables StatRR_KOSTRA-DWD-2020_D<D>.csv (HN_001A … HN_100A; the zip entries are
# dated 2022-12-12), only the cells whose 5 km square touches the city boundary. Source and
# licence: reference/dresden/SOURCES.md (DWD, DOI 10.5676/DWD/KOSTRA-DWD-2020, CC BY 4.0 /
# GeoNutzV: "Deutscher Wetterdienst, KOSTRA-DWD-2020"). Built by build_kostra.py.
"""


def index_rc(lon: float, lat: float) -> str:
    """INDEX_RC of the grid cell holding a WGS84 point."""
    x, y = Transformer.from_crs(4326, 3035, always_xy=True).transform(lon, lat)
    return f"{int((NORTH - y) // CELL) * 1000 + int((x - WEST) // CELL):06d}"


def city_cells(boundary: Path) -> list[str]:
    """INDEX_RC of every grid cell whose square intersects the city boundary."""
    features = json.loads(boundary.read_text(encoding="utf-8"))["features"]
    to_laea = Transformer.from_crs(4326, 3035, always_xy=True)
    city = shapely.transform(shape(features[0]["geometry"]), lambda xy: np.column_stack(
        to_laea.transform(xy[:, 0], xy[:, 1])))
    x0, y0, x1, y1 = city.bounds
    cells = []
    for row in range(int((NORTH - y1) // CELL), int((NORTH - y0) // CELL) + 1):
        for col in range(int((x0 - WEST) // CELL), int((x1 - WEST) // CELL) + 1):
            square = box(WEST + col * CELL, NORTH - (row + 1) * CELL,
                         WEST + (col + 1) * CELL, NORTH - row * CELL)
            if square.intersects(city):
                cells.append(f"{row * 1000 + col:06d}")
    return cells


def read_table(path: Path) -> tuple[int, dict[str, dict[str, str]]]:
    """(duration in minutes, INDEX_RC -> row) of one DWD table, .csv or .csv.zip."""
    minutes = int(re.search(r"_D(\d{5})\.csv", path.name).group(1))
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode("ascii")
    else:
        text = path.read_text(encoding="ascii")
    return minutes, {r["INDEX_RC"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}


def main(tables: list[str]) -> None:
    cells = city_cells(HERE / "city_boundary.geojson")
    lines = ["index_rc,duration_min,return_period_a,depth_mm"]
    for minutes, rows in sorted(read_table(Path(t)) for t in tables):
        for cell in cells:
            for years in PERIODS:
                depth = rows[cell][f"HN_{years:03d}A"].replace(",", ".")
                if float(depth) < 0:
                    raise SystemExit(f"cell {cell}, D{minutes}: no value ({depth})")
                lines.append(f"{cell},{minutes},{years},{depth}")
    OUT.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT.name}: {len(cells)} cells × {len(tables)} durations × {len(PERIODS)} periods")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cell"]:
        print(index_rc(float(sys.argv[2]), float(sys.argv[3])))
    else:
        main(sys.argv[1:])
