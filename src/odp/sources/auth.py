"""Credentials of an HTTP source, read from the environment or a secrets file when a request is
made — never from the dataset's files, never in a URL the project prints, logs or stores.

    [source.auth]                     # a header (an API key, or "Authorization" + prefix)
    header = "X-API-Key"
    value_env = "ODP_VVO_KEY"         # or value_file = "/run/secrets/vvo-key"
    prefix = ""                       # e.g. "Bearer " for header = "Authorization"

    [source.auth]                     # HTTP basic authentication
    basic_user = "opendata"           # or basic_user_env / basic_user_file
    basic_password_env = "ODP_WFS_PASSWORD"   # or basic_password_file

    [source.auth]                     # a query parameter, added to each request only
    query_param = "access_token"
    value_env = "ODP_SENSOR_TOKEN"

Every value read is added to the log redactor, so it is masked wherever it would appear. The
credentials go only to the source's own origin (scheme, host, port): a redirect to another
origin is followed without them. Over plain http:// they go only to this machine, unless
`allow_http = true` says the transport is known to be protected otherwise (logged).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from odp.errors import ConfigError
from odp.hosts import on_this_machine

log = logging.getLogger("odp.sources")

_SECRET_KEYS = ("value", "basic_user", "basic_password")
_KEYS = frozenset({"header", "prefix", "query_param", "allow_http", "basic_user",
                   *(f"{k}_{how}" for k in _SECRET_KEYS for how in ("env", "file"))})


@dataclass(frozen=True)
class Credentials:
    """What one request carries: extra headers, extra query parameters, basic auth."""

    headers: dict[str, str]
    params: dict[str, str]
    basic: tuple[str, str] | None = None


@dataclass(frozen=True)
class SourceAuth:
    """A source's `[source.auth]` table: where its credentials are, not the credentials."""

    table: tuple[tuple[str, Any], ...]  # the table's items (hashable, no secret values)
    where: str = "[source.auth]"

    @classmethod
    def from_source(cls, source: dict[str, Any], where: str = "") -> SourceAuth | None:
        """The `auth` table of a `[source]` table (None: the source needs no credentials);
        `where` names the file in messages."""
        raw = source.get("auth")
        if raw is None:
            return None
        here = f"{where}: [source.auth]" if where else "[source.auth]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{here} must be a table")
        auth = cls(tuple(sorted(raw.items())), here)
        auth.check()
        return auth

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.table).get(key, default)

    def check(self) -> None:
        """One kind of credential, named by where it is read; a secret written into the file
        itself is refused."""
        keys = {k for k, _ in self.table}
        for secret in ("value", "basic_password", "password", "token"):
            if secret in keys:
                raise ConfigError(f"{self.where} {secret}: secrets are read from the environment "
                                  f"or a file only: use {secret.replace('token', 'value')}_env "
                                  f"or {secret.replace('token', 'value')}_file")
        if unknown := sorted(keys - _KEYS):
            raise ConfigError(f"{self.where} unknown key '{unknown[0]}' "
                              f"(known: {', '.join(sorted(_KEYS))})")
        kinds = [bool(self.get("header")), bool(self.get("query_param")),
                 any(k.startswith("basic_") for k in keys)]
        if sum(kinds) != 1:
            raise ConfigError(f"{self.where} needs exactly one of header, query_param or "
                              "basic_user/basic_password_env")
        needed = ("basic_password",) if kinds[2] else ("value",)
        for name in needed:
            if not (self.get(f"{name}_env") or self.get(f"{name}_file")):
                raise ConfigError(f"{self.where} needs {name}_env or {name}_file")

    def _secret(self, name: str, dataset: str) -> str:
        """The value of `name` from its environment variable or file (stripped)."""
        if env := self.get(f"{name}_env"):
            value = os.environ.get(str(env), "").strip()
            if not value:
                raise ConfigError(f"{dataset}: {self.where} {name}_env: the environment "
                                  f"variable {env} is not set")
        elif file := self.get(f"{name}_file"):
            try:
                value = Path(str(file)).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{dataset}: {self.where} {name}_file: cannot read {file} "
                                  f"({exc.strerror or type(exc).__name__})") from None
        else:
            value = str(self.get(name, "")).strip()  # basic_user may be plain
        if not value:
            raise ConfigError(f"{dataset}: {self.where} {name}: empty")
        if name != "basic_user":
            from odp.runs.logs import redactor

            redactor().add(value)
        return value

    def credentials(self, dataset: str, url: str) -> Credentials:
        """The credentials for a request to `url` (its origin is checked for the transport)."""
        self.check_transport(dataset, url)
        if header := self.get("header"):
            value = str(self.get("prefix", "")) + self._secret("value", dataset)
            return Credentials({str(header): value}, {})
        if param := self.get("query_param"):
            return Credentials({}, {str(param): self._secret("value", dataset)})
        user = self._secret("basic_user", dataset)
        return Credentials({}, {}, (user, self._secret("basic_password", dataset)))

    def check_transport(self, dataset: str, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" or on_this_machine(parts.hostname):
            return
        if self.get("allow_http") is True:
            log.warning("%s: credentials sent over plain %s:// to %s (allow_http = true)",
                        dataset, parts.scheme, parts.hostname)
            return
        raise ConfigError(f"{dataset}: {self.where}: credentials are sent over https:// only, "
                          f"not to {parts.scheme}://{parts.hostname} (allow_http = true only "
                          "when the network is protected otherwise)")


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (where credentials may follow)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)
