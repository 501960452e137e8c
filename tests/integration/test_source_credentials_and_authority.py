"""A source that needs a token, a portal token that may not write, and CKAN's refusals.

- The VVO stop list behind a query token (`[source.auth] query_param`, the token in an
  environment variable): without it the run is a configuration error naming the variable, a
  wrong one is refused by the source, the right one publishes — and the token appears in no
  output and no file of the state (history, logs, dlt's state and trace, staging).
- Authority before writes: with the data changed at the source, a run whose CKAN token lacks
  the right to update the dataset (a second user, no member of the organisation) or was
  revoked writes nothing — the DataStore table is unchanged although the COPY path needs no
  token — and exits ≠ 0; the same run with a valid token then writes the change.
- CKAN refusing what is sent is classified: a taken name (exit 9), an invalid field (exit 8).

The recording is CONSTRUCTED from REAL rows: the first 300 stops of the recorded VVO list,
served only to a request carrying the token (odp_dev.replay `require`)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from odp.errors import CkanValidationError, NameConflictError
from odp.publish.portal import Portal
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, cli_env, cli_report, make_project, odp_cli, table_resource

pytestmark = pytest.mark.integration

DATASET = "transit-stops-vvo"
URL = ("https://raw.githubusercontent.com/kiliankoe/vvo/9a8732851291c67759d292e08868871fed094176/"
       "stations/stations.csv")
TOKEN_ENV = "ODP_TEST_VVO_TOKEN"
TOKEN = "vvoT0ken-Planted-5e1f9a"
ROWS = 300
STOP = "de:14612:1"  # Dresden Bahnhof Mitte, the first row


def _body(renamed: str | None = None) -> bytes:
    lines = (RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv").read_bytes().split(b"\n")
    body = b"\n".join(lines[: ROWS + 1]) + b"\n"
    if renamed:
        body = body.replace(b";Dresden Bahnhof Mitte;", f";{renamed};".encode(), 1)
    return body


def _recordings(tmp: Path) -> Path:
    folder = tmp / "recordings" / "vvo"
    folder.mkdir(parents=True)
    (folder / "stations.csv").write_bytes(_body())
    (folder / "recordings.json").write_text(json.dumps([{
        "request": {"url": URL, "require": {"query": {"access_token": TOKEN}}},
        "response": {"status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"},
                     "body_file": "stations.csv"},
        "note": "CONSTRUCTED: REAL first 300 rows of the VVO list, behind a query token"}]))
    return folder.parent


def _project(tmp: Path) -> tuple[Path, str]:
    root, names = make_project(tmp, [DATASET])
    definition = root / "pipelines" / f"{names[DATASET]}.toml"
    definition.write_text(definition.read_text() + f'\n[source.auth]\nquery_param = '
                          f'"access_token"\nvalue_env = "{TOKEN_ENV}"\n')
    return root, names[DATASET]


def _leaks(data: bytes) -> bool:
    return TOKEN.encode() in data


@pytest.fixture(scope="module")
def project(tmp_path_factory, portal):
    tmp = tmp_path_factory.mktemp("credentials")
    root, name = _project(tmp)
    with ReplayServer(_recordings(tmp)) as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        yield {"root": root, "name": name, "state": tmp / "state", "env": env,
               "replay": replay, "outputs": {}}


@pytest.fixture(scope="module")
def runs(project):
    """Without the token, with a wrong one, with the right one; then status and history."""
    env, name, out = project["env"], project["name"], project["outputs"]
    out["no token"] = odp_cli(env, "run", name, "--json")
    out["wrong token"] = odp_cli({**env, TOKEN_ENV: "not-the-token"}, "run", name, "--json")
    project["replay"].clear_requests()
    out["run"] = odp_cli({**env, TOKEN_ENV: TOKEN}, "run", name, "--json")
    out["served"] = project["replay"].requests
    for command in ("status", "history"):
        out[command] = odp_cli({**env, TOKEN_ENV: TOKEN}, command, name, "--json")
    return out


def test_without_the_token_the_run_is_a_configuration_error_naming_the_variable(runs):
    report = cli_report(runs["no token"])
    assert runs["no token"].returncode == 2
    assert f"the environment variable {TOKEN_ENV} is not set" in report["error"]


def test_a_wrong_token_is_refused_by_the_source(runs):
    assert runs["wrong token"].returncode == 3
    assert "answered HTTP 401" in cli_report(runs["wrong token"])["error"]


def test_with_the_token_the_run_fetches_and_publishes(runs):
    report = cli_report(runs["run"])
    assert runs["run"].returncode == 0, report
    assert report["status"] == "ok" and report["inserted"] == ROWS
    assert [r.status for r in runs["served"]] == [200]
    assert f"access_token={TOKEN}" in runs["served"][0].url  # it was sent, in the request


def test_the_token_appears_in_no_output(runs):
    for key in ("no token", "wrong token", "run", "status", "history"):
        done: subprocess.CompletedProcess = runs[key]
        assert not _leaks((done.stdout + done.stderr).encode()), key


def test_the_token_appears_in_no_file_of_the_state(runs, project):
    state = project["state"]
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any("dlt" in p.parts for p in files)
    assert not [str(p.relative_to(state)) for p in files if _leaks(p.read_bytes())]


# --- authority before writes ----------------------------------------------------------------


def _stop_name(ckan, name: str) -> tuple[str, int]:
    table = table_resource(ckan, name)
    found = ckan.action.datastore_search(resource_id=table["id"], filters={"stop_id": STOP})
    total = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
    return found["records"][0]["name"], total


@pytest.fixture(scope="module")
def tokens(ckan):
    """An under-privileged user's token, and a revoked token of the sysadmin."""
    reader = f"t{uuid.uuid4().hex[:8]}-reader"
    ckan.action.user_create(name=reader, email=f"{reader}@example.org",
                            password=uuid.uuid4().hex + "Aa1!")
    weak = ckan.action.api_token_create(user=reader, name="odp-test")["token"]
    revoked = ckan.action.api_token_create(user="odp-admin", name="odp-test-revoked")["token"]
    ckan.action.api_token_revoke(token=revoked)
    yield {"under-privileged": weak, "revoked": revoked}
    ckan.action.user_delete(id=reader)


