"""HTTP proxies in front of the real local CKAN (no mocks: CKAN does all the real work).

`ForwardingProxy` forwards every request as it is; subclasses change the answers to chosen
actions. `FailingProxy` fails chosen actions — to test what a failure mid-publish leaves behind;
`table_through_proxy` gives a DataStore table on the local CKAN reached through one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest
import requests

from odp.publish.portal import Portal
from odp.spec import load_city
from tests.helpers import make_project, use_project


@dataclass(frozen=True)
class Request:
    """One request the proxy received: `action` is the last part of its path (the CKAN action)."""

    method: str
    path: str
    action: str
    headers: HTTPMessage
    body: bytes | None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str


class ForwardingProxy:
    """A local HTTP server that forwards every request to `target` and passes its answer back.
    Subclasses override `answer` to change what chosen requests get."""

    follow_redirects = False

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command, path=self.path,
                    action=self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1],
                    headers=self.headers,
                    body=self.rfile.read(length) if length else None)
                reply = proxy.answer(request)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, request: Request) -> requests.Response:
        """The target's answer to `request`."""
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length")}
        return requests.request(request.method, self.target + request.path, data=request.body,
                                headers=headers, timeout=120,
                                allow_redirects=self.follow_redirects)

    def answer(self, request: Request) -> Reply:
        return passed_on(self.forward(request))

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def passed_on(answer: requests.Response, content: bytes | None = None) -> Reply:
    """The target's answer as the proxy's reply (with `content` instead of its body if given)."""
    return Reply(answer.status_code, answer.content if content is None else content,
                 answer.headers.get("Content-Type", "application/json"))


class FailingProxy(ForwardingProxy):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.fail: dict[str, int] = {}  # action name → how many calls still fail with HTTP 500
        # action name → how many calls CKAN still carries out but whose answer is lost (HTTP
        # 500 instead): the client cannot tell whether its request took effect
        self.lose_answer: dict[str, int] = {}
        # action name → how many calls still pass before every later one fails (HTTP 500)
        self.fail_after: dict[str, int] = {}
        self.calls: list[str] = []

    def answer(self, request: Request) -> Reply:
        action = request.action
        self.calls.append(action)
        if action in self.fail_after:
            self.fail_after[action] -= 1
            if self.fail_after[action] < 0:
                self.fail[action] = 1
        if self.fail.get(action, 0) > 0:
            self.fail[action] -= 1
            return Reply(500, b"Internal Server Error (injected)", "text/plain")
        answer = self.forward(request)
        if self.lose_answer.get(action, 0) > 0:
            self.lose_answer[action] -= 1
            return Reply(500, b"Internal Server Error (answer lost)", "text/plain")
        return passed_on(answer)


@contextmanager
def table_through_proxy(tmp_path: Path, portal: Any, monkeypatch: pytest.MonkeyPatch, name: str,
                        fields: list[dict[str, str]], key: list[str]
                        ) -> Iterator[tuple[FailingProxy, Portal, str]]:
    """(a FailingProxy in front of the local CKAN, a Portal of a project without datasets
    talking through it, the id of an empty DataStore table with `fields` and primary `key` in a
    private dataset named after `name`, purged at the end)"""
    root, _ = make_project(tmp_path, [])
    use_project(monkeypatch, root, tmp_path / "state", "http://127.0.0.1:9", portal)
    with FailingProxy(portal.url) as proxy:
        monkeypatch.setenv("ODP_CKAN_URL", proxy.url)
        city = load_city(root)
        client = Portal(city, backoff=0.01)
        org = city.organization["name"]
        if client.show("organization_show", org) is None:
            client.call("organization_create", name=org, title=org)
        package = client.call("package_create", name=f"odp-test-{name}-{tmp_path.name[-8:]}"
                              .lower(), owner_org=org, private=True)
        try:
            created = client.call("datastore_create", force=True, fields=fields,
                                  primary_key=key, resource={"package_id": package["id"]})
            yield proxy, client, created["resource_id"]
        finally:
            proxy.fail.clear()
            proxy.fail_after.clear()
            proxy.lose_answer.clear()
            client.call("dataset_purge", id=package["id"])
