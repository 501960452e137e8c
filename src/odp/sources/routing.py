"""Where a source URL is actually requested: live, or a replay server (or mirror) of the sources.

ODP_REPLAY_URL set → every remote URL is served by that server (`https://HOST/PATH` →
`REPLAY/HOST/PATH`); with ODP_REPLAY_HOSTS (`host:port,…`) also set (`odp run --replay auto`)
only the URLs of those hosts are, the others stay live. The engine only maps URLs: the server
itself (recorded responses for tests and demos) is not part of it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

REPLAY_URL_ENV = "ODP_REPLAY_URL"  # a replay server standing in for remote sources
REPLAY_HOSTS_ENV = "ODP_REPLAY_HOSTS"  # if set: only these hosts (comma-separated) replayed


def routed(url: str) -> str:
    """The URL actually requested: the replay server's when one is configured (and, with
    ODP_REPLAY_HOSTS, when the URL's host is one of those)."""
    replay = os.environ.get(REPLAY_URL_ENV)
    if not replay:
        return url
    hosts = os.environ.get(REPLAY_HOSTS_ENV)
    if hosts is not None and _host_port(url) not in {h.strip() for h in hosts.split(",")}:
        return url
    return replay_url(url, replay)


def replay_url(remote_url: str, server_url: str) -> str:
    """Map ``https://HOST/PATH?QUERY`` to ``SERVER_URL/HOST/PATH?QUERY`` (query kept): the
    layout any replay server or mirror of the sources answers under."""
    parts = urlsplit(remote_url)
    if not parts.netloc:
        raise ValueError(f"not an absolute URL: {remote_url!r}")
    mapped = f"{server_url.rstrip('/')}/{parts.netloc}{parts.path or '/'}"
    return f"{mapped}?{parts.query}" if parts.query else mapped


def _host_port(url: str) -> str:
    """`host:port` of a URL (the scheme's default port when none is given)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or ''}:{port or (443 if parts.scheme == 'https' else 80)}"
