"""Archives opened within limits: a zip (DWD's station zips, an XLSX workbook) is checked before
its content takes memory, so a small download that unpacks to gigabytes (a "zip bomb") stops
with a one-line SourceError naming the dataset, the file and the figures.

Two limits per source (`[source]` keys, the defaults below):

  max_unpacked_bytes  what one archive may unpack to, all its members together
  max_ratio           unpacked bytes per compressed byte of a member (checked for members
                      unpacking to more than RATIO_FLOOR bytes: a small file may compress
                      as well as it likes, it costs nothing)

A zip is checked twice: its central directory (the sizes each member declares) before anything
is unpacked, and each member while it is read, in chunks, against the same limits: a header
that lies about a member's size does not get past the counting (zipfile itself also stops at the
declared size and then finds the checksum wrong). Only stored and deflated members are read:
bzip2 and LZMA cannot be unpacked in bounded steps by zipfile, and no source sends them.
A body sent with `Content-Encoding: gzip` (or deflate …) is held to the same two limits while the
HTTP client unpacks it (`check_unpacked`, see odp.sources.http), besides the source's
`max_bytes`.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from odp.errors import ConfigError, SourceError

MIB = 1 << 20
CHUNK = MIB  # unpacked bytes produced per step
# The largest archive content read today is a DWD 10-minute "recent" product (about 5 MB
# unpacked; an XLSX register sheet is smaller). 128 MiB is 25 times that, and what pandas makes of
# 128 MiB of text (about 8 times as much memory) still fits a small server.
DEFAULT_MAX_UNPACKED_BYTES = 128 * MIB
# DWD products compress 11-16:1 (the recordings), XLSX sheet XML 5-20:1; deflate reaches about
# 1030:1 at most, which is what a bomb uses (1 MB → 1 GiB is 1024:1).
DEFAULT_MAX_RATIO = 100.0
RATIO_FLOOR = MIB  # members unpacking to at most this are not held to max_ratio
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def from_source(cls, source: dict[str, Any], where: str = "[source]") -> ArchiveLimits:
        """The limits of a `[source]` table (ConfigError for a value that is not a number > 0)."""
        size = source.get("max_unpacked_bytes", cls.max_unpacked_bytes)
        ratio = source.get("max_ratio", cls.max_ratio)
        for key, value in (("max_unpacked_bytes", size), ("max_ratio", ratio)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{where} {key}: must be a number > 0 (got {value!r})")
        return cls(int(size), float(ratio))


def _ratio_text(unpacked: int, packed: int) -> str:
    return f"{unpacked / max(packed, 1):.0f}:1"


def _check(unpacked: int, packed: int, limits: ArchiveLimits, where: str, what: str) -> None:
    """Raise when `unpacked` bytes (from `packed`) break a limit."""
    if unpacked > limits.max_unpacked_bytes:
        raise SourceError(f"{where}: {what}: unpacks to more than {limits.max_unpacked_bytes} "
                          f"bytes (max_unpacked_bytes; {unpacked} bytes from {packed}): "
                          "refused as a possible zip bomb")
    if unpacked > RATIO_FLOOR and unpacked > limits.max_ratio * max(packed, 1):
        raise SourceError(f"{where}: {what}: has a compression ratio of "
                          f"{_ratio_text(unpacked, packed)} ({unpacked} bytes from {packed}; "
                          f"max_ratio {limits.max_ratio:g}): refused as a possible zip bomb")


def check_unpacked(unpacked: int, packed: int, limits: ArchiveLimits, where: str,
                   what: str) -> None:
    """SourceError when `unpacked` bytes made so far from `packed` bytes break a limit (for
    streams unpacked elsewhere, e.g. an HTTP body with Content-Encoding)."""
    _check(unpacked, packed, limits, where, what)


# --- zip ---------------------------------------------------------------------------------------


def open_zip(content: bytes, limits: ArchiveLimits, where: str) -> zipfile.ZipFile:
    """The archive, its central directory checked against the limits (nothing unpacked yet)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise SourceError(f"{where}: not a zip archive, or cut short ({exc})") from None
    total = 0
    for info in archive.infolist():
        if info.compress_type not in _METHODS:
            raise SourceError(f"{where}: {info.filename}: compression method "
                              f"{info.compress_type} is not accepted (only stored or deflate)")
        _check(info.file_size, info.compress_size, limits, where, info.filename)
        total += info.file_size
    _check(total, len(content), limits, where, "the archive")
    return archive


def read_member(archive: zipfile.ZipFile, name: str, limits: ArchiveLimits, where: str) -> bytes:
    """One member, unpacked in steps of CHUNK bytes, each step counted against the limits."""
    info = archive.getinfo(name)
    chunks: list[bytes] = []
    produced = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                produced += len(chunk)
                _check(produced, info.compress_size, limits, where, name)
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SourceError(f"{where}: {name}: corrupt member ({exc})") from None
    return b"".join(chunks)


def check_zip(content: bytes, limits: ArchiveLimits, where: str) -> None:
    """Check a zip another library reads itself (an XLSX workbook for openpyxl): its central
    directory against the limits; zipfile stops each member at its declared size."""
    open_zip(content, limits, where).close()
