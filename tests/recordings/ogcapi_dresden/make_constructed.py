"""Builds the CONSTRUCTED paged recording from the REAL Wahlbezirke response (deterministic:
rerun to reproduce the files byte-identically). See README.md."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
REAL = HERE / "dresden_kommisdd_L703_items_wahlbezirke_btw2021.geojson"
ITEMS = "https://kommisdd.dresden.de/net4/public/ogcapi/collections/L703/items"
PAGE = 2


def main() -> None:
    real = json.loads(REAL.read_text(encoding="utf-8"))
    features = real["features"][:5]
    for start in range(0, len(features), PAGE):
        page = features[start:start + PAGE]
        links = [{"href": f"{ITEMS}?f=json&limit={PAGE}&offset={start}", "rel": "self",
                  "type": "application/geo+json"}]
        if start + PAGE < len(features):
            # page 1 links absolutely, page 2 relatively (both are allowed by RFC 8288)
            href = f"items?f=json&limit={PAGE}&offset={start + PAGE}"
            links.append({"href": href if start else f"{ITEMS[:-len('items')]}{href}",
                          "rel": "next", "type": "application/geo+json"})
        body = {"type": "FeatureCollection", "links": links, "timeStamp": real["timeStamp"],
                "numberMatched": len(features), "numberReturned": len(page), "features": page}
        out = HERE / f"paged_offset_{start}.geojson"
        out.write_text(json.dumps(body, ensure_ascii=False, separators=(",", ":")), "utf-8")


if __name__ == "__main__":
    main()
