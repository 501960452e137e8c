"""Replay server: recorded real responses of remote HTTP sources, for tests and offline demos.

The production client code runs unchanged; only its base URL differs. One local server stands in
for many remote hosts: ``https://HOST/PATH?QUERY`` is served as ``http://127.0.0.1:PORT/HOST/PATH?QUERY``
(the scheme is dropped, so a recording of ``http://host/x`` also answers ``https://host/x``).

Recordings live in one folder per source under a recordings directory, each with a
``recordings.json`` manifest: a list whose entries are either

* ``{"request": {"method": "GET", "url": "https://host/path", "query": {"p": "v" | "*"}},
  "response": {"status": 200, "headers": {...}, "body_file": "file"},
  "scenario": "...", "note": "..."}``
  (``query`` lists the params that must match, ``"*"`` matches any value, unlisted params are
  ignored; ``body`` with inline text may replace ``body_file``; ``"require": {"headers":
  {"X-API-Key": "v"}, "query": {"access_token": "v"}}`` in the request makes the recording a
  protected one: a request without those credentials gets ``401`` — for sources with
  credentials, odp.sources.auth), or
* ``{"vcr": "cassette.yml", "scenario": optional}``: a VCR cassette (YAML ``http_interactions``);
  every query param of the recorded URI must then match exactly.

Matching: method + host + path; entries of another scenario than the active one are ignored; an
entry of the active scenario beats one without scenario; then the most listed query params
wins; then manifest order. No match gives 404 with a JSON body naming the URL.

Conditional requests are answered as a real server does: when the recorded 200 carries ``ETag``
and/or ``Last-Modified`` and the request's ``If-None-Match`` (weak comparison, ``*``; it takes
precedence) or ``If-Modified-Since`` (Last-Modified not later) matches, the reply is
``304 Not Modified`` without body. The request log notes the validators a request sent and the
body bytes of its reply.

Faults are injected per URL prefix: ``fail_next`` (status codes), ``delay_next``, ``override``
(a fixed body), and faults of the delivery itself, applied to the reply a request would get
(the recorded real body): ``cut`` (the body stops after ``keep`` bytes and the connection
closes — with a Content-Length announcing the whole body, or without one, so the close looks
like the end), ``drip`` (``size`` bytes every ``every`` seconds) and ``html_page`` (an HTML error
page with status 200).

CLI: ``python -m odp_dev.replay --dir tests/recordings --port 8765 [--scenario NAME]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from odp.sources.routing import replay_url

log = logging.getLogger("odp_dev.replay")

DEFAULT_DIR = Path("tests/recordings")
MANIFEST = "recordings.json"
# Headers the server computes itself (or that would lie about the stored, decoded body).
NOT_MODIFIED = 304
_SKIP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}
# Headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
_NOT_MODIFIED_HEADERS = {
    "etag", "last-modified", "cache-control", "expires", "vary", "content-location", "date",
}


# --------------------------------------------------------------------------- URL mapping


def _split_key(key: str) -> tuple[str, str]:
    """``host/path`` (no scheme, no query) → (lower-case host, unquoted path)."""
    host, _, path = key.partition("/")
    return host.lower(), unquote("/" + path)


def _prefix_key(prefix: str) -> str:
    """Normalise a fault prefix: remote URL, ``/host/path`` or ``host/path`` → ``host/path``."""
    if "://" in prefix:
        prefix = prefix.split("://", 1)[1]
    return prefix.lstrip("/")


# --------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class Recording:
    """One recorded request/response pair."""

    method: str
    host: str
    path: str
    query: dict[str, str]  # params that must match; "*" = any value
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    scenario: str | None = None
    note: str = ""
    source: str = ""  # manifest or cassette it came from
    # Credentials a request must carry (headers: lower-case names), else 401.
    require_headers: tuple[tuple[str, str], ...] = ()
    require_query: tuple[tuple[str, str], ...] = ()

    def query_matches(self, params: dict[str, list[str]]) -> bool:
        return all(
            key in params and (want == "*" or want in params[key])
            for key, want in self.query.items()
        )

    def authorized(self, params: dict[str, list[str]], headers: Mapping[str, str]) -> bool:
        """Whether the request carries the credentials the recording requires."""
        return (all(headers.get(name) == value for name, value in self.require_headers)
                and all(value in params.get(name, []) for name, value in self.require_query))


def _parse_url(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.netloc.lower(), unquote(parts.path or "/"), dict(parse_qsl(parts.query, True))


def _manifest_entry(entry: dict[str, Any], folder: Path, source: str) -> Recording:
    req, resp = entry["request"], entry["response"]
    host, path, url_query = _parse_url(req["url"])
    if "body_file" in resp:
        body = (folder / resp["body_file"]).read_bytes()
    else:
        body = str(resp.get("body", "")).encode("utf-8")
    require = req.get("require") or {}
    return Recording(
        method=req.get("method", "GET").upper(),
        host=host,
        path=path,
        query={**url_query, **{k: str(v) for k, v in (req.get("query") or {}).items()}},
        status=int(resp.get("status", 200)),
        headers=tuple((k, str(v)) for k, v in (resp.get("headers") or {}).items()),
        body=body,
        scenario=entry.get("scenario"),
        note=entry.get("note", ""),
        source=source,
        require_headers=tuple((k.lower(), str(v))
                              for k, v in (require.get("headers") or {}).items()),
        require_query=tuple((k, str(v)) for k, v in (require.get("query") or {}).items()),
    )


def _vcr_body(body: dict[str, Any]) -> bytes:
    if body.get("base64_string") is not None:
        return base64.b64decode(body["base64_string"])
    return str(body.get("string") or "").encode(body.get("encoding") or "utf-8")


def load_vcr(path: Path, scenario: str | None = None) -> list[Recording]:
    """Read a VCR cassette (YAML, ``http_interactions``) into recordings."""
    cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for item in cassette.get("http_interactions") or []:
        req, resp = item["request"], item["response"]
        host, url_path, query = _parse_url(req["uri"])
        headers = tuple(
            (name, str(value))
            for name, values in (resp.get("headers") or {}).items()
            for value in (values if isinstance(values, list) else [values])
        )
        out.append(
            Recording(
                method=str(req.get("method", "get")).upper(),
                host=host,
                path=url_path,
                query=query,
                status=int(resp["status"]["code"]),
                headers=headers,
                body=_vcr_body(resp.get("body") or {}),
                scenario=scenario,
                note=f"VCR cassette recorded {item.get('recorded_at', '?')}",
                source=str(path),
            )
        )
    return out


def load_manifest(manifest: Path) -> list[Recording]:
    """Read one ``recordings.json`` (entries and ``{"vcr": ...}`` references)."""
    folder = manifest.parent
    out: list[Recording] = []
    for entry in json.loads(manifest.read_text(encoding="utf-8")):
        if "vcr" in entry:
            out.extend(load_vcr(folder / entry["vcr"], entry.get("scenario")))
        else:
            out.append(_manifest_entry(entry, folder, str(manifest)))
    return out


def load_recordings(recordings_dir: Path) -> list[Recording]:
    """All manifests directly in ``recordings_dir`` and in its sub-folders, sorted by path."""
    manifests = sorted({*recordings_dir.glob(MANIFEST), *recordings_dir.glob(f"*/{MANIFEST}")})
    if not manifests:
        raise FileNotFoundError(f"no {MANIFEST} under {recordings_dir}")
    return [rec for manifest in manifests for rec in load_manifest(manifest)]


def find_recording(
    recordings: Iterable[Recording],
    method: str,
    host: str,
    path: str,
    params: dict[str, list[str]],
    scenario: str | None,
) -> Recording | None:
    """Best recording for a request, or None (see module docstring for the rules)."""
    best: Recording | None = None
    best_score = (-1, -1)
    for rec in recordings:
        if (rec.method, rec.host, rec.path) != (method, host, path):
            continue
        if rec.scenario is not None and rec.scenario != scenario:
            continue
        if not rec.query_matches(params):
            continue
        score = (int(rec.scenario is not None), len(rec.query))
        if score > best_score:  # strict: earlier entries win ties
            best, best_score = rec, score
    return best


# --------------------------------------------------------------------------- conditional GET


def _weak(tag: str) -> str:
    """An entity tag for the weak comparison: without its ``W/`` prefix."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(recorded: Iterable[tuple[str, str]], request: Mapping[str, str]) -> bool:
    """Whether a request's validators match the recorded response's (``request`` keys are
    lower-case header names): If-None-Match first, else If-Modified-Since."""
    headers = {name.lower(): value for name, value in recorded}
    if (none_match := request.get("if-none-match")) is not None:
        etag = headers.get("etag")
        tags = {_weak(t) for t in none_match.split(",")}
        return etag is not None and ("*" in tags or _weak(etag) in tags)
    since, modified = request.get("if-modified-since"), headers.get("last-modified")
    if not since or not modified:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):  # an unparseable date: the condition is ignored
        return False


