"""A run that finds nothing new ends after extracting — without validating, georeferencing or
writing — and says why; an interrupted publish, leftovers in staging, a changed definition,
schema or suite and a dataset changed on the portal are never skipped (odp.unchanged)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from odp.extract import Extracted
from odp.publish.changes import ledger_path
from odp.run import run_dataset
from odp.spec import load_city, load_dataset
from odp.unchanged import judge, mark_path
from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, make_project, use_project

pytestmark = pytest.mark.integration

ELBE = "elbe-water-level-dresden"
STOPS = "transit-stops-vvo"
STOPS_FILE = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"
SKIPPED = ("validate", "georeference", "publish")


@pytest.fixture
def project(tmp_path: Path, portal, monkeypatch) -> Iterator[dict]:
    root, names = make_project(tmp_path, [ELBE, STOPS])
    with ReplayServer(RECORDINGS, scenario="2024-11-20") as replay:
        use_project(monkeypatch, root, tmp_path / "state", replay.url, portal, fast_retries=True)
        yield {"root": root, "names": names, "state": tmp_path / "state"}


def _run(project: dict, name: str):
    root = project["root"]
    report = run_dataset(project["names"][name], root, load_city(root))
    assert report.status in ("ok", "unchanged"), report.error
    return report


def _short_circuited(report) -> bool:
    said = any(": unchanged: the source delivered nothing new" in m for m in report.messages)
    skipped = not set(SKIPPED) & set(report.stages)
    assert said == skipped, (report.messages, report.stages)
    return said


def _catching_up(report, why: str) -> bool:
    """The run's line saying that the source delivered nothing new, but every stage ran."""
    said = [m for m in report.messages if "the source delivered nothing new, but every stage "
            "runs: " in m]
    return len(said) == 1 and why in said[0]


def _local_stops(project: dict, tmp_path: Path) -> Path:
    """The stops dataset reading a local copy of the recorded file (returned)."""
    source = tmp_path / "stops.csv"
    source.write_bytes(STOPS_FILE.read_bytes())
    definition = project["root"] / "pipelines" / f"{project['names'][STOPS]}.toml"
    text = definition.read_text(encoding="utf-8")
    url = next(line for line in text.splitlines() if line.startswith("url = "))
    definition.write_text(text.replace(url, f'path = "{source}"'), encoding="utf-8")
    return source


def test_a_run_with_nothing_new_ends_unchanged_without_validating_and_says_why(project, ckan):
    first = _run(project, ELBE)
    assert first.inserted == 2885 and not _short_circuited(first)

    second = _run(project, ELBE)
    assert second.status == "unchanged" and _short_circuited(second)
    assert second.validated == 0 and second.georeferenced == 0 and second.write_calls == 0
    assert second.extracted == 0 and second.staged == 2885
    assert "nothing validated, georeferenced or written" in second.messages[-1]

    # As cron runs it, in a fresh process: great-expectations is not even imported.
    code = ("import sys; from pathlib import Path; from odp.run import run_dataset; "
            "from odp.spec import load_city; root = Path(sys.argv[2]); "
            "r = run_dataset(sys.argv[1], root, load_city(root)); "
            "print(r.status, any(m.startswith('great_expectations') for m in sys.modules))")
    fresh = subprocess.run([sys.executable, "-c", code, project["names"][ELBE],
                            str(project["root"])], capture_output=True, text=True, timeout=120)
    assert fresh.stdout.split() == ["unchanged", "False"], fresh.stderr[-2000:]

    # Changed on the portal since: the next run is not skipped (it compares with the portal).
    ckan.action.package_patch(id=project["names"][ELBE], title="edited by hand")
    third = _run(project, ELBE)
    assert not _short_circuited(third) and third.validated == 0  # incremental: nothing new
    assert _catching_up(third, "the dataset was changed or deleted on the portal")
    assert _short_circuited(_run(project, ELBE))


