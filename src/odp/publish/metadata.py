"""The CKAN dataset's metadata, from the dataset definition, the city defaults and the data.

The package carries the DCAT-AP.de fields of the portal's dataset schema (ckanext-scheming,
`ckanext-odp/ckanext/odp/dataset.yaml`); ckanext-dcat and the `dcatap_de` profile
turn them into DCAT-AP.de RDF. Facts that come from the data stay free extras, under the keys
ckanext-dcat and ckanext-spatial read: `temporal_start`, `temporal_end` (ISO 8601 UTC),
`spatial` (GeoJSON), `spatial_bbox`, `spatial_text`.

A hash of the metadata is stored in the dataset (extra `odp_metadata_hash`), so a run writes the
metadata only when it changed and a no-op run leaves `metadata_modified` as it was.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from odp.georeference.output import covered_districts, spatial_extent
from odp.publish.dcat import DcatFacts, facts
from odp.spec import City, Dataset

if TYPE_CHECKING:
    import pyarrow as pa

    from odp.publish.ledgerfile import Merged

HASH_EXTRA = "odp_metadata_hash"
PUBLISHER_TYPE = "http://purl.org/adms/publishertype/"


def _temporal(table: pd.DataFrame, dataset: Dataset) -> tuple[str, str] | None:
    columns = [f.name for f in dataset.schema.fields if f.type == "datetime" and f.name in table]
    if not columns or table.empty:
        return None
    values = table[columns[0]].dropna()
    if values.empty:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return values.min().strftime(fmt), values.max().strftime(fmt)


def _publisher(info: DcatFacts) -> dict[str, str]:
    org = info.organization
    publisher = {
        "uri": org.publisher_uri,
        "name": org.publisher_name,
        "email": org.email,
        "url": org.url,
        "type": PUBLISHER_TYPE + org.publisher_type,
    }
    return {k: v for k, v in publisher.items() if v}


def _extent_columns(dataset: Dataset, city: City) -> list[str]:
    """The columns the data's extras read: timestamps, locations, districts."""
    districts = [level.name_column or level.code_column for level in city.districts]
    return [*(f.name for f in dataset.schema.fields if f.type == "datetime"),
            dataset.georeference.get("geometry") or "", "longitude", "latitude", *districts]


def _extremes(published: pa.Table | Merged, columns: list[str]) -> pd.DataFrame:
    """A few rows with the table's extents in `columns` (no geometry column): the first and
    last time, the corners of the points (of rows with both coordinates), each district
    once — so the extras are computed without converting millions of rows to pandas, and
    from a merged ledger a row group at a time."""
    import pyarrow as pa

    from odp.publish.changes import as_frame

    if isinstance(published, pa.Table):
        return as_frame(_picked(published.select(columns), columns))
    # The extents of the parts' extents are the table's (and those of the last ledger and
    # the added rows, when no published row was dropped).
    return as_frame(published.summary(columns, lambda part: _picked(part, columns)))


def _picked(table: pa.Table, columns: list[str]) -> pa.Table:
    """The extents of one table (see `_extremes`), as a table of a few rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    picked: dict[str, pa.Array] = {}
    if "longitude" in columns and "latitude" in columns:
        lon, lat = (pc.cast(table.column(c), pa.float64()) for c in ("longitude", "latitude"))
        both = pc.and_(pc.fill_null(pc.is_finite(lon), False),
                       pc.fill_null(pc.is_finite(lat), False))
        for name, values in (("longitude", lon), ("latitude", lat)):
            ends = pc.min_max(pc.filter(values, both))
            picked[name] = pa.array([ends["min"].as_py(), ends["max"].as_py()], pa.float64())
    for name in columns:
        if name in ("longitude", "latitude"):
            continue
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            ends = pc.min_max(column)
            picked[name] = pa.array([ends["min"], ends["max"]], column.type)
        else:
            picked[name] = pc.unique(column)
    size = max([len(v) for v in picked.values()] + [0])
    return pa.table({n: pa.concat_arrays([v, pa.nulls(size - len(v), v.type)])
                     for n, v in picked.items()})


def _data_extras(dataset: Dataset, city: City, published: Merged | pa.Table | pd.DataFrame
                 ) -> dict[str, str]:
    from odp.publish.changes import as_frame, column_names

    names = column_names(published)
    wanted = set(_extent_columns(dataset, city))
    columns = [c for c in names if c in wanted]
    geometry = dataset.georeference.get("geometry")
    if isinstance(published, pd.DataFrame) or (geometry and geometry in columns):
        table = as_frame(published, columns)  # geometries: every one is needed
    else:
        table = _extremes(published, columns)
    extras = {
        "source_type": dataset.source_type,
        "reference_system": city.crs,
        "primary_key": ",".join(dataset.schema.primary_key),
    }
    if temporal := _temporal(table, dataset):
        extras["temporal_start"], extras["temporal_end"] = temporal
    if spatial := spatial_extent(table, dataset):
        extras["spatial"] = json.dumps(spatial, separators=(",", ":"))
        if spatial["type"] == "Polygon":
            extras["spatial_bbox"] = extras["spatial"]
        extras["spatial_text"] = city.name
    # The city's coarsest district level the rows lie in (Dresden: its Stadtbezirke).
    levels = covered_districts(table, city)
    if levels and (top := list(levels)[-1]) and levels[top]:
        extras[top] = ", ".join(levels[top])
    return extras


def package_dict(
    dataset: Dataset, city: City, table: pa.Table | pd.DataFrame, validation_summary: str = ""
) -> dict[str, Any]:
    """The desired CKAN package (without id), including the hash extra; `validation_summary`
    (Markdown from the validation report) closes the description."""
    publish = dataset.publish
    info = facts(dataset, city)
    base = city.portal_url
    identifier_base = str(city.defaults.get("identifier_base", f"{base}/dataset")).rstrip("/")
    notes = dataset.description.strip()
    if info.attribution:
        notes += f"\n\nQuelle: {info.attribution}"
    if validation_summary:
        notes += f"\n\n{validation_summary}"
    extras = _data_extras(dataset, city, table)
    package: dict[str, Any] = {
        "name": dataset.name,
        "title": dataset.title,
        "notes": notes,
        "owner_org": info.organization.name,
        "license_id": info.license_id,
        "license_uri": info.license_uri,
        "license_attribution_by_text": info.attribution,
        "url": publish.get("source_url", ""),
        "author": info.attribution,
        "maintainer": info.contact.get("name", ""),
        "maintainer_email": info.contact.get("email", ""),
        "tags": [{"name": t} for t in publish.get("tags", [])],
        "groups": [{"name": g.name} for g in info.groups],
        "theme": info.themes,
        "frequency": info.frequency,
        "language": [info.language],
        "identifier": f"{identifier_base}/{dataset.name}",
        "publisher": [_publisher(info)],
        "originator": [info.originator] if info.originator else [],
        "contact": [info.contact] if info.contact else [],
        "contributor_id": info.contributor_id,
        "political_geocoding_uri": list(info.political_geocoding_uri),
        "political_geocoding_level_uri": info.political_geocoding_level_uri,
        "geocoding_description": info.geocoding_description,
        "table_schema": json.dumps(dataset.schema.raw, ensure_ascii=False, sort_keys=True),
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
