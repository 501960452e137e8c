"""Constants of the local CKAN stack: versions, plugins, ports, names and paths.

Everything that a developer may want to change lives here. Ports can be overridden with
environment variables (read at call time, so tests may set them).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CKAN_VERSION = "2.12.0"
HOME_ENV = "ODP_PORTAL_HOME"
HOME_RELATIVE = Path(".local") / "portal"  # below the project root

# odp's own CKAN extension (DCAT-AP.de profile, dataset schema, Table Schema endpoint). Installed
# as a regular package, not editable: other extensions (ckanext-geoview) ship a `ckanext`
# package shim that hides editable installs of the `ckanext` namespace. Its code digest is in
# the install marker (a change reinstalls it) and in CKAN_EXTRA_OPTIONS (a change restarts
# CKAN). The path is relative to the portal home (the installer's working folder), so
# checkouts sharing one portal ask for the same requirement.
CKANEXT_ODP = Path(__file__).resolve().parents[3] / "ckanext-odp"  # beside src/ in the project
_HOME = os.environ.get(HOME_ENV, "").strip() or str(CKANEXT_ODP.parent / HOME_RELATIVE)
# Installed into CKAN's own venv (CKAN pins versions that clash with the pipeline stack).
CKAN_REQUIREMENTS: tuple[str, ...] = (
    f"ckan[requirements]=={CKAN_VERSION}",
    "ckanapi",
    "waitress",
    "ckanext-dcat==2.4.4",  # DCAT-AP RDF endpoints (/dataset/NAME.ttl, /catalog.ttl)
    "ckanext-scheming==3.1.0",  # the DCAT-AP.de dataset fields
    "ckanext-geoview==0.3.2",  # map preview of GeoJSON resources (Leaflet, bundled)
    "ckanext-spatial==2.3.2",  # package_search(ext_bbox=…) over the `spatial` extra
    os.path.relpath(CKANEXT_ODP, Path(_HOME).expanduser().absolute()),
)
CKANEXT_ODP_PACKAGE = "ckanext-odp"
# Order matters to CKAN; extend with CKAN_REQUIREMENTS (e.g. "dcat", "scheming_datasets").
CKAN_PLUGINS: tuple[str, ...] = ("activity", "datastore", "datatables_view", "geojson_view",
                                 "scheming_datasets", "dcat", "spatial_metadata", "spatial_query",
                                 "odp")
# Plugins with database migrations of their own (`ckan db upgrade -p NAME`).
CKAN_PLUGIN_MIGRATIONS: tuple[str, ...] = ("activity",)


def _code_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml", ".toml"):
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:12]


# Further ckan.ini [app:main] options, e.g. {"scheming.dataset_schemas": "ckanext.x:y.yaml"}.
# Literal values: a `%` must be written `%%`; `%(here)s` is the portal home.
CKAN_EXTRA_OPTIONS: dict[str, str] = {
    "scheming.dataset_schemas": "ckanext.odp:dataset.yaml",
    "scheming.presets": "ckanext.scheming:presets.json",
    "ckanext.dcat.rdf.profiles": "euro_dcat_ap_2 euro_dcat_ap_scheming dcatap_de",
    # A German portal, as a German city runs it: pages in German (CKAN's own translation and
    # the German labels of the dataset schema), English offered beside it; times shown in the
    # city's zone.
    "ckan.locale_default": "de",
    "ckan.locales_offered": "de en",
    "ckan.display_timezone": "Europe/Berlin",
    # Deleted datasets stay in the search index (searches still show only active ones unless
    # `include_deleted` asks), so the test suite finds and purges what its runs deleted.
    "ckan.search.remove_deleted_packages": "false",
    "ckan.site_title": "odp – lokales Datenportal (Entwicklung und Tests)",
    "ckan.site_description": "Lokales CKAN, in das odp in Entwicklung und Tests veröffentlicht.",
    "ckanext.odp.catalog_language": "DEU",
    # Previews created with every new resource: a table for DataStore tables, a map for
    # GeoJSON. The map's base layer is OpenStreetMap (Stamen, geoview's default, is gone);
    # a city sets its own tiles (e.g. its WMTS) in production.
    "ckan.views.default_views": "datatables_view geojson_view",
    # Spatial search (ckanext-spatial): the envelope of each dataset's `spatial` extra is
    # indexed as minx/maxx/miny/maxy floats (fields odp_dev.portal.solr adds to CKAN's schema);
    # `ext_bbox=minx,miny,maxx,maxy` finds the datasets whose envelope intersects the box.
    "ckanext.spatial.search_backend": "solr-bbox",
    "ckanext.spatial.common_map.type": "custom",
    "ckanext.spatial.common_map.custom_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "ckanext.spatial.common_map.attribution": "Kartendaten © OpenStreetMap-Mitwirkende (ODbL)",
    # GIN rather than CKAN's default GiST for `_full_text`: built ~3.5× faster after a bulk load
    # (measured: 300k sensor rows 1.1 s vs 3.8 s) and faster to search; a setting worth
    # copying to production portals that hold large sensor tables.
    "ckan.datastore.default_fts_index_method": "gin",
    "ckanext.odp.code": _code_digest(CKANEXT_ODP),
}

HOST = "127.0.0.1"  # every service listens on loopback only

# name -> (default port, env var that overrides it)
_PORTS: dict[str, tuple[int, str]] = {
    "ckan": (5050, "ODP_PORTAL_PORT"),
    "postgresql": (55432, "ODP_PORTAL_PG_PORT"),
    "redis": (56379, "ODP_PORTAL_REDIS_PORT"),
    "solr": (58983, "ODP_PORTAL_SOLR_PORT"),
}

ADMIN_USER = "odp-admin"
ADMIN_EMAIL = "odp-admin@localhost"
DB_USER = "ckan"  # owns both databases; DataStore write user
DB_READONLY_USER = "datastore_ro"  # DataStore read_url
DB_NAME = "ckan"
DATASTORE_DB_NAME = "datastore"
SOLR_CORE = "ckan"
PG_OS_USER = "postgres"  # PostgreSQL refuses root: its binaries run as this user when we are root
WAITRESS_THREADS = 6

# Snowball stemmer of the `text` field type (title, notes, tags, the catch-all `text`). CKAN's
# schema stems English; the portal's texts are German. German2 is Snowball's German variant that
# also reads "ae", "oe", "ue" as "ä", "ö", "ü" (Strasse/Straße, Groesse/Größe find each other).
SOLR_STEMMER_LANGUAGE = "German2"
SOLR_HEAP = "512m"  # -Xmx of Solr's JVM (a dev index of a few thousand datasets needs far less)
SOLR_START_TIMEOUT_S = 90.0  # JVM start and loading the core: ~3 s warm
START_TIMEOUT_S = 120.0  # CKAN's first start after install loads/compiles a lot
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Ports:
    """TCP ports of the four services (all on HOST)."""

    ckan: int
    postgresql: int
    redis: int
    solr: int


def ports() -> Ports:
    """The ports in force: defaults, overridden by ODP_PORTAL_*PORT environment variables."""
    values: dict[str, int] = {}
    for name, (default, env) in _PORTS.items():
        raw = os.environ.get(env, "").strip()
        try:
            values[name] = int(raw) if raw else default
        except ValueError as exc:
            raise ValueError(f"{env} must be a port number, got {raw!r}") from exc
    return Ports(**values)
