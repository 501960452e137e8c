"""Structured logs: JSON lines when stdout is not a terminal (cron, systemd), human lines on a
terminal, and always JSON lines in a rotating file `STATE/logs/odp.log` (mode 0600, its folder
0700). Secrets (the CKAN API token, alert credentials, a URL's userinfo and sensitive query
parameters, `token=`/`password:`/`Authorization: Bearer` values — see odp.redact) are redacted
before any handler writes: in the message, the structured fields and the traceback.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.redact import MASK, private_dir, private_file, redact_text

LOGGER = "odp"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5
_FIELDS = ("dataset", "run_id", "status", "exit_code", "event", "kind")
_TEXT_FIELDS = ("error", "detail", "url")  # free text: redacted like the message

log = logging.getLogger(LOGGER)


class Redactor(logging.Filter):
    """Replaces known secret values and token-shaped key/value pairs in the final message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s and len(s) >= 6}

    def add(self, *secrets: str | None) -> None:
        self.secrets.update(s for s in secrets if s and len(s) >= 6)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return redact_text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        for name in _TEXT_FIELDS:
            if isinstance(getattr(record, name, None), str):
                setattr(record, name, self.redact(getattr(record, name)))
        if record.exc_info:  # a traceback is text like any other: redacted once, here
            record.exc_text = self.redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for name in (*_FIELDS, *_TEXT_FIELDS):
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"{stamp} {level}{record.getMessage()}"
        return f"{text}\n{record.exc_text.rstrip()}" if record.exc_text else text


_redactor = Redactor()


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log, each file (the current one and every new one after a rollover)
    created 0600 — and an older world-readable one narrowed to 0600 when opened."""

    def _open(self):  # type: ignore[no-untyped-def]
        private_file(Path(self.baseFilename))
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        """A log file that cannot be written (a full disk) is said once, on one line on
        stderr, instead of logging's traceback for every record; the console still logs."""
        if getattr(self, "failed", False):
            return
        self.failed = True
        problem = sys.exc_info()[1]
        sys.stderr.write(f"odp: the log file {self.baseFilename} cannot be written "
                         f"({problem}); logging to it stops for this process\n")


class _Stdout:
    """sys.stdout as it is at each write (tests and embedders replace it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()


def redactor() -> Redactor:
    return _redactor


def configure(state: Path, console: bool | None = None, secrets: Iterable[str] = (),
              stream=None) -> logging.Logger:  # type: ignore[no-untyped-def]
    """Set up the `odp` logger once per process: the rotating JSON file, and a console handler
    (JSON when not on a terminal, human on one; `console=False`: file only)."""
    _redactor.add(*secrets)
    for var in ("CKAN_API_TOKEN",):
        _redactor.add(os.environ.get(var))
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    folder = private_dir(state / "logs")
    for old in folder.glob("odp.log.*"):  # backups rotated before the files were private
        private_file(old)
    file_handler = PrivateRotatingFileHandler(
        folder / "odp.log", maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    file_handler.setFormatter(JsonFormatter())
    file_handler.addFilter(_redactor)
    log.addHandler(file_handler)
    if console is not False:
        out = stream or _Stdout()
        handler = logging.StreamHandler(out)
        tty = out.isatty() if console is None else False
        handler.setFormatter(HumanFormatter() if tty else JsonFormatter())
        handler.addFilter(_redactor)
        log.addHandler(handler)
    return log


def ensure_file_log(state: Path) -> logging.Logger:
    """When nothing configured logging (a library call such as `run_dataset`), log to the
    state's file only."""
    if not log.handlers:
        configure(state, console=False)
    return log


def start_logging(root: Path, city: Any, console: bool) -> None:
    """The logging of a process that runs datasets: the state's log file, the console when
    asked, the city's API token among the secrets redacted."""
    from odp.spec import state_dir

    configure(state_dir(root), console=console, secrets=[city.api_token() or ""])
