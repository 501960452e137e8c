"""The DataStore's write database (ODP_DATASTORE_WRITE_URL, the city's datastore_write_url_env,
or the file datastore_write_url_file names) on another machine is used only over TLS:
`sslmode=require`, `verify-ca` or `verify-full` in the URL (or PGSSLMODE). Without it — libpq's
default `prefer` falls back to plain text — the run refuses with a one-line ConfigError (exit 2)
naming where the URL came from and the host, never the password. This machine (loopback, a
local socket) may stay plain, as the local portal's database does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from odp.errors import ConfigError
from odp.publish.datastore import WRITE_URL_ENV, check_write_transport, write_url
from odp.spec import City
from tests.helpers import REPO

PASSWORD = "DbS3cret"


@pytest.fixture
def city(monkeypatch) -> City:
    for name in (WRITE_URL_ENV, "PGSSLMODE", "PGHOST", "ODP_CKAN_URL"):
        monkeypatch.delenv(name, raising=False)
    return dataclasses.replace(City.load(REPO / "cities" / "dresden.toml", REPO),
                               write_url_file=None)


@pytest.mark.parametrize("url", [
    f"postgresql://ckan:{PASSWORD}@db.city.example:5432/datastore",
    f"postgresql://ckan:{PASSWORD}@db.city.example/datastore?sslmode=prefer",
    f"postgresql://ckan:{PASSWORD}@db.city.example/datastore?sslmode=allow",
    f"postgresql://ckan:{PASSWORD}@10.0.0.7/datastore?sslmode=disable",
    f"host=db.city.example dbname=datastore user=ckan password={PASSWORD}",
    f"postgresql://ckan:{PASSWORD}@127.0.0.1,db.city.example/datastore",
])
def test_a_remote_write_database_without_tls_is_refused_on_one_line_without_the_password(
        city, monkeypatch, url):
    monkeypatch.setenv(WRITE_URL_ENV, url)
    with pytest.raises(ConfigError) as refused:
        write_url(city)
    message = str(refused.value)
    assert message.startswith(f"DataStore write URL from {WRITE_URL_ENV}: the database at ")
    assert "sslmode=require" in message and "action API" in message
    assert PASSWORD not in message and "\n" not in message and refused.value.exit_code == 2


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_a_remote_write_database_with_tls_required_is_accepted(city, monkeypatch, mode):
    url = f"postgresql://ckan:{PASSWORD}@db.city.example:5432/datastore?sslmode={mode}"
    monkeypatch.setenv(WRITE_URL_ENV, url)
    assert write_url(city) == url


def test_pgsslmode_in_the_environment_counts_as_libpq_reads_it(city, monkeypatch):
    monkeypatch.setenv(WRITE_URL_ENV, "postgresql://ckan:pw@db.city.example/datastore")
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    assert write_url(city)


@pytest.mark.parametrize("url", [
    "postgresql://ckan:pw@127.0.0.1:55432/datastore",
    "postgresql://ckan:pw@localhost/datastore",
    "postgresql://ckan:pw@[::1]:5432/datastore",
    "postgresql://ckan:pw@127.0.0.2/datastore?sslmode=disable",
    "host=/var/run/postgresql dbname=datastore",
    "postgresql:///datastore",
])
def test_this_machine_may_be_reached_without_tls(url):
    check_write_transport(url, WRITE_URL_ENV)


def test_the_city_named_variable_and_the_file_are_checked_naming_where_the_url_came_from(
        city, monkeypatch, tmp_path: Path):
    remote = f"postgresql://ckan:{PASSWORD}@db.city.example/datastore"
    monkeypatch.setenv("CITY_DB_URL", remote)
    named = dataclasses.replace(city, portal={**city.portal,
                                              "datastore_write_url_env": "CITY_DB_URL"})
    with pytest.raises(ConfigError, match="^DataStore write URL from CITY_DB_URL: the database "
                                          "at db.city.example is reached with sslmode=prefer"):
        write_url(named)
    file = tmp_path / "datastore-write-url"
    file.write_text(remote + "\n")
    with pytest.raises(ConfigError, match=f"^DataStore write URL from {file}: "):
        write_url(dataclasses.replace(city, write_url_file=file))


def test_a_string_that_is_no_connection_url_is_refused_without_echoing_it(city, monkeypatch):
    monkeypatch.setenv(WRITE_URL_ENV, f"postgresql://ckan:{PASSWORD}@host:notaport/db x=")
    with pytest.raises(ConfigError) as refused:
        write_url(city)
    assert PASSWORD not in str(refused.value) and "not a PostgreSQL connection URL" in str(
        refused.value)


def test_the_local_portals_own_write_url_passes(city):
    file = REPO / ".local" / "portal" / "datastore-write-url"
    if not file.is_file():
        pytest.skip("the local portal has not been started here")
    assert write_url(dataclasses.replace(city, write_url_file=file))


def test_odp_portal_check_reports_the_refusal_as_a_missing_requirement(city, monkeypatch):
    from odp.portal_check import MISSING, _datastore_write

    monkeypatch.setenv(WRITE_URL_ENV, f"postgresql://ckan:{PASSWORD}@db.city.example/datastore")
    check = _datastore_write(city, {"datastore"})
    assert (check.requirement, check.state) == ("datastore_write", MISSING)
    assert "sslmode=require" in check.detail and PASSWORD not in check.detail