# --------------------------------------------------------------------------- faults & log


@dataclass(frozen=True)
class ServedRequest:
    """One entry of the request log."""

    method: str
    url: str  # path + query as requested from the replay server
    status: int
    if_none_match: str | None = None  # validators the request sent
    if_modified_since: str | None = None
    body_bytes: int = 0  # length of the reply's body (0 for a 304 and for HEAD)


@dataclass
class _Fault:
    prefix: str  # normalised "host/path..." prefix
    statuses: list[int] = field(default_factory=list)  # fail_next: remaining codes
    retry_after: int | None = None
    delay: float = 0.0  # delay_next: one-shot
    override: tuple[int, bytes, str] | None = None  # persistent until clear_faults
    # Faults of the delivery (cut, drip, html_page): until clear_faults, or `times` replies.
    cut: tuple[int, bool] | None = None  # bytes kept (negative: from the end), Content-Length?
    drip: tuple[int, float] | None = None  # bytes per step, seconds between steps
    html: bytes | None = None
    times: int | None = None

    def applies(self, key: str) -> bool:
        return key.startswith(self.prefix)


WHOLE = -1  # _Reply.length: Content-Length is the body's length


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    length: int | None = WHOLE  # Content-Length sent; None: none, the connection close ends it
    drip: tuple[int, float] | None = None


