"""OGC API – Features (Part 1 core, Part 2 CRS): a collection's items as GeoJSON, page by page.
Full refresh: every run reads the whole collection; the publish stage writes only what changed.

Parameters: see `ogcapi_features` (its `Args:`).

Paging follows the `rel=next` link of each page until there is none (a relative href is resolved
against the page's URL; a link seen twice stops the run). When the server states
`numberMatched`, the number of features read must equal it. Servers that send neither (the
Dresden cardogis server) deliver the whole collection in one page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urljoin

import dlt
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.sources.complete import load_json
from odp.sources.features import FeatureColumns, feature_table
from odp.sources.http import HttpSettings, SourceClient, response_json
from odp.sources.local import local_file
from odp.sources.settings import settings_of
from odp.spec import Dataset


def parse_page(payload: Any, where: str) -> tuple[list[Any], list[dict[str, Any]], list[Any]]:
    """One GeoJSON FeatureCollection → (ids, properties, shapely geometries or None)."""
    from shapely.errors import ShapelyError
    from shapely.geometry import shape

    if not isinstance(payload, dict) or not isinstance(payload.get("features"), list):
        raise SourceError(f"{where}: not a GeoJSON FeatureCollection (no 'features' list)")
    ids: list[Any] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for i, feature in enumerate(payload["features"], start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise SourceError(f"{where}: feature {i}: not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise SourceError(f"{where}: feature {i}: 'properties' is not an object")
        geometry = feature.get("geometry")
        if geometry and not isinstance(geometry, dict):
            raise SourceError(f"{where}: feature {i} (id {feature.get('id')}): field 'geometry': "
                              f"not a GeoJSON geometry object")
        try:
            # A non-standard `crs` member inside a geometry (cardogis) is ignored by shape().
            parsed = shape(geometry) if geometry else None
            geoms.append(None if parsed is None or parsed.is_empty else parsed)  # empty: none
        except (AttributeError, KeyError, TypeError, ValueError, IndexError,
                ShapelyError) as exc:
            raise SourceError(
                f"{where}: feature {i} (id {feature.get('id')}): field 'geometry': "
                f"malformed {(geometry or {}).get('type', 'geometry')} ({exc})"
            ) from None
        ids.append(feature.get("id"))
        props.append(properties)
    return ids, props, geoms


def next_link(payload: dict[str, Any], page_url: str) -> str | None:
    for link in payload.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
            return urljoin(page_url, str(link["href"]))
    return None


def _content_crs(response: Any) -> str | None:
    value = response.headers.get("Content-Crs")
    return value.strip().strip("<>") if value else None


@dataclass(frozen=True)
class Items:
    """Where and how a collection's items are asked (see `ogcapi_features`)."""

    url: str | None = None
    path: str | None = None
    limit: int = 1000
    crs: str | None = None
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    max_pages: int = 10000


def read_pages(client: SourceClient, items: Items) -> Iterator[tuple[Any, str]]:
    """Each page's decoded JSON and its URL."""
    url = str(items.url)
    crs = items.crs
    params: dict[str, Any] | None = {"limit": items.limit, **items.params}
    if crs:
        params["crs"] = crs  # type: ignore[index]
    seen: set[str] = set()
    max_pages = items.max_pages
    for page in range(1, max_pages + 1):
        response = client.get(url, params, expect="GeoJSON")
        page_url = url if params is None else f"{url}?{urlencode(params)}"  # the remote URL
        where = f"{client.dataset}: {page_url} (page {page})"
        payload = response_json(response, where)  # parsed as a file's (load_json)
        answered = _content_crs(response)
        if crs and answered and answered != crs:
            raise SourceError(f"{where}: answered in CRS {answered}, requested {crs}")
        yield payload, where
        following = next_link(payload, page_url)
        if following is None:
            return
        if following in seen:
            raise SourceError(f"{where}: the 'next' link repeats ({following})")
        seen.add(following)
        url, params = following, None  # the link carries every parameter
    raise SourceError(f"{client.dataset}: more than {max_pages} pages (max_pages)")


def read_collection(dataset: Dataset, items: Items | None = None,
                    columns: FeatureColumns | None = None,
                    http: HttpSettings | None = None) -> pd.DataFrame:
    """The collection as a raw-text table; without `items`, `columns` and `http` they are
    taken from the dataset's `[source]` table."""
    items = items or settings_of(Items, dataset.source)
    columns = columns or settings_of(FeatureColumns, dataset.source)
    ids: list[Any] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    matched: int | None = None
    pages: Iterator[tuple[Any, str]]
    if file := local_file(dataset.name, {"url": items.url, "path": items.path},
                          dataset.definition_path):
        where = f"{dataset.name}: {file}"
        pages = iter([(load_json(file.read_bytes(), where), where)])
    elif items.url:
        client = SourceClient(dataset.name, http or HttpSettings.from_source(dataset.source))
        pages = read_pages(client, items)
        where = f"{dataset.name}: {items.url}"
    else:
        raise ConfigError(f"{dataset.definition_path}: [source] needs 'url' or 'path'")
    for payload, page_where in pages:
        page_ids, page_props, page_geoms = parse_page(payload, page_where)
        ids += page_ids
        props += page_props
        geoms += page_geoms
        if isinstance(payload.get("numberMatched"), int):
            matched = payload["numberMatched"]
    if matched is not None and matched != len(ids):
        raise SourceError(f"{where}: read {len(ids)} features, the server matched {matched}")
    return feature_table(ids, props, geoms, columns, where)


def ogcapi_features(dataset: Dataset, *, url: str | None = None, path: str | None = None,
                    limit: int = 1000, crs: str | None = None,
                    params: dict[str, str | int | float | bool] | None = None,
                    max_pages: int = 10000, id_column: str = "id",
                    rename: dict[str, str] | None = None, geometry_column: str = "geometry",
                    geometry_format: Literal["wkt", "geojson"] = "wkt",
                    point_columns: tuple[str, str] = ("longitude", "latitude"),
                    drop: tuple[str, ...] = (), http: HttpSettings) -> Any:
    """A collection's features as rows, read whole every run.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        url: the collection's items endpoint (…/collections/{id}/items).
        path: a GeoJSON FeatureCollection file of the project instead of `url`.
        limit: page size sent as `limit` (servers may send fewer).
        crs: a CRS URI sent as `crs` (Part 2), e.g. http://www.opengis.net/def/crs/EPSG/0/25833;
            an answer whose `Content-Crs` names another CRS stops the run. Without it the
            server answers in CRS84 (lon/lat).
        params: further query parameters (e.g. {f = "json"}).
        max_pages: a safety stop for paging.
        id_column: the column of the feature id.
        rename: column -> new name.
        geometry_column: the column of the geometry as text.
        geometry_format: "wkt" or "geojson".
        point_columns: the two columns of a point on each feature (x, y).
        drop: columns not published (names as delivered).
        http: timeouts, retries, deadline and size cap of the requests.
    """
    items = Items(url, path, limit, crs, dict(params or {}), max_pages)
    columns = FeatureColumns(id_column, geometry_column, geometry_format, tuple(point_columns),
                             dict(rename or {}), tuple(drop))

    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def features() -> Iterator[pd.DataFrame]:
        yield read_collection(dataset, items, columns, http)

    return features
