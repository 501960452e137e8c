"""The CKAN dataset's metadata, from the dataset definition, the city defaults and the data.

A hash of the metadata is stored in the dataset (extra `odp_metadata_hash`), so a run writes the
metadata only when it changed and a no-op run leaves `metadata_modified` as it was.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from odp.spec import City, Dataset

HASH_EXTRA = "odp_metadata_hash"


def _bbox_polygon(table: pd.DataFrame) -> dict[str, Any] | None:
    if "longitude" not in table or table["longitude"].dropna().empty:
        return None
    lon, lat = table["longitude"].dropna().astype(float), table["latitude"].dropna().astype(float)
    w, e, s, n = round(lon.min(), 6), round(lon.max(), 6), round(lat.min(), 6), round(lat.max(), 6)
    if w == e and s == n:
        return {"type": "Point", "coordinates": [w, s]}
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"type": "Polygon", "coordinates": [ring]}


def _temporal(table: pd.DataFrame, dataset: Dataset) -> tuple[str, str] | None:
    columns = [f.name for f in dataset.schema.fields if f.type == "datetime" and f.name in table]
    if not columns or table.empty:
        return None
    values = table[columns[0]].dropna()
    if values.empty:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return values.min().strftime(fmt), values.max().strftime(fmt)


def _districts(table: pd.DataFrame) -> str:
    if "stadtbezirk" not in table:
        return ""
    return ", ".join(sorted(table["stadtbezirk"].dropna().unique()))


def package_dict(dataset: Dataset, city: City, table: pd.DataFrame) -> dict[str, Any]:
    """The desired CKAN package (without id), including the hash extra."""
    publish, defaults = dataset.publish, city.defaults
    attribution = publish.get("attribution", defaults.get("attribution", ""))
    extras: dict[str, str] = {
        "attribution": attribution,
        "source_type": dataset.source_type,
        "update_frequency": publish.get("update_frequency", ""),
        "political_geocoding": city.regional_key,
        "reference_system": city.crs,
        "primary_key": ",".join(dataset.schema.primary_key),
    }
    if temporal := _temporal(table, dataset):
        extras["temporal_start"], extras["temporal_end"] = temporal
    if spatial := _bbox_polygon(table):
        extras["spatial"] = json.dumps(spatial, separators=(",", ":"))
    if districts := _districts(table):
        extras["stadtbezirke"] = districts
    notes = dataset.description.strip()
    if attribution:
        notes += f"\n\nQuelle: {attribution}"
    package: dict[str, Any] = {
        "name": dataset.name,
        "title": dataset.title,
        "notes": notes,
        "owner_org": city.organization["name"],
        "license_id": publish.get("license_id", defaults.get("license_id", "")),
        "url": publish.get("source_url", ""),
        "author": attribution,
        "maintainer": defaults.get("maintainer", ""),
        "maintainer_email": defaults.get("maintainer_email", ""),
        "tags": [{"name": t} for t in publish.get("tags", [])],
        "extras": [{"key": k, "value": v} for k, v in sorted(extras.items()) if v],
    }
    digest = hashlib.sha256(json.dumps(package, sort_keys=True).encode()).hexdigest()[:16]
    package["extras"].append({"key": HASH_EXTRA, "value": digest})
    return package


def stored_hash(package: dict[str, Any]) -> str | None:
    for extra in package.get("extras", []):
        if extra.get("key") == HASH_EXTRA:
            return extra.get("value")
    return None
