"""A source URL with credentials — `access_token=`, `sig=` — answering HTTP 500: the
secrets appear on no exit channel. Neither on what `odp run` (plain, as under cron, and
--json), `odp status --json` and `odp history --json` print, nor in any file under the state
directory (history, quarantine, logs, dlt's pipeline folder, staging …), read as bytes.
A URL with userinfo (`user:password@`) is refused as a configuration error before any request,
and its password appears nowhere either."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli

pytestmark = pytest.mark.integration

DATASET = "transit-stops-vvo"
SECRETS = (b"S3CRETPW", b"S3CRETTOKEN", b"S3CRETSIG")
PATH = "raw.githubusercontent.com/kiliankoe/vvo/9a8732851291c67759d292e08868871fed094176/" \
       "stations/stations.csv"
URL = f"http://{PATH}?access_token=S3CRETTOKEN&sig=S3CRETSIG"
WITH_USERINFO = f"http://user:S3CRETPW@{PATH}"


def _leaks(data: bytes) -> list[str]:
    return [s.decode() for s in SECRETS if s in data]


def _project(tmp: Path, url: str = URL) -> tuple[Path, str]:
    """A copy of the dataset whose `[source] url` carries the credentials."""
    root, names = make_project(tmp, [DATASET])
    name = names[DATASET]
    definition = root / "pipelines" / f"{name}.toml"
    text, count = re.subn(r'(?m)^url = ".*"$', f'url = "{url}"', definition.read_text())
    assert count == 1
    definition.write_text(text)
    return root, name


def _failing_source() -> ReplayServer:
    replay = ReplayServer(RECORDINGS)
    replay.override(PATH, 500, b'{"error": "internal"}', "application/json")
    return replay


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory, portal):
    """Two failed runs of the dataset (cron-style and --json), then status and history."""
    tmp = tmp_path_factory.mktemp("secrets")
    root, name = _project(tmp)
    state = tmp / "state"
    outputs: dict[str, subprocess.CompletedProcess] = {}
    with _failing_source() as replay:
        env = cli_env(root, state, replay.url, portal)
        outputs["run"] = odp_cli(env, "run", name)
        outputs["run --json"] = odp_cli(env, "run", name, "--json")
        outputs["status --json"] = odp_cli(env, "status", name, "--json")
        outputs["status"] = odp_cli(env, "status", name)
        outputs["history --json"] = odp_cli(env, "history", name, "--json")
        outputs["history"] = odp_cli(env, "history", name)
        served = replay.requests
    return {"name": name, "state": state, "outputs": outputs, "served": served}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, portal):
    """`odp run NAME --dry-run --json` of the same failing source, in a state of its own."""
    tmp = tmp_path_factory.mktemp("secrets-dry")
    root, name = _project(tmp)
    with _failing_source() as replay:
        done = odp_cli(cli_env(root, tmp / "state", replay.url, portal), "run", name,
                       "--dry-run", "--json")
    return {"state": tmp / "state", "done": done}


def _state_files(state: Path, dlt: bool) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*"))
            if p.is_file() and (p.relative_to(state).parts[0] == "dlt") == dlt}


def test_the_source_answered_500_and_the_runs_failed(failed_run):
    assert failed_run["served"] and {r.status for r in failed_run["served"]} == {500}
    done = failed_run["outputs"]["run --json"]
    assert done.returncode != 0
    assert '"status": "failed"' in done.stdout and "500" in done.stdout


@pytest.mark.parametrize("command", ["run", "run --json", "status --json", "status",
                                     "history --json", "history"])
def test_no_secret_in_what_a_command_prints(failed_run, command):
    done = failed_run["outputs"][command]
    assert not _leaks(done.stdout.encode() + done.stderr.encode()), done.stdout + done.stderr


def test_the_recorded_error_still_names_the_url_without_its_credentials(failed_run):
    out = failed_run["outputs"]["history --json"].stdout
    assert "access_token=***" in out, out
    status = failed_run["outputs"]["status --json"].stdout
    assert '"state_bytes": ' in status and '"last_status": "failed"' in status
    assert "state:" in failed_run["outputs"]["status"].stdout


def test_no_secret_in_any_file_of_the_state_outside_dlt(failed_run):
    files = _state_files(failed_run["state"], dlt=False)
    assert "history.sqlite" in files and any(f.startswith("logs") for f in files)
    leaking = {path: _leaks(data) for path, data in files.items() if _leaks(data)}
    assert not leaking


def test_no_secret_in_any_file_of_dlts_pipeline_folder(failed_run):
    files = _state_files(failed_run["state"], dlt=True)
    leaking = {path: _leaks(data) for path, data in files.items() if _leaks(data)}
    assert not leaking


# A dry run is not recorded (odp.run skips record_run): the CLI redacts the report it prints,
# and odp.extract removes dlt's trace after every extract.


def test_no_secret_in_what_a_dry_run_prints(dry_run):
    done = dry_run["done"]
    assert '"status": "failed"' in done.stdout
    assert not _leaks(done.stdout.encode() + done.stderr.encode())


def test_no_secret_in_dlts_folder_after_a_dry_run(dry_run):
    files = _state_files(dry_run["state"], dlt=True)
    assert files  # dlt's pipeline folder exists: it was scanned
    assert not {path: _leaks(data) for path, data in files.items() if _leaks(data)}


def test_the_state_directory_and_everything_in_it_are_the_operators_only(failed_run):
    state = failed_run["state"]
    opened = {str(p.relative_to(state)): oct(p.stat().st_mode & 0o777)
              for p in [state, *state.rglob("*")] if p.stat().st_mode & 0o077}
    assert not opened


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory, portal):
    """`odp run NAME` (plain and --json) of a definition whose URL holds user:password@."""
    tmp = tmp_path_factory.mktemp("secrets-userinfo")
    root, name = _project(tmp, WITH_USERINFO)
    state = tmp / "state"
    with _failing_source() as replay:
        env = cli_env(root, state, replay.url, portal)
        done = [odp_cli(env, "run", name), odp_cli(env, "run", name, "--json")]
        served = replay.requests
    return {"state": state, "done": done, "served": served}


def test_a_url_with_userinfo_is_refused_before_any_request_and_its_password_kept(refused_run):
    assert not refused_run["served"]
    for done in refused_run["done"]:
        assert done.returncode == 2, done.stdout + done.stderr
        assert "[source.auth]" in done.stdout + done.stderr
        assert not _leaks(done.stdout.encode() + done.stderr.encode())
    files = {**_state_files(refused_run["state"], dlt=False),
             **_state_files(refused_run["state"], dlt=True)}
    assert not {path: _leaks(data) for path, data in files.items() if _leaks(data)}
