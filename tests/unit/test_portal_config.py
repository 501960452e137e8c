"""Pure helpers of the local portal: ckan.ini editing, ports and home from the environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from odp.portal import ckanconf, settings, stack

INI = """[DEFAULT]
debug = false

[app:main]
use = egg:ckan
#solr_url = http://127.0.0.1:8983/solr
ckan.plugins = activity

[loggers]
keys = root
"""


def test_set_options_replaces_active_lines_and_appends_missing() -> None:
    out = ckanconf.set_options(INI, {"ckan.plugins": "activity datastore", "solr_url": "http://x"})
    assert ckanconf.get_option(out, "ckan.plugins") == "activity datastore"
    assert ckanconf.get_option(out, "solr_url") == "http://x"
    assert "#solr_url = http://127.0.0.1:8983/solr" in out  # comments stay
    assert out.index("solr_url = http://x") < out.index("[loggers]")
    assert ckanconf.get_option(out, "debug", section="DEFAULT") == "false"


def test_set_options_is_idempotent() -> None:
    opts = {"ckan.plugins": "activity datastore", "solr_url": "http://x"}
    once = ckanconf.set_options(INI, opts)
    assert ckanconf.set_options(once, opts) == once


def test_escape_doubles_percent_for_interpolation() -> None:
    assert ckanconf.escape("pa%ss") == "pa%%ss"


def test_ports_default_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODP_PORTAL_PORT", raising=False)
    assert settings.ports().ckan == 5050
    monkeypatch.setenv("ODP_PORTAL_PG_PORT", "6543")
    assert settings.ports().postgresql == 6543
    monkeypatch.setenv("ODP_PORTAL_PORT", "nope")
    with pytest.raises(ValueError, match="ODP_PORTAL_PORT"):
        settings.ports()


def test_portal_home_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(settings.HOME_ENV, raising=False)
    assert stack.portal_home() == stack.project_root() / ".local" / "portal"
    assert (stack.project_root() / "pyproject.toml").is_file()
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path))
    assert stack.portal_home() == tmp_path.resolve()


def test_token_jti_reads_the_jwt_payload(tmp_path: Path) -> None:
    layout = stack._Layout(tmp_path)
    payload = base64.urlsafe_b64encode(json.dumps({"jti": "a_bc-123"}).encode()).rstrip(b"=")
    layout.token.write_text(f"e30.{payload.decode()}.sig\n")
    assert stack._token_jti(layout) == "a_bc-123"
    layout.token.write_text("garbage")
    assert stack._token_jti(layout) is None
