"""Complete deliveries only: a body that ends without its format's own end, or an HTML page where
data was expected, is a one-line SourceError naming dataset and URL or file (`where`) — never a
register published with most of its rows missing.

* HTML instead of data: the body starts with `<!DOCTYPE html` or `<html`, or the server labels
  it text/html and it starts with markup (a CSV merely labelled text/html by a misconfigured
  server still passes).
* CSV: a quoted cell still open at the end, or a last line without a line end holding fewer
  cells than the first line (the body was cut mid-record). A file that simply lacks its final
  line end passes. A cut exactly at a line end cannot be seen here: the HTTP client's
  Content-Length check catches that where the server announces one.
* JSON: the document ends while an object, array or string is still open ("truncated"); any
  other error is "malformed JSON at line L, column C: what"; arrays or objects nested deeper
  than the parser follows (a nesting bomb) are malformed too. One parser (`load_json`) for
  answers and files alike: decoded by byte order mark, else the declared charset, else UTF-8;
  NaN, Infinity and 1e400 are kept as the text sent, for validation to quarantine the row.
* DWD-style records ending in a marker field (`eor`): a last line without it is cut mid-line.
* XML: expat's "no element found", "unclosed token", "partial character" and "unclosed CDATA"
  at the end mean the document did not close.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import xml.etree.ElementTree as ET
from typing import Any

from odp.errors import SourceError

_HTML_STARTS = (b"<!doctype html", b"<html")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_XML_CUT = {3, 5, 6, 20}  # no element found, unclosed token, partial character, unclosed CDATA
_EOF_IN_STRING = re.compile(r"EOF inside string starting at row (\d+)")
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


# --- HTML instead of data ----------------------------------------------------------------------


def looks_like_html(body: bytes, content_type: str | None = None) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_HTML_STARTS):
        return True
    media = (content_type or "").split(";")[0].strip().lower()
    return media in _HTML_TYPES and head.startswith(b"<") and not head.startswith(b"<?xml")


def refuse_html(body: bytes, content_type: str | None, expect: str, where: str) -> None:
    """Raise when a 200 answer is an HTML page (an error or maintenance page) instead of data."""
    if looks_like_html(body, content_type):
        raise SourceError(f"{where} answered an HTML page instead of {expect}")


# --- JSON --------------------------------------------------------------------------------------


def _unclosed(doc: str) -> bool:
    """Whether the text ends inside a string, object or array."""
    bare = _STRING.sub("", doc)
    if bare.count('"') % 2:
        return True
    return bare.count("{") + bare.count("[") > bare.count("}") + bare.count("]")


def json_error(exc: ValueError, where: str) -> SourceError:
    """One line for a JSON parse error: where it is, and whether the body was cut short."""
    doc, pos = getattr(exc, "doc", None), getattr(exc, "pos", None)
    if not isinstance(doc, str) or pos is None:
        return SourceError(f"{where}: malformed JSON ({' '.join(str(exc).split())})")
    line, column = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
    if not doc.strip():
        return SourceError(f"{where}: malformed JSON: the body is empty")
    if _unclosed(doc) or pos >= len(doc.rstrip()):
        return SourceError(f"{where}: malformed JSON at line {line}, column {column}: the body "
                           f"is truncated ({len(doc)} characters; it ends before the JSON closes)")
    return SourceError(f"{where}: malformed JSON at line {line}, column {column}: {exc.msg}")


_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_MAX_INT_DIGITS = 4300  # Python's own limit for int(text); longer is kept as text, see below


def _json_text(data: str | bytes, where: str, charset: str | None) -> str:
    """The body as text: by its byte order mark (RFC 8259 lets a parser accept one), else by the
    charset the server declared, else UTF-8 (RFC 8259: JSON exchanged between systems)."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    encoding, start = next(((name, len(bom)) for bom, name in _BOMS if data.startswith(bom)),
                           (charset or "utf-8", 0))
    try:
        return data[start:].decode(encoding)
    except LookupError:
        raise SourceError(f"{where}: JSON in the unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{where}: not {encoding.upper()} JSON (byte offset "
                          f"{exc.start + start})") from None


