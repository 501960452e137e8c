"""Dev/test-only stand-in for Apache Solr: the subset of Solr's HTTP API that CKAN 2.12 uses.

*** DEV/TEST STAND-IN — NOT FOR PRODUCTION. ***
Production deployments use real Apache Solr (CKAN's official Solr image, ``ckan/ckan-solr``)
configured through CKAN's ``solr_url``. This module exists only because Solr cannot be obtained
on the development/test machines; it is an in-memory scan over a JSON file, not a search engine.

Run::

    python -m odp.portal.solr_standin --host 127.0.0.1 --port 58983 --data-dir DIR

and point CKAN at ``solr_url = http://127.0.0.1:58983/solr/ckan``. In-process (tests)::

    server = serve("127.0.0.1", 0, tmp_path)          # bound, not yet serving
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ...; server.shutdown(); server.server_close()     # server_close() flushes to disk

What CKAN 2.12 sends (read from ckan/lib/search/{__init__,common,index,query}.py, branch
dev-v2.12, and pysolr 3.11.0, which CKAN pins):

* ``is_available``: ``GET /select/?q=*:*&rows=1&wt=json``.
* ``check_solr_schema_version``: ``GET /schema?wt=schema.xml`` (managed schema), falling back on
  an HTTP error to ``GET /admin/file/?file=schema.xml``; CKAN reads the root ``name`` attribute
  (``ckan-2.12``), or ``version`` if ``name`` does not start with ``ckan-``.
* indexing: ``conn.add(docs=[pkg_dict], commit=...)`` → ``POST /update/?commit=true`` with a JSON
  array of documents (pysolr drops ``None`` and ``""`` values). The schema's uniqueKey is
  ``index_id`` (md5 of id + site_id), not ``id``.
* ``conn.delete(q=...)`` / ``conn.commit()`` → ``POST /update/`` with XML
  ``<delete><query>…</query></delete>`` / ``<commit />``. Delete queries look like
  ``+entity_type:package AND +(id:"X" OR name:"X") AND +site_id:"S"`` or ``+site_id:"S"``.
* search: ``GET /select/?…&wt=json`` (``POST`` form-encoded when the query string is >1024 chars)
  with q, fq (repeated), fl, sort, start, rows, facet, facet.field (repeated), facet.limit,
  facet.mincount, defType (dismax unless q has ':'), qf, mm, tie, df=text, q.op=AND.

Supported query syntax (q and fq): ``*:*``, bare terms, ``field:value``, ``field:"phrase"``,
``field:(a OR b)``, ``+``/``-``/``!``/``NOT`` prefixes, ``AND``/``OR``/``&&``/``||``, groups,
ranges ``[a TO b]``/``{a TO b}`` with ``*`` and ``NOW``-style date math, ``*``/``?`` wildcards,
``field:*`` (field exists). Field semantics follow CKAN's schema.xml: string fields match exactly
(case-sensitive); text fields are tokenised, lower-cased, accent-folded and lightly stemmed;
``text`` is the copyField catch-all. Scoring is a crude boost sum, good enough for
``score desc`` ordering; it is not BM25.

Not supported: highlighting, spellcheck, grouping, stats, cursorMark, function queries, local
params other than ``{!tag=…}``/``{!ex=…}``, atomic updates, child documents, real commit
visibility (added documents are searchable immediately; commits only persist to disk).
"""

# DEV/TEST STAND-IN ONLY — NOT FOR PRODUCTION. Production uses real Solr (CKAN's official Solr
# image) via CKAN's `solr_url`. See the module docstring for what is and is not supported.

from __future__ import annotations

import argparse
import calendar
import contextlib
import fnmatch
import functools
import json
import logging
import os
import re
import signal
import threading
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("odp.solr_standin")

SCHEMA_NAME = "ckan-2.12"  # CKAN 2.12 accepts 2.8 … 2.12 (SUPPORTED_SCHEMA_VERSIONS)
SCHEMA_VERSION = "1.6"
UNIQUE_KEY = "index_id"
REQUIRED_FIELDS = ("index_id", "id", "site_id")
DEFAULT_CORE = "ckan"
SOLR_VERSION = "9.7.0-standin"


# --------------------------------------------------------------------------------------------
# Schema (mirrors ckan/config/solr/schema.xml, CKAN 2.12)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    type: str  # string | text | text_general | text_ngram | date | int | float | boolean
    multi: bool = False
    stored: bool = True


