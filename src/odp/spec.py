"""Typed model of the project's configuration: the city, and each dataset's three files.

A dataset NAME is defined by files, not code:
  pipelines/NAME.toml       source type + parameters, schedule, CKAN metadata, georeferencing rule
  schemas/NAME.json         Frictionless Table Schema (types, units, constraints, primary key)
  expectations/NAME.json    great-expectations suite (plausibility, with severity)
City facts live in one city file (cities/CITY.toml), chosen by odp.toml or ODP_CITY.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odp.errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,98}[a-z0-9]$")  # CKAN's dataset name rule
ROW_HASH = "row_hash"  # `odp:derived` of a key column validation fills (see odp.validate.keys)


def project_root(start: Path | None = None) -> Path:
    """The folder holding `pipelines/` and `cities/` (env ODP_PROJECT wins)."""
    if env := os.environ.get("ODP_PROJECT"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pipelines").is_dir() and (folder / "cities").is_dir():
            return folder
    raise ConfigError(f"no project found from {here}: expected pipelines/ and cities/ folders")


def state_dir(root: Path) -> Path:
    """Local state of runs: dlt pipelines, staging, quarantine, ledgers, locks. Created 0700
    (an existing one open to others is narrowed): it holds raw source rows."""
    from odp.redact import private_dir

    return private_dir(Path(os.environ.get("ODP_STATE_DIR", root / ".local" / "state")))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON configuration file (ConfigError naming the file and line when it cannot be read)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _with_environment(table: dict[str, Any], where: Path, name: str) -> dict[str, Any]:
    """The table's strings with `${VAR}` / `${VAR:-default}` replaced from the environment (as a
    shell or Compose file does): one city file serves every machine, e.g. the local portal on the
    port ODP_PORTAL_PORT names. A `${VAR}` without default and without VAR set is a ConfigError."""

    def value(match: re.Match[str], key: str) -> str:
        found = os.environ.get(match.group(1))
        if found:
            return found
        if match.group(2) is None:
            raise ConfigError(f"{where}: [{name}] {key} names ${{{match.group(1)}}}, which is not "
                              f"set (give a default: ${{{match.group(1)}:-…}})")
        return match.group(2)

    return {key: _ENV_REFERENCE.sub(lambda m, k=key: value(m, k), item)
            if isinstance(item, str) else item for key, item in table.items()}


def _refuse_userinfo(raw: dict[str, Any], where: str, skip: frozenset[str] = frozenset()) -> None:
    """No URL of a city file or definition holds credentials (odp.userinfo)."""
    from odp.userinfo import refuse_userinfo_in_tables

    refuse_userinfo_in_tables(raw, where, "give secrets through the environment or a secrets "
                              "file (the portal's token_env / token_file, *_env keys)", skip)


def _require(table: dict[str, Any], key: str, where: Path) -> Any:
    if key not in table or table[key] in ("", None):
        raise ConfigError(f"{where}: missing required key '{key}'")
    return table[key]


# --- Table Schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str  # Frictionless: string, integer, number, boolean, date, datetime, ...
    title: str = ""
    description: str = ""
    unit: str = ""
    constraints: dict[str, Any] = field(default_factory=dict)
    derived: str = ""  # "georeference" etc.: filled by a later stage, not by the source

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required"))


@dataclass(frozen=True)
class TableSchema:
    fields: tuple[SchemaField, ...]
    primary_key: tuple[str, ...]
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: Path) -> TableSchema:
        fields = []
        for i, item in enumerate(raw.get("fields", [])):
            name = _require(item, "name", where)
            fields.append(
                SchemaField(
                    name=name,
                    type=item.get("type", "string"),
                    title=item.get("title", ""),
                    description=item.get("description", ""),
                    unit=item.get("unit", ""),
                    constraints=dict(item.get("constraints", {})),
                    derived=item.get("odp:derived", ""),
                )
            )
            if not isinstance(name, str):
                raise ConfigError(f"{where}: field {i} has a non-text name")
        if not fields:
            raise ConfigError(f"{where}: the schema lists no fields")
        pk = raw.get("primaryKey", [])
        pk = (pk,) if isinstance(pk, str) else tuple(pk)
        names = {f.name for f in fields}
        for key in pk:
            if key == f"odp:{ROW_HASH}" and key not in names:
                raise ConfigError(
                    f"{where}: a row-hash key is a field: add {{\"name\": \"{ROW_HASH}\", "
                    f"\"type\": \"string\", \"odp:derived\": \"{ROW_HASH}\"}} and set "
                    f"\"primaryKey\": [\"{ROW_HASH}\"]"
                )
            if key not in names:
                raise ConfigError(f"{where}: primaryKey '{key}' is not a field")
        hashed = [f for f in fields if f.derived == ROW_HASH]
        if len(hashed) > 1 or any(f.type != "string" for f in hashed):
            raise ConfigError(f"{where}: at most one field may be odp:derived \"{ROW_HASH}\", "
                              "and its type is string")
        return cls(tuple(fields), pk, raw)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> SchemaField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def source_fields(self) -> list[SchemaField]:
        """Fields the source must deliver (not filled by a later stage)."""
        return [f for f in self.fields if not f.derived]

    @property
    def row_hash(self) -> str | None:
        """The field validation fills with a hash of the row's source values (`"odp:derived":
        "row_hash"`, the key of a table without a natural one), if the schema has one."""
        return next((f.name for f in self.fields if f.derived == ROW_HASH), None)


# --- City -----------------------------------------------------------------------------------


PARENT_BY = ("code_prefix", "parent_field", "containment")


@dataclass(frozen=True)
class DistrictLevel:
    """One level of the city's district hierarchy (`[districts.NAME]` in the city file).

    The smallest level has polygons (`path`); every row is assigned to the one it lies in. Each
    further level is the parent of the one before it in `[districts] levels`; the lower level
    says how its units find their parent (`parent_by`): by the first `prefix_length` characters
    of their code, by a field of theirs holding the parent's code (`parent_field`), or by the
    parent polygon holding the largest share of theirs (`containment`, the parent needs a
    `path`). A parent's names come from its own file or a `names` table (code → name)."""

    name: str
    code_column: str  # the output column of the unit's code ("" = not published)
    name_column: str  # the output column of the unit's name ("" = not published)
    path: Path | None = None
    code_field: str = "code"
    name_field: str = "name"
    names: dict[str, str] = field(default_factory=dict)
    parent_by: str = ""
    prefix_length: int = 0
    parent_field: str = ""

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.code_column, self.name_column) if c]


def _projected_crs(city: dict[str, Any], path: Path) -> str:
    from odp.georeference import crs as crs_

    name = city.get("crs", "EPSG:25833")
    try:
        if not crs_.is_projected(name):
            raise crs_.CrsError(f"{crs_.normalise(name)} is not projected (metres are needed "
                                "for distances, buffers and areas)")
        return crs_.normalise(name)
    except crs_.CrsError as exc:
        raise ConfigError(f"{path}: [city] crs: {exc}") from None


def _district_level(name: str, raw: Any, path: Path, root: Path) -> DistrictLevel:
    where = f"{path}: [districts.{name}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: missing (every name in [districts] levels needs a table)")
    known = {"path", "code_field", "name_field", "names", "columns", "parent_by",
             "prefix_length", "parent_field"}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"{where} unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    columns = raw.get("columns", [f"{name}_nr", name])
    if not (isinstance(columns, list) and len(columns) == 2 and any(columns)
            and all(isinstance(c, str) for c in columns)):
        raise ConfigError(f"{where} columns: two output column names [code, name] are needed "
                          f"(\"\" leaves one out; got {columns!r})")
    parent_by = raw.get("parent_by", "")
    if parent_by and parent_by not in PARENT_BY:
        raise ConfigError(f"{where} parent_by: '{parent_by}' is not one of {', '.join(PARENT_BY)}")
    prefix = raw.get("prefix_length", 0)
    if parent_by == "code_prefix" and not (isinstance(prefix, int) and prefix > 0):
        raise ConfigError(f"{where} prefix_length: a whole number > 0 is needed with parent_by "
                          f"= \"code_prefix\" (got {prefix!r})")
    if parent_by == "parent_field" and not raw.get("parent_field"):
        raise ConfigError(f"{where}: missing required key 'parent_field' "
                          "(parent_by = \"parent_field\")")
    names = raw.get("names", {})
    if not isinstance(names, dict):
        raise ConfigError(f"{where} names: a table code = \"name\" is needed")
    return DistrictLevel(
        name=name, code_column=columns[0], name_column=columns[1],
        path=(root / raw["path"]) if raw.get("path") else None,
        code_field=raw.get("code_field", "code"), name_field=raw.get("name_field", "name"),
        names={str(k): str(v) for k, v in names.items()}, parent_by=parent_by,
        prefix_length=int(prefix or 0), parent_field=raw.get("parent_field", ""))


def _district_levels(raw: dict[str, Any], path: Path, root: Path) -> tuple[DistrictLevel, ...]:
    table = _require(raw, "districts", path)
    names = _require(table, "levels", path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: [districts] levels: a list of level names, smallest first")
    levels = tuple(_district_level(n, table.get(n), path, root) for n in names)
    if levels[0].path is None:
        raise ConfigError(f"{path}: [districts.{levels[0].name}]: missing required key 'path' "
                          "(the smallest level needs its polygons)")
    for child, parent in zip(levels, levels[1:], strict=False):
        where = f"{path}: [districts.{child.name}]"
        if not child.parent_by:
            raise ConfigError(f"{where}: missing required key 'parent_by' (how its units find "
                              f"their {parent.name}: {', '.join(PARENT_BY)})")
        if child.parent_by == "containment" and parent.path is None:
            raise ConfigError(f"{path}: [districts.{parent.name}]: missing required key 'path' "
                              f"([districts.{child.name}] parent_by = \"containment\")")
        if child.parent_by == "parent_field" and child.path is None:
            raise ConfigError(f"{where}: missing required key 'path' (its parent_field is read "
                              "from its file)")
    if levels[-1].parent_by:
        raise ConfigError(f"{path}: [districts.{levels[-1].name}] parent_by: the last level of "
                          "[districts] levels has no parent")
    return levels


@dataclass(frozen=True)
class City:
    slug: str
    name: str
    timezone: str
    regional_key: str
    crs: str  # the city's projected reference system, e.g. EPSG:25833
    portal_url: str
    token_env: str
    token_file: Path | None
    organization: dict[str, Any]
    defaults: dict[str, Any]
    districts: tuple[DistrictLevel, ...]  # smallest level first
    path: Path
    portal: dict[str, Any] = field(default_factory=dict)  # the [portal] table (publish options)
    # [portal] datastore_write_url_file (e.g. written by `odp portal start`): None when
    # ODP_CKAN_URL names another portal than the file's `url` (the file belongs to that one)
    write_url_file: Path | None = None

    @classmethod
    def load(cls, path: Path, root: Path) -> City:
        raw = _read_toml(path)
        city = _require(raw, "city", path)
        portal = _with_environment(_require(raw, "portal", path), path, "portal")
        _refuse_userinfo({**raw, "portal": portal}, str(path))
        token_file = portal.get("token_file")
        url = _require(portal, "url", path).rstrip("/")
        portal_url = os.environ.get("ODP_CKAN_URL", url).rstrip("/")
        _refuse_userinfo({"ODP_CKAN_URL": portal_url}, "environment")
        write_url_file = portal.get("datastore_write_url_file")
        return cls(
            slug=_require(city, "slug", path),
            name=_require(city, "name", path),
            timezone=city.get("timezone", "Europe/Berlin"),
            regional_key=str(city.get("regional_key", "")),
            crs=_projected_crs(city, path),
            portal_url=portal_url,
            token_env=portal.get("token_env", "CKAN_API_TOKEN"),
            token_file=(root / token_file) if token_file else None,
            organization=_require(raw, "organization", path),
            defaults=raw.get("defaults", {}),
            districts=_district_levels(raw, path, root),
            path=path,
            portal=portal,
            write_url_file=(root / write_url_file) if write_url_file and portal_url == url
            else None,
        )

    def api_token(self) -> str | None:
        """The CKAN API token from the environment or the secrets file (never logged)."""
        if token := os.environ.get(self.token_env):
            return token.strip()
        if file := os.environ.get(f"{self.token_env}_FILE"):
            return Path(file).read_text().strip()
        if self.token_file and self.token_file.is_file():
            return self.token_file.read_text().strip()
        return None


# --- Dataset --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    description: str
    kind: str  # "sensor" (time series) or "register" (administrative)
    source: dict[str, Any]
    extract: dict[str, Any]
    validate: dict[str, Any]
    georeference: dict[str, Any]
    publish: dict[str, Any]
    schedule: dict[str, Any]
    schema: TableSchema
    suite_path: Path
    definition_path: Path

    @property
    def source_type(self) -> str:
        return self.source["type"]

    @property
    def full_refresh(self) -> bool:
        return self.extract.get("mode", "full-refresh") == "full-refresh"

    @property
    def max_quarantine_share(self) -> float:
        return float(self.validate.get("max_quarantine_share", 0.05))

    @property
    def table_name(self) -> str:
        """Identifier-safe name for local tables (dlt, staging)."""
        return self.name.replace("-", "_")


def dataset_names(root: Path) -> list[str]:
    """The datasets of the city being served (see `dataset_city`), by name."""
    names = sorted(p.stem for p in (root / "pipelines").glob("*.toml"))
    cities = _served_and_default_city(root)
    if cities is None:  # no city configured: every definition (commands then say what is missing)
        return names
    served, default = cities
    return [n for n in names
            if dataset_city(root / "pipelines" / f"{n}.toml", default) in (served, None)]


def dataset_city(definition: Path, default: str) -> str | None:
    """The slug of the city a dataset belongs to: the definition's top-level `city` key (e.g.
    `city = "leipzig"`, the [city] slug of cities/leipzig.toml), else the project's own city
    (odp.toml's). One project may hold the datasets of several cities side by side in
    pipelines/; a run serves one city (`odp --city NAME`, ODP_CITY). None: unreadable."""
    try:
        with definition.open("rb") as fh:
            city = tomllib.load(fh).get("city", default)
    except (OSError, tomllib.TOMLDecodeError):
        return None  # listed anyway: loading it names the error
    return str(city)


def _served_and_default_city(root: Path) -> tuple[str, str] | None:
    """The slugs of the city served now (ODP_CITY, else odp.toml) and of odp.toml's city."""
    settings = root / "odp.toml"
    default = _read_toml(settings).get("city") if settings.is_file() else None
    served = os.environ.get("ODP_CITY") or default
    if not served:
        return None
    slug = _city_slug(_city_path(root, served))
    return slug, (_city_slug(_city_path(root, default)) if default else slug)


def _city_path(root: Path, name: str) -> Path:
    path = Path(name) if Path(name).is_absolute() else root / name
    return path if path.suffix == ".toml" else root / "cities" / f"{name}.toml"


def _city_slug(path: Path) -> str:
    return str(_read_toml(path).get("city", {}).get("slug") or path.stem)


def load_dataset(name: str, root: Path) -> Dataset:
    definition = root / "pipelines" / f"{name}.toml"
    if not definition.is_file():
        known = ", ".join(dataset_names(root)) or "none"
        raise ConfigError(f"unknown dataset '{name}' (known: {known})")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{definition}: '{name}' is not a valid CKAN name (a-z, 0-9, -)")
    raw = _read_toml(definition)
    if "city" in raw and (cities := _served_and_default_city(root)) and raw["city"] != cities[0]:
        raise ConfigError(f"{definition}: dataset '{name}' belongs to the city '{raw['city']}', "
                          f"not to '{cities[0]}' served now (run it with --city {raw['city']})")
    schema_path = root / "schemas" / f"{name}.json"
    suite_path = root / "expectations" / f"{name}.json"
    if not suite_path.is_file():
        raise ConfigError(f"{suite_path}: file not found (every dataset needs a suite)")
    source = _require(raw, "source", definition)
    _require(source, "type", definition)
    _refuse_userinfo(raw, str(definition), skip=frozenset({"source"}))  # [source]: make_resource
    schema = TableSchema.from_dict(read_json(schema_path), schema_path)
    extract = raw.get("extract", {})
    if schema.row_hash and extract.get("mode", "full-refresh") != "full-refresh":
        raise ConfigError(f"{schema_path}: a row-hash key ('{schema.row_hash}') needs a "
                          f"full-refresh dataset ({definition} [extract] mode): staging merges "
                          "incremental rows on the key before validation computes it")
    return Dataset(
        name=name,
        title=_require(raw, "title", definition),
        description=raw.get("description", ""),
        kind=raw.get("kind", "register"),
        source=source,
        extract=extract,
        validate=raw.get("validate", {}),
        georeference=raw.get("georeference", {}),
        publish=raw.get("publish", {}),
        schedule=raw.get("schedule", {}),
        schema=schema,
        suite_path=suite_path,
        definition_path=definition,
    )


def load_city(root: Path) -> City:
    """The city named by ODP_CITY or odp.toml's `city` (a path to cities/NAME.toml)."""
    name = os.environ.get("ODP_CITY")
    if not name:
        settings = root / "odp.toml"
        name = _read_toml(settings).get("city") if settings.is_file() else None
    if not name:
        raise ConfigError(f"{root}/odp.toml: set city = \"cities/NAME.toml\" (or ODP_CITY)")
    return City.load(_city_path(root, name), root)
