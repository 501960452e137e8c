"""Sync one dataset to CKAN: organisation, dataset metadata, the resources (CSV backed by a typed
DataStore table with the schema's primary key, Parquet, GeoJSON, validation report) — writing
only what changed, through the action API or PostgreSQL COPY (`odp.publish.datastore`).

Rows gone from the source follow the dataset's deletion policy (`publish.deletion_policy`, city
default `defaults.deletion_policy`, else `delete`): `delete` removes them from the table;
`mark-deleted` keeps them with a `deleted_at` timestamp; `keep-history` removes them and keeps
their last version — and the previous version of every changed row — in a second DataStore
resource (role `history`, columns `valid_until` and `change`).

Consistency: a new dataset is created as a draft and becomes active only when its resources and
DataStore table are complete, so a failure never leaves a half dataset visible. An update is one
transaction on the COPY path, and one request (one transaction) on the API path whenever it fits.
The ledger of what was published is replaced only after every write succeeded; a `pending`
marker (holding the run's timestamp) makes the next run redo an interrupted write idempotently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from odp.errors import ConfigError
from odp.publish import datastore, resources
from odp.publish.changes import (
    POLICIES,
    ChangeSet,
    diff,
    ledger_path,
    write_ledger,
)
from odp.publish.metadata import package_dict, stored_hash
from odp.publish.portal import Portal
from odp.spec import City, Dataset

RESOURCE_ROLE = resources.TABLE_ROLE  # resource extra `odp_role`: the dataset's main table
HISTORY_ROLE = "history"
FIELDS_EXTRA = "odp_fields_hash"  # on the table resource: the DataStore fields last sent


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
    loader: str = ""
    notes: list[str] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)  # what a run would write (dry run)

    @property
    def changed(self) -> bool:
        return self.write_calls > 0


def deletion_policy(dataset: Dataset, city: City) -> str:
    policy = dataset.publish.get("deletion_policy", city.defaults.get("deletion_policy", "delete"))
    if policy not in POLICIES:
        raise ConfigError(f"{dataset.definition_path}: deletion_policy '{policy}' is not one of "
                          f"{', '.join(POLICIES)}")
    return policy


def _role(package: dict[str, Any] | None, role: str) -> dict[str, Any] | None:
    for resource in (package or {}).get("resources", []):
        if resource.get("odp_role") == role:
            return resource
    return None


def _fields_hash(fields: list[dict[str, Any]], key: list[str]) -> str:
    text = json.dumps([fields, key], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def metadata_diff(package: dict[str, Any] | None, desired: dict[str, Any]) -> list[str]:
    """Names of the metadata fields (and `extras.KEY`) a publish would change."""
    if package is None:
        return sorted(k for k, v in desired.items() if v not in ("", [], None))
    changed = []
    for key, value in desired.items():
        if key == "extras":
            have = {e["key"]: e["value"] for e in package.get("extras", [])}
            want = {e["key"]: e["value"] for e in value}
            changed += [f"extras.{k}" for k in sorted(set(have) | set(want))
                        if have.get(k) != want.get(k)]
        elif key == "tags":
            if sorted(t["name"] for t in package.get("tags", [])) != sorted(
                    t["name"] for t in value):
                changed.append(key)
        elif key == "owner_org":
            org = package.get("organization") or {}
            if value not in (package.get("owner_org"), org.get("name")):
                changed.append(key)
        elif isinstance(value, str | int | float | bool) and package.get(key) != value:
            changed.append(key)
    return changed


class Sync:
    def __init__(
        self, dataset: Dataset, city: City, state: Path,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.dataset, self.city, self.state = dataset, city, state
        self.progress = progress or (lambda _msg: None)
        self.portal = Portal(city)
        self.pending = ledger_path(state, dataset.name).with_suffix(".pending")
        self.policy = deletion_policy(dataset, city)
        # An interrupted run is redone with its own timestamp (history rows stay unique).
        stamp = self.pending.read_text().strip() if self.pending.exists() else ""
        self.now = pd.Timestamp(stamp) if stamp else pd.Timestamp.now(tz="UTC").floor("s")

    def diff(self, rows: pd.DataFrame, ledger: pd.DataFrame | None) -> ChangeSet:
        ds = self.dataset
        return diff(rows, ledger, list(ds.schema.primary_key), ds.schema.names, ds.full_refresh,
                    policy=self.policy, now=self.now)

    def _validation_summary(self) -> str:
        from odp.validate.report import load_report, summary_markdown

        report = load_report(self.state, self.dataset.name)
        return summary_markdown(report, with_time=False) if report else ""

    def run(self, changes: ChangeSet, dry_run: bool = False) -> PublishReport:
        ds, portal = self.dataset, self.portal
        key = list(ds.schema.primary_key)
        report = PublishReport(ds.name, f"{portal.url}/dataset/{ds.name}")
        portal.check()
        package = portal.show("package_show", ds.name)
        desired = package_dict(ds, self.city, changes.result, self._validation_summary())
        columns = changes.columns
        fields = datastore.fields(ds, columns)
        files = resources.build(ds, changes.result, columns, self.state)
        table = _role(package, RESOURCE_ROLE)
        stale = [f for f in files if (_role(package, f.role) or {}).get("odp_hash") != f.hash
                 and not (f.keep_published and _role(package, f.role))]
        wanted = {f.role for f in files} | {HISTORY_ROLE}
        retired = [r for r in (package or {}).get("resources", [])
                   if r.get("odp_role") and r["odp_role"] not in wanted]
        interrupted = self.pending.exists()
        metadata_current = package is not None and stored_hash(package) == stored_hash(desired)
        up_to_date = (
            metadata_current and package.get("state") == "active"
            and table is not None and table.get("datastore_active") and not stale and not retired
            and table.get(FIELDS_EXTRA) == _fields_hash(fields, key)
        )
        report.plan = self._plan(package, desired, files, stale, retired, changes)
        if up_to_date and changes.empty and not interrupted:
            return report  # no-op: zero write calls, metadata_modified untouched
        if dry_run:
            report.notes.append("dry run: nothing written")
            return report

        self.pending.parent.mkdir(parents=True, exist_ok=True)
        self.pending.write_text(self.now.isoformat() + "\n")
        self._ensure_organization()
        if package is None:
            package = portal.call("package_create", **desired, state="draft")
            report.created = True
        fresh = table is None or not table.get("datastore_active")
        if not fresh and not ledger_path(self.state, ds.name).exists():
            # Local state was lost: rebuild the table rather than guess what it holds.
            portal.call("datastore_delete", resource_id=table["id"], force=True)
            fresh = True
        fields_hash = _fields_hash(fields, key)
        if table is None:
            table = self._upload(None, package["id"], files[0], **{FIELDS_EXTRA: fields_hash})
            stale = [f for f in stale if f.role != RESOURCE_ROLE]
        loader = datastore.choose(portal, self.city, self.progress)
        report.loader = loader.name
        if fresh or table.get(FIELDS_EXTRA) != fields_hash:
            loader.create(table["id"], fields, key)  # columns, key, indexes, data dictionary
        if fresh:
            empty = changes.result.iloc[0:0]
            loader.load(table["id"], changes.result, empty, empty[key], key)
            report.rows_inserted = len(changes.result)
            # The portal's default previews (e.g. the DataStore table view), as XLoader adds
            # them after a load: at resource creation the table did not exist yet.
            portal.call("resource_create_default_resource_views",
                        resource=portal.call("resource_show", id=table["id"]),
                        create_datastore_views=True)
        else:
            self._update(loader, package, table["id"], changes, key, interrupted, report)
        for file in stale:
            self._upload(_role(package, file.role), package["id"], file,
                         **({FIELDS_EXTRA: fields_hash} if file.role == RESOURCE_ROLE else {}))
        if table.get(FIELDS_EXTRA) != fields_hash and RESOURCE_ROLE not in {f.role for f in stale}:
            portal.call("resource_patch", id=table["id"], **{FIELDS_EXTRA: fields_hash})
        for resource in retired:
            portal.call("resource_delete", id=resource["id"])
        if report.created or not metadata_current or package.get("state") != "active":
            portal.call("package_patch", id=package["id"], **desired, state="active")
            report.metadata_updated = True
        write_ledger(self.state, ds.name, changes.result)
        self.pending.unlink(missing_ok=True)
        report.write_calls = portal.writes
        return report

    def _update(self, loader: datastore.Loader, package: dict[str, Any], resource_id: str,
                changes: ChangeSet, key: list[str], redo: bool, report: PublishReport) -> None:
        upsert, delete = changes.changed, changes.deleted
        if self.policy == "mark-deleted":
            upsert = pd.concat([t for t in (changes.changed, changes.marked) if t is not None
                                and not t.empty] or [changes.changed], ignore_index=True)
            delete = changes.deleted.iloc[0:0]
        elif self.policy == "keep-history":
            self._history(loader, package, changes, key)
        loader.load(resource_id, changes.new, upsert, delete, key, redo=redo)
        report.rows_inserted, report.rows_updated = len(changes.new), len(changes.changed)
        report.rows_deleted = len(changes.deleted)

    def _history(self, loader: datastore.Loader, package: dict[str, Any], changes: ChangeSet,
                 key: list[str]) -> None:
        """Previous versions of changed and deleted rows, stamped with this run's time."""
        previous = changes.previous
        if previous is None or previous.empty:
            return
        ds = self.dataset
        rows = previous[ds.schema.names].copy()
        rows["valid_until"] = self.now
        gone = pd.MultiIndex.from_frame(changes.deleted[key].astype("string"))
        rows["change"] = pd.MultiIndex.from_frame(rows[key].astype("string")).isin(gone)
        rows["change"] = rows["change"].map({True: "deleted", False: "changed"})
        resource = _role(package, HISTORY_ROLE)
        history_key = [*key, "valid_until"]
        if resource is None:
            fields = datastore.fields(ds, ds.schema.names) + [
                {"id": "valid_until", "type": "timestamp", "info": {
                    "label": "Gültig bis (UTC)", "notes": "Ab hier galt diese Fassung nicht mehr"}},
                {"id": "change", "type": "text", "info": {
                    "label": "Änderung", "notes": "deleted = aus der Quelle entfernt, "
                                                  "changed = durch eine neue Fassung ersetzt"}},
            ]
            created = self.portal.call(
                "datastore_create", force=True, fields=fields, primary_key=history_key,
                indexes=history_key, resource={
                    "package_id": package["id"], "name": f"{ds.title}: frühere Fassungen",
                    "description": "Gelöschte und ersetzte Zeilen mit dem Zeitpunkt der "
                                   "Änderung.", "odp_role": HISTORY_ROLE, "format": "CSV"})
            resource = {"id": created["resource_id"]}
        loader.load(resource["id"], rows, rows.iloc[0:0], rows[history_key].iloc[0:0],
                    history_key, redo=True)

    def _upload(self, resource: dict[str, Any] | None, package_id: str,
                file: resources.ResourceFile, **extra: Any) -> dict[str, Any]:
        meta = {"name": file.name, "format": file.format, "mimetype": file.mimetype,
                "description": file.description, "odp_role": file.role, "odp_hash": file.hash,
                **extra}
        url = resources.link_url(self.dataset, file)
        upload = None if url else file.path
        if url:
            meta["url"] = url
        self.progress(f"resource {file.format}: {'link' if url else 'upload'}")
        if resource is None:
            return self.portal.call("resource_create", upload=upload, package_id=package_id,
                                    **meta)
        return self.portal.call("resource_patch", upload=upload, id=resource["id"], **meta)

    def _plan(self, package: dict[str, Any] | None, desired: dict[str, Any],
              files: list[resources.ResourceFile], stale: list[resources.ResourceFile],
              retired: list[dict[str, Any]], changes: ChangeSet) -> dict[str, Any]:
        stale_roles = {f.role for f in stale}
        return {
            "dataset": self.dataset.name,
            "exists": package is not None,
            "state": (package or {}).get("state", "new"),
            "metadata": metadata_diff(package, desired),
            "resources": [
                {"role": f.role, "name": f.name, "format": f.format,
                 "action": ("create" if _role(package, f.role) is None else
                            "update" if f.role in stale_roles else "unchanged")}
                for f in files
            ] + [{"role": r["odp_role"], "name": r.get("name", ""), "format": r.get("format", ""),
                  "action": "delete"} for r in retired],
            "rows": {"added": len(changes.new), "changed": len(changes.changed),
                     "deleted": len(changes.deleted), "unchanged": changes.unchanged,
                     "deletion_policy": self.policy},
        }

    def _ensure_organization(self) -> None:
        from odp.publish.catalog import ensure_organization_and_groups

        ensure_organization_and_groups(self.portal, self.dataset, self.city)