_S, _T, _TG, _D = "string", "text", "text_general", "date"
FIELDS: dict[str, FieldSpec] = {
    **{
        n: FieldSpec(_S)
        for n in (
            "index_id",
            "id",
            "site_id",
            "entity_type",
            "dataset_type",
            "state",
            "name",
            "revision_id",
            "version",
            "url",
            "ckan_url",
            "download_url",
            "license",
            "license_id",
            "organization",
            "capacity",
            "_version_",
        )
    },
    **{
        n: FieldSpec(_S, multi=True)
        for n in ("tags", "groups", "res_format", "res_url", "res_type")
    },
    "permission_labels": FieldSpec(_S, multi=True, stored=False),
    "title": FieldSpec(_T),
    "notes": FieldSpec(_T),
    **{n: FieldSpec(_TG) for n in ("author", "author_email", "maintainer", "maintainer_email")},
    "res_name": FieldSpec(_TG, multi=True),
    "res_description": FieldSpec(_TG, multi=True),
    "title_ngram": FieldSpec("text_ngram"),
    "name_ngram": FieldSpec("text_ngram"),
    **{
        n: FieldSpec(_T, multi=True, stored=False)
        for n in (
            "text",
            "urls",
            "depends_on",
            "dependency_of",
            "derives_from",
            "has_derivation",
            "links_to",
            "linked_from",
            "child_of",
            "parent_of",
        )
    },
    **{
        n: FieldSpec("int", stored=False)
        for n in (
            "views_total",
            "views_recent",
            "resources_accessed_total",
            "resources_accessed_recent",
        )
    },
    "metadata_created": FieldSpec(_D),
    "metadata_modified": FieldSpec(_D),
    "indexed_ts": FieldSpec(_D),
    "title_string": FieldSpec(_S, stored=False),
    "data_dict": FieldSpec(_S),
    "validated_data_dict": FieldSpec(_S),
}
# Solr picks the longest matching dynamic-field pattern; this list is in that order.
DYNAMIC_FIELDS: list[tuple[str, FieldSpec]] = [
    ("res_extras_*", FieldSpec(_T, multi=True)),
    ("extras_*", FieldSpec(_T)),
    ("vocab_*", FieldSpec(_S, multi=True)),
    ("*_date", FieldSpec(_D)),
    ("*", FieldSpec(_S, stored=False)),
]
# copyField: dest -> sources (sources ending in * are globs). `text` also copies `urls`.
COPY_FIELDS: dict[str, tuple[str, ...]] = {
    "urls": ("urls", "url", "ckan_url", "download_url", "res_url"),
    "text": (
        "text",
        "extras_*",
        "res_extras_*",
        "vocab_*",
        "name",
        "title",
        "license",
        "notes",
        "tags",
        "groups",
        "organization",
        "res_name",
        "res_description",
        "maintainer",
        "author",
    ),
}
STORED_COPIES = {"title_ngram": "title", "name_ngram": "name"}


@functools.lru_cache(maxsize=4096)
def field_spec(name: str) -> FieldSpec:
    if name in FIELDS:
        return FIELDS[name]
    for pattern, spec in DYNAMIC_FIELDS:
        if fnmatch.fnmatchcase(name, pattern):
            return spec
    return DYNAMIC_FIELDS[-1][1]


def schema_xml() -> str:
    root = ET.Element("schema", name=SCHEMA_NAME, version=SCHEMA_VERSION)
    fields = ET.SubElement(root, "fields")
    for tag, items in (("field", FIELDS.items()), ("dynamicField", DYNAMIC_FIELDS)):
        for name, spec in items:
            ET.SubElement(
                fields,
                tag,
                name=name,
                type=spec.type,
                indexed="true",
                stored=str(spec.stored).lower(),
                multiValued=str(spec.multi).lower(),
            )
    ET.SubElement(root, "uniqueKey").text = UNIQUE_KEY
    for dest, sources in COPY_FIELDS.items():
        for src in sources:
            if src != dest:
                ET.SubElement(root, "copyField", source=src, dest=dest)
    ET.SubElement(root, "copyField", source="urls", dest="text")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def schema_json() -> dict[str, Any]:
    def row(name: str, spec: FieldSpec) -> dict[str, Any]:
        return {
            "name": name,
            "type": spec.type,
            "indexed": True,
            "stored": spec.stored,
            "multiValued": spec.multi,
        }

    return {
        "name": SCHEMA_NAME,
        "version": float(SCHEMA_VERSION),
        "uniqueKey": UNIQUE_KEY,
        "fields": [row(n, s) for n, s in FIELDS.items()],
        "dynamicFields": [row(n, s) for n, s in DYNAMIC_FIELDS],
    }


class SolrError(Exception):
    """An error reported to the client as a Solr-style JSON error body."""

    def __init__(self, msg: str, code: int = 400) -> None:
        super().__init__(msg)
        self.msg, self.code = msg, code


# --------------------------------------------------------------------------------------------
# Values: analysis, dates, normalisation
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$")
_MATH_RE = re.compile(r"([+-]\d+|/)([A-Z]+)")
_UNITS = {
    "YEAR": "years",
    "MONTH": "months",
    "DAY": "days",
    "DATE": "days",
    "HOUR": "hours",
    "MINUTE": "minutes",
    "SECOND": "seconds",
    "MILLI": "ms",
    "MILLISECOND": "ms",
}


def parse_date(value: str) -> datetime:
    """Parse a Solr date (``2024-05-01T12:00:00.123Z``) or date math (``NOW-1DAY/DAY``)."""
    m = re.match(r"^(NOW|\d{4}-\d{2}-\d{2}T[\d:.]+Z)(.*)$", value.strip())
    if not m:
        raise SolrError(f"Invalid Date String:'{value}'")
    base, math = m.groups()
    if base == "NOW":
        dt = datetime.now(UTC).replace(tzinfo=None)
    else:
        d = _DATE_RE.match(base)
        if not d:
            raise SolrError(f"Invalid Date String:'{value}'")
        y, mo, da, h, mi, s, frac = d.groups()
        micros = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(da), int(h), int(mi), int(s), micros)
    pos = 0
    for op in _MATH_RE.finditer(math):
        if op.start() != pos:
            break
        pos = op.end()
        unit = _UNITS.get(op.group(2).rstrip("S") if op.group(2) != "DAYS" else "DAY")
        if unit is None:
            raise SolrError(f"Invalid Date Math String:'{value}'")
        dt = _round_date(dt, unit) if op.group(1) == "/" else _add(dt, int(op.group(1)), unit)
    if pos != len(math):
        raise SolrError(f"Invalid Date Math String:'{value}'")
    return dt


