"""`python -m odp.portal start|stop|status|install` — plain lines, no secrets, exit 1 on failure."""

from __future__ import annotations

import argparse
import sys
import time

from odp.portal import stack
from odp.portal.procs import PortalError


def _say(line: str) -> None:
    print(line, flush=True)


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
    parser = argparse.ArgumentParser(prog="python -m odp.portal", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "install"])
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        if args.command == "install":
            stack.install(_say)
            _say(f"installed in {stack.portal_home()}")
        elif args.command == "start":
            info = stack.start(_say)
            _say(f"CKAN is up at {info.url} (API token in {info.token_file})")
        elif args.command == "stop":
            stack.stop()
            _say("stopped")
        else:
            return 0 if _print_status() else 3
    except PortalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command != "status":
        _say(f"{args.command} took {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
