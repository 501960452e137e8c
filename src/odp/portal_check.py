"""`odp portal check [URL]`: whether a CKAN portal has what odp needs, before the first publish.

A city runs its own CKAN. This asks it — read-only, nothing is written — for each requirement:

    ckan              CKAN answers, version MIN_CKAN or newer
    datastore         the DataStore plugin is on and its database answers
    datastore_write   how rows will be written: COPY into the DataStore database (its write URL
                      is known and accepts a connection) or the action API (datastore_upsert)
    scheming          ckanext-scheming with the project's dataset schema (its DCAT-AP.de fields)
    dcat              ckanext-dcat: DCAT-AP RDF for harvesters (GovData)
    odp_extension     ckanext-odp: the DCAT-AP.de profile and the Table Schema endpoint
    spatial           ckanext-spatial: search by bounding box over each dataset's extent
    previews          datatables_view and geojson_view: table and map previews
    token             the API token, and whether its user is a sysadmin
    organization:NAME the token may create datasets in each of the city's organisations
    group:NAME        … and put them into each theme group the datasets name

States: `ok`; `warn` — odp publishes, without what the line names (it says what it does
instead); `missing` — a publish would fail or lose metadata. Exit code 0 when nothing is
missing, 5 (PublishError's: the portal cannot take a publish) otherwise; `--json` prints
{"url", "ready", "checks": [{"requirement", "state", "detail"}]}.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from odp.errors import ConfigError, PublishError
from odp.spec import City

OK, WARN, MISSING = "ok", "warn", "missing"
# CKAN 2.10 is the oldest release line CKAN still supports; odp is tested with 2.12.
MIN_CKAN = (2, 10)
# The dataset fields odp writes beyond CKAN's core ones (odp.publish.metadata.package_dict):
# without a schema that declares them, CKAN drops them and the DCAT-AP.de facts are lost.
SCHEMA_FIELDS = frozenset({
    "license_uri", "license_attribution_by_text", "theme", "frequency", "language",
    "identifier", "publisher", "originator", "contact", "contributor_id",
    "political_geocoding_uri", "political_geocoding_level_uri", "geocoding_description",
    "table_schema",
})  # fmt: skip
TIMEOUT_S = 20.0  # per request: a portal slower than this would time out publishing too


@dataclass(frozen=True)
class Check:
    requirement: str
    state: str  # ok | warn | missing
    detail: str


class _Api:
    """Read-only calls to the portal's action API (ckanapi; the token never in a message)."""

    def __init__(self, url: str, token: str | None) -> None:
        from ckanapi import RemoteCKAN

        self.url = url
        self.client = RemoteCKAN(url, apikey=token, user_agent="odp portal check")

    def call(self, action: str, **data: Any) -> Any:
        return self.client.call_action(action, data, requests_kwargs={"timeout": TIMEOUT_S})

    def answers(self, action: str, **data: Any) -> tuple[bool, Any]:
        """(True, result) or (False, a one-line reason)."""
        from ckanapi import errors

        try:
            return True, self.call(action, **data)
        except errors.NotAuthorized:
            return False, "not authorised"
        except errors.NotFound:
            return False, "not found"
        except (errors.CKANAPIError, errors.ValidationError, OSError, ValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return False, (text or type(exc).__name__)[:160]


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _ckan(status: dict[str, Any]) -> Check:
    version = str(status.get("ckan_version", "?"))
    wanted = ".".join(map(str, MIN_CKAN))
    if _version(version)[:2] >= MIN_CKAN:
        return Check("ckan", OK, f"CKAN {version} ({wanted} or newer needed)")
    return Check("ckan", MISSING, f"CKAN {version}: {wanted} or newer needed")


def _datastore(api: _Api, plugins: set[str]) -> Check:
    if "datastore" not in plugins:
        return Check("datastore", MISSING, "the datastore plugin is off: odp writes every "
                     "table to the DataStore (ckan.plugins += datastore)")
    answered, result = api.answers("datastore_search", resource_id="_table_metadata", limit=0)
    if not answered:
        return Check("datastore", MISSING, f"datastore_search does not answer: {result}")
    return Check("datastore", OK, "plugin on, its database answers")


def _datastore_write(city: City, plugins: set[str]) -> Check:
    from odp.publish.datastore import WRITE_URL_ENV, write_url

    if "datastore" not in plugins:
        return Check("datastore_write", MISSING, "no DataStore to write to")
    try:
        url = write_url(city)
    except ConfigError as exc:  # e.g. a remote database without TLS
        return Check("datastore_write", MISSING, str(exc))
    if not url:
        return Check("datastore_write", OK, "action API (datastore_upsert, batched); COPY "
                     f"needs the DataStore's write database: {WRITE_URL_ENV}")
    where = urlsplit(url)
    named = f"{where.hostname}:{where.port or 5432}{where.path}"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=int(TIMEOUT_S), application_name="odp check"
                             ) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('_table_metadata') IS NOT NULL")
            row = cur.fetchone()
    except Exception as exc:  # noqa: BLE001 — any failure to connect is the finding
        return Check("datastore_write", MISSING, f"COPY: the DataStore database at {named} "
                     f"refused the connection ({type(exc).__name__}); unset {WRITE_URL_ENV} "
                     "to write through the action API")
    if not (row and row[0]):
        return Check("datastore_write", MISSING, f"COPY: {named} is not a CKAN DataStore "
                     "database (no _table_metadata)")
    return Check("datastore_write", OK, f"COPY into the DataStore database at {named}")