def _add(dt: datetime, n: int, unit: str) -> datetime:
    if unit in ("years", "months"):
        months = dt.month - 1 + n * (12 if unit == "years" else 1)
        year, month = dt.year + months // 12, months % 12 + 1
        return dt.replace(
            year=year, month=month, day=min(dt.day, calendar.monthrange(year, month)[1])
        )
    if unit == "ms":
        return dt + timedelta(milliseconds=n)
    return dt + timedelta(**{unit: n})


def _round_date(dt: datetime, unit: str) -> datetime:
    order = ["years", "months", "days", "hours", "minutes", "seconds", "ms"]
    keep = order.index(unit)
    parts = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0}
    names = ["month", "day", "hour", "minute", "second", "microsecond"]
    return dt.replace(**{k: parts[k] for k in names[keep:]})


def format_date(dt: datetime) -> str:
    """Solr's stored form: millisecond precision, ``.000`` omitted, trailing Z."""
    ms = dt.microsecond // 1000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms:03d}".rstrip("0") if ms else "") + "Z"


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _stem(t: str) -> str:
    # A very light stand-in for Solr's English Snowball stemmer: plurals only.
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if t.endswith("sses"):
        return t[:-2]
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        return t[:-1]
    return t


_PART_RE = re.compile(r"[^\W\d_]+|\d+")


def analyze(value: str, kind: str = _T) -> list[str]:
    """Tokenise like CKAN's `text`/`text_general` types: word-delimiter split, lowercase, fold."""
    tokens: list[str] = []
    for word in value.split():
        for part in _PART_RE.findall(word):
            pieces = [part]
            if kind == _T:  # splitOnCaseChange=1 for `text` only
                pieces = re.split(r"(?<=[^\W\d_])(?<![A-Z])(?=[A-Z])", part)
            for piece in pieces:
                tok = _fold(piece.lower())
                tokens.append(_stem(tok) if kind == _T else tok)
    return [t for t in tokens if t]


