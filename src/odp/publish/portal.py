"""A thin client for the CKAN action API: retries on 5xx and connection errors, one-line
errors, no token in any message, and a count of write calls (a no-op run makes none).

Errors by class (odp.errors): the token refused (NotAuthorized) → PublishError; CKAN refusing
what was sent (ValidationError) → CkanValidationError, or NameConflictError when the name is
taken — one line naming the action, the dataset and CKAN's reason per field. Both are also
ckanapi's ValidationError, so callers that inspect CKAN's refusal keep working.

Transport: the token travels only over https://, or plain http:// to this machine (the local
portal). A remote http:// portal is refused unless `[portal] allow_http = true` (or
ODP_CKAN_ALLOW_HTTP=1) overrides it for a network protected otherwise; each run logs that.

Authority (`may_update`): before odp writes a DataStore table directly in its database (the
COPY path, which needs no token), the token's right to update that resource is checked by
CKAN itself: `datastore_upsert` with no records and `dry_run` — the same authorisation as a
real write (`resource_update` on the dataset), the transaction rolled back, nothing written.

Safe to call from several threads (the tuned DataStore load sends batches in parallel): each
thread gets its own HTTP session. `parallel_limit` is how many requests may be in flight: the
configured number (ODP_CKAN_PARALLEL, default 4), capped by ckanapi's politeness limit for
hosts other than this machine (CKANAPI_PARALLEL_LIMIT, default 3; CKANAPI_MY_SITES lifts it).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any

from odp.errors import CkanValidationError, ConfigError, NameConflictError, PublishError, one_line
from odp.hosts import on_this_machine
from odp.spec import City

READ_ACTIONS = frozenset(
    {"status_show", "package_show", "organization_show", "group_show", "datastore_search"}
)
USER_AGENT = "odp/0.1 (city open-data pipelines)"
ALLOW_HTTP_ENV = "ODP_CKAN_ALLOW_HTTP"
# CKAN's words for a name that is taken (English, German); else the name is looked up
_TAKEN = ("already in use", "already exists", "bereits vergeben", "bereits verwendet")
# Actions that create an object: when the answer is lost (5xx or a broken connection, maybe
# after CKAN committed), the object is looked up before the request is sent again.
CREATE_ACTIONS = frozenset({"package_create", "resource_create", "organization_create",
                            "group_create", "datastore_create"})


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


def _polite_limit(url: str) -> int:
    """ckanapi's cap on parallel requests to a portal that is not one of "my sites" (this
    machine, or CKANAPI_MY_SITES); computed here because ckanapi's own check compares a parsed
    URL object with host names and so caps every host."""
    from urllib.parse import urlsplit

    from ckanapi import remoteckan

    host = urlsplit(url).hostname or ""
    if host in remoteckan.MY_SITES or f"[{host}]" in remoteckan.MY_SITES:
        return 1 << 16
    return int(remoteckan.PARALLEL_LIMIT)


def _post_json(client: Any, action: str, body: bytes) -> Any:
    """POST a pre-encoded JSON body through ckanapi's session and decode like call_action."""
    from ckanapi.common import prepare_action, reverse_apicontroller_action

    path, _, headers = prepare_action(action, None, client.apikey, base_url=client.base_url)
    headers["User-Agent"] = client.user_agent
    url = client.address.rstrip("/") + "/" + path
    if client.session is None:
        import requests

        client.session = requests.Session()
    status, text = client._request_fn(url, body, headers, None, {"timeout": 300})
    return reverse_apicontroller_action(url, status, text)


def check_transport(url: str, allow_http: bool) -> None:
    """The portal URL must be https:// unless it is this machine; `allow_http` overrides (a
    network protected otherwise), with a warning in the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" or on_this_machine(parts.hostname):
        return
    if parts.scheme != "http":
        raise ConfigError(f"portal URL {url}: use https://")
    if not allow_http:
        raise ConfigError(f"portal URL {url}: the API token would travel unencrypted; use "
                          f"https:// (or set [portal] allow_http = true / {ALLOW_HTTP_ENV}=1 "
                          "when the network is protected otherwise)")
    import logging

    logging.getLogger("odp").warning(
        f"portal {url}: the API token is sent over plain http:// (allow_http is set)",
        extra={"event": "insecure-portal"})


def _allow_http(city: City) -> bool:
    env = os.environ.get(ALLOW_HTTP_ENV)
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes")
    return city.portal.get("allow_http") is True


def _refusal(action: str, data: dict[str, Any], exc: Any, taken: bool = False) -> Exception:
    """CKAN's ValidationError as one line, classified: a taken name (`taken`, or CKAN's words
    for it) or another refusal. The error is both ours and ckanapi's ValidationError (with
    its `error_dict`)."""
    errors = exc.error_dict if isinstance(getattr(exc, "error_dict", None), dict) else {}
    reasons = []
    for field, problem in errors.items():
        if field.startswith("__"):
            continue
        text = "; ".join(map(str, problem)) if isinstance(problem, list) else str(problem)
        reasons.append(f"{field}: {one_line(text, 200)}")
    what = data.get("name") or data.get("id") or data.get("resource_id") or ""
    subject = f" for {what}" if what else ""
    message = f"CKAN refused '{action}'{subject}: {'; '.join(reasons) or one_line(str(exc))}"
    taken = "name" in errors and (taken or any(word in str(errors["name"]).lower()
                                               for word in _TAKEN))
    base = NameConflictError if taken else CkanValidationError
    if taken:
        message += " (the name is taken: a deleted dataset still holding it is purged by an " \
                   "admin; else choose another name)"
    refusal = _both(base)(message)
    refusal.error_dict = errors
    return refusal


@functools.cache
def _both(base: type[CkanValidationError]) -> type[Exception]:
    """`base` that is also ckanapi's ValidationError (its message: ours, one line)."""
    from ckanapi.errors import ValidationError

    return type(base.__name__, (base, ValidationError), {"__str__": base.__str__,
                                                         "__module__": __name__})


