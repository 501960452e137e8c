"""The `odp` command. Thin: parses, calls, prints. Heavy libraries load only when a command
needs them, so `odp list` starts fast.

Exit codes: 0 ok · 1 unexpected error · 2 configuration · 3 source · 4 held back by validation ·
5 CKAN · 6 locked by another run · 7 disk full · 8 CKAN refused the data (validation) · 9 name
conflict on the portal (odp.errors). Under cron (no terminal) output is plain lines; `--json`
prints one JSON document on stdout.

Files a command creates are the operator's only (umask 077): the state holds raw source rows,
the history and the logs. `odp portal` keeps the umask it was started with (its services).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from odp.errors import ConfigError, OdpError, disk_full
from odp.spec import Dataset, dataset_names, load_city, load_dataset, project_root

DEMO_SCENARIO = "2024-11-21"  # the newest recorded state of the replayed sources

# Each stage's own commands: a module with `register(subparsers)`; each command's function
# takes (args, project_root) and returns the exit code. Keep those modules' imports light.
COMMAND_MODULES: tuple[str, ...] = (
    "odp.operations.commands", "odp.validate.commands", "odp.publish.commands",
)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


# --- list / show ----------------------------------------------------------------------------


def _summary(ds: Dataset) -> dict[str, Any]:
    return {
        "name": ds.name,
        "title": ds.title,
        "kind": ds.kind,
        "source_type": ds.source_type,
        "mode": ds.extract.get("mode", "full-refresh"),
        "schedule": ds.schedule.get("cron", ""),
        "primary_key": list(ds.schema.primary_key),
    }


def cmd_list(args: argparse.Namespace, root: Path) -> int:
    rows = [_summary(load_dataset(n, root)) for n in dataset_names(root)]
    if args.json:
        _print_json(rows)
        return 0
    from rich.table import Table

    table = Table("title", "source type", "mode", "schedule")
    table.add_column("name", no_wrap=True)
    for r in rows:
        table.add_row(r["title"], r["source_type"], r["mode"], r["schedule"], r["name"])
    _console().print(table)
    return 0


def cmd_show(args: argparse.Namespace, root: Path) -> int:
    ds = load_dataset(args.name, root)
    info = _summary(ds) | {
        "description": ds.description.strip(),
        "source": ds.source,
        "georeference": ds.georeference,
        "max_quarantine_share": ds.max_quarantine_share,
        "fields": [
            {"name": f.name, "type": f.type, "unit": f.unit, "required": f.required,
             "derived": f.derived or None}
            for f in ds.schema.fields
        ],
        "files": [str(p.relative_to(root)) for p in
                  (ds.definition_path, root / "schemas" / f"{ds.name}.json", ds.suite_path)],
    }
    if args.json:
        _print_json(info)
        return 0
    console = _console()
    console.print(f"[bold]{ds.name}[/bold] — {ds.title}")
    for key in ("kind", "source_type", "mode", "schedule", "primary_key", "files"):
        console.print(f"  {key}: {info[key]}")
    console.print("  fields:")
    for f in info["fields"]:
        unit = f" [{f['unit']}]" if f["unit"] else ""
        flags = " required" if f["required"] else ""
        flags += f" ({f['derived']})" if f["derived"] else ""
        console.print(f"    {f['name']}: {f['type']}{unit}{flags}")
    return 0


# --- run ------------------------------------------------------------------------------------


def source_urls(ds: Dataset) -> list[str]:
    """Every remote URL a dataset's source reads: each http(s) value of its `[source]` table,
    nested ones included (`files`, `archive_url` …), and the URL defaults of its source type's
    parameters the table leaves out (e.g. PEGELONLINE's base URL)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(ds.source)
    walk(_default_urls(ds))
    return found


def _default_urls(ds: Dataset) -> dict[str, Any]:
    """The source factory's keyword defaults that the `[source]` table does not set."""
    import inspect

    from odp.sources import SOURCE_TYPES

    target = SOURCE_TYPES.get(ds.source_type)
    if target is None:
        return {}
    module, name = target.split(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return {}
    return {key: p.default for key, p in inspect.signature(factory).parameters.items()
            if key not in ds.source and isinstance(p.default, str)}


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _unreachable_hosts(datasets: list[Dataset], timeout: float = 2.0) -> list[str]:
    """The remote source hosts (`host:port`) that accept no TCP connection, checked in
    parallel. Local sources (files of the project) have no host and are never listed."""
    from concurrent.futures import ThreadPoolExecutor

    targets = sorted({hp for ds in datasets for url in source_urls(ds)
                      if (hp := _host_port(url)) is not None})

    def down(target: tuple[str, int]) -> bool:
        try:
            socket.create_connection(target, timeout=timeout).close()
        except OSError:
            return True
        return False

    if not targets:
        return []
    with ThreadPoolExecutor(min(8, len(targets))) as pool:
        verdicts = list(pool.map(down, targets))
    return [f"{host}:{port}" for (host, port), is_down in zip(targets, verdicts, strict=True)
            if is_down]


DEV_TOOLS = "odp.dev"  # entry-point group of the development tools (local portal, replay)


def _dev_tool(name: str) -> Callable[..., Any]:
    """A development tool (`portal`, `replay`) by its entry point: the engine never imports the
    package that provides them, and runs without it."""
    from importlib.metadata import entry_points

    found = list(entry_points(group=DEV_TOOLS, name=name))
    if not found:
        raise ConfigError(f"the development tool '{name}' is not installed here (entry point "
                          f"group {DEV_TOOLS}; it comes with the project's odp_dev package)")
    return found[0].load()


def _start_replay(root: Path, say: Callable[[str], None], hosts: list[str] | None = None
                  ) -> Any:
    """The replay server for every remote source (`hosts` None) or for these `host:port`s
    only (`--replay auto`: the reachable ones stay live, see odp.sources.http.routed)."""
    from odp.sources.routing import REPLAY_HOSTS_ENV, REPLAY_URL_ENV

    server = _dev_tool("replay")(root / "tests" / "recordings", DEMO_SCENARIO)
    os.environ[REPLAY_URL_ENV] = server.url
    if hosts is not None:
        os.environ[REPLAY_HOSTS_ENV] = ",".join(hosts)
    which = f" for {', '.join(hosts)}" if hosts is not None else ""
    say(f"serving RECORDED responses{which} (tests/recordings, scenario {DEMO_SCENARIO}) "
        f"from {server.url} — not live data")
    return server


class _Reporter:
    """Rich status on a terminal; plain timestamped lines under cron; silent with --json."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.tty = sys.stdout.isatty() and not json_mode
        self.console = _console() if self.tty else None
        self.status: Any = None

    def line(self, message: str) -> None:
        if self.json_mode:
            print(message, file=sys.stderr)
        elif self.console:
            self.console.print(message)
        else:  # cron: JSON lines (odp.runs.logs)
            logging.getLogger("odp").info(message)

    def stage(self, dataset: str) -> Callable[[str], None]:
        def update(step: str) -> None:
            if self.status is not None:
                self.status.update(f"[bold]{dataset}[/bold]: {step}")
            elif not self.json_mode:
                self.line(f"{dataset}: {step}")

        return update

    def begin(self, dataset: str) -> None:
        if self.console:
            self.status = self.console.status(f"[bold]{dataset}[/bold]: starting")
            self.status.start()

    def end(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _replay(mode: str, root: Path, datasets: list[Dataset], say: Callable[[str], None]
            ) -> Any:
    """`--replay always`: every remote source replayed; `auto`: exactly the sources whose host
    is unreachable (none: no server); `never` or a replay server already configured: None."""
    from odp.sources.routing import REPLAY_URL_ENV

    if mode == "never" or (mode == "auto" and os.environ.get(REPLAY_URL_ENV)):
        return None
    if mode == "always":
        return _start_replay(root, say)
    down = _unreachable_hosts(datasets)
    if not down:
        return None
    say(f"sources unreachable ({', '.join(down)})")
    return _start_replay(root, say, down)


def _outcome(r: Any) -> str:
    if r.status in ("failed", "held-back", "locked"):
        return f"{r.dataset}: {r.status.upper()} — {r.error}"
    status = "dry run, would write (nothing written)" if r.status == "dry-run" else r.status
    return (f"{r.dataset}: {status} in {r.seconds:.1f} s — downloaded {_size(r.downloaded)}, "
            f"extracted {r.extracted}, validated {r.validated}, quarantined {r.quarantined}, "
            f"inserted {r.inserted}, updated {r.updated}, deleted {r.deleted}, "
            f"CKAN writes {r.write_calls} → {r.url}")


def _size(nbytes: int) -> str:
    if nbytes < 1000:
        return f"{nbytes} B"
    return f"{nbytes / 1000:.1f} kB" if nbytes < 1_000_000 else f"{nbytes / 1e6:.1f} MB"


def _show(out: _Reporter, report: Any, json_mode: bool) -> Any:
    """A finished run's lines (its outcome and first messages); the report redacted."""
    from odp.runs.record import redact_report

    redact_report(report)  # a dry run's report is not recorded (record_run redacts the others)
    if not json_mode:
        out.line(_outcome(report))
        for message in report.messages[:10]:
            out.line(f"  {message}")
        if len(report.messages) > 10:
            out.line(f"  … {len(report.messages) - 10} more: odp quarantine {report.dataset}")
    return report


def _run_in_turn(args: argparse.Namespace, root: Path, city: Any, names: list[str],
                 out: _Reporter) -> list[Any]:
    from odp.run import run_dataset

    reports = []
    for name in names:
        out.begin(name)
        try:
            report = run_dataset(name, root, city, out.stage(name),
                                 dry_run=args.dry_run, accept_deletes=args.accept_deletes)
        finally:
            out.end()
        reports.append(_show(out, report, args.json))
    return reports


def cmd_run(args: argparse.Namespace, root: Path) -> int:
    from odp.operations import commands as ops
    from odp.runs import parallel
    from odp.runs.logs import start_logging
    from odp.sources.derived import run_order

    names = ops.due_names(root) if args.due else dataset_names(root) if args.all else args.names
    if not names and not args.due:
        raise OdpError("name one or more datasets, or use --all or --due (see `odp list`)")
    names = run_order(names, root)  # derived datasets after their inputs
    datasets = [load_dataset(n, root) for n in names]
    city = load_city(root)
    # --all/--due: several at once (odp.toml [run] workers); named datasets one after the other
    # unless --workers says otherwise.
    workers = parallel.worker_count(root, args.workers if args.workers is not None or args.all
                                    or args.due else 1, names)
    out = _Reporter(args.json)
    start_logging(root, city, console=not out.tty and not args.json)
    server = _replay(args.replay, root, datasets, out.line)
    try:
        reports = _run_in_turn(args, root, city, names, out) if workers == 1 else \
            parallel.run_datasets(names, root, workers, lambda r: _show(out, r, args.json),
                                  out.console, args.dry_run, args.accept_deletes)
    finally:
        if server is not None:
            server.stop()
    ops.after_runs(root, city, reports, check_freshness=args.due,
                   scheduled=args.due or args.all, dry_run=args.dry_run)
    if args.json:
        _print_json([r.to_dict() for r in reports])
    elif reports:
        out.line(f"portal: {city.portal_url}")
    failed = [r.exit_code for r in reports if r.exit_code]
    return failed[0] if failed else 0


# --- portal ---------------------------------------------------------------------------------


def cmd_portal(args: argparse.Namespace, root: Path) -> int:
    if args.action == "check":  # any CKAN, the city's by default: not the local stack
        from odp.portal_check import cmd_check

        return cmd_check(args, root)
    say = print if not args.json else (lambda m: print(m, file=sys.stderr))
    status = _dev_tool("portal")(args.action, say)
    if args.json:
        _print_json(status)
    elif args.action == "status":
        for key, value in status.items():
            print(f"{key}: {value}")
    return 0


# --- entry point ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odp", description=__doc__.splitlines()[0])
    city_help = "serve the city cities/NAME.toml and its datasets (instead of odp.toml's; ODP_CITY)"
    parser.add_argument("--city", metavar="NAME", help=city_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="the datasets defined in pipelines/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one dataset's definition and schema")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("run", help="extract → validate → georeference → publish")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--all", action="store_true", help="every dataset in pipelines/")
    p.add_argument("--due", action="store_true", help="the datasets whose schedule is due (cron)")
    p.add_argument("--json", action="store_true", help="one JSON report on stdout")
    p.add_argument("--workers", type=int, metavar="N",
                   help="datasets run at once, each in a worker process (default with --all and "
                        "--due: odp.toml's [run] workers, else one per CPU core; named: 1)")
    p.add_argument("--dry-run", action="store_true", help="run all stages but write nothing")
    p.add_argument("--city", metavar="NAME", default=argparse.SUPPRESS, help=city_help)
    p.add_argument("--accept-deletes", action="store_true",
                   help="accept, for this run, a full refresh deleting more than the dataset's "
                        "max_delete_share of its published rows (recorded in the history)")
    p.add_argument(
        "--replay", choices=("never", "auto", "always"), default="never",
        help="serve recorded responses: auto = for the sources whose host is unreachable "
             "(demo; reachable and local sources stay as they are)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("portal", help="the local CKAN (dev/test): install, start, stop, status; "
                                      "check [URL]: has a CKAN (the city's) what odp needs?")
    p.add_argument("action", choices=("install", "start", "stop", "status", "check"))
    p.add_argument("url", nargs="?", help="check: the portal to check (default: the city's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_portal)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


PRIVATE_UMASK = 0o077  # files and folders a command creates: the operator's account only


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.city:  # every command below reads the city (and its datasets) from ODP_CITY
        os.environ["ODP_CITY"] = args.city
    umask = os.umask(PRIVATE_UMASK) if args.command != "portal" else None
    try:
        root = project_root()
        return int(args.func(args, root))
    except OdpError as exc:
        print(f"odp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        full = disk_full(exc)
        if full is None:
            raise
        print(f"odp: error: {full}", file=sys.stderr)
        return full.exit_code
    except KeyboardInterrupt:
        print("odp: interrupted", file=sys.stderr)
        return 130
    finally:
        if umask is not None:
            os.umask(umask)


if __name__ == "__main__":  # `python -m odp.cli`: this module's main, not a second import
    from odp.command import entry

    entry(main)