def _as_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def normalize_doc(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate and coerce one incoming document the way Solr would (or reject it)."""
    doc: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or name == "boost":
            continue
        spec = field_spec(name)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        values = [v for v in values if v is not None]
        if not values:
            continue
        if len(values) > 1 and not spec.multi:
            raise SolrError(
                f"ERROR: [doc={raw.get(UNIQUE_KEY)}] multiple values encountered "
                f"for non multiValued field {name}: {values!r}"
            )
        out = []
        for v in values:
            if isinstance(v, dict):
                raise SolrError(
                    f"ERROR: [doc={raw.get(UNIQUE_KEY)}] field {name!r}: nested "
                    "objects (atomic updates / child docs) are not supported"
                )
            try:
                if spec.type == _D:
                    out.append(format_date(parse_date(_as_str(v))))
                elif spec.type == "int":
                    out.append(int(v))
                else:
                    out.append(_as_str(v))
            except (ValueError, SolrError) as exc:
                raise SolrError(
                    f"ERROR: [doc={raw.get(UNIQUE_KEY)}] Error adding field '{name}'='{v}': {exc}"
                ) from exc
        doc[name] = out if spec.multi else out[0]
    for req in REQUIRED_FIELDS:
        if req not in doc:
            raise SolrError(
                f"[doc={raw.get(UNIQUE_KEY)}] missing required field: {req}"
                if req != UNIQUE_KEY
                else f"Document is missing mandatory uniqueKey field: {UNIQUE_KEY}"
            )
    for dest, src in STORED_COPIES.items():
        if src in doc:
            doc[dest] = doc[src]
    doc.setdefault("indexed_ts", format_date(datetime.now(UTC).replace(tzinfo=None)))
    doc["_version_"] = str(time.time_ns())
    return doc


def field_values(doc: dict[str, Any], name: str) -> list[Any]:
    """All indexed values of `name` in `doc`, including copyField targets."""
    sources = COPY_FIELDS.get(name)
    if sources is None:
        v = doc.get(name)
        return [] if v is None else (v if isinstance(v, list) else [v])
    out: list[Any] = []
    for src in sources:
        if src == name:
            v = doc.get(name)
            out.extend([] if v is None else (v if isinstance(v, list) else [v]))
        elif "*" in src:
            for key in doc:
                if fnmatch.fnmatchcase(key, src):
                    out.extend(field_values(doc, key))
        else:
            out.extend(field_values(doc, src))
    if name == "text":
        out.extend(field_values(doc, "urls"))
    return out


# --------------------------------------------------------------------------------------------
# Query language
# --------------------------------------------------------------------------------------------

Fields = tuple[tuple[str, float], ...]  # (field, boost)


@dataclass
class MatchAll:
    pass


@dataclass
class TermQ:
    fields: Fields
    text: str
    phrase: bool = False


@dataclass
class RangeQ:
    field: str
    lo: str | None
    hi: str | None
    incl_lo: bool
    incl_hi: bool


@dataclass
class BoolQ:
    must: list[Any] = field(default_factory=list)
    should: list[Any] = field(default_factory=list)
    must_not: list[Any] = field(default_factory=list)
    min_should: int | None = None
    explicit_ops: bool = False


Query = MatchAll | TermQ | RangeQ | BoolQ
_SPECIAL = set(' \t\r\n()"[]{}^~')
_MUST, _SHOULD, _NOT = "must", "should", "must_not"


class QueryParser:
    """Recursive-descent parser for the Lucene/dismax subset CKAN and its extensions use."""

    def __init__(
        self, text: str, default_fields: Fields, default_and: bool, fielded: bool = True
    ) -> None:
        self.s, self.i = text, 0
        self.default_fields, self.default_and, self.fielded = default_fields, default_and, fielded

    def error(self, why: str) -> SolrError:
        return SolrError(
            f"org.apache.solr.search.SyntaxError: Cannot parse '{self.s}': {why} "
            f"at position {self.i}"
        )

    def parse(self) -> Query:
        q = self._bool(self.default_fields, nested=False)
        if self.i < len(self.s):
            raise self.error("unexpected ')'")
        return q

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def _peek_word(self, *words: str) -> str | None:
        for w in words:
            end = self.i + len(w)
            if self.s.startswith(w, self.i) and (
                w in ("&&", "||", "!")
                or end >= len(self.s)
                or self.s[end].isspace()
                or self.s[end] == "("
            ):
                return w
        return None

    def _bool(self, fields: Fields, nested: bool) -> BoolQ:
        q = BoolQ()
        occurs: list[tuple[str, Query]] = []
        while True:
            self._ws()
            if self.i >= len(self.s) or (nested and self.s[self.i] == ")"):
                break
            conj = None
            if w := self._peek_word("AND", "&&", "OR", "||"):
                conj = "AND" if w in ("AND", "&&") else "OR"
                q.explicit_ops = True
                self.i += len(w)
                self._ws()
            mod = None
            if self.i < len(self.s) and self.s[self.i] in "+-":
                mod = self.s[self.i]
                self.i += 1
            elif w := self._peek_word("NOT", "!"):
                mod = "-"
                self.i += len(w)
                self._ws()
            clause = self._clause(fields)
            # Lucene's QueryParserBase.addClause semantics
            if occurs and conj == "AND" and occurs[-1][0] != _NOT:
                occurs[-1] = (_MUST, occurs[-1][1])
            if occurs and self.default_and and conj == "OR" and occurs[-1][0] != _NOT:
                occurs[-1] = (_SHOULD, occurs[-1][1])
            if mod == "-":
                occ = _NOT
            elif self.default_and:
                occ = _SHOULD if conj == "OR" else _MUST
            else:
                occ = _MUST if (mod == "+" or conj == "AND") else _SHOULD
            occurs.append((occ, clause))
        for occ, clause in occurs:
            getattr(q, occ).append(clause)
        return q

    def _clause(self, fields: Fields) -> Query:
        self._ws()
        if self.i >= len(self.s):
            raise self.error("expected a term")
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            sub = self._bool(fields, nested=True)
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise self.error("missing ')'")
            self.i += 1
            self._suffix()
            return sub
        if c == '"':
            return TermQ(fields, self._quoted(), phrase=True)
        if c in "[{":
            if len(fields) != 1:
                raise self.error("range query needs a field")
            return self._range(fields[0][0])
        word = self._word()
        if self.fielded and self.i < len(self.s) and self.s[self.i] == ":" and word:
            self.i += 1
            if word == "*" and self.s.startswith("*", self.i):
                self.i += 1
                return MatchAll()
            return self._clause(((word, 1.0),))
        if word == "*" and fields == self.default_fields and self.fielded:
            return MatchAll()
        if not word:
            raise self.error(f"unexpected {c!r}")
        return TermQ(fields, word)

    def _word(self) -> str:
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append("\\" + self.s[self.i + 1])  # keep escapes so wildcards stay literal
                self.i += 2
                continue
            if c in _SPECIAL or (c == ":" and self.fielded):
                break
            out.append(c)
            self.i += 1
        self._suffix()
        return "".join(out)

    def _suffix(self) -> None:  # boosts (^2) and fuzziness/slop (~1) are accepted and ignored
        while self.i < len(self.s) and self.s[self.i] in "^~":
            self.i += 1
            while self.i < len(self.s) and (self.s[self.i].isdigit() or self.s[self.i] == "."):
                self.i += 1

    def _quoted(self) -> str:
        self.i += 1
        out = []
        while self.i < len(self.s) and self.s[self.i] != '"':
            if self.s[self.i] == "\\" and self.i + 1 < len(self.s):
                self.i += 1
            out.append(self.s[self.i])
            self.i += 1
        if self.i >= len(self.s):
            raise self.error("unterminated phrase")
        self.i += 1
        self._suffix()
        return "".join(out)

    def _range(self, fname: str) -> RangeQ:
        incl_lo = self.s[self.i] == "["
        self.i += 1
        parts: list[str] = []
        while True:
            self._ws()
            if self.i >= len(self.s):
                raise self.error("unterminated range")
            c = self.s[self.i]
            if c in "]}":
                self.i += 1
                break
            if c == '"':
                parts.append(self._quoted())
                continue
            start = self.i
            while (
                self.i < len(self.s) and not self.s[self.i].isspace() and self.s[self.i] not in "]}"
            ):
                self.i += 1
            parts.append(self.s[start : self.i].replace("\\", ""))
        if len(parts) != 3 or parts[1] != "TO":
            raise self.error("expected [a TO b]")
        lo, hi = (None if p == "*" else p for p in (parts[0], parts[2]))
        return RangeQ(fname, lo, hi, incl_lo, self.s[self.i - 1] == "]")


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _wild(s: str) -> bool:
    return bool(re.search(r"(?<!\\)[*?]", s))


def _wild_pattern(s: str) -> str:
    # fnmatch pattern where escaped * ? are literal and [ ] are literal
    out = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append(f"[{s[i + 1]}]" if s[i + 1] in "*?[]" else s[i + 1])
            i += 2
            continue
        out.append("[[]" if s[i] == "[" else s[i])
        i += 1
    return "".join(out)


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def _match_field(doc: dict[str, Any], fname: str, q: TermQ) -> bool:
    spec = field_spec(fname)
    values = field_values(doc, fname)
    if not values:
        return False
    raw = q.text
    if not q.phrase and raw == "*":
        return True
    wild = not q.phrase and _wild(raw)
    if spec.type in (_S, "int", "float", _D, "boolean"):
        if wild:
            pat = _wild_pattern(raw)
            return any(fnmatch.fnmatchcase(_as_str(v), pat) for v in values)
        text = raw if q.phrase else _unescape(raw)
        if spec.type == _D:
            with contextlib.suppress(SolrError):
                text = format_date(parse_date(text))
        return any(_as_str(v) == text for v in values)
    if spec.type == "text_ngram":
        grams = _unescape(raw).lower().split()
        return bool(grams) and any(
            all(2 <= len(g) <= 10 and g in _as_str(v).lower() for g in grams) for v in values
        )
    if wild:
        pat = _fold(_wild_pattern(raw).lower())
        return any(fnmatch.fnmatchcase(t, pat) for v in values for t in analyze(_as_str(v), "x"))
    needle = analyze(raw if q.phrase else _unescape(raw), spec.type)
    return any(_contains(analyze(_as_str(v), spec.type), needle) for v in values)


def _in_range(doc: dict[str, Any], q: RangeQ) -> bool:
    spec = field_spec(q.field)
    values = field_values(doc, q.field)
    if spec.type == _D:
        conv: Any = lambda v: parse_date(_as_str(v))  # noqa: E731
    elif spec.type in ("int", "float"):
        conv = float
    elif spec.type in (_T, _TG):
        values = [t for v in values for t in analyze(_as_str(v), spec.type)]
        conv = str
    else:
        conv = _as_str
    lo = None if q.lo is None else conv(q.lo)
    hi = None if q.hi is None else conv(q.hi)
    for v in values:
        try:
            x = conv(v)
        except (SolrError, ValueError):
            continue
        if lo is not None and (x < lo or (x == lo and not q.incl_lo)):
            continue
        if hi is not None and (x > hi or (x == hi and not q.incl_hi)):
            continue
        return True
    return False


def score(q: Query, doc: dict[str, Any]) -> float | None:
    """Relevance score of `doc` for `q`, or None if it does not match."""
    if isinstance(q, MatchAll):
        return 1.0
    if isinstance(q, TermQ):
        hits = sorted((b for f, b in q.fields if _match_field(doc, f, q)), reverse=True)
        return None if not hits else hits[0] + 0.1 * sum(hits[1:])  # dismax, tie=0.1
    if isinstance(q, RangeQ):
        return 1.0 if _in_range(doc, q) else None
    if any(score(c, doc) is not None for c in q.must_not):
        return None
    total = 0.0
    for c in q.must:
        s = score(c, doc)
        if s is None:
            return None
        total += s
    matched = 0
    for c in q.should:
        s = score(c, doc)
        if s is not None:
            matched += 1
            total += s
    need = q.min_should or 0
    if not q.must:  # a query of only SHOULD clauses needs at least one of them
        need = max(need, 1)
    if q.should and matched < min(need, len(q.should)):
        return None
    if not q.must and not q.should:
        return 1.0 if q.must_not else None  # pure negative: *:* minus the negatives
    return total


def min_should_match(spec: str, n: int) -> int:
    """Solr's `mm` syntax, e.g. CKAN's default ``2<-1 5<80%``."""

    def one(expr: str) -> int:
        pct = expr.endswith("%")
        v = int(expr.rstrip("%"))
        k = (n * abs(v)) // 100 if pct else abs(v)
        return n - k if v < 0 else k

    spec = spec.strip()
    if not spec:
        return n
    if "<" not in spec:
        return max(0, min(n, one(spec)))
    result = n  # for n at or below the first threshold, everything is required
    for cond in spec.split():
        threshold, expr = cond.split("<", 1)
        if n > int(threshold):
            result = one(expr)
    return max(0, min(n, result))


def _strip_local_params(value: str) -> str:
    value = value.strip()
    if not value.startswith("{!"):
        return value
    end = value.find("}")
    params = value[2:end].split()
    if end < 0 or any(not p.startswith(("tag=", "ex=", "key=")) for p in params):
        raise SolrError(f"local params not supported by the Solr stand-in: {value!r}")
    return value[end + 1 :]


def _parse_fields(spec: str) -> Fields:
    out = []
    for part in spec.split():
        name, _, boost = part.partition("^")
        out.append((name, float(boost or 1)))
    return tuple(out)


def build_query(params: dict[str, list[str]]) -> tuple[Query, list[Query]]:
    """Main query (scored) and filter queries from Solr request params."""
    p1 = {k: v[-1] for k, v in params.items() if v}
    default_and = p1.get("q.op", "OR").upper() == "AND"
    df = ((p1.get("df", "text"), 1.0),)
    q_text = _strip_local_params(p1.get("q", "")) or "*:*"
    def_type = p1.get("defType", "lucene")
    if def_type in ("dismax", "edismax"):
        qf = _parse_fields(p1.get("qf", "")) or df
        parser = QueryParser(q_text, qf, default_and=False, fielded=def_type == "edismax")
        if def_type == "dismax" and q_text.strip() in ("*:*", ""):
            query: Query = MatchAll()
        else:
            query = parser.parse()
            if isinstance(query, BoolQ) and query.should and not query.explicit_ops:
                mm = p1.get("mm", "100%")
                query.min_should = min_should_match(mm, len(query.should))
    elif def_type == "lucene":
        query = QueryParser(q_text, df, default_and).parse()
    else:
        raise SolrError(f"Unknown query parser '{def_type}' (Solr stand-in)")
    filters = [
        QueryParser(_strip_local_params(fq), df, default_and).parse()
        for fq in params.get("fq", [])
        if fq.strip()
    ]
    return query, filters


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------


class DocumentStore:
    """Thread-safe document map keyed by the uniqueKey, persisted to one JSON file on commit."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._docs: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._docs = {d[UNIQUE_KEY]: d for d in data["docs"]}
                log.info("solr stand-in: loaded %d documents from %s", len(self._docs), path)
            except (ValueError, KeyError, TypeError) as exc:
                aside = path.with_suffix(f".corrupt-{int(time.time())}")
                path.replace(aside)
                log.error(
                    "solr stand-in: %s unreadable (%s); moved to %s, starting empty "
                    "(run `ckan search-index rebuild`)",
                    path,
                    exc,
                    aside,
                )

    def add(self, raw_docs: Iterable[dict[str, Any]]) -> int:
        docs = [normalize_doc(d) for d in raw_docs]  # validate all before changing anything
        with self._lock:
            for d in docs:
                self._docs[d[UNIQUE_KEY]] = d
            self._dirty = self._dirty or bool(docs)
        return len(docs)

    def delete_ids(self, ids: Iterable[str]) -> int:
        with self._lock:
            n = sum(self._docs.pop(i, None) is not None for i in ids)
            self._dirty = self._dirty or bool(n)
        return n

    def delete_query(self, q: Query) -> int:
        with self._lock:
            doomed = [k for k, d in self._docs.items() if score(q, d) is not None]
            for k in doomed:
                del self._docs[k]
            self._dirty = self._dirty or bool(doomed)
        return len(doomed)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._docs.get(key)

    def snapshot(self) -> list[dict[str, Any]]:
        # Stored docs are never mutated in place (updates replace them), so sharing is safe.
        with self._lock:
            return list(self._docs.values())

    def commit(self) -> None:
        with self._lock:
            if not self._dirty or self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            payload = {
                "standin": "odp.portal.solr_standin",
                "schema": SCHEMA_NAME,
                "docs": list(self._docs.values()),
            }
            tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.path)
            self._dirty = False
            log.debug("solr stand-in: committed %d documents to %s", len(self._docs), self.path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._docs)


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


