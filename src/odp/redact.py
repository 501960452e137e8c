"""Redaction of credentials in URLs and free text, before anything leaves the process: logs,
the run history, incidents and alerts, `odp status`/`odp history`/`odp run --json`.

- `redact_url(url)`: the userinfo (`user:password@`) becomes `***@`; the value of every
  sensitive query (or fragment) parameter becomes `***`. Everything else is kept byte for byte
  (no re-encoding, no reordering).
- `redact_text(text)`: every URL inside the text as above, and `name=value` / `name: value` /
  `"name": "value"` pairs whose name is sensitive (an `Authorization: Bearer …` header too;
  an unquoted `name: word` in lower-case letters is prose — "no API token: set …" — and kept).

A parameter name is sensitive when, ignoring case and URL-encoding, it contains one of
token, password, passwd, secret, signature, credential, session, apikey, auth (not "author"),
or one of its parts (split at `-`, `_`, `.` and camelCase) is key, sig, pwd or pass — so
`access_token`, `X-Amz-Signature`, `X-Amz-Credential`, `client_secret`, `apiKey`,
`subscription-key` and `sig` are, `keyword`, `page` and `format` are not. In free text a bare
`key` is not (quarantine keys are `key=school_id=12`); in a URL's query it is.

Also the modes of the state's private files (`private_dir` 0700, `private_file` 0600): the
history, the quarantine (raw source rows) and the logs are for the operator's account only.
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

MASK = "***"

_CONTAINS = re.compile(
    r"token|passw(?:or)?d|secret|signature|credential|session|api_?key|auth(?!or(?!i[sz]ation))")
_PARTS = frozenset({"key", "sig", "pwd", "pass", "pw"})
_SPLIT_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")

# A URL: scheme://… up to whitespace, a quote or an angle bracket.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")
_TRAILING = ".,;:!?)]}"
# A path segment holding another URL's userinfo (`/user:pw@host/…`, a proxied or replayed URL).
_PATH_USERINFO = re.compile(r"(?<=/)[^/?#@:]+:[^/?#@]*@")
# name=value, name: value, "name": "value", Authorization: Bearer value — the name and its
# separator; the value (up to whitespace, a quote, &, comma, semicolon or a bracket) follows.
_PAIR = re.compile(
    r"(?<![\w%.-])[\"']?(?P<name>[A-Za-z][\w.%-]*)[\"']?\s*(?P<sep>=|:(?!//))\s*"
    r"(?P<quote>[\"']?)(?P<scheme>(?:bearer|basic|token|digest)\s+)?", re.IGNORECASE)
_VALUE = re.compile(r"[^\s\"'&,;}<>)\]]+")


@lru_cache(maxsize=4096)
def _sensitive(name: str, in_url: bool = True) -> bool:
    name = unquote(name)  # invalid escapes are kept as they are, never raise
    lower = name.lower()
    if _CONTAINS.search(lower):
        return True
    parts = set(_SPLIT.split(_SPLIT_CAMEL.sub("_", name).lower())) - {""}
    if not in_url:
        parts.discard("key")
    return bool(parts & _PARTS) or (in_url and lower.endswith("key") and lower != "key"
                                    and len(lower) > 3 and lower[-4] in "-_.")


def sensitive_name(name: str, in_url: bool = True) -> bool:
    """Whether a parameter (or key) of this name carries a secret."""
    return _sensitive(name, in_url)


def _redact_params(text: str) -> str:
    """`a=1&token=x;b=2` → `a=1&token=***;b=2` (separators and untouched parts kept as-is)."""
    pieces = re.split(r"([&;])", text)
    for i in range(0, len(pieces), 2):
        name, eq, value = pieces[i].partition("=")
        if eq and value and value != MASK and _sensitive(name):
            pieces[i] = f"{name}={MASK}"
    return "".join(pieces)


def redact_url(url: str) -> str:
    """The URL with its userinfo and the values of sensitive parameters replaced by `***`."""
    if not url:
        return url
    rest_start = 0
    head = ""
    scheme_end = url.find("://")
    if scheme_end > 0:
        authority_start = scheme_end + 3
        ends = [i for i in (url.find(c, authority_start) for c in "/?#") if i >= 0]
        authority_end = min(ends) if ends else len(url)
        authority = url[authority_start:authority_end]
        at = authority.rfind("@")
        if at >= 0:
            authority = MASK + authority[at:]
        head = url[:authority_start] + authority
        rest_start = authority_end
    rest = url[rest_start:]
    path, hash_, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    if "@" in path:
        path = _PATH_USERINFO.sub(MASK + "@", path)
    if query:
        query = _redact_params(query)
    if fragment and "=" in fragment:
        fragment = _redact_params(fragment)
    return f"{head}{path}{question}{query}{hash_}{fragment}"


def _url_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_TRAILING)
    return redact_url(stripped) + url[len(stripped):]


def redact_text(text: str) -> str:
    """Any message with the credentials in its URLs and `secret=value` pairs replaced."""
    if not text or not isinstance(text, str):
        return text
    if "://" in text:
        text = _URL.sub(_url_match, text)
    if "=" in text or ":" in text:
        text = _redact_pairs(text)
    return text


def _redact_pairs(text: str) -> str:
    out: list[str] = []
    done = 0
    for match in _PAIR.finditer(text):
        if match.start() < done or not _sensitive(match.group("name"), in_url=False):
            continue
        value = _VALUE.match(text, match.end())
        if value is None or value.group(0) == MASK:
            continue
        if (match.group("sep") == ":" and not match.group("quote") and not match.group("scheme")
                and value.group(0).isalpha() and value.group(0).islower()):
            continue  # prose ("no API token: set CKAN_API_TOKEN"), not a value
        out += [text[done:match.end()], MASK]
        done = value.end()
    return "".join(out) + text[done:] if out else text


def redact_value(value: object) -> object:
    """Strings redacted, lists/tuples/dicts walked (keys kept), anything else unchanged."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


# --- private state files --------------------------------------------------------------------

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create the folder (and missing parents) readable by the owner only; an existing one
    open to group or others is narrowed to 0700."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _narrow(path, PRIVATE_DIR)
    return path


def private_file(path: Path, *siblings: str) -> Path:
    """Create the file empty with mode 0600 if missing (before SQLite, the log handler … open
    it), or narrow an existing one to 0600; `siblings`: suffixes of companion files narrowed
    the same way when present (SQLite's `-wal`, `-shm`, `-journal`)."""
    path = Path(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE))
    _narrow(path, PRIVATE_FILE)
    for suffix in siblings:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _narrow(companion, PRIVATE_FILE)
    return path


def _narrow(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & 0o077:
            os.chmod(path, current & mode)
    except OSError:  # not ours (another user's state dir): leave it, SQLite/logging will tell
        pass
