"""Process helpers for the local stack: commands, pid files, ports, running as `postgres`."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from odp.errors import OdpError


class PortalError(OdpError):
    """The local portal could not be installed, started or stopped.

    The first line says why; a log tail may follow."""


# binary -> what installs it on Debian/Ubuntu (the setup script's job)
INSTALL_HINTS = {
    "postgresql": "apt-get install postgresql",
    "redis-server": "apt-get install redis-server",
    "gcc": "apt-get install gcc",
    "pg_config": "apt-get install libpq-dev",
    "uv": "pip install uv",
    "runuser": "apt-get install util-linux",
    "java": "apt-get install openjdk-17-jdk-headless (Solr 9 needs Java 11 or newer)",
    "javac": "apt-get install openjdk-17-jdk-headless (a JDK, not only a JRE)",
    "mvn": "apt-get install maven",
}


def require_binary(name: str, hint_key: str | None = None) -> str:
    """Absolute path of `name` on PATH, or a PortalError with a one-line install hint."""
    path = shutil.which(name)
    if path is None:
        hint = INSTALL_HINTS.get(hint_key or name, "install it")
        raise PortalError(f"{name} not found: {hint}")
    return path


def pg_bin_dir() -> Path:
    """Directory with initdb/pg_ctl/psql: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    raise PortalError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    )


def is_root() -> bool:
    return os.geteuid() == 0


def pg_account(os_user: str, data_dir: Path) -> pwd.struct_passwd:
    """The OS account that runs PostgreSQL (its peer-authenticated superuser has its name).

    An existing cluster keeps the account that owns its data dir. A new one uses `os_user`
    when we are root (PostgreSQL refuses to run as root), else ourselves.
    """
    if data_dir.exists():
        owner = pwd.getpwuid(data_dir.stat().st_uid)
        if is_root() or owner.pw_uid == os.geteuid():
            return owner
        raise PortalError(f"{data_dir} belongs to {owner.pw_name}: run as that user or as root")
    if not is_root():
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(os_user)
    except KeyError:
        raise PortalError(
            f"OS user {os_user!r} not found (it comes with the postgresql package): "
            "apt-get install postgresql"
        ) from None


def as_user(cmd: Sequence[str], account: pwd.struct_passwd) -> list[str]:
    """`cmd` run as `account` (via runuser when we are root and it is another user)."""
    if account.pw_uid == os.geteuid():
        return list(cmd)
    return [require_binary("runuser"), "-u", account.pw_name, "--", *cmd]


def give_to(path: Path, account: pwd.struct_passwd) -> None:
    """chown `path` to `account` (no-op when it is already ours)."""
    if path.stat().st_uid != account.pw_uid:
        os.chown(path, account.pw_uid, account.pw_gid)


def make_traversable(path: Path, account: pwd.struct_passwd) -> list[Path]:
    """Ensure `account` can traverse every ancestor of `path`; add o+x where missing.

    Returns the directories that were changed (only the execute bit, no read access).
    """
    changed: list[Path] = []
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == account.pw_uid or st.st_mode & 0o001:
            continue
        if st.st_gid == account.pw_gid and st.st_mode & 0o010:
            continue
        parent.chmod(st.st_mode | 0o001)
        changed.append(parent)
    return changed


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: no CKAN_* overrides leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKAN_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def run(
    cmd: Sequence[str],
    *,
    what: str,
    cwd: Path,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> str:
    """Run `cmd`, return its stdout; on failure raise PortalError naming `what` (not the args,
    which may hold secrets) with the tail of its output."""
    try:
        proc = subprocess.run(
            list(cmd),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=dict(env) if env is not None else child_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PortalError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise PortalError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def spawn(
    cmd: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start `cmd` detached (own session, output appended to `log`)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    """First line of a pid file as int, or None."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None, needle: str) -> bool:
    """Whether `pid` runs (not a zombie) and its command line contains `needle`, which guards
    against a pid reused by another program. An unreadable, empty command line (a transient
    state) counts as alive."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    if state in ("Z", "X", "x"):
        return False
    return not cmdline or needle.encode() in cmdline


def reap(pid: int) -> None:
    """Collect `pid` if it is our own child (avoids zombies in long-lived callers)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, needle: str, timeout: float) -> None:
    """SIGTERM `pid` (if it is still the expected process), SIGKILL after `timeout`."""
    if not pid_alive(pid, needle):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not pid_alive(pid, needle):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    reap(pid)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `check()` until true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file (for error messages)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
