"""A run that finds nothing new ends right after extracting.

After every complete publish the run records a mark (`STATE/published/NAME.run.json`): a digest
of everything that shapes the published table from the staged rows — the dataset definition,
its Table Schema, its expectation suite, the city file, the portal it publishes to and odp's
version — and a mark of staging's content (rows staged, the newest dlt load id among them), and
when the portal last changed the dataset (`metadata_modified`).

The next run ends "unchanged" — without validating, georeferencing or writing a file — only
when all of these hold; otherwise it runs every stage as usual:
  * the source delivered no rows (a 304, the same content hash, nothing past the incremental
    cursor) and staging is exactly what was published (no package of an interrupted extract
    finished, none aborted, no copy collapsed, the same rows and load ids);
  * the digest of the definition, schema, suite, city and portal is the recorded one;
  * no publish was interrupted (no `pending` marker, see odp.publish.sync) and the ledger exists;
  * the portal still holds the dataset as it was left (one `package_show`: active, with the
    same `metadata_modified`), so a dataset edited or deleted on the portal is repaired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import odp
from odp.spec import City, Dataset

if TYPE_CHECKING:
    from odp.extract import Extracted
    from odp.publish.portal import Portal


def mark_path(state: Path, name: str) -> Path:
    return state / "published" / f"{name}.run.json"


def inputs_digest(dataset: Dataset, city: City) -> str:
    """Digest of the files and settings that shape the published table from the staged rows."""
    schema = dataset.definition_path.parent.parent / "schemas" / f"{dataset.name}.json"
    digest = hashlib.sha256(f"odp {odp.__version__}\n{city.portal_url}\n".encode())
    for path in (dataset.definition_path, schema, dataset.suite_path, city.path):
        data = path.read_bytes() if path.is_file() else b""
        digest.update(f"{path.name}\n{len(data)}\n".encode() + data)
    return digest.hexdigest()


def _staging(extracted: Extracted) -> dict[str, Any]:
    return {"staged": extracted.staged, "newest_load": extracted.newest_load}


@dataclass(frozen=True)
class Verdict:
    unchanged: bool  # the run may end after extracting
    why: str  # why it ends there, or why every stage runs (a sentence for the report)


def judge(dataset: Dataset, city: City, state: Path, extracted: Extracted) -> Verdict:
    """Whether the run may end after extracting, and why (or why not: a run that does work
    although the source delivered nothing new says what it is catching up on)."""
    if extracted.new_rows:
        return Verdict(False, f"the source delivered {extracted.new_rows} rows")
    if extracted.finished or extracted.aborted or extracted.collapsed:
        return Verdict(False, "an interrupted extract was finished or rolled back")
    if extracted.newest_load is None:
        return Verdict(False, "staging holds no rows")
    mark = _mark(state, dataset.name)
    if mark is None:
        return Verdict(False, "no record of a complete publish of these rows (the first "
                              "publish, one after a dry run, or one after an interrupted run)")
    if mark.get("staging") != _staging(extracted):
        return Verdict(False, f"staging holds rows not yet published ({extracted.staged} rows, "
                              "staged by a dry run or a run that stopped before publishing)")
    if mark.get("inputs") != inputs_digest(dataset, city):
        return Verdict(False, "the definition, Table Schema, suite, city file or odp version "
                              "changed since the last publish")
    from odp.publish.portal import Portal

    package = Portal(city).show("package_show", dataset.name)
    if not package or package.get("state") != "active" or (
            package.get("metadata_modified") != mark.get("metadata_modified")):
        return Verdict(False, "the dataset was changed or deleted on the portal since the last "
                              "publish: it is checked and repaired")
    return Verdict(True, "the source delivered nothing new and staging holds what was "
                         "published; definition, schema, suite and city unchanged; the last "
                         "publish complete and the portal's dataset as it was left: nothing "
                         "validated, georeferenced or written")


def _mark(state: Path, name: str) -> dict[str, Any] | None:
    """The mark of the last complete publish; None without one, or while a publish is
    unfinished (its `pending` marker, or no ledger)."""
    from odp.publish.changes import ledger_path

    path, ledger = mark_path(state, name), ledger_path(state, name)
    if not path.is_file() or not ledger.is_file() or ledger.with_suffix(".pending").exists():
        return None
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) else None


def record(dataset: Dataset, city: City, state: Path, extracted: Extracted,
           portal: Portal) -> None:
    """After a complete publish: the mark the next run compares with."""
    package = portal.show("package_show", dataset.name) or {}
    mark = {"inputs": inputs_digest(dataset, city), "staging": _staging(extracted),
            "metadata_modified": package.get("metadata_modified")}
    path = mark_path(state, dataset.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(mark, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def forget(state: Path, name: str) -> None:
    """Before the stages run: a run that stops half-way leaves no mark behind."""
    mark_path(state, name).unlink(missing_ok=True)
