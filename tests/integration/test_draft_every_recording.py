"""`odp draft` on every recorded tabular file in tests/recordings/ (each CSV, and each JSON list of
records the json_records source reads), then a run of the result with no edit (issue 16): every
one would publish, or is held back with the reason its draft predicted.

The drafts are made in-process (the code `odp draft` runs); every drafted dataset gets a dry run
(`odp run --dry-run`: extract, validation and georeferencing, and the counts it would write) —
one per shape: files of one folder whose drafts are the same schema (a gauge's daily answers)
share it — and two of different shapes a real run into the local CKAN: the GENESIS export
(a preamble and a footer the draft found) and a per-pollutant LfULG file (no unique column: a
row hash). tests/integration/test_draft_run.py runs five other shapes for real."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from odp.run import run_dataset
from odp.spec import load_city
from odp.validate.draft import profile, read_source, write_draft
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, all_rows, make_project, use_project

pytestmark = pytest.mark.integration


def _json_list_of_records(path: Path) -> bool:
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return False
    return isinstance(data, list) and bool(data) and all(isinstance(r, dict) for r in data)


def recorded_tabular_files() -> list[Path]:
    """Every recording a draft takes: CSV files, and JSON files holding a list of records."""
    found = sorted(RECORDINGS.rglob("*.csv"))
    found += [p for p in sorted(RECORDINGS.rglob("*.json"))
              if p.name != "recordings.json" and _json_list_of_records(p)]
    return found


FILES = recorded_tabular_files()


PUBLISHED = ("genesis/14341-01-02-5_00.csv", "leipzig/lfulg_2018-12_Leipzig-Mitte_NO2.csv")
# What a draft predicts the run rejects, from the comment it writes in the pipeline.
SUMMER_TIME = re.compile(r"# (\w+): (\d+) values do not exist or repeat at the summer-time change")


def _id(path: Path) -> str:
    return str(path.relative_to(RECORDINGS))


def _name(path: Path, tag: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", f"{path.parent.name}-{path.stem}".lower())
    return f"{tag}-{stem}"[:80].strip("-")


@pytest.fixture(scope="module")
def drafted(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """Each file copied into the project's data/ folder and drafted as `odp draft` does."""
    root, _ = make_project(tmp_path_factory.mktemp("draft-every"), [])
    tag = "t" + uuid.uuid4().hex[:8]  # unique on the shared portal
    city = load_city(root)
    drafts: dict[str, Any] = {}
    for path in FILES:
        target = root / "data" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        where = str(target.relative_to(root))
        sample = read_source(where, root)
        draft = profile(sample.frame, _name(path, tag), where, city, sample)
        with contextlib.redirect_stderr(io.StringIO()):
            write_draft(draft, root, city.timezone)
        drafts[_id(path)] = draft
    return root, drafts


def _shape(root: Path, key: str, draft: Any) -> str:
    """The folder and the drafted schema without its name: drafts of one shape."""
    schema = json.loads((root / "schemas" / f"{draft.name}.json").read_text(encoding="utf-8"))
    schema.pop("name", None)
    return key.split("/")[0] + json.dumps(schema, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def run(drafted, portal) -> Iterator[Callable[[str, bool], Any]]:
    """`run(file, dry_run)`: the run report of the file's drafted dataset, each shape dry-run
    once."""
    root, drafts = drafted
    done: dict[tuple[str, bool], Any] = {}
    with ReplayServer(RECORDINGS) as replay, pytest.MonkeyPatch.context() as patch:
        use_project(patch, root, root.parent / "state", replay.url, portal)
        city = load_city(root)

        def report(key: str, dry_run: bool) -> Any:
            shape = _shape(root, key, drafts[key]) if dry_run else key
            if (shape, dry_run) not in done:
                done[shape, dry_run] = (key, run_dataset(drafts[key].name, root, city,
                                                         dry_run=dry_run))
            return done[shape, dry_run]

        yield report


def _predicted_rejections(root: Path, draft: Any) -> int:
    text = (root / "pipelines" / f"{draft.name}.toml").read_text(encoding="utf-8")
    return sum(int(m.group(2)) for m in SUMMER_TIME.finditer(text))


def test_every_recorded_csv_and_json_list_is_drafted_into_three_files(drafted):
    root, drafts = drafted
    assert len(drafts) >= 30 and {"genesis/14341-01-02-5_00.csv",
                                  "schools/sachsen_schools_schuldatenbank.json"} <= set(drafts)
    for draft in drafts.values():
        for folder, suffix in (("pipelines", "toml"), ("schemas", "json"),
                               ("expectations", "json")):
            assert (root / folder / f"{draft.name}.{suffix}").is_file()


def test_the_genesis_draft_skips_title_lines_and_footer_and_numbers_its_columns(drafted):
    root, drafts = drafted
    draft = drafts["genesis/14341-01-02-5_00.csv"]
    text = (root / "pipelines" / f"{draft.name}.toml").read_text(encoding="utf-8")
    assert "skip_rows = 9" in text and 'skip_footer = "auto"' in text and "header = false" in text
    assert draft.rows == 39  # 3 elections × (Berlin + 12 Bezirke), no title or footer line


@pytest.mark.parametrize("key", [_id(p) for p in FILES], ids=[p.name for p in FILES])
def test_the_drafted_dataset_would_publish_rejecting_only_what_its_draft_predicted(drafted, run,
                                                                                   key):
    root, drafts = drafted
    ran_as, report = run(key, True)
    draft = drafts[ran_as]
    predicted = _predicted_rejections(root, draft)
    assert report.status == "dry-run", (ran_as, report.error, report.messages[:3])
    assert (report.inserted, report.quarantined) == (draft.rows - predicted, predicted), ran_as
    assert all("does not exist or is ambiguous in Europe/Berlin" in m
               for m in report.messages[:predicted]), report.messages[:3]


def test_the_parking_forecast_draft_predicts_its_summer_time_rejections(drafted):
    root, drafts = drafted
    assert _predicted_rejections(root, drafts[
        "parking_dresden/parkapi_forecast_dresdenaltmarkt.csv"]) == 8  # 2 × 4 quarter hours


@pytest.mark.parametrize("key", PUBLISHED)
def test_a_real_run_of_the_draft_publishes_every_row_into_the_portal(drafted, run, ckan, key):
    _, drafts = drafted
    draft = drafts[key]
    _, report = run(key, False)
    assert (report.status, report.quarantined, report.inserted) == ("ok", 0, draft.rows), \
        (report.error, report.messages[:3])
    assert ckan.action.package_show(id=draft.name)["state"] == "active"
    rows = all_rows(ckan, draft.name)  # at most 1,000: both files are smaller
    assert len(rows) == draft.rows and "_id" in rows[0]


