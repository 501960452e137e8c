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

A ledger that may be behind the portal is never trusted: when the pending marker exists (a run
was interrupted, maybe after the DataStore committed) or the ledger is missing (local state
lost) while the table exists, the diff is taken against the DataStore table itself
(`odp.publish.reconcile`) — no rebuild, readers never see an empty table — and the run says
that it repaired something.

What the portal would refuse is known before the first write (`odp.publish.limits`): a CSV
over the upload limit is not uploaded, its table resource points at the DataStore's dump; a
Parquet or GeoJSON file over it is left out; a row too long for CKAN's full-text column is
written with a reduced full text (COPY) or held back and named (action API) — never a dataset
blocked by one cell. A run is a plan (`Sync.plan`: what to write, what the dry run prints) and
its application (`Sync.apply`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.publish import datastore, limits, reconcile, resources
from odp.publish.changes import (
    DELETED_AT,
    POLICIES,
    ChangeSet,
    commit_ledger,
    diff,
    first_publish,
    ledger_path,
    stage_ledger,
    write_ledger,
)
from odp.publish.metadata import package_dict, stored_hash
from odp.publish.portal import Portal
from odp.publish.sortedrows import SortedRows
from odp.spec import City, Dataset

if TYPE_CHECKING:
    import pyarrow as pa

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


@dataclass
class Plan:
    """What a run would write, from the portal's package, this run's files and the changes."""

    package: dict[str, Any] | None
    desired: dict[str, Any]
    fields: list[dict[str, Any]]
    fields_hash: str
    files: list[resources.ResourceFile]  # the files to publish (within the upload limit)
    stale: list[resources.ResourceFile]  # … of which these differ from the portal's
    retired: list[dict[str, Any]]  # resources with a role no longer wanted
    metadata_current: bool
    table_dump: bool = False  # the CSV is over the upload limit: link the DataStore's dump
    left_out: list[resources.ResourceFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> dict[str, Any] | None:
        return _role(self.package, RESOURCE_ROLE)

    @property
    def up_to_date(self) -> bool:
        table = self.table
        return bool(
            self.metadata_current and self.package and self.package.get("state") == "active"
            and table is not None and table.get("datastore_active") and not self.stale
            and not self.retired and table.get(FIELDS_EXTRA) == self.fields_hash
        )

    def summary(self, name: str, changes: ChangeSet, policy: str) -> dict[str, Any]:
        stale_roles = {f.role for f in self.stale}

        def action(file: resources.ResourceFile) -> str:
            done = ("create" if _role(self.package, file.role) is None else
                    "update" if file.role in stale_roles else "unchanged")
            if file.role == RESOURCE_ROLE and self.table_dump and done != "unchanged":
                done += " (link to the DataStore dump: CSV over the upload limit)"
            return done

        return {
            "dataset": name,
            "exists": self.package is not None,
            "state": (self.package or {}).get("state", "new"),
            "metadata": metadata_diff(self.package, self.desired),
            "resources": [
                {"role": f.role, "name": f.name, "format": f.format, "action": action(f)}
                for f in self.files
            ] + [{"role": f.role, "name": f.name, "format": f.format,
                  "action": "left out (over the upload limit)"} for f in self.left_out
                 ] + [{"role": r["odp_role"], "name": r.get("name", ""),
                       "format": r.get("format", ""), "action": "delete"}
                      for r in self.retired],
            "rows": {"added": len(changes.new), "changed": len(changes.changed),
                     "deleted": len(changes.deleted), "unchanged": changes.unchanged,
                     "deletion_policy": policy},
            "notes": list(self.notes),
        }


class Sync:
    def __init__(
        self, dataset: Dataset, city: City, state: Path,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.dataset, self.city, self.state = dataset, city, state
        self.progress = progress or (lambda _msg: None)
        self.portal = Portal(city)
        datastore.check_before_writes(city)  # a remote write database only over TLS
        self.pending = ledger_path(state, dataset.name).with_suffix(".pending")
        self.policy = deletion_policy(dataset, city)
        # An interrupted run is redone with its own timestamp (history rows stay unique).
        self.interrupted = self.pending.exists()
        stamp = self.pending.read_text().strip() if self.interrupted else ""
        self.now = pd.Timestamp(stamp) if stamp else pd.Timestamp.now(tz="UTC").floor("s")
        self.reconciled = False  # the diff was taken against the portal's table
        self.notes: list[str] = []  # what the diff found that the report must say
        self._loader: datastore.Loader | None = None

    @property
    def loader(self) -> datastore.Loader:
        if self._loader is None:
            self._loader = datastore.choose(self.portal, self.city, self.progress)
        return self._loader

    def diff(self, rows: pd.DataFrame | SortedRows, ledger: pa.Table | None,
             carried: np.ndarray | None = None, ledger_keys: pd.Index | None = None,
             carried_rows: np.ndarray | None = None) -> ChangeSet:
        """`carried`: key hashes of rows delivered exactly as last published (odp.delta);
        `ledger_keys`, `carried_rows`: the ledger's key hashes and, per ledger row, whether
        it is carried, when the caller has them (used only with the run's own ledger).
        `rows` on disk (a first publish validated in parts) stay there when there is nothing
        to compare them with; else they are read as one frame."""
        ds = self.dataset
        trusted = self._trusted_ledger(ledger)
        if isinstance(rows, SortedRows):
            if trusted is None or not len(trusted):
                return first_publish(rows, list(ds.schema.primary_key), self.policy)
            rows = rows.frame()
        own = trusted is ledger
        return diff(rows, trusted, list(ds.schema.primary_key), ds.schema.names,
                    ds.full_refresh, policy=self.policy, now=self.now, carried=carried,
                    ledger_keys=ledger_keys if own else None,
                    carried_rows=carried_rows if own else None)

    def _trusted_ledger(self, ledger: pa.Table | None) -> pa.Table | pd.DataFrame | None:
        """The ledger, or — when it may be behind the portal — the DataStore table itself."""
        interrupted = self.interrupted
        if not interrupted and ledger is not None:
            return ledger
        table = _role(self.portal.show("package_show", self.dataset.name), RESOURCE_ROLE)
        if table is None or not table.get("datastore_active"):
            return ledger  # nothing published yet: nothing the ledger could be behind
        wanted = [*self.dataset.schema.names, DELETED_AT]
        present = {f["id"] for f in self.portal.call(
            "datastore_search", resource_id=table["id"], limit=0)["fields"]}
        columns = [c for c in wanted if c in present]
        self.progress(f"reconcile: reading the DataStore table ({self.loader.name})")
        ds = self.dataset
        published = reconcile.ledger_from_table(
            self.loader.read(table["id"], columns), reconcile.column_kinds(ds, columns),
            ds.schema.names, list(ds.schema.primary_key))
        why = ("the previous publish was interrupted" if interrupted else
               "there is no local ledger of the last publish")
        found = f"{len(published)} rows"
        if ledger is not None:
            differing = reconcile.differences(published, ledger, self.dataset)
            found += f"; {differing} of them differed from the local ledger"
        self.notes.append(f"repair: {why}; the changes were taken against the DataStore table "
                          f"itself ({found})")
        self.reconciled = True
        return published

    def _validation_summary(self) -> str:
        from odp.validate.report import load_report, summary_markdown

        report = load_report(self.state, self.dataset.name)
        return summary_markdown(report, with_time=False) if report else ""

    def run(self, changes: ChangeSet, dry_run: bool = False) -> PublishReport:
        ds, portal = self.dataset, self.portal
        report = PublishReport(ds.name, f"{portal.url}/dataset/{ds.name}")
        portal.check()
        plan = self.plan(changes)
        report.plan = plan.summary(ds.name, changes, self.policy)
        report.notes += self.notes + plan.notes
        if plan.up_to_date and changes.empty and not self.interrupted:
            if self.reconciled and not dry_run:  # the portal was right: the ledger follows it
                write_ledger(self.state, ds.name, changes.result)
            return report  # no-op: zero write calls, metadata_modified untouched
        if dry_run:  # the rows a run would write, counted as apply() counts them
            fresh = not (plan.table or {}).get("datastore_active")
            report.rows_inserted = len(changes.published if fresh else changes.new)
            report.rows_updated = 0 if fresh else len(changes.changed)
            report.rows_deleted = 0 if fresh else len(changes.deleted)
            report.plan["would_write"] = True
            report.notes.append("dry run: nothing written")
            return report
        self.apply(plan, changes, report)
        for note in report.notes:
            self.progress(note)
        return report

    def plan(self, changes: ChangeSet) -> Plan:
        """What to write: the package as the portal has it against this run's metadata and
        files (those over the portal's upload limit found before any write)."""
        ds = self.dataset
        package = self.portal.show("package_show", ds.name)
        desired = package_dict(ds, self.city, changes.published, self._validation_summary())
        fields = datastore.fields(ds, changes.columns)
        uploading = ds.publish.get("resource_mode", "upload") == "upload"
        files = resources.build(ds, changes.published, changes.columns, self.state,
                                limits.max_upload_bytes(self.city) if uploading else None)
        plan = Plan(package, desired, fields, _fields_hash(fields, list(ds.schema.primary_key)),
                    files, [], [], package is not None
                    and stored_hash(package) == stored_hash(desired))
        self._apply_limits(plan)
        plan.stale = [f for f in plan.files
                      if (_role(package, f.role) or {}).get("odp_hash") != f.hash
                      and not (f.keep_published and _role(package, f.role))]
        wanted = {f.role for f in plan.files} | {HISTORY_ROLE}
        plan.retired = [r for r in (package or {}).get("resources", [])
                        if r.get("odp_role") and r["odp_role"] not in wanted]
        return plan

    def _apply_limits(self, plan: Plan) -> None:
        """Files over the portal's upload limit (upload mode only: linked files are not sent
        to CKAN): the CSV is replaced by the DataStore's dump, the others are left out."""
        if self.dataset.publish.get("resource_mode", "upload") != "upload":
            return
        limit = limits.max_upload_bytes(self.city)
        for file in [f for f in plan.files if f.estimated or limits.too_large(f.path, limit)]:
            size = (f"about {file.estimated / limits.MB:.0f} MB" if file.estimated
                    else f"{file.path.stat().st_size / limits.MB:.1f} MB")
            if file.role == RESOURCE_ROLE:
                plan.table_dump = True
                plan.notes.append(f"the CSV ({size}) is over the portal's upload limit "
                                  f"({limit / limits.MB:g} MB): the table resource links the "
                                  "DataStore's dump of the same table instead")
            else:
                plan.files.remove(file)
                plan.left_out.append(file)
                plan.notes.append(f"{file.format} ({size}) is over the portal's upload limit "
                                  f"({limit / limits.MB:g} MB): left out")

    def apply(self, plan: Plan, changes: ChangeSet, report: PublishReport) -> None:
        """Write the plan: the DataStore first, then the files, the metadata and — only when
        every write succeeded — the ledger.

        The new ledger is written beside the one in force while the portal is written to
        (Parquet's encoder leaves the interpreter free: 10M rows, 1.6 s beside the DataStore's
        load) and put in place after the last write. A first publish's rows are a frame until
        the ledger is written: converted after the DataStore load, not during it (both at
        once had raised a 1M-row first run's peak by 0.2 GB)."""
        self.pending.parent.mkdir(parents=True, exist_ok=True)
        self.pending.write_text(self.now.isoformat() + "\n")
        name = self.dataset.name
        with ThreadPoolExecutor(1) as pool:
            early = None if isinstance(changes.published, pd.DataFrame) else pool.submit(
                stage_ledger, self.state, name, changes.result)
            try:
                self._write_portal(plan, changes, report)
                staged = early.result() if early else stage_ledger(self.state, name,
                                                                   changes.result)
            except BaseException:
                if early is not None:
                    with contextlib.suppress(Exception):
                        early.result().unlink(missing_ok=True)
                raise
        commit_ledger(self.state, name, staged)
        self.pending.unlink(missing_ok=True)
        report.write_calls = self.portal.writes + self.loader.writes
        report.notes += self.loader.notes

    def _write_portal(self, plan: Plan, changes: ChangeSet, report: PublishReport) -> None:
        """The portal's writes: the DataStore table, the files, the metadata."""
        self._ensure_organization()
        package = plan.package
        if package is None:
            package = self.portal.call("package_create", **plan.desired, state="draft")
            report.created = True
        table = plan.table
        stale = plan.stale
        if table is None:
            table = self._create_table(plan, package["id"])
            if not plan.table_dump:
                stale = [f for f in stale if f.role != RESOURCE_ROLE]
        self._write_rows(plan, package, table, changes, report)
        for file in stale:
            self._upload(_role(package, file.role) or (table if file.role == RESOURCE_ROLE
                                                       else None), package["id"], file, plan)
        if (table.get(FIELDS_EXTRA) != plan.fields_hash
                and RESOURCE_ROLE not in {f.role for f in stale}):
            self.portal.call("resource_patch", id=table["id"],
                             **{FIELDS_EXTRA: plan.fields_hash})
        for resource in plan.retired:
            self.portal.call("resource_delete", id=resource["id"])
        if report.created or not plan.metadata_current or package.get("state") != "active":
            self.portal.call("package_patch", id=package["id"], **plan.desired, state="active")
            report.metadata_updated = True

    def _create_table(self, plan: Plan, package_id: str) -> dict[str, Any]:
        """The table resource: with the CSV, or — over the upload limit — without a file
        until it links the dump (its id is known only now)."""
        table_file = next(f for f in plan.files if f.role == RESOURCE_ROLE)
        if plan.table_dump:
            return self.portal.call("resource_create", package_id=package_id,
                                    **self._meta(table_file, odp_hash="", url=""),
                                    **{FIELDS_EXTRA: plan.fields_hash})
        return self._upload(None, package_id, table_file, plan)

    def _write_rows(self, plan: Plan, package: dict[str, Any], table: dict[str, Any],
                    changes: ChangeSet, report: PublishReport) -> None:
        key = list(self.dataset.schema.primary_key)
        loader = self.loader
        report.loader = loader.name
        fresh = not table.get("datastore_active")
        if fresh or table.get(FIELDS_EXTRA) != plan.fields_hash:
            loader.create(table["id"], plan.fields, key)  # columns, key, indexes, dictionary
        if not fresh:
            # Redone as upserts only when the diff could not be taken against the table: a
            # diff against it knows which rows it lacks (an interrupted first publish of 10M
            # rows repaired by upserts: 260 s and 11.9 GB, as a bulk load 150 s).
            redo = self.interrupted and not self.reconciled
            self._update(loader, package, table["id"], changes, key, redo, report)
            return
        # Every published row into the new table; rows on disk (a first publish's, a merged
        # ledger) go to a loader that reads them a row group at a time. Nothing is upserted
        # or deleted: the rows the diff found changed are among them (a table deleted on the
        # portal while the ledger remained).
        rows = changes.published if loader.reads_from_disk else changes.frame
        empty = changes.changed.iloc[0:0]
        loader.load(table["id"], rows, empty, empty[key], key)
        report.rows_inserted = len(changes.published)
        # The portal's default previews (e.g. the DataStore table view), as XLoader adds
        # them after a load: at resource creation the table did not exist yet.
        self.portal.call("resource_create_default_resource_views",
                         resource=self.portal.call("resource_show", id=table["id"]),
                         create_datastore_views=True)

    def _update(self, loader: datastore.Loader, package: dict[str, Any], resource_id: str,
                changes: ChangeSet, key: list[str], redo: bool, report: PublishReport) -> None:
        upsert, delete = changes.changed, changes.deleted
        if self.policy == "mark-deleted":
            upsert = pd.concat([t for t in (changes.changed, changes.marked) if t is not None
                                and not t.empty] or [changes.changed], ignore_index=True)
            delete = changes.deleted.iloc[0:0]
        elif self.policy == "keep-history":
            self._history(loader, package, changes, key)
        loader.load(resource_id, changes.new, upsert, delete, key, redo=redo,
                    rows_before=None if redo else changes.rows_before)
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

    def _meta(self, file: resources.ResourceFile, **extra: Any) -> dict[str, Any]:
        return {"name": file.name, "format": file.format, "mimetype": file.mimetype,
                "description": file.description, "odp_role": file.role, "odp_hash": file.hash,
                **extra}

    def _dump_url(self, resource_id: str) -> str:
        """The DataStore's own dump of a table, on the portal's public address."""
        site = self.portal.call("status_show").get("site_url") or self.portal.url
        return f"{site.rstrip('/')}/datastore/dump/{resource_id}"

    def _upload(self, resource: dict[str, Any] | None, package_id: str,
                file: resources.ResourceFile, plan: Plan) -> dict[str, Any]:
        extra = {FIELDS_EXTRA: plan.fields_hash} if file.role == RESOURCE_ROLE else {}
        meta = self._meta(file, **extra)
        if file.role == RESOURCE_ROLE and plan.table_dump and resource is not None:
            self.progress("resource CSV: link to the DataStore dump (over the upload limit)")
            return self.portal.call("resource_patch", id=resource["id"], url_type="",
                                    url=self._dump_url(resource["id"]), **meta)
        url = resources.link_url(self.dataset, file)
        upload = None if url else file.path
        if url:
            meta["url"] = url
        self.progress(f"resource {file.format}: {'link' if url else 'upload'}")
        if resource is None:
            return self.portal.call("resource_create", upload=upload, package_id=package_id,
                                    **meta)
        return self.portal.call("resource_patch", upload=upload, id=resource["id"], **meta)

    def _ensure_organization(self) -> None:
        from odp.publish.catalog import ensure_organization_and_groups

        ensure_organization_and_groups(self.portal, self.dataset, self.city)
