"""The local CKAN stack: API up, sysadmin token, DataStore, datasets with search, and a German
portal (dataset pages rendered by headless Chromium)."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
import requests

from odp_dev.portal import settings, stack
from tests.helpers import chromium, make_project, odp_cli, session_org
from tests.integration.ckan_proxy import ForwardingProxy, Reply, Request, passed_on

pytestmark = pytest.mark.integration

def _name(prefix: str) -> str:
    """A unique CKAN name, so runs against the shared portal never collide."""
    return f"test-{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def organization(ckan: ckanapi.RemoteCKAN) -> Iterator[dict]:
    org = ckan.action.organization_create(name=_name("org"))
    yield org
    for pkg in ckan.action.package_search(fq=f"owner_org:{org['id']}", rows=1000)["results"]:
        ckan.action.dataset_purge(id=pkg["id"])
    ckan.action.organization_purge(id=org["id"])


def test_status_show_answers(portal: stack.PortalInfo) -> None:
    resp = requests.get(f"{portal.url}/api/3/action/status_show", timeout=10)
    result = resp.json()["result"]
    assert resp.ok
    assert result["ckan_version"] == settings.CKAN_VERSION
    assert set(settings.CKAN_PLUGINS) <= set(result["extensions"])


def test_status_reports_every_service_running(portal: stack.PortalInfo) -> None:
    state = stack.status()
    assert state["url"] == portal.url
    assert state["installed"]
    running = {name: svc["running"] for name, svc in state["services"].items()}
    assert running == {"postgresql": True, "redis": True, "solr": True, "ckan": True}


def test_services_listen_on_loopback_only(portal: stack.PortalInfo) -> None:
    for svc in stack.status()["services"].values():
        assert svc["address"].startswith("127.0.0.1:")


def test_token_file_is_private_and_not_logged(portal: stack.PortalInfo) -> None:
    assert stat.S_IMODE(portal.token_file.stat().st_mode) == 0o600
    token = portal.token()
    for log in (portal.home / "logs").glob("*.log"):
        if log.stat().st_size < 50_000_000:
            assert token not in log.read_text(errors="replace"), log.name


def test_token_belongs_to_a_sysadmin(ckan: ckanapi.RemoteCKAN) -> None:
    user = ckan.action.user_show(id=settings.ADMIN_USER)
    assert user["sysadmin"] is True
    org = ckan.action.organization_create(name=_name("sysadmin"))
    ckan.action.organization_purge(id=org["id"])
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id=org["id"])


def test_second_start_is_quick(portal: stack.PortalInfo) -> None:
    began = time.monotonic()
    again = stack.start()
    assert again == portal
    assert time.monotonic() - began < 5


def test_odp_portal_reaches_the_local_stack_through_its_entry_point_and_hands_over_the_write_url(
        portal: stack.PortalInfo) -> None:
    done = odp_cli(dict(os.environ), "portal", "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["url"] == portal.url and status["services"]["ckan"]["running"]
    handed = portal.home / "datastore-write-url"  # the city file's datastore_write_url_file
    assert stat.S_IMODE(handed.stat().st_mode) == 0o600
    assert handed.read_text().strip() == stack.datastore_write_url()
    assert handed.read_text().startswith("postgresql://")
    assert "datastore-write-url" in (Path(__file__).parents[2] / "cities" / "dresden.toml"
                                     ).read_text()


def test_dataset_create_show_search(ckan: ckanapi.RemoteCKAN, organization: dict) -> None:
    name = _name("ds")
    # Letters only: Solr's WordDelimiterGraphFilter splits "gauge1a2b" into "gauge", "1", "a"…
    word = "elbepegel" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])
    ckan.action.package_create(
        name=name, title="Water levels", notes=f"Elbe {word}", owner_org=organization["id"]
    )
    assert ckan.action.package_show(id=name)["notes"] == f"Elbe {word}"
    found = ckan.action.package_search(q=word)
    assert [pkg["name"] for pkg in found["results"]] == [name]
    in_org = ckan.action.package_search(fq=f"organization:{organization['name']}")
    assert in_org["count"] == 1


def test_datastore_create_and_search(ckan: ckanapi.RemoteCKAN, organization: dict) -> None:
    pkg = ckan.action.package_create(name=_name("ds"), owner_org=organization["id"])
    created = ckan.action.datastore_create(
        resource={"package_id": pkg["id"], "name": "levels"},
        fields=[{"id": "station", "type": "text"}, {"id": "level_cm", "type": "int"}],
        records=[{"station": "Dresden", "level_cm": 112}, {"station": "Pirna", "level_cm": 98}],
        primary_key=["station"],
    )
    rid = created["resource_id"]
    rows = ckan.action.datastore_search(resource_id=rid, sort="station")["records"]
    assert [(r["station"], r["level_cm"]) for r in rows] == [("Dresden", 112), ("Pirna", 98)]
    sql = ckan.action.datastore_search_sql(sql=f'SELECT sum(level_cm) AS s FROM "{rid}"')
    assert int(sql["records"][0]["s"]) == 210  # sqlsearch enabled, read-only role works


def test_dataset_page_is_german_in_chromium_and_english_on_request(
    portal: stack.PortalInfo, ckan: ckanapi.RemoteCKAN, organization: dict, tmp_path: Path
) -> None:
    name = _name("de")
    ckan.action.package_create(name=name, title="Wasserstand der Elbe", license_id="cc-by",
                               owner_org=organization["id"])
    status = requests.get(f"{portal.url}/api/3/action/status_show", timeout=10).json()
    assert status["result"]["locale_default"] == "de"
    done = chromium("--dump-dom", f"{portal.url}/dataset/{name}", tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    page = done.stdout
    assert '<html lang="de"' in page
    assert "Wasserstand der Elbe" in page
    # CKAN's own German translation (not a label of the project's dataset schema).
    assert "Zusätzliche Informationen" in page and "Additional Info" not in page
    english = requests.get(f"{portal.url}/en/dataset/{name}", timeout=30).text
    assert '<html lang="en"' in english and "Additional Info" in english


# --------------------------------------------------------------------------- odp portal check


class PluginsOff(ForwardingProxy):
    """CONSTRUCTED stand-in for a city's CKAN with some plugins off: a local HTTP server in front
    of the real local CKAN that forwards every request, except that `status_show` lists the
    extensions without `off`, and — with the DataStore off — `datastore_*` actions answer as
    CKAN answers an action no plugin provides (HTTP 400, "Action name not known", as the real
    portal does for an unknown action). It records the Authorization headers it receives."""

    follow_redirects = True

    def __init__(self, target: str, off: set[str]) -> None:
        super().__init__(target)
        self.off = off
        self.authorizations: list[str] = []

    def answer(self, request: Request) -> Reply:
        action = request.action
        if auth := request.headers.get("Authorization"):
            self.authorizations.append(auth)
        if "datastore" in self.off and action.startswith("datastore_"):
            text = f'"Bad request: Action name not known: {action}"'
            return Reply(400, text.encode(), "application/json")
        answer = self.forward(request)
        if action != "status_show":
            return passed_on(answer)
        status = answer.json()
        status["result"]["extensions"] = [
            e for e in status["result"]["extensions"] if e not in self.off]
        return passed_on(answer, json.dumps(status).encode())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with two datasets (themes: environment, transport, education)."""
    root, _ = make_project(tmp_path_factory.mktemp("check"),
                           ["elbe-water-level-dresden", "schools-dresden"])
    return root