def _sort_key_value(doc: dict[str, Any], fname: str) -> Any:
    values = field_values(doc, fname)
    if not values:
        return None
    v = values[0]
    return v if isinstance(v, (int, float)) else _as_str(v)


def _parse_sort(spec: str) -> list[tuple[str, bool]]:
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        bits = part.split()
        if len(bits) != 2 or bits[1].lower() not in ("asc", "desc"):
            raise SolrError(f"Can't determine a Sort Order (asc or desc) in sort spec '{spec}'")
        out.append((bits[0], bits[1].lower() == "desc"))
    return out


def _select_fields(doc: dict[str, Any], fl: list[str], score_value: float) -> dict[str, Any]:
    want_all = not fl or "*" in fl
    out = {}
    for name, value in doc.items():
        if not field_spec(name).stored:
            continue
        if want_all or any(fnmatch.fnmatchcase(name, f) for f in fl):
            out[name] = value
    if "score" in fl:
        out["score"] = score_value
    return out


def _facet(
    docs: list[dict[str, Any]], all_docs: list[dict[str, Any]], fname: str, p1: dict[str, str]
) -> list[Any]:
    def opt(name: str, default: str) -> str:
        return p1.get(f"f.{fname}.facet.{name}", p1.get(f"facet.{name}", default))

    limit = int(opt("limit", "100"))
    mincount = int(opt("mincount", "0"))
    offset = int(opt("offset", "0"))
    prefix = opt("prefix", "")
    order = opt("sort", "count" if limit > 0 else "index")
    spec = field_spec(fname)

    def terms(doc: dict[str, Any]) -> set[str]:
        vals = [_as_str(v) for v in field_values(doc, fname)]
        if spec.type in (_T, _TG):
            return {t for v in vals for t in analyze(v, spec.type)}
        return set(vals)

    counts: dict[str, int] = {}
    for d in docs:
        for t in terms(d):
            counts[t] = counts.get(t, 0) + 1
    if mincount <= 0:
        for d in all_docs:
            for t in terms(d):
                counts.setdefault(t, 0)
    items = [(t, c) for t, c in counts.items() if c >= mincount and t.startswith(prefix)]
    items.sort(key=(lambda tc: (-tc[1], tc[0])) if order == "count" else (lambda tc: tc[0]))
    items = items[offset:] if limit < 0 else items[offset : offset + limit]
    return [x for tc in items for x in tc]


