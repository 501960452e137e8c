"""Two datasets as Dagster assets, materialised in-process (`dagster.materialize`) against the
local CKAN: the Elbe gauges and the flood levels derived from them. The derived asset runs after
its input, each through odp's run function (odp's run history and the portal show the runs), the
validation gate is each asset's check; a batch the gate holds back fails its check and its
step, and the asset that depends on it does not run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from odp.dagster_defs import GATE, build_definitions
from odp.runs import history
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

GAUGES, LEVELS = "elbe-gauges-saxony", "flood-alarm-levels-saxony"


def _materialise(root: Path, *names: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(root)
    assets = [defs.resolve_assets_def(name) for name in names]
    return dg.materialize(assets, raise_on_error=False)  # an ephemeral instance: no telemetry


def _step_events(result: dg.ExecuteInProcessResult, kind: str) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == kind]


def test_two_datasets_materialise_as_assets_through_odps_run_into_ckan(
        tmp_path: Path, portal, ckan, monkeypatch):
    root, names = make_project(tmp_path, [GAUGES, LEVELS])
    state = tmp_path / "state"
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
        use_project(monkeypatch, root, state, replay.url, portal, fast_retries=True)
        result = _materialise(root, names[LEVELS], names[GAUGES])

        assert result.success
        gauges_step, levels_step = (n.replace("-", "_") for n in (names[GAUGES], names[LEVELS]))
        assert _step_events(result, "STEP_START") == [gauges_step, levels_step]  # input first
        checks = {c.asset_key.path[0]: c for c in result.get_asset_check_evaluations()}
        assert {n: (c.check_name, c.passed) for n, c in checks.items()} == {
            names[GAUGES]: (GATE, True), names[LEVELS]: (GATE, True)}
        for name in (names[GAUGES], names[LEVELS]):
            (materialised,) = result.asset_materializations_for_node(name.replace("-", "_"))
            meta = materialised.metadata
            (run,) = history.runs(state, name)  # odp's own history: the same run
            assert meta["odp_run_id"].value == run["run_id"] and run["status"] == "ok"
            assert meta["inserted"].value == run["inserted"] > 0
            package = ckan.action.package_show(id=name)  # and the portal has it
            table = next(r for r in package["resources"] if r.get("datastore_active"))
            rows = ckan.action.datastore_search(resource_id=table["id"], limit=0)["total"]
            assert rows == run["inserted"]
            assert meta["url"].value.endswith(f"/dataset/{name}")

        # The gate holds the gauges back (more rows required than delivered): the check fails
        # with the gate's reason, the step fails, the flood levels do not run.
        definition = root / "pipelines" / f"{names[GAUGES]}.toml"
        definition.write_text(definition.read_text().replace(
            "[validate]", "[validate]\nmin_rows = 1000000", 1))
        held = _materialise(root, names[GAUGES], names[LEVELS])
    assert not held.success
    (check,) = held.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (GATE, False)
    assert "min_rows" in check.description or "1000000" in check.description
    assert _step_events(held, "STEP_START") == [gauges_step]
    assert history.runs(state, names[GAUGES])[0]["status"] == "held-back"
    assert len(history.runs(state, names[LEVELS])) == 1


def test_the_kpi_cockpit_is_an_asset_downstream_of_every_dataset_and_refreshes_after_them(
        tmp_path: Path, portal, ckan, monkeypatch):
    root, names = make_project(tmp_path, [GAUGES])
    city = root / "cities" / "dresden.toml"
    cockpit = names[GAUGES].split("-", 1)[0] + "-kpi-cockpit"  # the session's own prefix
    city.write_text(city.read_text().replace('dataset = "odp-kpi-cockpit"',
                                             f'dataset = "{cockpit}"'))
    with ReplayServer(RECORDINGS, scenario="2024-11-21") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        defs = build_definitions(root)
        spec = defs.resolve_assets_def(cockpit)
        assert set(spec.asset_deps[dg.AssetKey(cockpit)]) == {dg.AssetKey(names[GAUGES])}
        condition = spec.automation_conditions_by_key[dg.AssetKey(cockpit)]
        assert "eager" in repr(condition).lower() or condition.get_label() == "eager"
        result = dg.materialize([defs.resolve_assets_def(names[GAUGES]), spec],
                                raise_on_error=False)
    try:
        assert result.success
        assert _step_events(result, "STEP_START") == [names[GAUGES].replace("-", "_"),
                                                      cockpit.replace("-", "_")]
        package = ckan.action.package_show(id=cockpit)
        table = next(r for r in package["resources"] if r.get("datastore_active"))
        rows = ckan.action.datastore_search(resource_id=table["id"],
                                            filters={"dataset": names[GAUGES]})["records"]
        assert len(rows) == 1 and rows[0]["runs"] == 1  # today's KPI row of the run just made
    finally:
        ckan.action.dataset_purge(id=cockpit)
