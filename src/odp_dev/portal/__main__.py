"""`python -m odp_dev.portal start|stop|status|install|build-solr`: the local CKAN from the shell.

`build-solr` only resolves Apache Solr's jars and compiles its launcher (`scripts/setup` runs
it, so that tests start from a machine that has everything).

Plain output lines, never a secret. Exit codes: 0 ok, 1 failure (reason on stderr),
2 usage error, 3 `status` found a service stopped.
"""

from __future__ import annotations

import argparse
import sys
import time

from odp_dev.portal import solr, stack
from odp_dev.portal.procs import PortalError

_BEGAN = time.monotonic()


def _say(line: str) -> None:
    print(f"[{time.monotonic() - _BEGAN:5.1f} s] {line}", flush=True)


def _print_status() -> bool:
    """Print one line per service; True if all run."""
    state = stack.status()
    print(f"home: {state['home']}")
    print(f"url: {state['url']}")
    print(f"installed: {'yes' if state['installed'] else 'no'}")
    for name, svc in state["services"].items():
        print(f"{name}: {'running' if svc['running'] else 'stopped'} ({svc['address']})")
    return all(svc["running"] for svc in state["services"].values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odp_dev.portal", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "install", "build-solr"])
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            stack.install(_say)
            _say(f"installed in {stack.portal_home()}")
        elif args.command == "start":
            info = stack.start(_say)
            _say(f"CKAN is up at {info.url} (API token in {info.token_file})")
        elif args.command == "build-solr":
            build = solr.Build(stack.project_root())
            built = build.ensure(_say)
            _say(f"Apache Solr {'built' if built else 'already built'} in {build.dir}")
        elif args.command == "stop":
            stack.stop()
            _say("stopped")
        else:
            return 0 if _print_status() else 3
    except PortalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