def search(store: DocumentStore, params: dict[str, list[str]]) -> dict[str, Any]:
    started = time.monotonic()
    p1 = {k: v[-1] for k, v in params.items() if v}
    query, filters = build_query(params)
    start = int(p1.get("start") or 0)
    rows = int(p1["rows"]) if p1.get("rows", "").strip() else 10
    if start < 0 or rows < 0:
        raise SolrError("'start' and 'rows' must be >= 0")
    all_docs = store.snapshot()
    hits: list[tuple[float, dict[str, Any]]] = []
    for doc in all_docs:
        if any(score(f, doc) is None for f in filters):
            continue
        s = score(query, doc)
        if s is not None:
            hits.append((s, doc))
    sort = _parse_sort(p1.get("sort", "score desc"))

    def compare(a: tuple[float, dict[str, Any]], b: tuple[float, dict[str, Any]]) -> int:
        for fname, desc in sort:
            va = a[0] if fname == "score" else _sort_key_value(a[1], fname)
            vb = b[0] if fname == "score" else _sort_key_value(b[1], fname)
            if va == vb:
                continue
            if va is None or vb is None:  # sortMissingLast, whatever the direction
                return 1 if va is None else -1
            if type(va) is not type(vb):
                va, vb = str(va), str(vb)
            return (1 if va < vb else -1) if desc else (-1 if va < vb else 1)
        return 0

    hits.sort(key=functools.cmp_to_key(compare))
    fl = [f for f in re.split(r"[\s,]+", p1.get("fl", "*")) if f]
    page = [_select_fields(d, fl, s) for s, d in hits[start : start + rows]]
    echo = {k: (v[0] if len(v) == 1 else v) for k, v in params.items()}
    result: dict[str, Any] = {
        "responseHeader": {
            "status": 0,
            "QTime": int((time.monotonic() - started) * 1000),
            "params": echo,
        },
        "response": {"numFound": len(hits), "start": start, "numFoundExact": True, "docs": page},
    }
    if p1.get("facet", "false").lower() == "true":
        matched = [d for _, d in hits]
        fields = [_strip_local_params(f) for f in params.get("facet.field", [])]
        result["facet_counts"] = {
            "facet_queries": {},
            "facet_ranges": {},
            "facet_intervals": {},
            "facet_heatmaps": {},
            "facet_fields": {f: _facet(matched, all_docs, f, p1) for f in fields},
        }
    return result


