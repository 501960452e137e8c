"""XML is parsed with DTDs, entities and network access off, by rule: entity expansion, external
entities (a local file, a URL) and external DTDs are refused with one line before anything is
expanded or fetched, and every XML parse of the engine goes through odp.sources.safexml."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from odp.errors import SourceError
from odp.sources.safexml import parse_xml
from odp.sources.wfs import GetFeature, parse_page

WHERE = "stadtteile-dresden: https://kommisdd.dresden.de/net3/public/ogc/wfs (page 1)"
SRC = Path(__file__).resolve().parents[2] / "src" / "odp"
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0">&lol9;</wfs:FeatureCollection>
"""


def _refused(body: bytes) -> str:
    with pytest.raises(SourceError) as caught:
        parse_xml(body, WHERE)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{WHERE}: ")
    return message


def test_entity_expansion_is_refused_naming_the_doctype_and_its_entities():
    started = time.monotonic()
    message = _refused(LAUGHS)
    assert message == (f"{WHERE}: XML with a DOCTYPE ('lolz', declaring the entities lol, lol1, "
                       "lol2 …) is refused: DTDs, entities and external references are off")
    assert time.monotonic() - started < 0.1


def test_an_external_entity_naming_a_local_file_is_refused_and_nothing_is_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>'
            "<r>&xxe;</r>").encode()
    message = _refused(body)
    assert "declaring the entities xxe" in message and "TOP-SECRET" not in message


def test_an_external_dtd_or_parameter_entity_is_refused_without_any_request():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "fetched">')

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/evil.dtd"
    try:
        external = _refused(f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}"><r/>'.encode())
        parameter = _refused(f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]><r/>'.encode())
    finally:
        server.shutdown()
    assert "XML with a DOCTYPE ('r')" in external
    assert "declaring the entities p" in parameter
    assert hits == []


def test_a_bare_doctype_is_refused_by_rule_too():
    assert "XML with a DOCTYPE ('r') is refused" in _refused(b"<!DOCTYPE r><r/>")


def test_cut_and_malformed_documents_keep_their_own_messages():
    assert "the body is truncated" in _refused(b"<r><a>1</a><a>2")
    assert "malformed XML at line 1, column 6" in _refused(b"<r>a</b>")


def test_a_real_wfs_page_still_parses():
    from tests.helpers import RECORDINGS

    body = (RECORDINGS / "wfs" / "stadtteile_25833_start0.xml").read_bytes()
    ids, _, geoms, _ = parse_page(body, GetFeature(), WHERE)
    assert ids and all(g is not None for g in geoms)


def test_the_wfs_source_refuses_entity_expansion():
    with pytest.raises(SourceError, match=r"XML with a DOCTYPE \('lolz'"):
        parse_page(LAUGHS, GetFeature(), WHERE)


def test_no_module_parses_xml_except_through_safexml():
    raw = re.compile(r"\b(ET|ElementTree|etree|minidom|sax|expat)\.(fromstring|parse|iterparse|"
                     r"XMLParser|XML|parseString|ParserCreate)\b|\bimport lxml|from lxml")
    offenders = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py")
                 if path.name != "safexml.py"
                 for n, line in enumerate(path.read_text().splitlines(), start=1)
                 if raw.search(line)]
    assert offenders == []


def test_gml_read_through_gdal_is_checked_by_the_same_rule_first():
    from odp.georeference.geometry import read_features

    with pytest.raises(SourceError, match=r"^GML: XML with a DOCTYPE \('lolz', declaring"):
        read_features(LAUGHS)
