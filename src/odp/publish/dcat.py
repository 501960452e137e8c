"""DCAT-AP.de facts of a dataset, from its definition (`[publish]`) and the city file.

Every vocabulary value is checked here, before anything is written, and named in a one-line
ConfigError: licences (DCAT-AP.de licence IRIs, `dcat_licenses.json` = ckanext-dcatde's
examples/dcat_licenses.json, unchanged), EU data themes and frequencies, the political
geocoding level, dcat-ap.de contributor IDs. Short names are accepted where officers know
them (`dl-de-by-2.0`, `ENVI`, `15MIN`, `municipality`); CKAN receives the full IRIs.

City file sections read here (all optional except where noted):
  [organization]            the default organisation (required, read by spec.py)
  [organizations.NAME]      further organisations (Amt, Eigenbetrieb …); a dataset picks one
                            with publish.organization
  [defaults]                license_id, attribution, maintainer, maintainer_email, contact_url,
                            language
  [dcat]                    contributor_id, political_geocoding_level, political_geocoding_uri
                            (default: the regional key's IRI), geocoding_description
  [groups]                  EU theme code -> { name, title } of the CKAN group showing it
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from odp.errors import ConfigError
from odp.spec import City, Dataset

EU = "http://publications.europa.eu/resource/authority/"
DCATDE = "http://dcat-ap.de/def/"
LICENSES_FILE = Path(__file__).with_name("dcat_licenses.json")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# EU data themes (table 20241211-0) with their German labels: the CKAN groups' default titles.
THEMES = {
    "AGRI": "Landwirtschaft, Fischerei, Forstwirtschaft und Nahrungsmittel",
    "ECON": "Wirtschaft und Finanzen",
    "EDUC": "Bildung, Kultur und Sport",
    "ENER": "Energie",
    "ENVI": "Umwelt",
    "GOVE": "Regierung und öffentlicher Sektor",
    "HEAL": "Gesundheit",
    "INTR": "Internationale Themen",
    "JUST": "Justiz, Rechtssystem und öffentliche Sicherheit",
    "OP_DATPRO": "Vorläufige Daten",
    "REGI": "Regionen und Städte",
    "SOCI": "Bevölkerung und Gesellschaft",
    "TECH": "Wissenschaft und Technologie",
    "TRAN": "Verkehr",
}
# EU frequency table 20220615-0.
FREQUENCIES = _words(
    "1MIN 5MIN 10MIN 15MIN 30MIN HOURLY BIHOURLY TRIHOURLY 12HRS DAILY DAILY_2 WEEKLY WEEKLY_2 "
    "WEEKLY_3 BIWEEKLY MONTHLY MONTHLY_2 MONTHLY_3 BIMONTHLY QUARTERLY ANNUAL ANNUAL_2 ANNUAL_3 "
    "BIENNIAL TRIENNIAL QUADRENNIAL QUINQUENNIAL DECENNIAL BIDECENNIAL TRIDECENNIAL CONT "
    "UPDATE_CONT IRREG AS_NEEDED NOT_PLANNED NEVER OTHER UNKNOWN"
)
LEVELS = _words(
    "international european federal state administrativeDistrict municipality"
)
# Licence ids officers and CKAN know -> DCAT-AP.de licence IRI (path below /def/licenses/).
LICENSE_ALIASES = {
    "dl-de-by-2.0": "dl-by-de/2.0",
    "dl-de-by-1.0": "dl-by-de/1.0",
    "dl-de-zero-2.0": "dl-zero-de/2.0",
    "dl-de-by-nc-1.0": "dl-by-nc-de/1.0",
    "cc-by": "cc-by",
    "cc-by-4.0": "cc-by/4.0",
    "cc-by-sa": "cc-by-sa",
    "cc-by-sa-4.0": "cc-by-sa/4.0",
    "cc-by-nc": "cc-by-nc",
    "cc-nc": "cc-by-nc",
    "cc-by-nc-4.0": "cc-by-nc/4.0",
    "cc-zero": "cc-zero",
    "cc0-1.0": "cc-zero",
    "odc-odbl": "odbl",
    "odbl": "odbl",
    "odbl-1.0": "odbl",
    "odc-by": "odby",
    "odc-pddl": "odcpddl",
    "pdm-1.0": "ccpdm/1.0",
    "official-work": "officialWork",
    "other-open": "other-open",
    "other-closed": "other-closed",
    "gpl-3.0": "gpl/3.0",
    "apache-2.0": "apache",
    "mpl-2.0": "mozilla",
}
ADMS_PUBLISHER_TYPES = _words(
    "Academia-ScientificOrganisation Company IndustryConsortium LocalAuthority "
    "NationalAuthority NonGovernmentalOrganisation NonProfitOrganisation PrivateIndividual "
    "RegionalAuthority StandardisationBody SupraNationalAuthority"
)


@dataclass(frozen=True)
class Organization:
    """A CKAN organisation (an Amt, an Eigenbetrieb …) and the DCAT publisher it stands for."""

    name: str
    title: str
    description: str = ""
    kind: str = ""  # Amt, Eigenbetrieb, …: an extra of the organisation
    url: str = ""
    email: str = ""
    publisher_name: str = ""  # dct:publisher foaf:name (default: the title)
    publisher_uri: str = ""
    publisher_type: str = "LocalAuthority"  # ADMS publisher type


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    theme: str  # EU data-theme IRI


@dataclass(frozen=True)
class DcatFacts:
    organization: Organization
    groups: tuple[Group, ...]
    license_id: str
    license_uri: str
    attribution: str
    frequency: str = ""
    language: str = ""
    contributor_id: str = ""
    political_geocoding_uri: tuple[str, ...] = ()
    political_geocoding_level_uri: str = ""
    geocoding_description: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    originator: dict[str, str] = field(default_factory=dict)

    @property
    def themes(self) -> list[str]:
        return [g.theme for g in self.groups]


@lru_cache(maxsize=8)
def _read_city(path: Path, mtime: float) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def city_file(city: City) -> dict[str, Any]:
    """The whole city file (sections spec.City does not model)."""
    try:
        return _read_city(city.path, city.path.stat().st_mtime)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{city.path}: cannot read: {exc}") from None


@lru_cache(maxsize=1)
def dcat_licenses() -> dict[str, dict[str, Any]]:
    """DCAT-AP.de licence IRI -> entry (title, url, status)."""
    return {entry["id"]: entry for entry in json.loads(LICENSES_FILE.read_text("utf-8"))}


def license_uri(value: str, where: str) -> str:
    """A licence id (alias) or DCAT-AP.de licence IRI -> the active DCAT-AP.de IRI."""
    uri = value if value.startswith("http") else DCATDE + "licenses/" + LICENSE_ALIASES.get(
        value.strip().lower(), "?"
    )
    entry = dcat_licenses().get(uri)
    if entry is None:
        raise ConfigError(
            f"{where}: licence '{value}' is neither a known licence id "
            f"({', '.join(sorted(LICENSE_ALIASES))}) nor a DCAT-AP.de licence IRI"
        )
    if entry.get("status") != "active":
        raise ConfigError(f"{where}: licence IRI {uri} is deprecated in DCAT-AP.de")
    return uri


def _code(value: str, base: str) -> str:
    return value.removeprefix(base).strip()


def theme_uri(value: str, where: str) -> str:
    code = _code(value, EU + "data-theme/").upper()
    if code not in THEMES:
        raise ConfigError(f"{where}: unknown EU data theme '{value}' (one of {', '.join(THEMES)})")
    return EU + "data-theme/" + code


def frequency_uri(value: str, where: str) -> str:
    code = _code(value, EU + "frequency/").upper()
    if code not in FREQUENCIES:
        raise ConfigError(
            f"{where}: unknown EU frequency '{value}' (e.g. 15MIN, HOURLY, DAILY, WEEKLY, IRREG)"
        )
    return EU + "frequency/" + code


def language_uri(value: str) -> str:
    return value if value.startswith("http") else EU + "language/" + value.strip().upper()


def level_uri(value: str, where: str) -> str:
    code = _code(value, DCATDE + "politicalGeocoding/Level/")
    if code not in LEVELS:
        raise ConfigError(
            f"{where}: unknown political geocoding level '{value}' (one of {', '.join(LEVELS)})"
        )
    return DCATDE + "politicalGeocoding/Level/" + code


def _iri(value: str, prefix: str, where: str, key: str) -> str:
    if not value.startswith(prefix):
        raise ConfigError(f"{where}: {key} must be an IRI starting with {prefix} (got '{value}')")
    return value


def organizations(city: City) -> dict[str, Organization]:
    """The city's organisations by CKAN name: the default one and [organizations.*]."""
    raw = city_file(city)
    tables = {city.organization["name"]: city.organization}
    for name, table in raw.get("organizations", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{city.path}: [organizations.{name}] must be a table")
        tables[name] = {**table, "name": name}
    result = {}
    for name, table in tables.items():
        kind = table.get("publisher_type", "LocalAuthority")
        if kind not in ADMS_PUBLISHER_TYPES:
            raise ConfigError(
                f"{city.path}: organisation '{name}': publisher_type '{kind}' is not an ADMS "
                f"publisher type ({', '.join(sorted(ADMS_PUBLISHER_TYPES))})"
            )
        title = table.get("title", name)
        result[name] = Organization(
            name=name, title=title, description=table.get("description", ""),
            kind=table.get("kind", ""), url=table.get("url", ""), email=table.get("email", ""),
            publisher_name=table.get("publisher_name", title),
            publisher_uri=table.get("publisher_uri", ""), publisher_type=kind,
        )  # fmt: skip
    return result


def groups(city: City, themes: list[str], where: str) -> tuple[Group, ...]:
    """The CKAN groups of the dataset's EU themes ([groups] in the city file names them)."""
    configured = city_file(city).get("groups", {})
    result = []
    for value in themes:
        uri = theme_uri(value, where)
        code = uri.rsplit("/", 1)[1]
        table = configured.get(code, {})
        result.append(
            Group(table.get("name", code.lower()), table.get("title", THEMES[code]), uri)
        )
    return tuple(result)


def facts(dataset: Dataset, city: City) -> DcatFacts:
    """All DCAT-AP.de facts of one dataset; raises ConfigError naming file and key."""
    publish, defaults = dataset.publish, city.defaults
    raw = city_file(city)
    dcat = raw.get("dcat", {})
    where = str(dataset.definition_path)
    orgs = organizations(city)
    org_name = publish.get("organization", city.organization["name"])
    if org_name not in orgs:
        raise ConfigError(
            f"{where}: publish.organization '{org_name}' is not an organisation of "
            f"{city.path.name} (known: {', '.join(orgs)})"
        )
    license_id = publish.get("license_id", defaults.get("license_id", ""))
    if not license_id:
        raise ConfigError(f"{where}: no licence: set publish.license_id or defaults.license_id")
    city_where = str(city.path)
    geocoding = dcat.get("political_geocoding_uri") or (
        f"{DCATDE}politicalGeocoding/regionalKey/{city.regional_key}" if city.regional_key else ""
    )
    geocodings = [geocoding] if isinstance(geocoding, str) else list(geocoding)
    contributor = dcat.get("contributor_id", "")
    contact = {
        "name": publish.get("contact_name", defaults.get("maintainer", "")),
        "email": publish.get("contact_email", defaults.get("maintainer_email", "")),
        "url": publish.get("contact_url", defaults.get("contact_url", "")),
    }
    originator = publish.get("originator", {})
    if originator and not isinstance(originator, dict):
        raise ConfigError(f"{where}: publish.originator must be a table {{ name, url }}")
    frequency = publish.get("frequency", "")
    return DcatFacts(
        organization=orgs[org_name],
        groups=groups(city, list(publish.get("themes", [])), where),
        license_id=license_id,
        license_uri=license_uri(license_id, where),
        attribution=publish.get("attribution", defaults.get("attribution", "")),
        frequency=frequency_uri(frequency, where) if frequency else "",
        language=_language(publish.get("language", defaults.get("language", "de"))),
        contributor_id=(
            _iri(contributor, DCATDE + "contributors/", city_where, "dcat.contributor_id")
            if contributor else ""
        ),
        political_geocoding_uri=tuple(
            _iri(g, DCATDE + "politicalGeocoding/", city_where, "dcat.political_geocoding_uri")
            for g in geocodings if g
        ),
        political_geocoding_level_uri=level_uri(dcat["political_geocoding_level"], city_where)
        if dcat.get("political_geocoding_level") else "",
        geocoding_description=dcat.get("geocoding_description", city.name),
        contact={k: v for k, v in contact.items() if v},
        originator={k: v for k, v in originator.items() if k in ("name", "url") and v},
    )


# ISO 639-1 codes officers write -> EU language table codes.
_LANGUAGES = {"de": "DEU", "en": "ENG", "fr": "FRA", "pl": "POL", "cs": "CES"}


def _language(value: str) -> str:
    return language_uri(_LANGUAGES.get(value.strip().lower(), value))
