"""The local CKAN stack: install, start, stop and inspect a CKAN 2.12 portal on this machine.

Four services, all on 127.0.0.1 with non-default ports (see `settings`), all state under
`portal_home()` (default `<project root>/.local/portal`, override with ODP_PORTAL_HOME):

    venv/        CKAN's own virtualenv (CKAN pins versions that clash with the pipelines)
    pgdata/      PostgreSQL cluster (owned by `postgres` when we run as root)
    redis/       Redis working dir          solr/     Solr home: the `ckan` core and its index
    storage/     CKAN file storage          logs/     one log per service
    run/         pid files, PostgreSQL socket, lock
    ckan.ini     wsgi.py     secrets.json (DB passwords, 0600)     api-token (0600)

Search is Apache Solr 9 (`odp_dev.portal.solr`: Solr's embedded Jetty runner in a JVM, CKAN's own
schema.xml), built once per checkout into `<project root>/.local/solr/`.

`start()` installs what is missing, then starts what is not running; a warm start (after
`stop()`) takes seconds because nothing is installed again. The API token of the sysadmin
`odp-admin` is kept in `api-token` and is never printed.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odp_dev.portal import settings, solr
from odp_dev.portal.ckanconf import WSGI_PY, escape, set_options
from odp_dev.portal.procs import (
    PortalError,
    as_user,
    child_env,
    give_to,
    make_traversable,
    pg_account,
    pg_bin_dir,
    pid_alive,
    port_open,
    read_pid,
    require_binary,
    run,
    spawn,
    tail,
    terminate,
    wait_until,
)
from odp_dev.portal.settings import HOST, Ports

__all__ = ["PortalError", "PortalInfo", "install", "portal_home", "start", "status", "stop"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PortalInfo:
    """Where the running portal answers and where its sysadmin API token is kept."""

    url: str
    token_file: Path
    home: Path

    def token(self) -> str:
        """The sysadmin API token (keep it out of logs and output)."""
        return self.token_file.read_text().strip()


# --------------------------------------------------------------------------- paths


def project_root() -> Path:
    """The directory holding pyproject.toml: above this package, else above the cwd."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file():
                return folder
    raise PortalError(f"no pyproject.toml found; set {settings.HOME_ENV} to the portal folder")


def datastore_write_url() -> str | None:
    """The local portal's DataStore write URL (as `odp portal start` hands it to the engine)."""
    path = _Layout(portal_home()).write_url
    return path.read_text().strip() if path.is_file() else None