# --------------------------------------------------------------------------------------------
# Updates (JSON and XML bodies, as pysolr and Solr's own tools send them)
# --------------------------------------------------------------------------------------------


class _Pairs(dict):  # keeps duplicate keys, which Solr's JSON update syntax allows
    pairs: list[tuple[str, Any]]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    d = _Pairs(pairs)
    d.pairs = pairs
    return d


def apply_update(
    store: DocumentStore, body: bytes, content_type: str, params: dict[str, list[str]]
) -> bool:
    """Apply an /update request; returns True if it asked for a commit."""
    commit = any(params.get(k, ["false"])[-1] == "true" for k in ("commit", "softCommit"))
    text = body.decode("utf-8").strip()
    if not text:
        return commit
    delete_op = params.get("q.op", ["OR"])[-1].upper() == "AND"

    def delete_by_query(q: str) -> None:
        n = store.delete_query(QueryParser(q, (("text", 1.0),), delete_op).parse())
        log.debug("solr stand-in: delete by query %r removed %d", q, n)

    if "json" in content_type or text[0] in "[{":
        try:
            data = json.loads(text, object_pairs_hook=_pairs_hook)
        except ValueError as exc:
            raise SolrError(f"Cannot parse provided JSON: {exc}") from exc
        if isinstance(data, list):
            store.add(data)
            return commit
        for key, value in data.pairs:
            if key == "add":
                store.add([value.get("doc", value)])
            elif key == "delete":
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict) and "query" in item:
                        delete_by_query(item["query"])
                    else:
                        store.delete_ids([item["id"] if isinstance(item, dict) else str(item)])
            elif key in ("commit", "optimize"):
                commit = True
            else:
                raise SolrError(f"Unknown command '{key}' (Solr stand-in)")
        return commit
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SolrError(f"Cannot parse provided XML: {exc}") from exc
    for el in list(root) if root.tag == "update" else [root]:
        if el.tag == "add":
            docs = []
            for doc_el in el.findall("doc"):
                doc: dict[str, Any] = {}
                for f in doc_el.findall("field"):
                    name, value = f.get("name", ""), f.text or ""
                    if name in doc:
                        prev = doc[name]
                        doc[name] = (prev if isinstance(prev, list) else [prev]) + [value]
                    else:
                        doc[name] = [value] if field_spec(name).multi else value
                docs.append(doc)
            store.add(docs)
        elif el.tag == "delete":
            store.delete_ids([i.text or "" for i in el.findall("id")])
            for q in el.findall("query"):
                delete_by_query(q.text or "")
        elif el.tag in ("commit", "optimize"):
            commit = True
        elif el.tag != "rollback":
            raise SolrError(f"Unexpected XML tag <{el.tag}> (Solr stand-in)")
    return commit


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class SolrStandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: DocumentStore,
        core: str,
        autocommit_seconds: float = 15.0,
    ) -> None:
        self.store, self.core = store, core
        self._stop = threading.Event()  # set before binding: server_close() runs on bind errors
        super().__init__(address, _Handler)
        self._autocommit = threading.Thread(
            target=self._autocommit_loop, args=(autocommit_seconds,), daemon=True
        )
        self._autocommit.start()

    def _autocommit_loop(self, every: float) -> None:
        # Like Solr's autoCommit: persist documents added with commit=false eventually.
        while not self._stop.wait(every):
            try:
                self.store.commit()
            except OSError:
                log.exception("solr stand-in: autocommit failed")

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()
        self.store.commit()


