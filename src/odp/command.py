"""The `odp` console command: `odp.cli.main`, then a quick end of the process.

A run leaves the interpreter hundreds of thousands of objects — pandas', dlt's and, after a run
that validated, great-expectations' 270,000 — and Python's own exit walks them all in
collections of its own and unloads every module: 0.9–1.0 s of a 1M-row +1 % run's 6 s.
(Freezing them out of those collections instead, `gc.freeze`, made DuckDB's bindings list them
as leaked on stderr at every exit.) So once
`main` has returned and the exit handlers have run — threads joined, logs flushed and closed,
temporary folders removed — the process ends there, with main's exit code (`os._exit`). When
`main` does not return (an exception, argparse's own exit for --help or a bad option), Python's
exit runs as usual. `main` itself, as tests and other programs call it, ends nothing.

This module imports nothing else before it registers its handler: handlers run last registered
first, so this one runs after every handler the run's libraries register.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable


def entry(main: Callable[[], int] | None = None) -> None:
    """Run `main` (default: `odp.cli.main`, imported after the handler is registered) and
    end the process with its exit code."""
    returned: list[int] = []

    def end_now() -> None:
        if not returned:
            return
        if "logging" in sys.modules:  # registered before this handler when run as a module
            sys.modules["logging"].shutdown()
        for stream in (sys.stdout, sys.stderr):
            # closed, or its reader gone: nothing more can be said
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(returned[0])

    atexit.register(end_now)
    if main is None:
        from odp.cli import main

    code = main()
    returned.append(code)
    sys.exit(code)
