"""The deletion guard: a full refresh must not silently remove most of a public table.

    [publish]
    max_delete_share = 0.10        # hold back a delivery that would remove more than this share
                                   # of the published rows (city default `defaults.
                                   # max_delete_share`, else 10 %): a cut file, a register of
                                   # another city or swapped coordinates look like mass deletions
    quarantined_rows = "keep-published"
                                   # a published row quarantined in this delivery keeps its last
                                   # good version ("remove": it disappears like a deleted row)

A genuine shrink is accepted explicitly, once: `odp run NAME --accept-deletes` (the run's history
row says so). Rows with `deleted_at` set (policy mark-deleted) do not count as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from odp.errors import ConfigError
from odp.publish.changes import DELETED_AT, ChangeSet
from odp.spec import City, Dataset

DEFAULT_MAX_DELETE_SHARE = 0.10  # one row in ten: more than a register's normal churn per run
QUARANTINED_ROWS = ("keep-published", "remove")


@dataclass(frozen=True)
class GuardSettings:
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE
    quarantined_rows: str = "keep-published"


def guard_settings(dataset: Dataset, city: City) -> GuardSettings:
    """`[publish] max_delete_share` / `quarantined_rows`, falling back to the city's defaults
    (ConfigError names file and key)."""
    where = f"{dataset.definition_path}: [publish]"
    share: Any = dataset.publish.get(
        "max_delete_share", city.defaults.get("max_delete_share", DEFAULT_MAX_DELETE_SHARE))
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ConfigError(f"{where} max_delete_share: must be a share between 0 and 1, "
                          f"got {share!r}")
    keep = dataset.publish.get("quarantined_rows", "keep-published")
    if keep not in QUARANTINED_ROWS:
        raise ConfigError(f"{where} quarantined_rows: must be one of "
                          f"{', '.join(QUARANTINED_ROWS)}, got {keep!r}")
    return GuardSettings(float(share), keep)


def published_rows(ledger: pd.DataFrame | None) -> int:
    """Rows the public table shows as current (marked-deleted rows excluded)."""
    if ledger is None:
        return 0
    if DELETED_AT in ledger:
        return int(ledger[DELETED_AT].isna().sum())
    return len(ledger)


def deletion_reasons(changes: ChangeSet, published: int, cfg: GuardSettings,
                     accept: bool) -> list[str]:
    """Why this change set must not be applied (empty: it may). `published`: current rows of
    the last good version; `accept`: the officer accepted the deletions for this run."""
    removed = len(changes.deleted)
    if accept or not published or not removed:
        return []
    share = removed / published
    if share <= cfg.max_delete_share:
        return []
    return [f"would delete {removed} of {published} published rows ({share:.1%}, limit "
            f"{cfg.max_delete_share:.1%}); if the source really shrank, run again with "
            "--accept-deletes"]


def empty_reasons(publishable: int, published: int, may_be_empty: bool) -> list[str]:
    """A delivery that would leave a non-empty published table with no rows."""
    if publishable or not published or may_be_empty:
        return []
    return [f"0 rows to publish over {published} published rows (set [validate] may_be_empty "
            "= true if the dataset may be empty)"]
