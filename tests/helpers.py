"""Test helpers: an isolated copy of the project's configuration with unique dataset names, in
organisations of this test session's own, so tests never collide with the demo's datasets on
the shared local CKAN and leave nothing behind (`purge_session`, run at the end of the session).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = REPO / "tests" / "recordings"
# Every organisation of a test session's copies is named `odp-test-<session>-NAME`; the session's
# datasets are `t<id>-NAME` (one id per make_project call, recorded in TAGS).
ORG_PREFIX = "odp-test-"
SESSION = ORG_PREFIX + uuid.uuid4().hex[:8]
TAGS: set[str] = set()
STALE_AFTER = timedelta(hours=6)  # a test organisation older than this is a killed session's


def session_org(name: str) -> str:
    """The CKAN name of the city file's organisation `name` in this session's copies."""
    return f"{SESSION}-{name}"


def _own_organisations(city: Path) -> None:
    """Rename the copied city file's organisations to this session's own."""
    text = city.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    default = raw["organization"]["name"]
    text = re.sub(r'(?m)^(\[organization\]\n(?:[^\[\n].*\n)*?name = ")' + re.escape(default) + '"',
                  lambda m: m.group(1) + session_org(default) + '"', text, count=1)
    for key in raw.get("organizations", {}):
        text = text.replace(f"[organizations.{key}]", f"[organizations.{session_org(key)}]")
    city.write_text(text, encoding="utf-8")
    renamed = tomllib.loads(text)
    assert renamed["organization"]["name"] == session_org(default), city
    assert all(k.startswith(SESSION) for k in renamed.get("organizations", {})), city


def _copy_definition(source: Path, target: Path, mapping: dict[str, str]) -> None:
    """A dataset definition with its organisation and its derived inputs renamed."""
    text = source.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    if org := raw.get("publish", {}).get("organization"):
        text = text.replace(f'organization = "{org}"', f'organization = "{session_org(org)}"')
    for name in raw.get("source", {}).get("inputs", {}):
        if name in mapping:
            text = text.replace(f"\n{name} =", f"\n{mapping[name]} =")
    target.write_text(text, encoding="utf-8")


def make_project(tmp: Path, names: list[str]) -> tuple[Path, dict[str, str]]:
    """Copy city, reference layers and the named datasets' three files into `tmp`, each dataset
    renamed `t<id>-NAME`, every organisation `odp-test-<session>-NAME` (derived datasets read
    the renamed inputs). Returns the project root and the name mapping."""
    tag = "t" + uuid.uuid4().hex[:8]
    TAGS.add(tag)
    root = tmp / "project"
    for folder in ("pipelines", "schemas", "expectations"):
        (root / folder).mkdir(parents=True)
    shutil.copytree(REPO / "cities", root / "cities")
    for city in (root / "cities").glob("*.toml"):
        _own_organisations(city)
    (root / "reference").symlink_to(REPO / "reference")
    (root / "tests").mkdir()
    (root / "tests" / "recordings").symlink_to(RECORDINGS)
    shutil.copy(REPO / "odp.toml", root / "odp.toml")
    mapping = {name: f"{tag}-{name}" for name in names}
    for name, new in mapping.items():
        _copy_definition(REPO / "pipelines" / f"{name}.toml", root / "pipelines" / f"{new}.toml",
                         mapping)
        shutil.copy(REPO / "schemas" / f"{name}.json", root / "schemas" / f"{new}.json")
        shutil.copy(REPO / "expectations" / f"{name}.json", root / "expectations" / f"{new}.json")
    return root, mapping


def _everything(**query: Any) -> dict[str, Any]:
    """package_search arguments that see private, draft and deleted datasets too."""
    return {"include_private": True, "include_drafts": True, "include_deleted": True,
            "rows": 1000, **query}


def purge_organisation(ckan: Any, name: str) -> int:
    """Purge an organisation and every dataset in it (active, private, draft or deleted);
    returns how many datasets were purged."""
    purged = 0
    while found := ckan.action.package_search(**_everything(fq=f'organization:"{name}"',
                                                             fl="id"))["results"]:
        for package in found:
            ckan.action.dataset_purge(id=package["id"])
            purged += 1
    ckan.action.organization_purge(id=name)
    return purged


def session_organisations(ckan: Any, older_than: timedelta | None = None) -> list[str]:
    """Test organisations on the portal: this session's, or (`older_than`) any session's that
    was created longer ago than that (a session killed before it could clean up)."""
    orgs, page = [], True
    while page:  # CKAN answers all_fields with at most 25 organisations a call
        page = ckan.action.organization_list(all_fields=True, limit=25, offset=len(orgs))
        orgs += page
    if older_than is None:
        return [o["name"] for o in orgs if o["name"].startswith(SESSION)]
    cutoff = datetime.now(UTC).replace(tzinfo=None) - older_than
    return [o["name"] for o in orgs if o["name"].startswith(ORG_PREFIX)
            and datetime.fromisoformat(o["created"]) < cutoff]


def leftovers(ckan: Any) -> list[str]:
    """This session's datasets (`t<id>-…` of its make_project calls) and organisations that
    are still on the portal."""
    names = [f"{org} (organisation)" for org in session_organisations(ckan)]
    for tag in sorted(TAGS):
        found = ckan.action.package_search(**_everything(fq=f"name:{tag}-*", fl="name"))
        names += [p["name"] for p in found["results"]]
    return names


def use_project(monkeypatch: Any, root: Path, state: Path, replay_url: str, portal: Any,
                fast_retries: bool = False) -> None:
    """Point odp at an isolated project, its own state, a replay server and the local CKAN."""
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    monkeypatch.setenv("ODP_REPLAY_URL", replay_url)
    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    monkeypatch.setenv("CKAN_API_TOKEN", portal.token())
    monkeypatch.setenv("ODP_PORTAL_HOME", str(portal.home))  # its DataStore write URL file
    if fast_retries:
        monkeypatch.setenv("ODP_HTTP_BACKOFF_FACTOR", "0.05")
        monkeypatch.setenv("ODP_HTTP_MAX_RETRY_DELAY", "0.2")


LEDGER_KEY = ["id"]
LEDGER_COLUMNS = ["id", "name", "when"]


def ledger_table(rows: list[tuple[int, str, str]]) -> Any:
    """A small typed table (Int64 id, text name, UTC time) for change-detection tests."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
    df["id"] = df["id"].astype("Int64")
    df["name"] = df["name"].astype("string")
    df["when"] = pd.to_datetime(df["when"], utc=True)
    return df


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    """Debian's headless Chromium with a throw-away profile (skips the test when missing)."""
    import pytest

    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp / 'chromium-profile'}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def cli_env(root: Path, state: Path, replay_url: str, portal: Any,
            fast_retries: bool = True) -> dict[str, str]:
    """The environment for `odp` as a subprocess: an isolated project, its state, a replay
    server and the local CKAN (what `use_project` sets in-process)."""
    import os

    env = {**os.environ, "ODP_PROJECT": str(root), "ODP_STATE_DIR": str(state),
           "ODP_REPLAY_URL": replay_url, "ODP_CKAN_URL": portal.url,
           "CKAN_API_TOKEN": portal.token(), "ODP_PORTAL_HOME": str(portal.home)}
    if fast_retries:
        env["ODP_HTTP_BACKOFF_FACTOR"] = "0.05"
    return env


