"""The licence the project declares is shipped (LICENSE: the GNU AGPL v3 text, unchanged) and
publiccode.yml describes the software by the publiccode.yml standard 0.4 (the keys it makes
mandatory, its vocabularies, the German description openCode's directory shows)."""

from __future__ import annotations

import datetime
import hashlib
import re
import tomllib
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

# SHA-256 of the GNU AGPL v3 text as the FSF publishes it (https://www.gnu.org/licenses/agpl-3.0.txt).
AGPL_3_SHA256 = "0d96a4ff68ad6d4b6f1f30f713b18d5184912ba8dd389f86aa7710db079abcb0"
# Vocabularies of the standard (docs/standard/schema.core.rst, categories-list.rst, scope-list.rst).
PLATFORMS = {"web", "windows", "mac", "linux", "ios", "android"}
STATUSES = {"concept", "development", "beta", "stable", "obsolete"}
SOFTWARE_TYPES = {"standalone/mobile", "standalone/iot", "standalone/desktop", "standalone/web",
                  "standalone/backend", "standalone/other", "addon", "library",
                  "configurationFiles"}
CATEGORIES = {"data-analytics", "data-collection", "data-visualization",
              "geographic-information-systems", "workflow-management", "it-development"}
SCOPES = {"local-authorities", "environment", "transportation", "infrastructures", "society"}
MAINTENANCE = {"internal", "contract", "community", "none"}


@pytest.fixture(scope="module")
def publiccode() -> dict[str, Any]:
    return yaml.safe_load((REPO / "publiccode.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_is_the_unchanged_agpl_3_text_the_project_declares(project) -> None:
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == AGPL_3_SHA256
    assert text.startswith(b"                    GNU AFFERO GENERAL PUBLIC LICENSE\n"
                           b"                       Version 3, 19 November 2007\n")
    assert project["license"] == "AGPL-3.0-or-later"


def test_publiccode_has_every_mandatory_key_of_version_0_4(publiccode, project) -> None:
    assert publiccode["publiccodeYmlVersion"] == "0.4"
    assert publiccode["name"] == project["name"]
    assert re.fullmatch(r"https://\S+", publiccode["url"])
    assert set(publiccode["platforms"]) <= PLATFORMS and publiccode["platforms"]
    assert publiccode["developmentStatus"] in STATUSES
    assert publiccode["softwareType"] in SOFTWARE_TYPES
    assert publiccode["legal"]["license"] == project["license"]
    assert publiccode["maintenance"]["type"] in MAINTENANCE
    if publiccode["maintenance"]["type"] in ("internal", "community"):
        assert all(c["name"] for c in publiccode["maintenance"]["contacts"])
    localisation = publiccode["localisation"]
    assert isinstance(localisation["localisationReady"], bool)
    assert set(localisation["availableLanguages"]) == {"de", "en"}


def test_publiccode_values_come_from_the_standards_vocabularies(publiccode, project) -> None:
    assert set(publiccode["categories"]) <= CATEGORIES
    assert publiccode["intendedAudience"]["countries"] == ["de"]
    assert set(publiccode["intendedAudience"]["scope"]) <= SCOPES
    assert publiccode["softwareVersion"] == project["version"]
    datetime.date.fromisoformat(publiccode["releaseDate"])  # YYYY-MM-DD, as the standard asks
    for dependency in publiccode["dependsOn"]["open"]:
        assert dependency["name"]


@pytest.mark.parametrize("language", ["de", "en"])
def test_publiccode_describes_the_software_in_german_and_english(publiccode, language) -> None:
    text = publiccode["description"][language]
    assert 0 < len(text["shortDescription"]) <= 150
    assert 150 <= len(text["longDescription"]) <= 10_000
    assert text["features"] and all(isinstance(f, str) and f for f in text["features"])
