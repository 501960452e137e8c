"""Build addresses.csv, a small address register of REAL Dresden address + coordinate pairs,
from two public files (see SOURCES.md):

    uv run python reference/dresden/build_addresses.py SCHOOLS_JSON PARKAPI_GEOJSON

Only entries with a house number are kept; the same street + number with different coordinates
keeps the first one (the school register's main building).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from odp.georeference.geocode import normalise_number, normalise_street, split_address

OUT = Path(__file__).with_name("addresses.csv")


def main(schools_path: str, parking_path: str) -> None:
    rows: list[dict[str, str]] = []
    for school in json.loads(Path(schools_path).read_text(encoding="utf-8")):
        for b in school["buildings"]:
            if b.get("community_key") != "14612000" or b.get("longitude") is None:
                continue
            street, number = split_address(b["street"])
            rows.append({"street": street, "housenumber": number, "postcode": b["postcode"],
                         "longitude": f"{b['longitude']:.7f}", "latitude": f"{b['latitude']:.7f}",
                         "source": "schuldatenbank"})
    for feature in json.loads(Path(parking_path).read_text(encoding="utf-8"))["features"]:
        street, number = split_address(feature["properties"].get("address"))
        lon, lat = feature["geometry"]["coordinates"]
        rows.append({"street": street, "housenumber": number, "postcode": "",
                     "longitude": f"{lon:.7f}", "latitude": f"{lat:.7f}", "source": "parkapi"})
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        key = (normalise_street(row["street"]), normalise_number(row["housenumber"]))
        if row["housenumber"] and key not in seen:
            seen.add(key)
            kept.append(row)
    kept.sort(key=lambda r: (normalise_street(r["street"]), r["housenumber"]))
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(kept[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    print(f"{OUT.name}: {len(kept)} addresses")


if __name__ == "__main__":
    main(*sys.argv[1:3])