def odp_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`odp ARGS` as cron runs it: a subprocess, output captured."""
    import sys

    return subprocess.run([sys.executable, "-m", "odp.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def cli_reports(done: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    """The run reports `odp run … --json` printed."""
    import json

    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def cli_report(done: subprocess.CompletedProcess) -> dict[str, Any]:
    """The one run report of `odp run NAME --json`."""
    (report,) = cli_reports(done)
    return report


def table_resource(ckan: Any, name: str) -> dict[str, Any]:
    """The dataset's DataStore table resource (`odp_role` table)."""
    package = ckan.action.package_show(id=name)
    return next(r for r in package["resources"] if r.get("odp_role") == "table")


def all_rows(ckan: Any, name: str) -> list[dict[str, Any]]:
    """Every row of a small dataset's table (at most 1,000), checked against its total."""
    found = ckan.action.datastore_search(resource_id=table_resource(ckan, name)["id"],
                                         limit=1000)
    assert found["total"] == len(found["records"])
    return found["records"]


class WebhookReceiver:
    """A local webhook receiver: the JSON bodies POSTed to `url` (`received`) and their
    Authorization headers (`authorizations`); it answers 503 (and records nothing) while `fail`
    is set. Use it as a context manager."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.authorizations: list[str | None] = []
        self.fail = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail:
                    self.send_response(503)
                else:
                    receiver.received.append(json.loads(body))
                    receiver.authorizations.append(self.headers.get("Authorization"))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
