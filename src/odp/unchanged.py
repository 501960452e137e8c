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


def why_unchanged(dataset: Dataset, city: City, state: Path, extracted: Extracted
                  ) -> str | None:
    """Why this run may end here (a sentence for the report), or None: run every stage."""
    from odp.publish.changes import ledger_path
    from odp.publish.portal import Portal

    path = mark_path(state, dataset.name)
    ledger = ledger_path(state, dataset.name)
    if (extracted.new_rows or extracted.finished or extracted.aborted or extracted.collapsed
            or extracted.newest_load is None or not path.is_file() or not ledger.is_file()
            or ledger.with_suffix(".pending").exists()):
        return None
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if mark.get("staging") != _staging(extracted):
        return None
    if mark.get("inputs") != inputs_digest(dataset, city):
        return None
    package = Portal(city).show("package_show", dataset.name)
    if not package or package.get("state") != "active" or (
            package.get("metadata_modified") != mark.get("metadata_modified")):
        return None
    return ("the source delivered nothing new and staging holds what was published; "
            "definition, schema, suite and city unchanged; the last publish complete and the "
            "portal's dataset as it was left: nothing validated, georeferenced or written")


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
