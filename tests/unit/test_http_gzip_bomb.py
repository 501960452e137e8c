"""An HTTP body sent with `Content-Encoding: gzip` (or deflate) is held to the source's archive
limits while the client unpacks it: about 1 MB that unpacks to 1 GiB stops within a second, with
a few MB of memory, as a one-line SourceError naming the dataset, the URL and the figures. An
honest gzip body still arrives whole. Served by a small local HTTP server (constructed bodies)."""

from __future__ import annotations

import contextlib
import gzip
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from odp.errors import SourceError
from odp.sources.http import HttpSettings, SourceClient
from tests.helpers import RECORDINGS

MIB = 1 << 20
GIB = 1 << 30
STOPS = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"  # real, about 4:1 in gzip


def _zero_deflate(unpacked: int) -> tuple[bytes, bytes]:
    """Raw deflate of `unpacked` zero bytes, built from one fully flushed 1 MiB segment
    repeated (a full flush resets the compressor, so every segment is the same bytes), and
    the end block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment * (unpacked // MIB), compressor.flush()


def _gzip_bomb() -> bytes:
    """A valid gzip member of 1 GiB of zeros, about 1 MB long."""
    blocks, end = _zero_deflate(GIB)
    crc = 0
    for _ in range(GIB // MIB):
        crc = zlib.crc32(bytes(MIB), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + blocks + end + struct.pack("<II", crc, GIB & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    blocks, end = _zero_deflate(GIB)
    bodies = {
        "/bomb.csv": (_gzip_bomb(), "gzip"),
        "/bomb-deflate.csv": (blocks + end, "deflate"),
        "/stations.csv": (gzip.compress(STOPS.read_bytes()), "gzip"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body, encoding = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # the client stops reading a bomb: what the test wants
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODP_REPLAY_URL", raising=False)
    monkeypatch.delenv("ODP_REPLAY_HOSTS", raising=False)


def _get(url: str, **source: object) -> bytes:
    settings = HttpSettings.from_source({"max_attempts": 1, **source})
    return SourceClient("stops-gz", settings).get_bytes(url)


@pytest.mark.parametrize("path, encoding", [("/bomb.csv", "gzip"),
                                            ("/bomb-deflate.csv", "deflate")])
def test_a_megabyte_that_unpacks_to_a_gibibyte_stops_fast_with_little_memory(server, path,
                                                                             encoding):
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as stopped:
            _get(server + path)
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(stopped.value)
    assert message.startswith(f"stops-gz: {server}{path}: Content-Encoding {encoding}: has a "
                              "compression ratio of "), message
    assert "max_ratio 100" in message and "zip bomb" in message and "\n" not in message
    assert seconds < 2, seconds
    assert peak < 32 * MIB, peak  # the default max_bytes alone would let 512 MiB in


def test_the_unpacked_size_is_capped_by_max_unpacked_bytes_of_the_source(server):
    with pytest.raises(SourceError, match=r"stops-gz: .*/bomb\.csv: Content-Encoding gzip: "
                                          r"unpacks to more than 8388608 bytes "
                                          r"\(max_unpacked_bytes;"):
        _get(server + "/bomb.csv", max_ratio=5000, max_unpacked_bytes=8 * MIB)


def test_an_honest_gzip_body_arrives_whole_and_unpacked(server):
    assert _get(server + "/stations.csv") == STOPS.read_bytes()
