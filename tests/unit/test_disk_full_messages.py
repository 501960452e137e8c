"""A full disk is named on one line: the file that could not be written — also when the error
that reaches the run is a closing file's, which has no name, wrapping the one that has it —
or, when no error in the chain names a file (a write to an open file, dlt's package), the
folder the run writes to with the space left there. A log file that cannot be written is said
once on stderr, not with logging's traceback for every record."""

from __future__ import annotations

import errno
import logging

from odp.errors import DiskFullError, disk_full
from odp.runs.logs import PrivateRotatingFileHandler

FULL = "No space left on device"


def _chained(outer: OSError, inner: OSError) -> OSError:
    try:
        try:
            raise inner
        except OSError:
            raise outer from None
    except OSError as exc:
        exc.__context__ = inner
        return exc


def test_the_named_file_is_found_below_a_closing_files_error_without_a_name():
    exc = _chained(OSError(errno.ENOSPC, FULL), OSError(errno.ENOSPC, FULL, "/state/locks/a"))
    found = disk_full(exc, "stops")
    assert isinstance(found, DiskFullError) and found.exit_code == 7
    assert str(found).startswith("stops: disk full writing /state/locks/a: free space")


def test_without_a_named_file_the_folder_and_its_free_space_are_named(tmp_path):
    found = disk_full(OSError(errno.ENOSPC, FULL), "stops", tmp_path)
    assert str(found).startswith(f"stops: disk full writing to {tmp_path} (")
    assert " KiB free there): free space" in str(found) and "\n" not in str(found)


def test_another_error_is_no_full_disk(tmp_path):
    assert disk_full(OSError(errno.EACCES, "Permission denied", "/x"), "stops", tmp_path) is None


def test_a_log_file_on_a_full_disk_is_said_once_on_one_line(tmp_path, capsys):
    handler = PrivateRotatingFileHandler(tmp_path / "odp.log")
    record = logging.LogRecord("odp", logging.INFO, __file__, 1, "m", None, None)
    for _ in range(3):
        try:
            raise OSError(errno.ENOSPC, FULL)
        except OSError:
            handler.handleError(record)
    handler.close()
    err = capsys.readouterr().err
    assert err == (f"odp: the log file {tmp_path / 'odp.log'} cannot be written ([Errno 28] "
                   f"{FULL}); logging to it stops for this process\n")
