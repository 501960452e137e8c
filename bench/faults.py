"""The long fault suite: `odp run` of a large register killed at every named point and at random
moments, PostgreSQL restarted mid-COPY, CKAN failing or losing answers behind a proxy, the
source failing — on the COPY and the API path — each followed by a changed delivery and a plain
run that must converge (see tests/faults/harness.py for what "converged" means). Prints one line
per fault and a fault matrix (fault × outcome) with figures.

    uv run python bench/faults.py             # 200,000 rows, 50 random kills, both paths
    uv run python bench/faults.py --rows 20000 --random 10 --paths copy    # quicker

The register is CONSTRUCTED: the real VVO stop list's shape and values cycled to `--rows` rows
with new ids (tests/faults/harness.py: constructed_register), served by the replay server.
Needs the local portal (`odp portal start`). Leaves its datasets in the local CKAN (unique
`t…` names, as the tests do).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.faults.harness import (  # noqa: E402
    NAMED_POINTS,
    PATH_ONLY,
    PG_RESTART,
    SOURCE_URL,
    FaultProject,
    Outcome,
    Reference,
    constructed_register,
    fault_cycle,
)
from tests.integration.ckan_proxy import FailingProxy  # noqa: E402

FRESH = ("package_create", "resource_create", "datastore_create")  # only a new dataset has them
# Points reached only by an update that removes more rows than it adds (the API path sends
# the rest of the gone rows in a request of its own): the faulted delivery has this many rows
# fewer.
SHRINK = {"portal.after:datastore_delete": 20}


def portal_info():  # -> odp_dev.portal.stack.PortalInfo
    from odp_dev.portal import stack

    return stack.start()


class Bench:
    def __init__(self, rows: int, tmp: Path, portal) -> None:
        self.rows, self.tmp, self.portal = rows, tmp, portal
        self.reference = Reference(tmp / "reference", portal)
        self.projects: dict[str, FaultProject] = {}
        self.k = 0
        self.outcomes: list[Outcome] = []

    def next_k(self) -> int:
        self.k += 2
        return self.k

    def project(self, path: str, fresh: bool = False) -> FaultProject:
        if fresh or path not in self.projects:
            n = sum(1 for _ in self.tmp.iterdir())  # a new folder per project
            project = FaultProject(self.tmp / f"{path}-{n}", self.portal, load=path)
            project.rows = self.rows
            if not fresh:
                project.deliver(constructed_register(self.rows, 0))
                first = project.run()
                if first.rc != 0:
                    raise SystemExit(f"first publish ({path}) failed: {first.tail()}")
                self.projects[path] = project
            return project
        return self.projects[path]

    def cycle(self, fault: str, path: str, *, fresh: bool = False, **kwargs) -> Outcome:
        began = time.monotonic()
        try:
            project = self.project(path, fresh=fresh)
            outcome = fault_cycle(project, self.reference, self.next_k(), fault, **kwargs)
            if fresh:
                project.close()
        except Exception as exc:  # noqa: BLE001 — one broken cycle must not end the suite
            why = f"harness error: {type(exc).__name__}: {str(exc)[:160]}"
            outcome = Outcome(fault, path, False, -1, [why], [],
                              round(time.monotonic() - began, 1))
        self.outcomes.append(outcome)
        state = "converged" if outcome.converged else "NOT converged"
        extra = "" if outcome.converged else f": {'; '.join(outcome.reasons)}"
        seen = f" [reader: {'; '.join(outcome.reader)}]" if outcome.reader else ""
        print(f"{path:4} {fault:38} exit {outcome.fault_rc:>3}  {state}{extra}{seen} "
              f"({outcome.seconds:.0f} s)", flush=True)
        return outcome

    def clean_seconds(self, path: str) -> float:
        """How long a plain run with a changed delivery takes (the span random kills hit)."""
        project = self.project(path)
        project.deliver(constructed_register(self.rows, self.next_k()))
        done = project.run()
        return done.seconds

    def close(self) -> None:
        for project in self.projects.values():
            project.close()
        self.reference.close()


def ckan_faults() -> list[tuple[str, Callable[[FailingProxy], None], bool]]:
    """(name, set-up on the proxy, needs a fresh dataset)."""
    return [
        ("ckan down before publish", lambda p: p.fail.update({"status_show": 99}), False),
        ("ckan 5xx on datastore_upsert", lambda p: p.fail.update({"datastore_upsert": 99}),
         False),
        ("ckan 5xx on resource_patch", lambda p: p.fail.update({"resource_patch": 99}), False),
        ("ckan 5xx on package_patch", lambda p: p.fail.update({"package_patch": 99}), False),
        ("ckan lost answer: datastore_upsert",
         lambda p: p.lose_answer.update({"datastore_upsert": 1}), False),
        ("ckan lost answer: resource_patch",
         lambda p: p.lose_answer.update({"resource_patch": 1}), False),
        ("ckan lost answer: package_create",
         lambda p: p.lose_answer.update({"package_create": 1}), True),
        ("ckan lost answer: resource_create",
         lambda p: p.lose_answer.update({"resource_create": 1}), True),
        ("ckan lost answer: datastore_create",
         lambda p: p.lose_answer.update({"datastore_create": 1}), True),
    ]


def source_faults(project: FaultProject) -> list[tuple[str, Callable[[], None]]]:
    replay = project.replay
    return [
        ("source 503 x2 (retried)", lambda: replay.fail_next(SOURCE_URL, [503, 503])),
        ("source 429 Retry-After 1", lambda: replay.fail_next(SOURCE_URL, [429],
                                                              retry_after=1)),
        ("source 503 x9 (gives up)", lambda: replay.fail_next(SOURCE_URL, [503] * 9)),
        ("source slow (delay 3 s)", lambda: replay.delay_next(SOURCE_URL, 3)),
        ("source body cut, Content-Length sent", lambda: replay.cut(SOURCE_URL, -5000)),
        ("source cut at a row, no Content-Length", lambda: replay.cut(
            SOURCE_URL, _half_at_a_row(project.body), content_length=False)),
        ("source HTML page with status 200", lambda: replay.html_page(SOURCE_URL)),
        ("source drip 64 KiB/s, deadline 20 s", lambda: _drip(project)),
    ]


def _half_at_a_row(body: bytes | None) -> int:
    """Bytes up to the end of the row around the body's middle: a cut that looks complete."""
    assert body
    return body.rindex(b"\n", 0, len(body) // 2) + 1


def _drip(project: FaultProject) -> None:
    """The body at 64 KiB a second, under a 20 s deadline (the default 300 s: same outcome)."""
    project.env["ODP_HTTP_DEADLINE"] = "20"
    project.replay.drip(SOURCE_URL, 64 * 1024, 1.0)


def matrix(outcomes: list[Outcome]) -> None:
    print("\nfault matrix (fault × outcome)")
    print(f"{'fault':40} {'path':4} {'runs':>4} {'killed':>6} {'converged':>9} "
          f"{'reader ok':>9} {'median s':>8}  reasons")
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        name = "random kill" if o.fault.startswith("random") else o.fault
        groups.setdefault((name, o.path), []).append(o)
    for (name, path), group in groups.items():
        reasons = sorted({r for o in group for r in o.reasons})
        print(f"{name:40} {path:4} {len(group):>4} {sum(o.killed for o in group):>6} "
              f"{sum(o.converged for o in group):>9} {sum(not o.reader for o in group):>9} "
              f"{statistics.median(o.seconds for o in group):>8.0f}  "
              f"{'; '.join(reasons)[:160]}")
    total = len(outcomes)
    good = sum(o.converged for o in outcomes)
    print(f"\n{good} of {total} faults converged; {sum(not o.reader for o in outcomes)} of "
          f"{total} without a reader seeing an empty or half-applied table")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--random", type=int, default=50,
                        help="random kills per path (moments after the run's end drawn again)")
    parser.add_argument("--paths", default="copy,api")
    parser.add_argument("--seed", type=int, default=20241120)
    parser.add_argument("--named-from", default="",
                        help="start the named points at this one (to resume a run)")
    parser.add_argument("--only", default="",
                        help="named,postgres,random,ckan,source (default: all)")
    args = parser.parse_args(argv)
    parts = set((args.only or "named,postgres,random,ckan,source").split(","))
    rng = random.Random(args.seed)
    portal = portal_info()
    with tempfile.TemporaryDirectory(prefix="odp-faults-") as tmp:
        bench = Bench(args.rows, Path(tmp), portal)
        began = time.monotonic()
        try:
            for path in args.paths.split(","):
                print(f"\n== {path} path, {args.rows} rows (constructed) ==", flush=True)
                if "named" in parts:
                    start = NAMED_POINTS.index(args.named_from) if args.named_from else 0
                    for point in NAMED_POINTS[start:]:
                        if PATH_ONLY.get(point, path) != path:
                            continue
                        bench.cycle(point, path, kill=point, fresh=any(f in point for f in FRESH),
                                    shrink=SHRINK.get(point, 0))
                if "postgres" in parts and path == "copy":
                    bench.cycle("postgresql restarted mid-COPY", path, kill=PG_RESTART)
                if "random" in parts and args.random:
                    span = bench.clean_seconds(path)
                    print(f"a plain run takes {span:.1f} s: random kills in 0 … {span:.1f} s",
                          flush=True)
                    killed = tries = 0  # a moment after the run's end kills nothing:
                    while killed < args.random and tries < 2 * args.random:  # draw another
                        tries += 1
                        moment = rng.uniform(0.5, span)
                        outcome = bench.cycle(f"random@{moment:.1f}s", path, kill_after=moment)
                        killed += outcome.killed
                if "ckan" in parts:
                    for name, setup, fresh in ckan_faults():
                        with FailingProxy(portal.url) as proxy:
                            bench.cycle(name, path, fresh=fresh, ckan_url=proxy.url,
                                        before=lambda s=setup, p=proxy: s(p))
                if "source" in parts:
                    project = bench.project(path)
                    for name, setup in source_faults(project):
                        bench.cycle(name, path, before=setup)
        finally:
            matrix(bench.outcomes)
            print(f"({time.monotonic() - began:.0f} s in all)")
            bench.close()
    return 0 if all(o.converged for o in bench.outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
