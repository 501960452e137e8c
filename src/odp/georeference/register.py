"""Loading the city's address register from `[reference_layers.addresses]`, from any layer the
city has — a CSV file, GeoJSON, GML (a WFS GetFeature answer saved as a file), a WFS or an OGC
API Features collection — with a field mapping:

    [reference_layers.addresses]
    path = "reference/dresden/addresses.csv"   # .csv/.txt, .geojson/.json, .gml/.xml
    # or url = "https://…/ogcapi/collections/ID/items"            (OGC API Features)
    # or url = "https://…/wfs" with wfs = { typenames = "ad:Adressen", srsname = "EPSG:25833" }
    crs = "EPSG:25833"        # CSV coordinates in another CRS than WGS84 lon/lat
    [reference_layers.addresses.fields]   # register field = its column in the layer
    street = "strasse"
    housenumber = "hausnummer"
    suffix = "zusatz"         # a house number suffix in a column of its own (12 + a = 12a)
    postcode = "plz"
    longitude = "x"           # CSV only: features bring their geometry
    latitude = "y"
    # address = "anschrift"   # instead of street + housenumber: one "Straße 12a" column

Every mapped field must be a column of the layer: a missing one is a ConfigError naming the city
file, the field, the layer and the columns it has (not `KeyError: 'address'`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.georeference import crs as crs_
from odp.georeference.geocode import AddressRegister
from odp.georeference.layers import city_layers, project_root
from odp.spec import City

_REGISTERS: dict[Path, AddressRegister] = {}
PAGE_LIMIT = 1000
MAX_PAGES = 1000
FIELDS = ("street", "housenumber", "suffix", "postcode", "address", "longitude", "latitude")
KEYS = {"path", "url", "fields", "crs", "wfs", "encoding"}
FEATURE_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gml": "gml", ".xml": "gml"}


def load_register(city: City) -> AddressRegister:
    if city.path not in _REGISTERS:
        _REGISTERS[city.path] = read_register(city)
    return _REGISTERS[city.path]


def read_register(city: City) -> AddressRegister:
    where = f"{city.path}: [reference_layers.addresses]"
    raw = city_layers(city).get("addresses")
    if not raw or not (raw.get("path") or raw.get("url")):
        raise ConfigError(f"{where} needs a path or url")
    if unknown := sorted(set(raw) - KEYS):
        raise ConfigError(f"{where} unknown key '{unknown[0]}' (known: {', '.join(sorted(KEYS))})")
    fields = _fields(raw, where)
    frame, layer, is_features = _read_layer(raw, city, where)
    check_fields(frame, fields, where, layer, is_features)
    if is_features:
        fields = {**fields, "longitude": "longitude", "latitude": "latitude"}
    else:
        frame = _to_wgs84(frame, fields, raw, where)
    return AddressRegister.from_frame(frame, fields, city.crs)


def _fields(raw: dict[str, Any], where: str) -> dict[str, str]:
    fields = raw.get("fields", {})
    if not isinstance(fields, dict):
        raise ConfigError(f"{where} fields: a table register field = \"column\" is needed")
    if unknown := sorted(set(fields) - set(FIELDS)):
        raise ConfigError(f"{where} fields: unknown register field '{unknown[0]}' "
                          f"(known: {', '.join(FIELDS)})")
    return {k: str(v) for k, v in fields.items()}


def check_fields(frame: pd.DataFrame, fields: dict[str, str], where: str, layer: str,
                 is_features: bool) -> None:
    """Every register field the layer must have: street (+ house number) or one address column,
    and for a table without geometry its coordinates."""
    mapped = {f: fields.get(f, f) for f in FIELDS}
    columns = list(frame.columns)
    needed = [f for f in ("housenumber", "suffix", "postcode") if f in fields]
    if "address" in fields or (mapped["street"] not in columns and mapped["address"] in columns):
        needed = ["address", *(f for f in needed if f != "housenumber")]
    else:
        needed.insert(0, "street")
    if not is_features:
        needed += ["longitude", "latitude"]
    for name in needed:
        if mapped[name] not in columns:
            how = (f"fields.{name} = \"{mapped[name]}\"" if name in fields
                   else f"no fields.{name}, and no column '{name}'")
            raise ConfigError(f"{where} {how}: the register {layer} has no column "
                              f"'{mapped[name]}' (columns: {', '.join(map(str, columns))})")


def _read_layer(raw: dict[str, Any], city: City, where: str
                ) -> tuple[pd.DataFrame, str, bool]:
    """The layer as a table (features: with WGS84 `longitude`/`latitude` of their geometry),
    a name for messages, and whether it had geometries."""
    if path := raw.get("path"):
        file = Path(path) if Path(path).is_absolute() else project_root(city) / path
        if not file.is_file():
            raise ConfigError(f"{where} path: {file}: address register not found")
        kind = FEATURE_SUFFIXES.get(file.suffix.lower())
        if kind:
            return _features(file.read_bytes(), raw, where), str(file), True
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, sep=None, engine="python",
                            encoding=raw.get("encoding", "utf-8-sig"))
        return frame, str(file), False
    url = raw["url"]
    data = _wfs_items(url, raw["wfs"], where) if raw.get("wfs") else _ogc_items(url)
    return _features(data, raw, where), url, True


def _features(data: bytes, raw: dict[str, Any], where: str) -> pd.DataFrame:
    from odp.georeference.geometry import read_features

    try:
        features = read_features(data, raw.get("crs"))
    except crs_.CrsError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    points = features.geometry.representative_point()
    frame = pd.DataFrame(features.drop(columns="geometry"))
    frame["longitude"], frame["latitude"] = points.x.to_numpy(), points.y.to_numpy()
    return frame


def _to_wgs84(frame: pd.DataFrame, fields: dict[str, str], raw: dict[str, Any], where: str
              ) -> pd.DataFrame:
    """CSV coordinates in `crs` (default WGS84 lon/lat) → WGS84 longitude/latitude."""
    x_col, y_col = fields.get("longitude", "longitude"), fields.get("latitude", "latitude")
    try:
        source = crs_.normalise(raw.get("crs", crs_.WGS84))
    except crs_.CrsError as exc:
        raise ConfigError(f"{where} crs: {exc}") from None
    x = pd.to_numeric(frame[x_col].astype(str).str.replace(",", "."), errors="coerce")
    y = pd.to_numeric(frame[y_col].astype(str).str.replace(",", "."), errors="coerce")
    lon, lat = crs_.transform(x.to_numpy(float), y.to_numpy(float), source, crs_.WGS84)
    out = frame.copy()
    out[x_col], out[y_col] = lon, lat
    return out


def _wfs_items(url: str, query: Any, where: str) -> bytes:
    """All pages of a WFS 2.0 GetFeature (GML 3.2) as one GeoJSON, in the CRS asked for."""
    import json

    import shapely

    from odp.sources.http import HttpSettings, SourceClient
    from odp.sources.settings import settings_of
    from odp.sources.wfs import GetFeature, parse_page

    if not isinstance(query, dict):
        raise ConfigError(f"{where} wfs: a table (typenames, srsname, count) is needed")
    client = SourceClient("address register", HttpSettings())
    request = settings_of(GetFeature, {"count": PAGE_LIMIT, **query})
    count = request.count
    features: list[dict[str, Any]] = []
    params: dict[str, Any] | None = request.params(0)
    for page in range(1, MAX_PAGES + 1):
        body = client.get(url, params, expect="XML").content
        ids, props, geoms, following = parse_page(body, request, f"{where}: {url} (page {page})")
        features += [{"type": "Feature", "id": i, "properties": p,
                      "geometry": json.loads(shapely.to_geojson(g)) if g is not None else None}
                     for i, p, g in zip(ids, props, geoms, strict=True)]
        if following:
            url, params = following, None
        elif len(ids) >= count:
            params = request.params(len(features))
        else:
            break
    srs = request.srsname or crs_.crs_of_gml(body)
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if srs:
        collection["crs"] = {"type": "name", "properties": {"name": srs}}
    return json.dumps(collection).encode()


def _ogc_items(url: str) -> bytes:
    """All pages of an OGC API Features `items` collection, joined into one GeoJSON."""
    import json

    import requests

    features: list[Any] = []
    crs: Any = None
    next_url: str | None = url
    params: dict[str, Any] | None = {"limit": PAGE_LIMIT, "f": "json"}
    for _ in range(MAX_PAGES):
        if not next_url:
            break
        try:
            response = requests.get(next_url, params=params, timeout=60)
            response.raise_for_status()
            page = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SourceError(f"address register {url}: {exc}") from None
        features += page.get("features", [])
        crs = crs or page.get("crs")
        next_url = next((link.get("href") for link in page.get("links", [])
                         if link.get("rel") == "next"), None)
        params = None  # the next link carries its own query
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        collection["crs"] = crs
    return json.dumps(collection).encode()

