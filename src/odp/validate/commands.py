"""Validation commands: `odp quarantine`, `odp report`, `odp draft`.

Imports stay light here (no pandas/GX at import time): each command loads what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("quarantine", help="rows rejected by validation, with reasons")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="the open findings as JSON")
    p.add_argument("--csv", metavar="FILE", type=Path,
                   help="write the open findings (with the raw rows) to a CSV file")
    p.add_argument("--history", action="store_true", help="released findings too")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("report", help="the last validation report of a dataset")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="the whole JSON report")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("draft", help="profile a file and write a dataset that runs")
    p.add_argument("name", help="dataset name: writes pipelines/NAME.toml, schemas/NAME.json, "
                                "expectations/NAME.json")
    p.add_argument("--from", dest="source", required=True, metavar="FILE_OR_URL",
                   help="a CSV, XLSX or JSON file (path or http(s) URL)")
    p.add_argument("--rows", type=int, default=None,
                   help="profile only the first N rows (default: every row)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_draft)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_quarantine(args: argparse.Namespace, root: Path) -> int:
    from odp.spec import load_dataset, state_dir
    from odp.validate.quarantine import QuarantineStore

    load_dataset(args.name, root)
    store = QuarantineStore(state_dir(root))
    if args.csv:
        count = store.export_csv(args.name, args.csv, history=args.history)
        print(f"{args.name}: {count} findings written to {args.csv}")
        return 0
    table = store.history(args.name) if args.history else store.list(args.name)
    if args.json:
        _print_json(json.loads(table.to_json(orient="records", date_format="iso")))
        return 0
    if table.empty:
        print(f"{args.name}: quarantine is empty")
        return 0
    from rich.console import Console
    from rich.table import Table

    view = Table("run", "row", "key", "field", "rule", "value", "reason")
    for r in table.itertuples():
        view.add_row(str(r.run_id), str(r.row), str(r.key), str(r.field), str(r.rule),
                     str(r.value), str(r.reason))
    Console(highlight=False).print(view)
    print(f"{len(table)} findings; download: odp quarantine {args.name} --csv FILE")
    return 0


def cmd_report(args: argparse.Namespace, root: Path) -> int:
    from odp.spec import load_dataset, state_dir
    from odp.validate.report import load_report, report_path, summary_markdown

    load_dataset(args.name, root)
    state = state_dir(root)
    report = load_report(state, args.name)
    if report is None:
        print(f"{args.name}: no validation report yet ({report_path(state, args.name)}); "
              f"run `odp run {args.name}`", file=sys.stderr)
        return 1
    if args.json:
        _print_json(report)
    else:
        print(summary_markdown(report))
    return 0


def cmd_draft(args: argparse.Namespace, root: Path) -> int:
    from odp.errors import ConfigError
    from odp.spec import NAME_PATTERN, load_city
    from odp.validate.draft import profile, read_source, write_draft

    if not NAME_PATTERN.match(args.name):
        raise ConfigError(f"'{args.name}' is not a valid dataset name (a-z, 0-9, -)")
    sample = read_source(args.source, root)
    try:
        city = load_city(root)
    except ConfigError:
        city = None  # no city file yet: no georeferencing checks, Europe/Berlin times
    frame = sample.frame if args.rows is None else sample.frame.head(args.rows)
    draft = profile(frame, args.name, args.source, city, sample)
    timezone = city.timezone if city is not None else "Europe/Berlin"
    written = write_draft(draft, root, timezone, force=args.force)
    _print_draft(draft, written, root)
    return 0


def _print_draft(draft: Any, written: list[Path], root: Path) -> None:
    print(f"{draft.name}: profiled {draft.rows} rows, {len(draft.columns)} columns "
          f"({'; '.join(draft.notes)})")
    for c in draft.columns:
        flags = " required" if c.required else ""
        band = f" {c.low:g} … {c.high:g}" if c.low is not None and c.numeric else ""
        renamed = f" (from '{c.source}')" if c.source != c.name else ""
        print(f"  {c.name}{renamed}: {c.inferred.label}{flags}{band}")
    keys = "; ".join(" + ".join(k) for k in draft.keys) or "none (no unique column combination)"
    print(f"  primary-key candidates: {keys}")
    if draft.geo is not None:
        print(f"  coordinates: {draft.geo.x}, {draft.geo.y} in {draft.geo.crs} "
              f"({draft.geo.reason})")
    for path in written:
        print(f"wrote {path.relative_to(root) if path.is_relative_to(root) else path}")
    print(f"Check the guesses marked CHECK, then: odp run {draft.name}")
