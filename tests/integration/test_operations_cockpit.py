"""Operations on the real local CKAN: history rows for a failed, a successful and a held-back
run, `odp status`/`odp history`, `odp run --due`, the KPI cockpit dataset in CKAN, and the
status page rendered by headless Chromium (Debian's `chromium`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from odp.cli import main
from odp.run import run_dataset
from odp.runs import history
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, chromium, make_project, use_project

pytestmark = pytest.mark.integration

ELBE = "elbe-water-level-dresden"
MEASUREMENTS = (
    "https://www.pegelonline.wsv.de/webservices/rest-api/v2/stations/"
    "70272185-b2b3-4178-96b8-43bea330dcae/W/measurements.json"
)


@pytest.fixture
def project(tmp_path: Path, portal, ckan, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [ELBE])
    name = names[ELBE]
    cockpit = name.split("-", 1)[0] + "-kpi-cockpit"
    city = root / "cities" / "dresden.toml"
    text = city.read_text(encoding="utf-8")
    assert 'dataset = "odp-kpi-cockpit"' in text
    city.write_text(text.replace('dataset = "odp-kpi-cockpit"', f'dataset = "{cockpit}"'),
                    encoding="utf-8")
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "name": name, "replay": replay, "cockpit": cockpit,
               "state": tmp_path / "state"}
    with contextlib.suppress(Exception):  # the test may have failed before creating it
        ckan.action.dataset_purge(id=cockpit)


def test_history_status_cockpit_and_status_page(project, ckan, tmp_path, capsys):
    root, name, replay, state = (project["root"], project["name"], project["replay"],
                                 project["state"])
    city = load_city(root)
    replay.fail_next(MEASUREMENTS, [503] * 5)
    failed = run_dataset(name, root, city)
    ok = run_dataset(name, root, city)
    rows = [{"timestamp": f"2024-11-20T{h:02d}:00:00+01:00", "value": 90.0} for h in (9, 10, 11)]
    rows.append({"timestamp": "2024-11-20T12:00:00+01:00"})  # no value: 25 % rejected
    replay.override(MEASUREMENTS, 200, json.dumps(rows).encode(), "application/json")
    held = run_dataset(name, root, city)
    assert (failed.status, ok.status, held.status) == ("failed", "ok", "held-back"), ok.error

    # History: one row per run, with counts and the error.
    assert main(["history", name, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in runs] == ["held-back", "ok", "failed"]
    h, o, f = runs
    assert f["exit_code"] == 3 and "HTTP 503" in f["error"] and f["ended"] >= f["started"]
    assert o["extracted"] == 2885 and o["valid"] == 2885 and o["published"] == 2885
    assert o["bytes"] > 0 and o["error"] == ""
    assert h["exit_code"] == 4 and h["quarantined"] == 1 and h["published"] == 0

    # Status: the last run held back, the last success just now (fresh for a 15-min schedule).
    assert main(["status", name, "--json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["last_status"] == "held-back" and status["last_success"] == o["started"]
    assert status["freshness"] == "fresh" and status["expected_seconds"] == 900
    assert status["open_quarantine"] == 1 and status["lock"] == "free"
    assert main(["status", name, "--check"]) == 1  # held back: not healthy
    capsys.readouterr()
    # --due: the latest quarter-hour slot already has a run: nothing to do, exit 0.
    assert main(["run", "--due", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert len(history.runs(state, name)) == 3

    # The cockpit dataset in the real CKAN: today's KPI row for the dataset, and the page.
    assert main(["cockpit", "publish"]) == 0
    capsys.readouterr()
    package = ckan.action.package_show(id=project["cockpit"])
    # Its metadata came from the same path as every dataset's (DCAT-AP.de licence IRI).
    assert package["license_uri"] == "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    assert package["contributor_id"].startswith("http://dcat-ap.de/def/contributors/")
    roles = {r.get("odp_role"): r for r in package["resources"]}
    assert set(roles) == {"kpis", "status-page"} and roles["status-page"]["format"] == "HTML"
    found = ckan.action.datastore_search(resource_id=roles["kpis"]["id"],
                                         filters={"dataset": name})
    [kpi] = found["records"]
    assert (kpi["runs"], kpi["runs_ok"], kpi["runs_failed"], kpi["runs_held_back"]) == (3, 1, 1, 1)
    assert kpi["status"] == "failed" and kpi["source_uptime"] == pytest.approx(2 / 3, abs=1e-3)
    assert kpi["share_valid"] == pytest.approx(2888 / 2889, abs=1e-4)
    assert kpi["georeferenced_share"] == 1.0 and kpi["publish_latency_s"] > 0
    # A second publish upserts the same (dataset, day) row: still one.
    assert main(["cockpit", "publish"]) == 0
    again = ckan.action.datastore_search(resource_id=roles["kpis"]["id"],
                                         filters={"dataset": name})
    assert again["total"] == 1

    # The status page, rendered by Chromium: the dataset, its status, its charts.
    page = tmp_path / "status.html"
    assert main(["cockpit", "build", "--out", str(page)]) == 0
    assert "http://" not in page.read_text().replace("http://www.w3.org/2000/svg", "")
    dom = chromium("--dump-dom", page.as_uri(), tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<html lang="de">' in html
    assert f'<tr data-dataset="{name}">' in html
    row = html.split(f'<tr data-dataset="{name}">', 1)[1].split("</tr>", 1)[0]
    assert "status-held-back" in row and ">zurückgehalten<" in row
    card = html.split(f'id="ds-{name}"', 1)[1].split("</section>", 1)[0]
    assert card.count("<rect") == 60  # two charts × 30 days
    assert "Zeilen, die die Prüfung bestehen" in card and "100 % (fehlgeschlagen)" in card
    shot = tmp_path / "status.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1200,900", page.as_uri(),
                     tmp=tmp_path)
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank
