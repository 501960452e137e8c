"""Fixtures for integration tests against the local CKAN portal (`odp.portal`).

`portal` starts the stack once per test session, installing it on first use (about a minute
on a fresh machine, a few seconds after `python -m odp.portal stop`, well under a second when
it already runs). It deliberately does NOT stop the portal at the end: other test sessions and
developers reuse the running portal. Stop it by hand with `python -m odp.portal stop`.
"""

from __future__ import annotations

import ckanapi
import pytest

from odp.portal import stack


@pytest.fixture(scope="session")
def portal() -> stack.PortalInfo:
    """The running local portal (started, and installed if needed; never stopped here)."""
    return stack.start()


@pytest.fixture(scope="session")
def ckan(portal: stack.PortalInfo) -> ckanapi.RemoteCKAN:
    """An action-API client authenticated as the sysadmin `odp-admin`."""
    return ckanapi.RemoteCKAN(portal.url, apikey=portal.token())
