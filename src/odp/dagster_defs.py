"""The project's datasets as Dagster assets, for a city that outgrows cron (optional: `uv sync
--extra dagster`; imported only by Dagster, never by the engine or the `odp` command).

    DAGSTER_HOME=$PWD/dagster_home uv run dagster dev      # pyproject: [tool.dagster]

Everything comes from what odp already reads — nothing is defined twice:

- **asset** — one per dataset of the served city (`pipelines/*.toml`, `odp.spec`), keyed by
  the dataset's name, described by its title and description, its code version the hash of its
  three files (definition, schema, suite), so Dagster shows a changed definition;
- **dependencies** — a derived or situation dataset depends on the assets of its
  `[source.inputs]` (`odp.sources.derived.inputs_of`, what `odp run` orders by);
- **materialisation** — the one run function, `odp.run.run_dataset`: lock, extract,
  validate, georeference, publish, run history, alerts — as `odp run NAME` does it; "ok" and
  "unchanged" (checked, nothing new) materialise the asset with the run's counts, a failure
  fails the step with the run's one-line error and exit code;
- **asset check** `validation_gate` (blocking) — the run's validation gate: passed when the
  batch passed it, failed with the gate's reasons when the run was held back (then nothing was
  published, the last good version stays, and downstream assets do not run);
- **schedule** — `[schedule] cron` in its time zone (`odp.operations.schedule`); an `interval`
  schedule becomes a sensor ticking at that interval; both start stopped (turn them on where
  cron no longer runs `odp run --due`, or the runs meet each other's dataset lock);
- **freshness policy** — fail after the dataset's stale limit (`stale_after`, else two expected
  intervals, as `odp status` judges), warn after one expected interval;
- **the KPI cockpit** (when the city file has `[cockpit] dataset`) — an asset downstream of
  every dataset, published by the same function as `odp cockpit publish`; with
  `update_each_run` it materialises whenever a dataset did (automation condition `eager`, run
  by Dagster's automation sensor), as `odp run --due` refreshes it after its runs.

dagster-dlt is not used: its assets are dlt pipelines, while a dataset's unit of work is the
whole chain (dlt extracts only its first stage) under one lock and one history row.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's `context` hint.
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from odp.operations.schedule import Schedule, dataset_schedule
from odp.sources.derived import inputs_of
from odp.spec import City, Dataset, dataset_names, load_city, load_dataset, project_root

GATE = "validation_gate"  # the asset check's name
KINDS = {"dlt", "duckdb", "ckan"}
COUNTS = ("extracted", "validated", "valid", "quarantined", "warnings", "georeferenced",
          "inserted", "updated", "deleted", "write_calls", "downloaded", "seconds")


def asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(name)


def _code_version(dataset: Dataset, root: Path) -> str:
    digest = hashlib.sha256()
    for path in (dataset.definition_path, root / "schemas" / f"{dataset.name}.json",
                 dataset.suite_path):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def freshness_policy(schedule: Schedule, now: datetime | None = None
                     ) -> dg.FreshnessPolicy | None:
    """Fail after the stale limit, warn after one expected interval (when shorter)."""
    now = now or datetime.now(UTC)
    limit = schedule.stale_limit(now)
    if limit is None:  # a manual dataset: no expectation
        return None
    expected = schedule.expected_interval(now)
    warn = expected if expected is not None and expected < limit else None
    return dg.FreshnessPolicy.time_window(fail_window=limit, warn_window=warn)


def _gate_description(dataset: Dataset) -> str:
    from odp.validate.settings import settings

    rules = settings(dataset)
    bounds = f"{rules.min_rows}…{rules.max_rows if rules.max_rows is not None else '∞'}"
    return (f"odp's validation gate: no blocking schema drift, rows within {bounds}, field "
            f"completeness, table-level expectations, rejected share ≤ "
            f"{rules.max_quarantine_share:.1%}, and no emptied or gutted published table")


def _metadata(report: Any) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(report, name) for name in COUNTS}
    data |= {"odp_run_id": report.run_id, "status": report.status}
    if report.url:
        data["url"] = dg.MetadataValue.url(report.url)
    return data


def _gate_result(report: Any) -> dg.AssetCheckResult:
    held = report.status == "held-back"
    return dg.AssetCheckResult(
        check_name=GATE, passed=not held, description=report.error if held else None,
        metadata={"validated": report.validated, "quarantined": report.quarantined,
                  "warnings": report.warnings, "odp_run_id": report.run_id})


def materialise(context: dg.AssetExecutionContext, name: str, root: Path) -> Any:
    """Run the dataset with odp's run function and turn its report into Dagster's events."""
    from odp.operations.commands import after_runs
    from odp.run import run_dataset
    from odp.runs.parallel import served_city

    city = served_city(str(root))
    report = run_dataset(name, root, city, lambda step: context.log.info(f"{name}: {step}"))
    # The situation dataset's page, CAP feed and alerts, as after `odp run` (never raises).
    after_runs(root, city, [report], check_freshness=False, scheduled=False, dry_run=False)
    for message in report.messages[:20]:
        context.log.info(message)
    if report.status not in ("failed", "locked"):  # the gate was judged
        yield _gate_result(report)
    if report.status in ("ok", "unchanged"):
        yield dg.MaterializeResult(metadata=_metadata(report))
        return
    raise dg.Failure(description=f"{name}: {report.status}: {report.error}",
                     metadata={"exit_code": report.exit_code, "odp_run_id": report.run_id})


def dataset_asset(dataset: Dataset, root: Path, city: City) -> dg.AssetsDefinition:
    key = asset_key(dataset.name)
    schedule = dataset_schedule(dataset, city.timezone)

    @dg.asset(
        key=key,
        deps=[asset_key(name) for name in inputs_of(dataset)],
        description=f"{dataset.title}\n\n{dataset.description.strip()}",
        group_name=city.slug,
        kinds=KINDS,
        code_version=_code_version(dataset, root),
        freshness_policy=freshness_policy(schedule),
        check_specs=[dg.AssetCheckSpec(GATE, asset=key, blocking=True,
                                       description=_gate_description(dataset))],
        metadata={"source_type": dataset.source_type, "kind": dataset.kind,
                  "schedule": schedule.describe(),
                  "definition": str(dataset.definition_path.relative_to(root))},
    )
    def run(context: dg.AssetExecutionContext) -> Any:
        yield from materialise(context, dataset.name, root)

    return run


def cockpit_asset(root: Path, city: City, datasets: list[Dataset]
                  ) -> dg.AssetsDefinition | None:
    """The KPI cockpit of the city's datasets, downstream of all of them (None: not configured)."""
    from odp.operations.cockpit import CockpitConfig

    config = CockpitConfig.from_city(city)
    if not config.dataset:
        return None

    @dg.asset(
        key=asset_key(config.dataset),
        deps=[asset_key(ds.name) for ds in datasets],
        description=f"{config.title or config.dataset}\n\nKPIs per dataset and day from odp's "
                    "run history, and the status page",
        group_name=city.slug,
        kinds={"ckan"},
        automation_condition=dg.AutomationCondition.eager() if config.update_each_run else None,
    )
    def cockpit(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from odp.operations.cockpit import publish
        from odp.spec import state_dir

        url = publish(root, state_dir(root), city, config)
        context.log.info(f"cockpit {config.dataset}: {url}")
        return dg.MaterializeResult(metadata={"url": dg.MetadataValue.url(url)})

    return cockpit


def _job_name(name: str) -> str:
    return "odp_" + name.replace("-", "_")


def trigger(dataset: Dataset, city: City) -> dg.ScheduleDefinition | dg.SensorDefinition | None:
    """The dataset's `[schedule]`: a cron schedule in its time zone, a sensor for an interval,
    None for a manual dataset."""
    schedule = dataset_schedule(dataset, city.timezone)
    job = dg.define_asset_job(_job_name(dataset.name), selection=[asset_key(dataset.name)])
    if schedule.cron:
        return dg.ScheduleDefinition(name=f"{_job_name(dataset.name)}_schedule", job=job,
                                     cron_schedule=schedule.cron,
                                     execution_timezone=schedule.timezone.key,
                                     description=schedule.describe())
    if schedule.interval:
        @dg.sensor(name=f"{_job_name(dataset.name)}_interval", job=job,
                   minimum_interval_seconds=int(schedule.interval.total_seconds()),
                   description=schedule.describe())
        def every(_context: dg.SensorEvaluationContext) -> dg.RunRequest:
            return dg.RunRequest()

        return every
    return None


def build_definitions(root: Path | None = None) -> dg.Definitions:
    """Assets, schedules and sensors of the served city's datasets (ODP_CITY or odp.toml)."""
    root = root or project_root()
    city = load_city(root)
    datasets = [load_dataset(name, root) for name in dataset_names(root)]
    triggers = [t for t in (trigger(ds, city) for ds in datasets) if t is not None]
    cockpit = cockpit_asset(root, city, datasets)
    return dg.Definitions(
        assets=[dataset_asset(ds, root, city) for ds in datasets]
        + ([cockpit] if cockpit is not None else []),
        schedules=[t for t in triggers if isinstance(t, dg.ScheduleDefinition)],
        sensors=[t for t in triggers if isinstance(t, dg.SensorDefinition)],
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` / `dagster-webserver` load (pyproject's [tool.dagster])."""
    return build_definitions()
