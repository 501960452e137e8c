"""`odp run --all --workers 2` into the local CKAN: independent datasets run at the same time in
two worker processes, the derived flood levels start only after the gauges they read have
finished, a dataset whose source fails fails alone, the exit code says so, and the output is one
line per dataset. And datasets of one new organisation published at the same moment create it
once, none failing on the name the other took."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from odp.publish.catalog import ensure_organization_and_groups
from odp.publish.portal import Portal
from odp.runs import history
from odp.spec import load_city, load_dataset
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, REPO, cli_env, make_project, odp_cli, session_org

pytestmark = pytest.mark.integration

DATASETS = ["stadtteile-dresden", "elbe-gauges-saxony", "flood-alarm-levels-saxony"]


def _broken(root: Path, tag: str) -> str:
    """The Wahlbezirke dataset with a source that answers 404 (a collection the server lacks)."""
    name = f"{tag}-wahlbezirke-broken"
    for folder, ext in (("pipelines", "toml"), ("schemas", "json"), ("expectations", "json")):
        shutil.copy(REPO / folder / f"wahlbezirke-dresden.{ext}", root / folder / f"{name}.{ext}")
    definition = root / "pipelines" / f"{name}.toml"
    definition.write_text(definition.read_text().replace("/L703/", "/L999/"))
    return name


def test_run_all_with_two_workers_runs_side_by_side_inputs_first_and_a_failure_alone(
        tmp_path: Path, portal, ckan):
    root, names = make_project(tmp_path, DATASETS)
    broken = _broken(root, names["elbe-gauges-saxony"].split("-")[0])
    state = tmp_path / "state"
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
        done = odp_cli(cli_env(root, state, replay.url, portal), "run", "--all", "--workers", "2")
    assert done.returncode == 3, done.stderr  # the broken source's exit code

    runs = {name: history.runs(state, name)[0] for name in [*names.values(), broken]}
    assert runs[broken]["status"] == "failed" and "404" in runs[broken]["error"]
    for name in names.values():
        assert runs[name]["status"] == "ok" and runs[name]["inserted"] > 0, runs[name]["error"]
    # Run order: gauges, (levels wait for them), Stadtteile, broken: two at a time.
    gauges, levels = runs[names["elbe-gauges-saxony"]], runs[names["flood-alarm-levels-saxony"]]
    districts = runs[names["stadtteile-dresden"]]
    assert gauges["started"] < districts["ended"] and districts["started"] < gauges["ended"]
    assert levels["started"] >= gauges["ended"]
    assert len({r["pid"] for r in runs.values()}) == 2  # two worker processes, each reused

    messages = [json.loads(line)["message"] for line in done.stdout.splitlines()]
    outcomes = [m for m in messages if not m.startswith(("  ", "portal:"))]
    assert sorted(m.split(":")[0] for m in outcomes) == sorted(runs), messages  # one each
    assert all(" in " in m or "FAILED" in m for m in outcomes)
    assert ckan.action.package_show(id=names["stadtteile-dresden"])["num_resources"] > 0


def test_datasets_of_one_new_organisation_published_at_once_create_it_once(
        tmp_path: Path, portal, ckan, monkeypatch):
    root, names = make_project(tmp_path, ["schools-dresden"])
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("CKAN_API_TOKEN", portal.token())
    monkeypatch.setenv("ODP_PORTAL_HOME", str(portal.home))
    city, dataset = load_city(root), load_dataset(names["schools-dresden"], root)
    start, failures = threading.Barrier(4), []

    def publish() -> None:
        start.wait()
        try:
            ensure_organization_and_groups(Portal(city), dataset, city)
        except Exception as exc:  # noqa: BLE001 — collected for the assertion
            failures.append(exc)

    racers = [threading.Thread(target=publish) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert failures == []
    org = dataset.publish["organization"]  # the session's own copy of the Schulverwaltungsamt
    assert org == session_org("schulverwaltungsamt")
    assert ckan.action.organization_show(id=org)["state"] == "active"