class Portal:
    def __init__(self, city: City, attempts: int = 4, backoff: float = 0.5) -> None:
        check_transport(city.portal_url, _allow_http(city))
        token = city.api_token()
        if not token:
            raise PublishError(
                f"no CKAN API token: set {city.token_env} or {city.token_env}_FILE "
                f"(local portal: run `odp portal start`)"
            )
        self.url = city.portal_url
        self._token = token
        self._local = threading.local()
        self._lock = threading.Lock()
        self.attempts = attempts
        self.backoff = backoff
        self.writes = 0
        wanted = int(os.environ.get("ODP_CKAN_PARALLEL") or city.portal.get("parallel") or 4)
        self.parallel_limit = max(1, min(wanted, _polite_limit(self.url)))

    def _client(self) -> Any:
        client = getattr(self._local, "ckan", None)
        if client is None:
            client = self._local.ckan = _remote_ckan(self.url, self._token)
        return client

    def call(
        self, action: str, upload: Path | None = None, body: bytes | None = None, **data: Any
    ) -> Any:
        """Call an action; `upload` is a file sent as the resource's upload (reopened per try);
        `body` is an already JSON-encoded request (large DataStore batches, encoded once)."""
        from ckanapi import errors

        if action not in READ_ACTIONS and not data.get("dry_run"):
            with self._lock:
                self.writes += 1
        client = self._client()
        for attempt in range(1, self.attempts + 1):
            try:
                if body is not None:
                    return _post_json(client, action, body)
                if upload is None:
                    return client.call_action(action, data, requests_kwargs={"timeout": 120})
                with upload.open("rb") as fh:
                    files = {"upload": (upload.name, fh)}
                    return client.call_action(
                        action, data, files=files, requests_kwargs={"timeout": 600}
                    )
            except errors.NotFound:
                raise
            except errors.ValidationError as exc:
                raise _refusal(action, data, exc, self._name_taken(action, data, exc)) from None
            except errors.NotAuthorized:
                raise PublishError(
                    f"CKAN at {self.url} refused '{action}': the API token is wrong or lacks "
                    "rights"
                ) from None
            except (errors.CKANAPIError, errors.ServerIncompatibleError, OSError) as exc:
                status = client.last_status
                retryable = status is None or status >= 500
                if retryable and action in CREATE_ACTIONS and body is None:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    found = self._created(action, data, upload)
                    if found is not None:
                        return found
                    if attempt < self.attempts:
                        continue
                if not retryable or attempt == self.attempts:
                    reason = f"HTTP {status}" if status else type(exc).__name__
                    raise PublishError(
                        f"CKAN at {self.url} failed on '{action}' ({reason}, "
                        f"{attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _created(self, action: str, data: dict[str, Any], upload: Path | None) -> Any:
        """What a create whose answer was lost left behind, or None (then it is sent again):
        a package, organisation or group by name; a resource by package and `odp_role`; for
        a `datastore_create` that creates its resource, that resource (its table is then
        created by id: `datastore_create` on an existing resource is idempotent)."""
        try:
            if action in ("package_create", "organization_create", "group_create"):
                if not data.get("name"):
                    return None
                return self.show(action.replace("_create", "_show"), data["name"])
            if action == "resource_create":
                return self._resource(data.get("package_id"), data.get("odp_role"))
            if action == "datastore_create" and isinstance(data.get("resource"), dict):
                spec = data["resource"]
                resource = self._resource(spec.get("package_id"), spec.get("odp_role"))
                if resource is None:
                    return None
                rest = {k: v for k, v in data.items() if k != "resource"}
                return self.call("datastore_create", resource_id=resource["id"], **rest)
        except (PublishError, OSError):
            return None  # the portal is still not answering: the create is retried as it was
        return None

    def _resource(self, package_id: str | None, role: str | None) -> dict[str, Any] | None:
        if not package_id or not role:
            return None
        package = self.show("package_show", package_id) or {}
        return next((r for r in package.get("resources", []) if r.get("odp_role") == role),
                    None)

    def _name_taken(self, action: str, data: dict[str, Any], exc: Any) -> bool:
        """Whether a create refused for its `name` failed because an object holds the name
        (asked of CKAN: its messages are translated)."""
        if (not action.endswith("_create") or not data.get("name")
                or "name" not in (getattr(exc, "error_dict", None) or {})):
            return False
        show = action.replace("_create", "_show")
        if show not in READ_ACTIONS:
            return False
        try:
            return self.show(show, str(data["name"])) is not None
        except PublishError:  # not allowed to see it (a private or deleted dataset): it exists
            return True

    def may_update(self, resource_id: str) -> None:
        """Raise PublishError unless the token may write the resource's DataStore table (and
        so update its dataset): asked of CKAN without writing (see the module docstring)."""
        from ckanapi import errors

        try:
            self.call("datastore_upsert", resource_id=resource_id, records=[], force=True,
                      method="upsert", dry_run=True, calculate_record_count=False)
        except PublishError as exc:
            raise PublishError(f"{exc}; nothing written to the DataStore table "
                               f"{resource_id}") from None
        except errors.NotFound:
            raise PublishError(f"CKAN at {self.url} does not know the DataStore table "
                               f"{resource_id}; nothing written") from None

    def check(self) -> str:
        """CKAN's version; a clear error when the portal is down."""
        return self.call("status_show").get("ckan_version", "?")

    def show(self, action: str, id: str) -> dict[str, Any] | None:
        from ckanapi import errors

        try:
            return self.call(action, id=id)
        except errors.NotFound:
            return None
