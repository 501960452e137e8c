"""A forwarding HTTP proxy in front of the real local CKAN that can fail chosen actions —
to test what a failure mid-publish leaves behind (no mocks: CKAN does all the real work)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FailingProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.fail: dict[str, int] = {}  # action name → how many calls still fail with HTTP 500
        # action name → how many calls CKAN still carries out but whose answer is lost (HTTP
        # 500 instead): the client cannot tell whether its request took effect
        self.lose_answer: dict[str, int] = {}
        # action name → how many calls still pass before every later one fails (HTTP 500)
        self.fail_after: dict[str, int] = {}
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                action = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                proxy.calls.append(action)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if action in proxy.fail_after:
                    proxy.fail_after[action] -= 1
                    if proxy.fail_after[action] < 0:
                        proxy.fail[action] = 1
                if proxy.fail.get(action, 0) > 0:
                    proxy.fail[action] -= 1
                    self._reply(500, b"Internal Server Error (injected)", "text/plain")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.target + self.path, data=body,
                                          headers=headers, timeout=120, allow_redirects=False)
                if proxy.lose_answer.get(action, 0) > 0:
                    proxy.lose_answer[action] -= 1
                    self._reply(500, b"Internal Server Error (answer lost)", "text/plain")
                    return
                self._reply(answer.status_code, answer.content,
                            answer.headers.get("Content-Type", "application/json"))

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FailingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
