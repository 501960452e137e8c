"""Test helpers: an isolated copy of the project's configuration with unique dataset names, so
tests never collide with the demo's datasets on the shared local CKAN."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = REPO / "tests" / "recordings"


def make_project(tmp: Path, names: list[str]) -> tuple[Path, dict[str, str]]:
    """Copy city, reference layers and the named datasets' three files into `tmp`, each dataset
    renamed `t<id>-NAME`. Returns the project root and the name mapping."""
    tag = "t" + uuid.uuid4().hex[:8]
    root = tmp / "project"
    for folder in ("pipelines", "schemas", "expectations"):
        (root / folder).mkdir(parents=True)
    shutil.copytree(REPO / "cities", root / "cities")
    (root / "reference").symlink_to(REPO / "reference")
    (root / "tests").mkdir()
    (root / "tests" / "recordings").symlink_to(RECORDINGS)
    shutil.copy(REPO / "odp.toml", root / "odp.toml")
    mapping = {}
    for name in names:
        new = f"{tag}-{name}"
        mapping[name] = new
        shutil.copy(REPO / "pipelines" / f"{name}.toml", root / "pipelines" / f"{new}.toml")
        shutil.copy(REPO / "schemas" / f"{name}.json", root / "schemas" / f"{new}.json")
        shutil.copy(REPO / "expectations" / f"{name}.json", root / "expectations" / f"{new}.json")
    return root, mapping


def use_project(monkeypatch: Any, root: Path, state: Path, replay_url: str, portal: Any,
                fast_retries: bool = False) -> None:
    """Point odp at an isolated project, its own state, a replay server and the local CKAN."""
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    monkeypatch.setenv("ODP_REPLAY_URL", replay_url)
    monkeypatch.setenv("ODP_CKAN_URL", portal.url)
    monkeypatch.setenv("CKAN_API_TOKEN", portal.token())
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
           "CKAN_API_TOKEN": portal.token()}
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
