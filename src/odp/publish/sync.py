"""Sync one dataset to CKAN: organisation, dataset metadata, a CSV resource backed by a typed
DataStore table with the schema's primary key — writing only what changed.

Consistency: a new dataset is created as a draft and becomes active only when its resource and
DataStore table are complete, so a failure never leaves a half dataset visible. The ledger of
what was published is replaced only after every write succeeded; a `pending` marker makes the
next run redo an interrupted DataStore write idempotently (upsert instead of insert).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from odp.publish.changes import HASH, ChangeSet, ledger_path, write_ledger
from odp.publish.metadata import package_dict, stored_hash
from odp.publish.portal import Portal
from odp.spec import City, Dataset

BATCH_ROWS = 10_000
RESOURCE_ROLE = "table"  # resource extra `odp_role`: the dataset's main table

DATASTORE_TYPES = {
    "string": "text",
    "integer": "int8",
    "number": "float8",
    "boolean": "bool",
    "datetime": "timestamp",
    "date": "date",
}


@dataclass
class PublishReport:
    dataset: str
    url: str
    created: bool = False
    metadata_updated: bool = False
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    write_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.write_calls > 0


def _fields(dataset: Dataset) -> list[dict[str, Any]]:
    fields = []
    for f in dataset.schema.fields:
        notes = f.description
        if f.unit:
            notes = f"{notes} (Einheit: {f.unit})".strip()
        info = {"label": f.title or f.name, "notes": notes}
        fields.append({"id": f.name, "type": DATASTORE_TYPES.get(f.type, "text"), "info": info})
    return fields


def records(table: pd.DataFrame, dataset: Dataset) -> list[dict[str, Any]]:
    """JSON-ready rows: NA → null, datetimes as ISO 8601 UTC."""
    columns = dataset.schema.names
    return json.loads(table[columns].to_json(orient="records", date_format="iso", date_unit="s"))


def write_csv(table: pd.DataFrame, dataset: Dataset, path: Path) -> Path:
    """UTF-8 CSV of the published table, timestamps ISO 8601 UTC (`...Z`)."""
    out = table[dataset.schema.names].copy()
    for f in dataset.schema.fields:
        if f.type == "datetime":
            out[f.name] = out[f.name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return path


def _table_resource(package: dict[str, Any]) -> dict[str, Any] | None:
    for resource in package.get("resources", []):
        if resource.get("odp_role") == RESOURCE_ROLE:
            return resource
    return None


class Sync:
    def __init__(
        self, dataset: Dataset, city: City, state: Path,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.dataset, self.city, self.state = dataset, city, state
        self.progress = progress or (lambda _msg: None)
        self.portal = Portal(city)
        self.pending = ledger_path(state, dataset.name).with_suffix(".pending")

    def run(self, changes: ChangeSet, dry_run: bool = False) -> PublishReport:
        ds, portal = self.dataset, self.portal
        report = PublishReport(ds.name, f"{portal.url}/dataset/{ds.name}")
        portal.check()
        package = portal.show("package_show", ds.name)
        desired = package_dict(ds, self.city, changes.result)
        resource = _table_resource(package) if package else None
        interrupted = self.pending.exists()
        up_to_date = (
            package is not None
            and package.get("state") == "active"
            and stored_hash(package) == stored_hash(desired)
            and resource is not None
            and resource.get("datastore_active")
        )
        if up_to_date and changes.empty and not interrupted:
            return report  # no-op: zero write calls, metadata_modified untouched
        if dry_run:
            report.notes.append("dry run: nothing written")
            return report

        self.pending.parent.mkdir(parents=True, exist_ok=True)
        self.pending.touch()
        self._ensure_organization()
        if package is None:
            package = portal.call("package_create", **desired, state="draft")
            report.created = True
        fresh_table = resource is None or not resource.get("datastore_active")
        if not fresh_table and not ledger_path(self.state, ds.name).exists():
            # Local state was lost: rebuild the table rather than guess what it holds.
            portal.call("datastore_delete", resource_id=resource["id"], force=True)
            fresh_table = True
        csv = write_csv(changes.result, ds, self.state / "published" / f"{ds.name}.csv")
        if resource is None:
            resource = portal.call(
                "resource_create", upload=csv, package_id=package["id"],
                name=ds.publish.get("resource_title", ds.title), format="CSV",
                mimetype="text/csv", description="Die vollständige Tabelle als CSV (UTF-8).",
                odp_role=RESOURCE_ROLE,
            )
        elif not changes.empty or interrupted:
            portal.call("resource_patch", upload=csv, id=resource["id"])
        self._datastore(resource["id"], changes, fresh_table, interrupted, report)
        if report.created or stored_hash(package) != stored_hash(desired) or (
            package.get("state") != "active"
        ):
            portal.call("package_patch", id=package["id"], **desired, state="active")
            report.metadata_updated = True
        write_ledger(self.state, ds.name, changes.result)
        self.pending.unlink(missing_ok=True)
        report.write_calls = portal.writes
        return report

    def _ensure_organization(self) -> None:
        from odp.publish.catalog import ensure_organization_and_groups

        ensure_organization_and_groups(self.portal, self.dataset, self.city)

    def _datastore(
        self, resource_id: str, changes: ChangeSet, fresh: bool, interrupted: bool,
        report: PublishReport,
    ) -> None:
        ds, portal = self.dataset, self.portal
        pk = list(ds.schema.primary_key)
        if fresh:
            # A new table holds the whole published table, not just this run's changes.
            portal.call(
                "datastore_create", resource_id=resource_id, force=True, fields=_fields(ds),
                primary_key=pk, indexes=pk,
            )
            self._write(resource_id, changes.result, "upsert" if interrupted else "insert")
            report.rows_inserted = len(changes.result)
            return
        for _, key in changes.deleted.iterrows():
            filters = {k: _json_value(key[k]) for k in pk}
            portal.call("datastore_delete", resource_id=resource_id, filters=filters, force=True)
        report.rows_deleted = len(changes.deleted)
        self._write(resource_id, changes.new, "upsert" if interrupted else "insert")
        self._write(resource_id, changes.changed, "upsert")
        report.rows_inserted, report.rows_updated = len(changes.new), len(changes.changed)

    def _write(self, resource_id: str, table: pd.DataFrame, method: str) -> None:
        rows = records(table.drop(columns=[HASH], errors="ignore"), self.dataset)
        for start in range(0, len(rows), BATCH_ROWS):
            batch = rows[start : start + BATCH_ROWS]
            self.progress(f"DataStore {method}: rows {start + 1}–{start + len(batch)}")
            self.portal.call(
                "datastore_upsert", resource_id=resource_id, records=batch, method=method,
                force=True,
            )


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if hasattr(value, "item"):
        return value.item()
    return value