def test_staging_leftovers_of_an_interrupted_extract_are_not_skipped(project):
    _run(project, ELBE)
    root, name = project["root"], project["names"][ELBE]
    dataset, city = load_dataset(name, root), load_city(root)
    mark = json.loads(mark_path(project["state"], name).read_text())["staging"]
    same = Extracted(dataset, project["state"], new_rows=0, load_id=None,
                     staged=mark["staged"], newest_load=mark["newest_load"])
    assert judge(dataset, city, project["state"], same).unchanged
    for leftover in (replace(same, finished=("1733000000.1",)),
                     replace(same, aborted=("1733000000.1",)), replace(same, collapsed=3),
                     replace(same, staged=mark["staged"] + 1),
                     replace(same, newest_load="1733000000.2"), replace(same, new_rows=1)):
        assert not judge(dataset, city, project["state"], leftover).unchanged, leftover


def test_an_interrupted_publish_is_not_skipped(project):
    _run(project, ELBE)
    name = project["names"][ELBE]
    pending = ledger_path(project["state"], name).with_suffix(".pending")
    pending.write_text("2024-11-20T08:00:00+00:00\n")  # as a run killed mid-publish leaves it
    report = _run(project, ELBE)
    assert not _short_circuited(report)
    assert any("the previous publish was interrupted" in m for m in report.messages)
    assert not pending.exists() and _short_circuited(_run(project, ELBE))


def test_a_changed_suite_schema_or_definition_is_not_skipped(project):
    _run(project, ELBE)
    root, name = project["root"], project["names"][ELBE]
    suite = root / "expectations" / f"{name}.json"
    schema = root / "schemas" / f"{name}.json"
    definition = root / "pipelines" / f"{name}.toml"
    for path, edit in ((suite, lambda t: t.replace('"notes"', '"notes"', 1) + "\n"),
                       (schema, lambda t: t.replace('"title"', '"title"', 1) + " "),
                       (definition, lambda t: t + "\n# a comment is a change too\n")):
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
        again = _run(project, ELBE)
        assert not _short_circuited(again), path.name
        assert _catching_up(again, "Table Schema, suite, city file or odp version changed")
        assert _short_circuited(_run(project, ELBE)), path.name


def test_after_a_dry_run_the_real_run_publishes_what_it_staged_and_says_why(project, tmp_path):
    """The dry run read the new file; the real run finds the source unchanged since, so it
    extracts nothing — and says that it publishes the rows the dry run staged."""
    source = _local_stops(project, tmp_path)
    root, name = project["root"], project["names"][STOPS]
    first = _run(project, STOPS)
    source.write_bytes(STOPS_FILE.read_bytes().replace(b"Dresden Prager Stra",
                                                       b"Dresden Prager-Stra"))
    dry = run_dataset(name, root, load_city(root), dry_run=True)
    assert dry.status == "dry-run" and dry.write_calls == 0, dry.error
    real = _run(project, STOPS)
    assert real.extracted == 0 and real.staged == first.staged and real.updated == 1
    assert _catching_up(real, f"staging holds rows not yet published ({first.staged} rows, "
                              "staged by a dry run or a run that stopped before publishing)")
    assert _short_circuited(_run(project, STOPS))


