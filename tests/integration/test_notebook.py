"""`notebooks/consume-datastore.ipynb` runs against the real local CKAN and gets the right answers.

Both datasets are published under unique names (as in test_pipeline.py: a copy of the project,
sources replayed from the recordings), then the notebook's code cells are executed in order in one
namespace — no Jupyter needed — with CKAN_URL, ELBE_DATASET and SCHOOLS_DATASET pointing at them.
The expected values come from the recorded source and the run reports, not from the notebook."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from odp.run import run_dataset
from odp.spec import load_city
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, REPO, make_project, use_project

pytestmark = pytest.mark.integration

NOTEBOOK = REPO / "notebooks" / "consume-datastore.ipynb"
ELBE = "elbe-water-level-dresden"
SCHOOLS = "schools-dresden"


@pytest.fixture
def published(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    """Both datasets published to the local CKAN under unique names."""
    root, names = make_project(tmp_path, [ELBE, SCHOOLS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal)
        city = load_city(root)
        reports = {name: run_dataset(names[name], root, city) for name in (ELBE, SCHOOLS)}
    for report in reports.values():
        assert report.status == "ok", report.error
    yield {"names": names, "reports": reports}


def _too_slow(signum, frame):
    raise TimeoutError("the notebook ran for more than 180 s (a paging loop that never ends?)")


def run_notebook(path: Path, seconds: int = 180) -> dict:
    """Execute the code cells in order in one shared namespace; return the namespace."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    namespace: dict = {"__name__": "__notebook__"}
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(seconds)
    try:
        for number, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] != "code":
                continue
            assert not cell.get("outputs"), f"cell {number} was committed with outputs"
            source = "".join(cell["source"])
            exec(compile(source, f"{path.name}[cell {number}]", "exec"), namespace)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return namespace


def recorded_measurements() -> list[tuple[datetime, float]]:
    rows = json.loads((RECORDINGS / "pegelonline" / "measurements_2024-11-20.json")
                      .read_text(encoding="utf-8"))
    return [(datetime.fromisoformat(r["timestamp"]).astimezone(UTC), float(r["value"]))
            for r in rows]


def test_notebook_reads_the_published_datasets(published, portal, ckan, tmp_path, monkeypatch):
    names = published["names"]
    schools_valid = published["reports"][SCHOOLS].valid
    measurements = recorded_measurements()
    assert published["reports"][ELBE].inserted == len(measurements)  # 2885

    monkeypatch.setenv("CKAN_URL", portal.url)
    monkeypatch.setenv("ELBE_DATASET", names[ELBE])
    monkeypatch.setenv("SCHOOLS_DATASET", names[SCHOOLS])
    monkeypatch.setenv("NOTEBOOK_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    ns = run_notebook(NOTEBOOK)

    # It read the test's datasets, not the demo's, and found their table resources.
    assert ns["elbe_package"]["name"] == names[ELBE]
    assert ns["schools_package"]["name"] == names[SCHOOLS]
    for name, key in ((ELBE, "elbe_resource"), (SCHOOLS, "schools_resource")):
        package = ckan.action.package_show(id=names[name])
        [table] = [r for r in package["resources"] if r.get("odp_role") == "table"]
        assert ns[key]["id"] == table["id"]
    assert ns["elbe_package"]["license_id"] == "dl-de-zero-2.0"
    assert ns["elbe_extras"]["temporal_start"] == min(t for t, _ in measurements).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert "water_level" in ns["elbe_columns"].index

    # Totals and paging: every row exactly once.
    assert ns["elbe_total"] == len(measurements)
    assert ns["schools_total"] == schools_valid > 150
    assert ns["elbe_pages"] == 3  # 2885 rows at 1000 a page
    assert len({r["timestamp"] for r in ns["elbe_rows"]}) == len(ns["elbe_rows"]) == len(
        measurements)
    keys = {(r["school_id"], r["building_no"]) for r in ns["schools_rows"]}
    assert len(keys) == len(ns["schools_rows"]) == schools_valid  # keyset paging, 50 a page
    assert ns["neustadt"]["total"] == sum(r["stadtbezirk"] == "Neustadt"
                                          for r in ns["schools_rows"]) > 0
    assert [r["water_level"] for r in ns["highest"]["records"]][0] == max(
        v for _, v in measurements)

    # Daily aggregate (SQL, UTC days) against the recorded source.
    daily = ns["daily"]
    by_day: dict = {}
    for timestamp, value in measurements:
        by_day.setdefault(timestamp.date(), []).append(value)
    assert len(daily) == len(by_day) == 31
    assert list(daily.index) == sorted(by_day)
    assert daily["measurements"].sum() == len(measurements)
    assert daily["max_cm"].max() == max(v for _, v in measurements)
    assert daily["min_cm"].min() == min(v for _, v in measurements)
    day = sorted(by_day)[10]
    assert daily.loc[day, "mean_cm"] == pytest.approx(sum(by_day[day]) / len(by_day[day]), abs=0.05)
    assert ns["elbe"]["water_level"].describe()["count"] == len(measurements)

    # Schools per Stadtbezirk (SQL) add up to the DataStore total.
    per_bezirk = ns["per_bezirk"]
    assert per_bezirk["school_buildings"].sum() == schools_valid
    assert set(per_bezirk["stadtbezirk"].dropna()) <= {
        b.strip() for b in ns["schools_extras"]["stadtbezirke"].split(",")}
    assert len(per_bezirk) >= 5

    # GeoJSON: one feature per school building, coordinates as published.
    geojson_path = Path(ns["schools_geojson"])
    assert geojson_path.parent == tmp_path / "out"
    features = json.loads(geojson_path.read_text(encoding="utf-8"))["features"]
    assert len(features) == schools_valid
    first = next(r for r in ns["schools_rows"] if r["longitude"] is not None)
    match = [f for f in features if f["properties"]["school_id"] == first["school_id"]
             and f["properties"]["building_no"] == first["building_no"]]
    assert match[0]["geometry"]["coordinates"] == pytest.approx(
        [first["longitude"], first["latitude"]])
    assert ns["deviation_m"] < 0.05  # easting/northing agree with reprojected lon/lat

    # The CSV downloads hold as many rows as the DataStore.
    assert len(ns["elbe_csv"]) == ns["elbe_total"] == len(measurements)
    assert len(ns["schools_csv"]) == ns["schools_total"] == schools_valid
    assert ns["csv_check"]["same"].all()