def _check(portal: stack.PortalInfo, project: Path, *args: str, token: bool = True
           ) -> tuple[int, dict[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CKAN_API_TOKEN", "CKAN_API_TOKEN_FILE", "ODP_CKAN_URL")}
    env["ODP_PROJECT"] = str(project)
    env["ODP_PORTAL_HOME"] = str(portal.home)  # the city file's token and write URL files
    if token:
        env["CKAN_API_TOKEN"] = portal.token()
    done = odp_cli(env, "portal", "check", *args, "--json")
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    assert report["ready"] == (done.returncode == 0)
    return done.returncode, {c["requirement"]: c for c in report["checks"]}


def _states(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: c["state"] for name, c in checks.items()}


def test_check_finds_everything_odp_needs_on_the_local_portal(
    portal: stack.PortalInfo, project: Path
) -> None:
    code, checks = _check(portal, project)
    assert code == 0
    assert set(_states(checks).values()) == {"ok"}
    assert {"ckan", "datastore", "datastore_write", "scheming", "dcat", "odp_extension",
            "spatial", "previews", "token", f"organization:{session_org('umweltamt')}",
            "group:umwelt", "group:verkehr", "group:bildung-kultur-sport"} <= set(checks)
    assert checks["ckan"]["detail"].startswith(f"CKAN {settings.CKAN_VERSION}")
    assert checks["datastore_write"]["detail"].startswith("COPY into the DataStore database")
    assert "sysadmin" in checks["token"]["detail"]


def test_check_of_a_portal_without_spatial_warns_and_without_datastore_fails(
    portal: stack.PortalInfo, project: Path
) -> None:
    with PluginsOff(portal.url, {"spatial_metadata", "spatial_query"}) as stand_in:
        code, checks = _check(portal, project, stand_in.url)
    assert code == 0  # odp publishes without spatial search
    states = _states(checks)
    assert states.pop("spatial") == "warn"
    assert set(states.values()) == {"ok"}
    # Another portal than the local one: rows go through the action API.
    assert checks["datastore_write"]["detail"].startswith("action API")

    with PluginsOff(portal.url, {"datastore"}) as stand_in:
        code, checks = _check(portal, project, stand_in.url)
    assert code == 5
    assert _states(checks)["datastore"] == "missing"
    assert "datastore plugin is off" in checks["datastore"]["detail"]
    assert _states(checks)["spatial"] == "ok"


def test_check_never_sends_the_local_portals_token_file_to_another_portal(
    portal: stack.PortalInfo, project: Path
) -> None:
    with PluginsOff(portal.url, set()) as stand_in:
        code, checks = _check(portal, project, stand_in.url, token=False)
    assert stand_in.authorizations == []
    assert code == 5 and checks["token"]["state"] == "missing"


def _datastore_tables(names: list[str]) -> set[str]:
    import psycopg

    with psycopg.connect(stack.datastore_write_url()) as conn:
        found = conn.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", (names,))
        return {row[0] for row in found.fetchall()}


def test_starting_the_portal_drops_the_datastore_tables_a_purged_dataset_left(
        portal: stack.PortalInfo, ckan: ckanapi.RemoteCKAN, organization: dict) -> None:
    """CKAN's dataset_purge leaves the dataset's DataStore tables; tests and benchmarks purge
    thousands of datasets, so the local portal drops such tables when it starts (a full disk
    otherwise) — and never a table whose resource still exists."""
    ids = {}
    for which in ("kept", "purged"):
        package = ckan.action.package_create(name=_name(which), owner_org=organization["id"])
        created = ckan.action.datastore_create(
            resource={"package_id": package["id"], "name": which},
            fields=[{"id": "n", "type": "int"}], records=[{"n": 1}, {"n": 2}])
        ids[which] = (package["id"], created["resource_id"])
    ckan.action.dataset_purge(id=ids["purged"][0])
    tables = [ids["kept"][1], ids["purged"][1]]
    assert _datastore_tables(tables) == set(tables)  # CKAN left the purged one's table

    stack.start()
    assert _datastore_tables(tables) == {ids["kept"][1]}
    assert ckan.action.datastore_search(resource_id=ids["kept"][1])["total"] == 2
