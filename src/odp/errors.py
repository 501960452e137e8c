"""Errors with one-line messages an officer can act on. Each class maps to an exit code
(documented in the README, "Exit codes"):

    0 ok · 1 unexpected error (a bug: traceback in the log) · 2 configuration · 3 source ·
    4 held back by validation · 5 CKAN (down, token refused or lacking rights) ·
    6 locked by another run · 7 disk full · 8 CKAN refused the data or metadata (validation) ·
    9 name conflict on the portal

Every message is one line and has the credentials in any URL it names redacted
(odp.redact): an error is printed, logged, stored in the history and sent in alerts.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from odp.redact import redact_text


def one_line(text: str, limit: int = 300) -> str:
    """The text on one line (whitespace runs collapsed), at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class OdpError(Exception):
    """Base: the message is one line naming dataset, file, row or field where known."""

    exit_code = 1

    def __str__(self) -> str:
        return redact_text(Exception.__str__(self))


class ConfigError(OdpError):
    exit_code = 2


class SourceError(OdpError):
    """The source is down, answered with an error, or sent something malformed."""

    exit_code = 3


class GateError(OdpError):
    """Validation held the batch back: the last good published version stays."""

    exit_code = 4


class PublishError(OdpError):
    """CKAN is down, refused the token, or failed mid-way (the next run completes the work)."""

    exit_code = 5


class LockedError(OdpError):
    """Another run of the same dataset holds the lock."""

    exit_code = 6


class DiskFullError(OdpError):
    """No space left where the run writes (state, staging, files for the portal): nothing was
    published by the failed step; free space and run again."""

    exit_code = 7


class CkanValidationError(PublishError):
    """CKAN refused what was sent (a field of the metadata, a DataStore value): the message
    names the action, the dataset and CKAN's reason per field."""

    exit_code = 8


class NameConflictError(CkanValidationError):
    """The dataset's (or organisation's) name is taken on the portal by an object odp cannot
    update, e.g. a deleted dataset still holding its URL, or another organisation's dataset."""

    exit_code = 9


# --- classification of errors raised by libraries -------------------------------------------

_DISK_FULL_TEXT = ("no space left on device", "database or disk is full", "disk full",
                   "could not extend file")


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and what dlt wrapped (`.exception`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = (getattr(current, "exception", None) or current.__cause__
                   or current.__context__)


def disk_full(exc: BaseException, where: str = "", folder: Path | None = None
              ) -> DiskFullError | None:
    """A DiskFullError when the exception (or one it wraps) is ENOSPC/EDQUOT or a database's
    "disk is full"; else None. It names the file that could not be written, or — when the
    error does not say (a write to an open file, a library's message) — the `folder` the run
    writes to (the state directory) with the space left on its filesystem."""
    found = [item for item in error_chain(exc)
             if (isinstance(item, OSError) and item.errno in (errno.ENOSPC, errno.EDQUOT))
             or any(marker in str(item).lower() for marker in _DISK_FULL_TEXT)]
    if not found:
        return None
    # the file that could not be written: a closing file's error (no name) may wrap the one
    # that has it
    path = next((item.filename for item in found if getattr(item, "filename", None)), None)
    at = f" writing {path}" if path else _space_left(folder)
    prefix = f"{where}: " if where else ""
    return DiskFullError(f"{prefix}disk full{at}: free space (the state directory, staging and "
                         "the files for the portal) and run again")


def _space_left(folder: Path | None) -> str:
    if folder is None:
        return ""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return f" writing to {folder}"
    return f" writing to {folder} ({stat.f_bavail * stat.f_frsize // 1024} KiB free there)"


@contextmanager
def classified(where: str, folder: Path | None = None) -> Iterator[None]:
    """Errors of a known class raised by libraries (disk full) become their OdpError; the
    rest pass unchanged."""
    try:
        yield
    except OdpError:
        raise
    except Exception as exc:
        known = disk_full(exc, where, folder)
        if known is None:
            raise
        raise known from None
