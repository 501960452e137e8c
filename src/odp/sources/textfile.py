"""Reading a source file's bytes (from a URL or a local path) and decoding its text explicitly.

Encodings are detected, never guessed silently: a UTF-8 byte-order mark means UTF-8; text that
decodes as UTF-8 is UTF-8; anything else is an error unless the dataset names the encoding
(e.g. `encoding = "iso-8859-1"`). A named Latin-1 encoding is refused when the bytes are in fact
UTF-8 with non-ASCII characters (that would turn "ß" into "ÃŸ"). A UTF-16 byte-order mark
means UTF-16. Bytes that do not fit the encoding (a UTF-16 file cut mid-character, a named
encoding the file is not in) are a SourceError naming the byte; an unknown name a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass

from odp.errors import ConfigError, SourceError
from odp.sources.http import HttpSettings, SourceClient
from odp.sources.local import local_file

AUTO = "auto"
_LATIN = {"iso-8859-1", "latin-1", "latin1", "iso-8859-15", "cp1252", "windows-1252"}


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # what was found: "utf-8-sig", "utf-8", or the named encoding


def read_bytes(dataset: str, url: str | None, path: str | None, http: HttpSettings,
               expect: str | None = None) -> tuple[bytes, str]:
    """The file named by `url` or `path` (a relative path is relative to the project) and its
    name. `expect` names the format parsed ("CSV"): a server's HTML page instead is refused."""
    if file := local_file(dataset, {"url": url, "path": path}):  # as every source reads one
        return file.read_bytes(), str(file)
    if url:
        return SourceClient(dataset, http).get_bytes(url, expect), url
    raise ConfigError(f"{dataset}: [source] needs 'url' or 'path'")


def decode(data: bytes, encoding: str, where: str) -> Decoded:
    wanted = (encoding or AUTO).lower()
    if data.startswith(b"\xef\xbb\xbf"):
        if wanted not in (AUTO, "utf-8", "utf-8-sig", "utf8"):
            raise SourceError(f"{where}: starts with a UTF-8 byte-order mark, not {encoding}")
        return Decoded(_utf8(data[3:], where), "utf-8-sig")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Decoded(_named(data, "utf-16", where), "utf-16")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if wanted in (AUTO, "utf-8", "utf8"):
            raise SourceError(
                f"{where}: not UTF-8 (byte 0x{data[exc.start]:02X} at offset {exc.start}); "
                "name the file's encoding in [source], e.g. encoding = \"iso-8859-1\""
            ) from None
        return Decoded(_named(data, wanted, where), wanted)
    if wanted in _LATIN and not text.isascii():
        raise SourceError(f"{where}: is UTF-8 with non-ASCII characters, not {encoding}")
    return Decoded(text, "utf-8")


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{where}: has a UTF-8 byte-order mark but byte 0x{data[exc.start]:02X} at offset "
            f"{exc.start + 3} is not UTF-8"
        ) from None


def _named(data: bytes, encoding: str, where: str) -> str:
    """The bytes in a named encoding (a UTF-16 byte-order mark names UTF-16)."""
    try:
        return data.decode(encoding)
    except LookupError:
        raise ConfigError(f"{where}: unknown encoding '{encoding}'") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{where}: not {encoding} (byte 0x{data[exc.start]:02X} at offset "
                          f"{exc.start}{': cut short' if exc.start >= len(data) - 3 else ''})"
                          ) from None
