"""HTTP for every source type: retries with backoff (5xx, 429 honouring Retry-After), timeouts,
clear one-line errors, and routing to the replay server in tests and offline demos.

Routing: ODP_REPLAY_URL set → every remote URL is served by that replay server
(`https://HOST/PATH` → `REPLAY/HOST/PATH`); with ODP_REPLAY_HOSTS (`host:port,…`) also set
(`odp run --replay auto`) only the URLs of those hosts are, the others stay live. The client
code is the production code either way.

Credentials (`[source.auth]`, see odp.sources.auth): a header, basic auth or a query parameter
read from the environment or a secrets file at each request, sent to the source's own origin
only (a redirect elsewhere is followed without them), never part of a URL odp prints or keeps.

Conditional GET (`get_bytes_if_changed`): the validators a server sent with a file (`ETag`,
`Last-Modified`) are kept per URL in the dataset's dlt state (`cache_validators`; keyed by the
URL's SHA-256, so no URL — nor a credential in one — is stored in the state), so they are
kept only when the run's extract commits; the next run sends them as `If-None-Match` /
`If-Modified-Since` and a `304 Not Modified` means "unchanged": no body is transferred.
`download_if_changed` does the same with the body written to a file as it arrives, under the
same limits (a large CSV file, read from disk in parts by odp.sources.tabular).

Complete deliveries only: every body is streamed under an overall `deadline` (besides the
per-read `timeout`: a server dripping a byte every few seconds never trips a read timeout) and a
size cap `max_bytes` (checked against Content-Length before reading, and while reading). A body
sent with `Content-Encoding` (gzip, deflate …) is unpacked as it arrives, at most CHUNK bytes per
read, and held to the source's archive limits (`max_unpacked_bytes`, `max_ratio`, see
odp.sources.archives): 1 MB of gzip unpacking to 1 GB stops after a few MB. A body
shorter than its Content-Length is cut short: retried like a connection fault, then a one-line
SourceError. An HTML page answered with 200 where the caller expects data (`expect`) is refused
(see odp.sources.complete).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from http.client import IncompleteRead
from pathlib import Path
from typing import Any, BinaryIO

import dlt
import requests
from dlt.sources.helpers.requests import Client
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from odp.errors import SourceError
from odp.sources.archives import ArchiveLimits, check_unpacked
from odp.sources.auth import SourceAuth, same_origin
from odp.sources.complete import load_json, refuse_html
from odp.sources.local import is_local, local_response
from odp.sources.routing import routed

NOT_MODIFIED = 304
CHUNK = 1 << 16  # bytes asked per read; a read returns what has arrived (read1)
_START = 1 << 16  # of a body written to a file: the bytes kept to tell an HTML page
VALIDATORS = "http_validators"  # key of the validators in dlt state
MAX_REDIRECTS = 10  # followed by hand when credentials are sent (requests' own limit is 30)

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
    deadline: float = 300.0  # seconds for a whole request and its body (a dripping server)
    max_bytes: int = 512 * 1024 * 1024  # a larger body stops before memory (a CSV: disk) is spent
    auth: SourceAuth | None = None  # where the source's credentials are (odp.sources.auth)
    # a body with Content-Encoding: what it may unpack to, and its ratio (odp.sources.archives)
    unpacked: ArchiveLimits = ArchiveLimits()

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
            deadline=pick("deadline", cls.deadline),
            max_bytes=int(pick("max_bytes", cls.max_bytes)),
            auth=SourceAuth.from_source(source),
            unpacked=ArchiveLimits.from_source(source),
        )


class _BodyFault(Exception):
    """The connection failed while a body was read (cut short, reset, read timeout): retried."""


class SourceClient:
    """GET with retries, an overall deadline and a size cap; names the dataset and URL in every
    error."""

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
        expect: str | None = None,
        into: Path | None = None,
    ) -> requests.Response:
        """The response with its whole body read (`.content`, `.json()` work). `expect` names
        the format the caller parses ("CSV", "JSON", "XML" …): an HTML page instead is refused.
        `into`: the body is written to this file instead of held (`.content` is empty; a
        304's leaves the file empty)."""
        if is_local(url):  # a file of the project instead of a URL (odp.sources.local)
            response = local_response(self.dataset, url)
            if into is not None:
                into.write_bytes(response.content)
            return response
        started = time.monotonic()
        attempts = max(1, self.settings.max_attempts)
        for attempt in range(1, attempts + 1):
            response = self._open(url, params, headers, started)
            try:
                with into.open("wb") if into is not None else contextlib.nullcontext() as sink:
                    start, received = self._read_body(response, url, started, sink)
            except _BodyFault as fault:
                if attempt == attempts:
                    raise SourceError(f"{fault} ({attempt} attempts)") from None
                self._pause(attempt, url, started, response)
                continue
            finally:
                response.close()
            if expect and response.status_code != NOT_MODIFIED:
                refuse_html(start, response.headers.get("Content-Type"), expect,
                            f"{self.dataset}: {url}")
            with _downloaded_lock:
                _downloaded[self.dataset] = _downloaded.get(self.dataset, 0) + received
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, url: str, params: dict[str, Any] | None, headers: dict[str, str] | None,
              started: float) -> requests.Response:
        """Status line and headers (dlt's session retries 429, 5xx and connection errors)."""
        read_timeout = max(0.1, min(self.settings.timeout, self._left(started)))
        try:
            if self.settings.auth is None:
                return self._client.session.get(
                    routed(url), params=params, headers=headers, stream=True,
                    timeout=(self.settings.timeout, read_timeout),
                )
            return self._with_credentials(url, params, headers, (self.settings.timeout,
                                                                 read_timeout))
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

    def _with_credentials(self, url: str, params: dict[str, Any] | None,
                          headers: dict[str, str] | None, timeout: tuple[float, float]
                          ) -> requests.Response:
        """GET with the source's credentials; redirects followed by hand, the credentials
        only to the origin of `url`."""
        assert self.settings.auth is not None
        given = self.settings.auth.credentials(self.dataset, url)
        target, query = url, params
        for _hop in range(MAX_REDIRECTS + 1):
            mine = same_origin(target, url)
            response = self._client.session.get(
                routed(target), params={**(query or {}), **(given.params if mine else {})},
                headers={**(headers or {}), **(given.headers if mine else {})},
                auth=given.basic if mine else None, stream=True, timeout=timeout,
                allow_redirects=False)
            location = response.headers.get("Location")
            if not response.is_redirect or not location:
                return response
            response.close()
            from urllib.parse import urljoin

            target, query = urljoin(target, location), None
        raise SourceError(f"{self.dataset}: {url} redirected more than {MAX_REDIRECTS} times")

    def _read_body(self, response: requests.Response, url: str, started: float,
                   sink: BinaryIO | None = None) -> tuple[bytes, int]:
        """The whole body, read as it arrives, and its length; stops at the deadline or
        beyond max_bytes. `sink`: the body is written there, and only its first bytes
        (`_START`, for the HTML check) are returned."""
        where = f"{self.dataset}: {url}"
        declared = _content_length(response)
        limit = self.settings.max_bytes
        if declared is not None and declared > limit:
            raise SourceError(f"{where} announces {declared} bytes, more than max_bytes ({limit})")
        raw = response.raw
        read = getattr(raw, "read1", None) or raw.read  # read1: what has arrived, not CHUNK
        encoding = _content_encoding(response, raw)
        chunks: list[bytes] = []
        received = 0
        while True:
            try:
                chunk = read(CHUNK, decode_content=True)
            except (Urllib3Error, OSError) as exc:
                raise _BodyFault(self._broken(exc, where, raw, declared)) from None
            if not chunk:
                break
            if sink is None:
                chunks.append(chunk)
            else:
                sink.write(chunk)
                if received < _START:
                    chunks.append(chunk[:_START - received])
            received += len(chunk)
            if received > limit:
                raise SourceError(f"{where} sent more than max_bytes ({limit} bytes); stopped")
            if encoding:
                check_unpacked(received, raw.tell(), self.settings.unpacked, where,
                               f"Content-Encoding {encoding}")
            if self._left(started) <= 0:
                raise SourceError(f"{where} did not finish within {self.settings.deadline:g} s "
                                  f"({received} bytes received)")
        body = b"".join(chunks)
        raw_read = raw.tell() if hasattr(raw, "tell") else received
        if declared is not None and raw_read < declared:  # content length not enforced
            raise _BodyFault(f"{where} body cut short: {raw_read} of {declared} bytes")
        response._content = body if sink is None else b""  # `.content`, `.text`, `.json()`
        response._content_consumed = True
        return body, received

    def _broken(self, exc: BaseException, where: str, raw: Any, declared: int | None) -> str:
        """One line for a connection fault while reading a body."""
        cause = exc.args[1] if len(exc.args) > 1 else exc.__context__
        if isinstance(cause, IncompleteRead) or isinstance(exc, IncompleteRead):
            total = declared if declared is not None else "?"
            return f"{where} body cut short: {raw.tell()} of {total} bytes"
        if isinstance(exc, ReadTimeoutError):
            return f"{where} timed out after {self.settings.timeout:g} s while sending its body"
        return f"{where} connection broken after {raw.tell()} bytes of the body"

    def _left(self, started: float) -> float:
        return self.settings.deadline - (time.monotonic() - started)

    def _pause(self, attempt: int, url: str, started: float, response: Any) -> None:
        """Back off before reading a cut body again (never past the deadline)."""
        delay = min(self.settings.backoff_factor * 2 ** (attempt - 1),
                    self.settings.max_retry_delay)
        if delay >= self._left(started):
            raise SourceError(
                f"{self.dataset}: {url} did not finish within {self.settings.deadline:g} s "
                f"({response.raw.tell()} bytes received)"
            )
        time.sleep(delay)

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        return response_json(self.get(url, params, expect="JSON"), f"{self.dataset}: {url}")

    def get_bytes(self, url: str, expect: str | None = None) -> bytes:
        return self.get(url, expect=expect).content

    def get_bytes_if_changed(self, url: str, validators: MutableMapping[str, Any],
                             expect: str | None = None) -> bytes | None:
        """GET `url` conditionally. `validators` maps URLs to the validators of their last 200
        (see `cache_validators`); only those of exactly this URL are sent. None on 304 Not
        Modified (validators kept); on 200 the body, and the server's validators replace the
        URL's (dropped when it sent none)."""
        response = self._if_changed(url, validators, expect)
        return None if response is None else response.content

    def download_if_changed(self, url: str, validators: MutableMapping[str, Any], into: Path,
                            expect: str | None = None) -> bool:
        """`get_bytes_if_changed` with the body written to the file `into`, not held (a
        10M-row CSV: 785 MB); False on 304 Not Modified."""
        return self._if_changed(url, validators, expect, into) is not None

    def _if_changed(self, url: str, validators: MutableMapping[str, Any],
                    expect: str | None = None, into: Path | None = None
                    ) -> requests.Response | None:
        known: dict[str, str] = dict(validators.get(url) or {})
        response = self.get(url, headers=_conditional_headers(known), expect=expect, into=into)
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
        return response


