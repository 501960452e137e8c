"""HTTP for every source type: retries with backoff (5xx, 429 honouring Retry-After), timeouts,
clear one-line errors, and routing to the replay server in tests and offline demos.

Routing: ODP_REPLAY_URL set → every remote URL is served by that replay server
(`https://HOST/PATH` → `REPLAY/HOST/PATH`). The client code is the production code either way.

Conditional GET (`get_bytes_if_changed`): the validators a server sent with a file (`ETag`,
`Last-Modified`) are kept per URL in the dataset's dlt state (`cache_validators`), so they are
kept only when the run's extract commits; the next run sends them as `If-None-Match` /
`If-Modified-Since` and a `304 Not Modified` means "unchanged": no body is transferred.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import dlt
import requests
from dlt.sources.helpers.requests import Client

from odp.errors import SourceError

NOT_MODIFIED = 304
VALIDATORS = "http_validators"  # key of the validators in dlt state

_downloaded: dict[str, int] = {}  # dataset → body bytes received since its counter was taken
_downloaded_lock = threading.Lock()


def take_downloaded(dataset: str) -> int:
    """Body bytes the dataset's sources received since the last call (and restart at 0)."""
    with _downloaded_lock:
        return _downloaded.pop(dataset, 0)


@dataclass(frozen=True)
class HttpSettings:
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_factor: float = 1.0
    max_retry_delay: float = 60.0

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> HttpSettings:
        """Per-dataset settings from the `[source]` table; env ODP_HTTP_* override (tests, ops)."""

        def pick(key: str, default: float) -> float:
            env = os.environ.get(f"ODP_HTTP_{key.upper()}")
            return float(env if env is not None else source.get(key, default))

        return cls(
            timeout=pick("timeout", cls.timeout),
            max_attempts=int(pick("max_attempts", cls.max_attempts)),
            backoff_factor=pick("backoff_factor", cls.backoff_factor),
            max_retry_delay=pick("max_retry_delay", cls.max_retry_delay),
        )


def routed(url: str) -> str:
    """The URL actually requested: the replay server's when one is configured."""
    replay = os.environ.get("ODP_REPLAY_URL")
    if not replay:
        return url
    from odp.replay import replay_url

    return replay_url(url, replay)


class SourceClient:
    """GET with retries; names the dataset and URL in every error."""

    def __init__(self, dataset: str, settings: HttpSettings) -> None:
        self.dataset = dataset
        self.settings = settings
        self._client = Client(
            request_timeout=settings.timeout,
            request_max_attempts=settings.max_attempts,
            request_backoff_factor=settings.backoff_factor,
            request_max_retry_delay=settings.max_retry_delay,
            respect_retry_after_header=True,
            raise_for_status=True,
        )

    def get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        target = routed(url)
        try:
            response = self._client.session.get(
                target, params=params, headers=headers, timeout=self.settings.timeout
            )
            with _downloaded_lock:
                _downloaded[self.dataset] = _downloaded.get(self.dataset, 0) + len(
                    response.content)
            return response
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise SourceError(
                f"{self.dataset}: {url} answered HTTP {status} "
                f"(after {self.settings.max_attempts} attempts)"
            ) from None
        except requests.Timeout:
            raise SourceError(
                f"{self.dataset}: {url} timed out after {self.settings.timeout:g} s "
                f"({self.settings.max_attempts} attempts)"
            ) from None
        except requests.RequestException as exc:
            raise SourceError(
                f"{self.dataset}: {url} unreachable ({type(exc).__name__}, "
                f"{self.settings.max_attempts} attempts)"
            ) from None

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(url, params)
        try:
            return response.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise SourceError(f"{self.dataset}: {url} sent malformed JSON ({exc})") from None

    def get_bytes(self, url: str) -> bytes:
        return self.get(url).content

    def get_bytes_if_changed(self, url: str, validators: MutableMapping[str, Any]) -> bytes | None:
        """GET `url` conditionally. `validators` maps URLs to the validators of their last 200
        (see `cache_validators`); only those of exactly this URL are sent. None on 304 Not
        Modified (validators kept); on 200 the body, and the server's validators replace the
        URL's (dropped when it sent none)."""
        known: dict[str, str] = dict(validators.get(url) or {})
        response = self.get(url, headers=_conditional_headers(known))
        if response.status_code == NOT_MODIFIED:
            if not known:
                raise SourceError(f"{self.dataset}: {url} answered 304 to an unconditional GET")
            return None
        fresh = {
            key: value
            for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))
            if (value := response.headers.get(header))
        }
        if fresh:
            validators[url] = fresh
        else:
            validators.pop(url, None)
        return response.content


def _conditional_headers(known: dict[str, str]) -> dict[str, str]:
    headers = {}
    if etag := known.get("etag"):
        headers["If-None-Match"] = etag
    if modified := known.get("last_modified"):
        headers["If-Modified-Since"] = modified
    return headers


def cache_validators(
    state: MutableMapping[str, Any], table: str, config: Any
) -> dict[str, dict[str, str]]:
    """The per-URL validators in a dataset's dlt state (resource or source state; changes are
    kept only when the run's extract commits). Emptied when the dataset's source configuration
    `config` changed or staging holds no rows of `table` (first run, staging removed): such a
    run downloads every file."""
    text = json.dumps(config, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    kept = state.setdefault(VALIDATORS, {})
    if kept.get("urls") and (kept.get("config") != digest or not staged_rows(table)):
        kept["urls"] = {}
    kept["config"] = digest
    return kept.setdefault("urls", {})  # type: ignore[no-any-return]


def staged_rows(table: str) -> bool:
    """Whether the running dlt pipeline's destination (the dataset's staging) has rows in
    `table`; call from inside a resource. No table, or staging unreadable: False (download)."""
    from dlt.destinations.exceptions import DatabaseException

    pipeline = dlt.current.pipeline()
    try:
        with pipeline.sql_client() as client:
            name = client.make_qualified_table_name(table)
            return bool(client.execute_sql(f"SELECT 1 FROM {name} LIMIT 1"))
    except DatabaseException:
        return False
