"""Whether a host is this machine: the one rule for where plain http:// (portal, source
credentials) and an unencrypted database connection (DataStore write URL) are allowed."""

from __future__ import annotations

import ipaddress


def on_this_machine(host: str | None) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1) — never a name that merely
    begins like one (`127.0.0.1.example.org`, `localhost.example.org`)."""
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
