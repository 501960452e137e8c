"""A bug in one dataset's run (an exception odp did not foresee) fails that run — recorded with
its traceback in the log — and `odp run` goes on with the other datasets, exiting non-zero."""

from __future__ import annotations

import json

from odp import run
from odp.cli import main
from odp.runs import history
from tests.helpers import make_project


def test_unexpected_error_fails_one_dataset_and_the_others_still_run(tmp_path, monkeypatch,
                                                                       capsys):
    root, names = make_project(tmp_path, ["schools-dresden", "wahlbezirke-dresden"])
    state = tmp_path / "state"
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(state))
    ran: list[str] = []

    def stages(dataset, city, state, report, say, dry_run, accept_deletes):  # a buggy stage
        if dataset.name == names["schools-dresden"]:
            raise KeyError("geocode_quality")
        ran.append(dataset.name)
        report.status = "unchanged"

    monkeypatch.setattr(run, "_run_stages", stages)
    code = main(["run", names["schools-dresden"], names["wahlbezirke-dresden"], "--json"])
    reports = {r["dataset"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1
    assert ran == [names["wahlbezirke-dresden"]]
    failed = reports[names["schools-dresden"]]
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert "KeyError" in failed["error"] and "geocode_quality" in failed["error"]
    assert reports[names["wahlbezirke-dresden"]]["status"] == "unchanged"
    (row,) = history.runs(state, names["schools-dresden"])
    assert row["status"] == "failed"
    log = "".join(p.read_text() for p in (state / "logs").glob("*"))
    assert "Traceback" in log and "KeyError" in log


def test_odp_run_runs_derived_datasets_after_their_inputs_whatever_order_they_are_named_in(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ODP_STATE_DIR", str(tmp_path / "state"))
    ran: list[str] = []

    def stages(dataset, city, state, report, say, dry_run, accept_deletes):
        ran.append(dataset.name)
        report.status = "unchanged"

    monkeypatch.setattr(run, "_run_stages", stages)
    code = main(["run", "heavy-rain-dresden-events", "heavy-rain-dresden-windows",
                 "precipitation-dresden-hourly", "precipitation-dresden-10min", "--json"])
    assert code == 0
    assert ran == ["precipitation-dresden-hourly", "precipitation-dresden-10min",
                   "heavy-rain-dresden-events", "heavy-rain-dresden-windows"]
    assert [r["dataset"] for r in json.loads(capsys.readouterr().out)] == ran
