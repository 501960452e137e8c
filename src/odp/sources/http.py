"""HTTP for every source type: retries with backoff (5xx, 429 honouring Retry-After), timeouts,
clear one-line errors, and routing to the replay server in tests and offline demos.

Routing: ODP_REPLAY_URL set → every remote URL is served by that replay server
(`https://HOST/PATH` → `REPLAY/HOST/PATH`). The client code is the production code either way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import requests
from dlt.sources.helpers.requests import Client

from odp.errors import SourceError


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

    def get(self, url: str, params: dict[str, Any] | None = None) -> requests.Response:
        target = routed(url)
        try:
            return self._client.session.get(target, params=params, timeout=self.settings.timeout)
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
