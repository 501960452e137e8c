"""A thin client for the CKAN action API: retries on 5xx and connection errors, one-line
errors, no token in any message, and a count of write calls (a no-op run makes none)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from odp.errors import PublishError
from odp.spec import City

READ_ACTIONS = frozenset(
    {"status_show", "package_show", "organization_show", "group_show", "datastore_search"}
)
USER_AGENT = "odp/0.1 (city open-data pipelines)"


def _remote_ckan(url: str, token: str) -> Any:
    """ckanapi's RemoteCKAN, remembering the HTTP status of the last response."""
    from ckanapi import RemoteCKAN

    class StatusRemoteCKAN(RemoteCKAN):
        last_status: int | None = None

        def _request_fn(self, url, data, headers, files, requests_kwargs):  # type: ignore[no-untyped-def]
            self.last_status = None
            status, text = super()._request_fn(url, data, headers, files, requests_kwargs)
            self.last_status = status
            return status, text

    return StatusRemoteCKAN(url, apikey=token, user_agent=USER_AGENT)


class Portal:
    def __init__(self, city: City, attempts: int = 4, backoff: float = 0.5) -> None:
        token = city.api_token()
        if not token:
            raise PublishError(
                f"no CKAN API token: set {city.token_env} or {city.token_env}_FILE "
                f"(local portal: run `odp portal start`)"
            )
        self.url = city.portal_url
        self._ckan = _remote_ckan(self.url, token)
        self.attempts = attempts
        self.backoff = backoff
        self.writes = 0

    def call(self, action: str, upload: Path | None = None, **data: Any) -> Any:
        """Call an action; `upload` is a file sent as the resource's upload (reopened per try)."""
        from ckanapi import errors

        if action not in READ_ACTIONS:
            self.writes += 1
        for attempt in range(1, self.attempts + 1):
            try:
                if upload is None:
                    return self._ckan.call_action(action, data, requests_kwargs={"timeout": 120})
                with upload.open("rb") as fh:
                    files = {"upload": (upload.name, fh)}
                    return self._ckan.call_action(
                        action, data, files=files, requests_kwargs={"timeout": 600}
                    )
            except (errors.NotFound, errors.ValidationError):
                raise
            except errors.NotAuthorized:
                raise PublishError(
                    f"CKAN at {self.url} refused '{action}': the API token is wrong or lacks "
                    "rights"
                ) from None
            except (errors.CKANAPIError, errors.ServerIncompatibleError, OSError) as exc:
                status = self._ckan.last_status
                retryable = status is None or status >= 500
                if not retryable or attempt == self.attempts:
                    reason = f"HTTP {status}" if status else type(exc).__name__
                    raise PublishError(
                        f"CKAN at {self.url} failed on '{action}' ({reason}, "
                        f"{attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def check(self) -> str:
        """CKAN's version; a clear error when the portal is down."""
        return self.call("status_show").get("ckan_version", "?")

    def show(self, action: str, id: str) -> dict[str, Any] | None:
        from ckanapi import errors

        try:
            return self.call(action, id=id)
        except errors.NotFound:
            return None