def _content_length(response: requests.Response) -> int | None:
    """The announced body length, or None (absent, unreadable, or a HEAD/304 without body)."""
    if response.status_code == NOT_MODIFIED or response.request.method == "HEAD":
        return None
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _content_encoding(response: requests.Response, raw: Any) -> str | None:
    """The body's Content-Encoding when the client unpacks it (and can count the packed bytes
    read, `raw.tell()`); None for a body read as sent."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity") or not hasattr(raw, "tell"):
        return None
    return encoding


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
    urls = kept.setdefault("urls", {})
    for old in [k for k in urls if not k.startswith(HASHED)]:  # kept by URL before
        del urls[old]
    return UrlKeyed(urls)


HASHED = "sha256:"


def url_key(url: str) -> str:
    """How a URL is named in the state: its SHA-256 (the URL, and any credential in it, is
    not stored)."""
    if url.startswith(HASHED):
        return url
    return HASHED + hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


class UrlKeyed(MutableMapping[str, Any]):
    """A dict in the dlt state read and written by URL, stored by `url_key(URL)`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getitem__(self, url: str) -> Any:
        return self.data[url_key(url)]

    def __setitem__(self, url: str, value: Any) -> None:
        self.data[url_key(url)] = value

    def __delitem__(self, url: str) -> None:
        del self.data[url_key(url)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


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


def response_json(response: requests.Response, where: str) -> Any:
    """The answer's JSON, parsed exactly as a file's (odp.sources.complete.load_json: by byte
    order mark, else the charset the server declared, else UTF-8; NaN and 1e400 kept as text for
    validation) — not requests' `.json()`, which guesses charsets and refuses NaN as a whole."""
    media = response.headers.get("Content-Type") or ""
    charset = next((part.split("=", 1)[1].strip().strip('"\'') for part in media.split(";")[1:]
                    if part.strip().lower().startswith("charset=")), None)
    return load_json(response.content, where, charset or None)
