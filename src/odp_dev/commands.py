"""The development tools the `odp` CLI offers, as entry points of the group `odp.dev`.

`portal(action, say)`: install, start, stop or report the local CKAN; returns its status.
`replay(recordings, scenario, hosts)`: a started replay server (`.url`, `.stop()`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def portal(action: str, say: Callable[[str], None]) -> dict[str, Any]:
    from odp_dev.portal import stack

    if action == "install":
        stack.install(progress=say)
    elif action == "start":
        info = stack.start(progress=say)
        say(f"CKAN running at {info.url} (API token in {info.token_file})")
    elif action == "stop":
        stack.stop()
        say("local CKAN stopped")
    return stack.status()


def replay(recordings: Path, scenario: str) -> Any:
    from odp_dev.replay import ReplayServer

    server = ReplayServer(recordings, scenario=scenario)
    server.start()
    return server