_HTML_PAGE = b"""<!DOCTYPE html>
<html lang="de">
<head><meta charset="utf-8"><title>Wartungsarbeiten</title></head>
<body><h1>Wartungsarbeiten</h1>
<p>Dieser Dienst ist wegen Wartungsarbeiten vor\xc3\xbcbergehend nicht erreichbar.</p>
</body>
</html>
"""


def _json_reply(status: int, payload: dict[str, Any], extra: tuple = ()) -> _Reply:
    body = json.dumps(payload).encode("utf-8")
    return _Reply(status, (("Content-Type", "application/json"), *extra), body)


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections do not hold a thread forever

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)  # request bodies are not matched
        self._handle()

    def _handle(self) -> None:
        reply = self.server.replay.respond(self.command, self.path, dict(self.headers.items()))
        self.send_response_only(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != NOT_MODIFIED:  # a 304 has no body and does not describe one
            if reply.length is None:
                self.send_header("Connection", "close")  # the close ends the body
            else:
                length = len(reply.body) if reply.length == WHOLE else reply.length
                self.send_header("Content-Length", str(length))
                if length > len(reply.body):
                    self.close_connection = True  # cut short: the connection closes early
        self.end_headers()
        try:
            if self.command == "HEAD":
                return
            if reply.drip:
                self._drip(reply.body, *reply.drip)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            log.debug("client went away before the reply to %s", self.path)

    def _drip(self, body: bytes, size: int, every: float) -> None:
        """The body, `size` bytes every `every` seconds (stops when the server stops)."""
        for start in range(0, len(body), max(1, size)):
            if start and self.server.replay._stopping.wait(every):
                self.close_connection = True
                return
            self.wfile.write(body[start:start + max(1, size)])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer


class ReplayServer:
    """Local HTTP server replaying recordings; usable as a context manager."""

    def __init__(
        self,
        recordings_dir: Path = DEFAULT_DIR,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str | None = None,
    ) -> None:
        self.recordings_dir = Path(recordings_dir)
        self.recordings = load_recordings(self.recordings_dir)
        self.scenario = scenario
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._log: list[ServedRequest] = []
        self._faults: list[_Fault] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> ReplayServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self._bind, _Handler)
        self._httpd.replay = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="odp-replay", daemon=True
        )
        self._thread.start()
        log.info("replay server on %s (%d recordings)", self.url, len(self.recordings))
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes delayed handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("replay server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, remote_url: str) -> str:
        return replay_url(remote_url, self.url)

    # -- request log

    @property
    def requests(self) -> list[ServedRequest]:
        """Copy of the log of served requests, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- fault injection. url_prefix: remote URL, "/host/path" or "host/path" (scheme ignored),
    #    compared with the start of host + path + query of each request.

    def fail_next(
        self, url_prefix: str, statuses: list[int], retry_after: int | None = None
    ) -> None:
        """The next ``len(statuses)`` matching requests get these codes, then recordings resume."""
        fault = _Fault(_prefix_key(url_prefix), statuses=list(statuses), retry_after=retry_after)
        with self._lock:
            self._faults.append(fault)

    def delay_next(self, url_prefix: str, seconds: float) -> None:
        """Delay the next matching request by ``seconds`` (then serve it normally)."""
        with self._lock:
            self._faults.append(_Fault(_prefix_key(url_prefix), delay=seconds))

    def override(
        self,
        url_prefix: str,
        status: int,
        body: bytes,
        content_type: str = "application/json",
    ) -> None:
        """Answer every matching request with this body until ``clear_faults()``."""
        fault = _Fault(_prefix_key(url_prefix), override=(status, body, content_type))
        with self._lock:
            self._faults.append(fault)

    def cut(self, url_prefix: str, keep: int, *, content_length: bool = True,
            times: int | None = None) -> None:
        """Send only the first ``keep`` bytes of the body a matching request would get (negative:
        all but the last ``-keep``), then close the connection. ``content_length``: the header
        announces the whole body (the client can tell it was cut); else no Content-Length (the
        close looks like the end of the body). Until ``clear_faults()``, or ``times`` replies."""
        fault = _Fault(_prefix_key(url_prefix), cut=(keep, content_length), times=times)
        with self._lock:
            self._faults.append(fault)

    def drip(self, url_prefix: str, size: int, every: float, *,
             times: int | None = None) -> None:
        """Send the body of a matching reply ``size`` bytes at a time, every ``every`` seconds
        (Content-Length announces the whole body): a slow server that never trips a read
        timeout. Until ``clear_faults()``, or ``times`` replies."""
        fault = _Fault(_prefix_key(url_prefix), drip=(size, every), times=times)
        with self._lock:
            self._faults.append(fault)

    def html_page(self, url_prefix: str, body: bytes = _HTML_PAGE, *,
                  times: int | None = None) -> None:
        """Answer matching requests with status 200 and an HTML page (``text/html``), as a
        portal's maintenance or error page does. Until ``clear_faults()``, or ``times``."""
        fault = _Fault(_prefix_key(url_prefix), html=body, times=times)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- answering

    def respond(
        self, method: str, raw_path: str, headers: Mapping[str, str] | None = None
    ) -> _Reply:
        """Build the reply for one request and log it (called from handler threads)."""
        request = {name.lower(): value for name, value in (headers or {}).items()}
        key = raw_path.lstrip("/")
        delay = self._take_delay(key)
        if delay:
            self._stopping.wait(delay)
        reply = self._fault_reply(key) or self._recorded_reply(method, key, request)
        reply = self._delivery_fault(key, reply)
        served = ServedRequest(
            method,
            raw_path,
            reply.status,
            if_none_match=request.get("if-none-match"),
            if_modified_since=request.get("if-modified-since"),
            body_bytes=0 if method == "HEAD" else len(reply.body),
        )
        with self._lock:
            self._log.append(served)
        return reply

    def _take_delay(self, key: str) -> float:
        with self._lock:
            for fault in self._faults:
                if fault.delay and fault.applies(key):
                    self._faults.remove(fault)
                    return fault.delay
        return 0.0

    def _fault_reply(self, key: str) -> _Reply | None:
        """Injected failure (fail_next, first) or override reply, if one applies."""
        with self._lock:
            for fault in self._faults:
                if fault.statuses and fault.applies(key):
                    status = fault.statuses.pop(0)
                    if not fault.statuses:
                        self._faults.remove(fault)
                    extra = (("Retry-After", str(fault.retry_after)),) if fault.retry_after else ()
                    return _json_reply(status, {"error": "injected fault", "status": status}, extra)
            for fault in self._faults:
                if fault.override and fault.applies(key):
                    status, body, content_type = fault.override
                    return _Reply(status, (("Content-Type", content_type),), body)
        return None

    def _take(self, key: str, kind: str) -> _Fault | None:
        """The first fault of this kind (cut, drip, html) applying to `key`; counts its use."""
        with self._lock:
            for fault in self._faults:
                if getattr(fault, kind) is not None and fault.applies(key):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _delivery_fault(self, key: str, reply: _Reply) -> _Reply:
        """The reply as delivered: an HTML page instead, cut short, or dripping."""
        if reply.status == NOT_MODIFIED:
            return reply
        if html := self._take(key, "html"):
            headers = (("Content-Type", "text/html; charset=utf-8"),)
            reply = _Reply(200, headers, html.html or b"")
        if cut := self._take(key, "cut"):
            keep, announce = cut.cut or (0, True)
            whole = len(reply.body)
            kept = reply.body[:keep] if keep >= 0 else reply.body[:max(0, whole + keep)]
            reply = _Reply(reply.status, reply.headers, kept, whole if announce else None)
        if drip := self._take(key, "drip"):
            reply = _Reply(reply.status, reply.headers, reply.body, reply.length, drip.drip)
        return reply

    def _recorded_reply(self, method: str, key: str, request: Mapping[str, str]) -> _Reply:
        location, _, query = key.partition("?")
        host, path = _split_key(location)
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, []).append(value)
        lookup = "GET" if method == "HEAD" else method
        rec = find_recording(self.recordings, lookup, host, path, params, self.scenario)
        if rec is None:
            remote = f"https://{location}" + (f"?{query}" if query else "")
            log.warning(
                "replay: no recording for %s %s (scenario %r)", method, remote, self.scenario
            )
            return _json_reply(
                404,
                {
                    "error": "no recording",
                    "method": method,
                    "url": remote,
                    "scenario": self.scenario,
                },
            )
        if not rec.authorized(params, request):
            log.warning("replay: %s %s without the credentials its recording requires",
                        method, location)
            return _json_reply(401, {"error": "unauthorized"},
                               (("WWW-Authenticate", 'Basic realm="replay"'),))
        if rec.status == 200 and lookup == "GET" and not_modified(rec.headers, request):
            kept = tuple((k, v) for k, v in rec.headers if k.lower() in _NOT_MODIFIED_HEADERS)
            return _Reply(NOT_MODIFIED, kept, b"")
        headers = tuple((k, v) for k, v in rec.headers if k.lower() not in _SKIP_HEADERS)
        return _Reply(rec.status, headers, rec.body)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m odp_dev.replay", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="recordings directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--scenario", default=None, help="active scenario name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = ReplayServer(args.dir, host=args.host, port=args.port, scenario=args.scenario)
    with server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
