"""Fixtures for integration tests against the local CKAN portal (`odp_dev.portal`).

`portal` starts the stack once per test session, installing it on first use (about a minute
on a fresh machine, a few seconds after `python -m odp_dev.portal stop`, well under a second when
it already runs). It deliberately does NOT stop the portal at the end: other test sessions and
developers reuse the running portal. Stop it by hand with `python -m odp_dev.portal stop`.

`leaves_the_portal_clean` (every session, also when tests failed): the tests publish into
organisations of the session's own (`tests.helpers.make_project`); at the end of the session
those organisations are purged with every dataset in them, and the session fails if any of its
datasets or organisations is still there. At the start it purges test organisations of sessions
killed before they could clean up (older than `helpers.STALE_AFTER`).
"""

from __future__ import annotations

from collections.abc import Iterator

import ckanapi
import pytest

from odp_dev.portal import stack
from tests import helpers


@pytest.fixture(scope="session")
def portal() -> stack.PortalInfo:
    """The running local portal (started, and installed if needed; never stopped here)."""
    return stack.start()


@pytest.fixture(scope="session")
def ckan(portal: stack.PortalInfo) -> ckanapi.RemoteCKAN:
    """An action-API client authenticated as the sysadmin `odp-admin`."""
    return ckanapi.RemoteCKAN(portal.url, apikey=portal.token())


def _admin_client() -> ckanapi.RemoteCKAN | None:
    """A sysadmin client of the local portal if it runs (no start: nothing to clean then)."""
    state = stack.status()
    if not (state["installed"] and state["services"]["ckan"]["running"]):
        return None
    info = stack.PortalInfo(url=state["url"], token_file=stack.portal_home() / "api-token",
                            home=stack.portal_home())
    return ckanapi.RemoteCKAN(info.url, apikey=info.token())


@pytest.fixture(scope="session", autouse=True)
def leaves_the_portal_clean() -> Iterator[None]:
    client = _admin_client()
    if client is not None:
        for name in helpers.session_organisations(client, older_than=helpers.STALE_AFTER):
            helpers.purge_organisation(client, name)
    yield
    if not helpers.TAGS or (client := _admin_client()) is None:
        return
    for name in helpers.session_organisations(client):
        helpers.purge_organisation(client, name)
    left = helpers.leftovers(client)
    assert not left, f"test datasets or organisations left on the portal: {', '.join(left)}"
