"""dlt's load packages, kept bounded: after a successful run (published, or nothing to
publish) of a dataset, its loaded packages beyond the newest N are removed, and so are the
partial packages a killed run left.

dlt keeps every loaded package (`STATE/dlt/odp_TABLE/load/loaded/LOAD_ID/`: the rows as
delivered, the schema and the state of that run): 151 runs of one dataset held 471 MB. The
rows live on in staging; a package is only good for inspecting what a recent run delivered
(`dlt pipeline odp_TABLE load-package LOAD_ID`). N = 3 by default (the last run and the two
before it, for comparison), `[defaults] keep_load_packages` in the city file or
ODP_KEEP_LOAD_PACKAGES.

Partial packages: an extract killed midway leaves its folder `normalize/XXXXXXXX/new/LOAD_ID`
(dlt makes one such folder per extract and never reuses it), a normalise killed midway leaves
`load/new/LOAD_ID`. Packages that are complete but not yet loaded (`normalize/extracted`,
`load/normalized`) are never touched: the next run finishes them (odp.extract). Pruning runs
only under the dataset's lock, so never beside a running extract.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odp.errors import ConfigError, LockedError

KEEP = 3  # loaded packages kept per dataset (see the module docstring)
KEEP_ENV = "ODP_KEEP_LOAD_PACKAGES"
EXTRACTED = "extracted"  # dlt's NormalizeStorage.EXTRACTED_FOLDER: complete, to normalise


@dataclass(frozen=True)
class Pruned:
    loaded: int = 0  # loaded packages removed
    partial: int = 0  # partial packages (or extract folders) removed
    bytes: int = 0


def keep_setting(city: Any) -> int:
    """How many loaded packages to keep (≥ 0): env, then the city's `[defaults]`, then KEEP."""
    raw = os.environ.get(KEEP_ENV)
    if raw is None:
        raw = (getattr(city, "defaults", None) or {}).get("keep_load_packages", KEEP)
    try:
        keep = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"keep_load_packages: a whole number ≥ 0, not {raw!r}") from None
    if keep < 0:
        raise ConfigError(f"keep_load_packages: a whole number ≥ 0, not {keep}")
    return keep


def pipeline_dir(state: Path, dataset: str) -> Path:
    return state / "dlt" / f"odp_{dataset.replace('-', '_')}"


def _size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _load_order(name: str) -> tuple[float, str]:
    try:
        return float(name), name
    except ValueError:
        return float("-inf"), name


def _remove(path: Path) -> int:
    size = _size(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def partial_packages(pipeline: Path) -> list[Path]:
    """Folders a killed extract or normalise left (see the module docstring)."""
    normalize, load = pipeline / "normalize", pipeline / "load"
    found = [p for p in sorted(normalize.iterdir()) if p.is_dir() and p.name != EXTRACTED
             and not p.name.startswith(".")] if normalize.is_dir() else []
    extracted = {p.name for p in (normalize / EXTRACTED).glob("*")}
    if (load / "new").is_dir():
        found += [p for p in sorted((load / "new").iterdir())
                  if p.is_dir() and p.name not in extracted]
    return found


def prune(state: Path, dataset: str, keep: int) -> Pruned:
    """Remove the dataset's loaded packages beyond the newest `keep` and its partial ones."""
    pipeline = pipeline_dir(state, dataset)
    loaded = pipeline / "load" / "loaded"
    packages = sorted((p for p in loaded.iterdir() if p.is_dir()),
                      key=lambda p: _load_order(p.name)) if loaded.is_dir() else []
    old = packages[: max(0, len(packages) - keep)]
    partial = partial_packages(pipeline)
    freed = sum(_remove(p) for p in [*old, *partial])
    return Pruned(len(old), len(partial), freed)


def prune_after_success(state: Path, dataset: str, run_id: str, city: Any) -> Pruned:
    """`prune` under the dataset's lock; nothing when another run holds it (the next
    successful run prunes)."""
    from odp.runs.locks import dataset_lock

    try:
        with dataset_lock(state, dataset, run_id):
            return prune(state, dataset, keep_setting(city))
    except LockedError:
        return Pruned()