def _header(status: int = 0, **extra: Any) -> dict[str, Any]:
    return {"responseHeader": {"status": status, "QTime": 0, **extra}}


class _Handler(BaseHTTPRequestHandler):
    server: SolrStandinServer
    protocol_version = "HTTP/1.1"
    server_version = "odp-solr-standin/1 (dev/test only)"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("solr stand-in: %s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _send(
        self, code: int, body: str | dict[str, Any], ctype: str = "application/json;charset=utf-8"
    ) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, msg: str) -> None:
        body = _header(code)
        body["error"] = {
            "metadata": ["error-class", "org.apache.solr.common.SolrException"],
            "msg": msg,
            "code": code,
        }
        self._send(code, body)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        params = parse_qs(url.query, keep_blank_values=True)
        if method == "POST" and "x-www-form-urlencoded" in ctype:
            for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
            body = b""
        parts = [p for p in url.path.split("/") if p]
        try:
            self._route(method, parts, params, body, ctype)
        except SolrError as exc:
            log.warning("solr stand-in: %s %s -> %d %s", method, self.path, exc.code, exc.msg)
            self._error(exc.code, exc.msg)
        except Exception as exc:  # keep serving; report like Solr's 500s
            log.exception("solr stand-in: %s %s failed", method, self.path)
            self._error(500, f"{type(exc).__name__}: {exc}")

    def _route(
        self, method: str, parts: list[str], params: dict[str, list[str]], body: bytes, ctype: str
    ) -> None:
        store, core = self.server.store, self.server.core
        p1 = {k: v[-1] for k, v in params.items() if v}
        if parts[:3] == ["solr", "admin", "cores"]:
            status = {core: {"name": core, "index": {"numDocs": len(store)}}}
            return self._send(200, {**_header(), "status": status})
        if parts[:4] == ["solr", "admin", "info", "system"]:
            return self._send(200, {**_header(), "lucene": {"solr-spec-version": SOLR_VERSION}})
        if len(parts) < 3 or parts[0] != "solr" or parts[1] != core:
            return self._not_found(method)
        rest = "/".join(parts[2:])
        if rest == "select":
            return self._send(200, search(store, params))
        if rest in ("update", "update/json", "update/xml", "update/json/docs"):
            if method != "POST" and not params:
                raise SolrError("missing content stream")
            if apply_update(store, body, ctype, params):
                store.commit()
            return self._send(200, _header())
        if rest == "admin/ping":
            return self._send(200, {**_header(), "status": "OK"})
        if rest == "admin/luke":
            index = {"numDocs": len(store), "maxDoc": len(store), "deletedDocs": 0}
            fields = {n: {"type": s.type} for n, s in FIELDS.items()}
            return self._send(200, {**_header(), "index": index, "fields": fields})
        if rest == "admin/file" and p1.get("file") in (
            "schema.xml",
            "managed-schema",
            "managed-schema.xml",
        ):
            return self._send(200, schema_xml(), "application/xml;charset=utf-8")
        if rest == "schema":
            if p1.get("wt") == "schema.xml":
                return self._send(200, schema_xml(), "application/xml;charset=utf-8")
            return self._send(200, {**_header(), "schema": schema_json()})
        if rest in ("schema/version", "schema/name", "schema/uniquekey"):
            key = {"uniquekey": "uniqueKey"}.get(parts[-1], parts[-1])
            return self._send(200, {**_header(), key: schema_json()[key]})
        if rest == "schema/fields":
            return self._send(200, {**_header(), "fields": schema_json()["fields"]})
        if rest == "get":
            ids = params.get("id", []) + [i for v in params.get("ids", []) for i in v.split(",")]
            docs = [_select_fields(d, ["*"], 1.0) for i in ids if (d := store.get(i))]
            if "id" in params and len(ids) == 1:
                return self._send(200, {"doc": docs[0] if docs else None})
            return self._send(200, {"response": {"numFound": len(docs), "start": 0, "docs": docs}})
        return self._not_found(method)

    def _not_found(self, method: str) -> None:
        log.warning(
            "solr stand-in: UNSUPPORTED endpoint %s %s -> 404 (the stand-in implements "
            "only what CKAN uses; see odp/portal/solr_standin.py)",
            method,
            self.path,
        )
        self._error(404, f"Solr stand-in: no handler for {self.path.split('?')[0]}")


def serve(
    host: str,
    port: int,
    data_dir: str | os.PathLike[str],
    core: str = DEFAULT_CORE,
    autocommit_seconds: float = 15.0,
) -> SolrStandinServer:
    """Bind a stand-in server (not yet serving): call ``serve_forever()`` (e.g. in a thread),
    then ``shutdown()`` and ``server_close()``; the latter writes pending documents to disk."""
    store = DocumentStore(Path(data_dir) / f"{core}.json")
    return SolrStandinServer((host, port), store, core, autocommit_seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m odp.portal.solr_standin",
        description="DEV/TEST-ONLY Solr stand-in for CKAN 2.12. NOT FOR PRODUCTION: "
        "production uses real Solr (CKAN's official Solr image) via solr_url.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=58983)
    ap.add_argument("--data-dir", required=True, help="directory for the persisted index")
    ap.add_argument("--core", default=DEFAULT_CORE)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        server = serve(args.host, args.port, args.data_dir, args.core)
    except OSError as exc:
        log.error("Solr stand-in cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.warning(
        "Solr STAND-IN (dev/test only, not for production) serving %d docs at http://%s:%d/solr/%s",
        len(server.store),
        args.host,
        server.server_address[1],
        args.core,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
