"""The city file's [portal] strings may name environment variables (`${VAR:-default}`), so one
city file serves every machine: ODP_PORTAL_PORT alone points every command at the local portal
on that port, and the DataStore write URL file `odp portal start` writes is used only for the
portal the city file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from odp.errors import ConfigError
from odp.publish.datastore import write_url
from odp.spec import load_city
from tests.helpers import make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root, _ = make_project(tmp_path, [])
    for name in ("ODP_CKAN_URL", "ODP_PORTAL_PORT", "ODP_PORTAL_HOME",
                 "ODP_DATASTORE_WRITE_URL"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_the_portal_port_alone_points_the_city_at_that_portal(project, monkeypatch):
    assert load_city(project).portal_url == "http://127.0.0.1:5050"
    monkeypatch.setenv("ODP_PORTAL_PORT", "5999")
    assert load_city(project).portal_url == "http://127.0.0.1:5999"


def test_the_local_portals_files_follow_its_home(project, monkeypatch, tmp_path):
    home = tmp_path / "elsewhere"
    home.mkdir()
    (home / "datastore-write-url").write_text("postgresql://ckan:pw@127.0.0.1:55432/datastore\n")
    (home / "api-token").write_text("tok\n")
    monkeypatch.setenv("ODP_PORTAL_HOME", str(home))
    city = load_city(project)
    assert city.token_file == home / "api-token" and city.api_token() == "tok"
    assert write_url(city) == "postgresql://ckan:pw@127.0.0.1:55432/datastore"


def test_the_write_url_file_is_not_used_for_another_portal(project, monkeypatch, tmp_path):
    (tmp_path / "datastore-write-url").write_text("postgresql://local/datastore\n")
    monkeypatch.setenv("ODP_PORTAL_HOME", str(tmp_path))
    monkeypatch.setenv("ODP_CKAN_URL", "https://opendata.example.org")
    assert write_url(load_city(project)) is None
    theirs = "postgresql://db.example.org/datastore?sslmode=require"
    monkeypatch.setenv("ODP_DATASTORE_WRITE_URL", theirs)
    assert write_url(load_city(project)) == theirs


def test_an_unset_variable_without_default_names_file_and_key(project):
    city = project / "cities" / "dresden.toml"
    city.write_text(city.read_text().replace(
        'url = "http://127.0.0.1:${ODP_PORTAL_PORT:-5050}"', 'url = "${ODP_NO_SUCH_VARIABLE}"'))
    with pytest.raises(ConfigError, match=r"dresden\.toml.*\[portal\] url.*ODP_NO_SUCH_VARIABLE"):
        load_city(project)
