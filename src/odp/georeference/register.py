"""Loading the city's address register from `[reference_layers.addresses]`:

    path = "reference/dresden/addresses.csv"     # CSV (street, housenumber, postcode, lon, lat)
    # or a GeoJSON file / an OGC API Features collection of house points:
    url = "https://…/ogcapi/collections/ID/items"
    fields = { street = "strasse", housenumber = "hausnr", postcode = "plz" }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odp.errors import ConfigError, SourceError
from odp.georeference.geocode import AddressRegister
from odp.georeference.layers import city_layers, project_root
from odp.spec import City

_REGISTERS: dict[Path, AddressRegister] = {}
PAGE_LIMIT = 1000
MAX_PAGES = 1000


def load_register(city: City) -> AddressRegister:
    if city.path in _REGISTERS:
        return _REGISTERS[city.path]
    raw = city_layers(city).get("addresses")
    if not raw or not (raw.get("path") or raw.get("url")):
        raise ConfigError(f"{city.path}: [reference_layers.addresses] needs a path or url")
    fields = dict(raw.get("fields", {}))
    if path := raw.get("path"):
        file = project_root(city) / path
        if not file.is_file():
            raise ConfigError(f"{file}: address register not found (see {city.path})")
        if file.suffix.lower() in (".geojson", ".json"):
            register = AddressRegister.from_features(file.read_bytes(), fields, city.crs)
        else:
            register = AddressRegister.from_csv(file, fields, city.crs)
    else:
        register = AddressRegister.from_features(_ogc_items(raw["url"]), fields, city.crs)
    _REGISTERS[city.path] = register
    return register


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