def test_a_local_file_read_again_with_the_same_bytes_is_unchanged(project, ckan, tmp_path):
    source = _local_stops(project, tmp_path)
    name = project["names"][STOPS]
    first = _run(project, STOPS)
    assert first.inserted > 4000

    source.write_bytes(STOPS_FILE.read_bytes())  # written again: a new time, the same bytes
    again = _run(project, STOPS)
    assert _short_circuited(again) and again.extracted == 0 and again.staged == first.staged

    renamed = STOPS_FILE.read_bytes().replace(b"Dresden Prager Stra", b"Dresden Prager-Stra")
    source.write_bytes(renamed)
    changed = _run(project, STOPS)
    assert not _short_circuited(changed) and changed.extracted == first.extracted
    assert changed.updated == 1 and changed.inserted == 0 and changed.deleted == 0
    # Only the changed row was validated and georeferenced (and the rows whose stop id the
    # file holds twice, validated together); the others were carried over.
    ids = pd.read_csv(STOPS_FILE, sep=";", dtype=str, usecols=["Nummer"])["Nummer"]
    twice = int(ids.duplicated(keep=False).sum())
    assert twice and changed.validated == 1 + twice and changed.valid == first.valid
    carried = first.staged - 1 - twice
    assert any(f"{carried} of {first.staged} delivered rows are as last published" in m
               for m in changed.messages), changed.messages

    # Changed on the portal only: every row is carried over (but those of the repeated stop
    # ids), none deleted, and the publish guard counts the carried rows (never "0 rows").
    ckan.action.package_patch(id=name, title="edited by hand")
    carried_only = _run(project, STOPS)
    assert not _short_circuited(carried_only) and carried_only.validated == twice
    assert carried_only.valid == first.valid and carried_only.deleted == 0
    assert carried_only.inserted == carried_only.updated == 0


def _lines_once(path: Path) -> list[bytes]:
    """The recorded stop list's lines without the stops whose id it holds twice."""
    lines = path.read_bytes().splitlines(keepends=True)
    ids = [line.split(b";")[0] for line in lines]
    return [line for line, stop in zip(lines, ids, strict=True) if ids.count(stop) == 1]


def _added_alone(report) -> bool:
    return any("staging's earlier rows not read" in m for m in report.messages)


def test_lines_added_to_a_published_file_are_read_alone_and_published_as_a_whole_read_would(
        project, ckan, tmp_path):
    """A file that grew by a few lines: the run reads only those from staging (the earlier
    rows are the recorded ones), publishes them and keeps every earlier row; a line that
    repeats an earlier stop id makes the run read everything again, so the verdict is the one
    a whole read gives; rows held back (quarantined) are read and validated again with the
    next added lines, as a whole read would."""
    source = _local_stops(project, tmp_path)
    name = project["names"][STOPS]
    lines = _lines_once(STOPS_FILE)
    header, body, held = lines[0], lines[1:-4], lines[-4:]
    source.write_bytes(header + b"".join(body))
    first = _run(project, STOPS)
    assert first.quarantined == 0 and first.inserted == len(body)

    with source.open("ab") as file:
        file.write(held[0] + held[1])
    grew = _run(project, STOPS)
    assert _added_alone(grew), grew.messages
    assert any(f"{len(body)} of {len(body) + 2} delivered rows are as last published" in m
               for m in grew.messages), grew.messages
    assert grew.validated == 2 and grew.inserted == 2 and grew.deleted == grew.updated == 0
    ids = {row["stop_id"] for row in ckan.action.datastore_search(
        resource_id=_datastore_id(ckan, name), limit=10_000, fields="stop_id")["records"]}
    assert len(ids) == len(body) + 2 and {held[0].split(b";")[0].decode(),
                                          held[1].split(b";")[0].decode()} <= ids

    again = body[0].split(b";", 1)[1]  # an earlier stop's id on a new line: validated together
    with source.open("ab") as file:
        file.write(held[2].split(b";", 1)[0] + b";" + again)
        file.write(body[0].split(b";", 1)[0] + b";" + held[2].split(b";", 1)[1])
    repeated = _run(project, STOPS)
    assert not _added_alone(repeated) and repeated.validated == 3, repeated.messages
    assert repeated.quarantined == 2  # the stop id delivered twice: both rows

    with source.open("ab") as file:  # the two quarantined rows are validated again
        file.write(held[3])
    after = _run(project, STOPS)
    assert any("(staging's earlier rows not read: only the 1 added and the 2 held back "
               "before)" in m for m in after.messages), after.messages
    assert after.validated == 3 and after.quarantined == 2 and after.inserted == 1
    assert after.deleted == after.updated == 0


def _datastore_id(ckan, name: str) -> str:  # noqa: ANN001
    package = ckan.action.package_show(id=name)
    return next(r["id"] for r in package["resources"] if r.get("datastore_active"))