def portal_home() -> Path:
    """Folder with all state of the local portal (ODP_PORTAL_HOME or <root>/.local/portal)."""
    override = os.environ.get(settings.HOME_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return project_root() / settings.HOME_RELATIVE


class _Layout:
    """The paths inside the portal home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.venv = home / "venv"
        self.python = self.venv / "bin" / "python"
        self.pgdata = home / "pgdata"
        self.redis = home / "redis"
        self.solr = home / "solr"
        self.storage = home / "storage"
        self.logs = home / "logs"
        self.run = home / "run"
        self.ini = home / "ckan.ini"
        self.wsgi = home / "wsgi.py"
        self.secrets = home / "secrets.json"
        self.token = home / "api-token"
        # what the engine reads to COPY into the DataStore (city file: datastore_write_url_file)
        self.write_url = home / "datastore-write-url"

    def make_dirs(self) -> None:
        for folder in (self.home, self.redis, self.solr, self.storage, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


@contextmanager
def _locked(layout: _Layout) -> Iterator[None]:
    """Serialise install/start/stop between processes (e.g. parallel test sessions)."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.run / "stack.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _url(ports: Ports) -> str:
    return f"http://{HOST}:{ports.ckan}"


# --------------------------------------------------------------------------- PostgreSQL


class _Postgres:
    """A private PostgreSQL cluster in pgdata/, run as `postgres` when we are root."""

    def __init__(self, layout: _Layout, port: int) -> None:
        self.layout = layout
        self.port = port
        self.account = pg_account(settings.PG_OS_USER, layout.pgdata)
        self.bin = pg_bin_dir()
        self.data = layout.pgdata
        self.sockets = layout.run / "postgresql"
        self.log = layout.logs / "postgresql.log"

    def _cmd(self, name: str, *args: str) -> list[str]:
        return as_user([str(self.bin / name), *args], self.account)

    def _run(self, what: str, cmd: list[str], stdin: str | None = None) -> str:
        return run(cmd, what=what, cwd=self.layout.home, stdin=stdin)

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        return pid_alive(read_pid(self.data / "postmaster.pid"), "postgres") and port_open(
            HOST, self.port
        )

    def _foreign(self) -> bool:
        """Whether PostgreSQL runs as another OS user than us (we are root)."""
        return self.account.pw_uid != os.geteuid()

    def _own(self, path: Path) -> None:
        """Hand `path` to the PostgreSQL account and let it reach it."""
        if self._foreign():
            give_to(path, self.account)
            make_traversable(path, self.account)

    def create(self, say: Progress) -> None:
        """initdb a new cluster: local socket peer auth for the superuser, passwords on TCP."""
        say(f"creating PostgreSQL cluster in {self.data}")
        self.data.mkdir(mode=0o700, exist_ok=True)
        if self._foreign():
            changed = make_traversable(self.data, self.account)
            if changed:
                dirs = ", ".join(map(str, changed))
                say(f"made traversable for {self.account.pw_name} (o+x only): {dirs}")
        self._own(self.data)
        self._run(
            "initdb",
            self._cmd(
                "initdb", "-D", str(self.data), "-E", "UTF8", "--locale=C",
                "--auth-local=peer", "--auth-host=scram-sha-256",
            ),
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# settings of the odp local portal (rewritten on every start)\n")
            conf.write("include_if_exists = 'odp.conf'\n")

    def _write_conf(self) -> None:
        quoted_sockets = str(self.sockets).replace("'", "''")
        conf = self.data / "odp.conf"
        conf.write_text(
            f"listen_addresses = '{HOST}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{quoted_sockets}'\n"
            "synchronous_commit = off  # dev stack: faster writes, no corruption risk\n"
        )
        self._own(conf)

    def start(self, say: Progress) -> None:
        say(f"starting PostgreSQL on {HOST}:{self.port}")
        self.sockets.mkdir(parents=True, exist_ok=True)
        self._own(self.sockets)
        self.log.touch()
        self._own(self.log)
        self._write_conf()
        self._run(
            "pg_ctl start",
            self._cmd(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"
            ),
        )

    def stop(self) -> None:
        """pg_ctl stop -m fast; nothing to do if the postmaster is gone (stale pid file)."""
        if not pid_alive(read_pid(self.data / "postmaster.pid"), "postgres"):
            return
        self._run(
            "pg_ctl stop", self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        )

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run `sql` as the superuser over the private socket; unaligned tuples-only output."""
        cmd = self._cmd(
            "psql", "-h", str(self.sockets), "-p", str(self.port), "-d", db,
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-",
        )  # fmt: skip
        return self._run(f"psql ({db})", cmd, stdin=sql).strip()


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _roles_sql(secret: dict[str, str]) -> str:
    """Idempotent SQL: login roles (passwords from secrets.json) and the two databases."""
    lines = []
    for role, key in (
        (settings.DB_USER, "db_password"),
        (settings.DB_READONLY_USER, "ro_password"),
    ):
        lines.append(
            f"SELECT 'CREATE ROLE \"{role}\"' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = {_sql_literal(role)})\\gexec"
        )
        lines.append(
            f'ALTER ROLE "{role}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"PASSWORD {_sql_literal(secret[key])};"
        )
    for db in (settings.DB_NAME, settings.DATASTORE_DB_NAME):
        lines.append(
            f"SELECT 'CREATE DATABASE \"{db}\" OWNER \"{settings.DB_USER}\" ENCODING ''UTF8'' "
            f"TEMPLATE template0' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = {_sql_literal(db)})\\gexec"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- install steps


def _odp_digest() -> str:
    return settings.CKAN_EXTRA_OPTIONS["ckanext.odp.code"]


def _ensure_venv(layout: _Layout, say: Progress) -> bool:
    """Create CKAN's venv and install CKAN_REQUIREMENTS; True if anything was installed."""
    marker = layout.venv / ".odp-requirements"
    wanted = "\n".join(settings.CKAN_REQUIREMENTS) + f"\n# ckanext-odp {_odp_digest()}\n"
    if layout.python.exists() and marker.exists() and marker.read_text() == wanted:
        return False
    uv = require_binary("uv")
    require_binary("gcc")  # psycopg2 is built from source
    require_binary("pg_config")
    env = child_env({"UV_COMPILE_BYTECODE": "1"})
    if not layout.python.exists():
        say(f"creating CKAN's virtualenv in {layout.venv}")
        run([uv, "venv", "-q", "--python", sys.executable, str(layout.venv)],
            what="uv venv", cwd=layout.home, env=env)  # fmt: skip
    say("installing " + ", ".join(settings.CKAN_REQUIREMENTS) + " (about a minute the first time)")
    run([uv, "pip", "install", "-q", "--python", str(layout.python),
         "--reinstall-package", settings.CKANEXT_ODP_PACKAGE, *settings.CKAN_REQUIREMENTS],
        what="uv pip install (CKAN)", cwd=layout.home, env=env, timeout=1800)  # fmt: skip
    marker.write_text(wanted)
    return True


def _ensure_secrets(layout: _Layout) -> dict[str, str]:
    """Database and admin passwords, generated once into secrets.json (0600)."""
    if layout.secrets.exists():
        return json.loads(layout.secrets.read_text())
    secret = {
        key: secrets.token_urlsafe(24) for key in ("db_password", "ro_password", "admin_password")
    }
    _write_private(layout.secrets, json.dumps(secret, indent=2) + "\n")
    return secret


def _ckan_options(layout: _Layout, ports: Ports, secret: dict[str, str]) -> dict[str, str]:
    """The ckan.ini settings this stack owns (re-applied on every start)."""
    db = f"{HOST}:{ports.postgresql}"
    write = f"postgresql://{settings.DB_USER}:{secret['db_password']}@{db}"
    read = f"postgresql://{settings.DB_READONLY_USER}:{secret['ro_password']}@{db}"
    return {
        "sqlalchemy.url": escape(f"{write}/{settings.DB_NAME}"),
        "ckan.datastore.write_url": escape(f"{write}/{settings.DATASTORE_DB_NAME}"),
        "ckan.datastore.read_url": escape(f"{read}/{settings.DATASTORE_DB_NAME}"),
        "ckan.datastore.sqlsearch.enabled": "true",
        "ckan.site_url": _url(ports),
        "ckan.site_id": "odp-local",
        "ckan.redis.url": f"redis://{HOST}:{ports.redis}/0",
        "solr_url": f"http://{HOST}:{ports.solr}/solr/{settings.SOLR_CORE}",
        "ckan.storage_path": "%(here)s/storage",
        "ckan.plugins": " ".join(settings.CKAN_PLUGINS),
        **settings.CKAN_EXTRA_OPTIONS,
    }


def _ckan(layout: _Layout, *args: str, what: str) -> str:
    """Run a `ckan -c ckan.ini ...` command in CKAN's venv. Arguments travel on stdin, so
    passwords never show in the process list; stdout is returned."""
    code = (
        "import json, sys; from ckan.cli.cli import ckan; "
        "ckan.main(args=json.load(sys.stdin), prog_name='ckan')"
    )
    return run(
        [str(layout.python), "-c", code],
        what=f"ckan {what}",
        cwd=layout.home,
        stdin=json.dumps(["-c", str(layout.ini), *args]),
        env=child_env({"CKAN_INI": str(layout.ini)}),
    )


def _ensure_ini(
    layout: _Layout, ports: Ports, secret: dict[str, str], say: Progress
) -> tuple[bool, bool]:
    """Generate ckan.ini if missing and apply our settings; returns (created, changed)."""
    created = not layout.ini.exists()
    if created:
        say("generating ckan.ini")
        run([str(layout.venv / "bin" / "ckan"), "generate", "config", str(layout.ini)],
            what="ckan generate config", cwd=layout.home, env=child_env())  # fmt: skip
    before = layout.ini.read_text()
    after = set_options(before, _ckan_options(layout, ports, secret))
    if after != before or created:
        _write_private(layout.ini, after)  # holds DB passwords and the JWT secret
    write_url = _ckan_options(layout, ports, secret)["ckan.datastore.write_url"]
    if not layout.write_url.is_file() or layout.write_url.read_text().strip() != write_url:
        _write_private(layout.write_url, write_url.replace("%%", "%") + "\n")
    if not layout.wsgi.exists() or layout.wsgi.read_text() != WSGI_PY:
        layout.wsgi.write_text(WSGI_PY)
    return created, after != before


def _token_jti(layout: _Layout) -> str | None:
    """The `jti` (API token id) inside the saved JWT, or None if there is no usable token."""
    try:
        payload = layout.token.read_text().strip().split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError, binascii.Error):
        return None
    jti = data.get("jti") if isinstance(data, dict) else None
    return jti if isinstance(jti, str) and re.fullmatch(r"[A-Za-z0-9_-]+", jti) else None


def _db_state(pg: _Postgres, layout: _Layout) -> dict[str, bool]:
    """What of CKAN's database setup already exists (checked in the databases themselves)."""

    def ask(condition: str, db: str = settings.DB_NAME) -> bool:
        return pg.psql(f"SELECT {condition};", db) == "t"

    admin = _sql_literal(settings.ADMIN_USER)
    state = {
        "schema": ask("to_regclass('public.package') IS NOT NULL"),
        "datastore": ask(
            "to_regclass('public._table_metadata') IS NOT NULL", settings.DATASTORE_DB_NAME
        ),
        "sysadmin": False,
        "token": False,
    }
    for plugin in settings.CKAN_PLUGIN_MIGRATIONS:
        table = _sql_literal(f"public.{plugin}_alembic_version")
        state[f"migrated:{plugin}"] = ask(f"to_regclass({table}) IS NOT NULL")
    if state["schema"]:
        state["sysadmin"] = ask(
            f"EXISTS (SELECT FROM \"user\" WHERE name = {admin} AND sysadmin AND state = 'active')"
        )
    jti = _token_jti(layout)
    if jti and state["sysadmin"]:
        state["token"] = ask(
            f'EXISTS (SELECT FROM api_token t JOIN "user" u ON u.id = t.user_id '
            f"WHERE u.name = {admin} AND t.id = {_sql_literal(jti)})"
        )
    return state


def _ensure_ckan_db(
    layout: _Layout,
    pg: _Postgres,
    secret: dict[str, str],
    new_secret_key: bool,
    upgraded: bool,
    say: Progress,
) -> None:
    """db init, plugin migrations, DataStore permissions, sysadmin and API token, as needed."""
    state = _db_state(pg, layout)
    if not state["schema"]:
        say("initialising CKAN's database")
        _ckan(layout, "db", "init", what="db init")
    elif upgraded:
        say("upgrading CKAN's database")
        _ckan(layout, "db", "upgrade", what="db upgrade")
    for plugin in settings.CKAN_PLUGIN_MIGRATIONS:
        if upgraded or not state[f"migrated:{plugin}"]:
            say(f"running the {plugin} plugin's migrations")
            _ckan(layout, "db", "upgrade", "-p", plugin, what=f"db upgrade -p {plugin}")
    if not state["datastore"]:
        say("setting DataStore permissions")
        pg.psql(_ckan(layout, "datastore", "set-permissions", what="datastore set-permissions"))
    if not state["sysadmin"]:
        say(f"creating sysadmin {settings.ADMIN_USER}")
        _ckan(
            layout, "sysadmin", "add", settings.ADMIN_USER, "--create",
            f"email={settings.ADMIN_EMAIL}", f"password={secret['admin_password']}",
            what="sysadmin add",
        )  # fmt: skip
    if new_secret_key or not state["token"]:
        say(f"creating an API token for {settings.ADMIN_USER} in {layout.token}")
        out = _ckan(layout, "user", "token", "add", settings.ADMIN_USER, "odp-local", "--quiet",
                    what="user token add")  # fmt: skip
        token = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if token.count(".") != 2:
            raise PortalError("ckan user token add printed no token")
        _write_private(layout.token, token + "\n")


@dataclass
class _Installed:
    pg: _Postgres
    pg_started: bool  # PostgreSQL was started by this install
    restart_ckan: bool  # config or code changed: a running CKAN must be restarted
    datasets: int  # datasets in CKAN's database (a new Solr index must be filled with them)


def _install(
    layout: _Layout, ports: Ports, say: Progress, after_venv: Callable[[], None]
) -> _Installed:
    """All idempotent install steps; leaves PostgreSQL running. `after_venv` runs as soon as
    CKAN's venv is installed (Solr needs CKAN's schema.xml from it)."""
    layout.make_dirs()
    pg = _Postgres(layout, ports.postgresql)  # checks the PostgreSQL binaries first
    solr.Build(project_root()).ensure(say)
    upgraded = _ensure_venv(layout, say)
    after_venv()
    secret = _ensure_secrets(layout)
    created, changed = _ensure_ini(layout, ports, secret, say)
    if not pg.exists():
        pg.create(say)
    pg_started = False
    if not pg.running():
        pg.stop()  # still up on another port (its port setting changed)?
        _refuse_foreign_port("postgresql", ports.postgresql)
        pg.start(say)
        pg_started = True
    pg.psql(_roles_sql(secret))
    _ensure_ckan_db(layout, pg, secret, created, upgraded, say)
    datasets = int(pg.psql("SELECT count(*) FROM package;", settings.DB_NAME) or 0)
    return _Installed(pg, pg_started, restart_ckan=changed or upgraded, datasets=datasets)


# --------------------------------------------------------------------------- services


def _pid_file(layout: _Layout, name: str) -> Path:
    return layout.run / f"{name}.pid"


# what the command line of each service's running process contains
_NEEDLES = {"redis": "redis-server", "solr": solr.MAIN_CLASS, "ckan": "wsgi.py"}


def _alive(layout: _Layout, name: str) -> bool:
    return pid_alive(read_pid(_pid_file(layout, name)), _NEEDLES[name])


def _daemon_running(layout: _Layout, name: str, port: int) -> bool:
    return _alive(layout, name) and port_open(HOST, port)


def _refuse_foreign_port(name: str, port: int) -> None:
    """Fail clearly when another program already listens on one of our ports."""
    if port_open(HOST, port):
        raise PortalError(
            f"{name}: {HOST}:{port} is already used by another process "
            "(stop it, or choose another port with the ODP_PORTAL_*PORT variables)"
        )


def _check_ports(layout: _Layout, ports: Ports) -> None:
    """Before starting anything: none of our stopped services' ports may be taken."""
    if not pid_alive(read_pid(layout.pgdata / "postmaster.pid"), "postgres"):
        _refuse_foreign_port("postgresql", ports.postgresql)
    for name in ("redis", "solr", "ckan"):
        if not _alive(layout, name):
            _refuse_foreign_port(name, getattr(ports, name))


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(layout: _Layout, port: int, say: Progress) -> None:
    if _daemon_running(layout, "redis", port):
        return
    _stop_daemon(layout, "redis")  # a stale pid file, or still up on another port
    _refuse_foreign_port("redis", port)
    redis = require_binary("redis-server")
    say(f"starting Redis on {HOST}:{port}")
    run(
        [
            redis, "--bind", HOST, "--port", str(port), "--dir", str(layout.redis),
            "--daemonize", "yes", "--pidfile", str(_pid_file(layout, "redis")),
            "--logfile", str(layout.logs / "redis.log"), "--save", "", "--appendonly", "no",
        ],
        what="redis-server", cwd=layout.home,
    )  # fmt: skip
    if not wait_until(lambda: _redis_ping(port), 15):
        raise PortalError(
            f"Redis did not answer on port {port}:\n{tail(layout.logs / 'redis.log')}"
        )


class _Solr:
    """Starting Apache Solr: the core is written once CKAN's venv (and its schema.xml) exists,
    the JVM starts while PostgreSQL is being set up, `wait()` waits for the core to answer."""

    def __init__(self, layout: _Layout, port: int, say: Progress) -> None:
        self.layout = layout
        self.port = port
        self.say = say
        self.proc: subprocess.Popen[bytes] | None = None
        self.new_index = False  # the core had no index yet: CKAN's datasets must be indexed
        self.reindex = False  # the schema changed under an existing index: index them again

    def write_core(self) -> bool:
        schema = solr.ckan_schema_source(self.layout.venv).read_text()
        return solr.write_core(self.layout.solr, schema)

    def spawn(self) -> None:
        """Write the core; start Solr unless it runs with this very configuration."""
        layout = self.layout
        schema = layout.solr / settings.SOLR_CORE / "conf" / "schema.xml"
        before = schema.read_text() if schema.is_file() else None
        changed = self.write_core()
        self.reindex = (before is not None and schema.read_text() != before
                        and solr.index_exists(layout.solr))
        if _daemon_running(layout, "solr", self.port):
            if not changed:
                return
            self.say("restarting Solr to pick up its changed configuration")
        _stop_daemon(layout, "solr", self.port)  # stale pid file, changed config or port
        _refuse_foreign_port("solr", self.port)
        self.new_index = not solr.index_exists(layout.solr)
        self.say(f"starting Apache Solr on {HOST}:{self.port}")
        cmd = solr.Build(project_root()).command(self.port, layout.solr, layout.logs)
        self.proc = spawn(cmd, log=layout.logs / "solr.log", cwd=layout.home, env=child_env())
        _pid_file(layout, "solr").write_text(f"{self.proc.pid}\n")

    def wait(self) -> None:
        """Return once the core answers a search; PortalError (with the log's tail) if the JVM
        exits or the core does not answer in time."""
        proc = self.proc
        if proc is None:
            return
        log = self.layout.logs / "solr.log"

        def up() -> bool:
            if proc.poll() is not None:
                raise PortalError(f"Solr exited during start-up ({proc.returncode}):\n{tail(log)}")
            return solr.answers(self.port)

        if not wait_until(up, settings.SOLR_START_TIMEOUT_S, interval=0.2):
            raise PortalError(
                f"Solr did not answer within {settings.SOLR_START_TIMEOUT_S:.0f} s; see {log}"
            )


def _api_status(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """`status_show` of the CKAN at `url`, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/3/action/status_show", timeout=timeout) as resp:
            body = json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return body.get("result") if isinstance(body, dict) and body.get("success") else None


def _start_ckan(layout: _Layout, ports: Ports, say: Progress) -> None:
    say(f"starting CKAN on {_url(ports)}")
    _refuse_foreign_port("ckan", ports.ckan)
    cmd = [
        str(layout.python), str(layout.wsgi), "--host", HOST, "--port", str(ports.ckan),
        "--threads", str(settings.WAITRESS_THREADS),
    ]  # fmt: skip
    log = layout.logs / "ckan.log"
    proc = spawn(cmd, log=log, cwd=layout.home, env=child_env({"CKAN_INI": str(layout.ini)}))
    _pid_file(layout, "ckan").write_text(f"{proc.pid}\n")

    def up() -> bool:
        if proc.poll() is not None:
            raise PortalError(
                f"CKAN exited during start-up ({proc.returncode}); end of {log}:\n{tail(log)}"
            )
        return _api_status(_url(ports)) is not None

    if not wait_until(up, settings.START_TIMEOUT_S, interval=0.25):
        raise PortalError(f"CKAN did not answer within {settings.START_TIMEOUT_S:.0f} s; see {log}")


def _stop_daemon(layout: _Layout, name: str, port: int | None = None) -> None:
    """Stop the service if its pid file names it; with `port`, also wait (a few seconds at
    most) until the port is free, so that it can be started again at once."""
    pid_file = _pid_file(layout, name)
    pid = read_pid(pid_file)
    if pid:
        running = _alive(layout, name)
        terminate(pid, _NEEDLES[name], settings.STOP_TIMEOUT_S)
        if running and port:
            wait_until(lambda: not port_open(HOST, port), 10)
    pid_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- public API


def _quiet(_: str) -> None:
    pass


def _check_binaries() -> None:
    """Fail early, with an install hint, when a service binary is missing."""
    pg_bin_dir()
    require_binary("redis-server")
    solr.require_java()
    if os.geteuid() == 0:
        require_binary("runuser")


def install(progress: Progress | None = None) -> None:
    """Install the local portal, skipping every step that is already done.

    Builds the Solr launcher (once per checkout), creates CKAN's venv, ckan.ini, the Solr
    core, the PostgreSQL cluster, roles and databases, runs `db init` and the activity
    migrations, sets DataStore permissions, creates the sysadmin `odp-admin` and its API token
    file. PostgreSQL is left as it was (stopped again if this call had to start it). `progress`
    receives one line per step taken.
    """
    layout = _Layout(portal_home())
    ports = settings.ports()
    with _locked(layout):
        say = progress or _quiet
        done = _install(layout, ports, say, after_venv=_Solr(layout, ports.solr, say).write_core)
        if done.pg_started:
            say("stopping PostgreSQL again")
            done.pg.stop()


def start(progress: Progress | None = None) -> PortalInfo:
    """Install what is missing and start PostgreSQL, Redis, Solr and CKAN.

    Returns once `status_show` answers. Services that already run are left alone (a running
    CKAN is restarted only when its configuration or code changed), so calling this again is
    quick. Raises PortalError with a one-line reason (and a log tail) on failure.
    """
    say = progress or _quiet
    layout = _Layout(portal_home())
    ports = settings.ports()
    with _locked(layout):
        _check_binaries()
        _check_ports(layout, ports)
        layout.make_dirs()
        _start_redis(layout, ports.redis, say)
        search = _Solr(layout, ports.solr, say)
        done = _install(layout, ports, say, after_venv=search.spawn)  # Solr starts meanwhile
        prune_datastore(done.pg, say)
        search.wait()  # before CKAN, whose start-up checks Solr's schema
        if (search.new_index or search.reindex) and done.datasets:
            why = "new Solr core" if search.new_index else "Solr core (its schema changed)"
            say(f"indexing CKAN's {done.datasets} datasets in the {why}")
            _ckan(layout, "search-index", "rebuild", what="search-index rebuild")
        if _daemon_running(layout, "ckan", ports.ckan) and done.restart_ckan:
            say("restarting CKAN to pick up changed configuration")
            _stop_daemon(layout, "ckan", ports.ckan)
        if not (_daemon_running(layout, "ckan", ports.ckan) and _api_status(_url(ports))):
            _stop_daemon(layout, "ckan", ports.ckan)  # a stale or hung process
            _start_ckan(layout, ports, say)
    return PortalInfo(url=_url(ports), token_file=layout.token, home=layout.home)


_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # a resource id


def prune_datastore(pg: _Postgres, say: Progress) -> list[str]:
    """Drop the DataStore tables whose resource is gone from CKAN's database; returns their
    names. CKAN's `dataset_purge` — how tests and benchmarks clean up — leaves a purged
    dataset's DataStore tables behind: on the machine that found it, 2,522 such tables had
    filled 50 GB and the next bulk load failed with a full disk. A DataStore table is created
    only once its resource is committed, so a table without one is a leftover."""
    resources = set(pg.psql("SELECT id FROM resource;", settings.DB_NAME).split())
    tables = pg.psql("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                     f"'public'::regnamespace AND relname ~ '{_UUID}';",
                     settings.DATASTORE_DB_NAME).split()
    left = [t for t in tables if t not in resources]
    if left:
        say(f"dropping {len(left)} DataStore table(s) of purged datasets")
        pg.psql("".join(f'DROP TABLE IF EXISTS "{t}" CASCADE;\n' for t in left),
                settings.DATASTORE_DB_NAME)
    return left


def stop() -> None:
    """Stop CKAN, Solr, Redis and PostgreSQL; services already stopped are fine."""
    layout = _Layout(portal_home())
    if not layout.home.exists():
        return
    with _locked(layout):
        for name in ("ckan", "solr", "redis"):
            _stop_daemon(layout, name)
        if (layout.pgdata / "PG_VERSION").exists():
            _Postgres(layout, settings.ports().postgresql).stop()


def status() -> dict[str, Any]:
    """State of the local portal::

        {"home": str, "url": str, "installed": bool,
         "services": {name: {"running": bool, "address": "host:port"}}}

    with the names postgresql, redis, solr and ckan.

    `ckan` counts as running only when its API answers.
    """
    layout = _Layout(portal_home())
    ports = settings.ports()
    pg_pid = read_pid(layout.pgdata / "postmaster.pid") if layout.pgdata.exists() else None
    running = {
        "postgresql": pid_alive(pg_pid, "postgres") and port_open(HOST, ports.postgresql),
        "redis": _daemon_running(layout, "redis", ports.redis),
        "solr": _daemon_running(layout, "solr", ports.solr),
        "ckan": _daemon_running(layout, "ckan", ports.ckan)
        and _api_status(_url(ports)) is not None,
    }
    return {
        "home": str(layout.home),
        "url": _url(ports),
        "installed": layout.token.exists() and (layout.pgdata / "PG_VERSION").exists(),
        "services": {
            name: {"running": up, "address": f"{HOST}:{getattr(ports, name)}"}
            for name, up in running.items()
        },
    }