@pytest.mark.parametrize("which", ["under-privileged", "revoked"])
def test_a_token_that_may_not_update_the_dataset_writes_nothing(runs, project, ckan, tokens,
                                                                which):
    name = project["name"]
    before = _stop_name(ckan, name)
    assert before == ("Dresden Bahnhof Mitte", ROWS)
    replay = project["replay"]
    replay.override(URL, 200, _body(renamed=f"Bahnhof Mitte ({which})"), "text/plain")
    try:
        done = odp_cli({**project["env"], TOKEN_ENV: TOKEN, "CKAN_API_TOKEN": tokens[which]},
                       "run", name, "--json")
    finally:
        replay.clear_faults()
    report = cli_report(done)
    assert done.returncode == 5, report
    assert report["status"] == "failed", report
    assert "refused 'datastore_upsert'" in report["error"]
    assert "nothing written to the DataStore table" in report["error"]
    assert _stop_name(ckan, name) == before
    assert tokens[which] not in done.stdout + done.stderr


def test_the_same_change_with_a_valid_token_is_written(runs, project, ckan, tokens):
    name = project["name"]
    replay = project["replay"]
    replay.override(URL, 200, _body(renamed="Bahnhof Mitte (valid)"), "text/plain")
    try:
        done = odp_cli({**project["env"], TOKEN_ENV: TOKEN}, "run", name, "--json")
    finally:
        replay.clear_faults()
    report = cli_report(done)
    assert done.returncode == 0 and report["updated"] == 1, report
    assert report["write_calls"] >= 1
    assert _stop_name(ckan, name) == ("Bahnhof Mitte (valid)", ROWS)


# --- CKAN's refusals, classified ------------------------------------------------------------


def _portal(project, monkeypatch) -> Portal:
    for key in ("ODP_CKAN_URL", "CKAN_API_TOKEN"):
        monkeypatch.setenv(key, project["env"][key])
    return Portal(load_city(project["root"]))


def test_creating_a_dataset_whose_name_is_taken_is_a_name_conflict(runs, project, monkeypatch):
    portal = _portal(project, monkeypatch)
    with pytest.raises(NameConflictError) as taken:
        portal.call("package_create", name=project["name"], title="x")
    assert taken.value.exit_code == 9 and "\n" not in str(taken.value)
    assert str(taken.value).startswith(f"CKAN refused 'package_create' for {project['name']}: "
                                       "name: ")


def test_an_invalid_field_is_a_validation_error_naming_it(runs, project, monkeypatch):
    portal = _portal(project, monkeypatch)
    with pytest.raises(CkanValidationError) as invalid:
        portal.call("package_patch", id=project["name"], name="Not A Valid Name!")
    assert type(invalid.value).exit_code == 8 and "name: " in str(invalid.value)
