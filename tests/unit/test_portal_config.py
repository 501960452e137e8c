"""Pure helpers of the local portal: ckan.ini editing, ports and home from the environment,
the Solr core's files and command."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from odp_dev.portal import ckanconf, settings, solr, stack
from odp_dev.portal.procs import PortalError

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


CKAN_SCHEMA = """<?xml version="1.0" encoding="UTF-8" ?>
<schema name="ckan-2.12" version="1.6">
<types>
    <fieldType name="text" class="solr.TextField" positionIncrementGap="100">
        <analyzer type="index">
  <filter class="solr.SnowballPorterFilterFactory" language="English" protected="protwords.txt"/>
        </analyzer>
        <analyzer type="query">
  <filter class="solr.SnowballPorterFilterFactory" language="English" protected="protwords.txt"/>
        </analyzer>
    </fieldType>
</types>
<fields>
    <field name="index_id" type="string" indexed="true" stored="true" required="true" />
</fields>
<uniqueKey>index_id</uniqueKey>
</schema>
"""


def test_solr_schema_is_ckans_own_plus_the_four_bbox_fields_of_ckanext_spatial() -> None:
    out = solr.schema_xml(CKAN_SCHEMA)
    assert out.startswith(CKAN_SCHEMA.split("<types>")[0])  # name ckan-2.12 kept
    assert 'language="English"' not in out and out.count('language="German2"') == 2
    for name in ("minx", "maxx", "miny", "maxy"):
        line = f'<field name="{name}" type="float" indexed="true" stored="true" />'
        assert out.index(line) < out.index("</fields>")
    assert out.count("<field ") == 5


def test_solr_schema_without_a_fields_section_is_refused() -> None:
    with pytest.raises(PortalError, match="</fields>"):
        solr.schema_xml('<schema name="ckan-2.12"></schema>')
    with pytest.raises(PortalError, match="two English Snowball filters"):
        solr.schema_xml(CKAN_SCHEMA.replace('language="English"', 'language="French"'))


def test_solr_core_files_are_rewritten_only_when_they_differ(tmp_path: Path) -> None:
    assert solr.write_core(tmp_path, CKAN_SCHEMA) is True
    assert (tmp_path / "solr.xml").is_file()
    assert (tmp_path / "ckan" / "core.properties").read_text() == "name=ckan\n"
    conf = tmp_path / "ckan" / "conf"
    assert sorted(p.name for p in conf.iterdir()) == [
        "protwords.txt", "schema.xml", "solrconfig.xml", "synonyms.txt"
    ]  # fmt: skip
    assert solr.write_core(tmp_path, CKAN_SCHEMA) is False
    assert solr.write_core(tmp_path, CKAN_SCHEMA.replace("2.12", "2.13")) is True
    assert not solr.index_exists(tmp_path)


def test_solr_build_is_not_current_until_built(tmp_path: Path) -> None:
    build = solr.Build(tmp_path)
    assert build.dir == tmp_path / ".local" / "solr"
    assert not build.current()
    build.dir.mkdir(parents=True)
    build.marker.write_text('{"digest": "stale", "jars": []}')
    assert not build.current()


def test_solr_runs_the_launcher_with_a_small_heap_on_the_given_port(tmp_path: Path) -> None:
    cmd = solr.Build(tmp_path).command(59999, tmp_path / "home", tmp_path / "logs")
    assert f"-Xmx{settings.SOLR_HEAP}" in cmd
    assert cmd[-3:] == [solr.MAIN_CLASS, "59999", str(tmp_path / "home")]
    assert f"@{tmp_path / '.local' / 'solr' / 'classpath.args'}" in cmd
