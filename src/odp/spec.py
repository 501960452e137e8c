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
    """Local state of runs: dlt pipelines, staging, quarantine, ledgers, locks."""
    path = Path(os.environ.get("ODP_STATE_DIR", root / ".local" / "state"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


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


@dataclass(frozen=True)
class ReferenceLayer:
    """A polygon layer rows are assigned to (e.g. Stadtteile)."""

    name: str
    path: Path
    code_field: str
    name_field: str


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
    stadtteile: ReferenceLayer
    stadtbezirk_names: dict[str, str]  # first digit of the Stadtteil code -> Stadtbezirk name
    path: Path
    portal: dict[str, Any] = field(default_factory=dict)  # the [portal] table (publish options)

    @classmethod
    def load(cls, path: Path, root: Path) -> City:
        raw = _read_toml(path)
        city = _require(raw, "city", path)
        portal = _require(raw, "portal", path)
        layers = _require(raw, "reference_layers", path)
        st = _require(layers, "stadtteile", path)
        token_file = portal.get("token_file")
        return cls(
            slug=_require(city, "slug", path),
            name=_require(city, "name", path),
            timezone=city.get("timezone", "Europe/Berlin"),
            regional_key=str(city.get("regional_key", "")),
            crs=city.get("crs", "EPSG:25833"),
            portal_url=os.environ.get("ODP_CKAN_URL", _require(portal, "url", path)).rstrip("/"),
            token_env=portal.get("token_env", "CKAN_API_TOKEN"),
            token_file=(root / token_file) if token_file else None,
            organization=_require(raw, "organization", path),
            defaults=raw.get("defaults", {}),
            stadtteile=ReferenceLayer(
                name="stadtteile",
                path=root / _require(st, "path", path),
                code_field=st.get("code_field", "code"),
                name_field=st.get("name_field", "name"),
            ),
            stadtbezirk_names={str(k): v for k, v in layers.get("stadtbezirke", {}).items()},
            path=path,
            portal=portal,
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
    return sorted(p.stem for p in (root / "pipelines").glob("*.toml"))


def load_dataset(name: str, root: Path) -> Dataset:
    definition = root / "pipelines" / f"{name}.toml"
    if not definition.is_file():
        known = ", ".join(dataset_names(root)) or "none"
        raise ConfigError(f"unknown dataset '{name}' (known: {known})")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{definition}: '{name}' is not a valid CKAN name (a-z, 0-9, -)")
    raw = _read_toml(definition)
    schema_path = root / "schemas" / f"{name}.json"
    suite_path = root / "expectations" / f"{name}.json"
    if not suite_path.is_file():
        raise ConfigError(f"{suite_path}: file not found (every dataset needs a suite)")
    source = _require(raw, "source", definition)
    _require(source, "type", definition)
    schema = TableSchema.from_dict(_read_json(schema_path), schema_path)
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
    path = Path(name) if Path(name).is_absolute() else root / name
    if path.suffix != ".toml":
        path = root / "cities" / f"{name}.toml"
    return City.load(path, root)
