"""Benchmark: assign 1M points to the city's 64 Stadtteile; geocode 100k addresses.

    uv run python bench/georeference.py [--points 1000000] [--addresses 100000]

Targets on a 2-core machine: 1M points < 3 s, 100k addresses < 10 s. Points are uniform in the
city's bounding box (about half fall outside every Stadtteil, the costlier case); addresses are
drawn from the register in varied spellings (Str./Straße, case, 12 A), a share unknown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from odp.georeference.crs import WGS84, transform
from odp.georeference.districts import district_index
from odp.georeference.register import load_register
from odp.spec import load_city

ROOT = Path(__file__).resolve().parents[1]


def _spellings(street: str, number: str, rng: np.random.Generator) -> str:
    variants = [f"{street} {number}", f"{street.replace('straße', 'str.')} {number}",
                f"{street.upper()} {number}", f"{street.replace('ß', 'ss')}  {number.upper()}",
                f"{street} {number}x", f"Unbekannte Gasse {number}"]
    return variants[int(rng.integers(len(variants)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--addresses", type=int, default=100_000)
    args = parser.parse_args()
    city = load_city(ROOT)
    rng = np.random.default_rng(6)

    started = time.perf_counter()
    index = district_index(city)
    load = time.perf_counter() - started
    w, s, e, n = index.polygons.to_crs(WGS84).total_bounds
    lon = pd.Series(rng.uniform(w, e, args.points))
    lat = pd.Series(rng.uniform(s, n, args.points))
    started = time.perf_counter()
    east, north = transform(lon, lat, WGS84, city.crs)
    projected = time.perf_counter() - started
    started = time.perf_counter()
    got = index.assign(pd.Series(east), pd.Series(north))
    assign = time.perf_counter() - started
    inside = int(got["stadtteil_nr"].notna().sum())
    print(f"layer load            {load:7.2f} s  (64 Stadtteile)")
    print(f"WGS84 → {city.crs}  {projected:7.2f} s  {args.points / projected:12,.0f} points/s")
    print(f"assign Stadtteil      {assign:7.2f} s  {args.points / assign:12,.0f} points/s  "
          f"({args.points:,} points, {inside:,} inside; target < 3 s)")

    register = load_register(city)
    entries = register.entries
    picks = rng.integers(len(entries), size=args.addresses)
    queries = pd.Series([_spellings(entries[i].street, entries[i].number, rng) for i in picks])
    started = time.perf_counter()
    found = register.geocode(queries)
    geocode = time.perf_counter() - started
    quality = found["geocode_quality"].value_counts().to_dict()
    print(f"geocode               {geocode:7.2f} s  {args.addresses / geocode:12,.0f} addresses/s"
          f"  ({args.addresses:,} addresses, {quality}; target < 10 s)")
    unique = pd.Series([f"{entries[i].street} {j}" for j, i in enumerate(picks)])
    started = time.perf_counter()
    register.geocode(unique)
    distinct = time.perf_counter() - started
    print(f"geocode, all distinct {distinct:7.2f} s  "
          f"{args.addresses / distinct:12,.0f} addresses/s")
    started = time.perf_counter()
    register.reverse(found["longitude"].fillna(13.74), found["latitude"].fillna(51.05))
    reverse = time.perf_counter() - started
    print(f"reverse               {reverse:7.2f} s  {args.addresses / reverse:12,.0f} points/s")


if __name__ == "__main__":
    main()
