"""Plain http:// to the portal, source credentials over plain http:// and an unencrypted
DataStore write connection are allowed for one kind of host only: this machine (`localhost`,
any loopback address). The three checks share that one rule (odp.hosts.on_this_machine), so a
host counts as this machine everywhere or nowhere — and a name that merely begins like a
loopback address never does."""

from __future__ import annotations

import pytest

from odp.errors import ConfigError
from odp.hosts import on_this_machine
from odp.publish.datastore import check_write_transport
from odp.publish.portal import check_transport
from odp.sources.auth import SourceAuth

THIS_MACHINE = ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.0.0.2",
                "127.255.255.254", "::1", "[::1]"]
ELSEWHERE = ["10.0.0.7", "192.168.1.20", "db.city.example", "127.0.0.1.example.org",
             "localhost.example.org", "128.0.0.1", "::2", "0.0.0.0", "", None]


def _url(host: str) -> str:
    return f"http://[{host.strip('[]')}]:8080/x" if ":" in host else f"http://{host}:8080/x"


def _auth(monkeypatch) -> SourceAuth:
    monkeypatch.setenv("ODP_TEST_KEY", "k3y")
    auth = SourceAuth.from_source({"auth": {"header": "X-API-Key", "value_env": "ODP_TEST_KEY"}})
    assert auth is not None
    return auth


@pytest.mark.parametrize("host", THIS_MACHINE)
def test_this_machine_may_be_reached_in_plain_text_by_every_check(monkeypatch, host):
    monkeypatch.delenv("PGSSLMODE", raising=False)
    assert on_this_machine(host)
    check_transport(_url(host), allow_http=False)
    assert _auth(monkeypatch).credentials("stops", _url(host)).headers == {"X-API-Key": "k3y"}
    check_write_transport(f"host={host.strip('[]')} dbname=datastore user=ckan password=p",
                          "the test")


@pytest.mark.parametrize("host", [h for h in ELSEWHERE if h])
def test_another_host_is_refused_plain_text_by_every_check(monkeypatch, host):
    monkeypatch.delenv("PGSSLMODE", raising=False)
    assert not on_this_machine(host)
    with pytest.raises(ConfigError, match="https://"):
        check_transport(_url(host), allow_http=False)
    with pytest.raises(ConfigError, match="https:// only"):
        _auth(monkeypatch).credentials("stops", _url(host))
    with pytest.raises(ConfigError, match="sslmode"):
        check_write_transport(f"host={host} dbname=datastore user=ckan password=p", "the test")


def test_no_host_is_not_this_machine():
    assert not on_this_machine(None) and not on_this_machine("")