def _scheming(api: _Api, plugins: set[str]) -> Check:
    if "scheming_datasets" not in plugins:
        return Check("scheming", MISSING, "ckanext-scheming is off: CKAN would drop the "
                     "DCAT-AP.de fields odp writes (scheming_datasets with odp's dataset.yaml)")
    answered, schema = api.answers("scheming_dataset_schema_show", type="dataset")
    if not answered:
        return Check("scheming", MISSING, f"no dataset schema: {schema}")
    fields = {f.get("field_name") for f in schema.get("dataset_fields", [])}
    if lacking := sorted(SCHEMA_FIELDS - fields):
        return Check("scheming", MISSING, "the dataset schema lacks odp's fields "
                     f"{', '.join(lacking)} (scheming.dataset_schemas = ckanext.odp:dataset.yaml)")
    return Check("scheming", OK, f"dataset schema '{schema.get('about', '?')}' has odp's fields")


def _plugin(name: str, present: bool, yes: str, no: str) -> Check:
    return Check(name, OK if present else WARN, yes if present else no)


def _extensions(plugins: set[str]) -> list[Check]:
    spatial = {"spatial_metadata", "spatial_query"} <= plugins
    views = {"datatables_view", "geojson_view"} <= plugins
    return [
        _plugin("dcat", "dcat" in plugins, "ckanext-dcat: /dataset/NAME.ttl, /catalog.ttl",
                "ckanext-dcat is off: no DCAT-AP RDF, GovData cannot harvest; odp still "
                "publishes and stores the DCAT-AP.de fields"),
        _plugin("odp_extension", "odp" in plugins, "ckanext-odp: DCAT-AP.de profile, "
                "/dataset/NAME/table-schema.json",
                "ckanext-odp is off: RDF without the DCAT-AP.de fields (profile dcatap_de) and "
                "dct:conformsTo points to no Table Schema"),
        _plugin("spatial", spatial, "ckanext-spatial: search by bounding box (ext_bbox)",
                "ckanext-spatial is off: odp still writes each dataset's extent (`spatial`), "
                "but neither search by area nor the extent map work"),
        _plugin("previews", views, "datatables_view, geojson_view: table and map previews",
                "datatables_view or geojson_view is off: odp creates only the previews the "
                "portal offers (ckan.views.default_views)"),
    ]


def _is_sysadmin(api: _Api) -> bool:
    """config_option_list is allowed to sysadmins only (read-only)."""
    return api.answers("config_option_list")[0]


