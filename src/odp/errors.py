"""Errors with one-line messages an officer can act on. Each maps to an exit code."""

from __future__ import annotations


class OdpError(Exception):
    """Base: the message is one line naming dataset, file, row or field where known."""

    exit_code = 1


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
