"""A city file whose URLs hold credentials in their userinfo (`http://user:password@host`) is
refused when it is read — the portal URL (also when it comes from ${VAR} or ODP_CKAN_URL), an
address register's OGC API URL, an organisation's web page, any URL-valued key — with a one-line
ConfigError (exit 2) naming the file and the key, and the password not in the message. The same
holds for the tables of a pipeline definition outside `[source]` (e.g. publish.source_url, which
is published on the portal); `[source]` has its own check (test_source_url_userinfo.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from odp.errors import ConfigError
from odp.spec import City, load_dataset
from tests.helpers import REPO

SECRET = "S3CRETPW"


def _city(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "cities" / "dresden.toml").read_text()
    assert old in text, old
    path = tmp_path / "dresden.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        City.load(path, REPO)
    message = str(refused.value)
    assert SECRET not in message and "opendata:" not in message
    assert "\n" not in message and refused.value.exit_code == 2
    assert "carries credentials in the URL" in message and "token_env" in message
    return message


def test_a_portal_url_with_user_and_password_is_refused_naming_file_and_key(tmp_path):
    path = _city(tmp_path, 'url = "http://127.0.0.1:', f'url = "http://opendata:{SECRET}@127.0.0.1:')
    assert _refused(path).startswith(f"{path}: [portal] url: http://***@127.0.0.1:")


def test_a_portal_url_whose_userinfo_comes_from_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ODP_PORTAL_HOST", f"opendata:{SECRET}@127.0.0.1")
    path = _city(tmp_path, "http://127.0.0.1:", "http://${ODP_PORTAL_HOST}:")
    assert _refused(path).startswith(f"{path}: [portal] url: http://***@127.0.0.1:")


def test_a_portal_url_with_userinfo_in_odp_ckan_url_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("ODP_CKAN_URL", f"https://opendata:{SECRET}@portal.example")
    message = _refused(REPO / "cities" / "dresden.toml")
    assert message.startswith("environment: ODP_CKAN_URL: https://***@portal.example")


def test_a_reference_layer_url_with_userinfo_is_refused_naming_its_table(tmp_path):
    path = _city(tmp_path, 'path = "reference/dresden/addresses.csv"',
                 f'url = "https://gis:{SECRET}@geo.dresden.example/collections/addresses"')
    assert _refused(path).startswith(
        f"{path}: [reference_layers.addresses] url: https://***@geo.dresden.example/")


def test_a_url_with_userinfo_in_a_nested_list_is_refused_naming_its_place(tmp_path):
    path = _city(tmp_path, 'to = ["opendata@dresden.de"]',
                 f'to = ["opendata@dresden.de", "https://opendata:{SECRET}@hook.example/x"]')
    assert _refused(path).startswith(f"{path}: [alerts.email] to[1]: https://***@hook.example/x")


def test_an_organisation_web_page_with_a_user_name_is_refused(tmp_path):
    path = _city(tmp_path, 'url = "https://www.dresden.de/"',
                 f'url = "https://{SECRET}@www.dresden.de/"')
    assert _refused(path).startswith(f"{path}: [organization] url: https://***@www.dresden.de/")


@pytest.mark.parametrize("city", ["dresden", "leipzig"])
def test_the_shipped_city_files_pass_the_check_and_mail_addresses_are_no_userinfo(city):
    loaded = City.load(REPO / "cities" / f"{city}.toml", REPO)
    assert loaded.portal_url.startswith("http://127.0.0.1:")


def test_a_definitions_published_source_url_with_userinfo_is_refused(tmp_path):
    root = tmp_path / "project"
    for folder in ("pipelines", "schemas", "expectations"):
        (root / folder).mkdir(parents=True)
    name = "transit-stops-vvo"
    for folder, ext in (("schemas", "json"), ("expectations", "json")):
        shutil.copy(REPO / folder / f"{name}.{ext}", root / folder / f"{name}.{ext}")
    text = (REPO / "pipelines" / f"{name}.toml").read_text().replace(
        'source_url = "https://', f'source_url = "https://opendata:{SECRET}@', 1)
    (root / "pipelines" / f"{name}.toml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_dataset(name, root)
    message = str(refused.value)
    assert SECRET not in message and "\n" not in message
    assert message.startswith(f"{root / 'pipelines' / name}.toml: [publish] source_url: "
                              "https://***@github.com/kiliankoe/vvo/tree/master/stations "
                              "carries credentials in the URL")
