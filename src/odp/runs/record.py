"""After each run: the history row, the log line, incidents and alerts. Never raises: the
run's own outcome and exit code are what count.

The report is redacted first (odp.redact: a URL's userinfo and sensitive query parameters,
known secrets such as the CKAN token), in place: the history, incidents, alerts, the log and
what `odp run` prints afterwards (its lines and --json) all see the redacted report. dlt's
trace of the run (`STATE/dlt/odp_TABLE/trace.pickle`: exceptions and resolved configuration,
read by nothing in odp once the run is over) is removed.

After a successful run, the dataset's dlt load packages are pruned (odp.runs.packages:
the newest N loaded ones kept, partial ones left by killed runs removed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odp.runs import alerts, history
from odp.runs.logs import ensure_file_log, redactor

TRACE_FILE = "trace.pickle"  # dlt.pipeline.trace.TRACE_FILE_NAME


def staging_bytes(state: Path, dataset: str) -> int:
    path = state / "staging" / f"{dataset.replace('-', '_')}.duckdb"
    return path.stat().st_size if path.is_file() else 0


def redact_report(report: Any) -> Any:
    """The report's free text (error, url, messages) with credentials replaced by `***`."""
    clean = redactor().redact
    for name in ("error", "url"):
        if isinstance(getattr(report, name, None), str):
            setattr(report, name, clean(getattr(report, name)))
    if isinstance(getattr(report, "messages", None), list):
        report.messages = [clean(m) if isinstance(m, str) else m for m in report.messages]
    return report


def remove_dlt_trace(state: Path, dataset: str) -> None:
    """dlt pickles each run's trace, the source's exception messages (URLs with their
    credentials) and resolved config values included; odp reads it only during the run."""
    path = state / "dlt" / f"odp_{dataset.replace('-', '_')}" / TRACE_FILE
    path.unlink(missing_ok=True)


def _prune(state: Path, city: Any, report: Any, log: Any, extra: dict[str, Any]) -> None:
    from odp.runs.packages import prune_after_success

    try:
        pruned = prune_after_success(state, report.dataset, report.run_id, city)
    except Exception as exc:  # noqa: BLE001 — pruning never fails a run
        log.warning(f"{report.dataset}: dlt load packages not pruned: {exc}", extra=extra)
        return
    if pruned.loaded or pruned.partial:
        log.info(f"{report.dataset}: removed {pruned.loaded} old and {pruned.partial} partial "
                 f"dlt load package(s) ({pruned.bytes / 1e6:.1f} MB)",
                 extra={**extra, "event": "prune"})


def record_run(state: Path, city: Any, report: Any) -> list[alerts.Event]:
    log = ensure_file_log(state)
    redact_report(report)
    if report.status == "running":  # an unexpected exception is on its way up
        report.status, report.exit_code = "failed", report.exit_code or 1
        report.error = report.error or "unexpected error (see the traceback)"
    extra = {"dataset": report.dataset, "run_id": report.run_id, "status": report.status,
             "exit_code": report.exit_code, "event": "run", "error": report.error}
    level = log.info if report.status in history.SUCCESS else log.error
    level(f"{report.dataset}: run {report.run_id} {report.status} in {report.seconds} s"
          + (f": {report.error}" if report.error else ""), extra=extra)
    try:
        remove_dlt_trace(state, report.dataset)
        history.finish(state, report, staging_bytes(state, report.dataset))
        alerts.note_run(state, report)
        if report.status in history.SUCCESS:
            alerts.note_freshness(state, report.dataset, stale=False, message="")
            _prune(state, city, report, log, extra)
        return alerts.dispatch(state, alerts.Channels.from_city(city))
    except Exception as exc:  # noqa: BLE001
        log.error(f"{report.dataset}: run history/alerts failed: {exc}", extra=extra)
        return []
