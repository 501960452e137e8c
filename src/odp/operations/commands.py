"""Operations commands: `odp status`, `odp history NAME`, `odp schedule show|install`,
`odp cockpit build|publish`; and the hooks `odp run` calls (--due, after the runs).
Imports stay light: heavy work happens inside the commands."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.spec import load_city, state_dir


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


# --- hooks of `odp run` ---------------------------------------------------------------------


def due_names(root: Path) -> list[str]:
    from odp.operations.status import due_datasets

    return due_datasets(root, state_dir(root), load_city(root))


def after_runs(root: Path, city: Any, reports: list[Any], check_freshness: bool,
               scheduled: bool, dry_run: bool) -> None:
    """After `odp run`: staleness alerts (with --due), the warnings of situation datasets that
    ran (odp.indicators.warnings) and the cockpit (when configured and the invocation was a
    scheduled one: --due or --all). Failures are logged, never raised."""
    if dry_run:
        return
    from odp.operations.status import check_freshness as freshness_check
    from odp.runs.logs import log

    state = state_dir(root)
    if check_freshness:
        freshness_check(root, state, city)
    if not reports:
        return
    from odp.indicators.warnings import after_runs as situation_after_runs

    situation_after_runs(root, city, reports)  # situation page, CAP feed, level alerts
    from odp.operations.cockpit import CockpitConfig, publish

    config = CockpitConfig.from_city(city)
    if config.dataset and config.update_each_run and scheduled:
        try:
            publish(root, state, city, config)
        except Exception as exc:  # noqa: BLE001 — the cockpit never fails a run
            log.warning(f"cockpit {config.dataset}: not updated: {exc}",
                        extra={"event": "cockpit"})


# --- status / history -----------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, root: Path) -> int:
    from odp.operations.status import all_status, dataset_status, human_size, state_size

    state, city = state_dir(root), load_city(root)
    rows = ([dataset_status(root, state, city, n) for n in args.names] if args.names
            else all_status(root, state, city))
    size = state_size(state)
    for r in rows:
        r.state_bytes = size
    if args.json:
        _print_json([r.to_dict() for r in rows])
    else:
        console = _console()
        console.print(_status_table(rows, wide=console.width >= 190))
        for r in rows:
            if r.last_status not in (None, "ok", "unchanged") and r.last_error:
                print(f"{r.dataset}: {r.last_error}")
        print(f"state: {state} ({human_size(size)})")
    return 0 if all(r.healthy for r in rows) or not args.check else 1


def _status_table(rows: list[Any], wide: bool) -> Any:
    """Every column on a wide terminal; on a narrow one (80 columns) the essentials, times as
    ages ("19 min ago", "in 31 min") and the lock only when one is held."""
    from rich import box
    from rich.table import Table

    from odp.operations.status import human_age

    def lock(r: Any) -> str:
        return r.lock if r.lock == "free" else f"{r.lock} (pid {r.lock_holder.get('pid', '?')})"

    if wide:
        table = Table("dataset", "last run", "status", "last success", "age", "expected",
                      "freshness", "quarantine", "lock", "next run")
        for r in rows:
            table.add_row(r.dataset, _short(r.last_run), r.last_status or "—",
                          _short(r.last_success), human_age(r.age_seconds),
                          human_age(r.expected_seconds), r.freshness, str(r.open_quarantine),
                          lock(r), _short(r.next_run))
        return table
    locks = any(r.lock != "free" for r in rows)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    table.add_column("dataset", no_wrap=True)
    for name in ("status", "last ok", "fresh", "quar.", *(["lock"] if locks else []), "next in"):
        table.add_column(name, no_wrap=True)
    now = datetime.now(UTC)
    for r in rows:
        nxt = (human_age((datetime.fromisoformat(r.next_run) - now).total_seconds(), whole=True)
               if r.next_run else "—")
        table.add_row(r.dataset, r.last_status or "—", human_age(r.age_seconds, whole=True),
                      r.freshness, str(r.open_quarantine), *([lock(r)] if locks else []), nxt)
    return table


def _short(stamp: str | None) -> str:
    return stamp.replace("T", " ").replace("+00:00", "Z") if stamp else "—"


HISTORY_COLUMNS = ("run_id", "started", "seconds", "status", "extracted", "valid",
                   "quarantined", "published", "downloaded", "error")


def cmd_history(args: argparse.Namespace, root: Path) -> int:
    from odp.redact import redact_text
    from odp.runs import history
    from odp.spec import load_dataset

    load_dataset(args.name, root)
    rows = [{**r, "error": redact_text(r["error"]), "url": redact_text(r["url"])}
            for r in history.runs(state_dir(root), args.name, args.limit)]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"{args.name}: no runs yet")
        return 0
    from rich.table import Table

    table = Table(*HISTORY_COLUMNS)
    for r in rows:
        table.add_row(*(_short(str(r[c])) if c == "started" else str(r[c] if r[c] is not None
                                                                      else "") for c in
                        HISTORY_COLUMNS))
    _console().print(table)
    return 0


# --- schedule -------------------------------------------------------------------------------


def cmd_schedule(args: argparse.Namespace, root: Path) -> int:
    from odp.operations import install

    if args.action == "show":
        rows = install.upcoming(root, count=args.count)
        if args.json:
            _print_json(rows)
        else:
            for r in rows:
                tz = r["timezone"]
                times = ", ".join(r["next_local"]) or "—"
                print(f"{r['dataset']}: {r['schedule']} — due now: "
                      f"{'yes' if r['due'] else 'no'} — next ({tz}): {times}")
        return 0
    text = install.render(root, args.kind, args.log)
    if args.write:
        print(install.apply(root, args.kind, text, Path(args.unit_dir) if args.unit_dir
                            else None))
    else:
        print(text, end="")
    return 0


# --- cockpit --------------------------------------------------------------------------------


def cmd_cockpit(args: argparse.Namespace, root: Path) -> int:
    from odp.operations import cockpit

    state, city = state_dir(root), load_city(root)
    config = cockpit.CockpitConfig.from_city(city)
    if args.action == "build":
        out = Path(args.out) if args.out else state / "cockpit" / "index.html"
        cockpit.write_page(root, state, city, config, out)
        print(f"status page written: {out}")
        return 0
    if not config.dataset:
        from odp.errors import ConfigError

        raise ConfigError(f"{city.path}: set [cockpit] dataset = \"NAME\" to publish the cockpit")
    url = cockpit.publish(root, state, city, config)
    print(f"cockpit published: {url}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="per dataset: last run, last success, freshness, "
                                      "quarantine, lock")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a dataset is stale or its last run did not succeed")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("history", help="one dataset's runs, newest first")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("schedule", help="next runs; a crontab block or systemd units")
    p.add_argument("action", choices=("show", "install"))
    p.add_argument("--count", type=int, default=3, help="show: how many next runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--kind", choices=("cron", "systemd"), default="cron",
                   help="install: a crontab block (default) or systemd service + timer")
    p.add_argument("--write", action="store_true",
                   help="install: write it (crontab of this user / the unit files) instead of "
                        "printing")
    p.add_argument("--unit-dir", help="install --kind systemd --write: where the units go "
                                      "(default ~/.config/systemd/user)")
    p.add_argument("--log", help="cron: file the output is appended to (default: the state "
                                 "dir's logs/cron.log)")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("cockpit", help="KPI cockpit: build the static status page, or publish "
                                       "KPIs and page to CKAN")
    p.add_argument("action", choices=("build", "publish"))
    p.add_argument("--out", help="build: the HTML file (default STATE/cockpit/index.html)")
    p.set_defaults(func=cmd_cockpit)