def _finite(text: str) -> float | str:
    number = float(text)
    return number if number not in (float("inf"), float("-inf")) else text


def _integer(text: str) -> int | str:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else text


def load_json(data: str | bytes, where: str, charset: str | None = None) -> Any:
    """The one JSON parser of every source, over HTTP and from files, with the one-line errors
    above. Decoded as `_json_text` says. A value JSON cannot hold as a finite number (NaN,
    Infinity, -Infinity, 1e400, an integer of more than 4,300 digits) is kept as the text it was
    sent as, so validation rejects its row with a reason naming the field (type:number), instead
    of the whole body failing or NaN passing as a missing value."""
    text = _json_text(data, where, charset)
    try:
        return json.loads(text, parse_constant=str, parse_float=_finite, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise json_error(exc, where) from None
    except RecursionError:
        raise SourceError(f"{where}: malformed JSON: nested deeper than the parser follows "
                          f"(about {sys.getrecursionlimit()} levels)") from None


# --- XML ---------------------------------------------------------------------------------------


def xml_error(exc: ET.ParseError, where: str) -> SourceError:
    line, column = exc.position
    if exc.code in _XML_CUT:
        return SourceError(f"{where}: malformed XML at line {line}, column {column}: the body is "
                           "truncated (it ends before the document closes)")
    return SourceError(f"{where}: malformed XML at line {line}, column {column}")


# --- CSV ---------------------------------------------------------------------------------------


def csv_error(exc: Exception, where: str) -> SourceError:
    """One line for pandas' CSV parser error, naming the line."""
    message = " ".join(str(exc).split())
    if found := _EOF_IN_STRING.search(message):
        line = int(found.group(1)) + 1
        return SourceError(f"{where}: line {line}: a quoted cell is still open at the end of "
                           "the body (cut short)")
    if found := _FIELDS.search(message):
        expected, line, saw = found.groups()
        return SourceError(f"{where}: line {line}: {saw} cells where the first line has {expected}")
    return SourceError(f"{where}: malformed CSV: {message}")


def _line(data: str | bytes, start: int, end: int | None) -> str:
    piece = data[start:end]
    text = piece.decode("utf-8", "replace") if isinstance(piece, bytes) else piece
    return text.lstrip("\ufeff").rstrip("\r")


def _cells(line: str, delimiter: str, quotechar: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter, quotechar=quotechar), []))


def csv_complete(data: str | bytes, delimiter: str, quotechar: str, where: str) -> None:
    """Raise when the last line has no line end and fewer cells than the first line: the body was
    cut mid-record. (An open quoted cell is pandas' "EOF inside string", see csv_error.)"""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    if not data or data.endswith((newline, b"\r" if isinstance(data, bytes) else "\r")):
        return
    last_start = data.rfind(newline) + 1
    if last_start == 0:
        return  # a single line: nothing to compare with
    last = _line(data, last_start, None)
    if not last.strip() or last.count(quotechar) % 2:
        return  # blank, or the end of a multi-line quoted cell (pandas checks the quotes)
    first_end = data.find(newline)
    expected = _cells(_line(data, 0, first_end), delimiter, quotechar)
    found = _cells(last, delimiter, quotechar)
    if found < expected:
        number = data.count(newline) + 1
        raise SourceError(f"{where}: line {number}: the body ends mid-record ({found} of "
                          f"{expected} cells, no line end): cut short")


def records_complete(text: str, delimiter: str, end: str, where: str) -> None:
    """Raise when the last line of a delimited file whose every record ends with the field `end`
    (DWD's `eor`) has no line end and lacks that field: the delivery was cut mid-line. Header
    and rows count their fields without `end`. A cut exactly at a line end cannot be seen here."""
    if not text or text.endswith(("\n", "\r")):
        return
    last_start = text.rfind("\n") + 1
    last = text[last_start:].split(delimiter)
    if last_start == 0 or not "".join(last).strip() or last[-1].strip() == end:
        return
    expected = len(text[: text.find("\n")].rstrip("\r").split(delimiter)) - 1
    found = min(len(last), expected)
    raise SourceError(f"{where} line {text.count(chr(10)) + 1} is cut ({found} of {expected} "
                      "fields): the delivery is incomplete")
