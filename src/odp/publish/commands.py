"""`odp publish`: what a publish would write (`--dry-run`), and datasets that left the config.

  odp publish NAME --dry-run [--json]   every stage, then the diff: metadata fields, resources,
                                        rows added / changed / deleted — nothing written
  odp publish NAME                      the same as `odp run NAME`
  odp publish --check                   datasets published before but no longer configured
                                        (exit 2 when there are any)
  odp publish --prune                   retire them per `defaults.removed_dataset_policy`:
                                        private (default) | delete (CKAN's soft delete) | keep
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.errors import ConfigError, OdpError

REMOVED_POLICIES = ("private", "delete", "keep")


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="publish datasets; --dry-run shows the diff")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.add_argument("--check", action="store_true",
                   help="list published datasets that are no longer in pipelines/")
    p.add_argument("--prune", action="store_true",
                   help="retire published datasets no longer in pipelines/ (per city policy)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(func=cmd_publish)


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def removed_datasets(root: Path) -> list[str]:
    """Datasets with a ledger (published by this installation) but no definition any more."""
    from odp.spec import dataset_names, state_dir

    folder = state_dir(root) / "published"
    known = set(dataset_names(root))
    return sorted(p.stem for p in folder.glob("*.parquet") if p.stem not in known)


def _plan_lines(plan: dict[str, Any]) -> list[str]:
    rows = plan.get("rows", {})
    lines = [f"{plan['dataset']}: {'new dataset' if not plan.get('exists') else plan['state']}",
             f"  rows: +{rows.get('added', 0)} added, ~{rows.get('changed', 0)} changed, "
             f"-{rows.get('deleted', 0)} deleted ({rows.get('deletion_policy')}), "
             f"{rows.get('unchanged', 0)} unchanged"]
    fields = plan.get("metadata", [])
    lines.append(f"  metadata: {', '.join(fields) if fields else 'unchanged'}")
    for r in plan.get("resources", []):
        lines.append(f"  resource {r['format']} ({r['role']}): {r['action']}")
    return lines


def cmd_publish(args: argparse.Namespace, root: Path) -> int:
    if args.check or args.prune:
        return _removed(args, root)
    if not args.names:
        raise OdpError("name one or more datasets (see `odp list`), or use --check / --prune")
    from odp.run import run_dataset
    from odp.spec import load_city, load_dataset

    for name in args.names:
        load_dataset(name, root)
    city = load_city(root)
    reports = [run_dataset(n, root, city, dry_run=args.dry_run) for n in args.names]
    if args.json:
        _print([r.plan if args.dry_run and not r.error else r.to_dict() for r in reports])
    for r in reports:
        if r.error:
            print(f"{r.dataset}: {r.status.upper()} — {r.error}", file=sys.stderr)
        elif args.json:
            continue
        elif args.dry_run:
            print("\n".join(_plan_lines(r.plan) if r.plan else
                            [f"{r.dataset}: up to date, nothing to write"]))
        else:
            print(f"{r.dataset}: {r.status} — inserted {r.inserted}, updated {r.updated}, "
                  f"deleted {r.deleted}, CKAN writes {r.write_calls} → {r.url}")
    failed = [r.exit_code for r in reports if r.exit_code]
    return failed[0] if failed else 0


def _removed(args: argparse.Namespace, root: Path) -> int:
    from odp.spec import load_city, state_dir

    city = load_city(root)
    policy = city.defaults.get("removed_dataset_policy", "private")
    if policy not in REMOVED_POLICIES:
        raise ConfigError(f"{city.path}: removed_dataset_policy '{policy}' is not one of "
                          f"{', '.join(REMOVED_POLICIES)}")
    names = removed_datasets(root)
    if args.check or not names:
        if args.json:
            _print([{"dataset": n, "policy": policy} for n in names])
        elif names:
            for n in names:
                print(f"{n}: published but no longer in pipelines/ — `odp publish --prune` "
                      f"makes it {policy}")
        else:
            print("no published dataset is missing from pipelines/")
        return 2 if names and args.check else 0
    from odp.publish.portal import Portal

    portal = Portal(city)
    state = state_dir(root)
    done = []
    for name in names:
        package = portal.show("package_show", name)
        action = "gone"
        if package is not None and package.get("state") != "deleted":
            if policy == "private":
                extras = [e for e in package.get("extras", []) if e["key"] != "odp_retired_at"]
                extras.append({"key": "odp_retired_at",
                               "value": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
                portal.call("package_patch", id=package["id"], private=True, extras=extras)
            elif policy == "delete":
                portal.call("package_delete", id=package["id"])
            action = policy
        if policy != "keep":
            retired = state / "published" / "retired"
            retired.mkdir(parents=True, exist_ok=True)
            (state / "published" / f"{name}.parquet").replace(retired / f"{name}.parquet")
        done.append({"dataset": name, "action": action})
        if not args.json:
            print(f"{name}: {action}")
    if args.json:
        _print(done)
    return 0