def _token(api: _Api, token: str | None, city: City) -> tuple[Check, bool]:
    if not token:
        return Check("token", MISSING, f"no API token: set {city.token_env} or "
                     f"{city.token_env}_FILE"), False
    answered, result = api.answers("organization_list_for_user", permission="read")
    if not answered:
        return Check("token", MISSING, f"the portal refuses the token ({result})"), False
    if _is_sysadmin(api):
        return Check("token", OK, "valid; its user is a sysadmin (creates missing "
                     "organisations and groups)"), True
    return Check("token", OK, "valid; its user is not a sysadmin"), False


def _organizations(api: _Api, city: City, sysadmin: bool) -> list[Check]:
    from odp.publish.dcat import organizations

    ok, mine = api.answers("organization_list_for_user", permission="create_dataset")
    writable = {o["name"] for o in mine} if ok else set()
    checks = []
    for name in organizations(city):
        exists = api.answers("organization_show", id=name)[0]
        key = f"organization:{name}"
        if sysadmin or name in writable:
            what = "exists" if exists else "created at the first publish"
            checks.append(Check(key, OK, f"{what}; the token may create datasets in it"))
        elif exists:
            checks.append(Check(key, MISSING, "the token's user may not create datasets in it "
                                "(make it an editor of the organisation)"))
        else:
            checks.append(Check(key, MISSING, "does not exist and only a sysadmin may create "
                                "it: create it in CKAN"))
    return checks


def _theme_groups(root: Path, city: City) -> list[str]:
    """The CKAN groups the datasets' themes name (the city file's [groups])."""
    from odp.publish.dcat import facts
    from odp.spec import dataset_names, load_dataset

    names: set[str] = set()
    for dataset in dataset_names(root):
        names |= {g.name for g in facts(load_dataset(dataset, root), city).groups}
    return sorted(names)


def _groups(api: _Api, root: Path, city: City, sysadmin: bool) -> list[Check]:
    ok, mine = api.answers("group_list_authz")
    editable = {g["name"] for g in mine} if ok else set()
    checks = []
    for name in _theme_groups(root, city):
        exists = api.answers("group_show", id=name)[0]
        key = f"group:{name}"
        if sysadmin or name in editable:
            checks.append(Check(key, OK, "exists" if exists else "created at the first publish"))
        else:
            checks.append(Check(key, MISSING, ("the token's user may not add datasets to it "
                                               "(make it a member of the group)") if exists
                                else "does not exist and only a sysadmin may create it"))
    return checks


def run_checks(root: Path, city: City, url: str | None = None) -> tuple[str, list[Check]]:
    """(the portal URL, the findings) for `url`, default the city's portal. The city's token
    file and DataStore write URL file (the local portal's) are used for the city's own portal
    only, never sent elsewhere."""
    target = (url or city.portal_url).rstrip("/")
    if target != city.portal_url:
        city = replace(city, portal_url=target, token_file=None, write_url_file=None)
    token = city.api_token()
    api = _Api(target, token)
    answered, status = api.answers("status_show")
    if not answered or not isinstance(status, dict):
        return target, [Check("ckan", MISSING, f"{target} does not answer as CKAN: {status}")]
    plugins = set(status.get("extensions", []))
    checks = [_ckan(status), _datastore(api, plugins), _datastore_write(city, plugins),
              _scheming(api, plugins), *_extensions(plugins)]
    token_check, sysadmin = _token(api, token, city)
    checks.append(token_check)
    if token_check.state == OK:
        checks += _organizations(api, city, sysadmin) + _groups(api, root, city, sysadmin)
    return target, checks


def cmd_check(args: argparse.Namespace, root: Path) -> int:
    from odp.spec import load_city

    url, checks = run_checks(root, load_city(root), getattr(args, "url", None))
    ready = all(c.state != MISSING for c in checks)
    if getattr(args, "json", False):
        print(json.dumps({"url": url, "ready": ready, "checks": [asdict(c) for c in checks]},
                         ensure_ascii=False, indent=2))
    else:
        print(f"portal: {url}")
        for c in checks:
            print(f"{c.state:<8}{c.requirement}: {c.detail}")
        print("ready to publish" if ready else "not ready: see the lines marked missing")
    return 0 if ready else PublishError.exit_code

